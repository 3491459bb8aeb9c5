//! The client sessions over the runtime: the registry, the command gate, the lease supervisor,
//! event polling and the event pump (events posted to ports, `ports.rs`). They live as long
//! as the host, across shutdown and init, so that client ids and the reasons clients ended
//! are never forgotten between two runtimes.
//!
//! The gate is why this is one type: whatever evicts a client (a rollover, a lease, the last
//! client leaving, shutdown) holds it exclusively, and every client command holds it shared,
//! so a command of a client evicted a moment ago never reaches the engine. Sessions knows
//! nothing of the engine or the output: what to do when the last client leaves, and how to
//! check the engine, come from the running runtime through [`Watched`].

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use stellatune_audio::{AudioError, ThreadCounter};

use crate::clients::{ClientRegistry, ClientSession, PortTarget};
use crate::error::{HostError, Result};
use crate::events::{EventQueue, HostEvent, HostNotice, Polled, Waker};
use crate::ports::{EventPort, HEARTBEAT_AFTER, PORT_CLOSED};

/// What the supervisor watches over besides the leases: the running runtime. Held weakly, so
/// a runtime that is gone ends the supervisor instead of being kept alive by it.
pub(crate) trait Watched: Send + Sync {
    /// False when fault injection turned eviction off (by lease, by rollover and by a
    /// closed event port).
    fn evicts(&self) -> bool;
    /// The last client left: nobody can hear or steer playback, so it stops and the output
    /// is cleared. Called with the gate held exclusively, so it must not take it.
    fn last_client_left(&self);
    /// Once per supervisor round, with no lock held: replace an engine that died.
    fn check_engine(&self);
    /// Fires (or disconnects) when the running engine's control thread ends, so a dead engine
    /// is replaced at once instead of at the next round; `None` while no engine runs.
    fn engine_exit(&self) -> Option<Receiver<()>>;
}

struct Supervisor {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

/// The event pump of the running runtime: posts the events of clients with a port.
struct Pump {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

pub(crate) struct Sessions {
    /// For log lines and thread names: which host these sessions belong to.
    name: String,
    clients: ClientRegistry,
    /// Commands hold it shared; eviction and shutdown hold it exclusively, so a command from
    /// a client evicted a moment ago can never reach the engine after the eviction.
    gate: RwLock<()>,
    /// The lease supervisor of the running runtime, if one runs.
    supervisor: Mutex<Option<Supervisor>>,
    /// The event pump of the running runtime, if one runs.
    pump: Mutex<Option<Pump>>,
    /// Wakes the pump: an event was queued for a client with a port, a port was set, or
    /// the pump is to stop. `wake_rx` is the pump's end.
    waker: Waker,
    wake_rx: Receiver<()>,
}

/// One call of a live client: the client cannot expire while it runs, and its lease counts
/// from the moment it ends (dropped).
pub(crate) struct Turn<'s> {
    sessions: &'s Sessions,
    id: u64,
    queue: Arc<EventQueue>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.sessions.clients.end_call(self.id);
    }
}

impl Sessions {
    pub fn new(name: &str) -> Self {
        let (wake_tx, wake_rx) = bounded(1);
        Self {
            name: name.to_owned(),
            clients: ClientRegistry::new(name),
            gate: RwLock::new(()),
            supervisor: Mutex::new(None),
            pump: Mutex::new(None),
            waker: Waker::new(wake_tx),
            wake_rx,
        }
    }

    /// Readies the registry for a runtime about to start; clients can attach after [`Self::open`].
    pub fn configure(&self, lease: Duration, queue_capacity: usize) {
        self.clients.configure(lease, queue_capacity);
    }

    /// Lets clients attach (the runtime now runs).
    pub fn open(&self) {
        self.clients.open();
    }

    /// Hands a global event to every live client.
    pub fn broadcast(&self, event: HostEvent) {
        self.clients.broadcast(event);
    }

    pub fn active(&self) -> usize {
        self.clients.active()
    }

    pub fn generation(&self) -> u64 {
        self.clients.generation()
    }

    pub fn evictions_total(&self) -> u64 {
        self.clients.evictions_total()
    }

    pub fn queued_events(&self) -> usize {
        self.clients.queued_events()
    }

    /// Shared: an engine request that no eviction may overtake (a command, or re-applying the
    /// output after a plugin reload or an engine restart).
    pub fn gate_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Exclusive: no command runs meanwhile (an eviction, or replacing a dead engine).
    pub fn gate_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Attaches a new client. If the last client left a moment ago and the output it left
    /// has not been cleared yet, `stop` clears it first: a new session starts clean.
    pub fn attach(&self, stop: impl Fn()) -> Result<ClientSession> {
        loop {
            // Refused if a shutdown closed the registry meanwhile: a client never outlives
            // the runtime it attached to.
            match self.clients.attach().map_err(|_| HostError::ShuttingDown)? {
                Some((session, active)) => {
                    tracing::info!(host = %self.name, client_id = session.id, generation = session.generation, clients_active = active, "client attached");
                    return Ok(session);
                }
                // The registry refuses attaches until the clear is done, so this ends once
                // this thread or the one that emptied the registry has cleared it.
                None => self.when_emptied(&stop),
            }
        }
    }

    /// Ends client `id` at its request; `stop` runs if it was the last one.
    pub fn detach(&self, id: u64, stop: impl FnOnce()) -> Result<()> {
        let left = self.clients.detach(id);
        if let Ok(left) = left {
            tracing::info!(host = %self.name, client_id = id, clients_active = left, "client detached");
        }
        self.when_emptied(stop);
        left.map(|_| ())
    }

    /// Begins a call of client `id`, which must be live. The check may evict a client whose
    /// lease ran out, maybe the last one: then `stop` runs.
    pub fn begin(&self, id: u64, stop: impl FnOnce()) -> Result<Turn<'_>> {
        match self.clients.begin_call(id) {
            Ok(queue) => Ok(Turn {
                sessions: self,
                id,
                queue,
            }),
            Err(e) => {
                self.when_emptied(stop);
                Err(e)
            }
        }
    }

    /// Runs `command` for the client of `turn` under the shared gate, so evictions wait until
    /// the engine has answered; re-checks under the gate that the client is still live.
    pub fn command<T>(&self, turn: &Turn<'_>, command: impl FnOnce() -> T) -> Result<T> {
        let _gate = self.gate_shared();
        self.clients.is_live(turn.id)?;
        Ok(command())
    }

    /// When the last client is gone nobody can hear or steer playback: `stop` it, under the
    /// exclusive gate.
    pub fn when_emptied(&self, stop: impl FnOnce()) {
        if !self.clients.emptied() {
            return;
        }
        // Taken under the gate, so whoever takes it has cleared the output before a command
        // runs; no client attaches meanwhile (the registry refuses while it is pending).
        let _gate = self.gate_exclusive();
        if self.clients.take_emptied() {
            tracing::info!(host = %self.name, "no clients left: stopping playback and clearing the route");
            stop();
        }
    }

    /// Starts a new client generation under the exclusive gate: every older client is
    /// evicted (unless `evict` is false, a fault injection) and `stop` clears the output
    /// before any command of the new generation runs. Returns the new generation.
    pub fn roll_generation(
        &self,
        evict: bool,
        stop: impl FnOnce() -> std::result::Result<(), AudioError>,
    ) -> Result<u64> {
        let _gate = self.gate_exclusive();
        let (generation, evicted, _) = self.clients.roll_generation(evict);
        let _ = self.clients.take_emptied();
        stop()?;
        tracing::info!(host = %self.name, generation, evicted = evicted.len(), "prepared for hot restart");
        Ok(generation)
    }

    /// Waits up to `timeout` for the next event of the client of `turn`; see
    /// [`EventQueue::poll_with`].
    pub fn poll<R>(
        &self,
        turn: &Turn<'_>,
        timeout: Duration,
        read: impl FnMut(&HostEvent) -> (R, bool),
    ) -> Result<Polled<R>> {
        if self.clients.has_port(turn.id) {
            return Err(HostError::InvalidArgument(format!(
                "client {} receives its events on a port; set its port to 0 to poll",
                turn.id
            )));
        }
        // The queue, not the host, is waited on: no lock is held while blocked. An eviction or
        // shutdown closes the queue, which ends the wait at once.
        match turn.queue.poll_with(timeout, read) {
            Polled::Closed(_) => {
                Err(self
                    .clients
                    .is_live(turn.id)
                    .err()
                    .unwrap_or(HostError::ClientEvicted {
                        id: turn.id,
                        reason: "queue closed".into(),
                    }))
            }
            polled => Ok(polled),
        }
    }

    /// Starts the lease supervisor for the runtime `watched`: it evicts clients whose lease
    /// ran out, stops the output when the last one went, and lets the runtime check its
    /// engine.
    pub fn start_supervisor(
        self: &Arc<Self>,
        threads: &ThreadCounter,
        watched: Weak<dyn Watched>,
    ) -> std::io::Result<()> {
        let (stop, stop_rx) = bounded::<()>(1);
        // The thread holds the sessions, which outlive every runtime, and the runtime only
        // weakly: it never keeps a runtime alive that shutdown let go.
        let sessions = self.clone();
        let handle = threads.spawn(&format!("{}-supervisor", self.name), move || {
            sessions.supervise(&watched, &stop_rx)
        })?;
        *lock(&self.supervisor) = Some(Supervisor { stop, handle });
        Ok(())
    }

    /// Sends the events of the client of `turn` to `port` from now on (`None`: back to
    /// polling). Events already queued go to the port first, in order.
    pub fn set_port(&self, turn: &Turn<'_>, port: Option<Arc<dyn EventPort>>) -> Result<()> {
        let ported = port.is_some();
        self.clients.set_port(turn.id, port, &self.waker)?;
        tracing::info!(host = %self.name, client_id = turn.id, ported, "client event delivery set");
        self.waker.wake();
        Ok(())
    }

    /// Starts the event pump for the runtime `watched`: it posts the events of every client
    /// with a port, probes idle ports, and evicts a client whose port is closed.
    pub fn start_pump(
        self: &Arc<Self>,
        threads: &ThreadCounter,
        watched: Weak<dyn Watched>,
    ) -> std::io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = self.clone();
        let stopped = stop.clone();
        let handle = threads.spawn(&format!("{}-event-pump", self.name), move || {
            sessions.pump(&watched, &stopped)
        })?;
        *lock(&self.pump) = Some(Pump { stop, handle });
        Ok(())
    }

    /// Ends the runtime's sessions: stops the supervisor and the event pump, then evicts
    /// every client and refuses new ones until the next [`Self::open`].
    pub fn close(&self, reason: &str) {
        // The supervisor and the pump may be waiting for the gate: stop them before taking it.
        // Both are told first and joined after, so that they wake and end side by side (each
        // is a wake-up of a sleeping thread, a real share of a shutdown). A post of the pump
        // in progress finishes first.
        let supervisor = lock(&self.supervisor).take();
        if let Some(supervisor) = &supervisor {
            let _ = supervisor.stop.send(());
        }
        let pump = lock(&self.pump).take();
        if let Some(pump) = &pump {
            pump.stop.store(true, Ordering::SeqCst);
            self.waker.wake();
        }
        if let Some(supervisor) = supervisor {
            let _ = supervisor.handle.join();
        }
        if let Some(pump) = pump {
            let _ = pump.handle.join();
        }
        // Exclusive: waits for client commands in flight. Closing the registry evicts every
        // client, refuses new ones and wakes every waiting poll.
        let _gate = self.gate_exclusive();
        self.clients.close(reason);
        let _ = self.clients.take_emptied();
    }

    /// The supervisor's loop, event-driven: it wakes when its engine dies, at the nearest
    /// lease deadline, and otherwise only every quarter lease (so a deadline renewed by a
    /// call that just returned is enforced at most a quarter lease late), until stopped or
    /// the runtime is gone. A playing runtime with the default 30 s lease wakes it every 2 s.
    fn supervise(&self, watched: &Weak<dyn Watched>, stop: &Receiver<()>) {
        const MIN_NAP: Duration = Duration::from_millis(5);
        const MAX_NAP: Duration = Duration::from_secs(2);
        loop {
            let Some(runtime) = watched.upgrade() else {
                return;
            };
            let engine_exit = runtime.engine_exit();
            // Not kept across the nap: a runtime that shutdown let go ends the loop.
            drop(runtime);
            let round = (self.clients.lease() / 4).clamp(MIN_NAP, MAX_NAP);
            let nap = self
                .clients
                .next_deadline()
                .map_or(round, |d| d.saturating_duration_since(Instant::now()))
                .clamp(MIN_NAP, round);
            // No engine to watch (it died and could not be replaced yet): rounds retry it.
            let engine_exit = engine_exit.unwrap_or_else(crossbeam_channel::never);
            crossbeam_channel::select! {
                recv(stop) -> _ => return,
                recv(engine_exit) -> _ => {}
                default(nap) => {}
            }
            let Some(runtime) = watched.upgrade() else {
                return;
            };
            if runtime.evicts() {
                // Logged, counted and announced by the registry.
                self.clients.evict_expired();
            }
            self.when_emptied(|| runtime.last_client_left());
            runtime.check_engine();
        }
    }
}

impl Sessions {
    /// The event pump's loop: one round per wake-up (an event for a client with a port, a
    /// port set, stop) or heartbeat due. Holds no lock while it posts.
    fn pump(&self, watched: &Weak<dyn Watched>, stop: &AtomicBool) {
        // When each port last got something (or got its port): heartbeats count from there.
        let mut last_post: HashMap<u64, Instant> = HashMap::new();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let targets = self.clients.port_targets();
            last_post.retain(|id, _| targets.iter().any(|t| t.id == *id));
            let mut closed = Vec::new();
            for target in &targets {
                let last = last_post.entry(target.id).or_insert_with(Instant::now);
                match self.pump_one(target, *last) {
                    Pumped::Nothing => {}
                    Pumped::Posted => {
                        *last = Instant::now();
                        self.clients.renew(target.id);
                    }
                    Pumped::PortClosed => closed.push(target.id),
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            for id in closed {
                last_post.remove(&id);
                let Some(runtime) = watched.upgrade() else {
                    return;
                };
                if !runtime.evicts() {
                    // Fault injection: the client stays, and its posts keep failing.
                    continue;
                }
                // The eviction every other eviction is: counted, logged, announced.
                if self.clients.evict(id, PORT_CLOSED).is_some() {
                    self.when_emptied(|| runtime.last_client_left());
                }
            }
            let now = Instant::now();
            let wake = match last_post.values().min() {
                // The next heartbeat that falls due.
                Some(oldest) => {
                    let due = (*oldest + HEARTBEAT_AFTER).saturating_duration_since(now);
                    self.wake_rx
                        .recv_timeout(due.max(Duration::from_millis(1)))
                        .map_err(|_| ())
                }
                // No port: nothing to probe, sleep until woken.
                None => self.wake_rx.recv().map_err(|_| ()),
            };
            // A timeout is a heartbeat falling due; the channel cannot disconnect while the
            // sessions (which hold its sender) live.
            let _ = wake;
        }
    }

    /// Posts what is queued for `target`, or a heartbeat when nothing was posted since
    /// `last` for [`HEARTBEAT_AFTER`].
    fn pump_one(&self, target: &PortTarget, last: Instant) -> Pumped {
        let mut posted = false;
        loop {
            let event = match target
                .queue
                .poll_with(Duration::ZERO, |event| (event.clone(), true))
            {
                Polled::Taken(event) | Polled::Declined(event) => event,
                Polled::TimedOut => break,
                // Evicted or disposed meanwhile: nothing more goes to it.
                Polled::Closed(_) => return Pumped::Nothing,
            };
            if !post(target.port.as_ref(), &event) {
                return Pumped::PortClosed;
            }
            posted = true;
        }
        if posted {
            return Pumped::Posted;
        }
        if last.elapsed() < HEARTBEAT_AFTER || target.queue.is_closed() {
            return Pumped::Nothing;
        }
        if post(
            target.port.as_ref(),
            &HostEvent::Host(HostNotice::Heartbeat),
        ) {
            Pumped::Posted
        } else {
            Pumped::PortClosed
        }
    }
}

/// What one round of the pump did for one client.
enum Pumped {
    Nothing,
    Posted,
    PortClosed,
}

/// One post; a port that panics counts as closed (the panic stays on this side).
fn post(port: &dyn EventPort, event: &HostEvent) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(|| port.post(event))).unwrap_or(false)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn sessions(lease_ms: u64) -> Arc<Sessions> {
        let sessions = Arc::new(Sessions::new("test"));
        sessions.configure(Duration::from_millis(lease_ms), 8);
        sessions.open();
        sessions
    }

    #[derive(Default)]
    struct Runtime {
        emptied: AtomicUsize,
        checks: AtomicUsize,
    }

    impl Watched for Runtime {
        fn evicts(&self) -> bool {
            true
        }
        fn last_client_left(&self) {
            self.emptied.fetch_add(1, Ordering::SeqCst);
        }
        fn check_engine(&self) {
            self.checks.fetch_add(1, Ordering::SeqCst);
        }
        fn engine_exit(&self) -> Option<Receiver<()>> {
            None
        }
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A turn begun before a rollover must not reach the engine after it.
    #[test]
    fn a_command_of_a_client_evicted_meanwhile_never_runs() {
        let s = sessions(60_000);
        let client = s.attach(|| {}).unwrap();
        let turn = s.begin(client.id, || {}).unwrap();
        let mut stopped = false;
        s.roll_generation(true, || {
            stopped = true;
            Ok(())
        })
        .unwrap();
        assert!(stopped, "the rollover did not clear the output");
        let mut ran = false;
        assert!(matches!(
            s.command(&turn, || ran = true),
            Err(HostError::ClientEvicted { .. })
        ));
        assert!(!ran, "the command of an evicted client ran");
    }

    #[test]
    fn the_supervisor_evicts_by_lease_and_stops_the_output_once() {
        let s = sessions(20);
        let threads = ThreadCounter::new();
        let runtime = Arc::new(Runtime::default());
        let watched: Weak<dyn Watched> = Arc::downgrade(&runtime) as Weak<Runtime>;
        s.start_supervisor(&threads, watched).unwrap();
        s.attach(|| {}).unwrap();
        wait_until("the client is evicted", || s.active() == 0);
        wait_until("the output is stopped", || {
            runtime.emptied.load(Ordering::SeqCst) == 1
        });
        wait_until("the engine is checked", || {
            runtime.checks.load(Ordering::SeqCst) > 0
        });
        s.close("test over");
        assert_eq!(
            threads.alive(),
            0,
            "close returned before the supervisor ended"
        );
        assert_eq!(runtime.emptied.load(Ordering::SeqCst), 1);
    }

    /// The supervisor holds its runtime weakly: a runtime that is gone ends it.
    #[test]
    fn the_supervisor_ends_with_its_runtime() {
        let s = sessions(60_000);
        let threads = ThreadCounter::new();
        let runtime = Arc::new(Runtime::default());
        let watched: Weak<dyn Watched> = Arc::downgrade(&runtime) as Weak<Runtime>;
        s.start_supervisor(&threads, watched).unwrap();
        assert_eq!(threads.alive(), 1);
        drop(runtime);
        wait_until("the supervisor ends", || threads.alive() == 0);
        // Nothing left to stop, and closing still evicts and refuses clients.
        s.close("test over");
        assert!(s.attach(|| {}).is_err());
    }

    /// A client attaching between the eviction of the last one and the clear that follows
    /// (on the supervisor's thread) once inherited the abandoned route and DSP chain: the
    /// attach now clears first, and the output is cleared exactly once.
    #[test]
    fn a_client_attaching_before_the_pending_clear_clears_it_first() {
        let s = sessions(60_000);
        let gone = s.attach(|| {}).unwrap();
        // Detached by hand, without taking up the emptying: as the supervisor's eviction
        // leaves it until its own `when_emptied`.
        s.clients.detach(gone.id).unwrap();
        let clears = AtomicUsize::new(0);
        let next = s
            .attach(|| {
                clears.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        assert_eq!(
            clears.load(Ordering::SeqCst),
            1,
            "cleared before the attach"
        );
        // The emptying thread comes round late: nothing left to clear, the new client keeps
        // its output.
        s.when_emptied(|| {
            clears.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(clears.load(Ordering::SeqCst), 1);
        assert!(s.clients.is_live(next.id).is_ok());
    }

    /// A port that records what it got, and can be told its receiver is gone.
    #[derive(Default)]
    struct FakePort {
        got: Mutex<Vec<HostEvent>>,
        dead: AtomicBool,
        /// Each post takes this long (a post in progress during shutdown).
        slow: Option<Duration>,
    }

    impl EventPort for FakePort {
        fn post(&self, event: &HostEvent) -> bool {
            if let Some(slow) = self.slow {
                std::thread::sleep(slow);
            }
            if self.dead.load(Ordering::SeqCst) {
                return false;
            }
            self.got.lock().unwrap().push(event.clone());
            true
        }
    }

    impl FakePort {
        fn got(&self) -> Vec<HostEvent> {
            self.got.lock().unwrap().clone()
        }
    }

    fn engine_event(track_id: u64) -> HostEvent {
        HostEvent::Engine(stellatune_audio::EngineEvent::TrackEnded { track_id })
    }

    /// Sessions with a running supervisor and event pump over a fake runtime.
    fn pumped(lease_ms: u64) -> (Arc<Sessions>, ThreadCounter, Arc<Runtime>) {
        let s = sessions(lease_ms);
        let threads = ThreadCounter::new();
        let runtime = Arc::new(Runtime::default());
        let watched: Weak<dyn Watched> = Arc::downgrade(&runtime) as Weak<Runtime>;
        s.start_supervisor(&threads, watched.clone()).unwrap();
        s.start_pump(&threads, watched).unwrap();
        (s, threads, runtime)
    }

    fn with_port(s: &Sessions, port: &Arc<FakePort>) -> ClientSession {
        let client = s.attach(|| {}).unwrap();
        let turn = s.begin(client.id, || {}).unwrap();
        s.set_port(&turn, Some(port.clone() as Arc<dyn EventPort>))
            .unwrap();
        client
    }

    #[test]
    fn events_are_posted_to_the_port_in_order_and_polls_are_refused() {
        let (s, threads, _runtime) = pumped(60_000);
        let port = Arc::new(FakePort::default());
        let client = with_port(&s, &port);
        let polling = s.attach(|| {}).unwrap();
        // Fewer than the queue holds (8): none is dropped before the pump takes it.
        for i in 0..6 {
            s.broadcast(engine_event(i));
        }
        wait_until("every event is posted", || {
            port.got()
                .iter()
                .filter(|e| matches!(e, HostEvent::Engine(_)))
                .count()
                == 6
        });
        let posted: Vec<_> = port
            .got()
            .into_iter()
            .filter(|e| matches!(e, HostEvent::Engine(_)))
            .collect();
        assert_eq!(posted, (0..6).map(engine_event).collect::<Vec<_>>());
        let turn = s.begin(client.id, || {}).unwrap();
        assert!(matches!(
            s.poll(&turn, Duration::ZERO, |e| (e.clone(), true)),
            Err(HostError::InvalidArgument(_))
        ));
        // Back to polling: the next event waits in the queue instead.
        s.set_port(&turn, None).unwrap();
        s.broadcast(engine_event(99));
        assert!(matches!(
            s.poll(&turn, Duration::from_secs(5), |e| (e.clone(), true)),
            Ok(Polled::Taken(e)) if e == engine_event(99)
        ));
        drop(turn);
        // A client without a port still polls every event.
        let turn = s.begin(polling.id, || {}).unwrap();
        assert!(matches!(
            s.poll(&turn, Duration::ZERO, |e| (e.clone(), true)),
            Ok(Polled::Taken(e)) if e == engine_event(0)
        ));
        drop(turn);
        s.close("test over");
        assert_eq!(threads.alive(), 0);
    }

    /// A failed post evicts through the one eviction path: counted once, announced, and the
    /// output stops when it was the last client.
    #[test]
    fn a_closed_port_evicts_its_client_at_once() {
        let (s, threads, runtime) = pumped(60_000);
        let port = Arc::new(FakePort::default());
        let doomed = with_port(&s, &port);
        let witness = s.attach(|| {}).unwrap();
        port.dead.store(true, Ordering::SeqCst);
        s.broadcast(engine_event(1));
        wait_until("the client is evicted", || s.active() == 1);
        assert_eq!(s.evictions_total(), 1);
        assert!(matches!(
            s.begin(doomed.id, || {}).err(),
            Some(HostError::ClientEvicted { reason, .. }) if reason == PORT_CLOSED
        ));
        // The other client was told.
        let turn = s.begin(witness.id, || {}).unwrap();
        let mut told = false;
        while let Ok(Polled::Taken(e)) = s.poll(&turn, Duration::ZERO, |e| (e.clone(), true)) {
            told |= matches!(e, HostEvent::Host(HostNotice::ClientEvicted { client_id, .. }) if client_id == doomed.id);
        }
        assert!(told, "the eviction was not announced");
        drop(turn);
        assert_eq!(runtime.emptied.load(Ordering::SeqCst), 0);
        // The last client with a dead port: the output stops.
        let last_port = Arc::new(FakePort::default());
        {
            let turn = s.begin(witness.id, || {}).unwrap();
            s.set_port(&turn, Some(last_port.clone() as Arc<dyn EventPort>))
                .unwrap();
        }
        last_port.dead.store(true, Ordering::SeqCst);
        wait_until("the last client is evicted by a heartbeat", || {
            s.active() == 0
        });
        wait_until("the output is stopped", || {
            runtime.emptied.load(Ordering::SeqCst) == 1
        });
        assert_eq!(s.evictions_total(), 2);
        s.close("test over");
        assert_eq!(threads.alive(), 0);
    }

    /// Nothing plays, nobody calls in: heartbeats probe the port and keep the lease alive.
    #[test]
    fn an_idle_live_port_gets_heartbeats_and_keeps_its_client() {
        // Longer than the first heartbeat takes to come, shorter than three of them.
        let lease = HEARTBEAT_AFTER + HEARTBEAT_AFTER / 2;
        let (s, threads, _runtime) = pumped(lease.as_millis() as u64);
        let port = Arc::new(FakePort::default());
        let client = with_port(&s, &port);
        let polling = s.attach(|| {}).unwrap();
        // The polling client, silent as well, goes by its lease; the ported one stays.
        wait_until("the silent polling client is evicted", || {
            s.clients.is_live(polling.id).is_err()
        });
        wait_until("several heartbeats", || {
            port.got()
                .iter()
                .filter(|e| matches!(e, HostEvent::Host(HostNotice::Heartbeat)))
                .count()
                >= 3
        });
        assert!(
            s.clients.is_live(client.id).is_ok(),
            "a client whose port takes posts was evicted"
        );
        s.close("test over");
        assert_eq!(threads.alive(), 0);
    }

    /// Closing (shutdown) while a post is in progress waits for it and joins the pump.
    #[test]
    fn close_during_a_post_joins_the_pump() {
        let (s, threads, _runtime) = pumped(60_000);
        let port = Arc::new(FakePort {
            slow: Some(Duration::from_millis(100)),
            ..FakePort::default()
        });
        with_port(&s, &port);
        for i in 0..50 {
            s.broadcast(engine_event(i));
        }
        wait_until("a post happened", || !port.got().is_empty());
        s.close("test over");
        assert_eq!(threads.alive(), 0, "close returned before the pump ended");
        assert_eq!(s.active(), 0);
        // A fresh pump starts after it, as at the next init.
        s.open();
        let threads_again = ThreadCounter::new();
        let runtime = Arc::new(Runtime::default());
        let watched: Weak<dyn Watched> = Arc::downgrade(&runtime) as Weak<Runtime>;
        s.start_pump(&threads_again, watched).unwrap();
        let fresh = Arc::new(FakePort::default());
        with_port(&s, &fresh);
        s.broadcast(engine_event(7));
        wait_until("the new pump posts", || {
            fresh.got().contains(&engine_event(7))
        });
        s.close("test over");
        assert_eq!(threads_again.alive(), 0);
    }
}
