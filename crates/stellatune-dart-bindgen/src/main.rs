//! Writes `bindings/dart/stellatune_runtime/lib/src/bindings.g.dart` from
//! `crates/stellatune-ffi/include/stellatune.h`.
//!
//! ```sh
//! cargo run -p stellatune-dart-bindgen            # regenerate
//! cargo run -p stellatune-dart-bindgen -- --check # exit 1 when the committed file is stale
//! ```

#![forbid(unsafe_code)]

use std::process::ExitCode;

use stellatune_dart_bindgen::{HEADER, OUTPUT, compare, generate, in_workspace};

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("unknown argument `{other}`; usage: stellatune-dart-bindgen [--check]");
            return ExitCode::from(2);
        }
    };
    let header_path = in_workspace(HEADER);
    let output_path = in_workspace(OUTPUT);
    let header = match std::fs::read_to_string(&header_path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: {e}", header_path.display());
            return ExitCode::FAILURE;
        }
    };
    let fresh = match generate(&header) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: {e}", header_path.display());
            return ExitCode::FAILURE;
        }
    };
    if check {
        let committed = std::fs::read_to_string(&output_path).unwrap_or_default();
        return match compare(&committed, &fresh) {
            Ok(()) => ExitCode::SUCCESS,
            Err(difference) => {
                eprintln!("{} is out of date: {difference}", output_path.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Some(dir) = output_path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("{}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    match std::fs::write(&output_path, fresh) {
        Ok(()) => {
            println!("wrote {}", output_path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", output_path.display());
            ExitCode::FAILURE
        }
    }
}
