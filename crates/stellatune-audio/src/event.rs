use crate::source::TrackInfo;

pub type TrackId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackState {
    Stopped,
    Playing,
    Paused,
}

/// What the engine tells the world. Front ends see it in the shape the C ABI gives it
/// (`stellatune-ffi`'s wire module), not as this type.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    StateChanged {
        state: PlaybackState,
    },
    TrackStarted {
        track_id: TrackId,
        /// With the tags and ReplayGain values, read when the track started.
        info: Box<TrackInfo>,
    },
    /// Sent at most a few times a second, whatever the render speed.
    Position {
        track_id: TrackId,
        position_ms: u64,
        duration_ms: Option<u64>,
    },
    TrackEnded {
        track_id: TrackId,
    },
    RouteChanged {
        route: Option<String>,
    },
    Error {
        message: String,
        track_id: Option<TrackId>,
    },
    /// An output is being opened (a plugin sink may start a helper process for it); the
    /// engine keeps answering commands, and the music starts once it is open.
    OutputStarting {
        route: String,
    },
    /// The output ran dry while playing; `count` is the engine's total so far. At most one a
    /// second.
    Underrun {
        count: u64,
    },
    /// The output went away while in use (a device unplugged or reset, the system default
    /// moved while the route follows it): `route` is where audio went, `message` why. The
    /// engine re-opens the output with backoff and goes on from the position heard last;
    /// `OutputChanged` follows once it plays again.
    OutputLost {
        route: String,
        message: String,
    },
    /// After `OutputLost`: the output plays again, on `route` (e.g. `device:alsa:default`).
    OutputChanged {
        route: String,
    },
}

/// Where the engine's events go. Called on the engine's control and output threads:
/// it must not block.
pub type EventHandler = std::sync::Arc<dyn Fn(EngineEvent) + Send + Sync>;
