//! Loads the built cdylib with `libloading` and drives it through the raw ABI, as a host
//! would.

use std::ffi::{CStr, c_void};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libloading::Library;
use stellatune_plugin_api::{
    ABI_MAJOR, ABI_MINOR, Capability, DspVTable, ENTRY_SYMBOL, ModuleTable, OutputSinkVTable,
    PluginEntryFn, StSinkStatus, StSpec, StStatus, StStr, capability_kind, sink_traits, status,
};
use stellatune_test_support::artifacts;
use stellatune_test_support::fake_host::{self, host, lock, st_string};
use stellatune_test_support::mapped::library_code_loaded;

/// Every test holds this: they share one loaded library (and its host pointer) and one
/// process environment.
static SERIAL: Mutex<()> = Mutex::new(());

/// The cdylib of this test run's profile. The workspace is built before the tests
/// (scripts/test.sh; `cargo test` alone does not build a `cdylib`-only library): a test never
/// runs cargo (under Wine it could not even wait for it).
fn library_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(artifacts::test_plugins_library)
}

struct Plugin {
    table: &'static ModuleTable,
    // Declared last: the table points into the library.
    _lib: Library,
}

fn load() -> Plugin {
    let lib = load_library();
    let table = call_entry(&lib).expect("the plugin refused a matching host");
    Plugin { table, _lib: lib }
}

fn load_library() -> Library {
    let path = library_path();
    // SAFETY: the test plugin's initialisers only set up Rust statics.
    unsafe { Library::new(path) }.unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()))
}

fn call_entry(lib: &Library) -> Option<&'static ModuleTable> {
    // SAFETY: the symbol has the ABI's entry type.
    let entry = unsafe { lib.get::<PluginEntryFn>(ENTRY_SYMBOL) }.expect("entry symbol");
    // SAFETY: the host vtable is leaked, valid for the rest of the process. The returned
    // table lives as long as the library, which every caller keeps loaded while using it.
    unsafe { entry(host()).as_ref() }
}

impl Plugin {
    fn capabilities(&self) -> &'static [Capability] {
        // SAFETY: the module's capability array has `capability_count` entries.
        unsafe { std::slice::from_raw_parts(self.table.capabilities, self.table.capability_count) }
    }

    fn capability(&self, type_id: &str) -> &'static Capability {
        self.capabilities()
            .iter()
            .find(|c| st_string(c.type_id) == type_id)
            .unwrap_or_else(|| panic!("no capability {type_id}"))
    }

    fn sink(&self, type_id: &str) -> &'static OutputSinkVTable {
        let cap = self.capability(type_id);
        assert_eq!(cap.kind, capability_kind::OUTPUT_SINK);
        // SAFETY: an OUTPUT_SINK capability points at an OutputSinkVTable.
        unsafe { &*cap.vtable.cast::<OutputSinkVTable>() }
    }

    fn dsp(&self, type_id: &str) -> &'static DspVTable {
        let cap = self.capability(type_id);
        assert_eq!(cap.kind, capability_kind::DSP);
        // SAFETY: a DSP capability points at a DspVTable.
        unsafe { &*cap.vtable.cast::<DspVTable>() }
    }

    /// Code and message; the message goes back through the module's `free_string`.
    fn take(&self, st: StStatus) -> (i32, String) {
        fake_host::take_status(self.table, st)
    }

    #[track_caller]
    fn ok(&self, st: StStatus) {
        fake_host::expect_ok(self.table, st);
    }

    fn create_sink(&self, type_id: &str, config: &str, target: &str) -> *mut c_void {
        let mut instance = ptr::null_mut();
        self.ok((self.sink(type_id).create)(
            StStr::borrowed(config),
            StStr::borrowed(target),
            &mut instance,
        ));
        assert!(!instance.is_null());
        instance
    }
}

const STEREO: StSpec = StSpec {
    sample_rate: 48_000,
    channels: 2,
};

#[test]
fn module_table_lists_the_test_plugins() {
    let _g = lock(&SERIAL);
    let p = load();
    let t = p.table;
    assert_eq!(t.size, size_of::<ModuleTable>());
    assert_eq!((t.abi_major, t.abi_minor), (ABI_MAJOR, ABI_MINOR));
    assert_eq!(st_string(t.plugin_id), "test-plugins");
    assert_eq!(st_string(t.plugin_version), "0.1.0");
    let caps: Vec<_> = p
        .capabilities()
        .iter()
        .map(|c| (c.kind, st_string(c.type_id)))
        .collect();
    assert_eq!(
        caps,
        [
            (capability_kind::OUTPUT_SINK, "capture".to_owned()),
            (capability_kind::OUTPUT_SINK, "capture_fading".to_owned()),
            (capability_kind::OUTPUT_SINK, "misbehave".to_owned()),
            (capability_kind::DSP, "gain".to_owned()),
        ]
    );
    // The sink traits (ABI 1.2) come from each type's `TRAITS`.
    assert_eq!(p.sink("capture").traits, 0);
    assert_eq!(p.sink("capture_fading").traits, sink_traits::FADES_ON_RESET);
    assert_eq!(p.sink("misbehave").traits, 0);
    assert_eq!(
        st_string(p.capability("gain").default_config_json),
        r#"{"gain":1.0}"#
    );

    let mut json = ptr::null_mut();
    p.ok((p.sink("capture").list_targets_json)(
        StStr::EMPTY,
        &mut json,
    ));
    // SAFETY: a NUL-terminated string the module owns.
    let targets = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    (t.free_string)(json);
    assert_eq!(targets, r#"[{"id":"capture.raw","name":"capture.raw"}]"#);

    p.ok((t.shutdown)());
}

#[test]
fn paced_capture_takes_its_buffer_then_only_what_has_played() {
    let _g = lock(&SERIAL);
    let p = load();
    let vt = p.sink("capture");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.raw");
    let sink = p.create_sink(
        "capture",
        r#"{"realtime_buffer_ms": 100}"#,
        target.to_str().unwrap(),
    );
    p.ok((vt.open)(sink, STEREO));
    // One second offered: a 100 ms buffer at 48 kHz takes 4800 frames.
    let second = vec![0.25f32; 2 * 48_000];
    let mut taken = 0;
    let opened = std::time::Instant::now();
    p.ok((vt.write)(sink, second.as_ptr(), 48_000, &mut taken));
    assert_eq!(taken, 4_800);
    // Frames a 48 kHz clock can have played since just before the first write.
    let played = || (opened.elapsed().as_secs_f64() * 48_000.0).ceil() as u64 + 1;
    // Again: only what played in between (however long this thread was descheduled).
    p.ok((vt.write)(sink, second.as_ptr(), 48_000, &mut taken));
    let bound = played();
    assert!(
        (taken as u64) <= bound.min(4_800),
        "took {taken} frames into a full buffer ({bound} could have played)"
    );
    let mut status = StSinkStatus::default();
    p.ok((vt.query_status)(sink, &mut status));
    let bound = played();
    assert!(
        status.queued_frames <= 4_800 && status.queued_frames + bound >= 4_800,
        "{status:?} ({bound} could have played)"
    );
    // After a reset nothing is queued and the whole buffer is free again.
    p.ok((vt.reset)(sink));
    p.ok((vt.query_status)(sink, &mut status));
    assert_eq!(status.queued_frames, 0);
    p.ok((vt.write)(sink, second.as_ptr(), 48_000, &mut taken));
    assert_eq!(taken, 4_800);
    p.ok((vt.close)(sink));
    (vt.destroy)(sink);

    // A config it does not know is refused at create.
    let mut refused = ptr::null_mut();
    let code = (vt.create)(
        StStr::borrowed(r#"{"realtime": true}"#),
        StStr::borrowed(target.to_str().unwrap()),
        &mut refused,
    );
    let (code, message) = p.take(code);
    assert_eq!(code, status::INVALID_ARGUMENT, "{message}");
    assert!(message.contains("realtime"), "{message}");
}

#[test]
fn capture_writes_raw_f32_and_records_calls() {
    let _g = lock(&SERIAL);
    let p = load();
    let vt = p.sink("capture");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.raw");
    let target_str = target.to_str().unwrap();

    let sink = p.create_sink("capture", "", target_str);
    let mut spec = StSpec {
        sample_rate: 0,
        channels: 0,
    };
    p.ok((vt.negotiate)(sink, STEREO, &mut spec));
    assert_eq!(spec, STEREO);
    p.ok((vt.open)(sink, spec));
    assert_eq!(open_gauge(), 1);

    let samples: Vec<f32> = (0..20).map(|i| i as f32 / 10.0 - 1.0).collect();
    let mut taken = 0;
    p.ok((vt.write)(sink, samples.as_ptr(), 10, &mut taken));
    assert_eq!(taken, 10);
    p.ok((vt.flush)(sink));
    p.ok((vt.write)(sink, samples.as_ptr(), 4, &mut taken));
    assert_eq!(taken, 4);
    p.ok((vt.reset)(sink));
    p.ok((vt.close)(sink));
    assert_eq!(open_gauge(), 0);
    (vt.destroy)(sink);

    let bytes = std::fs::read(&target).unwrap();
    let written: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let expected: Vec<f32> = samples.iter().chain(&samples[..8]).copied().collect();
    assert_eq!(written, expected);

    let calls = std::fs::read_to_string(format!("{target_str}.calls")).unwrap();
    assert_eq!(calls, "open\nflush\nreset\nclose\ndestroy\n");
    assert!(
        fake_host::events()
            .iter()
            .any(|(k, j)| k == "capture_open" && j.contains("\"channels\":2"))
    );
}

#[test]
fn capture_destroy_without_close_closes_first() {
    let _g = lock(&SERIAL);
    let p = load();
    let vt = p.sink("capture");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("skipped-close.raw");
    let target_str = target.to_str().unwrap();
    let sink = p.create_sink("capture", "{}", target_str);
    let mut taken = 0;
    let (code, _) = p.take((vt.write)(sink, [0.0f32; 2].as_ptr(), 1, &mut taken));
    assert_eq!(code, status::BAD_STATE, "write before open");
    p.ok((vt.open)(sink, STEREO));
    p.ok((vt.write)(sink, [0.5f32, -0.5].as_ptr(), 1, &mut taken));
    (vt.destroy)(sink);
    assert_eq!(open_gauge(), 0);
    let calls = std::fs::read_to_string(format!("{target_str}.calls")).unwrap();
    assert_eq!(calls, "open\nclose\ndestroy\n");
    assert_eq!(std::fs::read(&target).unwrap().len(), 8, "flushed on close");
}

#[test]
fn gain_multiplies_samples() {
    let _g = lock(&SERIAL);
    let p = load();
    let vt = p.dsp("gain");
    let mut dsp = ptr::null_mut();
    p.ok((vt.create)(
        StStr::borrowed(r#"{"gain":0.5}"#),
        STEREO,
        &mut dsp,
    ));
    let mut samples = [1.0f32, -1.0, 0.5, 0.25];
    p.ok((vt.process)(dsp, samples.as_mut_ptr(), 2));
    assert_eq!(samples, [0.5, -0.5, 0.25, 0.125]);
    (vt.destroy)(dsp);

    // Default: unity.
    let mut dsp = ptr::null_mut();
    p.ok((vt.create)(StStr::EMPTY, STEREO, &mut dsp));
    p.ok((vt.process)(dsp, samples.as_mut_ptr(), 2));
    assert_eq!(samples, [0.5, -0.5, 0.25, 0.125]);
    (vt.destroy)(dsp);

    let mut dsp = ptr::null_mut();
    let (code, message) = p.take((vt.create)(
        StStr::borrowed(r#"{"gian":2}"#),
        STEREO,
        &mut dsp,
    ));
    assert_eq!(code, status::INVALID_ARGUMENT, "{message}");
    assert!(dsp.is_null());
}

#[test]
fn misbehave_panics_are_statuses_across_the_boundary() {
    let _g = lock(&SERIAL);
    let p = load();
    let vt = p.sink("misbehave");

    let sink = p.create_sink(
        "misbehave",
        r#"{"panic_in":["write","destroy"]}"#,
        "default",
    );
    p.ok((vt.open)(sink, STEREO));
    let mut taken = 7;
    let (code, message) = p.take((vt.write)(sink, [0.0f32; 4].as_ptr(), 2, &mut taken));
    assert_eq!((code, taken), (status::PANICKED, 0));
    assert!(message.contains("misbehave: panic in Write"), "{message}");
    p.ok((vt.close)(sink));
    (vt.destroy)(sink);
    assert!(
        fake_host::logs()
            .iter()
            .any(|l| l.contains("misbehave: panic in Destroy")),
        "destroy's panic is logged"
    );

    let mut instance = ptr::null_mut();
    let (code, _) = p.take((vt.create)(
        StStr::borrowed(r#"{"panic_in":["create"]}"#),
        StStr::EMPTY,
        &mut instance,
    ));
    assert_eq!(code, status::PANICKED);
    assert!(instance.is_null());

    let (code, message) = p.take((vt.create)(
        StStr::borrowed(r#"{"panic_in":["nonsense"]}"#),
        StStr::EMPTY,
        &mut instance,
    ));
    assert_eq!(code, status::INVALID_ARGUMENT, "{message}");

    let sink = p.create_sink(
        "misbehave",
        r#"{"hang_in_close_ms":150,"error_in":["flush"]}"#,
        "",
    );
    p.ok((vt.open)(sink, STEREO));
    p.ok((vt.write)(sink, [0.0f32; 4].as_ptr(), 2, &mut taken));
    assert_eq!(taken, 2);
    assert_eq!(p.take((vt.flush)(sink)).0, status::ERROR);
    let started = Instant::now();
    p.ok((vt.close)(sink));
    assert!(started.elapsed() >= Duration::from_millis(150));
    (vt.destroy)(sink);
}

#[test]
fn misbehave_threads_are_lent_by_the_host_and_joined_on_destroy() {
    let _g = lock(&SERIAL);
    let p = load();
    let vt = p.sink("misbehave");
    let before = fake_host::lent_threads();
    let sink = p.create_sink("misbehave", r#"{"threads":3}"#, "");
    assert_eq!(fake_host::lent_threads(), before + 3, "three threads lent");
    assert!(
        fake_host::unjoined_thread_names()
            .iter()
            .any(|n| n.as_deref() == Some("misbehave-2"))
    );
    p.ok((vt.close)(sink));
    (vt.destroy)(sink);
    assert_eq!(
        fake_host::lent_threads(),
        before,
        "every lent thread was joined"
    );
    p.ok((p.table.shutdown)());
}

#[test]
fn abi_major_env_hook_reports_another_major() {
    let _g = lock(&SERIAL);
    let lib = load_library();
    // SAFETY: every test in this binary holds SERIAL, so no other thread of ours reads the
    // environment meanwhile.
    unsafe { std::env::set_var("STELLATUNE_TEST_PLUGIN_ABI_MAJOR", "99") };
    let table = call_entry(&lib);
    // SAFETY: as above.
    unsafe { std::env::remove_var("STELLATUNE_TEST_PLUGIN_ABI_MAJOR") };
    let table = table.expect("a table reporting the other major");
    assert_eq!(table.abi_major, 99);
    assert_eq!(st_string(table.plugin_id), "test-plugins");
    assert_eq!(call_entry(&lib).unwrap().abi_major, ABI_MAJOR);
}

#[test]
fn abi_minor_env_hook_reports_another_minor() {
    let _g = lock(&SERIAL);
    let lib = load_library();
    // SAFETY: every test in this binary holds SERIAL, so no other thread of ours reads the
    // environment meanwhile.
    unsafe { std::env::set_var("STELLATUNE_TEST_PLUGIN_ABI_MINOR", "1") };
    let table = call_entry(&lib);
    // SAFETY: as above.
    unsafe { std::env::remove_var("STELLATUNE_TEST_PLUGIN_ABI_MINOR") };
    let table = table.expect("a table reporting the other minor");
    assert_eq!((table.abi_major, table.abi_minor), (ABI_MAJOR, 1));
    assert_eq!(st_string(table.plugin_id), "test-plugins");
    assert_eq!(call_entry(&lib).unwrap().abi_minor, ABI_MINOR);
}

/// The sum of `test_capture_open` deltas so far.
fn open_gauge() -> i64 {
    fake_host::metric_sum("test_capture_open")
}

/// The SDK keeps no TLS with destructors, so `dlclose` really unloads the module, even after
/// a plugin panicked (a Rust cdylib that registered TLS destructors would stay loaded).
#[test]
fn library_unloads_after_use_and_a_panic() {
    let _g = lock(&SERIAL);
    let mapped = || library_code_loaded("stellatune_test_plugins");
    assert!(!mapped(), "another test left the library loaded");
    {
        let p = load();
        let vt = p.sink("misbehave");
        let sink = p.create_sink("misbehave", r#"{"panic_in":["write"]}"#, "");
        p.ok((vt.open)(sink, STEREO));
        let mut taken = 0;
        assert_eq!(
            p.take((vt.write)(sink, [0.0f32; 4].as_ptr(), 2, &mut taken))
                .0,
            status::PANICKED
        );
        p.ok((vt.close)(sink));
        (vt.destroy)(sink);
        p.ok((p.table.shutdown)());
        assert!(mapped());
    }
    assert!(!mapped(), "dlclose left the library mapped");
}
