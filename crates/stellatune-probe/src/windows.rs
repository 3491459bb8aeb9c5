//! Windows: Toolhelp32 snapshots (threads, children, loaded modules), the handle count and
//! the working set. Never `/proc`: under Wine that is the wineserver, not this process.

use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitStatus;

use windows_sys::Win32::Foundation::{
    CloseHandle, FILETIME, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, MODULEENTRY32W, Module32FirstW, Module32NextW, PROCESSENTRY32W,
    Process32FirstW, Process32NextW, TH32CS_SNAPMODULE, TH32CS_SNAPPROCESS, TH32CS_SNAPTHREAD,
    THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentProcessId, GetExitCodeProcess, GetProcessHandleCount,
    GetProcessTimes, OpenProcess, OpenThread, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE, QueryFullProcessImageNameW,
    SuspendThread, THREAD_SUSPEND_RESUME, TerminateProcess,
};

use crate::{Child, Exit};

/// A handle closed on drop.
struct Owned(HANDLE);

impl Owned {
    fn new(handle: HANDLE) -> std::io::Result<Owned> {
        if handle.is_null() || handle == INVALID_HANDLE_VALUE {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(Owned(handle))
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: a valid handle this wrapper owns, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

fn snapshot(flags: u32, pid: u32) -> std::io::Result<Owned> {
    // SAFETY: plain call; the result is checked and owned.
    Owned::new(unsafe { CreateToolhelp32Snapshot(flags, pid) })
}

/// Every thread entry of the system (Toolhelp32 has no per-process thread snapshot).
fn thread_entries() -> Vec<THREADENTRY32> {
    let Ok(snap) = snapshot(TH32CS_SNAPTHREAD, 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut entry = THREADENTRY32 {
        dwSize: size_of::<THREADENTRY32>() as u32,
        ..Default::default()
    };
    // SAFETY: a live snapshot and an entry whose dwSize is set, as both calls require.
    let mut more = unsafe { Thread32First(snap.0, &mut entry) } != 0;
    while more {
        out.push(entry);
        // SAFETY: as above.
        more = unsafe { Thread32Next(snap.0, &mut entry) } != 0;
    }
    out
}

fn process_entries() -> Vec<PROCESSENTRY32W> {
    let Ok(snap) = snapshot(TH32CS_SNAPPROCESS, 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut entry = PROCESSENTRY32W {
        dwSize: size_of::<PROCESSENTRY32W>() as u32,
        ..Default::default()
    };
    // SAFETY: a live snapshot and an entry whose dwSize is set.
    let mut more = unsafe { Process32FirstW(snap.0, &mut entry) } != 0;
    while more {
        out.push(entry);
        // SAFETY: as above.
        more = unsafe { Process32NextW(snap.0, &mut entry) } != 0;
    }
    out
}

/// A NUL-terminated UTF-16 buffer as a string.
fn from_wide_nul(wide: &[u16]) -> String {
    let len = wide.iter().position(|&c| c == 0).unwrap_or(wide.len());
    std::ffi::OsString::from_wide(&wide[..len])
        .to_string_lossy()
        .into_owned()
}

fn this_pid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { GetCurrentProcessId() }
}

pub fn threads() -> Option<u64> {
    let me = this_pid();
    let n = thread_entries()
        .iter()
        .filter(|t| t.th32OwnerProcessID == me)
        .count();
    (n > 0).then_some(n as u64)
}

pub fn handles() -> Option<u64> {
    let mut count = 0u32;
    // SAFETY: the pseudo-handle of this process and a valid out-pointer.
    let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) };
    (ok != 0).then_some(u64::from(count))
}

pub fn rss_kib() -> Option<u64> {
    let mut counters = PROCESS_MEMORY_COUNTERS::default();
    let size = size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: the pseudo-handle of this process and a struct of the stated size.
    let ok = unsafe { K32GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, size) };
    (ok != 0).then_some(counters.WorkingSetSize as u64 / 1024)
}

/// When the process `pid` was created (FILETIME units), if it can be opened.
fn created(pid: u32) -> Option<u64> {
    // SAFETY: plain call; the result is checked and owned.
    let process =
        Owned::new(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) }).ok()?;
    let mut times = [FILETIME::default(); 4];
    let [created, exited, kernel, user] = &mut times;
    // SAFETY: a live handle with query rights and four valid out-pointers.
    let ok = unsafe { GetProcessTimes(process.0, created, exited, kernel, user) };
    (ok != 0).then(|| u64::from(created.dwHighDateTime) << 32 | u64::from(created.dwLowDateTime))
}

pub fn children(parent: u32) -> Vec<Child> {
    // Windows keeps a process's parent id after the parent exits, and reuses ids (Wine within
    // moments): an orphan of an earlier process that had this id names it as its parent. A
    // real child was created after its parent; one that is already gone is no live child.
    let parent_created = created(parent);
    process_entries()
        .iter()
        .filter(|p| p.th32ParentProcessID == parent && p.th32ProcessID != parent)
        .filter(|p| match parent_created {
            Some(parent_created) => created(p.th32ProcessID).is_some_and(|c| c >= parent_created),
            None => true,
        })
        .map(|p| Child {
            pid: p.th32ProcessID,
            name: from_wide_nul(&p.szExeFile),
            zombie: false,
        })
        .collect()
}

pub fn is_running(pid: u32) -> bool {
    // SAFETY: plain call; the result is checked and owned.
    let Ok(process) = Owned::new(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) })
    else {
        return false;
    };
    let mut code = 0u32;
    // SAFETY: a live handle with query rights and a valid out-pointer.
    let ok = unsafe { GetExitCodeProcess(process.0, &mut code) };
    ok != 0 && code == STILL_ACTIVE as u32
}

pub fn executable(pid: u32) -> Option<PathBuf> {
    // SAFETY: plain call; the result is checked and owned.
    let process =
        Owned::new(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) }).ok()?;
    let mut buf = vec![0u16; 32 * 1024];
    let mut len = buf.len() as u32;
    // SAFETY: a live handle with query rights; `buf` holds `len` UTF-16 units and `len` is
    // updated to the length written (without the NUL).
    let ok = unsafe {
        QueryFullProcessImageNameW(process.0, PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len)
    };
    (ok != 0).then(|| PathBuf::from(std::ffi::OsString::from_wide(&buf[..len as usize])))
}

pub fn kill(pid: u32) -> std::io::Result<()> {
    // SAFETY: plain call; the result is checked and owned.
    let process = Owned::new(unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) })?;
    // Exit code 1, like a process Task Manager ends.
    // SAFETY: a live handle with terminate rights.
    if unsafe { TerminateProcess(process.0, 1) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn suspend(pid: u32) -> std::io::Result<()> {
    let mut any = false;
    for t in thread_entries()
        .iter()
        .filter(|t| t.th32OwnerProcessID == pid)
    {
        // SAFETY: plain call; the result is checked and owned.
        let Ok(thread) =
            Owned::new(unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, t.th32ThreadID) })
        else {
            continue;
        };
        // SAFETY: a live thread handle with suspend rights.
        any |= unsafe { SuspendThread(thread.0) } != u32::MAX;
    }
    if any {
        Ok(())
    } else {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

pub fn mapped_libraries() -> Option<Vec<PathBuf>> {
    let snap = snapshot(TH32CS_SNAPMODULE, this_pid()).ok()?;
    let mut out = Vec::new();
    let mut entry = MODULEENTRY32W {
        dwSize: size_of::<MODULEENTRY32W>() as u32,
        ..Default::default()
    };
    // SAFETY: a live snapshot and an entry whose dwSize is set.
    let mut more = unsafe { Module32FirstW(snap.0, &mut entry) } != 0;
    while more {
        out.push(PathBuf::from(from_wide_nul(&entry.szExePath)));
        // SAFETY: as above.
        more = unsafe { Module32NextW(snap.0, &mut entry) } != 0;
    }
    Some(out)
}

pub fn exit_of(status: ExitStatus) -> Exit {
    // A crash on Windows is an exit code: the NTSTATUS of the exception that ended it.
    let Some(code) = status.code() else {
        return Exit::Unknown;
    };
    match crate::ntstatus_name(code as u32) {
        Some(name) => Exit::Exception {
            code: code as u32,
            name,
        },
        None => Exit::Code(code),
    }
}
