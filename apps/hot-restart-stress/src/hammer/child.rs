//! The hammer's child process: loads the library once, runs the threads and the watchdog,
//! then shuts the runtime down and measures what is left.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::calls::{Call, Inputs, Outcome, Rng};
use super::{FinalState, Finding, HammerArgs, HammerFault, HammerMessage, HammerResult, InFlight};
use crate::ffi::{ABI_VERSION, Api, ERR_INTERNAL, OK, documented_name};
use crate::sample::{RuntimeMetrics, proc_stats, ring_files, shadow_copies};

/// How long the final state may take to become clean after shutdown returned (sidecars get
/// a grace period of 2 s before they are killed; exiting threads leave the task list late).
const SETTLE: Duration = Duration::from_secs(5);
/// Length of the generated track: short, so tracks end and queue_next hands over often.
const TRACK_SECONDS: u32 = 2;
/// Watchdog and progress period.
const TICK: Duration = Duration::from_millis(200);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// After the watchdog fired the child waits this long for the parent to inspect and kill it.
const STUCK_WAIT: Duration = Duration::from_secs(180);

fn emit(message: &HammerMessage) {
    let line = serde_json::to_string(message).expect("messages serialise");
    let mut out = std::io::stdout().lock();
    // The parent gone means nobody reads: nothing useful is left to do with the error.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fatal(message: String) -> ExitCode {
    eprintln!("hot-restart-stress hammer child: {message}");
    emit(&HammerMessage::Fatal { message });
    ExitCode::from(3)
}

/// The call a thread is in, and since when; `None` between calls.
type Slot = Mutex<Option<(String, Instant)>>;

struct Watch {
    names: Vec<String>,
    slots: Vec<Slot>,
    progress: AtomicU64,
    /// Set by the main thread when the run and the final shutdown are over.
    done: AtomicBool,
}

impl Watch {
    fn enter(&self, slot: usize, call: &str) {
        *self.slots[slot].lock().expect("slot") = Some((call.to_owned(), Instant::now()));
    }

    fn leave(&self, slot: usize) {
        *self.slots[slot].lock().expect("slot") = None;
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    fn in_flight(&self) -> Vec<InFlight> {
        self.slots
            .iter()
            .zip(&self.names)
            .filter_map(|(slot, thread)| {
                let slot = slot.lock().expect("slot");
                slot.as_ref().map(|(call, since)| InFlight {
                    thread: thread.clone(),
                    call: call.clone(),
                    elapsed_ms: since.elapsed().as_millis() as u64,
                })
            })
            .collect()
    }
}

/// Watches the slots until `done`: a call over `limit`, or no call completing for `limit`,
/// is reported and the child then waits to be killed (so the parent can attach gdb to the
/// stuck threads). Also streams a progress line every second.
fn watchdog(watch: Arc<Watch>, limit: Duration, started: Instant) {
    let mut last_progress = (watch.progress.load(Ordering::Relaxed), Instant::now());
    let mut last_report = Instant::now();
    while !watch.done.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        let in_flight = watch.in_flight();
        let stuck: Vec<InFlight> = in_flight
            .iter()
            .filter(|c| c.elapsed_ms >= limit.as_millis() as u64)
            .cloned()
            .collect();
        let progress = watch.progress.load(Ordering::Relaxed);
        if progress != last_progress.0 {
            last_progress = (progress, Instant::now());
        }
        let reason = if !stuck.is_empty() {
            Some(format!(
                "{} call(s) did not return within {} ms",
                stuck.len(),
                limit.as_millis()
            ))
        } else if last_progress.1.elapsed() >= limit && !in_flight.is_empty() {
            Some(format!(
                "no call completed for {} ms",
                last_progress.1.elapsed().as_millis()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            eprintln!("hot-restart-stress hammer child: watchdog: {reason}: {in_flight:?}");
            emit(&HammerMessage::Stuck {
                reason,
                stuck,
                in_flight,
            });
            std::thread::sleep(STUCK_WAIT);
            std::process::exit(4);
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            emit(&HammerMessage::Progress {
                elapsed_ms: started.elapsed().as_millis() as u64,
                calls: progress,
                in_flight,
            });
        }
    }
}

/// One thread's tally.
#[derive(Default)]
struct Tally {
    codes: HashMap<Call, BTreeMap<i32, u64>>,
    /// (call, code) → (count, first message) for codes worth reporting.
    findings: HashMap<(Call, i32), (u64, String)>,
    bad_names: Vec<String>,
}

struct Worker {
    index: usize,
    inputs: Arc<Inputs>,
    api: Arc<Api>,
    watch: Arc<Watch>,
    stop: Arc<AtomicBool>,
    seed: u64,
    faults: Vec<HammerFault>,
    limit: Duration,
}

impl Worker {
    fn run(self) -> Tally {
        let mut rng =
            Rng::new(self.seed ^ (self.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut tally = Tally::default();
        let started = Instant::now();
        let faulty = self.index == 0;
        let mut first = true;
        while !self.stop.load(Ordering::Relaxed) {
            if faulty && started.elapsed() >= Duration::from_secs(1) {
                if self.faults.contains(&HammerFault::Abort) {
                    eprintln!("hot-restart-stress hammer child: fault injection: aborting");
                    std::process::abort();
                }
                if self.faults.contains(&HammerFault::Stall) {
                    self.watch
                        .enter(self.index, "runtime_metrics_json (fault: stall)");
                    std::thread::sleep(self.limit + Duration::from_secs(10));
                    self.watch.leave(self.index);
                }
            }
            // The first thread starts the runtime, so that the run does not begin with a
            // long stretch of NOT_INITIALIZED.
            let call = if faulty && first {
                Call::Init
            } else {
                rng.pick_call()
            };
            self.watch.enter(self.index, call.name());
            let Outcome { mut code, bad_name } = self.inputs.invoke(&self.api, call, &mut rng);
            // Read on the same thread, right after the failing call, as the ABI requires.
            let message = (code != OK).then(|| self.api.last_error_message());
            self.watch.leave(self.index);
            if first && self.faults.contains(&HammerFault::UndocumentedCode) && faulty {
                code = -99;
            }
            first = false;
            *tally
                .codes
                .entry(call)
                .or_default()
                .entry(code)
                .or_default() += 1;
            if let Some(bad) = bad_name {
                if tally.bad_names.len() < 10 {
                    tally.bad_names.push(bad);
                }
            }
            let notable =
                documented_name(code).is_none() || code == ERR_INTERNAL || !call.lists(code);
            if notable {
                let entry = tally
                    .findings
                    .entry((call, code))
                    .or_insert_with(|| (0, message.clone().unwrap_or_default()));
                entry.0 += 1;
            }
        }
        tally
    }
}

fn metrics(api: &Api) -> Option<RuntimeMetrics> {
    api.metrics_json()
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

pub fn run(args: &HammerArgs) -> ExitCode {
    let Some(run_dir) = args.run_dir.clone() else {
        return fatal("--child needs --run-dir".into());
    };
    let lib = match crate::resolve_lib_path(args.lib.as_deref()) {
        Ok(lib) => lib,
        Err(e) => return fatal(e),
    };
    let api = match Api::load(&lib) {
        Ok(api) => Arc::new(api),
        Err(e) => return fatal(e),
    };
    if api.abi() != ABI_VERSION {
        return fatal(format!(
            "{} has ABI version {}, the hammer speaks {ABI_VERSION}",
            lib.display(),
            api.abi()
        ));
    }
    let wav = run_dir.join("short.wav");
    if let Err(e) = crate::write_wav(&wav, TRACK_SECONDS) {
        return fatal(e);
    }
    let data_dir = run_dir.join("data");
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    // Only the main thread runs now: the count every thread must come back to.
    let baseline_threads = proc_stats().threads;
    emit(&HammerMessage::Hello {
        pid: std::process::id(),
        baseline_threads,
        seed,
    });

    let (plugin_artifact, plugin_id) = match &args.install_plugin {
        Some(dir) => (dir.clone(), crate::plugin_id_of(dir)),
        None => (run_dir.join("not-a-plugin"), "asio".to_owned()),
    };
    let cstr = |s: &str| CString::new(s).expect("no NUL");
    let path = |p: &Path| cstr(&p.to_string_lossy());
    let config = serde_json::json!({
        "data_dir": data_dir,
        "client_lease_ms": args.lease_ms,
        "log_filter": args.log_filter,
    });
    let inputs = Arc::new(Inputs {
        config: cstr(&config.to_string()),
        wav: path(&wav),
        missing: path(&run_dir.join("missing.wav")),
        null_route: cstr(r#"{"kind":"null"}"#),
        asio_route: cstr(
            &serde_json::json!({"kind":"plugin","plugin_id":plugin_id,"target":"null"}).to_string(),
        ),
        dsp_empty: cstr("[]"),
        dsp_asio: cstr(&serde_json::json!([{ "plugin_id": plugin_id }]).to_string()),
        replaygain: cstr(r#"{"mode":"album","preamp_db":-3.0,"prevent_clipping":true}"#),
        replaygain_bad: cstr(r#"{"mode":"track","preamp_db":99.0}"#),
        plugin_artifact: path(&plugin_artifact),
        plugin_id: cstr(&plugin_id),
        clients: Mutex::new(Vec::new()),
    });

    let n = args.threads as usize;
    let mut names: Vec<String> = (0..n).map(|i| format!("hammer-{i}")).collect();
    names.push("main".to_owned());
    let watch = Arc::new(Watch {
        slots: names.iter().map(|_| Mutex::new(None)).collect(),
        names,
        progress: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let limit = Duration::from_millis(args.call_limit_ms);
    let started = Instant::now();
    let watchdog_thread = {
        let watch = watch.clone();
        std::thread::Builder::new()
            .name("hammer-watchdog".into())
            .spawn(move || watchdog(watch, limit, started))
            .expect("spawn the watchdog")
    };
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..n)
        .map(|index| {
            let worker = Worker {
                index,
                inputs: inputs.clone(),
                api: api.clone(),
                watch: watch.clone(),
                stop: stop.clone(),
                seed,
                faults: args.fault.clone(),
                limit,
            };
            std::thread::Builder::new()
                .name(format!("hammer-{index}"))
                .spawn(move || worker.run())
                .expect("spawn a hammer thread")
        })
        .collect();
    std::thread::sleep(args.duration);
    stop.store(true, Ordering::Relaxed);
    let mut result = HammerResult {
        seed,
        threads: args.threads,
        ..HammerResult::default()
    };
    let mut per_call: BTreeMap<String, BTreeMap<i32, u64>> = BTreeMap::new();
    let mut findings: HashMap<(Call, i32), (u64, String, String)> = HashMap::new();
    for (index, worker) in workers.into_iter().enumerate() {
        let tally = match worker.join() {
            Ok(tally) => tally,
            Err(_) => return fatal(format!("hammer-{index} panicked")),
        };
        for (call, codes) in tally.codes {
            let per = per_call.entry(call.name().to_owned()).or_default();
            for (code, count) in codes {
                *per.entry(code).or_default() += count;
                result.total_calls += count;
            }
        }
        for (key, (count, message)) in tally.findings {
            let entry = findings
                .entry(key)
                .or_insert_with(|| (0, format!("hammer-{index}"), message));
            entry.0 += count;
        }
        result.bad_error_names.extend(tally.bad_names);
    }
    result.ran_ms = started.elapsed().as_millis() as u64;
    result.per_call = per_call
        .into_iter()
        .map(|(call, codes)| (call, codes.into_iter().collect()))
        .collect();
    let mut findings: Vec<_> = findings.into_iter().collect();
    findings.sort_by_key(|((call, code), _)| (*call, *code));
    for ((call, code), (count, thread, message)) in findings {
        let finding = Finding {
            call: call.name().to_owned(),
            code,
            name: documented_name(code).unwrap_or("undefined").to_owned(),
            count,
            thread,
            message,
        };
        if documented_name(code).is_none() {
            result.undocumented.push(finding);
        } else if code == ERR_INTERNAL {
            result.internal.push(finding);
        } else {
            result.unlisted.push(finding);
        }
    }

    // App exit: the final shutdown, watched like every other call.
    let main_slot = n;
    watch.enter(main_slot, "runtime_shutdown (final)");
    let shutdown_started = Instant::now();
    // SAFETY: no arguments.
    let code = unsafe { (api.runtime_shutdown)() };
    let shutdown_ms = shutdown_started.elapsed().as_millis() as u64;
    let shutdown_message = if code == OK {
        String::new()
    } else {
        api.last_error_message()
    };
    watch.leave(main_slot);
    watch.done.store(true, Ordering::Release);
    let _ = watchdog_thread.join();

    let settle_started = Instant::now();
    let final_state = loop {
        let stats = proc_stats();
        let state = FinalState {
            shutdown_code: code,
            shutdown_message: shutdown_message.clone(),
            shutdown_ms,
            baseline_threads,
            threads: stats.threads,
            live_children: stats.sidecars,
            zombies: stats.zombies,
            rings: ring_files(&data_dir),
            shadow_copies: shadow_copies(&data_dir),
            settle_ms: settle_started.elapsed().as_millis() as u64,
            metrics: metrics(&api),
        };
        if state.is_clean() || settle_started.elapsed() >= SETTLE {
            break state;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    result.final_state = final_state;
    emit(&HammerMessage::Result(Box::new(result)));
    ExitCode::SUCCESS
}

impl FinalState {
    pub fn is_clean(&self) -> bool {
        let metrics_clean = self.metrics.as_ref().is_some_and(|m| {
            m.player_clients_active == 0 && m.runtime_threads == 0 && m.asio_sidecar_running == 0
        });
        self.shutdown_code == OK
            && self.threads <= self.baseline_threads
            && self.live_children == 0
            && self.zombies == 0
            && self.rings == 0
            && self.shadow_copies == 0
            && metrics_clean
    }
}
