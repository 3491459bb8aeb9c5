//! The process-scoped RuntimeHost: one engine per process, light client sessions over it,
//! deterministic lifecycle, bounded per-client event queues and metrics.
//!
//! Event scoping: engine and playback events (state, position, track started/ended, route,
//! errors of playback) are global and reach every live client. Notices about one client's
//! own queue (`lagged`) reach only that client. A client evicted or disposed sees nothing
//! after that point; a client attached later sees only events from after its attach.

#![forbid(unsafe_code)]

mod clients;
mod config;
mod devices;
mod engine_slot;
mod error;
mod events;
mod host;
mod logging;
mod metrics;
mod output;
mod plugin_ops;
mod ports;
mod route;
mod runtime;
mod sessions;

pub use clients::ClientSession;
pub use config::{FaultInjection, HostConfig, LogFormat, default_data_dir};
pub use devices::{DEFAULT_DEVICE_ID, OutputDevice};
pub use error::{HostError, Result};
pub use events::{Closed, EventQueue, HostEvent, HostNotice, Polled};
pub use host::{InitOutcome, LifecycleState, RuntimeHost};
pub use logging::{LOG_FILE_PREFIX, LOG_FILE_SUFFIX, init_logging, log_dir};
pub use metrics::{AUDIO_UNDERRUNS_TOTAL, MetricsSnapshot};
pub use ports::{EventPort, HEARTBEAT_AFTER, PORT_CLOSED};
pub use route::{DspSpec, OutputRoute, PluginRoute};
pub use stellatune_audio::{
    AudioError, BuiltinRoute, EngineEvent, EngineStatus, PlaybackState, ReplayGainMode,
    ReplayGainSettings, SinkError, TrackId, TrackInfo, TrackSource,
};
/// What a media file holds (format, tags, ReplayGain, cover), read without an engine: the C
/// ABI's `stellatune_media_*` functions and the CLI's `info` use these.
pub use stellatune_audio::{
    Cover, CoverInfo, MediaInfo, MediaTags, ReplayGain, probe_media, read_cover,
};
pub use stellatune_plugin_host::{PluginError, PluginInfo, ReloadReport};
