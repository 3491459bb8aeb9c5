//! The ASIO output plugin. It owns an out-of-process sidecar (`stellatune-sidecar-host`),
//! shared between its sinks through plugin-local leases and fed through shared-memory ring
//! files; the sidecar stops when the last lease goes. The host knows nothing of it beyond
//! the generic plugin ABI: its counters (`asio_sidecar_spawns_total`,
//! `asio_sidecar_running`, `ring_files`) reach the runtime through the metrics callback.
//!
//! - `config`: the sink's config, and the signature of the sidecar it leases;
//! - `manager`: the leases, one sidecar per signature;
//! - `sidecar`: the sidecar client of `stellatune-sidecar-proto`, embedded through the
//!   SDK's `rt` (processes, threads) and the host's callbacks (logs, counters, events);
//! - `sink`: the output sink, a ring stream on a leased sidecar.

mod config;
mod manager;
mod sidecar;
mod sink;
mod targets;

stellatune_plugin_sdk::export_plugin! {
    id: "asio",
    version: "0.1.0",
    sinks: [sink::AsioSinkType],
    shutdown: shutdown,
}

/// Before the library unloads: stop every sidecar and free the statics. The shutdown
/// `export_plugin!` generates then stops the SDK's service thread that spawned them.
fn shutdown() {
    manager::shutdown_all();
    sink::release_statics();
}
