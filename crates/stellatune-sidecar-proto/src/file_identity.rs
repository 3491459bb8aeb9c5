//! Windows: which file a handle or a path names (volume serial number and file index), so a
//! ring writer removes only the file it created, never a newer ring at the same path.

use std::fs::File;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
};

/// `(volume serial number, file index)` of an open file.
pub fn of_file(file: &File) -> Option<(u32, u64)> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: a live handle owned by `file` and a valid out-pointer.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) };
    (ok != 0).then(|| {
        (
            info.dwVolumeSerialNumber,
            u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
        )
    })
}

/// The identity of what is at `path` now; `None` when nothing (or a file being deleted) is.
pub fn of_path(path: &Path) -> Option<(u32, u64)> {
    of_file(&File::open(path).ok()?)
}
