//! One open stream: its ring, its device, and while started, its playback thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stellatune_sidecar_proto::RingReader;

use crate::devices::{DeviceSpec, PacedSink};

/// The format and period a stream was opened with.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    pub sample_rate: u32,
    pub channels: u16,
    pub buffer_frames: u32,
}

/// Counters shared with the playback thread (or device callback).
#[derive(Default)]
pub struct StreamStats {
    frames_played: AtomicU64,
    underruns: AtomicU64,
    running: AtomicBool,
    /// Frames left in the ring after the device's last period (a device callback reports it,
    /// so a draining stop can wait for it to reach 0).
    ring_left: AtomicU64,
    error: Mutex<Option<String>>,
}

impl StreamStats {
    /// Records one device period: `frames` taken from the ring, whether it completed an
    /// underrun (see `RingReader::note_period`), and what the ring still holds.
    pub fn played(&self, frames: u64, underrun: bool, ring_left: usize) {
        self.frames_played.fetch_add(frames, Ordering::Relaxed);
        if underrun {
            self.underruns.fetch_add(1, Ordering::Relaxed);
        }
        self.ring_left.store(ring_left as u64, Ordering::Release);
    }

    fn fail(&self, message: String) {
        log!(warn: "stream error: {message}");
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(message);
    }

    fn take_error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What a stopped stream owns; the playback thread takes it and hands it back when it ends.
struct Parked {
    /// `None` after a device that keeps the reader in its callback: reopened from the path.
    reader: Option<RingReader>,
    sink: Option<PacedSink>,
}

/// What the playback thread is told through `Running::mode`.
pub const RUN: u8 = 0;
/// Stop at once: what the ring still holds is dropped (shutdown).
const STOP_NOW: u8 = 1;
/// Play out what the ring holds, then stop.
const DRAIN: u8 = 2;

struct Running {
    mode: Arc<AtomicU8>,
    thread: JoinHandle<Parked>,
}

/// How long a draining stop may take at most: well within the client's 2 s request timeout.
#[cfg_attr(not(feature = "cpal"), allow(dead_code))]
const MAX_DRAIN: Duration = Duration::from_millis(1500);

pub struct Stream {
    device: DeviceSpec,
    ring_path: PathBuf,
    cfg: StreamConfig,
    /// The ring's capacity: bounds how long a draining stop can take.
    #[cfg_attr(not(feature = "cpal"), allow(dead_code))]
    capacity_frames: u32,
    stats: Arc<StreamStats>,
    /// `None` while running, or after the playback thread panicked (the stream is then dead).
    parked: Option<Parked>,
    running: Option<Running>,
}

/// If the paced clock falls this far behind (a stalled machine), it restarts from now instead of
/// bursting through the backlog.
const MAX_LATENESS: Duration = Duration::from_millis(200);

impl Stream {
    /// Opens the ring and prepares the device (a WAV file is created here). The ring's format
    /// must match the requested one.
    pub fn open(device: &str, ring_path: PathBuf, cfg: StreamConfig) -> Result<Stream, String> {
        let device = DeviceSpec::parse(device)?;
        if cfg.sample_rate == 0 || cfg.channels == 0 {
            return Err("sample_rate and channels must be positive".into());
        }
        if cfg.buffer_frames == 0 || cfg.buffer_frames > cfg.sample_rate {
            return Err(format!(
                "buffer_frames must be in 1..={} (one second), got {}",
                cfg.sample_rate, cfg.buffer_frames
            ));
        }
        let reader = RingReader::open(&ring_path)
            .map_err(|e| format!("cannot open ring {}: {e}", ring_path.display()))?;
        let spec = reader.spec();
        if spec.sample_rate != cfg.sample_rate || spec.channels != cfg.channels {
            return Err(format!(
                "ring is {} Hz / {} ch, request says {} Hz / {} ch",
                spec.sample_rate, spec.channels, cfg.sample_rate, cfg.channels
            ));
        }
        let sink = match &device {
            #[cfg(feature = "cpal")]
            DeviceSpec::Cpal(name) => {
                crate::devices::cpal_device::check(name)?;
                None
            }
            paced => Some(PacedSink::open(paced, cfg.sample_rate, cfg.channels)?),
        };
        Ok(Stream {
            device,
            ring_path,
            cfg,
            capacity_frames: spec.capacity_frames,
            stats: Arc::default(),
            parked: Some(Parked {
                reader: Some(reader),
                sink,
            }),
            running: None,
        })
    }

    /// Starts the playback thread; a started stream stays started.
    pub fn start(&mut self, stream_id: u64) -> Result<(), String> {
        if self.running.is_some() {
            return Ok(());
        }
        let Some(parked) = self.parked.take() else {
            return Err("stream failed earlier; close it".into());
        };
        let mode = Arc::new(AtomicU8::new(RUN));
        let stats = self.stats.clone();
        let cfg = self.cfg;
        let name = format!("stream-{stream_id}");
        log!("stream {stream_id}: starting on {:?}", self.device);

        #[cfg(feature = "cpal")]
        if let DeviceSpec::Cpal(device) = &self.device {
            drop(parked.reader);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (device, path, mode2) = (device.clone(), self.ring_path.clone(), mode.clone());
            stats.running.store(true, Ordering::Release);
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    crate::devices::cpal_device::run(
                        &device,
                        &path,
                        cfg,
                        stats.clone(),
                        mode2,
                        ready_tx,
                    );
                    stats.running.store(false, Ordering::Release);
                    Parked {
                        reader: None,
                        sink: None,
                    }
                })
                .map_err(|e| {
                    self.stats.running.store(false, Ordering::Release);
                    self.parked = Some(Parked {
                        reader: None,
                        sink: None,
                    });
                    format!("cannot start playback thread: {e}")
                })?;
            let ready = ready_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| Err("device did not start in time".into()));
            self.running = Some(Running { mode, thread });
            if let Err(e) = ready {
                let _ = self.halt();
                return Err(e);
            }
            return Ok(());
        }

        let (reader, sink) = match (parked.reader, parked.sink) {
            (Some(reader), Some(sink)) => (reader, sink),
            (None, Some(sink)) => match RingReader::open(&self.ring_path) {
                Ok(reader) => (reader, sink),
                Err(e) => {
                    self.parked = Some(Parked {
                        reader: None,
                        sink: Some(sink),
                    });
                    return Err(format!(
                        "cannot reopen ring {}: {e}",
                        self.ring_path.display()
                    ));
                }
            },
            (_, None) => return Err("stream has no device".into()),
        };
        stats.running.store(true, Ordering::Release);
        let mode2 = mode.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run_paced(reader, sink, cfg, &stats, &mode2))
            .map_err(|e| {
                self.stats.running.store(false, Ordering::Release);
                format!("cannot start playback thread: {e}")
            })?;
        self.running = Some(Running { mode, thread });
        Ok(())
    }

    /// Plays out what the ring holds (bounded by [`MAX_DRAIN`]), then stops and joins the
    /// playback thread (no-op when stopped); the stream can start again. The built-in devices
    /// take the rest at once; a system device plays it in real time.
    pub fn stop(&mut self) -> Result<(), String> {
        self.end(DRAIN)
    }

    /// Stops at once, dropping what the ring holds.
    pub fn halt(&mut self) -> Result<(), String> {
        self.end(STOP_NOW)
    }

    fn end(&mut self, how: u8) -> Result<(), String> {
        if let Some(running) = self.running.take() {
            #[cfg(feature = "cpal")]
            if how == DRAIN && matches!(self.device, DeviceSpec::Cpal(_)) {
                self.wait_played_out();
            }
            running.mode.store(how, Ordering::Release);
            running.thread.thread().unpark();
            match running.thread.join() {
                Ok(parked) => self.parked = Some(parked),
                Err(_) => {
                    self.stats.running.store(false, Ordering::Release);
                    return Err("playback thread panicked; close the stream".into());
                }
            }
        }
        match self.parked.as_mut().and_then(|p| p.sink.as_mut()) {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }

    /// A system device plays in real time: waits (one period at a time) until its callbacks
    /// found the ring empty, at most for the ring's length and never past [`MAX_DRAIN`].
    #[cfg(feature = "cpal")]
    fn wait_played_out(&self) {
        let ring_time = period_time(u64::from(self.capacity_frames), self.cfg.sample_rate);
        let period = period_time(u64::from(self.cfg.buffer_frames), self.cfg.sample_rate);
        let deadline = Instant::now() + (ring_time + period * 2).min(MAX_DRAIN);
        while self.stats.ring_left.load(Ordering::Acquire) > 0
            && self.stats.running.load(Ordering::Acquire)
            && Instant::now() < deadline
        {
            std::thread::sleep(period);
        }
    }

    /// Stops (playing out the ring when `drain`), finalizes the device (WAV header), and unmaps
    /// the ring. Errors met while the stream ran (a failed WAV write) are reported here.
    pub fn close(mut self, drain: bool) -> Result<(), String> {
        let stopped = if drain { self.stop() } else { self.halt() };
        let finalized = match self.parked.take().and_then(|p| p.sink) {
            Some(sink) => sink.finalize(),
            None => Ok(()),
        };
        let earlier = self.stats.take_error().map_or(Ok(()), Err);
        stopped
            .and(finalized)
            .and(earlier)
            .map_err(|e| format!("stream closed, but: {e}"))
    }

    /// `(frames_played, underruns, running)`
    pub fn stats(&self) -> (u64, u64, bool) {
        (
            self.stats.frames_played.load(Ordering::Relaxed),
            self.stats.underruns.load(Ordering::Relaxed),
            self.stats.running.load(Ordering::Acquire),
        )
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// The playback loop of the built-in devices: every period of `buffer_frames` frames of real
/// time, takes up to a period from the ring and hands it to the sink, then sleeps until the
/// next period is due (one wake-up per period; a stop wakes it early). A period the ring cannot
/// fill is not padded (the WAV device records only what it received, so the file holds exactly
/// the stream's audio); a gap inside the stream counts as an underrun
/// (`RingReader::note_period`). Told to drain, it takes what is left at once.
fn run_paced(
    mut reader: RingReader,
    mut sink: PacedSink,
    cfg: StreamConfig,
    stats: &StreamStats,
    mode: &AtomicU8,
) -> Parked {
    log!(
        "device thread priority: {}",
        stellatune_process::priority::raise_current_thread()
    );
    let period = paced_period(
        cfg.buffer_frames,
        reader.spec().capacity_frames,
        reader.reset_fade_frames(),
    );
    let mut epoch_start = Instant::now();
    let mut periods: u64 = 0;
    let mut failed = false;
    while mode.load(Ordering::Acquire) == RUN {
        let got = match take_period(&mut reader, period, &mut sink) {
            Ok(got) => got,
            Err(e) => {
                stats.fail(e);
                failed = true;
                break;
            }
        };
        // The device plays these during the period that starts now.
        reader.set_device_queued(got);
        let underrun = reader.note_period(period, got);
        stats.played(got as u64, underrun, reader.queued_frames());

        periods += 1;
        let due = epoch_start + period_time(periods * period as u64, cfg.sample_rate);
        let now = Instant::now();
        if now > due + MAX_LATENESS {
            epoch_start = now;
            periods = 0;
            continue;
        }
        // The writer wakes just after this take instead of at a time of its own (see the
        // ring's read schedule).
        reader.publish_next_read(due, period);
        while mode.load(Ordering::Acquire) == RUN {
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::park_timeout(due - now);
        }
    }
    reader.clear_schedule();
    if !failed && mode.load(Ordering::Acquire) == DRAIN {
        // At most a ring's worth (plus a period for a reset's acknowledgement): a writer that
        // kept writing could not hold the stop up.
        let capacity = reader.spec().capacity_frames as usize;
        let mut budget = capacity / period.max(1) + 2;
        while budget > 0 {
            budget -= 1;
            let got = match take_period(&mut reader, period, &mut sink) {
                Ok(got) => got,
                Err(e) => {
                    stats.fail(e);
                    break;
                }
            };
            if got == 0 && reader.queued_frames() == 0 {
                break;
            }
            stats.played(got as u64, false, reader.queued_frames());
        }
    }
    reader.set_device_queued(0);
    reader.forget_dry_spell();
    stats.running.store(false, Ordering::Release);
    Parked {
        reader: Some(reader),
        sink: Some(sink),
    }
}

/// The period of a built-in (paced) device: what a reset's fade-out (`keep` frames) leaves
/// of the ring, halved, or the requested period when that is longer. Unlike a hardware
/// device, nothing downstream needs small periods, and each period is a wake-up of this
/// process and of the writer refilling what it took: a quarter-ring period cost twice the
/// wake-ups for no gain. Two periods still leave the writer a whole period to refill before
/// the next one is due.
///
/// Two periods are `keep` frames short of the ring because the writer refills just after
/// every other take (the read schedule): with exact halves the ring would be empty from that
/// take until the refill, and a seek or stop landing there found nothing to fade out, so the
/// music ended on the full-level last frame of the period the device had just taken: a
/// click. Now a reset always finds a fade-out's worth queued, unless the writer underran.
/// In a ring so small that a fade-out would be more than an eighth of it, an eighth is kept
/// (a shorter fade, but still no cut), so that the periods, and with them the writer's slack,
/// do not shrink to a few milliseconds.
fn paced_period(requested: u32, capacity_frames: u32, keep: usize) -> usize {
    let capacity = capacity_frames as usize;
    let halves = capacity.saturating_sub(keep.min(capacity / 8)) / 2;
    (requested as usize).max(halves).max(1)
}

/// Takes up to a period from the ring straight into the device, with no copy in between
/// (`RingReader::read_in_place`); a first read that only carried out a reset (returning its
/// fade-out, or nothing) is followed by another. Returns the frames taken.
fn take_period(
    reader: &mut RingReader,
    period: usize,
    sink: &mut PacedSink,
) -> Result<usize, String> {
    let mut failed = None;
    let mut consume = |part: &[f32]| {
        if failed.is_none() {
            failed = sink.consume(part).err();
        }
    };
    let mut got = reader.read_in_place(period, &mut consume);
    if got < period {
        got += reader.read_in_place(period - got, &mut consume);
    }
    failed.map_or(Ok(got), Err)
}

fn period_time(frames: u64, sample_rate: u32) -> Duration {
    let nanos = u128::from(frames) * 1_000_000_000 / u128::from(sample_rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_device_takes_half_of_the_ring_less_a_fade_per_period_unless_asked_for_more() {
        // The default 200 ms ring at 44.1 kHz with its 5 ms fade: the client asks for a
        // quarter; two periods leave the fade's 220 frames.
        assert_eq!(paced_period(2_205, 8_820, 220), 4_300);
        assert_eq!(8_820 - 2 * paced_period(2_205, 8_820, 220), 220);
        assert_eq!(paced_period(6_000, 8_820, 220), 6_000);
        assert_eq!(paced_period(64, 1, 220), 64);
        assert_eq!(paced_period(0, 100, 220), 44);
        // A 10 ms ring: an eighth of it is kept instead of a whole 5 ms fade.
        assert_eq!(paced_period(110, 441, 220), 193);
    }

    #[test]
    fn period_time_is_exact() {
        assert_eq!(period_time(48_000, 48_000), Duration::from_secs(1));
        assert_eq!(period_time(441, 44_100), Duration::from_millis(10));
        assert_eq!(period_time(1, 3), Duration::from_nanos(333_333_333));
    }
}
