//! The control thread: it answers every command at once from the shared playback state and
//! hands what needs the sink or the decoder to the output thread, without waiting for it. A
//! sink that takes seconds to open (a plugin starting its sidecar) therefore never delays
//! pause, volume, status or shutdown.
//!
//! What a command can only learn from the output thread (a route whose sink cannot be
//! created or opened, a track the sink cannot take) comes back as events: an `error` event,
//! the playback stopping, and for a failed route a `route_changed` to none. The command
//! itself has already answered `Ok` when it was accepted.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::output::{OutputCmd, run_output};
use super::track::{CurrentTrack, Playback};
use super::{Command, OutputProgress, UnderrunCounter};
use crate::error::{AudioError, Result};
use crate::event::{EngineEvent, EventHandler, PlaybackState};
use crate::worker;
use stellatune_core::ThreadCounter;

/// Messages the decode worker may run ahead of the sink (a message is up to 32 768 frames,
/// about 3 s in all at 44.1 kHz).
const WORKER_QUEUE_BLOCKS: usize = 4;

pub(super) type SharedPlayback = Arc<Mutex<Playback>>;

pub(super) fn lock(shared: &SharedPlayback) -> MutexGuard<'_, Playback> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Control {
    shared: SharedPlayback,
    output: Sender<OutputCmd>,
    /// The output thread, unparked after each command: it sleeps in `park_timeout`, not in
    /// the channel's blocking receive, whose spin-then-yield cost it eight `sched_yield`
    /// calls per wake-up while playing.
    output_thread: std::thread::Thread,
    progress: Arc<OutputProgress>,
}

pub(super) fn run_control(
    name: String,
    threads: ThreadCounter,
    commands: Receiver<Command>,
    events: EventHandler,
    underruns: Arc<AtomicU64>,
    progress: Arc<OutputProgress>,
    settings: (crate::gain::ReplayGainSettings, u32),
) {
    let (replaygain, fade_ms) = settings;
    let (worker_cmd_tx, worker_cmd_rx) = unbounded();
    let (worker_msg_tx, worker_msg_rx) = bounded(WORKER_QUEUE_BLOCKS);
    let (spent_tx, spent_rx) = bounded(worker::SPENT_KEPT);
    let fail = |what: &str, e: std::io::Error| {
        tracing::error!(error = %e, "cannot start {what}");
        events(EngineEvent::Error {
            message: format!("cannot start {what}: {e}"),
            track_id: None,
        });
    };
    let shared: SharedPlayback = Arc::new(Mutex::new(Playback::new(events.clone(), replaygain)));
    let (output_tx, output_rx) = unbounded();
    let waiting_for_block = Arc::new(AtomicBool::new(false));
    // The output thread first: the worker wakes it after each block it sends.
    let output = {
        let shared = shared.clone();
        let worker_tx = worker_cmd_tx.clone();
        let underruns = UnderrunCounter::new(underruns, events.clone());
        let progress = progress.clone();
        let waiting = waiting_for_block.clone();
        threads.spawn(&format!("{name}-output"), move || {
            run_output(
                shared,
                output_rx,
                worker_tx,
                worker::FromWorker {
                    messages: worker_msg_rx,
                    spent: spent_tx,
                    waiting,
                },
                underruns,
                progress,
                fade_ms,
            )
        })
    };
    let output = match output {
        Ok(handle) => handle,
        Err(e) => return fail("output thread", e),
    };
    let bell = worker::BlockBell::new(output.thread().clone(), waiting_for_block);
    let worker = match threads.spawn(&format!("{name}-decode"), move || {
        worker::run(worker_cmd_rx, worker_msg_tx, spent_rx, bell)
    }) {
        Ok(handle) => handle,
        Err(e) => {
            let _ = output_tx.send(OutputCmd::Shutdown);
            output.thread().unpark();
            let _ = output.join();
            return fail("decode worker", e);
        }
    };
    let control = Control {
        shared,
        output: output_tx,
        output_thread: output.thread().clone(),
        progress,
    };
    control.run(&commands);
    // The output thread closes the sink and stops the worker before it ends.
    let _ = control.output.send(OutputCmd::Shutdown);
    control.output_thread.unpark();
    let _ = output.join();
    tracing::debug!("engine output thread joined");
    let _ = worker_cmd_tx.send(worker::WorkerCmd::Shutdown);
    let _ = worker.join();
    tracing::debug!("engine decode worker joined");
}

impl Drop for Control {
    /// However this thread ends (a panic included), the output thread sees the channel
    /// closed at once instead of after its current sleep.
    fn drop(&mut self) {
        let (closed, _) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.output, closed));
        self.output_thread.unpark();
    }
}

impl Control {
    fn run(&self, commands: &Receiver<Command>) {
        while let Ok(cmd) = commands.recv() {
            if !self.handle(cmd) {
                return;
            }
        }
    }

    fn send(&self, cmd: OutputCmd) {
        // The output thread lives until this thread tells it to end.
        self.progress.sent();
        if self.output.send(cmd).is_err() {
            self.progress.handled();
        }
        self.output_thread.unpark();
    }

    /// Returns false on shutdown.
    fn handle(&self, cmd: Command) -> bool {
        match cmd {
            Command::Play(source, reply) => {
                let result = {
                    let mut pb = lock(&self.shared);
                    if pb.route.is_none() {
                        Err(AudioError::NoRoute)
                    } else {
                        pb.stop_playback();
                        let id = pb.allocate_track_id();
                        pb.current = Some(CurrentTrack {
                            id,
                            info: source.info().clone(),
                            start_ms: 0,
                            frames_written: 0,
                            announced: false,
                        });
                        pb.last_position_event = None;
                        pb.set_state(PlaybackState::Playing);
                        Ok((id, pb.epoch))
                    }
                };
                let result = result.map(|(track_id, epoch)| {
                    self.send(OutputCmd::Play {
                        epoch,
                        track_id,
                        source,
                    });
                    track_id
                });
                let _ = reply.send(result);
            }
            Command::QueueNext(source, reply) => {
                let result = {
                    let mut pb = lock(&self.shared);
                    if pb.current.is_none() {
                        Err(AudioError::NothingPlaying)
                    } else {
                        let id = pb.allocate_track_id();
                        let replaces = pb.queued_next.as_ref().map(|q| q.0);
                        pb.queued_next = Some((id, source.info().clone()));
                        Ok((id, replaces))
                    }
                };
                let result = result.map(|(track_id, replaces)| {
                    self.send(OutputCmd::Enqueue {
                        track_id,
                        source,
                        replaces,
                    });
                    track_id
                });
                let _ = reply.send(result);
            }
            Command::Pause(reply) => {
                let result = {
                    let mut pb = lock(&self.shared);
                    match pb.state {
                        PlaybackState::Playing | PlaybackState::Paused => {
                            pb.set_state(PlaybackState::Paused);
                            Ok(())
                        }
                        PlaybackState::Stopped => Err(AudioError::NothingPlaying),
                    }
                };
                let _ = reply.send(result);
            }
            Command::Resume(reply) => {
                let result = {
                    let mut pb = lock(&self.shared);
                    match pb.state {
                        PlaybackState::Paused | PlaybackState::Playing => {
                            pb.set_state(PlaybackState::Playing);
                            Ok(())
                        }
                        PlaybackState::Stopped => Err(AudioError::NothingPlaying),
                    }
                };
                if result.is_ok() {
                    // The output thread sleeps while paused; it writes again from now.
                    self.send(OutputCmd::Wake);
                }
                let _ = reply.send(result);
            }
            Command::Stop(reply) => {
                let epoch = {
                    let mut pb = lock(&self.shared);
                    pb.stop_playback();
                    pb.epoch
                };
                self.send(OutputCmd::Stop { epoch });
                let _ = reply.send(Ok(()));
            }
            Command::Seek(position_ms, reply) => {
                let _ = reply.send(self.seek(position_ms));
            }
            Command::SetVolume(volume, reply) => {
                // The output thread reads it before each write and ramps to it.
                lock(&self.shared).volume = volume;
                let _ = reply.send(Ok(()));
            }
            Command::SetReplayGain(settings, reply) => {
                // Read by the output thread before each write, like the volume.
                lock(&self.shared).replaygain = settings;
                let _ = reply.send(Ok(()));
            }
            Command::ApplyRoute(factory, reply) => {
                let describe = factory.describe();
                let generation = {
                    let mut pb = lock(&self.shared);
                    pb.route_generation += 1;
                    pb.route = Some(describe.clone());
                    tracing::info!(route = %describe, "output route applied");
                    pb.emit(EngineEvent::RouteChanged {
                        route: Some(describe),
                    });
                    pb.route_generation
                };
                self.send(OutputCmd::Route {
                    factory,
                    generation,
                });
                let _ = reply.send(Ok(()));
            }
            Command::ClearRoute(reply) => {
                let cleared = {
                    let mut pb = lock(&self.shared);
                    if pb.route.is_some() {
                        pb.stop_playback();
                        pb.route = None;
                        pb.spec = None;
                        pb.route_generation += 1;
                        pb.emit(EngineEvent::RouteChanged { route: None });
                        Some(pb.epoch)
                    } else {
                        None
                    }
                };
                if let Some(epoch) = cleared {
                    self.send(OutputCmd::ClearRoute { epoch });
                }
                let _ = reply.send(Ok(()));
            }
            Command::SetDspChain(chain, reply) => {
                let names: Vec<String> = chain.iter().map(|s| s.describe()).collect();
                tracing::info!(chain = ?names, "dsp chain set");
                self.send(OutputCmd::DspChain(chain));
                let _ = reply.send(Ok(()));
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(lock(&self.shared).status()));
            }
            #[cfg(feature = "fault-injection")]
            Command::Panic => panic!("fault injection: engine control thread panics"),
            Command::Shutdown => {
                let epoch = {
                    let mut pb = lock(&self.shared);
                    pb.stop_playback();
                    pb.epoch
                };
                self.send(OutputCmd::Stop { epoch });
                return false;
            }
        }
        true
    }

    fn seek(&self, position_ms: u64) -> Result<()> {
        let (epoch, track_id) = {
            let mut pb = lock(&self.shared);
            let Some(current) = pb.current.as_ref() else {
                return Err(AudioError::NothingPlaying);
            };
            if let Some(duration) = current.info.duration_ms {
                if position_ms > duration {
                    return Err(AudioError::InvalidArgument(format!(
                        "seek to {position_ms} ms is past the end ({duration} ms)"
                    )));
                }
            }
            if pb.route.is_none() {
                return Err(AudioError::NoRoute);
            }
            let track_id = current.id;
            pb.epoch += 1;
            if let Some(current) = pb.current.as_mut() {
                current.start_ms = position_ms;
                current.frames_written = 0;
            }
            pb.emit_position(true);
            (pb.epoch, track_id)
        };
        self.send(OutputCmd::Seek {
            epoch,
            track_id,
            position_ms,
        });
        Ok(())
    }
}
