//! Process identity: liveness and start time, so the owner a process recorded (in a ring's
//! header, in a plugin shadow copy's name) can be told apart from an unrelated process that
//! later got the same pid. One implementation per OS, in `unix.rs` and `windows.rs`.
//! Also the thread priority of the threads that feed a device (`priority`).

pub mod priority;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

/// When process `pid` started, in a unit of the OS's own (Linux: clock ticks since boot, field
/// 22 of `/proc/<pid>/stat`; Windows: its creation time, a FILETIME). Only ever compared with
/// another reading of the same OS.
///
/// `None` if the process does not exist, the value cannot be read, or the platform has no such
/// notion here.
pub fn process_start_time(pid: u32) -> Option<u64> {
    os::process_start_time(pid)
}

/// Whether a process with this pid exists (a zombie counts). On platforms without a cheap check
/// this answers `true`, so callers stay on the safe side.
pub fn pid_alive(pid: u32) -> bool {
    os::pid_alive(pid)
}

/// Whether `pid` is alive and is the same process that recorded `start_time` (0 = unknown, then
/// only liveness is checked; also when this platform cannot read start times).
pub fn process_is_owner(pid: u32, start_time: u64) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    if start_time == 0 {
        return true;
    }
    match process_start_time(pid) {
        Some(t) => t == start_time,
        // Alive but its start time is unreadable (it may have exited just now): keep it.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_os = "linux", windows))]
    #[test]
    fn own_process_has_a_stable_start_time() {
        let me = std::process::id();
        let t = process_start_time(me).expect("own start time");
        assert_eq!(process_start_time(me), Some(t));
        assert!(pid_alive(me));
        assert!(process_is_owner(me, t));
        assert!(!process_is_owner(me, t + 1));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }
}
