//! Single-producer single-consumer ring of interleaved `f32` in a memory-mapped file, shared by
//! the player (writer, owner of the file) and the sidecar (reader).
//!
//! # Layout (native endianness, layout version 3)
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | magic `b"STLTRING"` |
//! | 8 | layout version `u32` |
//! | 12 | header size `u32` (192) |
//! | 16 | owner pid `u32` |
//! | 20 | channels `u32` |
//! | 24 | owner process start time `u64` (Linux: field 22 of `/proc/<pid>/stat`; 0 = unknown) |
//! | 32 | sample rate `u32` |
//! | 36 | reserved `u32` |
//! | 40 | capacity in frames `u64` |
//! | 64 | writer cache line: write position `AtomicU64`, epoch `AtomicU64`, drained-at position `AtomicU64` |
//! | 128 | reader cache line: read position `AtomicU64`, acknowledged epoch `AtomicU64`, heartbeat `AtomicU64`, reader pid `AtomicU32`, underruns `AtomicU64`, device-queued frames `AtomicU64`, next read at `AtomicU64` (ns, [`monotonic_ns`]; 0 = not known), frames per read `AtomicU64` |
//! | 192 | `capacity * channels` samples of `f32` |
//!
//! Positions count frames since creation and never wrap in practice (`u64`); a frame's slot is
//! `position % capacity`. Only the writer stores the write position, the epoch and the drained-at
//! position; only the reader stores the read position, the acknowledged epoch, the heartbeat, the
//! reader pid, the underrun count, the device-queued frames and the read schedule. There are no
//! locks in shared memory, so either side survives the other dying at any point.
//!
//! # Underruns and the device's queue
//!
//! The writer marks where its data deliberately ends ([`RingWriter::mark_drained`]: end of a
//! track, a reset): the drained-at position is the write position then. The reader counts an
//! underrun when its device wanted more than the ring held and audio came again later, unless the
//! writer had marked the data drained at or after the point where it ran dry: a gap inside the
//! stream, not its end ([`RingReader::note_period`]). The reader also publishes how many frames it
//! took from the ring that its device has not played yet, so the writer can tell when everything
//! it wrote has been heard ([`RingWriter::device_queued_frames`]).
//!
//! # Read schedule
//!
//! A reader whose device takes periods on a clock publishes when it will take the next one and
//! how many frames a period is ([`RingReader::publish_next_read`]); the writer reads it back as a
//! [`ReadSchedule`] ([`RingWriter::read_schedule`]) and wakes just after a take, when there is
//! room, instead of at a time of its own. Knowing when the takes come, it can also leave the
//! ring to run lower before it refills (fewer wake-ups) without a take ever finding it short.
//!
//! # Reset
//!
//! [`RingWriter::reset`] discards everything queued without touching the reader's index, and
//! without a click: the writer bumps the epoch and stops writing; the reader, on its next
//! [`RingReader::read`]s, first plays a short fade-out of what was next in the queue (up to
//! [`RESET_FADE_MS`], linear down towards silence; fewer frames when less is queued), then
//! moves its read position to the writer's position and stores the epoch as acknowledged; the
//! writer then resumes. While a reset is pending, `write` returns 0.
//!
//! So once the writer sees the reset acknowledged ([`RingWriter::reset_pending`] false),
//! nothing written before it plays any more: the only old audio played after the reset is the
//! fade-out, at most [`RESET_FADE_MS`] of it, each frame quieter than the one before. The first
//! [`RESET_FADE_MS`] written after the reset are faded in by the reader, so whatever the writer
//! puts there (the rest of a fade of its own, or audio at full level) starts from silence instead
//! of with a step. Two resets before the reader looks are one; a reset during a fade-out
//! extends nothing (the writer has not written since) and is acknowledged when the fade ends; a
//! reset during a fade-in fades out from the level reached, and one before anything written
//! after the last reset was read drops that audio unheard.
//!
//! # Truncation (SIGBUS)
//!
//! Touching a mapped page past the end of its file raises SIGBUS. That cannot happen here because
//! only the owner ever sizes the file, and only before its magic is written:
//! [`RingWriter::create`] unlinks any previous file at the path and sizes a brand-new inode
//! (so a stale reader's mapping of an older ring keeps its own, unchanged file), the owner never
//! truncates afterwards and holds the file open for the writer's life, and [`RingReader::open`]
//! refuses any file whose length is not exactly header plus data before mapping it. Removal
//! (unlink) does not shrink a mapped file.
//!
//! # Trust
//!
//! Neither side trusts the other's positions for memory safety: every slot index is taken modulo
//! the capacity fixed at open time, so a buggy or hostile peer can garble audio or stall the ring,
//! never make this process touch memory outside the mapping.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::mem::offset_of;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use stellatune_declick::ResetFades;
use stellatune_process::{process_is_owner, process_start_time};

pub const RING_MAGIC: [u8; 8] = *b"STLTRING";
pub const RING_LAYOUT_VERSION: u32 = 3;
pub const RING_HEADER_SIZE: usize = 192;
/// Most interleaved channels a ring may carry.
pub const MAX_CHANNELS: u16 = 64;
/// Largest data area (`capacity * channels * 4`) a ring may have.
pub const MAX_RING_BYTES: u64 = 1 << 30;
/// How long the reader's fades around a reset are (see the module docs).
pub const RESET_FADE_MS: u32 = 5;

#[repr(C, align(64))]
struct WriterLine {
    write_pos: AtomicU64,
    epoch: AtomicU64,
    drained_at: AtomicU64,
}

#[repr(C, align(64))]
struct ReaderLine {
    read_pos: AtomicU64,
    ack_epoch: AtomicU64,
    heartbeat: AtomicU64,
    reader_pid: AtomicU32,
    underruns: AtomicU64,
    device_queued: AtomicU64,
    next_read_at: AtomicU64,
    read_period_frames: AtomicU64,
}

/// The header's layout. Never referenced as a whole: the immutable fields are written once by the
/// owner and copied out by readers, the atomics are reached through `atomic_u64`/`atomic_u32`.
#[repr(C)]
#[allow(dead_code)]
struct RingHeader {
    magic: [u8; 8],
    layout_version: u32,
    header_size: u32,
    owner_pid: u32,
    channels: u32,
    owner_start_time: u64,
    sample_rate: u32,
    _reserved: u32,
    capacity_frames: u64,
    writer: WriterLine,
    reader: ReaderLine,
}

const _: () = assert!(size_of::<RingHeader>() == RING_HEADER_SIZE);
const _: () = assert!(offset_of!(RingHeader, writer) == 64);
const _: () = assert!(offset_of!(RingHeader, reader) == 128);

const OFF_WRITE_POS: usize = offset_of!(RingHeader, writer) + offset_of!(WriterLine, write_pos);
const OFF_EPOCH: usize = offset_of!(RingHeader, writer) + offset_of!(WriterLine, epoch);
const OFF_READ_POS: usize = offset_of!(RingHeader, reader) + offset_of!(ReaderLine, read_pos);
const OFF_ACK_EPOCH: usize = offset_of!(RingHeader, reader) + offset_of!(ReaderLine, ack_epoch);
const OFF_HEARTBEAT: usize = offset_of!(RingHeader, reader) + offset_of!(ReaderLine, heartbeat);
const OFF_READER_PID: usize = offset_of!(RingHeader, reader) + offset_of!(ReaderLine, reader_pid);
const OFF_DRAINED_AT: usize = offset_of!(RingHeader, writer) + offset_of!(WriterLine, drained_at);
const OFF_UNDERRUNS: usize = offset_of!(RingHeader, reader) + offset_of!(ReaderLine, underruns);
const OFF_DEVICE_QUEUED: usize =
    offset_of!(RingHeader, reader) + offset_of!(ReaderLine, device_queued);
const OFF_NEXT_READ_AT: usize =
    offset_of!(RingHeader, reader) + offset_of!(ReaderLine, next_read_at);
const OFF_READ_PERIOD: usize =
    offset_of!(RingHeader, reader) + offset_of!(ReaderLine, read_period_frames);

/// How stale a published next read may be, in periods, before the writer stops trusting the
/// schedule (the reader stopped, paused or hangs).
const SCHEDULE_STALE_PERIODS: u64 = 2;

/// When the reader takes its next period, as the writer sees it ([`RingWriter::read_schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSchedule {
    /// From now until the reader's next take; zero while a take is overdue (a late reader).
    pub next_read_in: Duration,
    /// Between takes.
    pub period: Duration,
}

/// Format of a ring, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSpec {
    pub sample_rate: u32,
    pub channels: u16,
    pub capacity_frames: u32,
}

impl RingSpec {
    fn validate(&self) -> Result<(), RingError> {
        if self.sample_rate == 0 {
            return Err(RingError::InvalidSpec(
                "sample rate must be positive".into(),
            ));
        }
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(RingError::InvalidSpec(format!(
                "channels must be in 1..={MAX_CHANNELS}, got {}",
                self.channels
            )));
        }
        if self.capacity_frames == 0 {
            return Err(RingError::InvalidSpec(
                "capacity must be at least one frame".into(),
            ));
        }
        if self.data_bytes() > MAX_RING_BYTES {
            return Err(RingError::InvalidSpec(format!(
                "data area of {} bytes exceeds {MAX_RING_BYTES}",
                self.data_bytes()
            )));
        }
        Ok(())
    }

    fn data_bytes(&self) -> u64 {
        u64::from(self.capacity_frames) * u64::from(self.channels) * 4
    }

    /// Header plus data: the exact length of the ring file.
    pub fn file_len(&self) -> u64 {
        RING_HEADER_SIZE as u64 + self.data_bytes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("ring i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("invalid ring spec: {0}")]
    InvalidSpec(String),
    #[error("not a usable ring file: {0}")]
    BadHeader(String),
    #[error("ring file is {actual} bytes, its header needs exactly {expected}")]
    BadLength { expected: u64, actual: u64 },
}

/// The immutable part of a header, copied out of the file.
#[derive(Debug, Clone, Copy)]
struct HeaderFields {
    spec: RingSpec,
    owner_pid: u32,
    owner_start_time: u64,
}

impl HeaderFields {
    fn parse(h: &[u8; RING_HEADER_SIZE]) -> Result<Self, RingError> {
        let u32_at = |off: usize| u32::from_ne_bytes(h[off..off + 4].try_into().expect("4 bytes"));
        let u64_at = |off: usize| u64::from_ne_bytes(h[off..off + 8].try_into().expect("8 bytes"));
        if h[..8] != RING_MAGIC {
            return Err(RingError::BadHeader("bad magic".into()));
        }
        let version = u32_at(offset_of!(RingHeader, layout_version));
        if version != RING_LAYOUT_VERSION {
            return Err(RingError::BadHeader(format!(
                "layout version {version}, expected {RING_LAYOUT_VERSION}"
            )));
        }
        let header_size = u32_at(offset_of!(RingHeader, header_size));
        if header_size as usize != RING_HEADER_SIZE {
            return Err(RingError::BadHeader(format!(
                "header size {header_size}, expected {RING_HEADER_SIZE}"
            )));
        }
        let channels = u32_at(offset_of!(RingHeader, channels));
        let capacity = u64_at(offset_of!(RingHeader, capacity_frames));
        let spec = RingSpec {
            sample_rate: u32_at(offset_of!(RingHeader, sample_rate)),
            channels: u16::try_from(channels)
                .map_err(|_| RingError::BadHeader(format!("{channels} channels")))?,
            capacity_frames: u32::try_from(capacity)
                .map_err(|_| RingError::BadHeader(format!("capacity of {capacity} frames")))?,
        };
        spec.validate()
            .map_err(|e| RingError::BadHeader(e.to_string()))?;
        Ok(Self {
            spec,
            owner_pid: u32_at(offset_of!(RingHeader, owner_pid)),
            owner_start_time: u64_at(offset_of!(RingHeader, owner_start_time)),
        })
    }

    fn read_from(file: &mut File) -> Result<Self, RingError> {
        let mut h = [0u8; RING_HEADER_SIZE];
        file.read_exact(&mut h).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                RingError::BadHeader("file shorter than the header".into())
            }
            _ => RingError::Io(e),
        })?;
        Self::parse(&h)
    }
}

/// A mapping of a whole, validated ring file.
struct Shared {
    map: MmapRaw,
    spec: RingSpec,
}

impl Shared {
    /// Maps `file`, whose length the caller has checked to be exactly `spec.file_len()`.
    fn map(file: &File, spec: RingSpec) -> Result<Self, RingError> {
        let len = usize::try_from(spec.file_len())
            .map_err(|_| RingError::InvalidSpec("ring too large for this platform".into()))?;
        let map = MmapOptions::new().len(len).map_raw(file)?;
        if map.len() != len {
            return Err(RingError::BadLength {
                expected: len as u64,
                actual: map.len() as u64,
            });
        }
        Ok(Self { map, spec })
    }

    fn atomic_u64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= RING_HEADER_SIZE);
        // SAFETY: `off` is one of the OFF_* constants: inside the header, which lies inside the
        // mapping (its length was validated), and 8-aligned from the page-aligned base. The memory
        // lives as long as `self.map`, which outlives the returned borrow. Cross-process access to
        // it only ever goes through atomics (lock-free AtomicU64 on every supported target), and
        // every bit pattern is a valid u64.
        unsafe { &*self.map.as_ptr().add(off).cast::<AtomicU64>() }
    }

    fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= RING_HEADER_SIZE);
        // SAFETY: as in `atomic_u64`, for a 4-aligned u32 inside the header.
        unsafe { &*self.map.as_ptr().add(off).cast::<AtomicU32>() }
    }

    fn data(&self) -> *mut f32 {
        // SAFETY: the data area starts right after the header, inside the mapping; 192 is a
        // multiple of 4, so the pointer is aligned for f32.
        unsafe { self.map.as_mut_ptr().add(RING_HEADER_SIZE).cast::<f32>() }
    }

    /// Splits `frames` frames starting at position `pos` into the (start slot, count) of the part
    /// before the wrap and the count after it.
    fn split(&self, pos: u64, frames: usize) -> (usize, usize, usize) {
        let cap = self.spec.capacity_frames as usize;
        debug_assert!(frames <= cap);
        let start = (pos % cap as u64) as usize;
        let first = frames.min(cap - start);
        (start, first, frames - first)
    }

    /// Copies whole frames from `src` into the slots from `pos` on. `src.len()` must be a multiple
    /// of the channel count and at most the capacity.
    fn copy_in(&self, pos: u64, src: &[f32]) {
        let ch = usize::from(self.spec.channels);
        let (start, first, second) = self.split(pos, src.len() / ch);
        let data = self.data();
        // SAFETY: `start + first <= capacity` and `second <= start`, so both destination ranges
        // lie inside the data area of `capacity * ch` samples, which is inside the mapping. `src`
        // is a distinct Rust slice, so the ranges do not overlap it. The writer only fills slots
        // the reader has released (read position loaded with Acquire), so a well-behaved reader
        // never reads them concurrently; a misbehaving one can at worst see garbled f32 values.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), data.add(start * ch), first * ch);
            ptr::copy_nonoverlapping(src.as_ptr().add(first * ch), data, second * ch);
        }
    }

    /// The slots of `frames` whole frames from position `pos` on, where they lie: the part
    /// before the ring's end and the part after the wrap (empty when there is none). Only the
    /// reader calls it, for frames the writer has published and it has not released yet.
    fn slots_mut(&mut self, pos: u64, frames: usize) -> (&mut [f32], &mut [f32]) {
        let ch = usize::from(self.spec.channels);
        let (start, first, second) = self.split(pos, frames);
        let data = self.data();
        // SAFETY: bounds as in `copy_in`: `[start, start + first)` and `[0, second)` are
        // disjoint slot ranges inside the data area, so the two slices do not overlap, and they
        // borrow `self` mutably, so no other slice of this mapping exists in this process
        // meanwhile. Across processes the protocol gives these slots to the reader until it
        // publishes a read position past them (the writer loaded that position with Acquire
        // before it fills a slot), so a well-behaved writer does not touch them; a misbehaving
        // one can at worst garble the f32 values, every bit pattern of which is valid.
        unsafe {
            (
                std::slice::from_raw_parts_mut(data.add(start * ch), first * ch),
                std::slice::from_raw_parts_mut(data, second * ch),
            )
        }
    }

    fn queued(&self, write_pos: u64, read_pos: u64) -> Option<u64> {
        let q = write_pos.wrapping_sub(read_pos);
        (q <= u64::from(self.spec.capacity_frames)).then_some(q)
    }
}

/// The owner's side of a ring: creates the file, writes audio, removes the file on drop.
pub struct RingWriter {
    shared: Shared,
    // Held open for the writer's life; the owner never truncates it (see the module docs).
    _file: File,
    path: PathBuf,
    write_pos: u64,
    epoch: u64,
    reset_pending: bool,
    #[cfg(all(unix, not(target_os = "linux")))]
    identity: (u64, u64),
}

impl RingWriter {
    /// Creates the ring file at `path` (replacing any file there by a new one), sizes it for
    /// `capacity_frames` frames of `channels` interleaved `f32`, and writes the header with this
    /// process as owner.
    pub fn create(
        path: impl AsRef<Path>,
        sample_rate: u32,
        channels: u16,
        capacity_frames: u32,
    ) -> Result<RingWriter, RingError> {
        let path = path.as_ref();
        let spec = RingSpec {
            sample_rate,
            channels,
            capacity_frames,
        };
        spec.validate()?;
        // A new inode rather than truncating the old one: a reader still mapping a previous ring
        // at this path keeps a file of unchanged length (no SIGBUS).
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        #[cfg(target_os = "linux")]
        {
            Self::create_sealed(path, spec)
        }
        #[cfg(windows)]
        {
            Self::create_delete_on_close(path, spec)
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            let mut opts = OpenOptions::new();
            opts.read(true).write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let file = opts.open(path)?;
            let result = Self::init(file, path, spec);
            if result.is_err() {
                let _ = fs::remove_file(path);
            }
            result
        }
    }

    /// Linux: the ring's memory is a sealed `memfd` whose size can never change, and `path` is
    /// a symbolic link to it (`/proc/<pid>/fd/<n>`) through which the sidecar opens it. Anyone
    /// truncating "the ring file" then gets `EPERM` instead of leaving a mapping past the end of
    /// its file, which would kill the writer (this process) with SIGBUS on its next store.
    #[cfg(target_os = "linux")]
    fn create_sealed(path: &Path, spec: RingSpec) -> Result<RingWriter, RingError> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: a NUL-terminated name and valid flags; the result is checked below.
        let fd = unsafe {
            libc::memfd_create(
                c"stellatune-ring".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(spec.file_len())?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: `fcntl` on a descriptor we own, with an integer argument.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error().into());
        }
        let target = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd());
        std::os::unix::fs::symlink(&target, path)?;
        let result = Self::init(file, path, spec);
        if result.is_err() {
            let _ = fs::remove_file(path);
        }
        result
    }

    /// Windows: the file is created with `FILE_FLAG_DELETE_ON_CLOSE`, so the system deletes it
    /// when the last handle to it closes: the writer's and the sidecar's, however either
    /// process ends (a crash or a kill included). No ring outlives both of its users, and no
    /// code ever removes a ring by its path. Every other opener must share delete access,
    /// which std's `OpenOptions` does by default. `FILE_ATTRIBUTE_TEMPORARY` asks the cache
    /// manager to keep the pages in memory rather than write them to disk.
    #[cfg(windows)]
    fn create_delete_on_close(path: &Path, spec: RingSpec) -> Result<RingWriter, RingError> {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::{
            DELETE, FILE_ATTRIBUTE_TEMPORARY, FILE_FLAG_DELETE_ON_CLOSE, FILE_GENERIC_READ,
            FILE_GENERIC_WRITE, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
        };
        // `write(true)` as well: std refuses to create a file without it, whatever the access
        // mode says.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .access_mode(FILE_GENERIC_READ | FILE_GENERIC_WRITE | DELETE)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
            .custom_flags(FILE_FLAG_DELETE_ON_CLOSE)
            .attributes(FILE_ATTRIBUTE_TEMPORARY)
            .create_new(true)
            .open(path)?;
        // On failure `file` drops with the error, and the system deletes it.
        Self::init(file, path, spec)
    }

    fn init(file: File, path: &Path, spec: RingSpec) -> Result<RingWriter, RingError> {
        if file.metadata()?.len() != spec.file_len() {
            file.set_len(spec.file_len())?;
        }
        let shared = Shared::map(&file, spec)?;
        let pid = std::process::id();
        let base = shared.map.as_mut_ptr();
        // SAFETY: every offset is inside the 192-byte header, which is inside the fresh mapping,
        // and aligned for its type (page-aligned base, `repr(C)` offsets). No reader can use the
        // file yet: the magic, written last, is still zero, so `RingReader::open` refuses it. The
        // atomics are zero from `set_len`, which is their initial value.
        unsafe {
            let put_u32 = |off: usize, v: u32| ptr::write(base.add(off).cast::<u32>(), v);
            let put_u64 = |off: usize, v: u64| ptr::write(base.add(off).cast::<u64>(), v);
            put_u32(offset_of!(RingHeader, layout_version), RING_LAYOUT_VERSION);
            put_u32(offset_of!(RingHeader, header_size), RING_HEADER_SIZE as u32);
            put_u32(offset_of!(RingHeader, owner_pid), pid);
            put_u32(offset_of!(RingHeader, channels), u32::from(spec.channels));
            put_u64(
                offset_of!(RingHeader, owner_start_time),
                process_start_time(pid).unwrap_or(0),
            );
            put_u32(offset_of!(RingHeader, sample_rate), spec.sample_rate);
            put_u64(
                offset_of!(RingHeader, capacity_frames),
                u64::from(spec.capacity_frames),
            );
            fence(Ordering::Release);
            ptr::copy_nonoverlapping(RING_MAGIC.as_ptr(), base, RING_MAGIC.len());
        }
        // What sits at `path`, so that Drop only removes its own file.
        #[cfg(all(unix, not(target_os = "linux")))]
        let identity = {
            use std::os::unix::fs::MetadataExt;
            let m = fs::symlink_metadata(path)?;
            (m.dev(), m.ino())
        };
        Ok(RingWriter {
            shared,
            _file: file,
            path: path.to_path_buf(),
            write_pos: 0,
            epoch: 0,
            reset_pending: false,
            #[cfg(all(unix, not(target_os = "linux")))]
            identity,
        })
    }

    /// Writes as many whole frames of `samples` (interleaved) as fit; never blocks. Returns the
    /// number of frames written: 0 when the ring is full or a reset is pending. A trailing partial
    /// frame is ignored.
    pub fn write(&mut self, samples: &[f32]) -> usize {
        if !self.reset_acknowledged() {
            return 0;
        }
        let read_pos = self.shared.atomic_u64(OFF_READ_POS).load(Ordering::Acquire);
        // A read position ahead of us or further behind than the capacity is a broken reader:
        // write nothing rather than overwrite what it may still be reading.
        let Some(queued) = self.shared.queued(self.write_pos, read_pos) else {
            return 0;
        };
        let free = (u64::from(self.shared.spec.capacity_frames) - queued) as usize;
        let ch = usize::from(self.shared.spec.channels);
        let frames = (samples.len() / ch).min(free);
        if frames == 0 {
            return 0;
        }
        self.shared.copy_in(self.write_pos, &samples[..frames * ch]);
        self.write_pos = self.write_pos.wrapping_add(frames as u64);
        self.shared
            .atomic_u64(OFF_WRITE_POS)
            .store(self.write_pos, Ordering::Release);
        frames
    }

    /// Frames written and not yet read; 0 while a reset is pending (they will be discarded).
    pub fn queued_frames(&self) -> usize {
        if self.reset_pending
            && self
                .shared
                .atomic_u64(OFF_ACK_EPOCH)
                .load(Ordering::Acquire)
                != self.epoch
        {
            return 0;
        }
        let read_pos = self.shared.atomic_u64(OFF_READ_POS).load(Ordering::Acquire);
        let q = self.shared.queued(self.write_pos, read_pos);
        q.unwrap_or(u64::from(self.shared.spec.capacity_frames)) as usize
    }

    /// Frames `write` would accept now.
    pub fn free_frames(&mut self) -> usize {
        if !self.reset_acknowledged() {
            return 0;
        }
        self.shared.spec.capacity_frames as usize - self.queued_frames()
    }

    /// Discards everything queued: bumps the epoch and stops writing until the reader has played
    /// its fade-out of the queue's head, moved its read position to the current write position and
    /// acknowledged the epoch (see the module docs). Never stores the reader's index.
    pub fn reset(&mut self) {
        // Nothing queued is wanted any more: the ring running dry from here is no underrun.
        // Stored before the epoch, whose release publishes it to the reader.
        self.mark_drained();
        self.epoch = self.epoch.wrapping_add(1);
        self.shared
            .atomic_u64(OFF_EPOCH)
            .store(self.epoch, Ordering::Release);
        self.reset_pending = true;
    }

    /// Whether a reset is still waiting for the reader's acknowledgement.
    pub fn reset_pending(&mut self) -> bool {
        !self.reset_acknowledged()
    }

    fn reset_acknowledged(&mut self) -> bool {
        if self.reset_pending
            && self
                .shared
                .atomic_u64(OFF_ACK_EPOCH)
                .load(Ordering::Acquire)
                == self.epoch
        {
            self.reset_pending = false;
        }
        !self.reset_pending
    }

    /// Marks the data written so far as the end of what is to be played for now (a track ended,
    /// the stream is about to close): the reader running dry after it is no underrun. Writing
    /// more later makes it a stream again.
    pub fn mark_drained(&mut self) {
        self.shared
            .atomic_u64(OFF_DRAINED_AT)
            .store(self.write_pos, Ordering::Release);
    }

    /// Underruns the reader counted in this ring (see the module docs).
    pub fn reader_underruns(&self) -> u64 {
        self.shared
            .atomic_u64(OFF_UNDERRUNS)
            .load(Ordering::Relaxed)
    }

    /// Frames the reader took from the ring that its device has not played yet.
    pub fn device_queued_frames(&self) -> usize {
        let frames = self
            .shared
            .atomic_u64(OFF_DEVICE_QUEUED)
            .load(Ordering::Acquire);
        // A hostile reader's figure is capped: it cannot make the writer wait forever on more
        // than a ring's worth.
        frames.min(u64::from(self.shared.spec.capacity_frames)) as usize
    }

    /// A counter the reader bumps on every `read`; unchanged over time means no reader is polling.
    pub fn reader_heartbeat(&self) -> u64 {
        self.shared
            .atomic_u64(OFF_HEARTBEAT)
            .load(Ordering::Relaxed)
    }

    /// When the reader will take its next period, if it publishes a schedule and keeps to it
    /// (see the module docs). `None` when it never published one, cleared it, or is more than
    /// two periods behind it.
    pub fn read_schedule(&self) -> Option<ReadSchedule> {
        let next_at = self
            .shared
            .atomic_u64(OFF_NEXT_READ_AT)
            .load(Ordering::Acquire);
        let frames = self
            .shared
            .atomic_u64(OFF_READ_PERIOD)
            .load(Ordering::Acquire)
            // A hostile reader's figure is capped at a ring's worth.
            .min(u64::from(self.shared.spec.capacity_frames));
        let rate = u64::from(self.shared.spec.sample_rate);
        if next_at == 0 || frames == 0 || rate == 0 {
            return None;
        }
        let period_ns = frames * 1_000_000_000 / rate;
        let now = crate::clock::monotonic_ns();
        let next_in = if next_at >= now {
            // Never further than a period away: a take promised later than that is not one
            // this writer can plan on.
            (next_at - now).min(period_ns)
        } else if now - next_at > SCHEDULE_STALE_PERIODS * period_ns {
            return None;
        } else {
            // The reader publishes the next take only once it has made this one: a time in
            // the past is a take still to come (the reader is late, or busy with it right
            // now). Counting it as due now errs on the side of one take too many, so a writer
            // never waits on the ring for longer than it lasts.
            0
        };
        Some(ReadSchedule {
            next_read_in: Duration::from_nanos(next_in),
            period: Duration::from_nanos(period_ns),
        })
    }

    /// The pid of the last reader that opened the ring (0 = none yet).
    pub fn reader_pid(&self) -> u32 {
        self.shared
            .atomic_u32(OFF_READER_PID)
            .load(Ordering::Relaxed)
    }

    pub fn spec(&self) -> RingSpec {
        self.shared.spec
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RingWriter {
    /// Removes the file (unless another ring has since replaced it at the same path); the mapping
    /// is unmapped when the fields drop. Readers keep their own mapping of the unlinked file.
    /// On Windows the system deletes the file when the last handle closes (see
    /// `create_delete_on_close`), so nothing is removed by path there.
    fn drop(&mut self) {
        #[cfg(unix)]
        self.remove_own_file();
    }
}

impl RingWriter {
    #[cfg(unix)]
    fn remove_own_file(&self) {
        // Linux: the path is a link to this writer's own descriptor, which is still open, so
        // no other live ring can have the same target.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let own = format!("/proc/{}/fd/{}", std::process::id(), self._file.as_raw_fd());
            if fs::read_link(&self.path).ok().as_deref() != Some(Path::new(&own)) {
                return;
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            use std::os::unix::fs::MetadataExt;
            match fs::symlink_metadata(&self.path) {
                Ok(m) if (m.dev(), m.ino()) == self.identity => {}
                _ => return,
            }
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// The sidecar's side of a ring.
pub struct RingReader {
    shared: Shared,
    path: PathBuf,
    read_pos: u64,
    acked_epoch: u64,
    heartbeat: u64,
    owner_pid: u32,
    owner_start_time: u64,
    /// Where the ring ran dry, while it stays dry (see [`RingReader::note_period`]).
    starved_at: Option<u64>,
    /// The fades around a reset ([`RESET_FADE_MS`] at the ring's rate by default).
    fades: ResetFades,
    /// Whether the last period got all it wanted: only a device that was being fed can run dry.
    fed: bool,
    underruns: u64,
}

impl RingReader {
    /// Opens and maps an existing ring after validating its header (magic, layout version,
    /// header size, format limits) and that the file is exactly header plus data long. A
    /// truncated or oversized file is refused before it is mapped.
    pub fn open(path: impl AsRef<Path>) -> Result<RingReader, RingError> {
        let path = path.as_ref();
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let fields = HeaderFields::read_from(&mut file)?;
        let expected = fields.spec.file_len();
        let actual = file.metadata()?.len();
        if actual != expected {
            return Err(RingError::BadLength { expected, actual });
        }
        let shared = Shared::map(&file, fields.spec)?;
        shared
            .atomic_u32(OFF_READER_PID)
            .store(std::process::id(), Ordering::Relaxed);
        let read_pos = shared.atomic_u64(OFF_READ_POS).load(Ordering::Acquire);
        let acked_epoch = shared.atomic_u64(OFF_ACK_EPOCH).load(Ordering::Acquire);
        let heartbeat = shared.atomic_u64(OFF_HEARTBEAT).load(Ordering::Relaxed);
        let underruns = shared.atomic_u64(OFF_UNDERRUNS).load(Ordering::Relaxed);
        let fades = ResetFades::new(ResetFades::frames_for(
            fields.spec.sample_rate,
            RESET_FADE_MS,
        ));
        Ok(RingReader {
            starved_at: None,
            fades,
            fed: false,
            underruns,
            shared,
            path: path.to_path_buf(),
            read_pos,
            acked_epoch,
            heartbeat,
            owner_pid: fields.owner_pid,
            owner_start_time: fields.owner_start_time,
        })
    }

    /// Reads up to `out.len() / channels` whole frames; never blocks. Returns the number of
    /// frames read (0 when empty). A pending reset is handled first: what is queued plays as a
    /// short fade-out (this call and the next ones return only faded frames), then the rest is
    /// discarded and the epoch acknowledged; the first frames written after it are faded in
    /// (see the module docs). Real-time safe: no lock, no allocation, no system call.
    pub fn read(&mut self, out: &mut [f32]) -> usize {
        let ch = usize::from(self.shared.spec.channels);
        let mut filled = 0;
        self.read_in_place(out.len() / ch, |part| {
            out[filled..filled + part.len()].copy_from_slice(part);
            filled += part.len();
        })
    }

    /// [`RingReader::read`] without the copy: lends up to `max_frames` whole frames to
    /// `consume` where they lie in the ring, in order (two calls when they wrap around its
    /// end, none when nothing is queued), and releases them once it returns. A device that
    /// converts samples into its own buffer reads them once instead of twice. The fades of a
    /// reset are applied in place first. Returns the number of frames lent.
    pub fn read_in_place(&mut self, max_frames: usize, mut consume: impl FnMut(&[f32])) -> usize {
        self.heartbeat = self.heartbeat.wrapping_add(1);
        self.shared
            .atomic_u64(OFF_HEARTBEAT)
            .store(self.heartbeat, Ordering::Relaxed);
        let ch = usize::from(self.shared.spec.channels);
        if !self.fades.resetting() {
            let epoch = self.shared.atomic_u64(OFF_EPOCH).load(Ordering::Acquire);
            if epoch != self.acked_epoch {
                // The writer stopped writing before publishing the epoch, so what is queued
                // now stays put until we acknowledge.
                let write_pos = self
                    .shared
                    .atomic_u64(OFF_WRITE_POS)
                    .load(Ordering::Acquire);
                let queued = self.shared.queued(write_pos, self.read_pos).unwrap_or(0);
                self.fades
                    .begin_reset(usize::try_from(queued).unwrap_or(usize::MAX));
            }
        }
        if let Some(left) = self.fades.fade_out_left() {
            let frames = max_frames.min(left);
            let (head, tail) = self.shared.slots_mut(self.read_pos, frames);
            self.fades.apply_fade_out(head, ch);
            let faded = self.fades.apply_fade_out(tail, ch);
            lend(head, tail, &mut consume);
            if frames > 0 {
                self.publish_read_pos(self.read_pos.wrapping_add(frames as u64));
            }
            if faded {
                self.finish_reset();
            }
            return frames;
        }
        if max_frames == 0 {
            return 0;
        }
        let write_pos = self
            .shared
            .atomic_u64(OFF_WRITE_POS)
            .load(Ordering::Acquire);
        let Some(avail) = self.shared.queued(write_pos, self.read_pos) else {
            // Impossible for a well-behaved writer; skip to its position.
            self.publish_read_pos(write_pos);
            return 0;
        };
        let frames = max_frames.min(avail as usize);
        if frames == 0 {
            return 0;
        }
        let (head, tail) = self.shared.slots_mut(self.read_pos, frames);
        self.fades.apply_fade_in(head, ch);
        self.fades.apply_fade_in(tail, ch);
        lend(head, tail, &mut consume);
        // Only now may the writer fill these slots again.
        self.publish_read_pos(self.read_pos.wrapping_add(frames as u64));
        frames
    }

    /// Ends a reset once its fade-out is played: everything still queued is discarded and the
    /// latest epoch acknowledged (the writer has not written since the first unacknowledged
    /// one, so its position is where the old audio ends).
    fn finish_reset(&mut self) {
        let epoch = self.shared.atomic_u64(OFF_EPOCH).load(Ordering::Acquire);
        let write_pos = self
            .shared
            .atomic_u64(OFF_WRITE_POS)
            .load(Ordering::Acquire);
        self.publish_read_pos(write_pos);
        self.shared
            .atomic_u64(OFF_ACK_EPOCH)
            .store(epoch, Ordering::Release);
        self.acked_epoch = epoch;
        self.fades.finish_reset();
    }

    /// Sets the length of the fades around a reset, in frames (at least 1); the default is
    /// [`RESET_FADE_MS`] at the ring's rate. Takes effect from the next reset.
    pub fn set_reset_fade_frames(&mut self, frames: usize) {
        self.fades.set_fade_frames(frames);
    }

    /// How many frames a reset's fade-out takes when that much is queued. A device keeps at
    /// least this much in a ring its writer filled (see the sidecar's paced period), so that a
    /// reset can fade out what it drops instead of cutting the music off.
    pub fn reset_fade_frames(&self) -> usize {
        self.fades.fade_frames()
    }

    /// Records one device period that wanted `wanted` frames and got `got` from the ring, and
    /// tells whether it completed an underrun: audio came again after the ring had run dry in
    /// the middle of the stream (a full period before, and the writer had not marked its data
    /// drained there). A start (the first periods finding the ring filling) is no underrun.
    pub fn note_period(&mut self, wanted: usize, got: usize) -> bool {
        let mut underrun = false;
        let resumed_after = if got > 0 {
            self.starved_at.take()
        } else {
            None
        };
        if let Some(dry_at) = resumed_after {
            let drained_at = self
                .shared
                .atomic_u64(OFF_DRAINED_AT)
                .load(Ordering::Acquire);
            if drained_at < dry_at {
                underrun = true;
                self.underruns += 1;
                self.shared
                    .atomic_u64(OFF_UNDERRUNS)
                    .store(self.underruns, Ordering::Relaxed);
            }
        }
        if got < wanted && self.fed && self.starved_at.is_none() {
            self.starved_at = Some(self.read_pos);
        }
        self.fed = got >= wanted;
        underrun
    }

    /// Forgets a dry spell: the stream stopped, so what follows is a new start, not a gap.
    pub fn forget_dry_spell(&mut self) {
        self.starved_at = None;
        self.fed = false;
    }

    /// Underruns counted in this ring so far.
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    /// Publishes how many frames taken from the ring the device has not played yet.
    pub fn set_device_queued(&self, frames: usize) {
        self.shared
            .atomic_u64(OFF_DEVICE_QUEUED)
            .store(frames as u64, Ordering::Release);
    }

    /// Publishes when the device takes its next period of `frames` (see the module docs).
    pub fn publish_next_read(&self, at: Instant, frames: usize) {
        let (now, now_ns) = (Instant::now(), crate::clock::monotonic_ns());
        let at_ns = if at >= now {
            now_ns.saturating_add((at - now).as_nanos() as u64)
        } else {
            now_ns.saturating_sub((now - at).as_nanos() as u64)
        }
        .max(1);
        self.shared
            .atomic_u64(OFF_READ_PERIOD)
            .store(frames as u64, Ordering::Release);
        self.shared
            .atomic_u64(OFF_NEXT_READ_AT)
            .store(at_ns, Ordering::Release);
    }

    /// Withdraws the schedule: the device stopped taking periods.
    pub fn clear_schedule(&self) {
        self.shared
            .atomic_u64(OFF_NEXT_READ_AT)
            .store(0, Ordering::Release);
    }

    fn publish_read_pos(&mut self, pos: u64) {
        self.read_pos = pos;
        self.shared
            .atomic_u64(OFF_READ_POS)
            .store(pos, Ordering::Release);
    }

    /// Frames available to `read` now: while a reset is pending, only what is left of its
    /// fade-out.
    pub fn queued_frames(&self) -> usize {
        if let Some(left) = self.fades.fade_out_left() {
            return left;
        }
        if self.shared.atomic_u64(OFF_EPOCH).load(Ordering::Acquire) != self.acked_epoch {
            let write_pos = self
                .shared
                .atomic_u64(OFF_WRITE_POS)
                .load(Ordering::Acquire);
            let queued = self.shared.queued(write_pos, self.read_pos).unwrap_or(0);
            return self
                .fades
                .fade_out_for(usize::try_from(queued).unwrap_or(usize::MAX));
        }
        let write_pos = self
            .shared
            .atomic_u64(OFF_WRITE_POS)
            .load(Ordering::Acquire);
        self.shared.queued(write_pos, self.read_pos).unwrap_or(0) as usize
    }

    pub fn spec(&self) -> RingSpec {
        self.shared.spec
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn owner_pid(&self) -> u32 {
        self.owner_pid
    }

    /// Whether the process that created the ring is still running (pid alive, same start time).
    pub fn owner_alive(&self) -> bool {
        process_is_owner(self.owner_pid, self.owner_start_time)
    }
}

/// Hands the one or two parts of a read to its consumer, skipping an empty one.
fn lend(head: &[f32], tail: &[f32], consume: &mut impl FnMut(&[f32])) {
    for part in [head, tail] {
        if !part.is_empty() {
            consume(part);
        }
    }
}

/// `ring-<owner pid>-<stream id>.shm`
pub fn ring_file_name(owner_pid: u32, stream_id: u64) -> String {
    format!("ring-{owner_pid}-{stream_id}.shm")
}

/// A ring file name this process never used before and no other process uses:
/// `ring-<pid>-<process start time>-<nonce>-<n>.shm`.
///
/// A name must never be re-used while a ring of that name may still be open somewhere: on
/// Windows (before 10 1809, on FAT, under Wine) a deleted file keeps its name until its last
/// handle closes, so re-creating it fails while an old sidecar still maps it. A plugin's
/// counters restart with every generation (each loads its own copy of this crate), so the
/// nonce, drawn once per copy from the clock and the address this copy was loaded at, tells
/// generations apart; `n` counts within one.
pub fn unique_ring_file_name() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}{n}.shm", this_copy_ring_prefix())
}

/// How every name [`unique_ring_file_name`] gives in this copy of the crate begins:
/// `ring-<pid>-<process start time>-<nonce>-`. A plugin counts the rings of its own
/// generation by it, without counting those of an older generation still draining.
pub fn this_copy_ring_prefix() -> &'static str {
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let nonce = nanos ^ (std::ptr::addr_of!(PREFIX) as u64).rotate_left(32);
        let pid = std::process::id();
        let start = process_start_time(pid).unwrap_or(0);
        format!("ring-{pid}-{start}-{nonce:016x}-")
    })
}

/// How many ring files named with [`this_copy_ring_prefix`] exist in `dir` now.
pub fn this_copy_ring_files(dir: impl AsRef<Path>) -> usize {
    let prefix = this_copy_ring_prefix();
    fs::read_dir(dir.as_ref()).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .count()
    })
}

/// The owner pid a ring file name records (either form above).
fn parse_ring_file_name(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("ring-")?.strip_suffix(".shm")?;
    let mut fields = rest.split('-');
    let pid = fields.next()?.parse().ok()?;
    // At least a stream id or the unique name's fields follow.
    fields.next()?;
    Some(pid)
}

/// Where rings go by default: `/dev/shm` on Linux (RAM-backed), else the temporary directory.
pub fn default_ring_dir() -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            return shm.to_path_buf();
        }
    }
    std::env::temp_dir()
}

/// Removes the ring files (`ring-<pid>-<id>.shm`) in `dir` whose owner is gone: its pid is dead,
/// or alive with a different start time (the pid was reused). The owner is read from the header;
/// a file whose header is not (yet) valid is judged by the pid in its name. A ring whose owner is
/// alive is never removed. Returns how many files were removed.
pub fn reap_stale_rings(dir: impl AsRef<Path>) -> usize {
    let Ok(entries) = fs::read_dir(dir.as_ref()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name_pid) = name.to_str().and_then(parse_ring_file_name) else {
            continue;
        };
        // On Linux a ring is a link to its owner's memfd; a dead owner leaves it dangling.
        if !entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink())
        {
            continue;
        }
        let path = entry.path();
        let (pid, start_time) = match File::open(&path)
            .map_err(RingError::from)
            .and_then(|mut f| HeaderFields::read_from(&mut f))
        {
            Ok(h) => (h.owner_pid, h.owner_start_time),
            Err(_) => (name_pid, 0),
        };
        if !process_is_owner(pid, start_time) && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn the_writer_reads_back_the_readers_schedule_and_counts_an_overdue_take_as_due_now() {
        let dir = tmp();
        let path = dir.path().join(ring_file_name(std::process::id(), 40));
        let writer = RingWriter::create(&path, 48_000, 2, 9600).unwrap();
        let reader = RingReader::open(&path).unwrap();
        assert_eq!(writer.read_schedule(), None, "nothing published yet");

        // 4800 frames at 48 kHz: a 100 ms period, the next take in 30 ms.
        reader.publish_next_read(Instant::now() + Duration::from_millis(30), 4800);
        let s = writer.read_schedule().expect("published");
        assert_eq!(s.period, Duration::from_millis(100));
        assert!(
            s.next_read_in <= Duration::from_millis(30)
                && s.next_read_in > Duration::from_millis(20),
            "{s:?}"
        );

        // A take due 30 ms ago that the reader has not made yet (it publishes the next one
        // once it has): still to come, so due now, not a period later.
        reader.publish_next_read(Instant::now() - Duration::from_millis(30), 4800);
        let s = writer
            .read_schedule()
            .expect("a late reader still keeps a schedule");
        assert_eq!(s.next_read_in, Duration::ZERO);

        // Three periods behind: the reader has stopped keeping to it.
        reader.publish_next_read(Instant::now() - Duration::from_millis(300), 4800);
        assert_eq!(writer.read_schedule(), None);

        reader.publish_next_read(Instant::now() + Duration::from_millis(30), 4800);
        reader.clear_schedule();
        assert_eq!(writer.read_schedule(), None, "cleared");
    }

    #[test]
    fn read_in_place_lends_what_read_copies_across_wraps_and_resets() {
        // Two rings fed the same writes and resets, one read by copy, one in place: the
        // reader sees the same frames, faded the same, in the same order.
        let dir = tmp();
        let path_a = dir.path().join(ring_file_name(std::process::id(), 50));
        let path_b = dir.path().join(ring_file_name(std::process::id(), 51));
        let (mut wa, mut wb) = (
            RingWriter::create(&path_a, 48_000, 2, 37).unwrap(),
            RingWriter::create(&path_b, 48_000, 2, 37).unwrap(),
        );
        let (mut ra, mut rb) = (
            RingReader::open(&path_a).unwrap(),
            RingReader::open(&path_b).unwrap(),
        );
        ra.set_reset_fade_frames(6);
        rb.set_reset_fade_frames(6);
        let mut seed = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let (mut written, mut parts, mut wrapped, mut resets) = (0u64, 0usize, 0usize, 0);
        for step in 0..3000 {
            match next(10) {
                0 if step % 7 == 0 => {
                    wa.reset();
                    wb.reset();
                    resets += 1;
                }
                0..=4 => {
                    let frames = next(30) as usize;
                    let block: Vec<f32> = (0..frames * 2)
                        .map(|i| 1.0 + sample(written * 2 + i as u64))
                        .collect();
                    let (na, nb) = (wa.write(&block), wb.write(&block));
                    assert_eq!(na, nb);
                    written += na as u64;
                }
                _ => {
                    let want = next(40) as usize;
                    let mut copied = vec![0f32; want * 2];
                    let got_a = ra.read(&mut copied);
                    let mut lent = Vec::new();
                    let mut calls = 0;
                    let got_b = rb.read_in_place(want, |part| {
                        calls += 1;
                        assert!(!part.is_empty() && part.len() % 2 == 0);
                        lent.extend_from_slice(part);
                    });
                    assert_eq!(got_a, got_b, "step {step}");
                    assert_eq!(&copied[..got_a * 2], &lent[..], "step {step}");
                    parts += calls;
                    wrapped += usize::from(calls == 2);
                }
            }
        }
        assert!(
            written > 10_000 && wrapped > 50 && parts > 500 && resets > 20,
            "{written} {wrapped} {parts} {resets}"
        );
    }

    #[test]
    fn a_schedule_beyond_one_period_or_the_ring_is_capped() {
        let dir = tmp();
        let path = dir.path().join(ring_file_name(std::process::id(), 41));
        let writer = RingWriter::create(&path, 48_000, 2, 9600).unwrap();
        let reader = RingReader::open(&path).unwrap();
        // A period larger than the ring and a take an hour away.
        reader.publish_next_read(Instant::now() + Duration::from_secs(3600), 1 << 40);
        let s = writer.read_schedule().unwrap();
        assert_eq!(
            s.period,
            Duration::from_millis(200),
            "capped at the ring's 9600 frames"
        );
        assert!(s.next_read_in <= s.period, "{s:?}");
    }

    /// A sample value that is exact in f32 and unique over the test's length.
    fn sample(i: u64) -> f32 {
        (i % (1 << 24)) as f32
    }

    #[test]
    fn round_trip_across_threads_ten_seconds_stereo() {
        let dir = tmp();
        let path = dir.path().join(ring_file_name(std::process::id(), 1));
        let mut writer = RingWriter::create(&path, 48_000, 2, 4096).unwrap();
        let mut reader = RingReader::open(&path).unwrap();
        assert_eq!(
            reader.spec(),
            RingSpec {
                sample_rate: 48_000,
                channels: 2,
                capacity_frames: 4096
            }
        );
        const TOTAL: u64 = 48_000 * 10 * 2;
        let deadline = Instant::now() + Duration::from_secs(60);

        let w = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut block = Vec::new();
            let mut size = 1usize;
            while next < TOTAL {
                assert!(Instant::now() < deadline, "writer timed out");
                // Block sizes vary from 1 to ~1000 frames to hit every wrap offset.
                size = size * 7 % 1009 + 1;
                let n = ((size * 2) as u64).min(TOTAL - next) as usize;
                block.clear();
                block.extend((next..next + n as u64).map(sample));
                let mut done = 0;
                while done < n {
                    let frames = writer.write(&block[done..n]);
                    done += frames * 2;
                    if frames == 0 {
                        std::thread::yield_now();
                    }
                }
                next += n as u64;
            }
            writer
        });
        let r = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut buf = vec![0f32; 2 * 777];
            while next < TOTAL {
                assert!(Instant::now() < deadline, "reader timed out");
                let frames = reader.read(&mut buf);
                for &s in &buf[..frames * 2] {
                    assert_eq!(s, sample(next), "sample {next}");
                    next += 1;
                }
                if frames == 0 {
                    std::thread::yield_now();
                }
            }
            next
        });
        let writer = w.join().unwrap();
        assert_eq!(r.join().unwrap(), TOTAL);
        assert_eq!(writer.queued_frames(), 0);
        drop(writer);
        assert!(!path.exists(), "writer removes its file on drop");
    }

    #[test]
    fn a_copy_counts_exactly_the_rings_it_created_that_still_exist() {
        let dir = tmp();
        let a =
            RingWriter::create(dir.path().join(unique_ring_file_name()), 48_000, 2, 64).unwrap();
        let b =
            RingWriter::create(dir.path().join(unique_ring_file_name()), 48_000, 2, 64).unwrap();
        // Another process's ring, and another generation's (same pid, another nonce).
        fs::write(dir.path().join("ring-1-2-0000000000000001-1.shm"), b"").unwrap();
        let pid = std::process::id();
        fs::write(
            dir.path()
                .join(format!("ring-{pid}-0-ffffffffffffffff-1.shm")),
            b"",
        )
        .unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(this_copy_ring_files(dir.path()), 2);
        drop(a);
        assert_eq!(this_copy_ring_files(dir.path()), 1);
        drop(b);
        assert_eq!(this_copy_ring_files(dir.path()), 0);
    }

    /// Windows: nobody removes a ring by its name; the system deletes it when the last handle
    /// to it closes, the reader's included, so a crashed writer leaves nothing behind.
    #[cfg(windows)]
    #[test]
    fn the_system_deletes_a_ring_when_its_last_handle_closes() {
        let dir = tmp();
        let path = dir.path().join(unique_ring_file_name());
        let mut w = RingWriter::create(&path, 48_000, 1, 64).unwrap();
        let mut r = RingReader::open(&path).unwrap();
        drop(w);
        // The reader's mapping still works after the writer is gone.
        let mut out = [0.0f32; 8];
        assert_eq!(r.read(&mut out), 0);
        drop(r);
        assert!(!path.exists(), "{path:?} outlived its last handle");
        // Refilled, to show the name is free again only for a brand-new ring.
        w = RingWriter::create(&path, 48_000, 1, 64).unwrap();
        assert_eq!(w.write(&[0.5; 4]), 4);
        r = RingReader::open(&path).unwrap();
        assert_eq!(r.read(&mut out), 4);
    }

    #[test]
    fn wrap_around_keeps_order_and_respects_capacity() {
        let dir = tmp();
        let path = dir.path().join("ring-1-2.shm");
        let mut w = RingWriter::create(&path, 44_100, 3, 5).unwrap();
        let mut r = RingReader::open(&path).unwrap();
        let frames = |from: u64, n: u64| (from * 3..(from + n) * 3).map(sample).collect::<Vec<_>>();
        let mut out = vec![0f32; 3 * 8];

        assert_eq!(w.write(&frames(0, 3)), 3);
        assert_eq!(r.read(&mut out[..6]), 2);
        assert_eq!(out[..6], frames(0, 2)[..]);
        // 1 queued, 4 free: the write wraps past the end of the data area.
        assert_eq!(w.queued_frames(), 1);
        assert_eq!(w.free_frames(), 4);
        assert_eq!(w.write(&frames(3, 6)), 4, "only what fits");
        assert_eq!(w.write(&frames(7, 1)), 0, "full");
        assert_eq!(r.queued_frames(), 5);
        assert_eq!(r.read(&mut out), 5);
        assert_eq!(out[..15], frames(2, 5)[..]);
        assert_eq!(r.read(&mut out), 0, "empty");
        // Partial frames are ignored on both sides.
        assert_eq!(w.write(&frames(7, 2)[..5]), 1);
        assert_eq!(r.read(&mut out[..4]), 1);
        assert_eq!(out[..3], frames(7, 1)[..]);
        // Many laps.
        for lap in 0..100u64 {
            let base = 8 + lap * 4;
            assert_eq!(w.write(&frames(base, 4)), 4);
            assert_eq!(r.read(&mut out), 4);
            assert_eq!(out[..12], frames(base, 4)[..]);
        }
    }

    #[test]
    fn reset_handshake_discards_queued_audio() {
        let dir = tmp();
        let path = dir.path().join("ring-1-3.shm");
        let mut w = RingWriter::create(&path, 48_000, 1, 16).unwrap();
        let mut r = RingReader::open(&path).unwrap();
        r.set_reset_fade_frames(4);
        let mut out = [0f32; 16];

        assert_eq!(w.write(&[1.0; 10]), 10);
        assert_eq!(r.read(&mut out[..1]), 1);
        w.reset();
        assert!(w.reset_pending());
        assert_eq!(w.write(&[9.0]), 0, "writer pauses until acknowledged");
        assert_eq!(w.queued_frames(), 0);
        assert_eq!(r.queued_frames(), 4, "only the fade-out is left to read");
        // Two resets before the reader looks: one fade-out, and one acknowledgement of the
        // latest covers both.
        w.reset();
        // The queue's head fades out towards silence, over as many reads as it takes...
        assert_eq!(r.read(&mut out[..3]), 3);
        assert_eq!(out[..3], [0.8, 0.6, 0.4]);
        assert!(
            w.reset_pending(),
            "acknowledged only once the fade is played"
        );
        assert_eq!(r.read(&mut out), 1, "a fade-out read returns nothing else");
        assert_eq!(out[0], 0.2);
        assert!(!w.reset_pending());
        // ...and the rest of the old queue is gone.
        assert_eq!(r.queued_frames(), 0);
        assert_eq!(r.read(&mut out), 0);
        assert!(r.shared.atomic_u64(OFF_ACK_EPOCH).load(Ordering::Relaxed) == 2);
        // What is written after the reset starts from silence, then plays as written.
        assert_eq!(w.write(&[1.0; 6]), 6);
        assert_eq!(r.read(&mut out), 6);
        assert_eq!(out[..6], [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]);
        assert_eq!(w.write(&[5.0, 6.0]), 2);
        assert_eq!(r.read(&mut out), 2);
        assert_eq!(out[..2], [5.0, 6.0]);

        // Less queued than a fade: what there is fades out, still down to silence.
        assert_eq!(w.write(&[1.0, 1.0]), 2);
        w.reset();
        assert_eq!(r.read(&mut out), 2);
        assert_eq!(out[..2], [2.0 / 3.0, 1.0 / 3.0]);
        assert!(!w.reset_pending());
        // Nothing queued at all: acknowledged at once, nothing played.
        w.reset();
        assert_eq!(r.read(&mut out), 0);
        assert!(!w.reset_pending());
        // A reset before anything written after the last one was heard: dropped unheard.
        assert_eq!(w.write(&[1.0; 3]), 3);
        w.reset();
        assert_eq!(r.queued_frames(), 0);
        assert_eq!(r.read(&mut out), 0);
        assert!(!w.reset_pending());

        // A reset during a fade-in fades out from the level reached, not from full.
        assert_eq!(w.write(&[1.0; 10]), 10);
        assert_eq!(r.read(&mut out[..2]), 2);
        assert_eq!(out[..2], [0.2, 0.4]);
        w.reset();
        assert_eq!(r.read(&mut out), 4);
        for (got, want) in out[..4].iter().zip([0.32f32, 0.24, 0.16, 0.08]) {
            assert!((got - want).abs() < 1e-6, "{:?}", &out[..4]);
        }

        // A reader that opens while a reset is pending handles it too, with a fade of its own.
        assert_eq!(w.write(&[1.0; 10]), 10);
        w.reset();
        drop(r);
        let mut r2 = RingReader::open(&path).unwrap();
        r2.set_reset_fade_frames(4);
        assert_eq!(r2.read(&mut out), 4);
        assert_eq!(out[..4], [0.8, 0.6, 0.4, 0.2]);
        assert!(!w.reset_pending());
        assert_eq!(w.write(&[1.0]), 1);
        assert_eq!(r2.read(&mut out), 1);
        assert_eq!(out[0], 0.2);
        assert!(w.reader_heartbeat() >= 2);
        assert_eq!(w.reader_pid(), std::process::id());
    }

    #[test]
    fn the_default_reset_fade_is_five_milliseconds() {
        let dir = tmp();
        let path = dir.path().join("ring-1-5.shm");
        let mut w = RingWriter::create(&path, 48_000, 2, 4_800).unwrap();
        let mut r = RingReader::open(&path).unwrap();
        assert_eq!(w.write(&[0.5; 2 * 1_000]), 1_000);
        w.reset();
        let mut out = vec![0f32; 2 * 1_000];
        let got = r.read(&mut out);
        assert_eq!(got, 48_000 * RESET_FADE_MS as usize / 1000);
        assert!(out[..2 * got].windows(3).step_by(2).all(|w| w[2] < w[0]));
        assert!(out[2 * got - 1] < 0.01 && out[0] > 0.49);
    }

    #[test]
    fn reset_races_with_a_reading_thread() {
        const FADE: usize = 8;
        let dir = tmp();
        let path = dir.path().join("ring-1-4.shm");
        let mut w = RingWriter::create(&path, 48_000, 2, 64).unwrap();
        let mut r = RingReader::open(&path).unwrap();
        r.set_reset_fade_frames(FADE);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        // Each "generation" writes frames (g*1000+i+1, 1.0), then resets: the right channel is
        // the gain the reader applied, the left one divided by it the frame's value.
        let reader = std::thread::spawn(move || {
            let mut out = [0f32; 14];
            let mut heard = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let n = r.read(&mut out);
                for f in out[..2 * n].chunks_exact(2) {
                    heard.push(((f[0] / f[1]).round() as u32, f[1]));
                }
            }
            heard
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        for g in 0..200u32 {
            let mut i = 0u32;
            while i < 50 {
                assert!(Instant::now() < deadline);
                i += w.write(&[(g * 1000 + i + 1) as f32, 1.0]) as u32;
            }
            w.reset();
        }
        while w.reset_pending() {
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        let heard = reader.join().unwrap();
        assert!(!heard.is_empty());
        // In order, nothing twice, no older generation after a newer one.
        assert!(heard.windows(2).all(|p| p[1].0 > p[0].0), "{heard:?}");
        for g in 0..200u32 {
            let frames: Vec<(u32, f32)> = heard
                .iter()
                .filter(|(v, _)| (v - 1) / 1000 == g)
                .map(|&(v, gain)| ((v - 1) % 1000, gain))
                .collect();
            for &(i, gain) in &frames {
                assert!(gain > 0.0 && gain <= 1.0, "gen {g}: {frames:?}");
                // After a reset, the next generation starts from silence.
                if g > 0 && (i as usize) < FADE {
                    let ramp = (i + 1) as f32 / (FADE + 1) as f32;
                    assert!(gain <= ramp + 1e-6, "gen {g} fades in: {frames:?}");
                }
            }
            // Past its fade-in, a generation plays at full level until its reset, then fades
            // out over at most FADE frames, each quieter than the one before, and stops.
            let rest: Vec<f32> = frames
                .iter()
                .filter(|(i, _)| *i as usize >= FADE)
                .map(|f| f.1)
                .collect();
            let faded = rest.iter().rev().take_while(|g| **g < 1.0).count();
            assert!(faded <= FADE, "gen {g} fades out over {faded}: {frames:?}");
            assert!(
                rest[rest.len() - faded..].windows(2).all(|p| p[1] < p[0]),
                "gen {g}: {frames:?}"
            );
            assert!(
                rest[..rest.len() - faded].iter().all(|g| *g == 1.0),
                "gen {g}: {frames:?}"
            );
        }
    }

    /// One device period of `wanted` frames read from `r`; returns (frames got, underrun).
    fn period(r: &mut RingReader, wanted: usize) -> (usize, bool) {
        let mut buf = vec![0f32; wanted * 2];
        let got = r.read(&mut buf);
        (got, r.note_period(wanted, got))
    }

    #[test]
    fn only_a_gap_inside_the_stream_is_an_underrun() {
        let dir = tmp();
        let path = dir.path().join("ring-1-9.shm");
        let mut w = RingWriter::create(&path, 48_000, 2, 64).unwrap();
        let mut r = RingReader::open(&path).unwrap();
        let frames = |n: usize| vec![0.5f32; n * 2];
        // A start: the first periods find the ring empty, then filling.
        assert_eq!(period(&mut r, 8), (0, false));
        w.write(&frames(4));
        assert_eq!(period(&mut r, 8), (4, false));
        w.write(&frames(16));
        assert_eq!(period(&mut r, 8), (8, false));
        // The writer stops feeding: the device runs dry; audio again is one underrun.
        assert_eq!(period(&mut r, 8), (8, false));
        assert_eq!(period(&mut r, 8), (0, false));
        assert_eq!(period(&mut r, 8), (0, false));
        w.write(&frames(16));
        assert_eq!(period(&mut r, 8), (8, true));
        assert_eq!((r.underruns(), w.reader_underruns()), (1, 1));
        // A drained end (a track that ended) and a later start: no underrun.
        w.mark_drained();
        assert_eq!(period(&mut r, 8), (8, false));
        assert_eq!(period(&mut r, 8), (0, false));
        w.write(&frames(16));
        assert_eq!(period(&mut r, 8), (8, false));
        assert_eq!(period(&mut r, 8), (8, false));
        // A reset drops the queue (after a fade-out of its head): the silence after it is no
        // underrun either.
        w.write(&frames(16));
        assert_eq!(period(&mut r, 8), (8, false));
        w.reset();
        assert_eq!(period(&mut r, 8), (8, false));
        assert_eq!(period(&mut r, 8), (0, false));
        assert!(!w.reset_pending());
        w.write(&frames(16));
        assert_eq!(period(&mut r, 8), (8, false));
        assert_eq!(w.reader_underruns(), 1);
        // The device's queue is reported to the writer.
        r.set_device_queued(8);
        assert_eq!(w.device_queued_frames(), 8);
        r.set_device_queued(0);
        assert_eq!(w.device_queued_frames(), 0);
    }

    #[test]
    fn truncated_or_garbage_files_are_refused() {
        let dir = tmp();
        let path = dir.path().join("ring-1-5.shm");
        let w = RingWriter::create(&path, 48_000, 2, 100).unwrap();
        let good = fs::read(&path).unwrap();
        assert_eq!(good.len() as u64, w.spec().file_len());
        let check = |bytes: &[u8]| {
            let p = dir.path().join("probe.shm");
            fs::write(&p, bytes).unwrap();
            RingReader::open(&p).err().expect("must be refused")
        };
        // Truncated data area, truncated header, empty file, extra bytes.
        assert!(matches!(
            check(&good[..good.len() - 4]),
            RingError::BadLength { .. }
        ));
        assert!(matches!(check(&good[..100]), RingError::BadHeader(_)));
        assert!(matches!(check(&[]), RingError::BadHeader(_)));
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; 8]);
        assert!(matches!(check(&longer), RingError::BadLength { .. }));
        // Garbage, wrong magic, wrong version, wrong header size, absurd format.
        assert!(matches!(
            check(&vec![0xA5; good.len()]),
            RingError::BadHeader(_)
        ));
        let patched = |off: usize, bytes: &[u8]| {
            let mut b = good.clone();
            b[off..off + bytes.len()].copy_from_slice(bytes);
            b
        };
        assert!(matches!(
            check(&patched(0, b"STLTRINX")),
            RingError::BadHeader(_)
        ));
        assert!(matches!(
            check(&patched(8, &(RING_LAYOUT_VERSION + 1).to_ne_bytes())),
            RingError::BadHeader(_)
        ));
        assert!(matches!(
            check(&patched(12, &64u32.to_ne_bytes())),
            RingError::BadHeader(_)
        ));
        assert!(matches!(
            check(&patched(20, &0u32.to_ne_bytes())),
            RingError::BadHeader(_)
        ));
        assert!(matches!(
            check(&patched(20, &1000u32.to_ne_bytes())),
            RingError::BadHeader(_)
        ));
        assert!(matches!(
            check(&patched(32, &0u32.to_ne_bytes())),
            RingError::BadHeader(_)
        ));
        assert!(matches!(
            check(&patched(40, &u64::MAX.to_ne_bytes())),
            RingError::BadHeader(_)
        ));
        // Capacity doubled: the header now claims more data than the file holds.
        assert!(matches!(
            check(&patched(40, &200u64.to_ne_bytes())),
            RingError::BadLength { .. }
        ));
        assert!(RingReader::open(dir.path().join("missing.shm")).is_err());
        // The untouched copy opens.
        let p = dir.path().join("copy.shm");
        fs::write(&p, &good).unwrap();
        assert_eq!(RingReader::open(&p).unwrap().spec(), w.spec());
    }

    #[test]
    fn invalid_specs_are_refused_and_leave_no_file() {
        let dir = tmp();
        let path = dir.path().join("ring-1-6.shm");
        assert!(RingWriter::create(&path, 0, 2, 10).is_err());
        assert!(RingWriter::create(&path, 48_000, 0, 10).is_err());
        assert!(RingWriter::create(&path, 48_000, MAX_CHANNELS + 1, 10).is_err());
        assert!(RingWriter::create(&path, 48_000, 2, 0).is_err());
        assert!(RingWriter::create(&path, 48_000, 64, u32::MAX).is_err());
        assert!(!path.exists());
    }

    // Unix only: Windows keeps a deleted file's name while it is mapped, so a ring name is
    // never re-created there (`unique_ring_file_name`, tested in `file_names_parse`).
    #[cfg(unix)]
    #[test]
    fn create_replaces_the_file_instead_of_truncating_a_mapped_one() {
        let dir = tmp();
        let path = dir.path().join("ring-1-7.shm");
        let mut first = RingWriter::create(&path, 48_000, 2, 1000).unwrap();
        let mut old_reader = RingReader::open(&path).unwrap();
        assert_eq!(first.write(&[0.5; 2000]), 1000);
        // A second, much smaller ring at the same path: the old reader still reads its own data.
        let second = RingWriter::create(&path, 48_000, 2, 10).unwrap();
        let mut out = vec![0f32; 2000];
        assert_eq!(old_reader.read(&mut out), 1000);
        assert!(out.iter().all(|&s| s == 0.5));
        // Dropping the first writer does not remove the second one's file.
        drop(first);
        assert!(path.exists());
        assert_eq!(RingReader::open(&path).unwrap().spec().capacity_frames, 10);
        drop(second);
        assert!(!path.exists());
    }

    #[cfg(unix)]
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!crate::pid_alive(pid), "pid {pid} was reused already");
        pid
    }

    #[cfg(unix)]
    #[test]
    fn reap_removes_dead_owners_and_keeps_live_ones() {
        let dir = tmp();
        let me = std::process::id();
        let live_path = dir.path().join(ring_file_name(me, 1));
        let dead_path = dir.path().join(ring_file_name(me, 2));
        let reused_path = dir.path().join(ring_file_name(me, 3));
        let _live = RingWriter::create(&live_path, 48_000, 2, 64).unwrap();
        let dead = RingWriter::create(&dead_path, 48_000, 2, 64).unwrap();
        let reused = RingWriter::create(&reused_path, 48_000, 2, 64).unwrap();
        let patch = |path: &Path, off: usize, bytes: &[u8]| {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = OpenOptions::new().write(true).open(path).unwrap();
            f.seek(SeekFrom::Start(off as u64)).unwrap();
            f.write_all(bytes).unwrap();
        };
        patch(
            &dead_path,
            offset_of!(RingHeader, owner_pid),
            &dead_pid().to_ne_bytes(),
        );
        // Our pid with a start time that is not ours: a reused pid. Only checkable where start
        // times are known.
        let start_known = process_start_time(me).is_some();
        if start_known {
            let t = process_start_time(me).unwrap();
            patch(
                &reused_path,
                offset_of!(RingHeader, owner_start_time),
                &(t + 12345).to_ne_bytes(),
            );
        }
        // A half-created file (no valid header) named after a dead pid, one named after us, and
        // files that are not rings at all.
        let half_dead = dir.path().join(ring_file_name(dead_pid(), 4));
        let half_live = dir.path().join(ring_file_name(me, 5));
        fs::write(&half_dead, b"").unwrap();
        fs::write(&half_live, b"").unwrap();
        fs::write(dir.path().join("ring-x-1.shm"), b"").unwrap();
        fs::write(dir.path().join("other.txt"), b"").unwrap();

        let removed = reap_stale_rings(dir.path());
        assert_eq!(removed, if start_known { 3 } else { 2 });
        assert!(live_path.exists());
        assert!(!dead_path.exists());
        assert_eq!(reused_path.exists(), !start_known);
        assert!(!half_dead.exists());
        assert!(half_live.exists());
        assert!(dir.path().join("ring-x-1.shm").exists());
        assert!(dir.path().join("other.txt").exists());
        // The reaped writers' drops find their files gone and do nothing.
        drop(dead);
        drop(reused);
        assert!(live_path.exists());
        assert_eq!(reap_stale_rings(dir.path().join("missing")), 0);
    }

    #[test]
    fn file_names_parse() {
        assert_eq!(parse_ring_file_name(&ring_file_name(12, 34)), Some(12));
        assert_eq!(parse_ring_file_name("ring-12-34.tmp"), None);
        assert_eq!(parse_ring_file_name("ring--34.shm"), None);
        assert_eq!(parse_ring_file_name("ring-12.shm"), None);
        let unique = unique_ring_file_name();
        assert_eq!(parse_ring_file_name(&unique), Some(std::process::id()));
        assert_ne!(unique_ring_file_name(), unique, "never the same name twice");
    }
}
