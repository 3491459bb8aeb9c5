//! The Rust API for front ends. A [`Player`] is a light client session over the process's
//! one [`RuntimeHost`]: creating one attaches, [`Player::dispose`] detaches. Dropping a
//! player without disposing it still detaches, but logs a warning: it is a safety net, not
//! the way to end a session.

#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

pub use stellatune_runtime_host::{
    AudioError, BuiltinRoute, ClientSession, EngineEvent, EngineStatus, HostConfig, HostError,
    HostEvent, HostNotice, InitOutcome, LifecycleState, LogFormat, MetricsSnapshot, OutputRoute,
    PlaybackState, PluginRoute, ReplayGainMode, ReplayGainSettings, Result, RuntimeHost, TrackId,
    TrackInfo, TrackSource,
};
pub use stellatune_runtime_host::{
    Cover, CoverInfo, MediaInfo, MediaTags, ReplayGain, probe_media, read_cover,
};

/// Initialises the process's runtime (idempotent).
pub fn runtime_init(config: HostConfig) -> Result<InitOutcome> {
    RuntimeHost::global().init(config)
}

/// Shuts the process's runtime down and joins its threads; init works again afterwards.
pub fn runtime_shutdown() -> Result<()> {
    RuntimeHost::global().shutdown()
}

/// Evicts every client of earlier generations; call it at the bootstrap of a new isolate.
pub fn runtime_prepare_hot_restart() -> Result<u64> {
    RuntimeHost::global().prepare_hot_restart()
}

pub fn runtime_metrics() -> MetricsSnapshot {
    RuntimeHost::global().metrics()
}

/// A client session. Every call renews the session's lease.
pub struct Player<'h> {
    host: &'h RuntimeHost,
    session: ClientSession,
    disposed: bool,
}

impl Player<'static> {
    /// Attaches a session to the process's runtime.
    pub fn create() -> Result<Self> {
        Player::attach(RuntimeHost::global())
    }
}

impl<'h> Player<'h> {
    /// Attaches a session to `host` (an isolated host in tests, or the global one).
    pub fn attach(host: &'h RuntimeHost) -> Result<Self> {
        let session = host.attach_client()?;
        Ok(Self {
            host,
            session,
            disposed: false,
        })
    }

    pub fn id(&self) -> u64 {
        self.session.id
    }

    pub fn generation(&self) -> u64 {
        self.session.generation
    }

    pub fn play(&self, path: impl AsRef<Path>) -> Result<TrackId> {
        self.host.play(self.session.id, path.as_ref())
    }

    /// Queues a track to follow the current one with no gap.
    pub fn queue_next(&self, path: impl AsRef<Path>) -> Result<TrackId> {
        self.host.queue_next(self.session.id, path.as_ref())
    }

    pub fn pause(&self) -> Result<()> {
        self.host.pause(self.session.id)
    }

    pub fn resume(&self) -> Result<()> {
        self.host.resume(self.session.id)
    }

    pub fn stop(&self) -> Result<()> {
        self.host.stop(self.session.id)
    }

    pub fn seek_ms(&self, position_ms: u64) -> Result<()> {
        self.host.seek_ms(self.session.id, position_ms)
    }

    pub fn set_volume(&self, volume: f32) -> Result<()> {
        self.host.set_volume(self.session.id, volume)
    }

    /// ReplayGain for the engine (shared by every client).
    pub fn set_replaygain(
        &self,
        settings: stellatune_runtime_host::ReplayGainSettings,
    ) -> Result<()> {
        self.host.set_replaygain(self.session.id, settings)
    }

    pub fn apply_route(&self, route: impl Into<OutputRoute>) -> Result<()> {
        self.host.apply_route(self.session.id, route.into())
    }

    pub fn clear_route(&self) -> Result<()> {
        self.host.clear_route(self.session.id)
    }

    pub fn status(&self) -> Result<EngineStatus> {
        self.host.status(self.session.id)
    }

    /// The next event, waiting at most `timeout`; `None` if none came.
    pub fn next_event(&self, timeout: Duration) -> Result<Option<HostEvent>> {
        self.host.poll_event(self.session.id, timeout)
    }

    /// Ends the session explicitly.
    pub fn dispose(mut self) -> Result<()> {
        self.disposed = true;
        self.host.detach_client(self.session.id)
    }
}

impl Drop for Player<'_> {
    fn drop(&mut self) {
        if !self.disposed {
            tracing::warn!(
                client_id = self.session.id,
                "player dropped without dispose(); detaching it as a safety net"
            );
            let _ = self.host.detach_client(self.session.id);
        }
    }
}
