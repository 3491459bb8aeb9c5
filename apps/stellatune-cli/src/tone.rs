use std::path::Path;

/// Writes a stereo sine sweep from 220 Hz to 880 Hz at half scale; returns the frames written.
pub fn write_sweep(path: &Path, seconds: f32, rate: u32) -> Result<u64, String> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("seconds must be positive, got {seconds}"));
    }
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::create(path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    let frames = (seconds * rate as f32) as u64;
    let mut phase = 0.0f64;
    for i in 0..frames {
        let t = i as f64 / frames as f64;
        let freq = 220.0 * 4f64.powf(t);
        phase += std::f64::consts::TAU * freq / f64::from(rate);
        let s = (phase.sin() * 0.5 * f64::from(i16::MAX)) as i16;
        for _ in 0..2 {
            writer
                .write_sample(s)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    writer
        .finalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(frames)
}
