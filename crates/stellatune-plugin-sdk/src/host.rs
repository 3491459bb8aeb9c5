//! The host's callbacks, reachable from anywhere in the plugin once the entry ran.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use stellatune_plugin_api::{HostVTable, StStr};

/// The host vtable the last entry call received. NULL until then.
static HOST: AtomicPtr<HostVTable> = AtomicPtr::new(ptr::null_mut());

pub(crate) fn set_host(host: *const HostVTable) {
    HOST.store(host.cast_mut(), Ordering::Release);
}

/// The host vtable, once the entry ran. `'static` stands for "until the library unloads",
/// which outlives every caller inside the library.
pub(crate) fn raw() -> Option<&'static HostVTable> {
    let host = HOST.load(Ordering::Acquire);
    // SAFETY: `host` was handed to the entry, whose contract keeps it valid until the
    // library is unloaded; the SDK only ever reads through it.
    unsafe { host.as_ref() }
}

fn with_host(f: impl FnOnce(&HostVTable)) {
    if let Some(host) = raw() {
        f(host)
    }
}

/// Sends a log line to the host at `level` ([`crate::log_level`]). No-op before the entry.
pub fn log(level: u32, message: &str) {
    with_host(|h| (h.log)(h.ctx, level, StStr::borrowed(message)));
}

/// Emits a plugin event (`kind`, JSON payload) to every client of the host. No-op before
/// the entry.
pub fn emit_event(kind: &str, json: &str) {
    with_host(|h| (h.emit_event)(h.ctx, StStr::borrowed(kind), StStr::borrowed(json)));
}

/// Adds `delta` to the host's runtime metric `name` (a gauge is kept by adding +1 and -1).
/// No-op before the entry.
pub fn metric_add(name: &str, delta: i64) {
    with_host(|h| (h.metric_add)(h.ctx, StStr::borrowed(name), delta));
}

fn host_path(pick: impl FnOnce(&HostVTable) -> StStr) -> Option<std::path::PathBuf> {
    let mut out = None;
    with_host(|h| {
        // SAFETY: the host keeps the vtable's strings valid as long as the vtable.
        out = unsafe { pick(h).to_str() }
            .filter(|s| !s.is_empty())
            .map(std::path::PathBuf::from);
    });
    out
}

/// The runtime's data directory, where run-time files belong. `None` before the entry or if
/// the host gave none.
pub fn data_dir() -> Option<std::path::PathBuf> {
    host_path(|h| h.data_dir)
}

/// The directory this generation runs from: the host's private copy of the installed directory
/// (plugin.json, this library, and whatever ships beside it). Shipped programs are started
/// from here, so the installed files are never in use. Read-only. `None` before the entry.
pub fn plugin_dir() -> Option<std::path::PathBuf> {
    host_path(|h| h.plugin_dir)
}
