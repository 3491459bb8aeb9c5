//! The workspace's dependency rules (docs/architecture.md), checked against every crate's
//! manifest and the generic hosts' sources, so that a dependency or a plugin name that
//! breaks a rule fails the build instead of waiting for a review. Reads files only: it runs
//! the same on every OS and under Wine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/<name> sits two levels below the workspace root")
        .to_path_buf()
}

/// Each workspace crate's name and its manifest, from the root manifest's member list.
fn manifests() -> BTreeMap<String, toml::Table> {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let workspace: toml::Table = text.parse().unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    members
        .iter()
        .map(|member| {
            let path = root.join(member.as_str().unwrap()).join("Cargo.toml");
            let manifest: toml::Table = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .parse()
                .unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_owned();
            (name, manifest)
        })
        .collect()
}

/// The workspace crates `manifest` depends on for real (not dev-dependencies), on any target.
fn normal_deps(manifest: &toml::Table, workspace: &BTreeSet<String>) -> BTreeSet<String> {
    let mut tables = vec![manifest.get("dependencies")];
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        tables.extend(targets.values().map(|t| t.get("dependencies")));
    }
    tables
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_table())
        .flat_map(|t| t.keys().cloned())
        .filter(|name| workspace.contains(name))
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let manifests = manifests();
    let workspace: BTreeSet<String> = manifests.keys().cloned().collect();
    manifests
        .iter()
        .map(|(name, manifest)| (name.clone(), normal_deps(manifest, &workspace)))
        .collect()
}

/// Everything `krate` depends on, directly or not.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, krate: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![krate.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in &graph[&next] {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_vocabulary_crates_depend_on_no_other_workspace_crate() {
    let graph = graph();
    for leaf in [
        "stellatune-core",
        "stellatune-plugin-api",
        "stellatune-process",
        "stellatune-declick",
    ] {
        assert!(
            graph[leaf].is_empty(),
            "{leaf} depends on {:?}",
            graph[leaf]
        );
    }
}

#[test]
fn the_engine_and_the_plugin_host_sit_side_by_side_on_the_core() {
    let graph = graph();
    let plugin_host = closure(&graph, "stellatune-plugin-host");
    for engine_side in [
        "stellatune-audio",
        "stellatune-runtime-host",
        "stellatune-ffi",
    ] {
        assert!(
            !plugin_host.contains(engine_side),
            "the plugin host depends on {engine_side}"
        );
    }
    assert!(
        !closure(&graph, "stellatune-audio").contains("stellatune-plugin-host"),
        "the engine depends on the plugin host"
    );
    assert!(plugin_host.contains("stellatune-core"));
}

#[test]
fn plugins_link_no_host_crate() {
    let graph = graph();
    let allowed = set(&[
        "stellatune-plugin-api",
        "stellatune-plugin-sdk",
        "stellatune-sidecar-proto",
        "stellatune-process",
        "stellatune-declick",
    ]);
    for plugin in ["stellatune-plugin-asio", "stellatune-test-plugins"] {
        let linked = closure(&graph, plugin);
        let extra: Vec<_> = linked.difference(&allowed).collect();
        assert!(extra.is_empty(), "{plugin} links {extra:?}");
    }
    // The sidecar protocol is shared by the plugin and the sidecar: it knows neither the SDK
    // nor any host.
    let proto = closure(&graph, "stellatune-sidecar-proto");
    assert_eq!(proto, set(&["stellatune-process", "stellatune-declick"]));
}

#[test]
fn test_support_is_never_a_normal_dependency() {
    let graph = graph();
    for (krate, deps) in &graph {
        assert!(
            !deps.contains("stellatune-test-support"),
            "{krate} depends on the test support for real"
        );
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn the_generic_hosts_never_name_a_plugin() {
    let root = workspace_root();
    let mut named = Vec::new();
    for krate in ["stellatune-runtime-host", "stellatune-plugin-host"] {
        let dir = root.join("crates").join(krate).join("src");
        let files = sources(&dir);
        assert!(!files.is_empty(), "no sources under {}", dir.display());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.to_ascii_lowercase().contains("asio") {
                    named.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        named.is_empty(),
        "plugin named in a host:\n{}",
        named.join("\n")
    );
}
