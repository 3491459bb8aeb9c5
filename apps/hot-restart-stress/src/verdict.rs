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
    /// The runtime's `client_lease_ms` (`--lease-ms`, else its default): how long an
    /// abandoned client stays alive. With the cycle time it bounds `player_clients_active`
    /// (see [`clients_bound`]).
    pub lease_ms: u64,
    /// `--interval-ms`: added to each cycle's time, since nobody polls in between either.
    pub interval_ms: u64,
    /// With `--events port`: how long a dead isolate's client can outlive it. It is evicted
    /// at the first post after the isolate died, and an idle port gets a heartbeat every
    /// 250 ms, so this (with room for the post and the pump's round) replaces the lease in
    /// the clients bound.
    #[serde(default)]
    pub port_detect_ms: Option<u64>,
}

/// `port_detect_ms` of `--events port`: twice the runtime's heartbeat interval (250 ms).
pub const PORT_DETECT_MS: u64 = 500;

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
            lease_ms: crate::cli::RUNTIME_DEFAULT_LEASE_MS,
            interval_ms: 0,
            port_detect_ms: None,
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
             - player_clients_active <= 1 + min(ceil(lease / shortest cycle time), cycles since the last prepare_hot_restart), right after every attach and after every cycle: an abandoned client lives one lease (--lease-ms, else the runtime's default, now {lease} ms) after its isolate died, so with cycles without prepare in a row at most ceil(lease / shortest cycle time) + 1 are alive at once (the cycle time is measured, plus --interval-ms); every prepare evicts them all, so the count restarts there (with-prepare: 1, both: 2). With --events port the lease is replaced by {port} ms: a dead isolate's client goes at the first post to its closed port (a heartbeat at the latest 250 ms after the last post), so with cycles of 500 ms or more the bound is 2\n\
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
            lease = self.lease_ms,
            port = PORT_DETECT_MS,
        )
    }
}

/// The bound on `player_clients_active` in each cycle, derived from the lease and the
/// measured cycle times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientsBound {
    /// How long an abandoned client can outlive its isolate: the lease, or with
    /// `--events port` the port-close detection time.
    pub lease_ms: u64,
    /// True when `lease_ms` is the port-close detection time (`--events port`).
    #[serde(default)]
    pub by_port: bool,
    /// The shortest cycle plus `--interval-ms`: the least time between two attaches.
    pub shortest_cycle_ms: u64,
    /// `ceil(lease / shortest cycle)`: how many abandoned clients one lease can hold.
    pub stale_max: u64,
    /// The bound of each sample, in order.
    pub per_cycle: Vec<u64>,
    /// The largest per-cycle bound.
    pub max: u64,
}

impl ClientsBound {
    pub fn describe(&self) -> String {
        format!(
            "1 + min(ceil({} {} / {} ms) = {}, cycles since the last prepare): max {}",
            self.basis(),
            self.lease_ms,
            self.shortest_cycle_ms,
            self.stale_max,
            self.max
        )
    }

    /// What bounds an abandoned client's life: the lease or the port-close detection.
    pub fn basis(&self) -> &'static str {
        if self.by_port {
            "port close detection"
        } else {
            "lease"
        }
    }
}

/// An abandoned client is evicted one lease after its last call (its isolate's last poll)
/// or at the next prepare_hot_restart, whichever comes first. The client of the cycle `m`
/// cycles back died at least `(m - 1)` shortest cycles before this cycle's attach, so it
/// can only be alive while `(m - 1) * shortest < lease`, i.e. for `m <= ceil(lease /
/// shortest)`; and only if no cycle since (this one included) called prepare. Hence at most
/// `1 + min(ceil(lease / shortest), cycles since the last prepare)` clients are alive.
pub fn clients_bound(samples: &[Sample], th: &Thresholds) -> ClientsBound {
    let shortest = samples
        .iter()
        .map(|s| s.cycle_ms + th.interval_ms)
        .min()
        .unwrap_or(0)
        .max(1);
    let lifetime = th.port_detect_ms.unwrap_or(th.lease_ms);
    let stale_max = lifetime.div_ceil(shortest);
    let mut since_prepare = 0u64;
    let per_cycle: Vec<u64> = samples
        .iter()
        .map(|s| {
            // Prepare runs before this cycle's client attaches: nothing older survives it.
            if s.mode == crate::cli::mode_name(true) {
                since_prepare = 0;
            }
            let bound = 1 + stale_max.min(since_prepare);
            since_prepare += 1;
            bound
        })
        .collect();
    ClientsBound {
        lease_ms: lifetime,
        by_port: th.port_detect_ms.is_some(),
        shortest_cycle_ms: shortest,
        stale_max,
        max: per_cycle.iter().copied().max().unwrap_or(1),
        per_cycle,
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
    /// Windows: an exception ended the child (its exit code is the NTSTATUS).
    Exception {
        code: u32,
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
            ChildExit::Exception { code, name } => {
                write!(f, "crashed with exception 0x{code:08X} ({name})")
            }
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

    let bound = clients_bound(samples, th);
    let clients: Vec<(u64, u64, u64)> = samples
        .iter()
        .zip(&bound.per_cycle)
        .filter_map(|(s, &b)| s.max_clients().map(|c| (s.cycle, c, b)))
        .collect();
    // The first cycle that reached the maximum, and the first over its bound.
    let worst = clients
        .iter()
        .max_by_key(|&&(cycle, c, _)| (c, std::cmp::Reverse(cycle)));
    let over = clients.iter().find(|&&(_, c, b)| c > b);
    checks.push(Check::new(
        "player_clients_active",
        match (worst, over) {
            (None, _) => "no metrics".to_owned(),
            (Some((cycle, c, _)), None) => format!("max {c} (first in cycle {cycle})"),
            (Some((_, c, _)), Some((cycle, n, b))) => {
                format!("max {c}; {n} in cycle {cycle} over its bound {b}")
            }
        },
        format!("<= {}", bound.describe()),
        worst.is_some() && over.is_none(),
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
