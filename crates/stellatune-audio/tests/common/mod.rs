//! Shared helpers for the engine's integration tests: generating test audio (WAV through
//! hound, FLAC through flacenc, MP3/Vorbis through external encoders when present), reading
//! back what the wav sink wrote, recording engine events, and a gated wav sink that lets a
//! test hold the output still so that races with an unpaced render cannot happen.

// Each test binary uses its own subset of these helpers (and of what they re-export).
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use stellatune_audio::sink::WavSink;
use stellatune_audio::{
    Engine, EngineConfig, EngineEvent, EventHandler, PlaybackState, Sink, SinkError, SinkFactory,
    SinkStatus, StreamSpec, TrackId,
};
pub use stellatune_test_support::tone::{i16_to_f32, write_wav_i16};

/// Long enough for a debug build on a slow, loaded 2-core CI machine; a passing run never
/// waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------

/// Interleaved stereo i16: a few seconds of distinct material, second by second — tones of
/// different pitch on each channel, a slow ramp, a stretch of silence and a louder chord —
/// so that a misplaced or swapped block would show.
pub fn music_i16(rate: u32, frames: usize) -> Vec<i16> {
    let mut out = Vec::with_capacity(frames * 2);
    let r = f64::from(rate);
    for n in 0..frames {
        let t = n as f64 / r;
        let segment = (t as usize) % 4;
        let (l, rgt) = match segment {
            0 => (
                0.6 * (2.0 * std::f64::consts::PI * 440.0 * t).sin(),
                0.4 * (2.0 * std::f64::consts::PI * 660.0 * t).sin(),
            ),
            1 => {
                let frac = t - t.floor();
                (frac * 1.6 - 0.8, 0.8 - frac * 1.6)
            }
            2 => (0.0, 0.3 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()),
            _ => (
                0.3 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                    + 0.3 * (2.0 * std::f64::consts::PI * 277.2 * t).sin(),
                -0.5 * (2.0 * std::f64::consts::PI * 330.0 * t).sin(),
            ),
        };
        out.push((l * 32767.0).round() as i16);
        out.push((rgt * 32767.0).round() as i16);
    }
    out
}

/// Interleaved stereo i32 with `bits` of resolution: a tone on the left, a ramp on the right,
/// using the low bits too (so a decoder that dropped them would be caught).
pub fn music_i32(rate: u32, frames: usize, bits: u32) -> Vec<i32> {
    let full = f64::from((1i32 << (bits - 1)) - 1);
    let mut out = Vec::with_capacity(frames * 2);
    for n in 0..frames {
        let t = n as f64 / f64::from(rate);
        let l = 0.7 * (2.0 * std::f64::consts::PI * 523.25 * t).sin();
        let ramp = (n % 10_000) as f64 / 10_000.0 * 1.6 - 0.8;
        // An odd constant offset keeps the least significant bits busy.
        out.push((l * full).round() as i32 | 1);
        out.push((ramp * full).round() as i32);
    }
    out
}

/// A pure tone, stereo, same on both channels.
pub fn tone_i16(rate: u32, frames: usize, freq: f64, amplitude: f64) -> Vec<i16> {
    tones_i16(rate, frames, freq, freq, amplitude)
}

/// Stereo: one pure tone per channel.
pub fn tones_i16(
    rate: u32,
    frames: usize,
    left_hz: f64,
    right_hz: f64,
    amplitude: f64,
) -> Vec<i16> {
    let mut out = Vec::with_capacity(frames * 2);
    for n in 0..frames {
        let t = n as f64 / f64::from(rate);
        for hz in [left_hz, right_hz] {
            let v = amplitude * (2.0 * std::f64::consts::PI * hz * t).sin();
            out.push((v * 32767.0).round() as i16);
        }
    }
    out
}

/// Stereo frames that state their own position: left = tag * 64 + (n >> 15), right = n & 0x7fff.
/// The engine passes same-rate audio at volume 1.0 through untouched, so each written frame
/// can be decoded back to (tag, n). Good for 2^21 frames (47 s at 44.1 kHz).
pub fn position_coded_i16(frames: usize, tag: u16) -> Vec<i16> {
    assert!(frames < 1 << 21 && tag < 500);
    let mut out = Vec::with_capacity(frames * 2);
    for n in 0..frames {
        out.push((i32::from(tag) * 64 + (n >> 15) as i32) as i16);
        out.push((n & 0x7fff) as i16);
    }
    out
}

/// Decodes one written frame of [`position_coded_i16`] back into (tag, position).
pub fn decode_position(left: f32, right: f32) -> Option<(u16, usize)> {
    let l = (left * 32768.0).round();
    let r = (right * 32768.0).round();
    if (l - left * 32768.0).abs() > 1e-3 || (r - right * 32768.0).abs() > 1e-3 || l < 0.0 || r < 0.0
    {
        return None;
    }
    let (l, r) = (l as usize, r as usize);
    Some(((l / 64) as u16, ((l % 64) << 15) | r))
}

/// Sign changes of one channel of an interleaved buffer.
pub fn zero_crossings(interleaved: &[f32], channels: usize, channel: usize) -> usize {
    let mut count = 0;
    let mut last_sign = 0i8;
    for frame in interleaved.chunks_exact(channels) {
        let s = frame[channel];
        let sign = if s > 1e-4 {
            1
        } else if s < -1e-4 {
            -1
        } else {
            continue;
        };
        if last_sign != 0 && sign != last_sign {
            count += 1;
        }
        last_sign = sign;
    }
    count
}

/// Frequency of the tone on `channel`, estimated from zero crossings.
pub fn estimate_frequency(interleaved: &[f32], channels: usize, channel: usize, rate: u32) -> f64 {
    let frames = interleaved.len() / channels;
    let crossings = zero_crossings(interleaved, channels, channel);
    crossings as f64 / 2.0 / (frames as f64 / f64::from(rate))
}

pub fn rms(interleaved: &[f32], channels: usize, channel: usize) -> f64 {
    let frames = interleaved.len() / channels;
    let sum: f64 = interleaved
        .chunks_exact(channels)
        .map(|f| f64::from(f[channel]).powi(2))
        .sum();
    (sum / frames.max(1) as f64).sqrt()
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

pub fn write_flac(path: &Path, rate: u32, channels: usize, bits: usize, samples: &[i32]) {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;

    let config = flacenc::config::Encoder::default()
        .into_verified()
        .expect("flacenc default config is valid");
    let source = flacenc::source::MemSource::from_samples(samples, channels, bits, rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .expect("flac encode");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("flac serialise");
    let mut bytes = sink.as_slice().to_vec();
    // flacenc states the (shorter) last block as STREAMINFO's minimum block size. The FLAC
    // format excludes the last block from that minimum, and symphonia takes min != max to
    // mean a variable-block-size stream, whose strict frame-header check then rejects every
    // fixed-block-size frame: probing reads to the end and fails. libFLAC writes min == max
    // for such a stream, so do the same. Layout: "fLaC", 4-byte block header, then
    // STREAMINFO's min block size (u16 BE) at 8..10 and max block size at 10..12.
    assert_eq!(&bytes[..4], b"fLaC");
    assert_eq!(bytes[4] & 0x7f, 0, "STREAMINFO comes first");
    let (min, max) = (
        u16::from_be_bytes([bytes[8], bytes[9]]),
        u16::from_be_bytes([bytes[10], bytes[11]]),
    );
    if min < max {
        bytes.copy_within(10..12, 8);
    }
    std::fs::write(path, bytes).expect("write test flac");
}

/// Writes a FLAC (as [`write_flac`]) with a VORBIS_COMMENT block holding `comments`
/// (`KEY=value` each), right after STREAMINFO: tags and ReplayGain without an encoder.
pub fn write_tagged_flac(
    path: &Path,
    rate: u32,
    channels: usize,
    samples: &[i32],
    comments: &[&str],
) {
    write_flac(path, rate, channels, 16, samples);
    let bytes = std::fs::read(path).expect("read test flac");
    // "fLaC", then STREAMINFO: a 4-byte header (last-block flag, type 0, 24-bit length).
    let info_len = u32::from_be_bytes([0, bytes[5], bytes[6], bytes[7]]) as usize;
    let info_end = 8 + info_len;
    let was_last = bytes[4] & 0x80 != 0;
    let mut body = Vec::new();
    let vendor = b"stellatune tests";
    body.extend((vendor.len() as u32).to_le_bytes());
    body.extend(vendor);
    body.extend((comments.len() as u32).to_le_bytes());
    for c in comments {
        body.extend((c.len() as u32).to_le_bytes());
        body.extend(c.as_bytes());
    }
    let mut out = bytes[..info_end].to_vec();
    out[4] &= 0x7f;
    // Type 4 is VORBIS_COMMENT; it is the last block if STREAMINFO was.
    out.push(if was_last { 0x84 } else { 0x04 });
    out.extend(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend(body);
    out.extend(&bytes[info_end..]);
    std::fs::write(path, out).expect("write tagged flac");
}

/// What the wav sink wrote: its spec and all interleaved samples.
pub fn read_wav_f32(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("cannot read sink output {}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(spec.bits_per_sample, 32);
    let samples = r
        .samples::<f32>()
        .collect::<Result<Vec<_>, _>>()
        .expect("sink output samples");
    (spec, samples)
}

/// True when `program` runs (used to skip tests whose encoder is not installed).
pub fn have_program(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

pub fn run_encoder(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts two interleaved buffers are equal within `tol`, reporting the first difference.
pub fn assert_samples_close(actual: &[f32], expected: &[f32], tol: f32, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} samples written, {} expected",
        actual.len(),
        expected.len()
    );
    if let Some((i, (a, e))) = actual
        .iter()
        .zip(expected)
        .enumerate()
        .find(|(_, (a, e))| (*a - *e).abs() > tol)
    {
        panic!("{what}: sample {i} (frame {}) is {a}, expected {e}", i / 2);
    }
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// Records every event the engine sends, in order, and lets a test wait for a condition.
#[derive(Default)]
pub struct Events {
    log: Mutex<Vec<(Instant, EngineEvent)>>,
    changed: Condvar,
}

impl Events {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn handler(self: &Arc<Self>) -> EventHandler {
        let me = self.clone();
        Arc::new(move |event| {
            me.lock().push((Instant::now(), event));
            me.changed.notify_all();
        })
    }

    /// The log, even after a test thread panicked while holding it: the engine's control
    /// thread calls the handler and must never panic because of a test's failure.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, EngineEvent)>> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn all(&self) -> Vec<EngineEvent> {
        self.lock().iter().map(|(_, e)| e.clone()).collect()
    }

    pub fn timed(&self) -> Vec<(Instant, EngineEvent)> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Waits until `pred` holds on the events recorded so far; panics after `TIMEOUT`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[EngineEvent]) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        let mut log = self.lock();
        loop {
            let events: Vec<EngineEvent> = log.iter().map(|(_, e)| e.clone()).collect();
            if pred(&events) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                drop(log);
                panic!("timed out waiting for {what}; events so far: {events:#?}");
            }
            log = self
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for `TrackEnded(track)` followed by `StateChanged(Stopped)`.
    pub fn wait_finished(&self, track: TrackId) {
        self.wait_for(
            &format!("track {track} to end and the engine to stop"),
            |ev| finished_after(ev, track),
        );
    }
}

pub fn finished_after(events: &[EngineEvent], track: TrackId) -> bool {
    let Some(end) = events
        .iter()
        .position(|e| matches!(e, EngineEvent::TrackEnded { track_id } if *track_id == track))
    else {
        return false;
    };
    events[end..].iter().any(|e| {
        matches!(
            e,
            EngineEvent::StateChanged {
                state: PlaybackState::Stopped
            }
        )
    })
}

/// The TrackStarted / TrackEnded events in order, as ("started" | "ended", id).
pub fn track_lifecycle(events: &[EngineEvent]) -> Vec<(&'static str, TrackId)> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::TrackStarted { track_id, .. } => Some(("started", *track_id)),
            EngineEvent::TrackEnded { track_id } => Some(("ended", *track_id)),
            _ => None,
        })
        .collect()
}

/// (track, position_ms) of every Position event, in order.
pub fn positions(events: &[EngineEvent]) -> Vec<(TrackId, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Position {
                track_id,
                position_ms,
                ..
            } => Some((*track_id, *position_ms)),
            _ => None,
        })
        .collect()
}

pub fn errors(events: &[EngineEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Engine helpers
// ---------------------------------------------------------------------------------------

pub fn start_engine(name: &str) -> (Engine, Arc<Events>) {
    start_engine_with(EngineConfig {
        name: name.into(),
        ..Default::default()
    })
}

pub fn start_engine_with(config: EngineConfig) -> (Engine, Arc<Events>) {
    let events = Events::new();
    let engine = Engine::start(config, events.handler()).expect("engine starts");
    (engine, events)
}

/// An engine without the fades on pause, stop, seek and a track switch: the output is cut
/// exactly where the command lands, so a test can account for every frame (position-coded
/// audio stays decodable). The fades themselves are tested in `tests/loudness.rs`.
pub fn start_engine_unfaded(name: &str) -> (Engine, Arc<Events>) {
    start_engine_with(EngineConfig {
        name: name.into(),
        fade_ms: 0,
        ..Default::default()
    })
}

/// Polls `cond` every 10 ms until it holds; panics after `TIMEOUT`.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    stellatune_test_support::wait::wait_until(what, TIMEOUT, cond);
}

pub fn wait_frames_written(engine: &Engine, frames: u64) {
    wait_until(&format!("{frames} frames to be written"), || {
        engine.status().expect("status").frames_written >= frames
    });
}

// ---------------------------------------------------------------------------------------
// A wav sink behind a gate
// ---------------------------------------------------------------------------------------

/// How many more frames the gated sink may take; `u64::MAX` means open.
#[derive(Clone, Default)]
pub struct Gate(Arc<AtomicU64>);

impl Gate {
    /// A gate that lets `frames` through and then holds.
    pub fn allowing(frames: u64) -> Self {
        Self(Arc::new(AtomicU64::new(frames)))
    }

    pub fn open(&self) {
        self.0.store(u64::MAX, Ordering::SeqCst);
    }
}

/// The built-in `wav` route, unpaced, in the music's own format.
pub fn wav_route(path: &Path) -> Box<dyn SinkFactory> {
    Box::new(stellatune_audio::BuiltinRoute::Wav {
        path: path.to_path_buf(),
        paced: false,
        channels: None,
        sample_rate: None,
    })
}

/// A [`GatedWav`] route writing to `path` as far as `gate` lets it.
pub fn gated_route(path: &Path, gate: &Gate) -> Box<dyn SinkFactory> {
    Box::new(GatedWav {
        path: path.to_path_buf(),
        gate: gate.clone(),
        fades_on_reset: false,
    })
}

/// [`gated_route`], but the sink says it fades out what it drops on a reset itself (as a
/// device's does), so the engine must write no fade-out of its own after a reset.
pub fn gated_fading_route(path: &Path, gate: &Gate) -> Box<dyn SinkFactory> {
    Box::new(GatedWav {
        path: path.to_path_buf(),
        gate: gate.clone(),
        fades_on_reset: true,
    })
}

/// A route writing through the real unpaced [`WavSink`], but only as many frames as the
/// gate allows. A held gate looks to the engine like a full device buffer, so a test can set
/// up play / queue / seek while the output is held still, then let it run unpaced.
pub struct GatedWav {
    pub path: PathBuf,
    pub gate: Gate,
    /// What the sink answers to [`Sink::fades_on_reset`].
    pub fades_on_reset: bool,
}

impl SinkFactory for GatedWav {
    fn describe(&self) -> String {
        format!("gated-wav:{}", self.path.display())
    }

    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(GatedSink {
            inner: WavSink::create(self.path, false)?,
            gate: self.gate,
            channels: 0,
            fades_on_reset: self.fades_on_reset,
        }))
    }
}

struct GatedSink {
    inner: WavSink,
    gate: Gate,
    channels: usize,
    fades_on_reset: bool,
}

impl Sink for GatedSink {
    fn describe(&self) -> String {
        format!("gated-{}", self.inner.describe())
    }

    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        self.inner.negotiate(preferred)
    }

    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        self.channels = usize::from(spec.channels);
        self.inner.open(spec)
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        let allowed = self.gate.0.load(Ordering::SeqCst);
        let offered = interleaved.len() / self.channels.max(1);
        let n = offered.min(usize::try_from(allowed).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        let taken = self.inner.write(&interleaved[..n * self.channels])?;
        if allowed != u64::MAX {
            self.gate.0.fetch_sub(taken as u64, Ordering::SeqCst);
        }
        Ok(taken)
    }

    fn status(&self) -> SinkStatus {
        self.inner.status()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }

    fn reset(&mut self) -> Result<(), SinkError> {
        self.inner.reset()
    }

    fn fades_on_reset(&self) -> bool {
        self.fades_on_reset
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.inner.close()
    }
}
