//! The `misbehave` sink: panics, fails or hangs where its config says, and starts threads
//! (lent by the host) when asked to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use stellatune_plugin_sdk::rt::{self, OneShot, Queue};
use stellatune_plugin_sdk::{Error, OutputSink, OutputSinkType, Result, SinkStatus, Spec, Target};

pub struct MisbehaveSinkType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Create,
    ListTargets,
    Negotiate,
    Open,
    Write,
    Status,
    Flush,
    Reset,
    Close,
    Destroy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    panic_in: Vec<Call>,
    error_in: Vec<Call>,
    hang_in_close_ms: u64,
    /// Sleeps this long in `open` (a sink slow to open).
    hang_in_open_ms: u64,
    /// Threads `create` starts; they run until the instance is destroyed, which joins them.
    threads: u32,
    /// When non-zero, `create` starts one more thread that sleeps this long and is never
    /// joined: the host has to wait for it before it may unload the library.
    unjoined_thread_ms: u64,
    /// When non-zero, the module's shutdown sleeps this long (set by `create`).
    hang_in_shutdown_ms: u64,
}

/// How long the module's shutdown sleeps; set by a `misbehave` instance's config.
static SHUTDOWN_HANG_MS: AtomicU64 = AtomicU64::new(0);

/// What the module's shutdown does for `hang_in_shutdown_ms`.
pub fn hang_in_shutdown() {
    let ms = SHUTDOWN_HANG_MS.load(Ordering::SeqCst);
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

impl Config {
    fn parse(json: &str) -> Result<Config> {
        serde_json::from_str(json)
            .map_err(|e| Error::invalid_argument(format!("misbehave config: {e}")))
    }

    /// Panics or fails if `call` is named in the config.
    fn hit(&self, call: Call) -> Result<()> {
        if self.panic_in.contains(&call) {
            panic!("misbehave: panic in {call:?}");
        }
        if self.error_in.contains(&call) {
            return Err(Error::other(format!("misbehave: error in {call:?}")));
        }
        Ok(())
    }
}

pub struct MisbehaveSink {
    config: Config,
    channels: usize,
    /// Closed on drop: the workers' signal to end.
    stop: Arc<Queue<()>>,
    workers: Vec<rt::Thread>,
}

/// Starts `count` workers that wait for `stop` to close, each confirming it runs.
fn start_workers(count: u32, stop: &Arc<Queue<()>>) -> Result<Vec<rt::Thread>> {
    let mut workers = Vec::new();
    for i in 0..count {
        let started = Arc::new(OneShot::new());
        let (theirs, their_stop) = (started.clone(), stop.clone());
        let worker = rt::spawn_thread(&format!("misbehave-{i}"), move || {
            theirs.put(());
            while their_stop.pop().is_some() {}
        });
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                stop.close();
                workers.into_iter().for_each(|w: rt::Thread| drop(w.join()));
                return Err(e);
            }
        };
        workers.push(worker);
        started
            .wait(Duration::from_secs(10))
            .map_err(|e| Error::other(format!("worker {i} did not start: {e:?}")))?;
    }
    Ok(workers)
}

impl OutputSinkType for MisbehaveSinkType {
    const TYPE_ID: &'static str = "misbehave";
    const DISPLAY_NAME: &'static str = "Misbehaving sink (test)";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","properties":{"panic_in":{"type":"array","items":{"type":"string"}},"error_in":{"type":"array","items":{"type":"string"}},"hang_in_close_ms":{"type":"integer","minimum":0},"hang_in_open_ms":{"type":"integer","minimum":0},"threads":{"type":"integer","minimum":0},"unjoined_thread_ms":{"type":"integer","minimum":0},"hang_in_shutdown_ms":{"type":"integer","minimum":0}},"additionalProperties":false}"#;
    type Instance = MisbehaveSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>> {
        Config::parse(config_json)?.hit(Call::ListTargets)?;
        Ok(vec![Target::new("default", "Misbehaving sink")])
    }

    fn create(config_json: &str, _target: &str) -> Result<MisbehaveSink> {
        let config = Config::parse(config_json)?;
        config.hit(Call::Create)?;
        if config.hang_in_shutdown_ms > 0 {
            SHUTDOWN_HANG_MS.store(config.hang_in_shutdown_ms, Ordering::SeqCst);
        }
        let stop = Arc::new(Queue::new());
        let workers = start_workers(config.threads, &stop)?;
        if config.unjoined_thread_ms > 0 {
            let nap = Duration::from_millis(config.unjoined_thread_ms);
            // Dropped, not joined: left for the host to wait for at unload.
            drop(rt::spawn_thread("misbehave-unjoined", move || {
                std::thread::sleep(nap)
            })?);
        }
        Ok(MisbehaveSink {
            config,
            channels: 0,
            stop,
            workers,
        })
    }
}

impl OutputSink for MisbehaveSink {
    fn negotiate(&mut self, preferred: Spec) -> Result<Spec> {
        self.config.hit(Call::Negotiate)?;
        Ok(preferred)
    }

    fn open(&mut self, spec: Spec) -> Result<()> {
        if self.config.hang_in_open_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.config.hang_in_open_ms));
        }
        self.config.hit(Call::Open)?;
        self.channels = usize::from(spec.channels);
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize> {
        self.config.hit(Call::Write)?;
        Ok(interleaved.len() / self.channels.max(1))
    }

    fn status(&self) -> SinkStatus {
        // No Result to fail with: `error_in: ["status"]` is ignored.
        let _ = self.config.hit(Call::Status);
        SinkStatus::default()
    }

    fn flush(&mut self) -> Result<()> {
        self.config.hit(Call::Flush)
    }

    fn reset(&mut self) -> Result<()> {
        self.config.hit(Call::Reset)
    }

    fn close(&mut self) -> Result<()> {
        if self.config.hang_in_close_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.config.hang_in_close_ms));
        }
        self.config.hit(Call::Close)
    }
}

impl Drop for MisbehaveSink {
    fn drop(&mut self) {
        self.stop.close();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        if self.config.panic_in.contains(&Call::Destroy) {
            panic!("misbehave: panic in Destroy");
        }
    }
}
