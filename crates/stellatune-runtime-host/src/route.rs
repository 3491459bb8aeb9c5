use std::path::PathBuf;

use serde::Deserialize;
use stellatune_audio::{BuiltinRoute, SinkFactory};

use crate::error::HostError;

/// An output route as a front end states it in JSON, e.g. `{"kind":"null"}` or
/// `{"kind":"wav","path":"/tmp/out.wav","paced":false}`.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputRoute {
    Builtin(BuiltinRoute),
}

impl OutputRoute {
    pub fn from_json(json: &str) -> Result<Self, HostError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| HostError::InvalidArgument(format!("route: {e}")))?;
        let Some(kind) = value.get("kind").and_then(|k| k.as_str()) else {
            return Err(HostError::InvalidArgument(
                "route: missing string field `kind`".into(),
            ));
        };
        // Each kind has its own struct, so errors name the field at fault (a tagged enum
        // would lose the path).
        let route = match kind {
            "device" => {
                crate::json::parse::<KindOnly>(json, "route")?;
                BuiltinRoute::Device
            }
            "null" => {
                crate::json::parse::<KindOnly>(json, "route")?;
                BuiltinRoute::Null
            }
            "wav" => {
                let wav: WavFields = crate::json::parse(json, "route")?;
                BuiltinRoute::Wav {
                    path: wav.path,
                    paced: wav.paced,
                }
            }
            other => {
                return Err(HostError::InvalidArgument(format!(
                    "route: unknown kind `{other}` (expected device, null or wav)"
                )));
            }
        };
        Ok(OutputRoute::Builtin(route))
    }

    pub(crate) fn into_factory(self) -> Box<dyn SinkFactory> {
        match self {
            OutputRoute::Builtin(route) => Box::new(route),
        }
    }
}

impl From<BuiltinRoute> for OutputRoute {
    fn from(route: BuiltinRoute) -> Self {
        OutputRoute::Builtin(route)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindOnly {
    #[serde(rename = "kind")]
    _kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WavFields {
    #[serde(rename = "kind")]
    _kind: String,
    path: PathBuf,
    #[serde(default = "paced_by_default")]
    paced: bool,
}

fn paced_by_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_builtin_kinds() {
        assert_eq!(
            OutputRoute::from_json(r#"{"kind":"null"}"#).unwrap(),
            OutputRoute::Builtin(BuiltinRoute::Null)
        );
        match OutputRoute::from_json(r#"{"kind":"wav","path":"/tmp/x.wav"}"#).unwrap() {
            OutputRoute::Builtin(BuiltinRoute::Wav { paced, .. }) => assert!(paced),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_routes_name_what_is_wrong() {
        let e = OutputRoute::from_json(r#"{"kind":"speaker"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("speaker"), "{e}");
        let e = OutputRoute::from_json(r#"{"path":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("kind"), "{e}");
        let e = OutputRoute::from_json(r#"{"kind":"wav"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("path"), "{e}");
        assert!(OutputRoute::from_json("[").is_err());
    }
}
