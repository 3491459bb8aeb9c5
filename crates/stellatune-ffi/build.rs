//! Generates `include/stellatune.h` into `OUT_DIR` with cbindgen on every build that changed
//! the sources. The committed copy in `include/` is what C and Dart callers use;
//! `tests/header.rs` fails when it differs from a fresh generation.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let header = out_dir.join("include").join("stellatune.h");
    let generated = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| e.to_string())
        .and_then(|config| {
            cbindgen::Builder::new()
                .with_config(config)
                .with_src(crate_dir.join("src").join("lib.rs"))
                .generate()
                .map_err(|e| e.to_string())
        });
    match generated {
        Ok(bindings) => {
            if let Some(dir) = header.parent() {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    println!("cargo:warning=cannot create {}: {e}", dir.display());
                    return;
                }
            }
            bindings.write_to_file(&header);
        }
        // A header problem must not break the library build of every consumer; the header
        // test fails loudly instead.
        Err(e) => println!("cargo:warning=cbindgen could not generate stellatune.h: {e}"),
    }
}
