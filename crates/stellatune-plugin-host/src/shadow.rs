//! Shadow directories: every plugin generation runs from a private copy of its installed
//! directory, `<plugin_dir>/.shadow/<id>-p<pid>-t<start>-r<runtime>-g<n>@<library>/`.
//!
//! The library is loaded from there and the plugin is told that directory as its
//! `plugin_dir`, so whatever it ships beside the library (a helper executable such as the
//! output sidecar process) runs from the copy too. The installed files are then never in use: on
//! Windows, where a loaded DLL or a running executable cannot be deleted or overwritten,
//! install, upgrade and uninstall work while the plugin plays; on every OS a generation keeps
//! running the files it was loaded with, even after an upgrade replaced them.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// Copies the installed directory `from` into a new shadow directory `to`. The library
/// (`library`, relative to `from`) is always a real copy: the dynamic loader recognises a
/// library it already has by its file (inode), so a hard link would hand back the previous
/// generation's code. Other files are hard-linked where the OS allows it (unix: an install
/// replaces files by renaming, never rewrites them in place) and copied elsewhere: on Windows
/// a running executable locks its file under every name it has.
///
/// The copy is made under `<to>.tmp` and renamed into place, so `to` never names a partial
/// copy; on failure nothing is left behind.
pub(crate) fn copy_into(from: &Path, to: &Path, library: &Path) -> std::io::Result<()> {
    let mut partial = to.as_os_str().to_owned();
    partial.push(".tmp");
    let partial = std::path::PathBuf::from(partial);
    let _ = remove_entry(&partial);
    let copied =
        copy_tree(from, &partial, &from.join(library)).and_then(|()| std::fs::rename(&partial, to));
    if copied.is_err() {
        let _ = remove_entry(&partial);
    }
    copied
}

fn copy_tree(from: &Path, to: &Path, library: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        // `metadata` follows a symbolic link, so a linked file is copied as a file.
        if std::fs::metadata(&source)?.is_dir() {
            copy_tree(&source, &target, library)?;
        } else if cfg!(unix) && source != library && std::fs::hard_link(&source, &target).is_ok() {
            continue;
        } else {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

/// Removes a shadow directory (or a single-file shadow copy of an older version).
fn remove_entry(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Shadow directories of unloaded generations that could not be removed yet: on Windows a
/// file stays locked while a process started from it (a helper the plugin failed to stop)
/// still runs. Retried at every later load and unload; the metrics count them meanwhile.
static LEFT_BEHIND: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// Removes the shadow directory of a generation that has unloaded, or keeps it for a retry.
pub(crate) fn remove_unloaded(dir: &Path) {
    if let Err(e) = remove_entry(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "shadow directory still in use; removal retried later");
        LEFT_BEHIND
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dir.to_path_buf());
    }
    retry_left_behind();
}

/// Tries again to remove the shadow directories left behind. The list is taken out of its lock
/// first: no lock is held while the file system works.
pub(crate) fn retry_left_behind() {
    let pending = std::mem::take(&mut *LEFT_BEHIND.lock().unwrap_or_else(PoisonError::into_inner));
    if pending.is_empty() {
        return;
    }
    let still: Vec<_> = pending
        .into_iter()
        .filter(|dir| remove_entry(dir).is_err())
        .collect();
    LEFT_BEHIND
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(still);
}

/// The fields of a shadow directory's name, `<id>-p<pid>-t<start>-r<runtime>-g<generation>@<library>`.
/// A plugin id never holds `@`, so the first `@` ends the numeric fields, which are read
/// from there backwards: an id such as `p2` (or `x-p1-t2`) is never mistaken for one of
/// them, whatever the library is called. `start` is the owner process's start time (0 where
/// unknown), so a recycled pid does not keep a dead process's copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShadowName {
    pub pid: u32,
    pub start_time: u64,
    pub runtime: u64,
    pub generation: u64,
}

impl ShadowName {
    pub fn file_name(&self, plugin_id: &str, library: &str) -> String {
        format!(
            "{plugin_id}-p{}-t{}-r{}-g{}@{library}",
            self.pid, self.start_time, self.runtime, self.generation
        )
    }

    /// The numeric fields of a shadow copy's name (or of its temporary copy); `None` if the
    /// name is not one.
    pub fn parse(name: &str) -> Option<ShadowName> {
        let (head, library) = name.split_once('@')?;
        if library.is_empty() {
            return None;
        }
        let mut fields = head.rsplitn(5, '-');
        let mut number = |prefix: char| -> Option<u64> {
            let field = fields.next()?.strip_prefix(prefix)?;
            if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            field.parse().ok()
        };
        let generation = number('g')?;
        let runtime = number('r')?;
        let start_time = number('t')?;
        let pid = u32::try_from(number('p')?).ok()?;
        fields.next().filter(|id| !id.is_empty())?;
        Some(ShadowName {
            pid,
            start_time,
            runtime,
            generation,
        })
    }
}

/// This process's start time as the shadow names record it (0 where unknown).
pub(crate) fn own_start_time() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(|| stellatune_process::process_start_time(std::process::id()).unwrap_or(0))
}

/// Removes shadow copies (and temporary copies) whose owner process is gone: left by a
/// crash. Copies of live processes, this one included, are kept; so are files whose name
/// is not a shadow copy's (they are not ours to judge), except the older
/// `<id>-g<n>-p<pid>-<library>` names, which no running version writes any more.
pub(crate) fn reap_stale_shadow_copies(shadow_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(shadow_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = match ShadowName::parse(&name) {
            Some(shadow) if shadow.pid == std::process::id() => {
                shadow.start_time != own_start_time()
            }
            Some(shadow) => !stellatune_process::process_is_owner(shadow.pid, shadow.start_time),
            None => is_legacy_shadow_name(&name),
        };
        if stale {
            tracing::info!(file = %name, "removing a stale plugin shadow copy");
            let _ = remove_entry(&entry.path());
        }
    }
}

/// `<id>-g<n>-p<pid>-<library>`, the format before the fixed-position one: its fields are
/// ambiguous (an id `p2` reads as a pid), so such a file is never trusted to be alive.
fn is_legacy_shadow_name(name: &str) -> bool {
    if name.contains('@') {
        return false;
    }
    let parts: Vec<&str> = name.split('-').collect();
    parts.windows(2).any(|w| {
        let numeric = |s: &str, p: char| {
            s.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        numeric(w[0], 'g') && numeric(w[1], 'p')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_names_round_trip_whatever_the_plugin_id() {
        let name = ShadowName {
            pid: 4242,
            start_time: 99,
            runtime: 3,
            generation: 17,
        };
        for (id, library) in [
            ("p2", "libp2.so"),
            ("g1-p7", "lib-g3-p5.so"),
            ("x-p1-t2-r3-g4", "lib@odd-p9-t9-r9-g9.so"),
            ("out", "stellatune_plugin_out.dll"),
        ] {
            let file = name.file_name(id, library);
            assert_eq!(ShadowName::parse(&file), Some(name), "{file}");
            assert_eq!(ShadowName::parse(&format!("{file}.tmp")), Some(name));
        }
    }

    #[test]
    fn other_names_are_not_shadow_names() {
        for name in [
            "README",
            "p2-g1-p123-libx.so",
            "x-p12-t0-r1-g1",
            "x-p12-t0-r1-g1@",
            "p12-t0-r1-g1@x.so",
            "x-p-t0-r1-g1@y",
            "x-p+1-t0-r1-g1@y",
            "x-p1-t0-r1-g1x@y",
            "x-p99999999999-t0-r1-g1@y",
        ] {
            assert_eq!(ShadowName::parse(name), None, "{name}");
        }
        assert!(is_legacy_shadow_name("p2-g1-p123-libx.so"));
        assert!(is_legacy_shadow_name(
            "out-g12-p7-libstellatune_plugin_out.so"
        ));
        assert!(!is_legacy_shadow_name("README"));
    }

    #[test]
    fn a_shadow_directory_holds_every_installed_file_and_a_real_copy_of_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let install = dir.path().join("plugin");
        std::fs::create_dir_all(install.join("assets")).unwrap();
        std::fs::write(install.join("plugin.json"), "{}").unwrap();
        std::fs::write(install.join("lib.bin"), "library").unwrap();
        std::fs::write(install.join("helper.exe"), "helper").unwrap();
        std::fs::write(install.join("assets").join("a.txt"), "asset").unwrap();
        let shadow = dir.path().join("shadow");
        copy_into(&install, &shadow, Path::new("lib.bin")).unwrap();
        for (file, text) in [
            ("plugin.json", "{}"),
            ("lib.bin", "library"),
            ("helper.exe", "helper"),
            ("assets/a.txt", "asset"),
        ] {
            assert_eq!(std::fs::read_to_string(shadow.join(file)).unwrap(), text);
        }
        // The library is a file of its own: rewriting the installed one leaves the copy.
        std::fs::write(install.join("lib.bin"), "upgraded").unwrap();
        assert_eq!(
            std::fs::read_to_string(shadow.join("lib.bin")).unwrap(),
            "library"
        );
        // The installed directory can go while the shadow stays.
        std::fs::remove_dir_all(&install).unwrap();
        assert_eq!(
            std::fs::read_to_string(shadow.join("helper.exe")).unwrap(),
            "helper"
        );
        assert!(!dir.path().join("shadow.tmp").exists());
    }

    #[test]
    fn a_failed_copy_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let shadow = dir.path().join("shadow");
        let missing = dir.path().join("not-installed");
        assert!(copy_into(&missing, &shadow, Path::new("lib.bin")).is_err());
        assert!(!shadow.exists());
        assert!(!dir.path().join("shadow.tmp").exists());
    }
}
