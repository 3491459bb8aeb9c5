//! Lifecycle costs of the host: warm init, attach + dispose, hot-restart rollover, init +
//! shutdown; with the packaged ASIO plugin also shutdown with a sidecar playing, and play
//! latency through the sidecar.
//!
//! `cargo bench -p stellatune-runtime-host --bench lifecycle`

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use divan::Bencher;
use stellatune_runtime_host::{
    BuiltinRoute, EngineEvent, HostConfig, HostEvent, OutputRoute, PluginRoute, RuntimeHost,
};
use stellatune_test_support::artifacts;
use stellatune_test_support::tone::write_tone;

fn main() {
    divan::main();
}

fn running_host() -> RuntimeHost {
    let host = RuntimeHost::new("bench");
    host.init(HostConfig {
        data_dir: Some(std::env::temp_dir().join("stellatune-bench")),
        log_filter: Some("error".into()),
        ..HostConfig::default()
    })
    .expect("init");
    host
}

#[divan::bench]
fn attach_then_dispose(bencher: divan::Bencher) {
    let host = running_host();
    bencher.bench_local(|| {
        let c = host.attach_client().expect("attach");
        host.detach_client(c.id).expect("detach");
    });
    host.shutdown().expect("shutdown");
}

#[divan::bench]
fn init_when_running(bencher: divan::Bencher) {
    let host = running_host();
    let config = HostConfig {
        data_dir: Some(std::env::temp_dir().join("stellatune-bench")),
        log_filter: Some("error".into()),
        ..HostConfig::default()
    };
    bencher.bench_local(|| host.init(config.clone()).expect("init"));
    host.shutdown().expect("shutdown");
}

#[divan::bench(args = [1, 100])]
fn prepare_hot_restart_with_clients(bencher: divan::Bencher, clients: usize) {
    let host = running_host();
    bencher.bench_local(|| {
        for _ in 0..clients {
            host.attach_client().expect("attach");
        }
        host.prepare_hot_restart().expect("rollover")
    });
    host.shutdown().expect("shutdown");
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn init_then_shutdown(bencher: divan::Bencher) {
    let host = RuntimeHost::new("bench-cycle");
    let config = HostConfig {
        data_dir: Some(std::env::temp_dir().join("stellatune-bench")),
        log_filter: Some("error".into()),
        ..HostConfig::default()
    };
    bencher.bench_local(|| {
        host.init(config.clone()).expect("init");
        host.shutdown().expect("shutdown");
    });
}

// --- Through the ASIO plugin and its sidecar -------------------------------------------------
//
// These need the packaged plugin (`cargo build --release --workspace && bash
// scripts/package-plugins.sh release`, which `scripts/bench.sh` runs); without it they print a
// note and measure nothing.

/// The packaged ASIO plugin (see [`artifacts::bench_asio_plugin`]), looked up once.
fn asio_plugin() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| artifacts::bench_asio_plugin("the sidecar benches are"))
        .clone()
}

fn asio_null() -> OutputRoute {
    OutputRoute::Plugin(PluginRoute::new("asio", None, "null"))
}

/// An isolated host with the ASIO plugin installed in its own data directory, stopped, and a
/// 5-second 44.1 kHz stereo tone.
struct SidecarRig {
    _dir: tempfile::TempDir,
    host: RuntimeHost,
    config: HostConfig,
    tone: PathBuf,
}

impl SidecarRig {
    fn new(name: &str) -> Option<SidecarRig> {
        let plugin = asio_plugin()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = HostConfig {
            data_dir: Some(dir.path().join("data")),
            // `STELLATUNE_BENCH_LOG=debug` shows each lifecycle step with its timestamp.
            log_filter: Some(
                std::env::var("STELLATUNE_BENCH_LOG").unwrap_or_else(|_| "error".into()),
            ),
            ..HostConfig::default()
        };
        let host = RuntimeHost::new(name);
        host.init(config.clone()).expect("init");
        host.plugins_install(&plugin)
            .expect("install the asio plugin");
        host.shutdown().expect("shutdown");
        let tone = dir.path().join("tone.wav");
        write_tone(&tone, 5.0);
        Some(SidecarRig {
            _dir: dir,
            host,
            config,
            tone,
        })
    }

    /// Init, one client, and `route` applied; returns the client.
    fn start(&self, route: OutputRoute) -> u64 {
        self.host.init(self.config.clone()).expect("init");
        let client = self.host.attach_client().expect("attach").id;
        self.host.apply_route(client, route).expect("route");
        client
    }

    fn drain(&self, client: u64) {
        while self
            .host
            .poll_event(client, Duration::ZERO)
            .expect("poll")
            .is_some()
        {}
    }

    /// Waits for the first `position` event: the engine sends it right after its first
    /// write into the sink (for the asio route: into the shared-memory ring).
    fn wait_position(&self, client: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no position event within 10 s");
            if let Some(HostEvent::Engine(EngineEvent::Position { .. })) = self
                .host
                .poll_event(client, Duration::from_millis(100))
                .expect("poll")
            {
                return;
            }
        }
    }
}

/// Init, attach, the asio route (`plugin:asio@null`), a tone playing through the sidecar;
/// then the timed part: `shutdown`, which evicts the client, closes the stream, stops and
/// reaps the sidecar, unloads the plugin and joins every runtime thread.
#[divan::bench(sample_count = 15, sample_size = 1)]
fn shutdown_with_engine_and_sidecar(bencher: Bencher) {
    let Some(rig) = SidecarRig::new("bench-sidecar-shutdown") else {
        return;
    };
    bencher
        .with_inputs(|| {
            let client = rig.start(asio_null());
            rig.host.play(client, &rig.tone).expect("play");
            rig.wait_position(client);
            // The ASIO plugin reports this counter under its own name.
            let metrics = rig.host.metrics();
            assert_eq!(
                metrics.plugin_reported.get("asio_sidecar_running"),
                Some(&1)
            );
        })
        .bench_local_values(|()| rig.host.shutdown().expect("shutdown"));
}

/// `play` -> the first `position` event a client polls (= the engine's first write into the
/// sink, plus the event's trip through the client queue), through the host:
/// - `null`: the built-in paced null sink (no plugin), for comparison;
/// - `asio-warm`: the asio route with its stream already open (the sidecar runs; each sample
///   stops the previous play first, untimed);
/// - `asio-cold`: the asio route re-applied before each sample (untimed), so `play` opens the
///   stream: it spawns the sidecar, handshakes, creates the ring, opens and starts the stream.
#[divan::bench(args = ["null", "asio-warm", "asio-cold"], sample_count = 30, sample_size = 1)]
fn play_to_first_position(bencher: Bencher, route: &str) {
    let Some(rig) = SidecarRig::new("bench-sidecar-latency") else {
        return;
    };
    let make_route = || match route {
        "null" => OutputRoute::Builtin(BuiltinRoute::Null),
        _ => asio_null(),
    };
    let client = rig.start(make_route());
    // Open the stream once (spawns the sidecar for the asio routes).
    rig.host.play(client, &rig.tone).expect("play");
    rig.wait_position(client);
    bencher
        .with_inputs(|| {
            rig.host.stop(client).expect("stop");
            if route == "asio-cold" {
                rig.host.clear_route(client).expect("clear route");
                rig.host.apply_route(client, make_route()).expect("route");
            }
            rig.drain(client);
        })
        .bench_local_values(|()| {
            rig.host.play(client, &rig.tone).expect("play");
            rig.wait_position(client);
        });
    rig.host.shutdown().expect("shutdown");
}
