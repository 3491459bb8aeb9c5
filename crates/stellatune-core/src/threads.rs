use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Counts the threads a runtime owns that are alive right now. Each counted thread holds a
/// guard for its whole life, so the count drops only when the thread has really finished its
/// work, which is what a leak check needs.
#[derive(Debug, Clone, Default)]
pub struct ThreadCounter(Arc<AtomicUsize>);

impl ThreadCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alive(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Spawns a named thread that is counted from before it starts until its closure returns.
    pub fn spawn<F>(&self, name: &str, body: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        let counter = self.0.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        let guard_counter = counter.clone();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _guard = AliveGuard(guard_counter);
                body();
            });
        if spawned.is_err() {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
        spawned
    }
}

struct AliveGuard(Arc<AtomicUsize>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
