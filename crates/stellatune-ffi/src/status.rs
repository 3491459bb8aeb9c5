//! The status codes of the C ABI: the one list.
//!
//! [`Status`] below is the only place a code is named, numbered and described. `build.rs`
//! reads this enum and generates from it, into `OUT_DIR`:
//! - `status_consts.rs`: a `STELLATUNE_OK` / `STELLATUNE_ERR_*` constant per variant, with the
//!   variant's documentation (cbindgen turns these into the header's `#define`s, and the crate
//!   root includes them for Rust callers);
//! - `status_impl.rs`: [`Status::ALL`] and [`Status::name`] (behind `stellatune_error_name`),
//!   plus a compile-time check that every constant equals its variant;
//! - `status_table.md`: the error-code table of `docs/ffi.md` (`tests/header.rs` fails when
//!   the committed table differs).
//!
//! The C name of a variant is `STELLATUNE_OK` for `Ok` and `STELLATUNE_ERR_<VARIANT>` (in
//! SCREAMING_SNAKE_CASE) for the others. A paragraph of a variant's documentation that starts
//! with `What to do:` fills the table's last column.
//!
//! Format rules for build.rs (it fails the build when they are broken): one variant per line
//! as `Name = value,`, documentation as `///` lines above it.

use std::ffi::CStr;

/// The outcome of a C ABI call. The exported functions return it as an `int32_t`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A pointer was NULL, a string was not UTF-8, JSON was malformed or named an unknown key, or
    /// a value was out of range; also an output that refuses its configuration (such as
    /// `{"kind":"device"}` in a build without the `device` feature). The last error names the
    /// parameter or field.
    ///
    /// What to do: a bug in the caller: log the last error.
    InvalidArgument = -1,
    /// The runtime is not running: `stellatune_runtime_init` was never called, or
    /// `stellatune_runtime_shutdown` was called since.
    ///
    /// What to do: call init.
    NotInitialized = -2,
    /// The runtime is shutting down on another thread.
    ///
    /// What to do: stop using the runtime.
    ShuttingDown = -3,
    /// No client with this id was ever created in this process.
    ///
    /// What to do: a bug in the caller.
    UnknownClient = -4,
    /// The client was disposed with `stellatune_player_dispose_client`.
    ///
    /// What to do: stop using the id.
    ClientDisposed = -5,
    /// The client was evicted: its lease ran out, `stellatune_runtime_prepare_hot_restart`
    /// started a new generation, or the runtime shut down. Create a new client.
    ///
    /// What to do: create a new client (the last error says why it was evicted).
    ClientEvicted = -6,
    /// The output buffer is too small; `*out_len` holds the size needed including the NUL.
    ///
    /// What to do: grow the buffer and call again.
    BufferTooSmall = -7,
    /// The engine did not answer a command in time (5 s), shutdown did not join every
    /// runtime thread within `shutdown_timeout_ms`, or a plugin call hung and was abandoned.
    ///
    /// What to do: report; retrying rarely helps.
    Timeout = -8,
    /// The path names no file, or something that is not a regular file; or
    /// (`stellatune_media_cover`) the file has no embedded picture.
    ///
    /// What to do: tell the user.
    NotFound = -9,
    /// An unsupported audio format or codec, or a feature this build does not have.
    ///
    /// What to do: tell the user.
    Unsupported = -10,
    /// The file is in a supported format but cannot be decoded.
    ///
    /// What to do: tell the user.
    Decode = -11,
    /// Playback needs an output route: call `stellatune_output_route_apply` first.
    ///
    /// What to do: apply a route first.
    NoRoute = -12,
    /// The command needs a current track (pause, resume, seek, queue_next) and nothing is
    /// playing.
    ///
    /// What to do: ignore, or update the UI.
    NothingPlaying = -13,
    /// Reading a file failed (permissions, I/O error).
    ///
    /// What to do: tell the user.
    Io = -14,
    /// The output failed to open or write: no device, the device went away, the WAV file is
    /// not writable.
    ///
    /// What to do: pick another route.
    Sink = -15,
    /// A bug: an internal invariant failed or a panic was caught. The message says where.
    ///
    /// What to do: report it with the last error.
    Internal = -16,
    /// No plugin with that id is installed.
    ///
    /// What to do: refresh the plugin list.
    UnknownPlugin = -17,
    /// The plugin was built for another plugin ABI (major differs, or minor is newer); the
    /// message names both versions.
    ///
    /// What to do: install a build of the plugin for this version.
    PluginAbi = -18,
    /// A plugin could not be installed or loaded (bad plugin.json, missing library or entry
    /// symbol, path traversal in an archive), a call into it failed or panicked (an output
    /// sink or a DSP stage alike, at creation, open or while playing), or the plugin
    /// directory is unusable. The message says which.
    ///
    /// What to do: tell the user which plugin failed; another route or chain works.
    Plugin = -19,
}

include!(concat!(env!("OUT_DIR"), "/status_impl.rs"));

impl Status {
    /// The status with this code, if there is one.
    pub fn from_code(code: i32) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The value returned to C.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The name `stellatune_error_name` gives for `code`.
    pub fn name_of(code: i32) -> &'static CStr {
        Status::from_code(code).map_or(c"STELLATUNE_ERR_UNKNOWN_CODE", Status::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_status_and_its_own_name() {
        let mut codes: Vec<i32> = Status::ALL.iter().map(|s| s.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Status::ALL.len(), "codes are unique");
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Some(status));
            let name = status.name().to_str().unwrap();
            assert!(name.starts_with("STELLATUNE_"), "{name}");
            assert_eq!(Status::name_of(status.code()), status.name());
            assert_eq!(status == Status::Ok, status.code() == 0);
        }
        assert_eq!(Status::name_of(1), c"STELLATUNE_ERR_UNKNOWN_CODE");
        assert_eq!(Status::name_of(-20), c"STELLATUNE_ERR_UNKNOWN_CODE");
    }

    #[test]
    fn names_and_values_are_the_published_ones() {
        // The C contract: these pairs never change.
        let published = [
            (0, "STELLATUNE_OK"),
            (-1, "STELLATUNE_ERR_INVALID_ARGUMENT"),
            (-2, "STELLATUNE_ERR_NOT_INITIALIZED"),
            (-3, "STELLATUNE_ERR_SHUTTING_DOWN"),
            (-4, "STELLATUNE_ERR_UNKNOWN_CLIENT"),
            (-5, "STELLATUNE_ERR_CLIENT_DISPOSED"),
            (-6, "STELLATUNE_ERR_CLIENT_EVICTED"),
            (-7, "STELLATUNE_ERR_BUFFER_TOO_SMALL"),
            (-8, "STELLATUNE_ERR_TIMEOUT"),
            (-9, "STELLATUNE_ERR_NOT_FOUND"),
            (-10, "STELLATUNE_ERR_UNSUPPORTED"),
            (-11, "STELLATUNE_ERR_DECODE"),
            (-12, "STELLATUNE_ERR_NO_ROUTE"),
            (-13, "STELLATUNE_ERR_NOTHING_PLAYING"),
            (-14, "STELLATUNE_ERR_IO"),
            (-15, "STELLATUNE_ERR_SINK"),
            (-16, "STELLATUNE_ERR_INTERNAL"),
            (-17, "STELLATUNE_ERR_UNKNOWN_PLUGIN"),
            (-18, "STELLATUNE_ERR_PLUGIN_ABI"),
            (-19, "STELLATUNE_ERR_PLUGIN"),
        ];
        let listed: Vec<(i32, &str)> = Status::ALL
            .iter()
            .map(|s| (s.code(), s.name().to_str().unwrap()))
            .collect();
        assert_eq!(listed, published);
        assert_eq!(crate::STELLATUNE_ERR_PLUGIN, -19);
        assert_eq!(crate::STELLATUNE_OK, 0);
    }
}
