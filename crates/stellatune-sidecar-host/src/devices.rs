//! Output devices: the built-in `null` and `wav:PATH` devices, paced by their own real-time
//! clock, and (feature `cpal`) the system's devices as `cpal:NAME`.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use stellatune_sidecar_proto::{DeviceInfo, MAX_CHANNELS};

/// Sample rates the built-in devices advertise; they accept any rate.
const BUILTIN_RATES: [u32; 11] = [
    8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000,
];

/// A parsed device id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Null,
    Wav(PathBuf),
    #[cfg(feature = "cpal")]
    Cpal(String),
}

impl DeviceSpec {
    pub fn parse(id: &str) -> Result<DeviceSpec, String> {
        if id == "null" {
            return Ok(DeviceSpec::Null);
        }
        if let Some(path) = id.strip_prefix("wav:") {
            if path.is_empty() {
                return Err("wav device needs a path: wav:PATH".into());
            }
            return Ok(DeviceSpec::Wav(PathBuf::from(path)));
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
            "unknown device {id:?} (expected null, wav:PATH or cpal:NAME)"
        ))
    }
}

pub fn list() -> Vec<DeviceInfo> {
    #[allow(unused_mut)]
    let mut devices = vec![
        DeviceInfo {
            id: "null".into(),
            name: "Null output (discards audio in real time)".into(),
        },
        DeviceInfo {
            id: "wav:".into(),
            name: "WAV file (wav:PATH, 32-bit float, real time)".into(),
        },
    ];
    #[cfg(feature = "cpal")]
    devices.extend(cpal_device::list());
    devices
}

/// `(sample_rates, max_channels)` of a device.
pub fn caps(id: &str) -> Result<(Vec<u32>, u16), String> {
    match DeviceSpec::parse(id)? {
        DeviceSpec::Null | DeviceSpec::Wav(_) => Ok((BUILTIN_RATES.to_vec(), MAX_CHANNELS)),
        #[cfg(feature = "cpal")]
        DeviceSpec::Cpal(name) => cpal_device::caps(&name),
    }
}

/// Where a paced (built-in) device puts the audio it consumes.
pub enum PacedSink {
    Null,
    Wav(Box<hound::WavWriter<BufWriter<File>>>),
}

impl PacedSink {
    pub fn open(spec: &DeviceSpec, sample_rate: u32, channels: u16) -> Result<PacedSink, String> {
        match spec {
            DeviceSpec::Null => Ok(PacedSink::Null),
            DeviceSpec::Wav(path) => {
                let wav_spec = hound::WavSpec {
                    channels,
                    sample_rate,
                    bits_per_sample: 32,
                    sample_format: hound::SampleFormat::Float,
                };
                let w = hound::WavWriter::create(path, wav_spec)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                Ok(PacedSink::Wav(Box::new(w)))
            }
            #[cfg(feature = "cpal")]
            DeviceSpec::Cpal(_) => Err("not a paced device".into()),
        }
    }

    pub fn consume(&mut self, samples: &[f32]) -> Result<(), String> {
        match self {
            PacedSink::Null => Ok(()),
            PacedSink::Wav(w) => {
                for &s in samples {
                    w.write_sample(s)
                        .map_err(|e| format!("wav write failed: {e}"))?;
                }
                Ok(())
            }
        }
    }

    /// Makes what was written so far a valid file (header updated).
    pub fn flush(&mut self) -> Result<(), String> {
        match self {
            PacedSink::Null => Ok(()),
            PacedSink::Wav(w) => w.flush().map_err(|e| format!("wav flush failed: {e}")),
        }
    }

    pub fn finalize(self) -> Result<(), String> {
        match self {
            PacedSink::Null => Ok(()),
            PacedSink::Wav(w) => w
                .finalize()
                .map_err(|e| format!("wav finalize failed: {e}")),
        }
    }
}

#[cfg(feature = "cpal")]
pub mod cpal_device {
    //! System devices through cpal's default host (on Windows with feature `asio`: the ASIO host
    //! when it is available).

    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::Sender;

    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use stellatune_sidecar_proto::{DeviceInfo, RingReader};

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
                    out.push(DeviceInfo {
                        id: format!("cpal:{name}"),
                        name,
                    });
                }
            }
        }
        out
    }

    pub fn caps(name: &str) -> Result<(Vec<u32>, u16), String> {
        let device = find(name)?;
        let configs: Vec<_> = device
            .supported_output_configs()
            .map_err(|e| format!("cannot query {name:?}: {e}"))?
            .filter(|c| c.sample_format() == cpal::SampleFormat::F32)
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
        Ok((rates, max_channels))
    }

    fn callback(
        mut reader: RingReader,
        ch: usize,
        stats: Arc<StreamStats>,
    ) -> impl FnMut(&mut [f32], &cpal::OutputCallbackInfo) + Send + 'static {
        move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
            let wanted = data.len() / ch;
            let mut got = reader.read(data);
            if got < wanted {
                // The first read may only have acknowledged a reset.
                got += reader.read(&mut data[got * ch..]);
            }
            data[got * ch..].fill(0.0);
            stats.played(got as u64, got < wanted);
        }
    }

    /// The playback thread of a cpal stream: opens the ring, builds the stream (reporting the
    /// outcome on `ready`), plays until `stop`, then drops it. The ring reader lives in the device
    /// callback and is dropped with the stream.
    pub fn run(
        name: &str,
        ring_path: &Path,
        cfg: StreamConfig,
        stats: Arc<StreamStats>,
        stop: Arc<AtomicBool>,
        ready: Sender<Result<(), String>>,
    ) {
        let ch = usize::from(cfg.channels);
        let open = || {
            RingReader::open(ring_path)
                .map_err(|e| format!("cannot open ring {}: {e}", ring_path.display()))
        };
        let device = match find(name).and_then(|d| open().map(|r| (d, r))) {
            Ok(d) => d,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let (device, reader) = device;
        let on_error = |e: cpal::StreamError| log!("device error: {e}");
        let mut config = cpal::StreamConfig {
            channels: cfg.channels,
            sample_rate: cpal::SampleRate(cfg.sample_rate),
            buffer_size: cpal::BufferSize::Fixed(cfg.buffer_frames),
        };
        // Fixed buffer sizes are not supported everywhere: fall back to the device's default.
        // The callback (and its reader) moves into the first attempt, so a retry opens another.
        let stream = match device.build_output_stream(
            &config,
            callback(reader, ch, stats.clone()),
            on_error,
            None,
        ) {
            Ok(s) => Ok(s),
            Err(_) => {
                config.buffer_size = cpal::BufferSize::Default;
                open().and_then(|reader| {
                    device
                        .build_output_stream(
                            &config,
                            callback(reader, ch, stats.clone()),
                            on_error,
                            None,
                        )
                        .map_err(|e| e.to_string())
                })
            }
        };
        let stream = match stream.and_then(|s| s.play().map(|()| s).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot start {name:?}: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        while !stop.load(Ordering::Acquire) {
            std::thread::park();
        }
        drop(stream);
    }
}
