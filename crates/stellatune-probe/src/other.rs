//! Other platforms: nothing is measured; each answer is "unknown".

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::{Child, Exit};

pub fn threads() -> Option<u64> {
    None
}
pub fn handles() -> Option<u64> {
    None
}
pub fn rss_kib() -> Option<u64> {
    None
}
pub fn children(_pid: u32) -> Vec<Child> {
    Vec::new()
}
pub fn is_running(_pid: u32) -> bool {
    true
}
pub fn executable(_pid: u32) -> Option<std::path::PathBuf> {
    None
}
pub fn kill(_pid: u32) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
pub fn suspend(_pid: u32) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
pub fn mapped_libraries() -> Option<Vec<PathBuf>> {
    None
}
pub fn exit_of(status: ExitStatus) -> Exit {
    status.code().map_or(Exit::Unknown, Exit::Code)
}
