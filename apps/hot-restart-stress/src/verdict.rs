//! The verdict: numeric thresholds and the checks that compare the samples against them.

use serde::{Deserialize, Serialize};

use crate::sample::{Sample, ShutdownReport};

/// Every bound the gate applies. The defaults are the documented gate (README.md and
/// `--help` print them from here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// `runtime_host_inits_total` must be exactly this in every sample: the engine started
    /// once and every later init reused it.
    pub host_inits_total: u64,
    /// Threads after the last cycle may exceed threads after the first by at most this.
    pub threads_tolerance: u64,
    /// Open fds after the last cycle may exceed the first cycle's by at most this.
    pub fds_tolerance: u64,
    /// Live sidecar processes after the last cycle vs the first.
    pub sidecars_tolerance: u64,
    /// Zombie children after the last cycle (one that exited a moment before the sample
    /// may not be reaped yet).
    pub zombies_max: u64,
    /// Ring files after the last cycle vs the first.
    pub rings_tolerance: u64,
    /// Plugin shadow copies after the last cycle vs the first (a replaced generation may
    /// still be draining).
    pub shadow_copies_tolerance: u64,
    /// Least-squares slope over all cycles, per cycle: must be strictly below this for
    /// threads, fds, ring files and child processes.
    pub count_slope_max: f64,
    /// Least-squares slope of RSS in KiB per cycle, over the cycles after the warm-up: must
    /// be strictly below this.
    pub rss_slope_max_kib: f64,
    /// Cycles left out of the RSS slope.
    pub rss_warmup_cycles: u64,
    /// A trend is fitted only through at least this many points (cycles; for RSS, cycles
    /// after the warm-up); with fewer, the slope checks are not applicable and pass (the
    /// growth checks still hold).
    pub min_trend_points: u64,
    /// Watchdog timeouts allowed.
    pub lost_connections_max: u64,
    /// `player_clients_active` in any sample: the current isolate's client plus at most one
    /// stale one (the previous isolate's, until its lease runs out).
    pub clients_active_max: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            host_inits_total: 1,
            threads_tolerance: 2,
            fds_tolerance: 4,
            sidecars_tolerance: 1,
            zombies_max: 1,
            rings_tolerance: 1,
            shadow_copies_tolerance: 2,
            count_slope_max: 0.05,
            rss_slope_max_kib: 64.0,
            rss_warmup_cycles: 5,
            min_trend_points: 5,
            lost_connections_max: 0,
            clients_active_max: 2,
        }
    }
}

impl Thresholds {
    /// The thresholds as text, for `--help` and the README.
    pub fn describe(&self) -> String {
        format!(
            "Verdict thresholds (all must hold; exit 0 = pass, 1 = fail):\n\
             - child process exits normally (a crash is reported with its signal)\n\
             - every planned cycle ran, and each confirmed playback (track_started, then a position event)\n\
             - runtime_host_inits_total == {inits} in every sample\n\
             - threads after the last cycle <= after the first + {threads}\n\
             - open fds after the last cycle <= after the first + {fds}\n\
             - live sidecar processes after the last cycle <= after the first + {sidecars}\n\
             - zombie child processes after the last cycle <= {zombies}\n\
             - ring files after the last cycle <= after the first + {rings}\n\
             - plugin shadow copies after the last cycle <= after the first + {shadow}\n\
             - least-squares slope per cycle of threads, fds, ring files and child processes < {slope}\n\
             - RSS slope < {rss} KiB/cycle, over the cycles after a warm-up of {warmup} (--warmup)\n\
             - slopes need at least {points} points (cycles; for RSS, after the warm-up), else they are n/a\n\
             - lost connections (FFI calls over --call-timeout-ms) <= {lost}\n\
             - player_clients_active <= {clients} right after every attach and after every cycle (stale clients never exceed one generation)\n\
             - the final stellatune_runtime_shutdown succeeds and leaves runtime_threads == 0 and, within 2 s, no live sidecar",
            inits = self.host_inits_total,
            threads = self.threads_tolerance,
            fds = self.fds_tolerance,
            sidecars = self.sidecars_tolerance,
            zombies = self.zombies_max,
            rings = self.rings_tolerance,
            shadow = self.shadow_copies_tolerance,
            slope = self.count_slope_max,
            rss = self.rss_slope_max_kib,
            warmup = self.rss_warmup_cycles,
            points = self.min_trend_points,
            lost = self.lost_connections_max,
            clients = self.clients_active_max,
        )
    }
}

/// Least-squares slope of `ys` against x = 0, 1, 2, ... (the cycle index); `None` with fewer
/// than two points.
pub fn slope(ys: &[f64]) -> Option<f64> {
    let n = ys.len();
    if n < 2 {
        return None;
    }
    let mean_x = (n - 1) as f64 / 2.0;
    let mean_y = ys.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    Some(sxy / sxx)
}

/// One line of the verdict table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier (tests and tools key on it).
    pub id: String,
    pub value: String,
    pub threshold: String,
    pub pass: bool,
}

impl Check {
    fn new(id: &str, value: impl Into<String>, threshold: impl Into<String>, pass: bool) -> Check {
        Check {
            id: id.to_owned(),
            value: value.into(),
            threshold: threshold.into(),
            pass,
        }
    }
}

/// How the child process ended, as the parent saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChildExit {
    Code {
        code: i32,
    },
    Signal {
        signal: i32,
        name: String,
    },
    /// The child printed nothing for too long and was killed.
    Stalled {
        after_ms: u64,
    },
    Unknown,
}

impl ChildExit {
    pub fn is_clean(&self) -> bool {
        matches!(self, ChildExit::Code { code: 0 })
    }
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Code { code } => write!(f, "exit code {code}"),
            ChildExit::Signal { signal, name } => write!(f, "killed by signal {signal} ({name})"),
            ChildExit::Stalled { after_ms } => {
                write!(f, "stalled: no output for {after_ms} ms, killed")
            }
            ChildExit::Unknown => f.write_str("unknown"),
        }
    }
}

/// Everything the verdict looks at besides the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub exit: ChildExit,
    /// `--cycles` (None in pure soak mode).
    pub planned_cycles: Option<u64>,
    /// The child's final report; None if it never got there.
    pub done: bool,
    pub stop_reason: Option<String>,
    pub lost_connections: u64,
    pub shutdown: Option<ShutdownReport>,
    pub fatal: Option<String>,
}

const TOO_FEW: &str = "n/a (too few points)";

/// Compares the samples with the thresholds: one check per line of the verdict table.
pub fn evaluate(samples: &[Sample], run: &RunOutcome, th: &Thresholds) -> Vec<Check> {
    let mut checks = Vec::new();

    checks.push(Check::new(
        "child_exit",
        match &run.fatal {
            Some(fatal) => format!("{} ({fatal})", run.exit),
            None => run.exit.to_string(),
        },
        "exit code 0",
        run.exit.is_clean() && run.fatal.is_none(),
    ));

    let ran = samples.len() as u64;
    let (cycles_value, cycles_threshold, cycles_pass) = match run.planned_cycles {
        Some(planned) => (
            format!("{ran} of {planned}"),
            format!("{planned}"),
            ran == planned && run.done,
        ),
        None => (
            format!("{ran} (soak)"),
            ">= 1".to_owned(),
            ran >= 1 && run.done,
        ),
    };
    let cycles_value = match &run.stop_reason {
        Some(reason) if !cycles_pass => format!("{cycles_value}; {reason}"),
        _ => cycles_value,
    };
    checks.push(Check::new(
        "cycles_completed",
        cycles_value,
        cycles_threshold,
        cycles_pass,
    ));

    let confirmed = samples.iter().filter(|s| s.confirmed).count() as u64;
    let first_unconfirmed = samples.iter().find(|s| !s.confirmed).map(|s| {
        format!(
            "; first failure in cycle {}: {}",
            s.cycle,
            s.error.as_deref().unwrap_or("unconfirmed")
        )
    });
    checks.push(Check::new(
        "playback_confirmed",
        format!(
            "{confirmed} of {ran}{}",
            first_unconfirmed.unwrap_or_default()
        ),
        "every cycle",
        ran > 0 && confirmed == ran,
    ));

    let inits: Vec<u64> = samples
        .iter()
        .filter_map(|s| s.metrics.as_ref())
        .map(|m| m.runtime_host_inits_total)
        .collect();
    let inits_pass = !inits.is_empty() && inits.iter().all(|&v| v == th.host_inits_total);
    checks.push(Check::new(
        "runtime_host_inits_total",
        match (inits.iter().min(), inits.iter().max()) {
            (Some(lo), Some(hi)) if lo == hi => format!("{hi}"),
            (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
            _ => "no metrics".to_owned(),
        },
        format!("== {}", th.host_inits_total),
        inits_pass,
    ));

    let growth = |id: &str, get: fn(&Sample) -> u64, tolerance: u64| -> Check {
        match (samples.first(), samples.last()) {
            (Some(first), Some(last)) => {
                let (a, b) = (get(first), get(last));
                Check::new(
                    id,
                    format!("{b} (first {a})"),
                    format!("<= {} (first + {tolerance})", a + tolerance),
                    b <= a + tolerance,
                )
            }
            _ => Check::new(id, "no samples", format!("first + {tolerance}"), false),
        }
    };
    checks.push(growth("threads", |s| s.threads, th.threads_tolerance));
    checks.push(growth("fds", |s| s.fds, th.fds_tolerance));
    checks.push(growth("sidecars", |s| s.sidecars, th.sidecars_tolerance));
    let zombies = samples.last().map(|s| s.zombies);
    checks.push(Check::new(
        "zombies",
        zombies.map_or_else(|| "no samples".to_owned(), |z| z.to_string()),
        format!("<= {}", th.zombies_max),
        zombies.is_some_and(|z| z <= th.zombies_max),
    ));
    checks.push(growth("rings", |s| s.rings, th.rings_tolerance));
    checks.push(growth(
        "shadow_copies",
        |s| s.shadow_copies,
        th.shadow_copies_tolerance,
    ));

    let fit = |ys: &[f64]| {
        if (ys.len() as u64) < th.min_trend_points {
            None
        } else {
            slope(ys)
        }
    };
    let trend = |id: &str, get: fn(&Sample) -> u64| -> Check {
        let ys: Vec<f64> = samples.iter().map(|s| get(s) as f64).collect();
        let s = fit(&ys);
        Check::new(
            id,
            s.map_or_else(|| TOO_FEW.to_owned(), |s| format!("{s:+.4}/cycle")),
            format!("< {}/cycle", th.count_slope_max),
            // Too few points to fit a line: nothing to trend (the growth checks still hold).
            s.is_none_or(|s| s < th.count_slope_max),
        )
    };
    checks.push(trend("threads_slope", |s| s.threads));
    checks.push(trend("fds_slope", |s| s.fds));
    checks.push(trend("rings_slope", |s| s.rings));
    checks.push(trend("processes_slope", Sample::processes));

    let warmup = (th.rss_warmup_cycles as usize).min(samples.len() / 2);
    let rss: Vec<f64> = samples[warmup..]
        .iter()
        // VmRSS counts in kB of 1024 bytes: already KiB.
        .map(|s| s.rss_kb as f64)
        .collect();
    let rss_slope = fit(&rss);
    checks.push(Check::new(
        "rss_slope",
        format!(
            "{} (cycles {}..{})",
            rss_slope.map_or_else(|| TOO_FEW.to_owned(), |s| format!("{s:+.1} KiB/cycle")),
            warmup + 1,
            samples.len()
        ),
        format!(
            "< {} KiB/cycle after {} warm-up cycles",
            th.rss_slope_max_kib, th.rss_warmup_cycles
        ),
        rss_slope.is_none_or(|s| s < th.rss_slope_max_kib),
    ));

    let lost = run
        .lost_connections
        .max(samples.last().map_or(0, |s| s.lost_connections));
    checks.push(Check::new(
        "lost_connections",
        lost.to_string(),
        format!("<= {}", th.lost_connections_max),
        lost <= th.lost_connections_max,
    ));

    let clients: Vec<(u64, u64)> = samples
        .iter()
        .filter_map(|s| s.max_clients().map(|c| (s.cycle, c)))
        .collect();
    // The first cycle that reached the maximum.
    let worst = clients
        .iter()
        .max_by_key(|&&(cycle, c)| (c, std::cmp::Reverse(cycle)));
    checks.push(Check::new(
        "player_clients_active",
        worst.map_or_else(
            || "no metrics".to_owned(),
            |(cycle, c)| format!("max {c} (first in cycle {cycle})"),
        ),
        format!("<= {}", th.clients_active_max),
        worst.is_some_and(|&(_, c)| c <= th.clients_active_max),
    ));

    let (shutdown_value, shutdown_pass) = match &run.shutdown {
        Some(s) => {
            let threads = s
                .runtime_threads_after
                .map_or_else(|| "?".to_owned(), |t| t.to_string());
            let value = match &s.error {
                Some(e) => format!("failed: {e}"),
                None => format!(
                    "ok, runtime_threads {threads}, sidecars {}",
                    s.sidecars_after
                ),
            };
            (
                value,
                s.ok && s.runtime_threads_after == Some(0) && s.sidecars_after == 0,
            )
        }
        None => ("not reached".to_owned(), false),
    };
    checks.push(Check::new(
        "final_shutdown",
        shutdown_value,
        "ok, runtime_threads 0, sidecars 0",
        shutdown_pass,
    ));

    checks
}

pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.pass)
}
