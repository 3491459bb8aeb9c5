//! The `capture` sink: raw little-endian f32 to a file, lifecycle calls to `<file>.calls`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use stellatune_plugin_sdk::{
    Error, OutputSink, OutputSinkType, Result, Spec, Target, emit_event, log, log_level, metric_add,
};

/// The gauge of open capture sinks.
const OPEN_METRIC: &str = "test_capture_open";

pub struct CaptureSinkType;

pub struct CaptureSink {
    path: String,
    calls_path: String,
    out: Option<BufWriter<File>>,
    channels: usize,
}

impl OutputSinkType for CaptureSinkType {
    const TYPE_ID: &'static str = "capture";
    const DISPLAY_NAME: &'static str = "Capture to file (test)";
    type Instance = CaptureSink;

    fn list_targets(_config_json: &str) -> Result<Vec<Target>> {
        Ok(vec![Target::new("capture.raw", "capture.raw")])
    }

    fn create(_config_json: &str, target: &str) -> Result<CaptureSink> {
        if target.is_empty() {
            return Err(Error::invalid_argument(
                "capture needs a file path as its target",
            ));
        }
        Ok(CaptureSink {
            path: target.to_owned(),
            calls_path: format!("{target}.calls"),
            out: None,
            channels: 0,
        })
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
        let out = self.out()?;
        for s in interleaved {
            out.write_all(&s.to_le_bytes())?;
        }
        Ok(interleaved.len() / channels)
    }

    fn flush(&mut self) -> Result<()> {
        self.record("flush");
        self.out()?.flush()?;
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        // Unpaced: nothing is ever queued.
        self.record("reset");
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
