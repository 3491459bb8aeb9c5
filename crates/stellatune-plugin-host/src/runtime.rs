//! The plugin runtime: what is installed, which generation of each plugin is active, and
//! the operations that change that while music plays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use stellatune_plugin_api::{Capability, DspVTable, OutputSinkVTable, capability_kind};

use crate::dsp::PluginDsp;
use crate::error::{PluginError, Result};
use crate::generation::{Generation, NoticeSink, PluginMetrics};
use crate::install;
use crate::manifest::PluginManifest;
use crate::shadow::{ShadowName, own_start_time, reap_stale_shadow_copies};
use crate::sink::{PluginSink, PluginSinkFactory};

struct Installed {
    manifest: PluginManifest,
    content_hash: u64,
    active: Option<Arc<Generation>>,
    /// Why the last load failed, kept whole: a route to this plugin fails with this error
    /// (its kind decides the C code, e.g. an ABI mismatch), not with a rewording of it.
    load_error: Option<PluginError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapabilityInfo {
    pub kind: &'static str,
    pub type_id: String,
    pub display_name: String,
    pub default_config: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub generation: Option<u64>,
    pub capabilities: Vec<CapabilityInfo>,
    pub load_error: Option<String>,
}

/// What a reload did, plugin by plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    pub reloaded: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginMetricsSnapshot {
    pub plugin_generations_active: u64,
    pub plugin_generations_draining: u64,
    pub shadow_copies: u64,
    /// The plugin host's helper threads alive now (a close that is being waited for, or one
    /// that was abandoned and still runs in plugin code).
    pub helper_threads: u64,
    /// What plugins reported through the generic metrics channel.
    pub reported: BTreeMap<String, i64>,
}

pub struct PluginRuntime {
    plugin_dir: PathBuf,
    data_dir: PathBuf,
    shadow_dir: PathBuf,
    plugins: Mutex<BTreeMap<String, Installed>>,
    metrics: Arc<PluginMetrics>,
    notices: NoticeSink,
    /// Unique among the runtimes of this process, for its whole life: part of every shadow
    /// copy's name, so two runtimes on one plugin directory never share a file.
    id: u64,
}

/// Generation numbers, process-wide: two runtimes alive at once (a shutdown racing an init)
/// never hand out the same number, so no two loads in one process share a shadow name.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);
/// Runtime ids, process-wide.
static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

impl PluginRuntime {
    /// Prepares the directories, finishes queued uninstalls, removes shadow copies left by
    /// dead processes and loads every installed plugin (a plugin that fails to load is
    /// reported in the list, and the others still load).
    pub fn start(plugin_dir: &Path, data_dir: &Path, notices: NoticeSink) -> Result<PluginRuntime> {
        std::fs::create_dir_all(plugin_dir)
            .map_err(|e| PluginError::Io(format!("{}: {e}", plugin_dir.display())))?;
        let shadow_dir = plugin_dir.join(".shadow");
        install::finish_pending(plugin_dir);
        reap_stale_shadow_copies(&shadow_dir);
        let runtime = PluginRuntime {
            plugin_dir: plugin_dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            shadow_dir,
            plugins: Mutex::new(BTreeMap::new()),
            metrics: Arc::new(PluginMetrics::default()),
            notices,
            id: NEXT_RUNTIME.fetch_add(1, Ordering::SeqCst),
        };
        let report = runtime.reload();
        tracing::info!(plugin_dir = %plugin_dir.display(), loaded = report.loaded.len(), failed = report.failed.len(), "plugin runtime started");
        Ok(runtime)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Installed>> {
        self.plugins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    pub fn shadow_dir(&self) -> &Path {
        &self.shadow_dir
    }

    fn load(&self, manifest: &PluginManifest) -> Result<Arc<Generation>> {
        let number = NEXT_GENERATION.fetch_add(1, Ordering::SeqCst);
        let run_dir = self.shadow_dir.join(
            ShadowName {
                pid: std::process::id(),
                start_time: own_start_time(),
                runtime: self.id,
                generation: number,
            }
            .file_name(&manifest.id, &manifest.library),
        );
        Generation::load(
            manifest,
            &self.plugin_dir.join(&manifest.id),
            &self.data_dir,
            &run_dir,
            number,
            self.metrics.clone(),
            self.notices.clone(),
        )
    }

    /// Installs an artifact and activates it; an older generation of the same plugin drains.
    /// An artifact whose library does not load is refused as a whole: its files go, the
    /// install it would have replaced (if any) stays installed and active.
    pub fn install(&self, artifact: &Path) -> Result<String> {
        // Copying and loading happen with no lock held.
        let swapped = install::install(artifact, &self.plugin_dir)?;
        let manifest = swapped.manifest.clone();
        let generation = match self.load(&manifest) {
            Ok(generation) => generation,
            Err(e) => {
                swapped.roll_back();
                return Err(e);
            }
        };
        swapped.commit();
        let hash = content_hash(&self.plugin_dir.join(&manifest.id), &manifest);
        let id = manifest.id.clone();
        let previous = {
            let mut plugins = self.lock();
            let previous = plugins.remove(&id).and_then(|p| p.active);
            plugins.insert(
                id.clone(),
                Installed {
                    manifest,
                    content_hash: hash,
                    active: Some(generation),
                    load_error: None,
                },
            );
            previous
        };
        if let Some(old) = previous {
            old.mark_draining("replaced by install");
        }
        Ok(id)
    }

    /// Removes a plugin's files and deactivates it. Instances still running keep their
    /// generation (from its shadow copy) until they are closed.
    pub fn uninstall(&self, id: &str) -> Result<()> {
        let removed = self.lock().remove(id);
        let Some(removed) = removed else {
            return Err(PluginError::UnknownPlugin(id.to_owned()));
        };
        if let Some(generation) = removed.active {
            generation.mark_draining("uninstalled");
        }
        install::remove_install_dir(&self.plugin_dir, id)?;
        tracing::info!(plugin = id, "plugin uninstalled");
        Ok(())
    }

    /// Re-reads the plugin directory: new plugins load, changed ones (by content hash) get
    /// a new generation, unchanged ones are skipped, vanished ones drain.
    pub fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        let found = discover(&self.plugin_dir);
        let known: BTreeMap<String, u64> = self
            .lock()
            .iter()
            .map(|(id, p)| (id.clone(), p.content_hash))
            .collect();
        for (id, manifest) in &found {
            let manifest = match manifest {
                Ok(m) => m,
                Err(e) => {
                    report.failed.push((id.clone(), e.to_string()));
                    continue;
                }
            };
            let hash = content_hash(&self.plugin_dir.join(id), manifest);
            let was = known.get(id);
            if was == Some(&hash) && self.lock().get(id).is_some_and(|p| p.active.is_some()) {
                report.unchanged.push(id.clone());
                continue;
            }
            let loaded = self.load(manifest);
            let (active, load_error) = match loaded {
                Ok(g) => (Some(g), None),
                Err(e) => {
                    report.failed.push((id.clone(), e.to_string()));
                    (None, Some(e))
                }
            };
            let ok = active.is_some();
            let previous = self
                .lock()
                .insert(
                    id.clone(),
                    Installed {
                        manifest: manifest.clone(),
                        content_hash: hash,
                        active,
                        load_error,
                    },
                )
                .and_then(|p| p.active);
            if let Some(old) = previous {
                old.mark_draining("reloaded");
            }
            if ok {
                if was.is_some() {
                    report.reloaded.push(id.clone());
                } else {
                    report.loaded.push(id.clone());
                }
            }
        }
        let vanished: Vec<String> = known
            .keys()
            .filter(|id| !found.contains_key(*id))
            .cloned()
            .collect();
        for id in vanished {
            if let Some(gone) = self.lock().remove(&id).and_then(|p| p.active) {
                gone.mark_draining("removed from the plugin directory");
            }
            report.removed.push(id);
        }
        report
    }

    /// Forces a fresh generation of `id` even if its files did not change.
    pub fn force_reload(&self, id: &str) -> Result<u64> {
        let manifest = self
            .lock()
            .get(id)
            .map(|p| p.manifest.clone())
            .ok_or_else(|| PluginError::UnknownPlugin(id.to_owned()))?;
        let generation = self.load(&manifest)?;
        let number = generation.number();
        let previous = self
            .lock()
            .get_mut(id)
            .and_then(|p| p.active.replace(generation));
        if let Some(old) = previous {
            old.mark_draining("reloaded");
        }
        Ok(number)
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        self.lock()
            .values()
            .map(|p| PluginInfo {
                id: p.manifest.id.clone(),
                name: p.manifest.name.clone(),
                version: p.manifest.version.clone(),
                api_version: p.manifest.api_version.clone(),
                generation: p.active.as_ref().map(|g| g.number()),
                capabilities: p
                    .active
                    .as_ref()
                    .map(|g| capability_infos(g))
                    .unwrap_or_default(),
                load_error: p.load_error.as_ref().map(ToString::to_string),
            })
            .collect()
    }

    fn active(&self, id: &str) -> Result<Arc<Generation>> {
        let plugins = self.lock();
        let installed = plugins
            .get(id)
            .ok_or_else(|| PluginError::UnknownPlugin(id.to_owned()))?;
        installed.active.clone().ok_or_else(|| {
            installed
                .load_error
                .clone()
                .unwrap_or_else(|| PluginError::Load {
                    plugin: id.to_owned(),
                    library: self.plugin_dir.join(id).join(&installed.manifest.library),
                    message: "not loaded".into(),
                })
        })
    }

    /// Creates an output-sink instance of the active generation of `plugin_id`, on the
    /// caller's thread, ready to hand to the engine. `sink_type` may be omitted when the
    /// plugin has exactly one output sink type.
    pub fn create_sink(
        &self,
        plugin_id: &str,
        sink_type: Option<&str>,
        target: &str,
        config_json: Option<&str>,
    ) -> Result<PluginSinkFactory> {
        let generation = self.active(plugin_id)?;
        let (type_id, vtable, default_config) = find_sink(&generation, sink_type)?;
        let config = config_json.unwrap_or(&default_config);
        let sink = PluginSink::create(generation.clone(), vtable, &type_id, target, config)?;
        Ok(PluginSinkFactory::new(sink))
    }

    /// A DSP stage of the active generation of `plugin_id`. `type_id` may be omitted when the
    /// plugin has exactly one DSP type. The instance itself is made when the engine prepares
    /// the stage for its output spec.
    pub fn create_dsp(
        &self,
        plugin_id: &str,
        type_id: Option<&str>,
        config_json: Option<&str>,
    ) -> Result<PluginDsp> {
        let generation = self.active(plugin_id)?;
        let (type_id, capability) = find_capability(&generation, capability_kind::DSP, type_id)?;
        // SAFETY: a DSP capability's vtable points at a static DspVTable in the library;
        // every user also holds the generation, which keeps the library loaded.
        let vtable: &'static DspVTable = unsafe { &*capability.vtable.cast::<DspVTable>() };
        let config = config_json
            .map(str::to_owned)
            .unwrap_or_else(|| default_config(capability));
        Ok(PluginDsp::new(generation.clone(), vtable, type_id, config))
    }

    /// The output targets a sink type offers, as the plugin's JSON.
    pub fn list_targets(
        &self,
        plugin_id: &str,
        sink_type: Option<&str>,
        config_json: Option<&str>,
    ) -> Result<String> {
        let generation = self.active(plugin_id)?;
        let (_, vtable, default_config) = find_sink(&generation, sink_type)?;
        let mut out = std::ptr::null_mut();
        let st = (vtable.list_targets_json)(
            stellatune_plugin_api::StStr::borrowed(config_json.unwrap_or(&default_config)),
            &mut out,
        );
        generation.check("list_targets_json", st)?;
        Ok(generation.take_message(out).unwrap_or_else(|| "[]".into()))
    }

    pub fn metrics(&self) -> PluginMetricsSnapshot {
        let shadow_copies = std::fs::read_dir(&self.shadow_dir)
            .map(|d| d.flatten().count() as u64)
            .unwrap_or(0);
        PluginMetricsSnapshot {
            plugin_generations_active: self.metrics.active().max(0) as u64,
            plugin_generations_draining: self.metrics.draining().max(0) as u64,
            shadow_copies,
            helper_threads: self.metrics.helper_threads.alive() as u64,
            reported: self.metrics.custom(),
        }
    }

    /// Deactivates every plugin. Generations unload as soon as their instances are gone.
    pub fn shutdown(&self) {
        let all: Vec<Arc<Generation>> = std::mem::take(&mut *self.lock())
            .into_values()
            .filter_map(|p| p.active)
            .collect();
        for generation in all {
            generation.mark_draining("runtime shutdown");
        }
        tracing::info!(
            draining = self.metrics.draining(),
            "plugin runtime shut down"
        );
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn capability_infos(generation: &Generation) -> Vec<CapabilityInfo> {
    generation
        .capabilities()
        .iter()
        .map(|c| {
            // SAFETY: capability strings are static data in the loaded library.
            let s =
                |st: &stellatune_plugin_api::StStr| unsafe { st.to_str() }.unwrap_or("").to_owned();
            CapabilityInfo {
                kind: match c.kind {
                    capability_kind::OUTPUT_SINK => "output_sink",
                    capability_kind::DSP => "dsp",
                    _ => "unknown",
                },
                type_id: s(&c.type_id),
                display_name: s(&c.display_name),
                default_config: s(&c.default_config_json),
            }
        })
        .collect()
}

/// The capability of `kind` named `wanted`, or the only one of that kind when `wanted` is
/// `None`; the error lists what the plugin has.
fn find_capability<'g>(
    generation: &'g Generation,
    kind: u32,
    wanted: Option<&str>,
) -> Result<(String, &'g Capability)> {
    let candidates: Vec<&Capability> = generation
        .capabilities()
        .iter()
        .filter(|c| c.kind == kind && !c.vtable.is_null())
        .collect();
    let ids: Vec<String> = candidates
        .iter()
        // SAFETY: capability strings are static data in the loaded library.
        .map(|c| unsafe { c.type_id.to_str() }.unwrap_or("").to_owned())
        .collect();
    let index = match wanted {
        Some(wanted) => ids.iter().position(|id| id == wanted),
        None if candidates.len() == 1 => Some(0),
        None => None,
    };
    match index {
        Some(i) => Ok((ids[i].clone(), candidates[i])),
        None => Err(PluginError::UnknownCapability {
            plugin: generation.plugin_id().to_owned(),
            kind: if kind == capability_kind::DSP {
                "dsp"
            } else {
                "output sink"
            },
            type_id: wanted.unwrap_or("").to_owned(),
            hint: format!(" (it has: {})", ids.join(", ")),
        }),
    }
}

fn default_config(capability: &Capability) -> String {
    // SAFETY: static data in the loaded library.
    unsafe { capability.default_config_json.to_str() }
        .filter(|s| !s.is_empty())
        .unwrap_or("{}")
        .to_owned()
}

fn find_sink(
    generation: &Generation,
    sink_type: Option<&str>,
) -> Result<(String, &'static OutputSinkVTable, String)> {
    let (type_id, capability) =
        find_capability(generation, capability_kind::OUTPUT_SINK, sink_type)?;
    // SAFETY: an OUTPUT_SINK capability's vtable points at a static OutputSinkVTable in the
    // library. The 'static lifetime is sound for the holders of the generation: every user
    // of the vtable also holds an Arc of the generation, which keeps the library loaded.
    let vtable: &'static OutputSinkVTable =
        unsafe { &*capability.vtable.cast::<OutputSinkVTable>() };
    Ok((type_id, vtable, default_config(capability)))
}

type Discovered = BTreeMap<String, std::result::Result<PluginManifest, PluginError>>;

fn discover(plugin_dir: &Path) -> Discovered {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(plugin_dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let manifest = PluginManifest::read(&entry.path()).and_then(|m| {
            if m.id == name {
                Ok(m)
            } else {
                Err(PluginError::Manifest {
                    dir: entry.path(),
                    message: format!("id `{}` does not match its folder `{name}`", m.id),
                })
            }
        });
        found.insert(name, manifest);
    }
    found
}

/// A hash of the manifest and the library bytes, to skip reloading unchanged plugins.
fn content_hash(dir: &Path, manifest: &PluginManifest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(manifest)
        .unwrap_or_default()
        .hash(&mut hasher);
    std::fs::read(manifest.library_path(dir))
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}
