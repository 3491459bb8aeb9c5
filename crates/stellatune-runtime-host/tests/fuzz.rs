//! Property tests for every JSON a front end or a plugin directory hands the runtime: route,
//! config, DSP chain and plugin.json. Arbitrary strings and arbitrary JSON values never
//! panic the parsers; valid documents parse to exactly what they say.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};
use stellatune_plugin_host::PluginManifest;
use stellatune_runtime_host::{
    BuiltinRoute, DspSpec, HostConfig, LogFormat, OutputRoute, PluginRoute,
};

/// Any JSON value, nested a few levels, with keys that sometimes hit the real field names.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("kind".to_owned()),
        Just("path".to_owned()),
        Just("paced".to_owned()),
        Just("plugin_id".to_owned()),
        Just("target".to_owned()),
        Just("config".to_owned()),
        Just("type_id".to_owned()),
        Just("data_dir".to_owned()),
        Just("client_lease_ms".to_owned()),
        Just("log_filter".to_owned()),
        Just("id".to_owned()),
        Just("library".to_owned()),
        Just("api_version".to_owned()),
        "[a-z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("null".to_owned()),
            Just("wav".to_owned()),
            Just("plugin".to_owned()),
            Just("device".to_owned()),
            Just("1.0".to_owned()),
            ".{0,16}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every parser the runtime exposes, on one input: none may panic.
fn parse_everything(text: &str) {
    let _ = OutputRoute::from_json(text);
    let _ = HostConfig::from_json(text);
    let _ = DspSpec::chain_from_json(text);
    let _ = PluginManifest::parse(text);
}

fn plugin_id() -> impl Strategy<Value = String> {
    "[a-z0-9_-][a-z0-9_.-]{0,63}"
}

fn small_config() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!({})),
        any::<u32>().prop_map(|g| json!({ "gain": g })),
        ".{0,8}".prop_map(|s| json!({ "name": s, "nested": [1, 2, { "x": null }] })),
    ])
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
        parse_everything(&text);
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text_never_panic_a_parser(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        parse_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_values_never_panic_a_parser(value in any_json()) {
        let text = value.to_string();
        parse_everything(&text);
        // As an array element too (the DSP chain's shape), and as a route with a kind.
        parse_everything(&Value::Array(vec![value.clone()]).to_string());
        if let Value::Object(mut map) = value {
            for kind in ["null", "wav", "plugin", "device"] {
                map.insert("kind".into(), Value::String(kind.into()));
                parse_everything(&Value::Object(map.clone()).to_string());
            }
        }
    }

    #[test]
    fn valid_builtin_routes_round_trip(path in "[^\u{0}]{1,64}", paced in prop::option::of(any::<bool>())) {
        let mut route = json!({ "kind": "wav", "path": path });
        if let Some(p) = paced {
            route["paced"] = Value::Bool(p);
        }
        prop_assert_eq!(
            OutputRoute::from_json(&route.to_string()).unwrap(),
            OutputRoute::Builtin(BuiltinRoute::Wav {
                path: PathBuf::from(&path),
                paced: paced.unwrap_or(true),
            })
        );
        prop_assert_eq!(
            OutputRoute::from_json(r#"{"kind":"null"}"#).unwrap(),
            OutputRoute::Builtin(BuiltinRoute::Null)
        );
    }

    #[test]
    fn valid_plugin_routes_round_trip(
        id in plugin_id(),
        sink in prop::option::of("[a-z]{1,12}"),
        target in ".{0,32}",
        config in small_config(),
    ) {
        let mut route = json!({ "kind": "plugin", "plugin_id": id, "target": target });
        if let Some(s) = &sink {
            route["sink"] = json!(s);
        }
        if let Some(c) = &config {
            route["config"] = c.clone();
        }
        let mut expected = PluginRoute::new(&id, sink.as_deref(), &target);
        if let Some(c) = config {
            expected = expected.with_config(c);
        }
        // The parsed route keeps `kind` internally; compare what a caller can see.
        match OutputRoute::from_json(&route.to_string()).unwrap() {
            OutputRoute::Plugin(p) => {
                prop_assert_eq!(&p.plugin_id, &expected.plugin_id);
                prop_assert_eq!(&p.sink, &expected.sink);
                prop_assert_eq!(&p.target, &expected.target);
                prop_assert_eq!(&p.config, &expected.config);
            }
            other => prop_assert!(false, "not a plugin route: {:?}", other),
        }
    }

    #[test]
    fn valid_configs_round_trip(
        data_dir in prop::option::of("[a-zA-Z0-9/_.-]{1,40}"),
        plugin_dir in prop::option::of("[a-zA-Z0-9/_.-]{1,40}"),
        client_lease_ms in prop::option::of(1u64..10_000_000),
        log_filter in prop::option::of(prop_oneof![
            Just("warn".to_owned()),
            Just("info".to_owned()),
            Just("stellatune=debug".to_owned()),
            Just("error,stellatune_audio=trace".to_owned()),
        ]),
        json_logs in prop::option::of(any::<bool>()),
        event_queue_capacity in prop::option::of(1usize..100_000),
        shutdown_timeout_ms in prop::option::of(any::<u64>()),
    ) {
        let expected = HostConfig {
            data_dir: data_dir.map(PathBuf::from),
            plugin_dir: plugin_dir.map(PathBuf::from),
            client_lease_ms,
            log_filter,
            log_format: json_logs.map(|j| if j { LogFormat::Json } else { LogFormat::Text }),
            event_queue_capacity,
            shutdown_timeout_ms,
            fault_injection: None,
        };
        let mut text = serde_json::Map::new();
        if let Some(d) = &expected.data_dir {
            text.insert("data_dir".into(), json!(d));
        }
        if let Some(d) = &expected.plugin_dir {
            text.insert("plugin_dir".into(), json!(d));
        }
        if let Some(v) = expected.client_lease_ms {
            text.insert("client_lease_ms".into(), json!(v));
        }
        if let Some(v) = &expected.log_filter {
            text.insert("log_filter".into(), json!(v));
        }
        if let Some(j) = json_logs {
            text.insert("log_format".into(), json!(if j { "json" } else { "text" }));
        }
        if let Some(v) = expected.event_queue_capacity {
            text.insert("event_queue_capacity".into(), json!(v));
        }
        if let Some(v) = expected.shutdown_timeout_ms {
            text.insert("shutdown_timeout_ms".into(), json!(v));
        }
        let parsed = HostConfig::from_json(&Value::Object(text).to_string()).unwrap();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn valid_dsp_chains_round_trip(
        stages in prop::collection::vec(
            (plugin_id(), prop::option::of("[a-z_]{1,12}"), small_config()),
            0..5,
        )
    ) {
        let text = Value::Array(
            stages
                .iter()
                .map(|(id, type_id, config)| {
                    let mut stage = json!({ "plugin_id": id });
                    if let Some(t) = type_id {
                        stage["type_id"] = json!(t);
                    }
                    if let Some(c) = config {
                        stage["config"] = c.clone();
                    }
                    stage
                })
                .collect(),
        )
        .to_string();
        let expected: Vec<DspSpec> = stages
            .into_iter()
            .map(|(plugin_id, type_id, config)| DspSpec { plugin_id, type_id, config })
            .collect();
        prop_assert_eq!(DspSpec::chain_from_json(&text).unwrap(), expected);
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
