//! The decode worker: turns track sources into blocks in the sink's spec, one track after
//! another without a gap, and stays responsive to commands while its output queue is full.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Select, Sender};

use crate::convert::Converter;
use crate::error::AudioError;
use crate::event::TrackId;
use crate::source::{TrackInfo, TrackSource};
use stellatune_core::StreamSpec;

pub(crate) enum WorkerCmd {
    /// Starts `source` from `start_ms`, dropping whatever was playing or queued.
    Load {
        epoch: u64,
        track_id: TrackId,
        source: TrackSource,
        spec: StreamSpec,
        start_ms: u64,
    },
    /// Plays `source` right after the current track, replacing `replaces` (the track queued
    /// before) even if the worker has already started decoding it.
    Enqueue {
        track_id: TrackId,
        source: TrackSource,
        replaces: Option<TrackId>,
    },
    /// Repositions `track_id` and/or changes the output spec.
    Seek {
        epoch: u64,
        track_id: TrackId,
        position_ms: u64,
        spec: StreamSpec,
    },
    Stop {
        epoch: u64,
    },
    Shutdown,
}

pub(crate) enum WorkerMsg {
    TrackStarted {
        epoch: u64,
        track_id: TrackId,
        info: Box<TrackInfo>,
        start_ms: u64,
    },
    Block {
        epoch: u64,
        track_id: TrackId,
        samples: Vec<f32>,
    },
    TrackEnded {
        epoch: u64,
        track_id: TrackId,
    },
    Error {
        epoch: u64,
        track_id: TrackId,
        error: AudioError,
    },
}

impl WorkerMsg {
    pub(crate) fn track_id(&self) -> Option<TrackId> {
        match self {
            WorkerMsg::TrackStarted { track_id, .. }
            | WorkerMsg::Block { track_id, .. }
            | WorkerMsg::TrackEnded { track_id, .. }
            | WorkerMsg::Error { track_id, .. } => Some(*track_id),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        match self {
            WorkerMsg::TrackStarted { epoch, .. }
            | WorkerMsg::Block { epoch, .. }
            | WorkerMsg::TrackEnded { epoch, .. }
            | WorkerMsg::Error { epoch, .. } => *epoch,
        }
    }
}

struct Decoding {
    track_id: TrackId,
    source: TrackSource,
    converter: Converter,
    /// Converted audio not sent yet: packets are batched so the control thread is woken
    /// once per batch, not once per codec packet.
    batch: Vec<f32>,
    /// The first block of a track (or after a seek) goes out at once, for a fast start.
    sent_first: bool,
}

/// Finished tracks kept for seeks: the one being heard and the queued one after it.
const FINISHED_KEPT: usize = 2;

/// Frames per message to the output thread once a track is under way. Each message wakes
/// the output thread (when it waits) and, once taken, the worker: at render speed (a file
/// decodes a thousand times faster than real time) 16 384-frame messages made those wake-ups
/// about 4 % of the time to render a track; while playing, this is one wake-up of each
/// every 0.7 s.
const BATCH_FRAMES: usize = 32_768;

struct Worker {
    epoch: u64,
    spec: StreamSpec,
    current: Option<Decoding>,
    next: Option<(TrackId, TrackSource)>,
    /// The tracks decoded last (oldest first), kept so that a seek on the track still being
    /// heard works after the worker has already moved on: it runs seconds ahead, which can
    /// be past the end of a short queued track too.
    finished: VecDeque<(TrackId, TrackSource)>,
    outbox: VecDeque<WorkerMsg>,
    /// Written blocks' buffers, back from the output thread.
    spent: Receiver<Vec<f32>>,
}

/// The output thread's ends of the worker's channels: the blocks it decoded, and the way
/// back for a block's buffer once it is written, so the next batch reuses warm memory
/// instead of fresh pages (on a fast decode the page faults cost several percent).
pub(crate) struct FromWorker {
    pub messages: Receiver<WorkerMsg>,
    pub spent: Sender<Vec<f32>>,
    /// Set while the output thread waits for a block (see [`BlockBell`]).
    pub waiting: Arc<AtomicBool>,
}

/// Buffers kept for reuse: one being filled while one is in flight and one is written.
pub(crate) const SPENT_KEPT: usize = 2;

/// How the worker wakes the output thread for a block: that thread waits in `park_timeout`,
/// not in the channel's blocking receive (which spins and yields first, on the core the
/// decoder needs), and says when it waits for a block. While playing it mostly sleeps on the
/// sink's clock instead, and a wake-up per block then would be one more for nothing.
pub(crate) struct BlockBell {
    output_thread: std::thread::Thread,
    waiting: Arc<AtomicBool>,
}

impl BlockBell {
    pub(crate) fn new(output_thread: std::thread::Thread, waiting: Arc<AtomicBool>) -> Self {
        Self {
            output_thread,
            waiting,
        }
    }

    /// After a send: the output thread either sees the block on its next look (it says it
    /// waits before it looks) or is unparked here.
    fn ring(&self) {
        if self.waiting.load(Ordering::SeqCst) {
            self.output_thread.unpark();
        }
    }
}

pub(crate) fn run(
    commands: Receiver<WorkerCmd>,
    output: Sender<WorkerMsg>,
    spent: Receiver<Vec<f32>>,
    bell: BlockBell,
) {
    let mut worker = Worker {
        spent,
        epoch: 0,
        spec: StreamSpec::default(),
        current: None,
        next: None,
        finished: VecDeque::new(),
        outbox: VecDeque::new(),
    };
    loop {
        if worker.outbox.is_empty() && worker.current.is_some() {
            // Decoding is cheap per block; check for a command between blocks.
            match commands.try_recv() {
                Ok(cmd) => {
                    if !worker.handle(cmd) {
                        return;
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => worker.produce(),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            }
            continue;
        }
        if worker.outbox.is_empty() {
            match commands.recv() {
                Ok(cmd) => {
                    if !worker.handle(cmd) {
                        return;
                    }
                }
                Err(_) => return,
            }
            continue;
        }
        let mut select = Select::new();
        let cmd_index = select.recv(&commands);
        let out_index = select.send(&output);
        let op = select.select();
        if op.index() == cmd_index {
            match op.recv(&commands) {
                Ok(cmd) => {
                    if !worker.handle(cmd) {
                        return;
                    }
                }
                Err(_) => return,
            }
        } else {
            debug_assert_eq!(op.index(), out_index);
            let msg = worker.outbox.pop_front().expect("outbox is not empty");
            if op.send(&output, msg).is_err() {
                return;
            }
            bell.ring();
        }
    }
}

impl Worker {
    /// Returns false when the worker must exit.
    fn handle(&mut self, cmd: WorkerCmd) -> bool {
        match cmd {
            WorkerCmd::Load {
                epoch,
                track_id,
                mut source,
                spec,
                start_ms,
            } => {
                self.restart(epoch, spec);
                self.next = None;
                self.finished.clear();
                if start_ms > 0 {
                    if let Err(error) = source.seek(start_ms) {
                        self.outbox.push_back(WorkerMsg::Error {
                            epoch,
                            track_id,
                            error,
                        });
                        return true;
                    }
                }
                self.begin(track_id, source, start_ms);
            }
            WorkerCmd::Enqueue {
                track_id,
                source,
                replaces,
            } => {
                let started_replaced =
                    replaces.is_some() && self.current.as_ref().map(|d| d.track_id) == replaces;
                if started_replaced {
                    // The worker ran ahead into the track being replaced: drop what it made
                    // of it and start the new one in its place.
                    self.current = None;
                    self.outbox.retain(|m| m.track_id() != replaces);
                }
                if self.current.is_some() {
                    self.next = Some((track_id, source));
                } else {
                    self.begin(track_id, source, 0);
                }
            }
            WorkerCmd::Seek {
                epoch,
                track_id,
                position_ms,
                spec,
            } => {
                self.restart(epoch, spec);
                let current_id = self.current.as_ref().map(|d| d.track_id);
                let source = if current_id == Some(track_id) {
                    self.current.take().map(|d| d.source)
                } else if let Some(pos) = self.finished.iter().position(|f| f.0 == track_id) {
                    // The worker had moved past the track being heard: the track that
                    // followed it goes back in the queue, from its start (the engine queues
                    // one track, so only one can follow).
                    let mut later: Vec<(TrackId, TrackSource)> =
                        self.finished.drain(pos + 1..).collect();
                    if let Some(moved_on) = self.current.take() {
                        later.push((moved_on.track_id, moved_on.source));
                    }
                    later.extend(self.next.take());
                    if let Some((id, mut source)) = later.into_iter().next() {
                        if source.seek(0).is_ok() {
                            self.next = Some((id, source));
                        }
                    }
                    self.finished.pop_back().map(|f| f.1)
                } else {
                    None
                };
                let error = match source {
                    Some(mut source) => match source.seek(position_ms) {
                        Ok(()) => {
                            self.begin_silently(track_id, source);
                            None
                        }
                        Err(error) => Some(error),
                    },
                    None => Some(AudioError::NothingPlaying),
                };
                if let Some(error) = error {
                    // The track cannot go on: end it, so playback moves to the queued track
                    // or stops, instead of waiting forever.
                    self.outbox.push_back(WorkerMsg::Error {
                        epoch,
                        track_id,
                        error,
                    });
                    self.outbox
                        .push_back(WorkerMsg::TrackEnded { epoch, track_id });
                    if let Some((next_id, next_source)) = self.next.take() {
                        self.begin(next_id, next_source, 0);
                    }
                }
            }
            WorkerCmd::Stop { epoch } => {
                self.restart(epoch, self.spec);
                self.current = None;
                self.next = None;
                self.finished.clear();
            }
            WorkerCmd::Shutdown => return false,
        }
        true
    }

    fn restart(&mut self, epoch: u64, spec: StreamSpec) {
        self.epoch = epoch;
        self.spec = spec;
        self.outbox.clear();
    }

    fn begin(&mut self, track_id: TrackId, mut source: TrackSource, start_ms: u64) {
        // Tags are read here, on the worker, when the track starts: never on the control
        // thread, and only for tracks that play.
        source.read_tags();
        let info = Box::new(source.info().clone());
        if self.begin_silently(track_id, source) {
            self.outbox.push_back(WorkerMsg::TrackStarted {
                epoch: self.epoch,
                track_id,
                info,
                start_ms,
            });
        }
    }

    fn begin_silently(&mut self, track_id: TrackId, source: TrackSource) -> bool {
        match Converter::new(source.info().spec(), self.spec) {
            Ok(converter) => {
                self.current = Some(Decoding {
                    track_id,
                    source,
                    converter,
                    batch: Vec::new(),
                    sent_first: false,
                });
                true
            }
            Err(message) => {
                self.outbox.push_back(WorkerMsg::Error {
                    epoch: self.epoch,
                    track_id,
                    error: AudioError::Unsupported {
                        path: source.info().path.clone(),
                        message,
                    },
                });
                self.outbox.push_back(WorkerMsg::TrackEnded {
                    epoch: self.epoch,
                    track_id,
                });
                false
            }
        }
    }

    fn produce(&mut self) {
        let channels = usize::from(self.spec.channels.max(1));
        let Some(decoding) = self.current.as_mut() else {
            return;
        };
        let epoch = self.epoch;
        let track_id = decoding.track_id;
        let block = |samples| WorkerMsg::Block {
            epoch,
            track_id,
            samples,
        };
        if decoding.sent_first && decoding.batch.capacity() == 0 {
            // Room for the whole batch at once: growing it packet by packet would copy the
            // audio again at each doubling.
            if let Ok(mut reused) = self.spent.try_recv() {
                reused.clear();
                decoding.batch = reused;
            }
            decoding.batch.reserve(BATCH_FRAMES * channels * 9 / 8);
        }
        let decoded = if decoding.converter.is_passthrough() {
            // Straight into the batch: no copy of the packet in between.
            decoding
                .source
                .next_block_into(&mut decoding.batch)
                .map(|more| more.then_some(()))
        } else {
            decoding.source.next_block().map(|block| {
                block.map(|decoded| {
                    decoding
                        .converter
                        .process_into(&decoded, &mut decoding.batch);
                })
            })
        };
        match decoded {
            Ok(Some(())) => {
                let ready = if decoding.sent_first {
                    decoding.batch.len() >= BATCH_FRAMES * channels
                } else {
                    !decoding.batch.is_empty()
                };
                if ready {
                    decoding.sent_first = true;
                    self.outbox
                        .push_back(block(std::mem::take(&mut decoding.batch)));
                }
            }
            Ok(None) => {
                let mut rest = std::mem::take(&mut decoding.batch);
                rest.extend(decoding.converter.finish());
                if !rest.is_empty() {
                    self.outbox.push_back(block(rest));
                }
                self.end_current();
            }
            Err(error) => {
                let rest = std::mem::take(&mut decoding.batch);
                if !rest.is_empty() {
                    self.outbox.push_back(block(rest));
                }
                self.outbox.push_back(WorkerMsg::Error {
                    epoch,
                    track_id,
                    error,
                });
                self.end_current();
            }
        }
    }

    fn end_current(&mut self) {
        let Some(done) = self.current.take() else {
            return;
        };
        self.outbox.push_back(WorkerMsg::TrackEnded {
            epoch: self.epoch,
            track_id: done.track_id,
        });
        self.finished.push_back((done.track_id, done.source));
        while self.finished.len() > FINISHED_KEPT {
            self.finished.pop_front();
        }
        if let Some((next_id, next_source)) = self.next.take() {
            self.begin(next_id, next_source, 0);
        }
    }
}
