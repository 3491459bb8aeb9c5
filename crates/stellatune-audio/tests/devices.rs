//! Device output through the device sink with a virtual device layer: unplugging the device
//! in use, the system default moving, a chosen device coming back, and no device at all for
//! a while. The test takes the audio as the device would, so every step is driven by the
//! test and the audio heard before and after is compared frame by frame.

mod common;

use std::sync::Arc;

use common::*;
use stellatune_audio::sink::device::DeviceSink;
use stellatune_audio::sink::device::virtual_backend::{VirtualBackend, VirtualDevices};
use stellatune_audio::{Engine, EngineEvent, Sink, SinkError, SinkFactory};

const RATE: u32 = 44_100;
/// One millisecond of frames: a position kept in whole milliseconds is this close.
const MS_FRAMES: usize = RATE as usize / 1000 + 1;

struct VirtualRoute {
    devices: Arc<VirtualDevices>,
    device_id: Option<String>,
}

impl SinkFactory for VirtualRoute {
    fn describe(&self) -> String {
        "virtual-device".into()
    }

    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(DeviceSink::new(
            Arc::new(VirtualBackend(self.devices)),
            self.device_id,
        )))
    }
}

/// Plays a position-coded file through a virtual device route.
fn start(
    name: &str,
    devices: &Arc<VirtualDevices>,
    device_id: Option<&str>,
) -> (Engine, Arc<Events>, tempfile::TempDir) {
    let (engine, events) = start_engine_unfaded(name);
    let coded = position_coded_i16(RATE as usize * 20, 7);
    let dir = play_on(&engine, devices, device_id, &coded);
    (engine, events, dir)
}

/// Plays `samples` (stereo at `RATE`, written to a file in the returned directory) on
/// `engine` through a virtual device route.
fn play_on(
    engine: &Engine,
    devices: &Arc<VirtualDevices>,
    device_id: Option<&str>,
    samples: &[i16],
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("music.wav");
    write_wav_i16(&path, RATE, 2, samples);
    engine
        .apply_route(Box::new(VirtualRoute {
            devices: devices.clone(),
            device_id: device_id.map(str::to_owned),
        }))
        .unwrap();
    engine.play(&path).unwrap();
    dir
}

/// Frame positions heard on `device`: takes until `frames` frames came (at least one when
/// `frames` is 0), checking they follow each other without a gap.
fn hear(devices: &VirtualDevices, device: &str, frames: usize) -> Vec<usize> {
    let mut heard = Vec::new();
    wait_until(&format!("{frames} frames on {device}"), || {
        let samples = devices.take(device, 4096);
        for frame in samples.chunks_exact(2) {
            let (tag, position) = decode_position(frame[0], frame[1]).expect("a coded frame");
            assert_eq!(tag, 7);
            if let Some(last) = heard.last() {
                assert_eq!(position, last + 1, "frames heard in order, none lost");
            }
            heard.push(position);
        }
        if samples.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        heard.len() >= frames.max(1)
    });
    heard
}

fn wait_changed_to(events: &Events, route: &str, count: usize) {
    events.wait_for(&format!("output_changed to {route}"), |ev| {
        ev.iter()
            .filter(|e| matches!(e, EngineEvent::OutputChanged { route: r } if r == route))
            .count()
            >= count
    });
}

fn lost_messages(events: &Events) -> Vec<String> {
    events
        .all()
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OutputLost { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The first frame heard after a move is the one after the last frame heard before it
/// (give or take the millisecond a position is kept in): nothing skipped, nothing repeated
/// beyond that.
fn assert_goes_on(before: &[usize], after: &[usize]) {
    let last = *before.last().unwrap();
    let first = after[0];
    assert!(
        first <= last + 1 && first + MS_FRAMES > last,
        "heard up to frame {last}, went on at frame {first}"
    );
}

#[test]
fn unplugging_the_default_device_moves_to_the_new_default_from_the_same_position() {
    let devices = VirtualDevices::new();
    devices.plug("v:usb", "USB headphones");
    devices.plug("v:speakers", "Speakers");
    devices.set_default(Some("v:usb"));
    let (engine, events, _dir) = start("device-unplug", &devices, None);

    let before = hear(&devices, "v:usb", RATE as usize / 2);
    devices.unplug("v:usb");
    devices.set_default(Some("v:speakers"));
    wait_changed_to(&events, "device:v:speakers", 1);
    let after = hear(&devices, "v:speakers", RATE as usize / 2);

    assert_goes_on(&before, &after);
    let lost = lost_messages(&events);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(lost[0].contains("unplugged"), "{}", lost[0]);
    let all = events.all();
    let lost_at = all
        .iter()
        .position(|e| matches!(e, EngineEvent::OutputLost { route, .. } if route == "device:v:usb"))
        .expect("output_lost names the lost device");
    let changed_at = all
        .iter()
        .position(|e| matches!(e, EngineEvent::OutputChanged { .. }))
        .unwrap();
    assert!(lost_at < changed_at);
    assert!(errors(&all).is_empty(), "{:?}", errors(&all));
    assert_eq!(devices.opened(), ["v:usb", "v:speakers"]);
    engine.shutdown(TIMEOUT).unwrap();
}

#[test]
fn the_output_follows_the_system_default_when_it_moves() {
    let devices = VirtualDevices::new();
    devices.plug("v:speakers", "Speakers");
    devices.plug("v:hdmi", "HDMI");
    devices.set_default(Some("v:speakers"));
    let (engine, events, _dir) = start("device-default-moves", &devices, None);

    let mut before = hear(&devices, "v:speakers", 4096);
    devices.set_default(Some("v:hdmi"));
    // The device keeps playing until the engine notices the move; what it plays meanwhile
    // was heard too.
    while lost_messages(&events).is_empty() {
        let more = hear_some(&devices, "v:speakers");
        before.extend(more);
    }
    wait_changed_to(&events, "device:v:hdmi", 1);
    let after = hear(&devices, "v:hdmi", 4096);
    assert_goes_on(&before, &after);
    assert!(
        lost_messages(&events)[0].contains("moved"),
        "{:?}",
        lost_messages(&events)
    );
    engine.shutdown(TIMEOUT).unwrap();
}

/// Whatever `device` has queued now (possibly nothing).
fn hear_some(devices: &VirtualDevices, device: &str) -> Vec<usize> {
    let samples = devices.take(device, 4096);
    if samples.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    samples
        .chunks_exact(2)
        .map(|f| decode_position(f[0], f[1]).expect("a coded frame").1)
        .collect()
}

#[test]
fn a_chosen_device_plays_on_the_default_while_away_and_again_once_back() {
    let devices = VirtualDevices::new();
    devices.plug("v:speakers", "Speakers");
    devices.plug("v:dac", "USB DAC");
    devices.set_default(Some("v:speakers"));
    let (engine, events, _dir) = start("device-chosen", &devices, Some("v:dac"));

    let before = hear(&devices, "v:dac", 4096);
    devices.unplug("v:dac");
    wait_changed_to(&events, "device:v:speakers", 1);
    let mut meanwhile = hear(&devices, "v:speakers", 1);
    assert_goes_on(&before, &meanwhile);

    devices.plug("v:dac", "USB DAC");
    while !events
        .all()
        .iter()
        .any(|e| matches!(e, EngineEvent::OutputChanged { route } if route == "device:v:dac"))
    {
        meanwhile.extend(hear_some(&devices, "v:speakers"));
    }
    let after = hear(&devices, "v:dac", 4096);
    assert_goes_on(&meanwhile, &after);
    assert_eq!(devices.opened(), ["v:dac", "v:speakers", "v:dac"]);
    engine.shutdown(TIMEOUT).unwrap();
}

#[test]
fn with_no_device_at_all_the_engine_keeps_answering_and_plays_once_one_appears() {
    let devices = VirtualDevices::new();
    devices.plug("v:only", "Only device");
    let (engine, events, _dir) = start("device-none", &devices, None);

    let before = hear(&devices, "v:only", 4096);
    devices.unplug("v:only");
    events.wait_for("output_lost", |ev| {
        ev.iter()
            .any(|e| matches!(e, EngineEvent::OutputLost { .. }))
    });
    // Re-opening fails and is retried with backoff; commands are answered meanwhile.
    let status = engine.status().unwrap();
    assert_eq!(status.state, stellatune_audio::PlaybackState::Playing);
    engine.set_volume(1.0).unwrap();
    assert!(
        !events
            .all()
            .iter()
            .any(|e| matches!(e, EngineEvent::OutputChanged { .. }))
    );

    devices.plug("v:new", "New device");
    wait_changed_to(&events, "device:v:new", 1);
    let after = hear(&devices, "v:new", 4096);
    assert_goes_on(&before, &after);
    assert!(errors(&events.all()).is_empty());
    engine.shutdown(TIMEOUT).unwrap();
}

#[test]
fn a_chosen_device_that_is_not_connected_fails_the_track_with_a_clear_error() {
    let devices = VirtualDevices::new();
    devices.plug("v:speakers", "Speakers");
    let (engine, events, _dir) = start("device-absent", &devices, Some("v:gone"));
    events.wait_for("an error", |ev| !errors(ev).is_empty());
    let message = errors(&events.all()).remove(0);
    assert!(
        message.contains("`v:gone`") && message.contains("v:speakers"),
        "{message}"
    );
    engine.shutdown(TIMEOUT).unwrap();
}

/// The largest step between neighbouring samples of any channel, counting the step down to
/// the silence after the last sample.
fn max_step(samples: &[f32], channels: usize) -> f32 {
    let mut max = 0.0f32;
    for ch in 0..channels {
        let channel: Vec<f32> = samples.iter().skip(ch).step_by(channels).copied().collect();
        for w in channel.windows(2) {
            max = max.max((w[1] - w[0]).abs());
        }
        max = max.max(channel.last().map_or(0.0, |s| s.abs()));
    }
    max
}

/// Takes what `device` plays until `frames` frames came in all.
fn take_until(devices: &VirtualDevices, device: &str, heard: &mut Vec<f32>, frames: usize) {
    wait_until(&format!("{frames} frames on {device}"), || {
        let samples = devices.take(device, 1024);
        if samples.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        heard.extend(samples);
        heard.len() / 2 >= frames
    });
}

/// Lets the engine fill the device's ring past what was heard, so that a command lands with
/// audio queued.
fn wait_queued(engine: &Engine, heard: &[f32]) {
    let frames = (heard.len() / 2 + RATE as usize / 20) as u64;
    wait_frames_written(engine, frames);
}

/// A seek or a stop drops what the device's ring still holds (up to 150 ms): the device
/// callback fades it out instead of cutting it off, so the device never hears a step larger
/// than the music's own (a 1 kHz sine at half scale has no larger).
#[test]
fn a_seek_and_a_stop_fade_out_what_the_device_had_queued_instead_of_cutting_it() {
    let devices = VirtualDevices::new();
    devices.plug("v:out", "Speakers");
    let (engine, events) = start_engine("device-declick");
    let sine = tone_i16(RATE, RATE as usize * 3, 1_000.0, 0.5);
    let _dir = play_on(&engine, &devices, None, &sine);

    let mut heard = Vec::new();
    take_until(&devices, "v:out", &mut heard, RATE as usize / 4);
    wait_queued(&engine, &heard);
    engine.seek_ms(1_234).unwrap();
    assert!(engine.wait_output_settled(TIMEOUT));
    let at_seek = heard.len() / 2;
    take_until(&devices, "v:out", &mut heard, at_seek + RATE as usize / 4);
    wait_queued(&engine, &heard);
    engine.stop().unwrap();
    assert!(engine.wait_output_settled(TIMEOUT));
    // Whatever still comes: the device's fade-out of what it had queued.
    let mut quiet = 0;
    while quiet < 200 {
        let samples = devices.take("v:out", 1024);
        if samples.is_empty() {
            quiet += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        heard.extend(samples);
    }

    let written = engine.status().unwrap().frames_written;
    assert!(
        ((heard.len() / 2) as u64) < written,
        "the seek and the stop dropped queued audio: heard {} of {written} frames",
        heard.len() / 2
    );
    let sine_step = (2.0 * 0.5 * (std::f64::consts::PI * 1_000.0 / f64::from(RATE)).sin()) as f32;
    let step = max_step(&heard, 2);
    assert!(
        step <= sine_step * 1.01,
        "largest step {step}, the sine's own {sine_step}"
    );
    assert!(errors(&events.all()).is_empty(), "{:?}", events.all());
    engine.shutdown(TIMEOUT).unwrap();
}

/// The device fades out what a seek drops itself, so the engine adds no fade-out of its own
/// after the reset: written after the drop, that would be audio from about the ring's length
/// ahead of what was heard, which the device's fade-in turned into a faint swell (peaking
/// near a quarter of the music's level). Seeking into silence makes anything of it show:
/// after the device's fade-out, the device hears only silence.
#[test]
fn after_a_seek_the_device_hears_nothing_of_the_dropped_audio() {
    let devices = VirtualDevices::new();
    devices.plug("v:out", "Speakers");
    // One second of a 1 kHz sine at half scale, then two of silence.
    let mut samples = tone_i16(RATE, RATE as usize, 1_000.0, 0.5);
    samples.resize(RATE as usize * 3 * 2, 0);
    let (engine, events) = start_engine("device-no-ghost");
    let _dir = play_on(&engine, &devices, None, &samples);

    let mut heard = Vec::new();
    take_until(&devices, "v:out", &mut heard, RATE as usize / 4);
    wait_queued(&engine, &heard);
    engine.seek_ms(2_000).unwrap();
    assert!(engine.wait_output_settled(TIMEOUT));
    let at_seek = heard.len() / 2;
    take_until(&devices, "v:out", &mut heard, at_seek + RATE as usize / 10);
    engine.stop().unwrap();
    assert!(engine.wait_output_settled(TIMEOUT));

    let level = |from: usize, to: usize| {
        heard[from * 2..to * 2]
            .iter()
            .map(|s| s.abs())
            .fold(0.0f32, f32::max)
    };
    // The device's fade-out of the sine it had queued comes first...
    let fade = (RATE * stellatune_audio::sink::device::RESET_FADE_MS / 1000) as usize;
    assert!(
        level(at_seek, at_seek + fade / 4) > 0.2,
        "the fade-out starts at the sine's level"
    );
    // ...then silence: the new position, and nothing from the dropped future before it.
    let after = at_seek + fade + 1;
    let ghost = level(after, after + RATE as usize / 100);
    assert!(
        ghost < 0.01,
        "the 10 ms after the fade-out reach {ghost}, the sine's amplitude is 0.5"
    );
    assert!(
        level(after, heard.len() / 2) < 0.01,
        "only silence after the fade-out"
    );
    assert!(errors(&events.all()).is_empty(), "{:?}", events.all());
    engine.shutdown(TIMEOUT).unwrap();
}
