//! The ASIO output plugin. It owns an out-of-process sidecar (`stellatune-sidecar-host`),
//! shared between its sinks through plugin-local leases and fed through shared-memory ring
//! files; the sidecar stops when the last lease goes. The host knows nothing of it beyond
//! the generic plugin ABI: its counters (`asio_sidecar_spawns_total`,
//! `asio_sidecar_running`, `ring_files`) reach the runtime through the metrics callback.

mod containment;
mod manager;
mod oneshot;
mod sidecar;
mod sink;
mod spawner;

stellatune_plugin_sdk::export_plugin! {
    id: "asio",
    version: "0.1.0",
    sinks: [sink::AsioSinkType],
    shutdown: shutdown,
}

/// Before the library unloads: stop every sidecar, then the thread that spawns them.
fn shutdown() {
    manager::shutdown_all();
    spawner::stop();
    sink::release_statics();
}
