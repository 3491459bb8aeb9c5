//! Shared set-up for the runtime's integration tests: plugin directories made from this
//! build's cdylibs, and probes of the process resources a plugin load could leak.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stellatune_plugin_host::{NoticeSink, PluginRuntime};
use stellatune_test_support::artifacts;
use stellatune_test_support::mapped::mapping_lines_under;

pub use stellatune_test_support::artifacts::TEST_PLUGINS;

/// Installs the test plugins (`crates/stellatune-test-plugins`) under `plugins`.
pub fn install_test_plugins(plugins: &Path) -> PathBuf {
    artifacts::lay_out_test_plugins(&plugins.join(TEST_PLUGINS))
}

/// Installs the ASIO plugin and its sidecar under `plugins`.
pub fn install_asio(plugins: &Path) -> PathBuf {
    artifacts::lay_out_asio(&plugins.join("asio"))
}

pub fn no_notices() -> NoticeSink {
    Arc::new(|_| {})
}

pub fn start(plugins: &Path, data: &Path) -> PluginRuntime {
    PluginRuntime::start(plugins, data, no_notices()).unwrap()
}

/// What a plugin load could leave behind in the process. `None`: not measurable here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The index the next thread-local key gets: with the lowest free index handed out
    /// (glibc, and `TlsAlloc` on Windows), the number of keys in use.
    pub tls_keys: u64,
    pub threads: Option<u64>,
    /// Open file descriptors (handles on Windows).
    pub fds: Option<u64>,
    /// Mappings of files under the shadow directory.
    pub shadow_maps: Option<u64>,
    pub rss_kib: Option<u64>,
}

impl Probe {
    pub fn now(shadow_dir: &Path) -> Probe {
        Probe {
            tls_keys: next_tls_key(),
            threads: threads(),
            fds: fds(),
            shadow_maps: shadow_maps(shadow_dir),
            rss_kib: rss_kib(),
        }
    }
}

/// Creates a thread-local key, reads its index and deletes it again.
#[cfg(unix)]
pub fn next_tls_key() -> u64 {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; no destructor is registered.
    let rc = unsafe { libc::pthread_key_create(&mut key, None) };
    assert_eq!(rc, 0, "pthread_key_create failed (keys exhausted?)");
    // SAFETY: `key` was just created and is used by nobody.
    unsafe { libc::pthread_key_delete(key) };
    u64::from(key)
}

/// Takes a thread-local key and keeps it (see [`release_tls_key`]).
#[cfg(unix)]
pub fn take_tls_key() -> u64 {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; no destructor is registered.
    assert_eq!(unsafe { libc::pthread_key_create(&mut key, None) }, 0);
    u64::from(key)
}

#[cfg(unix)]
pub fn release_tls_key(key: u64) {
    // SAFETY: a key from `take_tls_key`, deleted once.
    unsafe { libc::pthread_key_delete(key as libc::pthread_key_t) };
}

#[cfg(windows)]
pub fn take_tls_key() -> u64 {
    use windows_sys::Win32::System::Threading::{TLS_OUT_OF_INDEXES, TlsAlloc};
    // SAFETY: plain index allocation.
    let index = unsafe { TlsAlloc() };
    assert_ne!(index, TLS_OUT_OF_INDEXES);
    u64::from(index)
}

#[cfg(windows)]
pub fn release_tls_key(key: u64) {
    use windows_sys::Win32::System::Threading::TlsFree;
    // SAFETY: an index from `take_tls_key`, freed once.
    unsafe { TlsFree(key as u32) };
}

/// Allocates a TLS index, reads it and frees it again.
#[cfg(windows)]
pub fn next_tls_key() -> u64 {
    use windows_sys::Win32::System::Threading::{TLS_OUT_OF_INDEXES, TlsAlloc, TlsFree};
    // SAFETY: plain index allocation, freed at once.
    let index = unsafe { TlsAlloc() };
    assert_ne!(
        index, TLS_OUT_OF_INDEXES,
        "TlsAlloc failed (indexes exhausted?)"
    );
    // SAFETY: `index` was just allocated and is used by nobody.
    unsafe { TlsFree(index) };
    u64::from(index)
}

fn threads() -> Option<u64> {
    stellatune_probe::threads()
}

/// File descriptors on Linux, handles on Windows.
fn fds() -> Option<u64> {
    stellatune_probe::handles()
}

fn rss_kib() -> Option<u64> {
    stellatune_probe::rss_kib()
}

/// Mapping lines of shadow copies: more than the distinct files, so a leaked second mapping
/// of one file shows too (Windows: loaded modules).
fn shadow_maps(shadow_dir: &Path) -> Option<u64> {
    mapping_lines_under(shadow_dir)
}

/// Reads a count from the environment, or `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}
