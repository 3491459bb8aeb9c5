//! Windows: a process handle tells both whether the pid is in use and when that process was
//! created, so a reused pid is told apart from the ring's or the shadow copy's owner.

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, FILETIME, GetLastError, HANDLE, STILL_ACTIVE,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// An open process handle, closed on drop.
struct Process(HANDLE);

impl Process {
    /// `Err(true)` when the process exists but may not be opened (another user's).
    fn open(pid: u32) -> Result<Process, bool> {
        // SAFETY: plain call; the result is checked.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            // SAFETY: no arguments; reads this thread's last error.
            return Err(unsafe { GetLastError() } == ERROR_ACCESS_DENIED);
        }
        Ok(Process(handle))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: a handle this value owns, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

pub fn process_start_time(pid: u32) -> Option<u64> {
    let process = Process::open(pid).ok()?;
    let mut times = [FILETIME::default(); 4];
    let [created, exited, kernel, user] = &mut times;
    // SAFETY: a live handle with query rights and four valid out-pointers.
    let ok = unsafe { GetProcessTimes(process.0, created, exited, kernel, user) };
    (ok != 0).then(|| u64::from(created.dwHighDateTime) << 32 | u64::from(created.dwLowDateTime))
}

pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let process = match Process::open(pid) {
        Ok(p) => p,
        // It exists, we just may not look at it: alive, to stay on the safe side.
        Err(denied) => return denied,
    };
    let mut code = 0u32;
    // SAFETY: a live handle with query rights and a valid out-pointer.
    let ok = unsafe { GetExitCodeProcess(process.0, &mut code) };
    // A process that has exited but whose handle someone holds keeps its pid; it can no longer
    // use a ring or a library, so it counts as gone. Unreadable: alive, to stay safe.
    ok == 0 || code == STILL_ACTIVE as u32
}
