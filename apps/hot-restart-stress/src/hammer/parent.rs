//! The hammer's parent: starts the child, follows its progress, gets a backtrace of a stuck
//! child, reports a crash by its signal, judges the result and writes the report.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::calls::Call;
use super::{HammerArgs, HammerMessage, HammerResult, InFlight};
use crate::ffi::{OK, documented_name};
use crate::report::verdict_table;
use crate::verdict::{Check, ChildExit, passed};

/// How long gdb may take to attach and print every thread's stack.
const GDB_LIMIT: Duration = Duration::from_secs(90);
/// How often the terminal gets a progress line.
const PRINT_EVERY: Duration = Duration::from_secs(5);

/// hammer.json.
#[derive(Debug, Serialize)]
struct Report<'a> {
    verdict: &'static str,
    checks: &'a [Check],
    exit: &'a ChildExit,
    stuck: Option<&'a StuckReport>,
    last_in_flight: &'a [InFlight],
    result: Option<&'a HammerResult>,
    duration_s: f64,
    threads: u64,
    install_plugin: Option<String>,
    lib: String,
    run_dir: String,
}

#[derive(Debug, Clone, Serialize)]
struct StuckReport {
    reason: String,
    stuck: Vec<InFlight>,
    in_flight: Vec<InFlight>,
    backtrace_file: Option<String>,
}

pub fn run(args: &HammerArgs, raw_args: Vec<OsString>) -> ExitCode {
    match run_inner(args, raw_args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hot-restart-stress hammer: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: &HammerArgs, raw_args: Vec<OsString>) -> Result<bool, String> {
    let lib = crate::resolve_lib_path(args.lib.as_deref())?;
    let out_root = args
        .out
        .clone()
        .unwrap_or_else(|| crate::default_out_root().join("hammer"));
    let run_dir = crate::make_run_dir(&out_root)?;
    if let Some(dir) = &args.install_plugin {
        if !dir.join("plugin.json").is_file() {
            return Err(format!(
                "--install-plugin {}: no plugin.json there (package it with scripts/package-plugins.sh)",
                dir.display()
            ));
        }
    }
    println!(
        "hammer: {} threads for {:.0} s, call limit {} ms, lease {} ms, plugin {}, lib {}",
        args.threads,
        args.duration.as_secs_f64(),
        args.call_limit_ms,
        args.lease_ms,
        args.install_plugin
            .as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string()),
        lib.display()
    );
    println!("run directory: {}", run_dir.display());

    let log_path = run_dir.join("child.log");
    let (mut child, rx, reader) = crate::parent::start_child(&["hammer"], &raw_args, &run_dir)?;

    // The child's own watchdog fires after the call limit; this bound only catches a child
    // so wedged that even its watchdog thread cannot write.
    let silence_limit = Duration::from_millis(args.call_limit_ms) + Duration::from_secs(30);
    let mut pid = None;
    let mut baseline = None;
    let mut result: Option<HammerResult> = None;
    let mut stuck: Option<StuckReport> = None;
    let mut last_in_flight: Vec<InFlight> = Vec::new();
    let mut fatal = None;
    let mut last_print = Instant::now();
    let exit = loop {
        match rx.recv_timeout(silence_limit) {
            Ok(line) => match serde_json::from_str::<HammerMessage>(&line) {
                Ok(HammerMessage::Hello {
                    pid: p,
                    baseline_threads,
                    seed,
                }) => {
                    pid = Some(p);
                    baseline = Some(baseline_threads);
                    println!(
                        "child pid {p}, {baseline_threads} thread(s) before the first init, seed {seed}"
                    );
                }
                Ok(HammerMessage::Progress {
                    elapsed_ms,
                    calls,
                    in_flight,
                }) => {
                    if last_print.elapsed() >= PRINT_EVERY {
                        last_print = Instant::now();
                        println!(
                            "  {:>5.1} s: {calls} calls, {} in flight",
                            elapsed_ms as f64 / 1000.0,
                            in_flight.len()
                        );
                    }
                    last_in_flight = in_flight;
                }
                Ok(HammerMessage::Stuck {
                    reason,
                    stuck: calls,
                    in_flight,
                }) => {
                    println!("WATCHDOG: {reason}");
                    for c in &calls {
                        println!(
                            "  {} stuck in {} for {:.1} s",
                            c.thread,
                            c.call,
                            c.elapsed_ms as f64 / 1000.0
                        );
                    }
                    let backtrace_file = match pid {
                        Some(pid) if !args.no_gdb => backtrace(pid, &run_dir, &calls),
                        _ => None,
                    };
                    stuck = Some(StuckReport {
                        reason,
                        stuck: calls,
                        in_flight,
                        backtrace_file,
                    });
                    let _ = child.kill();
                    break wait_exit(&mut child);
                }
                Ok(HammerMessage::Result(r)) => result = Some(*r),
                Ok(HammerMessage::Fatal { message }) => {
                    println!("child: {message}");
                    fatal = Some(message);
                }
                Err(e) => eprintln!("hammer: unreadable line from the child ({e}): {line}"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                println!(
                    "child printed nothing for {} s: killed",
                    silence_limit.as_secs()
                );
                let _ = child.kill();
                let _ = child.wait();
                break ChildExit::Stalled {
                    after_ms: silence_limit.as_millis() as u64,
                };
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break wait_exit(&mut child),
        }
    };
    let _ = reader.join();
    if let (Some(crash), None) = (crate::parent::crash_of(&exit), &stuck) {
        println!(
            "child process (pid {}) crashed: {crash}; calls in flight at the last progress report: {}; its log: {}",
            pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            describe_in_flight(&last_in_flight),
            log_path.display()
        );
    }

    let checks = evaluate(
        &exit,
        fatal.as_deref(),
        stuck.as_ref(),
        result.as_ref(),
        baseline,
    );
    let pass = passed(&checks);
    if let Some(r) = &result {
        println!();
        print!("{}", per_call_table(r));
        println!();
        print!("{}", per_code_table(r));
        for (title, list) in [
            ("codes stellatune.h does not define", &r.undocumented),
            ("STELLATUNE_ERR_INTERNAL", &r.internal),
            (
                "note: defined codes the header does not list for that function",
                &r.unlisted,
            ),
        ] {
            if !list.is_empty() {
                println!("\n{title}:");
                for f in list {
                    println!(
                        "  {} -> {} ({}) x{}, first on {}: {}",
                        f.call, f.code, f.name, f.count, f.thread, f.message
                    );
                }
            }
        }
    }
    println!();
    print!("{}", verdict_table(&checks));
    let report = Report {
        verdict: if pass { "pass" } else { "fail" },
        checks: &checks,
        exit: &exit,
        stuck: stuck.as_ref(),
        last_in_flight: &last_in_flight,
        result: result.as_ref(),
        duration_s: args.duration.as_secs_f64(),
        threads: args.threads,
        install_plugin: args
            .install_plugin
            .as_ref()
            .map(|p| p.display().to_string()),
        lib: lib.display().to_string(),
        run_dir: run_dir.display().to_string(),
    };
    let json_path = run_dir.join("hammer.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report).expect("report serialises") + "\n",
    )
    .map_err(|e| format!("{}: {e}", json_path.display()))?;
    let md_path = run_dir.join("summary.md");
    std::fs::write(&md_path, summary_md(&report))
        .map_err(|e| format!("{}: {e}", md_path.display()))?;
    println!("report: {}", md_path.display());
    println!("{}", closing_line(pass, args, result.as_ref(), &checks));
    Ok(pass)
}

fn wait_exit(child: &mut Child) -> ChildExit {
    child
        .wait()
        .map_or(ChildExit::Unknown, crate::parent::exit_of)
}

fn describe_in_flight(calls: &[InFlight]) -> String {
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|c| format!("{} in {} ({} ms)", c.thread, c.call, c.elapsed_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Attaches gdb to the stuck child and saves every thread's stack to backtrace.txt; prints
/// the stacks of the stuck threads. `None` when gdb is missing or fails.
fn backtrace(pid: u32, run_dir: &Path, stuck: &[InFlight]) -> Option<String> {
    let path = run_dir.join("backtrace.txt");
    let file = std::fs::File::create(&path).ok()?;
    let mut gdb = Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt"])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| println!("  (no backtrace: cannot run gdb: {e})"))
        .ok()?;
    let started = Instant::now();
    while gdb.try_wait().ok()?.is_none() {
        if started.elapsed() > GDB_LIMIT {
            let _ = gdb.kill();
            let _ = gdb.wait();
            println!("  (gdb did not finish within {} s)", GDB_LIMIT.as_secs());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    // gdb heads each stack with `Thread N (Thread 0x... (LWP n) "name"):`.
    for section in text.split("\nThread ").skip(1) {
        let header = section.lines().next().unwrap_or_default();
        if stuck
            .iter()
            .any(|c| header.contains(&format!("\"{}\"", c.thread)))
        {
            println!("  backtrace of Thread {header}");
            for line in section.lines().skip(1).take(30) {
                println!("    {line}");
            }
        }
    }
    println!("  every thread's backtrace: {}", path.display());
    Some(path.display().to_string())
}

fn evaluate(
    exit: &ChildExit,
    fatal: Option<&str>,
    stuck: Option<&StuckReport>,
    result: Option<&HammerResult>,
    baseline: Option<u64>,
) -> Vec<Check> {
    let check = |id: &str, value: String, threshold: &str, pass: bool| Check {
        id: id.to_owned(),
        value,
        threshold: threshold.to_owned(),
        pass,
    };
    let mut checks = vec![check(
        "child_exit",
        match (fatal, stuck) {
            (Some(f), _) => format!("{exit} ({f})"),
            // The parent killed it after the watchdog fired: not a crash of its own.
            (None, Some(_)) => format!("{exit}: killed after the watchdog fired"),
            (None, None) => exit.to_string(),
        },
        "exit code 0",
        exit.is_clean() && fatal.is_none(),
    )];
    checks.push(check(
        "watchdog",
        match stuck {
            Some(s) => format!("{}: {}", s.reason, describe_in_flight(&s.stuck)),
            None => "no stuck call".to_owned(),
        },
        "no call over --call-limit-ms, progress within it",
        stuck.is_none(),
    ));
    let Some(r) = result else {
        checks.push(check(
            "result",
            "not reached".to_owned(),
            "the child reports its tally",
            false,
        ));
        return checks;
    };
    let kinds = r.per_call.len();
    let missing: Vec<&str> = Call::ALL
        .iter()
        .map(|c| c.name())
        .filter(|name| !r.per_call.contains_key(*name))
        .collect();
    checks.push(check(
        "calls_made",
        if missing.is_empty() {
            format!(
                "{} calls, {kinds} of {} kinds",
                r.total_calls,
                Call::ALL.len()
            )
        } else {
            format!(
                "{} calls, {kinds} of {} kinds; never made: {}",
                r.total_calls,
                Call::ALL.len(),
                missing.join(", ")
            )
        },
        "every kind at least once",
        missing.is_empty(),
    ));
    let count = |list: &[super::Finding]| list.iter().map(|f| f.count).sum::<u64>();
    let first = |list: &[super::Finding]| {
        list.first().map_or_else(String::new, |f| {
            format!(
                "; first: {} -> {} on {}: {}",
                f.call, f.code, f.thread, f.message
            )
        })
    };
    checks.push(check(
        "undocumented_codes",
        format!("{}{}", count(&r.undocumented), first(&r.undocumented)),
        "0 (every code defined in stellatune.h)",
        r.undocumented.is_empty(),
    ));
    checks.push(check(
        "internal_errors",
        format!("{}{}", count(&r.internal), first(&r.internal)),
        "0 STELLATUNE_ERR_INTERNAL",
        r.internal.is_empty(),
    ));
    checks.push(check(
        "error_names",
        format!(
            "{} wrong{}",
            r.bad_error_names.len(),
            r.bad_error_names
                .first()
                .map_or_else(String::new, |b| format!(": {b}"))
        ),
        "0",
        r.bad_error_names.is_empty(),
    ));
    let f = &r.final_state;
    checks.push(check(
        "final_shutdown",
        if f.shutdown_code == OK {
            format!("ok in {} ms", f.shutdown_ms)
        } else {
            format!(
                "{} ({}) in {} ms: {}",
                f.shutdown_code,
                documented_name(f.shutdown_code).unwrap_or("undefined"),
                f.shutdown_ms,
                f.shutdown_message
            )
        },
        "STELLATUNE_OK",
        f.shutdown_code == OK,
    ));
    let baseline = baseline.unwrap_or(f.baseline_threads);
    checks.push(check(
        "threads_after",
        format!("{} (baseline {baseline})", f.threads),
        "<= baseline (the count before the first init)",
        f.threads <= baseline,
    ));
    checks.push(check(
        "child_processes_after",
        format!("{} live, {} zombie", f.live_children, f.zombies),
        "0 (no sidecar left)",
        f.live_children == 0 && f.zombies == 0,
    ));
    checks.push(check(
        "ring_files_after",
        f.rings.to_string(),
        "0",
        f.rings == 0,
    ));
    checks.push(check(
        "shadow_copies_after",
        f.shadow_copies.to_string(),
        "0",
        f.shadow_copies == 0,
    ));
    checks.push(check(
        "metrics_after",
        f.metrics.as_ref().map_or_else(
            || "metrics_json failed".to_owned(),
            |m| {
                format!(
                    "state {}, clients {}, runtime_threads {}, sidecars running {}",
                    m.state, m.player_clients_active, m.runtime_threads, m.asio_sidecar_running
                )
            },
        ),
        "clients 0, runtime_threads 0, sidecars running 0",
        f.metrics.as_ref().is_some_and(|m| {
            m.player_clients_active == 0 && m.runtime_threads == 0 && m.asio_sidecar_running == 0
        }),
    ));
    checks
}

fn code_label(code: i32) -> String {
    let name = documented_name(code).unwrap_or("UNDEFINED");
    name.strip_prefix("STELLATUNE_ERR_")
        .or_else(|| name.strip_prefix("STELLATUNE_"))
        .unwrap_or(name)
        .to_owned()
}

fn per_call_table(r: &HammerResult) -> String {
    let mut out = String::from("| call | calls | return codes |\n| --- | ---: | --- |\n");
    for (call, codes) in &r.per_call {
        let total: u64 = codes.iter().map(|(_, n)| n).sum();
        let mut by_count: Vec<(&i32, &u64)> = codes.iter().map(|(c, n)| (c, n)).collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let text: Vec<String> = by_count
            .iter()
            .map(|(code, n)| format!("{} {n}", code_label(**code)))
            .collect();
        out.push_str(&format!("| {call} | {total} | {} |\n", text.join(", ")));
    }
    out
}

fn per_code_table(r: &HammerResult) -> String {
    let mut totals: BTreeMap<i32, u64> = BTreeMap::new();
    for codes in r.per_call.values() {
        for (code, n) in codes {
            *totals.entry(*code).or_default() += n;
        }
    }
    let mut out = String::from("| code | name | calls |\n| ---: | --- | ---: |\n");
    for (code, n) in totals.iter().rev() {
        out.push_str(&format!(
            "| {code} | {} | {n} |\n",
            documented_name(*code).unwrap_or("(undefined)")
        ));
    }
    out
}

fn summary_md(report: &Report<'_>) -> String {
    let mut out = format!(
        "# Lifecycle hammer: {}\n\n- library: `{}`\n- {} threads for {:.0} s; plugin: {}\n- child: {}\n",
        if report.verdict == "pass" {
            "PASS"
        } else {
            "FAIL"
        },
        report.lib,
        report.threads,
        report.duration_s,
        report
            .install_plugin
            .as_deref()
            .map_or_else(|| "none".to_owned(), |p| format!("`{p}`")),
        report.exit,
    );
    if let Some(r) = report.result {
        out.push_str(&format!(
            "- {} calls in {:.1} s ({:.0}/s), seed {}\n",
            r.total_calls,
            r.ran_ms as f64 / 1000.0,
            r.total_calls as f64 * 1000.0 / r.ran_ms.max(1) as f64,
            r.seed
        ));
    }
    if let Some(s) = report.stuck {
        out.push_str(&format!(
            "- watchdog: {}: {}; backtrace: {}\n",
            s.reason,
            describe_in_flight(&s.stuck),
            s.backtrace_file.as_deref().unwrap_or("none")
        ));
    }
    out.push_str("\n## Verdict\n\n");
    out.push_str(&verdict_table(report.checks));
    if let Some(r) = report.result {
        out.push_str("\n## Calls\n\n");
        out.push_str(&per_call_table(r));
        out.push_str("\n## Return codes\n\n");
        out.push_str(&per_code_table(r));
        if !r.unlisted.is_empty() {
            out.push_str(
                "\n## Notes: defined codes the header does not list for that function\n\n",
            );
            for f in &r.unlisted {
                out.push_str(&format!(
                    "- `{}` → {} ({}) ×{}: {}\n",
                    f.call, f.code, f.name, f.count, f.message
                ));
            }
        }
    }
    out
}

fn closing_line(
    pass: bool,
    args: &HammerArgs,
    result: Option<&HammerResult>,
    checks: &[Check],
) -> String {
    let verdict = if pass { "PASS" } else { "FAIL" };
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.id.as_str())
        .collect();
    match result {
        Some(r) => {
            let f = &r.final_state;
            format!(
                "hammer: {verdict}: {} calls ({:.0}/s) on {} threads in {:.1} s; {} undocumented codes, {} INTERNAL; after shutdown: threads {} (baseline {}), {} child processes, {} ring files, {} shadow copies, {} clients{}",
                r.total_calls,
                r.total_calls as f64 * 1000.0 / r.ran_ms.max(1) as f64,
                r.threads,
                r.ran_ms as f64 / 1000.0,
                r.undocumented.iter().map(|f| f.count).sum::<u64>(),
                r.internal.iter().map(|f| f.count).sum::<u64>(),
                f.threads,
                f.baseline_threads,
                f.live_children + f.zombies,
                f.rings,
                f.shadow_copies,
                f.metrics
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), |m| m.player_clients_active.to_string()),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!("; failed: {}", failed.join(", "))
                }
            )
        }
        None => format!(
            "hammer: {verdict}: {} threads, {:.0} s planned; no result (failed: {})",
            args.threads,
            args.duration.as_secs_f64(),
            failed.join(", ")
        ),
    }
}
