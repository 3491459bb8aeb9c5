//! A device layer with no hardware behind it: devices are plugged, unplugged and made the
//! default by calls, and a stream's audio is taken by the caller instead of a device clock.
//! The tests drive device loss and hot-plug with it deterministically; a front end's own
//! tests can too.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{DeviceBackend, DeviceFeed, DeviceInfo, DeviceStream, Loss};
use crate::sink::SinkError;
use stellatune_core::StreamSpec;

#[derive(Default)]
struct State {
    devices: Vec<(String, String)>,
    default: Option<String>,
    streams: Vec<Arc<StreamSlot>>,
    opened: Vec<String>,
}

struct StreamSlot {
    device: String,
    channels: usize,
    feed: Mutex<Option<DeviceFeed>>,
    loss: Arc<Loss>,
}

/// Virtual output devices; see the module docs.
#[derive(Default)]
pub struct VirtualDevices {
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VirtualDevices {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Connects a device (the default if there is none yet).
    pub fn plug(&self, id: &str, name: &str) {
        let mut state = lock(&self.state);
        state.devices.retain(|(d, _)| d != id);
        state.devices.push((id.to_owned(), name.to_owned()));
        if state.default.is_none() {
            state.default = Some(id.to_owned());
        }
    }

    /// Disconnects a device: its streams fail as an unplugged device's would.
    pub fn unplug(&self, id: &str) {
        let mut state = lock(&self.state);
        state.devices.retain(|(d, _)| d != id);
        if state.default.as_deref() == Some(id) {
            state.default = None;
        }
        for stream in state.streams.iter().filter(|s| s.device == id) {
            lock(&stream.feed).take();
            stream.loss.report(format!("device `{id}` was unplugged"));
        }
    }

    /// Makes `id` the system default (`None`: no default).
    pub fn set_default(&self, id: Option<&str>) {
        lock(&self.state).default = id.map(str::to_owned);
    }

    /// Every device a stream was opened on, in order.
    pub fn opened(&self) -> Vec<String> {
        lock(&self.state).opened.clone()
    }

    /// Takes up to `max_frames` of what the live stream on `device` has queued, as a device
    /// callback would (fades around a reset included, without counting the shortfall as an
    /// underrun). Empty when no stream plays there.
    pub fn take(&self, device: &str, max_frames: usize) -> Vec<f32> {
        let stream = lock(&self.state)
            .streams
            .iter()
            .rev()
            .find(|s| s.device == device)
            .cloned();
        let Some(stream) = stream else {
            return Vec::new();
        };
        let mut feed = lock(&stream.feed);
        let Some(feed) = feed.as_mut() else {
            return Vec::new();
        };
        let mut out = vec![0.0; max_frames * stream.channels];
        let frames = feed.pull(&mut out);
        out.truncate(frames * stream.channels);
        out
    }

    fn present(&self, id: &str) -> bool {
        lock(&self.state).devices.iter().any(|(d, _)| d == id)
    }
}

struct VirtualStream {
    backend: Arc<VirtualDevices>,
    slot: Arc<StreamSlot>,
}

impl DeviceStream for VirtualStream {}

impl Drop for VirtualStream {
    fn drop(&mut self) {
        lock(&self.backend.state)
            .streams
            .retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

/// The backend a [`super::DeviceSink`] uses: a handle on the devices.
pub struct VirtualBackend(pub Arc<VirtualDevices>);

impl DeviceBackend for VirtualBackend {
    fn devices(&self) -> Result<Vec<DeviceInfo>, SinkError> {
        let state = lock(&self.0.state);
        Ok(state
            .devices
            .iter()
            .map(|(id, name)| DeviceInfo {
                id: id.clone(),
                name: name.clone(),
                backend: "virtual".into(),
                is_default: state.default.as_deref() == Some(id.as_str()),
            })
            .collect())
    }

    fn default_device(&self) -> Option<String> {
        lock(&self.0.state).default.clone()
    }

    fn is_present(&self, id: &str) -> bool {
        self.0.present(id)
    }

    fn negotiate(&self, id: Option<&str>, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        self.resolve(id)?;
        Ok(preferred)
    }

    fn open(
        &self,
        id: Option<&str>,
        spec: StreamSpec,
        feed: DeviceFeed,
    ) -> Result<(Box<dyn DeviceStream>, String), SinkError> {
        let device = self.resolve(id)?;
        let slot = Arc::new(StreamSlot {
            device: device.clone(),
            channels: usize::from(spec.channels),
            loss: feed.loss(),
            feed: Mutex::new(Some(feed)),
        });
        let mut state = lock(&self.0.state);
        state.streams.push(slot.clone());
        state.opened.push(device.clone());
        drop(state);
        Ok((
            Box::new(VirtualStream {
                backend: self.0.clone(),
                slot,
            }),
            device,
        ))
    }
}

impl VirtualBackend {
    fn resolve(&self, id: Option<&str>) -> Result<String, SinkError> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => self
                .default_device()
                .ok_or_else(|| SinkError::disconnected("no default output device"))?,
        };
        if self.0.present(&id) {
            Ok(id)
        } else {
            Err(SinkError::disconnected(format!(
                "output device `{id}` is not connected"
            )))
        }
    }
}
