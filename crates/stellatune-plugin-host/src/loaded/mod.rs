//! Whether a library file is still loaded in this process, asked the way each OS can answer.

#[cfg(not(windows))]
mod unix;
#[cfg(not(windows))]
pub use unix::is_mapped;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::is_mapped;
