//! `probe_media` and `read_cover` on files with tags and an embedded cover, made by ffmpeg
//! (skipped as `stellatune_test_support::ffmpeg` says): FLAC (Vorbis comments and a PICTURE
//! block), MP3 (ID3v2 with APIC, in front of the stream: the probe's metadata) and M4A (`ilst`
//! atoms and `covr`). And the errors of files that are not there, not files, or not audio.

use std::path::Path;

use stellatune_audio::{AudioError, MediaInfo, probe_media, read_cover};
use stellatune_test_support::ffmpeg::{Ffmpeg, ffmpeg, tiny_png};
use stellatune_test_support::tone::{RATE, multichannel_tones, write_wav_int};

const TAGS: &[&str] = &[
    "title=Test Tone",
    "artist=The Sines",
    "album=Frequencies",
    "album_artist=Various Sines",
    "track=3/12",
    "disc=2/2",
    "date=2024",
    "genre=Test",
];

const REPLAYGAIN: &[&str] = &[
    "REPLAYGAIN_TRACK_GAIN=-6.50 dB",
    "REPLAYGAIN_TRACK_PEAK=0.988547",
    "REPLAYGAIN_ALBUM_GAIN=-7.25 dB",
    "REPLAYGAIN_ALBUM_PEAK=1.000000",
];

/// A 1 s stereo 16-bit tone encoded with `codec` into `name`, tagged (and with ReplayGain
/// when `replaygain`) and with `cover` embedded.
fn tagged(
    ff: &Ffmpeg,
    dir: &Path,
    name: &str,
    codec: &[&str],
    replaygain: bool,
    cover: Option<&[u8]>,
) -> std::path::PathBuf {
    let wav = dir.join(format!("{name}.src.wav"));
    write_wav_int(&wav, RATE, 2, 16, &multichannel_tones(RATE as usize, 2, 16));
    let png = dir.join(format!("{name}.cover.png"));
    if let Some(bytes) = cover {
        std::fs::write(&png, bytes).unwrap();
    }
    let mut tags = TAGS.to_vec();
    if replaygain {
        tags.extend_from_slice(REPLAYGAIN);
    }
    let out = dir.join(name);
    ff.encode_tagged(&wav, &out, codec, &tags, cover.map(|_| png.as_path()));
    out
}

fn assert_tags(info: &MediaInfo, what: &str) {
    let t = &info.tags;
    assert_eq!(t.title.as_deref(), Some("Test Tone"), "{what}");
    assert_eq!(t.artist.as_deref(), Some("The Sines"), "{what}");
    assert_eq!(t.album.as_deref(), Some("Frequencies"), "{what}");
    assert_eq!(t.album_artist.as_deref(), Some("Various Sines"), "{what}");
    assert_eq!(t.track_number, Some(3), "{what}");
    assert_eq!(t.disc_number, Some(2), "{what}");
    assert_eq!(t.date.as_deref().map(|d| &d[..4]), Some("2024"), "{what}");
    assert_eq!(t.genre.as_deref(), Some("Test"), "{what}");
}

fn assert_replaygain(info: &MediaInfo, what: &str) {
    let rg = &info.replaygain;
    assert_eq!(rg.track_gain_db, Some(-6.5), "{what}");
    assert_eq!(rg.track_peak, Some(0.988547), "{what}");
    assert_eq!(rg.album_gain_db, Some(-7.25), "{what}");
    assert_eq!(rg.album_peak, Some(1.0), "{what}");
}

fn assert_cover(path: &Path, png: &[u8], what: &str) {
    let info = probe_media(path).unwrap();
    let cover = info
        .cover
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no cover"));
    assert_eq!(cover.mime, "image/png", "{what}");
    assert_eq!(cover.bytes, png.len() as u64, "{what}");
    let read = read_cover(path).unwrap().expect("a cover");
    assert_eq!(read.data, png, "{what}: the cover's bytes as stored");
    assert_eq!(read.mime, "image/png");
}

#[test]
fn flac_vorbis_comments_and_picture() {
    let Some(ff) = ffmpeg("flac_vorbis_comments_and_picture") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let png = tiny_png(4, 3);
    let path = tagged(
        &ff,
        dir.path(),
        "t.flac",
        &["-c:a", "flac"],
        true,
        Some(&png),
    );
    let info = probe_media(&path).unwrap();
    assert_eq!(info.codec, "flac");
    assert_eq!(
        (info.sample_rate, info.channels, info.bits_per_sample),
        (Some(RATE), Some(2), Some(16))
    );
    assert_eq!(info.total_frames, Some(u64::from(RATE)));
    assert_eq!(info.duration_ms, Some(1000));
    assert_tags(&info, "flac");
    assert_replaygain(&info, "flac");
    assert_cover(&path, &png, "flac");
}

#[test]
fn mp3_id3v2_text_frames_txxx_and_apic() {
    let Some(ff) = ffmpeg("mp3_id3v2_text_frames_txxx_and_apic") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let png = tiny_png(5, 5);
    let codec = ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"];
    let path = tagged(&ff, dir.path(), "t.mp3", &codec, true, Some(&png));
    let info = probe_media(&path).unwrap();
    assert_eq!(info.codec, "mp3");
    assert_eq!((info.sample_rate, info.channels), (Some(RATE), Some(2)));
    assert_eq!(info.bits_per_sample, None, "MP3 has no bit depth");
    let d = info.duration_ms.expect("the LAME tag states the length");
    assert!(d.abs_diff(1000) <= 30, "duration {d} ms");
    assert_tags(&info, "mp3");
    assert_replaygain(&info, "mp3");
    assert_cover(&path, &png, "mp3");
}

#[test]
fn m4a_ilst_atoms_and_covr() {
    let Some(ff) = ffmpeg("m4a_ilst_atoms_and_covr") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let png = tiny_png(3, 3);
    for (name, codec, bits) in [("t-aac.m4a", "aac", None), ("t-alac.m4a", "alac", Some(16))] {
        let path = tagged(&ff, dir.path(), name, &["-c:a", codec], false, Some(&png));
        let info = probe_media(&path).unwrap();
        assert_eq!(info.codec, codec);
        assert_eq!((info.sample_rate, info.channels), (Some(RATE), Some(2)));
        assert_eq!(info.bits_per_sample, bits, "{name}");
        let d = info.duration_ms.expect("MP4 states the length");
        assert!(d.abs_diff(1000) <= 1, "{name}: duration {d} ms");
        assert_tags(&info, name);
        // ffmpeg writes no ReplayGain atoms into ilst.
        assert_eq!(info.replaygain, Default::default(), "{name}");
        assert_cover(&path, &png, name);
    }
}

#[test]
fn files_without_tags_or_cover_read_as_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("plain.wav");
    write_wav_int(&wav, RATE, 1, 24, &multichannel_tones(4410, 1, 24));
    let info = probe_media(&wav).unwrap();
    assert_eq!(info.codec, "pcm_s24le");
    assert_eq!(
        (info.sample_rate, info.channels, info.bits_per_sample),
        (Some(RATE), Some(1), Some(24))
    );
    assert_eq!(
        (info.total_frames, info.duration_ms),
        (Some(4410), Some(100))
    );
    assert_eq!(info.tags, Default::default());
    assert_eq!(info.replaygain, Default::default());
    assert_eq!(info.cover, None);
    assert_eq!(read_cover(&wav).unwrap(), None);
}

#[test]
fn bad_paths_and_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.flac");
    assert_eq!(
        probe_media(&missing),
        Err(AudioError::NotFound(missing.clone()))
    );
    assert_eq!(
        read_cover(&missing),
        Err(AudioError::NotFound(missing.clone()))
    );
    assert_eq!(
        probe_media(dir.path()),
        Err(AudioError::NotAFile(dir.path().to_path_buf()))
    );
    let text = dir.path().join("notes.m4a");
    std::fs::write(&text, "not audio at all\n".repeat(100)).unwrap();
    assert!(
        matches!(probe_media(&text), Err(AudioError::Unsupported { .. })),
        "{:?}",
        probe_media(&text)
    );
    assert!(matches!(
        read_cover(&text),
        Err(AudioError::Unsupported { .. })
    ));
    let empty = dir.path().join("empty.flac");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        probe_media(&empty),
        Err(AudioError::Unsupported { .. })
    ));
    // A FLAC cut inside its header.
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, b"fLaC\0\0\0\x22\x10\x00").unwrap();
    assert!(
        matches!(
            probe_media(&cut),
            Err(AudioError::Unsupported { .. } | AudioError::Decode { .. })
        ),
        "{:?}",
        probe_media(&cut)
    );
}
