//! What a listener hears around the music rather than in it: the tags a now-playing view
//! shows (`track_started`), ReplayGain, and the short gain ramps that keep pause, resume,
//! stop, seek and a track switch free of clicks while a gapless join stays sample-exact.
//! All audio is generated here and rendered through the unpaced wav sink (or the gated one,
//! where a test must act at a point of the render).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use stellatune_audio::{BuiltinRoute, EngineEvent, SinkFactory, TrackId, TrackInfo};

const RATE: u32 = 44_100;
const SHUTDOWN: Duration = Duration::from_secs(20);

fn wav_route(path: &Path) -> Box<dyn SinkFactory> {
    Box::new(BuiltinRoute::Wav {
        path: path.to_path_buf(),
        paced: false,
        channels: None,
        sample_rate: None,
    })
}

fn gated_route(path: &Path, gate: &Gate) -> Box<dyn SinkFactory> {
    Box::new(GatedWav {
        path: path.to_path_buf(),
        gate: gate.clone(),
    })
}

fn started(events: &[EngineEvent], track: TrackId) -> TrackInfo {
    events
        .iter()
        .find_map(|e| match e {
            EngineEvent::TrackStarted { track_id, info } if *track_id == track => {
                Some(info.clone())
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
