//! The alert engine's state machine, driven with explicit unix times.

use super::rules::{RuleConfig, RuleName};
use super::*;
use crate::analysis::TargetStatus;
use crate::sample::cgroup::CgroupReading;
use crate::sample::TargetSample;
use crate::state::Snapshot;

fn target(name: &str, up: bool, restarts: u64) -> TargetStatus {
    TargetStatus {
        sample: TargetSample {
            name: name.into(),
            up,
            processes: u64::from(up),
            restarts,
            main_pid: Some(1),
            threads: 1,
            ..TargetSample::default()
        },
        verdicts: None,
        capacity: None,
    }
}

fn snap(targets: Vec<TargetStatus>) -> Snapshot {
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
fn restarts_after_oom_kills_say_the_app_runs_out_of_memory() {
    let mut e = Engine::new(only(RuleName::TargetRestarting, 0.0));
    let with = |restarts, kills| {
        let mut t = target("app", true, restarts);
        t.sample.cgroup = Some(CgroupReading {
            oom_kills: Some(kills),
            ..Default::default()
        });
        snap(vec![t])
    };
    e.evaluate(&with(0, 0), 0.0);
    e.evaluate(&with(1, 1), 10.0);
    e.evaluate(&with(2, 2), 20.0);
    let t = e.evaluate(&with(3, 2), 30.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(
        a.annotations["description"],
        "Target app restarted 3 times in the last 15 min (threshold 3): the kernel OOM-killed it 2 times in that time: it runs out of memory (see OOMKilled and the memory recommendation)."
    );
    // Without kills it is still a crash loop.
    let mut e = Engine::new(only(RuleName::TargetRestarting, 0.0));
    for (i, r) in [0, 1, 2, 3].into_iter().enumerate() {
        e.evaluate(&with(r, 0), i as f64 * 10.0);
    }
    assert!(e.active()[0].annotations["description"].ends_with("): a crash loop?"));
}

#[test]
fn throttling_is_measured_between_ticks() {
    let mut e = Engine::new(only(RuleName::CpuThrottled, 0.0));
    let with = throttled;
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
        t.sample.cgroup = Some(CgroupReading {
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
            ..Default::default()
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

#[test]
fn memory_near_limit_by_share_or_by_time_to_limit() {
    use crate::sample::allocation::Source;
    let mut e = Engine::new(only(RuleName::MemoryNearLimit, 0.0));
    let with = |rss: u64, ttl: Option<f64>| {
        let mut t = target("app", true, 0);
        t.sample.resident_memory_bytes = rss;
        t.sample.allocation.memory_limit_bytes = Some((1000 << 20, Source::Config));
        let mut v = crate::analysis::Verdicts::default();
        v.memory_leak.time_to_limit_seconds = ttl;
        t.verdicts = Some(v);
        snap(vec![t])
    };
    assert!(
        e.evaluate(&with(900 << 20, None), 0.0).is_empty(),
        "90% is not over 90%"
    );
    let t = e.evaluate(&with(950 << 20, None), 1.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert!(
        a.annotations["description"].contains("950.0 MiB of its 1000.0 MiB limit (95%)"),
        "{a:?}"
    );
    assert_eq!(a.annotations["summary"], "app is near its memory limit");
    assert!(matches!(
        e.evaluate(&with(100 << 20, Some(5.0 * 3600.0)), 2.0)
            .as_slice(),
        [Transition::Resolved(_)]
    ));
    // At 10% of the limit, fired by the growth: the summary says when, not "near".
    let t = e.evaluate(&with(100 << 20, Some(3.0 * 3600.0)), 3.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(
        a.annotations["summary"],
        "app will reach its memory limit in 3.0 h at its current growth"
    );
}

#[test]
fn allocation_alerts_carry_the_recommendation() {
    use crate::analysis::sizing::{AllocationField, AllocationVerdict as Verdict};
    let mut e = Engine::new(only(RuleName::MemoryUnderAllocated, 0.0));
    let mut t = target("app", true, 0);
    let mut v = crate::analysis::Verdicts::default();
    v.sizing.memory.allocation = AllocationField(Verdict::Under);
    v.sizing.memory.reason = "peak 900 MiB near the 1 GiB limit".into();
    v.resources_yaml = Some("resources:\n  limits:\n    memory: 1300Mi\n".into());
    t.verdicts = Some(v.clone());
    let out = e.evaluate(&snap(vec![t.clone()]), 0.0);
    let [Transition::Fired(a)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        a.annotations["recommendation"],
        v.resources_yaml.clone().unwrap()
    );
    assert!(a.annotations["description"].contains("peak 900 MiB"));
    // The CPU verdict (unknown) raises nothing, even with every rule on.
    let mut all = Engine::new(AlertsConfig::default());
    let names: Vec<_> = all
        .evaluate(&snap(vec![t]), 0.0)
        .iter()
        .map(|t| match t {
            Transition::Fired(a) | Transition::Resolved(a) => a.alertname,
        })
        .collect();
    assert!(names.is_empty(), "defaults have a for: {names:?}");
    assert_eq!(
        states(&all),
        [("MemoryUnderAllocated", AlertState::Pending)]
    );
}

#[test]
fn http_5xx_ratio_over_its_threshold() {
    let mut e = Engine::new(only(RuleName::Http5xxRatioHigh, 0.0));
    let with = |r| Snapshot {
        targets: vec![target("web", true, 0)],
        logs: Some(crate::analysis::LogRates {
            window_seconds: 300.0,
            errors_per_minute: 0.0,
            error_ratio: None,
            http_5xx_ratio: r,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(e.evaluate(&with(None), 0.0).is_empty());
    assert!(e.evaluate(&with(Some(0.05)), 1.0).is_empty());
    let t = e.evaluate(&with(Some(0.2)), 2.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(a.labels["target"], "web", "the one target owns the output");
    assert!(a.annotations["description"].contains("20.0% of HTTP responses"));
}

#[test]
fn connection_leak_says_how_fast_and_how_many_are_in_close_wait() {
    let mut e = Engine::new(only(RuleName::ConnectionLeakSuspected, 300.0));
    let with = |suspected: bool| {
        let mut t = target("app", true, 0);
        let mut v = crate::analysis::Verdicts::default();
        v.connection_leak.suspected = suspected;
        v.connection_leak.growth_per_second = Some(0.5);
        t.verdicts = Some(v);
        t.sample.connections = Some(crate::sample::sockets::Connections {
            established: 40,
            close_wait: 120,
            ..Default::default()
        });
        snap(vec![t])
    };
    assert!(e.evaluate(&with(false), 0.0).is_empty());
    assert!(e.active().is_empty());
    assert!(e.evaluate(&with(true), 10.0).is_empty());
    assert_eq!(
        states(&e),
        [("ConnectionLeakSuspected", AlertState::Pending)]
    );
    let t = e.evaluate(&with(true), 310.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(a.labels["severity"], "warning");
    assert!(a.annotations["summary"].contains("app may be leaking connections"));
    let d = &a.annotations["description"];
    assert!(
        d.contains("grow by 30.00 per minute")
            && d.contains("40 established and 120 in CLOSE_WAIT"),
        "{d}"
    );
}

#[test]
fn latency_high_fires_after_its_for_and_needs_enough_requests() {
    let mut e = Engine::new(only(RuleName::LatencyHigh, 300.0));
    let with = |p95, requests| Snapshot {
        targets: vec![target("web", true, 0)],
        logs: Some(crate::analysis::LogRates {
            window_seconds: 300.0,
            latency: Some(crate::analysis::latency::Latency {
                requests,
                p50_seconds: p95 / 3.0,
                p95_seconds: p95,
                p99_seconds: p95 * 1.5,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(e.evaluate(&with(0.9, 500), 0.0).is_empty());
    // Over the threshold but too few requests to tell.
    assert!(e.evaluate(&with(3.0, 5), 10.0).is_empty());
    assert!(e.active().is_empty());
    assert!(e.evaluate(&with(1.5, 500), 20.0).is_empty());
    assert_eq!(states(&e), vec![("LatencyHigh", AlertState::Pending)]);
    assert!(e.evaluate(&with(1.5, 500), 200.0).is_empty());
    let t = e.evaluate(&with(1.5, 500), 320.0);
    let [Transition::Fired(a)] = t.as_slice() else {
        panic!("{t:?}")
    };
    assert!(
        a.annotations["description"]
            .starts_with("p95 request duration 1.50 s (p50 500 ms, p99 2.25 s) over 500 requests"),
        "{:?}",
        a.annotations
    );
    let t = e.evaluate(&with(0.2, 500), 330.0);
    assert!(matches!(t.as_slice(), [Transition::Resolved(_)]), "{t:?}");
}

/// An engine with only `rule` enabled, `for = "0s"`, and `body` as the rest of its
/// `[alerts.rules.<rule>]` table, validated as a config file is.
fn configured(rule: RuleName, body: &str) -> Engine {
    #[derive(serde::Deserialize)]
    struct W {
        alerts: crate::config::alerts::RawAlerts,
    }
    let text = format!("[alerts.rules.{}]\nfor = \"0s\"\n{body}\n", rule.as_str());
    let w: W = toml::from_str(&text).unwrap();
    let mut errors = Vec::new();
    let mut c = crate::config::alerts::validate(&w.alerts, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    for (r, cfg) in c.rules.iter_mut() {
        cfg.enabled = *r == rule;
    }
    Engine::new(c)
}

fn fired(t: &[Transition]) -> bool {
    matches!(t, [Transition::Fired(_)])
}

fn resolved(t: &[Transition]) -> bool {
    matches!(t, [Transition::Resolved(_)])
}

fn throttled(periods: u64, throttled: u64) -> Snapshot {
    let mut t = target("app", true, 0);
    t.sample.cgroup = Some(CgroupReading {
        cpu_periods: Some(periods),
        cpu_throttled_periods: Some(throttled),
        ..Default::default()
    });
    snap(vec![t])
}

fn oom_kills(kills: u64) -> Snapshot {
    let mut t = target("app", true, 0);
    t.sample.cgroup = Some(CgroupReading {
        oom_kills: Some(kills),
        ..Default::default()
    });
    snap(vec![t])
}

/// `rss` MiB of a 1000 MiB limit; `ttl`: the memory leak's hours to the limit.
fn near_limit(rss_mib: u64, ttl_hours: Option<f64>) -> Snapshot {
    let mut t = target("app", true, 0);
    t.sample.resident_memory_bytes = rss_mib << 20;
    t.sample.allocation.memory_limit_bytes =
        Some((1000 << 20, crate::sample::allocation::Source::Config));
    let mut v = crate::analysis::Verdicts::default();
    v.memory_leak.time_to_limit_seconds = ttl_hours.map(|h| h * 3600.0);
    t.verdicts = Some(v);
    snap(vec![t])
}

fn rates(r: crate::analysis::LogRates) -> Snapshot {
    Snapshot {
        logs: Some(crate::analysis::LogRates {
            window_seconds: 300.0,
            ..r
        }),
        ..Default::default()
    }
}

fn errors(per_minute: f64, ratio: f64) -> Snapshot {
    rates(crate::analysis::LogRates {
        errors_per_minute: per_minute,
        error_ratio: Some(ratio),
        ..Default::default()
    })
}

fn latency(p95: f64, requests: u64) -> Snapshot {
    rates(crate::analysis::LogRates {
        latency: Some(crate::analysis::latency::Latency {
            requests,
            p50_seconds: p95,
            p95_seconds: p95,
            p99_seconds: p95,
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[test]
fn every_rule_has_its_own_thresholds_with_the_documented_defaults() {
    use super::rules::{Thresholds, Unit};
    // The README's table: key, unit and default of every rule's thresholds.
    type Keys = &'static [(&'static str, Unit, f64)];
    let documented: &[(RuleName, Keys)] = &[
        (
            RuleName::MemoryNearLimit,
            &[
                ("usage_share", Unit::Number, 0.9),
                ("time_to_limit", Unit::Seconds, 4.0 * 3600.0),
            ],
        ),
        (RuleName::OomKilled, &[("window", Unit::Seconds, 300.0)]),
        (
            RuleName::CpuThrottled,
            &[("throttled_share", Unit::Number, 0.25)],
        ),
        (
            RuleName::ErrorRateHigh,
            &[
                ("errors_per_minute", Unit::Number, 10.0),
                ("error_ratio", Unit::Number, 0.05),
            ],
        ),
        (RuleName::Http5xxRatioHigh, &[("ratio", Unit::Number, 0.05)]),
        (
            RuleName::LatencyHigh,
            &[
                ("p95", Unit::Seconds, 1.0),
                ("min_requests", Unit::Number, 20.0),
            ],
        ),
        (
            RuleName::TargetRestarting,
            &[
                ("restarts", Unit::Number, 3.0),
                ("window", Unit::Seconds, 900.0),
            ],
        ),
        (
            RuleName::OverAllocationCost,
            &[("waste_per_month", Unit::Number, 100.0)],
        ),
    ];
    for rule in RuleName::ALL {
        let mut asked = Vec::new();
        let th = Thresholds::build(rule, |key, unit, default| {
            asked.push((key, unit, default));
            default
        });
        assert_eq!(th.rule(), rule);
        assert_eq!(RuleConfig::defaults(rule).thresholds, th, "{rule:?}");
        let want = documented
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or(&[][..], |(_, t)| *t);
        assert_eq!(asked, want, "{rule:?}");
        // Each key reaches a field of its own: changing one changes the thresholds.
        for (key, _, default) in want {
            let other = Thresholds::build(rule, |k, _, d| if k == *key { d + 1.0 } else { d });
            assert_ne!(
                other, th,
                "{rule:?}.{key} (default {default}) is read by nothing"
            );
        }
    }
}

#[test]
fn a_configured_threshold_is_the_one_checked() {
    // 20% throttled: under the default 25%, over the configured 10%.
    let mut e = configured(RuleName::CpuThrottled, "throttled_share = 0.1");
    e.evaluate(&throttled(1000, 0), 0.0);
    assert!(fired(&e.evaluate(&throttled(1100, 20), 5.0)));

    // A kill is forgotten after the configured minute, not the default 5.
    let mut e = configured(RuleName::OomKilled, "window = \"1m\"");
    e.evaluate(&oom_kills(0), 0.0);
    assert!(fired(&e.evaluate(&oom_kills(1), 5.0)));
    assert!(e.evaluate(&oom_kills(1), 65.0).is_empty());
    assert!(resolved(&e.evaluate(&oom_kills(1), 66.0)));

    let mut e = configured(RuleName::TargetRestarting, "restarts = 1");
    e.evaluate(&snap(vec![target("app", true, 0)]), 0.0);
    assert!(fired(&e.evaluate(&snap(vec![target("app", true, 1)]), 5.0)));

    let mut e = configured(RuleName::MemoryNearLimit, "usage_share = 0.5");
    assert!(fired(&e.evaluate(&near_limit(600, None), 0.0)));

    let mut e = configured(
        RuleName::ErrorRateHigh,
        "errors_per_minute = 1\nerror_ratio = 0.001",
    );
    assert!(fired(&e.evaluate(&errors(2.0, 0.01), 0.0)));

    let mut e = configured(RuleName::Http5xxRatioHigh, "ratio = 0.01");
    let five = rates(crate::analysis::LogRates {
        http_5xx_ratio: Some(0.02),
        ..Default::default()
    });
    assert!(fired(&e.evaluate(&five, 0.0)));

    let mut e = configured(RuleName::LatencyHigh, "p95 = \"100ms\"\nmin_requests = 2");
    assert!(fired(&e.evaluate(&latency(0.2, 2), 0.0)));
}

#[test]
fn an_omitted_threshold_keeps_its_default_and_still_fires() {
    // error_ratio unset: the default 5% is checked, not a NaN that never fires.
    let mut e = configured(RuleName::ErrorRateHigh, "errors_per_minute = 1");
    assert!(e.evaluate(&errors(2.0, 0.04), 0.0).is_empty());
    assert!(fired(&e.evaluate(&errors(2.0, 0.06), 1.0)));

    // usage_share unset: 95% is over the default 90%; a 2 h time to the limit is
    // not under the configured 1 h.
    let mut e = configured(RuleName::MemoryNearLimit, "time_to_limit = \"1h\"");
    assert!(e.evaluate(&near_limit(100, Some(2.0)), 0.0).is_empty());
    assert!(fired(&e.evaluate(&near_limit(950, Some(2.0)), 1.0)));

    // min_requests unset: the default 20 requests.
    let mut e = configured(RuleName::LatencyHigh, "p95 = \"100ms\"");
    assert!(e.evaluate(&latency(0.2, 19), 0.0).is_empty());
    assert!(fired(&e.evaluate(&latency(0.2, 20), 1.0)));

    // window unset: a restart counts for the default 15 minutes.
    let mut e = configured(RuleName::TargetRestarting, "restarts = 1");
    e.evaluate(&snap(vec![target("app", true, 0)]), 0.0);
    assert!(fired(
        &e.evaluate(&snap(vec![target("app", true, 1)]), 10.0)
    ));
    assert!(e
        .evaluate(&snap(vec![target("app", true, 1)]), 910.0)
        .is_empty());
    assert!(resolved(
        &e.evaluate(&snap(vec![target("app", true, 1)]), 911.0)
    ));
}

/// OverAllocationCost is off unless enabled; then the workload's waste (per replica
/// × replicas: 34.12 × 3 = 102.36 a month) over `waste_per_month` fires, in words.
#[test]
fn over_allocation_cost_is_off_by_default_and_names_the_money() {
    assert!(!AlertsConfig::default().rules[&RuleName::OverAllocationCost].enabled);
    let with_waste = |per_replica: f64| {
        let mut t = target("app", true, 0);
        let c = crate::analysis::cost::Cost {
            replicas: 3,
            waste_per_month: crate::analysis::cost::Figures::of(Some(per_replica), Some(0.0)),
            waste_cpu_cores: Some(1.4),
            waste_memory_bytes: Some(600.0 * 1048576.0),
            ..Default::default()
        };
        t.verdicts = Some(crate::analysis::Verdicts {
            cost: Some(c),
            ..Default::default()
        });
        snap(vec![t])
    };
    let mut e = configured(RuleName::OverAllocationCost, "waste_per_month = 100");
    // 30 × 3 = 90: under 100.
    assert!(e.evaluate(&with_waste(30.0), 0.0).is_empty());
    assert!(fired(&e.evaluate(&with_waste(34.12), 5.0)));
    let a = &e.active()[0];
    assert_eq!(a.annotations["summary"], "app wastes about $102 a month");
    assert!(
        a.annotations["description"].starts_with(
            "Target app requests 1.4 cores and 600 MiB above what it needs: about $102 a month \
             ($34 per replica, 3 replicas), over the $100 set in waste_per_month."
        ),
        "{}",
        a.annotations["description"]
    );
}
