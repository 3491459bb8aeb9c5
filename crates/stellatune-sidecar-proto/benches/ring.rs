//! Ring throughput in 4096-frame stereo blocks (32 KiB) against plain memcpy of the same size,
//! and against the same PCM carried by a kernel byte stream (a Unix socket pair, an anonymous
//! pipe): the transports the sidecar could have used instead of shared memory.
//!
//! `cargo bench -p stellatune-sidecar-proto`

#[cfg(unix)] // the stream baselines only
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use stellatune_sidecar_proto::{RingReader, RingWriter, default_ring_dir};

const FRAMES: usize = 4096;
const CH: usize = 2;
const BLOCK_BYTES: usize = FRAMES * CH * 4;

fn main() {
    divan::main();
}

fn ring(capacity_frames: usize) -> (tempfile::TempDir, RingWriter, RingReader) {
    let dir = tempfile::tempdir_in(default_ring_dir()).expect("temp dir");
    let path = dir.path().join("ring-bench.shm");
    let writer =
        RingWriter::create(&path, 48_000, CH as u16, capacity_frames as u32).expect("create");
    let reader = RingReader::open(&path).expect("open");
    (dir, writer, reader)
}

/// Blocks per timed sample for the same-thread benches, the memcpy baselines included: with
/// one block per sample the clock's own cost (tens of ns) would be part of each figure, and
/// divan picks a different count for each bench.
const SAME_THREAD_SAMPLE_SIZE: u32 = 64;

/// One block written and read back on the same thread (two copies through shared memory).
/// `capacity` 16384 keeps blocks aligned; 10000 makes most blocks wrap and split.
#[divan::bench(args = [16_384, 10_000], sample_size = SAME_THREAD_SAMPLE_SIZE)]
fn ring_write_read(bencher: Bencher, capacity: usize) {
    let (_dir, mut w, mut r) = ring(capacity);
    let src = vec![0.25f32; FRAMES * CH];
    let mut dst = vec![0f32; FRAMES * CH];
    // Every page of a new ring is faulted in on its first write: go round it once before the
    // clock starts, as a running stream has long done.
    for _ in 0..capacity.div_ceil(FRAMES) + 1 {
        w.write(&src);
        r.read(&mut dst);
    }
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            assert_eq!(w.write(black_box(&src)), FRAMES);
            assert_eq!(r.read(black_box(&mut dst)), FRAMES);
        });
}

/// One block written, then lent back in place on the same thread
/// (`RingReader::read_in_place`, as the sidecar's devices read): one copy through shared
/// memory, the same work as the memcpy baseline (the block ends up where its consumer can
/// read it).
#[divan::bench(args = [16_384, 10_000], sample_size = SAME_THREAD_SAMPLE_SIZE)]
fn ring_write_read_in_place(bencher: Bencher, capacity: usize) {
    let (_dir, mut w, mut r) = ring(capacity);
    let src = vec![0.25f32; FRAMES * CH];
    for _ in 0..capacity.div_ceil(FRAMES) + 1 {
        w.write(&src);
        r.read_in_place(FRAMES, |part| {
            black_box(part);
        });
    }
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            assert_eq!(w.write(black_box(&src)), FRAMES);
            let lent = r.read_in_place(FRAMES, |part| {
                black_box(part);
            });
            assert_eq!(lent, FRAMES);
        });
}

/// One block read on this thread while another thread keeps the ring full.
#[divan::bench]
fn ring_cross_thread(bencher: Bencher) {
    let (_dir, mut w, mut r) = ring(FRAMES * 4);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let src = vec![0.5f32; FRAMES * CH];
        let mut off = 0;
        while !stop2.load(Ordering::Relaxed) {
            let n = w.write(&src[off * CH..]);
            off = (off + n) % FRAMES;
            if n == 0 {
                std::hint::spin_loop();
            }
        }
    });
    let mut dst = vec![0f32; FRAMES * CH];
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            let mut got = 0;
            while got < FRAMES {
                got += r.read(black_box(&mut dst[got * CH..]));
            }
        });
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
}

/// Baseline: one memcpy of a block.
#[divan::bench(sample_size = SAME_THREAD_SAMPLE_SIZE)]
fn memcpy(bencher: Bencher) {
    let src = vec![0.25f32; FRAMES * CH];
    let mut dst = vec![0f32; FRAMES * CH];
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            black_box(&mut dst).copy_from_slice(black_box(&src));
        });
}

/// Baseline matching the ring's work: a block copied in, then copied out.
#[divan::bench(sample_size = SAME_THREAD_SAMPLE_SIZE)]
fn memcpy_twice(bencher: Bencher) {
    let src = vec![0.25f32; FRAMES * CH];
    let mut mid = vec![0f32; FRAMES * CH];
    let mut dst = vec![0f32; FRAMES * CH];
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            black_box(&mut mid).copy_from_slice(black_box(&src));
            black_box(&mut dst).copy_from_slice(black_box(&mid));
        });
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
/// The bytes of a block of samples, as a stream transport carries them.
fn as_bytes(samples: &[f32]) -> &[u8] {
    // SAFETY: `u8` has alignment 1 and the length covers exactly the same memory; every bit
    // pattern of an `f32` is a valid sequence of bytes.
    unsafe { std::slice::from_raw_parts(samples.as_ptr().cast::<u8>(), size_of_val(samples)) }
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
fn as_bytes_mut(samples: &mut [f32]) -> &mut [u8] {
    // SAFETY: as in `as_bytes`; and every byte pattern is a valid `f32`, so the bytes a read
    // stores leave the slice valid.
    unsafe {
        std::slice::from_raw_parts_mut(samples.as_mut_ptr().cast::<u8>(), size_of_val(samples))
    }
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
/// One block written and read back on the same thread through a kernel stream (two copies,
/// user -> kernel -> user, plus two system calls). Both kernel buffers hold a 32 KiB block.
fn stream_write_read(bencher: Bencher, mut tx: impl Write, mut rx: impl Read) {
    let src = vec![0.25f32; FRAMES * CH];
    let mut dst = vec![0f32; FRAMES * CH];
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            tx.write_all(as_bytes(black_box(&src))).expect("write");
            rx.read_exact(as_bytes_mut(black_box(&mut dst)))
                .expect("read");
        });
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
/// One block read on this thread while another thread keeps the stream full; the reader
/// blocks in the kernel when it runs dry, the writer when the stream is full.
fn stream_cross_thread<W: Write + Send + 'static>(bencher: Bencher, mut tx: W, mut rx: impl Read) {
    let writer = std::thread::spawn(move || {
        let src = vec![0.5f32; FRAMES * CH];
        // Ends when the reader is dropped (EPIPE: Rust ignores SIGPIPE).
        while tx.write_all(as_bytes(&src)).is_ok() {}
    });
    let mut dst = vec![0f32; FRAMES * CH];
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            rx.read_exact(as_bytes_mut(black_box(&mut dst)))
                .expect("read");
        });
    drop(rx);
    writer.join().expect("writer thread");
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
#[divan::bench]
fn unix_stream_write_read(bencher: Bencher) {
    let (tx, rx) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    stream_write_read(bencher, tx, rx);
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
#[divan::bench]
fn unix_stream_cross_thread(bencher: Bencher) {
    let (tx, rx) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    stream_cross_thread(bencher, tx, rx);
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
/// An anonymous pipe as (read end, write end), with the default 64 KiB capacity. (libc rather
/// than `std::io::pipe`, which is newer than the workspace's MSRV.)
fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is valid for two ints.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
#[divan::bench]
fn pipe_write_read(bencher: Bencher) {
    let (rx, tx) = pipe();
    stream_write_read(bencher, tx, rx);
}

#[cfg(unix)] // The IPC baselines are Unix sockets and pipes.
#[divan::bench]
fn pipe_cross_thread(bencher: Bencher) {
    let (rx, tx) = pipe();
    stream_cross_thread(bencher, tx, rx);
}
