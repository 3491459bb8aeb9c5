//! The `asio` output sink: a stream on a leased sidecar, fed through a ring file.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use stellatune_plugin_sdk::{
    OutputSink, OutputSinkType, PluginError, Result, SinkStatus, Spec, Target, emit_event, log,
    log_level, metric_add,
};
use stellatune_sidecar_proto::{Request, Response, RingWriter, reap_stale_rings};

use crate::manager::{self, Lease};
use crate::sidecar::Signature;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
pub const RING_FILES_METRIC: &str = "ring_files";

static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);
/// Device lists by signature: a query goes through a leased sidecar once, then comes from here.
static DEVICE_CACHE: Mutex<Vec<(Signature, Vec<Target>)>> = Mutex::new(Vec::new());
static REAPED: std::sync::Once = std::sync::Once::new();

/// Frees the module's heap-held statics before the library unloads: a static's destructor
/// never runs at `dlclose`, so whatever it holds would leak once per generation.
pub fn release_statics() {
    std::mem::take(
        &mut *DEVICE_CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsioConfig {
    /// How much audio the ring holds, in milliseconds.
    pub buffer_ms: u32,
    /// The sidecar executable; default: `stellatune-sidecar-host` in the plugin's directory.
    pub sidecar_path: Option<PathBuf>,
    pub sidecar_args: Vec<String>,
}

impl Default for AsioConfig {
    fn default() -> Self {
        Self {
            buffer_ms: 200,
            sidecar_path: None,
            sidecar_args: Vec::new(),
        }
    }
}

impl AsioConfig {
    fn parse(json: &str) -> Result<Self> {
        let config: AsioConfig = serde_json::from_str(json)
            .map_err(|e| PluginError::invalid_argument(format!("asio config: {e}")))?;
        if !(10..=5000).contains(&config.buffer_ms) {
            return Err(PluginError::invalid_argument(
                "asio config: buffer_ms must be between 10 and 5000",
            ));
        }
        Ok(config)
    }

    fn signature(&self, target: &str) -> Result<Signature> {
        let executable = match &self.sidecar_path {
            Some(p) => p.clone(),
            None => stellatune_plugin_sdk::plugin_dir()
                .ok_or_else(|| PluginError::bad_state("the host gave no plugin directory"))?
                .join(sidecar_file_name()),
        };
        // Headless devices and system devices live in different backends of the sidecar.
        let backend = if target == "null" || target.starts_with("wav:") || target.is_empty() {
            "builtin"
        } else {
            "system"
        };
        Ok(Signature {
            executable,
            args: self.sidecar_args.clone(),
            backend: backend.into(),
        })
    }
}

fn sidecar_file_name() -> &'static str {
    if cfg!(windows) {
        "stellatune-sidecar-host.exe"
    } else {
        "stellatune-sidecar-host"
    }
}

fn ring_dir() -> Result<PathBuf> {
    let dir = stellatune_plugin_sdk::data_dir()
        .ok_or_else(|| PluginError::bad_state("the host gave no data directory"))?
        .join(".asio");
    std::fs::create_dir_all(&dir)?;
    // Ring files of processes that died (host crashes) go once per load of the plugin.
    REAPED.call_once(|| {
        let removed = reap_stale_rings(&dir);
        if removed > 0 {
            log(
                log_level::INFO,
                &format!("removed {removed} stale ring file(s)"),
            );
        }
    });
    Ok(dir)
}

pub struct AsioSinkType;

impl OutputSinkType for AsioSinkType {
    const TYPE_ID: &'static str = "asio";
    const DISPLAY_NAME: &'static str = "ASIO (sidecar)";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","properties":{"buffer_ms":{"type":"integer","minimum":10,"maximum":5000},"sidecar_path":{"type":"string"},"sidecar_args":{"type":"array","items":{"type":"string"}}},"additionalProperties":false}"#;
    const DEFAULT_CONFIG: &'static str = r#"{"buffer_ms":200}"#;
    type Instance = AsioSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>> {
        let config = AsioConfig::parse(config_json)?;
        let mut targets = Vec::new();
        for backend_probe in ["null", "system"] {
            let signature = config.signature(backend_probe)?;
            if let Some((_, cached)) = DEVICE_CACHE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|(s, _)| *s == signature)
            {
                targets.extend(cached.iter().cloned());
                continue;
            }
            let lease = manager::acquire(&signature)?;
            let devices = match lease
                .sidecar()
                .request(&Request::ListDevices, REQUEST_TIMEOUT)?
            {
                Response::Devices { devices } => devices
                    .into_iter()
                    .map(|d| Target::new(d.id, d.name))
                    .collect::<Vec<_>>(),
                other => {
                    return Err(PluginError::error(format!(
                        "unexpected answer to list devices: {other:?}"
                    )));
                }
            };
            drop(lease);
            DEVICE_CACHE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((signature, devices.clone()));
            targets.extend(devices);
        }
        targets.dedup_by(|a, b| a.id == b.id);
        Ok(targets)
    }

    fn create(config_json: &str, target: &str) -> Result<AsioSink> {
        let config = AsioConfig::parse(config_json)?;
        let device = if target.is_empty() { "null" } else { target }.to_owned();
        let signature = config.signature(&device)?;
        // Prepares the ring directory now (and reaps rings of dead hosts once per load), so
        // an unusable data directory fails the route, not the first write.
        ring_dir()?;
        Ok(AsioSink {
            device,
            config,
            signature,
            spec: None,
            stream: None,
        })
    }
}

/// A ring that stays full while the sidecar's heartbeat stands still this long means the
/// sidecar hangs.
const HANG_TIMEOUT: Duration = Duration::from_millis(500);

struct Stream {
    id: u64,
    ring: RingWriter,
    heartbeat: u64,
    heartbeat_seen: Instant,
    /// Dropped after the ring, so the sidecar unmaps before its lease can stop it.
    lease: Lease,
}

pub struct AsioSink {
    device: String,
    config: AsioConfig,
    signature: Signature,
    spec: Option<Spec>,
    stream: Option<Stream>,
}

impl AsioSink {
    fn start_stream(&mut self, spec: Spec) -> Result<()> {
        let lease = manager::acquire(&self.signature)?;
        let id = NEXT_STREAM.fetch_add(1, Ordering::SeqCst);
        // Never a name an older ring may still hold open (see `unique_ring_file_name`).
        let path = ring_dir()?.join(stellatune_sidecar_proto::unique_ring_file_name());
        let capacity =
            (u64::from(spec.sample_rate) * u64::from(self.config.buffer_ms) / 1000).max(256) as u32;
        let ring = RingWriter::create(&path, spec.sample_rate, spec.channels, capacity)
            .map_err(|e| PluginError::io(format!("ring {}: {e}", path.display())))?;
        metric_add(RING_FILES_METRIC, 1);
        let stream = Stream {
            id,
            heartbeat: ring.reader_heartbeat(),
            heartbeat_seen: Instant::now(),
            ring,
            lease,
        };
        let opened = stream
            .lease
            .sidecar()
            .request(
                &Request::OpenStream {
                    stream_id: id,
                    device: self.device.clone(),
                    ring_path: path,
                    sample_rate: spec.sample_rate,
                    channels: spec.channels,
                    // The sidecar reads a quarter of the ring per period.
                    buffer_frames: (capacity / 4).max(64),
                },
                REQUEST_TIMEOUT,
            )
            .and_then(|_| {
                stream
                    .lease
                    .sidecar()
                    .request(&Request::Start { stream_id: id }, REQUEST_TIMEOUT)
            });
        match opened {
            Ok(_) => {
                self.stream = Some(stream);
                Ok(())
            }
            Err(e) => {
                drop(stream);
                metric_add(RING_FILES_METRIC, -1);
                Err(e)
            }
        }
    }

    fn end_stream(&mut self) {
        if let Some(stream) = self.stream.take() {
            Self::finish(stream);
        }
    }

    fn finish(stream: Stream) {
        let sidecar = stream.lease.sidecar().clone();
        if sidecar.is_alive() {
            let _ = sidecar.request(
                &Request::Stop {
                    stream_id: stream.id,
                },
                REQUEST_TIMEOUT,
            );
            let _ = sidecar.request(
                &Request::CloseStream {
                    stream_id: stream.id,
                },
                REQUEST_TIMEOUT,
            );
        }
        let Stream { ring, lease, .. } = stream;
        drop(ring);
        metric_add(RING_FILES_METRIC, -1);
        drop(lease);
    }
}

impl OutputSink for AsioSink {
    fn open(&mut self, spec: Spec) -> Result<()> {
        self.end_stream();
        self.start_stream(spec)?;
        self.spec = Some(spec);
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize> {
        let Some(spec) = self.spec else {
            return Err(PluginError::bad_state("write before open"));
        };
        let lost = self
            .stream
            .as_ref()
            .is_none_or(|s| !s.lease.sidecar().is_alive());
        if lost {
            // The sidecar died or hung: one glitch, then a fresh sidecar and stream.
            let previous = self.stream.take();
            let pid = previous.as_ref().map(|s| s.lease.sidecar().pid());
            // The new lease is taken while the old one is still held, so the manager finds
            // the dead sidecar in service and retires it as replaced (with its fault), not as
            // an ordinary release.
            let started = self.start_stream(spec);
            if let Some(previous) = previous {
                Self::finish(previous);
            }
            started?;
            emit_event(
                "sidecar_recovered",
                &serde_json::json!({ "previous_pid": pid, "device": self.device }).to_string(),
            );
        }
        let stream = self.stream.as_mut().expect("stream started above");
        let taken = stream.ring.write(interleaved);
        let heartbeat = stream.ring.reader_heartbeat();
        if heartbeat != stream.heartbeat {
            stream.heartbeat = heartbeat;
            stream.heartbeat_seen = Instant::now();
        } else if taken == 0 && stream.heartbeat_seen.elapsed() > HANG_TIMEOUT {
            let sidecar = stream.lease.sidecar().clone();
            log(
                log_level::WARN,
                &format!("asio sidecar {} stopped reading; killing it", sidecar.pid()),
            );
            emit_event(
                "sidecar_hung",
                &serde_json::json!({ "pid": sidecar.pid() }).to_string(),
            );
            sidecar.kill_hung();
        }
        Ok(taken)
    }

    fn status(&self) -> SinkStatus {
        SinkStatus {
            queued_frames: self
                .stream
                .as_ref()
                .map_or(0, |s| s.ring.queued_frames() as u64),
            underruns: 0,
        }
    }

    fn reset(&mut self) -> Result<()> {
        if let Some(stream) = self.stream.as_mut() {
            stream.ring.reset();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.end_stream();
        self.spec = None;
        Ok(())
    }
}

impl Drop for AsioSink {
    fn drop(&mut self) {
        self.end_stream();
    }
}
