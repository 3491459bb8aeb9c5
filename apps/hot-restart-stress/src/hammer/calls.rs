//! The calls the hammer makes: every function of the C ABI, with the codes the header lists
//! for it, and how one random invocation is made.

use std::ffi::{CStr, CString, c_char};
use std::sync::Mutex;

use crate::ffi::*;
use crate::ports::{DISCARD_PORT, fake_post_cobject};

/// One kind of call. Two route applies (null and the ASIO plugin) count as two kinds because
/// they take different paths through the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    Init,
    Shutdown,
    PrepareHotRestart,
    CreateClient,
    DisposeClient,
    Play,
    QueueNext,
    Pause,
    Resume,
    Stop,
    Seek,
    SetVolume,
    RouteApplyNull,
    RouteApplyAsio,
    RouteClear,
    SetDspChain,
    PollEvent,
    StatusJson,
    MetricsJson,
    PluginsInstall,
    PluginsUninstall,
    PluginsReload,
    PluginsListJson,
    LastError,
    ErrorName,
    SetPostCobject,
    SetEventPort,
    SetReplaygain,
    OutputDevicesJson,
}

const RT: [i32; 2] = [ERR_NOT_INITIALIZED, ERR_SHUTTING_DOWN];
const CLIENT: [i32; 3] = [ERR_UNKNOWN_CLIENT, ERR_CLIENT_DISPOSED, ERR_CLIENT_EVICTED];

impl Call {
    /// Every call the hammer makes. Not `output_devices_json` on Windows: the tests run under
    /// Wine, whose WASAPI never answers an enumeration, so each listing waits out its
    /// documented 3 s bound, which the hammer's watchdog would flag as a stuck call.
    #[cfg(not(windows))]
    pub const ALL: &'static [Call] = &Self::EVERY;
    #[cfg(windows)]
    pub const ALL: &'static [Call] = Self::EVERY.split_last().expect("calls").1;

    /// The calls of the ABI; `OutputDevicesJson` last (see [`Call::ALL`]).
    const EVERY: [Call; 29] = [
        Call::Init,
        Call::Shutdown,
        Call::PrepareHotRestart,
        Call::CreateClient,
        Call::DisposeClient,
        Call::Play,
        Call::QueueNext,
        Call::Pause,
        Call::Resume,
        Call::Stop,
        Call::Seek,
        Call::SetVolume,
        Call::RouteApplyNull,
        Call::RouteApplyAsio,
        Call::RouteClear,
        Call::SetDspChain,
        Call::PollEvent,
        Call::StatusJson,
        Call::MetricsJson,
        Call::PluginsInstall,
        Call::PluginsUninstall,
        Call::PluginsReload,
        Call::PluginsListJson,
        Call::LastError,
        Call::ErrorName,
        Call::SetPostCobject,
        Call::SetEventPort,
        Call::SetReplaygain,
        Call::OutputDevicesJson,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Call::Init => "runtime_init",
            Call::Shutdown => "runtime_shutdown",
            Call::PrepareHotRestart => "runtime_prepare_hot_restart",
            Call::CreateClient => "player_create_client",
            Call::DisposeClient => "player_dispose_client",
            Call::Play => "player_play",
            Call::QueueNext => "player_queue_next",
            Call::Pause => "player_pause",
            Call::Resume => "player_resume",
            Call::Stop => "player_stop",
            Call::Seek => "player_seek_ms",
            Call::SetVolume => "player_set_volume",
            Call::RouteApplyNull => "output_route_apply(null)",
            Call::RouteApplyAsio => "output_route_apply(plugin:asio@null)",
            Call::RouteClear => "output_route_clear",
            Call::SetDspChain => "player_set_dsp_chain",
            Call::PollEvent => "player_poll_event",
            Call::StatusJson => "player_status_json",
            Call::MetricsJson => "runtime_metrics_json",
            Call::PluginsInstall => "plugins_install",
            Call::PluginsUninstall => "plugins_uninstall",
            Call::PluginsReload => "plugins_reload",
            Call::PluginsListJson => "plugins_list_json",
            Call::LastError => "last_error",
            Call::ErrorName => "error_name",
            Call::SetPostCobject => "dart_set_post_cobject",
            Call::SetEventPort => "player_set_event_port",
            Call::SetReplaygain => "player_set_replaygain",
            Call::OutputDevicesJson => "output_devices_json",
        }
    }

    /// Relative frequency. Lifecycle and plugin-set changes are rare enough that the runtime
    /// spends most of the run up and playing (so commands reach the engine and the sidecar),
    /// and frequent enough that every second sees several of them racing the commands.
    pub fn weight(self) -> u32 {
        match self {
            Call::Shutdown => 1,
            Call::PrepareHotRestart => 2,
            Call::PluginsInstall | Call::PluginsUninstall | Call::PluginsReload => 3,
            Call::RouteClear
            | Call::SetDspChain
            | Call::PluginsListJson
            | Call::ErrorName
            | Call::SetPostCobject
            | Call::OutputDevicesJson => 8,
            Call::DisposeClient
            | Call::Stop
            | Call::RouteApplyNull
            | Call::MetricsJson
            | Call::LastError => 16,
            Call::QueueNext
            | Call::Pause
            | Call::Resume
            | Call::Seek
            | Call::SetVolume
            | Call::StatusJson
            | Call::SetEventPort
            | Call::SetReplaygain => 20,
            Call::Init | Call::RouteApplyAsio => 24,
            Call::CreateClient | Call::Play => 36,
            Call::PollEvent => 60,
        }
    }

    /// The error codes `stellatune.h` lists for this function (besides `OK`). The runtime
    /// states (`NOT_INITIALIZED` before init and after shutdown, `SHUTTING_DOWN` while one
    /// runs on another thread, also for a command that raced it) apply to every call that
    /// needs the runtime, as docs/ffi.md's conventions say.
    pub fn listed_codes(self) -> Vec<i32> {
        let mut codes = match self {
            Call::Init => vec![ERR_INVALID_ARGUMENT, ERR_SINK, ERR_INTERNAL],
            Call::Shutdown => vec![ERR_TIMEOUT],
            Call::PrepareHotRestart => vec![ERR_TIMEOUT],
            Call::CreateClient => vec![ERR_INVALID_ARGUMENT],
            Call::DisposeClient => CLIENT.to_vec(),
            Call::Play | Call::QueueNext => {
                let mut v = vec![
                    ERR_INVALID_ARGUMENT,
                    ERR_NOT_FOUND,
                    ERR_IO,
                    ERR_UNSUPPORTED,
                    ERR_DECODE,
                    ERR_NO_ROUTE,
                    ERR_SINK,
                    ERR_TIMEOUT,
                ];
                if self == Call::QueueNext {
                    v.push(ERR_NOTHING_PLAYING);
                }
                v.extend(CLIENT);
                v
            }
            Call::Pause | Call::Resume => {
                [&CLIENT[..], &[ERR_NOTHING_PLAYING, ERR_TIMEOUT]].concat()
            }
            Call::Stop | Call::RouteClear => [&CLIENT[..], &[ERR_TIMEOUT]].concat(),
            // docs/ffi.md adds INVALID_ARGUMENT for a position past the end.
            Call::Seek => [
                &CLIENT[..],
                &[
                    ERR_NOTHING_PLAYING,
                    ERR_DECODE,
                    ERR_TIMEOUT,
                    ERR_INVALID_ARGUMENT,
                ],
            ]
            .concat(),
            Call::SetVolume => [&CLIENT[..], &[ERR_INVALID_ARGUMENT, ERR_TIMEOUT]].concat(),
            Call::RouteApplyNull => {
                [&CLIENT[..], &[ERR_INVALID_ARGUMENT, ERR_SINK, ERR_TIMEOUT]].concat()
            }
            // A plugin route also meets the plugin's state: not installed (or uninstalled a
            // moment ago), its library gone, or of another ABI.
            Call::RouteApplyAsio => [
                &CLIENT[..],
                &[
                    ERR_INVALID_ARGUMENT,
                    ERR_SINK,
                    ERR_TIMEOUT,
                    ERR_UNKNOWN_PLUGIN,
                    ERR_PLUGIN,
                    ERR_PLUGIN_ABI,
                ],
            ]
            .concat(),
            Call::SetDspChain => [
                &CLIENT[..],
                &[
                    ERR_INVALID_ARGUMENT,
                    ERR_UNKNOWN_PLUGIN,
                    ERR_PLUGIN,
                    ERR_TIMEOUT,
                ],
            ]
            .concat(),
            Call::PollEvent => {
                [&CLIENT[..], &[ERR_INVALID_ARGUMENT, ERR_BUFFER_TOO_SMALL]].concat()
            }
            Call::StatusJson => [
                &CLIENT[..],
                &[ERR_INVALID_ARGUMENT, ERR_BUFFER_TOO_SMALL, ERR_TIMEOUT],
            ]
            .concat(),
            Call::PluginsInstall => vec![
                ERR_INVALID_ARGUMENT,
                ERR_PLUGIN,
                ERR_PLUGIN_ABI,
                ERR_BUFFER_TOO_SMALL,
            ],
            Call::PluginsUninstall => vec![ERR_INVALID_ARGUMENT, ERR_UNKNOWN_PLUGIN, ERR_PLUGIN],
            Call::PluginsReload => vec![ERR_PLUGIN],
            Call::PluginsListJson => vec![ERR_INVALID_ARGUMENT, ERR_BUFFER_TOO_SMALL, ERR_PLUGIN],
            Call::MetricsJson | Call::LastError => {
                return vec![OK, ERR_INVALID_ARGUMENT, ERR_BUFFER_TOO_SMALL];
            }
            Call::ErrorName => return vec![OK],
            // Needs no runtime; NULL is refused.
            Call::SetPostCobject => return vec![OK, ERR_INVALID_ARGUMENT],
            // INVALID_ARGUMENT too before any post function was set.
            Call::SetEventPort => [&CLIENT[..], &[ERR_INVALID_ARGUMENT]].concat(),
            Call::SetReplaygain => [&CLIENT[..], &[ERR_INVALID_ARGUMENT, ERR_TIMEOUT]].concat(),
            Call::OutputDevicesJson => vec![ERR_INVALID_ARGUMENT, ERR_BUFFER_TOO_SMALL, ERR_SINK],
        };
        if !matches!(self, Call::Init | Call::Shutdown) {
            codes.extend(RT);
        }
        codes.push(OK);
        codes
    }

    /// Whether the header lists `code` for this call.
    pub fn lists(self, code: i32) -> bool {
        self.listed_codes().contains(&code)
    }
}

/// A small xorshift64* generator: the hammer needs cheap, seedable choices, not quality.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick_call(&mut self) -> Call {
        let total: u64 = Call::ALL.iter().map(|c| u64::from(c.weight())).sum();
        let mut x = self.below(total);
        for &call in Call::ALL {
            let w = u64::from(call.weight());
            if x < w {
                return call;
            }
            x -= w;
        }
        unreachable!("x < total")
    }
}

/// What every hammer thread shares: the arguments of the calls and the pool of client ids.
pub struct Inputs {
    pub config: CString,
    pub wav: CString,
    pub missing: CString,
    pub null_route: CString,
    pub asio_route: CString,
    pub dsp_empty: CString,
    pub dsp_asio: CString,
    /// A valid ReplayGain setting, and one whose preamp is out of range.
    pub replaygain: CString,
    pub replaygain_bad: CString,
    /// `--install-plugin`, or a path that is not a plugin (install then fails with PLUGIN).
    pub plugin_artifact: CString,
    pub plugin_id: CString,
    /// Recently created client ids, shared so that one thread's client is used, disposed
    /// and evicted under another's calls.
    pub clients: Mutex<Vec<u64>>,
}

/// Client ids kept in the pool; older ones drop out (and are left to their lease).
const POOL: usize = 32;
/// Longest poll wait: short, so a thread blocked in a poll comes back to the dice quickly.
const POLL_MAX_MS: u64 = 20;

/// The result of one call: its status, and for `error_name` whether the name was right.
pub struct Outcome {
    pub code: i32,
    pub bad_name: Option<String>,
}

impl Inputs {
    fn client(&self, rng: &mut Rng) -> u64 {
        // Some calls on ids that were never issued, or on 0 (never valid).
        if rng.chance(5) {
            return if rng.chance(50) {
                0
            } else {
                u64::MAX - rng.below(1000)
            };
        }
        let pool = self.clients.lock().expect("client pool");
        if pool.is_empty() {
            return u64::MAX;
        }
        pool[rng.below(pool.len() as u64) as usize]
    }

    fn add_client(&self, id: u64) {
        let mut pool = self.clients.lock().expect("client pool");
        if pool.len() >= POOL {
            pool.remove(0);
        }
        pool.push(id);
    }

    fn take_client(&self, rng: &mut Rng) -> u64 {
        let mut pool = self.clients.lock().expect("client pool");
        if pool.is_empty() || rng.chance(10) {
            drop(pool);
            return self.client(rng);
        }
        let i = rng.below(pool.len() as u64) as usize;
        pool.swap_remove(i)
    }

    /// Makes one call with random arguments.
    pub fn invoke(&self, api: &Api, call: Call, rng: &mut Rng) -> Outcome {
        let plain = |code| Outcome {
            code,
            bad_name: None,
        };
        let mut buf = vec![0 as c_char; 4096];
        let mut len = 0usize;
        // Sometimes too small a buffer, to exercise BUFFER_TOO_SMALL (cap 0 only asks).
        let cap = match rng.below(10) {
            0 => 0,
            1 => 8,
            _ => buf.len(),
        };
        // SAFETY: for every call below, the strings are NUL-terminated CStrings that outlive
        // the call, `buf` is valid for `cap` <= its length, and `len`/`id` are valid to write.
        let code = unsafe {
            match call {
                Call::Init => (api.runtime_init)(self.config.as_ptr()),
                Call::Shutdown => (api.runtime_shutdown)(),
                Call::PrepareHotRestart => (api.runtime_prepare_hot_restart)(),
                Call::CreateClient => {
                    let mut id = 0u64;
                    let code = (api.player_create_client)(&mut id);
                    if code == OK {
                        self.add_client(id);
                    }
                    code
                }
                Call::DisposeClient => (api.player_dispose_client)(self.take_client(rng)),
                Call::Play | Call::QueueNext => {
                    let path = if rng.chance(10) {
                        &self.missing
                    } else {
                        &self.wav
                    };
                    let f = if call == Call::Play {
                        api.player_play
                    } else {
                        api.player_queue_next
                    };
                    f(self.client(rng), path.as_ptr())
                }
                Call::Pause => (api.player_pause)(self.client(rng)),
                Call::Resume => (api.player_resume)(self.client(rng)),
                Call::Stop => (api.player_stop)(self.client(rng)),
                // The track is 2 s: some seeks go past its end.
                Call::Seek => (api.player_seek_ms)(self.client(rng), rng.below(2600)),
                // Up to 2.2: some are out of range.
                Call::SetVolume => {
                    (api.player_set_volume)(self.client(rng), rng.below(221) as f32 / 100.0)
                }
                Call::RouteApplyNull => {
                    (api.output_route_apply)(self.client(rng), self.null_route.as_ptr())
                }
                Call::RouteApplyAsio => {
                    (api.output_route_apply)(self.client(rng), self.asio_route.as_ptr())
                }
                Call::RouteClear => (api.output_route_clear)(self.client(rng)),
                Call::SetDspChain => {
                    let chain = if rng.chance(70) {
                        &self.dsp_empty
                    } else {
                        &self.dsp_asio
                    };
                    (api.player_set_dsp_chain)(self.client(rng), chain.as_ptr())
                }
                Call::PollEvent => (api.player_poll_event)(
                    self.client(rng),
                    rng.below(POLL_MAX_MS + 1) as u32,
                    buf.as_mut_ptr(),
                    cap,
                    &mut len,
                ),
                Call::StatusJson => {
                    (api.player_status_json)(self.client(rng), buf.as_mut_ptr(), cap, &mut len)
                }
                Call::MetricsJson => (api.runtime_metrics_json)(buf.as_mut_ptr(), cap, &mut len),
                Call::PluginsInstall => (api.plugins_install)(
                    self.plugin_artifact.as_ptr(),
                    buf.as_mut_ptr(),
                    cap.max(1),
                ),
                Call::PluginsUninstall => (api.plugins_uninstall)(self.plugin_id.as_ptr()),
                Call::PluginsReload => (api.plugins_reload)(),
                Call::PluginsListJson => (api.plugins_list_json)(buf.as_mut_ptr(), cap, &mut len),
                Call::LastError => (api.last_error)(buf.as_mut_ptr(), cap.max(1)),
                Call::SetPostCobject => {
                    let post = if rng.chance(10) {
                        std::ptr::null_mut()
                    } else {
                        fake_post_cobject as crate::ports::PostCObject as *mut std::ffi::c_void
                    };
                    (api.dart_set_post_cobject)(post)
                }
                // A listener that stays (its posts are dropped), a closed port (the client is
                // evicted at the next post, racing everything else), or back to polling.
                Call::SetEventPort => {
                    let port = match rng.below(3) {
                        0 => DISCARD_PORT,
                        1 => i64::MAX - rng.below(1000) as i64,
                        _ => 0,
                    };
                    (api.player_set_event_port)(self.client(rng), port)
                }
                // A valid mode, or a gain out of range (refused with INVALID_ARGUMENT).
                Call::SetReplaygain => {
                    let json = if rng.chance(80) {
                        &self.replaygain
                    } else {
                        &self.replaygain_bad
                    };
                    (api.player_set_replaygain)(self.client(rng), json.as_ptr())
                }
                Call::OutputDevicesJson => {
                    (api.output_devices_json)(buf.as_mut_ptr(), cap, &mut len)
                }
                Call::ErrorName => {
                    let code = rng.below(23) as i32 - 21;
                    let name = (api.error_name)(code);
                    let got = if name.is_null() {
                        "(NULL)".to_owned()
                    } else {
                        CStr::from_ptr(name).to_string_lossy().into_owned()
                    };
                    let want = documented_name(code).unwrap_or("STELLATUNE_ERR_UNKNOWN_CODE");
                    return Outcome {
                        code: OK,
                        bad_name: (got != want)
                            .then(|| format!("error_name({code}) = {got}, expected {want}")),
                    };
                }
            }
        };
        plain(code)
    }
}
