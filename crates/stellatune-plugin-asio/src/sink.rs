//! The `asio` output sink: a stream on a leased sidecar, fed through a ring file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stellatune_plugin_sdk::{
    Error, OutputSink, OutputSinkType, Result, SinkSchedule, SinkStatus, Spec, Target, emit_event,
    log, log_level, metric_add, rt,
};
use stellatune_sidecar_proto::{RingStream, reap_stale_rings, this_copy_ring_files};

use crate::config::AsioConfig;
use crate::manager::{self, Lease};
use crate::sidecar::{Sidecar, Signature, client_error};
use crate::targets::TargetCache;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
pub const RING_FILES_METRIC: &str = "ring_files";
/// The generic counter of a sink running dry while playing, as every output reports it.
pub const UNDERRUNS_METRIC: &str = "audio_underruns_total";

/// Device lists by signature, reused for a couple of seconds only (`targets::TARGETS_TTL`), so a
/// device plugged in later is listed.
static DEVICE_CACHE: Mutex<TargetCache> = Mutex::new(TargetCache::new());
static REAPED: std::sync::Once = std::sync::Once::new();
/// The `ring_files` this generation reported last (the host sums every generation's reports).
static RING_FILES_REPORTED: AtomicI64 = AtomicI64::new(0);

/// Frees the module's heap-held statics before the library unloads: a static's destructor
/// never runs at `dlclose`, so whatever it holds would leak once per generation.
pub fn release_statics() {
    // Every sidecar has stopped, so every ring of this generation should be gone; one the
    // system has not deleted yet is named in the log, and this generation's share of the
    // gauge is withdrawn either way: no later report of this library copy could correct it.
    report_ring_files();
    let left = RING_FILES_REPORTED.swap(0, Ordering::SeqCst);
    if left != 0 {
        log(
            log_level::WARN,
            &format!("{left} ring file(s) of this generation still exist at unload"),
        );
        metric_add(RING_FILES_METRIC, -left);
    }
    DEVICE_CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

fn ring_dir() -> Result<PathBuf> {
    let dir = stellatune_plugin_sdk::data_dir()
        .ok_or_else(|| Error::bad_state("the host gave no data directory"))?
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

/// Reports how many of this generation's ring files exist now. The gauge follows the files,
/// not the opens and closes: a ring whose removal failed, or that the system deletes only when
/// the sidecar's handle closes (Windows), still counts until it is really gone. Lock-free: two
/// sinks reporting at once leave the gauge at one of their counts, and the next report makes
/// it exact again.
pub(crate) fn report_ring_files() {
    let Some(dir) = stellatune_plugin_sdk::data_dir().map(|d| d.join(".asio")) else {
        return;
    };
    let now = this_copy_ring_files(&dir) as i64;
    let before = RING_FILES_REPORTED.swap(now, Ordering::SeqCst);
    if now != before {
        metric_add(RING_FILES_METRIC, now - before);
    }
}

pub struct AsioSinkType;

impl OutputSinkType for AsioSinkType {
    const TYPE_ID: &'static str = "asio";
    const DISPLAY_NAME: &'static str = "ASIO (sidecar)";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","properties":{"buffer_ms":{"type":"integer","minimum":10,"maximum":5000},"sidecar_path":{"type":"string"},"sidecar_args":{"type":"array","items":{"type":"string"}}},"additionalProperties":false}"#;
    const DEFAULT_CONFIG: &'static str = r#"{"buffer_ms":200}"#;
    /// The sidecar's ring reader fades out the head it drops on a reset and fades in what
    /// follows, where the audio is played.
    const TRAITS: u32 = stellatune_plugin_sdk::sink_traits::FADES_ON_RESET;
    type Instance = AsioSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>> {
        let config = AsioConfig::parse(config_json)?;
        let mut targets = Vec::new();
        for backend_probe in ["null", "system"] {
            let signature = config.signature(backend_probe)?;
            let cached = DEVICE_CACHE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&signature, Instant::now());
            if let Some(cached) = cached {
                targets.extend(cached);
                continue;
            }
            let lease = manager::acquire(&signature)?;
            let devices: Vec<Target> = lease
                .sidecar()
                .list_devices(REQUEST_TIMEOUT)
                .map_err(client_error)?
                .into_iter()
                .map(|d| Target::new(d.id, d.name))
                .collect();
            drop(lease);
            DEVICE_CACHE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .put(signature, Instant::now(), devices.clone());
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
            lease: None,
            restart: None,
            underruns_before: 0,
            underruns_reported: AtomicU64::new(0),
        })
    }
}

/// A ring that stays full while the sidecar's heartbeat stands still this long means the
/// sidecar hangs.
const HANG_TIMEOUT: Duration = Duration::from_millis(500);

/// An open stream on the sidecar the sink leases.
struct Stream {
    ring: RingStream,
    sidecar: Arc<Sidecar>,
}

/// What a restart thread hands back: the fresh lease and its stream, or why there is none.
type Restarted = Result<(Lease, RingStream)>;

/// A replacement sidecar being started on a thread lent by the host, off the write path.
struct Restart {
    thread: Option<rt::Thread>,
    done: Arc<Mutex<Option<Restarted>>>,
    previous_pid: Option<u32>,
}

impl Restart {
    /// The outcome if the thread has finished (then joined, which is immediate).
    fn poll(&mut self) -> Option<Restarted> {
        let outcome = lock(&self.done).take()?;
        self.join();
        Some(outcome)
    }

    /// Waits for the thread and takes its outcome (close and destroy: the restart is
    /// bounded by the client's timeouts).
    fn finish(mut self) -> Option<Restarted> {
        self.join();
        lock(&self.done).take()
    }

    fn join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if let Err(e) = thread.join() {
            log(
                log_level::WARN,
                &format!("asio sidecar restart thread failed: {}", e.message),
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct AsioSink {
    device: String,
    config: AsioConfig,
    signature: Signature,
    spec: Option<Spec>,
    stream: Option<Stream>,
    /// The sink's share of its sidecar, held from the first open until the sink is destroyed:
    /// a close and an open at another spec (the next track at another rate) reconfigure the
    /// running sidecar with a new stream instead of stopping it and spawning another.
    lease: Option<Lease>,
    restart: Option<Restart>,
    /// Underruns the sidecar counted on this sink's earlier streams.
    underruns_before: u64,
    /// The underruns already added to [`UNDERRUNS_METRIC`].
    underruns_reported: AtomicU64,
}

impl AsioSink {
    fn start_stream(&mut self, spec: Spec) -> Result<()> {
        let lease = match self.lease.take() {
            Some(lease) if lease.sidecar().is_alive() => lease,
            // A dead sidecar is replaced: the new lease is taken while the old one is still
            // held, so the manager retires the dead one as replaced (with its fault).
            old => {
                let fresh = manager::acquire(&self.signature)?;
                drop(old);
                fresh
            }
        };
        let sidecar = lease.sidecar().clone();
        self.lease = Some(lease);
        let ring = open_ring(&sidecar, &self.device, &self.config, spec)?;
        self.stream = Some(Stream { ring, sidecar });
        report_ring_files();
        Ok(())
    }

    fn end_stream(&mut self) {
        if let Some(restart) = self.restart.take() {
            if let Some(Ok((lease, ring))) = restart.finish() {
                let sidecar = lease.sidecar().clone();
                self.lease = Some(lease);
                self.stream = Some(Stream { ring, sidecar });
            }
        }
        if let Some(Stream { ring, sidecar }) = self.stream.take() {
            self.underruns_before += ring.underruns();
            // The sidecar plays out what the ring holds before it answers the stop.
            sidecar.close_stream(ring);
            report_ring_files();
        }
        self.report_underruns();
    }

    /// Underruns of every stream this sink had, the current one included.
    fn underruns(&self) -> u64 {
        self.underruns_before + self.stream.as_ref().map_or(0, |s| s.ring.underruns())
    }

    /// Adds the underruns not reported yet to the generic counter. Lock-free (shared memory
    /// and an atomic), so `write` and `status` can call it.
    fn report_underruns(&self) {
        let now = self.underruns();
        let before = self.underruns_reported.fetch_max(now, Ordering::SeqCst);
        if now > before {
            metric_add(UNDERRUNS_METRIC, (now - before) as i64);
        }
    }

    /// Starts a replacement sidecar and stream on a lent thread; `write` takes nothing until
    /// it is ready.
    fn begin_restart(&mut self, spec: Spec) -> Result<()> {
        let previous = self.stream.take();
        if let Some(stream) = &previous {
            self.underruns_before += stream.ring.underruns();
        }
        let old_lease = self.lease.take();
        let previous_pid = previous
            .as_ref()
            .map(|s| s.sidecar.pid())
            .or(old_lease.as_ref().map(|l| l.sidecar().pid()));
        let done: Arc<Mutex<Option<Restarted>>> = Arc::default();
        let (signature, device, config) = (
            self.signature.clone(),
            self.device.clone(),
            self.config.clone(),
        );
        let handoff = done.clone();
        let thread = rt::spawn_thread("asio-restart", move || {
            // The new lease first, while the old one is held (see `start_stream`).
            let fresh = manager::acquire(&signature).and_then(|lease| {
                let ring = open_ring(lease.sidecar(), &device, &config, spec)?;
                Ok((lease, ring))
            });
            if let Some(Stream { ring, sidecar }) = previous {
                // Dead: this only removes the ring.
                sidecar.close_stream(ring);
            }
            drop(old_lease);
            report_ring_files();
            *lock(&handoff) = Some(fresh);
        })?;
        self.restart = Some(Restart {
            thread: Some(thread),
            done,
            previous_pid,
        });
        Ok(())
    }

    /// Takes a finished restart's stream into use. `Ok(false)`: still starting.
    fn poll_restart(&mut self) -> Result<bool> {
        let Some(restart) = self.restart.as_mut() else {
            return Ok(true);
        };
        let Some(outcome) = restart.poll() else {
            return Ok(false);
        };
        let previous_pid = restart.previous_pid;
        self.restart = None;
        let (lease, ring) = outcome?;
        let sidecar = lease.sidecar().clone();
        self.lease = Some(lease);
        self.stream = Some(Stream { ring, sidecar });
        emit_event(
            "sidecar_recovered",
            &serde_json::json!({ "previous_pid": previous_pid, "device": self.device }).to_string(),
        );
        Ok(true)
    }
}

/// Has `sidecar` open and start a stream of `spec` on `device`, fed by a new ring.
fn open_ring(
    sidecar: &Sidecar,
    device: &str,
    config: &AsioConfig,
    spec: Spec,
) -> Result<RingStream> {
    sidecar
        .open_stream(
            &ring_dir()?,
            device,
            spec.sample_rate,
            spec.channels,
            config.capacity_frames(spec.sample_rate),
            REQUEST_TIMEOUT,
        )
        .map_err(client_error)
}

impl OutputSink for AsioSink {
    fn open(&mut self, spec: Spec) -> Result<()> {
        self.end_stream();
        self.start_stream(spec)?;
        self.spec = Some(spec);
        Ok(())
    }

    /// Never blocks on the sidecar: a dead one is replaced on a lent thread while this takes
    /// nothing (one glitch), and the new ring is written as soon as it is ready.
    fn write(&mut self, interleaved: &[f32]) -> Result<usize> {
        let Some(spec) = self.spec else {
            return Err(Error::bad_state("write before open"));
        };
        if !self.poll_restart()? {
            return Ok(0);
        }
        let lost = self.stream.as_ref().is_none_or(|s| !s.sidecar.is_alive());
        if lost {
            // The sidecar died or hung: one glitch, then a fresh sidecar and stream.
            self.begin_restart(spec)?;
            return Ok(0);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        let taken = stream.ring.write(interleaved);
        let silent = stream.ring.reader_silent_for();
        self.report_underruns();
        let Some(stream) = self.stream.as_ref() else {
            return Ok(taken);
        };
        if taken == 0 && silent > HANG_TIMEOUT {
            let sidecar = stream.sidecar.clone();
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

    /// Queued: what the ring holds plus what the sidecar took from it that its device has not
    /// played yet, so it reaches 0 when everything written has been played.
    fn status(&self) -> SinkStatus {
        self.report_underruns();
        SinkStatus {
            queued_frames: self
                .stream
                .as_ref()
                .map_or(0, |s| s.ring.queued_frames() as u64),
            underruns: self.underruns(),
        }
    }

    /// The sidecar's device publishes when it takes its next period from the ring.
    fn schedule(&self) -> Option<SinkSchedule> {
        let s = self.stream.as_ref()?.ring.read_schedule()?;
        Some(SinkSchedule {
            next_take_in: s.next_read_in,
            period: s.period,
        })
    }

    /// Marks what was written as the end of the audio for now (end of a track): the sidecar
    /// running dry after it is no underrun.
    fn flush(&mut self) -> Result<()> {
        if let Some(stream) = self.stream.as_mut() {
            stream.ring.mark_drained();
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        if let Some(stream) = self.stream.as_mut() {
            stream.ring.reset();
        }
        Ok(())
    }

    /// Closes the stream; the lease stays with the sink until it is destroyed (see `lease`).
    fn close(&mut self) -> Result<()> {
        self.end_stream();
        self.spec = None;
        Ok(())
    }
}

impl Drop for AsioSink {
    fn drop(&mut self) {
        self.end_stream();
        // After the stream is closed, so the sidecar unmaps before its lease can stop it.
        self.lease = None;
    }
}
