//! Events pushed to ports instead of queued for polling: what a port is, and the timing of
//! the event pump (the thread itself is in `sessions.rs`, next to the lease supervisor).
//!
//! A client with a port gets every event it would have polled, in order, posted by one
//! runtime thread, the event pump, which holds no lock while it posts. A post that fails
//! means the receiver is gone for good (a Dart isolate that died in a hot restart): the
//! client is evicted at once with [`PORT_CLOSED`]. A port that got nothing for
//! [`HEARTBEAT_AFTER`] gets a [`HostNotice::Heartbeat`](crate::HostNotice::Heartbeat), so a
//! dead receiver is found even when nothing plays; and every successful post renews the
//! client's lease, so a listener that never calls in is not evicted.

use std::time::Duration;

use crate::events::HostEvent;

/// Where a client's events go when it does not poll. Implemented by the C ABI for Dart
/// ports; tests implement it to watch the posts.
pub trait EventPort: Send + Sync {
    /// Posts one event. `false` means the receiver is gone for good: the client is evicted.
    /// Called on the event pump's thread with no lock of the runtime held; it must not call
    /// back into the runtime host.
    fn post(&self, event: &HostEvent) -> bool;
}

/// A port that got nothing for this long gets a heartbeat: a dead receiver is found within
/// about this time (plus the post itself) even when no event is sent.
pub const HEARTBEAT_AFTER: Duration = Duration::from_millis(250);

/// The reason an eviction by a failed post gives.
pub const PORT_CLOSED: &str = "event port closed";
