//! What a media file holds, read without decoding: its format (codec, rate, channels, bit
//! depth, duration), its tags, its ReplayGain values and its embedded cover.
//!
//! Tags come from every place symphonia reads them: the container's own metadata (Vorbis
//! comments and FLAC pictures, MP4 `ilst` atoms, RIFF `INFO`) and the metadata the probe found
//! in front of the container (an ID3v2 tag before MP3 or FLAC data). The container's own
//! metadata wins; the probe's fills what it leaves out. Nothing here decodes audio or needs
//! an engine.

use std::path::{Path, PathBuf};

use symphonia::core::codecs::{CODEC_TYPE_AAC, CODEC_TYPE_ALAC, CodecParameters};
use symphonia::core::meta::{MetadataRevision, StandardTagKey, StandardVisualKey, Tag, Value};
use symphonia::core::probe::ProbeResult;

use crate::error::{AudioError, Result};
use crate::mp4;
use crate::source::{audio_track, codec_name, probe_file};

/// A file's format, tags, ReplayGain and cover, as [`probe_media`] reads them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaInfo {
    pub path: PathBuf,
    /// The codec's short name as symphonia names it (`flac`, `mp3`, `aac`, `alac`,
    /// `pcm_s16le`, `adpcm_ima_wav`, ...).
    pub codec: String,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    /// Bits per decoded sample; `None` for codecs without a fixed depth (MP3, AAC, Vorbis).
    pub bits_per_sample: Option<u32>,
    /// Total frames when the container states them.
    pub total_frames: Option<u64>,
    pub duration_ms: Option<u64>,
    pub tags: MediaTags,
    pub replaygain: ReplayGain,
    pub cover: Option<CoverInfo>,
}

/// The tags a player shows; each `None` when the file does not have it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaTags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub album_artist: Option<String>,
    /// The track number: the leading number of `3/12` style values.
    pub track_number: Option<u32>,
    pub disc_number: Option<u32>,
    /// As written in the file (`2024`, `2024-05-01`, ...).
    pub date: Option<String>,
    pub genre: Option<String>,
}

/// ReplayGain values; each `None` when absent or unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReplayGain {
    pub track_gain_db: Option<f64>,
    pub track_peak: Option<f64>,
    pub album_gain_db: Option<f64>,
    pub album_peak: Option<f64>,
}

/// The embedded cover's media type and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverInfo {
    pub mime: String,
    pub bytes: u64,
}

/// An embedded cover: its bytes exactly as stored in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    pub mime: String,
    pub data: Vec<u8>,
}

/// Reads what `path` holds without decoding any audio. Errors are those of opening a track
/// for playback: `NotFound`, `NotAFile`, `Io`, `Unsupported` (no known container, no audio
/// track, or a codec this build does not decode) and `Decode` (a damaged container).
pub fn probe_media(path: impl AsRef<Path>) -> Result<MediaInfo> {
    let path = path.as_ref();
    let mut probed = probe_file(path)?;
    let (codec, params) = {
        let track = audio_track(probed.format.as_ref(), path)?;
        let params = track.codec_params.clone();
        let codec = codec_name(&params).ok_or_else(|| AudioError::Unsupported {
            path: path.to_path_buf(),
            message: format!("codec {} is not supported", params.codec),
        })?;
        (codec, params)
    };
    let revisions = revisions(&mut probed);
    // An MP4 edit list says how much of the stream is the track (priming and padding off).
    let total_frames = params
        .sample_rate
        .and_then(|rate| mp4::edit_window(path, rate))
        .map(|w| w.frames)
        .or(params.n_frames);
    Ok(MediaInfo {
        path: path.to_path_buf(),
        codec,
        sample_rate: params.sample_rate,
        channels: params
            .channels
            .map(|c| c.count() as u16)
            .or_else(|| aac_channels(&params))
            .or_else(|| alac_cookie(&params).map(|(channels, _)| channels)),
        bits_per_sample: params
            .bits_per_sample
            .or_else(|| alac_cookie(&params).map(|(_, bits)| bits)),
        total_frames,
        duration_ms: duration_ms(params.sample_rate, total_frames),
        tags: MediaTags::from_revisions(&revisions),
        replaygain: ReplayGain::from_revisions(&revisions),
        cover: pick_cover(&revisions).map(|c| CoverInfo {
            mime: c.mime,
            bytes: c.data.len() as u64,
        }),
    })
}

/// Reads the embedded front cover of `path` (else its first picture), or `None` when it has
/// no picture. Errors as [`probe_media`].
pub fn read_cover(path: impl AsRef<Path>) -> Result<Option<Cover>> {
    let path = path.as_ref();
    let mut probed = probe_file(path)?;
    audio_track(probed.format.as_ref(), path)?;
    Ok(pick_cover(&revisions(&mut probed)))
}

fn duration_ms(sample_rate: Option<u32>, total_frames: Option<u64>) -> Option<u64> {
    let rate = u64::from(sample_rate?);
    let frames = total_frames?;
    (rate > 0).then(|| frames * 1000 / rate)
}

/// The channel count of an AAC stream, from its AudioSpecificConfig (the MP4 reader leaves
/// the count to the decoder): object type (5 bits, or 5 + 6 when it reads 31), sampling
/// frequency index (4 bits, or 4 + 24 when it reads 15), channel configuration (4 bits).
fn aac_channels(params: &CodecParameters) -> Option<u16> {
    if params.codec != CODEC_TYPE_AAC {
        return None;
    }
    let asc = params.extra_data.as_deref().filter(|asc| asc.len() >= 2)?;
    let bits = asc
        .iter()
        .take(8)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        << (8 * (8 - asc.len().min(8)));
    let take = |at: u32, n: u32| (bits >> (64 - at - n)) & ((1 << n) - 1);
    let mut at = 5;
    if take(0, 5) == 31 {
        at += 6;
    }
    at += if take(at, 4) == 15 { 28 } else { 4 };
    match take(at, 4) {
        n @ 1..=6 => Some(n as u16),
        7 => Some(8),
        _ => None,
    }
}

/// The channel count and bit depth an ALAC stream's magic cookie states (the MP4 reader
/// leaves both to the decoder): `frameLength` (4 bytes), `compatibleVersion`, `bitDepth`,
/// `pb`, `mb`, `kb`, `numChannels`, ...
fn alac_cookie(params: &CodecParameters) -> Option<(u16, u32)> {
    if params.codec != CODEC_TYPE_ALAC {
        return None;
    }
    let cookie = params.extra_data.as_deref().filter(|c| c.len() >= 24)?;
    let (bits, channels) = (cookie[5], cookie[9]);
    (channels > 0 && bits > 0).then_some((u16::from(channels), u32::from(bits)))
}

/// Every metadata revision, most authoritative first: the container's own (newest first),
/// then what the probe found in front of the container.
fn revisions(probed: &mut ProbeResult) -> Vec<MetadataRevision> {
    let mut out = drain(probed.format.metadata());
    if let Some(log) = probed.metadata.get() {
        out.extend(drain(log));
    }
    out
}

/// The revisions of a metadata log, oldest first (the current one included).
pub(crate) fn drain(mut log: symphonia::core::meta::Metadata<'_>) -> Vec<MetadataRevision> {
    let mut out = Vec::new();
    while let Some(rev) = log.pop() {
        out.push(rev);
    }
    if let Some(rev) = log.current() {
        out.push(rev.clone());
    }
    out.reverse();
    out
}

/// The tags and ReplayGain values of `revisions` (the container's first, then the probe's).
pub(crate) fn tags_and_gain(revisions: &[MetadataRevision]) -> (MediaTags, ReplayGain) {
    (
        MediaTags::from_revisions(revisions),
        ReplayGain::from_revisions(revisions),
    )
}

/// The first tag with `key`, in revision order, whose value is not blank.
fn first(revisions: &[MetadataRevision], key: Key) -> Option<&Tag> {
    revisions
        .iter()
        .flat_map(|r| r.tags())
        .find(|t| key.matches(t) && !value_text(&t.value).trim().is_empty())
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Binary(_) => String::new(),
        other => other.to_string(),
    }
}

/// A standard key, or (for readers that do not map a tag) the names it goes by: a Vorbis
/// comment name, an ID3v2 `TXXX` description, or the last part of an iTunes freeform name
/// (`----:com.apple.iTunes:replaygain_track_gain`).
#[derive(Clone, Copy)]
struct Key {
    std: StandardTagKey,
    names: &'static [&'static str],
}

impl Key {
    const fn new(std: StandardTagKey, names: &'static [&'static str]) -> Self {
        Self { std, names }
    }

    fn matches(&self, tag: &Tag) -> bool {
        match tag.std_key {
            Some(std) => std == self.std,
            None => {
                let name = tag.key.rsplit(':').next().unwrap_or(&tag.key);
                self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
            }
        }
    }
}

const TITLE: Key = Key::new(StandardTagKey::TrackTitle, &["TITLE"]);
const ARTIST: Key = Key::new(StandardTagKey::Artist, &["ARTIST"]);
const ALBUM: Key = Key::new(StandardTagKey::Album, &["ALBUM"]);
const ALBUM_ARTIST: Key = Key::new(
    StandardTagKey::AlbumArtist,
    &["ALBUMARTIST", "ALBUM ARTIST", "ALBUM_ARTIST"],
);
const TRACK_NUMBER: Key = Key::new(StandardTagKey::TrackNumber, &["TRACKNUMBER"]);
const DISC_NUMBER: Key = Key::new(StandardTagKey::DiscNumber, &["DISCNUMBER"]);
const DATE: Key = Key::new(StandardTagKey::Date, &["DATE", "YEAR"]);
const RELEASE_DATE: Key = Key::new(StandardTagKey::ReleaseDate, &[]);
const ORIGINAL_DATE: Key = Key::new(StandardTagKey::OriginalDate, &[]);
const GENRE: Key = Key::new(StandardTagKey::Genre, &["GENRE"]);
const RG_TRACK_GAIN: Key = Key::new(
    StandardTagKey::ReplayGainTrackGain,
    &["REPLAYGAIN_TRACK_GAIN"],
);
const RG_TRACK_PEAK: Key = Key::new(
    StandardTagKey::ReplayGainTrackPeak,
    &["REPLAYGAIN_TRACK_PEAK"],
);
const RG_ALBUM_GAIN: Key = Key::new(
    StandardTagKey::ReplayGainAlbumGain,
    &["REPLAYGAIN_ALBUM_GAIN"],
);
const RG_ALBUM_PEAK: Key = Key::new(
    StandardTagKey::ReplayGainAlbumPeak,
    &["REPLAYGAIN_ALBUM_PEAK"],
);

fn text(revisions: &[MetadataRevision], key: Key) -> Option<String> {
    first(revisions, key).map(|t| value_text(&t.value).trim().to_owned())
}

/// The leading number of a value such as `3`, `03` or `3/12`.
fn number(revisions: &[MetadataRevision], key: Key) -> Option<u32> {
    let tag = first(revisions, key)?;
    match &tag.value {
        Value::UnsignedInt(n) => u32::try_from(*n).ok(),
        Value::SignedInt(n) => u32::try_from(*n).ok(),
        other => leading_number(&value_text(other)),
    }
}

fn leading_number(text: &str) -> Option<u32> {
    let text = text.trim();
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// A gain such as `-6.48 dB` or a peak such as `0.988`.
fn decimal(revisions: &[MetadataRevision], key: Key) -> Option<f64> {
    let tag = first(revisions, key)?;
    match &tag.value {
        Value::Float(f) => Some(*f),
        other => parse_decimal(&value_text(other)),
    }
}

fn parse_decimal(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text
        .strip_suffix("dB")
        .or_else(|| text.strip_suffix("db"))
        .or_else(|| text.strip_suffix("DB"))
        .unwrap_or(text)
        .trim();
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

impl MediaTags {
    fn from_revisions(revisions: &[MetadataRevision]) -> Self {
        Self {
            title: text(revisions, TITLE),
            artist: text(revisions, ARTIST),
            album: text(revisions, ALBUM),
            album_artist: text(revisions, ALBUM_ARTIST),
            track_number: number(revisions, TRACK_NUMBER),
            disc_number: number(revisions, DISC_NUMBER),
            date: text(revisions, DATE)
                .or_else(|| text(revisions, RELEASE_DATE))
                .or_else(|| text(revisions, ORIGINAL_DATE)),
            genre: text(revisions, GENRE),
        }
    }
}

impl ReplayGain {
    fn from_revisions(revisions: &[MetadataRevision]) -> Self {
        Self {
            track_gain_db: decimal(revisions, RG_TRACK_GAIN),
            track_peak: decimal(revisions, RG_TRACK_PEAK),
            album_gain_db: decimal(revisions, RG_ALBUM_GAIN),
            album_peak: decimal(revisions, RG_ALBUM_PEAK),
        }
    }
}

/// The front cover, else the first picture, in revision order.
fn pick_cover(revisions: &[MetadataRevision]) -> Option<Cover> {
    let visuals = || {
        revisions
            .iter()
            .flat_map(|r| r.visuals())
            .filter(|v| !v.data.is_empty())
    };
    let visual = visuals()
        .find(|v| v.usage == Some(StandardVisualKey::FrontCover))
        .or_else(|| visuals().next())?;
    let mime = match visual.media_type.trim() {
        "" => sniff_mime(&visual.data).to_owned(),
        // ID3v2.2 and some writers state only the subtype.
        "PNG" | "png" => "image/png".to_owned(),
        "JPG" | "jpg" | "JPEG" | "jpeg" | "image/jpg" => "image/jpeg".to_owned(),
        mime => mime.to_owned(),
    };
    Some(Cover {
        mime,
        data: visual.data.to_vec(),
    })
}

/// The media type of an image with no stated type, from its first bytes.
fn sniff_mime(data: &[u8]) -> &'static str {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if data.starts_with(b"GIF8") {
        "image/gif"
    } else if data.starts_with(b"BM") {
        "image/bmp"
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use symphonia::core::meta::{MetadataBuilder, Visual};

    use super::*;

    fn tag(std: Option<StandardTagKey>, key: &str, value: Value) -> Tag {
        Tag::new(std, key, value)
    }

    fn revision(tags: Vec<Tag>, visuals: Vec<Visual>) -> MetadataRevision {
        let mut b = MetadataBuilder::new();
        for t in tags {
            b.add_tag(t);
        }
        for v in visuals {
            b.add_visual(v);
        }
        b.metadata()
    }

    fn visual(mime: &str, usage: Option<StandardVisualKey>, data: &[u8]) -> Visual {
        Visual {
            media_type: mime.into(),
            dimensions: None,
            bits_per_pixel: None,
            color_mode: None,
            usage,
            tags: Vec::new(),
            data: data.into(),
        }
    }

    #[test]
    fn aac_channel_configuration_is_read_from_the_config() {
        let params = |asc: &[u8]| {
            let mut p = CodecParameters::new();
            p.for_codec(CODEC_TYPE_AAC).with_extra_data(asc.into());
            p
        };
        // AAC-LC (2), 44.1 kHz (index 4), stereo: 00010 0100 0010 000.
        assert_eq!(aac_channels(&params(&[0x12, 0x10])), Some(2));
        // AAC-LC, 48 kHz (index 3), mono: 00010 0011 0001 000.
        assert_eq!(aac_channels(&params(&[0x11, 0x88])), Some(1));
        // 5.1 (configuration 6) and 7.1 (configuration 7).
        assert_eq!(aac_channels(&params(&[0x11, 0xb0])), Some(6));
        assert_eq!(aac_channels(&params(&[0x11, 0xb8])), Some(8));
        assert_eq!(aac_channels(&params(&[])), None);
    }

    #[test]
    fn numbers_gains_and_peaks_parse() {
        assert_eq!(leading_number("3/12"), Some(3));
        assert_eq!(leading_number(" 07 "), Some(7));
        assert_eq!(leading_number("x"), None);
        assert_eq!(parse_decimal("-6.48 dB"), Some(-6.48));
        assert_eq!(parse_decimal("+1.5dB"), Some(1.5));
        assert_eq!(parse_decimal("0.988547"), Some(0.988547));
        assert_eq!(parse_decimal("loud"), None);
        assert_eq!(parse_decimal("NaN"), None);
    }

    #[test]
    fn the_container_wins_and_the_probe_fills_gaps() {
        let container = revision(
            vec![
                tag(
                    Some(StandardTagKey::TrackTitle),
                    "TITLE",
                    Value::from("From the container"),
                ),
                tag(Some(StandardTagKey::Artist), "ARTIST", Value::from("  ")),
            ],
            vec![],
        );
        let probe = revision(
            vec![
                tag(
                    Some(StandardTagKey::TrackTitle),
                    "TIT2",
                    Value::from("From ID3"),
                ),
                tag(Some(StandardTagKey::Artist), "TPE1", Value::from("Artist")),
                tag(
                    Some(StandardTagKey::TrackNumber),
                    "TRCK",
                    Value::from("4/9"),
                ),
                tag(None, "TXXX:replaygain_album_gain", Value::from("-3.2 dB")),
                tag(
                    None,
                    "----:com.apple.iTunes:REPLAYGAIN_TRACK_PEAK",
                    Value::from("0.5"),
                ),
            ],
            vec![],
        );
        let revs = [container, probe];
        let tags = MediaTags::from_revisions(&revs);
        assert_eq!(tags.title.as_deref(), Some("From the container"));
        assert_eq!(tags.artist.as_deref(), Some("Artist"), "blank values skip");
        assert_eq!(tags.track_number, Some(4));
        assert_eq!(tags.album, None);
        let rg = ReplayGain::from_revisions(&revs);
        assert_eq!(rg.album_gain_db, Some(-3.2));
        assert_eq!(rg.track_peak, Some(0.5));
        assert_eq!(rg.track_gain_db, None);
    }

    #[test]
    fn the_front_cover_is_preferred_and_types_are_named() {
        let back = visual("image/png", Some(StandardVisualKey::BackCover), b"back");
        let front = visual(
            "",
            Some(StandardVisualKey::FrontCover),
            &[0xff, 0xd8, 0xff, 1],
        );
        let revs = [revision(vec![], vec![back.clone(), front])];
        let cover = pick_cover(&revs).unwrap();
        assert_eq!(cover.mime, "image/jpeg", "sniffed from the bytes");
        assert_eq!(cover.data, vec![0xff, 0xd8, 0xff, 1]);
        let only_back = [revision(vec![], vec![back])];
        assert_eq!(pick_cover(&only_back).unwrap().data, b"back");
        assert_eq!(pick_cover(&[revision(vec![], vec![])]), None);
    }
}
