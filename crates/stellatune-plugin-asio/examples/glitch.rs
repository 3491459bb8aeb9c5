//! Glitches under load: plays a 44.1 kHz stereo tone in real time through `plugin:asio@null`
//! while every core is kept busy by spinning child processes (normal priority, like a build
//! or a game next to the player), and reports the underruns the runtime counted
//! (`audio_underruns_total`: the engine's and the sidecar's together) for each ring size.
//!
//! ```sh
//! cargo build --release --workspace && bash scripts/package-plugins.sh release
//! target/release/examples/glitch --seconds 60 --buffer-ms 200
//! target/release/examples/glitch --seconds 20 --buffer-ms 100,50,25,10
//! ```
//!
//! Options: `--seconds N` per run (default 60), `--buffer-ms A,B,...` (default 200, the
//! plugin's default), `--burners N` (default: one per core), `--plugin DIR` (default:
//! `$STELLATUNE_BENCH_ASIO_PLUGIN`, else `target/release/plugins/asio`). One line per run:
//! `glitch buffer_ms=<n> seconds=<s> burners=<n> underruns=<n> frames=<n> expected_frames=<n>`.
//! Portable: the burners are this program started again with `--burn`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stellatune_runtime_host::{HostConfig, OutputRoute, PluginRoute, RuntimeHost};

struct Options {
    seconds: f64,
    buffers: Vec<u32>,
    burners: usize,
    plugin: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut seconds = 60.0;
    let mut buffers = vec![200];
    let mut burners = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut plugin = std::env::var_os("STELLATUNE_BENCH_ASIO_PLUGIN").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--buffer-ms" => {
                buffers = value()?
                    .split(',')
                    .map(|b| {
                        b.trim()
                            .parse()
                            .map_err(|e| format!("--buffer-ms {b}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--burners" => burners = value()?.parse().map_err(|e| format!("--burners: {e}"))?,
            "--plugin" => plugin = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Options {
        seconds,
        buffers,
        burners,
        plugin: plugin.unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/plugins/asio")
        }),
    })
}

/// Spins until killed, or until its parent closes stdin.
fn burn() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1]);
        watcher.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let mut x = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for i in 0..100_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

/// Busy child processes, killed when dropped.
struct Burners(Vec<Child>);

impl Burners {
    fn start(n: usize) -> Burners {
        let exe = std::env::current_exe().expect("own path");
        Burners(
            (0..n)
                .map(|_| {
                    Command::new(&exe)
                        .arg("--burn")
                        .stdin(Stdio::piped())
                        .spawn()
                        .expect("start a burner")
                })
                .collect(),
        )
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Plays for `seconds` through a ring of `buffer_ms` under load; (underruns, frames written).
fn run(o: &Options, tone: &Path, scratch: &Path, buffer_ms: u32) -> (u64, u64) {
    let host = RuntimeHost::new("glitch");
    host.init(HostConfig {
        data_dir: Some(scratch.join(format!("data-{buffer_ms}"))),
        log_filter: Some("warn".into()),
        ..HostConfig::default()
    })
    .expect("init");
    host.plugins_install(&o.plugin)
        .expect("install the asio plugin");
    let client = host.attach_client().expect("attach").id;
    let mut route = PluginRoute::new("asio", None, "null");
    route.config = Some(serde_json::json!({ "buffer_ms": buffer_ms }));
    host.apply_route(client, OutputRoute::Plugin(route))
        .expect("route");
    // The load starts before the music: the player has to cope with it from the first block.
    let burners = Burners::start(o.burners);
    host.play(client, tone).expect("play");
    let started = Instant::now();
    let window = Duration::from_secs_f64(o.seconds);
    while started.elapsed() < window {
        // A front end's event loop.
        let _ = host.poll_event(client, Duration::from_millis(250));
    }
    let underruns = host.metrics().audio_underruns_total;
    let frames = host.status(client).map_or(0, |s| s.frames_written);
    drop(burners);
    host.shutdown().expect("shutdown");
    (underruns, frames)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--burn") {
        burn();
        return;
    }
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("glitch: {e}");
            std::process::exit(2);
        }
    };
    if !o.plugin.join("plugin.json").is_file() {
        println!(
            "note: no packaged ASIO plugin at {}: glitch skipped (run `cargo build --release \
             --workspace && bash scripts/package-plugins.sh release`)",
            o.plugin.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = dir.path().join("tone.wav");
    // The tests' 44.1 kHz stereo two-tone (440 and 660 Hz).
    stellatune_test_support::tone::write_two_tone(&tone, (o.seconds + 5.0) as f32);
    for &buffer_ms in &o.buffers {
        let (underruns, frames) = run(&o, &tone, dir.path(), buffer_ms);
        println!(
            "glitch buffer_ms={buffer_ms} seconds={} burners={} underruns={underruns} frames={frames} expected_frames={}",
            o.seconds,
            o.burners,
            (o.seconds * 44_100.0) as u64
        );
    }
}
