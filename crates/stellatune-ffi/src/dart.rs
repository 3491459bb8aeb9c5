//! Events pushed to Dart ports: the `Dart_PostCObject` function the app hands over
//! (`NativeApi.postCObject`), and the [`EventPort`] that posts a client's events to its
//! `SendPort`'s native port as `Dart_CObject` strings (kString) of the event JSON.
//!
//! The `Dart_CObject` layout and the call itself are `allo-isolate`'s, the crate
//! flutter_rust_bridge posts with. Posting happens on the runtime's event pump thread.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use allo_isolate::ffi::DartPostCObjectFnType;
use stellatune_runtime_host::{EventPort, HostEvent};

use crate::support::{FfiError, FfiResult};
use crate::wire;

/// Whether a post function was handed over: a port is refused before that.
static POST_COBJECT_SET: AtomicBool = AtomicBool::new(false);

/// Stores the post function for every later post, replacing an earlier one.
///
/// # Safety
/// `post_cobject` must be NULL or a function with the signature of `Dart_PostCObject`
/// (`bool (*)(int64_t port, Dart_CObject *message)`) that stays callable from any thread for
/// as long as the library is loaded.
pub(crate) unsafe fn set_post_cobject(post_cobject: *mut c_void) -> FfiResult {
    if post_cobject.is_null() {
        return Err(FfiError::invalid(format_args!("`post_cobject` is NULL")));
    }
    // SAFETY: not NULL (checked above); the caller guarantees it is a function of
    // `Dart_PostCObject`'s signature, which is `DartPostCObjectFnType`, and a data pointer
    // and a function pointer have the same size on every target this library builds for.
    let post = unsafe { std::mem::transmute::<*mut c_void, DartPostCObjectFnType>(post_cobject) };
    // SAFETY: `post` is such a function (above); allo-isolate only stores it, atomically,
    // for its posts, which are made on the event pump thread.
    unsafe { allo_isolate::store_dart_post_cobject(post) };
    POST_COBJECT_SET.store(true, Ordering::SeqCst);
    Ok(())
}

/// A client's events, posted to a Dart `SendPort`'s native port.
pub(crate) struct DartPort(i64);

impl DartPort {
    /// A port for `native_port` (not 0), once a post function is set.
    pub(crate) fn new(native_port: i64) -> FfiResult<Self> {
        if native_port == 0 {
            return Err(FfiError::invalid(format_args!(
                "`port` 0 is no port (0 switches the client back to polling)"
            )));
        }
        if !POST_COBJECT_SET.load(Ordering::SeqCst) {
            return Err(FfiError::invalid(format_args!(
                "no post function: call stellatune_dart_set_post_cobject first"
            )));
        }
        Ok(Self(native_port))
    }
}

impl EventPort for DartPort {
    fn post(&self, event: &HostEvent) -> bool {
        let json = wire::Event::from(event).to_json();
        // A `Dart_CObject` of type kString; Dart copies the string during the call, and
        // allo-isolate frees it afterwards. `false`: the port is closed (its isolate died).
        allo_isolate::Isolate::new(self.0).post(json)
    }
}
