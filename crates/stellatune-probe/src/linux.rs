//! Linux: everything from `/proc`.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::{Child, Exit};

fn count_dir(path: &str) -> Option<u64> {
    Some(std::fs::read_dir(path).ok()?.count() as u64)
}

pub fn threads() -> Option<u64> {
    count_dir("/proc/self/task")
}

pub fn handles() -> Option<u64> {
    count_dir("/proc/self/fd")
}

pub fn rss_kib() -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `(name, state, ppid)` from a `/proc/<pid>/stat` line. The command name sits in parentheses
/// and may itself hold spaces and parentheses, so the fields start after the last `)`.
fn parse_stat(stat: &str) -> Option<(&str, char, u32)> {
    let close = stat.rfind(')')?;
    let name = &stat[stat.find('(')? + 1..close];
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((name, state, ppid))
}

fn stat_of(pid: u32) -> Option<(String, char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (name, state, ppid) = parse_stat(&stat)?;
    Some((name.to_owned(), state, ppid))
}

pub fn children(parent: u32) -> Vec<Child> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (name, state, ppid) = stat_of(pid)?;
            (ppid == parent).then_some(Child {
                pid,
                name,
                zombie: state == 'Z',
            })
        })
        .collect()
}

pub fn is_running(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(_, state, _)| state != 'Z' && state != 'X')
}

pub fn executable(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

fn signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: kill takes no memory; a wrong pid is an error return, not undefined behaviour.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn kill(pid: u32) -> std::io::Result<()> {
    signal(pid, libc::SIGKILL)
}

pub fn suspend(pid: u32) -> std::io::Result<()> {
    signal(pid, libc::SIGSTOP)
}

pub fn mapped_libraries() -> Option<Vec<PathBuf>> {
    Some(parse_maps(
        &std::fs::read_to_string("/proc/self/maps").ok()?,
    ))
}

/// The file paths of a `/proc/<pid>/maps` text, deleted files included, one per mapping.
fn parse_maps(maps: &str) -> Vec<PathBuf> {
    maps.lines()
        .filter_map(|line| {
            // address perms offset dev inode path: the path is the sixth field and may hold
            // spaces, so take everything from its first character on.
            let path = line.splitn(6, char::is_whitespace).nth(5)?.trim_start();
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

pub fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.signal(), status.code()) {
        (Some(signal), _) => Exit::Signal {
            signal,
            name: signal_name(signal),
        },
        (None, Some(code)) => Exit::Code(code),
        (None, None) => Exit::Unknown,
    }
}

pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => "unknown signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_texts() {
        assert_eq!(parse_stat("12 (a b) c)) S 7 1"), Some(("a b) c)", 'S', 7)));
        assert_eq!(parse_vm_rss("Name: x\nVmRSS:\t  1234 kB\n"), Some(1234));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn mapped_files_deleted_or_not() {
        let maps = "\
7f00-7f10 r--p 00000000 08:01 11 /d/plugins/.shadow/asio-1.so (deleted)
7f10-7f20 r-xp 00001000 08:01 11 /d/plugins/.shadow/asio-1.so (deleted)
7f20-7f30 r--p 00000000 08:01 12 /d/a b/asio-2.so
7f40-7f50 rw-p 00000000 00:00 0
7f50-7f60 rw-p 00000000 00:00 0  [heap]
";
        let paths = parse_maps(maps);
        assert_eq!(
            paths,
            [
                PathBuf::from("/d/plugins/.shadow/asio-1.so"),
                PathBuf::from("/d/plugins/.shadow/asio-1.so"),
                PathBuf::from("/d/a b/asio-2.so"),
            ]
        );
    }
}
