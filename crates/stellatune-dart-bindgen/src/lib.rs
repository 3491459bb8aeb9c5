//! Generates the Dart package's `dart:ffi` bindings
//! (`bindings/dart/stellatune_runtime/lib/src/bindings.g.dart`) from the C header of
//! `stellatune-ffi` (`crates/stellatune-ffi/include/stellatune.h`).
//!
//! `header` reads the header (cbindgen writes it in a regular form: doc comments, integer
//! `#define`s, `typedef`s and prototypes) and `dart` writes the bindings. Both refuse what they
//! do not know (a C type without a `dart:ffi` mapping, an unreadable declaration), so a change
//! to the C ABI either regenerates cleanly or stops the generator. `tests/bindings.rs` fails
//! when the committed file differs from a fresh generation.
//!
//! `coverage` checks the hand-written Dart layer against the same header and against the
//! event list of `docs/ffi.md`: `tests/bindings.rs` fails when a C function has no call in
//! it (outside a short allow-list) or a documented event type or field has no reader.
//!
//! Regenerate with `cargo run -p stellatune-dart-bindgen`.

#![forbid(unsafe_code)]

pub mod coverage;
pub mod dart;
pub mod header;

use std::path::{Path, PathBuf};

/// Why the header could not be turned into bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    line: Option<usize>,
    message: String,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }

    fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "header line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// The header's path from the workspace root, as the generated file names it.
pub const HEADER: &str = "crates/stellatune-ffi/include/stellatune.h";
/// The generated file's path from the workspace root.
pub const OUTPUT: &str = "bindings/dart/stellatune_runtime/lib/src/bindings.g.dart";

/// The workspace root (this crate sits at `crates/stellatune-dart-bindgen`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/<name> sits two levels below the workspace root")
        .to_path_buf()
}

/// Joins a `/`-separated path from the workspace root (portable to Windows).
pub fn in_workspace(relative: &str) -> PathBuf {
    relative
        .split('/')
        .fold(workspace_root(), |path, part| path.join(part))
}

/// The Dart bindings for the header text `header` (LF or CRLF): always the same output,
/// with LF line endings, for the same declarations.
pub fn generate(header: &str) -> Result<String, Error> {
    dart::render(&header::parse(header)?, HEADER)
}

/// Compares a committed file with a fresh generation, ignoring CRLF versus LF (a Windows
/// checkout). On a difference, says where the first one is.
pub fn compare(committed: &str, fresh: &str) -> Result<(), String> {
    let committed = committed.replace("\r\n", "\n");
    let fresh = fresh.replace("\r\n", "\n");
    if committed == fresh {
        return Ok(());
    }
    let mut committed_lines = committed.lines();
    let mut fresh_lines = fresh.lines();
    let mut line = 1;
    loop {
        match (committed_lines.next(), fresh_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                return Err(format!(
                    "first difference at line {line}:\n  committed: {}\n  generated: {}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(relative: &str) -> String {
        let path = in_workspace(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The prototypes in the header, found without the parser: every line that starts a
    /// declaration of a `stellatune_*` function.
    fn prototype_names(header: &str) -> Vec<String> {
        header
            .lines()
            .filter(|l| !l.starts_with([' ', '*', '/', '#']))
            .filter_map(|l| {
                let open = l.find('(')?;
                let name = l[..open].rsplit([' ', '*']).next()?;
                name.starts_with("stellatune_").then(|| name.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_function_and_status_of_the_real_header_is_bound() {
        let header_text = read(HEADER);
        let parsed = header::parse(&header_text).unwrap();
        let names: Vec<_> = parsed.functions.iter().map(|f| f.name.clone()).collect();
        let expected = prototype_names(&header_text);
        assert!(expected.len() >= 25, "{expected:?}");
        assert_eq!(names, expected);
        assert!(parsed.functions.iter().all(|f| !f.doc.is_empty()));

        let out = generate(&header_text).unwrap();
        for name in &names {
            assert!(
                out.contains(&format!("('{name}')")),
                "{name} is not looked up"
            );
        }
        let defines = header_text
            .lines()
            .filter(|l| l.starts_with("#define STELLATUNE_ERR_"))
            .count();
        assert!(defines >= 19);
        assert_eq!(out.matches("const int stellatuneErr").count(), defines);
        assert!(out.contains("const int stellatuneOk = 0;"));
        assert!(out.contains("const int stellatuneErrBufferTooSmall = -7;"));
        assert!(out.contains(
            "typedef StellatunePlayerPollEventNative = Int32 Function(Uint64 client, \
             Uint32 timeoutMs, Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);"
        ));
        assert!(out.contains(
            "typedef StellatuneMediaCoverDart = int Function(Pointer<Utf8> path, \
             Pointer<Uint8> buf, int cap, Pointer<Size> outLen);"
        ));
        assert!(
            out.contains("typedef StellatuneErrorNameDart = Pointer<Utf8> Function(int code);")
        );
        assert!(out.contains(
            "typedef StellatunePlayerSetVolumeNative = Int32 Function(Uint64 client, Float volume);"
        ));
        assert!(out.contains("  /// # Safety\n"));
        assert_eq!(out, generate(&header_text.replace('\n', "\r\n")).unwrap());
    }

    /// The guard of `tests/bindings.rs` catches a changed prototype and a new function: the
    /// bindings generated from a modified header differ from the committed file.
    #[test]
    fn the_comparison_catches_a_changed_header() {
        let header_text = read(HEADER);
        let committed = read(OUTPUT);
        compare(&committed, &generate(&header_text).unwrap()).unwrap();

        let changed = header_text.replace("uint32_t timeout_ms,", "uint64_t timeout_ms,");
        assert_ne!(changed, header_text);
        let err = compare(&committed, &generate(&changed).unwrap()).unwrap_err();
        assert!(err.contains("Uint64 timeoutMs"), "{err}");

        let added = header_text.replace(
            "#ifdef __cplusplus\n}",
            "/**\n * Sets the balance.\n */\nint32_t stellatune_player_set_balance(uint64_t client, int64_t balance);\n\n#ifdef __cplusplus\n}",
        );
        assert_ne!(added, header_text);
        let fresh = generate(&added).unwrap();
        assert!(fresh.contains("late final StellatunePlayerSetBalanceDart playerSetBalance =\n"));
        assert!(fresh.contains("  /// Sets the balance.\n"));
        assert!(compare(&committed, &fresh).is_err());

        let unknown = header_text.replace("float volume", "long double volume");
        assert!(generate(&unknown).is_err());
    }

    #[test]
    fn compare_ignores_line_endings_only() {
        assert!(compare("a\r\nb\r\n", "a\nb\n").is_ok());
        assert_eq!(
            compare("a\nb\n", "a\nc\n").unwrap_err(),
            "first difference at line 2:\n  committed: b\n  generated: c"
        );
        assert!(
            compare("a\n", "a\nb\n")
                .unwrap_err()
                .contains("(end of file)")
        );
    }
}
