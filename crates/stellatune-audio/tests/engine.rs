//! Integration tests of the audio engine through its public API only. All audio is generated
//! here; output goes to the wav sink (unpaced, for speed) or to the paced null sink where
//! real-time pacing is the point. Nothing needs a sound card.
//!
//! Where a test must set something up (queue, seek, pause) before the output moves, it uses
//! `GatedWav` from the common module: the real unpaced `WavSink` behind a gate that takes
//! no frames until the test opens it. To the engine a held gate is a full device buffer, so
//! these tests do not race the render, however fast or slow the machine.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use stellatune_audio::{
    AudioError, BuiltinRoute, Engine, EngineConfig, EngineEvent, PlaybackState, StreamSpec,
    ThreadCounter, TrackId,
};

const RATE: u32 = 44_100;
const SHUTDOWN: Duration = Duration::from_secs(20);

fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|s| i16_to_f32(*s)).collect()
}

fn i16_to_i32(samples: &[i16]) -> Vec<i32> {
    samples.iter().map(|s| i32::from(*s)).collect()
}

/// Plays `input` to a fresh unpaced wav sink, waits until it has ended and the engine has
/// stopped, clears the route (which finalises the file) and returns what was written.
fn render(name: &str, input: &Path, out: &Path) -> (hound::WavSpec, Vec<f32>, Vec<EngineEvent>) {
    let (engine, events) = start_engine(name);
    engine.apply_route(wav_route(out)).expect("apply wav route");
    let id = engine.play(input).expect("play");
    events.wait_finished(id);
    engine.clear_route().expect("clear route");
    engine.shutdown(SHUTDOWN).expect("shutdown");
    let (spec, written) = read_wav_f32(out);
    (spec, written, events.all())
}

fn started_info(events: &[EngineEvent], track: TrackId) -> stellatune_audio::TrackInfo {
    events
        .iter()
        .find_map(|e| match e {
            EngineEvent::TrackStarted { track_id, info } if *track_id == track => {
                Some((**info).clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TrackStarted for track {track}: {events:#?}"))
}

fn states(events: &[EngineEvent]) -> Vec<PlaybackState> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::StateChanged { state } => Some(*state),
            _ => None,
        })
        .collect()
}

/// Decodes every written frame of position-coded audio into (tag, position).
fn decode_all(written: &[f32]) -> Vec<(u16, usize)> {
    written
        .chunks_exact(2)
        .enumerate()
        .map(|(i, f)| {
            decode_position(f[0], f[1])
                .unwrap_or_else(|| panic!("frame {i} ({f:?}) is not position-coded audio"))
        })
        .collect()
}

/// Asserts `frames[at..at + len]` is `tag` at positions `from, from + 1, ...`.
fn assert_run(frames: &[(u16, usize)], at: usize, tag: u16, from: usize, len: usize, what: &str) {
    assert!(
        frames.len() >= at + len,
        "{what}: output has {} frames, need {}",
        frames.len(),
        at + len
    );
    for i in 0..len {
        let want = (tag, from + i);
        assert_eq!(
            frames[at + i],
            want,
            "{what}: output frame {} is {:?}, expected {want:?}",
            at + i,
            frames[at + i]
        );
    }
}

// ---------------------------------------------------------------------------------------
// 1, 2. Lossless decode is exact
// ---------------------------------------------------------------------------------------

#[test]
fn wav_16bit_is_written_sample_exact() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 4 + 321;
    let input = music_i16(RATE, frames);
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let out = dir.path().join("out.wav");

    let (spec, written, events) = render("wav16", &src, &out);

    assert_eq!((spec.sample_rate, spec.channels), (RATE, 2));
    assert_eq!(written.len() / 2, frames, "frame count");
    assert_samples_close(&written, &to_f32(&input), 1e-4, "16-bit wav");

    let lifecycle = track_lifecycle(&events);
    assert_eq!(lifecycle.len(), 2, "{lifecycle:?}");
    let id = lifecycle[0].1;
    assert_eq!(lifecycle, vec![("started", id), ("ended", id)]);
    let info = started_info(&events, id);
    assert_eq!(info.sample_rate, RATE);
    assert_eq!(info.channels, 2);
    assert_eq!(info.total_frames, Some(frames as u64));
    assert_eq!(
        info.duration_ms,
        Some(frames as u64 * 1000 / u64::from(RATE))
    );
    assert_eq!(info.path, src);
    assert!(errors(&events).is_empty(), "{events:#?}");
    assert_eq!(
        states(&events),
        vec![PlaybackState::Playing, PlaybackState::Stopped]
    );
    // The route events bracket the whole session.
    assert!(matches!(
        events.first(),
        Some(EngineEvent::RouteChanged { route: Some(_) })
    ));
    assert!(matches!(
        events.last(),
        Some(EngineEvent::RouteChanged { route: None })
    ));
}

fn flac_roundtrip(bits: usize, tol: f32) {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 3 + 77;
    let samples = music_i32(RATE, frames, bits as u32);
    let src = dir.path().join(format!("music{bits}.flac"));
    write_flac(&src, RATE, 2, bits, &samples);
    let out = dir.path().join("out.wav");

    let (spec, written, events) = render(&format!("flac{bits}"), &src, &out);

    assert_eq!((spec.sample_rate, spec.channels), (RATE, 2));
    assert_eq!(written.len() / 2, frames, "frame count");
    let scale = (1u64 << (bits - 1)) as f64;
    let expected: Vec<f32> = samples
        .iter()
        .map(|s| (f64::from(*s) / scale) as f32)
        .collect();
    assert_samples_close(&written, &expected, tol, &format!("{bits}-bit flac"));

    let id = track_lifecycle(&events)[0].1;
    let info = started_info(&events, id);
    assert_eq!(info.codec, "flac");
    assert_eq!(info.total_frames, Some(frames as u64));
    assert!(errors(&events).is_empty(), "{events:#?}");
}

#[test]
fn flac_16bit_is_written_sample_exact() {
    flac_roundtrip(16, 1e-4);
}

#[test]
fn flac_24bit_is_written_sample_exact() {
    // Tighter than one 16-bit step (3e-5): the low 8 bits must survive too.
    flac_roundtrip(24, 1e-6);
}

// ---------------------------------------------------------------------------------------
// 3. Resampling into an already open sink
// ---------------------------------------------------------------------------------------

#[test]
fn track_at_48k_is_resampled_into_wav_sink_open_at_44k1() {
    let dir = tempfile::tempdir().unwrap();
    let first_frames = RATE as usize / 2;
    let first = music_i16(RATE, first_frames);
    let first_path = dir.path().join("first44.wav");
    write_wav_i16(&first_path, RATE, 2, &first);
    let second_frames = 48_000 * 2;
    let second = tones_i16(48_000, second_frames, 1000.0, 440.0, 0.5);
    let second_path = dir.path().join("second48.wav");
    write_wav_i16(&second_path, 48_000, 2, &second);
    let out = dir.path().join("out.wav");

    let (engine, events) = start_engine("resample");
    engine.apply_route(wav_route(&out)).unwrap();
    let a = engine.play(&first_path).unwrap();
    events.wait_finished(a);
    assert_eq!(
        engine.status().unwrap().output_spec,
        Some(StreamSpec::new(RATE, 2))
    );
    let b = engine.play(&second_path).unwrap();
    events.wait_finished(b);
    assert_eq!(
        engine.status().unwrap().output_spec,
        Some(StreamSpec::new(RATE, 2)),
        "the wav sink keeps its rate"
    );
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (spec, written) = read_wav_f32(&out);
    assert_eq!((spec.sample_rate, spec.channels), (RATE, 2));
    // The first track went through untouched.
    assert_samples_close(
        &written[..first_frames * 2],
        &to_f32(&first),
        1e-4,
        "first (44.1 kHz) track",
    );
    // Two seconds in, two seconds out (within 5 ms).
    let resampled = &written[first_frames * 2..];
    let got = resampled.len() / 2;
    let want = RATE as usize * 2;
    assert!(
        got.abs_diff(want) <= RATE as usize * 5 / 1000,
        "48 kHz track of 2 s became {got} frames at 44.1 kHz, expected about {want}"
    );
    // Same pitch and level, away from the edges.
    let middle = &resampled[4410 * 2..(got - 4410) * 2];
    let left_hz = estimate_frequency(middle, 2, 0, RATE);
    let right_hz = estimate_frequency(middle, 2, 1, RATE);
    assert!((left_hz - 1000.0).abs() < 3.0, "left tone is {left_hz} Hz");
    assert!(
        (right_hz - 440.0).abs() < 3.0,
        "right tone is {right_hz} Hz"
    );
    let level = rms(middle, 2, 0);
    let want_level = 0.5 / 2f64.sqrt();
    assert!(
        (level - want_level).abs() < 0.02 * want_level,
        "level {level}, expected {want_level}"
    );
    // The track info tells its own rate.
    assert_eq!(started_info(&events.all(), b).sample_rate, 48_000);
    assert!(errors(&events.all()).is_empty());
}

#[test]
fn queued_track_at_another_rate_is_resampled_after_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a_frames = RATE as usize;
    let a = music_i16(RATE, a_frames);
    let a_path = dir.path().join("a44.wav");
    write_wav_i16(&a_path, RATE, 2, &a);
    let b = tones_i16(48_000, 48_000, 750.0, 750.0, 0.4);
    let b_path = dir.path().join("b48.wav");
    write_wav_i16(&b_path, 48_000, 2, &b);
    let out = dir.path().join("out.wav");

    let (engine, events) = start_engine("queue-resample");
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let ida = engine.play(&a_path).unwrap();
    let idb = engine.queue_next(&b_path).unwrap();
    gate.open();
    events.wait_finished(idb);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (spec, written) = read_wav_f32(&out);
    assert_eq!(spec.sample_rate, RATE);
    assert_samples_close(&written[..a_frames * 2], &to_f32(&a), 1e-4, "first track");
    let tail = &written[a_frames * 2..];
    let got = tail.len() / 2;
    assert!(
        got.abs_diff(RATE as usize) <= RATE as usize * 5 / 1000,
        "1 s at 48 kHz became {got} frames"
    );
    let hz = estimate_frequency(&tail[4410 * 2..(got - 4410) * 2], 2, 0, RATE);
    assert!((hz - 750.0).abs() < 3.0, "tone is {hz} Hz");
    assert_eq!(
        track_lifecycle(&events.all()),
        vec![
            ("started", ida),
            ("ended", ida),
            ("started", idb),
            ("ended", idb)
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 4. Seeking
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Container {
    Wav,
    Flac,
}

fn write_position_coded(dir: &Path, name: &str, frames: usize, tag: u16, c: Container) -> PathBuf {
    let samples = position_coded_i16(frames, tag);
    match c {
        Container::Wav => {
            let p = dir.join(format!("{name}.wav"));
            write_wav_i16(&p, RATE, 2, &samples);
            p
        }
        Container::Flac => {
            let p = dir.join(format!("{name}.flac"));
            write_flac(&p, RATE, 2, 16, &i16_to_i32(&samples));
            p
        }
    }
}

/// Plays a 4 s position-coded file, lets `heard` frames out, seeks to `target_ms` (paused
/// first when `pause`), then lets the rest out and checks what was written: the frames heard
/// before the seek, then the track from the seek target to its end, with nothing else.
fn seek_case(c: Container, heard: u64, target_ms: u64, pause: bool) {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 4;
    let src = write_position_coded(dir.path(), "counter", frames, 0, c);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine_unfaded(&format!("seek-{c:?}"));
    let gate = Gate::allowing(heard);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, heard);
    if pause {
        engine.pause().unwrap();
    }
    let before = events.len();
    engine.seek_ms(target_ms).unwrap();

    // What the engine reports right after the seek.
    let status = engine.status().unwrap();
    assert!(
        status.position_ms.abs_diff(target_ms) <= 50,
        "status position {} after seek to {target_ms}",
        status.position_ms
    );
    let after_seek: Vec<(TrackId, u64)> = positions(&events.all()[before..]);
    let reported = after_seek
        .iter()
        .position(|(t, p)| *t == id && p.abs_diff(target_ms) <= 50)
        .unwrap_or_else(|| panic!("no position event near {target_ms} after seek: {after_seek:?}"));

    if pause {
        assert_eq!(
            status.state,
            PlaybackState::Paused,
            "a seek keeps the pause"
        );
        gate.open();
        let f1 = engine.status().unwrap().frames_written;
        std::thread::sleep(Duration::from_millis(300));
        let f2 = engine.status().unwrap().frames_written;
        assert_eq!(f1, f2, "frames were written while paused after a seek");
        engine.resume().unwrap();
    } else {
        gate.open();
    }
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let all = events.all();
    // Position events from the seek on never go back before the target and end at the
    // track's end.
    let later: Vec<u64> = positions(&all[before..])[reported..]
        .iter()
        .filter(|(t, _)| *t == id)
        .map(|(_, p)| *p)
        .collect();
    assert!(later.windows(2).all(|w| w[0] <= w[1]), "{later:?}");
    let end = *later.last().unwrap();
    assert!(
        end.abs_diff(4000) <= 50,
        "last position {end} ms of a 4000 ms track"
    );
    assert!(errors(&all).is_empty(), "{all:#?}");

    let (_, written) = read_wav_f32(&out);
    let decoded = decode_all(&written);
    let heard = heard as usize;
    assert_run(&decoded, 0, 0, 0, heard, "before the seek");
    let landed = decoded[heard].1;
    let target_frame = target_ms as usize * RATE as usize / 1000;
    // Well within the 50 ms a listener would notice: WAV and FLAC seek sample-accurately
    // (the engine drops the head of the packet the format lands on), so allow only 1 ms.
    assert!(
        landed.abs_diff(target_frame) <= RATE as usize / 1000,
        "seek to {target_ms} ms landed on frame {landed}, expected {target_frame}"
    );
    assert_run(
        &decoded,
        heard,
        0,
        landed,
        frames - landed,
        "after the seek, to the end",
    );
    assert_eq!(
        decoded.len(),
        heard + frames - landed,
        "nothing after the end"
    );
}

#[test]
fn seek_forward_while_paused_lands_on_target_wav() {
    seek_case(Container::Wav, 10_000, 1500, true);
}

#[test]
fn seek_backward_while_playing_lands_on_target_wav() {
    seek_case(Container::Wav, 66_150, 500, false);
}

#[test]
fn seek_forward_lands_on_target_flac() {
    seek_case(Container::Flac, 10_000, 2345, false);
}

#[test]
fn seek_backward_while_paused_lands_on_target_flac() {
    seek_case(Container::Flac, 100_000, 1000, true);
}

/// The first track is short, so while its start is still being heard the decoder has already
/// finished it and moved on to the queued one. Seeking in the track being heard must still
/// work, and the queued track must still follow in full.
#[test]
fn seek_in_heard_track_after_decoder_moved_on_keeps_queued_track() {
    let dir = tempfile::tempdir().unwrap();
    let a_frames = RATE as usize / 2;
    let b_frames = RATE as usize;
    let a = write_position_coded(dir.path(), "a", a_frames, 1, Container::Wav);
    let b = write_position_coded(dir.path(), "b", b_frames, 2, Container::Wav);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine_unfaded("seek-moved-on");
    let gate = Gate::allowing(2000);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let ida = engine.play(&a).unwrap();
    let idb = engine.queue_next(&b).unwrap();
    wait_frames_written(&engine, 2000);
    // Give the decoder time to run ahead into track B. The expected output is the same
    // whether or not it got there; this only makes the interesting path likely.
    std::thread::sleep(Duration::from_millis(300));
    engine.seek_ms(300).unwrap();
    assert_eq!(engine.status().unwrap().track_id, Some(ida));
    assert_eq!(engine.status().unwrap().queued_next, Some(idb));
    gate.open();
    events.wait_finished(idb);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (_, written) = read_wav_f32(&out);
    let decoded = decode_all(&written);
    assert_run(&decoded, 0, 1, 0, 2000, "A before the seek");
    let landed = decoded[2000].1;
    assert!(
        landed.abs_diff(13_230) <= 44,
        "seek to 300 ms landed on frame {landed}"
    );
    let a_rest = a_frames - landed;
    assert_run(&decoded, 2000, 1, landed, a_rest, "A after the seek");
    assert_run(&decoded, 2000 + a_rest, 2, 0, b_frames, "B in full");
    assert_eq!(decoded.len(), 2000 + a_rest + b_frames);
    assert_eq!(
        track_lifecycle(&events.all()),
        vec![
            ("started", ida),
            ("ended", ida),
            ("started", idb),
            ("ended", idb)
        ]
    );
}

#[test]
fn seek_refuses_when_nothing_plays_or_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let src = write_position_coded(dir.path(), "c", RATE as usize * 2, 0, Container::Wav);
    let out = dir.path().join("out.wav");
    let (engine, _events) = start_engine("seek-errors");
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    assert_eq!(engine.seek_ms(100), Err(AudioError::NothingPlaying));
    let id = engine.play(&src).unwrap();
    assert!(matches!(
        engine.seek_ms(60_000),
        Err(AudioError::InvalidArgument(_))
    ));
    let status = engine.status().unwrap();
    assert_eq!(
        status.track_id,
        Some(id),
        "a refused seek leaves the track playing"
    );
    assert_eq!(status.state, PlaybackState::Playing);
    engine.shutdown(SHUTDOWN).unwrap();
}

/// Dragging the seek bar to the very end of a track ends it (TrackEnded, then Stopped)
/// instead of leaving the engine "playing" nothing.
fn seek_to_the_very_end_case(c: Container) {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let src = write_position_coded(dir.path(), "end", frames, 0, c);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine(&format!("seek-end-{c:?}"));
    let gate = Gate::allowing(1000);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let id = engine.play(&src).unwrap();
    let duration = engine.status().unwrap().track.unwrap().duration_ms.unwrap();
    assert_eq!(duration, 2000);
    wait_frames_written(&engine, 1000);
    engine.seek_ms(duration).unwrap();
    gate.open();
    events.wait_finished(id);
    let status = engine.status().unwrap();
    assert_eq!(status.state, PlaybackState::Stopped);
    assert_eq!(status.track_id, None);
    engine.shutdown(SHUTDOWN).unwrap();
}

#[test]
fn seek_to_the_very_end_ends_the_track_wav() {
    seek_to_the_very_end_case(Container::Wav);
}

#[test]
fn seek_to_the_very_end_ends_the_track_flac() {
    seek_to_the_very_end_case(Container::Flac);
}

// ---------------------------------------------------------------------------------------
// 5. Pause
// ---------------------------------------------------------------------------------------

#[test]
fn pause_stops_sample_flow_on_paced_null_sink() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("long.wav");
    write_wav_i16(
        &src,
        RATE,
        2,
        &tone_i16(RATE, RATE as usize * 20, 440.0, 0.3),
    );
    let (engine, events) = start_engine_unfaded("pause");
    engine.apply_route(Box::new(BuiltinRoute::Null)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 4410);

    engine.pause().unwrap();
    let s1 = engine.status().unwrap();
    assert_eq!(s1.state, PlaybackState::Paused);
    std::thread::sleep(Duration::from_millis(300));
    let s2 = engine.status().unwrap();
    assert_eq!(
        s1.frames_written, s2.frames_written,
        "samples flowed while paused"
    );
    assert_eq!(
        s1.position_ms, s2.position_ms,
        "position moved while paused"
    );
    assert_eq!(s2.track_id, Some(id));
    // Pausing twice is harmless.
    engine.pause().unwrap();

    engine.resume().unwrap();
    assert_eq!(engine.status().unwrap().state, PlaybackState::Playing);
    wait_until("frames to flow again after resume", || {
        engine.status().unwrap().frames_written > s2.frames_written
    });
    // A paced sink runs at real time: 20 s of music is nowhere near done.
    assert_eq!(engine.status().unwrap().track_id, Some(id));

    engine.stop().unwrap();
    let s3 = engine.status().unwrap();
    assert_eq!(s3.state, PlaybackState::Stopped);
    assert_eq!(s3.track_id, None);
    assert_eq!(engine.pause(), Err(AudioError::NothingPlaying));
    assert_eq!(engine.resume(), Err(AudioError::NothingPlaying));
    let all = events.all();
    assert!(finished_after(&all, id), "stop ends the track: {all:#?}");
    assert_eq!(
        states(&all),
        vec![
            PlaybackState::Playing,
            PlaybackState::Paused,
            PlaybackState::Playing,
            PlaybackState::Stopped
        ]
    );
    engine.shutdown(SHUTDOWN).unwrap();
}

#[test]
fn pause_and_resume_lose_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let input = music_i16(RATE, frames);
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine_unfaded("pause-exact");
    let gate = Gate::allowing(5000);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 5000);
    engine.pause().unwrap();
    gate.open();
    let f1 = engine.status().unwrap().frames_written;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(engine.status().unwrap().frames_written, f1);
    engine.resume().unwrap();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    assert_samples_close(&written, &to_f32(&input), 1e-4, "paused and resumed");
}

// ---------------------------------------------------------------------------------------
// 6. Gapless
// ---------------------------------------------------------------------------------------

fn gapless_case(a_frames: usize, b_frames: usize, let_decoder_finish_a: bool) {
    let dir = tempfile::tempdir().unwrap();
    let a = music_i16(RATE, a_frames);
    let b = tones_i16(RATE, b_frames, 330.0, 550.0, 0.7);
    let a_path = dir.path().join("a.wav");
    let b_path = dir.path().join("b.wav");
    write_wav_i16(&a_path, RATE, 2, &a);
    write_wav_i16(&b_path, RATE, 2, &b);
    let out = dir.path().join("out.wav");

    let (engine, events) = start_engine("gapless");
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let ida = engine.play(&a_path).unwrap();
    if let_decoder_finish_a {
        // A is shorter than the decode-ahead queue: let the decoder reach its end before B
        // is queued. The expected output does not depend on whether it did.
        std::thread::sleep(Duration::from_millis(300));
    }
    let idb = engine.queue_next(&b_path).unwrap();
    assert_ne!(ida, idb);
    let status = engine.status().unwrap();
    assert_eq!(status.track_id, Some(ida));
    assert_eq!(status.queued_next, Some(idb));
    gate.open();
    events.wait_finished(idb);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (_, written) = read_wav_f32(&out);
    let mut expected = to_f32(&a);
    expected.extend(to_f32(&b));
    assert_eq!(written.len() / 2, a_frames + b_frames, "len(A) + len(B)");
    assert_samples_close(&written, &expected, 1e-4, "A then B");

    let all = events.all();
    assert_eq!(
        track_lifecycle(&all),
        vec![
            ("started", ida),
            ("ended", ida),
            ("started", idb),
            ("ended", idb)
        ]
    );
    assert_eq!(
        states(&all),
        vec![PlaybackState::Playing, PlaybackState::Stopped],
        "no stop between gapless tracks"
    );
    assert!(errors(&all).is_empty(), "{all:#?}");
}

#[test]
fn gapless_queue_is_sample_exact() {
    gapless_case(RATE as usize * 2 + 1001, RATE as usize + 555, false);
}

#[test]
fn gapless_queue_after_decoder_finished_first_track() {
    gapless_case(RATE as usize / 4 + 7, RATE as usize / 2, true);
}

/// Where the decoder is when the queue is changed must not matter: `queue_next` has one slot
/// and a second call replaces the queued track. With `decoder_ahead` the first track is
/// short, so the decoder finishes it and starts on the first queued one before the second
/// call; without, it is longer than the engine's decode-ahead (32 blocks, under a second),
/// so with the output held the decoder cannot have reached the queued track.
fn requeue_case(decoder_ahead: bool) {
    let dir = tempfile::tempdir().unwrap();
    let a_len = if decoder_ahead {
        RATE as usize / 4
    } else {
        RATE as usize * 3
    };
    let a = write_position_coded(dir.path(), "a", a_len, 1, Container::Wav);
    let b = write_position_coded(dir.path(), "b", RATE as usize / 2, 2, Container::Wav);
    let c = write_position_coded(dir.path(), "c", RATE as usize / 2, 3, Container::Wav);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("requeue");
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let ida = engine.play(&a).unwrap();
    let _idb = engine.queue_next(&b).unwrap();
    if decoder_ahead {
        std::thread::sleep(Duration::from_millis(300));
    }
    let idc = engine.queue_next(&c).unwrap();
    assert_eq!(engine.status().unwrap().queued_next, Some(idc));
    gate.open();
    events.wait_finished(idc);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    let decoded = decode_all(&written);
    assert_run(&decoded, 0, 1, 0, a_len, "A");
    assert_run(&decoded, a_len, 3, 0, RATE as usize / 2, "C right after A");
    assert_eq!(
        decoded.len(),
        a_len + RATE as usize / 2,
        "B replaced, never heard"
    );
    assert_eq!(
        track_lifecycle(&events.all()),
        vec![
            ("started", ida),
            ("ended", ida),
            ("started", idc),
            ("ended", idc)
        ]
    );
}

#[test]
fn queue_next_twice_replaces_the_queued_track() {
    requeue_case(false);
}

#[test]
fn queue_next_replaces_a_queued_track_the_decoder_already_started() {
    requeue_case(true);
}

#[test]
fn play_replaces_the_current_track_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_position_coded(dir.path(), "a", RATE as usize * 3, 1, Container::Wav);
    let b = write_position_coded(dir.path(), "b", RATE as usize, 2, Container::Wav);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine_unfaded("replace");
    let gate = Gate::allowing(3000);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let ida = engine.play(&a).unwrap();
    wait_frames_written(&engine, 3000);
    let idb = engine.play(&b).unwrap();
    gate.open();
    events.wait_finished(idb);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    let decoded = decode_all(&written);
    assert_run(&decoded, 0, 1, 0, 3000, "A until replaced");
    assert_run(&decoded, 3000, 2, 0, RATE as usize, "B in full");
    assert_eq!(decoded.len(), 3000 + RATE as usize);
    assert_eq!(
        track_lifecycle(&events.all()),
        vec![
            ("started", ida),
            ("ended", ida),
            ("started", idb),
            ("ended", idb)
        ]
    );
}

// ---------------------------------------------------------------------------------------
// 7. Volume
// ---------------------------------------------------------------------------------------

#[test]
fn volume_set_before_play_scales_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize;
    let input = music_i16(RATE, frames);
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("volume");
    engine.set_volume(0.5).unwrap();
    assert_eq!(engine.status().unwrap().volume, 0.5);
    engine.apply_route(wav_route(&out)).unwrap();
    let id = engine.play(&src).unwrap();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (_, written) = read_wav_f32(&out);
    let input = to_f32(&input);
    assert_eq!(written.len(), input.len());
    // After the short smoothing ramp (well under 100 ms) the gain is exactly 0.5 ...
    let settled = 4410 * 2;
    let halved: Vec<f32> = input[settled..].iter().map(|s| s * 0.5).collect();
    assert_samples_close(&written[settled..], &halved, 1e-4, "at volume 0.5");
    // ... and no sample is ever louder than the source.
    for (i, (w, s)) in written.iter().zip(&input).enumerate() {
        assert!(w.abs() <= s.abs() + 1e-6, "sample {i}: {w} louder than {s}");
    }
}

#[test]
fn volume_change_mid_track_ramps_without_a_jump() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let input = tone_i16(RATE, frames, 200.0, 0.5);
    let src = dir.path().join("tone.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("volume-ramp");
    let gate = Gate::allowing(20_000);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 20_000);
    engine.set_volume(0.0).unwrap();
    gate.open();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (_, written) = read_wav_f32(&out);
    let input = to_f32(&input);
    assert_eq!(written.len(), input.len());
    assert_samples_close(
        &written[..40_000],
        &input[..40_000],
        1e-4,
        "before the change",
    );
    // The gain falls smoothly: never up, never a big step, and silent within 100 ms.
    let mut last_gain = 1.0f32;
    for i in 20_000..20_000 + 4410 {
        let (w, s) = (written[i * 2], input[i * 2]);
        if s.abs() > 0.05 {
            let gain = w / s;
            assert!(
                gain <= last_gain + 1e-4 && last_gain - gain < 0.05,
                "frame {i}: gain {gain} after {last_gain}"
            );
            last_gain = gain;
        }
    }
    assert!(
        written[(20_000 + 4410) * 2..].iter().all(|s| *s == 0.0),
        "volume 0.0 is silence once the ramp is over"
    );
}

#[test]
fn invalid_volume_is_rejected() {
    let (engine, _events) = start_engine("volume-invalid");
    engine.set_volume(0.25).unwrap();
    for bad in [
        f32::NAN,
        -1.0,
        3.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        2.0001,
    ] {
        match engine.set_volume(bad) {
            Err(AudioError::InvalidArgument(_)) => {}
            other => panic!("set_volume({bad}) gave {other:?}"),
        }
    }
    assert_eq!(
        engine.status().unwrap().volume,
        0.25,
        "a refused volume changes nothing"
    );
    engine.set_volume(0.0).unwrap();
    engine.set_volume(2.0).unwrap();
    assert_eq!(engine.status().unwrap().volume, 2.0);
    engine.shutdown(SHUTDOWN).unwrap();
}

/// A volume set while nothing plays applies from a new track's first sample: muting and then
/// pressing play must not let a burst of full-volume audio out while the gain ramps down.
#[test]
fn volume_set_while_stopped_applies_from_the_first_sample() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize / 2;
    let input = tone_i16(RATE, frames, 440.0, 0.5);
    let src = dir.path().join("tone.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let (engine, events) = start_engine("volume-first-sample");
    for volume in [0.0f32, 0.5] {
        let out = dir.path().join(format!("out{volume}.wav"));
        engine.set_volume(volume).unwrap();
        engine.apply_route(wav_route(&out)).unwrap();
        let id = engine.play(&src).unwrap();
        events.wait_finished(id);
        engine.clear_route().unwrap();
        let (_, written) = read_wav_f32(&out);
        let expected: Vec<f32> = to_f32(&input).iter().map(|s| s * volume).collect();
        assert_samples_close(
            &written,
            &expected,
            1e-6,
            &format!("volume {volume} from frame 0"),
        );
    }
    engine.shutdown(SHUTDOWN).unwrap();
}

// ---------------------------------------------------------------------------------------
// 8. Bad input
// ---------------------------------------------------------------------------------------

/// Calls `engine.play(path)` on another thread so that a play that blocks fails the test
/// instead of hanging it.
#[cfg(unix)] // only the FIFO case needs a bound
fn play_bounded(engine: &std::sync::Arc<Engine>, path: &Path) -> Result<TrackId, AudioError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let engine = engine.clone();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(engine.play(&path));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("play blocked"))
}

#[test]
fn bad_inputs_are_refused_and_the_engine_keeps_playing() {
    let dir = tempfile::tempdir().unwrap();
    let good_frames = RATE as usize / 4;
    let good = dir.path().join("good.wav");
    write_wav_i16(&good, RATE, 2, &music_i16(RATE, good_frames));
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("bad-input");
    let engine = std::sync::Arc::new(engine);
    engine.apply_route(wav_route(&out)).unwrap();

    let mut played = 0usize;
    let play_good = |played: &mut usize| {
        let id = engine
            .play(&good)
            .expect("a good file plays after a bad one");
        events.wait_finished(id);
        *played += 1;
    };

    // A missing file.
    let missing = dir.path().join("missing.flac");
    assert_eq!(
        engine.play(&missing),
        Err(AudioError::NotFound(missing.clone()))
    );
    assert_eq!(
        engine.queue_next(&missing),
        Err(AudioError::NotFound(missing.clone()))
    );
    play_good(&mut played);

    // A directory.
    let sub = dir.path().join("album.flac");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(engine.play(&sub), Err(AudioError::NotAFile(sub.clone())));
    play_good(&mut played);

    // Random bytes with a FLAC name.
    let noise = dir.path().join("x.flac");
    let mut state = 0x2545_f491_u32;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(&noise, &bytes).unwrap();
    match engine.play(&noise) {
        Err(AudioError::Unsupported { path, .. } | AudioError::Decode { path, .. }) => {
            assert_eq!(path, noise)
        }
        other => panic!("random bytes as flac gave {other:?}"),
    }
    play_good(&mut played);

    // Text with an MP3 name.
    let text = dir.path().join("x.mp3");
    std::fs::write(
        &text,
        "This is not an MP3 file, just some text.\n".repeat(200),
    )
    .unwrap();
    match engine.play(&text) {
        Err(AudioError::Unsupported { .. } | AudioError::Decode { .. }) => {}
        other => panic!("text as mp3 gave {other:?}"),
    }
    play_good(&mut played);

    // An empty WAV.
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        engine.play(&empty),
        Err(AudioError::Unsupported { .. } | AudioError::Decode { .. })
    ));
    play_good(&mut played);

    // A FIFO: opening one for reading blocks until a writer comes, so it must be refused
    // before it is opened. (Unix only: Windows has no FIFOs in the file system; the
    // directory below is its counterpart of a path that is no regular file.)
    #[cfg(unix)]
    {
        let fifo = dir.path().join("pipe.wav");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        assert_eq!(
            play_bounded(&engine, &fifo),
            Err(AudioError::NotAFile(fifo.clone()))
        );
        play_good(&mut played);
    }
    let folder = dir.path().join("folder.wav");
    std::fs::create_dir(&folder).unwrap();
    assert!(engine.play(&folder).is_err());
    play_good(&mut played);

    // A bad file picked while a good one plays leaves the good one playing.
    let gate_out = dir.path().join("gated.wav");
    let gate = Gate::allowing(1000);
    engine.apply_route(gated_route(&gate_out, &gate)).unwrap();
    let id = engine.play(&good).unwrap();
    wait_frames_written(&engine, 1000);
    assert!(engine.play(&noise).is_err());
    let status = engine.status().unwrap();
    assert_eq!(status.track_id, Some(id));
    assert_eq!(status.state, PlaybackState::Playing);
    gate.open();
    events.wait_finished(id);

    engine.clear_route().unwrap();
    // The output thread closes (finalises) the files; shutdown joins it.
    engine.shutdown(SHUTDOWN).unwrap();
    let all = events.all();
    assert!(
        errors(&all).is_empty(),
        "refused files are errors of the call: {all:#?}"
    );
    let (_, written) = read_wav_f32(&out);
    assert_eq!(
        written.len() / 2,
        played * good_frames,
        "every good play complete"
    );
    let (_, gated) = read_wav_f32(&gate_out);
    assert_eq!(gated.len() / 2, good_frames);

    engine.shutdown(SHUTDOWN).unwrap();
}

#[test]
fn truncated_flac_plays_what_it_has_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let full = dir.path().join("full.flac");
    write_flac(&full, RATE, 2, 16, &i16_to_i32(&music_i16(RATE, frames)));
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("truncated");
    engine.apply_route(wav_route(&out)).unwrap();
    let id = engine.play(&cut).unwrap();
    events.wait_finished(id);
    let written = engine.status().unwrap().frames_written;
    assert!(
        written > 0 && written < frames as u64,
        "{written} frames of a half file"
    );
    // And the engine goes on.
    let id = engine.play(&full).unwrap();
    events.wait_finished(id);
    engine.shutdown(SHUTDOWN).unwrap();
}

#[test]
fn play_without_route_is_no_route() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.wav");
    write_wav_i16(&src, RATE, 2, &music_i16(RATE, 4410));
    let (engine, events) = start_engine("no-route");
    assert_eq!(engine.play(&src), Err(AudioError::NoRoute));
    assert_eq!(engine.queue_next(&src), Err(AudioError::NothingPlaying));
    let status = engine.status().unwrap();
    assert_eq!(status.state, PlaybackState::Stopped);
    assert_eq!(status.route, None);
    assert_eq!(status.track_id, None);
    // Once a route is applied the same file plays.
    let out = dir.path().join("out.wav");
    engine.apply_route(wav_route(&out)).unwrap();
    let id = engine.play(&src).unwrap();
    events.wait_finished(id);
    // Clearing the route takes us back to NoRoute.
    engine.clear_route().unwrap();
    assert_eq!(engine.play(&src), Err(AudioError::NoRoute));
    engine.shutdown(SHUTDOWN).unwrap();
}

// ---------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------

/// Switching the output mid-track hands over without losing or repeating a sample.
#[test]
fn route_switch_mid_track_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let input = music_i16(RATE, frames);
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let first = dir.path().join("first.wav");
    let second = dir.path().join("second.wav");
    let (engine, events) = start_engine("route-switch");
    let gate = Gate::allowing(30_000);
    engine.apply_route(gated_route(&first, &gate)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 30_000);
    // The new route is held too, so the status below cannot race the end of the track.
    let second_gate = Gate::allowing(0);
    let route = gated_route(&second, &second_gate);
    let describe = route.describe();
    engine.apply_route(route).unwrap();
    let status = engine.status().unwrap();
    assert_eq!(status.track_id, Some(id), "the track goes on");
    assert_eq!(status.state, PlaybackState::Playing);
    assert_eq!(status.route, Some(describe));
    second_gate.open();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();

    let (_, a) = read_wav_f32(&first);
    let (_, b) = read_wav_f32(&second);
    assert_eq!(
        a.len() / 2,
        30_000,
        "the first route was closed and finalised"
    );
    let mut joined = a;
    joined.extend(b);
    assert_samples_close(&joined, &to_f32(&input), 1e-4, "first route + second route");
    let routes: Vec<Option<String>> = events
        .all()
        .into_iter()
        .filter_map(|e| match e {
            EngineEvent::RouteChanged { route } => Some(route),
            _ => None,
        })
        .collect();
    assert_eq!(routes.len(), 3, "{routes:?}");
    assert_eq!(routes[2], None);
}

#[test]
fn clear_route_while_playing_ends_the_track() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &music_i16(RATE, RATE as usize * 2));
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("clear-route");
    let gate = Gate::allowing(5000);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 5000);
    engine.clear_route().unwrap();
    let status = engine.status().unwrap();
    assert_eq!(status.state, PlaybackState::Stopped);
    assert_eq!(status.route, None);
    assert!(finished_after(&events.all(), id));
    // The output thread closes the sink right after; shutdown joins it. The file is a
    // valid, finalised WAV with what was heard.
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    assert_eq!(written.len() / 2, 5000);
}

// ---------------------------------------------------------------------------------------
// 9. Threads
// ---------------------------------------------------------------------------------------

fn counted_engine(name: &str) -> (Engine, ThreadCounter, std::sync::Arc<Events>) {
    let threads = ThreadCounter::new();
    let events = Events::new();
    let engine = Engine::start(
        EngineConfig {
            name: name.into(),
            threads: threads.clone(),
            ..Default::default()
        },
        events.handler(),
    )
    .unwrap();
    // A round trip through the control thread: it has started its decode worker by then.
    engine.status().unwrap();
    (engine, threads, events)
}

#[test]
fn shutdown_joins_every_thread() {
    let (engine, threads, _) = counted_engine("threads-idle");
    assert_eq!(
        threads.alive(),
        3,
        "one control thread, one output thread and one decode worker"
    );
    engine.shutdown(SHUTDOWN).unwrap();
    assert_eq!(
        threads.alive(),
        0,
        "all threads finished when shutdown returns"
    );
}

#[test]
fn shutdown_while_playing_joins_every_thread() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("long.wav");
    write_wav_i16(
        &src,
        RATE,
        2,
        &tone_i16(RATE, RATE as usize * 10, 440.0, 0.3),
    );
    let (engine, threads, events) = counted_engine("threads-playing");
    engine.apply_route(Box::new(BuiltinRoute::Null)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 4410);
    assert_eq!(threads.alive(), 3);
    engine.shutdown(SHUTDOWN).unwrap();
    assert_eq!(threads.alive(), 0);
    assert!(finished_after(&events.all(), id), "shutdown ends the track");
}

#[test]
fn shutdown_with_held_output_joins_every_thread() {
    // The output takes nothing, so the decoder's queue is full and it waits to send.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &music_i16(RATE, RATE as usize * 5));
    let (engine, threads, _) = counted_engine("threads-held");
    let gate = Gate::allowing(0);
    engine
        .apply_route(gated_route(&dir.path().join("out.wav"), &gate))
        .unwrap();
    engine.play(&src).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    engine.shutdown(SHUTDOWN).unwrap();
    assert_eq!(threads.alive(), 0);
}

#[test]
fn commands_after_shutdown_answer_engine_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.wav");
    write_wav_i16(&src, RATE, 2, &music_i16(RATE, 4410));
    let (engine, threads, _) = counted_engine("threads-after");
    engine.shutdown(SHUTDOWN).unwrap();
    assert_eq!(threads.alive(), 0);
    assert_eq!(engine.play(&src), Err(AudioError::EngineStopped));
    assert_eq!(engine.pause(), Err(AudioError::EngineStopped));
    assert_eq!(engine.status().map(|_| ()), Err(AudioError::EngineStopped));
    assert_eq!(
        engine.shutdown(SHUTDOWN),
        Ok(()),
        "a second shutdown is a no-op"
    );
}

#[test]
fn dropping_the_engine_joins_every_thread() {
    let (engine, threads, _) = counted_engine("threads-drop");
    assert_eq!(threads.alive(), 3);
    drop(engine);
    assert_eq!(threads.alive(), 0);
}

// ---------------------------------------------------------------------------------------
// 10. Events
// ---------------------------------------------------------------------------------------

#[test]
fn position_events_are_rate_limited_during_unpaced_render() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 3;
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &music_i16(RATE, frames));
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("events");
    engine.apply_route(wav_route(&out)).unwrap();
    let t0 = Instant::now();
    let id = engine.play(&src).unwrap();
    events.wait_finished(id);
    let wall = t0.elapsed().as_secs_f64();
    engine.shutdown(SHUTDOWN).unwrap();

    let all = events.all();
    let pos: Vec<u64> = positions(&all)
        .into_iter()
        .filter(|(t, _)| *t == id)
        .map(|(_, p)| p)
        .collect();
    // The engine promises at most a few a second (every 250 ms, plus the ones a seek or a
    // track's end forces). Rendering 3 s takes ~115 codec blocks: one event per block
    // would be far over this bound even on a very slow machine.
    let allowed = 3 + (wall * 5.0).ceil() as usize;
    assert!(
        pos.len() <= allowed,
        "{} position events in {wall:.3} s of wall time (allowed {allowed})",
        pos.len()
    );
    assert!(!pos.is_empty(), "at least the final position is reported");
    assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{pos:?}");
    let last = *pos.last().unwrap();
    assert!(
        last.abs_diff(3000) <= 50,
        "final position {last} ms of 3000 ms"
    );
    let duration = started_info(&all, id).duration_ms;
    assert_eq!(duration, Some(3000));
}

// ---------------------------------------------------------------------------------------
// Lossy formats, when their encoders are installed
// ---------------------------------------------------------------------------------------

/// Encodes two tones with an external encoder and checks the decode keeps length, pitch and
/// level. Lossy codecs are not sample-exact; these check what a listener would notice.
fn lossy_case(encoder: &str, ext: &str, args: impl Fn(&Path, &Path) -> Vec<String>) {
    if !have_program(encoder) {
        eprintln!("skipping: `{encoder}` is not on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 3;
    let wav = dir.path().join("tones.wav");
    write_wav_i16(&wav, RATE, 2, &tones_i16(RATE, frames, 440.0, 1000.0, 0.5));
    let encoded = dir.path().join(format!("tones.{ext}"));
    let args = args(&wav, &encoded);
    run_encoder(
        encoder,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out = dir.path().join("out.wav");

    let (spec, written, events) = render(&format!("lossy-{ext}"), &encoded, &out);
    assert_eq!((spec.sample_rate, spec.channels), (RATE, 2));
    let got = written.len() / 2;
    // Gapless decoding: the LAME tag (MP3) and the granule positions (Ogg) state the
    // encoder's delay and padding, and the engine trims both.
    assert_eq!(got, frames, "{ext}: decoded {got} frames of {frames}");
    let middle = &written[4410 * 2..(got - 4410) * 2];
    let left = estimate_frequency(middle, 2, 0, RATE);
    let right = estimate_frequency(middle, 2, 1, RATE);
    assert!((left - 440.0).abs() < 3.0, "{ext}: left tone {left} Hz");
    assert!((right - 1000.0).abs() < 5.0, "{ext}: right tone {right} Hz");
    let want = 0.5 / 2f64.sqrt();
    for ch in 0..2 {
        let level = rms(middle, 2, ch);
        assert!(
            (level - want).abs() < 0.1 * want,
            "{ext}: channel {ch} level {level}, expected {want}"
        );
    }
    let id = track_lifecycle(&events)[0].1;
    let info = started_info(&events, id);
    if let Some(d) = info.duration_ms {
        assert!(d.abs_diff(3000) <= 60, "{ext}: stated duration {d} ms");
    }
    assert!(errors(&events).is_empty(), "{events:#?}");
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

#[test]
fn mp3_decodes_when_lame_is_installed() {
    lossy_case("lame", "mp3", |wav, mp3| {
        vec![
            "--quiet".into(),
            "-b".into(),
            "192".into(),
            path_str(wav),
            path_str(mp3),
        ]
    });
}

#[test]
fn ogg_vorbis_decodes_when_oggenc_is_installed() {
    lossy_case("oggenc", "ogg", |wav, ogg| {
        vec![
            "-Q".into(),
            "-q".into(),
            "5".into(),
            "-o".into(),
            path_str(ogg),
            path_str(wav),
        ]
    });
}

/// A test stage: multiplies by a gain, or fails on its n-th block.
struct Gain {
    gain: f32,
    fail_on_block: Option<usize>,
    blocks: usize,
    prepared: std::sync::Arc<std::sync::Mutex<Vec<stellatune_audio::StreamSpec>>>,
}

impl stellatune_audio::DspStage for Gain {
    fn describe(&self) -> String {
        format!("gain {}", self.gain)
    }
    fn prepare(
        &mut self,
        spec: stellatune_audio::StreamSpec,
    ) -> Result<(), stellatune_audio::SinkError> {
        self.prepared.lock().unwrap().push(spec);
        Ok(())
    }
    fn process(&mut self, interleaved: &mut [f32]) -> Result<(), stellatune_audio::SinkError> {
        self.blocks += 1;
        if self.fail_on_block == Some(self.blocks) {
            return Err(stellatune_audio::SinkError::device("deliberate failure"));
        }
        interleaved.iter_mut().for_each(|s| *s *= self.gain);
        Ok(())
    }
    fn reset(&mut self) {}
}

#[test]
fn dsp_chain_processes_every_frame_in_the_output_spec() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let input = music_i16(RATE, frames);
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("dsp");
    engine.apply_route(wav_route(&out)).unwrap();
    let prepared = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stage = |gain| -> Box<dyn stellatune_audio::DspStage> {
        Box::new(Gain {
            gain,
            fail_on_block: None,
            blocks: 0,
            prepared: prepared.clone(),
        })
    };
    engine.set_dsp_chain(vec![stage(0.5), stage(0.5)]).unwrap();
    let id = engine.play(&src).unwrap();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    let expected: Vec<f32> = to_f32(&input).iter().map(|s| s * 0.25).collect();
    assert_eq!(written.len(), expected.len());
    assert_samples_close(&written, &expected, 1e-6, "two gain stages");
    let prepared = prepared.lock().unwrap();
    assert_eq!(prepared.len(), 2, "each stage prepared once: {prepared:?}");
    assert!(
        prepared
            .iter()
            .all(|s| *s == stellatune_audio::StreamSpec::new(RATE, 2))
    );
}

#[test]
fn a_failing_dsp_stage_is_removed_and_playback_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 2;
    let input = music_i16(RATE, frames);
    let src = dir.path().join("music.wav");
    write_wav_i16(&src, RATE, 2, &input);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("dsp-fail");
    engine.apply_route(wav_route(&out)).unwrap();
    engine
        .set_dsp_chain(vec![Box::new(Gain {
            gain: 0.0,
            fail_on_block: Some(3),
            blocks: 0,
            prepared: Default::default(),
        })])
        .unwrap();
    let id = engine.play(&src).unwrap();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    assert_eq!(written.len() / 2, frames, "no frame lost");
    let errs = errors(&events.all());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("deliberate failure"), "{errs:?}");
    // Silenced while the stage ran, the input again once it was removed.
    let tail = &written[written.len() - 2000..];
    let expected_tail = &to_f32(&input)[input.len() - 2000..];
    assert_samples_close(tail, expected_tail, 1e-4, "after removal");
    assert!(written[..100].iter().all(|s| *s == 0.0));
}
