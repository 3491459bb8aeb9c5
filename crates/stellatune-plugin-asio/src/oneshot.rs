//! The mutex-and-condvar handoffs plugin code uses instead of channels (which register
//! thread-local destructors); they live in the SDK's `rt` so every plugin has them.

pub use stellatune_plugin_sdk::rt::{OneShot, Queue, WaitError};
