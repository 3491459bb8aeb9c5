//! Which library files are loaded into this process: what tells a test that a plugin's
//! library (or a shadow copy of it) really left the process after an unload.
//!
//! Linux answers from /proc/self/maps, which also shows mapping lines (a leaked second
//! mapping of one file) and whether a mapping is code; other systems (Windows) answer from
//! the loaded module list, where every entry is loaded code, once.

use std::path::Path;

/// Distinct files under `dir` mapped into this process, and their mapping lines (Windows:
/// loaded modules, counted once each).
#[cfg(target_os = "linux")]
pub fn mapped_under(dir: &Path) -> (usize, usize) {
    let needle = dir.to_string_lossy().into_owned();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let lines: Vec<&str> = maps
        .lines()
        .filter(|l| l.contains(needle.as_str()))
        .collect();
    let mut files: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.find(needle.as_str()).map(|i| &l[i..]))
        .map(|p| p.trim_end_matches(" (deleted)"))
        .collect();
    files.sort_unstable();
    files.dedup();
    (files.len(), lines.len())
}

/// Distinct files under `dir` loaded into this process, and (Linux) their mapping lines.
#[cfg(not(target_os = "linux"))]
pub fn mapped_under(dir: &Path) -> (usize, usize) {
    let files = stellatune_probe::mapped_libraries_under(dir).map_or(0, |f| f.len());
    (files, files)
}

/// Distinct files under `dir` whose code is mapped: executable mappings only, not a panic
/// symbolizer's read-only view of a file for its debug info.
#[cfg(target_os = "linux")]
pub fn code_mapped_under(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut files: Vec<&str> = maps
        .lines()
        .filter(|l| l.contains(needle.as_str()) && is_code(l))
        .filter_map(|l| l.find(needle.as_str()).map(|i| &l[i..]))
        .map(|p| p.trim_end_matches(" (deleted)"))
        .collect();
    files.sort_unstable();
    files.dedup();
    files.len()
}

/// Distinct files under `dir` loaded into this process (loaded modules are code).
#[cfg(not(target_os = "linux"))]
pub fn code_mapped_under(dir: &Path) -> usize {
    mapped_under(dir).0
}

/// Mapping lines of files under `dir`: more than the distinct files, so that a leaked second
/// mapping of one file shows too (Windows: loaded modules). `None`: not measurable here.
#[cfg(target_os = "linux")]
pub fn mapping_lines_under(dir: &Path) -> Option<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let needle = dir.to_string_lossy();
    Some(maps.lines().filter(|l| l.contains(needle.as_ref())).count() as u64)
}

/// Loaded modules from files under `dir` (Windows has no mapping lines to count).
#[cfg(not(target_os = "linux"))]
pub fn mapping_lines_under(dir: &Path) -> Option<u64> {
    Some(stellatune_probe::mapped_libraries_under(dir)?.len() as u64)
}

/// Whether the code of a library whose file name contains `name` is loaded: its executable
/// mappings on Linux (a panic backtrace's symbolizer keeps its own read-only mapping of the
/// file for debug info, which is not the loaded library), its module on Windows.
#[cfg(target_os = "linux")]
pub fn library_code_loaded(name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(name))
        .any(is_code)
}

/// Whether a library whose file name contains `name` is loaded.
#[cfg(not(target_os = "linux"))]
pub fn library_code_loaded(name: &str) -> bool {
    stellatune_probe::mapped_libraries()
        .expect("loaded modules")
        .iter()
        .any(|p| p.to_string_lossy().contains(name))
}

/// Whether a /proc/self/maps line maps code (its permissions include `x`).
#[cfg(target_os = "linux")]
fn is_code(line: &str) -> bool {
    line.split_whitespace()
        .nth(1)
        .is_some_and(|perms| perms.contains('x'))
}
