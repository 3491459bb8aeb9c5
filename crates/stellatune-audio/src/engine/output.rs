//! The output thread: the only thread that touches a sink. It creates the sink from the
//! route's factory, negotiates and opens it, writes decoded blocks to it with the volume ramp
//! and the DSP chain, drains it at the end of the music, resets it on seek and closes it. It
//! also drives the decode worker, whose blocks it takes straight from the worker's queue.
//!
//! Waits are event-driven: when the sink is full the thread sleeps until the sink's queue
//! (`SinkStatus::queued_frames`) would have fallen to two thirds, which with a 200 ms device
//! buffer is about ten wake-ups a second; a command wakes it at once. Not later: the queue
//! also counts what the device already took and plays during its current period (for the
//! sidecar's devices, up to half the ring), so at two thirds the ring part still holds a
//! whole period for the next one to take. When the sink knows its consumer's clock
//! ([`Sink::take_schedule`]: a sidecar's device publishes when it takes its next period, the
//! `device` sink's callback records when it will call next), the
//! thread wakes just after the last take before the queue would have fallen to a third. It
//! then finds room at once, and a third is safe there: right after a take, what is left is
//! the period the device just took plus what the ring holds, a whole period or more before the
//! next take can find the ring short. With the sidecar's periods of about half the ring that
//! is one wake-up every other period (5 a second for a 200 ms ring instead of 10); the
//! sidecar keeps a reset's fade-out in the ring across those two takes, so a seek or stop
//! between them still fades out. It never polls on a
//! fixed short period, except for a sink that refuses frames and reports no queue, where it
//! backs off up to 100 ms.
//!
//! A sink call may block (a plugin sink starts its sidecar in `open`): the control thread
//! does not wait for this thread, so commands are still answered meanwhile; this thread
//! catches up with them when the call returns, skipping those that later ones replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::control::{SharedPlayback, lock};
use super::track::Playback;
use super::{OutputProgress, UnderrunCounter};
use crate::event::{EngineEvent, PlaybackState, TrackId};
use crate::sink::{Sink, SinkError, SinkFactory};
use crate::source::TrackSource;
use crate::worker::{FromWorker, WorkerCmd, WorkerMsg};
use stellatune_core::{DspStage, StreamSpec};

/// The most frames offered to a sink in one write. A wake-up refills what the device took
/// since the last one (half the default 200 ms ring is 4 410 frames at 44.1 kHz) in one write
/// and one status call; the writes of one wake-up follow each other within microseconds, so
/// smaller ones would not apply a volume change any sooner.
const WRITE_FRAMES: usize = 8192;
/// One-pole smoothing per frame for volume and ReplayGain changes within a track: about
/// 5 ms to settle, no clicks.
const VOLUME_SMOOTHING: f32 = 0.005;
/// The longest fade an engine takes ([`super::EngineConfig::fade_ms`]).
pub(super) const MAX_FADE_MS: u32 = 100;
/// The shortest sleep on a full sink: below it a wake-up costs more than it gains.
const MIN_WAIT: Duration = Duration::from_millis(2);
/// The longest sleep on a full sink, so a sink whose queue estimate is off is retried.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// How long after a consumer's take (a sink's [`stellatune_core::TakeSchedule`]) the thread
/// wakes to refill: time for the take to finish, short enough that the consumer's CPU has not
/// gone idle again.
const FOLLOW_TAKE: Duration = Duration::from_micros(300);
/// Back-off for a sink that refuses frames but reports nothing queued.
const BLIND_WAIT_FIRST: Duration = Duration::from_millis(5);
const BLIND_WAIT_MAX: Duration = Duration::from_millis(100);
/// How long to wait for the decoder when the sink has nothing queued to watch: a command or
/// a block wakes the thread long before.
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// How long past the expected end a drain waits for a sink whose queue does not empty.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Re-opening a lost output: the first retry comes at once, then the waits double up to the
/// longest.
const REOPEN_FIRST: Duration = Duration::from_millis(50);
const REOPEN_MAX: Duration = Duration::from_secs(2);

pub(super) enum OutputCmd {
    Play {
        epoch: u64,
        track_id: TrackId,
        source: TrackSource,
    },
    Enqueue {
        track_id: TrackId,
        source: TrackSource,
        replaces: Option<TrackId>,
    },
    Seek {
        epoch: u64,
        track_id: TrackId,
        position_ms: u64,
    },
    Stop {
        epoch: u64,
    },
    Route {
        factory: Box<dyn SinkFactory>,
        generation: u64,
    },
    ClearRoute {
        epoch: u64,
    },
    DspChain(Vec<Box<dyn DspStage>>),
    /// Re-read the playback state (after a resume).
    Wake,
    Shutdown,
}

struct OpenSink {
    sink: Box<dyn Sink>,
    describe: String,
    generation: u64,
    spec: Option<StreamSpec>,
}

/// A decoded block, partly written: a sink may take fewer frames than offered.
struct Pending {
    track_id: TrackId,
    samples: Vec<f32>,
    offset: usize,
    /// The fade-out of a stream that was stopped or moved (stop, seek, a new track): written
    /// as it is, counted for no track.
    tail: bool,
}

/// The output went away while in use: it is re-opened with backoff, and playback goes on
/// from what was heard last.
struct Recovery {
    /// The track and the position to go on from, if one was playing.
    resume: Option<(TrackId, u64)>,
    /// The spec to ask the sink for.
    preferred: StreamSpec,
    next_at: Instant,
    backoff: Duration,
}

/// The last track's blocks are all in the sink: wait until it has played them.
struct Drain {
    track_id: TrackId,
    deadline: Instant,
}

pub(super) struct Output {
    pub(super) shared: SharedPlayback,
    worker_tx: Sender<WorkerCmd>,
    worker_rx: Receiver<WorkerMsg>,
    waiting_for_block: Arc<AtomicBool>,
    /// Where a written block's buffer goes back to the worker.
    spent_tx: Sender<Vec<f32>>,
    sink: Option<OpenSink>,
    /// The playback epoch of the last command carried out.
    epoch: u64,
    /// The epoch of the worker's current stream; its older messages are dropped.
    worker_epoch: u64,
    pending: Option<Pending>,
    draining: Option<Drain>,
    applied_volume: f32,
    /// The ReplayGain factor applied last, and the track it belongs to: a new track's factor
    /// applies from its first frame (exactly at a gapless join), a changed setting ramps.
    applied_replaygain: f32,
    replaygain_track: Option<TrackId>,
    /// The fade envelope of the last frame written: 1 while playing, 0 once a pause's or a
    /// stop's fade-out is done; a fade-in ramps it back.
    fade: f32,
    /// The length of those fades; 0 turns them off.
    fade_ms: u32,
    scratch: Vec<f32>,
    pub(super) dsp: Vec<Box<dyn DspStage>>,
    /// The spec the DSP chain was last prepared for.
    pub(super) dsp_spec: Option<StreamSpec>,
    underruns: UnderrunCounter,
    blind_wait: Duration,
    progress: Arc<OutputProgress>,
    recovery: Option<Recovery>,
}

pub(super) fn run_output(
    shared: SharedPlayback,
    commands: Receiver<OutputCmd>,
    worker_tx: Sender<WorkerCmd>,
    from_worker: FromWorker,
    underruns: UnderrunCounter,
    progress: Arc<OutputProgress>,
    fade_ms: u32,
) {
    let priority = super::priority::promote_current_thread();
    let mut output = Output {
        shared,
        worker_tx,
        worker_rx: from_worker.messages,
        waiting_for_block: from_worker.waiting,
        spent_tx: from_worker.spent,
        sink: None,
        epoch: 0,
        worker_epoch: 0,
        pending: None,
        draining: None,
        applied_volume: 1.0,
        applied_replaygain: 1.0,
        replaygain_track: None,
        fade: 1.0,
        fade_ms,
        scratch: Vec::new(),
        dsp: Vec::new(),
        dsp_spec: None,
        underruns,
        blind_wait: BLIND_WAIT_FIRST,
        progress,
        recovery: None,
    };
    output.run(&commands);
    output.stop_stream();
    output.close_sink();
    // DSP stages and the sink drop here, on the thread that ran them.
    drop(output);
    drop(priority);
}

/// What the loop does next, decided under the playback lock and done outside it.
enum Step {
    /// Nothing to do until a command comes.
    Idle,
    Write {
        volume: f32,
        replaygain: f32,
        /// Where the fade envelope goes: 1 while playing, 0 while a pause fades out.
        fade_to: f32,
    },
    Drain,
    Take,
}

/// The next command, waiting at most `wait`: `Ok(None)` when none came in time, `Err` when
/// the control thread is gone. Sleeps in `park_timeout` (the control thread unparks this
/// thread after each command): one futex wait per sleep, where the channel's own blocking
/// receive spins and calls `sched_yield` several times first, on every wake-up.
fn next_command(commands: &Receiver<OutputCmd>, wait: Duration) -> Result<Option<OutputCmd>, ()> {
    park_until(wait, || match commands.try_recv() {
        Ok(cmd) => Some(Ok(Some(cmd))),
        Err(crossbeam_channel::TryRecvError::Empty) => None,
        Err(crossbeam_channel::TryRecvError::Disconnected) => Some(Err(())),
    })
    .unwrap_or(Ok(None))
}

/// Looks with `ready` until it has something, parked in between (an unpark or the deadline
/// ends each sleep), for at most `wait`; `None` when the wait ran out.
fn park_until<T>(wait: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = ready() {
            return Some(found);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// What woke the output thread while it waited for the decoder. (A return value, moved
/// once: the command's size costs nothing here, and boxing it would allocate per command.)
#[allow(clippy::large_enum_variant)]
enum Input {
    Command(OutputCmd),
    Worker(WorkerMsg),
    Timeout,
    ControlGone,
    WorkerGone,
}

/// The next command or decoded block, waiting at most `wait`, commands first. Sleeps in
/// `park_timeout` like [`next_command`]: the decode worker unparks this thread after a
/// block it sends while `waiting` is set. At render speed the thread waits here once per
/// block, and the channels' own blocking select spun and yielded first each time, on the
/// core the decoder needs.
fn next_input(
    commands: &Receiver<OutputCmd>,
    worker: &Receiver<WorkerMsg>,
    waiting: &AtomicBool,
    wait: Duration,
) -> Input {
    // Said before looking, so a block sent after the look below is followed by an unpark.
    waiting.store(true, Ordering::SeqCst);
    let input = wait_for_input(commands, worker, wait);
    waiting.store(false, Ordering::SeqCst);
    input
}

fn wait_for_input(
    commands: &Receiver<OutputCmd>,
    worker: &Receiver<WorkerMsg>,
    wait: Duration,
) -> Input {
    park_until(wait, || {
        match commands.try_recv() {
            Ok(cmd) => return Some(Input::Command(cmd)),
            Err(crossbeam_channel::TryRecvError::Empty) => {}
            Err(crossbeam_channel::TryRecvError::Disconnected) => return Some(Input::ControlGone),
        }
        match worker.try_recv() {
            Ok(msg) => Some(Input::Worker(msg)),
            Err(crossbeam_channel::TryRecvError::Empty) => None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => Some(Input::WorkerGone),
        }
    })
    .unwrap_or(Input::Timeout)
}

impl Output {
    fn run(&mut self, commands: &Receiver<OutputCmd>) {
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
            self.underruns.emit_due();
            if let Some(wait) = self.recover() {
                // The output is away: only commands and the next retry wake the thread.
                match next_command(commands, wait) {
                    Ok(Some(cmd)) => {
                        if !self.handle(cmd) {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(()) => return,
                }
                continue;
            }
            let step = self.next_step();
            let wait = match step {
                Step::Idle => {
                    self.underruns.idle();
                    None
                }
                Step::Drain => self.drain_step(),
                Step::Take => match self.worker_rx.try_recv() {
                    Ok(msg) => {
                        self.on_worker(msg);
                        continue;
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => {
                        let wait = self.starving_wait().unwrap_or(IDLE_WAIT);
                        match next_input(commands, &self.worker_rx, &self.waiting_for_block, wait) {
                            Input::Command(cmd) => {
                                if !self.handle(cmd) {
                                    return;
                                }
                            }
                            Input::Worker(msg) => self.on_worker(msg),
                            Input::WorkerGone => {
                                self.fail(None, "decode worker stopped unexpectedly".into());
                            }
                            Input::Timeout => {}
                            Input::ControlGone => return,
                        }
                        continue;
                    }
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        self.fail(None, "decode worker stopped unexpectedly".into());
                        continue;
                    }
                },
                Step::Write {
                    volume,
                    replaygain,
                    fade_to,
                } => match self.write_pending(volume, replaygain, fade_to) {
                    Some(wait) => Some(wait),
                    None => continue,
                },
            };
            let cmd = match wait {
                None => commands.recv().map_err(|_| ()),
                Some(wait) => match next_command(commands, wait) {
                    Ok(Some(cmd)) => Ok(cmd),
                    Ok(None) => continue,
                    Err(()) => Err(()),
                },
            };
            match cmd {
                Ok(cmd) => {
                    if !self.handle(cmd) {
                        return;
                    }
                }
                Err(()) => return,
            }
        }
    }

    fn next_step(&mut self) -> Step {
        let pb = lock(&self.shared);
        let open = pb.epoch == self.epoch && self.sink.as_ref().is_some_and(|s| s.spec.is_some());
        if !open {
            return Step::Idle;
        }
        if self.pending.as_ref().is_some_and(|p| p.tail) {
            // A stopped stream's fade-out goes out whatever the state.
            return Step::Write {
                volume: 1.0,
                replaygain: 1.0,
                fade_to: 0.0,
            };
        }
        let playing = pb.state == PlaybackState::Playing;
        // Paused: the audio goes on until its fade-out is written.
        let fading_out = pb.state == PlaybackState::Paused && self.fade_ms > 0 && self.fade > 0.0;
        if !(playing || fading_out) {
            return Step::Idle;
        }
        if self.draining.is_some() {
            if playing {
                return Step::Drain;
            }
            // All of the last track is written: it ends in the sink by itself.
            if self.fade_ms > 0 {
                self.fade = 0.0;
            }
            return Step::Idle;
        }
        match self.pending.as_ref() {
            Some(p) => Step::Write {
                volume: pb.volume,
                replaygain: pb.replaygain_for(p.track_id),
                fade_to: if playing { 1.0 } else { 0.0 },
            },
            None => Step::Take,
        }
    }

    fn fade_frames(&self) -> usize {
        let rate = self.spec().map_or(48_000, |s| s.sample_rate);
        (u64::from(rate) * u64::from(self.fade_ms) / 1000).max(1) as usize
    }

    /// Turns what was about to be written into a short fade-out to silence (the stream is
    /// being stopped or moved), so the waveform ends smoothly instead of being cut. `None`
    /// when nothing is pending or the output is already silent (a finished pause fade).
    fn take_tail(&mut self) -> Option<Pending> {
        let pending = self.pending.take()?;
        if pending.tail {
            return Some(pending);
        }
        let channels = usize::from(self.spec()?.channels);
        if self.fade_ms == 0 || self.fade <= 0.0 || channels == 0 {
            return None;
        }
        let ramp = self.fade_frames();
        let start = self.applied_volume * self.applied_replaygain * self.fade;
        let samples: Vec<f32> = pending.samples[pending.offset..]
            .chunks_exact(channels)
            .take(ramp)
            .enumerate()
            .flat_map(|(i, frame)| {
                let gain = start * (1.0 - (i + 1) as f32 / ramp as f32);
                frame.iter().map(move |s| s * gain)
            })
            .collect();
        self.fade = 0.0;
        Some(Pending {
            track_id: pending.track_id,
            samples,
            offset: 0,
            tail: true,
        })
    }

    /// Puts a tail made by [`Output::take_tail`] after the sink's reset: written at once when
    /// the sink's queue was already played out (a file), dropped when the sink fades out what
    /// its reset dropped itself — the tail would be audio from ahead of what was heard. The
    /// fade state stays at silence either way, so what follows fades in. `was_reset`: the
    /// sink was reset just now (without a reset it dropped nothing, so it faded nothing).
    fn place_tail(&mut self, tail: Option<Pending>, was_reset: bool) {
        let sink_fades = was_reset && self.sink.as_ref().is_some_and(|s| s.sink.fades_on_reset());
        self.pending = tail.filter(|_| !sink_fades);
        self.write_tail_now();
    }

    /// Writes what the sink takes of a tail at once, before the sink is reset or closed.
    fn write_tail_now(&mut self) {
        let (Some(pending), Some(open)) = (self.pending.as_mut(), self.sink.as_mut()) else {
            return;
        };
        let Some(spec) = open.spec.filter(|_| pending.tail) else {
            return;
        };
        let channels = usize::from(spec.channels).max(1);
        if let Ok(taken) = open.sink.write(&pending.samples[pending.offset..]) {
            pending.offset += taken * channels;
            lock(&self.shared).total_frames_written += taken as u64;
        }
        if pending.offset >= pending.samples.len() {
            self.pending = None;
        }
    }

    pub(super) fn spec(&self) -> Option<StreamSpec> {
        self.sink.as_ref().and_then(|s| s.spec)
    }

    /// The playback state, if no command has replaced the stream this thread is writing.
    fn current_playback(&self) -> Option<std::sync::MutexGuard<'_, Playback>> {
        let pb = lock(&self.shared);
        (pb.epoch == self.epoch).then_some(pb)
    }

    fn fail(&mut self, track_id: Option<TrackId>, message: String) {
        let mut pb = lock(&self.shared);
        if pb.epoch == self.epoch {
            pb.fail(track_id, message);
            self.epoch = pb.epoch;
        }
        drop(pb);
        self.stop_stream();
    }

    /// Returns false on shutdown.
    fn handle(&mut self, cmd: OutputCmd) -> bool {
        let go_on = self.carry_out(cmd);
        self.progress.handled();
        go_on
    }

    fn carry_out(&mut self, cmd: OutputCmd) -> bool {
        match cmd {
            OutputCmd::Play {
                epoch,
                track_id,
                source,
            } => self.play(epoch, track_id, source),
            OutputCmd::Enqueue {
                track_id,
                source,
                replaces,
            } => {
                let _ = self.worker_tx.send(WorkerCmd::Enqueue {
                    track_id,
                    source,
                    replaces,
                });
                if let Some(drain) = self.draining.take() {
                    // A track queued while the last one drains follows it without a gap.
                    if let Some(mut pb) = self.current_playback() {
                        pb.end_current(drain.track_id);
                    }
                }
            }
            OutputCmd::Seek {
                epoch,
                track_id,
                position_ms,
            } => {
                self.epoch = epoch;
                if let Some(recovery) = self.recovery.as_mut() {
                    recovery.resume = Some((track_id, position_ms));
                }
                self.reposition(track_id, position_ms, true);
            }
            OutputCmd::Stop { epoch } => {
                self.epoch = epoch;
                self.stop_stream();
            }
            OutputCmd::Route {
                factory,
                generation,
            } => self.apply_route(factory, generation),
            OutputCmd::ClearRoute { epoch } => {
                self.epoch = epoch;
                self.recovery = None;
                self.stop_stream();
                self.close_sink();
            }
            OutputCmd::DspChain(chain) => self.set_dsp_chain(chain),
            OutputCmd::Wake => {}
            OutputCmd::Shutdown => return false,
        }
        true
    }

    /// Ends the stream being written: the worker stops, what was decoded ahead is dropped
    /// and the sink forgets what it queued. Returns true when what was sounding fades out
    /// (rather than stopping where it was, silent already).
    fn stop_stream(&mut self) -> bool {
        self.worker_epoch += 1;
        let _ = self.worker_tx.send(WorkerCmd::Stop {
            epoch: self.worker_epoch,
        });
        let was_active =
            self.pending.is_some() || self.draining.is_some() || self.underruns.primed();
        let tail = self.take_tail();
        self.draining = None;
        self.underruns.restart();
        if was_active {
            if let Some(sink) = self.sink.as_mut() {
                let _ = sink.sink.reset();
            }
            self.reset_dsp();
        }
        // After the reset: the fade-out follows what the sink was given last.
        let faded = tail.is_some();
        self.place_tail(tail, was_active);
        faded
    }

    fn play(&mut self, epoch: u64, track_id: TrackId, source: TrackSource) {
        self.epoch = epoch;
        let faded = self.stop_stream();
        if let Some(recovery) = self.recovery.as_mut() {
            // The new track replaces what was to go on; the output is tried at once.
            recovery.resume = None;
            recovery.preferred = source.info().spec();
        }
        let before = self.spec();
        let spec = match self.ensure_sink_open(source.info().spec()) {
            Ok(spec) => spec,
            Err(message) => {
                self.fail(Some(track_id), message);
                return;
            }
        };
        if self.recovery.take().is_some() {
            self.announce_changed();
        }
        // A new track starts from silence: no ramp, or a volume set while stopped is late.
        self.applied_volume = lock(&self.shared).volume;
        let reopened = before != Some(spec);
        if reopened {
            // A reopened sink starts empty: the old stream's fade-out has no place there.
            self.pending = None;
        }
        // A track that replaces one still sounding fades in after its fade-out; one that
        // starts from silence (or in a sink opened for it) starts exactly.
        if !faded || reopened {
            self.fade = 1.0;
        }
        self.worker_epoch += 1;
        let _ = self.worker_tx.send(WorkerCmd::Load {
            epoch: self.worker_epoch,
            track_id,
            source,
            spec,
            start_ms: 0,
        });
    }

    /// Opens the sink for `track_spec` if it is not open yet, or reopens it when it would
    /// take this track natively and nothing of the old spec is queued.
    fn ensure_sink_open(&mut self, track_spec: StreamSpec) -> Result<StreamSpec, String> {
        let Some(open) = self.sink.as_mut() else {
            return Err("no output route".into());
        };
        let wanted = open
            .sink
            .negotiate(track_spec)
            .map_err(|e| format!("output failed: {e}"))?;
        if open.spec != Some(wanted) {
            if open.spec.is_some() {
                let _ = open.sink.close();
                open.spec = None;
            }
            announce_opening(&self.shared, &open.describe);
            open.sink
                .open(wanted)
                .map_err(|e| format!("output failed: {e}"))?;
            open.spec = Some(wanted);
        }
        lock(&self.shared).spec = Some(wanted);
        Ok(wanted)
    }

    /// Restarts decoding of `track_id` at `position_ms`, dropping what was decoded ahead.
    /// With `fade`, what was about to play fades out first and the new position fades in;
    /// without (a new sink, which starts empty), the new position fades in from silence.
    fn reposition(&mut self, track_id: TrackId, position_ms: u64, fade: bool) {
        self.restart_decoding(track_id, position_ms, fade, true);
    }

    /// [`Output::reposition`]; `reset_sink` false for a sink that was just re-opened after a
    /// loss (nothing queued to drop, and a device sink would reopen its stream for nothing).
    fn restart_decoding(
        &mut self,
        track_id: TrackId,
        position_ms: u64,
        fade: bool,
        reset_sink: bool,
    ) {
        let Some(spec) = self.spec() else {
            return;
        };
        self.worker_epoch += 1;
        let tail = if fade { self.take_tail() } else { None };
        self.pending = None;
        if self.fade_ms > 0 {
            self.fade = 0.0;
        }
        self.draining = None;
        self.underruns.restart();
        if let Some(sink) = self.sink.as_mut().filter(|_| reset_sink) {
            let _ = sink.sink.reset();
        }
        self.reset_dsp();
        self.place_tail(tail, reset_sink);
        let _ = self.worker_tx.send(WorkerCmd::Seek {
            epoch: self.worker_epoch,
            track_id,
            position_ms,
            spec,
        });
    }

    fn apply_route(&mut self, factory: Box<dyn SinkFactory>, generation: u64) {
        // A new route replaces a lost one.
        self.recovery = None;
        let describe = factory.describe();
        let created = factory.create();
        let preferred = {
            let pb = lock(&self.shared);
            let playing = pb.epoch == self.epoch;
            pb.current
                .as_ref()
                .filter(|_| playing)
                .map(|c| c.info.spec())
        };
        let opened = created.and_then(|mut sink| {
            let mut spec = None;
            if let Some(preferred) = preferred {
                // Something is playing: the new sink must take over at once.
                let wanted = sink.negotiate(preferred)?;
                announce_opening(&self.shared, &describe);
                sink.open(wanted)?;
                spec = Some(wanted);
            }
            Ok((sink, spec))
        });
        let old_spec = self.spec();
        // The old sink goes even if the new one failed: its route is no longer wanted.
        self.close_sink();
        let (sink, spec) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let mut pb = lock(&self.shared);
                if pb.route_generation == generation {
                    let message = format!("output {describe} failed: {e}");
                    tracing::warn!(message, "output route failed");
                    if pb.epoch == self.epoch {
                        let track = pb.current.as_ref().map(|c| c.id);
                        pb.fail(track, message);
                        self.epoch = pb.epoch;
                    } else {
                        pb.emit(EngineEvent::Error {
                            message,
                            track_id: None,
                        });
                    }
                    pb.route = None;
                    pb.spec = None;
                    pb.route_generation += 1;
                    pb.emit(EngineEvent::RouteChanged { route: None });
                }
                drop(pb);
                self.stop_stream();
                return;
            }
        };
        self.sink = Some(OpenSink {
            sink,
            describe,
            generation,
            spec,
        });
        let mut pb = lock(&self.shared);
        pb.spec = spec;
        if let Some(spec) = spec {
            if old_spec != Some(spec) && pb.epoch == self.epoch {
                if let Some(track_id) = pb.current.as_ref().map(|c| c.id) {
                    let position = pb.position_ms();
                    if let Some(current) = pb.current.as_mut() {
                        current.start_ms = position;
                        current.frames_written = 0;
                    }
                    drop(pb);
                    self.pending = None;
                    self.reposition(track_id, position, false);
                    return;
                }
            }
        }
        drop(pb);
        // The new sink starts empty: what it reports about underruns starts from here.
        self.underruns.restart();
    }

    fn close_sink(&mut self) {
        if let Some(mut open) = self.sink.take() {
            if let Err(e) = open.sink.flush() {
                tracing::warn!(route = %open.describe, error = %e, "sink flush failed");
            }
            if let Err(e) = open.sink.close() {
                tracing::warn!(route = %open.describe, error = %e, "sink close failed");
            }
            let mut pb = lock(&self.shared);
            if pb.route_generation == open.generation {
                pb.spec = None;
            }
        }
    }

    fn on_worker(&mut self, msg: WorkerMsg) {
        if msg.epoch() != self.worker_epoch {
            return;
        }
        let Some(mut pb) = self.current_playback() else {
            return;
        };
        match msg {
            WorkerMsg::TrackStarted {
                track_id,
                info,
                start_ms,
                ..
            } => pb.track_started(track_id, info, start_ms),
            WorkerMsg::Block {
                track_id, samples, ..
            } => {
                // Blocks of a queued track that was replaced after the worker started it.
                if pb.current.as_ref().map(|c| c.id) != Some(track_id) {
                    return;
                }
                drop(pb);
                let mut samples = samples;
                self.run_dsp(&mut samples, track_id);
                self.pending = Some(Pending {
                    track_id,
                    samples,
                    offset: 0,
                    tail: false,
                });
            }
            WorkerMsg::TrackEnded { track_id, .. } => {
                if pb.current.as_ref().map(|c| c.id) != Some(track_id) {
                    return;
                }
                if pb.queued_next.is_some() {
                    pb.end_current(track_id);
                    return;
                }
                drop(pb);
                // The last track: everything of it is in the sink; it ends once heard.
                let queued = self
                    .sink
                    .as_ref()
                    .map_or(0, |s| s.sink.status().queued_frames);
                let expected = self.frames_duration(queued);
                self.draining = Some(Drain {
                    track_id,
                    deadline: Instant::now() + expected + DRAIN_GRACE,
                });
            }
            WorkerMsg::Error {
                track_id, error, ..
            } => {
                tracing::warn!(track_id, error = %error, "decode error");
                pb.emit(EngineEvent::Error {
                    message: error.to_string(),
                    track_id: Some(track_id),
                });
            }
        }
    }

    fn frames_duration(&self, frames: u64) -> Duration {
        let rate = self.spec().map_or(48_000, |s| s.sample_rate.max(1));
        Duration::from_secs_f64(frames as f64 / f64::from(rate))
    }

    /// One step of draining the last track: returns how long to sleep, or ends the track
    /// once the sink's queue is empty (or the drain's bound has passed).
    fn drain_step(&mut self) -> Option<Duration> {
        let drain = self.draining.as_ref()?;
        let queued = self
            .sink
            .as_ref()
            .map_or(0, |s| s.sink.status().queued_frames);
        let now = Instant::now();
        if queued > 0 && now < drain.deadline {
            let wait = self.frames_duration(queued).clamp(MIN_WAIT, MAX_WAIT);
            return Some(wait.min(drain.deadline - now));
        }
        if queued > 0 {
            tracing::warn!(
                queued,
                "sink did not drain in time; ending the track anyway"
            );
        }
        let track_id = drain.track_id;
        self.draining = None;
        let flushed = self.sink.as_mut().map(|s| s.sink.flush());
        self.underruns.restart();
        if let Some(mut pb) = self.current_playback() {
            if let Some(Err(e)) = flushed {
                pb.emit(EngineEvent::Error {
                    message: e.to_string(),
                    track_id: Some(track_id),
                });
            }
            pb.end_current(track_id);
        }
        Some(Duration::ZERO)
    }

    /// How long to wait for the decoder before looking whether the sink ran dry meanwhile.
    fn starving_wait(&mut self) -> Option<Duration> {
        let status = self.sink.as_ref()?.sink.status();
        self.underruns
            .starving(status)
            .map(|queued| self.frames_duration(queued) + MIN_WAIT)
    }

    /// Writes what the sink takes now. Returns how long to wait when the sink is full, or
    /// `None` to go on at once (the block is written, or the output failed).
    fn write_pending(&mut self, volume: f32, replaygain: f32, fade_to: f32) -> Option<Duration> {
        let fade_step = 1.0 / self.fade_frames() as f32;
        // Without fades the envelope stays at 1.
        let fade_to = if self.fade_ms == 0 { 1.0 } else { fade_to };
        let (Some(pending), Some(open)) = (self.pending.as_mut(), self.sink.as_mut()) else {
            return None;
        };
        let spec = open.spec?;
        let channels = usize::from(spec.channels);
        let tail = pending.tail;
        if !tail && self.replaygain_track != Some(pending.track_id) {
            // A new track: its ReplayGain applies from its first frame, with no ramp, so a
            // gapless join switches exactly at the boundary.
            self.replaygain_track = Some(pending.track_id);
            self.applied_replaygain = replaygain;
        }
        let remaining = &pending.samples[pending.offset..];
        let mut offer = remaining.len().min(WRITE_FRAMES * channels);
        if !tail && fade_to == 0.0 {
            // Pausing: the audio goes on only until its fade-out ends.
            let left = (self.fade / fade_step).ceil().max(1.0) as usize;
            offer = offer.min(left * channels);
        }
        let chunk = &remaining[..offer];
        let exact = tail
            || (volume == 1.0
                && self.applied_volume == 1.0
                && replaygain == 1.0
                && self.applied_replaygain == 1.0
                && self.fade == 1.0
                && fade_to == 1.0);
        let result = if exact {
            open.sink.write(chunk)
        } else {
            let gains = Gains {
                volume: (self.applied_volume, volume),
                replaygain: (self.applied_replaygain, replaygain),
                fade: (self.fade, fade_to, fade_step),
            };
            self.scratch.clear();
            let mut state = gains.start();
            for frame in chunk.chunks_exact(channels) {
                state = gains.advance(state);
                let gain = state.0 * state.1 * state.2;
                self.scratch.extend(frame.iter().map(|s| s * gain));
            }
            let result = open.sink.write(&self.scratch);
            if let Ok(taken) = result {
                // The gains the taken frames ended on, so untaken ones ramp again.
                let mut state = gains.start();
                for _ in 0..taken {
                    state = gains.advance(state);
                }
                let settle = |g: f32, target: f32| {
                    if (g - target).abs() < 1e-4 { target } else { g }
                };
                self.applied_volume = settle(state.0, volume);
                self.applied_replaygain = settle(state.1, replaygain);
                self.fade = state.2;
            }
            result
        };
        let track_id = pending.track_id;
        let taken = match result {
            Ok(n) => n,
            Err(e @ SinkError::Disconnected { .. }) => {
                self.output_lost(&e);
                return None;
            }
            Err(_) if tail => {
                // The stream this fade-out ends is over already: a sink that refuses it
                // loses only the fade (its failure, if lasting, shows on the next write).
                self.pending = None;
                return None;
            }
            Err(e) => {
                self.fail(Some(track_id), format!("output failed: {e}"));
                return None;
            }
        };
        pending.offset += taken * channels;
        let block_done = pending.offset >= pending.samples.len();
        if block_done {
            if let Some(done) = self.pending.take().filter(|p| !p.tail) {
                // Full (bounded channel) or the worker gone: the buffer is just freed.
                let _ = self.spent_tx.try_send(done.samples);
            }
        }
        let full = !block_done && taken < offer / channels;
        let status = open.sink.status();
        self.underruns.wrote(taken, full, status);
        if taken > 0 {
            let mut pb = lock(&self.shared);
            pb.total_frames_written += taken as u64;
            if pb.epoch == self.epoch && !tail {
                if let Some(current) = pb.current.as_mut().filter(|c| c.id == track_id) {
                    current.frames_written += taken as u64;
                }
                pb.emit_position(false);
            }
        }
        if !full {
            self.blind_wait = BLIND_WAIT_FIRST;
            return None;
        }
        // The sink is full: sleep until its queue would have fallen to two thirds (see the
        // module's comment for why not lower).
        if status.queued_frames == 0 {
            let wait = self.blind_wait;
            self.blind_wait = (wait * 2).min(BLIND_WAIT_MAX);
            return Some(wait);
        }
        self.blind_wait = BLIND_WAIT_FIRST;
        if let Some(schedule) = open.sink.take_schedule() {
            // The consumer takes on a clock: wake just after its last take before the queue
            // would have fallen to a third (see the module's comment).
            let third_left = self
                .frames_duration(status.queued_frames * 2 / 3)
                .clamp(MIN_WAIT, MAX_WAIT);
            let queued = self.frames_duration(status.queued_frames);
            if let Some(wait) = schedule.wake_after_take(third_left, FOLLOW_TAKE, queued) {
                return Some(wait);
            }
        }
        Some(
            self.frames_duration(status.queued_frames / 3)
                .clamp(MIN_WAIT, MAX_WAIT),
        )
    }
}

/// The gain stage's ramps over one write: volume and ReplayGain settle on their targets
/// (one-pole), the fade envelope moves linearly to its target. Each is (applied, target).
struct Gains {
    volume: (f32, f32),
    replaygain: (f32, f32),
    /// (applied, target, step per frame).
    fade: (f32, f32, f32),
}

impl Gains {
    fn start(&self) -> (f32, f32, f32) {
        (self.volume.0, self.replaygain.0, self.fade.0)
    }

    fn advance(&self, (v, r, f): (f32, f32, f32)) -> (f32, f32, f32) {
        let (_, fade_to, step) = self.fade;
        let f = if f < fade_to {
            (f + step).min(fade_to)
        } else {
            (f - step).max(fade_to)
        };
        (smooth(v, self.volume.1), smooth(r, self.replaygain.1), f)
    }
}

/// One frame of a one-pole ramp towards `target`, ending on it exactly once within 1e-4 (an
/// 80 dB step nobody hears), so a ramp to 0 ends in true silence within a few milliseconds
/// whatever the size of the writes.
fn smooth(gain: f32, target: f32) -> f32 {
    let next = gain + (target - gain) * VOLUME_SMOOTHING;
    if (next - target).abs() < 1e-4 {
        target
    } else {
        next
    }
}

impl Output {
    /// The sink said its output went away: close it, keep the position heard last, and
    /// start re-opening it (see [`Output::recover`]).
    fn output_lost(&mut self, error: &SinkError) {
        let Some(open) = self.sink.as_mut() else {
            return;
        };
        let route = open.sink.describe();
        let queued = open.sink.status().queued_frames;
        if let Err(e) = open.sink.close() {
            tracing::debug!(route, error = %e, "closing the lost output failed");
        }
        let old_spec = open.spec.take();
        let mut pb = lock(&self.shared);
        let track_spec = pb.current.as_ref().map(|c| c.info.spec());
        let mut resume = None;
        if pb.epoch == self.epoch {
            // What was still queued in the lost output was never heard.
            if let Some(current) = pb.current.as_mut() {
                current.frames_written = current.frames_written.saturating_sub(queued);
            }
            let position = pb.position_ms();
            if let Some(current) = pb.current.as_mut() {
                current.start_ms = position;
                current.frames_written = 0;
                resume = Some((current.id, position));
            }
        }
        pb.spec = None;
        let message = error.to_string();
        tracing::warn!(route, message, "output lost; re-opening it");
        pb.emit(EngineEvent::OutputLost { route, message });
        drop(pb);
        // Blocks decoded ahead are dropped; the worker is repositioned once the output is
        // back.
        self.pending = None;
        self.draining = None;
        self.underruns.restart();
        self.reset_dsp();
        let Some(preferred) = track_spec.or(old_spec) else {
            return;
        };
        self.recovery = Some(Recovery {
            resume,
            preferred,
            next_at: Instant::now(),
            backoff: REOPEN_FIRST,
        });
    }

    /// Re-opens a lost output when its retry is due. Returns how long to wait for the next
    /// retry, or `None` when nothing is being recovered (any more).
    fn recover(&mut self) -> Option<Duration> {
        let recovery = self.recovery.as_mut()?;
        let now = Instant::now();
        if now < recovery.next_at {
            return Some(recovery.next_at - now);
        }
        let Some(open) = self.sink.as_mut() else {
            self.recovery = None;
            return None;
        };
        let preferred = recovery.preferred;
        let opened = open
            .sink
            .negotiate(preferred)
            .and_then(|wanted| open.sink.open(wanted).map(|()| wanted));
        let wanted = match opened {
            Ok(wanted) => wanted,
            Err(e) => {
                tracing::debug!(error = %e, retry_in = ?recovery.backoff, "output not back yet");
                recovery.next_at = now + recovery.backoff;
                let wait = recovery.backoff;
                recovery.backoff = (recovery.backoff * 2).min(REOPEN_MAX);
                return Some(wait);
            }
        };
        open.spec = Some(wanted);
        let resume = self.recovery.take().and_then(|r| r.resume);
        lock(&self.shared).spec = Some(wanted);
        self.announce_changed();
        let mut pb = lock(&self.shared);
        let current = pb.current.as_ref().map(|c| c.id);
        let resume = resume.filter(|(id, _)| pb.epoch == self.epoch && current == Some(*id));
        if let Some((track_id, position)) = resume {
            if let Some(current) = pb.current.as_mut() {
                current.start_ms = position;
                current.frames_written = 0;
            }
            drop(pb);
            self.restart_decoding(track_id, position, false, false);
        }
        None
    }

    /// Tells clients where audio goes now, after a lost output came back.
    fn announce_changed(&self) {
        let Some(open) = self.sink.as_ref() else {
            return;
        };
        let route = open.sink.describe();
        tracing::info!(route, "output re-opened");
        lock(&self.shared).emit(EngineEvent::OutputChanged { route });
    }
}

/// Tells clients that an output is starting (its sink opening), which can take a while for
/// a sink that starts a helper process; commands are answered meanwhile.
fn announce_opening(shared: &SharedPlayback, route: &str) {
    tracing::debug!(route, "output starting");
    lock(shared).emit(EngineEvent::OutputStarting {
        route: route.to_owned(),
    });
}
