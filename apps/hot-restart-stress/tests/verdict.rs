//! Unit tests of the least-squares slope and the threshold logic, on synthetic samples.

use hot_restart_stress::sample::{RuntimeMetrics, Sample, ShutdownReport};
use hot_restart_stress::verdict::{
    ChildExit, RunOutcome, Thresholds, clients_bound, evaluate, passed, slope,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn slope_of_a_line_is_its_gradient() {
    let ys: Vec<f64> = (0..10).map(|x| 3.0 + 0.5 * x as f64).collect();
    assert!(close(slope(&ys).unwrap(), 0.5));
    let down: Vec<f64> = (0..7).map(|x| 100.0 - 2.0 * x as f64).collect();
    assert!(close(slope(&down).unwrap(), -2.0));
}

#[test]
fn slope_of_flat_or_symmetric_data_is_zero() {
    assert!(close(slope(&[7.0; 20]).unwrap(), 0.0));
    assert!(close(
        slope(&[1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0]).unwrap(),
        0.0
    ));
    assert!(close(slope(&[5.0, 9.0, 5.0]).unwrap(), 0.0));
}

#[test]
fn slope_least_squares_fit_of_noisy_points() {
    // x = 0..4, y = 1, 2, 2, 4, 5: Sxy = 10, Sxx = 10.
    assert!(close(slope(&[1.0, 2.0, 2.0, 4.0, 5.0]).unwrap(), 1.0));
    // x = 0..3, y = 0, 1, 1, 3: Sxy = 4.5, Sxx = 5.
    assert!(close(slope(&[0.0, 1.0, 1.0, 3.0]).unwrap(), 0.9));
    // One step of +1 in the middle of 20 cycles is a positive trend the gate sees...
    let step: Vec<f64> = (0..20).map(|x| if x < 10 { 5.0 } else { 6.0 }).collect();
    assert!(slope(&step).unwrap() > 0.05);
    // ...one transient spike at the end of 20 cycles is not.
    let mut spike = vec![5.0; 20];
    spike[19] = 6.0;
    assert!(slope(&spike).unwrap() < 0.05);
}

#[test]
fn slope_needs_two_points() {
    assert_eq!(slope(&[]), None);
    assert_eq!(slope(&[1.0]), None);
    assert!(close(slope(&[1.0, 2.0]).unwrap(), 1.0));
}

fn metrics(clients: u64) -> RuntimeMetrics {
    RuntimeMetrics {
        state: "running".into(),
        runtime_host_inits_total: 1,
        player_clients_active: clients,
        runtime_threads: 3,
        ..RuntimeMetrics::default()
    }
}

/// `n` healthy cycles: flat threads, fds and RSS, one client, playback confirmed.
fn healthy(n: u64) -> Vec<Sample> {
    (1..=n)
        .map(|cycle| Sample {
            cycle,
            mode: "with-prepare".into(),
            confirmed: true,
            threads: 5,
            fds: 7,
            rss_kb: 11_000,
            peak_clients: Some(1),
            metrics: Some(metrics(1)),
            ..Sample::default()
        })
        .collect()
}

fn clean_run(planned: u64) -> RunOutcome {
    RunOutcome {
        exit: ChildExit::Code { code: 0 },
        planned_cycles: Some(planned),
        done: true,
        stop_reason: Some(format!("completed {planned} cycles")),
        lost_connections: 0,
        shutdown: Some(ShutdownReport {
            ok: true,
            runtime_threads_after: Some(0),
            ..ShutdownReport::default()
        }),
        fatal: None,
    }
}

fn failed_ids(samples: &[Sample], run: &RunOutcome) -> Vec<String> {
    evaluate(samples, run, &Thresholds::default())
        .into_iter()
        .filter(|c| !c.pass)
        .map(|c| c.id)
        .collect()
}

#[test]
fn a_healthy_run_passes_every_check() {
    let checks = evaluate(&healthy(20), &clean_run(20), &Thresholds::default());
    assert!(passed(&checks), "{checks:#?}");
    let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "child_exit",
        "cycles_completed",
        "playback_confirmed",
        "runtime_host_inits_total",
        "threads",
        "fds",
        "sidecars",
        "zombies",
        "rings",
        "shadow_copies",
        "threads_slope",
        "fds_slope",
        "rings_slope",
        "processes_slope",
        "rss_slope",
        "lost_connections",
        "player_clients_active",
        "final_shutdown",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[test]
fn growth_up_to_the_tolerance_passes_and_beyond_it_fails() {
    let th = Thresholds::default();
    // 40 cycles, so that a jump at the very last one is too small to be a trend.
    let mut samples = healthy(40);
    samples.last_mut().unwrap().threads = 5 + th.threads_tolerance;
    samples.last_mut().unwrap().fds = 7 + th.fds_tolerance;
    assert!(failed_ids(&samples, &clean_run(40)).is_empty());

    samples.last_mut().unwrap().threads = 5 + th.threads_tolerance + 1;
    samples.last_mut().unwrap().fds = 7 + th.fds_tolerance + 1;
    samples.last_mut().unwrap().rings = th.rings_tolerance + 1;
    samples.last_mut().unwrap().sidecars = th.sidecars_tolerance + 1;
    samples.last_mut().unwrap().shadow_copies = th.shadow_copies_tolerance + 1;
    samples.last_mut().unwrap().zombies = th.zombies_max + 1;
    let failed = failed_ids(&samples, &clean_run(40));
    for id in [
        "threads",
        "fds",
        "rings",
        "sidecars",
        "shadow_copies",
        "zombies",
    ] {
        assert!(failed.contains(&id.to_owned()), "{id} in {failed:?}");
    }
}

#[test]
fn one_thread_per_cycle_fails_growth_and_slope() {
    let mut samples = healthy(20);
    for (i, s) in samples.iter_mut().enumerate() {
        s.threads = 5 + i as u64;
    }
    assert_eq!(
        failed_ids(&samples, &clean_run(20)),
        ["threads", "threads_slope"]
    );
}

#[test]
fn a_slow_trend_within_the_tolerance_still_fails_the_slope() {
    // +2 fds spread evenly over 20 cycles stays within first + 4 but trends at ~0.1/cycle.
    let mut samples = healthy(20);
    for (i, s) in samples.iter_mut().enumerate() {
        s.fds = 7 + (i as u64) / 10 * 2;
    }
    assert_eq!(failed_ids(&samples, &clean_run(20)), ["fds_slope"]);
}

#[test]
fn processes_slope_counts_zombies_too() {
    let mut samples = healthy(20);
    for (i, s) in samples.iter_mut().enumerate() {
        s.zombies = (i as u64) / 10; // 0 then 1: within zombies_max, but a trend
    }
    assert_eq!(failed_ids(&samples, &clean_run(20)), ["processes_slope"]);
}

#[test]
fn rss_slope_ignores_the_warm_up_and_catches_steady_growth() {
    let th = Thresholds::default();
    // Big growth during the warm-up, flat afterwards: pass.
    let mut samples = healthy(20);
    for (i, s) in samples.iter_mut().enumerate() {
        s.rss_kb = 11_000 + 4_000 * (i as u64).min(th.rss_warmup_cycles - 1);
    }
    assert!(failed_ids(&samples, &clean_run(20)).is_empty());
    // Just under the bound after the warm-up: pass; at the bound: fail (strictly below).
    let bound = th.rss_slope_max_kib as u64;
    for (i, s) in samples.iter_mut().enumerate() {
        s.rss_kb = 11_000 + (bound - 1) * i as u64;
    }
    assert!(failed_ids(&samples, &clean_run(20)).is_empty());
    for (i, s) in samples.iter_mut().enumerate() {
        s.rss_kb = 11_000 + bound * i as u64;
    }
    assert_eq!(failed_ids(&samples, &clean_run(20)), ["rss_slope"]);
}

/// `n` healthy cycles of `ms` each in `mode` (`both` alternates, odd cycles prepare).
fn cycles(n: u64, ms: u64, mode: &str) -> Vec<Sample> {
    let mut samples = healthy(n);
    for s in &mut samples {
        s.cycle_ms = ms;
        s.mode = match mode {
            "both" if s.cycle % 2 == 1 => "with-prepare",
            "both" => "without-prepare",
            other => other,
        }
        .into();
    }
    samples
}

#[test]
fn clients_beyond_the_lease_bound_fail() {
    // Lease 300 ms, 500 ms cycles without prepare: ceil(300 / 500) + 1 = 2 alive at most.
    let th = Thresholds {
        lease_ms: 300,
        ..Thresholds::default()
    };
    let failed = |samples: &[Sample]| -> Vec<String> {
        evaluate(samples, &clean_run(10), &th)
            .into_iter()
            .filter(|c| !c.pass)
            .map(|c| c.id)
            .collect()
    };
    let mut samples = cycles(10, 500, "without-prepare");
    samples[4].peak_clients = Some(2);
    assert!(failed(&samples).is_empty());
    samples[6].peak_clients = Some(3);
    assert_eq!(failed(&samples), ["player_clients_active"]);
    let mut samples = cycles(10, 500, "without-prepare");
    samples[9].metrics = Some(metrics(3));
    assert_eq!(failed(&samples), ["player_clients_active"]);
    // Right after a prepare only the new client may be alive.
    let mut samples = cycles(10, 500, "both");
    samples[3].peak_clients = Some(2);
    assert!(failed(&samples).is_empty());
    samples[4].peak_clients = Some(2);
    assert_eq!(failed(&samples), ["player_clients_active"]);
}

#[test]
fn the_clients_bound_follows_the_lease_and_the_cycle_time() {
    let th = |lease_ms, interval_ms| Thresholds {
        lease_ms,
        interval_ms,
        ..Thresholds::default()
    };
    // The runtime's default lease (30 s) outlives 10 quick cycles: each one's client is
    // still alive at the end, and the bound grows with them.
    let b = clients_bound(&cycles(10, 500, "without-prepare"), &th(30_000, 0));
    assert_eq!(b.stale_max, 60);
    assert_eq!(b.per_cycle, (1..=10).collect::<Vec<u64>>());
    assert_eq!(b.max, 10);
    // A 1 s lease and 400 ms cycles: ceil(1000 / 400) = 3 stale clients at most.
    let b = clients_bound(&cycles(8, 400, "without-prepare"), &th(1000, 0));
    assert_eq!(b.per_cycle, [1, 2, 3, 4, 4, 4, 4, 4]);
    // The interval between cycles lengthens the cycle: ceil(1000 / 500) = 2.
    let b = clients_bound(&cycles(5, 400, "without-prepare"), &th(1000, 100));
    assert_eq!((b.shortest_cycle_ms, b.stale_max, b.max), (500, 2, 3));
    // Every prepare evicts them all: both modes alternate 1 and 2, with-prepare stays at 1.
    let b = clients_bound(&cycles(6, 500, "both"), &th(30_000, 0));
    assert_eq!(b.per_cycle, [1, 2, 1, 2, 1, 2]);
    let b = clients_bound(&cycles(6, 500, "with-prepare"), &th(30_000, 0));
    assert_eq!(b.max, 1);
    // The shortest cycle decides.
    let mut samples = cycles(6, 1000, "without-prepare");
    samples[2].cycle_ms = 250;
    assert_eq!(clients_bound(&samples, &th(1000, 0)).stale_max, 4);
}

/// With event ports a dead isolate's client goes at the first post to its closed port, not
/// after the lease: on the default 30 s lease, 500 ms cycles without prepare allow 2.
#[test]
fn with_event_ports_the_clients_bound_follows_the_port_close_detection() {
    let th = Thresholds {
        port_detect_ms: Some(hot_restart_stress::verdict::PORT_DETECT_MS),
        ..Thresholds::default()
    };
    let b = clients_bound(&cycles(10, 500, "without-prepare"), &th);
    assert!(b.by_port);
    assert_eq!((b.lease_ms, b.stale_max, b.max), (500, 1, 2));
    assert_eq!(b.per_cycle, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    // Three clients alive at one attach fail the check.
    let mut samples = cycles(10, 500, "without-prepare");
    for s in samples.iter_mut().skip(1) {
        s.peak_clients = Some(2);
    }
    assert!(
        evaluate(&samples, &clean_run(10), &th)
            .iter()
            .all(|c| c.pass)
    );
    samples[6].peak_clients = Some(3);
    let failed: Vec<String> = evaluate(&samples, &clean_run(10), &th)
        .into_iter()
        .filter(|c| !c.pass)
        .map(|c| c.id)
        .collect();
    assert!(
        failed.contains(&"player_clients_active".to_owned()),
        "{failed:?}"
    );
}

#[test]
fn a_second_engine_start_fails() {
    let mut samples = healthy(10);
    samples[5]
        .metrics
        .as_mut()
        .unwrap()
        .runtime_host_inits_total = 2;
    assert_eq!(
        failed_ids(&samples, &clean_run(10)),
        ["runtime_host_inits_total"]
    );
}

#[test]
fn lost_connections_and_unconfirmed_cycles_fail() {
    let mut samples = healthy(10);
    samples[3].confirmed = false;
    samples[3].error = Some("no track_started then position within 5000 ms".into());
    let mut run = clean_run(10);
    run.lost_connections = 1;
    let failed = failed_ids(&samples, &run);
    assert_eq!(failed, ["playback_confirmed", "lost_connections"]);
    let checks = evaluate(&samples, &run, &Thresholds::default());
    let playback = checks
        .iter()
        .find(|c| c.id == "playback_confirmed")
        .unwrap();
    assert!(playback.value.contains("9 of 10"), "{}", playback.value);
    assert!(playback.value.contains("cycle 4"), "{}", playback.value);
}

#[test]
fn a_crash_fails_with_its_signal_and_the_missing_cycles() {
    let samples = healthy(2);
    let run = RunOutcome {
        exit: ChildExit::Signal {
            signal: 11,
            name: "SIGSEGV".into(),
        },
        done: false,
        stop_reason: None,
        shutdown: None,
        ..clean_run(20)
    };
    let checks = evaluate(&samples, &run, &Thresholds::default());
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(failed, ["child_exit", "cycles_completed", "final_shutdown"]);
    assert!(
        checks[0].value.contains("signal 11 (SIGSEGV)"),
        "{}",
        checks[0].value
    );
}

#[test]
fn no_samples_is_a_failure_not_a_pass() {
    let run = RunOutcome {
        exit: ChildExit::Code { code: 3 },
        fatal: Some("cannot load /nope.so".into()),
        done: false,
        shutdown: None,
        ..clean_run(20)
    };
    let checks = evaluate(&[], &run, &Thresholds::default());
    assert!(!passed(&checks));
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.id.as_str())
        .collect();
    for id in [
        "child_exit",
        "cycles_completed",
        "playback_confirmed",
        "runtime_host_inits_total",
        "threads",
        "player_clients_active",
    ] {
        assert!(failed.contains(&id), "{id} in {failed:?}");
    }
}

#[test]
fn soak_mode_has_no_planned_count_and_shutdown_must_join() {
    let mut run = clean_run(0);
    run.planned_cycles = None;
    assert!(failed_ids(&healthy(7), &run).is_empty());
    run.shutdown.as_mut().unwrap().runtime_threads_after = Some(1);
    assert_eq!(failed_ids(&healthy(7), &run), ["final_shutdown"]);
    run.shutdown.as_mut().unwrap().runtime_threads_after = Some(0);
    run.shutdown.as_mut().unwrap().sidecars_after = 1;
    assert_eq!(failed_ids(&healthy(7), &run), ["final_shutdown"]);
}

#[test]
fn thresholds_are_documented_with_their_values() {
    let text = Thresholds::default().describe();
    for needle in [
        "runtime_host_inits_total == 1",
        "first + 2",
        "first + 4",
        "< 0.05",
        "< 64 KiB/cycle",
        "warm-up of 5",
        "ceil(lease / shortest cycle time) + 1",
        "now 30000 ms",
        "lost connections",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
}

#[test]
fn trends_need_enough_points() {
    // Three cycles: a jump in RSS and a thread that came and went are no trend yet; the
    // growth checks still apply.
    let mut samples = healthy(3);
    samples[1].threads = 6;
    samples[2].rss_kb = 20_000;
    let checks = evaluate(&samples, &clean_run(3), &Thresholds::default());
    assert!(passed(&checks), "{checks:#?}");
    let rss = checks.iter().find(|c| c.id == "rss_slope").unwrap();
    assert!(rss.value.contains("n/a"), "{}", rss.value);
    // Twelve cycles: warm-up 5 leaves 7 points, so the RSS trend is judged.
    let mut samples = healthy(12);
    for (i, s) in samples.iter_mut().enumerate() {
        s.rss_kb = 11_000 + 1_000 * i as u64;
    }
    assert_eq!(failed_ids(&samples, &clean_run(12)), ["rss_slope"]);
}
