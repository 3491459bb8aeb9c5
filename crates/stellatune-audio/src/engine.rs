//! The engine handle and its control thread.

use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};

use crate::error::{AudioError, Result};
use crate::event::{EngineEvent, EventHandler, PlaybackState, TrackId};
use crate::sink::{Sink, SinkFactory};
use crate::source::{TrackInfo, TrackSource};
use crate::worker::{self, WorkerCmd, WorkerMsg};
use stellatune_core::DspStage;
use stellatune_core::StreamSpec;
use stellatune_core::ThreadCounter;

/// How long a caller waits for the control thread to answer a command. The control thread
/// never blocks on I/O, so only opening an output device comes anywhere near this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Blocks the decode worker may run ahead of the sink (a block is up to 8192 frames, about
/// 3 s in all at 44.1 kHz).
const WORKER_QUEUE_BLOCKS: usize = 16;
/// The most frames offered to a sink in one write, so volume changes apply promptly.
const WRITE_FRAMES: usize = 2048;
/// How long the control thread sleeps when a paced sink is full.
const SINK_FULL_WAIT: Duration = Duration::from_millis(5);
const POSITION_INTERVAL: Duration = Duration::from_millis(250);
/// One-pole smoothing per frame for volume changes: about 5 ms to settle, no clicks.
const VOLUME_SMOOTHING: f32 = 0.005;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Used for thread names, so several engines in one process (tests) stay apart in logs.
    pub name: String,
    pub threads: ThreadCounter,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            name: "stellatune".into(),
            threads: ThreadCounter::new(),
        }
    }
}

/// A snapshot of what the engine is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    pub state: PlaybackState,
    pub track_id: Option<TrackId>,
    pub track: Option<TrackInfo>,
    pub position_ms: u64,
    pub volume: f32,
    pub route: Option<String>,
    pub output_spec: Option<StreamSpec>,
    pub queued_next: Option<TrackId>,
    pub frames_written: u64,
}

type Reply<T> = Sender<Result<T>>;

enum Command {
    Play(TrackSource, Reply<TrackId>),
    QueueNext(TrackSource, Reply<TrackId>),
    Pause(Reply<()>),
    Resume(Reply<()>),
    Stop(Reply<()>),
    Seek(u64, Reply<()>),
    SetVolume(f32, Reply<()>),
    ApplyRoute(Box<dyn SinkFactory>, Reply<()>),
    ClearRoute(Reply<()>),
    SetDspChain(Vec<Box<dyn DspStage>>, Reply<()>),
    Status(Reply<EngineStatus>),
    #[cfg(feature = "fault-injection")]
    Panic,
    Shutdown,
}

/// One audio engine: exactly one control thread, which owns the output sink, and one decode
/// worker. All methods are safe to call from any thread and answer within a bounded time.
pub struct Engine {
    commands: Sender<Command>,
    control: Mutex<Option<JoinHandle<()>>>,
    exited: Receiver<()>,
    name: String,
}

impl Engine {
    pub fn start(config: EngineConfig, events: EventHandler) -> Result<Engine> {
        let (cmd_tx, cmd_rx) = unbounded();
        let (exit_tx, exit_rx) = bounded(1);
        let threads = config.threads.clone();
        let name = config.name.clone();
        let control = config
            .threads
            .spawn(&format!("{name}-control"), move || {
                // A panic here must not take the process down, and must not leave a handle
                // that looks alive: the thread ends, every later command answers
                // `EngineStopped`, and the owner (the runtime host) restarts the engine.
                let engine_name = name.clone();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    run_control(name, threads, cmd_rx, events)
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

    pub fn apply_route(&self, route: Box<dyn SinkFactory>) -> Result<()> {
        self.request(|r| Command::ApplyRoute(route, r))
    }

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

    /// False once the control thread has ended (shut down, or panicked): every command then
    /// answers [`AudioError::EngineStopped`].
    pub fn is_running(&self) -> bool {
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
    }

    /// Makes the control thread panic, to test what its owner does about a crashed engine.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&self) {
        let _ = self.commands.send(Command::Panic);
    }

    /// Stops playback, closes the sink and joins both threads, waiting at most `timeout`.
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

struct OpenSink {
    sink: Box<dyn Sink>,
    describe: String,
    spec: Option<StreamSpec>,
}

struct CurrentTrack {
    id: TrackId,
    info: TrackInfo,
    /// Where this track's written frames are counted from.
    start_ms: u64,
    frames_written: u64,
    /// True once the worker confirmed the track and its TrackStarted event went out.
    announced: bool,
}

struct Pending {
    track_id: TrackId,
    samples: Vec<f32>,
    offset: usize,
}

struct Control {
    events: EventHandler,
    worker_tx: Sender<WorkerCmd>,
    worker_rx: Receiver<WorkerMsg>,
    state: PlaybackState,
    sink: Option<OpenSink>,
    epoch: u64,
    next_track_id: TrackId,
    current: Option<CurrentTrack>,
    queued_next: Option<(TrackId, TrackInfo)>,
    pending: Option<Pending>,
    volume: f32,
    applied_volume: f32,
    scratch: Vec<f32>,
    last_position_event: Option<Instant>,
    total_frames_written: u64,
    dsp: Vec<Box<dyn DspStage>>,
    /// The spec the DSP chain was last prepared for.
    dsp_spec: Option<StreamSpec>,
}

fn run_control(
    name: String,
    threads: ThreadCounter,
    commands: Receiver<Command>,
    events: EventHandler,
) {
    let (worker_cmd_tx, worker_cmd_rx) = unbounded();
    let (worker_msg_tx, worker_msg_rx) = bounded(WORKER_QUEUE_BLOCKS);
    let worker = match threads.spawn(&format!("{name}-decode"), move || {
        worker::run(worker_cmd_rx, worker_msg_tx)
    }) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::error!(error = %e, "cannot start decode worker");
            events(EngineEvent::Error {
                message: format!("cannot start decode worker: {e}"),
                track_id: None,
            });
            return;
        }
    };
    let mut control = Control {
        events,
        worker_tx: worker_cmd_tx,
        worker_rx: worker_msg_rx,
        state: PlaybackState::Stopped,
        sink: None,
        epoch: 0,
        next_track_id: 1,
        current: None,
        queued_next: None,
        pending: None,
        volume: 1.0,
        applied_volume: 1.0,
        scratch: Vec::new(),
        last_position_event: None,
        total_frames_written: 0,
        dsp: Vec::new(),
        dsp_spec: None,
    };
    control.run(&commands);
    control.close_sink();
    let _ = control.worker_tx.send(WorkerCmd::Shutdown);
    drop(control);
    let _ = worker.join();
}

impl Control {
    fn run(&mut self, commands: &Receiver<Command>) {
        loop {
            // Commands first, so a full pipeline never delays pause, seek or shutdown.
            loop {
                match commands.try_recv() {
                    Ok(cmd) => {
                        if !self.handle(cmd) {
                            return;
                        }
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            }
            if self.state != PlaybackState::Playing {
                match commands.recv() {
                    Ok(cmd) => {
                        if !self.handle(cmd) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
                continue;
            }
            if self.pending.is_none() {
                select! {
                    recv(commands) -> cmd => match cmd {
                        Ok(cmd) => if !self.handle(cmd) { return },
                        Err(_) => return,
                    },
                    recv(self.worker_rx) -> msg => match msg {
                        Ok(msg) => self.on_worker(msg),
                        Err(_) => {
                            self.fail(None, "decode worker stopped unexpectedly".into());
                        }
                    },
                }
                continue;
            }
            let made_progress = self.write_pending();
            if !made_progress && self.state == PlaybackState::Playing {
                select! {
                    recv(commands) -> cmd => match cmd {
                        Ok(cmd) => if !self.handle(cmd) { return },
                        Err(_) => return,
                    },
                    default(SINK_FULL_WAIT) => {}
                }
            }
        }
    }

    fn emit(&self, event: EngineEvent) {
        (self.events)(event);
    }

    fn set_state(&mut self, state: PlaybackState) {
        if self.state != state {
            self.state = state;
            tracing::debug!(?state, "playback state changed");
            self.emit(EngineEvent::StateChanged { state });
        }
    }

    fn fail(&mut self, track_id: Option<TrackId>, message: String) {
        tracing::warn!(message, "playback error");
        self.emit(EngineEvent::Error { message, track_id });
        self.stop_playback();
    }

    /// Returns false on shutdown.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Play(source, reply) => {
                let _ = reply.send(self.play(source));
            }
            Command::QueueNext(source, reply) => {
                let result = if self.current.is_none() {
                    Err(AudioError::NothingPlaying)
                } else {
                    let id = self.allocate_track_id();
                    let replaces = self.queued_next.as_ref().map(|q| q.0);
                    self.queued_next = Some((id, source.info().clone()));
                    let _ = self.worker_tx.send(WorkerCmd::Enqueue {
                        track_id: id,
                        source,
                        replaces,
                    });
                    Ok(id)
                };
                let _ = reply.send(result);
            }
            Command::Pause(reply) => {
                let result = match self.state {
                    PlaybackState::Playing | PlaybackState::Paused => {
                        self.set_state(PlaybackState::Paused);
                        Ok(())
                    }
                    PlaybackState::Stopped => Err(AudioError::NothingPlaying),
                };
                let _ = reply.send(result);
            }
            Command::Resume(reply) => {
                let result = match self.state {
                    PlaybackState::Paused | PlaybackState::Playing => {
                        self.set_state(PlaybackState::Playing);
                        Ok(())
                    }
                    PlaybackState::Stopped => Err(AudioError::NothingPlaying),
                };
                let _ = reply.send(result);
            }
            Command::Stop(reply) => {
                self.stop_playback();
                let _ = reply.send(Ok(()));
            }
            Command::Seek(position_ms, reply) => {
                let _ = reply.send(self.seek(position_ms));
            }
            Command::SetVolume(volume, reply) => {
                self.volume = volume;
                let _ = reply.send(Ok(()));
            }
            Command::ApplyRoute(factory, reply) => {
                let _ = reply.send(self.apply_route(factory));
            }
            Command::ClearRoute(reply) => {
                if self.sink.is_some() {
                    self.stop_playback();
                    self.close_sink();
                    self.emit(EngineEvent::RouteChanged { route: None });
                }
                let _ = reply.send(Ok(()));
            }
            Command::SetDspChain(chain, reply) => {
                let _ = reply.send(self.set_dsp_chain(chain));
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            #[cfg(feature = "fault-injection")]
            Command::Panic => panic!("fault injection: engine control thread panics"),
            Command::Shutdown => {
                self.stop_playback();
                return false;
            }
        }
        true
    }

    fn set_dsp_chain(&mut self, mut chain: Vec<Box<dyn DspStage>>) -> Result<()> {
        if let Some(spec) = self.sink.as_ref().and_then(|s| s.spec) {
            for stage in &mut chain {
                stage.prepare(spec).map_err(|source| AudioError::Dsp {
                    stage: stage.describe(),
                    source,
                })?;
            }
            self.dsp_spec = Some(spec);
        } else {
            self.dsp_spec = None;
        }
        let names: Vec<String> = chain.iter().map(|s| s.describe()).collect();
        tracing::info!(chain = ?names, "dsp chain set");
        // The old stages drop here, on the control thread that ran them.
        self.dsp = chain;
        Ok(())
    }

    fn run_dsp(&mut self, samples: &mut [f32]) {
        if self.dsp.is_empty() {
            return;
        }
        let Some(spec) = self.sink.as_ref().and_then(|s| s.spec) else {
            return;
        };
        let mut failed = Vec::new();
        if self.dsp_spec != Some(spec) {
            for (i, stage) in self.dsp.iter_mut().enumerate() {
                if let Err(e) = stage.prepare(spec) {
                    failed.push((i, e));
                }
            }
            self.dsp_spec = Some(spec);
        }
        for (i, stage) in self.dsp.iter_mut().enumerate() {
            if failed.iter().any(|(f, _)| *f == i) {
                continue;
            }
            if let Err(e) = stage.process(samples) {
                failed.push((i, e));
            }
        }
        // A failing stage is bypassed from now on rather than stopping the music.
        for (i, e) in failed.into_iter().rev() {
            let stage = self.dsp.remove(i);
            let message = format!("dsp {} failed and was removed: {e}", stage.describe());
            tracing::warn!(message);
            self.emit(EngineEvent::Error {
                message,
                track_id: self.current.as_ref().map(|c| c.id),
            });
        }
    }

    fn reset_dsp(&mut self) {
        for stage in &mut self.dsp {
            stage.reset();
        }
    }

    fn allocate_track_id(&mut self) -> TrackId {
        let id = self.next_track_id;
        self.next_track_id += 1;
        id
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            state: self.state,
            track_id: self.current.as_ref().map(|c| c.id),
            track: self.current.as_ref().map(|c| c.info.clone()),
            position_ms: self.position_ms(),
            volume: self.volume,
            route: self.sink.as_ref().map(|s| s.describe.clone()),
            output_spec: self.sink.as_ref().and_then(|s| s.spec),
            queued_next: self.queued_next.as_ref().map(|q| q.0),
            frames_written: self.total_frames_written,
        }
    }

    fn position_ms(&self) -> u64 {
        match (&self.current, self.sink.as_ref().and_then(|s| s.spec)) {
            (Some(c), Some(spec)) => c.start_ms + spec.frames_to_ms(c.frames_written),
            (Some(c), None) => c.start_ms,
            _ => 0,
        }
    }

    /// Opens the sink for `track_spec` if it is not open yet, or reopens it when it would
    /// take this track natively and nothing of the old spec is queued.
    fn ensure_sink_open(&mut self, track_spec: StreamSpec) -> Result<StreamSpec> {
        let sink = self.sink.as_mut().ok_or(AudioError::NoRoute)?;
        let wanted = sink.sink.negotiate(track_spec).map_err(AudioError::Sink)?;
        if sink.spec != Some(wanted) {
            if sink.spec.is_some() {
                let _ = sink.sink.close();
                sink.spec = None;
            }
            sink.sink.open(wanted).map_err(AudioError::Sink)?;
            sink.spec = Some(wanted);
        }
        Ok(wanted)
    }

    fn play(&mut self, source: TrackSource) -> Result<TrackId> {
        if self.sink.is_none() {
            return Err(AudioError::NoRoute);
        }
        self.stop_playback();
        let spec = self.ensure_sink_open(source.info().spec())?;
        let id = self.allocate_track_id();
        self.epoch += 1;
        self.current = Some(CurrentTrack {
            id,
            info: source.info().clone(),
            start_ms: 0,
            frames_written: 0,
            announced: false,
        });
        let _ = self.worker_tx.send(WorkerCmd::Load {
            epoch: self.epoch,
            track_id: id,
            source,
            spec,
            start_ms: 0,
        });
        self.last_position_event = None;
        // A new track starts from silence: no ramp, or a volume set while stopped is late.
        self.applied_volume = self.volume;
        self.set_state(PlaybackState::Playing);
        Ok(id)
    }

    fn seek(&mut self, position_ms: u64) -> Result<()> {
        let Some(current) = self.current.as_ref() else {
            return Err(AudioError::NothingPlaying);
        };
        if let Some(duration) = current.info.duration_ms {
            if position_ms > duration {
                return Err(AudioError::InvalidArgument(format!(
                    "seek to {position_ms} ms is past the end ({duration} ms)"
                )));
            }
        }
        let spec = self
            .sink
            .as_ref()
            .and_then(|s| s.spec)
            .ok_or(AudioError::NoRoute)?;
        self.reposition(position_ms, spec);
        self.emit_position(true);
        Ok(())
    }

    /// Restarts decoding of the current track at `position_ms` in `spec`, dropping what was
    /// decoded ahead.
    fn reposition(&mut self, position_ms: u64, spec: StreamSpec) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        self.epoch += 1;
        current.start_ms = position_ms;
        current.frames_written = 0;
        self.pending = None;
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.sink.reset();
        }
        for stage in &mut self.dsp {
            stage.reset();
        }
        let _ = self.worker_tx.send(WorkerCmd::Seek {
            epoch: self.epoch,
            track_id: current.id,
            position_ms,
            spec,
        });
    }

    fn stop_playback(&mut self) {
        let was_active = self.current.is_some() || self.state != PlaybackState::Stopped;
        self.epoch += 1;
        let _ = self.worker_tx.send(WorkerCmd::Stop { epoch: self.epoch });
        self.pending = None;
        self.queued_next = None;
        if let Some(current) = self.current.take() {
            if current.announced {
                self.emit(EngineEvent::TrackEnded {
                    track_id: current.id,
                });
            }
        }
        if was_active {
            if let Some(sink) = self.sink.as_mut() {
                let _ = sink.sink.reset();
            }
            self.reset_dsp();
        }
        self.set_state(PlaybackState::Stopped);
    }

    fn apply_route(&mut self, factory: Box<dyn SinkFactory>) -> Result<()> {
        let describe = factory.describe();
        let mut sink = factory.create().map_err(AudioError::Sink)?;
        let preferred = self
            .current
            .as_ref()
            .map(|c| c.info.spec())
            .or_else(|| self.sink.as_ref().and_then(|s| s.spec));
        let mut opened = None;
        if let (Some(preferred), true) = (preferred, self.current.is_some()) {
            // Something is playing: the new sink must take over at once.
            let spec = sink.negotiate(preferred).map_err(AudioError::Sink)?;
            sink.open(spec).map_err(AudioError::Sink)?;
            opened = Some(spec);
        }
        let old_spec = self.sink.as_ref().and_then(|s| s.spec);
        self.close_sink();
        tracing::info!(route = %describe, "output route applied");
        self.sink = Some(OpenSink {
            sink,
            describe: describe.clone(),
            spec: opened,
        });
        if let Some(spec) = opened {
            if old_spec != Some(spec) {
                let position = self.position_ms();
                self.reposition(position, spec);
            }
        }
        self.emit(EngineEvent::RouteChanged {
            route: Some(describe),
        });
        Ok(())
    }

    fn close_sink(&mut self) {
        if let Some(mut open) = self.sink.take() {
            if let Err(e) = open.sink.flush() {
                tracing::warn!(route = %open.describe, error = %e, "sink flush failed");
            }
            if let Err(e) = open.sink.close() {
                tracing::warn!(route = %open.describe, error = %e, "sink close failed");
            }
        }
    }

    fn on_worker(&mut self, msg: WorkerMsg) {
        if msg.epoch() != self.epoch {
            return;
        }
        match msg {
            WorkerMsg::TrackStarted {
                track_id,
                info,
                start_ms,
                ..
            } => {
                let is_queued = self.queued_next.as_ref().map(|q| q.0) == Some(track_id);
                if is_queued {
                    self.queued_next = None;
                    self.current = Some(CurrentTrack {
                        id: track_id,
                        info: info.clone(),
                        start_ms,
                        frames_written: 0,
                        announced: false,
                    });
                }
                if let Some(current) = self.current.as_mut().filter(|c| c.id == track_id) {
                    current.announced = true;
                    self.last_position_event = None;
                    self.emit(EngineEvent::TrackStarted { track_id, info });
                }
            }
            WorkerMsg::Block {
                track_id, samples, ..
            } => {
                // Blocks of a queued track that was replaced after the worker started it.
                if self.current.as_ref().map(|c| c.id) != Some(track_id) {
                    return;
                }
                let mut samples = samples;
                self.run_dsp(&mut samples);
                self.pending = Some(Pending {
                    track_id,
                    samples,
                    offset: 0,
                });
            }
            WorkerMsg::TrackEnded { track_id, .. } => {
                if self.current.as_ref().map(|c| c.id) != Some(track_id) {
                    return;
                }
                self.emit_position(true);
                self.emit(EngineEvent::TrackEnded { track_id });
                self.current = None;
                if self.queued_next.is_none() {
                    if let Some(sink) = self.sink.as_mut() {
                        if let Err(e) = sink.sink.flush() {
                            self.emit(EngineEvent::Error {
                                message: e.to_string(),
                                track_id: Some(track_id),
                            });
                        }
                    }
                    self.set_state(PlaybackState::Stopped);
                }
            }
            WorkerMsg::Error {
                track_id, error, ..
            } => {
                tracing::warn!(track_id, error = %error, "decode error");
                self.emit(EngineEvent::Error {
                    message: error.to_string(),
                    track_id: Some(track_id),
                });
            }
        }
    }

    /// Writes what the sink takes now. Returns false when the sink took nothing.
    fn write_pending(&mut self) -> bool {
        let (Some(pending), Some(sink)) = (self.pending.as_mut(), self.sink.as_mut()) else {
            return false;
        };
        let Some(spec) = sink.spec else {
            return false;
        };
        let channels = usize::from(spec.channels);
        let remaining = &pending.samples[pending.offset..];
        let offer = remaining.len().min(WRITE_FRAMES * channels);
        let chunk = &remaining[..offer];
        let exact = self.volume == 1.0 && self.applied_volume == 1.0;
        let result = if exact {
            sink.sink.write(chunk)
        } else {
            self.scratch.clear();
            let mut gain = self.applied_volume;
            for frame in chunk.chunks_exact(channels) {
                gain += (self.volume - gain) * VOLUME_SMOOTHING;
                self.scratch.extend(frame.iter().map(|s| s * gain));
            }
            let result = sink.sink.write(&self.scratch);
            if let Ok(taken) = result {
                // Recompute the gain the taken frames ended on, so untaken ones ramp again.
                let mut g = self.applied_volume;
                for _ in 0..taken {
                    g += (self.volume - g) * VOLUME_SMOOTHING;
                }
                self.applied_volume = if (g - self.volume).abs() < 1e-4 {
                    self.volume
                } else {
                    g
                };
            }
            result
        };
        let taken = match result {
            Ok(n) => n,
            Err(e) => {
                let track = pending.track_id;
                self.fail(Some(track), format!("output failed: {e}"));
                return false;
            }
        };
        pending.offset += taken * channels;
        if pending.offset >= pending.samples.len() {
            self.pending = None;
        }
        if let Some(current) = self.current.as_mut() {
            current.frames_written += taken as u64;
        }
        self.total_frames_written += taken as u64;
        self.emit_position(false);
        taken > 0
    }

    fn emit_position(&mut self, force: bool) {
        let now = Instant::now();
        let due = self
            .last_position_event
            .is_none_or(|t| now.duration_since(t) >= POSITION_INTERVAL);
        if !(force || due) {
            return;
        }
        let Some(current) = self.current.as_ref() else {
            return;
        };
        if !current.announced {
            return;
        }
        self.last_position_event = Some(now);
        self.emit(EngineEvent::Position {
            track_id: current.id,
            position_ms: self.position_ms(),
            duration_ms: current.info.duration_ms,
        });
    }
}
