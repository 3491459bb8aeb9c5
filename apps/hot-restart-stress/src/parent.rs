//! The parent process: prepares the run directory, re-executes itself as the child that
//! loads the library, reads its samples, detects a crash or a stall, judges and reports.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Args;
use crate::report::{self, Summary};
use crate::sample::{ChildMessage, Sample};
use crate::verdict::{self, ChildExit, RunOutcome, Thresholds};

/// How long the child may print nothing before it is judged hung and killed: longer than
/// anything one cycle can legitimately take (two confirmations with their polls, the calls
/// of the cycle each bounded by the watchdog, the interval, the final shutdown).
pub fn stall_limit(args: &Args) -> Duration {
    let confirm = Duration::from_millis(args.confirm_timeout_ms);
    let call = Duration::from_millis(args.call_timeout_ms);
    2 * confirm
        + 6 * call
        + Duration::from_millis(args.interval_ms + args.isolate_ms)
        + crate::child::shutdown_bound(call)
        + Duration::from_secs(5)
}

pub fn exit_of(status: std::process::ExitStatus) -> ChildExit {
    match stellatune_probe::exit_of(status) {
        stellatune_probe::Exit::Code(code) => ChildExit::Code { code },
        stellatune_probe::Exit::Signal { signal, name } => ChildExit::Signal {
            signal,
            name: name.to_owned(),
        },
        stellatune_probe::Exit::Exception { code, name } => ChildExit::Exception {
            code,
            name: name.to_owned(),
        },
        stellatune_probe::Exit::Unknown => ChildExit::Unknown,
    }
}

/// The crash in `exit` in words, if it is one.
pub fn crash_of(exit: &ChildExit) -> Option<String> {
    match exit {
        ChildExit::Signal { signal, name } => Some(format!("signal {signal} ({name})")),
        ChildExit::Exception { code, name } => Some(format!("exception 0x{code:08X} ({name})")),
        _ => None,
    }
}

/// Per-cycle progress: an indicatif bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(planned: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = match planned {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}")
                    .expect("valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {pos} cycles {elapsed_precise} {msg}")
                    .expect("valid template"),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    fn line(&self, line: &str, important: bool) {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(line.to_owned());
                if important {
                    bar.println(line);
                }
            }
            None => println!("{line}"),
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn progress_line(sample: &Sample, planned: Option<u64>) -> String {
    let of = planned.map_or_else(String::new, |n| format!("/{n}"));
    let clients = match (&sample.metrics, sample.peak_clients) {
        (Some(m), Some(peak)) => format!("{} (peak {peak})", m.player_clients_active),
        (Some(m), None) => m.player_clients_active.to_string(),
        (None, _) => "?".to_owned(),
    };
    let status = if sample.confirmed { "ok" } else { "FAILED" };
    let mut line = format!(
        "cycle {}{of} {:<15} {status} {:>5} ms  threads {} fds {} rss {:.1} MiB clients {clients} sidecars {} rings {} shadow {} lost {}",
        sample.cycle,
        sample.mode,
        sample.cycle_ms,
        sample.threads,
        sample.fds,
        sample.rss_kb as f64 / 1024.0,
        sample.sidecars,
        sample.rings,
        sample.shadow_copies,
        sample.lost_connections,
    );
    if sample.shadow_mapped > sample.shadow_copies {
        line.push_str(&format!(" mapped-shadow {}", sample.shadow_mapped));
    }
    if sample.zombies > 0 {
        line.push_str(&format!(" zombies {}", sample.zombies));
    }
    if let Some(error) = &sample.error {
        line.push_str(&format!("  ({error})"));
    }
    line
}

pub fn run(args: &Args, raw_args: Vec<OsString>) -> ExitCode {
    match run_inner(args, raw_args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hot-restart-stress: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: &Args, raw_args: Vec<OsString>) -> Result<bool, String> {
    let lib = crate::resolve_lib(args)?;
    let out_root = args.out.clone().unwrap_or_else(crate::default_out_root);
    let run_dir = crate::make_run_dir(&out_root)?;
    crate::write_wav(&crate::track_path(&run_dir), crate::TRACK_SECONDS)?;
    let thresholds = Thresholds {
        rss_warmup_cycles: args.warmup,
        lease_ms: args.effective_lease_ms(),
        interval_ms: args.interval_ms,
        port_detect_ms: (args.events == crate::cli::Events::Port)
            .then_some(crate::verdict::PORT_DETECT_MS),
        ..Thresholds::default()
    };
    let planned = args.cycle_limit();
    println!(
        "hot-restart-stress: {} cycles{}, mode {}, events {}, route {}, lease {} ms{}, lib {}",
        planned.map_or_else(|| "unbounded".to_owned(), |n| n.to_string()),
        args.duration
            .map_or_else(String::new, |d| format!(" within {}s", d.as_secs())),
        args.mode
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        args.events
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        args.route,
        args.effective_lease_ms(),
        if args.lease_ms.is_none() {
            " (runtime default)"
        } else {
            ""
        },
        lib.display()
    );
    println!("run directory: {}", run_dir.display());

    let log_path = run_dir.join("child.log");
    let started = Instant::now();
    let (mut child, rx, reader) = start_child(&[], &raw_args, &run_dir)?;

    let progress = Progress::new(planned);
    let stall = stall_limit(args);
    let mut samples: Vec<Sample> = Vec::new();
    let mut outcome = RunOutcome {
        exit: ChildExit::Unknown,
        planned_cycles: planned,
        done: false,
        stop_reason: None,
        lost_connections: 0,
        shutdown: None,
        fatal: None,
    };
    let mut child_pid = None;
    let mut noise_lines = 0u64;
    loop {
        match rx.recv_timeout(stall) {
            Ok(line) => match serde_json::from_str::<ChildMessage>(&line) {
                Ok(ChildMessage::Hello { pid, .. }) => child_pid = Some(pid),
                Ok(ChildMessage::Sample(sample)) => {
                    let text = progress_line(&sample, planned);
                    progress.line(&text, !sample.confirmed);
                    samples.push(sample);
                }
                Ok(ChildMessage::Done {
                    lost_connections,
                    stop_reason,
                    shutdown,
                    ..
                }) => {
                    outcome.done = true;
                    outcome.lost_connections = lost_connections;
                    outcome.stop_reason = Some(stop_reason);
                    outcome.shutdown = shutdown;
                }
                Ok(ChildMessage::Fatal { message }) => {
                    progress.note(&format!("child: {message}"));
                    outcome.fatal = Some(message);
                }
                Err(_) => noise_lines += 1,
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                outcome.exit = ChildExit::Stalled {
                    after_ms: stall.as_millis() as u64,
                };
                progress.note(&format!(
                    "child printed nothing for {} s: killed",
                    stall.as_secs()
                ));
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                outcome.exit = child.wait().map_or(ChildExit::Unknown, exit_of);
                break;
            }
        }
    }
    let _ = reader.join();
    progress.finish();
    if let Some(crash) = crash_of(&outcome.exit) {
        println!(
            "child process (pid {}) crashed: {crash} after {} samples; its log: {}",
            child_pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            samples.len(),
            log_path.display()
        );
    }

    let checks = verdict::evaluate(&samples, &outcome, &thresholds);
    let pass = verdict::passed(&checks);
    let summary = Summary::new(
        args,
        &lib,
        &run_dir,
        started.elapsed(),
        &samples,
        &outcome,
        &thresholds,
        checks,
        noise_lines,
    );
    write_outputs(&run_dir, &samples, &summary)?;
    println!();
    print!("{}", report::verdict_table(&summary.checks));
    println!();
    let b = &summary.stats.clients_bound;
    println!(
        "clients bound: 1 + min(ceil({} {} ms / shortest cycle {} ms) = {}, cycles since the last prepare) = at most {} in this run (max seen: {})",
        b.basis(),
        b.lease_ms,
        b.shortest_cycle_ms,
        b.stale_max,
        b.max,
        summary
            .stats
            .max_clients_active
            .map_or_else(|| "?".to_owned(), |c| c.to_string())
    );
    println!(
        "verdict: {} ({} of {} checks passed)",
        if pass { "PASS" } else { "FAIL" },
        summary.checks.iter().filter(|c| c.pass).count(),
        summary.checks.len()
    );
    println!("report: {}", run_dir.join("summary.md").display());
    Ok(pass)
}

fn write_outputs(run_dir: &Path, samples: &[Sample], summary: &Summary) -> Result<(), String> {
    let write = |name: &str, text: String| -> Result<PathBuf, String> {
        let path = run_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    write("samples.csv", report::samples_csv(samples))?;
    write(
        "summary.json",
        serde_json::to_string_pretty(summary).expect("summary serialises") + "\n",
    )?;
    write("summary.md", report::summary_md(summary))?;
    if let Err(e) = report::plot(
        &run_dir.join(report::PLOT_FILE),
        samples,
        &summary.thresholds,
    ) {
        eprintln!("hot-restart-stress: plot not written: {e}");
    }
    Ok(())
}

/// Re-executes this program as the child (`<subcommand...> <args> --child --run-dir DIR`),
/// its stderr (the runtime's log) into `child.log` of the run directory, and streams its
/// stdout lines through the returned channel from a reader thread.
pub fn start_child(
    subcommand: &[&str],
    raw_args: &[std::ffi::OsString],
    run_dir: &std::path::Path,
) -> Result<(Child, mpsc::Receiver<String>, std::thread::JoinHandle<()>), String> {
    let log_path = run_dir.join("child.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut child = Command::new(exe)
        .args(subcommand)
        .args(raw_args)
        .arg("--child")
        .arg("--run-dir")
        .arg(run_dir)
        // The runtime logs to stderr, which goes to child.log: no colour codes there.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the child process: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok((child, rx, reader))
}
