use std::process::{Child, Command};

/// Nothing to add to the command: the sidecar sets its own parent-death signal.
pub fn prepare(_command: &mut Command) {}

/// Nothing to hold.
pub struct Containment;

impl Containment {
    pub fn apply(_child: &Child) -> std::io::Result<Containment> {
        Ok(Containment)
    }
}
