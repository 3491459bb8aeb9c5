//! The public [`Engine`] handle: it turns each call into a [`Command`] for the control
//! thread and waits a bounded time for the reply, so that no caller (a UI thread, the C ABI)
//! can hang on the engine. It also starts the control thread, contains a panic there, and
//! joins it on shutdown.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::control::run_control;
use super::{Command, EngineConfig, EngineStatus, OutputProgress, Reply};
use crate::error::{AudioError, Result};
use crate::event::{EventHandler, TrackId};
use crate::sink::SinkFactory;
use crate::source::TrackSource;
use stellatune_core::DspStage;

/// How long a caller waits for the control thread to answer a command. The control thread
/// never blocks on I/O or on a sink (the output thread does that), so it answers at once.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// One audio engine: exactly one control thread, which answers commands, one output thread,
/// which owns the output sink, and one decode worker. All methods are safe to call from any thread and answer within a bounded time.
pub struct Engine {
    commands: Sender<Command>,
    control: Mutex<Option<JoinHandle<()>>>,
    exited: Receiver<()>,
    name: String,
    underruns: Arc<AtomicU64>,
    progress: Arc<OutputProgress>,
}

impl Engine {
    pub fn start(config: EngineConfig, events: EventHandler) -> Result<Engine> {
        let (cmd_tx, cmd_rx) = unbounded();
        let (exit_tx, exit_rx) = bounded(1);
        let threads = config.threads.clone();
        let name = config.name.clone();
        let underruns = Arc::new(AtomicU64::new(0));
        let counted = underruns.clone();
        let progress = Arc::new(OutputProgress::default());
        let tracked = progress.clone();
        config.replaygain.validate()?;
        if config.fade_ms > super::output::MAX_FADE_MS {
            return Err(AudioError::InvalidArgument(format!(
                "fade_ms must be at most {} ms, got {}",
                super::output::MAX_FADE_MS,
                config.fade_ms
            )));
        }
        let settings = (config.replaygain, config.fade_ms);
        let control = config
            .threads
            .spawn(&format!("{name}-control"), move || {
                // A panic here must not take the process down, and must not leave a handle
                // that looks alive: the thread ends, every later command answers
                // `EngineStopped`, and the owner (the runtime host) restarts the engine.
                let engine_name = name.clone();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    run_control(name, threads, cmd_rx, events, counted, tracked, settings)
                }));
                if let Err(panic) = ran {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    tracing::error!(engine = %engine_name, panic = %message, "engine control thread panicked; the engine is gone");
                }
                let _ = exit_tx.send(());
            })
            .map_err(|e| AudioError::ThreadSpawn {
                thread: "control",
                message: e.to_string(),
            })?;
        Ok(Engine {
            commands: cmd_tx,
            control: Mutex::new(Some(control)),
            exited: exit_rx,
            name: config.name,
            underruns,
            progress,
        })
    }

    fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (tx, rx) = bounded(1);
        self.commands
            .send(make(tx))
            .map_err(|_| AudioError::EngineStopped)?;
        match rx.recv_timeout(COMMAND_TIMEOUT) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(AudioError::Timeout(COMMAND_TIMEOUT.as_millis() as u64))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(AudioError::EngineStopped)
            }
        }
    }

    /// Opens `path` on the calling thread and starts it at once, replacing what played.
    pub fn play(&self, path: impl AsRef<Path>) -> Result<TrackId> {
        let source = TrackSource::open(path)?;
        self.play_source(source)
    }

    pub fn play_source(&self, source: TrackSource) -> Result<TrackId> {
        self.request(|r| Command::Play(source, r))
    }

    /// Switching track is playing another file: the old one stops at once.
    pub fn switch_track(&self, path: impl AsRef<Path>) -> Result<TrackId> {
        self.play(path)
    }

    /// Queues `path` to follow the current track with no gap. One slot: a second call
    /// replaces the queued track.
    pub fn queue_next(&self, path: impl AsRef<Path>) -> Result<TrackId> {
        let source = TrackSource::open(path)?;
        self.queue_next_source(source)
    }

    pub fn queue_next_source(&self, source: TrackSource) -> Result<TrackId> {
        self.request(|r| Command::QueueNext(source, r))
    }

    pub fn pause(&self) -> Result<()> {
        self.request(Command::Pause)
    }

    pub fn resume(&self) -> Result<()> {
        self.request(Command::Resume)
    }

    pub fn stop(&self) -> Result<()> {
        self.request(Command::Stop)
    }

    pub fn seek_ms(&self, position_ms: u64) -> Result<()> {
        self.request(|r| Command::Seek(position_ms, r))
    }

    /// Volume as a linear gain from 0.0 to 2.0.
    pub fn set_volume(&self, volume: f32) -> Result<()> {
        if !volume.is_finite() || !(0.0..=2.0).contains(&volume) {
            return Err(AudioError::InvalidArgument(format!(
                "volume must be between 0.0 and 2.0, got {volume}"
            )));
        }
        self.request(|r| Command::SetVolume(volume, r))
    }

    /// How ReplayGain applies from now on: to the rest of the track playing (with a short
    /// ramp) and to every track after it.
    pub fn set_replaygain(&self, settings: crate::gain::ReplayGainSettings) -> Result<()> {
        settings.validate()?;
        self.request(|r| Command::SetReplayGain(settings, r))
    }

    /// Checks the route on the calling thread ([`SinkFactory::validate`]), then hands it to
    /// the output thread, which creates and (if something plays) opens its sink; answers once
    /// the route is accepted. A sink that cannot be created or opened
    /// is reported afterwards: an `error` event and `route_changed` to none.
    pub fn apply_route(&self, route: Box<dyn SinkFactory>) -> Result<()> {
        route.validate().map_err(AudioError::Sink)?;
        self.request(|r| Command::ApplyRoute(route, r))
    }

    /// Stops playback and clears the route at once; the output thread flushes and closes
    /// the sink right after.
    pub fn clear_route(&self) -> Result<()> {
        self.request(Command::ClearRoute)
    }

    /// Replaces the DSP chain; an empty chain removes it. Stages are prepared for the output
    /// spec before they see audio; a stage that fails is dropped with an `error` event and
    /// playback goes on without it.
    pub fn set_dsp_chain(&self, chain: Vec<Box<dyn DspStage>>) -> Result<()> {
        self.request(|r| Command::SetDspChain(chain, r))
    }

    pub fn status(&self) -> Result<EngineStatus> {
        self.request(Command::Status)
    }

    /// Waits until the output thread has carried out every command answered so far (a sink
    /// opened or closed), at most `timeout`; false if it had not. For callers that want a
    /// command's sink work done before they go on; the engine itself never waits on it.
    pub fn wait_output_settled(&self, timeout: Duration) -> bool {
        self.progress.wait_settled(timeout)
    }

    /// Underruns since the engine started: the output ran dry while playing (the engine had
    /// nothing to give, or the sink reported it). Read without a round trip.
    pub fn underruns_total(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    /// False once the control thread has ended (shut down, or panicked): every command then
    /// answers [`AudioError::EngineStopped`].
    pub fn is_running(&self) -> bool {
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
    }

    /// Fires, or disconnects, when the control thread ends (shut down, or panicked): an owner
    /// that must replace a dead engine waits on it instead of polling [`Self::is_running`].
    pub fn exit_signal(&self) -> Receiver<()> {
        self.exited.clone()
    }

    /// Makes the control thread panic, to test what its owner does about a crashed engine.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&self) {
        let _ = self.commands.send(Command::Panic);
    }

    /// Stops playback, closes the sink and joins the engine's threads, waiting at most `timeout`.
    /// Later commands answer `EngineStopped`; a second call is a no-op.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let control = self
            .control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(control) = control else {
            return Ok(());
        };
        let _ = self.commands.send(Command::Shutdown);
        match self.exited.recv_timeout(timeout) {
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                let _ = control.join();
                tracing::debug!(engine = %self.name, "engine threads joined");
                Ok(())
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                tracing::error!(engine = %self.name, timeout_ms = timeout.as_millis() as u64, "engine did not stop in time");
                // Keep the handle so a later shutdown can still join the thread.
                *self
                    .control
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(control);
                Err(AudioError::Timeout(timeout.as_millis() as u64))
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let running = self.control.get_mut().map(|c| c.is_some()).unwrap_or(true);
        if running {
            tracing::warn!(engine = %self.name, "engine dropped without shutdown; stopping it now");
            let _ = self.shutdown(Duration::from_secs(5));
        }
    }
}
