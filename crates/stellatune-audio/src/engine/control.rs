//! The control thread: the one thread that owns the output sink, the DSP chain and the
//! playback state. It starts the decode worker, then loops over commands and decoded blocks,
//! giving commands priority so that a full pipeline never delays pause, seek or shutdown.
//! Command dispatch lives here; what each command does lives with its concern ([`super::track`],
//! [`super::output`], [`super::dsp`]), as further `impl Control` blocks.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};

use super::output::{OpenSink, Pending};
use super::track::CurrentTrack;
use super::{Command, EngineStatus};
use crate::error::AudioError;
use crate::event::{EngineEvent, EventHandler, PlaybackState, TrackId};
use crate::source::TrackInfo;
use crate::worker::{self, WorkerCmd, WorkerMsg};
use stellatune_core::DspStage;
use stellatune_core::StreamSpec;
use stellatune_core::ThreadCounter;

/// Blocks the decode worker may run ahead of the sink (a block is up to 8192 frames, about
/// 3 s in all at 44.1 kHz).
const WORKER_QUEUE_BLOCKS: usize = 16;
/// How long the control thread sleeps when a paced sink is full.
const SINK_FULL_WAIT: Duration = Duration::from_millis(5);

pub(super) struct Control {
    pub(super) events: EventHandler,
    pub(super) worker_tx: Sender<WorkerCmd>,
    pub(super) worker_rx: Receiver<WorkerMsg>,
    pub(super) state: PlaybackState,
    pub(super) sink: Option<OpenSink>,
    pub(super) epoch: u64,
    pub(super) next_track_id: TrackId,
    pub(super) current: Option<CurrentTrack>,
    pub(super) queued_next: Option<(TrackId, TrackInfo)>,
    pub(super) pending: Option<Pending>,
    pub(super) volume: f32,
    pub(super) applied_volume: f32,
    pub(super) scratch: Vec<f32>,
    pub(super) last_position_event: Option<Instant>,
    pub(super) total_frames_written: u64,
    pub(super) dsp: Vec<Box<dyn DspStage>>,
    /// The spec the DSP chain was last prepared for.
    pub(super) dsp_spec: Option<StreamSpec>,
}

pub(super) fn run_control(
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
    pub(super) fn run(&mut self, commands: &Receiver<Command>) {
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

    pub(super) fn emit(&self, event: EngineEvent) {
        (self.events)(event);
    }

    pub(super) fn set_state(&mut self, state: PlaybackState) {
        if self.state != state {
            self.state = state;
            tracing::debug!(?state, "playback state changed");
            self.emit(EngineEvent::StateChanged { state });
        }
    }

    pub(super) fn fail(&mut self, track_id: Option<TrackId>, message: String) {
        tracing::warn!(message, "playback error");
        self.emit(EngineEvent::Error { message, track_id });
        self.stop_playback();
    }

    /// Returns false on shutdown.
    pub(super) fn handle(&mut self, cmd: Command) -> bool {
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

    pub(super) fn allocate_track_id(&mut self) -> TrackId {
        let id = self.next_track_id;
        self.next_track_id += 1;
        id
    }

    pub(super) fn status(&self) -> EngineStatus {
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
}
