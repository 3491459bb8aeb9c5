//! The run's files: samples.csv, summary.json, summary.md and the resource-trend plot.

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::cli::Args;
use crate::sample::Sample;
use crate::verdict::{Check, ClientsBound, RunOutcome, Thresholds, clients_bound, slope};

pub const PLOT_FILE: &str = "trend.svg";

/// The options the run was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub lib: String,
    pub cycles: Option<u64>,
    pub duration_s: Option<f64>,
    pub mode: String,
    /// How the isolates received their events: `poll` or `port`.
    #[serde(default)]
    pub events: String,
    pub route: String,
    /// The lease the runtime applied (`--lease-ms`, else its default).
    pub lease_ms: u64,
    /// True when `--lease-ms` was not given and the runtime's default applied.
    pub lease_is_runtime_default: bool,
    pub churn_uninstall_every: u64,
    pub interval_ms: u64,
    pub call_timeout_ms: u64,
    pub confirm_timeout_ms: u64,
    pub seek: bool,
    pub pause: bool,
    pub plugin_churn: Option<String>,
    pub install_plugin: Vec<String>,
    pub faults: Vec<String>,
}

/// Slopes per cycle (RSS after the warm-up, in KiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slopes {
    pub threads: Option<f64>,
    pub fds: Option<f64>,
    pub rings: Option<f64>,
    pub processes: Option<f64>,
    pub rss_kib: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cycles: u64,
    pub confirmed: u64,
    pub mean_cycle_ms: f64,
    pub max_cycle_ms: u64,
    pub max_clients_active: Option<u64>,
    /// The `player_clients_active` bound and how it was derived.
    pub clients_bound: ClientsBound,
    pub slopes: Slopes,
    pub first: Option<Sample>,
    pub last: Option<Sample>,
}

/// summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `pass` or `fail`.
    pub verdict: String,
    pub pass: bool,
    pub checks: Vec<Check>,
    pub thresholds: Thresholds,
    pub run: RunOutcome,
    pub config: RunConfig,
    pub stats: Stats,
    pub run_dir: String,
    pub wall_ms: u64,
    /// Lines on the child's stdout that were not gate messages.
    pub noise_lines: u64,
}

fn value_name<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map_or_else(|| "?".to_owned(), |v| v.get_name().to_owned())
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        args: &Args,
        lib: &Path,
        run_dir: &Path,
        wall: Duration,
        samples: &[Sample],
        run: &RunOutcome,
        thresholds: &Thresholds,
        checks: Vec<Check>,
        noise_lines: u64,
    ) -> Summary {
        let pass = crate::verdict::passed(&checks);
        let series = |get: fn(&Sample) -> u64| -> Vec<f64> {
            samples.iter().map(|s| get(s) as f64).collect()
        };
        let warmup = (thresholds.rss_warmup_cycles as usize).min(samples.len() / 2);
        let n = samples.len().max(1) as f64;
        Summary {
            verdict: if pass { "pass" } else { "fail" }.to_owned(),
            pass,
            checks,
            thresholds: thresholds.clone(),
            run: run.clone(),
            config: RunConfig {
                lib: lib.display().to_string(),
                cycles: args.cycle_limit(),
                duration_s: args.duration.map(|d| d.as_secs_f64()),
                mode: value_name(&args.mode),
                events: value_name(&args.events),
                route: args.route.to_string(),
                lease_ms: args.effective_lease_ms(),
                lease_is_runtime_default: args.lease_ms.is_none(),
                churn_uninstall_every: args.churn_uninstall_every,
                interval_ms: args.interval_ms,
                call_timeout_ms: args.call_timeout_ms,
                confirm_timeout_ms: args.confirm_timeout_ms,
                seek: args.seek,
                pause: args.pause,
                plugin_churn: args.plugin_churn.as_ref().map(|p| p.display().to_string()),
                install_plugin: args
                    .install_plugin
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                faults: args.fault.iter().map(value_name).collect(),
            },
            stats: Stats {
                cycles: samples.len() as u64,
                confirmed: samples.iter().filter(|s| s.confirmed).count() as u64,
                mean_cycle_ms: samples.iter().map(|s| s.cycle_ms as f64).sum::<f64>() / n,
                max_cycle_ms: samples.iter().map(|s| s.cycle_ms).max().unwrap_or(0),
                max_clients_active: samples.iter().filter_map(Sample::max_clients).max(),
                clients_bound: clients_bound(samples, thresholds),
                slopes: Slopes {
                    threads: slope(&series(|s| s.threads)),
                    fds: slope(&series(|s| s.fds)),
                    rings: slope(&series(|s| s.rings)),
                    processes: slope(&series(Sample::processes)),
                    rss_kib: slope(&series(|s| s.rss_kb)[warmup..]),
                },
                first: samples.first().cloned(),
                last: samples.last().cloned(),
            },
            run_dir: run_dir.display().to_string(),
            wall_ms: wall.as_millis() as u64,
            noise_lines,
        }
    }
}

const CSV_COLUMNS: &[&str] = &[
    "cycle",
    "mode",
    "elapsed_ms",
    "cycle_ms",
    "confirmed",
    "lost_connections",
    "threads",
    "fds",
    "rss_kb",
    "sidecars",
    "zombies",
    "rings",
    "shadow_copies",
    "shadow_mapped",
    "peak_clients",
    "state",
    "runtime_host_inits_total",
    "player_clients_active",
    "client_generation",
    "clients_evicted_total",
    "client_events_queued",
    "runtime_threads",
    "plugin_generations_active",
    "plugin_generations_draining",
    "asio_sidecar_spawns_total",
    "asio_sidecar_running",
    "ring_files",
    "plugin_shadow_copies",
    "error",
];

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

pub fn samples_csv(samples: &[Sample]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for s in samples {
        let mut row = vec![
            s.cycle.to_string(),
            s.mode.clone(),
            s.elapsed_ms.to_string(),
            s.cycle_ms.to_string(),
            s.confirmed.to_string(),
            s.lost_connections.to_string(),
            s.threads.to_string(),
            s.fds.to_string(),
            s.rss_kb.to_string(),
            s.sidecars.to_string(),
            s.zombies.to_string(),
            s.rings.to_string(),
            s.shadow_copies.to_string(),
            s.shadow_mapped.to_string(),
            s.peak_clients.map_or_else(String::new, |c| c.to_string()),
        ];
        match &s.metrics {
            Some(m) => row.extend([
                m.state.clone(),
                m.runtime_host_inits_total.to_string(),
                m.player_clients_active.to_string(),
                m.client_generation.to_string(),
                m.clients_evicted_total.to_string(),
                m.client_events_queued.to_string(),
                m.runtime_threads.to_string(),
                m.plugin_generations_active.to_string(),
                m.plugin_generations_draining.to_string(),
                m.asio_sidecar_spawns_total.to_string(),
                m.asio_sidecar_running.to_string(),
                m.ring_files.to_string(),
                m.plugin_shadow_copies.to_string(),
            ]),
            None => row.extend(std::iter::repeat_n(String::new(), 13)),
        }
        row.push(s.error.clone().unwrap_or_default());
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The verdict table in Markdown (also what the terminal shows).
pub fn verdict_table(checks: &[Check]) -> String {
    let mut out =
        String::from("| check | value | threshold | result |\n| --- | --- | --- | --- |\n");
    for c in checks {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.id,
            md_cell(&c.value),
            md_cell(&c.threshold),
            if c.pass { "pass" } else { "FAIL" }
        ));
    }
    out
}

pub fn summary_md(s: &Summary) -> String {
    let c = &s.config;
    let mut out = format!(
        "# Hot-restart stress gate: {}\n\n",
        if s.pass { "PASS" } else { "FAIL" }
    );
    out.push_str(&format!(
        "- library: `{}`\n- cycles run: {}{} (mode `{}`, events `{}`, route `{}`, lease {} ms{}, interval {} ms, call timeout {} ms)\n",
        c.lib,
        s.stats.cycles,
        c.cycles.map_or_else(|| " (soak)".to_owned(), |n| format!(" of {n}")),
        c.mode,
        c.events,
        md_cell(&c.route),
        c.lease_ms,
        if c.lease_is_runtime_default {
            " (runtime default)"
        } else {
            ""
        },
        c.interval_ms,
        c.call_timeout_ms
    ));
    if let Some(d) = c.duration_s {
        out.push_str(&format!("- soak duration: {d:.0} s\n"));
    }
    let mut extras = Vec::new();
    if c.seek {
        extras.push("seek".to_owned());
    }
    if c.pause {
        extras.push("pause".to_owned());
    }
    if let Some(dir) = &c.plugin_churn {
        extras.push(match c.churn_uninstall_every {
            0 => format!("plugin churn `{dir}`"),
            n => format!("plugin churn `{dir}` (uninstall + re-install every {n} cycles)"),
        });
    }
    for f in &c.faults {
        extras.push(format!("fault `{f}`"));
    }
    if !extras.is_empty() {
        out.push_str(&format!("- actions: {}\n", extras.join(", ")));
    }
    out.push_str(&format!(
        "- child: {}; {}\n- wall time: {:.1} s; cycle time mean {:.0} ms, max {} ms\n\n",
        s.run.exit,
        s.run.stop_reason.as_deref().unwrap_or("no final report"),
        s.wall_ms as f64 / 1000.0,
        s.stats.mean_cycle_ms,
        s.stats.max_cycle_ms
    ));
    let b = &s.stats.clients_bound;
    out.push_str(&format!(
        "- clients bound: player_clients_active <= 1 + min(ceil({basis} / shortest cycle), cycles \
         since the last prepare) = 1 + min(ceil({} / {} ms) = {}, ...): at most {} in this run\n\n",
        b.lease_ms,
        b.shortest_cycle_ms,
        b.stale_max,
        b.max,
        basis = b.basis()
    ));
    out.push_str("## Verdict\n\n");
    out.push_str(&verdict_table(&s.checks));
    if let (Some(first), Some(last)) = (&s.stats.first, &s.stats.last) {
        out.push_str(
            "\n## First and last cycle\n\n| resource | first | last |\n| --- | --- | --- |\n",
        );
        let rows: [(&str, u64, u64); 9] = [
            ("threads", first.threads, last.threads),
            ("fds", first.fds, last.fds),
            ("RSS kB", first.rss_kb, last.rss_kb),
            ("sidecars", first.sidecars, last.sidecars),
            ("zombies", first.zombies, last.zombies),
            ("ring files", first.rings, last.rings),
            (
                "plugin shadow copies",
                first.shadow_copies,
                last.shadow_copies,
            ),
            (
                "shadow libraries still mapped",
                first.shadow_mapped,
                last.shadow_mapped,
            ),
            (
                "player_clients_active",
                first
                    .metrics
                    .as_ref()
                    .map_or(0, |m| m.player_clients_active),
                last.metrics.as_ref().map_or(0, |m| m.player_clients_active),
            ),
        ];
        for (name, a, b) in rows {
            out.push_str(&format!("| {name} | {a} | {b} |\n"));
        }
    }
    out.push_str(&format!(
        "\nFiles: `samples.csv` (one row per cycle), `summary.json`, `{PLOT_FILE}` (resource \
         trends), `child.log` (the runtime's log).\n"
    ));
    out
}

/// Threads, fds, sidecars, ring files and RSS per cycle, one panel each, with the
/// growth bound (first cycle + tolerance) as a red line where there is one.
pub fn plot(path: &Path, samples: &[Sample], th: &Thresholds) -> Result<(), String> {
    use plotters::prelude::*;

    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1000, 1300)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            "hot-restart-stress: resources per cycle",
            ("sans-serif", 22),
        )
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((5, 1));
    let last_cycle = samples.last().map_or(1, |s| s.cycle).max(2) as f64;
    let first = samples.first();
    type Get = fn(&Sample) -> f64;
    let series: [(&str, Get, Option<f64>, RGBColor); 5] = [
        (
            "threads",
            |s| s.threads as f64,
            first.map(|f| (f.threads + th.threads_tolerance) as f64),
            BLUE,
        ),
        (
            "open fds",
            |s| s.fds as f64,
            first.map(|f| (f.fds + th.fds_tolerance) as f64),
            GREEN,
        ),
        (
            "sidecar processes (zombies dashed)",
            |s| s.sidecars as f64,
            first.map(|f| (f.sidecars + th.sidecars_tolerance) as f64),
            MAGENTA,
        ),
        (
            "ring files",
            |s| s.rings as f64,
            first.map(|f| (f.rings + th.rings_tolerance) as f64),
            CYAN,
        ),
        ("RSS (MiB)", |s| s.rss_kb as f64 / 1024.0, None, BLACK),
    ];
    for (area, (name, get, bound, color)) in panels.iter().zip(series) {
        let ys: Vec<f64> = samples.iter().map(get).collect();
        let mut lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let mut hi = ys
            .iter()
            .copied()
            .chain(bound)
            .fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.1).max(0.5);
        let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
        let mut chart = ChartBuilder::on(area)
            .caption(
                if bound.is_some() {
                    format!("{name} (red: first cycle + tolerance)")
                } else {
                    name.to_owned()
                },
                ("sans-serif", 16),
            )
            .margin(8)
            .margin_right(28)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(1.0..last_cycle, lo..hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("cycle")
            .x_labels(12)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(6)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (s.cycle as f64, get(s))),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        if name.starts_with("sidecar") {
            chart
                .draw_series(DashedLineSeries::new(
                    samples.iter().map(|s| (s.cycle as f64, s.zombies as f64)),
                    4,
                    4,
                    RED.stroke_width(1),
                ))
                .map_err(|e| err(&e))?;
        }
        if let Some(bound) = bound {
            chart
                .draw_series(LineSeries::new(
                    [(1.0, bound), (last_cycle, bound)],
                    RED.mix(0.6),
                ))
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
