//! A sidecar that misbehaves on purpose, for the ASIO plugin's fault tests: the same program
//! on every OS, where the tests used to need shell scripts.
//!
//! `stellatune-fake-sidecar [--write-hex HEX] [--garbage N] [--sleep-ms MS] [--exit CODE]`:
//! writes the given bytes (or N bytes of noise) to stdout, sleeps, then exits with CODE
//! (default 0), in that order.

use std::io::Write;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut out = Vec::new();
    let mut sleep = Duration::ZERO;
    let mut code = 0;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--write-hex" => out.extend(
                (0..value.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&value[i..i + 2], 16).expect("hex bytes")),
            ),
            "--garbage" => {
                // Noise without a random source: a fixed linear congruential sequence.
                let mut x: u32 = 0x2545_f491;
                out.extend((0..value.parse::<usize>().expect("count")).map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                }));
            }
            "--sleep-ms" => sleep = Duration::from_millis(value.parse().expect("ms")),
            "--exit" => code = value.parse().expect("exit code"),
            other => panic!("unknown flag {other}"),
        }
    }
    let mut stdout = std::io::stdout().lock();
    // The reader may be gone already; that is what some tests are about.
    let _ = stdout.write_all(&out);
    let _ = stdout.flush();
    drop(stdout);
    std::thread::sleep(sleep);
    std::process::exit(code);
}
