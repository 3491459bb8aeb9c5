//! A fake plugin host: the [`HostVTable`] a host hands a plugin's entry point, with callbacks
//! that record what the plugin sends (log lines, events, metrics) and lend real threads, so a
//! test can drive a plugin through the raw ABI (in-process, or a cdylib loaded with
//! `libloading`) and then assert on what reached the host.
//!
//! The records are process-wide, as a host's are: tests that read them filter by what they
//! sent (a metric name, an event kind), or serialise themselves.

use std::ffi::{CStr, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use stellatune_plugin_api::{
    ABI_MAJOR, ABI_MINOR, HostVTable, ModuleTable, StStatus, StStr, ThreadEntryFn, status,
};

/// The thread name a plugin can ask for to have the host refuse to lend a thread (the
/// `spawn_thread` callback returns `status::IO`).
pub const REFUSED_THREAD: &str = "refused";

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static EVENTS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static METRICS: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
/// Threads this host lent and nobody joined yet, by handle.
static LENT: Mutex<Vec<(u64, JoinHandle<()>)>> = Mutex::new(Vec::new());
static NEXT_LENT: AtomicU64 = AtomicU64::new(1);
/// Names the plugin gave every thread it was lent.
static LENT_NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Locks `m` even after a test thread panicked while holding it: one failed test must not
/// fail every later one that reads the records.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A borrowed ABI string as an owned one (`<bad utf8>` if it is not UTF-8).
pub fn st_string(s: StStr) -> String {
    // SAFETY: the plugin lends `s` for the duration of the callback we are in, or it points
    // into the loaded library's (or this binary's) static data.
    unsafe { s.to_str() }.unwrap_or("<bad utf8>").to_owned()
}

/// A status a module returned: its code and message. The message is handed back through the
/// module's `free_string`, as a host must, so a test also checks the module frees its own.
pub fn take_status(module: &ModuleTable, st: StStatus) -> (i32, String) {
    let message = if st.message.is_null() {
        String::new()
    } else {
        // SAFETY: a non-NULL message is a NUL-terminated string the module owns until it is
        // handed back below.
        let s = unsafe { CStr::from_ptr(st.message) }
            .to_string_lossy()
            .into_owned();
        (module.free_string)(st.message);
        s
    };
    (st.code, message)
}

/// Asserts that a status a module returned is `OK` (naming its message otherwise).
#[track_caller]
pub fn expect_ok(module: &ModuleTable, st: StStatus) {
    let (code, message) = take_status(module, st);
    assert_eq!(code, status::OK, "unexpected failure: {message}");
}

/// Every log line so far, as `<level>:<message>`.
pub fn logs() -> Vec<String> {
    lock(&LOG).clone()
}

/// Every event so far, as (kind, JSON).
pub fn events() -> Vec<(String, String)> {
    lock(&EVENTS).clone()
}

/// The sum of the deltas reported for metric `name` so far.
pub fn metric_sum(name: &str) -> i64 {
    lock(&METRICS)
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| d)
        .sum()
}

/// How many lent threads have not been joined yet.
pub fn lent_threads() -> usize {
    lock(&LENT).len()
}

/// The OS thread names of the lent threads not joined yet (the names the plugin asked for).
pub fn unjoined_thread_names() -> Vec<Option<String>> {
    lock(&LENT)
        .iter()
        .map(|(_, h)| h.thread().name().map(str::to_owned))
        .collect()
}

/// The names the plugin asked for, of every thread it was lent (joined or not).
pub fn lent_names() -> Vec<String> {
    lock(&LENT_NAMES).clone()
}

extern "C" fn host_log(_ctx: *mut c_void, level: u32, message: StStr) {
    lock(&LOG).push(format!("{level}:{}", st_string(message)));
}

extern "C" fn host_emit_event(_ctx: *mut c_void, kind: StStr, json: StStr) {
    lock(&EVENTS).push((st_string(kind), st_string(json)));
}

extern "C" fn host_metric_add(_ctx: *mut c_void, name: StStr, delta: i64) {
    lock(&METRICS).push((st_string(name), delta));
}

struct SendArg(*mut c_void);
// SAFETY: the plugin hands the argument to exactly one thread, which takes it over.
unsafe impl Send for SendArg {}
impl SendArg {
    fn get(self) -> *mut c_void {
        self.0
    }
}

extern "C" fn host_spawn_thread(
    _ctx: *mut c_void,
    name: StStr,
    entry: ThreadEntryFn,
    arg: *mut c_void,
    out_thread: *mut u64,
) -> i32 {
    let name = st_string(name);
    if name == REFUSED_THREAD {
        return status::IO;
    }
    lock(&LENT_NAMES).push(name.clone());
    let arg = SendArg(arg);
    let Ok(handle) = std::thread::Builder::new()
        .name(name)
        .spawn(move || entry(arg.get()))
    else {
        return status::IO;
    };
    let id = NEXT_LENT.fetch_add(1, Ordering::SeqCst);
    lock(&LENT).push((id, handle));
    // SAFETY: the plugin passes a valid out-parameter.
    unsafe { out_thread.write(id) };
    status::OK
}

extern "C" fn host_join_thread(_ctx: *mut c_void, thread: u64) -> i32 {
    let found = {
        let mut lent = lock(&LENT);
        let at = lent.iter().position(|(id, _)| *id == thread);
        at.map(|i| lent.remove(i).1)
    };
    match found.map(JoinHandle::join) {
        Some(Ok(())) => status::OK,
        Some(Err(_)) => status::PANICKED,
        None => status::INVALID_ARGUMENT,
    }
}

/// A host of this build's ABI version.
pub fn host() -> &'static HostVTable {
    host_with(ABI_MAJOR, ABI_MINOR)
}

/// A host that states ABI version `abi_major.abi_minor`. Leaked: valid for the rest of the
/// process, so for as long as any plugin (or library copy) may hold it.
pub fn host_with(abi_major: u32, abi_minor: u32) -> &'static HostVTable {
    Box::leak(Box::new(HostVTable {
        abi_major,
        abi_minor,
        ctx: ptr::null_mut(),
        log: host_log,
        emit_event: host_emit_event,
        metric_add: host_metric_add,
        data_dir: StStr::EMPTY,
        plugin_dir: StStr::EMPTY,
        spawn_thread: host_spawn_thread,
        join_thread: host_join_thread,
    }))
}
