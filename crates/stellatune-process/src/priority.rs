//! Real-time priority for a thread that feeds a device (the sidecar's device thread, the
//! engine's output thread on Linux), best effort: the caller logs what the system granted in
//! one line, and a refusal changes nothing else.
//!
//! Linux and other Unixes: `SCHED_FIFO` through `pthread_setschedparam` (needs
//! `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` allowance), else a raised nice level, else nothing.
//! (rtkit, the D-Bus service desktops use to hand out real-time slots, would need a D-Bus
//! client library at build time; not worth it for a best-effort hint.) Windows:
//! `THREAD_PRIORITY_TIME_CRITICAL`.

/// The `SCHED_FIFO` priority asked for: low among real-time threads (1..=99), enough to run
/// ahead of every normal thread.
#[cfg(unix)]
const FIFO_PRIORITY: libc::c_int = 10;

/// The nice level asked for when real-time scheduling is refused.
#[cfg(target_os = "linux")]
const NICE: libc::c_int = -10;

/// Raises the calling thread's priority as far as allowed; says what it got, e.g.
/// `real-time (SCHED_FIFO 10)` or `normal (real-time refused: ...)`.
pub fn raise_current_thread() -> String {
    raise()
}

#[cfg(unix)]
fn raise() -> String {
    let param = libc::sched_param {
        sched_priority: FIFO_PRIORITY,
    };
    // SAFETY: pthread_self() names the calling thread, which is alive; `param` is a valid,
    // initialised sched_param read for the duration of the call.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        return format!("real-time (SCHED_FIFO {FIFO_PRIORITY})");
    }
    let refused = std::io::Error::from_raw_os_error(rc);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no arguments and returns the calling thread's id.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority takes plain integers; on Linux, PRIO_PROCESS with a thread id
        // sets that thread's nice value only.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) };
        if rc == 0 {
            return format!("nice {NICE} (real-time refused: {refused})");
        }
        let nice_refused = std::io::Error::last_os_error();
        format!("normal (real-time refused: {refused}; nice {NICE} refused: {nice_refused})")
    }
    #[cfg(not(target_os = "linux"))]
    format!("normal (real-time refused: {refused})")
}

#[cfg(windows)]
fn raise() -> String {
    use windows_sys::Win32::System::Threading::{
        GetCurrentThread, SetThreadPriority, THREAD_PRIORITY_TIME_CRITICAL,
    };
    // SAFETY: GetCurrentThread returns a pseudo-handle for the calling thread that needs no
    // closing; SetThreadPriority only changes that thread's priority.
    let ok = unsafe { SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_TIME_CRITICAL) };
    if ok != 0 {
        "time critical".to_owned()
    } else {
        format!("normal (refused: {})", std::io::Error::last_os_error())
    }
}

#[cfg(not(any(unix, windows)))]
fn raise() -> String {
    "normal (not supported on this system)".to_owned()
}
