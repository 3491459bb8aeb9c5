//! Termination signals as events: the signals are blocked in every thread and one thread takes
//! them with `sigwait`, so no code runs in signal-handler context.

use std::sync::mpsc::Sender;

use crate::Event;

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every thread it spawns
/// afterwards). Call before spawning any thread.
pub fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before any other use;
    // sigaddset and pthread_sigmask only read/write that local and the thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            log!(
                warn: "pthread_sigmask failed: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
        set
    }
}

/// Starts the thread that waits for the blocked signals and forwards the first one.
pub fn spawn_waiter(set: libc::sigset_t, tx: Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is an initialised sigset_t owned by this closure and `sig` a local
                // out-parameter; sigwait writes only `sig`.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc == 0 {
                    let _ = tx.send(Event::Signal(sig));
                    return;
                }
                if rc != libc::EINTR {
                    log!(warn: "sigwait failed: {}", std::io::Error::from_raw_os_error(rc));
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log!(warn: "cannot start the signal thread: {e}");
    }
}
