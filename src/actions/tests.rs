//! The trigger with explicit times: episodes, the cooldown, the level against the
//! time to the limit; and a command run for real, with its environment and timeout.

use super::*;
use crate::analysis::Verdicts;
use crate::sample::allocation::{Allocation, Source};
use crate::sample::TargetSample;

const MIB: u64 = 1 << 20;
const COOLDOWN: f64 = 600.0;

#[test]
fn an_episode_acts_once_and_ends_when_the_condition_clears() {
    let mut t = Trigger::default();
    assert!(!t.step(false, 0.0, COOLDOWN));
    assert!(t.step(true, 10.0, COOLDOWN), "the episode starts: act");
    assert!(!t.step(true, 15.0, COOLDOWN), "once per episode");
    assert!(!t.step(true, 900.0, COOLDOWN), "still the same episode");
    assert!(!t.step(false, 905.0, COOLDOWN), "it ends");
    assert!(
        t.step(true, 910.0, COOLDOWN),
        "a new episode past the cooldown acts"
    );
}

#[test]
fn an_episode_within_the_cooldown_acts_when_it_has_passed() {
    let mut t = Trigger::default();
    assert!(t.step(true, 0.0, COOLDOWN));
    assert!(!t.step(false, 5.0, COOLDOWN));
    assert!(!t.step(true, 10.0, COOLDOWN), "10 s after the last action");
    assert!(!t.step(true, 599.0, COOLDOWN), "599 s < 600 s");
    assert!(
        t.step(true, 600.0, COOLDOWN),
        "the cooldown has passed, the episode has not"
    );
    assert!(!t.step(true, 700.0, COOLDOWN), "and only once");
}

#[test]
fn what_was_done_is_news_during_the_episode_and_a_cooldown_after() {
    let mut t = Trigger::default();
    t.step(true, 0.0, COOLDOWN);
    assert!(t.recent(1000.0, COOLDOWN), "open");
    t.step(false, 1000.0, COOLDOWN);
    assert!(t.recent(1599.0, COOLDOWN));
    assert!(!t.recent(1600.0, COOLDOWN));
}

fn pressure(used_mib: u64, ttl: Option<f64>) -> Pressure {
    Pressure {
        pid: 1,
        memory_bytes: (used_mib * MIB) as f64,
        limit_bytes: (100 * MIB) as f64,
        time_to_limit_seconds: ttl,
    }
}

#[test]
fn the_level_or_the_time_to_the_limit_triggers() {
    let cfg = ActionsConfig::default(); // 90%, 10 min
    assert_eq!(pressure(89, None).reason(&cfg), None);
    assert_eq!(pressure(90, None).reason(&cfg), Some(Reason::Level));
    assert_eq!(
        pressure(95, Some(60.0)).reason(&cfg),
        Some(Reason::Level),
        "the level first"
    );
    assert_eq!(
        pressure(50, Some(599.0)).reason(&cfg),
        Some(Reason::TimeToLimit)
    );
    assert_eq!(
        pressure(50, Some(600.0)).reason(&cfg),
        None,
        "10 min is not within 10 min"
    );
    let low = ActionsConfig {
        level: 0.5,
        time_to_limit_seconds: 60.0,
        ..cfg
    };
    assert_eq!(pressure(50, Some(120.0)).reason(&low), Some(Reason::Level));
    assert_eq!(pressure(49, Some(120.0)).reason(&low), None);
}

/// A live target with a 100 MiB limit using `used_mib`, its suspected memory leak
/// reaching the limit in `ttl` seconds.
fn target(used_mib: u64, ttl: Option<f64>, up: bool) -> TargetStatus {
    let mut v = Verdicts::default();
    v.memory_leak.time_to_limit_seconds = ttl;
    v.memory_leak.suspected = ttl.is_some();
    TargetStatus {
        sample: TargetSample {
            name: "app".into(),
            up,
            main_pid: Some(std::process::id() as i32),
            resident_memory_bytes: used_mib * MIB,
            allocation: Allocation {
                memory_limit_bytes: Some((100 * MIB, Source::Config)),
                ..Default::default()
            },
            ..Default::default()
        },
        verdicts: Some(v),
        capacity: None,
    }
}

#[test]
fn no_limit_or_no_process_no_pressure() {
    assert!(Pressure::of(&target(95, None, false)).is_none(), "down");
    let mut t = target(95, None, true);
    t.sample.allocation.memory_limit_bytes = None;
    assert!(Pressure::of(&t).is_none(), "no limit");
    let p = Pressure::of(&target(95, Some(30.0), true)).unwrap();
    assert_eq!(p.memory_bytes, (95 * MIB) as f64);
    assert_eq!(p.time_to_limit_seconds, Some(30.0));
    // Growth toward the limit without a leak verdict (a heap warming up) is no
    // time-to-limit trigger.
    let mut warming = target(20, Some(30.0), true);
    warming.verdicts.as_mut().unwrap().memory_leak.suspected = false;
    assert_eq!(Pressure::of(&warming).unwrap().time_to_limit_seconds, None);
}

/// Off by default: nothing runs, nothing is counted.
#[test]
fn without_a_signal_or_command_nothing_is_done() {
    let mut a = Actions::new(ActionsConfig::default());
    a.act(&[target(99, Some(1.0), true)], 0.0);
    assert!(a.done().get("app").is_none());
    assert!(a.counts().is_empty());
}

/// The command runs with the figures in its environment, once per episode; what
/// was done is kept for the alerts, its result filled in once known.
#[tokio::test]
async fn the_command_runs_once_with_the_figures_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let script = format!(
        "echo \"$OUTRIDER_PID $OUTRIDER_TARGET $OUTRIDER_MEMORY_BYTES $OUTRIDER_MEMORY_LIMIT_BYTES $OUTRIDER_TIME_TO_LIMIT_SECONDS $OUTRIDER_REASON\" >> {}",
        out.display()
    );
    let mut a = Actions::new(ActionsConfig {
        command: vec!["sh".into(), "-c".into(), script],
        ..Default::default()
    });
    a.act(&[target(50, Some(120.0), true)], 0.0);
    let taken = a.done().get("app").cloned().unwrap();
    assert_eq!(taken.command, Some(None), "still running");
    assert_eq!(taken.reason, Reason::TimeToLimit);
    wait_for(|| !a.counts().is_empty()).await;
    a.act(&[target(60, Some(100.0), true)], 5.0);
    let text = std::fs::read_to_string(&out).unwrap();
    let pid = std::process::id();
    assert_eq!(
        text,
        format!("{pid} app {} {} 120 time_to_limit\n", 50 * MIB, 100 * MIB)
    );
    assert_eq!(
        a.done().get("app").unwrap().command,
        Some(Some(Outcome::Ok))
    );
    assert_eq!(
        a.counts(),
        vec![ActionCount {
            target: "app".into(),
            action: Action::Command,
            result: Outcome::Ok,
            count: 1
        }]
    );
    // The episode ends: what was done stays news for the cooldown.
    a.act(&[target(10, None, true)], 10.0);
    assert!(a.done().get("app").is_some());
    a.act(&[target(10, None, true)], 10.0 + COOLDOWN);
    assert!(a.done().get("app").is_none());
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_and_a_missing_one_fails() {
    let mut a = Actions::new(ActionsConfig {
        command: vec!["sleep".into(), "30".into()],
        timeout: Duration::from_millis(100),
        ..Default::default()
    });
    a.act(&[target(95, None, true)], 0.0);
    wait_for(|| !a.counts().is_empty()).await;
    assert_eq!(a.counts()[0].result, Outcome::Timeout);

    let mut a = Actions::new(ActionsConfig {
        command: vec!["/nonexistent/dump".into()],
        ..Default::default()
    });
    a.act(&[target(95, None, true)], 0.0);
    assert_eq!(
        a.done().get("app").unwrap().command,
        Some(Some(Outcome::Failed))
    );
    assert_eq!(a.counts()[0].result, Outcome::Failed);
}

#[test]
fn a_signal_to_a_process_that_is_gone_is_counted_failed() {
    let mut a = Actions::new(ActionsConfig {
        // SIGCONT to ourselves is delivered and harmless; to a pid that cannot exist
        // it fails.
        signal: Some(Signal::SIGCONT),
        ..Default::default()
    });
    let mut t = target(95, None, true);
    t.sample.main_pid = Some(i32::MAX);
    a.act(&[t], 0.0);
    assert_eq!(
        a.done().get("app").unwrap().signal,
        Some(("SIGCONT", false))
    );
    let mut ok = Actions::new(ActionsConfig {
        signal: Some(Signal::SIGCONT),
        ..Default::default()
    });
    ok.act(&[target(95, None, true)], 0.0);
    assert_eq!(
        ok.done().get("app").unwrap().signal,
        Some(("SIGCONT", true))
    );
    assert_eq!(ok.counts()[0].action, Action::Signal);
    assert_eq!(ok.counts()[0].result, Outcome::Ok);
}

async fn wait_for(ok: impl Fn() -> bool) {
    for _ in 0..500 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s");
}
