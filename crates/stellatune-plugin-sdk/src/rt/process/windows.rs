//! Windows: a kill-on-close Job Object per child, applied while the child is still suspended.

use std::io;
use std::os::windows::io::AsRawHandle;
use std::os::windows::process::CommandExt;
use std::process::{Child, Command};

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NO_WINDOW, CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
};

/// Starts the child suspended (it runs no code until it is in its job), and without a
/// console window: a sidecar is a console program, and a GUI host has no console to lend it.
pub fn prepare(command: &mut Command) {
    command.creation_flags(CREATE_SUSPENDED | CREATE_NO_WINDOW);
}

/// A handle closed on drop.
struct Owned(HANDLE);

impl Owned {
    fn new(handle: HANDLE) -> io::Result<Owned> {
        if handle.is_null() || handle == INVALID_HANDLE_VALUE {
            Err(io::Error::last_os_error())
        } else {
            Ok(Owned(handle))
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: a valid handle this value owns, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// The child's Job Object. Dropping it (after the child was reaped) closes the job; were the
/// child still running, closing it would kill it.
pub struct Containment(HANDLE);

impl Drop for Containment {
    fn drop(&mut self) {
        // SAFETY: the job handle this value owns, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

// SAFETY: a job handle may be used and closed from any thread.
unsafe impl Send for Containment {}
// SAFETY: as above; nothing is called through a shared reference.
unsafe impl Sync for Containment {}

impl Containment {
    /// Puts the suspended `child` in a new kill-on-close job, then resumes it. On an error the
    /// child is still suspended and outside any job: the caller kills it.
    pub fn apply(child: &Child) -> io::Result<Containment> {
        // SAFETY: no attributes, no name; the result is checked.
        let job = Owned::new(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) })?;
        let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: a live job handle and a struct of the stated size and class.
        let ok = unsafe {
            SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a live job handle and the child's process handle, which `child` keeps open.
        if unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        resume(child.id())?;
        // Ownership moves from the guard to the containment.
        let job = std::mem::ManuallyDrop::new(job);
        Ok(Containment(job.0))
    }
}

/// Resumes the threads of a process started suspended (it has one: std does not hand out the
/// thread handle CreateProcess returned, so it is found by a snapshot).
fn resume(pid: u32) -> io::Result<()> {
    // SAFETY: plain call; the result is checked and owned.
    let snapshot = Owned::new(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) })?;
    let mut entry = THREADENTRY32 {
        dwSize: size_of::<THREADENTRY32>() as u32,
        ..Default::default()
    };
    let mut resumed = 0;
    // SAFETY: a live snapshot and an entry whose dwSize is set, as both calls require.
    let mut more = unsafe { Thread32First(snapshot.0, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: plain call; the result is checked and owned.
            let thread =
                Owned::new(unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) })?;
            // SAFETY: a live thread handle with resume rights.
            if unsafe { ResumeThread(thread.0) } == u32::MAX {
                return Err(io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snapshot.0, &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "no thread of process {pid} to resume"
        )));
    }
    Ok(())
}
