//! Arbitrary JSON for parser fuzzing: nested values whose object keys and strings often hit
//! what the parser under test looks for, so the fuzzing reaches past "unknown key".

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, nested up to four levels. Object keys are drawn from `keys` or random;
/// strings from `strings` or random.
pub fn any_json(keys: &[&'static str], strings: &[&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(keys.to_vec()).prop_map(str::to_owned),
        "[a-z_]{0,12}",
    ];
    let string = prop_oneof![
        prop::sample::select(strings.to_vec()).prop_map(str::to_owned),
        ".{0,16}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        string.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
