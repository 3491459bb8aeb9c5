//! Bounded waits for child processes (the sidecar, the stress gate, the C smoke program): a
//! child that hangs is killed and reported with what it printed, rather than hanging the test.

use std::process::{Child, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects the output of `child` (spawned with piped stdout and stderr) once it exits. If it
/// is still running after `limit`, kills it and panics with `what` and everything it printed.
pub fn output_within(mut child: Child, limit: Duration, what: &str) -> Output {
    if wait_exit(&mut child, limit).is_none() {
        let _ = child.kill();
        let output = child.wait_with_output().expect("output");
        panic!(
            "{what} still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    child.wait_with_output().expect("output")
}
