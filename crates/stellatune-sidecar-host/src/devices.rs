//! Output devices: the built-in `null` and `wav:PATH` devices, paced by their own real-time
//! clock, and (feature `cpal`) the system's devices as `cpal:NAME`.
//!
//! The `wav` device writes 32-bit float (`wav:PATH`, the same as `wav[f32]:PATH`), or the
//! sample format named in brackets: `wav[i16]:PATH`, `wav[i24]:PATH`, `wav[i32]:PATH`, so that
//! every conversion a real device may need can be exercised headless. A cpal device is opened
//! in a format its driver reports (`SampleFormat::preferred` chooses).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use stellatune_sidecar_proto::{DeviceInfo, MAX_CHANNELS};

use crate::convert::{self, DeviceSample, SampleFormat, TpdfDither};

/// Sample rates the built-in devices advertise; they accept any rate.
const BUILTIN_RATES: [u32; 11] = [
    8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000,
];

/// A parsed device id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Null,
    Wav {
        path: PathBuf,
        format: SampleFormat,
    },
    #[cfg(feature = "cpal")]
    Cpal(String),
}

impl DeviceSpec {
    pub fn parse(id: &str) -> Result<DeviceSpec, String> {
        if id == "null" {
            return Ok(DeviceSpec::Null);
        }
        if let Some(rest) = id.strip_prefix("wav") {
            let wav = |format, path: &str| {
                if path.is_empty() {
                    return Err(format!("wav device needs a path: {}PATH", wav_id(format)));
                }
                Ok(DeviceSpec::Wav {
                    path: PathBuf::from(path),
                    format,
                })
            };
            if let Some(path) = rest.strip_prefix(':') {
                return wav(SampleFormat::F32, path);
            }
            if let Some(bracketed) = rest.strip_prefix('[') {
                let Some((name, path)) = bracketed.split_once("]:") else {
                    return Err(format!("bad wav device {id:?} (expected wav[FORMAT]:PATH)"));
                };
                let format = SampleFormat::from_name(name).ok_or_else(|| {
                    format!(
                        "wav device: unknown sample format {name:?} (expected i16, i24, i32 or f32)"
                    )
                })?;
                return wav(format, path);
            }
        }
        if let Some(name) = id.strip_prefix("cpal:") {
            #[cfg(feature = "cpal")]
            return Ok(DeviceSpec::Cpal(name.to_string()));
            #[cfg(not(feature = "cpal"))]
            return Err(format!(
                "device {name:?}: this sidecar was built without the cpal feature"
            ));
        }
        Err(format!(
            "unknown device {id:?} (expected null, wav:PATH, wav[FORMAT]:PATH or cpal:NAME)"
        ))
    }
}

/// The id prefix of the wav device in `format`: `wav:` for f32 (the default), else `wav[i16]:`...
fn wav_id(format: SampleFormat) -> String {
    match format {
        SampleFormat::F32 => "wav:".into(),
        other => format!("wav[{other}]:"),
    }
}

fn describe(format: SampleFormat) -> &'static str {
    match format {
        SampleFormat::I16 => "16-bit integer, TPDF dither",
        SampleFormat::I24 => "24-bit integer, TPDF dither",
        SampleFormat::I32 => "32-bit integer",
        SampleFormat::F32 => "32-bit float",
    }
}

pub fn list() -> Vec<DeviceInfo> {
    let mut devices = vec![DeviceInfo {
        id: "null".into(),
        name: "Null output (discards audio in real time)".into(),
    }];
    // f32 first: `wav:` is the plain id, and `wav[f32]:` an alias of it.
    for format in [
        SampleFormat::F32,
        SampleFormat::I16,
        SampleFormat::I24,
        SampleFormat::I32,
    ] {
        let id = wav_id(format);
        let alias = if format.is_float() {
            " or wav[f32]:PATH"
        } else {
            ""
        };
        devices.push(DeviceInfo {
            name: format!(
                "WAV file ({id}PATH{alias}, {}, real time)",
                describe(format)
            ),
            id,
        });
    }
    #[cfg(feature = "cpal")]
    devices.extend(cpal_device::list());
    devices
}

/// What a device can be opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCaps {
    pub sample_rates: Vec<u32>,
    pub max_channels: u16,
    /// The sample format the device is opened in; the rates and channels are those it has in
    /// that format.
    pub format: SampleFormat,
}

pub fn caps(id: &str) -> Result<DeviceCaps, String> {
    let builtin = |format| DeviceCaps {
        sample_rates: BUILTIN_RATES.to_vec(),
        max_channels: MAX_CHANNELS,
        format,
    };
    match DeviceSpec::parse(id)? {
        // The null device consumes the ring's f32 as it is.
        DeviceSpec::Null => Ok(builtin(SampleFormat::F32)),
        DeviceSpec::Wav { format, .. } => Ok(builtin(format)),
        #[cfg(feature = "cpal")]
        DeviceSpec::Cpal(name) => cpal_device::caps(&name),
    }
}

/// A WAV file being written in one sample format.
pub struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
    format: SampleFormat,
    dither: TpdfDither,
}

impl WavSink {
    fn create(
        path: &std::path::Path,
        format: SampleFormat,
        sample_rate: u32,
        channels: u16,
    ) -> Result<WavSink, String> {
        let wav_spec = hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: format.bits(),
            sample_format: if format.is_float() {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let writer = hound::WavWriter::create(path, wav_spec)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(WavSink {
            writer,
            format,
            dither: TpdfDither::new(),
        })
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), hound::Error> {
        let (w, dither) = (&mut self.writer, &mut self.dither);
        match self.format {
            SampleFormat::F32 => write_as::<f32>(w, samples, dither),
            SampleFormat::I16 => write_as::<i16>(w, samples, dither),
            SampleFormat::I32 => write_as::<i32>(w, samples, dither),
            SampleFormat::I24 => samples
                .iter()
                .try_for_each(|&s| w.write_sample(convert::to_i24(s, dither))),
        }
    }
}

fn write_as<T: DeviceSample + hound::Sample>(
    writer: &mut hound::WavWriter<BufWriter<File>>,
    samples: &[f32],
    dither: &mut TpdfDither,
) -> Result<(), hound::Error> {
    samples
        .iter()
        .try_for_each(|&s| writer.write_sample(T::from_f32(s, dither)))
}

/// Where a paced (built-in) device puts the audio it consumes.
pub enum PacedSink {
    Null,
    Wav(Box<WavSink>),
}

impl PacedSink {
    pub fn open(spec: &DeviceSpec, sample_rate: u32, channels: u16) -> Result<PacedSink, String> {
        match spec {
            DeviceSpec::Null => Ok(PacedSink::Null),
            DeviceSpec::Wav { path, format } => Ok(PacedSink::Wav(Box::new(WavSink::create(
                path,
                *format,
                sample_rate,
                channels,
            )?))),
            #[cfg(feature = "cpal")]
            DeviceSpec::Cpal(_) => Err("not a paced device".into()),
        }
    }

    pub fn consume(&mut self, samples: &[f32]) -> Result<(), String> {
        match self {
            PacedSink::Null => Ok(()),
            PacedSink::Wav(w) => w
                .write(samples)
                .map_err(|e| format!("wav write failed: {e}")),
        }
    }

    /// Makes what was written so far a valid file (header updated).
    pub fn flush(&mut self) -> Result<(), String> {
        match self {
            PacedSink::Null => Ok(()),
            PacedSink::Wav(w) => w
                .writer
                .flush()
                .map_err(|e| format!("wav flush failed: {e}")),
        }
    }

    pub fn finalize(self) -> Result<(), String> {
        match self {
            PacedSink::Null => Ok(()),
            PacedSink::Wav(w) => w
                .writer
                .finalize()
                .map_err(|e| format!("wav finalize failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(path: &str, format: SampleFormat) -> Result<DeviceSpec, String> {
        Ok(DeviceSpec::Wav {
            path: PathBuf::from(path),
            format,
        })
    }

    #[test]
    fn wav_ids_name_their_format() {
        assert_eq!(
            DeviceSpec::parse("wav:out.wav"),
            wav("out.wav", SampleFormat::F32)
        );
        assert_eq!(
            DeviceSpec::parse("wav[f32]:out.wav"),
            wav("out.wav", SampleFormat::F32)
        );
        assert_eq!(
            DeviceSpec::parse("wav[i16]:/tmp/a b.wav"),
            wav("/tmp/a b.wav", SampleFormat::I16)
        );
        // Only the first `]:` ends the format: a Windows path keeps its drive colon.
        assert_eq!(
            DeviceSpec::parse(r"wav[i24]:C:\out]:x.wav"),
            wav(r"C:\out]:x.wav", SampleFormat::I24)
        );
        assert_eq!(DeviceSpec::parse("wav[i32]:x"), wav("x", SampleFormat::I32));
        for bad in [
            "wav",
            "wav:",
            "wav[i16]:",
            "wav[i8]:x",
            "wav[]:x",
            "wav[i16]x",
            "wavx",
            "wav[i16",
        ] {
            assert!(DeviceSpec::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn every_listed_wav_id_parses_with_a_path_and_reports_its_format() {
        let wav_ids: Vec<String> = list()
            .into_iter()
            .map(|d| d.id)
            .filter(|id| id.starts_with("wav"))
            .collect();
        assert_eq!(wav_ids, ["wav:", "wav[i16]:", "wav[i24]:", "wav[i32]:"]);
        for (id, format) in wav_ids.iter().zip([
            SampleFormat::F32,
            SampleFormat::I16,
            SampleFormat::I24,
            SampleFormat::I32,
        ]) {
            let device = format!("{id}x.wav");
            assert_eq!(DeviceSpec::parse(&device), wav("x.wav", format));
            assert_eq!(caps(&device).unwrap().format, format);
        }
        assert_eq!(caps("null").unwrap().format, SampleFormat::F32);
    }
}

#[cfg(feature = "cpal")]
pub mod cpal_device {
    //! System devices through cpal's default host (on Windows with feature `asio`: the ASIO host
    //! when it is available).
    //!
    //! A device is opened in a sample format its driver reports: f32 if it has it, else the
    //! widest integer format. cpal 0.15 has no 24-bit format (its ASIO host does not offer
    //! 24-bit drivers at all), so here that means i32, then i16.

    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::mpsc::Sender;
    use std::time::{Duration, Instant};

    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use stellatune_sidecar_proto::{DeviceInfo, RingReader};

    use super::DeviceCaps;
    use crate::convert::{DeviceSample, SampleFormat, TpdfDither, convert};
    use crate::stream::{StreamConfig, StreamStats};

    fn host() -> cpal::Host {
        #[cfg(all(windows, feature = "asio"))]
        if let Ok(host) = cpal::host_from_id(cpal::HostId::Asio) {
            return host;
        }
        cpal::default_host()
    }

    /// `cpal:` alone names the host's default output device.
    fn find(name: &str) -> Result<cpal::Device, String> {
        let host = host();
        if name.is_empty() {
            return host
                .default_output_device()
                .ok_or_else(|| "no default output device".to_string());
        }
        host.output_devices()
            .map_err(|e| format!("cannot list devices: {e}"))?
            .find(|d| d.name().is_ok_and(|n| n == name))
            .ok_or_else(|| format!("no output device named {name:?}"))
    }

    pub fn check(name: &str) -> Result<(), String> {
        find(name).map(drop)
    }

    pub fn list() -> Vec<DeviceInfo> {
        let mut out = vec![DeviceInfo {
            id: "cpal:".into(),
            name: "System default output".into(),
        }];
        if let Ok(devices) = host().output_devices() {
            for d in devices {
                if let Ok(name) = d.name() {
                    let format = supported_configs(&d)
                        .ok()
                        .and_then(|configs| preferred_format(&configs, None));
                    out.push(DeviceInfo {
                        id: format!("cpal:{name}"),
                        name: match format {
                            Some(format) => format!("{name} ({format})"),
                            None => name,
                        },
                    });
                }
            }
        }
        out
    }

    /// The sidecar's name for a cpal format, if it can convert to it.
    fn sample_format(format: cpal::SampleFormat) -> Option<SampleFormat> {
        match format {
            cpal::SampleFormat::I16 => Some(SampleFormat::I16),
            cpal::SampleFormat::I32 => Some(SampleFormat::I32),
            cpal::SampleFormat::F32 => Some(SampleFormat::F32),
            _ => None,
        }
    }

    /// The device's configurations in the formats the sidecar converts to.
    fn supported_configs(
        device: &cpal::Device,
    ) -> Result<Vec<(SampleFormat, cpal::SupportedStreamConfigRange)>, String> {
        Ok(device
            .supported_output_configs()
            .map_err(|e| format!("cannot query the device: {e}"))?
            .filter_map(|c| sample_format(c.sample_format()).map(|f| (f, c)))
            .collect())
    }

    /// The format to open the device in; with `wanted` = (rate, channels), among the
    /// configurations that fit it first.
    fn preferred_format(
        configs: &[(SampleFormat, cpal::SupportedStreamConfigRange)],
        wanted: Option<(u32, u16)>,
    ) -> Option<SampleFormat> {
        let fitting = configs.iter().filter(|(_, c)| {
            wanted.is_none_or(|(rate, channels)| {
                c.channels() == channels
                    && c.min_sample_rate().0 <= rate
                    && rate <= c.max_sample_rate().0
            })
        });
        SampleFormat::preferred(fitting.map(|(f, _)| *f))
            .or_else(|| SampleFormat::preferred(configs.iter().map(|(f, _)| *f)))
    }

    pub fn caps(name: &str) -> Result<DeviceCaps, String> {
        let device = find(name)?;
        let configs = supported_configs(&device).map_err(|e| format!("{name:?}: {e}"))?;
        let format = preferred_format(&configs, None)
            .ok_or_else(|| format!("{name:?} offers no i16, i32 or f32 format"))?;
        let configs: Vec<_> = configs
            .iter()
            .filter(|(f, _)| *f == format)
            .map(|(_, c)| c)
            .collect();
        let mut rates: Vec<u32> = super::BUILTIN_RATES
            .iter()
            .copied()
            .filter(|&r| {
                configs
                    .iter()
                    .any(|c| c.min_sample_rate().0 <= r && r <= c.max_sample_rate().0)
            })
            .collect();
        rates.dedup();
        let max_channels = configs.iter().map(|c| c.channels()).max().unwrap_or(0);
        Ok(DeviceCaps {
            sample_rates: rates,
            max_channels,
            format,
        })
    }

    /// The device callback: converts straight from the ring into the device's buffer and
    /// format (`RingReader::read_in_place`: no copy in between, nothing allocated); what the
    /// ring cannot supply is silence.
    fn callback<T: DeviceSample>(
        mut reader: RingReader,
        ch: usize,
        stats: Arc<StreamStats>,
    ) -> impl FnMut(&mut [T], &cpal::OutputCallbackInfo) + Send + 'static {
        let mut dither = TpdfDither::new();
        let mut raised = false;
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            if !raised {
                // The driver's callback thread feeds the device: ask for real-time priority
                // once, from the thread itself (a no-op where the driver already has it).
                raised = true;
                log!(
                    "device thread priority: {}",
                    stellatune_process::priority::raise_current_thread()
                );
            }
            let wanted = data.len() / ch;
            let mut done = 0;
            // A second read when the first only carried out a reset (its fade-out).
            for _ in 0..2 {
                if done == wanted {
                    break;
                }
                reader.read_in_place(wanted - done, |part| {
                    let frames = part.len() / ch;
                    convert(
                        part,
                        &mut data[done * ch..(done + frames) * ch],
                        &mut dither,
                    );
                    done += frames;
                });
            }
            data[done * ch..].fill(T::default());
            // The device plays this buffer next; its own queue beyond it is not known here.
            reader.set_device_queued(done);
            // The driver asks again one buffer from now: the writer refills right after that.
            let rate = u64::from(reader.spec().sample_rate.max(1));
            let buffer = Duration::from_nanos(wanted as u64 * 1_000_000_000 / rate);
            reader.publish_next_read(Instant::now() + buffer, wanted);
            let underrun = reader.note_period(wanted, done);
            stats.played(done as u64, underrun, reader.queued_frames());
        }
    }

    /// Builds and starts the stream with samples of type `T`. Fixed buffer sizes are not
    /// supported everywhere: on failure it retries with the device's default size. The callback
    /// (and its reader) moves into the first attempt, so a retry opens another reader.
    fn start_stream<T: DeviceSample + cpal::SizedSample>(
        device: &cpal::Device,
        reader: RingReader,
        reopen: impl Fn() -> Result<RingReader, String>,
        cfg: StreamConfig,
        stats: &Arc<StreamStats>,
    ) -> Result<cpal::Stream, String> {
        let ch = usize::from(cfg.channels);
        let on_error = |e: cpal::StreamError| log!(warn: "device error: {e}");
        let mut config = cpal::StreamConfig {
            channels: cfg.channels,
            sample_rate: cpal::SampleRate(cfg.sample_rate),
            buffer_size: cpal::BufferSize::Fixed(cfg.buffer_frames),
        };
        let stream = match device.build_output_stream(
            &config,
            callback::<T>(reader, ch, stats.clone()),
            on_error,
            None,
        ) {
            Ok(s) => Ok(s),
            Err(_) => {
                config.buffer_size = cpal::BufferSize::Default;
                reopen().and_then(|reader| {
                    device
                        .build_output_stream(
                            &config,
                            callback::<T>(reader, ch, stats.clone()),
                            on_error,
                            None,
                        )
                        .map_err(|e| e.to_string())
                })
            }
        };
        stream.and_then(|s| s.play().map(|()| s).map_err(|e| e.to_string()))
    }

    /// The playback thread of a cpal stream: opens the ring, builds the stream in the device's
    /// format (reporting the outcome on `ready`), plays until `stop`, then drops it. The ring
    /// reader lives in the device callback and is dropped with the stream.
    pub fn run(
        name: &str,
        ring_path: &Path,
        cfg: StreamConfig,
        stats: Arc<StreamStats>,
        mode: Arc<AtomicU8>,
        ready: Sender<Result<(), String>>,
    ) {
        let open = || {
            RingReader::open(ring_path)
                .map_err(|e| format!("cannot open ring {}: {e}", ring_path.display()))
        };
        let opened = find(name).and_then(|device| {
            let configs = supported_configs(&device).map_err(|e| format!("{name:?}: {e}"))?;
            let format = preferred_format(&configs, Some((cfg.sample_rate, cfg.channels)))
                .ok_or_else(|| format!("{name:?} offers no i16, i32 or f32 format"))?;
            Ok((device, format, open()?))
        });
        let (device, format, reader) = match opened {
            Ok(d) => d,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        log!("opening {name:?} in {format}");
        let stream = match format {
            SampleFormat::F32 => start_stream::<f32>(&device, reader, open, cfg, &stats),
            SampleFormat::I32 => start_stream::<i32>(&device, reader, open, cfg, &stats),
            SampleFormat::I16 => start_stream::<i16>(&device, reader, open, cfg, &stats),
            SampleFormat::I24 => Err("cpal has no 24-bit format".to_string()),
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot start {name:?} in {format}: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        // Woken by the stop (which unparks this thread); the device's own thread plays.
        while mode.load(Ordering::Acquire) == crate::stream::RUN {
            std::thread::park();
        }
        drop(stream);
    }
}
