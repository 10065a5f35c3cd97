//! The README's metrics reference agrees with what the code exposes.

use std::collections::BTreeSet;
use std::sync::Arc;

use outrider::analysis::TargetStatus;
use outrider::analysis::{AnalysisConfig, Analyzer, Observation, Verdicts};
use outrider::logs::StreamStats;
use outrider::metrics::{Exposition, Metrics};
use outrider::sample::allocation::{Allocation, Source};
use outrider::sample::cgroup::CgroupReading;
use outrider::sample::{CountersView, TargetSample};
use outrider::state::Shared;
use outrider::state::Snapshot;

/// A snapshot with every optional figure present, so every family is rendered.
fn full_snapshot() -> Snapshot {
    Snapshot {
        taken_at_unix: 1.8e9,
        sample_duration_seconds: 0.001,
        targets: vec![TargetStatus {
            sample: TargetSample {
                name: "app".into(),
                up: true,
                processes: 1,
                restarts: 0,
                main_pid: Some(1),
                start_time_seconds: Some(1.7e9),
                counters: CountersView::default(),
                resident_memory_bytes: 1,
                swap_bytes: 0,
                virtual_memory_bytes: 1,
                open_fds: 1,
                max_fds: Some(1024),
                threads: 1,
                cgroup: Some(CgroupReading {
                    memory_current_bytes: Some(1),
                    memory_working_set_bytes: Some(1),
                    memory_limit_bytes: Some(1),
                    memory_limit_hits: Some(0),
                    cpu_limit_cores: Some(1.0),
                    memory_enclosing_limit_bytes: Some(1),
                    cpu_enclosing_limit_cores: Some(0.5),
                    cpu_periods: Some(1),
                    cpu_throttled_periods: Some(1),
                    cpu_throttled_seconds: Some(1.0),
                    oom_kills: Some(0),
                    pressure: vec![("cpu", "some", 1.0)],
                    other_processes: Some(0),
                    ..Default::default()
                }),
                cgroup_unreachable: None,
                allocation: Allocation {
                    cpu_request_cores: Some((0.5, Source::Config)),
                    cpu_limit_cores: Some((1.0, Source::Config)),
                    memory_request_bytes: Some((1, Source::Config)),
                    memory_limit_bytes: Some((1, Source::Config)),
                },
                connections: Some(outrider::sample::sockets::Connections {
                    established: 3,
                    ..Default::default()
                }),
                workers: Some(workers()),
                jvm: Some(outrider::sample::jvm::JvmHeap {
                    old_used_bytes: 1,
                    old_capacity_bytes: 2,
                    young_capacity_bytes: None,
                    old_max_bytes: Some(4),
                    old_collections: 1,
                    young_collections: 1,
                    heap_mappings: 1,
                    shmem_resident_bytes: None,
                    max_heap_bytes: Some(8),
                    heap_share: None,
                    initial_heap_bytes: None,
                    collector_given: None,
                    ergonomics: None,
                }),
            },
            verdicts: Some(verdicts()),
            capacity: Some(capacity()),
        }],
        read_errors: [("io", 1)].into_iter().collect(),
        logs: Some(outrider::analysis::LogRates {
            window_seconds: 60.0,
            errors_per_minute: 1.0,
            error_ratio: Some(0.1),
            http_5xx_ratio: Some(0.01),
            latency: Some(Default::default()),
            ..Default::default()
        }),
        alerts: vec![outrider::alerts::Alert {
            alertname: "TargetDown",
            target: "app".into(),
            state: outrider::alerts::AlertState::Firing,
            labels: Default::default(),
            annotations: Default::default(),
            active_since: 1.8e9,
            fired_at: Some(1.8e9),
            ends_at: None,
        }],
        connection_scans: Some(outrider::sample::sockets::ScanStats {
            scans: 1,
            last_duration_seconds: 0.001,
        }),
        actions: vec![outrider::actions::ActionCount {
            target: "app".into(),
            action: outrider::actions::Action::Command,
            result: outrider::actions::Outcome::Ok,
            count: 1,
        }],
        log_read_failures: Vec::new(),
    }
}

/// Verdicts after an hour of steady growth, so every verdict figure is present.
fn verdicts() -> Verdicts {
    let mut a = Analyzer::new(&AnalysisConfig::default());
    let mut v = Verdicts::default();
    for i in 0..800 {
        let t = i as f64 * 5.0;
        v = a.observe(&Observation {
            t,
            rss_bytes: 1e8 + t * 1e4,
            open_fds: Some(10.0 + t / 60.0),
            max_fds: Some(1024.0),
            threads: Some(4.0),
            cpu_seconds: Some(t * 0.1),
            memory_limit_bytes: Some(1e9),
            tcp_established: Some(10.0 + t / 30.0),
            ..Default::default()
        });
    }
    // Memory grows here, a leak, which withholds the memory recommendation: the
    // one a flat memory gives, so its families are exposed too.
    assert!(v.memory_leak.suspected);
    v.sizing.memory.recommended_request_bytes = Some(1.15e8);
    v.sizing.memory.recommended_limit_bytes = Some(1.3e8);
    // The autoscaling figures need 12 h of data: hourly p90s as after half a day.
    v.autoscaling = outrider::analysis::autoscale::judge(
        &[0.2, 0.6, 0.4],
        13.0 * 3600.0,
        &Default::default(),
        Some(0.5),
        false,
    );
    // ...and the wait a younger target shows, so every family is exposed.
    v.autoscaling.ready_in_seconds = Some(3600.0);
    // A judged time split and a measured start-up.
    v.requests = Some(outrider::analysis::requests::Requests {
        time_per_request: outrider::analysis::requests::split(
            &outrider::analysis::requests::Deltas {
                seconds: 300.0,
                requests: 100,
                duration_seconds: 18.0,
                cpu_seconds: Some(1.0),
                cpu_wait_seconds: 0.1,
                throttled_seconds: None,
                peak_cores: 0.1,
            },
        ),
        one_core: None,
    });
    v.startup.listening_seconds = Some(2.0);
    v.startup.first_request_seconds = Some(2.5);
    v
}

/// A pre-fork server with every PSS figure read.
fn workers() -> outrider::sample::workers::Workers {
    outrider::sample::workers::Workers {
        server: outrider::sample::workers::ServerKind::Gunicorn,
        master_pid: 1,
        workers: 4,
        master_pss_bytes: Some(40 << 20),
        worker_pss_bytes: Some(50 << 20),
        workers_pss_total_bytes: Some(200 << 20),
        workers_with_pss: 4,
        other_rss_bytes: 0,
        pss_age_seconds: Some(1.0),
        pss_interval_seconds: Some(60.0),
    }
}

/// Capacity figures after a minute of requests, with a worker hint.
fn capacity() -> outrider::analysis::capacity::Capacity {
    use outrider::analysis::capacity::{Attribution, CapacityConfig, CapacityTracker};
    let alloc = Allocation {
        cpu_request_cores: Some((0.5, Source::Config)),
        cpu_limit_cores: Some((1.0, Source::Config)),
        memory_request_bytes: None,
        memory_limit_bytes: Some((1 << 30, Source::Config)),
    };
    let mut t = CapacityTracker::new(CapacityConfig::default());
    let w = workers();
    t.observe(
        0.0,
        Attribution::AllStreams,
        Some(0),
        0.0,
        &alloc,
        Some(&w),
        2,
        None,
    );
    t.observe(
        60.0,
        Attribution::AllStreams,
        Some(600),
        6.0,
        &alloc,
        Some(&w),
        2,
        None,
    )
}

fn exposed_families() -> BTreeSet<String> {
    let stdout = StreamStats::new("stdout");
    // One request with a duration, so the duration histogram is rendered.
    let mut counts = outrider::logs::scan::ScanCounts::default();
    counts.latency.observe(
        &Default::default(),
        outrider::logs::classify::StatusClass::Success,
        0.1,
    );
    stdout.publish(counts);
    let shared = Arc::new(Shared::new(vec![stdout]));
    shared.publish(full_snapshot());
    shared.set_receivers(vec![Arc::new(outrider::alerts::notify::ReceiverStats {
        name: "hook".into(),
        ..Default::default()
    })]);
    let server = Arc::new(outrider::metrics::ServerStats::default());
    let body = Metrics::new(shared)
        .with_server(server)
        .render(Exposition::Prometheus);
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn documented_families() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Metrics reference")
        .nth(1)
        .expect("README has a metrics reference")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split('`').next().unwrap().to_string())
        .collect()
}

#[test]
fn readme_metrics_reference_matches_the_code() {
    let exposed = exposed_families();
    let documented = documented_families();
    let undocumented: Vec<_> = exposed.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&exposed).collect();
    assert!(
        undocumented.is_empty(),
        "exposed but not in the README: {undocumented:?}"
    );
    assert!(stale.is_empty(), "in the README but not exposed: {stale:?}");
    assert!(exposed.len() >= 40, "{exposed:?}");
}

/// Every key `check-config` prints for an empty configuration (every key that has a
/// default) is documented in config/outrider.toml, commented out or not.
#[test]
fn the_example_config_documents_every_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outrider"))
        .arg("check-config")
        .env_remove("OUTRIDER_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let effective: toml::Table = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/outrider.toml"))
            .unwrap();
    let mut missing = Vec::new();
    for (section, value) in &effective {
        let Some(table) = value.as_table() else {
            continue;
        };
        if !example.contains(&format!("[{section}]")) {
            missing.push(format!("[{section}]"));
        }
        for key in table.keys() {
            let documented = example
                .lines()
                .map(|l| l.trim_start_matches(['#', ' ']))
                .any(|l| l.starts_with(&format!("{key} =")));
            if !documented {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in config/outrider.toml: {missing:?}"
    );
}

/// The README's alert table names every built-in rule once, and its count in
/// words is the number of rules (it said "Fifteen" of seventeen).
#[test]
fn readme_alert_rules_match_the_code() {
    use outrider::alerts::rules::RuleName;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Alerts\n")
        .nth(1)
        .expect("README has an Alerts section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut documented: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .flat_map(|names| names.split(", ").map(str::to_string).collect::<Vec<_>>())
        .filter(|n| RuleName::parse(n).is_some())
        .collect();
    documented.sort();
    let mut code: Vec<String> = RuleName::ALL
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    code.sort();
    assert_eq!(documented, code);
    let words = [
        "Fifteen",
        "Sixteen",
        "Seventeen",
        "Eighteen",
        "Nineteen",
        "Twenty",
    ];
    let said = words
        .iter()
        .position(|w| section.contains(&format!("{w} built-in rules")))
        .expect("the section says how many rules")
        + 15;
    assert_eq!(said, RuleName::ALL.len());
}
