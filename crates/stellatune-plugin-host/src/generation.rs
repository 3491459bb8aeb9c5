//! One load of one plugin library: a generation. It stays loaded while anything holds it
//! (the runtime's active slot, a live instance, a call in flight) and unloads, deleting its
//! shadow copy, when the last holder lets go.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use stellatune_core::ThreadCounter;

use stellatune_plugin_api::{
    ABI_MAJOR, ABI_MINOR, Capability, ENTRY_SYMBOL, HostVTable, ModuleTable, PluginEntryFn,
    StStatus, StStr, ThreadEntryFn, log_level, status,
};

use crate::error::{PluginError, Result};
use crate::manifest::PluginManifest;

/// An event a plugin emitted, for the host to pass on to its clients.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginNotice {
    pub plugin_id: String,
    pub kind: String,
    pub json: String,
}

pub type NoticeSink = Arc<dyn Fn(PluginNotice) + Send + Sync>;

/// Counters shared by every generation of every plugin.
#[derive(Default)]
pub struct PluginMetrics {
    pub(crate) active: AtomicI64,
    pub(crate) draining: AtomicI64,
    /// Sums of what plugins reported through `metric_add`, by name. Kept here, not in the
    /// plugin, so counters survive reloads.
    pub(crate) custom: Mutex<BTreeMap<String, i64>>,
    /// The host's own helper threads (a sink's bounded close), alive now.
    pub(crate) helper_threads: ThreadCounter,
}

impl PluginMetrics {
    pub fn active(&self) -> i64 {
        self.active.load(Ordering::SeqCst)
    }

    pub fn draining(&self) -> i64 {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn custom(&self) -> BTreeMap<String, i64> {
        self.custom
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// How long the module's `shutdown` may take before the host gives up on it (and keeps the
/// library loaded rather than unloading it under running code).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the host waits, after `shutdown` returned, for threads it lent the plugin and
/// the plugin did not join. A thread still running then keeps the library loaded.
pub const LENT_THREAD_JOIN_TIMEOUT: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Set by a lent thread once the plugin's entry returned, so an unload can wait for it with
/// a time bound (a `JoinHandle` can only be joined without one).
#[derive(Default)]
struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Finished {
    fn set(&self) {
        *lock(&self.done) = true;
        self.changed.notify_all();
    }

    /// Whether the thread finished by `deadline`.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut done = lock(&self.done);
        while !*done {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            done = self
                .changed
                .wait_timeout(done, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// A thread the host lent a plugin through `spawn_thread`.
struct LentThread {
    name: String,
    handle: std::thread::JoinHandle<()>,
    finished: Arc<Finished>,
}

#[derive(Default)]
struct LentThreads {
    next: u64,
    live: HashMap<u64, LentThread>,
    /// Set when the generation unloads: no more threads are lent.
    closed: bool,
}

/// What the host's callbacks need; the vtable's `ctx` points here.
struct HostContext {
    plugin_id: String,
    generation: u64,
    metrics: Arc<PluginMetrics>,
    notices: NoticeSink,
    /// Backing storage of the vtable's `data_dir` and `plugin_dir` strings.
    data_dir: String,
    plugin_dir: String,
    /// Threads lent to this generation and not yet joined.
    threads: Mutex<LentThreads>,
}

impl HostContext {
    /// Stops lending and waits until `deadline` for every thread still lent. Returns the
    /// names of those still running (whose code is the library's: it must stay loaded).
    fn end_lending(&self, deadline: Instant) -> Vec<String> {
        let lent: Vec<LentThread> = {
            let mut threads = lock(&self.threads);
            threads.closed = true;
            threads.live.drain().map(|(_, t)| t).collect()
        };
        let mut running = Vec::new();
        for thread in lent {
            if thread.finished.wait_until(deadline) {
                // The plugin's entry returned; what is left is the host's thread exit.
                let _ = thread.handle.join();
            } else {
                running.push(thread.name);
            }
        }
        running
    }
}

pub struct Generation {
    plugin_id: String,
    number: u64,
    manifest: PluginManifest,
    module: *const ModuleTable,
    library: Option<libloading::Library>,
    /// The library's copy, inside `run_dir`.
    shadow: PathBuf,
    /// The generation's shadow directory: its copy of the installed directory.
    run_dir: PathBuf,
    /// Kept alive for the module, which may call back at any time until unloaded (leaked
    /// with the library when it cannot be unloaded).
    vtable: Option<Box<HostVTable>>,
    context: *mut HostContext,
    draining: AtomicBool,
    metrics: Arc<PluginMetrics>,
}

// SAFETY: the module table is immutable data and thread-safe function pointers (the ABI
// requires module-level functions to be callable from any thread); `context` is only read by
// the callbacks and freed in Drop after the library is gone.
unsafe impl Send for Generation {}
// SAFETY: as above; no interior mutation through the raw pointers.
unsafe impl Sync for Generation {}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("plugin_id", &self.plugin_id)
            .field("number", &self.number)
            .finish()
    }
}

impl Generation {
    /// Copies the installed directory to `run_dir` (a shadow directory no other load in this
    /// process uses), loads the library from there and checks its ABI.
    pub(crate) fn load(
        manifest: &PluginManifest,
        install_dir: &Path,
        data_dir: &Path,
        run_dir: &Path,
        number: u64,
        metrics: Arc<PluginMetrics>,
        notices: NoticeSink,
    ) -> Result<Arc<Generation>> {
        let load_error = |library: &Path, message: String| PluginError::Load {
            plugin: manifest.id.clone(),
            library: library.to_path_buf(),
            message,
        };
        let (major, minor) = manifest.api().map_err(|message| PluginError::Manifest {
            dir: install_dir.to_path_buf(),
            message,
        })?;
        check_abi(&manifest.id, major, minor)?;
        let installed = manifest.library_path(install_dir);
        crate::shadow::retry_left_behind();
        if let Some(shadow_root) = run_dir.parent() {
            std::fs::create_dir_all(shadow_root)
                .map_err(|e| load_error(shadow_root, e.to_string()))?;
        }
        crate::shadow::copy_into(install_dir, run_dir, Path::new(&manifest.library))
            .map_err(|e| load_error(&installed, format!("copying to the shadow directory: {e}")))?;
        let run_dir = run_dir.to_path_buf();
        let shadow = manifest.library_path(&run_dir);
        // From here on the shadow directory must go again if anything fails.
        let cleanup = |e: PluginError| {
            crate::shadow::remove_unloaded(&run_dir);
            e
        };
        // SAFETY: loading runs the library's initialisers. Plugins are code the user chose
        // to install; the ABI check below happens before any other call into it.
        let library = unsafe { libloading::Library::new(&shadow) }
            .map_err(|e| cleanup(load_error(&installed, e.to_string())))?;
        // SAFETY: the symbol's type is fixed by the ABI; a library exporting the name with
        // another type is in breach of it, which the ABI version check narrows down.
        let entry: PluginEntryFn = match unsafe { library.get::<PluginEntryFn>(ENTRY_SYMBOL) } {
            Ok(symbol) => *symbol,
            Err(e) => {
                drop(library);
                return Err(cleanup(load_error(
                    &installed,
                    format!("no entry symbol `stellatune_plugin_entry`: {e}"),
                )));
            }
        };
        let context = Box::into_raw(Box::new(HostContext {
            plugin_id: manifest.id.clone(),
            generation: number,
            metrics: metrics.clone(),
            notices,
            data_dir: data_dir.to_string_lossy().into_owned(),
            plugin_dir: run_dir.to_string_lossy().into_owned(),
            threads: Mutex::new(LentThreads::default()),
        }));
        // SAFETY: `context` was just made from a Box and is freed only in Drop (or on the
        // failure paths below), after the library that could read these strings is closed.
        let (data_dir_str, plugin_dir_str) = unsafe {
            (
                StStr::borrowed(&(*context).data_dir),
                StStr::borrowed(&(*context).plugin_dir),
            )
        };
        let vtable = Box::new(HostVTable {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            ctx: context.cast(),
            log: host_log,
            emit_event: host_emit_event,
            metric_add: host_metric_add,
            data_dir: data_dir_str,
            plugin_dir: plugin_dir_str,
            spawn_thread: host_spawn_thread,
            join_thread: host_join_thread,
        });
        // SAFETY: `entry` has the ABI's signature; the vtable outlives the module (both live
        // in the Generation, and the vtable is dropped only after the library is closed).
        let module = unsafe { entry(&*vtable) };
        let fail = |library: libloading::Library, e: PluginError| {
            // SAFETY: `context` came from Box::into_raw above and lives until freed below.
            let running =
                unsafe { &*context }.end_lending(Instant::now() + LENT_THREAD_JOIN_TIMEOUT);
            if running.is_empty() {
                drop(library);
                // SAFETY: `context` came from Box::into_raw above and nothing else owns it
                // now: the library is closed and no thread it was lent runs.
                drop(unsafe { Box::from_raw(context) });
            } else {
                // A thread started by the refused entry still runs the library's code.
                tracing::error!(plugin = %manifest.id, threads = ?running, "a refused plugin left threads running; its library stays loaded");
                std::mem::forget(library);
            }
            cleanup(e)
        };
        if module.is_null() {
            return Err(fail(
                library,
                load_error(
                    &installed,
                    "the plugin refused this host (entry returned NULL)".into(),
                ),
            ));
        }
        // SAFETY: non-NULL, and the ABI says it points at a ModuleTable that lives as long as
        // the library; its first fields are laid out the same in every minor version.
        let table = unsafe { &*module };
        if let Err(e) = check_abi(&manifest.id, table.abi_major, table.abi_minor) {
            return Err(fail(library, e));
        }
        if table.size < std::mem::size_of::<ModuleTable>() {
            return Err(fail(
                library,
                load_error(
                    &installed,
                    format!("module table too small ({} bytes)", table.size),
                ),
            ));
        }
        // SAFETY: the table's strings point at static data in the library.
        let declared_id = unsafe { table.plugin_id.to_str() }.unwrap_or("");
        if declared_id != manifest.id {
            return Err(fail(
                library,
                load_error(
                    &installed,
                    format!(
                        "the library says it is `{declared_id}`, plugin.json says `{}`",
                        manifest.id
                    ),
                ),
            ));
        }
        metrics.active.fetch_add(1, Ordering::SeqCst);
        tracing::info!(plugin = %manifest.id, generation = number, shadow = %shadow.display(), "plugin generation loaded");
        Ok(Arc::new(Generation {
            plugin_id: manifest.id.clone(),
            number,
            manifest: manifest.clone(),
            module,
            library: Some(library),
            shadow,
            run_dir,
            vtable: Some(vtable),
            context,
            draining: AtomicBool::new(false),
            metrics,
        }))
    }

    pub fn plugin_id(&self) -> &str {
        &self.plugin_id
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }

    pub fn shadow_path(&self) -> &Path {
        &self.shadow
    }

    pub(crate) fn table(&self) -> &ModuleTable {
        // SAFETY: checked non-NULL at load; valid while the library is loaded, which is as
        // long as `self` lives.
        unsafe { &*self.module }
    }

    pub(crate) fn capabilities(&self) -> &[Capability] {
        let table = self.table();
        if table.capabilities.is_null() || table.capability_count == 0 {
            return &[];
        }
        // SAFETY: the ABI says `capabilities` points at `capability_count` entries of static
        // data in the library.
        unsafe { std::slice::from_raw_parts(table.capabilities, table.capability_count) }
    }

    /// Turns a status into a result, taking ownership of (and freeing) its message.
    pub(crate) fn check(&self, call: &'static str, st: StStatus) -> Result<()> {
        let message = self.take_message(st.message);
        if st.code == status::OK {
            return Ok(());
        }
        Err(PluginError::Call {
            plugin: self.plugin_id.clone(),
            call,
            code: st.code,
            message: message.unwrap_or_else(|| format!("status {}", st.code)),
        })
    }

    /// Counts the plugin host's helper threads for this generation's instances.
    pub(crate) fn helper_threads(&self) -> &ThreadCounter {
        &self.metrics.helper_threads
    }

    pub(crate) fn take_message(&self, message: *mut c_char) -> Option<String> {
        take_message(self.table(), message)
    }

    /// Moves this generation from active to draining; it unloads when its last holder goes.
    pub(crate) fn mark_draining(&self, reason: &str) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            self.metrics.active.fetch_sub(1, Ordering::SeqCst);
            self.metrics.draining.fetch_add(1, Ordering::SeqCst);
            tracing::info!(plugin = %self.plugin_id, generation = self.number, reason, "plugin generation draining");
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        let unloadable = self.shut_down();
        let Some(library) = self.library.take() else {
            return;
        };
        if unloadable {
            if let Err(e) = library.close() {
                tracing::warn!(plugin = %self.plugin_id, error = %e, "dlclose failed");
            }
            // SAFETY: `context` came from Box::into_raw in `load`; the library that could
            // call back with it is closed and no thread it was lent still runs.
            drop(unsafe { Box::from_raw(self.context) });
        } else {
            // Code of this library may still run: never unmap it, and keep everything it
            // can reach (the vtable, the context, the shadow file) alive with it.
            std::mem::forget(library);
            std::mem::forget(self.vtable.take());
        }
        // Reading the process's mappings costs a tenth of a millisecond on Linux, a real
        // share of a shutdown: only when someone reads the debug log.
        let still_mapped =
            tracing::enabled!(tracing::Level::DEBUG).then(|| is_mapped(&self.shadow));
        if unloadable {
            crate::shadow::remove_unloaded(&self.run_dir);
        }
        if self.draining.load(Ordering::SeqCst) {
            self.metrics.draining.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.metrics.active.fetch_sub(1, Ordering::SeqCst);
        }
        if unloadable {
            tracing::info!(
                plugin = %self.plugin_id,
                generation = self.number,
                "plugin generation unloaded"
            );
            if let Some(still_mapped) = still_mapped {
                tracing::debug!(
                    plugin = %self.plugin_id,
                    generation = self.number,
                    really_unmapped = !still_mapped,
                    "plugin generation mappings checked"
                );
            }
        } else {
            tracing::error!(
                plugin = %self.plugin_id,
                generation = self.number,
                shadow = %self.shadow.display(),
                "plugin generation left loaded: its code may still be running"
            );
        }
    }
}

/// The module table, movable to the thread that runs `shutdown`.
struct TablePtr(*const ModuleTable);

// SAFETY: the module table is immutable data and thread-safe function pointers; the
// pointer stays valid as long as the library is loaded, which the waiting side guarantees
// (it never unloads a library whose shutdown has not returned).
unsafe impl Send for TablePtr {}

impl TablePtr {
    fn get(self) -> *const ModuleTable {
        self.0
    }
}

impl Generation {
    /// Runs the module's `shutdown` (bounded by [`SHUTDOWN_TIMEOUT`]) and ends every thread
    /// lent to it (bounded by [`LENT_THREAD_JOIN_TIMEOUT`]). Whether the library may be
    /// unloaded: false when plugin code may still be running.
    fn shut_down(&self) -> bool {
        let finished = Arc::new(Finished::default());
        let outcome: Arc<Mutex<Option<std::result::Result<(), String>>>> = Arc::default();
        let table = TablePtr(self.module);
        let (theirs, their_outcome) = (finished.clone(), outcome.clone());
        // `shutdown` runs on a helper thread so that a hung plugin cannot hang the host.
        let helper = std::thread::Builder::new()
            .name(format!("plugin-{}-shutdown", self.plugin_id))
            .spawn(move || {
                // SAFETY: see `TablePtr`: the library stays loaded until this returns.
                let table = unsafe { &*table.get() };
                let st = (table.shutdown)();
                let message = take_message(table, st.message);
                *lock(&their_outcome) = Some(if st.code == status::OK {
                    Ok(())
                } else {
                    Err(message.unwrap_or_else(|| format!("status {}", st.code)))
                });
                theirs.set();
            });
        let helper = match helper {
            Ok(helper) => helper,
            Err(e) => {
                tracing::error!(plugin = %self.plugin_id, generation = self.number, error = %e, "cannot start a thread for the plugin's shutdown; the library stays loaded");
                return false;
            }
        };
        if !finished.wait_until(Instant::now() + SHUTDOWN_TIMEOUT) {
            tracing::error!(
                plugin = %self.plugin_id,
                generation = self.number,
                timeout_ms = SHUTDOWN_TIMEOUT.as_millis() as u64,
                "plugin shutdown did not return in time; the library stays loaded"
            );
            return false;
        }
        let _ = helper.join();
        if let Some(Err(message)) = lock(&outcome).take() {
            tracing::warn!(plugin = %self.plugin_id, generation = self.number, error = %message, "plugin shutdown reported an error");
        }
        // SAFETY: `context` lives until the library is closed, which has not happened yet.
        let context = unsafe { &*self.context };
        let running = context.end_lending(Instant::now() + LENT_THREAD_JOIN_TIMEOUT);
        for name in &running {
            tracing::error!(
                plugin = %self.plugin_id,
                generation = self.number,
                thread = %name,
                "a thread lent to the plugin still runs after its shutdown; the library stays loaded"
            );
        }
        running.is_empty()
    }
}

/// Copies a plugin-owned message and hands it back through the module's `free_string`.
fn take_message(table: &ModuleTable, message: *mut c_char) -> Option<String> {
    if message.is_null() {
        return None;
    }
    // SAFETY: a non-NULL message is a NUL-terminated string owned by the plugin, which we
    // hand back through its own `free_string` right after copying.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    (table.free_string)(message);
    Some(text)
}

fn check_abi(plugin: &str, major: u32, minor: u32) -> Result<()> {
    if major != ABI_MAJOR || minor > ABI_MINOR {
        return Err(PluginError::AbiMismatch {
            plugin: plugin.to_owned(),
            plugin_major: major,
            plugin_minor: minor,
            host_major: ABI_MAJOR,
            host_minor: ABI_MINOR,
        });
    }
    Ok(())
}

/// Whether `path` is still mapped into this process: a library whose code registered
/// thread-local destructors may stay mapped after dlclose, and we report that truthfully.
pub fn is_mapped(path: &Path) -> bool {
    crate::loaded::is_mapped(path)
}

/// # Safety (for the callbacks)
/// `ctx` is the pointer this host put in the vtable: a live `HostContext` until the library
/// is closed, and plugins only call back while loaded.
fn context<'a>(ctx: *mut c_void) -> Option<&'a HostContext> {
    // SAFETY: see above; NULL is refused.
    unsafe { ctx.cast::<HostContext>().as_ref() }
}

fn text(s: &StStr) -> String {
    // SAFETY: the ABI says a StStr passed to a callback is valid for the call.
    String::from_utf8_lossy(unsafe { s.as_bytes() }).into_owned()
}

extern "C" fn host_log(ctx: *mut c_void, level: u32, message: StStr) {
    let _ = std::panic::catch_unwind(|| {
        let Some(ctx) = context(ctx) else { return };
        let message = text(&message);
        let plugin = ctx.plugin_id.as_str();
        match level {
            log_level::ERROR => tracing::error!(plugin, "{message}"),
            log_level::WARN => tracing::warn!(plugin, "{message}"),
            log_level::INFO => tracing::info!(plugin, "{message}"),
            log_level::DEBUG => tracing::debug!(plugin, "{message}"),
            _ => tracing::trace!(plugin, "{message}"),
        }
    });
}

extern "C" fn host_emit_event(ctx: *mut c_void, kind: StStr, json: StStr) {
    let _ = std::panic::catch_unwind(|| {
        let Some(ctx) = context(ctx) else { return };
        (ctx.notices)(PluginNotice {
            plugin_id: ctx.plugin_id.clone(),
            kind: text(&kind),
            json: text(&json),
        });
    });
}

extern "C" fn host_metric_add(ctx: *mut c_void, name: StStr, delta: i64) {
    let _ = std::panic::catch_unwind(|| {
        let Some(ctx) = context(ctx) else { return };
        let mut custom = ctx
            .metrics
            .custom
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *custom.entry(text(&name)).or_insert(0) += delta;
    });
}

/// A lent thread's argument, moved to the thread that passes it to the plugin's entry.
struct ThreadArg(*mut c_void);

// SAFETY: the ABI hands `arg` to exactly one thread, the one that calls `entry` with it.
unsafe impl Send for ThreadArg {}

impl ThreadArg {
    fn get(self) -> *mut c_void {
        self.0
    }
}

extern "C" fn host_spawn_thread(
    ctx: *mut c_void,
    name: StStr,
    entry: ThreadEntryFn,
    arg: *mut c_void,
    out_thread: *mut u64,
) -> i32 {
    let spawned = std::panic::catch_unwind(|| {
        let Some(ctx) = context(ctx) else {
            return status::INVALID_ARGUMENT;
        };
        if out_thread.is_null() {
            return status::INVALID_ARGUMENT;
        }
        let name = text(&name);
        let mut threads = lock(&ctx.threads);
        if threads.closed {
            tracing::warn!(plugin = %ctx.plugin_id, thread = %name, "a thread was asked for after the plugin's shutdown; refused");
            return status::BAD_STATE;
        }
        let finished = Arc::new(Finished::default());
        let theirs = finished.clone();
        let arg = ThreadArg(arg);
        let spawned = std::thread::Builder::new()
            .name(format!("plugin-{}-{name}", ctx.plugin_id))
            .spawn(move || {
                entry(arg.get());
                theirs.set();
            });
        match spawned {
            Ok(handle) => {
                threads.next += 1;
                let id = threads.next;
                threads.live.insert(
                    id,
                    LentThread {
                        name: name.clone(),
                        handle,
                        finished,
                    },
                );
                // SAFETY: checked non-NULL; the ABI passes a writable out-parameter.
                unsafe { out_thread.write(id) };
                tracing::debug!(plugin = %ctx.plugin_id, generation = ctx.generation, thread = %name, "thread lent to a plugin");
                status::OK
            }
            Err(e) => {
                tracing::warn!(plugin = %ctx.plugin_id, thread = %name, error = %e, "cannot start a thread for a plugin");
                status::IO
            }
        }
    });
    spawned.unwrap_or(status::ERROR)
}

extern "C" fn host_join_thread(ctx: *mut c_void, thread: u64) -> i32 {
    let joined = std::panic::catch_unwind(|| {
        let Some(ctx) = context(ctx) else {
            return status::INVALID_ARGUMENT;
        };
        let mut threads = lock(&ctx.threads);
        let Some(lent) = threads.live.remove(&thread) else {
            return status::INVALID_ARGUMENT;
        };
        if lent.handle.thread().id() == std::thread::current().id() {
            threads.live.insert(thread, lent);
            return status::BAD_STATE;
        }
        drop(threads);
        match lent.handle.join() {
            Ok(()) => status::OK,
            // The SDK catches panics in the thread's body; this one came from elsewhere.
            Err(_) => status::PANICKED,
        }
    });
    joined.unwrap_or(status::ERROR)
}
