use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;

/// A module loaded from this path. `GetModuleHandleW` takes no reference, so asking keeps
/// nothing loaded.
pub fn is_mapped(path: &Path) -> bool {
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: a NUL-terminated UTF-16 string that outlives the call.
    !unsafe { GetModuleHandleW(wide.as_ptr()) }.is_null()
}
