//! Hot-restart stress gate for `libstellatune_ffi`: see README.md.
//!
//! The binary (`src/main.rs`) is a parent that re-executes itself as a child (`--child`);
//! the child loads the library once and runs the cycles ([`child`]), the parent watches it,
//! judges the samples ([`verdict`]) and writes the report ([`report`]).

pub mod child;
pub mod cli;
pub mod ffi;
pub mod hammer;
pub mod parent;
pub mod ports;
pub mod report;
pub mod sample;
pub mod verdict;

use std::path::{Path, PathBuf};

/// The C ABI library's file name on this OS (`libstellatune_ffi.so`, `stellatune_ffi.dll`).
pub fn lib_name() -> String {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    format!("{DLL_PREFIX}stellatune_ffi{DLL_SUFFIX}")
}
/// Length of the generated track: long enough for `--seek` to 1000 ms and a slow cycle.
pub const TRACK_SECONDS: u32 = 5;

/// `--lib`, or [`lib_name`] next to this executable; absolute, so that loading it
/// never searches `LD_LIBRARY_PATH`.
pub fn resolve_lib(args: &cli::Args) -> Result<PathBuf, String> {
    resolve_lib_path(args.lib.as_deref())
}

/// As [`resolve_lib`], for an explicit `--lib` or none.
pub fn resolve_lib_path(lib: Option<&Path>) -> Result<PathBuf, String> {
    let path = match lib {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable: {e}"))?
            .parent()
            .ok_or("this executable has no directory")?
            .join(lib_name()),
    };
    std::fs::canonicalize(&path).map_err(|e| {
        format!(
            "library {}: {e} (build it with `cargo build -p stellatune-ffi`, or pass --lib PATH)",
            path.display()
        )
    })
}

/// The `id` in `<dir>/plugin.json` (for uninstall and plugin routes); `asio`, the plugin
/// the gate is made for, when it cannot be read.
pub fn plugin_id_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("plugin.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "asio".to_owned())
}

/// The WAV every cycle plays.
pub fn track_path(run_dir: &Path) -> PathBuf {
    run_dir.join("tone.wav")
}

/// A stereo 16-bit 44.1 kHz sine of `seconds`.
pub fn write_wav(path: &Path, seconds: u32) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let fail = |e: hound::Error| format!("{}: {e}", path.display());
    let mut writer = hound::WavWriter::create(path, spec).map_err(fail)?;
    for i in 0..44_100 * seconds {
        let t = i as f32 / 44_100.0;
        let s = ((t * 440.0 * std::f32::consts::TAU).sin() * 0.25 * i16::MAX as f32) as i16;
        writer.write_sample(s).map_err(fail)?;
        writer.write_sample(s).map_err(fail)?;
    }
    writer.finalize().map_err(fail)
}

/// `target/hot-restart-stress` when this executable lives in a cargo target directory
/// (`target/<profile>/hot-restart-stress`), else `./target/hot-restart-stress`.
pub fn default_out_root() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let target = exe.parent()?.parent()?;
        target
            .join("CACHEDIR.TAG")
            .is_file()
            .then(|| target.join("hot-restart-stress"))
    });
    from_exe.unwrap_or_else(|| PathBuf::from("target").join("hot-restart-stress"))
}

/// UTC `YYYYMMDDTHHMMSSZ` for `secs` since the Unix epoch.
pub fn timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Creates `<root>/<timestamp>` (with a `-2`, `-3`, ... suffix if that exists already).
pub fn make_run_dir(root: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stamp = timestamp(now);
    for n in 1..1000 {
        let dir = if n == 1 {
            root.join(&stamp)
        } else {
            root.join(format!("{stamp}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Err(format!("{}: too many runs this second", root.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::timestamp(0), "19700101T000000Z");
        assert_eq!(super::timestamp(951_782_400), "20000229T000000Z");
        assert_eq!(super::timestamp(1_795_730_623), "20261126T220343Z");
    }
}
