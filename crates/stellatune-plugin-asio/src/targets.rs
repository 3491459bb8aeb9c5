//! The device lists a sidecar reported, kept for a short while only: a device plugged in
//! (or removed) shows in the next listing after [`TARGETS_TTL`], while a settings page that
//! asks several times in a row does not lease a sidecar for each question.

use std::time::{Duration, Instant};

use stellatune_plugin_sdk::Target;

use crate::sidecar::Signature;

/// How long a sidecar's device list is reused.
pub const TARGETS_TTL: Duration = Duration::from_secs(2);

/// Device lists by signature, each with the instant it was read.
#[derive(Default)]
pub struct TargetCache {
    entries: Vec<(Signature, Instant, Vec<Target>)>,
}

impl TargetCache {
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// The list read for `signature` less than [`TARGETS_TTL`] before `now`.
    pub fn get(&mut self, signature: &Signature, now: Instant) -> Option<Vec<Target>> {
        self.entries
            .retain(|(_, read, _)| now.saturating_duration_since(*read) < TARGETS_TTL);
        self.entries
            .iter()
            .find(|(s, _, _)| s == signature)
            .map(|(_, _, targets)| targets.clone())
    }

    pub fn put(&mut self, signature: Signature, now: Instant, targets: Vec<Target>) {
        self.entries.retain(|(s, _, _)| *s != signature);
        self.entries.push((signature, now, targets));
    }

    pub fn clear(&mut self) {
        self.entries = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(backend: &str) -> Signature {
        Signature {
            executable: "sidecar".into(),
            args: Vec::new(),
            backend: backend.into(),
        }
    }

    #[test]
    fn a_list_is_read_again_once_it_is_older_than_the_ttl() {
        let mut cache = TargetCache::new();
        let t0 = Instant::now();
        let before = vec![Target::new("cpal:a", "A")];
        cache.put(signature("system"), t0, before.clone());
        assert_eq!(
            cache.get(&signature("system"), t0 + TARGETS_TTL / 2),
            Some(before)
        );
        assert_eq!(cache.get(&signature("builtin"), t0), None);
        // A device plugged in later appears once the list is stale.
        assert_eq!(cache.get(&signature("system"), t0 + TARGETS_TTL), None);
        let after = vec![Target::new("cpal:a", "A"), Target::new("cpal:usb", "USB")];
        cache.put(signature("system"), t0 + TARGETS_TTL, after.clone());
        assert_eq!(
            cache.get(&signature("system"), t0 + TARGETS_TTL),
            Some(after)
        );
    }
}
