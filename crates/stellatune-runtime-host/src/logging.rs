//! Process-wide logging: one `tracing` subscriber, installed by the first `init`, writing to
//! stderr and to a daily log file in `<data_dir>/logs`.
//!
//! The subscriber lives as long as the process, but the data dir belongs to one runtime: a
//! host may shut down and init again with another one. So the file layer writes through
//! [`LogFile`], a slot that each init points at its own directory (a [`LogFileClaim`]) and
//! that shutdown empties, closing the file: a directory holding an open file cannot be
//! deleted on Windows, and a user may delete the data dir once the runtime is down.
//!
//! Lines are written on the thread that logs them. The appender's `non_blocking` writer would
//! start a worker thread that outlives shutdown, which promises to join every thread the
//! runtime started.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use tracing::Subscriber;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;
use crate::error::HostError;

/// Log files are `stellatune.<yyyy-mm-dd>.log`.
pub const LOG_FILE_PREFIX: &str = "stellatune";
pub const LOG_FILE_SUFFIX: &str = "log";

/// Whether `init_logging` installed this crate's subscriber. When the host application had
/// its own, nothing reads the log file slot, so no file is opened.
static LOGGING: OnceLock<bool> = OnceLock::new();

/// The file the installed subscriber's file layer writes to.
static LOG_FILE: LogFile = LogFile::new();

pub fn parse_filter(filter: &str) -> Result<EnvFilter, HostError> {
    EnvFilter::try_new(filter)
        .map_err(|e| HostError::InvalidArgument(format!("config: log_filter {filter:?}: {e}")))
}

/// Installs the log subscriber once per process. Later calls, and calls in a process whose
/// host application already installed a subscriber, change nothing and never panic.
///
/// Lines go to stderr (with colours only when stderr is a terminal, so a redirected stderr
/// holds plain text) and to the current runtime's log file, if any.
pub fn init_logging(filter: Option<&str>, format: LogFormat) {
    LOGGING.get_or_init(|| {
        let filter = filter
            .and_then(|f| parse_filter(f).ok())
            .or_else(|| EnvFilter::try_from_default_env().ok())
            .unwrap_or_else(|| EnvFilter::new("info"));
        let ansi = io::stderr().is_terminal();
        let installed = subscriber(filter, format, io::stderr, ansi, &LOG_FILE)
            .try_init()
            .is_ok();
        if !installed {
            tracing::debug!("a log subscriber was already installed; keeping it");
        }
        installed
    });
}

type Layers = Vec<Box<dyn Layer<Registry> + Send + Sync>>;

/// The subscriber `init_logging` installs, with its stderr writer and terminal check passed
/// in so that a test can run it (as a scoped default) against a buffer.
fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    stderr: W,
    stderr_ansi: bool,
    file: &'static LogFile,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let to_file = move || file.writer();
    let layers: Layers = match format {
        LogFormat::Text => vec![
            tracing_subscriber::fmt::layer()
                .with_writer(stderr)
                .with_ansi(stderr_ansi)
                .with_thread_names(true)
                .boxed(),
            tracing_subscriber::fmt::layer()
                .fmt_fields(FileFields::default())
                .with_writer(to_file)
                .with_ansi(false)
                .with_thread_names(true)
                .boxed(),
        ],
        // JSON never carries colour codes: whoever reads it parses it.
        LogFormat::Json => vec![
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(stderr)
                .with_ansi(false)
                .with_thread_names(true)
                .boxed(),
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(to_file)
                .with_ansi(false)
                .with_thread_names(true)
                .boxed(),
        ],
    };
    tracing_subscriber::registry().with(layers).with(filter)
}

/// The file layer's field formatter: [`DefaultFields`] under a type of its own. The fmt
/// layers cache a span's formatted fields keyed by the formatter's type; sharing
/// `DefaultFields` with the stderr layer, the file would reuse the stderr layer's coloured
/// span fields (tokio-rs/tracing#1817) and carry escape codes.
#[derive(Default)]
struct FileFields(DefaultFields);

impl<'w> FormatFields<'w> for FileFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// The log file of the runtime that runs now, or none: what the file layer writes to.
///
/// An `RwLock` because logging threads only read the slot and many log at once: a line holds
/// the read lock just for its write (one short append to a file; the appender rotates under
/// its own lock), and only init and shutdown, which switch the file, take it exclusively. A
/// `Mutex` would make logging threads queue behind one another for no gain. Nothing else is
/// locked while this lock is held, and a replaced file is closed after it is released.
pub(crate) struct LogFile {
    current: RwLock<Option<Arc<RollingFileAppender>>>,
}

impl LogFile {
    const fn new() -> Self {
        Self {
            current: RwLock::new(None),
        }
    }

    fn writer(&self) -> LogFileWriter<'_> {
        LogFileWriter(self)
    }

    /// Makes `appender` the current file unless it is already; returns the file it replaced,
    /// for the caller to drop after the lock is released.
    fn install(&self, appender: &Arc<RollingFileAppender>) -> Option<Arc<RollingFileAppender>> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, appender)) {
            return None;
        }
        current.replace(Arc::clone(appender))
    }

    /// Empties the slot if `appender` is the current file; returns it, as `install` does.
    fn release(&self, appender: &Arc<RollingFileAppender>) -> Option<Arc<RollingFileAppender>> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, appender)) {
            current.take()
        } else {
            None
        }
    }
}

/// Writes to whichever file is current at the moment of the write; with none, lines are
/// dropped (stderr still has them).
struct LogFileWriter<'a>(&'a LogFile);

impl Write for LogFileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let current = self
            .0
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(appender) = current.as_deref() {
            // One write per line, so lines from different threads do not interleave.
            appender.make_writer().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let current = self
            .0
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match current.as_deref() {
            Some(appender) => appender.make_writer().flush(),
            None => Ok(()),
        }
    }
}

/// One runtime's log file. `install` makes it the current file; dropping the claim (at
/// shutdown, or when the init that opened it fails) empties the slot if it still holds this
/// file, and closes the file. Another runtime's init may have installed its own file in the
/// meantime (isolated hosts in one process): then the slot keeps that one.
pub(crate) struct LogFileClaim {
    slot: &'static LogFile,
    appender: Arc<RollingFileAppender>,
}

impl LogFileClaim {
    /// Opens today's file in `<data_dir>/logs` (creating the directory) and deletes the
    /// oldest files beyond `max_files`. `None` when `max_files` is 0, when the installed
    /// subscriber is not this crate's, or when the directory or file cannot be made: that is
    /// logged once and the runtime runs on with stderr alone.
    pub(crate) fn open(data_dir: &Path, max_files: usize) -> Option<Self> {
        if max_files == 0 || LOGGING.get() != Some(&true) {
            return None;
        }
        let dir = log_dir(data_dir);
        match Self::open_in(&LOG_FILE, &dir, max_files) {
            Ok(claim) => Some(claim),
            Err(e) => {
                tracing::warn!(log_dir = %dir.display(), error = %e, "cannot open a log file; logging to stderr only");
                None
            }
        }
    }

    fn open_in(slot: &'static LogFile, dir: &Path, max_files: usize) -> io::Result<Self> {
        // `build` would create the directory too; creating it here gives the error the OS's
        // reason rather than the appender's wrapper.
        std::fs::create_dir_all(dir)?;
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(LOG_FILE_PREFIX)
            .filename_suffix(LOG_FILE_SUFFIX)
            .max_log_files(max_files)
            .build(dir)
            .map_err(io::Error::other)?;
        Ok(Self {
            slot,
            appender: Arc::new(appender),
        })
    }

    /// From now on, lines go to this file.
    pub(crate) fn install(&self) {
        drop(self.slot.install(&self.appender));
    }
}

impl Drop for LogFileClaim {
    fn drop(&mut self) {
        drop(self.slot.release(&self.appender));
    }
}

/// Where a runtime with this data dir writes its log files.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Collects what the stderr layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn log_files(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// A private slot and a scoped subscriber: the process-wide ones stay untouched, so this
    /// runs next to other tests in one process.
    #[test]
    fn the_file_gets_plain_text_even_when_stderr_is_coloured() {
        let slot: &'static LogFile = Box::leak(Box::new(LogFile::new()));
        let tmp = tempfile::tempdir().unwrap();
        let dir = log_dir(tmp.path());
        let stderr = Captured::default();
        let sink = stderr.clone();
        let subscriber = subscriber(
            EnvFilter::new("info"),
            LogFormat::Text,
            move || sink.clone(),
            true,
            slot,
        );
        let claim = LogFileClaim::open_in(slot, &dir, 7).unwrap();
        claim.install();
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("session", client = 7).entered();
            tracing::info!(answer = 42, "into the file");
        });
        drop(claim);

        let files = log_files(&dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with("stellatune.") && name.ends_with(".log"),
            "{name}"
        );
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("into the file"), "{text}");
        assert!(
            text.contains("client=7") && text.contains("answer=42"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "escape codes in the file: {text:?}");
        // The stderr layer did colour its copy (so the check above meant something).
        assert!(stderr.text().contains("\x1b["), "{:?}", stderr.text());
        // Released: the directory can go, and lines after it go nowhere.
        std::fs::remove_dir_all(tmp.path()).unwrap();
    }

    #[test]
    fn a_claim_releases_only_its_own_file() {
        let slot: &'static LogFile = Box::leak(Box::new(LogFile::new()));
        let a_dir = tempfile::tempdir().unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let a = LogFileClaim::open_in(slot, a_dir.path(), 7).unwrap();
        let b = LogFileClaim::open_in(slot, b_dir.path(), 7).unwrap();
        a.install();
        b.install();
        // `a` is no longer current: dropping it leaves `b` in place.
        drop(a);
        writeln!(slot.writer(), "to b").unwrap();
        let b_text = std::fs::read_to_string(&log_files(b_dir.path())[0]).unwrap();
        assert_eq!(b_text, "to b\n");
        let a_text = std::fs::read_to_string(&log_files(a_dir.path())[0]).unwrap();
        assert_eq!(a_text, "");
        drop(b);
        assert!(slot.current.read().unwrap().is_none());
        writeln!(slot.writer(), "nowhere").unwrap();
        let b_text = std::fs::read_to_string(&log_files(b_dir.path())[0]).unwrap();
        assert_eq!(b_text, "to b\n");
    }

    #[test]
    fn old_files_beyond_the_limit_are_deleted() {
        let slot: &'static LogFile = Box::leak(Box::new(LogFile::new()));
        let tmp = tempfile::tempdir().unwrap();
        for day in 1..=5 {
            std::fs::write(
                tmp.path().join(format!("stellatune.2020-01-0{day}.log")),
                "",
            )
            .unwrap();
        }
        // Not a log file of ours: never deleted.
        std::fs::write(tmp.path().join("notes.txt"), "").unwrap();
        let claim = LogFileClaim::open_in(slot, tmp.path(), 3).unwrap();
        let mut names: Vec<String> = log_files(tmp.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        names.sort();
        // Two old ones and today's: three in all.
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.contains(&"notes.txt".to_owned()), "{names:?}");
        drop(claim);
    }
}
