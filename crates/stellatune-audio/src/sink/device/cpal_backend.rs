//! The system's devices through cpal: every host this build has (ALSA, and JACK when cpal
//! has it, on Linux; WASAPI, and ASIO when enabled, on Windows). A device's id is the host's
//! name and the device's (`alsa:default`, `wasapi:Speakers (Realtek Audio)`).

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::pace::Pace;
use super::{DeviceBackend, DeviceFeed, DeviceInfo, DeviceStream};
use crate::sink::SinkError;
use stellatune_core::StreamSpec;

pub struct CpalBackend;

impl DeviceStream for cpal::Stream {}

fn host_key(id: cpal::HostId) -> String {
    id.name().to_ascii_lowercase()
}

fn device_id(host: cpal::HostId, name: &str) -> String {
    format!("{}:{name}", host_key(host))
}

/// The default host's default output device and its id.
fn default_output() -> Option<(cpal::Device, String)> {
    let host = cpal::default_host();
    let device = host.default_output_device()?;
    let name = device.name().ok()?;
    Some((device, device_id(host.id(), &name)))
}

/// The device with id `id` (`host:name`), if it is connected.
fn find(id: &str) -> Result<Option<cpal::Device>, SinkError> {
    let Some((host_name, name)) = id.split_once(':') else {
        return Err(SinkError::invalid_config(format!(
            "output device id `{id}` is not of the form `backend:name`"
        )));
    };
    let Some(host_id) = cpal::available_hosts()
        .into_iter()
        .find(|h| host_key(*h) == host_name)
    else {
        return Ok(None);
    };
    let host = cpal::host_from_id(host_id)
        .map_err(|e| SinkError::device_caused_by(format!("output backend {host_name}: {e}"), e))?;
    if let Some(device) = host.default_output_device() {
        if device.name().is_ok_and(|n| n == name) {
            return Ok(Some(device));
        }
    }
    let devices = host
        .output_devices()
        .map_err(|e| SinkError::device_caused_by(format!("list {host_name} devices: {e}"), e))?;
    Ok(devices
        .into_iter()
        .find(|d| d.name().is_ok_and(|n| n == name)))
}

fn resolve(id: Option<&str>) -> Result<(cpal::Device, String), SinkError> {
    match id {
        None => default_output().ok_or_else(|| SinkError::disconnected("no default output device")),
        Some(id) => find(id)?.map(|d| (d, id.to_owned())).ok_or_else(|| {
            SinkError::disconnected(format!("output device `{id}` is not connected"))
        }),
    }
}

impl DeviceBackend for CpalBackend {
    fn devices(&self) -> Result<Vec<DeviceInfo>, SinkError> {
        let default = default_output().map(|(_, id)| id);
        let mut out = Vec::new();
        for host_id in cpal::available_hosts() {
            let host = match cpal::host_from_id(host_id) {
                Ok(host) => host,
                Err(e) => {
                    tracing::debug!(host = host_id.name(), error = %e, "output backend unavailable");
                    continue;
                }
            };
            let mut names: Vec<String> = Vec::new();
            if let Some(name) = host.default_output_device().and_then(|d| d.name().ok()) {
                names.push(name);
            }
            match host.output_devices() {
                Ok(devices) => names.extend(devices.filter_map(|d| d.name().ok())),
                Err(e) => {
                    tracing::debug!(host = host_id.name(), error = %e, "cannot list output devices");
                }
            }
            for name in names {
                let id = device_id(host_id, &name);
                if out.iter().any(|d: &DeviceInfo| d.id == id) {
                    continue;
                }
                out.push(DeviceInfo {
                    is_default: default.as_deref() == Some(id.as_str()),
                    id,
                    name,
                    backend: host_key(host_id),
                });
            }
        }
        Ok(out)
    }

    fn default_device(&self) -> Option<String> {
        default_output().map(|(_, id)| id)
    }

    fn is_present(&self, id: &str) -> bool {
        find(id).is_ok_and(|d| d.is_some())
    }

    fn negotiate(&self, id: Option<&str>, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        let (device, _) = resolve(id)?;
        // The music's own rate and channels when the device takes them in f32: nothing to
        // resample.
        if let Ok(configs) = device.supported_output_configs() {
            let native = configs.into_iter().any(|c| {
                c.sample_format() == cpal::SampleFormat::F32
                    && c.channels() == preferred.channels
                    && (c.min_sample_rate().0..=c.max_sample_rate().0)
                        .contains(&preferred.sample_rate)
            });
            if native {
                return Ok(preferred);
            }
        }
        let config = device
            .default_output_config()
            .map_err(|e| SinkError::device_caused_by(format!("device config: {e}"), e))?;
        Ok(StreamSpec::new(config.sample_rate().0, config.channels()))
    }

    fn open(
        &self,
        id: Option<&str>,
        spec: StreamSpec,
        mut feed: DeviceFeed,
    ) -> Result<(Box<dyn DeviceStream>, String), SinkError> {
        let (device, device_id) = resolve(id)?;
        let config = cpal::StreamConfig {
            channels: spec.channels,
            sample_rate: cpal::SampleRate(spec.sample_rate),
            buffer_size: cpal::BufferSize::Default,
        };
        let loss = feed.loss();
        let channels = usize::from(spec.channels).max(1);
        let mut pace = Pace::new(spec.sample_rate);
        let stream = device
            .build_output_stream(
                &config,
                move |out: &mut [f32], _| {
                    feed.fill(out);
                    // Only a device without a clock (one that asks again at once) ever waits
                    // here; see `pace`.
                    if let Some(wait) = pace.took(out.len() / channels, std::time::Instant::now()) {
                        std::thread::sleep(wait);
                    }
                },
                move |e| {
                    // Any stream error ends this stream's usefulness (an unplugged device, a
                    // driver reset): the engine re-opens the output.
                    tracing::warn!(error = %e, "output device error");
                    loss.report(e.to_string());
                },
                None,
            )
            .map_err(|e| match e {
                cpal::BuildStreamError::DeviceNotAvailable => {
                    SinkError::disconnected(format!("output device `{device_id}` is not available"))
                }
                e => SinkError::device_caused_by(format!("open device stream: {e}"), e),
            })?;
        stream
            .play()
            .map_err(|e| SinkError::device_caused_by(format!("start device stream: {e}"), e))?;
        Ok((Box::new(stream), device_id))
    }
}
