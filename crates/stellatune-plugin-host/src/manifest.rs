//! `plugin.json`: what a plugin directory says about itself.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PluginError, Result};

pub const MANIFEST_FILE: &str = "plugin.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    pub id: String,
    pub name: String,
    pub version: String,
    /// `"MAJOR.MINOR"` of the plugin ABI the library was built against.
    pub api_version: String,
    /// The shared library's file name inside the plugin directory.
    pub library: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl PluginManifest {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| PluginError::Manifest {
            dir: dir.to_path_buf(),
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::parse(&text).map_err(|message| PluginError::Manifest {
            dir: dir.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let manifest: PluginManifest = serde_json::from_str(text).map_err(|e| e.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
            && !self.id.starts_with('.');
        if !id_ok {
            return Err(format!(
                "id {:?} must be 1-64 characters of a-z, 0-9, '-', '_' or '.', not starting with '.'",
                self.id
            ));
        }
        // The library is a bare file name in the plugin's own directory: never a path.
        let library_ok = !self.library.is_empty()
            && !self.library.contains(['/', '\\'])
            && self.library != "."
            && self.library != ".."
            && !self.library.contains('\0');
        if !library_ok {
            return Err(format!(
                "library {:?} must be a file name inside the plugin directory",
                self.library
            ));
        }
        self.api().map(|_| ())
    }

    /// The ABI version as (major, minor).
    pub fn api(&self) -> std::result::Result<(u32, u32), String> {
        let parse = |s: &str| s.trim().parse::<u32>().ok();
        match self.api_version.split_once('.') {
            Some((major, minor)) => parse(major).zip(parse(minor)),
            None => parse(&self.api_version).map(|m| (m, 0)),
        }
        .ok_or_else(|| format!("api_version {:?} is not MAJOR.MINOR", self.api_version))
    }

    pub fn library_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.library)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"gain","name":"Gain","version":"1.0.0","api_version":"1.0","library":"libgain.so"}"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = PluginManifest::parse(GOOD).unwrap();
        assert_eq!(m.api().unwrap(), (1, 0));
    }

    #[test]
    fn refuses_traversal_bad_ids_and_bad_versions() {
        let with = |field: &str, value: &str| {
            let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            v[field] = serde_json::Value::String(value.into());
            PluginManifest::parse(&v.to_string())
        };
        assert!(
            with("library", "../../evil.so")
                .unwrap_err()
                .contains("library")
        );
        assert!(with("library", "/abs/evil.so").is_err());
        assert!(with("library", "..").is_err());
        assert!(with("id", "../x").unwrap_err().contains("id"));
        assert!(with("id", "").is_err());
        assert!(with("id", "UPPER").is_err());
        assert!(
            with("api_version", "one")
                .unwrap_err()
                .contains("api_version")
        );
        assert!(PluginManifest::parse("{").is_err());
        assert!(
            PluginManifest::parse(r#"{"id":"x"}"#)
                .unwrap_err()
                .contains("missing field")
        );
    }
}
