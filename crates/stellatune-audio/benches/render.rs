//! Offline render speed: a generated 3-minute FLAC (16-bit, 44.1 kHz, stereo) decoded and
//! written through the engine to an unpaced sink, against symphonia's raw decode loop of the
//! same file in the same run. Report x-realtime = 180 s / time per iteration.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crossbeam_channel::bounded;
use stellatune_audio::sink::NullSink;
use stellatune_audio::{
    Engine, EngineConfig, EngineEvent, Sink, SinkError, SinkFactory, SinkStatus, StreamSpec,
    TrackSource,
};

const RATE: u32 = 44_100;
/// Three minutes, rounded down to whole 4096-frame FLAC blocks: flacenc states a short last
/// block as the stream's minimum block size, which symphonia then refuses.
const FRAMES: usize = 180 * RATE as usize / 4096 * 4096;

static FLAC: LazyLock<(tempfile::TempDir, PathBuf)> = LazyLock::new(|| {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("three-minutes.flac");
    let frames = FRAMES;
    let mut samples = Vec::with_capacity(frames * 2);
    let mut phase = [0.0f64; 2];
    for i in 0..frames {
        let t = i as f64 / RATE as f64;
        for (ch, p) in phase.iter_mut().enumerate() {
            let freq = 220.0 * (1.0 + ch as f64) + 30.0 * (t * 0.5).sin();
            *p += std::f64::consts::TAU * freq / RATE as f64;
            let noise = ((i as u32).wrapping_mul(2_654_435_761) >> 20) as f64 / 4096.0 - 0.5;
            samples.push(((p.sin() * 0.4 + noise * 0.05) * 32767.0) as i32);
        }
    }
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .expect("flac config");
    let source = flacenc::source::MemSource::from_samples(&samples, 2, 16, RATE as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .expect("flac encode");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("flac bits");
    std::fs::write(&path, sink.as_slice()).expect("write flac");
    (dir, path)
});

/// A sink that takes everything at once, so the figure is the engine's own speed.
struct Unpaced {
    spec: Option<StreamSpec>,
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
        let channels = usize::from(self.spec.map_or(2, |s| s.channels));
        Ok(divan::black_box(interleaved).len() / channels)
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

struct UnpacedFactory;

impl SinkFactory for UnpacedFactory {
    fn describe(&self) -> String {
        "unpaced".into()
    }
    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(Unpaced { spec: None }))
    }
}

fn main() {
    LazyLock::force(&FLAC);
    divan::main();
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn engine_render_flac_3min() {
    let (tx, rx) = bounded(16);
    let engine = Engine::start(
        EngineConfig::default(),
        Arc::new(move |e| {
            if let EngineEvent::TrackEnded { .. } = e {
                let _ = tx.send(());
            }
        }),
    )
    .expect("engine");
    engine.apply_route(Box::new(UnpacedFactory)).expect("route");
    engine.play(&FLAC.1).expect("play");
    rx.recv_timeout(Duration::from_secs(120))
        .expect("track ended");
    engine.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn symphonia_raw_decode_3min() {
    let mut source = TrackSource::open(&FLAC.1).expect("open");
    let mut frames = 0usize;
    while let Some(block) = source.next_block().expect("decode") {
        frames += divan::black_box(block).len() / 2;
    }
    assert_eq!(frames, FRAMES);
}

#[divan::bench(sample_count = 20)]
fn null_sink_write_4096_frames(bencher: divan::Bencher) {
    let mut sink = NullSink::new();
    sink.open(StreamSpec::new(RATE, 2)).expect("open");
    let block = vec![0.25f32; 8192];
    bencher.bench_local(|| sink.write(divan::black_box(&block)));
}
