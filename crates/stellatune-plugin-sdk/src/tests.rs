//! Calls the shims `export_plugin!` generates through the module table, in-process.

use std::ffi::{CStr, c_void};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use stellatune_test_support::fake_host::{self, host_with, lock, st_string};

use stellatune_plugin_api::{
    ABI_MAJOR, ABI_MINOR, Capability, DspVTable, HostVTable, ModuleTable, OutputSinkVTable,
    StSinkSchedule, StSinkStatus, StSpec, StStatus, StStr, capability_kind,
};

use crate::{
    Dsp, DspType, Error, OutputSink, OutputSinkType, Result, SinkStatus, Spec, Target, status,
};

// ---------------------------------------------------------------------------------------
// A plugin under test

/// Lifecycle calls per sink target, so parallel tests do not see each other's.
static CALLS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record(target: &str, call: &str) {
    lock(&CALLS).push((target.to_owned(), call.to_owned()));
}

fn calls(target: &str) -> Vec<String> {
    lock(&CALLS)
        .iter()
        .filter(|(t, _)| t == target)
        .map(|(_, c)| c.clone())
        .collect()
}

/// Config is the name of the call to panic in (or `lie` to over-report frames taken).
struct TestSinkType;

struct TestSink {
    target: String,
    panic_in: String,
    written: u64,
}

impl TestSink {
    fn hit(&self, call: &str) {
        if self.panic_in == call {
            panic!("boom in {call}");
        }
    }
}

impl OutputSinkType for TestSinkType {
    const TYPE_ID: &'static str = "test_sink";
    const DISPLAY_NAME: &'static str = "Test sink";
    const TRAITS: u32 = crate::sink_traits::FADES_ON_RESET;
    type Instance = TestSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>> {
        if config_json == "panic" {
            panic!("boom in list_targets");
        }
        Ok(vec![
            Target::new("a\"b\\c", "Line\nbreak\u{1}"),
            Target::new("second", "Second"),
        ])
    }

    fn create(config_json: &str, target: &str) -> Result<TestSink> {
        match config_json {
            "create" => panic!("boom in create"),
            "fail" => Err(Error::unsupported("no such target")),
            _ => Ok(TestSink {
                target: target.to_owned(),
                panic_in: config_json.to_owned(),
                written: 0,
            }),
        }
    }
}

impl OutputSink for TestSink {
    fn negotiate(&mut self, preferred: Spec) -> Result<Spec> {
        self.hit("negotiate");
        Ok(Spec {
            sample_rate: 48_000,
            channels: preferred.channels,
        })
    }

    fn open(&mut self, _spec: Spec) -> Result<()> {
        record(&self.target, "open");
        self.hit("open");
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize> {
        self.hit("write");
        let frames = interleaved.len() / 2;
        self.written += frames as u64;
        Ok(if self.panic_in == "lie" {
            frames + 1
        } else {
            frames
        })
    }

    fn status(&self) -> SinkStatus {
        self.hit("status");
        SinkStatus {
            queued_frames: self.written,
            underruns: 3,
        }
    }

    /// A consumer that starts taking once something was written: every 20 ms, the next in 7.
    fn schedule(&self) -> Option<crate::SinkSchedule> {
        self.hit("schedule");
        (self.written > 0).then_some(crate::SinkSchedule {
            next_take_in: std::time::Duration::from_millis(7),
            period: std::time::Duration::from_millis(20),
        })
    }

    fn flush(&mut self) -> Result<()> {
        record(&self.target, "flush");
        self.hit("flush");
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        record(&self.target, "reset");
        self.hit("reset");
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        record(&self.target, "close");
        self.hit("close");
        Ok(())
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        record(&self.target, "drop");
        self.hit("drop");
    }
}

/// Multiplies by 2; config `process` panics in process.
struct TestDspType;

struct TestDsp {
    panic: bool,
}

impl DspType for TestDspType {
    const TYPE_ID: &'static str = "double";
    const DISPLAY_NAME: &'static str = "Double";
    const DEFAULT_CONFIG: &'static str = "{\"factor\":2}";
    type Instance = TestDsp;

    fn create(config_json: &str, _spec: Spec) -> Result<TestDsp> {
        Ok(TestDsp {
            panic: config_json == "process",
        })
    }
}

impl Dsp for TestDsp {
    fn process(&mut self, interleaved: &mut [f32]) -> Result<()> {
        assert!(!self.panic, "boom in process");
        interleaved.iter_mut().for_each(|s| *s *= 2.0);
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        Ok(())
    }
}

static SHUTDOWNS: AtomicUsize = AtomicUsize::new(0);
static SHUTDOWN_PANICS: AtomicUsize = AtomicUsize::new(0);

fn test_shutdown() -> Result<()> {
    SHUTDOWNS.fetch_add(1, Ordering::SeqCst);
    if SHUTDOWN_PANICS.load(Ordering::SeqCst) > 0 {
        panic!("boom in shutdown");
    }
    Ok(())
}

/// 0: no override.
static OVERRIDE_MAJOR: AtomicU32 = AtomicU32::new(0);
/// u32::MAX: no override.
static OVERRIDE_MINOR: AtomicU32 = AtomicU32::new(u32::MAX);

fn test_minor_override() -> Option<u32> {
    match OVERRIDE_MINOR.load(Ordering::SeqCst) {
        u32::MAX => None,
        m => Some(m),
    }
}

fn test_override() -> Option<u32> {
    match OVERRIDE_MAJOR.load(Ordering::SeqCst) {
        0 => None,
        m => Some(m),
    }
}

crate::export_plugin! {
    id: "sdk-test",
    version: "9.8.7",
    sinks: [TestSinkType],
    dsps: [TestDspType],
    shutdown: test_shutdown,
    abi_major_override: test_override,
    abi_minor_override: test_minor_override,
}

// ---------------------------------------------------------------------------------------
// A host: the shared fake host, which records what the plugin sends it.

fn host_with_major(abi_major: u32) -> &'static HostVTable {
    host_with(abi_major, ABI_MINOR)
}

/// Serialises entry calls against the override test.
static ENTRY: Mutex<()> = Mutex::new(());

fn call_entry(host: *const HostVTable) -> *const ModuleTable {
    // SAFETY: `host` is NULL or leaked, so valid for the rest of the process.
    unsafe { stellatune_plugin_entry(host) }
}

fn module() -> &'static ModuleTable {
    let _g = lock(&ENTRY);
    let table = call_entry(host_with_major(ABI_MAJOR));
    // SAFETY: the entry returns NULL or a 'static table.
    unsafe { table.as_ref() }.expect("entry refused a matching host")
}

fn capabilities(m: &'static ModuleTable) -> &'static [Capability] {
    // SAFETY: the table's capability array is 'static with `capability_count` entries.
    unsafe { std::slice::from_raw_parts(m.capabilities, m.capability_count) }
}

fn find(m: &'static ModuleTable, type_id: &str) -> &'static Capability {
    capabilities(m)
        .iter()
        .find(|c| st_string(c.type_id) == type_id)
        .expect("capability")
}

fn sink_vtable(m: &'static ModuleTable) -> &'static OutputSinkVTable {
    let cap = find(m, "test_sink");
    assert_eq!(cap.kind, capability_kind::OUTPUT_SINK);
    // SAFETY: an OUTPUT_SINK capability's vtable is a 'static OutputSinkVTable.
    unsafe { &*cap.vtable.cast::<OutputSinkVTable>() }
}

fn dsp_vtable(m: &'static ModuleTable) -> &'static DspVTable {
    let cap = find(m, "double");
    assert_eq!(cap.kind, capability_kind::DSP);
    // SAFETY: a DSP capability's vtable is a 'static DspVTable.
    unsafe { &*cap.vtable.cast::<DspVTable>() }
}

/// The status's code and message; frees the message through the module.
fn take(m: &ModuleTable, st: StStatus) -> (i32, String) {
    fake_host::take_status(m, st)
}

#[track_caller]
fn ok(m: &ModuleTable, st: StStatus) {
    fake_host::expect_ok(m, st);
}

const STEREO: StSpec = StSpec {
    sample_rate: 44_100,
    channels: 2,
};

fn create_sink(m: &'static ModuleTable, config: &str, target: &str) -> *mut c_void {
    let vt = sink_vtable(m);
    let mut instance = ptr::null_mut();
    ok(
        m,
        (vt.create)(
            StStr::borrowed(config),
            StStr::borrowed(target),
            &mut instance,
        ),
    );
    assert!(!instance.is_null());
    instance
}

fn write(m: &'static ModuleTable, instance: *mut c_void, samples: &[f32]) -> (i32, String, usize) {
    let mut taken = usize::MAX;
    let st = (sink_vtable(m).write)(instance, samples.as_ptr(), samples.len() / 2, &mut taken);
    let (code, message) = take(m, st);
    (code, message, taken)
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn module_table_describes_the_plugin() {
    let m = module();
    assert_eq!(m.size, size_of::<ModuleTable>());
    assert_eq!((m.abi_major, m.abi_minor), (ABI_MAJOR, ABI_MINOR));
    assert_eq!(st_string(m.plugin_id), "sdk-test");
    assert_eq!(st_string(m.plugin_version), "9.8.7");
    let caps: Vec<_> = capabilities(m)
        .iter()
        .map(|c| (c.kind, st_string(c.type_id), st_string(c.display_name)))
        .collect();
    assert_eq!(
        caps,
        [
            (
                capability_kind::OUTPUT_SINK,
                "test_sink".into(),
                "Test sink".into()
            ),
            (capability_kind::DSP, "double".into(), "Double".into()),
        ]
    );
    let sink = find(m, "test_sink");
    assert_eq!(st_string(sink.default_config_json), "{}");
    assert_eq!(st_string(sink.config_schema_json), "");
    assert_eq!(
        st_string(find(m, "double").default_config_json),
        "{\"factor\":2}"
    );
    // The same table every time.
    assert!(ptr::eq(m, module()));
}

#[test]
fn entry_refuses_null_and_other_major_hosts() {
    let _g = lock(&ENTRY);
    assert!(call_entry(ptr::null()).is_null());
    assert!(call_entry(host_with_major(ABI_MAJOR + 1)).is_null());
}

#[test]
fn abi_major_override_reports_another_major() {
    let _g = lock(&ENTRY);
    OVERRIDE_MAJOR.store(ABI_MAJOR + 41, Ordering::SeqCst);
    let a = call_entry(host_with_major(ABI_MAJOR));
    let b = call_entry(host_with_major(ABI_MAJOR));
    OVERRIDE_MAJOR.store(0, Ordering::SeqCst);
    let normal = call_entry(host_with_major(ABI_MAJOR));
    // SAFETY: non-NULL results of the entry are 'static tables.
    let (a, normal) = unsafe { (&*a, &*normal) };
    assert!(ptr::eq(a, b), "one leaked copy per major");
    assert_eq!(a.abi_major, ABI_MAJOR + 41);
    assert_eq!(normal.abi_major, ABI_MAJOR);
    assert!(!ptr::eq(a, normal));
    assert_eq!(a.capability_count, normal.capability_count);
}

#[test]
fn abi_minor_override_reports_another_minor_with_the_same_capabilities() {
    let _g = lock(&ENTRY);
    OVERRIDE_MINOR.store(1, Ordering::SeqCst);
    let a = call_entry(host_with_major(ABI_MAJOR));
    let b = call_entry(host_with_major(ABI_MAJOR));
    OVERRIDE_MINOR.store(u32::MAX, Ordering::SeqCst);
    let normal = call_entry(host_with_major(ABI_MAJOR));
    // SAFETY: non-NULL results of the entry are 'static tables.
    let (a, normal) = unsafe { (&*a, &*normal) };
    assert!(ptr::eq(a, b), "one leaked copy per version");
    assert_eq!((a.abi_major, a.abi_minor), (ABI_MAJOR, 1));
    assert_eq!((normal.abi_major, normal.abi_minor), (ABI_MAJOR, ABI_MINOR));
    assert!(ptr::eq(a.capabilities, normal.capabilities));
}

#[test]
fn a_sink_types_traits_fill_its_vtable() {
    let m = module();
    assert_eq!(sink_vtable(m).traits, crate::sink_traits::FADES_ON_RESET);
}

#[test]
fn query_schedule_reports_the_sinks_schedule_or_a_zero_period() {
    let m = module();
    let vt = sink_vtable(m);
    let sink = create_sink(m, "", "schedule");
    let mut out = StSinkSchedule {
        next_take_in_ns: 1,
        period_ns: 1,
    };
    assert_eq!(
        take(m, (vt.query_schedule)(sink, &mut out)).0,
        status::BAD_STATE
    );
    ok(m, (vt.open)(sink, STEREO));
    ok(m, (vt.query_schedule)(sink, &mut out));
    assert_eq!(out, StSinkSchedule::default(), "no schedule: period 0");
    let (code, message, _) = write(m, sink, &[0.5f32; 4]);
    assert_eq!(code, status::OK, "{message}");
    ok(m, (vt.query_schedule)(sink, &mut out));
    assert_eq!(
        out,
        StSinkSchedule {
            next_take_in_ns: 7_000_000,
            period_ns: 20_000_000
        }
    );
    let (code, _) = take(m, (vt.query_schedule)(sink, ptr::null_mut()));
    assert_eq!(code, status::INVALID_ARGUMENT);
    ok(m, (vt.close)(sink));
    (vt.destroy)(sink);

    let panicking = create_sink(m, "schedule", "schedule-panic");
    ok(m, (vt.open)(panicking, STEREO));
    let (code, message) = take(m, (vt.query_schedule)(panicking, &mut out));
    assert_eq!(code, status::PANICKED);
    assert!(message.contains("boom in schedule"), "{message}");
    ok(m, (vt.close)(panicking));
    (vt.destroy)(panicking);
}

#[test]
fn list_targets_writes_escaped_json() {
    let m = module();
    let vt = sink_vtable(m);
    let mut json = ptr::null_mut();
    ok(m, (vt.list_targets_json)(StStr::EMPTY, &mut json));
    assert!(!json.is_null());
    // SAFETY: a NUL-terminated string owned by the module.
    let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    (m.free_string)(json);
    assert_eq!(
        text,
        r#"[{"id":"a\"b\\c","name":"Line\nbreak\u0001"},{"id":"second","name":"Second"}]"#
    );

    let (code, message) = take(m, (vt.list_targets_json)(StStr::EMPTY, ptr::null_mut()));
    assert_eq!(code, status::INVALID_ARGUMENT, "{message}");

    let mut json = ptr::null_mut();
    let (code, message) = take(
        m,
        (vt.list_targets_json)(StStr::borrowed("panic"), &mut json),
    );
    assert_eq!(code, status::PANICKED);
    assert!(message.contains("boom in list_targets"), "{message}");
    assert!(json.is_null());
}

#[test]
fn sink_lifecycle_is_enforced() {
    let m = module();
    let vt = sink_vtable(m);
    let sink = create_sink(m, "", "lifecycle");
    let samples = [0.5f32; 6];

    let (code, message, taken) = write(m, sink, &samples);
    assert_eq!(code, status::BAD_STATE);
    assert!(message.contains("before open"), "{message}");
    assert_eq!(taken, 0);
    for f in [vt.flush, vt.reset] {
        assert_eq!(take(m, f(sink)).0, status::BAD_STATE);
    }
    let mut st = StSinkStatus::default();
    assert_eq!(
        take(m, (vt.query_status)(sink, &mut st)).0,
        status::BAD_STATE
    );
    // Closing what is not open is a no-op.
    ok(m, (vt.close)(sink));

    let mut spec = StSpec {
        sample_rate: 0,
        channels: 0,
    };
    ok(m, (vt.negotiate)(sink, STEREO, &mut spec));
    assert_eq!(
        spec,
        StSpec {
            sample_rate: 48_000,
            channels: 2
        }
    );
    let zero = StSpec {
        sample_rate: 48_000,
        channels: 0,
    };
    assert_eq!(take(m, (vt.open)(sink, zero)).0, status::INVALID_ARGUMENT);
    ok(m, (vt.open)(sink, spec));
    let (code, message, taken) = write(m, sink, &samples);
    assert_eq!((code, taken), (status::OK, 3), "{message}");
    // Zero frames need no samples pointer.
    let mut taken = 9;
    ok(m, (vt.write)(sink, ptr::null(), 0, &mut taken));
    assert_eq!(taken, 0);
    ok(m, (vt.query_status)(sink, &mut st));
    assert_eq!(
        st,
        StSinkStatus {
            queued_frames: 3,
            underruns: 3
        }
    );
    ok(m, (vt.flush)(sink));
    ok(m, (vt.reset)(sink));
    ok(m, (vt.close)(sink));

    let (code, message, _) = write(m, sink, &samples);
    assert_eq!(code, status::BAD_STATE);
    assert!(message.contains("after close"), "{message}");
    ok(m, (vt.close)(sink));

    // Open again after close; open on an open instance closes it first.
    ok(m, (vt.open)(sink, spec));
    ok(m, (vt.open)(sink, spec));
    assert_eq!(write(m, sink, &samples).0, status::OK);
    ok(m, (vt.close)(sink));
    (vt.destroy)(sink);
    assert_eq!(
        calls("lifecycle"),
        [
            "open", "flush", "reset", "close", "open", "close", "open", "close", "drop"
        ]
    );
}

#[test]
fn destroy_without_close_closes_first() {
    let m = module();
    let vt = sink_vtable(m);
    let sink = create_sink(m, "", "no-close");
    ok(m, (vt.open)(sink, STEREO));
    (vt.destroy)(sink);
    assert_eq!(calls("no-close"), ["open", "close", "drop"]);

    // Never opened: nothing to close.
    let sink = create_sink(m, "", "never-opened");
    (vt.destroy)(sink);
    assert_eq!(calls("never-opened"), ["drop"]);
}

#[test]
fn panics_become_panicked_statuses() {
    let m = module();
    let vt = sink_vtable(m);
    let samples = [0.25f32; 4];
    type Call<'a> = &'a dyn Fn(*mut c_void) -> StStatus;
    let calls_to_check: [(&str, Call<'_>); 7] = [
        ("negotiate", &|s| {
            let mut spec = STEREO;
            (vt.negotiate)(s, STEREO, &mut spec)
        }),
        ("open", &|s| (vt.open)(s, STEREO)),
        ("write", &|s| {
            let mut taken = 0;
            (vt.write)(s, samples.as_ptr(), 2, &mut taken)
        }),
        ("status", &|s| {
            let mut st = StSinkStatus::default();
            (vt.query_status)(s, &mut st)
        }),
        ("flush", &|s| (vt.flush)(s)),
        ("reset", &|s| (vt.reset)(s)),
        ("close", &|s| (vt.close)(s)),
    ];
    for (name, call) in calls_to_check {
        let target = format!("panic-{name}");
        let sink = create_sink(m, name, &target);
        if name != "open" && name != "negotiate" {
            ok(m, (vt.open)(sink, STEREO));
        }
        let (code, message) = take(m, call(sink));
        assert_eq!(code, status::PANICKED, "{name}: {message}");
        assert!(
            message.contains(&format!("boom in {name}")),
            "{name}: {message}"
        );
        (vt.destroy)(sink);
        let recorded = calls(&target);
        // A panicking close still counts as closed: destroy does not close twice.
        let closes = recorded.iter().filter(|c| *c == "close").count();
        let expect_closes = usize::from(name != "open" && name != "negotiate");
        assert_eq!(closes, expect_closes, "{name}: {recorded:?}");
        assert_eq!(recorded.last().map(String::as_str), Some("drop"));
    }

    // create
    let mut instance = ptr::null_mut();
    let (code, message) = take(
        m,
        (vt.create)(StStr::borrowed("create"), StStr::EMPTY, &mut instance),
    );
    assert_eq!(code, status::PANICKED);
    assert!(message.contains("boom in create"), "{message}");
    assert!(instance.is_null());

    // A panicking Drop in destroy is caught and logged; the box is still freed once.
    let sink = create_sink(m, "drop", "panic-drop");
    ok(m, (vt.open)(sink, STEREO));
    (vt.destroy)(sink);
    assert_eq!(calls("panic-drop"), ["open", "close", "drop"]);
    assert!(
        fake_host::logs()
            .iter()
            .any(|l| l.contains("boom in drop") && l.starts_with("2:")),
        "destroy's panic is logged as a warning"
    );
}

#[test]
fn errors_keep_their_code_and_message() {
    let m = module();
    let vt = sink_vtable(m);
    let mut instance = ptr::null_mut();
    let (code, message) = take(
        m,
        (vt.create)(StStr::borrowed("fail"), StStr::EMPTY, &mut instance),
    );
    assert_eq!(
        (code, message.as_str()),
        (status::UNSUPPORTED, "no such target")
    );
    assert!(instance.is_null());

    // A sink that claims more frames than it was given is caught.
    let sink = create_sink(m, "lie", "liar");
    ok(m, (vt.open)(sink, STEREO));
    let (code, message, taken) = write(m, sink, &[0.0; 4]);
    assert_eq!((code, taken), (status::ERROR, 0), "{message}");
    (vt.destroy)(sink);
}

#[test]
fn null_pointers_are_invalid_arguments() {
    let m = module();
    let vt = sink_vtable(m);
    let null = ptr::null_mut();
    let mut spec = STEREO;
    let mut taken = 0;
    let mut st = StSinkStatus::default();
    let statuses = [
        (vt.create)(StStr::EMPTY, StStr::EMPTY, ptr::null_mut()),
        (vt.negotiate)(null, STEREO, &mut spec),
        (vt.open)(null, STEREO),
        (vt.write)(null, [0.0f32; 2].as_ptr(), 1, &mut taken),
        (vt.query_status)(null, &mut st),
        (vt.flush)(null),
        (vt.reset)(null),
        (vt.close)(null),
    ];
    for st in statuses {
        let (code, message) = take(m, st);
        assert_eq!(code, status::INVALID_ARGUMENT, "{message}");
        assert!(message.contains("NULL"), "{message}");
    }
    (vt.destroy)(null);

    let sink = create_sink(m, "", "null-outs");
    ok(m, (vt.open)(sink, STEREO));
    let (code, _) = take(m, (vt.negotiate)(sink, STEREO, ptr::null_mut()));
    assert_eq!(code, status::INVALID_ARGUMENT);
    let (code, _) = take(
        m,
        (vt.write)(sink, [0.0f32; 2].as_ptr(), 1, ptr::null_mut()),
    );
    assert_eq!(code, status::INVALID_ARGUMENT);
    let (code, _) = take(m, (vt.write)(sink, ptr::null(), 1, &mut taken));
    assert_eq!(code, status::INVALID_ARGUMENT);
    let (code, _) = take(m, (vt.query_status)(sink, ptr::null_mut()));
    assert_eq!(code, status::INVALID_ARGUMENT);
    (vt.destroy)(sink);

    let bad_utf8 = [0xffu8, 0xfe];
    let mut instance = ptr::null_mut();
    let config = StStr {
        ptr: bad_utf8.as_ptr(),
        len: bad_utf8.len(),
    };
    let (code, message) = take(m, (vt.create)(config, StStr::EMPTY, &mut instance));
    assert_eq!(code, status::INVALID_ARGUMENT);
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn free_string_releases_messages() {
    let m = module();
    (m.free_string)(ptr::null_mut());
    // Interior NULs cannot truncate or break a message.
    let st = crate::__private::run_shutdown(Some(|| Err(Error::io("a\0b"))));
    assert_eq!(take(m, st), (status::IO, "ab".to_owned()));
    // Many round trips through the module's allocator.
    let vt = sink_vtable(m);
    for _ in 0..1000 {
        let (code, _) = take(m, (vt.flush)(ptr::null_mut()));
        assert_eq!(code, status::INVALID_ARGUMENT);
    }
}

#[test]
fn dsp_shims_process_in_place() {
    let m = module();
    let vt = dsp_vtable(m);
    let mut dsp = ptr::null_mut();
    let mono0 = StSpec {
        sample_rate: 48_000,
        channels: 0,
    };
    assert_eq!(
        take(m, (vt.create)(StStr::EMPTY, mono0, &mut dsp)).0,
        status::INVALID_ARGUMENT
    );
    assert!(dsp.is_null());
    ok(m, (vt.create)(StStr::EMPTY, STEREO, &mut dsp));
    let mut samples = [1.0f32, -0.5, 0.25, 0.0];
    ok(m, (vt.process)(dsp, samples.as_mut_ptr(), 2));
    assert_eq!(samples, [2.0, -1.0, 0.5, 0.0]);
    ok(m, (vt.process)(dsp, ptr::null_mut(), 0));
    assert_eq!(
        take(m, (vt.process)(dsp, ptr::null_mut(), 1)).0,
        status::INVALID_ARGUMENT
    );
    assert_eq!(
        take(m, (vt.process)(ptr::null_mut(), samples.as_mut_ptr(), 1)).0,
        status::INVALID_ARGUMENT
    );
    ok(m, (vt.reset)(dsp));
    (vt.destroy)(dsp);

    let mut dsp = ptr::null_mut();
    ok(m, (vt.create)(StStr::borrowed("process"), STEREO, &mut dsp));
    let (code, message) = take(m, (vt.process)(dsp, samples.as_mut_ptr(), 2));
    assert_eq!(code, status::PANICKED);
    assert!(message.contains("boom in process"), "{message}");
    (vt.destroy)(dsp);
}

#[test]
fn shutdown_runs_the_user_fn_panic_guarded() {
    let m = module();
    let before = SHUTDOWNS.load(Ordering::SeqCst);
    ok(m, (m.shutdown)());
    SHUTDOWN_PANICS.store(1, Ordering::SeqCst);
    let (code, message) = take(m, (m.shutdown)());
    SHUTDOWN_PANICS.store(0, Ordering::SeqCst);
    assert_eq!(code, status::PANICKED);
    assert!(message.contains("boom in shutdown"), "{message}");
    assert_eq!(SHUTDOWNS.load(Ordering::SeqCst), before + 2);
}

#[test]
fn host_helpers_reach_the_host() {
    module();
    crate::log(crate::log_level::INFO, "hello host");
    crate::emit_event("test_event", "{\"n\":1}");
    crate::metric_add("sdk_test_metric", 5);
    crate::metric_add("sdk_test_metric", -2);
    assert!(fake_host::logs().iter().any(|l| l == "3:hello host"));
    assert!(
        fake_host::events()
            .iter()
            .any(|(k, j)| k == "test_event" && j == "{\"n\":1}")
    );
    assert_eq!(fake_host::metric_sum("sdk_test_metric"), 3);
}

#[test]
fn error_display_and_conversions() {
    let e = Error::bad_state("nope");
    assert_eq!(
        e.to_string(),
        format!("nope (status {})", status::BAD_STATE)
    );
    let io: Error = std::io::Error::other("disk").into();
    assert_eq!(io.code, status::IO);
    // A code of OK is reported as ERROR, never as success.
    let st = crate::__private::run_shutdown(Some(|| Err(Error::new(status::OK, "x"))));
    assert_eq!(take(module(), st).0, status::ERROR);
}

// ---------------------------------------------------------------------------------------
// rt: lent threads, the process service thread, handoffs

#[test]
fn rt_threads_are_lent_by_the_host_and_joined() {
    module();
    let slot = std::sync::Arc::new(crate::rt::OneShot::new());
    let theirs = slot.clone();
    let t = crate::rt::spawn_thread("worker", move || theirs.put(41 + 1)).unwrap();
    assert_eq!(t.name(), "worker");
    assert_eq!(slot.wait(std::time::Duration::from_secs(10)), Ok(42));
    t.join().unwrap();
    assert!(fake_host::lent_names().iter().any(|n| n == "worker"));
    assert!(
        fake_host::unjoined_thread_names()
            .iter()
            .all(|n| n.as_deref() != Some("worker")),
        "joined through the host"
    );
}

#[test]
fn rt_thread_panics_come_back_from_join() {
    module();
    let t = crate::rt::spawn_thread("panicky", || panic!("boom in a lent thread")).unwrap();
    let e = t.join().unwrap_err();
    assert_eq!(e.code, status::PANICKED);
    assert!(e.message.contains("boom in a lent thread"), "{e}");
}

#[test]
fn rt_spawn_refused_by_the_host_frees_the_body_and_says_so() {
    module();
    let dropped = std::sync::Arc::new(());
    let ours = dropped.clone();
    let e = crate::rt::spawn_thread("refused", move || drop(ours)).unwrap_err();
    assert_eq!(e.code, status::IO);
    assert!(e.message.contains("refused"), "{e}");
    assert_eq!(
        std::sync::Arc::strong_count(&dropped),
        1,
        "the body was freed"
    );
}

#[test]
fn rt_needs_a_host_of_abi_minor_1() {
    let old = host_with(ABI_MAJOR, 0);
    let e = crate::rt::check_lending(old).unwrap_err();
    assert_eq!(e.code, status::UNSUPPORTED);
    assert!(
        e.message.contains(&format!("{ABI_MAJOR}.0")) && e.message.contains("1.1"),
        "{e}"
    );
    crate::rt::check_lending(host_with(ABI_MAJOR, 1)).unwrap();
}

#[test]
fn rt_processes_start_from_the_service_thread_which_stop_joins() {
    module();
    let exe = std::env::current_exe().unwrap();
    let mut command = std::process::Command::new(exe);
    command
        .arg("--list")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = crate::rt::spawn_process(command).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(fake_host::lent_names().iter().any(|n| n == "rt-service"));
    crate::rt::stop();
    crate::rt::stop();
}
