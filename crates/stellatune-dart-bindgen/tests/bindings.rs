//! The committed Dart bindings (`bindings/dart/stellatune_runtime/lib/src/bindings.g.dart`)
//! must be exactly what the generator makes from the committed C header, the same guard
//! `stellatune-ffi`'s `tests/header.rs` keeps on the header. Reads files only: it runs the
//! same on every OS and under Wine.
//!
//! Refresh after the header changed:
//!   cargo run -p stellatune-dart-bindgen

use stellatune_dart_bindgen::{HEADER, OUTPUT, compare, dart::COMMAND, generate, in_workspace};

#[test]
fn committed_dart_bindings_match_the_header() {
    let header_path = in_workspace(HEADER);
    let header = std::fs::read_to_string(&header_path)
        .unwrap_or_else(|e| panic!("{}: {e}", header_path.display()));
    let fresh = generate(&header).unwrap_or_else(|e| panic!("{}: {e}", header_path.display()));
    let output_path = in_workspace(OUTPUT);
    let committed = std::fs::read_to_string(&output_path).unwrap_or_default();
    if let Err(difference) = compare(&committed, &fresh) {
        panic!(
            "{} is out of date ({difference}).\nRegenerate it with:\n    {COMMAND}\nand commit the result.",
            output_path.display()
        );
    }
}
