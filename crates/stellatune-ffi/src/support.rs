//! The plumbing behind every exported function: the panic guard, the thread-local last
//! error, pointer and string checks, output buffers and the error-code mapping.
//!
//! Nothing here is exported to C; the exported surface is all in `lib.rs`.

use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use stellatune_runtime_host::{AudioError, HostError, PluginError, SinkError};

use crate::Status;

/// A failed call: the code returned to C and the message `stellatune_last_error` gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FfiError {
    pub code: Status,
    pub message: String,
}

impl FfiError {
    pub fn new(code: Status, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self::new(
            Status::InvalidArgument,
            format!("invalid argument: {message}"),
        )
    }
}

impl From<HostError> for FfiError {
    fn from(error: HostError) -> Self {
        Self::new(host_error_code(&error), error.to_string())
    }
}

impl From<AudioError> for FfiError {
    fn from(error: AudioError) -> Self {
        Self::new(audio_error_code(&error), error.to_string())
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

/// The status code for every host error. Exhaustive on purpose: a new variant in the host or
/// the engine does not compile until it has a code here.
pub(crate) fn host_error_code(error: &HostError) -> Status {
    match error {
        HostError::NotInitialized => Status::NotInitialized,
        HostError::ShuttingDown => Status::ShuttingDown,
        HostError::UnknownClient(_) => Status::UnknownClient,
        HostError::ClientDisposed(_) => Status::ClientDisposed,
        HostError::ClientEvicted { .. } => Status::ClientEvicted,
        HostError::InvalidArgument(_) => Status::InvalidArgument,
        HostError::Audio(audio) => audio_error_code(audio),
        HostError::ShutdownTimeout { .. } => Status::Timeout,
        HostError::Internal(_) => Status::Internal,
        HostError::Plugin(plugin) => plugin_error_code(plugin),
        HostError::PluginsUnavailable => Status::Plugin,
    }
}

pub(crate) fn plugin_error_code(error: &PluginError) -> Status {
    match error {
        PluginError::UnknownPlugin(_) => Status::UnknownPlugin,
        PluginError::AbiMismatch { .. } => Status::PluginAbi,
        PluginError::Hung { .. } => Status::Timeout,
        PluginError::Manifest { .. }
        | PluginError::Install { .. }
        | PluginError::UnknownCapability { .. }
        | PluginError::Load { .. }
        | PluginError::Call { .. }
        | PluginError::Io(_) => Status::Plugin,
    }
}

pub(crate) fn audio_error_code(error: &AudioError) -> Status {
    match error {
        AudioError::NotFound(_) | AudioError::NotAFile(_) => Status::NotFound,
        AudioError::Io { .. } => Status::Io,
        AudioError::Unsupported { .. } => Status::Unsupported,
        AudioError::Decode { .. } => Status::Decode,
        AudioError::NoRoute => Status::NoRoute,
        AudioError::NothingPlaying => Status::NothingPlaying,
        AudioError::InvalidArgument(_) => Status::InvalidArgument,
        AudioError::Sink(sink) | AudioError::Dsp { source: sink, .. } => sink_error_code(sink),
        AudioError::ThreadSpawn { .. } => Status::Internal,
        // The engine only stops when the host shuts it down, so a command that raced a
        // shutdown lands here.
        AudioError::EngineStopped => Status::ShuttingDown,
        AudioError::Timeout(_) => Status::Timeout,
    }
}

/// The code of an output failure depends on what failed, not on which call or thread noticed
/// it: a plugin's failure is `PLUGIN` at create, open, write or in a DSP stage alike.
pub(crate) fn sink_error_code(error: &SinkError) -> Status {
    match error {
        SinkError::Device { .. } | SinkError::Disconnected { .. } | SinkError::Io { .. } => {
            Status::Sink
        }
        SinkError::InvalidConfig(_) => Status::InvalidArgument,
        SinkError::Plugin { .. } => Status::Plugin,
        SinkError::Hung { .. } => Status::Timeout,
    }
}

thread_local! {
    // The initializer is const already; on windows-gnu (emulated TLS) the macro's expansion
    // makes clippy ask for it anyway.
    #[cfg_attr(
        all(windows, target_env = "gnu"),
        allow(clippy::missing_const_for_thread_local)
    )]
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(message: String) {
    // `try_with`: during thread teardown the slot may be gone; losing the message then is
    // better than a panic across the C boundary.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

/// This thread's last error message ("" when none, or during thread teardown).
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|slot| slot.borrow().clone())
        .unwrap_or_default()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// Runs the body of exported function `name`: a panic becomes `Status::Internal`, an
/// error becomes its code, and either leaves its message (prefixed with `name`) as this
/// thread's last error. Success leaves the last error as it was.
pub(crate) fn ffi_call(name: &'static str, body: impl FnOnce() -> FfiResult) -> i32 {
    let status = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(error)) => {
            set_last_error(format!("{name}: {}", error.message));
            error.code
        }
        Err(payload) => {
            set_last_error(format!(
                "{name}: internal error: panic: {}",
                panic_message(payload.as_ref())
            ));
            Status::Internal
        }
    };
    // The one place a typed status becomes the C integer.
    status.code()
}

/// Reads a required string argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid and unchanged for
/// `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, param: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::invalid(format_args!("`{param}` is NULL")));
    }
    // SAFETY: `ptr` is not NULL (checked above) and the caller guarantees it points to a
    // NUL-terminated string valid for `'a`.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|e| {
        FfiError::invalid(format_args!(
            "`{param}` is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Reads an optional string argument: NULL gives `None`.
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    param: &str,
) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's own contract.
    unsafe { str_arg(ptr, param) }.map(Some)
}

/// Reads a required, non-empty string argument.
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn non_empty_str_arg<'a>(ptr: *const c_char, param: &str) -> FfiResult<&'a str> {
    // SAFETY: forwarded from this function's own contract.
    let text = unsafe { str_arg(ptr, param) }?;
    if text.is_empty() {
        return Err(FfiError::invalid(format_args!("`{param}` is empty")));
    }
    Ok(text)
}

/// Writes one value through a required out-pointer.
///
/// # Safety
/// `ptr` must be NULL or valid for a write of one `T`, suitably aligned.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T, param: &str) -> FfiResult {
    if ptr.is_null() {
        return Err(FfiError::invalid(format_args!("`{param}` is NULL")));
    }
    // SAFETY: `ptr` is not NULL (checked above); the caller guarantees it is valid and aligned.
    unsafe { ptr.write(value) };
    Ok(())
}

/// A caller's text buffer with its capacity and length out-pointer, checked once so that
/// every later write is sound. Creating one sets `*out_len = 0` and `buf[0] = NUL` (when
/// `cap > 0`), so an error never leaves stale contents behind.
pub(crate) struct TextOut(BytesOut);

impl TextOut {
    /// Checks `buf` and `out_len` for NULL (naming `buf_param` and `out_len_param`).
    ///
    /// # Safety
    /// `buf` must be NULL or valid for writes of `cap` bytes, and `out_len` NULL or valid for
    /// one aligned `size_t` write, both for as long as the returned value lives.
    pub unsafe fn new(
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
        buf_param: &str,
        out_len_param: &str,
    ) -> FfiResult<Self> {
        // SAFETY: the caller's contract is `BytesOut::new`'s, passed on unchanged.
        let bytes = unsafe { BytesOut::new(buf.cast(), cap, out_len, buf_param, out_len_param) }?;
        let out = Self(bytes);
        out.terminate(0);
        Ok(out)
    }

    /// Writes a NUL at `at` if the buffer has room for it.
    fn terminate(&self, at: usize) {
        if at < self.0.cap {
            // SAFETY: `buf` is not NULL and valid for `cap` bytes (contract of `new`), and
            // `at < cap`.
            unsafe { self.0.buf.add(at).write(0) };
        }
    }

    /// Whether `text` and its NUL fit.
    pub fn fits(&self, text: &str) -> bool {
        text.len() < self.0.cap
    }

    /// Copies `text` and a NUL and sets `*out_len` to `text.len()`; or, when it does not fit,
    /// sets `*out_len` to the size needed including the NUL and fails with
    /// `Status::BufferTooSmall`.
    pub fn write(&self, text: &str) -> FfiResult {
        let needed = text.len() + 1;
        if !self.fits(text) {
            self.0.set_len(needed);
            return Err(FfiError::new(
                Status::BufferTooSmall,
                format!(
                    "buffer too small: {needed} bytes needed (including the NUL), cap is {}",
                    self.0.cap
                ),
            ));
        }
        // Room for the text and its NUL: the byte copy cannot fail.
        self.0.write(text.as_bytes())?;
        self.terminate(text.len());
        Ok(())
    }
}

/// A caller's byte buffer with its capacity and length out-pointer, checked once so that every
/// later write is sound; [`TextOut`] adds the NUL of a text. Creating one sets `*out_len = 0`.
pub(crate) struct BytesOut {
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
}

impl BytesOut {
    /// Checks `buf` and `out_len` for NULL (naming `buf_param` and `out_len_param`).
    ///
    /// # Safety
    /// `buf` must be NULL or valid for writes of `cap` bytes, and `out_len` NULL or valid for
    /// one aligned `size_t` write, both for as long as the returned value lives.
    pub unsafe fn new(
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
        buf_param: &str,
        out_len_param: &str,
    ) -> FfiResult<Self> {
        if buf.is_null() {
            return Err(FfiError::invalid(format_args!("`{buf_param}` is NULL")));
        }
        if out_len.is_null() {
            return Err(FfiError::invalid(format_args!("`{out_len_param}` is NULL")));
        }
        let out = Self { buf, cap, out_len };
        out.set_len(0);
        Ok(out)
    }

    fn set_len(&self, len: usize) {
        // SAFETY: `out_len` is not NULL (checked in `new`), and `new`'s caller guaranteed it is
        // valid for writes while `self` lives.
        unsafe { self.out_len.write(len) };
    }

    /// Copies `bytes` and sets `*out_len` to their length; or, when they do not fit, sets
    /// `*out_len` to the size needed and fails with `Status::BufferTooSmall`.
    pub fn write(&self, bytes: &[u8]) -> FfiResult {
        if bytes.len() > self.cap {
            self.set_len(bytes.len());
            return Err(FfiError::new(
                Status::BufferTooSmall,
                format!(
                    "buffer too small: {} bytes needed, cap is {}",
                    bytes.len(),
                    self.cap
                ),
            ));
        }
        // SAFETY: `buf` is valid for `cap` bytes (contract of `new`) and `bytes.len() <= cap`;
        // a Rust slice never overlaps a C caller's buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buf, bytes.len()) };
        self.set_len(bytes.len());
        Ok(())
    }
}

/// Copies as much of `text` as fits into `buf` (cut at a character boundary) plus a NUL.
/// Returns whether all of it fitted.
///
/// # Safety
/// `buf` must be non-NULL and valid for writes of `cap` bytes, and `cap` must be at least 1.
pub(crate) unsafe fn copy_truncated(text: &str, buf: *mut c_char, cap: usize) -> bool {
    let mut len = text.len().min(cap - 1);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: `buf` is valid for `cap` bytes and `len + 1 <= cap`; the source is a Rust string.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), len);
        buf.add(len).write(0);
    }
    len == text.len()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn every_host_and_audio_error_has_its_own_code() {
        let p = || PathBuf::from("/x");
        let s = || "m".to_string();
        let cases = [
            (HostError::NotInitialized, Status::NotInitialized),
            (HostError::ShuttingDown, Status::ShuttingDown),
            (HostError::UnknownClient(9), Status::UnknownClient),
            (HostError::ClientDisposed(9), Status::ClientDisposed),
            (
                HostError::ClientEvicted { id: 9, reason: s() },
                Status::ClientEvicted,
            ),
            (HostError::InvalidArgument(s()), Status::InvalidArgument),
            (
                HostError::ShutdownTimeout {
                    timeout_ms: 1,
                    threads_left: 1,
                },
                Status::Timeout,
            ),
            (HostError::Internal(s()), Status::Internal),
            (HostError::PluginsUnavailable, Status::Plugin),
            (AudioError::NotFound(p()).into(), Status::NotFound),
            (AudioError::NotAFile(p()).into(), Status::NotFound),
            (
                AudioError::Io {
                    path: p(),
                    message: s(),
                }
                .into(),
                Status::Io,
            ),
            (
                AudioError::Unsupported {
                    path: p(),
                    message: s(),
                }
                .into(),
                Status::Unsupported,
            ),
            (
                AudioError::Decode {
                    path: p(),
                    message: s(),
                }
                .into(),
                Status::Decode,
            ),
            (AudioError::NoRoute.into(), Status::NoRoute),
            (AudioError::NothingPlaying.into(), Status::NothingPlaying),
            (
                AudioError::InvalidArgument(s()).into(),
                Status::InvalidArgument,
            ),
            (
                AudioError::Sink(SinkError::device(s())).into(),
                Status::Sink,
            ),
            (
                AudioError::ThreadSpawn {
                    thread: "control",
                    message: s(),
                }
                .into(),
                Status::Internal,
            ),
            (AudioError::EngineStopped.into(), Status::ShuttingDown),
            (AudioError::Timeout(5).into(), Status::Timeout),
        ];
        for (error, code) in cases {
            let mapped = FfiError::from(error.clone());
            assert_eq!(mapped.code, code, "{error:?}");
            assert_eq!(mapped.message, error.to_string());
            assert!(code.code() < 0);
        }
    }

    /// A plugin's failure has one code wherever it shows: as a plugin error of the host
    /// (creating a sink or a stage on the caller's thread), or as a sink or DSP error of the
    /// engine (opening, writing, preparing a stage).
    #[test]
    fn plugin_errors_have_the_same_code_on_every_path() {
        let call = || PluginError::Call {
            plugin: "p".into(),
            call: "create",
            code: -1,
            message: "no".into(),
        };
        let hung = || PluginError::Hung {
            plugin: "p".into(),
            call: "close",
            timeout_ms: 5,
        };
        let plugin_cases = [
            (
                PluginError::Manifest {
                    dir: PathBuf::from("/x"),
                    message: "m".into(),
                },
                Status::Plugin,
            ),
            (
                PluginError::Install {
                    path: PathBuf::from("/x"),
                    message: "m".into(),
                },
                Status::Plugin,
            ),
            (
                PluginError::UnknownPlugin("p".into()),
                Status::UnknownPlugin,
            ),
            (
                PluginError::UnknownCapability {
                    plugin: "p".into(),
                    kind: "dsp",
                    type_id: "t".into(),
                    hint: String::new(),
                },
                Status::Plugin,
            ),
            (
                PluginError::Load {
                    plugin: "p".into(),
                    library: PathBuf::from("/x.so"),
                    message: "m".into(),
                },
                Status::Plugin,
            ),
            (
                PluginError::AbiMismatch {
                    plugin: "p".into(),
                    plugin_major: 9,
                    plugin_minor: 0,
                    host_major: 1,
                    host_minor: 0,
                },
                Status::PluginAbi,
            ),
            (call(), Status::Plugin),
            (hung(), Status::Timeout),
            (PluginError::Io("m".into()), Status::Plugin),
        ];
        for (error, code) in plugin_cases {
            assert_eq!(
                FfiError::from(HostError::Plugin(error.clone())).code,
                code,
                "{error:?}"
            );
        }

        let sink_cases = [
            (SinkError::device("gone"), Status::Sink),
            (SinkError::disconnected("sidecar died"), Status::Sink),
            (
                SinkError::io("out.wav", std::io::Error::other("full")),
                Status::Sink,
            ),
            (SinkError::invalid_config("bad"), Status::InvalidArgument),
            (SinkError::from(call()), Status::Plugin),
            (SinkError::from(hung()), Status::Timeout),
        ];
        for (error, code) in sink_cases {
            let through_sink = HostError::Audio(AudioError::Sink(error.clone()));
            let through_dsp = HostError::Audio(AudioError::Dsp {
                stage: "plugin:p/gain".into(),
                source: error.clone(),
            });
            assert_eq!(FfiError::from(through_sink).code, code, "{error:?}");
            assert_eq!(FfiError::from(through_dsp).code, code, "dsp {error:?}");
        }
        // The same plugin failure, at create (host) and at open (engine).
        assert_eq!(
            FfiError::from(HostError::Plugin(call())).code,
            FfiError::from(HostError::Audio(AudioError::Sink(call().into()))).code
        );
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let code = ffi_call("stellatune_test", || panic!("boom {}", 42));
        assert_eq!(code, Status::Internal.code());
        let m = last_error();
        assert!(
            m.starts_with("stellatune_test: internal error: panic: boom 42"),
            "{m}"
        );
        assert_eq!(ffi_call("stellatune_test", || Ok(())), Status::Ok.code());
        let m = last_error();
        assert!(m.contains("boom 42"), "success keeps the last error: {m}");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut buf = [0x7f_u8 as c_char; 8];
        // "aé" is 3 bytes; cap 3 leaves room for 2 bytes, which would split the "é".
        // SAFETY: `buf` has 8 bytes, more than the cap passed.
        let complete = unsafe { copy_truncated("aéz", buf.as_mut_ptr(), 3) };
        assert!(!complete);
        assert_eq!(buf[0] as u8, b'a');
        assert_eq!(buf[1], 0);
        // SAFETY: as above.
        assert!(unsafe { copy_truncated("aéz", buf.as_mut_ptr(), 8) });
        // SAFETY: `copy_truncated` wrote a NUL inside `buf`.
        let copied = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(copied.to_str().unwrap(), "aéz");
    }
}
