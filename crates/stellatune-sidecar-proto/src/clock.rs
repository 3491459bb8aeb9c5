//! One monotonic clock that both ends of a ring read the same: the reader publishes when it
//! will take its next period, and the writer, in another process, turns that into a wait.
//! `std::time::Instant` uses the same clocks (`CLOCK_MONOTONIC`, `QueryPerformanceCounter`)
//! but cannot be shared between processes.

/// Nanoseconds on the system-wide monotonic clock (the same in every process of this boot).
#[cfg(unix)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every supported
    // Unix, so the call cannot fail (and `ts` stays zero if it did).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Nanoseconds on the system-wide monotonic clock (the same in every process of this boot).
#[cfg(windows)]
pub fn monotonic_ns() -> u64 {
    use windows_sys::Win32::System::Performance::{
        QueryPerformanceCounter, QueryPerformanceFrequency,
    };
    let (mut count, mut freq) = (0i64, 0i64);
    // SAFETY: both out-pointers are valid, writable i64s; the calls cannot fail on Windows XP
    // and later (and leave the zeroes on failure, handled below).
    unsafe {
        QueryPerformanceCounter(&mut count);
        QueryPerformanceFrequency(&mut freq);
    }
    if freq <= 0 || count < 0 {
        return 0;
    }
    (u128::from(count as u64) * 1_000_000_000 / u128::from(freq as u64)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_clock_moves_with_instant() {
        let (a, t) = (monotonic_ns(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (b, elapsed) = (monotonic_ns(), t.elapsed());
        let ours = Duration::from_nanos(b - a);
        assert!(ours >= Duration::from_millis(20), "{ours:?}");
        let diff = ours.abs_diff(elapsed);
        assert!(
            diff < Duration::from_millis(5),
            "ours {ours:?}, Instant {elapsed:?}"
        );
    }
}
