//! Bounded polling. Tests wait for things other threads and processes do; every wait has a
//! deadline, so that a regression fails with a message instead of hanging the suite.

use std::time::{Duration, Instant};

/// Calls `pred` every `interval` until it holds or `timeout` has passed; the answer is
/// whether it held (it is asked once more at the deadline).
pub fn poll(timeout: Duration, interval: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        std::thread::sleep(interval);
    }
    pred()
}

/// Polls `pred` every 5 ms until it holds or `timeout` passes; whether it held. For tests
/// that assert on the answer themselves (or expect a timeout).
pub fn wait_for(timeout: Duration, pred: impl FnMut() -> bool) -> bool {
    poll(timeout, Duration::from_millis(5), pred)
}

/// Polls `pred` every 10 ms until it holds; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, pred: impl FnMut() -> bool) {
    assert!(
        poll(timeout, Duration::from_millis(10), pred),
        "timed out waiting for {what}"
    );
}
