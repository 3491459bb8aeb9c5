//! Ring throughput in 4096-frame stereo blocks (32 KiB) against plain memcpy of the same size.
//!
//! `cargo bench -p stellatune-asio-proto`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use stellatune_asio_proto::{RingReader, RingWriter, default_ring_dir};

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

/// One block written and read back on the same thread (two copies through shared memory).
/// `capacity` 16384 keeps blocks aligned; 10000 makes most blocks wrap and split.
#[divan::bench(args = [16_384, 10_000])]
fn ring_write_read(bencher: Bencher, capacity: usize) {
    let (_dir, mut w, mut r) = ring(capacity);
    let src = vec![0.25f32; FRAMES * CH];
    let mut dst = vec![0f32; FRAMES * CH];
    bencher
        .counter(BytesCount::new(BLOCK_BYTES))
        .bench_local(|| {
            assert_eq!(w.write(black_box(&src)), FRAMES);
            assert_eq!(r.read(black_box(&mut dst)), FRAMES);
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
#[divan::bench]
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
#[divan::bench]
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
