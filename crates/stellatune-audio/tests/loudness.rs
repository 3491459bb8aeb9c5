//! What a listener hears around the music rather than in it: the tags a now-playing view
//! shows (`track_started`), ReplayGain, and the short gain ramps that keep pause, resume,
//! stop, seek and a track switch free of clicks while a gapless join stays sample-exact.
//! All audio is generated here and rendered through the unpaced wav sink (or the gated one,
//! where a test must act at a point of the render).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use stellatune_audio::{
    EngineConfig, EngineEvent, ReplayGainMode, ReplayGainSettings, TrackId, TrackInfo,
};

const RATE: u32 = 44_100;
const SHUTDOWN: Duration = Duration::from_secs(20);

fn started(events: &[EngineEvent], track: TrackId) -> TrackInfo {
    events
        .iter()
        .find_map(|e| match e {
            EngineEvent::TrackStarted { track_id, info } if *track_id == track => {
                Some((**info).clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no track_started for {track}: {events:#?}"))
}

/// `seconds` of a stereo 1 kHz sine at half scale, as 16-bit values.
fn sine_i32(seconds: f64) -> Vec<i32> {
    let frames = (seconds * f64::from(RATE)) as usize;
    tone_i16(RATE, frames, 1_000.0, 0.5)
        .into_iter()
        .map(i32::from)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------

#[test]
fn track_started_carries_the_tags_of_each_track_also_a_gapless_successor() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.flac");
    let b = dir.path().join("b.flac");
    let plain = dir.path().join("plain.flac");
    write_tagged_flac(
        &a,
        RATE,
        2,
        &sine_i32(0.3),
        &[
            "TITLE=First",
            "ARTIST=The Sines",
            "ALBUM=Frequencies",
            "ALBUMARTIST=Various",
            "TRACKNUMBER=3/12",
            "DISCNUMBER=2",
            "DATE=2024-05-01",
            "GENRE=Test",
        ],
    );
    write_tagged_flac(&b, RATE, 2, &sine_i32(0.3), &["TITLE=Second"]);
    write_flac(&plain, RATE, 2, 16, &sine_i32(0.2));
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("tags");
    // Held until the successor is queued, so it follows gaplessly.
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let first = engine.play(&a).unwrap();
    let second = engine.queue_next(&b).unwrap();
    gate.open();
    events.wait_finished(second);
    let third = engine.play(&plain).unwrap();
    events.wait_finished(third);
    engine.shutdown(SHUTDOWN).unwrap();
    let all = events.all();

    let tags = started(&all, first).tags;
    assert_eq!(tags.title.as_deref(), Some("First"));
    assert_eq!(tags.artist.as_deref(), Some("The Sines"));
    assert_eq!(tags.album.as_deref(), Some("Frequencies"));
    assert_eq!(tags.album_artist.as_deref(), Some("Various"));
    assert_eq!(tags.track_number, Some(3));
    assert_eq!(tags.disc_number, Some(2));
    assert_eq!(tags.date.as_deref(), Some("2024-05-01"));
    assert_eq!(tags.genre.as_deref(), Some("Test"));
    let tags = started(&all, second).tags;
    assert_eq!(tags.title.as_deref(), Some("Second"));
    assert_eq!(tags.artist, None);
    assert_eq!(started(&all, third).tags, Default::default());
}

/// An MP3's ID3v2 tag sits in front of the stream (the probe's metadata, not the
/// container's): its tags and ReplayGain reach `track_started` too.
#[test]
fn track_started_carries_an_mp3s_id3v2_tags_and_replaygain() {
    let test = "track_started_carries_an_mp3s_id3v2_tags_and_replaygain";
    let Some(ff) = stellatune_test_support::ffmpeg::ffmpeg(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("src.wav");
    write_wav_i16(
        &wav,
        RATE,
        2,
        &tone_i16(RATE, RATE as usize / 2, 440.0, 0.5),
    );
    let mp3 = dir.path().join("tagged.mp3");
    ff.encode_tagged(
        &wav,
        &mp3,
        &["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"],
        &[
            "title=Id3 Title",
            "artist=Id3 Artist",
            "REPLAYGAIN_TRACK_GAIN=-4.00 dB",
        ],
        None,
    );
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("tags-mp3");
    engine.apply_route(wav_route(&out)).unwrap();
    let id = engine.play(&mp3).unwrap();
    events.wait_finished(id);
    engine.shutdown(SHUTDOWN).unwrap();
    let info = started(&events.all(), id);
    assert_eq!(info.tags.title.as_deref(), Some("Id3 Title"));
    assert_eq!(info.tags.artist.as_deref(), Some("Id3 Artist"));
    assert_eq!(info.replaygain.track_gain_db, Some(-4.0));
}

// ---------------------------------------------------------------------------------------
// Fades
// ---------------------------------------------------------------------------------------

/// The largest step between neighbouring samples of any channel; `then_silence` counts the
/// step from the last sample down to the silence after the output stopped.
fn max_step(samples: &[f32], channels: usize, then_silence: bool) -> f32 {
    let mut max = 0.0f32;
    for ch in 0..channels {
        let channel: Vec<f32> = samples.iter().skip(ch).step_by(channels).copied().collect();
        for w in channel.windows(2) {
            max = max.max((w[1] - w[0]).abs());
        }
        if then_silence {
            max = max.max(channel.last().map_or(0.0, |s| s.abs()));
        }
    }
    max
}

/// The largest step of the music itself: the sine at `freq` and half scale has no larger.
fn sine_step(freq: f64) -> f32 {
    (2.0 * 0.5 * (std::f64::consts::PI * freq / f64::from(RATE)).sin()) as f32
}

/// The fades multiply the sine by a 5 ms ramp, which adds a hair to its steepest step.
fn allowed_step(freq: f64) -> f32 {
    sine_step(freq) * 1.01
}

fn write_sine(path: &Path, seconds: f64) {
    write_flac(path, RATE, 2, 16, &sine_i32(seconds));
}

/// Frames after which the gated tests act: the 1 kHz sine is near its peak there (226.76
/// periods), so a cut would be a step of almost half scale.
const AT: u64 = 10_000;
/// 5 ms at 44.1 kHz.
const FADE: usize = 220;

fn render_gated(
    name: &str,
    input: &Path,
    act: impl FnOnce(&stellatune_audio::Engine, TrackId, &Gate),
) -> (Vec<f32>, Vec<EngineEvent>) {
    render_gated_with(name, input, gated_route, act)
}

fn render_gated_with(
    name: &str,
    input: &Path,
    route: fn(&Path, &Gate) -> Box<dyn stellatune_audio::SinkFactory>,
    act: impl FnOnce(&stellatune_audio::Engine, TrackId, &Gate),
) -> (Vec<f32>, Vec<EngineEvent>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine(name);
    let gate = Gate::allowing(AT);
    engine.apply_route(route(&out, &gate)).unwrap();
    let id = engine.play(input).unwrap();
    wait_frames_written(&engine, AT);
    act(&engine, id, &gate);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    let all = events.all();
    assert!(errors(&all).is_empty(), "{all:#?}");
    (written, all)
}

#[test]
fn stop_fades_the_music_out_instead_of_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sine.flac");
    write_sine(&input, 2.0);
    let (written, _) = render_gated("fade-stop", &input, |engine, _, gate| {
        engine.stop().unwrap();
        gate.open();
        wait_frames_written(engine, AT + FADE as u64);
    });
    assert_eq!(
        written.len(),
        (AT as usize + FADE) * 2,
        "the heard part and a 5 ms fade"
    );
    let step = max_step(&written, 2, true);
    assert!(step <= allowed_step(1_000.0), "largest step {step}");
}

#[test]
fn pause_fades_out_and_resume_fades_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sine.flac");
    write_sine(&input, 1.0);
    let (written, _) = render_gated("fade-pause", &input, |engine, id, gate| {
        engine.pause().unwrap();
        gate.open();
        // The fade-out is written while paused, then nothing more.
        wait_frames_written(engine, AT + FADE as u64);
        engine.resume().unwrap();
        wait_until("the track to end", || {
            engine.status().unwrap().track_id != Some(id)
        });
    });
    // Nothing is lost: the fade-out and the fade-in are the music's own frames.
    assert_eq!(written.len(), RATE as usize * 2);
    let step = max_step(&written, 2, false);
    assert!(step <= allowed_step(1_000.0), "largest step {step}");
    // Between the two fades the output reaches silence: where the pause was heard.
    let at = (AT as usize + FADE) * 2;
    let quiet = written[at - 4..at + 4]
        .iter()
        .map(|s| s.abs())
        .fold(0.0, f32::max);
    assert!(quiet < 0.01, "the pause point is silent, got {quiet}");
    // After the fade-in the music is back at full level.
    let later = &written[at + FADE * 2 + 200..at + FADE * 2 + 400];
    let peak = later.iter().map(|s| s.abs()).fold(0.0, f32::max);
    assert!(peak > 0.49, "{peak}");
}

#[test]
fn seek_fades_out_and_the_new_position_fades_in() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sine.flac");
    write_sine(&input, 2.0);
    let (written, _) = render_gated("fade-seek", &input, |engine, id, gate| {
        engine.seek_ms(1_234).unwrap();
        gate.open();
        wait_until("the track to end", || {
            engine.status().unwrap().track_id != Some(id)
        });
    });
    let target = 1_234 * RATE as usize / 1000;
    assert_eq!(
        written.len(),
        (AT as usize + FADE + 2 * RATE as usize - target) * 2,
        "heard, the fade-out, then the track from the target"
    );
    let step = max_step(&written, 2, false);
    assert!(step <= allowed_step(1_000.0), "largest step {step}");
}

/// A sink that fades out what its reset drops where it plays it (a device ring) gets no
/// fade-out from the engine after the reset: that would be audio from ahead of what was
/// heard. The new position still fades in, as after any fade-out.
#[test]
fn a_sink_that_fades_on_reset_gets_no_fade_out_after_a_seek() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sine.flac");
    write_sine(&input, 2.0);
    let (written, _) = render_gated_with(
        "fading-seek",
        &input,
        gated_fading_route,
        |engine, id, gate| {
            engine.seek_ms(1_234).unwrap();
            gate.open();
            wait_until("the track to end", || {
                engine.status().unwrap().track_id != Some(id)
            });
        },
    );
    let target = 1_234 * RATE as usize / 1000;
    assert_eq!(
        written.len(),
        (AT as usize + 2 * RATE as usize - target) * 2,
        "heard, then the track from the target, nothing between"
    );
    // The file's content at the target: the sine of the position, faded in from silence.
    let at = AT as usize * 2;
    assert!(
        written[at].abs() < 0.01 && written[at + 1].abs() < 0.01,
        "the new position starts from silence: {:?}",
        &written[at..at + 2]
    );
    let later = &written[at + FADE * 2 + 200..at + FADE * 2 + 400];
    let peak = later.iter().map(|s| s.abs()).fold(0.0, f32::max);
    assert!(
        peak > 0.49,
        "the new position is back at full level: {peak}"
    );
}

/// A stop with such a sink leaves nothing to write either: the next track follows what was
/// heard directly (with a tail left pending, it would come first).
#[test]
fn a_sink_that_fades_on_reset_gets_no_fade_out_after_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.flac");
    let b = dir.path().join("b.flac");
    write_sine(&a, 2.0);
    write_sine(&b, 0.5);
    let b_frames = RATE as usize / 2;
    let (written, _) =
        render_gated_with("fading-stop", &a, gated_fading_route, |engine, _, gate| {
            engine.stop().unwrap();
            assert!(engine.wait_output_settled(TIMEOUT));
            gate.open();
            let idb = engine.play(&b).unwrap();
            wait_until("B to end", || {
                engine.status().unwrap().track_id != Some(idb)
            });
        });
    assert_eq!(
        written.len(),
        (AT as usize + b_frames) * 2,
        "heard, then the next track, nothing between"
    );
}

#[test]
fn playing_another_track_fades_the_first_out_and_the_second_in() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.flac");
    let b = dir.path().join("b.flac");
    write_sine(&a, 2.0);
    // B starts on a peak of a lower tone: a cut into it would click too.
    let frames = RATE as usize / 2;
    let b_samples: Vec<i32> = (0..frames)
        .flat_map(|n| {
            let s = 0.5 * (2.0 * std::f64::consts::PI * 500.0 * n as f64 / f64::from(RATE)).cos();
            let s = (s * 32767.0) as i32;
            [s, s]
        })
        .collect();
    write_flac(&b, RATE, 2, 16, &b_samples);
    let (written, all) = render_gated("fade-switch", &a, |engine, _, gate| {
        let idb = engine.play(&b).unwrap();
        gate.open();
        wait_until("B to end", || {
            engine.status().unwrap().track_id != Some(idb)
        });
    });
    assert_eq!(written.len(), (AT as usize + FADE + frames) * 2);
    let step = max_step(&written, 2, false);
    assert!(step <= allowed_step(1_000.0), "largest step {step}");
    assert_eq!(track_lifecycle(&all).len(), 4, "{all:#?}");
}

#[test]
fn a_gapless_join_stays_sample_exact() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.flac");
    let b = dir.path().join("b.flac");
    // A ends mid-waveform and B goes on from there: any ramp at the join would show.
    let whole = sine_i32(1.0);
    let split = 2 * 20_011;
    write_flac(&a, RATE, 2, 16, &whole[..split]);
    write_flac(&b, RATE, 2, 16, &whole[split..]);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("fade-gapless");
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    engine.play(&a).unwrap();
    let idb = engine.queue_next(&b).unwrap();
    gate.open();
    events.wait_finished(idb);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    let expected: Vec<f32> = whole.iter().map(|s| i16_to_f32(*s as i16)).collect();
    assert!(written == expected, "the join is bit-exact");
}

// ---------------------------------------------------------------------------------------
// ReplayGain
// ---------------------------------------------------------------------------------------

fn db(gain_db: f64) -> f32 {
    10f64.powf(gain_db / 20.0) as f32
}

fn replaygain(mode: ReplayGainMode) -> ReplayGainSettings {
    ReplayGainSettings {
        mode,
        ..Default::default()
    }
}

/// Renders `input` unpaced with `settings` from the engine's start.
fn render_with(name: &str, input: &Path, settings: ReplayGainSettings) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine_with(EngineConfig {
        name: name.into(),
        replaygain: settings,
        ..Default::default()
    });
    engine.apply_route(wav_route(&out)).unwrap();
    let id = engine.play(input).unwrap();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    read_wav_f32(&out).1
}

/// Asserts `written` is `input` times `gain`, sample by sample.
fn assert_scaled(written: &[f32], input: &[i32], gain: f32, what: &str) {
    assert_eq!(written.len(), input.len(), "{what}: length");
    for (i, (w, s)) in written.iter().zip(input).enumerate() {
        let want = i16_to_f32(*s as i16) * gain;
        assert!(
            (w - want).abs() <= 1e-6,
            "{what}: sample {i} is {w}, want {want} (gain {gain})"
        );
    }
}

const TAGGED: &[&str] = &[
    "REPLAYGAIN_TRACK_GAIN=-6.00 dB",
    "REPLAYGAIN_TRACK_PEAK=0.5",
    "REPLAYGAIN_ALBUM_GAIN=-9.50 dB",
    "REPLAYGAIN_ALBUM_PEAK=0.6",
];

#[test]
fn replaygain_applies_the_value_its_mode_names_with_the_preamp() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tagged.flac");
    let samples = sine_i32(0.25);
    write_tagged_flac(&input, RATE, 2, &samples, TAGGED);

    let off = render_with("rg-off", &input, replaygain(ReplayGainMode::Off));
    assert_scaled(&off, &samples, 1.0, "off");
    let track = render_with("rg-track", &input, replaygain(ReplayGainMode::Track));
    assert_scaled(&track, &samples, db(-6.0), "track");
    let album = render_with("rg-album", &input, replaygain(ReplayGainMode::Album));
    assert_scaled(&album, &samples, db(-9.5), "album");
    let preamp = ReplayGainSettings {
        preamp_db: 3.5,
        ..replaygain(ReplayGainMode::Track)
    };
    let boosted = render_with("rg-preamp", &input, preamp);
    assert_scaled(&boosted, &samples, db(-2.5), "track with a 3.5 dB preamp");
}

#[test]
fn clipping_prevention_keeps_the_stated_peak_at_full_scale() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("quiet.flac");
    let samples = sine_i32(0.25);
    // A quiet master that asks for +9 dB, with a peak of 0.5: +9 dB would take it to 1.41.
    write_tagged_flac(
        &input,
        RATE,
        2,
        &samples,
        &[
            "REPLAYGAIN_TRACK_GAIN=+9.00 dB",
            "REPLAYGAIN_TRACK_PEAK=0.5",
        ],
    );
    let limited = render_with("rg-limit", &input, replaygain(ReplayGainMode::Track));
    assert_scaled(&limited, &samples, 2.0, "limited to 1 / peak");
    let peak = limited.iter().map(|s| s.abs()).fold(0.0, f32::max);
    assert!(peak <= 1.0, "{peak}");
    let free = ReplayGainSettings {
        prevent_clipping: false,
        ..replaygain(ReplayGainMode::Track)
    };
    let unlimited = render_with("rg-nolimit", &input, free);
    assert_scaled(&unlimited, &samples, db(9.0), "without clipping prevention");
}

#[test]
fn a_track_without_replaygain_plays_at_unity_or_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plain.flac");
    let samples = sine_i32(0.25);
    write_flac(&input, RATE, 2, 16, &samples);
    let unity = render_with("rg-untagged", &input, replaygain(ReplayGainMode::Track));
    assert_scaled(&unity, &samples, 1.0, "untagged");
    let fallback = ReplayGainSettings {
        fallback_db: -6.0,
        preamp_db: 6.0,
        ..replaygain(ReplayGainMode::Album)
    };
    let quieter = render_with("rg-fallback", &input, fallback);
    assert_scaled(&quieter, &samples, db(-6.0), "fallback, no preamp");
}

#[test]
fn replaygain_switches_exactly_at_a_gapless_join() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.flac");
    let b = dir.path().join("b.flac");
    let whole = sine_i32(1.0);
    let split = 2 * 20_011;
    write_tagged_flac(
        &a,
        RATE,
        2,
        &whole[..split],
        &["REPLAYGAIN_TRACK_GAIN=-6.00 dB"],
    );
    write_tagged_flac(
        &b,
        RATE,
        2,
        &whole[split..],
        &["REPLAYGAIN_TRACK_GAIN=-12.00 dB"],
    );
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine_with(EngineConfig {
        name: "rg-gapless".into(),
        replaygain: replaygain(ReplayGainMode::Track),
        ..Default::default()
    });
    let gate = Gate::allowing(0);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    engine.play(&a).unwrap();
    let idb = engine.queue_next(&b).unwrap();
    gate.open();
    events.wait_finished(idb);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    assert_eq!(written.len(), whole.len());
    assert_scaled(&written[..split], &whole[..split], db(-6.0), "A");
    assert_scaled(
        &written[split..],
        &whole[split..],
        db(-12.0),
        "B from its first frame",
    );
}

#[test]
fn changing_replaygain_while_playing_ramps_without_a_click() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tagged.flac");
    let samples = sine_i32(1.0);
    write_tagged_flac(&input, RATE, 2, &samples, TAGGED);
    let out = dir.path().join("out.wav");
    let (engine, events) = start_engine("rg-change");
    let gate = Gate::allowing(AT);
    engine.apply_route(gated_route(&out, &gate)).unwrap();
    let id = engine.play(&input).unwrap();
    wait_frames_written(&engine, AT);
    engine
        .set_replaygain(replaygain(ReplayGainMode::Album))
        .unwrap();
    gate.open();
    events.wait_finished(id);
    engine.clear_route().unwrap();
    engine.shutdown(SHUTDOWN).unwrap();
    let (_, written) = read_wav_f32(&out);
    let at = AT as usize * 2;
    assert_scaled(&written[..at], &samples[..at], 1.0, "before the change");
    let step = max_step(&written, 2, false);
    assert!(step <= allowed_step(1_000.0), "largest step {step}");
    // Settled on the album gain well before the end.
    let end = written.len();
    assert_scaled(
        &written[end - 2_000..],
        &samples[end - 2_000..],
        db(-9.5),
        "after the change",
    );
}

#[test]
fn out_of_range_replaygain_is_refused() {
    let (engine, _events) = start_engine("rg-bad");
    let bad = ReplayGainSettings {
        preamp_db: 40.0,
        ..replaygain(ReplayGainMode::Track)
    };
    let error = engine.set_replaygain(bad).unwrap_err().to_string();
    assert!(error.contains("preamp_db"), "{error}");
    engine.shutdown(SHUTDOWN).unwrap();
}
