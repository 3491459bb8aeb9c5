//! Property tests for the JSON a plugin directory hands the runtime: plugin.json. Arbitrary
//! strings and arbitrary JSON values never panic the parser; valid manifests parse to exactly
//! what they say. (The documents a front end writes, routes, config and DSP chains, are parsed
//! by the C ABI and fuzzed there, in `stellatune-ffi`'s `wire`.)

use proptest::prelude::*;
use serde_json::{Value, json};
use stellatune_plugin_host::PluginManifest;

/// Any JSON value, nested a few levels, with keys that sometimes hit the manifest's fields.
fn any_json() -> impl Strategy<Value = Value> {
    stellatune_test_support::json::any_json(
        &[
            "id",
            "name",
            "version",
            "api_version",
            "library",
            "description",
        ],
        &["1.0", "libx.so", "../x.so"],
    )
}

/// The manifest parser on one input: it may refuse, never panic.
fn parse_manifest(text: &str) {
    let _ = PluginManifest::parse(text);
}

fn plugin_id() -> impl Strategy<Value = String> {
    "[a-z0-9_-][a-z0-9_.-]{0,63}"
}

proptest! {
    // No regression files are written next to the tests: a failure prints its minimal input.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings_never_panic_a_parser(text in ".{0,256}") {
        parse_manifest(&text);
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text_never_panic_a_parser(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        parse_manifest(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_values_never_panic_a_parser(value in any_json()) {
        parse_manifest(&value.to_string());
        parse_manifest(&Value::Array(vec![value]).to_string());
    }

    #[test]
    fn valid_manifests_round_trip(
        id in plugin_id(),
        name in ".{0,32}",
        version in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        minor in 0u32..3,
        library in "lib[a-z_]{1,20}\\.so",
        description in prop::option::of(".{0,40}"),
    ) {
        let manifest = PluginManifest {
            id,
            name,
            version,
            api_version: format!("1.{minor}"),
            library,
            description,
        };
        let text = serde_json::to_string(&manifest).unwrap();
        prop_assert_eq!(PluginManifest::parse(&text).unwrap(), manifest);
    }

    #[test]
    fn manifests_with_a_path_as_library_are_refused(
        id in plugin_id(),
        library in prop_oneof![
            "\\.\\./[a-z]{1,8}\\.so",
            "/[a-z]{1,8}/[a-z]{1,8}\\.so",
            "[a-z]{1,8}/[a-z]{1,8}\\.so",
            "[a-z]{1,8}\\\\[a-z]{1,8}\\.dll",
        ],
    ) {
        let text = json!({
            "id": id, "name": "x", "version": "1.0.0", "api_version": "1.0", "library": library,
        })
        .to_string();
        prop_assert!(PluginManifest::parse(&text).is_err(), "accepted library {}", library);
    }
}
