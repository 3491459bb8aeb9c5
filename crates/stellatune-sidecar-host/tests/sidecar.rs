//! Drives the built sidecar binary over its stdin/stdout like the player does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use stellatune_sidecar_proto::{
    Frame, PROTOCOL_VERSION, ProtoError, Request, Response, RingWriter, encode_frame, read_frame,
    ring_file_name,
};
use stellatune_test_support::{process, tone};

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

struct Sidecar {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<Frame<Response>>,
    next_id: u64,
}

impl Sidecar {
    fn spawn() -> Sidecar {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stellatune-sidecar-host"))
            .env("STELLATUNE_ASIO_PARENT_PID", std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sidecar");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                match read_frame::<_, Response>(&mut stdout) {
                    Ok(f) => {
                        if tx.send(f).is_err() {
                            return;
                        }
                    }
                    Err(ProtoError::Closed) => return,
                    Err(e) => panic!("sidecar wrote a bad frame: {e}"),
                }
            }
        });
        Sidecar {
            child,
            stdin,
            replies,
            next_id: 1,
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to sidecar");
        stdin.flush().expect("flush");
    }

    fn reply(&self) -> Frame<Response> {
        self.replies
            .recv_timeout(REPLY_TIMEOUT)
            .expect("sidecar reply")
    }

    fn request(&mut self, body: Request) -> Response {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(&encode_frame(id, &body).unwrap());
        let reply = self.reply();
        assert_eq!(reply.id, id, "reply to {body:?}");
        reply.body
    }

    fn ok(&mut self, body: Request) {
        let what = format!("{body:?}");
        match self.request(body) {
            Response::Ok => {}
            other => panic!("{what}: expected Ok, got {other:?}"),
        }
    }

    fn error(&mut self, body: Request) -> String {
        let what = format!("{body:?}");
        match self.request(body) {
            Response::Error { message } => message,
            other => panic!("{what}: expected Error, got {other:?}"),
        }
    }

    fn hello(&mut self) {
        let reply = self.request(Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            client_pid: std::process::id(),
        });
        match reply {
            Response::Hello {
                protocol_version,
                sidecar_pid,
            } => {
                assert_eq!(protocol_version, PROTOCOL_VERSION);
                assert_eq!(sidecar_pid, self.child.id());
            }
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    fn stats(&mut self, stream_id: u64) -> (u64, u64, bool) {
        match self.request(Request::Stats { stream_id }) {
            Response::Stats {
                frames_played,
                underruns,
                running,
            } => (frames_played, underruns, running),
            other => panic!("expected Stats, got {other:?}"),
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        process::wait_exit(&mut self.child, timeout)
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Closes `stream_id` (which finalises its wav file), asks the sidecar to shut down and
    /// checks that it exits cleanly within 2 s.
    fn close_and_shut_down(&mut self, stream_id: u64) {
        self.ok(Request::CloseStream { stream_id });
        self.ok(Request::Shutdown);
        let status = self
            .wait_exit(Duration::from_secs(2))
            .expect("exits after shutdown");
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ring_path(dir: &Path, stream_id: u64) -> PathBuf {
    dir.join(ring_file_name(std::process::id(), stream_id))
}

fn open_request(stream_id: u64, device: String, ring: &Path, buffer_frames: u32) -> Request {
    Request::OpenStream {
        stream_id,
        device,
        ring_path: ring.to_path_buf(),
        sample_rate: 48_000,
        channels: 2,
        buffer_frames,
    }
}

/// One second of a stereo test signal: distinct, exactly representable values per channel.
fn signal() -> Vec<f32> {
    (0..48_000u32)
        .flat_map(|i| {
            let l = ((i * 7919) % 20_011) as f32 / 10_000.0 - 1.0;
            let r = (i as f32 / 48_000.0) * 0.5 - 0.25;
            [l, r]
        })
        .collect()
}

#[test]
fn wav_output_is_the_ring_input_exactly_and_paced_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_path(dir.path(), 1);
    let out = dir.path().join("out.wav");
    // 200 ms of ring: the writer must keep up with the sidecar draining it.
    let mut writer = RingWriter::create(&ring, 48_000, 2, 9_600).unwrap();
    let input = signal();

    let mut sidecar = Sidecar::spawn();
    sidecar.hello();
    sidecar.ok(open_request(
        1,
        format!("wav:{}", out.display()),
        &ring,
        480,
    ));
    let mut written = writer.write(&input) * 2;
    let started = Instant::now();
    sidecar.ok(Request::Start { stream_id: 1 });
    let deadline = started + Duration::from_secs(20);
    while written < input.len() {
        assert!(Instant::now() < deadline, "writer stalled at {written}");
        let n = writer.write(&input[written..]);
        written += n * 2;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The paced device publishes when it takes its next period: half of the ring less a
    // reset's 5 ms fade-out, (9600 - 240) / 2 frames.
    let schedule = writer
        .read_schedule()
        .expect("a playing device keeps a schedule");
    assert_eq!(schedule.period, Duration::from_micros(97_500));
    assert!(schedule.next_read_in <= schedule.period, "{schedule:?}");
    let played = loop {
        let (played, _, running) = sidecar.stats(1);
        assert!(running);
        if played >= 48_000 || Instant::now() > deadline {
            break played;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    assert_eq!(played, 48_000);
    // One second of audio at real-time pace. The first period goes out at once, and a paced
    // device's period is about half the ring (97.5 ms here), whatever the request asked for.
    let first_period = Duration::from_millis(100);
    assert!(
        elapsed >= Duration::from_secs(1) - first_period - Duration::from_millis(20),
        "played 1 s of audio in {elapsed:?}"
    );
    sidecar.ok(Request::Stop { stream_id: 1 });
    let (played, underruns, running) = sidecar.stats(1);
    assert_eq!(played, 48_000);
    assert!(!running);
    assert_eq!(
        writer.read_schedule(),
        None,
        "a stopped device withdraws its schedule"
    );
    eprintln!(
        "1 s through the sidecar in {elapsed:?}, {underruns} underrun periods (incl. after the end)"
    );
    sidecar.close_and_shut_down(1);

    let mut wav = hound::WavReader::open(&out).unwrap();
    let spec = wav.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 48_000, 32)
    );
    let samples: Vec<f32> = wav.samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(samples.len(), input.len());
    assert!(samples == input, "wav content differs from the ring input");
    drop(writer);
    assert!(!ring.exists());
}

/// The largest step between neighbouring samples of any channel, counting the steps up from
/// silence before the first sample and down to silence after the last.
fn max_step(samples: &[f32]) -> f32 {
    let mut max = 0.0f32;
    for ch in 0..2 {
        let channel: Vec<f32> = samples.iter().skip(ch).step_by(2).copied().collect();
        for w in channel.windows(2) {
            max = max.max((w[1] - w[0]).abs());
        }
        max = max.max(channel.first().map_or(0.0, |s| s.abs()));
        max = max.max(channel.last().map_or(0.0, |s| s.abs()));
    }
    max
}

/// One second of a 997 Hz sine at half scale, stereo at 48 kHz: no whole number of its
/// periods fits a block, so a cut is a step. It starts at 0, so its first sample is none.
fn sine_997_at_half_scale() -> Vec<f32> {
    (0..48_000)
        .flat_map(|n| {
            let s =
                (0.5 * (2.0 * std::f64::consts::PI * 997.0 * f64::from(n) / 48_000.0).sin()) as f32;
            [s, s]
        })
        .collect()
}

/// A sidecar with stream `stream_id` open on a 200 ms ring at 48 kHz, playing to the wav
/// device at the returned path (not started yet).
fn sine_stream(dir: &Path, stream_id: u64) -> (RingWriter, Sidecar, PathBuf) {
    let ring = ring_path(dir, stream_id);
    let out = dir.join("out.wav");
    let writer = RingWriter::create(&ring, 48_000, 2, 9_600).unwrap();
    let mut sidecar = Sidecar::spawn();
    sidecar.hello();
    sidecar.ok(open_request(
        stream_id,
        format!("wav:{}", out.display()),
        &ring,
        480,
    ));
    (writer, sidecar, out)
}

/// A reset drops what the ring holds (a seek or stop in the player); the sidecar fades the
/// queue's head out and what comes after the reset in, so the device never gets a step larger
/// than the music's own: here a 997 Hz sine at half scale (no whole number of periods in any
/// block, so a cut is a step), reset while 100 ms or more of it was queued and continued from
/// where the writer was.
#[test]
fn a_reset_mid_sine_leaves_no_step_larger_than_the_sines_own_in_the_wav() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut sidecar, out) = sine_stream(dir.path(), 21);
    let sine = sine_997_at_half_scale();
    let mut written = writer.write(&sine) * 2;
    sidecar.ok(Request::Start { stream_id: 21 });
    let deadline = Instant::now() + Duration::from_secs(20);
    // Keeps the ring full until the sidecar played a while and much is queued.
    loop {
        assert!(Instant::now() < deadline, "the sidecar played too little");
        written += writer.write(&sine[written..]) * 2;
        if sidecar.stats(21).0 >= 12_000 && writer.queued_frames() >= 4_800 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    writer.reset();
    while writer.reset_pending() {
        assert!(
            Instant::now() < deadline,
            "the reset was never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    while written < sine.len() {
        assert!(Instant::now() < deadline, "writer stalled at {written}");
        let n = writer.write(&sine[written..]);
        written += n * 2;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    sidecar.ok(Request::Stop { stream_id: 21 });
    sidecar.close_and_shut_down(21);

    let mut wav = hound::WavReader::open(&out).unwrap();
    let samples: Vec<f32> = wav.samples::<f32>().map(Result::unwrap).collect();
    assert!(
        samples.len() < sine.len() - 2 * 4_000,
        "the reset dropped the queued audio: {} of {} samples played",
        samples.len(),
        sine.len()
    );
    let sine_step = (2.0 * 0.5 * (std::f64::consts::PI * 997.0 / 48_000.0).sin()) as f32;
    let step = max_step(&samples);
    assert!(
        step <= sine_step * 1.01,
        "largest step {step}, the sine's own {sine_step}"
    );
}

/// The player's writer refills the ring just after every other take of the paced device (it
/// follows the read schedule), so the ring is at its lowest between that take and the refill.
/// A seek or stop landing there must still find a fade-out's worth queued: with two periods
/// of exactly half the ring it found nothing, and the device's last period, at full level,
/// was followed by silence or the next audio's fade-in from zero: a click. Here the reset
/// comes right after the second take since a refill, and the wav device gets no step larger
/// than the sine's own.
#[test]
fn a_reset_at_the_rings_lowest_between_refills_still_fades_out() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut sidecar, out) = sine_stream(dir.path(), 22);
    let sine = sine_997_at_half_scale();
    let written = writer.write(&sine) * 2;
    sidecar.ok(Request::Start { stream_id: 22 });
    let deadline = Instant::now() + Duration::from_secs(20);
    // Waits for the device's next take: the queue only shrinks when it takes.
    let next_take = |writer: &mut RingWriter| {
        let before = writer.queued_frames();
        while writer.queued_frames() >= before {
            assert!(Instant::now() < deadline, "the device took nothing");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // The first period goes out at once; refill after it, as the player does.
    next_take(&mut writer);
    writer.write(&sine[written..]);
    assert_eq!(writer.queued_frames(), 9_600, "the ring was refilled");
    next_take(&mut writer);
    next_take(&mut writer);
    let lowest = writer.queued_frames();
    writer.reset();
    // The paced device's fade at 48 kHz: 5 ms.
    assert_eq!(
        lowest, 240,
        "two takes after a refill leave a fade-out's worth in the ring"
    );
    while writer.reset_pending() {
        assert!(
            Instant::now() < deadline,
            "the reset was never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // What follows the reset: silence, so that anything but a fade-out of the sine would show.
    let silence = vec![0.0f32; 9_600];
    let mut left = silence.len();
    while left > 0 {
        assert!(Instant::now() < deadline, "writer stalled");
        let n = writer.write(&silence[silence.len() - left..]);
        left -= n * 2;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    sidecar.ok(Request::Stop { stream_id: 22 });
    sidecar.close_and_shut_down(22);

    let mut wav = hound::WavReader::open(&out).unwrap();
    let samples: Vec<f32> = wav.samples::<f32>().map(Result::unwrap).collect();
    let sine_step = (2.0 * 0.5 * (std::f64::consts::PI * 997.0 / 48_000.0).sin()) as f32;
    let step = max_step(&samples);
    assert!(
        step <= sine_step * 1.01,
        "largest step {step}, the sine's own {sine_step}"
    );
}

/// The standard two-channel test tone as f32 (values on the 16-bit grid, as a decoder reads
/// them), followed by frames at and beyond full scale that integer formats must clamp.
fn tone_with_extremes() -> Vec<f32> {
    let mut samples: Vec<f32> = tone::stereo_sines(0.5, (440.0, 9000.0), (660.0, 7000.0))
        .into_iter()
        .map(tone::i16_to_f32)
        .collect();
    samples.extend([1.0, -1.0, -1.0, 1.0, 1.5, -1.5, -4.0, 4.0]);
    samples
}

/// Plays `input` (stereo at the tone's rate) through the sidecar to the wav device
/// `device_prefix` (`wav:` or `wav[FORMAT]:`) and returns the file written.
fn play_to_wav(dir: &Path, stream_id: u64, device_prefix: &str, input: &[f32]) -> PathBuf {
    let ring = ring_path(dir, stream_id);
    let out = dir.join(format!("out-{stream_id}.wav"));
    let frames = (input.len() / 2) as u32;
    let mut writer = RingWriter::create(&ring, tone::RATE, 2, frames).unwrap();
    assert_eq!(writer.write(input), frames as usize);

    let mut sidecar = Sidecar::spawn();
    sidecar.hello();
    sidecar.ok(Request::OpenStream {
        stream_id,
        device: format!("{device_prefix}{}", out.display()),
        ring_path: ring.clone(),
        sample_rate: tone::RATE,
        channels: 2,
        buffer_frames: tone::RATE / 100,
    });
    sidecar.ok(Request::Start { stream_id });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (played, _, running) = sidecar.stats(stream_id);
        assert!(running);
        if played >= u64::from(frames) {
            assert_eq!(played, u64::from(frames));
            break;
        }
        assert!(Instant::now() < deadline, "played only {played} frames");
        std::thread::sleep(Duration::from_millis(20));
    }
    sidecar.close_and_shut_down(stream_id);
    drop(writer);
    out
}

/// Plays the tone to `wav[format]:` and checks the file: its header says `bits`-bit integer,
/// it holds every frame, and each sample is the input scaled to `bits` bits and clamped, give
/// or take the dither. Returns the errors in LSBs over the tone (without the clamped frames).
fn integer_wav_errors(format: &str, bits: u32, stream_id: u64) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let input = tone_with_extremes();
    let out = play_to_wav(dir.path(), stream_id, &format!("wav[{format}]:"), &input);

    let mut wav = hound::WavReader::open(&out).unwrap();
    let spec = wav.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Int, "{format}");
    assert_eq!(
        (
            spec.channels,
            spec.sample_rate,
            u32::from(spec.bits_per_sample)
        ),
        (2, tone::RATE, bits),
        "{format}"
    );
    assert_eq!(wav.duration() as usize, input.len() / 2, "{format}: frames");
    let samples: Vec<i32> = wav.samples::<i32>().map(Result::unwrap).collect();
    assert_eq!(samples.len(), input.len(), "{format}: samples");

    let full_scale = f64::from(1u32 << (bits - 1));
    let errors: Vec<f64> = samples
        .iter()
        .zip(&input)
        .map(|(&got, &x)| {
            let want = (f64::from(x) * full_scale).clamp(-full_scale, full_scale - 1.0);
            f64::from(got) - want
        })
        .collect();
    // The input lies on the 16-bit grid, hence on every wider one: only dither moves it, by at
    // most one step; the clamped extremes have no room to move outwards.
    let worst = errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    assert!(worst <= 1.0, "{format}: error of {worst} LSB");
    let extremes = &samples[input.len() - 8..];
    let (max, min) = ((full_scale - 1.0) as i32, -full_scale as i32);
    assert_eq!(extremes[4..], [max, min, min, max], "{format}: over range");
    assert!(extremes[0] == max && extremes[3] == max, "{format}: +1.0");
    assert!(
        extremes[1] <= min + 1 && extremes[2] <= min + 1,
        "{format}: -1.0"
    );
    errors[..input.len() - 8].to_vec()
}

/// The error statistics of rounding with TPDF dither of ±1 LSB applied to values on the grid:
/// the error is 0 with probability 3/4, else ±1, so its mean is 0 and its RMS is 1/2 LSB
/// (plain rounding would give 0, rectangular dither of ±1 LSB 0.71).
fn assert_tpdf_dithered(format: &str, errors: &[f64]) {
    let n = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let rms = (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.02, "{format}: mean error {mean} LSB");
    assert!((0.45..0.55).contains(&rms), "{format}: rms error {rms} LSB");
}

#[test]
fn wav_i16_is_the_tone_with_tpdf_dither() {
    let errors = integer_wav_errors("i16", 16, 11);
    assert_tpdf_dithered("i16", &errors);
}

#[test]
fn wav_i24_is_the_tone_with_tpdf_dither() {
    let errors = integer_wav_errors("i24", 24, 12);
    assert_tpdf_dithered("i24", &errors);
}

#[test]
fn wav_i32_is_the_tone_rounded_without_dither() {
    // 16-bit values are exact at 32 bits, and 32 bits get no dither: not one step off.
    let errors = integer_wav_errors("i32", 32, 13);
    assert!(errors.iter().all(|&e| e == 0.0));
}

#[test]
fn wav_f32_is_the_tone_exactly_both_spellings() {
    for (stream_id, prefix) in [(14, "wav[f32]:"), (15, "wav:")] {
        let dir = tempfile::tempdir().unwrap();
        let input = tone_with_extremes();
        let out = play_to_wav(dir.path(), stream_id, prefix, &input);
        let mut wav = hound::WavReader::open(&out).unwrap();
        let spec = wav.spec();
        assert_eq!(spec.sample_format, hound::SampleFormat::Float, "{prefix}");
        assert_eq!(spec.bits_per_sample, 32, "{prefix}");
        assert_eq!(wav.duration() as usize, input.len() / 2, "{prefix}: frames");
        let samples: Vec<f32> = wav.samples::<f32>().map(Result::unwrap).collect();
        // Float output passes the ring's samples through, over-range ones included.
        assert!(samples == input, "{prefix}: content differs from the input");
    }
}

#[test]
fn exits_within_a_second_when_stdin_closes_with_a_stream_running() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_path(dir.path(), 2);
    let _writer = RingWriter::create(&ring, 48_000, 2, 4_800).unwrap();
    let mut sidecar = Sidecar::spawn();
    sidecar.hello();
    sidecar.ok(open_request(2, "null".into(), &ring, 256));
    sidecar.ok(Request::Start { stream_id: 2 });
    std::thread::sleep(Duration::from_millis(100));
    let (_, underruns, running) = sidecar.stats(2);
    assert!(running);
    assert_eq!(underruns, 0, "a ring never fed does not underrun");
    sidecar.close_stdin();
    let status = sidecar
        .wait_exit(Duration::from_secs(1))
        .expect("exit within 1 s of stdin closing");
    assert!(status.success(), "{status:?}");
}

#[test]
fn invalid_requests_get_errors_and_the_sidecar_survives() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_path(dir.path(), 3);
    let _writer = RingWriter::create(&ring, 48_000, 2, 4_800).unwrap();
    let mut sidecar = Sidecar::spawn();
    sidecar.hello();

    sidecar.error(Request::Start { stream_id: 99 });
    sidecar.error(Request::Stats { stream_id: 99 });
    sidecar.error(Request::CloseStream { stream_id: 99 });
    sidecar.error(Request::DeviceCaps {
        device: "bogus".into(),
    });
    let msg = sidecar.error(open_request(3, "bogus".into(), &ring, 256));
    assert!(msg.contains("unknown device"), "{msg}");
    sidecar.error(open_request(3, "wav:".into(), &ring, 256));
    sidecar.error(open_request(3, "wav[i16]:".into(), &ring, 256));
    let msg = sidecar.error(open_request(3, "wav[i8]:x.wav".into(), &ring, 256));
    assert!(msg.contains("i8"), "{msg}");
    sidecar.error(open_request(3, "wav[i16]x.wav".into(), &ring, 256));
    sidecar.error(open_request(3, "wavx.wav".into(), &ring, 256));
    sidecar.error(open_request(
        3,
        "null".into(),
        &dir.path().join("missing.shm"),
        256,
    ));
    sidecar.error(open_request(3, "null".into(), &ring, 0));
    sidecar.error(open_request(
        3,
        "wav:/nonexistent-dir/x.wav".into(),
        &ring,
        256,
    ));
    let msg = sidecar.error(Request::OpenStream {
        stream_id: 3,
        device: "null".into(),
        ring_path: ring.clone(),
        sample_rate: 44_100,
        channels: 2,
        buffer_frames: 256,
    });
    assert!(msg.contains("44100"), "{msg}");
    // A garbage ring file is refused.
    let junk = dir.path().join("junk.shm");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    sidecar.error(open_request(3, "null".into(), &junk, 256));
    sidecar.error(Request::Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        client_pid: 1,
    });

    // Still serving: a good stream opens, a duplicate id is refused, stop/start work repeatedly.
    sidecar.ok(open_request(3, "null".into(), &ring, 256));
    sidecar.error(open_request(3, "null".into(), &ring, 256));
    for _ in 0..3 {
        sidecar.ok(Request::Start { stream_id: 3 });
        sidecar.ok(Request::Start { stream_id: 3 });
        sidecar.ok(Request::Stop { stream_id: 3 });
        sidecar.ok(Request::Stop { stream_id: 3 });
    }
    match sidecar.request(Request::ListDevices) {
        Response::Devices { devices } => {
            assert!(devices.iter().any(|d| d.id == "null"));
            assert!(devices.iter().any(|d| d.id.starts_with("wav:")));
            for format in ["i16", "i24", "i32"] {
                let id = format!("wav[{format}]:");
                assert!(devices.iter().any(|d| d.id == id), "{id} not listed");
            }
        }
        other => panic!("expected Devices, got {other:?}"),
    }
    match sidecar.request(Request::DeviceCaps {
        device: "null".into(),
    }) {
        Response::Caps {
            sample_rates,
            max_channels,
        } => {
            assert!(sample_rates.contains(&48_000));
            assert!(max_channels >= 2);
        }
        other => panic!("expected Caps, got {other:?}"),
    }
    sidecar.ok(Request::CloseStream { stream_id: 3 });
    assert!(sidecar.alive());
    sidecar.ok(Request::Shutdown);
    assert!(
        sidecar
            .wait_exit(Duration::from_secs(2))
            .expect("exits")
            .success()
    );
}

#[test]
fn garbage_frames_get_errors_without_a_crash() {
    let mut sidecar = Sidecar::spawn();
    sidecar.hello();
    let frame = |payload: &[u8]| {
        let mut b = (payload.len() as u32).to_le_bytes().to_vec();
        b.extend_from_slice(payload);
        b
    };
    // Not JSON: no id can be recovered, the reply uses id 0.
    sidecar.send_raw(&frame(b"this is {not json"));
    let reply = sidecar.reply();
    assert_eq!(reply.id, 0);
    assert!(
        matches!(reply.body, Response::Error { .. }),
        "{:?}",
        reply.body
    );
    // JSON with an id but an unknown request: the reply carries the id.
    sidecar.send_raw(&frame(br#"{"id":41,"body":{"type":"explode"}}"#));
    let reply = sidecar.reply();
    assert_eq!(reply.id, 41);
    assert!(matches!(reply.body, Response::Error { .. }));
    // Wrong field types, empty payload, binary junk.
    sidecar.send_raw(&frame(
        br#"{"id":42,"body":{"type":"start","stream_id":"x"}}"#,
    ));
    assert_eq!(sidecar.reply().id, 42);
    sidecar.send_raw(&frame(b""));
    assert!(matches!(sidecar.reply().body, Response::Error { .. }));
    sidecar.send_raw(&frame(&[0xff, 0x00, 0x13, 0x37]));
    assert!(matches!(sidecar.reply().body, Response::Error { .. }));
    // An oversized frame is skipped whole, so the next frame is read correctly.
    let mut big = ((2 << 20) as u32).to_le_bytes().to_vec();
    big.extend(std::iter::repeat_n(b' ', 2 << 20));
    sidecar.send_raw(&big);
    assert!(matches!(sidecar.reply().body, Response::Error { .. }));

    assert!(sidecar.alive());
    assert!(matches!(
        sidecar.request(Request::ListDevices),
        Response::Devices { .. }
    ));
    sidecar.close_stdin();
    assert!(
        sidecar
            .wait_exit(Duration::from_secs(1))
            .expect("exits on EOF")
            .success()
    );
}

#[test]
fn the_first_frame_must_be_a_matching_hello() {
    let mut sidecar = Sidecar::spawn();
    assert!(matches!(
        sidecar.request(Request::ListDevices),
        Response::Error { .. }
    ));
    let status = sidecar
        .wait_exit(Duration::from_secs(2))
        .expect("exits after a bad handshake");
    assert_eq!(status.code(), Some(2));

    let mut sidecar = Sidecar::spawn();
    let reply = sidecar.request(Request::Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        client_pid: 1,
    });
    assert!(matches!(reply, Response::Error { .. }), "{reply:?}");
    assert_eq!(
        sidecar
            .wait_exit(Duration::from_secs(2))
            .expect("exits")
            .code(),
        Some(2)
    );

    let mut sidecar = Sidecar::spawn();
    sidecar.send_raw(b"\x05\x00\x00\x00hello");
    assert!(matches!(sidecar.reply().body, Response::Error { .. }));
    assert_eq!(
        sidecar
            .wait_exit(Duration::from_secs(2))
            .expect("exits")
            .code(),
        Some(2)
    );
}

#[cfg(unix)]
#[test]
fn exits_at_once_when_its_expected_parent_is_not_its_parent() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stellatune-sidecar-host"))
        .env("STELLATUNE_ASIO_PARENT_PID", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = process::wait_exit(&mut child, Duration::from_secs(2))
        .expect("sidecar kept running without its parent");
    assert!(status.success(), "{status:?}");
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_cleanly_and_finalizes_the_wav() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring_path(dir.path(), 4);
    let out = dir.path().join("term.wav");
    let mut writer = RingWriter::create(&ring, 48_000, 2, 48_000).unwrap();
    let input = signal();
    assert_eq!(writer.write(&input[..2 * 24_000]), 24_000);
    let mut sidecar = Sidecar::spawn();
    sidecar.hello();
    sidecar.ok(open_request(
        4,
        format!("wav:{}", out.display()),
        &ring,
        480,
    ));
    sidecar.ok(Request::Start { stream_id: 4 });
    std::thread::sleep(Duration::from_millis(150));
    let pid = libc::pid_t::try_from(sidecar.child.id()).unwrap();
    // SAFETY: sends SIGTERM to our own child process; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = sidecar
        .wait_exit(Duration::from_secs(2))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    // The header was finalized: the file reads back as a prefix of the input.
    let mut wav = hound::WavReader::open(&out).unwrap();
    let samples: Vec<f32> = wav.samples::<f32>().map(Result::unwrap).collect();
    assert!(
        !samples.is_empty() && samples.len() < input.len(),
        "{} samples",
        samples.len()
    );
    assert!(samples[..] == input[..samples.len()]);
    // The ring's reader position matches what was written to the file.
    assert_eq!(writer.queued_frames(), 24_000 - samples.len() / 2);
}
