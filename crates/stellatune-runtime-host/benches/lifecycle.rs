//! Lifecycle costs of the host: warm init, attach + dispose, hot-restart rollover.

use stellatune_runtime_host::{HostConfig, RuntimeHost};

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
