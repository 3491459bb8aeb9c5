//! Process inspection: what the stress gate and the leak tests measure, asked the same way on
//! every OS. Linux answers from `/proc`; Windows from Win32 (Toolhelp32 snapshots for threads,
//! children and loaded modules, `GetProcessHandleCount`, `GetProcessMemoryInfo`).
//!
//! Under Wine, `/proc/self` of a Windows program is the wineserver, so a Windows build must
//! never read `/proc`: each question has exactly one implementation per OS, in `linux.rs` and
//! `windows.rs`. Answers are `None` where an OS has no such notion.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

#[cfg(not(any(target_os = "linux", windows)))]
mod other;
#[cfg(not(any(target_os = "linux", windows)))]
use other as os;

/// A child process of some process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub pid: u32,
    /// Its program's name (Linux: the command name, at most 15 bytes; Windows: the exe file
    /// name).
    pub name: String,
    /// Exited but not reaped (a Linux zombie). Windows lists only running processes: an
    /// exited child whose handle is still open shows up in [`handles`] instead.
    pub zombie: bool,
}

/// Threads of this process.
pub fn threads() -> Option<u64> {
    os::threads()
}

/// Open file descriptors (Linux) or handles (Windows) of this process.
pub fn handles() -> Option<u64> {
    os::handles()
}

/// Resident set (Linux `VmRSS`) or working set (Windows) of this process, in KiB.
pub fn rss_kib() -> Option<u64> {
    os::rss_kib()
}

/// Child processes of `pid`, zombies included.
pub fn children(pid: u32) -> Vec<Child> {
    os::children(pid)
}

/// Live (not zombie) child processes of `pid`.
pub fn live_children(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|c| !c.zombie)
        .map(|c| c.pid)
        .collect()
}

/// Whether `pid` is a running process (a zombie is not).
pub fn is_running(pid: u32) -> bool {
    os::is_running(pid)
}

/// The program file `pid` runs (Linux `/proc/<pid>/exe`; Windows
/// `QueryFullProcessImageNameW`, a Windows path). `None` when the process is gone or that
/// cannot be read.
pub fn executable(pid: u32) -> Option<PathBuf> {
    os::executable(pid)
}

/// Kills `pid` at once, as a crash would end it (SIGKILL; `TerminateProcess`).
pub fn kill(pid: u32) -> std::io::Result<()> {
    os::kill(pid)
}

/// Stops `pid` without ending it, as a hang would look from outside (SIGSTOP; every thread
/// suspended on Windows).
pub fn suspend(pid: u32) -> std::io::Result<()> {
    os::suspend(pid)
}

/// Files mapped into this process as executable images or data (Linux: every file mapping,
/// deleted files included, once per mapping; Windows: every loaded module). `None` where that
/// cannot be read.
pub fn mapped_libraries() -> Option<Vec<PathBuf>> {
    os::mapped_libraries()
}

/// Files under `dir` mapped into this process as executable images (shared libraries), each
/// once; a deleted one on Linux included. `None` where that cannot be read.
pub fn mapped_libraries_under(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut found = os::mapped_libraries()?
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect::<Vec<_>>();
    found.sort();
    found.dedup();
    Some(found)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code (a Windows exit code that is no known exception included).
    Code(i32),
    /// Unix: a signal ended it.
    Signal {
        signal: i32,
        name: &'static str,
    },
    /// Windows: an exception ended it; a crash there is an exit code, the exception's NTSTATUS.
    Exception {
        code: u32,
        name: &'static str,
    },
    Unknown,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal { signal, name } => write!(f, "signal {signal} ({name})"),
            Exit::Exception { code, name } => write!(f, "exception 0x{code:08X} ({name})"),
            Exit::Unknown => f.write_str("unknown exit"),
        }
    }
}

/// How a process with this exit status ended.
pub fn exit_of(status: ExitStatus) -> Exit {
    os::exit_of(status)
}

/// Why a process ended abnormally (a signal on Unix, an exception on Windows); `None` for an
/// exit with a code.
pub fn crash_reason(status: ExitStatus) -> Option<String> {
    match exit_of(status) {
        crash @ (Exit::Signal { .. } | Exit::Exception { .. }) => Some(crash.to_string()),
        Exit::Code(_) | Exit::Unknown => None,
    }
}

/// The name of an NTSTATUS code a crashed Windows process exits with.
pub fn ntstatus_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0xC000_0005 => "access violation",
        0xC000_001D => "illegal instruction",
        0xC000_0025 => "noncontinuable exception",
        0xC000_008C => "array bounds exceeded",
        0xC000_0094 => "integer divide by zero",
        0xC000_0096 => "privileged instruction",
        0xC000_00FD => "stack overflow",
        0xC000_0135 => "DLL not found",
        0xC000_0139 => "entry point not found",
        0xC000_0142 => "DLL initialization failed",
        0xC000_0374 => "heap corruption",
        0xC000_0409 => "fail-fast",
        0xC000_013A => "control-C exit",
        0x4000_0015 => "fatal app exit (abort)",
        0x8000_0003 => "breakpoint",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        #[cfg(any(target_os = "linux", windows))]
        {
            assert!(threads().is_some_and(|n| n >= 1));
            // Wine answers 0 handles; Linux and Windows count at least stdio.
            assert!(handles().is_some());
            assert!(rss_kib().is_some_and(|n| n > 0));
            assert!(is_running(std::process::id()));
        }
    }

    #[test]
    fn a_new_thread_is_counted() {
        let Some(before) = threads() else { return };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        assert!(threads().unwrap() > before);
        drop(tx);
        t.join().unwrap();
    }

    #[test]
    fn names_windows_crash_codes() {
        assert_eq!(ntstatus_name(0xC000_0005), Some("access violation"));
        assert_eq!(ntstatus_name(0xC000_0409), Some("fail-fast"));
        assert_eq!(ntstatus_name(1), None);
    }
}

#[cfg(all(test, any(target_os = "linux", windows)))]
mod child_tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Not a test: the child process `children_are_listed_and_killed` starts.
    #[test]
    #[ignore = "the child process of children_are_listed_and_killed, which runs it with --ignored"]
    fn sleeper() {
        if std::env::var_os("STELLATUNE_PROBE_SLEEPER").is_some() {
            std::thread::sleep(Duration::from_secs(60));
        }
    }

    #[test]
    fn children_are_listed_and_killed() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "child_tests::sleeper"])
            .env("STELLATUNE_PROBE_SLEEPER", "1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !super::live_children(std::process::id()).contains(&pid) {
            assert!(Instant::now() < deadline, "child {pid} never listed");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(super::is_running(pid));
        super::kill(pid).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(!super::is_running(pid));
        #[cfg(unix)]
        assert_eq!(
            super::crash_reason(status).as_deref(),
            Some("signal 9 (SIGKILL)")
        );
    }
}
