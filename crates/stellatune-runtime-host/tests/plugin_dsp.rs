//! The DSP chain through the host with the real `gain` plugin: every frame is processed,
//! the chain moves to a new generation on reload, and a chain naming an unknown plugin or
//! DSP type is refused. (A malformed chain document is the C ABI's parser's to refuse.)

mod support;

use stellatune_runtime_host::{DspSpec, HostError, PlaybackState, PluginError, RuntimeHost};
use support::*;

fn read_raw(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn gain(g: f32) -> Vec<DspSpec> {
    vec![DspSpec::new(PLUGIN_ID, Some("gain")).with_config(serde_json::json!({ "gain": g }))]
}

#[test]
fn the_gain_plugin_processes_every_frame_of_a_track() {
    let f = Fixture::new();
    let host = RuntimeHost::new("dsp");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let plain = f.path().join("plain.raw");
    host.apply_route(c.id, capture_route(&plain)).unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(std::time::Duration::from_secs(10), || {
        host.status(c.id).unwrap().state == PlaybackState::Stopped
    }));
    host.clear_route(c.id).unwrap();

    let halved = f.path().join("halved.raw");
    host.apply_route(c.id, capture_route(&halved)).unwrap();
    host.set_dsp_chain(c.id, gain(0.5)).unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(std::time::Duration::from_secs(10), || {
        host.status(c.id).unwrap().state == PlaybackState::Stopped
    }));
    host.clear_route(c.id).unwrap();

    let (plain, halved) = (read_raw(&plain), read_raw(&halved));
    assert_eq!(plain.len(), 3 * 44_100 * 2);
    assert_eq!(halved.len(), plain.len(), "no frame lost or added");
    let worst = plain
        .iter()
        .zip(&halved)
        .map(|(p, h)| (p * 0.5 - h).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "gain 0.5 off by up to {worst}");
    host.shutdown().unwrap();
}

#[test]
fn the_chain_moves_to_a_new_generation_and_bad_chains_are_refused() {
    let f = Fixture::new();
    let host = RuntimeHost::new("dsp-reload");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    host.apply_route(c.id, capture_route(&f.path().join("out.raw")))
        .unwrap();
    host.set_dsp_chain(c.id, gain(0.5)).unwrap();
    for _ in 0..5 {
        host.plugins_force_reload(PLUGIN_ID).unwrap();
    }
    // Route and chain both moved: only the active generation is left.
    assert!(wait_for(std::time::Duration::from_secs(5), || {
        let m = host.metrics();
        m.plugin_generations_active == 1 && m.plugin_generations_draining == 0
    }));
    assert_eq!(f.shadow_files(), 1);
    let unknown = vec![DspSpec::new("nope", None)];
    assert!(matches!(
        host.set_dsp_chain(c.id, unknown),
        Err(HostError::Plugin(PluginError::UnknownPlugin(_)))
    ));
    let wrong_type = vec![DspSpec::new(PLUGIN_ID, Some("reverb"))];
    let err = host
        .set_dsp_chain(c.id, wrong_type)
        .unwrap_err()
        .to_string();
    assert!(err.contains("reverb") && err.contains("gain"), "{err}");
    // Clearing the chain lets the generation go with the route.
    host.set_dsp_chain(c.id, Vec::new()).unwrap();
    host.clear_route(c.id).unwrap();
    host.plugins_uninstall(PLUGIN_ID).unwrap();
    assert!(wait_for(std::time::Duration::from_secs(5), || {
        let m = host.metrics();
        m.plugin_generations_active == 0 && m.plugin_generations_draining == 0
    }));
    host.shutdown().unwrap();
}
