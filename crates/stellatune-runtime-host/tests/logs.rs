//! Log files in `<data_dir>/logs`, and plain text on a stderr that is not a terminal.
//!
//! These tests install the process-wide subscriber, so each needs a process of its own:
//! cargo-nextest gives every test one, and the stderr test re-runs itself in a child process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stellatune_runtime_host::{HostConfig, InitOutcome, RuntimeHost};

fn config(data_dir: &Path) -> HostConfig {
    HostConfig {
        data_dir: Some(data_dir.to_path_buf()),
        log_filter: Some("info".into()),
        ..HostConfig::default()
    }
}

/// The `stellatune*.log` files in `<data_dir>/logs`.
fn log_files(data_dir: &Path) -> Vec<PathBuf> {
    let dir = stellatune_runtime_host::log_dir(data_dir);
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap_or_default().to_string_lossy();
                    name.starts_with(stellatune_runtime_host::LOG_FILE_PREFIX)
                        && name.ends_with(&format!(".{}", stellatune_runtime_host::LOG_FILE_SUFFIX))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything in the data dir's log files.
fn logged(data_dir: &Path) -> String {
    log_files(data_dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn os_threads() -> u64 {
    stellatune_probe::threads().expect("thread count")
}

fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn the_log_file_follows_the_data_dir_and_is_closed_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let second = tmp.path().join("second");
    let host = RuntimeHost::new("logs");
    let baseline = os_threads();

    assert_eq!(host.init(config(&first)).unwrap(), InitOutcome::Started);
    tracing::warn!(
        marker = "into-the-first",
        "an event while the first runtime runs"
    );
    let files = log_files(&first);
    assert_eq!(files.len(), 1, "one log file: {files:?}");
    let text = logged(&first);
    assert!(text.contains("runtime host initialised"), "{text}");
    assert!(text.contains("into-the-first"), "{text}");
    assert!(!text.contains('\x1b'), "escape codes in the file: {text:?}");

    host.shutdown().unwrap();
    // Writing the file started no thread: shutdown is back to where the test began.
    assert_eq!(host.metrics().runtime_threads, 0);
    assert!(
        wait_for(Duration::from_secs(2), || os_threads() <= baseline),
        "threads still alive: {} > {baseline}",
        os_threads()
    );
    // Shutdown's own last line made it into the file before the file was closed.
    assert!(logged(&first).contains("runtime host shut down"));
    tracing::warn!(
        marker = "between-runtimes",
        "an event with no runtime running"
    );

    assert_eq!(host.init(config(&second)).unwrap(), InitOutcome::Started);
    tracing::warn!(
        marker = "into-the-second",
        "an event while the second runtime runs"
    );
    let first_text = logged(&first);
    let second_text = logged(&second);
    assert!(second_text.contains("into-the-second"), "{second_text}");
    assert!(!second_text.contains("into-the-first"), "{second_text}");
    assert!(!first_text.contains("into-the-second"), "{first_text}");
    assert!(!first_text.contains("between-runtimes"), "{first_text}");
    // No handle on the first dir is left open (on Windows an open file blocks this).
    std::fs::remove_dir_all(&first).expect("the first data dir can be deleted");

    host.shutdown().unwrap();
    std::fs::remove_dir_all(&second).expect("the second data dir can be deleted");
}

#[test]
fn log_max_files_zero_writes_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let host = RuntimeHost::new("no-file");
    let config = HostConfig {
        log_max_files: Some(0),
        ..config(tmp.path())
    };
    assert_eq!(host.init(config).unwrap(), InitOutcome::Started);
    tracing::warn!("an event with file logging off");
    host.shutdown().unwrap();
    assert!(log_files(tmp.path()).is_empty());
}

/// Runs `body` in a child process of this test binary and returns the child's stderr, which
/// is a pipe (not a terminal) and carries the host's log, or `None` in the child itself.
fn stderr_of(test_name: &str, body: impl FnOnce(&Path)) -> Option<String> {
    const CHILD: &str = "STELLATUNE_LOGS_TEST_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        body(Path::new(&dir));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    // NO_COLOR is removed so that colour is off only because stderr is not a terminal.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, dir.path())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child run failed: {out:?}\n{log}");
    Some(log)
}

#[test]
fn stderr_that_is_not_a_terminal_gets_no_escape_codes() {
    let Some(log) = stderr_of(
        "stderr_that_is_not_a_terminal_gets_no_escape_codes",
        |dir| {
            let host = RuntimeHost::new("stderr");
            host.init(config(dir)).unwrap();
            let _span = tracing::info_span!("session", client = 7).entered();
            tracing::warn!(marker = "on-stderr", "an event for stderr");
            host.shutdown().unwrap();
        },
    ) else {
        return;
    };
    assert!(log.contains("on-stderr"), "{log}");
    assert!(log.contains("runtime host initialised"), "{log}");
    assert!(!log.contains('\x1b'), "escape codes on stderr: {log:?}");
}

#[test]
fn an_unusable_logs_dir_leaves_init_working_with_one_warning() {
    let Some(log) = stderr_of(
        "an_unusable_logs_dir_leaves_init_working_with_one_warning",
        |dir| {
            // `logs` is a regular file, so the directory cannot be made (also for root).
            std::fs::write(stellatune_runtime_host::log_dir(dir), b"not a directory").unwrap();
            let host = RuntimeHost::new("unusable");
            assert_eq!(host.init(config(dir)).unwrap(), InitOutcome::Started);
            let player = host.attach_client().unwrap();
            host.detach_client(player.id).unwrap();
            host.shutdown().unwrap();
        },
    ) else {
        return;
    };
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot open a log file"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{log}");
    assert!(log.contains("runtime host shut down"), "{log}");
}
