//! The client registry: light sessions over the one engine, with generations and leases.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::HostError;
use crate::events::{Closed, EventQueue, HostEvent, HostNotice, Waker};
use crate::ports::EventPort;

/// Client ids come from one process-wide counter and are never reused, so an id kept by a
/// dead isolate can never address a client of the next one, even across shutdown and init.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// How many ended clients are remembered to tell "disposed" and "evicted" apart.
const REMEMBERED_ENDED_CLIENTS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// When the lease runs out; only counts while no call of this client is in flight.
    lease_deadline: Instant,
    /// Calls of this client that have started and not returned. A client inside a call is
    /// alive by definition (a poll that waits, a route that takes a while to open), so its
    /// lease is not enforced until the last call returns, and then counts from that moment.
    calls_in_flight: u32,
    queue: Arc<EventQueue>,
    /// Where the event pump posts this client's events; `None`: the client polls.
    port: Option<Arc<dyn EventPort>>,
}

/// A client whose events go to a port, as the event pump sees it for one round.
pub(crate) struct PortTarget {
    pub id: u64,
    pub queue: Arc<EventQueue>,
    pub port: Arc<dyn EventPort>,
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
    /// False while no runtime runs (before init, during and after shutdown): attaching is
    /// refused, so a client can never outlive the runtime it attached to.
    accepting: bool,
}

pub(crate) struct ClientRegistry {
    /// For log lines: which host this registry belongs to.
    host: String,
    state: Mutex<Registry>,
    /// Every eviction, whoever found it (supervisor, rollover, a call that found its own
    /// lease expired, shutdown), counted exactly once.
    evictions_total: AtomicU64,
}

/// A client that left the registry, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evicted {
    pub id: u64,
    pub generation: u64,
    pub reason: String,
}

impl ClientRegistry {
    pub fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
            evictions_total: AtomicU64::new(0),
            state: Mutex::new(Registry {
                clients: HashMap::new(),
                ended: HashMap::new(),
                ended_order: VecDeque::new(),
                generation: 1,
                lease: crate::config::DEFAULT_CLIENT_LEASE,
                queue_capacity: crate::config::DEFAULT_EVENT_QUEUE_CAPACITY,
                emptied: false,
                accepting: false,
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

    /// Lets clients attach again (the runtime is running).
    pub fn open(&self) {
        let mut state = self.lock();
        state.accepting = true;
        // A new runtime's output is clean: an emptying left by the last one is moot.
        state.emptied = false;
    }

    /// Refuses new clients and evicts every live one, atomically: no attach can slip in
    /// between (the runtime is shutting down).
    pub fn close(&self, reason: &str) -> Vec<Evicted> {
        let evicted = {
            let mut state = self.lock();
            state.accepting = false;
            let ids: Vec<u64> = state.clients.keys().copied().collect();
            ids.into_iter()
                .filter_map(|id| self.evict_locked(&mut state, id, reason))
                .collect::<Vec<_>>()
        };
        self.report(&evicted, 0);
        evicted
    }

    /// Registers a new client. `Ok(None)` while the last client has left and the output it
    /// left behind is not cleared yet: the caller clears it first (see
    /// `Sessions::when_emptied`), so a new session never inherits an abandoned one's route
    /// or DSP chain, whichever thread noticed the emptying.
    pub fn attach(&self) -> Result<Option<(ClientSession, usize)>, HostError> {
        let mut state = self.lock();
        if !state.accepting {
            return Err(HostError::NotInitialized);
        }
        if state.emptied {
            return Ok(None);
        }
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::SeqCst);
        let generation = state.generation;
        let client = Client {
            generation,
            lease_deadline: Instant::now() + state.lease,
            calls_in_flight: 0,
            queue: Arc::new(EventQueue::new(state.queue_capacity)),
            port: None,
        };
        state.clients.insert(id, client);
        Ok(Some((
            ClientSession { id, generation },
            state.clients.len(),
        )))
    }

    /// Ends a client at its own request. Returns how many remain.
    pub fn detach(&self, id: u64) -> Result<usize, HostError> {
        let mut state = self.lock();
        if let Some(evicted) = self.check_lease(&mut state, id, Instant::now()) {
            let left = state.clients.len();
            drop(state);
            self.report(&[evicted], left);
            return Err(Self::missing(&self.lock(), id));
        }
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

    /// Checks that `id` is live and marks a call of it in flight until [`Self::end_call`]:
    /// the client cannot expire meanwhile. Returns its queue.
    pub fn begin_call(&self, id: u64) -> Result<Arc<EventQueue>, HostError> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(evicted) = self.check_lease(&mut state, id, now) {
            let left = state.clients.len();
            let error = Self::missing(&state, id);
            drop(state);
            self.report(&[evicted], left);
            return Err(error);
        }
        match state.clients.get_mut(&id) {
            Some(client) => {
                client.calls_in_flight += 1;
                Ok(client.queue.clone())
            }
            None => Err(Self::missing(&state, id)),
        }
    }

    /// Whether `id` is live right now (no lease check: the caller is inside a call of it).
    pub fn is_live(&self, id: u64) -> Result<(), HostError> {
        let state = self.lock();
        if state.clients.contains_key(&id) {
            Ok(())
        } else {
            Err(Self::missing(&state, id))
        }
    }

    /// A call of `id` returned: its lease counts from now. A client evicted meanwhile (by a
    /// rollover or shutdown, which do not wait for leases) is simply gone.
    pub fn end_call(&self, id: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let lease = state.lease;
        if let Some(client) = state.clients.get_mut(&id) {
            client.calls_in_flight = client.calls_in_flight.saturating_sub(1);
            client.lease_deadline = now + lease;
        }
    }

    /// Sends the events of live client `id` to `port` from now on (`None`: back to polling);
    /// `waker` is told of every event queued for it while it has a port.
    pub fn set_port(
        &self,
        id: u64,
        port: Option<Arc<dyn EventPort>>,
        waker: &Waker,
    ) -> Result<(), HostError> {
        let mut state = self.lock();
        let Some(client) = state.clients.get_mut(&id) else {
            return Err(Self::missing(&state, id));
        };
        client.queue.set_waker(port.as_ref().map(|_| waker.clone()));
        client.port = port;
        Ok(())
    }

    /// Whether live client `id` has a port (its events are not for polling).
    pub fn has_port(&self, id: u64) -> bool {
        self.lock()
            .clients
            .get(&id)
            .is_some_and(|c| c.port.is_some())
    }

    /// The clients whose events go to a port, right now.
    pub fn port_targets(&self) -> Vec<PortTarget> {
        self.lock()
            .clients
            .iter()
            .filter_map(|(id, c)| {
                c.port.as_ref().map(|port| PortTarget {
                    id: *id,
                    queue: c.queue.clone(),
                    port: port.clone(),
                })
            })
            .collect()
    }

    /// Something reached the client (a post to its port): its lease counts from now.
    pub fn renew(&self, id: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let lease = state.lease;
        if let Some(client) = state.clients.get_mut(&id) {
            client.lease_deadline = client.lease_deadline.max(now + lease);
        }
    }

    /// Evicts client `id` for `reason` (logged, counted and announced like every eviction).
    /// Returns how many clients remain, or `None` when it was gone already.
    pub fn evict(&self, id: u64, reason: &str) -> Option<usize> {
        let mut state = self.lock();
        let evicted = self.evict_locked(&mut state, id, reason)?;
        let left = state.clients.len();
        drop(state);
        self.report(&[evicted], left);
        Some(left)
    }

    /// A client whose lease ran out is evicted on its next call even if the supervisor has
    /// not come round yet: correctness never waits for a timer.
    fn check_lease(&self, state: &mut Registry, id: u64, now: Instant) -> Option<Evicted> {
        let expired = state
            .clients
            .get(&id)
            .is_some_and(|c| c.calls_in_flight == 0 && c.lease_deadline <= now);
        if expired {
            let reason = format!("lease expired (no call for {} ms)", state.lease.as_millis());
            self.evict_locked(state, id, &reason)
        } else {
            None
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

    fn evict_locked(&self, state: &mut Registry, id: u64, reason: &str) -> Option<Evicted> {
        let client = state.clients.remove(&id)?;
        self.evictions_total.fetch_add(1, Ordering::SeqCst);
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
        let evicted: Vec<Evicted> = ids
            .into_iter()
            .filter_map(|id| self.evict_locked(&mut state, id, reason))
            .collect();
        let left = state.clients.len();
        drop(state);
        self.report(&evicted, left);
        (evicted, left)
    }

    /// The one place an eviction is logged and announced to the clients that remain, with
    /// no registry lock held.
    fn report(&self, evicted: &[Evicted], left: usize) {
        for e in evicted {
            tracing::warn!(host = %self.host, client_id = e.id, generation = e.generation, reason = %e.reason, clients_active = left, "client evicted");
        }
        self.announce_evictions(evicted);
    }

    pub fn evictions_total(&self) -> u64 {
        self.evictions_total.load(Ordering::SeqCst)
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
        self.evict_where(&reason, |c| {
            c.calls_in_flight == 0 && c.lease_deadline <= now
        })
    }

    /// True once after the last client left.
    pub fn take_emptied(&self) -> bool {
        std::mem::take(&mut self.lock().emptied)
    }

    /// Whether the last client left and nobody has taken that up yet.
    pub fn emptied(&self) -> bool {
        self.lock().emptied
    }

    /// The nearest lease deadline of a client with no call in flight (a client inside a
    /// call gets a fresh deadline when the call returns, which wakes nobody: the supervisor
    /// naps at most a quarter lease anyway).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock()
            .clients
            .values()
            .filter(|c| c.calls_in_flight == 0)
            .map(|c| c.lease_deadline)
            .min()
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

    fn announce_evictions(&self, evicted: &[Evicted]) {
        for e in evicted {
            self.broadcast(HostEvent::Host(HostNotice::ClientEvicted {
                client_id: e.id,
                reason: e.reason.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(lease_ms: u64) -> ClientRegistry {
        let registry = ClientRegistry::new("test");
        registry.configure(Duration::from_millis(lease_ms), 8);
        registry.open();
        registry
    }

    /// An eviction found by the client's own next call (before the supervisor came round)
    /// was once silent and uncounted.
    #[test]
    fn an_eviction_found_by_the_next_call_is_counted_once() {
        let r = registry(10);
        let (a, _) = r.attach().unwrap().unwrap();
        let (b, _) = r.attach().unwrap().unwrap();
        let witness = r.begin_call(b.id).unwrap();
        r.end_call(b.id);
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(
            r.begin_call(a.id),
            Err(HostError::ClientEvicted { .. })
        ));
        assert_eq!(r.evictions_total(), 1);
        // Asking again does not count it again.
        assert!(r.begin_call(a.id).is_err());
        assert_eq!(r.evictions_total(), 1);
        // The other client heard about it.
        assert!(!witness.is_empty());
    }

    #[test]
    fn a_call_in_flight_holds_the_lease_and_it_counts_from_the_end() {
        let r = registry(20);
        let (a, _) = r.attach().unwrap().unwrap();
        r.begin_call(a.id).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert!(r.evict_expired().0.is_empty(), "evicted inside its call");
        r.end_call(a.id);
        assert!(r.evict_expired().0.is_empty(), "the lease did not restart");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(r.evict_expired().0.len(), 1);
    }

    #[test]
    fn a_closed_registry_refuses_clients_until_opened() {
        let r = registry(1000);
        let (a, _) = r.attach().unwrap().unwrap();
        assert_eq!(r.close("shut down").len(), 1);
        assert!(r.attach().is_err());
        assert!(r.is_live(a.id).is_err());
        r.open();
        assert!(matches!(r.attach(), Ok(Some(_))));
    }

    /// Until the output the last client left is cleared, nobody attaches to it.
    #[test]
    fn no_attach_while_the_last_client_s_output_awaits_its_clear() {
        let r = registry(1000);
        let (a, _) = r.attach().unwrap().unwrap();
        r.detach(a.id).unwrap();
        assert!(matches!(r.attach(), Ok(None)));
        assert!(r.take_emptied());
        assert!(matches!(r.attach(), Ok(Some(_))));
    }
}
