//! Installing plugin artifacts (a directory or a .zip of one) into the plugin directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{PluginError, Result};
use crate::manifest::{MANIFEST_FILE, PluginManifest};

static STAGING_SERIAL: AtomicU64 = AtomicU64::new(0);

/// Folder of markers for uninstalls whose files could not be removed yet (a file in use on
/// Windows); retried at the next start.
pub const PENDING_UNINSTALL_DIR: &str = ".pending-uninstall";

fn install_error(path: &Path, message: impl Into<String>) -> PluginError {
    PluginError::Install {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn staging_dir(plugin_dir: &Path, what: &str) -> PathBuf {
    plugin_dir.join(format!(
        ".{what}-{}-{}",
        std::process::id(),
        STAGING_SERIAL.fetch_add(1, Ordering::SeqCst)
    ))
}

/// Copies `artifact` into `<plugin_dir>/<id>/`, replacing an older install of the same id.
/// The new files are staged first and swapped in with a rename, so a failed install leaves
/// the old one untouched. The old install is only moved aside: the caller keeps the swap
/// with [`Swapped::commit`] once the new library loaded, or undoes it with
/// [`Swapped::roll_back`].
pub fn install(artifact: &Path, plugin_dir: &Path) -> Result<Swapped> {
    fs::create_dir_all(plugin_dir).map_err(|e| install_error(plugin_dir, e.to_string()))?;
    let staging = staging_dir(plugin_dir, "staging");
    let result = stage(artifact, &staging).and_then(|root| {
        let manifest = PluginManifest::read(&root)?;
        let library = manifest.library_path(&root);
        if !library.is_file() {
            return Err(install_error(
                artifact,
                format!(
                    "library {} named in plugin.json is missing",
                    manifest.library
                ),
            ));
        }
        let target = plugin_dir.join(&manifest.id);
        let previous = if target.exists() {
            let aside = staging_dir(plugin_dir, "trash");
            fs::rename(&target, &aside).map_err(|e| install_error(&target, e.to_string()))?;
            Some(aside)
        } else {
            None
        };
        if let Err(e) = fs::rename(&root, &target) {
            if let Some(aside) = &previous {
                let _ = fs::rename(aside, &target);
            }
            return Err(install_error(&target, e.to_string()));
        }
        clear_pending_uninstall(plugin_dir, &manifest.id);
        Ok(Swapped {
            manifest,
            plugin_dir: plugin_dir.to_path_buf(),
            previous,
        })
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

/// A new install swapped into place, with the install it replaced (if any) set aside.
/// Dropped undecided, the set-aside files are left for [`finish_pending`] to remove.
#[must_use]
pub struct Swapped {
    pub manifest: PluginManifest,
    plugin_dir: PathBuf,
    previous: Option<PathBuf>,
}

impl Swapped {
    /// Keeps the new install; the replaced one's files go.
    pub fn commit(self) {
        if let Some(previous) = &self.previous {
            if let Err(e) = fs::remove_dir_all(previous) {
                tracing::warn!(plugin = %self.manifest.id, error = %e, "replaced plugin files not removed yet; removed at the next start");
            }
        }
    }

    /// Removes the new install and puts the replaced one (if any) back.
    pub fn roll_back(self) {
        let id = &self.manifest.id;
        if let Err(e) = remove_install_dir(&self.plugin_dir, id) {
            tracing::warn!(plugin = %id, error = %e, "cannot remove a refused install");
        }
        if let Some(previous) = &self.previous {
            if let Err(e) = fs::rename(previous, self.plugin_dir.join(id)) {
                tracing::warn!(plugin = %id, error = %e, "cannot restore the previous install");
            }
        }
    }
}

/// Stages the artifact's files under `staging`; returns the folder holding plugin.json.
fn stage(artifact: &Path, staging: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(artifact).map_err(|e| install_error(artifact, e.to_string()))?;
    fs::create_dir_all(staging).map_err(|e| install_error(staging, e.to_string()))?;
    if meta.is_dir() {
        copy_tree(artifact, staging).map_err(|e| install_error(artifact, e.to_string()))?;
        return Ok(staging.to_path_buf());
    }
    let is_zip = artifact
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if !is_zip {
        return Err(install_error(
            artifact,
            "expected a plugin directory or a .zip of one",
        ));
    }
    extract_zip(artifact, staging)?;
    if staging.join(MANIFEST_FILE).is_file() {
        return Ok(staging.to_path_buf());
    }
    // A zip of the folder itself: plugin.json one level down, in its only folder.
    let entries: Vec<PathBuf> = fs::read_dir(staging)
        .map_err(|e| install_error(staging, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [only] if only.join(MANIFEST_FILE).is_file() => Ok(only.clone()),
        _ => Err(install_error(artifact, "the archive holds no plugin.json")),
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest)?;
        }
        // Symlinks are not followed: an artifact cannot smuggle in files from elsewhere.
    }
    Ok(())
}

/// Limits that keep a hostile archive from filling the disk.
const MAX_ZIP_ENTRIES: usize = 4096;
const MAX_ZIP_BYTES: u64 = 1 << 30;

fn extract_zip(artifact: &Path, staging: &Path) -> Result<()> {
    let file = fs::File::open(artifact).map_err(|e| install_error(artifact, e.to_string()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| install_error(artifact, e.to_string()))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(install_error(artifact, "the archive has too many entries"));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| install_error(artifact, e.to_string()))?;
        // Refuse the whole archive on one escaping entry: installing the rest would leave a
        // plugin that is not what its author shipped.
        let Some(relative) = entry.enclosed_name() else {
            return Err(install_error(
                artifact,
                format!("entry {:?} escapes the plugin directory", entry.name()),
            ));
        };
        let dest = staging.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&dest).map_err(|e| install_error(&dest, e.to_string()))?;
            continue;
        }
        if entry.is_symlink() {
            return Err(install_error(
                artifact,
                format!("entry {:?} is a symbolic link", entry.name()),
            ));
        }
        total += entry.size();
        if total > MAX_ZIP_BYTES {
            return Err(install_error(artifact, "the archive unpacks to over 1 GiB"));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| install_error(parent, e.to_string()))?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| install_error(artifact, e.to_string()))?;
        fs::write(&dest, &bytes).map_err(|e| install_error(&dest, e.to_string()))?;
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&dest, fs::Permissions::from_mode(mode & 0o755));
        }
    }
    Ok(())
}

/// Removes `<plugin_dir>/<id>`. Loaded generations run from shadow copies, so on Linux this
/// always succeeds; where a file is still in use the removal is queued for the next start.
pub fn remove_install_dir(plugin_dir: &Path, id: &str) -> Result<()> {
    let dir = plugin_dir.join(id);
    if !dir.exists() {
        return Ok(());
    }
    // Rename first so the id is free at once even if deleting takes a retry.
    let trash = staging_dir(plugin_dir, "trash");
    let doomed = match fs::rename(&dir, &trash) {
        Ok(()) => trash,
        Err(_) => dir,
    };
    if let Err(e) = fs::remove_dir_all(&doomed) {
        tracing::warn!(plugin = id, error = %e, "plugin files still in use; removal queued for the next start");
        let pending = plugin_dir.join(PENDING_UNINSTALL_DIR);
        fs::create_dir_all(&pending).map_err(|e| install_error(&pending, e.to_string()))?;
        fs::write(pending.join(id), doomed.to_string_lossy().as_bytes())
            .map_err(|e| install_error(&pending, e.to_string()))?;
    }
    Ok(())
}

fn clear_pending_uninstall(plugin_dir: &Path, id: &str) {
    let _ = fs::remove_file(plugin_dir.join(PENDING_UNINSTALL_DIR).join(id));
}

/// Retries removals queued by earlier runs, and clears staging left by a crashed install.
pub fn finish_pending(plugin_dir: &Path) {
    let pending = plugin_dir.join(PENDING_UNINSTALL_DIR);
    if let Ok(entries) = fs::read_dir(&pending) {
        for entry in entries.flatten() {
            let target = fs::read_to_string(entry.path()).map(PathBuf::from);
            let done = match target {
                Ok(path) if path.starts_with(plugin_dir) => {
                    !path.exists() || fs::remove_dir_all(&path).is_ok()
                }
                _ => true,
            };
            if done {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    if let Ok(entries) = fs::read_dir(plugin_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") || name.starts_with(".trash-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}
