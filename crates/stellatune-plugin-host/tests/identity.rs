//! Plugin identities are unique per process: runtimes alive at the same time (a shutdown
//! racing an init) never share a generation number or a shadow copy, and the reaper of
//! stale shadow copies reads the owner from fixed fields, so a plugin id such as `p2` is
//! never taken for a pid.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use support::*;

#[test]
fn concurrent_runtimes_on_one_plugin_dir_never_share_a_shadow_copy() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    install_test_plugins(&plugins);
    let data = dir.path().join("data");
    let seen: Arc<Mutex<HashSet<(PathBuf, u64)>>> = Arc::default();
    let rounds = env_count("STELLATUNE_IDENTITY_ROUNDS", 40);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (plugins, data, seen) = (plugins.clone(), data.clone(), seen.clone());
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    // Each round is a runtime's whole life: start (load), use, shut down,
                    // racing the other threads' starts and shutdowns.
                    let runtime = start(&plugins, &data);
                    for _ in 0..2 {
                        let factory = runtime
                            .create_sink(TEST_PLUGINS, Some("misbehave"), "", None)
                            .unwrap();
                        let g = factory.generation();
                        let id = (g.shadow_path().to_path_buf(), g.number());
                        assert!(g.shadow_path().is_file());
                        let mut seen = seen.lock().unwrap();
                        assert!(
                            !seen.iter().any(|(p, _)| *p == id.0),
                            "shadow path reused: {id:?}"
                        );
                        assert!(
                            !seen.iter().any(|(_, n)| *n == id.1),
                            "generation reused: {id:?}"
                        );
                        seen.insert(id);
                        drop(seen);
                        drop(factory);
                        runtime.force_reload(TEST_PLUGINS).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), 4 * rounds * 2);
    let left: Vec<_> = std::fs::read_dir(plugins.join(".shadow"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "every generation unloaded and removed its copy: {left:?}"
    );
}

/// A pid that belonged to a process which has exited (and was reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn plant(shadow: &Path, name: &str) -> PathBuf {
    let path = shadow.join(name);
    std::fs::write(&path, b"not a library").unwrap();
    path
}

#[test]
fn the_reaper_reads_the_owner_from_fixed_fields_not_from_the_plugin_id() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let shadow = plugins.join(".shadow");
    std::fs::create_dir_all(&shadow).unwrap();
    let dead = dead_pid();
    let me = std::process::id();
    // Copies of a dead process for a plugin whose id is `p2`: in the old format the id
    // came first and was read as pid 2 (alive on Linux), so they were kept forever.
    let legacy_p2 = plant(&shadow, &format!("p2-g1-p{dead}-libx.so"));
    let dead_p2 = plant(&shadow, &format!("p2-p{dead}-t0-r1-g1@libx.so"));
    let dead_tmp = plant(&shadow, &format!("p2-p{dead}-t0-r1-g2@libx.so.tmp"));
    // This process's copy is kept; so is one of a process that is alive (pid 1).
    let runtime = start(&plugins, &dir.path().join("data"));
    let mine = runtime
        .shadow_dir()
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        mine.is_empty(),
        "nothing installed, nothing loaded: {mine:?}"
    );
    drop(runtime);
    let ours = plant(
        &shadow,
        &format!("p2-p{me}-t{}-r7-g7@libx.so", own_start_time()),
    );
    let ours_other_life = plant(
        &shadow,
        &format!("p2-p{me}-t{}-r7-g8@libx.so", own_start_time() + 1),
    );
    #[cfg(unix)] // on Windows the reaper tries every foreign file (a loaded one is locked)
    let live_other = plant(&shadow, "p2-p1-t0-r1-g1@libx.so");
    let unrelated = plant(&shadow, "README");
    let legacy_p2_again = plant(&shadow, &format!("p2-g1-p{dead}-libx.so"));

    let _runtime = start(&plugins, &dir.path().join("data"));
    assert!(
        !legacy_p2.exists() && !legacy_p2_again.exists(),
        "p2 is not a pid"
    );
    assert!(!dead_p2.exists(), "a dead owner's copy is reaped");
    assert!(!dead_tmp.exists(), "a dead owner's partial copy is reaped");
    assert!(
        !ours_other_life.exists(),
        "same pid, other start time: a dead process"
    );
    assert!(ours.exists(), "this process's copy is kept");
    #[cfg(unix)] // as above
    assert!(live_other.exists(), "a live process's copy is kept");
    assert!(
        unrelated.exists(),
        "a file that is no shadow copy is left alone"
    );
}

/// This process's start time as shadow names record it (0 where the platform has none).
fn own_start_time() -> u64 {
    stellatune_process::process_start_time(std::process::id()).unwrap_or(0)
}
