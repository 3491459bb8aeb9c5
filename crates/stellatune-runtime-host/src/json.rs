use serde::de::DeserializeOwned;

use crate::error::HostError;

/// Parses `json`, naming the key at fault in the error: serde alone says "invalid type:
/// string, expected u64" without saying where.
pub(crate) fn parse<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, HostError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            HostError::InvalidArgument(format!("{what}: {inner}"))
        } else {
            HostError::InvalidArgument(format!("{what}: `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| HostError::InvalidArgument(format!("{what}: {e}")))?;
    Ok(value)
}
