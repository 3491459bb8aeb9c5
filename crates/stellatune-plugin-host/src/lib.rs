//! The plugin runtime: install plugins from directories or zips, load each as a generation
//! from a shadow copy, drain and unload old generations when their last instance goes, and
//! adapt plugin output sinks to the engine's `Sink` trait.

mod dsp;
mod error;
mod generation;
mod install;
mod loaded;
mod manifest;
mod runtime;
mod shadow;
mod sink;

pub use dsp::PluginDsp;
pub use error::{PluginError, Result};
pub use generation::{
    Generation, LENT_THREAD_JOIN_TIMEOUT, NoticeSink, PluginNotice, SHUTDOWN_TIMEOUT, is_mapped,
};
pub use install::remove_install_dir;
pub use manifest::{MANIFEST_FILE, PluginManifest};
pub use runtime::{CapabilityInfo, PluginInfo, PluginMetricsSnapshot, PluginRuntime, ReloadReport};
pub use sink::{CLOSE_TIMEOUT, PluginSink, PluginSinkFactory};
