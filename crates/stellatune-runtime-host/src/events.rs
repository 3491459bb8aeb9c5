//! Host events and the bounded per-client queues they wait in.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use stellatune_audio::EngineEvent;

/// Notices from the host itself, as opposed to the engine. Front ends see them in the shape
/// the C ABI gives them (`stellatune-ffi`'s wire module), not as this type.
#[derive(Debug, Clone, PartialEq)]
pub enum HostNotice {
    /// The client's queue was full and this many of its oldest events were dropped.
    Lagged { dropped: u64 },
    /// Another client of this host was evicted.
    ClientEvicted { client_id: u64, reason: String },
    /// A plugin was installed (or replaced) and its new generation is active.
    PluginInstalled {
        plugin_id: String,
        generation: Option<u64>,
    },
    /// A plugin was uninstalled; instances still playing keep running until closed.
    PluginUninstalled { plugin_id: String },
    /// The plugin directory was re-read.
    PluginsReloaded {
        loaded: Vec<String>,
        reloaded: Vec<String>,
        removed: Vec<String>,
        failed: Vec<String>,
    },
    /// The engine died (its control thread panicked) and a fresh one took its place, with
    /// the same route and DSP chain; playback stopped and may simply be started again.
    EngineRestarted { reason: String },
    /// An event a plugin emitted through the host vtable.
    PluginEvent {
        plugin_id: String,
        kind: String,
        payload: serde_json::Value,
    },
    /// Nothing else was posted to the client's event port for a while: this probe finds a
    /// port whose receiver is gone. Posted to ports only, never queued for polling clients.
    Heartbeat,
}

/// One event as a client receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    Engine(EngineEvent),
    Host(HostNotice),
}

/// Why a queue stopped taking events.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    Disposed,
    Evicted(String),
}

struct QueueState {
    events: VecDeque<Arc<HostEvent>>,
    dropped: u64,
    closed: Option<Closed>,
    /// Told of every event pushed while the client's events go to a port (the event pump).
    waker: Option<Waker>,
}

/// Wakes the event pump: a token in a channel of one, so any number of pushes between two
/// rounds of the pump cost one wake-up.
#[derive(Clone)]
pub(crate) struct Waker(crossbeam_channel::Sender<()>);

impl Waker {
    pub fn new(sender: crossbeam_channel::Sender<()>) -> Self {
        Self(sender)
    }

    pub fn wake(&self) {
        // Full means a wake-up is pending already; disconnected means no pump runs.
        let _ = self.0.try_send(());
    }
}

/// A bounded queue: when full, the oldest event goes and a `lagged` notice tells the
/// reader how many it missed. An abandoned client therefore costs a fixed amount of memory.
pub struct EventQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
    capacity: usize,
}

/// What a poll found.
#[derive(Debug)]
pub enum Polled<R> {
    /// The front event, taken.
    Taken(R),
    /// The front event, left in place because the reader declined it (e.g. buffer too small).
    Declined(R),
    TimedOut,
    Closed(Closed),
}

impl EventQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(QueueState {
                events: VecDeque::with_capacity(capacity.min(64)),
                dropped: 0,
                closed: None,
                waker: None,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, event: Arc<HostEvent>) {
        let mut state = self.lock();
        if state.closed.is_some() {
            return;
        }
        if state.events.len() >= self.capacity {
            state.events.pop_front();
            state.dropped += 1;
        }
        state.events.push_back(event);
        let waker = state.waker.clone();
        drop(state);
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// From now on every push also wakes `waker` (`None`: nobody).
    pub(crate) fn set_waker(&self, waker: Option<Waker>) {
        self.lock().waker = waker;
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the queue, frees its events and wakes every waiting reader.
    pub fn close(&self, why: Closed) {
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some(why);
        }
        state.events = VecDeque::new();
        drop(state);
        self.ready.notify_all();
    }

    /// Waits up to `timeout` for an event and offers it to `read`, which returns what it
    /// made of it and whether to take it. A lag notice comes before the events after a gap.
    pub fn poll_with<R>(
        &self,
        timeout: Duration,
        mut read: impl FnMut(&HostEvent) -> (R, bool),
    ) -> Polled<R> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(why) = &state.closed {
                return Polled::Closed(why.clone());
            }
            if state.dropped > 0 {
                let notice = HostEvent::Host(HostNotice::Lagged {
                    dropped: state.dropped,
                });
                let (result, take) = read(&notice);
                if take {
                    state.dropped = 0;
                    return Polled::Taken(result);
                }
                return Polled::Declined(result);
            }
            if let Some(front) = state.events.front() {
                let (result, take) = read(front);
                if take {
                    state.events.pop_front();
                    return Polled::Taken(result);
                }
                return Polled::Declined(result);
            }
            let now = Instant::now();
            if now >= deadline {
                return Polled::TimedOut;
            }
            state = self
                .ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stellatune_audio::PlaybackState;

    fn ev(i: u64) -> Arc<HostEvent> {
        Arc::new(HostEvent::Engine(EngineEvent::TrackEnded { track_id: i }))
    }

    fn take(q: &EventQueue) -> Polled<HostEvent> {
        q.poll_with(Duration::ZERO, |e| (e.clone(), true))
    }

    #[test]
    fn drops_oldest_and_reports_lag_first() {
        let q = EventQueue::new(3);
        for i in 0..5 {
            q.push(ev(i));
        }
        assert_eq!(q.len(), 3);
        match take(&q) {
            Polled::Taken(event) => {
                assert_eq!(event, HostEvent::Host(HostNotice::Lagged { dropped: 2 }))
            }
            other => panic!("{other:?}"),
        }
        match take(&q) {
            Polled::Taken(event) => assert_eq!(event, *ev(2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn declined_event_stays_for_the_next_read() {
        let q = EventQueue::new(4);
        q.push(ev(7));
        assert!(matches!(
            q.poll_with(Duration::ZERO, |_| ((), false)),
            Polled::Declined(())
        ));
        assert_eq!(q.len(), 1);
        assert!(matches!(take(&q), Polled::Taken(_)));
        assert!(matches!(take(&q), Polled::TimedOut));
    }

    #[test]
    fn close_wakes_a_blocked_reader_and_frees_events() {
        let q = Arc::new(EventQueue::new(4));
        q.push(Arc::new(HostEvent::Engine(EngineEvent::StateChanged {
            state: PlaybackState::Playing,
        })));
        let _ = take(&q);
        let reader = {
            let q = q.clone();
            std::thread::spawn(move || q.poll_with(Duration::from_secs(30), |_| ((), true)))
        };
        std::thread::sleep(Duration::from_millis(50));
        q.push(ev(1));
        q.close(Closed::Evicted("lease expired".into()));
        let polled = reader.join().unwrap();
        assert!(matches!(polled, Polled::Taken(()) | Polled::Closed(_)));
        assert_eq!(q.len(), 0);
        assert!(matches!(take(&q), Polled::Closed(Closed::Evicted(_))));
    }
}
