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
        if value.get("kind").and_then(|k| k.as_str()).is_none() {
            return Err(HostError::InvalidArgument(
                "route: missing string field `kind`".into(),
            ));
        }
        let route: BuiltinRoute = serde_json::from_value(value)
            .map_err(|e| HostError::InvalidArgument(format!("route: {e}")))?;
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
        let e = OutputRoute::from_json(r#"{"kind":"speaker"}"#).unwrap_err().to_string();
        assert!(e.contains("speaker"), "{e}");
        let e = OutputRoute::from_json(r#"{"path":"x"}"#).unwrap_err().to_string();
        assert!(e.contains("kind"), "{e}");
        let e = OutputRoute::from_json(r#"{"kind":"wav"}"#).unwrap_err().to_string();
        assert!(e.contains("path"), "{e}");
        assert!(OutputRoute::from_json("[").is_err());
    }
}
