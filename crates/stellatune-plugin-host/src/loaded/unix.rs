use std::path::Path;

/// A mapping of the file in /proc/self/maps (Linux; elsewhere there is none to read, and the
/// answer is `false`).
pub fn is_mapped(path: &Path) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let needle = path.to_string_lossy();
    maps.lines().any(|line| line.ends_with(needle.as_ref()))
}
