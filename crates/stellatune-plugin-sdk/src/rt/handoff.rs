//! Handoffs between threads built on a mutex and a condvar only.
//!
//! Channels (crossbeam's and std's) touch thread-locals with destructors on both ends: a
//! blocked receiver parks through one, and a sender waking a receiver looks up the current
//! thread's handle through one. When plugin code does that on a host thread, the plugin's
//! copy of std registers a destructor that either pins the library (it can never unload) or
//! takes a pthread key that is never given back. A mutex and a condvar need no
//! thread-local, so every handoff in plugin code uses these instead.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

enum State<T> {
    Waiting,
    Ready(T),
    Closed,
}

/// A value handed from one thread to another, once.
pub struct OneShot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

/// Why [`OneShot::wait`] returned without a value.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    /// Nothing came within the timeout.
    Timeout,
    /// [`OneShot::close`] was called before a value came.
    Closed,
}

impl<T> Default for OneShot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> OneShot<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::Waiting),
            ready: Condvar::new(),
        }
    }

    /// Hands over the value; a later `put` or one after `close` is ignored.
    pub fn put(&self, value: T) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, State::Waiting) {
            *state = State::Ready(value);
            self.ready.notify_all();
        }
    }

    /// Wakes the waiter with `Closed` unless a value came first.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, State::Waiting) {
            *state = State::Closed;
            self.ready.notify_all();
        }
    }

    /// Waits at most `timeout` for the value.
    pub fn wait(&self, timeout: Duration) -> Result<T, WaitError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match std::mem::replace(&mut *state, State::Closed) {
                State::Ready(value) => return Ok(value),
                State::Closed => return Err(WaitError::Closed),
                State::Waiting => *state = State::Waiting,
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::Timeout);
            }
            state = self
                .ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A FIFO queue: any thread may push; a consumer thread pops, blocking.
pub struct Queue<T> {
    state: Mutex<(std::collections::VecDeque<T>, bool)>,
    ready: Condvar,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Queue<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new((std::collections::VecDeque::new(), false)),
            ready: Condvar::new(),
        }
    }

    /// Adds an item; returns false once the queue is closed.
    pub fn push(&self, item: T) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.1 {
            return false;
        }
        state.0.push_back(item);
        self.ready.notify_one();
        true
    }

    /// No more pushes; the reader drains what is queued, then sees the end.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 = true;
        self.ready.notify_all();
    }

    /// The next item, waiting for one; `None` once closed and drained.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(item) = state.0.pop_front() {
                return Some(item);
            }
            if state.1 {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn hands_over_across_threads_and_times_out_and_closes() {
        let slot = Arc::new(OneShot::new());
        let giver = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                slot.put(7);
            })
        };
        assert_eq!(slot.wait(Duration::from_secs(5)), Ok(7));
        giver.join().unwrap();
        let empty: OneShot<u8> = OneShot::new();
        assert_eq!(
            empty.wait(Duration::from_millis(10)),
            Err(WaitError::Timeout)
        );
        empty.close();
        assert_eq!(empty.wait(Duration::from_secs(5)), Err(WaitError::Closed));
        empty.put(1);
        assert_eq!(empty.wait(Duration::ZERO), Err(WaitError::Closed));
    }

    #[test]
    fn queue_delivers_in_order_then_ends_after_close() {
        let q = Arc::new(Queue::new());
        let reader = {
            let q = q.clone();
            std::thread::spawn(move || std::iter::from_fn(|| q.pop()).collect::<Vec<u32>>())
        };
        for i in 0..100 {
            assert!(q.push(i));
        }
        q.close();
        assert!(!q.push(100));
        assert_eq!(reader.join().unwrap(), (0..100).collect::<Vec<_>>());
    }
}
