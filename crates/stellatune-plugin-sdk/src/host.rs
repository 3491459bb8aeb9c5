//! The host's callbacks, reachable from anywhere in the plugin once the entry ran.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use stellatune_plugin_api::{HostVTable, StStr};

/// The host vtable the last entry call received. NULL until then.
static HOST: AtomicPtr<HostVTable> = AtomicPtr::new(ptr::null_mut());

pub(crate) fn set_host(host: *const HostVTable) {
    HOST.store(host.cast_mut(), Ordering::Release);
}

fn with_host(f: impl FnOnce(&HostVTable)) {
    let host = HOST.load(Ordering::Acquire);
    if host.is_null() {
        return;
    }
    // SAFETY: `host` was handed to the entry, whose contract keeps it valid until the
    // library is unloaded; the SDK only ever reads through it.
    f(unsafe { &*host })
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
