//! The playback state both engine threads share: the current and the queued track, the
//! playback state, the route as the control thread last set it, the output spec as the
//! output thread opened it, and the frames written. It lives under one mutex that is held for
//! bookkeeping and for handing events to the event handler (which never blocks), never
//! across a sink call or any other blocking call.
//!
//! Events are emitted under that mutex, so the two threads' events reach clients in the
//! order the state changed: a position of a track can never follow its `track_ended`.
//!
//! `epoch` changes with every command that restarts the stream (play, seek, stop, a failed
//! output). The control thread bumps it when it accepts such a command and sends it on to
//! the output thread; the output thread applies what it learns from the sink and the decode
//! worker only while the epoch is still the one of the last command it carried out, so a
//! command in flight always wins over news about the stream it replaces.

use std::time::{Duration, Instant};

use crate::event::{EngineEvent, EventHandler, PlaybackState, TrackId};
use crate::gain::ReplayGainSettings;
use crate::source::TrackInfo;
use stellatune_core::StreamSpec;

use super::EngineStatus;

const POSITION_INTERVAL: Duration = Duration::from_millis(250);

pub(super) struct CurrentTrack {
    pub(super) id: TrackId,
    pub(super) info: TrackInfo,
    /// Where this track's written frames are counted from.
    pub(super) start_ms: u64,
    pub(super) frames_written: u64,
    /// True once the worker confirmed the track and its TrackStarted event went out.
    pub(super) announced: bool,
}

pub(super) struct Playback {
    events: EventHandler,
    pub(super) epoch: u64,
    pub(super) state: PlaybackState,
    pub(super) next_track_id: TrackId,
    pub(super) current: Option<CurrentTrack>,
    pub(super) queued_next: Option<(TrackId, TrackInfo)>,
    pub(super) volume: f32,
    pub(super) replaygain: ReplayGainSettings,
    /// The route the control thread applied last, described.
    pub(super) route: Option<String>,
    /// Bumped with every route applied or cleared, so that the output thread's report about
    /// an older route (a failed open) cannot touch a newer one.
    pub(super) route_generation: u64,
    /// The spec the output thread has the sink open with.
    pub(super) spec: Option<StreamSpec>,
    pub(super) total_frames_written: u64,
    pub(super) last_position_event: Option<Instant>,
}

impl Playback {
    pub(super) fn new(events: EventHandler, replaygain: ReplayGainSettings) -> Self {
        Self {
            events,
            epoch: 0,
            state: PlaybackState::Stopped,
            next_track_id: 1,
            current: None,
            queued_next: None,
            volume: 1.0,
            replaygain,
            route: None,
            route_generation: 0,
            spec: None,
            total_frames_written: 0,
            last_position_event: None,
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

    pub(super) fn allocate_track_id(&mut self) -> TrackId {
        let id = self.next_track_id;
        self.next_track_id += 1;
        id
    }

    pub(super) fn position_ms(&self) -> u64 {
        match (&self.current, self.spec) {
            (Some(c), Some(spec)) => c.start_ms + spec.frames_to_ms(c.frames_written),
            (Some(c), None) => c.start_ms,
            _ => 0,
        }
    }

    /// Ends what plays: the current track ends (announced if it was), the queue empties and
    /// the state turns to stopped. The caller tells the output thread.
    pub(super) fn stop_playback(&mut self) {
        self.epoch += 1;
        self.queued_next = None;
        if let Some(current) = self.current.take() {
            if current.announced {
                self.emit(EngineEvent::TrackEnded {
                    track_id: current.id,
                });
            }
        }
        self.set_state(PlaybackState::Stopped);
    }

    pub(super) fn fail(&mut self, track_id: Option<TrackId>, message: String) {
        tracing::warn!(message, "playback error");
        self.emit(EngineEvent::Error { message, track_id });
        self.stop_playback();
    }

    /// The current track ended with everything of it written (and, for the last track,
    /// heard): the queued track, if any, follows; otherwise playback stops.
    pub(super) fn end_current(&mut self, track_id: TrackId) {
        if self.current.as_ref().map(|c| c.id) != Some(track_id) {
            return;
        }
        self.emit_position(true);
        self.emit(EngineEvent::TrackEnded { track_id });
        self.current = None;
        if self.queued_next.is_none() {
            self.set_state(PlaybackState::Stopped);
        }
    }

    /// The decode worker started `track_id` (a new play, or the queued track gaplessly).
    pub(super) fn track_started(&mut self, track_id: TrackId, info: Box<TrackInfo>, start_ms: u64) {
        let is_queued = self.queued_next.as_ref().map(|q| q.0) == Some(track_id);
        if is_queued {
            self.queued_next = None;
            self.current = Some(CurrentTrack {
                id: track_id,
                info: (*info).clone(),
                start_ms,
                frames_written: 0,
                announced: false,
            });
        }
        if let Some(current) = self.current.as_mut().filter(|c| c.id == track_id) {
            // The worker's info has the tags, read when the track started.
            current.info = (*info).clone();
            current.announced = true;
            self.last_position_event = None;
            self.emit(EngineEvent::TrackStarted { track_id, info });
        }
    }

    /// The ReplayGain factor for `track_id`'s audio: unity for a track that is not the
    /// current one (the tail of a stopped stream).
    pub(super) fn replaygain_for(&self, track_id: TrackId) -> f32 {
        self.current
            .as_ref()
            .filter(|c| c.id == track_id)
            .map_or(1.0, |c| self.replaygain.gain(&c.info.replaygain))
    }

    pub(super) fn emit_position(&mut self, force: bool) {
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

    pub(super) fn status(&self) -> EngineStatus {
        EngineStatus {
            state: self.state,
            track_id: self.current.as_ref().map(|c| c.id),
            track: self.current.as_ref().map(|c| c.info.clone()),
            position_ms: self.position_ms(),
            volume: self.volume,
            route: self.route.clone(),
            output_spec: self.spec,
            queued_next: self.queued_next.as_ref().map(|q| q.0),
            frames_written: self.total_frames_written,
        }
    }
}
