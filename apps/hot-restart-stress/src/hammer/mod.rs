//! `hot-restart-stress hammer`: N threads call every function of the C ABI at random, in a
//! child process that loaded the cdylib once, for a given time; a watchdog fails the run on
//! any call that does not return (or on a run that stops making progress), the parent
//! reports a crash by its signal, every return code is checked against the header, and at
//! the end the child shuts the runtime down and checks that nothing is left.

pub mod calls;
pub mod child;
pub mod parent;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::cli::parse_duration;
use crate::sample::RuntimeMetrics;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "hot-restart-stress hammer",
    about = "Lifecycle hammer for libstellatune_ffi: every C ABI call at random from many threads",
    long_about = "Lifecycle hammer for libstellatune_ffi.\n\n\
        A child process loads the cdylib once and runs --threads threads, each calling a random \
        function of the C ABI in a loop for --duration: runtime init (a private data_dir), \
        shutdown and prepare_hot_restart, create/dispose client, play (a generated 2 s WAV, \
        sometimes a missing file), queue_next, pause, resume, stop, seek, set_volume, route \
        apply (null, and the ASIO plugin's plugin:asio@null) and clear, set_dsp_chain, \
        poll_event (short timeouts), status_json, metrics_json, plugins install (--install-plugin) \
        / uninstall / reload / list_json, last_error and error_name. Client ids are shared between \
        the threads, so one thread's client is used, disposed and evicted under another's calls.\n\n\
        It fails when: the child crashes (its signal is reported); a call does not return within \
        --call-limit-ms or no call completes for that long (the stuck calls are printed with their \
        thread, and a gdb backtrace of every thread is saved when gdb is available); a call returns \
        a code that stellatune.h does not define, or STELLATUNE_ERR_INTERNAL (a caught panic); \
        error_name gives a wrong name; or, after the final runtime_shutdown, the state is not \
        clean: threads back to the count before the first init, no child process (sidecar), no \
        ring file in the data dir, no plugin shadow copy, and metrics with 0 clients, 0 runtime \
        threads and 0 running sidecars (each within 5 s). Codes the header defines but does not \
        list for that function are reported as documentation notes.\n\n\
        Exit code 0 = pass, 1 = fail, 2 = usage or setup error."
)]
pub struct HammerArgs {
    /// How long the threads hammer (e.g. 20s, 3m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub duration: Duration,

    /// Hammer threads.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=256))]
    pub threads: u64,

    /// An installable plugin directory (the packaged ASIO plugin, e.g.
    /// target/release/plugins/asio): installed, uninstalled and reloaded at random. Without
    /// it, install is tried with a path that is not a plugin.
    #[arg(long, value_name = "DIR")]
    pub install_plugin: Option<PathBuf>,

    /// Watchdog: a call that has not returned after this long, or this long without any call
    /// completing, fails the run.
    #[arg(long, value_name = "MS", default_value_t = 15_000,
          value_parser = RangedU64ValueParser::<u64>::new().range(100..))]
    pub call_limit_ms: u64,

    /// `client_lease_ms` for the runtime: short, so lease evictions race the calls too.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub lease_ms: u64,

    /// Seed of the random choices [default: from the clock]; printed, for a rerun with the
    /// same dice (thread interleavings still differ).
    #[arg(long)]
    pub seed: Option<u64>,

    /// The cdylib to load [default: libstellatune_ffi.so next to this executable].
    #[arg(long, value_name = "PATH")]
    pub lib: Option<PathBuf>,

    /// `log_filter` given to the runtime (its log goes to child.log).
    #[arg(long, default_value = "warn")]
    pub log_filter: String,

    /// Output root; each run writes `<DIR>/<timestamp>/` [default:
    /// target/hot-restart-stress/hammer next to the build].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Do not attach gdb to a stuck child for a backtrace.
    #[arg(long)]
    pub no_gdb: bool,

    /// Deliberate defects, to prove the hammer fails when it should.
    #[arg(long, value_enum, value_name = "FAULT", hide = true)]
    pub fault: Vec<HammerFault>,

    /// Internal: run the threads in this process.
    #[arg(long, hide = true)]
    pub child: bool,

    /// Internal: the run directory the parent prepared.
    #[arg(long, hide = true, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HammerFault {
    /// The child aborts itself a second into the run (proves crash detection).
    Abort,
    /// One thread stalls inside a "call" past the watchdog bound (proves hang detection).
    Stall,
    /// One call's code is replaced by -99, which the header does not define.
    UndocumentedCode,
}

/// A call that has not returned yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub thread: String,
    pub call: String,
    pub elapsed_ms: u64,
}

/// Codes of one kind that deserve a look: the first message and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub call: String,
    pub code: i32,
    pub name: String,
    pub count: u64,
    pub thread: String,
    pub message: String,
}

/// The state after the final runtime_shutdown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalState {
    pub shutdown_code: i32,
    pub shutdown_message: String,
    pub shutdown_ms: u64,
    /// Threads of the child before the first init (only the main thread runs then).
    pub baseline_threads: u64,
    pub threads: u64,
    pub live_children: u64,
    pub zombies: u64,
    pub rings: u64,
    pub shadow_copies: u64,
    /// How long it took after shutdown returned until everything was clean (or the wait
    /// gave up).
    pub settle_ms: u64,
    pub metrics: Option<RuntimeMetrics>,
}

/// What the child reports at the end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HammerResult {
    pub seed: u64,
    pub threads: u64,
    pub ran_ms: u64,
    pub total_calls: u64,
    /// call name → (code, count) by code. A list, not a map keyed by code: integer map keys
    /// do not survive the internally tagged message enum's round trip.
    pub per_call: BTreeMap<String, Vec<(i32, u64)>>,
    /// Codes stellatune.h does not define.
    pub undocumented: Vec<Finding>,
    /// STELLATUNE_ERR_INTERNAL: a caught panic or a broken invariant.
    pub internal: Vec<Finding>,
    /// Defined codes that the header does not list for that function.
    pub unlisted: Vec<Finding>,
    pub bad_error_names: Vec<String>,
    pub final_state: FinalState,
}

/// One line on the hammer child's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HammerMessage {
    Hello {
        pid: u32,
        baseline_threads: u64,
        seed: u64,
    },
    Progress {
        elapsed_ms: u64,
        calls: u64,
        in_flight: Vec<InFlight>,
    },
    /// The watchdog fired; the child waits to be inspected and killed.
    Stuck {
        reason: String,
        stuck: Vec<InFlight>,
        in_flight: Vec<InFlight>,
    },
    Result(Box<HammerResult>),
    Fatal {
        message: String,
    },
}

/// Entry point of `hot-restart-stress hammer ...` (`args` without the `hammer` word).
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = HammerArgs::command()
        .get_matches_from(std::iter::once("hot-restart-stress hammer".into()).chain(args.clone()));
    let parsed = HammerArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if parsed.child {
        child::run(&parsed)
    } else {
        parent::run(&parsed, args)
    }
}
