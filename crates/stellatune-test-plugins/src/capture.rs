//! The `capture` sink: raw little-endian f32 to a file, lifecycle calls to `<file>.calls`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use serde::Deserialize;

use stellatune_plugin_sdk::{
    Error, OutputSink, OutputSinkType, Result, SinkSchedule, SinkStatus, Spec, Target, emit_event,
    log, log_level, metric_add, sink_traits,
};

/// The gauge of open capture sinks.
const OPEN_METRIC: &str = "test_capture_open";

pub struct CaptureSinkType;

/// The capture sink's config: `{"realtime_buffer_ms": N, "take_period_ms": M}` (both optional).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CaptureConfig {
    /// When set, the sink plays in real time like a device with a buffer this long: it
    /// takes only what fits and reports the rest as queued. Tests that need playback to
    /// last (a 10 s track must not end in 50 ms) set it; the default takes everything.
    realtime_buffer_ms: Option<u64>,
    /// When set, the sink reports a take schedule (ABI 1.3) of this period, counted from
    /// `open`, as a device taking a period at a time would.
    take_period_ms: Option<u64>,
}

/// A device clock for the paced mode: it plays queued frames at the rate and, like a
/// device, does not bank time while it has nothing to play.
struct Clock {
    since: Instant,
    sample_rate: u64,
    buffer_frames: u64,
    queued: u64,
}

impl Clock {
    fn new(sample_rate: u32, buffer_ms: u64) -> Self {
        let sample_rate = u64::from(sample_rate);
        Clock {
            since: Instant::now(),
            sample_rate,
            buffer_frames: (sample_rate * buffer_ms / 1000).max(1),
            queued: 0,
        }
    }

    /// Plays what the time since the last call allows.
    fn advance(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.since).as_nanos();
        let played = u64::try_from(elapsed * u128::from(self.sample_rate) / 1_000_000_000)
            .unwrap_or(u64::MAX);
        if played >= self.queued {
            // Ran dry: the time past the last frame is not owed to later frames.
            self.queued = 0;
            self.since = now;
        } else if played > 0 {
            self.queued -= played;
            // Keep the fraction of a frame not yet played.
            let used = u128::from(played) * 1_000_000_000 / u128::from(self.sample_rate);
            self.since += std::time::Duration::from_nanos(u64::try_from(used).unwrap_or(0));
        }
    }
}

pub struct CaptureSink {
    path: String,
    calls_path: String,
    out: Option<BufWriter<File>>,
    channels: usize,
    realtime_buffer_ms: Option<u64>,
    clock: Option<Clock>,
    take_period: Option<Duration>,
    opened_at: Option<Instant>,
}

impl OutputSinkType for CaptureSinkType {
    const TYPE_ID: &'static str = "capture";
    const DISPLAY_NAME: &'static str = "Capture to file (test)";
    type Instance = CaptureSink;

    fn list_targets(_config_json: &str) -> Result<Vec<Target>> {
        Ok(vec![Target::new("capture.raw", "capture.raw")])
    }

    fn create(config_json: &str, target: &str) -> Result<CaptureSink> {
        if target.is_empty() {
            return Err(Error::invalid_argument(
                "capture needs a file path as its target",
            ));
        }
        let config: CaptureConfig = if config_json.trim().is_empty() {
            CaptureConfig::default()
        } else {
            serde_json::from_str(config_json)
                .map_err(|e| Error::invalid_argument(format!("capture config: {e}")))?
        };
        Ok(CaptureSink {
            path: target.to_owned(),
            calls_path: format!("{target}.calls"),
            out: None,
            channels: 0,
            realtime_buffer_ms: config.realtime_buffer_ms,
            clock: None,
            take_period: config
                .take_period_ms
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
            opened_at: None,
        })
    }
}

/// `capture_fading`: the `capture` sink, declaring [`sink_traits::FADES_ON_RESET`] so that
/// a host's reading of the sink traits (and the engine's answer to them: no fade-out of its
/// own after a reset) shows in the captured file.
pub struct FadingCaptureSinkType;

impl OutputSinkType for FadingCaptureSinkType {
    const TYPE_ID: &'static str = "capture_fading";
    const DISPLAY_NAME: &'static str = "Capture to file, fading on reset (test)";
    const TRAITS: u32 = sink_traits::FADES_ON_RESET;
    type Instance = CaptureSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>> {
        CaptureSinkType::list_targets(config_json)
    }

    fn create(config_json: &str, target: &str) -> Result<CaptureSink> {
        CaptureSinkType::create(config_json, target)
    }
}

impl CaptureSink {
    /// Appends `call` to the sidecar; the file is closed again at once, so a test sees it.
    fn record(&self, call: &str) {
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.calls_path)
            .and_then(|mut f| writeln!(f, "{call}"));
        if let Err(e) = written {
            log(
                log_level::WARN,
                &format!("capture: cannot record {call} in {}: {e}", self.calls_path),
            );
        }
    }

    fn out(&mut self) -> Result<&mut BufWriter<File>> {
        self.out
            .as_mut()
            .ok_or_else(|| Error::bad_state("capture is not open"))
    }

    /// Flushes and drops the file; ends the open gauge.
    fn release(&mut self) -> Result<()> {
        let Some(mut out) = self.out.take() else {
            return Ok(());
        };
        metric_add(OPEN_METRIC, -1);
        out.flush()?;
        Ok(())
    }
}

impl OutputSink for CaptureSink {
    fn open(&mut self, spec: Spec) -> Result<()> {
        self.record("open");
        self.release()?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = Some(BufWriter::new(file));
        self.channels = usize::from(spec.channels);
        self.clock = self
            .realtime_buffer_ms
            .map(|ms| Clock::new(spec.sample_rate, ms));
        self.opened_at = Some(Instant::now());
        metric_add(OPEN_METRIC, 1);
        emit_event(
            "capture_open",
            &serde_json::json!({
                "target": self.path,
                "sample_rate": spec.sample_rate,
                "channels": spec.channels,
            })
            .to_string(),
        );
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize> {
        let channels = self.channels.max(1);
        let offered = interleaved.len() / channels;
        let frames = match &mut self.clock {
            Some(clock) => {
                clock.advance();
                let room = clock.buffer_frames.saturating_sub(clock.queued);
                let frames = offered.min(usize::try_from(room).unwrap_or(usize::MAX));
                clock.queued += frames as u64;
                frames
            }
            None => offered,
        };
        let out = self.out()?;
        for s in &interleaved[..frames * channels] {
            out.write_all(&s.to_le_bytes())?;
        }
        Ok(frames)
    }

    fn status(&self) -> SinkStatus {
        // `status` takes `&self`: estimate without moving the clock.
        let queued_frames = self.clock.as_ref().map_or(0, |clock| {
            let elapsed = clock.since.elapsed().as_nanos();
            let played = elapsed * u128::from(clock.sample_rate) / 1_000_000_000;
            u64::try_from(u128::from(clock.queued).saturating_sub(played)).unwrap_or(0)
        });
        SinkStatus {
            queued_frames,
            underruns: 0,
        }
    }

    fn schedule(&self) -> Option<SinkSchedule> {
        let period = self.take_period?;
        let since_open = self.opened_at?.elapsed().as_nanos();
        let into_period = (since_open % period.as_nanos()) as u64;
        Some(SinkSchedule {
            next_take_in: period - Duration::from_nanos(into_period),
            period,
        })
    }

    fn flush(&mut self) -> Result<()> {
        self.record("flush");
        self.out()?.flush()?;
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        // Unpaced, nothing is ever queued; paced, the queue is dropped (counted as heard).
        self.record("reset");
        if let Some(clock) = &mut self.clock {
            clock.advance();
            clock.queued = 0;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.record("close");
        self.release()
    }
}

impl Drop for CaptureSink {
    fn drop(&mut self) {
        // The SDK closes an open sink before dropping it; this only guards the gauge.
        let _ = self.release();
        self.record("destroy");
    }
}
