//! Real-time scheduling for the output thread, best effort: the thread asks once when it
//! starts and logs exactly one line saying what it got. Playback never depends on it.
//!
//! Windows (MMCSS "Pro Audio") and macOS (Mach time-constraint policy) grant it to any
//! process. On Linux a normal user gets `SCHED_FIFO` only through rtkit over D-Bus, which
//! would link libdbus; the engine does not link it, so there the thread keeps the normal
//! policy and says so (a setup that wants more can raise the process's limits and run it
//! under a real-time policy from outside).

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
    tracing::info!(
        reason = "real-time scheduling needs rtkit over D-Bus, which this build does not link",
        "output thread runs without real-time priority"
    );
    Promotion {}
}
