//! Ties a sidecar's life to this process, so that no sidecar outlives its host whatever way
//! the host ends (a crash or a kill included).
//!
//! - Linux: the sidecar asks for a parent-death signal itself (`PR_SET_PDEATHSIG`), and
//!   exits when its stdin closes; nothing to do on this side.
//! - Windows: the sidecar is started suspended, put in a Job Object that kills its processes
//!   when its last handle closes (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`), and only then resumed,
//!   so it runs no code outside the job. The handle is this process's alone: when the process
//!   ends, however it ends, the kernel closes it and the sidecar dies with it.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{Containment, prepare};

#[cfg(not(windows))]
mod unix;
#[cfg(not(windows))]
pub use unix::{Containment, prepare};
