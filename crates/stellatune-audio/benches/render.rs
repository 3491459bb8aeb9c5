//! Offline render speed and play latency of the engine.
//!
//! Four generated 3-minute stereo tracks (FLAC 16-bit/44.1 kHz and 24-bit/96 kHz written with
//! flacenc; MP3 320 kbit/s CBR and Ogg Vorbis q6 encoded from a 16-bit/44.1 kHz WAV with the
//! `lame` and `oggenc` command-line tools, skipped with a note when those are not on PATH),
//! each
//!
//! - `engine_render`: played through the engine to an unpaced sink (the sink takes every
//!   frame at once, so the figure is the engine's own speed: open + decode on the worker,
//!   channel hand-off, writes on the control thread);
//! - `symphonia_raw_decode`: decoded by symphonia in a plain loop on one thread, into a
//!   `SampleBuffer<f32>` as its examples do (the goal's peer);
//! - `track_source_decode`: decoded by the engine's own `TrackSource` in a plain loop on one
//!   thread (what the engine would cost with zero overhead);
//! - `rodio_decode`: decoded to completion by rodio's `Decoder` iterator (a peer player's
//!   decoder, also symphonia underneath).
//!
//! x-realtime = 180 s / time per iteration.
//!
//! `play_latency`: from the `play` call to the first frame reaching the sink, in-process
//! (the sink records the `Instant` of its first write). It includes opening and probing the
//! file on the calling thread, as a front end's `play` does; `track_source_open` times that
//! part alone.
//!
//! `cargo bench -p stellatune-audio --bench render`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use divan::Bencher;
use stellatune_audio::sink::NullSink;
use stellatune_audio::{
    Engine, EngineConfig, EngineEvent, Sink, SinkError, SinkFactory, SinkStatus, StreamSpec,
    TrackSource,
};
use stellatune_test_support::tone::write_wav_i16;

/// The generated tracks live here for the whole run.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("temp dir"));

/// Three minutes at `rate`, rounded down to whole 4096-frame FLAC blocks: flacenc states a
/// short last block as the stream's minimum block size, which symphonia then refuses.
const fn frames_at(rate: u32) -> usize {
    180 * rate as usize / 4096 * 4096
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fixture {
    Flac16At44k,
    Flac24At96k,
    Mp3At320k,
    VorbisQ6,
}

impl std::fmt::Display for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fixture::Flac16At44k => "flac-16-44k",
            Fixture::Flac24At96k => "flac-24-96k",
            Fixture::Mp3At320k => "mp3-320k",
            Fixture::VorbisQ6 => "vorbis-q6",
        })
    }
}

impl Fixture {
    const ALL: [Fixture; 4] = [
        Fixture::Flac16At44k,
        Fixture::Flac24At96k,
        Fixture::Mp3At320k,
        Fixture::VorbisQ6,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The external encoder this fixture needs, if any.
    fn tool(self) -> Option<&'static str> {
        match self {
            Fixture::Flac16At44k | Fixture::Flac24At96k => None,
            Fixture::Mp3At320k => Some("lame"),
            Fixture::VorbisQ6 => Some("oggenc"),
        }
    }

    fn available(self) -> bool {
        self.tool().is_none_or(tool_on_path)
    }

    /// Frames a lossless fixture decodes to (lossy encoders add their own priming/padding).
    fn exact_frames(self) -> Option<usize> {
        match self {
            Fixture::Flac16At44k => Some(frames_at(44_100)),
            Fixture::Flac24At96k => Some(frames_at(96_000)),
            Fixture::Mp3At320k | Fixture::VorbisQ6 => None,
        }
    }

    /// The file, generated on first use.
    fn path(self) -> &'static Path {
        static PATHS: [OnceLock<PathBuf>; 4] = [const { OnceLock::new() }; 4];
        PATHS[self.index()].get_or_init(|| {
            let started = Instant::now();
            let path = match self {
                Fixture::Flac16At44k => write_flac("three-minutes-16-44k.flac", 44_100, 16),
                Fixture::Flac24At96k => write_flac("three-minutes-24-96k.flac", 96_000, 24),
                Fixture::Mp3At320k => encode_with(
                    "three-minutes-320k.mp3",
                    "lame",
                    &["--quiet", "--cbr", "-b", "320"],
                    false,
                ),
                Fixture::VorbisQ6 => encode_with(
                    "three-minutes-q6.ogg",
                    "oggenc",
                    &["--quiet", "-q", "6"],
                    true,
                ),
            };
            eprintln!(
                "fixture {self}: {} ({} KiB) generated in {:.1} s",
                path.display(),
                std::fs::metadata(&path).map_or(0, |m| m.len() / 1024),
                started.elapsed().as_secs_f64()
            );
            path
        })
    }
}

fn tool_on_path(tool: &str) -> bool {
    static NOTED: [OnceLock<bool>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = usize::from(tool == "oggenc");
    *NOTED[slot].get_or_init(|| {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!(
                "note: `{tool}` is not on PATH: its cases are skipped (install lame / vorbis-tools)"
            );
        }
        found
    })
}

/// The fixtures whose encoder is available: the `args` of every bench below.
fn fixtures() -> Vec<Fixture> {
    Fixture::ALL.into_iter().filter(|f| f.available()).collect()
}

/// Two sines with a slow vibrato plus a little noise (so lossless coding has work to do), as
/// integers of `bits` bits.
fn signal(rate: u32, bits: u32) -> Vec<i32> {
    let frames = frames_at(rate);
    let full_scale = f64::from((1u32 << (bits - 1)) - 1);
    let mut samples = Vec::with_capacity(frames * 2);
    let mut phase = [0.0f64; 2];
    for i in 0..frames {
        let t = i as f64 / f64::from(rate);
        for (ch, p) in phase.iter_mut().enumerate() {
            let freq = 220.0 * (1.0 + ch as f64) + 30.0 * (t * 0.5).sin();
            *p += std::f64::consts::TAU * freq / f64::from(rate);
            let noise = ((i as u32).wrapping_mul(2_654_435_761) >> 20) as f64 / 4096.0 - 0.5;
            samples.push(((p.sin() * 0.4 + noise * 0.05) * full_scale) as i32);
        }
    }
    samples
}

fn write_flac(name: &str, rate: u32, bits: u32) -> PathBuf {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let path = DIR.path().join(name);
    let samples = signal(rate, bits);
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .expect("flac config");
    let source =
        flacenc::source::MemSource::from_samples(&samples, 2, bits as usize, rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .expect("flac encode");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("flac bits");
    std::fs::write(&path, sink.as_slice()).expect("write flac");
    path
}

/// A 16-bit/44.1 kHz WAV of the signal, encoded by `tool`: `tool ARGS in.wav out` (lame), or
/// `tool ARGS -o out in.wav` (oggenc).
fn encode_with(name: &str, tool: &str, args: &[&str], dash_o: bool) -> PathBuf {
    let wav = DIR.path().join(format!("{name}.source.wav"));
    let samples: Vec<i16> = signal(44_100, 16).into_iter().map(|s| s as i16).collect();
    write_wav_i16(&wav, 44_100, 2, &samples);
    let out = DIR.path().join(name);
    let mut command = Command::new(tool);
    command.args(args);
    if dash_o {
        command.arg("-o").arg(&out).arg(&wav);
    } else {
        command.arg(&wav).arg(&out);
    }
    let status = command.status().expect("run encoder");
    assert!(status.success(), "{tool} failed: {status}");
    let _ = std::fs::remove_file(&wav);
    out
}

/// What the probe sink reports about its first write after being armed.
#[derive(Clone)]
struct Probe {
    armed: Arc<AtomicBool>,
    first_write: Sender<Instant>,
}

/// A sink that takes everything at once, so the figure is the engine's own speed.
struct Unpaced {
    spec: Option<StreamSpec>,
    frames: Arc<AtomicU64>,
    probe: Option<Probe>,
}

impl Sink for Unpaced {
    fn describe(&self) -> String {
        "unpaced".into()
    }
    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        Ok(preferred)
    }
    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        self.spec = Some(spec);
        Ok(())
    }
    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        if let Some(probe) = &self.probe {
            if probe.armed.swap(false, Ordering::AcqRel) {
                let _ = probe.first_write.try_send(Instant::now());
            }
        }
        let channels = usize::from(self.spec.map_or(2, |s| s.channels));
        let frames = divan::black_box(interleaved).len() / channels;
        self.frames.fetch_add(frames as u64, Ordering::Relaxed);
        Ok(frames)
    }
    fn status(&self) -> SinkStatus {
        SinkStatus::default()
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

struct UnpacedFactory {
    frames: Arc<AtomicU64>,
    probe: Option<Probe>,
}

impl SinkFactory for UnpacedFactory {
    fn describe(&self) -> String {
        "unpaced".into()
    }
    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(Unpaced {
            spec: None,
            frames: self.frames,
            probe: self.probe,
        }))
    }
}

/// An engine routed to an unpaced sink, with a channel that gets every `TrackEnded`.
struct Rig {
    engine: Engine,
    ended: Receiver<()>,
    frames: Arc<AtomicU64>,
}

fn rig(probe: Option<Probe>) -> Rig {
    let (tx, ended) = unbounded();
    let engine = Engine::start(
        EngineConfig::default(),
        Arc::new(move |e| {
            if let EngineEvent::TrackEnded { .. } = e {
                let _ = tx.send(());
            }
        }),
    )
    .expect("engine");
    let frames = Arc::new(AtomicU64::new(0));
    engine
        .apply_route(Box::new(UnpacedFactory {
            frames: frames.clone(),
            probe,
        }))
        .expect("route");
    Rig {
        engine,
        ended,
        frames,
    }
}

fn main() {
    // Generate every fixture before any timing, two at a time (this machine class has 2
    // cores; lame and oggenc are single-threaded). `--list` needs none of them.
    if !std::env::args().any(|a| a == "--list") {
        let wanted = fixtures();
        std::thread::scope(|s| {
            for pair in wanted.chunks(2) {
                let handles: Vec<_> = pair.iter().map(|f| s.spawn(move || f.path())).collect();
                for h in handles {
                    h.join().expect("fixture thread");
                }
            }
        });
    }
    divan::main();
}

/// Eleven samples each for the render and the raw decode: with five, one sample slowed down
/// by something else on a 2-core machine moved the median by several percent.
#[divan::bench(args = fixtures(), sample_count = 11, sample_size = 1)]
fn engine_render(bencher: Bencher, fixture: Fixture) {
    let path = fixture.path();
    let rig = rig(None);
    bencher
        .with_inputs(|| rig.frames.swap(0, Ordering::Relaxed))
        .bench_local_values(|_| {
            rig.engine.play(path).expect("play");
            rig.ended
                .recv_timeout(Duration::from_secs(120))
                .expect("track ended");
        });
    if let Some(exact) = fixture.exact_frames() {
        assert_eq!(rig.frames.load(Ordering::Relaxed), exact as u64);
    }
    rig.engine
        .shutdown(Duration::from_secs(5))
        .expect("shutdown");
}

/// The engine's decoder alone, in a plain loop on one thread: what the engine would cost
/// with zero overhead.
#[divan::bench(args = fixtures(), sample_count = 11, sample_size = 1)]
fn track_source_decode(fixture: Fixture) {
    let mut source = TrackSource::open(fixture.path()).expect("open");
    let channels = usize::from(source.info().channels);
    let mut frames = 0usize;
    while let Some(block) = source.next_block().expect("decode") {
        frames += divan::black_box(block).len() / channels;
    }
    if let Some(exact) = fixture.exact_frames() {
        assert_eq!(frames, exact);
    }
}

/// Symphonia as its own examples use it: probe, then decode packet by packet into a
/// `SampleBuffer<f32>` (interleaved f32, what a sink takes).
#[divan::bench(args = fixtures(), sample_count = 11, sample_size = 1)]
fn symphonia_raw_decode(fixture: Fixture) {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::errors::Error;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::probe::Hint;

    let path = fixture.path();
    let file = std::fs::File::open(path).expect("open");
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &Default::default(), &Default::default())
        .expect("probe");
    let mut format = probed.format;
    let track = format.default_track().expect("track").clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &Default::default())
        .expect("decoder");
    let mut buf: Option<SampleBuffer<f32>> = None;
    let mut frames = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read: {e}"),
        };
        if packet.track_id() != track.id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(Error::DecodeError(_)) => continue,
            Err(e) => panic!("decode: {e}"),
        };
        let spec = *decoded.spec();
        let needed = decoded.capacity() * spec.channels.count();
        if buf.as_ref().is_none_or(|b| b.capacity() < needed) {
            buf = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
        }
        let buf = buf.as_mut().expect("allocated above");
        buf.copy_interleaved_ref(decoded);
        frames += divan::black_box(buf.samples()).len() / spec.channels.count();
    }
    if let Some(exact) = fixture.exact_frames() {
        assert_eq!(frames, exact);
    }
}

#[divan::bench(args = fixtures(), sample_count = 5, sample_size = 1)]
fn rodio_decode(fixture: Fixture) {
    let file = std::fs::File::open(fixture.path()).expect("open");
    let decoder = rodio::Decoder::try_from(file).expect("rodio decoder");
    let channels = usize::from(rodio::Source::channels(&decoder).get());
    let mut samples = 0usize;
    let mut sum = 0.0f32;
    for s in decoder {
        sum += s;
        samples += 1;
    }
    divan::black_box(sum);
    if let Some(exact) = fixture.exact_frames() {
        assert_eq!(samples / channels, exact);
    }
}

/// `play` -> first frame written to the sink. The engine keeps its route between samples;
/// each sample stops the previous track first (untimed), then times `play` until the sink
/// has seen its first write.
#[divan::bench(args = fixtures(), sample_count = 40, sample_size = 1)]
fn play_latency(bencher: Bencher, fixture: Fixture) {
    let path = fixture.path();
    let (tx, first_write) = bounded(1);
    let armed = Arc::new(AtomicBool::new(false));
    let rig = rig(Some(Probe {
        armed: armed.clone(),
        first_write: tx,
    }));
    bencher
        .with_inputs(|| {
            rig.engine.stop().expect("stop");
            while first_write.try_recv().is_ok() {}
            armed.store(true, Ordering::Release);
        })
        .bench_local_values(|()| {
            rig.engine.play(path).expect("play");
            first_write
                .recv_timeout(Duration::from_secs(5))
                .expect("first write")
        });
    rig.engine
        .shutdown(Duration::from_secs(5))
        .expect("shutdown");
}

/// The part of `play_latency` spent on the calling thread: open, probe, and decode the first
/// block (`TrackSource::open` validates the file by decoding it).
#[divan::bench(args = fixtures(), sample_count = 40, sample_size = 1)]
fn track_source_open(fixture: Fixture) -> TrackSource {
    TrackSource::open(fixture.path()).expect("open")
}

#[divan::bench(sample_count = 20)]
fn null_sink_write_4096_frames(bencher: Bencher) {
    let mut sink = NullSink::new();
    sink.open(StreamSpec::new(44_100, 2)).expect("open");
    let block = vec![0.25f32; 8192];
    bencher.bench_local(|| sink.write(divan::black_box(&block)));
}
