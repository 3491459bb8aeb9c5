//! The sink's config and what it makes of it: the signature of the sidecar to lease.

use std::path::PathBuf;

use serde::Deserialize;
use stellatune_plugin_sdk::{Error, Result};

use crate::sidecar::Signature;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsioConfig {
    /// How much audio the ring holds, in milliseconds.
    pub buffer_ms: u32,
    /// The sidecar executable; default: `stellatune-sidecar-host` in the plugin's directory.
    pub sidecar_path: Option<PathBuf>,
    pub sidecar_args: Vec<String>,
}

impl Default for AsioConfig {
    fn default() -> Self {
        Self {
            buffer_ms: 200,
            sidecar_path: None,
            sidecar_args: Vec::new(),
        }
    }
}

impl AsioConfig {
    pub fn parse(json: &str) -> Result<Self> {
        let config: AsioConfig = serde_json::from_str(json)
            .map_err(|e| Error::invalid_argument(format!("asio config: {e}")))?;
        if !(10..=5000).contains(&config.buffer_ms) {
            return Err(Error::invalid_argument(
                "asio config: buffer_ms must be between 10 and 5000",
            ));
        }
        Ok(config)
    }

    /// The ring's capacity in frames at `sample_rate`.
    pub fn capacity_frames(&self, sample_rate: u32) -> u32 {
        (u64::from(sample_rate) * u64::from(self.buffer_ms) / 1000).max(256) as u32
    }

    pub fn signature(&self, target: &str) -> Result<Signature> {
        let executable = match &self.sidecar_path {
            Some(p) => p.clone(),
            None => stellatune_plugin_sdk::plugin_dir()
                .ok_or_else(|| Error::bad_state("the host gave no plugin directory"))?
                .join(sidecar_file_name()),
        };
        // Headless devices and system devices live in different backends of the sidecar. The
        // wav device is `wav:PATH` (f32) or `wav[FORMAT]:PATH`.
        let headless = target.is_empty()
            || target == "null"
            || target.starts_with("wav:")
            || target.starts_with("wav[");
        let backend = if headless { "builtin" } else { "system" };
        Ok(Signature {
            executable,
            args: self.sidecar_args.clone(),
            backend: backend.into(),
        })
    }
}

fn sidecar_file_name() -> &'static str {
    if cfg!(windows) {
        "stellatune-sidecar-host.exe"
    } else {
        "stellatune-sidecar-host"
    }
}
