//! Simulated Dart isolates that receive their events on ports (`--events port`): a fake
//! `Dart_PostCObject` that delivers a string post to the live isolate that owns the port, and
//! returns `false` once that isolate has died, as Dart does for a closed port.

use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{LazyLock, Mutex, PoisonError};

/// The part of Dart's `Dart_CObject` a string post uses: the type, then the value union
/// (8-byte aligned). Only read here, never built.
#[repr(C)]
pub struct DartCObject {
    pub kind: i32,
    pub as_string: *const c_char,
}

/// `Dart_CObject_kString`.
pub const DART_COBJECT_KSTRING: i32 = 5;

/// The signature of `Dart_PostCObject`.
pub type PostCObject = unsafe extern "C" fn(port: i64, message: *mut DartCObject) -> bool;

/// The ports of the isolates alive now, with where their messages go.
static LIVE: LazyLock<Mutex<HashMap<i64, Sender<String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// Native ports are never reused, as in Dart.
static NEXT_PORT: AtomicI64 = AtomicI64::new(1);

/// A port that is always alive and drops what it gets (the hammer's listeners, which never
/// read). Negative: [`IsolatePort::open`] never hands it out.
pub const DISCARD_PORT: i64 = -1;

/// The receiving end of one isolate's port; dropping it kills the isolate, so the next post
/// to its port fails.
pub struct IsolatePort {
    pub port: i64,
    pub events: Receiver<String>,
}

impl IsolatePort {
    pub fn open() -> IsolatePort {
        let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let (tx, events) = channel();
        live().insert(port, tx);
        IsolatePort { port, events }
    }
}

impl Drop for IsolatePort {
    fn drop(&mut self) {
        live().remove(&self.port);
    }
}

fn live() -> std::sync::MutexGuard<'static, HashMap<i64, Sender<String>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The gate's `Dart_PostCObject`: copies a string message to the isolate of `port`; `false`
/// for a dead isolate, a message that is not a string, or a panic (which stays here).
///
/// # Safety
/// `message` must be NULL or point to a valid `Dart_CObject` whose string, if it is one, is
/// NUL-terminated (the runtime's posts are).
pub unsafe extern "C" fn fake_post_cobject(port: i64, message: *mut DartCObject) -> bool {
    std::panic::catch_unwind(|| {
        if message.is_null() {
            return false;
        }
        // SAFETY: not NULL, and the caller guarantees a valid `Dart_CObject`.
        let message = unsafe { &*message };
        if message.kind != DART_COBJECT_KSTRING || message.as_string.is_null() {
            return false;
        }
        // SAFETY: a kString's value is a NUL-terminated string, valid during the call.
        let text = unsafe { CStr::from_ptr(message.as_string) }
            .to_string_lossy()
            .into_owned();
        if port == DISCARD_PORT {
            return true;
        }
        match live().get(&port) {
            Some(isolate) => isolate.send(text).is_ok(),
            None => false,
        }
    })
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn post(port: i64, text: &str) -> bool {
        let text = CString::new(text).unwrap();
        let mut message = DartCObject {
            kind: DART_COBJECT_KSTRING,
            as_string: text.as_ptr(),
        };
        // SAFETY: a valid kString message.
        unsafe { fake_post_cobject(port, &mut message) }
    }

    #[test]
    fn a_post_reaches_a_live_isolate_and_fails_once_it_died() {
        let isolate = IsolatePort::open();
        let port = isolate.port;
        assert!(post(port, r#"{"type":"heartbeat"}"#));
        assert_eq!(isolate.events.recv().unwrap(), r#"{"type":"heartbeat"}"#);
        drop(isolate);
        assert!(!post(port, r#"{"type":"heartbeat"}"#));
        assert!(!post(0, "x"));
        assert!(post(DISCARD_PORT, "x"));
    }
}
