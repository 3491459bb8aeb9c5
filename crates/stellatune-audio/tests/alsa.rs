//! The `device` route against real ALSA through cpal, with no sound card: the test writes
//! its own ALSA configuration (`ALSA_CONFIG_PATH`) defining a `file` PCM, whose output the
//! test reads back and compares frame by frame, and a `null` PCM as the system default.
//!
//! ALSA's `null` PCM takes audio as fast as it comes (it has no clock): the sink holds such a
//! device to twice real time, and its callback fills the gaps between the engine's writes
//! with silence. The file holds every frame the engine played, in order, with silent frames
//! between them. The music here has no silent frame, so dropping those gives back exactly
//! what was played.

#![cfg(all(target_os = "linux", feature = "device"))]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use common::*;
use stellatune_audio::{BuiltinRoute, EngineEvent, output_devices};

const RATE: u32 = 44_100;
/// Short: the clockless device takes silence at twice real time until the track has ended
/// and the stream is closed.
const FRAMES: usize = RATE as usize / 5;

/// The test's ALSA configuration, written once per process and named by `ALSA_CONFIG_PATH`
/// before anything in it loads ALSA.
fn alsa_config() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // In the target directory (a static is never dropped, so a temporary directory
        // would stay behind in the system's).
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("alsa-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("out.raw");
        let config = format!(
            r#"pcm.null {{
    type null
}}
pcm.stfile {{
    type file
    slave.pcm "null"
    file "{}"
    format "raw"
    hint {{
        show on
        description "stellatune test file output"
    }}
}}
pcm.default {{
    type null
}}
"#,
            raw.display()
        );
        let path = dir.join("asound.conf");
        std::fs::write(&path, config).unwrap();
        // SAFETY: set once, inside this OnceLock (other tests of this binary wait on it), before
        // this process has loaded ALSA; nothing else in the test binary reads the variable.
        unsafe { std::env::set_var("ALSA_CONFIG_PATH", &path) };
        dir
    })
}

fn raw_output() -> PathBuf {
    alsa_config().join("out.raw")
}

fn coded_file(dir: &Path) -> PathBuf {
    let path = dir.join("coded.wav");
    write_wav_i16(&path, RATE, 2, &position_coded_i16(FRAMES, 9));
    path
}

#[test]
fn the_devices_of_the_alsa_configuration_are_listed_with_the_default() {
    alsa_config();
    let devices = output_devices().unwrap();
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    assert!(ids.contains(&"alsa:stfile"), "{devices:#?}");
    let default = devices
        .iter()
        .find(|d| d.is_default)
        .unwrap_or_else(|| panic!("a default in {devices:#?}"));
    assert_eq!(default.id, "alsa:default");
    assert!(
        devices
            .iter()
            .all(|d| d.backend == "alsa" || d.backend == "jack")
    );
}

#[test]
fn a_chosen_alsa_device_plays_every_frame_in_order() {
    alsa_config();
    let tmp = tempfile::tempdir().unwrap();
    let file = coded_file(tmp.path());
    let (engine, events) = start_engine("alsa-file");
    engine
        .apply_route(Box::new(BuiltinRoute::Device {
            device_id: Some("alsa:stfile".into()),
        }))
        .unwrap();
    let started = Instant::now();
    let track = engine.play(&file).unwrap();
    events.wait_finished(track);
    // Closing the stream ends the file's growth before it is read.
    engine.clear_route().unwrap();
    assert!(engine.wait_output_settled(TIMEOUT));
    let open_for = started.elapsed();
    let all = events.all();
    assert!(errors(&all).is_empty(), "{:?}", errors(&all));
    assert!(all.iter().any(
        |e| matches!(e, EngineEvent::OutputStarting { route } if route == "device:alsa:stfile")
    ));
    engine.shutdown(TIMEOUT).unwrap();

    let bytes = std::fs::read(raw_output()).unwrap();
    eprintln!(
        "the file PCM wrote {} bytes while the stream was open for {open_for:?}",
        bytes.len()
    );
    std::fs::remove_file(raw_output()).unwrap();
    // A device without a clock is held to twice real time (after a quarter second's lead),
    // however long the stream was open: not a spin writing gigabytes of silence.
    let most = (2.0 * open_for.as_secs_f64() + 0.5) * f64::from(RATE) * 8.0;
    assert!(
        (bytes.len() as f64) <= most,
        "{} bytes in {open_for:?} of a clockless device",
        bytes.len()
    );
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let heard: Vec<usize> = samples
        .chunks_exact(2)
        .filter(|f| f[0] != 0.0 || f[1] != 0.0)
        .map(|f| {
            let (tag, n) = decode_position(f[0], f[1])
                .unwrap_or_else(|| panic!("not a frame of the music: {f:?}"));
            assert_eq!(tag, 9);
            n
        })
        .collect();
    assert_eq!(heard.len(), FRAMES, "every frame reached the device once");
    assert!(
        heard.iter().enumerate().all(|(i, n)| i == *n),
        "frames in order"
    );
}

#[test]
fn the_default_route_plays_to_the_system_default() {
    alsa_config();
    let tmp = tempfile::tempdir().unwrap();
    let file = coded_file(tmp.path());
    let (engine, events) = start_engine("alsa-default");
    engine
        .apply_route(Box::new(BuiltinRoute::Device { device_id: None }))
        .unwrap();
    let track = engine.play(&file).unwrap();
    events.wait_finished(track);
    let all = events.all();
    assert!(errors(&all).is_empty(), "{:?}", errors(&all));
    assert!(
        all.iter()
            .any(|e| matches!(e, EngineEvent::OutputStarting { route } if route == "device")),
        "{all:#?}"
    );
    assert_eq!(engine.status().unwrap().frames_written, FRAMES as u64);
    engine.shutdown(TIMEOUT).unwrap();
}
