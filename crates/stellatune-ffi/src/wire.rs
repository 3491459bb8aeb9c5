//! Every JSON document that crosses the C ABI, as explicit types: what the exported functions
//! write (events, player status, metrics, the plugin list) and what they accept (the runtime
//! config, output routes, DSP chains). The domain types of the engine, the host and the plugin
//! host do not serialise themselves: renaming one of their variants or fields must not change
//! what a Flutter app parses. Every name a front end sees is spelled out here, and the tests
//! at the bottom pin each document to its literal text and fuzz the parsers. Nothing else
//! parses these documents: the host takes the domain values only.
//!
//! Output types convert from the domain types with `From`; input types parse with
//! `deny_unknown_fields` (so a typo never falls back to a default silently) and convert into
//! the domain types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stellatune_runtime_host as host;
use stellatune_runtime_host::{
    DspSpec, EngineEvent, HostConfig, HostEvent, HostNotice, OutputRoute, PluginRoute,
};

use crate::Status;
use crate::support::{FfiError, FfiResult};

/// Serialises a document for a caller's buffer.
pub(crate) fn to_json<T: Serialize>(document: &T) -> FfiResult<String> {
    serde_json::to_string(document)
        .map_err(|e| FfiError::new(Status::Internal, format!("document not serialisable: {e}")))
}

// ---------------------------------------------------------------------------------------
// Output: events (`stellatune_player_poll_event`)
// ---------------------------------------------------------------------------------------

/// `"stopped"`, `"playing"` or `"paused"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybackState {
    Stopped,
    Playing,
    Paused,
}

impl From<host::PlaybackState> for PlaybackState {
    fn from(state: host::PlaybackState) -> Self {
        match state {
            host::PlaybackState::Stopped => PlaybackState::Stopped,
            host::PlaybackState::Playing => PlaybackState::Playing,
            host::PlaybackState::Paused => PlaybackState::Paused,
        }
    }
}

/// A track as `track_started` (flattened) and the player status (`track`) show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackInfo {
    pub path: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub total_frames: Option<u64>,
    pub duration_ms: Option<u64>,
    /// The file's tags, as `stellatune_media_probe_json` shows them.
    pub tags: MediaTags,
    /// The file's ReplayGain values, as `stellatune_media_probe_json` shows them.
    pub replaygain: ReplayGain,
}

impl From<&host::TrackInfo> for TrackInfo {
    fn from(info: &host::TrackInfo) -> Self {
        Self {
            // Paths reach the runtime as UTF-8 C strings, so nothing is lost here.
            path: info.path.to_string_lossy().into_owned(),
            codec: info.codec.clone(),
            sample_rate: info.sample_rate,
            channels: info.channels,
            total_frames: info.total_frames,
            duration_ms: info.duration_ms,
            tags: (&info.tags).into(),
            replaygain: info.replaygain.into(),
        }
    }
}

/// One event: a flat JSON object whose `type` names it. docs/ffi.md lists every type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    StateChanged {
        state: PlaybackState,
    },
    TrackStarted {
        track_id: u64,
        #[serde(flatten)]
        track: Box<TrackInfo>,
    },
    Position {
        track_id: u64,
        position_ms: u64,
        duration_ms: Option<u64>,
    },
    TrackEnded {
        track_id: u64,
    },
    RouteChanged {
        route: Option<String>,
    },
    Error {
        message: String,
        track_id: Option<u64>,
    },
    OutputStarting {
        route: String,
    },
    Underrun {
        count: u64,
    },
    OutputLost {
        route: String,
        message: String,
    },
    OutputChanged {
        route: String,
    },
    Lagged {
        dropped: u64,
    },
    ClientEvicted {
        client_id: u64,
        reason: String,
    },
    PluginInstalled {
        plugin_id: String,
        generation: Option<u64>,
    },
    PluginUninstalled {
        plugin_id: String,
    },
    PluginsReloaded {
        loaded: Vec<String>,
        reloaded: Vec<String>,
        removed: Vec<String>,
        failed: Vec<String>,
    },
    EngineRestarted {
        reason: String,
    },
    PluginEvent {
        plugin_id: String,
        kind: String,
        payload: serde_json::Value,
    },
    /// Posted to an event port that got nothing else for a while; never polled.
    Heartbeat,
}

impl From<&EngineEvent> for Event {
    fn from(event: &EngineEvent) -> Self {
        match event {
            EngineEvent::StateChanged { state } => Event::StateChanged {
                state: (*state).into(),
            },
            EngineEvent::TrackStarted { track_id, info } => Event::TrackStarted {
                track_id: *track_id,
                track: Box::new(info.as_ref().into()),
            },
            EngineEvent::Position {
                track_id,
                position_ms,
                duration_ms,
            } => Event::Position {
                track_id: *track_id,
                position_ms: *position_ms,
                duration_ms: *duration_ms,
            },
            EngineEvent::TrackEnded { track_id } => Event::TrackEnded {
                track_id: *track_id,
            },
            EngineEvent::RouteChanged { route } => Event::RouteChanged {
                route: route.clone(),
            },
            EngineEvent::Error { message, track_id } => Event::Error {
                message: message.clone(),
                track_id: *track_id,
            },
            EngineEvent::OutputStarting { route } => Event::OutputStarting {
                route: route.clone(),
            },
            EngineEvent::Underrun { count } => Event::Underrun { count: *count },
            EngineEvent::OutputLost { route, message } => Event::OutputLost {
                route: route.clone(),
                message: message.clone(),
            },
            EngineEvent::OutputChanged { route } => Event::OutputChanged {
                route: route.clone(),
            },
        }
    }
}

impl From<&HostNotice> for Event {
    fn from(notice: &HostNotice) -> Self {
        match notice {
            HostNotice::Lagged { dropped } => Event::Lagged { dropped: *dropped },
            HostNotice::ClientEvicted { client_id, reason } => Event::ClientEvicted {
                client_id: *client_id,
                reason: reason.clone(),
            },
            HostNotice::PluginInstalled {
                plugin_id,
                generation,
            } => Event::PluginInstalled {
                plugin_id: plugin_id.clone(),
                generation: *generation,
            },
            HostNotice::PluginUninstalled { plugin_id } => Event::PluginUninstalled {
                plugin_id: plugin_id.clone(),
            },
            HostNotice::PluginsReloaded {
                loaded,
                reloaded,
                removed,
                failed,
            } => Event::PluginsReloaded {
                loaded: loaded.clone(),
                reloaded: reloaded.clone(),
                removed: removed.clone(),
                failed: failed.clone(),
            },
            HostNotice::EngineRestarted { reason } => Event::EngineRestarted {
                reason: reason.clone(),
            },
            HostNotice::PluginEvent {
                plugin_id,
                kind,
                payload,
            } => Event::PluginEvent {
                plugin_id: plugin_id.clone(),
                kind: kind.clone(),
                payload: payload.clone(),
            },
            HostNotice::Heartbeat => Event::Heartbeat,
        }
    }
}

impl From<&HostEvent> for Event {
    fn from(event: &HostEvent) -> Self {
        match event {
            HostEvent::Engine(event) => event.into(),
            HostEvent::Host(notice) => notice.into(),
        }
    }
}

impl Event {
    /// The event's JSON. It cannot fail for these types; should it ever, the client still
    /// gets an `error` event rather than a gap.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","message":"event not serialisable: {e}"}}"#)
        })
    }
}

// ---------------------------------------------------------------------------------------
// Output: player status (`stellatune_player_status_json`)
// ---------------------------------------------------------------------------------------

/// `{"sample_rate":44100,"channels":2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamSpec {
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayerStatus {
    pub state: PlaybackState,
    pub track_id: Option<u64>,
    pub track: Option<TrackInfo>,
    pub position_ms: u64,
    pub volume: f32,
    pub route: Option<String>,
    pub output_spec: Option<StreamSpec>,
    pub queued_next: Option<u64>,
    pub frames_written: u64,
}

impl From<&host::EngineStatus> for PlayerStatus {
    fn from(status: &host::EngineStatus) -> Self {
        Self {
            state: status.state.into(),
            track_id: status.track_id,
            track: status.track.as_ref().map(TrackInfo::from),
            position_ms: status.position_ms,
            volume: status.volume,
            route: status.route.clone(),
            output_spec: status.output_spec.map(|spec| StreamSpec {
                sample_rate: spec.sample_rate,
                channels: spec.channels,
            }),
            queued_next: status.queued_next,
            frames_written: status.frames_written,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output: media info (`stellatune_media_probe_json`)
// ---------------------------------------------------------------------------------------

/// What a file holds, read without decoding. Every value the file does not state is `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaInfo {
    pub path: String,
    pub codec: String,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub bits_per_sample: Option<u32>,
    pub total_frames: Option<u64>,
    pub duration_ms: Option<u64>,
    pub tags: MediaTags,
    pub replaygain: ReplayGain,
    pub cover: Option<CoverInfo>,
}

/// `{"title":..., "artist":..., "album":..., "album_artist":..., "track_number":3,
/// "disc_number":1, "date":"2024", "genre":...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaTags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub album_artist: Option<String>,
    pub track_number: Option<u32>,
    pub disc_number: Option<u32>,
    pub date: Option<String>,
    pub genre: Option<String>,
}

/// `{"track_gain_db":-6.5,"track_peak":0.98,"album_gain_db":null,"album_peak":null}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplayGain {
    pub track_gain_db: Option<f64>,
    pub track_peak: Option<f64>,
    pub album_gain_db: Option<f64>,
    pub album_peak: Option<f64>,
}

/// `{"mime":"image/png","bytes":1234}`: the cover `stellatune_media_cover` copies out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverInfo {
    pub mime: String,
    pub bytes: u64,
}

impl From<&host::MediaTags> for MediaTags {
    fn from(tags: &host::MediaTags) -> Self {
        Self {
            title: tags.title.clone(),
            artist: tags.artist.clone(),
            album: tags.album.clone(),
            album_artist: tags.album_artist.clone(),
            track_number: tags.track_number,
            disc_number: tags.disc_number,
            date: tags.date.clone(),
            genre: tags.genre.clone(),
        }
    }
}

impl From<host::ReplayGain> for ReplayGain {
    fn from(rg: host::ReplayGain) -> Self {
        Self {
            track_gain_db: rg.track_gain_db,
            track_peak: rg.track_peak,
            album_gain_db: rg.album_gain_db,
            album_peak: rg.album_peak,
        }
    }
}

impl From<&host::MediaInfo> for MediaInfo {
    fn from(info: &host::MediaInfo) -> Self {
        Self {
            // Paths reach the runtime as UTF-8 C strings, so nothing is lost here.
            path: info.path.to_string_lossy().into_owned(),
            codec: info.codec.clone(),
            sample_rate: info.sample_rate,
            channels: info.channels,
            bits_per_sample: info.bits_per_sample,
            total_frames: info.total_frames,
            duration_ms: info.duration_ms,
            tags: (&info.tags).into(),
            replaygain: info.replaygain.into(),
            cover: info.cover.as_ref().map(|c| CoverInfo {
                mime: c.mime.clone(),
                bytes: c.bytes,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output: metrics (`stellatune_runtime_metrics_json`)
// ---------------------------------------------------------------------------------------

/// `"uninit"`, `"running"`, `"shutting_down"` or `"stopped"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    Uninit,
    Running,
    ShuttingDown,
    Stopped,
}

impl From<host::LifecycleState> for LifecycleState {
    fn from(state: host::LifecycleState) -> Self {
        match state {
            host::LifecycleState::Uninit => LifecycleState::Uninit,
            host::LifecycleState::Running => LifecycleState::Running,
            host::LifecycleState::ShuttingDown => LifecycleState::ShuttingDown,
            host::LifecycleState::Stopped => LifecycleState::Stopped,
        }
    }
}

/// The runtime's counters, then every counter plugins reported, flattened in under the
/// plugins' own names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub state: LifecycleState,
    pub runtime_host_inits_total: u64,
    pub player_clients_active: u64,
    pub client_generation: u64,
    pub clients_evicted_total: u64,
    pub client_events_queued: u64,
    pub runtime_threads: u64,
    pub engine_restarts_total: u64,
    pub audio_underruns_total: u64,
    pub plugin_generations_active: u64,
    pub plugin_generations_draining: u64,
    pub plugin_shadow_copies: u64,
    pub plugin_helper_threads: u64,
    #[serde(flatten)]
    pub plugin_reported: BTreeMap<String, i64>,
}

impl Metrics {
    /// The keys of the runtime's own counters. A plugin-reported counter of the same name is
    /// left out: JSON with a key twice means different things to different parsers.
    pub const RUNTIME_KEYS: [&'static str; 13] = [
        "state",
        "runtime_host_inits_total",
        "player_clients_active",
        "client_generation",
        "clients_evicted_total",
        "client_events_queued",
        "runtime_threads",
        "engine_restarts_total",
        "audio_underruns_total",
        "plugin_generations_active",
        "plugin_generations_draining",
        "plugin_shadow_copies",
        "plugin_helper_threads",
    ];
}

impl From<&host::MetricsSnapshot> for Metrics {
    fn from(m: &host::MetricsSnapshot) -> Self {
        Self {
            state: m.state.into(),
            runtime_host_inits_total: m.runtime_host_inits_total,
            player_clients_active: m.player_clients_active,
            client_generation: m.client_generation,
            clients_evicted_total: m.clients_evicted_total,
            client_events_queued: m.client_events_queued,
            runtime_threads: m.runtime_threads,
            engine_restarts_total: m.engine_restarts_total,
            audio_underruns_total: m.audio_underruns_total,
            plugin_generations_active: m.plugin_generations_active,
            plugin_generations_draining: m.plugin_generations_draining,
            plugin_shadow_copies: m.plugin_shadow_copies,
            plugin_helper_threads: m.plugin_helper_threads,
            plugin_reported: m
                .plugin_reported
                .iter()
                .filter(|(name, _)| !Metrics::RUNTIME_KEYS.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), *value))
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output: plugins (`stellatune_plugins_list_json`; the CLI's reload report)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capability {
    /// `"output_sink"` or `"dsp"`.
    pub kind: String,
    pub type_id: String,
    pub display_name: String,
    /// The plugin's default config, as the JSON text the plugin gave.
    pub default_config: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub generation: Option<u64>,
    pub capabilities: Vec<Capability>,
    pub load_error: Option<String>,
}

impl From<&host::PluginInfo> for PluginInfo {
    fn from(info: &host::PluginInfo) -> Self {
        Self {
            id: info.id.clone(),
            name: info.name.clone(),
            version: info.version.clone(),
            api_version: info.api_version.clone(),
            generation: info.generation,
            capabilities: info
                .capabilities
                .iter()
                .map(|c| Capability {
                    kind: c.kind.to_owned(),
                    type_id: c.type_id.clone(),
                    display_name: c.display_name.clone(),
                    default_config: c.default_config.clone(),
                })
                .collect(),
            load_error: info.load_error.clone(),
        }
    }
}

/// What a reload did; `failed` holds `[plugin_id, message]` pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    pub reloaded: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

impl From<&host::ReloadReport> for ReloadReport {
    fn from(report: &host::ReloadReport) -> Self {
        Self {
            loaded: report.loaded.clone(),
            reloaded: report.reloaded.clone(),
            unchanged: report.unchanged.clone(),
            removed: report.removed.clone(),
            failed: report.failed.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Input: parsing with the key at fault named
// ---------------------------------------------------------------------------------------

/// Parses `json`, naming the key at fault: serde alone says "invalid type: string, expected
/// u64" without saying where.
fn parse<T: DeserializeOwned>(json: &str, what: &str) -> FfiResult<T> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            FfiError::invalid(format_args!("{what}: {inner}"))
        } else {
            FfiError::invalid(format_args!("{what}: `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| FfiError::invalid(format_args!("{what}: {e}")))?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------
// Input: runtime config (`stellatune_runtime_init`)
// ---------------------------------------------------------------------------------------

/// `"text"` or `"json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Deliberate defects (accepted only by `fault-injection` builds; the host refuses the key
/// elsewhere).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultInjection {
    pub leak_thread_per_attach: bool,
    pub skip_eviction: bool,
}

/// The config object; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: Option<PathBuf>,
    pub plugin_dir: Option<PathBuf>,
    pub client_lease_ms: Option<u64>,
    pub log_filter: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_max_files: Option<usize>,
    pub event_queue_capacity: Option<usize>,
    pub shutdown_timeout_ms: Option<u64>,
    pub replaygain: Option<ReplayGainConfig>,
    pub fault_injection: Option<FaultInjection>,
}

/// `"off"`, `"track"` or `"album"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayGainMode {
    Off,
    Track,
    Album,
}

/// `{"mode":"track","preamp_db":0.0,"prevent_clipping":true,"fallback_db":0.0}`: what
/// `stellatune_player_set_replaygain` takes; all but `mode` may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayGainJson {
    pub mode: ReplayGainMode,
    #[serde(default)]
    pub preamp_db: f32,
    #[serde(default = "clipping_prevented_by_default")]
    pub prevent_clipping: bool,
    #[serde(default)]
    pub fallback_db: f32,
}

fn clipping_prevented_by_default() -> bool {
    true
}

/// The config's `replaygain`: a mode alone (`"track"`) or the whole object.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "\"off\", \"track\", \"album\" or an object with `mode`"
)]
pub enum ReplayGainConfig {
    Mode(ReplayGainMode),
    Settings(ReplayGainJson),
}

impl From<ReplayGainJson> for host::ReplayGainSettings {
    fn from(j: ReplayGainJson) -> Self {
        host::ReplayGainSettings {
            mode: match j.mode {
                ReplayGainMode::Off => host::ReplayGainMode::Off,
                ReplayGainMode::Track => host::ReplayGainMode::Track,
                ReplayGainMode::Album => host::ReplayGainMode::Album,
            },
            preamp_db: j.preamp_db,
            prevent_clipping: j.prevent_clipping,
            fallback_db: j.fallback_db,
        }
    }
}

impl From<ReplayGainConfig> for host::ReplayGainSettings {
    fn from(c: ReplayGainConfig) -> Self {
        match c {
            ReplayGainConfig::Mode(mode) => ReplayGainJson {
                mode,
                preamp_db: 0.0,
                prevent_clipping: true,
                fallback_db: 0.0,
            }
            .into(),
            ReplayGainConfig::Settings(s) => s.into(),
        }
    }
}

/// Parses and validates `stellatune_player_set_replaygain`'s JSON.
pub(crate) fn parse_replaygain(json: &str) -> FfiResult<host::ReplayGainSettings> {
    let settings: host::ReplayGainSettings = parse::<ReplayGainJson>(json, "replaygain")?.into();
    settings
        .validate()
        .map_err(|e| FfiError::invalid(format_args!("{e}")))?;
    Ok(settings)
}

impl From<Config> for HostConfig {
    fn from(c: Config) -> Self {
        HostConfig {
            data_dir: c.data_dir,
            plugin_dir: c.plugin_dir,
            client_lease_ms: c.client_lease_ms,
            log_filter: c.log_filter,
            log_format: c.log_format.map(|f| match f {
                LogFormat::Text => host::LogFormat::Text,
                LogFormat::Json => host::LogFormat::Json,
            }),
            log_max_files: c.log_max_files,
            event_queue_capacity: c.event_queue_capacity,
            shutdown_timeout_ms: c.shutdown_timeout_ms,
            replaygain: c.replaygain.map(Into::into),
            fault_injection: c.fault_injection.map(|f| host::FaultInjection {
                leak_thread_per_attach: f.leak_thread_per_attach,
                skip_eviction: f.skip_eviction,
            }),
        }
    }
}

/// Parses and validates a config object.
pub(crate) fn parse_config(json: &str) -> FfiResult<HostConfig> {
    let config: HostConfig = parse::<Config>(json, "config")?.into();
    config.validate()?;
    Ok(config)
}

// ---------------------------------------------------------------------------------------
// Input: output route (`stellatune_output_route_apply`)
// ---------------------------------------------------------------------------------------

/// A route as a front end states it: `{"kind":"null"}`, `{"kind":"device"}` (the system
/// default, followed when it changes) or `{"kind":"device","device_id":"alsa:hw:CARD=X"}`,
/// `{"kind":"wav","path":"...","paced":true}` or
/// `{"kind":"plugin","plugin_id":"...","sink":"...","target":"...","config":{...}}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Device(DeviceRoute),
    Null,
    Wav(WavRoute),
    Plugin(PluginRouteJson),
}

/// `{"kind":"device"}`, with an optional `device_id` (an `id` of
/// `stellatune_output_devices_json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRoute {
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default)]
    pub device_id: Option<String>,
}

/// `{"kind":"null"}`: nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindOnly {
    #[serde(rename = "kind")]
    _kind: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WavRoute {
    #[serde(rename = "kind")]
    _kind: String,
    pub path: PathBuf,
    /// Real-time pace; `false` renders as fast as possible.
    #[serde(default = "paced_by_default")]
    pub paced: bool,
    /// A fixed channel count for the file (1 to 8); every track is mixed to it.
    #[serde(default)]
    pub channels: Option<u16>,
    /// A fixed sample rate for the file (8000 to 384000 Hz); every track is resampled to it.
    #[serde(default)]
    pub sample_rate: Option<u32>,
}

fn paced_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRouteJson {
    #[serde(rename = "kind")]
    _kind: String,
    pub plugin_id: String,
    /// May be left out when the plugin has one output sink type.
    #[serde(default)]
    pub sink: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl Route {
    /// Each kind has its own struct, so an error names the field at fault (a tagged enum
    /// would lose the path).
    pub(crate) fn parse(json: &str) -> FfiResult<Route> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| FfiError::invalid(format_args!("route: {e}")))?;
        let Some(kind) = value.get("kind").and_then(|k| k.as_str()) else {
            return Err(FfiError::invalid("route: missing string field `kind`"));
        };
        match kind {
            "device" => parse(json, "route").map(Route::Device),
            "null" => parse::<KindOnly>(json, "route").map(|_| Route::Null),
            "wav" => parse(json, "route").map(Route::Wav),
            "plugin" => parse(json, "route").map(Route::Plugin),
            other => Err(FfiError::invalid(format_args!(
                "route: unknown kind `{other}` (expected device, null, wav or plugin)"
            ))),
        }
    }
}

impl From<Route> for OutputRoute {
    fn from(route: Route) -> Self {
        match route {
            Route::Device(d) => host::BuiltinRoute::Device {
                device_id: d.device_id,
            }
            .into(),
            Route::Null => host::BuiltinRoute::Null.into(),
            Route::Wav(wav) => host::BuiltinRoute::Wav {
                path: wav.path,
                paced: wav.paced,
                channels: wav.channels,
                sample_rate: wav.sample_rate,
            }
            .into(),
            Route::Plugin(p) => {
                let route = PluginRoute::new(&p.plugin_id, p.sink.as_deref(), &p.target);
                OutputRoute::Plugin(match p.config {
                    Some(config) => route.with_config(config),
                    None => route,
                })
            }
        }
    }
}

pub(crate) fn parse_route(json: &str) -> FfiResult<OutputRoute> {
    Route::parse(json).map(OutputRoute::from)
}

/// A route as the JSON [`parse_route`] reads back into the same route.
pub fn route_json(route: &OutputRoute) -> serde_json::Value {
    use serde_json::json;
    match route {
        OutputRoute::Builtin(host::BuiltinRoute::Device { device_id: None }) => {
            json!({ "kind": "device" })
        }
        OutputRoute::Builtin(host::BuiltinRoute::Device {
            device_id: Some(id),
        }) => json!({ "kind": "device", "device_id": id }),
        OutputRoute::Builtin(host::BuiltinRoute::Null) => json!({ "kind": "null" }),
        OutputRoute::Builtin(host::BuiltinRoute::Wav {
            path,
            paced,
            channels,
            sample_rate,
        }) => {
            let mut value = json!({ "kind": "wav", "path": path, "paced": paced });
            if let Some(channels) = channels {
                value["channels"] = json!(channels);
            }
            if let Some(rate) = sample_rate {
                value["sample_rate"] = json!(rate);
            }
            value
        }
        OutputRoute::Plugin(p) => {
            let mut value =
                json!({ "kind": "plugin", "plugin_id": p.plugin_id, "target": p.target });
            if let Some(sink) = &p.sink {
                value["sink"] = json!(sink);
            }
            if let Some(config) = &p.config {
                value["config"] = config.clone();
            }
            value
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output: output devices (`stellatune_output_devices_json`)
// ---------------------------------------------------------------------------------------

/// One output a front end can offer: `route` is what `stellatune_output_route_apply` takes
/// to play there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputDevice {
    pub id: String,
    pub name: String,
    pub backend: String,
    pub is_default: bool,
    pub route: serde_json::Value,
}

impl From<&host::OutputDevice> for OutputDevice {
    fn from(device: &host::OutputDevice) -> Self {
        Self {
            id: device.id.clone(),
            name: device.name.clone(),
            backend: device.backend.clone(),
            is_default: device.is_default,
            route: route_json(&device.route),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Input: DSP chain (`stellatune_player_set_dsp_chain`)
// ---------------------------------------------------------------------------------------

/// One stage: `{"plugin_id":"...","type_id":"...","config":{...}}`; `type_id` may be left
/// out when the plugin has one DSP type. A chain is a JSON array of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspStage {
    pub plugin_id: String,
    #[serde(default)]
    pub type_id: Option<String>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl From<DspStage> for DspSpec {
    fn from(stage: DspStage) -> Self {
        DspSpec {
            plugin_id: stage.plugin_id,
            type_id: stage.type_id,
            config: stage.config,
        }
    }
}

pub(crate) fn parse_dsp_chain(json: &str) -> FfiResult<Vec<DspSpec>> {
    let chain: Vec<DspStage> = parse(json, "dsp chain")?;
    Ok(chain.into_iter().map(DspSpec::from).collect())
}

#[cfg(test)]
mod tests {
    //! Each document pinned to its literal text: a renamed field or variant on either side
    //! of the conversion fails here before it reaches a front end.

    use std::path::PathBuf;

    use super::*;
    use stellatune_runtime_host::{MetricsSnapshot, TrackInfo as DomainTrack};

    fn json(event: impl Into<HostEvent>) -> String {
        Event::from(&event.into()).to_json()
    }

    fn engine(event: EngineEvent) -> HostEvent {
        HostEvent::Engine(event)
    }

    fn notice(notice: HostNotice) -> HostEvent {
        HostEvent::Host(notice)
    }

    fn track() -> DomainTrack {
        DomainTrack {
            path: PathBuf::from("/music/a.flac"),
            codec: "flac".into(),
            sample_rate: 44_100,
            channels: 2,
            total_frames: Some(88_200),
            duration_ms: Some(2_000),
            tags: host::MediaTags {
                title: Some("Song".into()),
                artist: Some("Artist".into()),
                track_number: Some(3),
                ..Default::default()
            },
            replaygain: host::ReplayGain {
                track_gain_db: Some(-6.5),
                track_peak: Some(0.99),
                ..Default::default()
            },
        }
    }

    #[test]
    fn engine_events() {
        use host::PlaybackState as S;
        for (state, text) in [
            (S::Stopped, "stopped"),
            (S::Playing, "playing"),
            (S::Paused, "paused"),
        ] {
            assert_eq!(
                json(engine(EngineEvent::StateChanged { state })),
                format!(r#"{{"type":"state_changed","state":"{text}"}}"#)
            );
        }
        assert_eq!(
            json(engine(EngineEvent::TrackStarted {
                track_id: 1,
                info: Box::new(track())
            })),
            r#"{"type":"track_started","track_id":1,"path":"/music/a.flac","codec":"flac","sample_rate":44100,"channels":2,"total_frames":88200,"duration_ms":2000,"tags":{"title":"Song","artist":"Artist","album":null,"album_artist":null,"track_number":3,"disc_number":null,"date":null,"genre":null},"replaygain":{"track_gain_db":-6.5,"track_peak":0.99,"album_gain_db":null,"album_peak":null}}"#
        );
        let mut open_ended = track();
        open_ended.total_frames = None;
        open_ended.duration_ms = None;
        assert_eq!(
            json(engine(EngineEvent::TrackStarted {
                track_id: 2,
                info: Box::new(open_ended)
            })),
            r#"{"type":"track_started","track_id":2,"path":"/music/a.flac","codec":"flac","sample_rate":44100,"channels":2,"total_frames":null,"duration_ms":null,"tags":{"title":"Song","artist":"Artist","album":null,"album_artist":null,"track_number":3,"disc_number":null,"date":null,"genre":null},"replaygain":{"track_gain_db":-6.5,"track_peak":0.99,"album_gain_db":null,"album_peak":null}}"#
        );
        assert_eq!(
            json(engine(EngineEvent::Position {
                track_id: 1,
                position_ms: 250,
                duration_ms: Some(2_000)
            })),
            r#"{"type":"position","track_id":1,"position_ms":250,"duration_ms":2000}"#
        );
        assert_eq!(
            json(engine(EngineEvent::Position {
                track_id: 1,
                position_ms: 0,
                duration_ms: None
            })),
            r#"{"type":"position","track_id":1,"position_ms":0,"duration_ms":null}"#
        );
        assert_eq!(
            json(engine(EngineEvent::TrackEnded { track_id: 1 })),
            r#"{"type":"track_ended","track_id":1}"#
        );
        assert_eq!(
            json(engine(EngineEvent::RouteChanged {
                route: Some("wav:/tmp/out.wav".into())
            })),
            r#"{"type":"route_changed","route":"wav:/tmp/out.wav"}"#
        );
        assert_eq!(
            json(engine(EngineEvent::RouteChanged { route: None })),
            r#"{"type":"route_changed","route":null}"#
        );
        assert_eq!(
            json(engine(EngineEvent::Error {
                message: "cannot decode \"x\"".into(),
                track_id: Some(1)
            })),
            r#"{"type":"error","message":"cannot decode \"x\"","track_id":1}"#
        );
        assert_eq!(
            json(engine(EngineEvent::Error {
                message: "m".into(),
                track_id: None
            })),
            r#"{"type":"error","message":"m","track_id":null}"#
        );
        assert_eq!(
            json(engine(EngineEvent::OutputStarting {
                route: "plugin:asio@null".into()
            })),
            r#"{"type":"output_starting","route":"plugin:asio@null"}"#
        );
        assert_eq!(
            json(engine(EngineEvent::Underrun { count: 3 })),
            r#"{"type":"underrun","count":3}"#
        );
        assert_eq!(
            json(engine(EngineEvent::OutputLost {
                route: "device:alsa:hw:CARD=USB,DEV=0".into(),
                message: "output disconnected: device unplugged".into()
            })),
            r#"{"type":"output_lost","route":"device:alsa:hw:CARD=USB,DEV=0","message":"output disconnected: device unplugged"}"#
        );
        assert_eq!(
            json(engine(EngineEvent::OutputChanged {
                route: "device:alsa:default".into()
            })),
            r#"{"type":"output_changed","route":"device:alsa:default"}"#
        );
    }

    #[test]
    fn host_notices() {
        assert_eq!(
            json(notice(HostNotice::Lagged { dropped: 12 })),
            r#"{"type":"lagged","dropped":12}"#
        );
        assert_eq!(
            json(notice(HostNotice::ClientEvicted {
                client_id: 7,
                reason: "lease expired (no call for 30000 ms)".into()
            })),
            r#"{"type":"client_evicted","client_id":7,"reason":"lease expired (no call for 30000 ms)"}"#
        );
        assert_eq!(
            json(notice(HostNotice::PluginInstalled {
                plugin_id: "eq".into(),
                generation: Some(3)
            })),
            r#"{"type":"plugin_installed","plugin_id":"eq","generation":3}"#
        );
        assert_eq!(
            json(notice(HostNotice::PluginInstalled {
                plugin_id: "eq".into(),
                generation: None
            })),
            r#"{"type":"plugin_installed","plugin_id":"eq","generation":null}"#
        );
        assert_eq!(
            json(notice(HostNotice::PluginUninstalled {
                plugin_id: "eq".into()
            })),
            r#"{"type":"plugin_uninstalled","plugin_id":"eq"}"#
        );
        assert_eq!(
            json(notice(HostNotice::PluginsReloaded {
                loaded: vec!["a".into()],
                reloaded: vec!["b".into()],
                removed: vec![],
                failed: vec!["c".into()],
            })),
            r#"{"type":"plugins_reloaded","loaded":["a"],"reloaded":["b"],"removed":[],"failed":["c"]}"#
        );
        assert_eq!(
            json(notice(HostNotice::EngineRestarted {
                reason: "panic".into()
            })),
            r#"{"type":"engine_restarted","reason":"panic"}"#
        );
        assert_eq!(
            json(notice(HostNotice::Heartbeat)),
            r#"{"type":"heartbeat"}"#
        );
        assert_eq!(
            json(notice(HostNotice::PluginEvent {
                plugin_id: "test-plugins".into(),
                kind: "capture_open".into(),
                payload: serde_json::json!({"target": "/tmp/x", "n": 1}),
            })),
            r#"{"type":"plugin_event","plugin_id":"test-plugins","kind":"capture_open","payload":{"n":1,"target":"/tmp/x"}}"#
        );
    }

    #[test]
    fn player_status() {
        let idle = host::EngineStatus {
            state: host::PlaybackState::Stopped,
            track_id: None,
            track: None,
            position_ms: 0,
            volume: 1.0,
            route: None,
            output_spec: None,
            queued_next: None,
            frames_written: 0,
        };
        assert_eq!(
            to_json(&PlayerStatus::from(&idle)).unwrap(),
            r#"{"state":"stopped","track_id":null,"track":null,"position_ms":0,"volume":1.0,"route":null,"output_spec":null,"queued_next":null,"frames_written":0}"#
        );
        let playing = host::EngineStatus {
            state: host::PlaybackState::Playing,
            track_id: Some(1),
            track: Some(track()),
            position_ms: 250,
            volume: 0.5,
            route: Some("null".into()),
            output_spec: Some(stellatune_core::StreamSpec::new(48_000, 2)),
            queued_next: Some(2),
            frames_written: 4096,
        };
        assert_eq!(
            to_json(&PlayerStatus::from(&playing)).unwrap(),
            r#"{"state":"playing","track_id":1,"track":{"path":"/music/a.flac","codec":"flac","sample_rate":44100,"channels":2,"total_frames":88200,"duration_ms":2000,"tags":{"title":"Song","artist":"Artist","album":null,"album_artist":null,"track_number":3,"disc_number":null,"date":null,"genre":null},"replaygain":{"track_gain_db":-6.5,"track_peak":0.99,"album_gain_db":null,"album_peak":null}},"position_ms":250,"volume":0.5,"route":"null","output_spec":{"sample_rate":48000,"channels":2},"queued_next":2,"frames_written":4096}"#
        );
    }

    #[test]
    fn media_info() {
        let mut info = host::MediaInfo {
            path: PathBuf::from("/music/a.m4a"),
            codec: "aac".into(),
            sample_rate: Some(44_100),
            channels: Some(2),
            bits_per_sample: None,
            total_frames: Some(88_200),
            duration_ms: Some(2_000),
            tags: host::MediaTags {
                title: Some("Song \"1\"".into()),
                artist: Some("Artist".into()),
                album: Some("Album".into()),
                album_artist: None,
                track_number: Some(3),
                disc_number: Some(1),
                date: Some("2024-05-01".into()),
                genre: None,
            },
            replaygain: host::ReplayGain {
                track_gain_db: Some(-6.5),
                track_peak: Some(0.988),
                album_gain_db: None,
                album_peak: None,
            },
            cover: Some(host::CoverInfo {
                mime: "image/png".into(),
                bytes: 1234,
            }),
        };
        assert_eq!(
            to_json(&MediaInfo::from(&info)).unwrap(),
            r#"{"path":"/music/a.m4a","codec":"aac","sample_rate":44100,"channels":2,"bits_per_sample":null,"total_frames":88200,"duration_ms":2000,"tags":{"title":"Song \"1\"","artist":"Artist","album":"Album","album_artist":null,"track_number":3,"disc_number":1,"date":"2024-05-01","genre":null},"replaygain":{"track_gain_db":-6.5,"track_peak":0.988,"album_gain_db":null,"album_peak":null},"cover":{"mime":"image/png","bytes":1234}}"#
        );
        info.cover = None;
        info.tags = host::MediaTags::default();
        info.replaygain = host::ReplayGain::default();
        info.sample_rate = None;
        info.channels = None;
        info.bits_per_sample = Some(24);
        info.total_frames = None;
        info.duration_ms = None;
        assert_eq!(
            to_json(&MediaInfo::from(&info)).unwrap(),
            r#"{"path":"/music/a.m4a","codec":"aac","sample_rate":null,"channels":null,"bits_per_sample":24,"total_frames":null,"duration_ms":null,"tags":{"title":null,"artist":null,"album":null,"album_artist":null,"track_number":null,"disc_number":null,"date":null,"genre":null},"replaygain":{"track_gain_db":null,"track_peak":null,"album_gain_db":null,"album_peak":null},"cover":null}"#
        );
    }

    #[test]
    fn metrics() {
        let mut m = MetricsSnapshot {
            state: host::LifecycleState::Running,
            runtime_host_inits_total: 1,
            player_clients_active: 2,
            client_generation: 3,
            clients_evicted_total: 4,
            client_events_queued: 5,
            runtime_threads: 6,
            engine_restarts_total: 7,
            audio_underruns_total: 12,
            plugin_generations_active: 8,
            plugin_generations_draining: 9,
            plugin_shadow_copies: 10,
            plugin_helper_threads: 11,
            ..MetricsSnapshot::default()
        };
        assert_eq!(
            to_json(&Metrics::from(&m)).unwrap(),
            r#"{"state":"running","runtime_host_inits_total":1,"player_clients_active":2,"client_generation":3,"clients_evicted_total":4,"client_events_queued":5,"runtime_threads":6,"engine_restarts_total":7,"audio_underruns_total":12,"plugin_generations_active":8,"plugin_generations_draining":9,"plugin_shadow_copies":10,"plugin_helper_threads":11}"#
        );
        // Plugin counters pass through by their own names; one named like a runtime counter
        // cannot shadow it.
        m.plugin_reported.insert("asio_sidecar_running".into(), 1);
        m.plugin_reported
            .insert("asio_sidecar_spawns_total".into(), 3);
        m.plugin_reported.insert("ring_files".into(), -1);
        m.plugin_reported.insert("runtime_threads".into(), 99);
        // A plugin's underrun count is summed into the runtime's (by the host), not repeated.
        m.plugin_reported.insert("audio_underruns_total".into(), 4);
        assert_eq!(
            to_json(&Metrics::from(&m)).unwrap(),
            r#"{"state":"running","runtime_host_inits_total":1,"player_clients_active":2,"client_generation":3,"clients_evicted_total":4,"client_events_queued":5,"runtime_threads":6,"engine_restarts_total":7,"audio_underruns_total":12,"plugin_generations_active":8,"plugin_generations_draining":9,"plugin_shadow_copies":10,"plugin_helper_threads":11,"asio_sidecar_running":1,"asio_sidecar_spawns_total":3,"ring_files":-1}"#
        );
        use host::LifecycleState as L;
        for (state, text) in [
            (L::Uninit, "uninit"),
            (L::Running, "running"),
            (L::ShuttingDown, "shutting_down"),
            (L::Stopped, "stopped"),
        ] {
            let m = MetricsSnapshot {
                state,
                ..MetricsSnapshot::default()
            };
            let value = serde_json::to_value(Metrics::from(&m)).unwrap();
            assert_eq!(value["state"], text);
        }
        // RUNTIME_KEYS is exactly the runtime's own keys.
        let value = serde_json::to_value(Metrics::from(&MetricsSnapshot::default())).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = Metrics::RUNTIME_KEYS.to_vec();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn plugin_list_and_reload_report() {
        let info = host::PluginInfo {
            id: "test-plugins".into(),
            name: "Test plugins".into(),
            version: "0.1.0".into(),
            api_version: "1.0".into(),
            generation: Some(4),
            capabilities: vec![stellatune_plugin_host_capability()],
            load_error: None,
        };
        let broken = host::PluginInfo {
            id: "broken".into(),
            name: "Broken".into(),
            version: "1".into(),
            api_version: "9.0".into(),
            generation: None,
            capabilities: vec![],
            load_error: Some("ABI 9.0".into()),
        };
        let list: Vec<PluginInfo> = [info, broken].iter().map(PluginInfo::from).collect();
        assert_eq!(
            to_json(&list).unwrap(),
            r#"[{"id":"test-plugins","name":"Test plugins","version":"0.1.0","api_version":"1.0","generation":4,"capabilities":[{"kind":"dsp","type_id":"gain","display_name":"Gain (test)","default_config":"{\"gain\":1.0}"}],"load_error":null},{"id":"broken","name":"Broken","version":"1","api_version":"9.0","generation":null,"capabilities":[],"load_error":"ABI 9.0"}]"#
        );
        let report = host::ReloadReport {
            loaded: vec!["a".into()],
            reloaded: vec![],
            unchanged: vec!["b".into()],
            removed: vec![],
            failed: vec![("c".into(), "bad plugin.json".into())],
        };
        assert_eq!(
            to_json(&ReloadReport::from(&report)).unwrap(),
            r#"{"loaded":["a"],"reloaded":[],"unchanged":["b"],"removed":[],"failed":[["c","bad plugin.json"]]}"#
        );
    }

    fn stellatune_plugin_host_capability() -> stellatune_plugin_host::CapabilityInfo {
        stellatune_plugin_host::CapabilityInfo {
            kind: "dsp",
            type_id: "gain".into(),
            display_name: "Gain (test)".into(),
            default_config: r#"{"gain":1.0}"#.into(),
        }
    }

    #[test]
    fn config_is_parsed_with_every_key_and_refuses_unknown_ones() {
        let config = parse_config(
            r#"{"data_dir":"/d","plugin_dir":"/p","client_lease_ms":10,"log_filter":"warn","log_format":"json","log_max_files":3,"event_queue_capacity":4,"shutdown_timeout_ms":100}"#,
        )
        .unwrap();
        assert_eq!(
            config,
            HostConfig {
                data_dir: Some("/d".into()),
                plugin_dir: Some("/p".into()),
                client_lease_ms: Some(10),
                log_filter: Some("warn".into()),
                log_format: Some(host::LogFormat::Json),
                log_max_files: Some(3),
                event_queue_capacity: Some(4),
                shutdown_timeout_ms: Some(100),
                replaygain: None,
                fault_injection: None,
            }
        );
        assert_eq!(parse_config("{}").unwrap(), HostConfig::default());
        let text = parse_config(r#"{"log_format":"text"}"#).unwrap();
        assert_eq!(text.log_format, Some(host::LogFormat::Text));

        let error = |json: &str| {
            let e = parse_config(json).unwrap_err();
            assert_eq!(e.code, Status::InvalidArgument, "{json}");
            e.message
        };
        let m = error(r#"{"log_filter":"warn","client_lease_ms":"soon"}"#);
        assert!(m.contains("config: `client_lease_ms`: invalid type"), "{m}");
        let m = error(r#"{"data_dir":"/d","event_queue_capacity":-1}"#);
        assert!(m.contains("`event_queue_capacity`"), "{m}");
        let m = error(r#"{"client_lease":5}"#);
        assert!(m.contains("unknown field `client_lease`"), "{m}");
        let m = error(r#"{"log_format":"xml"}"#);
        assert!(m.contains("xml"), "{m}");
        let m = error(r#"{"log_max_files":-1}"#);
        assert!(m.contains("`log_max_files`"), "{m}");
        let m = error(r#"{"fault_injection":{"leak":true}}"#);
        assert!(
            m.contains("`fault_injection.leak`") || m.contains("leak"),
            "{m}"
        );
        assert_eq!(
            error(r#"{"client_lease_ms":0}"#),
            "invalid argument: config: client_lease_ms must be greater than 0"
        );
        assert!(error("{not json").starts_with("invalid argument: config: "));
        assert!(error("{} 5").contains("trailing"));
    }

    #[test]
    fn replaygain_is_a_mode_or_the_whole_object_in_the_config_and_the_command() {
        use host::{ReplayGainMode as M, ReplayGainSettings as S};
        let config = |json: &str| parse_config(json).map(|c| c.replaygain);
        assert_eq!(
            config(r#"{"replaygain":"album"}"#).unwrap(),
            Some(S {
                mode: M::Album,
                ..S::default()
            })
        );
        assert_eq!(
            config(r#"{"replaygain":{"mode":"track","preamp_db":-3.5,"prevent_clipping":false,"fallback_db":-6}}"#)
                .unwrap(),
            Some(S {
                mode: M::Track,
                preamp_db: -3.5,
                prevent_clipping: false,
                fallback_db: -6.0,
            })
        );
        assert_eq!(config("{}").unwrap(), None);
        let m = config(r#"{"replaygain":"loud"}"#).unwrap_err().message;
        assert!(m.contains("`replaygain`"), "{m}");
        let m = config(r#"{"replaygain":{"mode":"track","preamp_db":30}}"#)
            .unwrap_err()
            .message;
        assert!(m.contains("preamp_db"), "{m}");

        assert_eq!(
            parse_replaygain(r#"{"mode":"track"}"#).unwrap(),
            S {
                mode: M::Track,
                preamp_db: 0.0,
                prevent_clipping: true,
                fallback_db: 0.0,
            }
        );
        assert_eq!(
            parse_replaygain(r#"{"mode":"off","preamp_db":2}"#)
                .unwrap()
                .mode,
            M::Off
        );
        let error = |json: &str| {
            let e = parse_replaygain(json).unwrap_err();
            assert_eq!(e.code, Status::InvalidArgument, "{json}");
            e.message
        };
        assert!(error("{}").contains("mode"));
        assert!(error(r#"{"mode":"loud"}"#).contains("loud"));
        assert!(error(r#"{"mode":"track","gain":1}"#).contains("unknown field `gain`"));
        assert!(error(r#"{"mode":"track","preamp_db":"x"}"#).contains("`preamp_db`"));
        assert!(error(r#"{"mode":"track","fallback_db":-25}"#).contains("fallback_db"));
        assert!(error("track").starts_with("invalid argument: replaygain: "));
    }

    #[test]
    fn fault_injection_only_in_builds_that_allow_it() {
        let parsed = parse_config(r#"{"fault_injection":{"skip_eviction":true}}"#);
        // This crate's feature turns on the host's; the host's alone (another crate's tests
        // in the same build) is enough for the host to accept the key.
        match parsed {
            Ok(config) => assert_eq!(
                config.fault_injection,
                Some(host::FaultInjection {
                    leak_thread_per_attach: false,
                    skip_eviction: true,
                })
            ),
            Err(e) if !cfg!(feature = "fault-injection") => {
                assert_eq!(e.code, Status::InvalidArgument);
                assert!(e.message.contains("fault-injection"), "{}", e.message);
            }
            Err(e) => panic!("a fault-injection build refused the key: {}", e.message),
        }
    }

    #[test]
    fn routes_parse_into_the_host_routes() {
        let route = |json: &str| parse_route(json).unwrap();
        assert_eq!(route(r#"{"kind":"null"}"#), host::BuiltinRoute::Null.into());
        assert_eq!(
            route(r#"{"kind":"device"}"#),
            host::BuiltinRoute::Device { device_id: None }.into()
        );
        assert_eq!(
            route(r#"{"kind":"device","device_id":"alsa:hw:CARD=USB,DEV=0"}"#),
            host::BuiltinRoute::Device {
                device_id: Some("alsa:hw:CARD=USB,DEV=0".into())
            }
            .into()
        );
        assert_eq!(
            route(r#"{"kind":"wav","path":"/tmp/x.wav"}"#),
            host::BuiltinRoute::Wav {
                path: "/tmp/x.wav".into(),
                paced: true,
                channels: None,
                sample_rate: None,
            }
            .into()
        );
        assert_eq!(
            route(r#"{"kind":"wav","path":"/tmp/x.wav","paced":false}"#),
            host::BuiltinRoute::Wav {
                path: "/tmp/x.wav".into(),
                paced: false,
                channels: None,
                sample_rate: None,
            }
            .into()
        );
        assert_eq!(
            route(r#"{"kind":"wav","path":"/tmp/x.wav","channels":2,"sample_rate":44100}"#),
            host::BuiltinRoute::Wav {
                path: "/tmp/x.wav".into(),
                paced: true,
                channels: Some(2),
                sample_rate: Some(44_100),
            }
            .into()
        );
        assert_eq!(
            route(r#"{"kind":"plugin","plugin_id":"asio"}"#),
            OutputRoute::Plugin(PluginRoute::new("asio", None, ""))
        );
        assert_eq!(
            route(
                r#"{"kind":"plugin","plugin_id":"asio","sink":"asio","target":"null","config":{"buffer":256}}"#
            ),
            OutputRoute::Plugin(
                PluginRoute::new("asio", Some("asio"), "null")
                    .with_config(serde_json::json!({"buffer": 256}))
            )
        );

        let error = |json: &str| {
            let e = parse_route(json).unwrap_err();
            assert_eq!(e.code, Status::InvalidArgument, "{json}");
            e.message
        };
        assert!(error(r#"{"kind":"wav","path":5}"#).contains("route: `path`: "));
        assert!(
            error(r#"{"kind":"wav","path":"/x.wav","paced":"yes"}"#).contains("route: `paced`: ")
        );
        assert!(
            error(r#"{"kind":"wav","path":"/x.wav","channels":-1}"#)
                .contains("route: `channels`: ")
        );
        assert!(
            error(r#"{"kind":"wav","path":"/x.wav","sample_rate":"44100"}"#)
                .contains("route: `sample_rate`: ")
        );
        let m = error(r#"{"kind":"speaker"}"#);
        assert!(
            m.contains("unknown kind `speaker`") && !m.contains("`kind`:"),
            "{m}"
        );
        assert!(error(r#"{"path":"x"}"#).contains("missing string field `kind`"));
        assert!(error(r#"{"kind":"wav"}"#).contains("path"));
        assert!(error(r#"{"kind":"null","path":"x"}"#).contains("unknown field `path`"));
        assert!(error(r#"{"kind":"device","device_id":5}"#).contains("route: `device_id`: "));
        assert!(error(r#"{"kind":"device","device":"x"}"#).contains("unknown field `device`"));
        assert!(error(r#"{"kind":"plugin"}"#).contains("plugin_id"));
        assert!(error(r#"{"kind":"plugin","plugin_id":"a","volume":1}"#).contains("volume"));
        assert!(error("[").starts_with("invalid argument: route: "));
    }

    #[test]
    fn every_route_written_reads_back_as_the_same_route() {
        let routes: Vec<OutputRoute> = vec![
            host::BuiltinRoute::Device { device_id: None }.into(),
            host::BuiltinRoute::Device {
                device_id: Some("alsa:hw:CARD=USB,DEV=0".into()),
            }
            .into(),
            host::BuiltinRoute::Null.into(),
            host::BuiltinRoute::Wav {
                path: "/tmp/a b.wav".into(),
                paced: false,
                channels: None,
                sample_rate: None,
            }
            .into(),
            host::BuiltinRoute::Wav {
                path: "/tmp/fixed.wav".into(),
                paced: true,
                channels: Some(2),
                sample_rate: Some(44_100),
            }
            .into(),
            OutputRoute::Plugin(PluginRoute::new("asio", Some("asio"), "cpal:Speakers")),
            OutputRoute::Plugin(
                PluginRoute::new("p", None, "").with_config(serde_json::json!({"n": [1, 2]})),
            ),
        ];
        for route in routes {
            let text = route_json(&route).to_string();
            assert_eq!(parse_route(&text).unwrap(), route, "{text}");
        }
        let device = host::OutputDevice {
            id: "alsa:default".into(),
            name: "Default".into(),
            backend: "alsa".into(),
            is_default: true,
            route: host::BuiltinRoute::Device {
                device_id: Some("alsa:default".into()),
            }
            .into(),
        };
        assert_eq!(
            to_json(&OutputDevice::from(&device)).unwrap(),
            r#"{"id":"alsa:default","name":"Default","backend":"alsa","is_default":true,"route":{"device_id":"alsa:default","kind":"device"}}"#
        );
    }

    #[test]
    fn dsp_chains_parse_into_the_host_specs() {
        assert_eq!(parse_dsp_chain("[]").unwrap(), Vec::<DspSpec>::new());
        assert_eq!(
            parse_dsp_chain(
                r#"[{"plugin_id":"eq","type_id":"gain","config":{"gain":0.5}},{"plugin_id":"x"}]"#
            )
            .unwrap(),
            vec![
                DspSpec {
                    plugin_id: "eq".into(),
                    type_id: Some("gain".into()),
                    config: Some(serde_json::json!({"gain": 0.5})),
                },
                DspSpec {
                    plugin_id: "x".into(),
                    type_id: None,
                    config: None,
                },
            ]
        );
        let e = parse_dsp_chain(r#"[{"plugin":"x"}]"#).unwrap_err();
        assert_eq!(e.code, Status::InvalidArgument);
        assert!(
            e.message
                .contains("dsp chain: `[0].plugin`: unknown field `plugin`"),
            "{}",
            e.message
        );
        let e = parse_dsp_chain(r#"{"plugin_id":"x"}"#).unwrap_err();
        assert!(
            e.message.starts_with("invalid argument: dsp chain: "),
            "{}",
            e.message
        );
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests for every document a front end hands the C ABI: config, route and DSP
    //! chain. Arbitrary strings and arbitrary JSON values never panic a parser, and what it
    //! refuses is `INVALID_ARGUMENT` with a message that names the document (and the key,
    //! when one key is at fault); valid documents parse to exactly the values they state.

    use std::path::PathBuf;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Every key of the three documents; anything else is unknown to all of them.
    const KNOWN_KEYS: [&str; 19] = [
        "kind",
        "path",
        "paced",
        "plugin_id",
        "sink",
        "target",
        "config",
        "type_id",
        "data_dir",
        "plugin_dir",
        "client_lease_ms",
        "log_filter",
        "log_format",
        "log_max_files",
        "event_queue_capacity",
        "shutdown_timeout_ms",
        "fault_injection",
        "leak_thread_per_attach",
        "skip_eviction",
    ];

    /// The config keys; none takes a boolean or a negative number.
    const CONFIG_KEYS: [&str; 9] = [
        "data_dir",
        "plugin_dir",
        "client_lease_ms",
        "log_filter",
        "log_format",
        "log_max_files",
        "event_queue_capacity",
        "shutdown_timeout_ms",
        "fault_injection",
    ];

    /// Any JSON value, nested a few levels, with keys that often hit the real field names.
    fn any_json() -> impl Strategy<Value = Value> {
        stellatune_test_support::json::any_json(
            &KNOWN_KEYS,
            &["null", "wav", "plugin", "device", "json", "info"],
        )
    }

    /// A refusal a caller can act on: the argument status and the document's name.
    fn assert_clear<T: std::fmt::Debug>(parsed: FfiResult<T>, what: &str) {
        if let Err(e) = parsed {
            assert_eq!(e.code, Status::InvalidArgument, "{}", e.message);
            assert!(
                e.message
                    .starts_with(&format!("invalid argument: {what}: ")),
                "{}",
                e.message
            );
        }
    }

    /// Every parser the C ABI has, on one input: none may panic, every refusal is clear.
    fn parse_everything(text: &str) {
        assert_clear(parse_config(text), "config");
        assert_clear(parse_route(text), "route");
        assert_clear(parse_dsp_chain(text), "dsp chain");
    }

    fn message<T: std::fmt::Debug>(parsed: FfiResult<T>) -> String {
        let e = parsed.unwrap_err();
        assert_eq!(e.code, Status::InvalidArgument, "{}", e.message);
        e.message
    }

    fn plugin_id() -> impl Strategy<Value = String> {
        "[a-z0-9_-][a-z0-9_.-]{0,63}"
    }

    fn small_config() -> impl Strategy<Value = Option<Value>> {
        prop::option::of(prop_oneof![
            Just(json!({})),
            any::<u32>().prop_map(|g| json!({ "gain": g })),
            ".{0,8}".prop_map(|s| json!({ "name": s, "nested": [1, 2, { "x": null }] })),
        ])
    }

    /// A value of the wrong type for every key that holds a string, a count or an object.
    fn wrong_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            (i64::MIN..0).prop_map(Value::from),
        ]
    }

    proptest! {
        // No regression files are written next to the sources: a failure prints its minimal
        // input.
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_strings_never_panic_a_parser(text in ".{0,256}") {
            parse_everything(&text);
        }

        #[test]
        fn arbitrary_bytes_as_lossy_text_never_panic_a_parser(
            bytes in prop::collection::vec(any::<u8>(), 0..256)
        ) {
            parse_everything(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn arbitrary_json_values_never_panic_a_parser(value in any_json()) {
            parse_everything(&value.to_string());
            // As an array element too (the DSP chain's shape), and as a route with a kind.
            parse_everything(&Value::Array(vec![value.clone()]).to_string());
            if let Value::Object(mut map) = value {
                for kind in ["null", "wav", "plugin", "device"] {
                    map.insert("kind".into(), Value::String(kind.into()));
                    parse_everything(&Value::Object(map.clone()).to_string());
                }
            }
        }

        #[test]
        fn unknown_keys_are_refused_by_name(
            key in "[a-z_]{1,16}"
                .prop_filter("a known key", |k| !KNOWN_KEYS.contains(&k.as_str())),
            value in any_json(),
        ) {
            let key = key.as_str();
            let unknown = format!("unknown field `{key}`");
            let config = json!({ "log_filter": "warn", key: value });
            let m = message(parse_config(&config.to_string()));
            prop_assert!(m.starts_with("invalid argument: config: `"), "{}", m);
            prop_assert!(m.contains(&unknown), "{}", m);
            let config = json!({ "fault_injection": { key: value } });
            let m = message(parse_config(&config.to_string()));
            let named = format!("config: `fault_injection.{key}`: {unknown}");
            prop_assert!(m.contains(&named), "{}", m);
            for mut route in [
                json!({ "kind": "null" }),
                json!({ "kind": "device" }),
                json!({ "kind": "wav", "path": "/tmp/x.wav" }),
                json!({ "kind": "plugin", "plugin_id": "p" }),
            ] {
                route[key] = value.clone();
                let m = message(parse_route(&route.to_string()));
                prop_assert!(m.starts_with("invalid argument: route: "), "{}", m);
                prop_assert!(m.contains(&unknown), "{}", m);
            }
            let chain = json!([{ "plugin_id": "p" }, { "plugin_id": "q", key: value }]);
            let m = message(parse_dsp_chain(&chain.to_string()));
            prop_assert!(m.contains(&format!("dsp chain: `[1].{key}`: {unknown}")), "{}", m);
        }

        #[test]
        fn values_of_the_wrong_type_are_refused_naming_the_key(
            config_key in prop::sample::select(CONFIG_KEYS.to_vec()),
            route_key in prop::sample::select(vec!["plugin_id", "sink", "target"]),
            stage_key in prop::sample::select(vec!["plugin_id", "type_id"]),
            value in wrong_value(),
        ) {
            let m = message(parse_config(&json!({ config_key: value }).to_string()));
            let named = format!("invalid argument: config: `{config_key}`: ");
            prop_assert!(m.starts_with(&named), "{}", m);
            let mut route = json!({ "kind": "plugin", "plugin_id": "p" });
            route[route_key] = value.clone();
            let m = message(parse_route(&route.to_string()));
            let named = format!("invalid argument: route: `{route_key}`: ");
            prop_assert!(m.starts_with(&named), "{}", m);
            let m = message(parse_route(&json!({ "kind": "wav", "path": value }).to_string()));
            prop_assert!(m.starts_with("invalid argument: route: `path`: "), "{}", m);
            let mut stage = json!({ "plugin_id": "p" });
            stage[stage_key] = value.clone();
            let m = message(parse_dsp_chain(&json!([stage]).to_string()));
            let named = format!("invalid argument: dsp chain: `[0].{stage_key}`: ");
            prop_assert!(m.starts_with(&named), "{}", m);
        }

        #[test]
        fn valid_builtin_routes_round_trip(
            path in "[^\u{0}]{1,64}",
            paced in prop::option::of(any::<bool>()),
        ) {
            let mut route = json!({ "kind": "wav", "path": path });
            if let Some(p) = paced {
                route["paced"] = Value::Bool(p);
            }
            prop_assert_eq!(
                parse_route(&route.to_string()).unwrap(),
                OutputRoute::Builtin(host::BuiltinRoute::Wav {
                    path: PathBuf::from(&path),
                    paced: paced.unwrap_or(true),
                    channels: None,
                    sample_rate: None,
                })
            );
            prop_assert_eq!(
                parse_route(r#"{"kind":"null"}"#).unwrap(),
                OutputRoute::Builtin(host::BuiltinRoute::Null)
            );
        }

        #[test]
        fn valid_plugin_routes_round_trip(
            id in plugin_id(),
            sink in prop::option::of("[a-z]{1,12}"),
            target in prop::option::of(".{0,32}"),
            config in small_config(),
        ) {
            let mut route = json!({ "kind": "plugin", "plugin_id": id });
            if let Some(s) = &sink {
                route["sink"] = json!(s);
            }
            if let Some(t) = &target {
                route["target"] = json!(t);
            }
            if let Some(c) = &config {
                route["config"] = c.clone();
            }
            let mut expected =
                PluginRoute::new(&id, sink.as_deref(), target.as_deref().unwrap_or(""));
            if let Some(c) = config {
                expected = expected.with_config(c);
            }
            prop_assert_eq!(
                parse_route(&route.to_string()).unwrap(),
                OutputRoute::Plugin(expected)
            );
        }

        #[test]
        fn valid_configs_round_trip(
            data_dir in prop::option::of("[a-zA-Z0-9/_.-]{1,40}"),
            plugin_dir in prop::option::of("[a-zA-Z0-9/_.-]{1,40}"),
            client_lease_ms in prop::option::of(1u64..10_000_000),
            log_filter in prop::option::of(prop_oneof![
                Just("warn".to_owned()),
                Just("info".to_owned()),
                Just("stellatune=debug".to_owned()),
                Just("error,stellatune_audio=trace".to_owned()),
            ]),
            json_logs in prop::option::of(any::<bool>()),
            log_max_files in prop::option::of(0usize..100),
            event_queue_capacity in prop::option::of(1usize..100_000),
            shutdown_timeout_ms in prop::option::of(any::<u64>()),
        ) {
            let expected = HostConfig {
                data_dir: data_dir.map(PathBuf::from),
                plugin_dir: plugin_dir.map(PathBuf::from),
                client_lease_ms,
                log_filter,
                log_format: json_logs
                    .map(|j| if j { host::LogFormat::Json } else { host::LogFormat::Text }),
                log_max_files,
                event_queue_capacity,
                shutdown_timeout_ms,
                replaygain: None,
                fault_injection: None,
            };
            let mut text = serde_json::Map::new();
            if let Some(d) = &expected.data_dir {
                text.insert("data_dir".into(), json!(d));
            }
            if let Some(d) = &expected.plugin_dir {
                text.insert("plugin_dir".into(), json!(d));
            }
            if let Some(v) = expected.client_lease_ms {
                text.insert("client_lease_ms".into(), json!(v));
            }
            if let Some(v) = &expected.log_filter {
                text.insert("log_filter".into(), json!(v));
            }
            if let Some(j) = json_logs {
                text.insert("log_format".into(), json!(if j { "json" } else { "text" }));
            }
            if let Some(v) = expected.log_max_files {
                text.insert("log_max_files".into(), json!(v));
            }
            if let Some(v) = expected.event_queue_capacity {
                text.insert("event_queue_capacity".into(), json!(v));
            }
            if let Some(v) = expected.shutdown_timeout_ms {
                text.insert("shutdown_timeout_ms".into(), json!(v));
            }
            let parsed = parse_config(&Value::Object(text).to_string()).unwrap();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn valid_dsp_chains_round_trip(
            stages in prop::collection::vec(
                (plugin_id(), prop::option::of("[a-z_]{1,12}"), small_config()),
                0..5,
            )
        ) {
            let text = Value::Array(
                stages
                    .iter()
                    .map(|(id, type_id, config)| {
                        let mut stage = json!({ "plugin_id": id });
                        if let Some(t) = type_id {
                            stage["type_id"] = json!(t);
                        }
                        if let Some(c) = config {
                            stage["config"] = c.clone();
                        }
                        stage
                    })
                    .collect(),
            )
            .to_string();
            let expected: Vec<DspSpec> = stages
                .into_iter()
                .map(|(plugin_id, type_id, config)| DspSpec { plugin_id, type_id, config })
                .collect();
            prop_assert_eq!(parse_dsp_chain(&text).unwrap(), expected);
        }
    }
}
