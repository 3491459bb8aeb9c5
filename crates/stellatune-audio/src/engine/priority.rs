//! Real-time scheduling for the output thread, best effort: the thread asks once when it
//! starts and logs exactly one line saying what it got. Playback never depends on it.
//!
//! Windows (MMCSS "Pro Audio") and macOS (Mach time-constraint policy) grant it to any
//! process, through `audio_thread_priority`. On Linux that crate asks rtkit over D-Bus, which
//! would link libdbus for a hint; instead the thread asks for `SCHED_FIFO` itself
//! (`stellatune_process::priority`, which the sidecar's device thread uses too): granted with
//! `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` allowance (an `audio` group's limits, or root), else a
//! raised nice level, else the normal policy, and the log line says which.

/// The sample rate the request is sized for; the grant does not depend on the stream's.
#[cfg(any(windows, target_os = "macos"))]
const NOMINAL_RATE: u32 = 48_000;

/// Demotes the thread again when dropped (at the end of the thread).
pub(super) struct Promotion {
    #[cfg(any(windows, target_os = "macos"))]
    handle: Option<audio_thread_priority::RtPriorityHandle>,
}

impl Drop for Promotion {
    fn drop(&mut self) {
        #[cfg(any(windows, target_os = "macos"))]
        if let Some(handle) = self.handle.take() {
            let _ = audio_thread_priority::demote_current_thread_from_real_time(handle);
        }
    }
}

#[cfg(any(windows, target_os = "macos"))]
pub(super) fn promote_current_thread() -> Promotion {
    match audio_thread_priority::promote_current_thread_to_real_time(0, NOMINAL_RATE) {
        Ok(handle) => {
            tracing::info!("output thread runs with real-time priority");
            Promotion {
                handle: Some(handle),
            }
        }
        Err(e) => {
            tracing::info!(reason = %e, "output thread runs without real-time priority");
            Promotion { handle: None }
        }
    }
}

#[cfg(not(any(windows, target_os = "macos")))]
pub(super) fn promote_current_thread() -> Promotion {
    let granted = stellatune_process::priority::raise_current_thread();
    tracing::info!(priority = %granted, "output thread priority");
    Promotion {}
}
