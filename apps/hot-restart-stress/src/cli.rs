//! Command line: options, the route shorthand and duration parsing.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};

use crate::verdict::Thresholds;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "hot-restart-stress",
    version,
    // A later option overrides an earlier one, so scripts can set defaults that the caller's
    // extra arguments replace.
    args_override_self = true,
    about = "Hot-restart stress gate for libstellatune_ffi",
    long_about = "Hot-restart stress gate for libstellatune_ffi.\n\n\
        Loads the cdylib once (as a Flutter desktop host does: the library outlives every Dart \
        isolate) in a child process, and runs N simulated hot restarts. Each cycle is one \
        isolate: init, optionally prepare_hot_restart, create a client, apply a route, play a \
        generated WAV, confirm playback from the events, then abandon the client without \
        disposing of it. Threads, fds, RSS, sidecar processes, ring files, plugin shadow copies \
        and the runtime metrics are sampled after every cycle; the verdict checks them against \
        the thresholds below. Exit code 0 = pass, 1 = fail, 2 = usage or setup error."
)]
pub struct Args {
    /// The cdylib to load [default: libstellatune_ffi.so next to this executable].
    #[arg(long, value_name = "PATH")]
    pub lib: Option<PathBuf>,

    /// Number of hot-restart cycles. With --duration, whichever ends first.
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub cycles: Option<u64>,

    /// Soak mode: keep cycling until this much time has passed (e.g. 90s, 30m, 1h, 1h30m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Whether each new isolate calls prepare_hot_restart; `both` alternates (odd cycles with,
    /// even cycles without). Without it, abandoned clients go by their lease.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,

    /// How each isolate receives its events: `poll` (a loop of stellatune_player_poll_event,
    /// which renews the lease) or `port` (as a Flutter app with a ReceivePort: a fake
    /// `postCObject` handed over at every bootstrap, the client's events posted to the
    /// isolate's port, no call into the runtime for them; the post fails once the isolate
    /// died, which evicts its client at once).
    #[arg(long, value_enum, default_value_t = Events::Poll)]
    pub events: Events,

    /// Output route: `null`, `wav` (a paced WAV file in the run directory),
    /// `plugin:ID[/SINK][@TARGET]` (e.g. `plugin:asio@null`), or a raw route JSON object.
    #[arg(long, default_value = "null", value_parser = parse_route)]
    pub route: RouteSpec,

    /// `client_lease_ms` given to the runtime: how long an abandoned client lives [default:
    /// not passed, so the runtime's own default applies (30000 ms)]. The clients bound of the
    /// verdict follows from it (see below).
    #[arg(long, value_name = "MS",
          value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub lease_ms: Option<u64>,

    /// How long each isolate lives: after its bootstrap it keeps polling its events (and so
    /// renewing its lease) until this much time has passed since the cycle began, then dies.
    /// It sets the cycle time, and with it how many abandoned clients can overlap within one
    /// lease; it need not outlive the lease (the clients bound accounts for the lease).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub isolate_ms: u64,

    /// Pause between cycles (the app is "restarting": nobody polls).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub interval_ms: u64,

    /// Watchdog bound on every FFI call; a call that takes longer is a lost connection.
    #[arg(long, value_name = "MS", default_value_t = 2000,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    pub call_timeout_ms: u64,

    /// How long a cycle may wait for `track_started` and then a `position` event.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub confirm_timeout_ms: u64,

    /// After playback is confirmed, seek to 1000 ms and wait for the position event.
    #[arg(long)]
    pub seek: bool,

    /// After playback is confirmed, pause and resume.
    #[arg(long)]
    pub pause: bool,

    /// Plugin churn: install this plugin directory before the first route, then install it
    /// again and reload the plugins at the end of every cycle (a new generation each time),
    /// and every --churn-uninstall-every cycles also uninstall it and install it again
    /// (alternately while the route plays through it and after the route was cleared).
    #[arg(long, value_name = "DIR")]
    pub plugin_churn: Option<PathBuf>,

    /// With --plugin-churn: uninstall and re-install the plugin every N cycles (0 = never).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub churn_uninstall_every: u64,

    /// Install this plugin directory (or .zip) once, in the first cycle before its route.
    /// Repeatable; needed for plugin routes without --plugin-churn.
    #[arg(long, value_name = "DIR")]
    pub install_plugin: Vec<PathBuf>,

    /// Deliberate defects, to prove the gate fails when it should (repeatable).
    #[arg(long, value_enum, value_name = "FAULT")]
    pub fault: Vec<Fault>,

    /// Cycles left out of the RSS slope (allocator and cache warm-up).
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().rss_warmup_cycles)]
    pub warmup: u64,

    /// `log_filter` given to the runtime (its log goes to child.log in the run directory).
    #[arg(long, default_value = "warn")]
    pub log_filter: String,

    /// Output root; each run writes `<DIR>/<timestamp>/` [default:
    /// target/hot-restart-stress next to the build, else ./target/hot-restart-stress].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Internal: run the cycles in this process (the gate re-executes itself with it).
    #[arg(long, hide = true)]
    pub child: bool,

    /// Internal: the run directory the parent prepared.
    #[arg(long, hide = true, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
}

pub const DEFAULT_CYCLES: u64 = 50;
/// The runtime's `client_lease_ms` when the config leaves it out (docs/ffi.md).
pub const RUNTIME_DEFAULT_LEASE_MS: u64 = 30_000;

/// Parses the command line, with the thresholds in `--help`.
pub fn parse() -> Args {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Args::command()
        .after_help(format!(
            "{}\n\nSubcommand: `hot-restart-stress hammer --duration 20s --threads 8 --install-plugin DIR` \
             calls every C ABI function at random from many threads (see `hammer --help`).",
            Thresholds::default().describe()
        ))
        .get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

impl Args {
    /// The cycle bound: `--cycles`, or 50 without `--duration`, or none in pure soak mode.
    pub fn cycle_limit(&self) -> Option<u64> {
        match (self.cycles, self.duration) {
            (Some(n), _) => Some(n),
            (None, None) => Some(DEFAULT_CYCLES),
            (None, Some(_)) => None,
        }
    }

    /// The lease the runtime applies: --lease-ms, or the runtime's default.
    pub fn effective_lease_ms(&self) -> u64 {
        self.lease_ms.unwrap_or(RUNTIME_DEFAULT_LEASE_MS)
    }

    pub fn has_fault(&self, fault: Fault) -> bool {
        self.fault.contains(&fault)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Events {
    Poll,
    Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    WithPrepare,
    WithoutPrepare,
    Both,
}

impl Mode {
    /// Whether cycle `cycle` (1-based) calls prepare_hot_restart.
    pub fn prepares(self, cycle: u64) -> bool {
        match self {
            Mode::WithPrepare => true,
            Mode::WithoutPrepare => false,
            Mode::Both => cycle % 2 == 1,
        }
    }
}

pub fn mode_name(prepare: bool) -> &'static str {
    if prepare {
        "with-prepare"
    } else {
        "without-prepare"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// Runtime fault: every client attach leaks a thread (`fault_injection` in the config).
    LeakThreadPerAttach,
    /// Runtime fault: prepare_hot_restart, lease expiry and closed event ports evict nobody.
    SkipEviction,
    /// Gate fault: the child aborts itself after cycle 2 (proves crash detection).
    AbortChild,
    /// Gate fault: one FFI call in cycle 2 overruns the watchdog (proves lost-connection
    /// detection).
    StallCall,
}

/// What `--route` asked for; turned into route JSON by [`RouteSpec::to_json`].
#[derive(Debug, Clone, PartialEq)]
pub enum RouteSpec {
    Null,
    /// A paced WAV file in the run directory.
    Wav,
    Plugin {
        plugin_id: String,
        sink: Option<String>,
        target: Option<String>,
    },
    /// Passed through to `stellatune_output_route_apply` as is.
    Json(String),
}

impl RouteSpec {
    pub fn to_json(&self, run_dir: &std::path::Path) -> String {
        match self {
            RouteSpec::Null => r#"{"kind":"null"}"#.to_owned(),
            RouteSpec::Wav => serde_json::json!({
                "kind": "wav",
                "path": run_dir.join("out.wav"),
                "paced": true,
            })
            .to_string(),
            RouteSpec::Plugin {
                plugin_id,
                sink,
                target,
            } => {
                let mut route = serde_json::json!({"kind": "plugin", "plugin_id": plugin_id});
                if let Some(sink) = sink {
                    route["sink"] = sink.as_str().into();
                }
                if let Some(target) = target {
                    route["target"] = target.as_str().into();
                }
                route.to_string()
            }
            RouteSpec::Json(json) => json.clone(),
        }
    }
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteSpec::Null => f.write_str("null"),
            RouteSpec::Wav => f.write_str("wav"),
            RouteSpec::Plugin {
                plugin_id,
                sink,
                target,
            } => {
                write!(f, "plugin:{plugin_id}")?;
                if let Some(sink) = sink {
                    write!(f, "/{sink}")?;
                }
                if let Some(target) = target {
                    write!(f, "@{target}")?;
                }
                Ok(())
            }
            RouteSpec::Json(json) => f.write_str(json),
        }
    }
}

/// `null`, `wav`, `plugin:ID[/SINK][@TARGET]` or a JSON object (passed through).
pub fn parse_route(text: &str) -> Result<RouteSpec, String> {
    let text = text.trim();
    if text.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("route JSON: {e}"))?;
        if !value.is_object() {
            return Err("route JSON must be an object".into());
        }
        return Ok(RouteSpec::Json(text.to_owned()));
    }
    match text {
        "null" => return Ok(RouteSpec::Null),
        "wav" => return Ok(RouteSpec::Wav),
        _ => {}
    }
    let Some(rest) = text.strip_prefix("plugin:") else {
        return Err(format!(
            "unknown route `{text}` (expected null, wav, plugin:ID[/SINK][@TARGET] or a JSON object)"
        ));
    };
    let (head, target) = match rest.split_once('@') {
        Some((head, target)) => (head, Some(target.to_owned())),
        None => (rest, None),
    };
    let (plugin_id, sink) = match head.split_once('/') {
        Some((id, sink)) => (id, Some(sink.to_owned())),
        None => (head, None),
    };
    if plugin_id.is_empty() {
        return Err(format!("route `{text}`: empty plugin id"));
    }
    if sink.as_deref() == Some("") {
        return Err(format!("route `{text}`: empty sink after `/`"));
    }
    Ok(RouteSpec::Plugin {
        plugin_id: plugin_id.to_owned(),
        sink,
        target,
    })
}

/// Humantime-ish durations: one or more `<number><unit>` with units `ms`, `s`, `m`, `h`
/// (`90s`, `30m`, `1h30m`, `1.5h`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration `{text}`: number without a unit at the end"))?;
        if number_len == 0 {
            return Err(format!("duration `{text}`: expected a number at `{rest}`"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("duration `{text}`: bad number `{}`", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match rest[..unit_len].trim() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            other => {
                return Err(format!(
                    "duration `{text}`: unknown unit `{other}` (use ms, s, m or h)"
                ));
            }
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    seconds_to_duration(total, text)
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, String> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("duration `{text}` must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn routes() {
        assert_eq!(parse_route("null").unwrap(), RouteSpec::Null);
        assert_eq!(
            parse_route("plugin:asio@null").unwrap(),
            RouteSpec::Plugin {
                plugin_id: "asio".into(),
                sink: None,
                target: Some("null".into())
            }
        );
        let spec = parse_route("plugin:test-plugins/capture@/tmp/x").unwrap();
        assert_eq!(spec.to_string(), "plugin:test-plugins/capture@/tmp/x");
        let json: serde_json::Value =
            serde_json::from_str(&spec.to_json(std::path::Path::new("/r"))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind":"plugin","plugin_id":"test-plugins","sink":"capture","target":"/tmp/x"})
        );
        let raw = r#"{"kind":"plugin","plugin_id":"asio","config":{"x":1}}"#;
        assert_eq!(
            parse_route(raw).unwrap().to_json(std::path::Path::new("/")),
            raw
        );
        assert!(parse_route("device!").is_err());
        assert!(parse_route("plugin:").is_err());
        assert!(parse_route("plugin:a/@b").is_err());
    }

    #[test]
    fn modes_alternate() {
        assert!(Mode::Both.prepares(1));
        assert!(!Mode::Both.prepares(2));
        assert!(Mode::WithPrepare.prepares(2));
        assert!(!Mode::WithoutPrepare.prepares(1));
    }
}
