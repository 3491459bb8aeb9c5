//! Unix: the child sets its own parent-death signal (`PR_SET_PDEATHSIG` on Linux), which is
//! why it is forked from the long-lived service thread; nothing to add on this side.

use std::process::{Child, Command};

/// Nothing to add to the command.
pub fn prepare(_command: &mut Command) {}

/// Nothing to hold.
pub struct Containment;

impl Containment {
    pub fn apply(_child: &Child) -> std::io::Result<Containment> {
        Ok(Containment)
    }
}
