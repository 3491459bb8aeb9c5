//! `stellatune`: play files through the runtime, inspect them, read the runtime's metrics.

#![forbid(unsafe_code)]

mod tone;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use stellatune_backend_api::{
    BuiltinRoute, EngineEvent, HostConfig, HostEvent, LogFormat, OutputRoute, PlaybackState,
    Player, PluginRoute, ReplayGainMode, ReplayGainSettings, RuntimeHost, probe_media,
    runtime_init, runtime_metrics, runtime_shutdown,
};
use stellatune_ffi::wire;

#[derive(Parser)]
#[command(
    name = "stellatune",
    version,
    about = "The stellatune native runtime, from the command line"
)]
struct Cli {
    /// Where plugins, ring files and logs live.
    #[arg(long, global = true, env = "STELLATUNE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `stellatune_runtime_host=debug`.
    #[arg(long, global = true, default_value = "warn")]
    log_filter: String,
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Text)]
    log_format: LogFormatArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReplayGainArg {
    Off,
    Track,
    Album,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Play one or more files back to back (gapless) and exit when they end.
    Play {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `device` (the system default), `device:ID` (an id of `stellatune devices`), `null`,
        /// `wav:PATH` or `plugin:ID[/SINK][@TARGET]` (e.g.
        /// `plugin:test-plugins/capture@/tmp/out.raw`; SINK may be left out when the plugin
        /// has one output sink type).
        #[arg(long, short, default_value = "device")]
        output: String,
        /// The config of a plugin output, as JSON (default: the sink's own default).
        #[arg(long, value_name = "JSON")]
        plugin_config: Option<String>,
        /// Render a wav output as fast as possible instead of in real time.
        #[arg(long)]
        unpaced: bool,
        /// Linear gain from 0.0 to 2.0.
        #[arg(long, default_value_t = 1.0)]
        volume: f32,
        /// Which ReplayGain value to apply.
        #[arg(long, value_enum, default_value_t = ReplayGainArg::Off)]
        replaygain: ReplayGainArg,
        /// Added to the file's ReplayGain, in dB (-24 to 24).
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        preamp_db: f32,
        /// A wav output's channel count (1 to 8): every file is mixed to it.
        #[arg(long)]
        channels: Option<u16>,
        /// A wav output's sample rate in Hz: every file is resampled to it.
        #[arg(long)]
        sample_rate: Option<u32>,
        /// Start the first file at this position.
        #[arg(long)]
        start_ms: Option<u64>,
    },
    /// Print what a file holds as JSON: format, duration, tags, ReplayGain, cover.
    Info { file: PathBuf },
    /// Start the runtime and print its metrics as JSON.
    Metrics,
    /// Print every output the runtime can play to now as JSON: system devices and plugin
    /// targets, each with the route that plays there (what `stellatune_output_devices_json`
    /// writes).
    Devices,
    /// Manage the plugins in the data directory's plugin folder.
    Plugins {
        #[command(subcommand)]
        action: PluginsCommand,
    },
    /// Write a test tone (sine sweep) as a 16-bit WAV file.
    Tone {
        out: PathBuf,
        #[arg(long, default_value_t = 5.0)]
        seconds: f32,
        #[arg(long, default_value_t = 44_100)]
        rate: u32,
    },
    /// Headless demonstration: write a tone, play it in real time to a WAV file, check it.
    Demo {
        #[arg(long, default_value_t = 3.0)]
        seconds: f32,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Print the installed plugins, their generations and capabilities as JSON.
    List,
    /// Install (or replace) a plugin from a directory holding plugin.json, or a .zip of one.
    Install { path: PathBuf },
    /// Remove an installed plugin.
    Uninstall { id: String },
    /// Re-read the plugin folder: load new plugins, reload changed ones, drop removed ones.
    Reload,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = HostConfig {
        data_dir: cli.data_dir.clone(),
        log_filter: Some(cli.log_filter.clone()),
        log_format: Some(match cli.log_format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }),
        ..HostConfig::default()
    };
    let result = match cli.command {
        Command::Play {
            files,
            output: output_arg,
            plugin_config,
            unpaced,
            volume,
            replaygain,
            preamp_db,
            channels,
            sample_rate,
            start_ms,
        } => {
            let config = HostConfig {
                replaygain: Some(ReplayGainSettings {
                    mode: match replaygain {
                        ReplayGainArg::Off => ReplayGainMode::Off,
                        ReplayGainArg::Track => ReplayGainMode::Track,
                        ReplayGainArg::Album => ReplayGainMode::Album,
                    },
                    preamp_db,
                    ..ReplayGainSettings::default()
                }),
                ..config
            };
            let output = OutputArgs {
                unpaced,
                channels,
                sample_rate,
                plugin_config: plugin_config.as_deref(),
            };
            parse_output(&output_arg, &output).and_then(|route| {
                run_with_runtime(config, |stop| play(&files, route, volume, start_ms, stop))
            })
        }
        Command::Info { file } => info(&file),
        Command::Plugins { action } => run_with_runtime(config, |_| plugins(action)),
        Command::Metrics => run_with_runtime(config, |_| {
            let metrics = wire::Metrics::from(&runtime_metrics());
            println!(
                "{}",
                serde_json::to_string(&metrics).map_err(|e| e.to_string())?
            );
            Ok(())
        }),
        Command::Devices => run_with_runtime(config, |_| {
            let devices = RuntimeHost::global()
                .output_devices()
                .map_err(|e| e.to_string())?;
            let devices: Vec<wire::OutputDevice> =
                devices.iter().map(wire::OutputDevice::from).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&devices).map_err(|e| e.to_string())?
            );
            Ok(())
        }),
        Command::Tone { out, seconds, rate } => tone::write_sweep(&out, seconds, rate)
            .map(|frames| println!("wrote {} ({frames} frames at {rate} Hz)", out.display())),
        Command::Demo { seconds } => run_with_runtime(config, |stop| demo(seconds, stop)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stellatune: {message}");
            ExitCode::FAILURE
        }
    }
}

const OUTPUT_FORMS: &str = "use device, device:ID, null, wav:PATH or plugin:ID[/SINK][@TARGET]";

/// The `play` options that shape the output route.
struct OutputArgs<'a> {
    unpaced: bool,
    channels: Option<u16>,
    sample_rate: Option<u32>,
    plugin_config: Option<&'a str>,
}

fn parse_output(output: &str, args: &OutputArgs<'_>) -> Result<OutputRoute, String> {
    let wav = output.starts_with("wav:");
    if !wav && (args.channels.is_some() || args.sample_rate.is_some()) {
        return Err(format!(
            "--channels and --sample-rate only apply to a wav output, not {output:?}"
        ));
    }
    if let Some(spec) = output.strip_prefix("plugin:") {
        return plugin_output(spec, args.plugin_config)
            .map_err(|e| format!("bad output {output:?}: {e} ({OUTPUT_FORMS})"));
    }
    if args.plugin_config.is_some() {
        return Err(format!(
            "--plugin-config only applies to a plugin output, not {output:?}"
        ));
    }
    let route = match output {
        "device" => BuiltinRoute::Device { device_id: None },
        "null" => BuiltinRoute::Null,
        other => match (other.strip_prefix("wav:"), other.strip_prefix("device:")) {
            (Some(path), _) if !path.is_empty() => BuiltinRoute::Wav {
                path: PathBuf::from(path),
                paced: !args.unpaced,
                channels: args.channels,
                sample_rate: args.sample_rate,
            },
            (_, Some(id)) if !id.is_empty() => BuiltinRoute::Device {
                device_id: Some(id.to_owned()),
            },
            _ => {
                return Err(format!("unknown output {other:?}: {OUTPUT_FORMS}"));
            }
        },
    };
    Ok(route.into())
}

/// `ID[/SINK][@TARGET]`: the target is everything after the first `@` (it may be a path).
fn plugin_output(spec: &str, config: Option<&str>) -> Result<OutputRoute, String> {
    let (head, target) = match spec.split_once('@') {
        Some((head, target)) => (head, target),
        None => (spec, ""),
    };
    let (id, sink) = match head.split_once('/') {
        Some((id, sink)) => (id, Some(sink)),
        None => (head, None),
    };
    if id.is_empty() {
        return Err("the plugin id is missing".into());
    }
    if sink == Some("") {
        return Err("the sink type after '/' is empty".into());
    }
    let route = PluginRoute::new(id, sink, target);
    let route = match config {
        Some(config) => route.with_config(
            serde_json::from_str(config)
                .map_err(|e| format!("--plugin-config is not valid JSON: {e}"))?,
        ),
        None => route,
    };
    Ok(OutputRoute::Plugin(route))
}

fn plugins(action: PluginsCommand) -> Result<(), String> {
    let host = RuntimeHost::global();
    let json = match action {
        PluginsCommand::List => {
            let list = host.plugins_list().map_err(|e| e.to_string())?;
            serde_json::to_value(list.iter().map(wire::PluginInfo::from).collect::<Vec<_>>())
        }
        PluginsCommand::Install { path } => {
            let id = host
                .plugins_install(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let installed = host
                .plugins_list()
                .map_err(|e| e.to_string())?
                .iter()
                .find(|p| p.id == id)
                .map(wire::PluginInfo::from);
            serde_json::to_value(installed)
        }
        PluginsCommand::Uninstall { id } => {
            host.plugins_uninstall(&id).map_err(|e| e.to_string())?;
            Ok(serde_json::json!({ "uninstalled": id }))
        }
        PluginsCommand::Reload => {
            let report = host.plugins_reload().map_err(|e| e.to_string())?;
            serde_json::to_value(wire::ReloadReport::from(&report))
        }
    }
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Runs `body` between runtime init and a deterministic shutdown, with Ctrl-C wired to a
/// stop flag so an interrupted run still shuts down cleanly.
fn run_with_runtime(
    config: HostConfig,
    body: impl FnOnce(&AtomicBool) -> Result<(), String>,
) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .map_err(|e| format!("cannot install Ctrl-C handler: {e}"))?;
    }
    runtime_init(config).map_err(|e| e.to_string())?;
    let outcome = body(&stop);
    let shutdown = runtime_shutdown().map_err(|e| e.to_string());
    outcome.and(shutdown)
}

struct PlayReport {
    tracks: usize,
    /// Played time of the tracks before the current one.
    finished_ms: u64,
    /// The furthest position of the current track.
    current_ms: u64,
    errors: Vec<String>,
}

impl PlayReport {
    fn played_ms(&self) -> u64 {
        self.finished_ms + self.current_ms
    }
}

fn play(
    files: &[PathBuf],
    route: OutputRoute,
    volume: f32,
    start_ms: Option<u64>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let player = Player::create().map_err(|e| e.to_string())?;
    let result = drive(&player, files, route, volume, start_ms, stop);
    let disposed = player.dispose().map_err(|e| e.to_string());
    let report = result?;
    disposed?;
    if stop.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    if !report.errors.is_empty() {
        return Err(report.errors.join("; "));
    }
    eprintln!(
        "played {} track(s), {:.1} s",
        report.tracks,
        report.played_ms() as f64 / 1000.0
    );
    Ok(())
}

fn drive(
    player: &Player<'_>,
    files: &[PathBuf],
    route: OutputRoute,
    volume: f32,
    start_ms: Option<u64>,
    stop: &AtomicBool,
) -> Result<PlayReport, String> {
    player.apply_route(route).map_err(|e| e.to_string())?;
    player.set_volume(volume).map_err(|e| e.to_string())?;
    let mut queue = files.iter();
    let first = queue.next().expect("clap requires at least one file");
    player
        .play(first)
        .map_err(|e| format!("{}: {e}", first.display()))?;
    if let Some(ms) = start_ms {
        player.seek_ms(ms).map_err(|e| e.to_string())?;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:30!} [{bar:30}] {pos}/{len} s")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut report = PlayReport {
        tracks: 0,
        finished_ms: 0,
        current_ms: 0,
        errors: Vec::new(),
    };
    let mut queued_next = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            let _ = player.stop();
            break;
        }
        let Some(event) = player
            .next_event(Duration::from_millis(100))
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        match event {
            HostEvent::Engine(EngineEvent::TrackStarted { info, .. }) => {
                report.tracks += 1;
                // Positions count from each track's start: the total adds them up.
                report.finished_ms += std::mem::take(&mut report.current_ms);
                queued_next = false;
                bar.set_length(info.duration_ms.unwrap_or(0) / 1000);
                bar.set_position(0);
                bar.set_message(now_playing(&info.path));
                // Queue the following file now, so it joins without a gap.
                if let Some(next) = queue.next() {
                    match player.queue_next(next) {
                        Ok(_) => queued_next = true,
                        Err(e) => report.errors.push(format!("{}: {e}", next.display())),
                    }
                }
            }
            HostEvent::Engine(EngineEvent::Position { position_ms, .. }) => {
                bar.set_position(position_ms / 1000);
                report.current_ms = report.current_ms.max(position_ms);
            }
            HostEvent::Engine(EngineEvent::OutputLost { route, message }) => {
                bar.println(format!("output {route} lost ({message}); re-opening it"));
            }
            HostEvent::Engine(EngineEvent::OutputChanged { route }) => {
                bar.println(format!("output: now playing on {route}"));
            }
            HostEvent::Engine(EngineEvent::Error { message, .. }) => {
                bar.println(format!("error: {message}"));
                report.errors.push(message);
            }
            HostEvent::Engine(EngineEvent::StateChanged {
                state: PlaybackState::Stopped,
            }) if !queued_next => break,
            _ => {}
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

/// "Artist – Title" from the file's tags when it has them (read on this thread, not the
/// engine's), else its file name.
fn now_playing(path: &Path) -> String {
    let tags = probe_media(path).ok().map(|m| m.tags);
    match tags
        .as_ref()
        .map(|t| (t.artist.as_deref(), t.title.as_deref()))
    {
        Some((Some(artist), Some(title))) => format!("{artist} – {title}"),
        Some((None, Some(title))) => title.to_owned(),
        _ => display_name(path),
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Prints what `stellatune_media_probe_json` writes for the file (pretty-printed): format,
/// tags, ReplayGain and cover, read without decoding and without a runtime.
fn info(file: &Path) -> Result<(), String> {
    let info = probe_media(file).map_err(|e| e.to_string())?;
    let info = wire::MediaInfo::from(&info);
    println!(
        "{}",
        serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn demo(seconds: f32, stop: &AtomicBool) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("stellatune-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join("sweep.wav");
    let output = dir.join("heard.wav");
    let frames = tone::write_sweep(&input, seconds, 44_100)?;
    eprintln!(
        "demo: playing a {seconds} s sweep in real time to {}",
        output.display()
    );
    let started = Instant::now();
    play(
        std::slice::from_ref(&input),
        BuiltinRoute::Wav {
            path: output.clone(),
            paced: true,
            channels: None,
            sample_rate: None,
        }
        .into(),
        1.0,
        None,
        stop,
    )?;
    let elapsed = started.elapsed();
    let written = hound::WavReader::open(&output)
        .map_err(|e| format!("reading {}: {e}", output.display()))?
        .duration();
    let metrics = runtime_metrics();
    println!(
        "demo: {} of {} frames heard in {:.2} s; runtime threads {}, clients {}, host inits {}",
        written,
        frames,
        elapsed.as_secs_f64(),
        metrics.runtime_threads,
        metrics.player_clients_active,
        metrics.runtime_host_inits_total
    );
    let _ = std::fs::remove_dir_all(&dir);
    if u64::from(written) != frames {
        return Err(format!("expected {frames} frames, heard {written}"));
    }
    Ok(())
}
