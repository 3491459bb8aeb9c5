//! The C ABI of `libstellatune_ffi`, resolved by symbol name from a library loaded once with
//! `libloading` (the way a Flutter host's `DynamicLibrary.open` + `lookupFunction` does), and
//! a watchdog that runs every call on a worker thread with a time bound.

use std::ffi::{CStr, CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ABI_VERSION: u32 = 1;

// The status codes of `stellatune.h`, in the header's order.
pub const OK: i32 = 0;
pub const ERR_INVALID_ARGUMENT: i32 = -1;
pub const ERR_NOT_INITIALIZED: i32 = -2;
pub const ERR_SHUTTING_DOWN: i32 = -3;
pub const ERR_UNKNOWN_CLIENT: i32 = -4;
pub const ERR_CLIENT_DISPOSED: i32 = -5;
pub const ERR_CLIENT_EVICTED: i32 = -6;
pub const ERR_BUFFER_TOO_SMALL: i32 = -7;
pub const ERR_TIMEOUT: i32 = -8;
pub const ERR_NOT_FOUND: i32 = -9;
pub const ERR_UNSUPPORTED: i32 = -10;
pub const ERR_DECODE: i32 = -11;
pub const ERR_NO_ROUTE: i32 = -12;
pub const ERR_NOTHING_PLAYING: i32 = -13;
pub const ERR_IO: i32 = -14;
pub const ERR_SINK: i32 = -15;
pub const ERR_INTERNAL: i32 = -16;
pub const ERR_UNKNOWN_PLUGIN: i32 = -17;
pub const ERR_PLUGIN_ABI: i32 = -18;
pub const ERR_PLUGIN: i32 = -19;

/// Every code the header defines, with the name `stellatune_error_name` must return for it.
pub const DOCUMENTED_CODES: [(i32, &str); 20] = [
    (OK, "STELLATUNE_OK"),
    (ERR_INVALID_ARGUMENT, "STELLATUNE_ERR_INVALID_ARGUMENT"),
    (ERR_NOT_INITIALIZED, "STELLATUNE_ERR_NOT_INITIALIZED"),
    (ERR_SHUTTING_DOWN, "STELLATUNE_ERR_SHUTTING_DOWN"),
    (ERR_UNKNOWN_CLIENT, "STELLATUNE_ERR_UNKNOWN_CLIENT"),
    (ERR_CLIENT_DISPOSED, "STELLATUNE_ERR_CLIENT_DISPOSED"),
    (ERR_CLIENT_EVICTED, "STELLATUNE_ERR_CLIENT_EVICTED"),
    (ERR_BUFFER_TOO_SMALL, "STELLATUNE_ERR_BUFFER_TOO_SMALL"),
    (ERR_TIMEOUT, "STELLATUNE_ERR_TIMEOUT"),
    (ERR_NOT_FOUND, "STELLATUNE_ERR_NOT_FOUND"),
    (ERR_UNSUPPORTED, "STELLATUNE_ERR_UNSUPPORTED"),
    (ERR_DECODE, "STELLATUNE_ERR_DECODE"),
    (ERR_NO_ROUTE, "STELLATUNE_ERR_NO_ROUTE"),
    (ERR_NOTHING_PLAYING, "STELLATUNE_ERR_NOTHING_PLAYING"),
    (ERR_IO, "STELLATUNE_ERR_IO"),
    (ERR_SINK, "STELLATUNE_ERR_SINK"),
    (ERR_INTERNAL, "STELLATUNE_ERR_INTERNAL"),
    (ERR_UNKNOWN_PLUGIN, "STELLATUNE_ERR_UNKNOWN_PLUGIN"),
    (ERR_PLUGIN_ABI, "STELLATUNE_ERR_PLUGIN_ABI"),
    (ERR_PLUGIN, "STELLATUNE_ERR_PLUGIN"),
];

/// The header's name of `code`, or `None` for a code the header does not define.
pub fn documented_name(code: i32) -> Option<&'static str> {
    DOCUMENTED_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

type Status = i32;

/// Every exported function of `stellatune.h`, resolved by name. Resolving all of them (not
/// only those the gate calls) checks that the cdylib exports the whole ABI.
pub struct Api {
    pub path: PathBuf,
    pub abi_version: unsafe extern "C" fn() -> u32,
    pub error_name: unsafe extern "C" fn(i32) -> *const c_char,
    pub last_error: unsafe extern "C" fn(*mut c_char, usize) -> Status,
    pub runtime_init: unsafe extern "C" fn(*const c_char) -> Status,
    pub runtime_prepare_hot_restart: unsafe extern "C" fn() -> Status,
    pub runtime_shutdown: unsafe extern "C" fn() -> Status,
    pub player_create_client: unsafe extern "C" fn(*mut u64) -> Status,
    pub player_dispose_client: unsafe extern "C" fn(u64) -> Status,
    pub player_play: unsafe extern "C" fn(u64, *const c_char) -> Status,
    pub player_queue_next: unsafe extern "C" fn(u64, *const c_char) -> Status,
    pub player_pause: unsafe extern "C" fn(u64) -> Status,
    pub player_resume: unsafe extern "C" fn(u64) -> Status,
    pub player_stop: unsafe extern "C" fn(u64) -> Status,
    pub player_seek_ms: unsafe extern "C" fn(u64, u64) -> Status,
    pub player_set_volume: unsafe extern "C" fn(u64, f32) -> Status,
    pub output_route_apply: unsafe extern "C" fn(u64, *const c_char) -> Status,
    pub output_route_clear: unsafe extern "C" fn(u64) -> Status,
    pub player_set_dsp_chain: unsafe extern "C" fn(u64, *const c_char) -> Status,
    pub player_poll_event: unsafe extern "C" fn(u64, u32, *mut c_char, usize, *mut usize) -> Status,
    pub player_status_json: unsafe extern "C" fn(u64, *mut c_char, usize, *mut usize) -> Status,
    pub plugins_install: unsafe extern "C" fn(*const c_char, *mut c_char, usize) -> Status,
    pub plugins_uninstall: unsafe extern "C" fn(*const c_char) -> Status,
    pub plugins_reload: unsafe extern "C" fn() -> Status,
    pub plugins_list_json: unsafe extern "C" fn(*mut c_char, usize, *mut usize) -> Status,
    pub runtime_metrics_json: unsafe extern "C" fn(*mut c_char, usize, *mut usize) -> Status,
    pub dart_set_post_cobject: unsafe extern "C" fn(*mut c_void) -> Status,
    pub player_set_event_port: unsafe extern "C" fn(u64, i64) -> Status,
    pub player_set_replaygain: unsafe extern "C" fn(u64, *const c_char) -> Status,
    pub output_devices_json: unsafe extern "C" fn(*mut c_char, usize, *mut usize) -> Status,
    /// Kept for the life of the process: a Flutter host never unloads the library either,
    /// and the runtime's threads run its code.
    _library: libloading::Library,
}

/// A call returned a negative status; `message` is the last error read on the same thread.
#[derive(Debug, Clone)]
pub struct FfiError {
    pub call: &'static str,
    pub code: i32,
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for FfiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} returned {} ({}): {}",
            self.call, self.name, self.code, self.message
        )
    }
}

pub type FfiResult<T> = Result<T, FfiError>;

impl Api {
    /// Loads the library at `path` (by explicit path: no search through LD_LIBRARY_PATH) and
    /// resolves every function.
    pub fn load(path: &Path) -> Result<Api, String> {
        // SAFETY: loading the runtime's cdylib runs no initialisers with preconditions.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        macro_rules! sym {
            ($name:literal) => {{
                // SAFETY: the type matches the declaration in stellatune.h.
                let symbol = unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{}: missing symbol {}: {e}", path.display(), $name))?;
                *symbol
            }};
        }
        Ok(Api {
            path: path.to_path_buf(),
            abi_version: sym!("stellatune_abi_version"),
            error_name: sym!("stellatune_error_name"),
            last_error: sym!("stellatune_last_error"),
            runtime_init: sym!("stellatune_runtime_init"),
            runtime_prepare_hot_restart: sym!("stellatune_runtime_prepare_hot_restart"),
            runtime_shutdown: sym!("stellatune_runtime_shutdown"),
            player_create_client: sym!("stellatune_player_create_client"),
            player_dispose_client: sym!("stellatune_player_dispose_client"),
            player_play: sym!("stellatune_player_play"),
            player_queue_next: sym!("stellatune_player_queue_next"),
            player_pause: sym!("stellatune_player_pause"),
            player_resume: sym!("stellatune_player_resume"),
            player_stop: sym!("stellatune_player_stop"),
            player_seek_ms: sym!("stellatune_player_seek_ms"),
            player_set_volume: sym!("stellatune_player_set_volume"),
            output_route_apply: sym!("stellatune_output_route_apply"),
            output_route_clear: sym!("stellatune_output_route_clear"),
            player_set_dsp_chain: sym!("stellatune_player_set_dsp_chain"),
            player_poll_event: sym!("stellatune_player_poll_event"),
            player_status_json: sym!("stellatune_player_status_json"),
            plugins_install: sym!("stellatune_plugins_install"),
            plugins_uninstall: sym!("stellatune_plugins_uninstall"),
            plugins_reload: sym!("stellatune_plugins_reload"),
            plugins_list_json: sym!("stellatune_plugins_list_json"),
            runtime_metrics_json: sym!("stellatune_runtime_metrics_json"),
            dart_set_post_cobject: sym!("stellatune_dart_set_post_cobject"),
            player_set_event_port: sym!("stellatune_player_set_event_port"),
            player_set_replaygain: sym!("stellatune_player_set_replaygain"),
            output_devices_json: sym!("stellatune_output_devices_json"),
            _library: library,
        })
    }

    pub fn abi(&self) -> u32 {
        // SAFETY: no arguments, never fails.
        unsafe { (self.abi_version)() }
    }

    pub fn code_name(&self, code: i32) -> String {
        // SAFETY: returns a static NUL-terminated string for every code.
        let name = unsafe { (self.error_name)(code) };
        if name.is_null() {
            return format!("code {code}");
        }
        // SAFETY: non-NULL, static and NUL-terminated.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }

    /// The last error stored on the calling thread.
    pub fn last_error_message(&self) -> String {
        let mut buf = vec![0 as c_char; 2048];
        // SAFETY: `buf` is valid for its length.
        unsafe { (self.last_error)(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: last_error NUL-terminates whatever it writes; the buffer starts zeroed.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Turns a status into a result, reading the last error on this (the calling) thread.
    fn check(&self, call: &'static str, code: i32) -> FfiResult<()> {
        if code == OK {
            return Ok(());
        }
        let message = self.last_error_message();
        Err(FfiError {
            call,
            code,
            name: self.code_name(code),
            message,
        })
    }

    /// Calls a `(buf, cap, out_len)` function, growing the buffer on BUFFER_TOO_SMALL.
    fn text(
        &self,
        call: &'static str,
        mut f: impl FnMut(*mut c_char, usize, *mut usize) -> Status,
    ) -> FfiResult<String> {
        let mut cap = 4096usize;
        for _ in 0..4 {
            let mut buf = vec![0 as c_char; cap];
            let mut len = 0usize;
            let code = f(buf.as_mut_ptr(), buf.len(), &mut len);
            if code == ERR_BUFFER_TOO_SMALL && len > cap {
                cap = len;
                continue;
            }
            self.check(call, code)?;
            let bytes: Vec<u8> = buf[..len.min(cap)].iter().map(|&c| c as u8).collect();
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        self.check(call, ERR_BUFFER_TOO_SMALL)
            .map(|_| String::new())
    }

    pub fn init(&self, config_json: &str) -> FfiResult<()> {
        let config = cstring(config_json);
        // SAFETY: a NUL-terminated string.
        self.check("stellatune_runtime_init", unsafe {
            (self.runtime_init)(config.as_ptr())
        })
    }

    pub fn prepare_hot_restart(&self) -> FfiResult<()> {
        // SAFETY: no arguments.
        self.check("stellatune_runtime_prepare_hot_restart", unsafe {
            (self.runtime_prepare_hot_restart)()
        })
    }

    pub fn shutdown(&self) -> FfiResult<()> {
        // SAFETY: no arguments.
        self.check("stellatune_runtime_shutdown", unsafe {
            (self.runtime_shutdown)()
        })
    }

    pub fn create_client(&self) -> FfiResult<u64> {
        let mut id = 0u64;
        // SAFETY: `id` is a valid u64 to write.
        self.check("stellatune_player_create_client", unsafe {
            (self.player_create_client)(&mut id)
        })?;
        Ok(id)
    }

    pub fn route_apply(&self, client: u64, route_json: &str) -> FfiResult<()> {
        let route = cstring(route_json);
        // SAFETY: a NUL-terminated string.
        self.check("stellatune_output_route_apply", unsafe {
            (self.output_route_apply)(client, route.as_ptr())
        })
    }

    pub fn play(&self, client: u64, path: &Path) -> FfiResult<()> {
        let path = cstring(&path.to_string_lossy());
        // SAFETY: a NUL-terminated string.
        self.check("stellatune_player_play", unsafe {
            (self.player_play)(client, path.as_ptr())
        })
    }

    pub fn pause(&self, client: u64) -> FfiResult<()> {
        // SAFETY: plain values.
        self.check("stellatune_player_pause", unsafe {
            (self.player_pause)(client)
        })
    }

    pub fn resume(&self, client: u64) -> FfiResult<()> {
        // SAFETY: plain values.
        self.check("stellatune_player_resume", unsafe {
            (self.player_resume)(client)
        })
    }

    pub fn seek_ms(&self, client: u64, position_ms: u64) -> FfiResult<()> {
        // SAFETY: plain values.
        self.check("stellatune_player_seek_ms", unsafe {
            (self.player_seek_ms)(client, position_ms)
        })
    }

    /// Hands the runtime the function its event ports post through (Dart's
    /// `NativeApi.postCObject`; here the gate's fake, [`crate::ports::fake_post_cobject`]).
    pub fn set_post_cobject(&self, post: crate::ports::PostCObject) -> FfiResult<()> {
        // SAFETY: `post` has the signature of `Dart_PostCObject` and lives as long as the
        // process; passing it as a data pointer is how Dart hands over its address.
        self.check("stellatune_dart_set_post_cobject", unsafe {
            (self.dart_set_post_cobject)(post as *mut c_void)
        })
    }

    /// Sends the client's events to `port` (0: back to polling).
    pub fn set_event_port(&self, client: u64, port: i64) -> FfiResult<()> {
        // SAFETY: plain values.
        self.check("stellatune_player_set_event_port", unsafe {
            (self.player_set_event_port)(client, port)
        })
    }

    /// The next event, or `None` when none came within `timeout_ms`.
    pub fn poll_event(&self, client: u64, timeout_ms: u32) -> FfiResult<Option<String>> {
        let event = self.text("stellatune_player_poll_event", |buf, cap, len| {
            // SAFETY: `buf` is valid for `cap` bytes and `len` for one usize.
            unsafe { (self.player_poll_event)(client, timeout_ms, buf, cap, len) }
        })?;
        Ok((!event.is_empty()).then_some(event))
    }

    pub fn plugins_install(&self, artifact: &Path) -> FfiResult<String> {
        let artifact = cstring(&artifact.to_string_lossy());
        let mut id = vec![0 as c_char; 512];
        // SAFETY: NUL-terminated path; `id` valid for its length.
        self.check("stellatune_plugins_install", unsafe {
            (self.plugins_install)(artifact.as_ptr(), id.as_mut_ptr(), id.len())
        })?;
        // SAFETY: NUL-terminated on success.
        Ok(unsafe { CStr::from_ptr(id.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    pub fn plugins_uninstall(&self, plugin_id: &str) -> FfiResult<()> {
        let id = cstring(plugin_id);
        // SAFETY: a NUL-terminated string.
        self.check("stellatune_plugins_uninstall", unsafe {
            (self.plugins_uninstall)(id.as_ptr())
        })
    }

    pub fn stop(&self, client: u64) -> FfiResult<()> {
        // SAFETY: plain values.
        self.check("stellatune_player_stop", unsafe {
            (self.player_stop)(client)
        })
    }

    pub fn route_clear(&self, client: u64) -> FfiResult<()> {
        // SAFETY: plain values.
        self.check("stellatune_output_route_clear", unsafe {
            (self.output_route_clear)(client)
        })
    }

    pub fn plugins_reload(&self) -> FfiResult<()> {
        // SAFETY: no arguments.
        self.check("stellatune_plugins_reload", unsafe {
            (self.plugins_reload)()
        })
    }

    pub fn metrics_json(&self) -> FfiResult<String> {
        self.text("stellatune_runtime_metrics_json", |buf, cap, len| {
            // SAFETY: `buf` is valid for `cap` bytes and `len` for one usize.
            unsafe { (self.runtime_metrics_json)(buf, cap, len) }
        })
    }
}

fn cstring(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("NULs removed")
}

/// Why a watched call did not give a result.
#[derive(Debug, Clone)]
pub enum CallError {
    Ffi(FfiError),
    /// The call did not return within the bound (or its worker died): a lost connection.
    Lost {
        call: &'static str,
        after: Duration,
        reason: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Ffi(e) => e.fmt(f),
            CallError::Lost {
                call,
                after,
                reason,
            } => write!(
                f,
                "lost connection: {call} {reason} after {} ms",
                after.as_millis()
            ),
        }
    }
}

impl From<FfiError> for CallError {
    fn from(e: FfiError) -> Self {
        CallError::Ffi(e)
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs FFI calls on one long-lived worker thread and waits at most `timeout` for each. A
/// call that overruns is counted as a lost connection and its worker is abandoned (it may be
/// stuck inside the runtime); the next call gets a fresh worker. One persistent worker keeps
/// the gate's own thread count flat, so it does not disturb the thread samples.
pub struct Watchdog {
    api: Arc<Api>,
    timeout: Duration,
    jobs: mpsc::Sender<Job>,
    workers_started: u64,
    pub lost_connections: u64,
    pub last_lost: Option<String>,
}

impl Watchdog {
    pub fn new(api: Arc<Api>, timeout: Duration) -> Watchdog {
        let jobs = spawn_worker(1);
        Watchdog {
            api,
            timeout,
            jobs,
            workers_started: 1,
            lost_connections: 0,
            last_lost: None,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn call<R: Send + 'static>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&Api) -> FfiResult<R> + Send + 'static,
    ) -> Result<R, CallError> {
        self.call_with_timeout(name, self.timeout, f)
    }

    /// As [`Watchdog::call`] with another bound (the final shutdown joins threads and may
    /// legitimately take longer than a command).
    pub fn call_with_timeout<R: Send + 'static>(
        &mut self,
        name: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Api) -> FfiResult<R> + Send + 'static,
    ) -> Result<R, CallError> {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let api = self.api.clone();
        let job: Job = Box::new(move || {
            let result = f(&api);
            let _ = done_tx.send(result);
        });
        let started = Instant::now();
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            // The worker is gone (it panicked): start another and hand it the job.
            self.replace_worker();
            let _ = self.jobs.send(job);
        }
        match done_rx.recv_timeout(timeout) {
            Ok(result) => result.map_err(CallError::Ffi),
            Err(e) => {
                let reason = match e {
                    mpsc::RecvTimeoutError::Timeout => "did not return",
                    mpsc::RecvTimeoutError::Disconnected => "died (worker panicked)",
                };
                self.lost_connections += 1;
                self.replace_worker();
                let error = CallError::Lost {
                    call: name,
                    after: started.elapsed(),
                    reason: reason.to_owned(),
                };
                self.last_lost = Some(error.to_string());
                Err(error)
            }
        }
    }

    fn replace_worker(&mut self) {
        self.workers_started += 1;
        self.jobs = spawn_worker(self.workers_started);
    }
}

fn spawn_worker(n: u64) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(format!("ffi-call-{n}"))
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
        })
        .expect("spawn the FFI worker thread");
    tx
}
