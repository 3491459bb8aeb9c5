//! The committed `include/stellatune.h` must be exactly what cbindgen generates from the
//! current sources, and must compile as strict C11. The error-code table in `docs/ffi.md` must
//! be exactly what build.rs generates from the status list (`src/status.rs`).
//!
//! Refresh both after changing the exported surface or the status list:
//!   STELLATUNE_BLESS_HEADER=1 cargo test -p stellatune-ffi --test header

use std::path::{Path, PathBuf};

const BLESS: &str = "STELLATUNE_BLESS_HEADER";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_path() -> PathBuf {
    crate_dir().join("include").join("stellatune.h")
}

/// Generates the header exactly as build.rs does (the status constants are the ones build.rs
/// generated for this build).
fn generate() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src").join("lib.rs"))
        .with_src(Path::new(env!("OUT_DIR")).join("status_consts.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn committed_header_matches_the_sources() {
    let fresh = generate();
    let path = committed_path();
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write the committed header");
        eprintln!("refreshed {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first_difference = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "one is a prefix of the other".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "{} is out of date ({first_difference}).\nRefresh it with:\n    {BLESS}=1 cargo test -p stellatune-ffi --test header\nand commit the result.",
            path.display()
        );
    }
}

const TABLE_BEGIN: &str =
    "<!-- status-codes:begin (generated from crates/stellatune-ffi/src/status.rs) -->\n";
const TABLE_END: &str = "<!-- status-codes:end -->";

#[test]
fn docs_error_table_matches_the_status_list() {
    let table = std::fs::read_to_string(Path::new(env!("OUT_DIR")).join("status_table.md"))
        .expect("build.rs writes status_table.md");
    let path = crate_dir().join("../../docs/ffi.md");
    let docs = std::fs::read_to_string(&path).expect("docs/ffi.md");
    let begin = docs
        .find(TABLE_BEGIN)
        .expect("docs/ffi.md has the begin marker")
        + TABLE_BEGIN.len();
    let end = docs[begin..]
        .find(TABLE_END)
        .expect("docs/ffi.md has the end marker")
        + begin;
    if docs[begin..end] == table {
        return;
    }
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        let fresh = format!("{}{table}{}", &docs[..begin], &docs[end..]);
        std::fs::write(&path, fresh).expect("write docs/ffi.md");
        eprintln!("refreshed the error-code table in {}", path.display());
        return;
    }
    panic!(
        "the error-code table in {} is out of date.\nRefresh it with:\n    {BLESS}=1 cargo test -p stellatune-ffi --test header\nand commit the result.",
        path.display()
    );
}

#[test]
fn header_defines_every_status_of_the_list() {
    let header = std::fs::read_to_string(committed_path()).unwrap_or_default();
    for status in stellatune_ffi::Status::ALL {
        let name = status.name().to_str().unwrap();
        let define = format!("#define {name} {}\n", status.code());
        assert!(
            header.contains(&define),
            "the header lacks `{}`",
            define.trim_end()
        );
    }
}

#[test]
fn build_script_writes_the_same_header_to_out_dir() {
    let built = Path::new(env!("OUT_DIR"))
        .join("include")
        .join("stellatune.h");
    let built = std::fs::read_to_string(&built)
        .unwrap_or_else(|e| panic!("build.rs did not write {}: {e}", built.display()));
    assert!(
        built == generate(),
        "build.rs and the test generate different headers"
    );
}

// No C or C++ compiler under Windows: there scripts/test-windows.sh compiles the header (in
// tests/c/smoke.c, with these C flags) with mingw, and c_smoke.rs runs the result.
#[cfg(not(windows))]
#[test]
fn header_compiles_as_strict_c11_and_cxx() {
    let include = crate_dir().join("include");
    let probe = tempfile::Builder::new()
        .suffix(".c")
        .tempfile()
        .expect("temp file");
    std::fs::write(
        probe.path(),
        "#include \"stellatune.h\"\nint main(void) { return stellatune_abi_version() == STELLATUNE_ABI_VERSION ? 0 : 1; }\n",
    )
    .unwrap();
    for (compiler, args) in [
        (
            "cc",
            &["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror"][..],
        ),
        (
            "c++",
            &[
                "-x",
                "c++",
                "-std=c++11",
                "-pedantic",
                "-Wall",
                "-Wextra",
                "-Werror",
            ][..],
        ),
    ] {
        let output = std::process::Command::new(compiler)
            .args(args)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(&include)
            .arg(probe.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{compiler}` (a C toolchain is required): {e}"));
        assert!(
            output.status.success(),
            "{compiler} rejects the header:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
