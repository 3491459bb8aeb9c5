use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counts the threads a runtime owns that are alive right now. Each counted thread holds a
/// guard for its whole life, so the count drops only when the thread has really finished its
/// work, which is what a leak check needs. [`ThreadCounter::wait_until_zero`] waits for the
/// last one without polling.
#[derive(Debug, Clone, Default)]
pub struct ThreadCounter(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    alive: AtomicUsize,
    /// Taken when the count drops to zero and by a waiter while it checks the count, so a
    /// waiter never misses the wake-up of the last thread.
    gate: Mutex<()>,
    zero: Condvar,
}

impl Inner {
    fn decrement(&self) {
        if self.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            self.zero.notify_all();
        }
    }
}

impl ThreadCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alive(&self) -> usize {
        self.0.alive.load(Ordering::SeqCst)
    }

    /// Waits until no counted thread is alive, at most `timeout`; tells whether the count
    /// reached zero. Woken by the last thread's exit, not by polling.
    pub fn wait_until_zero(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut gate = self.0.gate.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.alive() == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            gate = self
                .0
                .zero
                .wait_timeout(gate, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Spawns a named thread that is counted from before it starts until its closure returns.
    pub fn spawn<F>(&self, name: &str, body: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.0.alive.fetch_add(1, Ordering::SeqCst);
        let guard = AliveGuard(self.0.clone());
        // A thread that does not start drops its closure, and with it the guard: counted down.
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _guard = guard;
                body();
            })
    }
}

struct AliveGuard(Arc<Inner>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.decrement();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_zero_returns_when_the_last_thread_ends() {
        let counter = ThreadCounter::new();
        assert!(counter.wait_until_zero(Duration::ZERO));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let mut handles = Vec::new();
        for i in 0..3 {
            let gate = gate.clone();
            handles.push(
                counter
                    .spawn(&format!("t{i}"), move || {
                        let (open, cv) = &*gate;
                        let mut open = open.lock().unwrap();
                        while !*open {
                            open = cv.wait(open).unwrap();
                        }
                    })
                    .unwrap(),
            );
        }
        assert_eq!(counter.alive(), 3);
        assert!(!counter.wait_until_zero(Duration::from_millis(20)));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(counter.wait_until_zero(Duration::from_secs(10)));
        assert_eq!(counter.alive(), 0);
        for h in handles {
            h.join().unwrap();
        }
    }
}
