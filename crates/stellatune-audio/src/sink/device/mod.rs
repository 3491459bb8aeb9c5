//! Output to a system device. The sink keeps what every device backend shares: the
//! lock-free ring between the engine's output thread and the device callback, the underrun
//! count, a click-free reset, and noticing that the output went away (the device was
//! unplugged or reset, or the system default moved while the sink follows it). A
//! [`DeviceBackend`] only lists devices and opens a stream that pulls from the ring: cpal in
//! real builds, a virtual backend in the tests, which plugs and unplugs devices on command.
//!
//! # Reset
//!
//! [`Sink::reset`] (seek, stop, a new track) drops what the ring holds, but the device
//! callback does the dropping, without a click: it plays a fade-out of what was next in the
//! ring (up to [`RESET_FADE_MS`], linear towards silence; fewer frames when less is queued),
//! discards the rest, and fades in the first [`RESET_FADE_MS`] written after the reset.
//! Until the callback has done so the reset is pending and `write` takes nothing, so nothing
//! written before the reset plays after it except the fade-out. The stream stays open: no
//! reopening of the device on every seek.

#[cfg(any(feature = "device", windows))]
mod cpal_backend;
#[cfg_attr(not(any(feature = "device", windows)), allow(dead_code))]
mod pace;
pub mod virtual_backend;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Sink, SinkError, SinkStatus};
use stellatune_core::{StreamSpec, TakeSchedule};
use stellatune_declick::ResetFades;

#[cfg(any(feature = "device", windows))]
pub use cpal_backend::CpalBackend;

/// Buffer between the output thread and the device callback.
const DEVICE_BUFFER_MS: u32 = 150;
/// How long the device callback's fades around a reset are (see the module docs).
pub const RESET_FADE_MS: u32 = 5;
/// How often a playing sink asks the backend whether the default device moved (when it
/// follows the default) or whether the chosen device is back (when it plays on the default
/// meanwhile).
const PRESENCE_CHECK: Duration = Duration::from_secs(1);

/// One output device a backend offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Stable across runs and plugging: the backend's name and the device's
    /// (`alsa:hw:CARD=USB,DEV=0`, `wasapi:Speakers (Realtek Audio)`).
    pub id: String,
    pub name: String,
    /// The backend (cpal host) it belongs to, lower case: `alsa`, `jack`, `wasapi`, `asio`.
    pub backend: String,
    /// The system's default output now.
    pub is_default: bool,
}

/// What the device callback reads from: the ring, the underrun count, the loss flag and the
/// reset requests with the fades they need.
pub struct DeviceFeed {
    consumer: rtrb::Consumer<f32>,
    underruns: Arc<AtomicU64>,
    loss: Arc<Loss>,
    resets: Arc<Resets>,
    channels: usize,
    /// The last reset request this side has taken up.
    reset_seen: u64,
    /// The fades around a reset.
    fades: ResetFades,
    /// When the callback ran last, for the sink's take schedule.
    clock: Arc<CallbackClock>,
}

/// When the device callback ran last and how many frames it took: the device's period, and
/// so when it will call next ([`Sink::take_schedule`]), which lets the engine refill just
/// after a callback. Written by the callback, read by the sink; lock-free.
pub(super) struct CallbackClock {
    base: Instant,
    sample_rate: u64,
    /// Nanoseconds after `base` at which the next callback is due (0 = none ran yet).
    next_at: AtomicU64,
    period: AtomicU64,
}

impl CallbackClock {
    fn new(sample_rate: u32) -> Self {
        Self {
            base: Instant::now(),
            sample_rate: u64::from(sample_rate).max(1),
            next_at: AtomicU64::new(0),
            period: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A callback is taking `frames` now: the next comes one buffer later.
    fn record(&self, frames: usize) {
        let period = frames as u64 * 1_000_000_000 / self.sample_rate;
        self.period.store(period, Ordering::Relaxed);
        self.next_at
            .store(self.now().saturating_add(period).max(1), Ordering::Release);
    }

    fn schedule(&self) -> Option<TakeSchedule> {
        let next_at = self.next_at.load(Ordering::Acquire);
        let period = self.period.load(Ordering::Relaxed);
        TakeSchedule::from_published(next_at, period, self.now())
    }
}

impl DeviceFeed {
    fn new(
        consumer: rtrb::Consumer<f32>,
        underruns: Arc<AtomicU64>,
        loss: Arc<Loss>,
        resets: Arc<Resets>,
        spec: StreamSpec,
    ) -> Self {
        Self {
            consumer,
            underruns,
            loss,
            reset_seen: resets.requested.load(Ordering::Acquire),
            resets,
            channels: usize::from(spec.channels).max(1),
            fades: ResetFades::new(ResetFades::frames_for(spec.sample_rate, RESET_FADE_MS)),
            clock: Arc::new(CallbackClock::new(spec.sample_rate)),
        }
    }

    fn clock(&self) -> Arc<CallbackClock> {
        self.clock.clone()
    }

    /// Fills `out` from the ring, with silence for what the ring lacks (an underrun).
    /// Real-time safe: no lock, no allocation.
    pub fn fill(&mut self, out: &mut [f32]) {
        self.clock.record(out.len() / self.channels);
        // The silence after a reset's fade-out is no underrun: the old audio was dropped.
        let resetting = self.fades.resetting()
            || self.resets.requested.load(Ordering::Acquire) != self.reset_seen;
        let n = self.pull(out) * self.channels;
        if n < out.len() {
            out[n..].fill(0.0);
            if !resetting {
                self.underruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Takes up to `out.len() / channels` whole frames from the ring into `out` and returns
    /// how many; the rest of `out` is left as it was. A pending reset is carried out first:
    /// this call and the next ones return only its fade-out, then the rest of the old audio is
    /// discarded and the reset acknowledged (see the module docs). Real-time safe.
    pub(super) fn pull(&mut self, out: &mut [f32]) -> usize {
        let ch = self.channels;
        let want = out.len() / ch;
        if !self.fades.resetting() {
            let requested = self.resets.requested.load(Ordering::Acquire);
            if requested != self.reset_seen {
                self.reset_seen = requested;
                // The producer writes nothing while a reset is pending: what is queued now is
                // all old audio, and stays put.
                self.fades.begin_reset(self.consumer.slots() / ch);
            }
        }
        if let Some(left) = self.fades.fade_out_left() {
            let frames = want.min(left);
            let got = self.read_into(&mut out[..frames * ch]);
            let faded = self.fades.apply_fade_out(&mut out[..got * ch], ch);
            if faded || got < frames {
                self.finish_reset();
            }
            return got;
        }
        let frames = want.min(self.consumer.slots() / ch);
        let got = self.read_into(&mut out[..frames * ch]);
        self.fades.apply_fade_in(&mut out[..got * ch], ch);
        got
    }

    /// Copies as many whole frames as fill `out` from the ring; returns the frames copied.
    fn read_into(&mut self, out: &mut [f32]) -> usize {
        let n = out.len().min(self.consumer.slots());
        let n = n - n % self.channels;
        if let Ok(chunk) = self.consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            out[..a.len()].copy_from_slice(a);
            out[a.len()..a.len() + b.len()].copy_from_slice(b);
            chunk.commit_all();
            n / self.channels
        } else {
            0
        }
    }

    /// Ends a reset once its fade-out is played: the rest of the old audio is discarded and
    /// the latest request acknowledged, which lets the producer write again.
    fn finish_reset(&mut self) {
        let requested = self.resets.requested.load(Ordering::Acquire);
        let left = self.consumer.slots();
        if let Ok(chunk) = self.consumer.read_chunk(left) {
            chunk.commit_all();
        }
        self.reset_seen = requested;
        self.resets.done.store(requested, Ordering::Release);
        self.fades.finish_reset();
    }

    /// A handle the backend's error callback uses to say the device is gone.
    pub fn loss(&self) -> Arc<Loss> {
        self.loss.clone()
    }
}

/// Reset requests from the sink to its device callback: the sink bumps `requested`, the
/// callback stores it in `done` once it has played the fade-out and dropped the old audio.
#[derive(Default)]
struct Resets {
    requested: AtomicU64,
    done: AtomicU64,
}

/// Set, from any thread, when the stream's device stopped working; the next write fails
/// with [`SinkError::Disconnected`] so the engine re-opens the output.
#[derive(Default)]
pub struct Loss {
    lost: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Loss {
    pub fn report(&self, reason: impl Into<String>) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason.into());
        }
        drop(slot);
        self.lost.store(true, Ordering::Release);
    }

    fn take(&self) -> Option<String> {
        if !self.lost.load(Ordering::Acquire) {
            return None;
        }
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Some(reason.unwrap_or_else(|| "the device stopped".into()))
    }
}

/// A playing stream; dropping it stops the device.
pub trait DeviceStream {}

/// The device layer the sink uses. `None` as a device id means the system default.
pub trait DeviceBackend: Send + Sync {
    /// Every output device of this backend now.
    fn devices(&self) -> Result<Vec<DeviceInfo>, SinkError>;
    /// The id of the system default output now, if there is one.
    fn default_device(&self) -> Option<String>;
    /// Whether `id` is connected now.
    fn is_present(&self, id: &str) -> bool {
        self.devices()
            .map(|list| list.iter().any(|d| d.id == id))
            .unwrap_or(false)
    }
    /// The spec `id` will play `preferred` at.
    fn negotiate(&self, id: Option<&str>, preferred: StreamSpec) -> Result<StreamSpec, SinkError>;
    /// Starts a stream on `id` at `spec` that pulls from `feed`; returns it and the id of
    /// the device it plays on.
    fn open(
        &self,
        id: Option<&str>,
        spec: StreamSpec,
        feed: DeviceFeed,
    ) -> Result<(Box<dyn DeviceStream>, String), SinkError>;
}

/// The backend of the `device` route in this build: cpal's devices, or none.
pub fn system_backend() -> Result<Arc<dyn DeviceBackend>, SinkError> {
    #[cfg(any(feature = "device", windows))]
    return Ok(Arc::new(CpalBackend));
    #[cfg(not(any(feature = "device", windows)))]
    Err(no_device_feature())
}

/// The error of the `device` route in a build without device output.
pub fn no_device_feature() -> SinkError {
    SinkError::invalid_config(NO_DEVICE_FEATURE)
}

/// Says how to get a build that has device output.
pub const NO_DEVICE_FEATURE: &str = "this build has no device output (built without the `device` feature); \
     build it with `cargo build --release -p stellatune-cli --features device` \
     (Linux needs the ALSA headers first: `sudo apt-get install libasound2-dev`, \
     or `alsa-lib-devel` on Fedora)";

/// Every output device this build can play to: cpal's devices of every host it has (none
/// without the `device` feature).
pub fn output_devices() -> Result<Vec<DeviceInfo>, SinkError> {
    #[cfg(any(feature = "device", windows))]
    return CpalBackend.devices();
    #[cfg(not(any(feature = "device", windows)))]
    Ok(Vec::new())
}

struct Open {
    stream: Box<dyn DeviceStream>,
    producer: rtrb::Producer<f32>,
    spec: StreamSpec,
    capacity: usize,
    loss: Arc<Loss>,
    resets: Arc<Resets>,
    /// The last reset requested of the callback.
    reset_requested: u64,
    /// The device the stream plays on.
    device: String,
    clock: Arc<CallbackClock>,
}

impl Open {
    /// Whether the callback has yet to carry out the last reset.
    fn reset_pending(&self) -> bool {
        self.resets.done.load(Ordering::Acquire) != self.reset_requested
    }
}

/// A device output: the chosen device, or the system default (followed when it moves).
pub struct DeviceSink {
    backend: Arc<dyn DeviceBackend>,
    /// `None`: follow the system default.
    chosen: Option<String>,
    open: Option<Open>,
    underruns: Arc<AtomicU64>,
    /// The output was lost once: from now on, a chosen device that is absent is stood in
    /// for by the default until it comes back.
    lost_once: bool,
    next_check: Instant,
}

impl DeviceSink {
    pub fn new(backend: Arc<dyn DeviceBackend>, chosen: Option<String>) -> Self {
        Self {
            backend,
            chosen,
            open: None,
            underruns: Arc::new(AtomicU64::new(0)),
            lost_once: false,
            next_check: Instant::now(),
        }
    }

    /// The device to open now: the chosen one; the default instead while the chosen one is
    /// away after a loss; `None` (the default) when following the default.
    fn target(&self) -> Result<Option<String>, SinkError> {
        let Some(chosen) = &self.chosen else {
            return Ok(None);
        };
        if self.backend.is_present(chosen) {
            return Ok(Some(chosen.clone()));
        }
        if self.lost_once {
            return Ok(None);
        }
        let known = self
            .backend
            .devices()
            .map(|list| {
                list.into_iter()
                    .map(|d| d.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        Err(SinkError::disconnected(format!(
            "no output device `{chosen}` is connected (connected: {known})"
        )))
    }

    /// Opens a stream on `target` (`None`: the default) at `spec`.
    fn open_on(&mut self, target: Option<String>, spec: StreamSpec) -> Result<(), SinkError> {
        self.close()?;
        let capacity =
            (spec.sample_rate * DEVICE_BUFFER_MS / 1000) as usize * usize::from(spec.channels);
        let (producer, consumer) = rtrb::RingBuffer::<f32>::new(capacity.max(1));
        let loss = Arc::new(Loss::default());
        let resets = Arc::new(Resets::default());
        let feed = DeviceFeed::new(
            consumer,
            self.underruns.clone(),
            loss.clone(),
            resets.clone(),
            spec,
        );
        let clock = feed.clock();
        let (stream, device) = self.backend.open(target.as_deref(), spec, feed)?;
        tracing::debug!(
            device,
            sample_rate = spec.sample_rate,
            channels = spec.channels,
            "output device open"
        );
        self.open = Some(Open {
            stream,
            producer,
            spec,
            capacity,
            loss,
            resets,
            reset_requested: 0,
            device,
            clock,
        });
        self.next_check = Instant::now() + PRESENCE_CHECK;
        Ok(())
    }

    /// Why the output should move now, if it should: the stream's device failed, the
    /// default moved while following it, or the chosen device is back while playing on the
    /// default.
    fn moved(&mut self) -> Option<String> {
        let open = self.open.as_ref()?;
        if let Some(reason) = open.loss.take() {
            return Some(reason);
        }
        let now = Instant::now();
        if now < self.next_check {
            return None;
        }
        self.next_check = now + PRESENCE_CHECK;
        match &self.chosen {
            None => match self.backend.default_device() {
                Some(default) if default != open.device => Some(format!(
                    "the system default output moved from `{}` to `{default}`",
                    open.device
                )),
                _ => None,
            },
            Some(chosen) if *chosen != open.device && self.backend.is_present(chosen) => {
                Some(format!("the chosen output `{chosen}` is connected again"))
            }
            Some(_) => None,
        }
    }
}

impl Sink for DeviceSink {
    fn describe(&self) -> String {
        match (&self.open, &self.chosen) {
            (Some(open), _) => format!("device:{}", open.device),
            (None, Some(chosen)) => format!("device:{chosen}"),
            (None, None) => "device".into(),
        }
    }

    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        let target = self.target()?;
        self.backend.negotiate(target.as_deref(), preferred)
    }

    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        let target = self.target()?;
        self.open_on(target, spec)
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        if let Some(reason) = self.moved() {
            self.lost_once = true;
            return Err(SinkError::disconnected(reason));
        }
        let Some(open) = self.open.as_mut() else {
            return Err(SinkError::invalid_config("device sink written before open"));
        };
        if open.reset_pending() {
            // The callback is still fading out and dropping the old audio.
            return Ok(0);
        }
        let channels = usize::from(open.spec.channels);
        let frames = (open.producer.slots() / channels).min(interleaved.len() / channels);
        if frames == 0 {
            return Ok(0);
        }
        let chunk = open
            .producer
            .write_chunk_uninit(frames * channels)
            .map_err(|e| SinkError::device_caused_by(e.to_string(), e))?;
        let written = chunk.fill_from_iter(interleaved[..frames * channels].iter().copied());
        debug_assert_eq!(written, frames * channels);
        Ok(frames)
    }

    fn status(&self) -> SinkStatus {
        // While a reset is pending, what the ring holds is being dropped.
        let queued = self
            .open
            .as_ref()
            .filter(|o| !o.reset_pending())
            .map_or(0, |o| {
                ((o.capacity - o.producer.slots()) / usize::from(o.spec.channels)) as u64
            });
        SinkStatus {
            queued_frames: queued,
            underruns: self.underruns.load(Ordering::Relaxed),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Asks the device callback to fade out and drop what the ring holds (see the module
    /// docs); returns at once.
    fn reset(&mut self) -> Result<(), SinkError> {
        if let Some(open) = self.open.as_mut() {
            open.reset_requested += 1;
            open.resets
                .requested
                .store(open.reset_requested, Ordering::Release);
        }
        Ok(())
    }

    /// The callback fades out the head of the ring it drops, and fades in what follows.
    fn fades_on_reset(&self) -> bool {
        true
    }

    /// The device's callbacks: the engine refills just after one.
    fn take_schedule(&self) -> Option<TakeSchedule> {
        self.open
            .as_ref()
            .filter(|o| !o.reset_pending())?
            .clock
            .schedule()
    }

    fn close(&mut self) -> Result<(), SinkError> {
        if let Some(open) = self.open.take() {
            drop(open.stream);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mono feed at 1 kHz (5-frame fades) over a 16-frame ring, and its producer side.
    fn feed() -> (DeviceFeed, rtrb::Producer<f32>, Arc<Resets>, Arc<AtomicU64>) {
        let (producer, consumer) = rtrb::RingBuffer::<f32>::new(16);
        let resets = Arc::new(Resets::default());
        let underruns = Arc::new(AtomicU64::new(0));
        let feed = DeviceFeed::new(
            consumer,
            underruns.clone(),
            Arc::default(),
            resets.clone(),
            StreamSpec::new(1_000, 1),
        );
        (feed, producer, resets, underruns)
    }

    #[test]
    fn each_callback_sets_when_the_next_is_due() {
        let (mut feed, _producer, _resets, _underruns) = feed();
        let clock = feed.clock();
        assert_eq!(clock.schedule(), None, "no callback yet");
        // 10 frames at 1 kHz: the device calls every 10 ms.
        feed.fill(&mut [0.0; 10]);
        let s = clock.schedule().expect("a schedule after a callback");
        assert_eq!(s.period, Duration::from_millis(10));
        assert!(s.next_take_in <= s.period, "{s:?}");
        // A device that stopped calling has none after two periods.
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(clock.schedule(), None);
    }

    fn push(producer: &mut rtrb::Producer<f32>, n: usize) {
        for _ in 0..n {
            producer.push(1.0).unwrap();
        }
    }

    #[test]
    fn a_reset_fades_the_rings_head_out_drops_the_rest_and_fades_what_follows_in() {
        let (mut feed, mut producer, resets, underruns) = feed();
        push(&mut producer, 12);
        let mut out = [0f32; 2];
        feed.fill(&mut out);
        assert_eq!(out, [1.0, 1.0]);
        resets.requested.store(1, Ordering::Release);
        // The fade-out, over as many periods as it takes; the silence after it in the same
        // period is no underrun.
        let mut out = [9f32; 8];
        feed.fill(&mut out[..3]);
        assert_eq!(resets.done.load(Ordering::Acquire), 0, "not done mid-fade");
        feed.fill(&mut out[3..]);
        let want = [
            5.0 / 6.0,
            4.0 / 6.0,
            3.0 / 6.0,
            2.0 / 6.0,
            1.0 / 6.0,
            0.0,
            0.0,
            0.0,
        ];
        for (got, want) in out.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
        assert_eq!(resets.done.load(Ordering::Acquire), 1);
        assert_eq!(underruns.load(Ordering::Relaxed), 0);
        assert_eq!(producer.slots(), 16, "the rest of the old audio is gone");
        // What comes after the reset starts from silence.
        push(&mut producer, 8);
        let mut out = [0f32; 8];
        feed.fill(&mut out);
        let want = [
            1.0 / 6.0,
            2.0 / 6.0,
            3.0 / 6.0,
            4.0 / 6.0,
            5.0 / 6.0,
            1.0,
            1.0,
            1.0,
        ];
        for (got, want) in out.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
        // A period the ring cannot fill outside a reset is an underrun.
        feed.fill(&mut out);
        assert_eq!(underruns.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_sink_takes_nothing_while_its_reset_is_pending() {
        let devices = virtual_backend::VirtualDevices::new();
        devices.plug("v:a", "A");
        let mut sink = DeviceSink::new(
            Arc::new(virtual_backend::VirtualBackend(devices.clone())),
            None,
        );
        sink.open(StreamSpec::new(1_000, 1)).unwrap();
        assert_eq!(sink.write(&[1.0; 10]).unwrap(), 10);
        assert_eq!(sink.status().queued_frames, 10);
        sink.reset().unwrap();
        assert_eq!(
            sink.write(&[1.0; 4]).unwrap(),
            0,
            "nothing old plays after the fade"
        );
        assert_eq!(sink.status().queued_frames, 0);
        // The device carries the reset out: the fade-out only.
        assert_eq!(devices.take("v:a", 100).len(), 5);
        assert_eq!(sink.write(&[1.0; 4]).unwrap(), 4);
        assert_eq!(devices.take("v:a", 100).len(), 4);
        assert_eq!(devices.opened(), ["v:a"], "a reset reopens nothing");
    }
}
