//! Opening and decoding one local file with symphonia.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::{AudioBuffer, AudioBufferRef};
use symphonia::core::codecs::{
    CODEC_TYPE_NULL, CODEC_TYPE_PCM_S16LE, CodecParameters, Decoder, DecoderOptions,
};
use symphonia::core::conv::IntoSample;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, Track};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{MetadataOptions, MetadataRevision};
use symphonia::core::probe::{Hint, ProbeResult};
use symphonia::core::sample::Sample;
use symphonia::core::units::Time;

use crate::error::{AudioError, Result};
use crate::media::{self, MediaTags, ReplayGain};
use crate::mp4::{self, Window};
use stellatune_core::StreamSpec;

/// What a front end shows about a track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    pub path: PathBuf,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Total frames when the container states it.
    pub total_frames: Option<u64>,
    pub duration_ms: Option<u64>,
    /// The file's tags: empty when the source is opened, read by the engine's decode worker
    /// when the track starts (the `track_started` event carries them).
    pub tags: MediaTags,
    /// The file's ReplayGain values, read with the tags.
    pub replaygain: ReplayGain,
}

impl TrackInfo {
    pub fn spec(&self) -> StreamSpec {
        StreamSpec::new(self.sample_rate, self.channels)
    }
}

/// Decode errors in a row after which a file is declared broken rather than skipped over.
const MAX_CONSECUTIVE_DECODE_ERRORS: u32 = 16;

/// An opened, probed and validated track. Opening happens on the caller's thread so that a
/// bad path or a corrupt file is reported by the call that named it, and so that no file I/O
/// of opening ever runs on the engine's control thread.
pub struct TrackSource {
    info: TrackInfo,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    /// The first decoded block, kept from validation in `open`.
    pending: Option<Vec<f32>>,
    /// 16-bit little-endian PCM (WAV), with this many channels: its packets are the
    /// interleaved samples themselves and are converted straight from the packet (see
    /// [`append_packed_s16`]).
    packed_s16: Option<usize>,
    /// Frames to drop after an accurate seek landed on an earlier packet boundary.
    skip_frames: u64,
    /// A seek to the very end: the next read reports the end of the stream.
    exhausted: bool,
    /// The stretch of the stream's timestamps that is the track (an MP4 edit list: the
    /// encoder's priming before it, padding after it); `None` plays every decoded frame.
    window: Option<Window>,
    /// The metadata the probe found in front of the container (an ID3v2 tag), kept until
    /// [`TrackSource::read_tags`].
    probe_metadata: Vec<MetadataRevision>,
    tags_read: bool,
}

impl std::fmt::Debug for TrackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackSource")
            .field("info", &self.info)
            .finish()
    }
}

impl TrackSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut probed = probe_file(path)?;
        let probe_metadata = probed.metadata.get().map(media::drain).unwrap_or_default();
        let format = probed.format;
        let track = audio_track(format.as_ref(), path)?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| unsupported(path, e))?;
        let codec = codec_name(&params).unwrap_or_else(|| "unknown".into());
        let sample_rate = params.sample_rate.ok_or_else(|| AudioError::Unsupported {
            path: path.to_path_buf(),
            message: "sample rate not stated".into(),
        })?;
        let channels = params.channels.map(|c| c.count() as u16).unwrap_or(0);
        let window = mp4::edit_window(path, sample_rate);
        let total_frames = window.map(|w| w.frames).or(params.n_frames);
        let duration_ms = total_frames.map(|n| n * 1000 / u64::from(sample_rate));
        let mut source = Self {
            info: TrackInfo {
                path: path.to_path_buf(),
                codec,
                sample_rate,
                channels,
                total_frames,
                duration_ms,
                tags: MediaTags::default(),
                replaygain: ReplayGain::default(),
            },
            format,
            decoder,
            track_id,
            pending: None,
            packed_s16: (params.codec == CODEC_TYPE_PCM_S16LE && channels > 0)
                .then_some(usize::from(channels)),
            skip_frames: 0,
            exhausted: false,
            window,
            probe_metadata,
            tags_read: false,
        };
        // Decode the first block now: a file that probes but cannot decode is refused here,
        // and containers that do not state their channel layout learn it from real audio.
        let mut first = Vec::new();
        if !source.decode_next(&mut first)? {
            return Err(AudioError::Decode {
                path: path.to_path_buf(),
                message: "no audio frames".into(),
            });
        }
        source.pending = Some(first);
        if source.info.channels == 0 {
            return Err(AudioError::Unsupported {
                path: path.to_path_buf(),
                message: "channel count unknown".into(),
            });
        }
        Ok(source)
    }

    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// Fills the info's tags and ReplayGain values from the metadata read while opening (no
    /// file I/O); the first call does the work, later ones return at once.
    pub fn read_tags(&mut self) {
        if self.tags_read {
            return;
        }
        self.tags_read = true;
        let mut revisions = media::drain(self.format.metadata());
        revisions.append(&mut self.probe_metadata);
        let (tags, replaygain) = media::tags_and_gain(&revisions);
        self.info.tags = tags;
        self.info.replaygain = replaygain;
    }

    /// Next block of interleaved samples at the source's own rate and channel count, or
    /// `None` at the end of the stream.
    pub fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        if let Some(block) = self.pending.take() {
            return Ok(Some(block));
        }
        let mut block = Vec::new();
        Ok(self.next_block_into(&mut block)?.then_some(block))
    }

    /// Appends the next block to `out` instead of returning it: the decode loop of the
    /// engine collects many packets into one buffer, and this saves a copy and an
    /// allocation per packet. Returns false at the end of the stream (nothing appended).
    pub fn next_block_into(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        if let Some(block) = self.pending.take() {
            out.extend_from_slice(&block);
            return Ok(true);
        }
        if self.exhausted {
            return Ok(false);
        }
        self.decode_next(out)
    }

    /// Moves to `position_ms`, sample-accurately where the format allows it.
    pub fn seek(&mut self, position_ms: u64) -> Result<()> {
        self.pending = None;
        let to = match self.window {
            // Timestamps count the priming too: the track's frame 0 is `start`.
            Some(w) => {
                let frame = position_ms * u64::from(self.info.sample_rate) / 1000;
                if frame >= w.frames {
                    self.exhausted = true;
                    return Ok(());
                }
                SeekTo::TimeStamp {
                    ts: w.start + frame,
                    track_id: self.track_id,
                }
            }
            None => SeekTo::Time {
                time: Time::new(position_ms / 1000, (position_ms % 1000) as f64 / 1000.0),
                track_id: Some(self.track_id),
            },
        };
        let seeked = match self.format.seek(SeekMode::Accurate, to) {
            Ok(seeked) => seeked,
            // Some readers (FLAC) answer a seek to the exact end with end-of-stream: that is
            // where the track ends, not a failure.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.exhausted = true;
                return Ok(());
            }
            Err(e) => return Err(self.decode_error(e)),
        };
        self.exhausted = false;
        self.decoder.reset();
        self.skip_frames = seeked.required_ts.saturating_sub(seeked.actual_ts);
        Ok(())
    }

    fn decode_next(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        let mut consecutive_errors = 0;
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(false);
                }
                Err(SymphoniaError::ResetRequired) => return Ok(false),
                Err(e) => return Err(self.decode_error(e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            if let Some(channels) = self.packed_s16 {
                let data = packet.buf();
                let have = (data.len() / (2 * channels)) as u64;
                match Self::keep(&mut self.skip_frames, self.window, packet.ts(), have) {
                    Keep::Frames(frames) => append_packed_s16(data, channels, frames, out),
                    Keep::Nothing => continue,
                    Keep::End => {
                        // Only padding is left.
                        self.exhausted = true;
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymphoniaError::DecodeError(msg)) => {
                    // A damaged packet in an otherwise good file costs a click, not the track.
                    consecutive_errors += 1;
                    tracing::debug!(path = %self.info.path.display(), msg, "skipping undecodable packet");
                    if consecutive_errors > MAX_CONSECUTIVE_DECODE_ERRORS {
                        return Err(AudioError::Decode {
                            path: self.info.path.clone(),
                            message: format!("too many damaged packets: {msg}"),
                        });
                    }
                    continue;
                }
                Err(e) => return Err(self.decode_error(e)),
            };
            let spec = *decoded.spec();
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            if self.info.channels == 0 {
                self.info.channels = spec.channels.count() as u16;
            }
            match Self::keep(
                &mut self.skip_frames,
                self.window,
                packet.ts(),
                frames as u64,
            ) {
                Keep::Frames(frames) => append_interleaved(&decoded, frames, out),
                Keep::Nothing => continue,
                Keep::End => {
                    // Only padding is left.
                    self.exhausted = true;
                    return Ok(false);
                }
            }
            return Ok(true);
        }
    }

    /// Which of the `have` frames of the packet at `ts` belong to the track: after an accurate
    /// seek the first ones may be before the target, and an MP4 edit list cuts priming and
    /// padding. (Takes the fields it needs, so a decoded packet may still borrow the decoder.)
    fn keep(skip_frames: &mut u64, window: Option<Window>, ts: u64, have: u64) -> Keep {
        let mut keep = 0..have;
        if *skip_frames > 0 {
            let skip = (*skip_frames).min(have);
            *skip_frames -= skip;
            keep.start = skip;
        }
        if let Some(w) = window {
            if ts >= w.end() {
                return Keep::End;
            }
            keep.start = keep.start.max(w.start.saturating_sub(ts).min(have));
            keep.end = keep.end.min(w.end() - ts);
        }
        if keep.start >= keep.end {
            return Keep::Nothing;
        }
        Keep::Frames(keep.start as usize..keep.end as usize)
    }

    fn decode_error(&self, e: SymphoniaError) -> AudioError {
        match e {
            SymphoniaError::IoError(io) => AudioError::Io {
                path: self.info.path.clone(),
                message: io.to_string(),
            },
            SymphoniaError::Unsupported(m) => AudioError::Unsupported {
                path: self.info.path.clone(),
                message: m.to_owned(),
            },
            other => AudioError::Decode {
                path: self.info.path.clone(),
                message: other.to_string(),
            },
        }
    }
}

/// What part of a packet plays.
enum Keep {
    Frames(std::ops::Range<usize>),
    Nothing,
    /// Past the track's end: only padding is left.
    End,
}

/// Appends `frames` of a packet of interleaved 16-bit little-endian samples to `out`, with
/// the conversion symphonia's PCM decoder and `SampleBuffer` make (the same values), in one
/// pass. The decoder would spread the packet into one plane per channel first and the
/// conversion interleave it back: most of what playing a WAV costs.
fn append_packed_s16(
    data: &[u8],
    channels: usize,
    frames: std::ops::Range<usize>,
    out: &mut Vec<f32>,
) {
    let bytes = &data[frames.start * channels * 2..frames.end * channels * 2];
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|b| IntoSample::<f32>::into_sample(i16::from_le_bytes([b[0], b[1]]))),
    );
}

/// Appends `frames` of a decoded packet to `out`, interleaved, as f32 (symphonia's own
/// sample conversion, so the values are those of its `SampleBuffer`). In one pass, frame by
/// frame: `SampleBuffer::copy_interleaved_ref` writes one channel at a time with a stride,
/// which does not vectorise, and copying out of it again cost a second pass; on a 24-bit
/// FLAC the two were about a tenth of the decode.
fn append_interleaved(
    decoded: &AudioBufferRef<'_>,
    frames: std::ops::Range<usize>,
    out: &mut Vec<f32>,
) {
    match decoded {
        AudioBufferRef::U8(b) => append_typed(b, frames, out),
        AudioBufferRef::U16(b) => append_typed(b, frames, out),
        AudioBufferRef::U24(b) => append_typed(b, frames, out),
        AudioBufferRef::U32(b) => append_typed(b, frames, out),
        AudioBufferRef::S8(b) => append_typed(b, frames, out),
        AudioBufferRef::S16(b) => append_typed(b, frames, out),
        AudioBufferRef::S24(b) => append_typed(b, frames, out),
        AudioBufferRef::S32(b) => append_typed(b, frames, out),
        AudioBufferRef::F32(b) => append_typed(b, frames, out),
        AudioBufferRef::F64(b) => append_typed(b, frames, out),
    }
}

fn append_typed<S>(buf: &AudioBuffer<S>, frames: std::ops::Range<usize>, out: &mut Vec<f32>)
where
    S: Sample + IntoSample<f32>,
{
    let planes = buf.planes();
    let planes = planes.planes();
    let start = out.len();
    match planes {
        [] => {}
        [mono] => out.extend(mono[frames].iter().map(|&s| s.into_sample())),
        [left, right] => {
            out.resize(start + frames.len() * 2, 0.0);
            let pairs = left[frames.clone()].iter().zip(&right[frames]);
            for (frame, (&l, &r)) in out[start..].chunks_exact_mut(2).zip(pairs) {
                frame[0] = l.into_sample();
                frame[1] = r.into_sample();
            }
        }
        planes => {
            let channels = planes.len();
            out.resize(start + frames.len() * channels, 0.0);
            for (i, frame) in out[start..].chunks_exact_mut(channels).enumerate() {
                for (sample, plane) in frame.iter_mut().zip(planes) {
                    *sample = plane[frames.start + i].into_sample();
                }
            }
        }
    }
}

/// Opens `path` and finds its container: the first step of playing a file and of reading
/// what it holds. A missing path, something that is not a regular file, an unreadable file
/// and a file in no known format are told apart.
pub(crate) fn probe_file(path: &Path) -> Result<ProbeResult> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AudioError::NotFound(path.to_path_buf()),
        _ => AudioError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    })?;
    // A FIFO or a device node would block `open` or `read` forever; only plain files play.
    if !meta.is_file() {
        return Err(AudioError::NotAFile(path.to_path_buf()));
    }
    let file = open_media(path).map_err(|e| AudioError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let format_opts = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    symphonia::default::get_probe()
        .format(&hint, stream, &format_opts, &MetadataOptions::default())
        .map_err(|e| probe_error(path, e))
}

/// The track a file plays: its first track with a codec.
pub(crate) fn audio_track<'f>(format: &'f dyn FormatReader, path: &Path) -> Result<&'f Track> {
    format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Unsupported {
            path: path.to_path_buf(),
            message: "no audio track".into(),
        })
}

/// The codec's short name, when this build can decode it.
pub(crate) fn codec_name(params: &CodecParameters) -> Option<String> {
    symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name.to_owned())
}

/// A probe that fails: the probe scans the whole file for a container it knows, so an end of
/// stream here means that no known container was found (a format this build does not read),
/// not a damaged file of a known one.
fn probe_error(path: &Path, e: SymphoniaError) -> AudioError {
    match e {
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Unsupported {
                path: path.to_path_buf(),
                message: "no supported container found before the end of the file".into(),
            }
        }
        other => unsupported(path, other),
    }
}

pub(crate) fn unsupported(path: &Path, e: SymphoniaError) -> AudioError {
    match e {
        SymphoniaError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            AudioError::Io {
                path: path.to_path_buf(),
                message: io.to_string(),
            }
        }
        SymphoniaError::Unsupported(m) => AudioError::Unsupported {
            path: path.to_path_buf(),
            message: m.to_owned(),
        },
        other => AudioError::Decode {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

/// Opens a media file for reading.
#[cfg(not(windows))]
fn open_media(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Opens a media file for reading, sharing read and delete access only: the user can delete,
/// rename or move a playing file (as Windows players allow; the open handle keeps reading
/// the old data), while a program writing to it is refused instead of changing it under us.
#[cfg(windows)]
fn open_media(path: &Path) -> std::io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_DELETE, FILE_SHARE_READ};
    std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_DELETE)
        .open(path)
}
