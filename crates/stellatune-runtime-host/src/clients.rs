//! The client registry: light sessions over the one engine, with generations and leases.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::HostError;
use crate::events::{Closed, EventQueue, HostEvent, HostNotice};

/// Client ids come from one process-wide counter and are never reused, so an id kept by a
/// dead isolate can never address a client of the next one, even across shutdown and init.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// How many ended clients are remembered to tell "disposed" and "evicted" apart.
const REMEMBERED_ENDED_CLIENTS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClientSession {
    pub id: u64,
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Ended {
    Disposed,
    Evicted(String),
}

struct Client {
    generation: u64,
    lease_deadline: Instant,
    queue: Arc<EventQueue>,
}

struct Registry {
    clients: HashMap<u64, Client>,
    ended: HashMap<u64, Ended>,
    ended_order: VecDeque<u64>,
    generation: u64,
    lease: Duration,
    queue_capacity: usize,
    /// Set when the last client went; the host then stops playback, since nobody is left to
    /// hear or control it.
    emptied: bool,
}

pub(crate) struct ClientRegistry {
    state: Mutex<Registry>,
}

/// A client that left the registry, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evicted {
    pub id: u64,
    pub generation: u64,
    pub reason: String,
}

impl ClientRegistry {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(Registry {
                clients: HashMap::new(),
                ended: HashMap::new(),
                ended_order: VecDeque::new(),
                generation: 1,
                lease: crate::config::DEFAULT_CLIENT_LEASE,
                queue_capacity: crate::config::DEFAULT_EVENT_QUEUE_CAPACITY,
                emptied: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn configure(&self, lease: Duration, queue_capacity: usize) {
        let mut state = self.lock();
        state.lease = lease;
        state.queue_capacity = queue_capacity;
    }

    pub fn lease(&self) -> Duration {
        self.lock().lease
    }

    pub fn attach(&self) -> (ClientSession, usize) {
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::SeqCst);
        let mut state = self.lock();
        let generation = state.generation;
        let client = Client {
            generation,
            lease_deadline: Instant::now() + state.lease,
            queue: Arc::new(EventQueue::new(state.queue_capacity)),
        };
        state.clients.insert(id, client);
        (ClientSession { id, generation }, state.clients.len())
    }

    /// Ends a client at its own request. Returns how many remain.
    pub fn detach(&self, id: u64) -> Result<usize, HostError> {
        let mut state = self.lock();
        Self::check_lease(&mut state, id, Instant::now());
        match state.clients.remove(&id) {
            Some(client) => {
                client.queue.close(Closed::Disposed);
                Self::remember(&mut state, id, Ended::Disposed);
                state.emptied |= state.clients.is_empty();
                Ok(state.clients.len())
            }
            None => Err(Self::missing(&state, id)),
        }
    }

    /// Checks that `id` is live, renews its lease and returns its queue.
    pub fn touch(&self, id: u64) -> Result<Arc<EventQueue>, HostError> {
        let now = Instant::now();
        let mut state = self.lock();
        Self::check_lease(&mut state, id, now);
        let lease = state.lease;
        match state.clients.get_mut(&id) {
            Some(client) => {
                client.lease_deadline = now + lease;
                Ok(client.queue.clone())
            }
            None => Err(Self::missing(&state, id)),
        }
    }

    /// A client whose lease ran out is evicted on its next call even if the supervisor has
    /// not come round yet: correctness never waits for a timer.
    fn check_lease(state: &mut Registry, id: u64, now: Instant) {
        let expired = state
            .clients
            .get(&id)
            .is_some_and(|c| c.lease_deadline <= now);
        if expired {
            let reason = format!("lease expired (no call for {} ms)", state.lease.as_millis());
            Self::evict_locked(state, id, &reason);
        }
    }

    fn missing(state: &Registry, id: u64) -> HostError {
        match state.ended.get(&id) {
            Some(Ended::Disposed) => HostError::ClientDisposed(id),
            Some(Ended::Evicted(reason)) => HostError::ClientEvicted {
                id,
                reason: reason.clone(),
            },
            None if id != 0 && id < NEXT_CLIENT_ID.load(Ordering::SeqCst) => {
                // Issued by this process but forgotten since: it can only be stale.
                HostError::ClientEvicted {
                    id,
                    reason: "stale client from an earlier session".into(),
                }
            }
            None => HostError::UnknownClient(id),
        }
    }

    fn remember(state: &mut Registry, id: u64, ended: Ended) {
        state.ended.insert(id, ended);
        state.ended_order.push_back(id);
        while state.ended_order.len() > REMEMBERED_ENDED_CLIENTS {
            if let Some(old) = state.ended_order.pop_front() {
                state.ended.remove(&old);
            }
        }
    }

    fn evict_locked(state: &mut Registry, id: u64, reason: &str) -> Option<Evicted> {
        let client = state.clients.remove(&id)?;
        client.queue.close(Closed::Evicted(reason.to_owned()));
        Self::remember(state, id, Ended::Evicted(reason.to_owned()));
        state.emptied |= state.clients.is_empty();
        Some(Evicted {
            id,
            generation: client.generation,
            reason: reason.to_owned(),
        })
    }

    fn evict_where(
        &self,
        reason: &str,
        mut doomed: impl FnMut(&Client) -> bool,
    ) -> (Vec<Evicted>, usize) {
        let mut state = self.lock();
        let ids: Vec<u64> = state
            .clients
            .iter()
            .filter(|(_, c)| doomed(c))
            .map(|(id, _)| *id)
            .collect();
        let evicted = ids
            .into_iter()
            .filter_map(|id| Self::evict_locked(&mut state, id, reason))
            .collect();
        (evicted, state.clients.len())
    }

    /// Starts a new generation and evicts every client of the older ones.
    pub fn roll_generation(&self, evict: bool) -> (u64, Vec<Evicted>, usize) {
        let generation = {
            let mut state = self.lock();
            state.generation += 1;
            state.generation
        };
        let (evicted, left) = self.evict_where("hot restart: generation rolled over", |c| {
            evict && c.generation < generation
        });
        (generation, evicted, left)
    }

    pub fn evict_expired(&self) -> (Vec<Evicted>, usize) {
        let now = Instant::now();
        let lease = self.lease();
        let reason = format!("lease expired (no call for {} ms)", lease.as_millis());
        self.evict_where(&reason, |c| c.lease_deadline <= now)
    }

    pub fn evict_all(&self, reason: &str) -> Vec<Evicted> {
        self.evict_where(reason, |_| true).0
    }

    /// True once after the last client left.
    pub fn take_emptied(&self) -> bool {
        std::mem::take(&mut self.lock().emptied)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().clients.values().map(|c| c.lease_deadline).min()
    }

    pub fn active(&self) -> usize {
        self.lock().clients.len()
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn queued_events(&self) -> usize {
        self.lock().clients.values().map(|c| c.queue.len()).sum()
    }

    /// Hands a global event to every live client.
    pub fn broadcast(&self, event: HostEvent) {
        let event = Arc::new(event);
        let state = self.lock();
        for client in state.clients.values() {
            client.queue.push(event.clone());
        }
    }

    pub fn announce_evictions(&self, evicted: &[Evicted]) {
        for e in evicted {
            self.broadcast(HostEvent::Host(HostNotice::ClientEvicted {
                client_id: e.id,
                reason: e.reason.clone(),
            }));
        }
    }
}
