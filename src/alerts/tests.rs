//! The alert engine's state machine, driven with explicit unix times.

use super::rules::{RuleConfig, RuleName};
use super::*;
use crate::sample::allocation::Allocation;
use crate::sample::cgroup::CgroupReading;
use crate::sample::{CountersView, Snapshot, TargetSnapshot};

fn target(name: &str, up: bool, restarts: u64) -> TargetSnapshot {
    TargetSnapshot {
        name: name.into(),
        up,
        processes: u64::from(up),
        restarts,
        main_pid: Some(1),
        start_time_seconds: None,
        counters: CountersView::default(),
        resident_memory_bytes: 0,
        swap_bytes: 0,
        virtual_memory_bytes: 0,
        open_fds: 0,
        max_fds: None,
        threads: 1,
        cgroup: None,
        cgroup_unreachable: None,
        allocation: Allocation::default(),
        verdicts: None,
    }
}

fn snap(targets: Vec<TargetSnapshot>) -> Snapshot {
    Snapshot {
        targets,
        ..Default::default()
    }
}

/// Only `rule` enabled, with `for` = `for_seconds`.
fn only(rule: RuleName, for_seconds: f64) -> AlertsConfig {
    let mut c = AlertsConfig::default();
    for (r, cfg) in c.rules.iter_mut() {
        cfg.enabled = *r == rule;
        if *r == rule {
            cfg.for_seconds = for_seconds;
        }
    }
    c.labels.insert("namespace".into(), "shop".into());
    c
}

fn states(e: &Engine) -> Vec<(&'static str, AlertState)> {
    e.active().iter().map(|a| (a.alertname, a.state)).collect()
}

#[test]
fn pending_until_for_has_passed_then_firing_then_resolved() {
    let mut e = Engine::new(only(RuleName::TargetDown, 60.0));
    assert!(e
        .evaluate(&snap(vec![target("app", true, 0)]), 0.0)
        .is_empty());
    assert!(e.active().is_empty());
    let down = snap(vec![target("app", false, 0)]);
    assert!(e.evaluate(&down, 10.0).is_empty());
    assert_eq!(states(&e), [("TargetDown", AlertState::Pending)]);
    assert!(e.evaluate(&down, 69.0).is_empty(), "59 s < for");
    let t = e.evaluate(&down, 70.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(a.labels["alertname"], "TargetDown");
    assert_eq!(a.labels["target"], "app");
    assert_eq!(a.labels["severity"], "critical");
    assert_eq!(a.labels["namespace"], "shop");
    assert_eq!(a.active_since, 10.0);
    assert_eq!(a.fired_at, Some(70.0));
    assert!(a.annotations["summary"].contains("app is down"));
    assert!(e.evaluate(&down, 80.0).is_empty(), "fires once");
    assert_eq!(states(&e), [("TargetDown", AlertState::Firing)]);
    let t = e.evaluate(&snap(vec![target("app", true, 0)]), 90.0);
    let [Transition::Resolved(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(a.ends_at, Some(90.0));
    assert!(e.active().is_empty());
}

#[test]
fn a_pending_alert_that_clears_resolves_nothing() {
    let mut e = Engine::new(only(RuleName::TargetDown, 60.0));
    e.evaluate(&snap(vec![target("app", false, 0)]), 0.0);
    assert_eq!(states(&e), [("TargetDown", AlertState::Pending)]);
    assert!(e
        .evaluate(&snap(vec![target("app", true, 0)]), 30.0)
        .is_empty());
    assert!(e.active().is_empty());
    // The clock starts again: 59 s of a new outage is still pending.
    e.evaluate(&snap(vec![target("app", false, 0)]), 40.0);
    assert!(e
        .evaluate(&snap(vec![target("app", false, 0)]), 99.0)
        .is_empty());
}

#[test]
fn for_zero_fires_on_the_first_tick() {
    let mut e = Engine::new(only(RuleName::TargetDown, 0.0));
    let t = e.evaluate(&snap(vec![target("app", false, 0)]), 5.0);
    assert!(matches!(t.as_slice(), [Transition::Fired(_)]), "{t:?}");
}

#[test]
fn restarts_within_the_window_make_a_crash_loop() {
    let mut e = Engine::new(only(RuleName::TargetRestarting, 0.0));
    e.evaluate(&snap(vec![target("app", true, 0)]), 0.0);
    e.evaluate(&snap(vec![target("app", true, 2)]), 10.0);
    assert!(e.active().is_empty(), "2 restarts < 3");
    let t = e.evaluate(&snap(vec![target("app", true, 3)]), 20.0);
    assert!(matches!(t.as_slice(), [Transition::Fired(_)]), "{t:?}");
    // 15 min after the first two, only one restart is left in the window.
    let t = e.evaluate(&snap(vec![target("app", true, 3)]), 911.0);
    assert!(matches!(t.as_slice(), [Transition::Resolved(_)]), "{t:?}");
}

#[test]
fn throttling_is_measured_between_ticks() {
    let mut e = Engine::new(only(RuleName::CpuThrottled, 0.0));
    let with = |periods, throttled| {
        let mut t = target("app", true, 0);
        t.cgroup = Some(CgroupReading {
            cpu_periods: Some(periods),
            cpu_throttled_periods: Some(throttled),
            ..Default::default()
        });
        snap(vec![t])
    };
    // A lifetime share of 50% is history, not news: the first tick has no delta.
    assert!(e.evaluate(&with(1000, 500), 0.0).is_empty());
    assert!(e.evaluate(&with(1100, 520), 5.0).is_empty(), "20% < 25%");
    let t = e.evaluate(&with(1200, 550), 10.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert!(a.annotations["description"].contains("30%"), "{a:?}");
}

#[test]
fn an_oom_kill_fires_and_resolves_after_its_window() {
    let mut e = Engine::new(only(RuleName::OomKilled, 0.0));
    let with = |ooms| {
        let mut t = target("app", true, 0);
        t.cgroup = Some(CgroupReading {
            oom_kills: Some(ooms),
            ..Default::default()
        });
        snap(vec![t])
    };
    assert!(
        e.evaluate(&with(2), 0.0).is_empty(),
        "old kills do not fire"
    );
    assert!(matches!(
        e.evaluate(&with(3), 5.0).as_slice(),
        [Transition::Fired(_)]
    ));
    assert!(e.evaluate(&with(3), 305.0).is_empty());
    assert!(matches!(
        e.evaluate(&with(3), 306.0).as_slice(),
        [Transition::Resolved(_)]
    ));
}

#[test]
fn error_rate_needs_both_rate_and_ratio() {
    let mut e = Engine::new(only(RuleName::ErrorRateHigh, 0.0));
    let with = |epm, ratio| Snapshot {
        logs: Some(crate::analysis::LogRates {
            window_seconds: 300.0,
            errors_per_minute: epm,
            error_ratio: Some(ratio),
            http_5xx_ratio: None,
        }),
        ..Default::default()
    };
    assert!(e.evaluate(&with(50.0, 0.01), 0.0).is_empty());
    assert!(e.evaluate(&with(5.0, 0.5), 1.0).is_empty());
    let t = e.evaluate(&with(50.0, 0.5), 2.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert!(!a.labels.contains_key("target"), "no target to name: {a:?}");
    assert!(a.annotations["description"].contains("50.0 errors per minute"));
}

#[test]
fn fingerprint_is_stable_and_label_sensitive() {
    let mut e = Engine::new(only(RuleName::TargetDown, 0.0));
    let t = e.evaluate(
        &snap(vec![target("a", false, 0), target("b", false, 0)]),
        0.0,
    );
    let fps: Vec<String> = t
        .iter()
        .map(|t| match t {
            Transition::Fired(a) | Transition::Resolved(a) => a.fingerprint(),
        })
        .collect();
    assert_eq!(fps.len(), 2);
    assert_ne!(fps[0], fps[1]);
    assert_eq!(fps[0].len(), 16);
    let _ = RuleConfig::defaults(RuleName::TargetDown);
}
