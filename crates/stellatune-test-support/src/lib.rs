//! Fixtures shared by the workspace's tests and benches, so that each is written once and
//! behaves the same everywhere (on Linux and on Windows):
//!
//! - [`tone`]: generated WAV files (the standard test tone and arbitrary 16-bit PCM);
//! - [`ffmpeg`]: encoded fixtures (AAC, ALAC, AIFF, ADPCM, tags, covers) made with ffmpeg,
//!   which CI must have and other machines may skip;
//! - [`wait`]: bounded polling, so a broken test fails with a message instead of hanging;
//! - [`process`]: bounded waits for child processes;
//! - [`artifacts`]: where this build's cdylibs, binaries and packaged plugins are, and
//!   plugin directories laid out from them;
//! - [`mapped`]: which library files are loaded into this process;
//! - [`fake_host`]: a fake plugin host vtable that records what a plugin sends it;
//! - [`json`]: arbitrary JSON for parser fuzzing.
//!
//! It is a dev-dependency only, and depends on no crate of the workspace above the plugin
//! ABI, so that any crate (the plugin SDK included) can use it without a dependency cycle.

pub mod artifacts;
pub mod fake_host;
pub mod ffmpeg;
pub mod json;
pub mod mapped;
pub mod process;
pub mod tone;
pub mod wait;
