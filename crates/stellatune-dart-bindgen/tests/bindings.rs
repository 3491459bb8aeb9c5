//! The committed Dart bindings (`bindings/dart/stellatune_runtime/lib/src/bindings.g.dart`)
//! must be exactly what the generator makes from the committed C header, the same guard
//! `stellatune-ffi`'s `tests/header.rs` keeps on the header; and the hand-written layer on top
//! of them must cover the whole C ABI: every function called, every documented event type
//! and field read. Reads files only: it runs the same on every OS and under Wine.
//!
//! Refresh after the header changed:
//!   cargo run -p stellatune-dart-bindgen

use stellatune_dart_bindgen::coverage::{
    DART_SOURCES, EVENTS_FILE, FFI_DOC, calls, documented_events, documented_keys, event_gaps,
    strip_comments, uncalled, unused_keys,
};
use stellatune_dart_bindgen::{
    HEADER, OUTPUT, compare, dart::COMMAND, generate, header, in_workspace,
};

/// C functions the hand-written layer deliberately does not call. Each needs a reason; the
/// raw binding stays available through `StellatuneRuntime.bindings` either way.
const NOT_WRAPPED: &[(&str, &str)] = &[(
    "stellatune_player_poll_event",
    // Every `Player` receives its events on a port (`stellatune_player_set_event_port`),
    // and the runtime refuses polls for a client that has one: a poll wrapper could never
    // succeed on a `Player`.
    "events are pushed to the player's port; polls are refused while it is set",
)];

fn read(relative: &str) -> String {
    let path = in_workspace(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The code (comments stripped) of every hand-written Dart file of the package, with the
/// file names it came from.
fn hand_written_code() -> (Vec<String>, String) {
    let dir = in_workspace(DART_SOURCES);
    let generated = in_workspace(OUTPUT);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "dart") && *path != generated)
        .collect();
    files.sort();
    let mut code = String::new();
    let mut names = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        code.push_str(&strip_comments(&text));
        code.push('\n');
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    (names, code)
}

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

/// A function added to the C ABI needs a wrapper in the hand-written layer (a call through
/// `StellatuneBindings`), or an entry in `NOT_WRAPPED` saying why not.
#[test]
fn every_c_function_is_called_by_the_hand_written_dart_layer() {
    let parsed = header::parse(&read(HEADER)).unwrap();
    let functions: Vec<&str> = parsed.functions.iter().map(|f| f.name.as_str()).collect();
    let (files, code) = hand_written_code();
    assert!(
        files.iter().any(|f| f == EVENTS_FILE) && files.len() >= 6,
        "hand-written files: {files:?}"
    );

    for (name, _) in NOT_WRAPPED {
        assert!(
            functions.contains(name),
            "NOT_WRAPPED names `{name}`, which the header does not have: remove it"
        );
        assert!(
            !calls(&code, name),
            "NOT_WRAPPED names `{name}`, which the Dart layer calls now: remove it"
        );
    }
    let missing = uncalled(
        functions
            .iter()
            .copied()
            .filter(|f| !NOT_WRAPPED.iter().any(|(name, _)| name == f)),
        &code,
    );
    assert!(
        missing.is_empty(),
        "C functions without a call in {DART_SOURCES}/{files:?}: {missing:?}.\n\
         Wrap each in the typed layer, or list it in NOT_WRAPPED with the reason."
    );
}

/// Every event type of `docs/ffi.md` ("Events") has a case in `events.dart` that reads each
/// field of its documented JSON (nested `tags` and `replaygain` keys too), and the file has
/// no case for a type the documentation does not list.
#[test]
fn every_documented_event_type_and_field_is_read_by_events_dart() {
    let events = documented_events(&read(FFI_DOC)).unwrap_or_else(|e| panic!("{FFI_DOC}: {e}"));
    let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
    for expected in ["track_started", "underrun", "output_lost", "heartbeat"] {
        assert!(names.contains(&expected), "{FFI_DOC} lists {names:?}");
    }
    let track_started = events.iter().find(|e| e.name == "track_started").unwrap();
    for key in ["tags", "title", "album_artist", "replaygain", "album_peak"] {
        assert!(
            track_started.keys.iter().any(|k| k == key),
            "{:?}",
            track_started.keys
        );
    }

    let code = strip_comments(&read(&format!("{DART_SOURCES}/{EVENTS_FILE}")));
    let gaps = event_gaps(&events, &code);
    assert!(
        gaps.is_empty(),
        "{DART_SOURCES}/{EVENTS_FILE} does not cover {FFI_DOC}:\n  {}",
        gaps.join("\n  ")
    );
}

/// Every key of the runtime's configuration and of the ReplayGain settings that
/// `docs/ffi.md` documents ("Configuration", "Loudness") can be set from the typed layer:
/// the file of `StellatuneConfig` and the one of `ReplayGainSettings` write each as a
/// `'key'` (other files read keys of the same names from the runtime's documents).
#[test]
fn every_documented_config_and_replaygain_key_is_written_by_the_dart_layer() {
    let doc = read(FFI_DOC);
    for (heading, file, class, expected) in [
        (
            "Configuration",
            "runtime.dart",
            "StellatuneConfig",
            "replaygain",
        ),
        (
            "Loudness",
            "player.dart",
            "ReplayGainSettings",
            "prevent_clipping",
        ),
    ] {
        let keys = documented_keys(&doc, heading).unwrap_or_else(|e| panic!("{FFI_DOC}: {e}"));
        assert!(keys.iter().any(|k| k == expected), "{heading}: {keys:?}");
        let code = strip_comments(&read(&format!("{DART_SOURCES}/{file}")));
        assert!(
            code.contains(&format!("class {class} ")),
            "{file} lost {class}"
        );
        let missing = unused_keys(&keys, &code);
        assert!(
            missing.is_empty(),
            "keys of {FFI_DOC} \"{heading}\" that {class} ({file}) cannot set: {missing:?}"
        );
    }
}
