//! The text format conversion, the Accept header, and the golden scrape: a rich
//! snapshot rendered in both text formats and compared, in full, with the files
//! beside this one (`golden.prom`, `golden.openmetrics`); the protobuf form, decoded,
//! must hold `golden.prom`'s samples and the native histogram.
//!
//! The golden files fix everything a scraper sees: which families, in what order,
//! their HELP and TYPE text, the label order and the values. Two things vary by run
//! and are masked before the comparison: the crate version in `outrider_build_info`
//! and the values of Outrider's own `process_*` figures (their lines stay).

use std::collections::BTreeMap;

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricFamily;
use prost::Message;
use std::fmt::Write;

use super::*;
use crate::actions::{Action, ActionCount, Outcome};
use crate::alerts::notify::ReceiverStats;
use crate::alerts::{Alert, AlertState};
use crate::analysis::capacity::{Attribution, Capacity, WorkerHint};
use crate::analysis::sizing::{
    AllocationField, AllocationVerdict, CpuVerdict, MemoryVerdict, SizingVerdict,
};
use crate::analysis::TargetStatus;
use crate::analysis::{Leak, LogRates, Verdicts};
use crate::logs::classify::StatusClass;
use crate::logs::latency::LatencyCounts;
use crate::logs::scan::ScanCounts;
use crate::logs::StreamStats;
use crate::sample::allocation::{Allocation, Source};
use crate::sample::cgroup::{CgroupReading, Layout};
use crate::sample::sockets::{ByService, Connections, ScanStats};
use crate::sample::workers::{ServerKind, Workers};
use crate::sample::{CountersView, TargetSample};
use crate::state::Snapshot;

/// OpenMetrics → Prometheus text 0.0.4: counters are named with `_total` in HELP and
/// TYPE, and the `# EOF` marker goes: the old way to the classic format, the oracle
/// [`Metrics::render`] is held to.
fn to_prometheus_text(open: &str) -> String {
    let mut out = String::with_capacity(open.len());
    let mut lines = open.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            let is_counter = lines.peek().is_some_and(|next| {
                next.strip_prefix("# TYPE ")
                    .and_then(|t| t.strip_prefix(name))
                    == Some(" counter")
            });
            if is_counter {
                let help = &rest[name.len()..];
                let _ = writeln!(out, "# HELP {name}_total{help}");
                let _ = writeln!(out, "# TYPE {name}_total counter");
                lines.next();
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn counters_get_total_in_prometheus_text() {
    let open = "# HELP outrider_x Things.\n# TYPE outrider_x counter\noutrider_x_total{target=\"a\"} 3\n# HELP outrider_y Level.\n# TYPE outrider_y gauge\noutrider_y 1\n# EOF\n";
    assert_eq!(
        to_prometheus_text(open),
        "# HELP outrider_x_total Things.\n# TYPE outrider_x_total counter\noutrider_x_total{target=\"a\"} 3\n# HELP outrider_y Level.\n# TYPE outrider_y gauge\noutrider_y 1\n"
    );
}

#[test]
fn accept_header_picks_the_format() {
    assert_eq!(Exposition::from_accept(None), Exposition::Prometheus);
    // Prometheus 2.42 with native histograms; then without (protobuf with q=0).
    let protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    assert_eq!(
        Exposition::from_accept(Some(&format!(
            "{protobuf},application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ))),
        Exposition::Protobuf
    );
    assert_eq!(
        Exposition::from_accept(Some(&format!(
            "{protobuf};q=0,application/openmetrics-text;version=1.0.0;q=0.5"
        ))),
        Exposition::OpenMetrics
    );
    assert_eq!(
        Exposition::from_accept(Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text,text/plain;q=0.1"
        )),
        Exposition::Prometheus,
        "only the delimited encoding is served"
    );
    assert_eq!(
        Exposition::from_accept(Some("text/plain;q=0.9, application/openmetrics-text;q=0.3")),
        Exposition::Prometheus
    );
    assert_eq!(
        Exposition::from_accept(Some(&",".repeat(100_000))),
        Exposition::Prometheus
    );
    assert_eq!(
        Exposition::from_accept(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )),
        Exposition::OpenMetrics
    );
    assert_eq!(
        Exposition::from_accept(Some("text/plain")),
        Exposition::Prometheus
    );
}

/// A target with every figure present: cgroup, allocation, verdicts, connections,
/// workers and capacity.
fn rich_target() -> TargetStatus {
    TargetStatus {
        sample: TargetSample {
            name: "web".into(),
            up: true,
            processes: 5,
            restarts: 2,
            main_pid: Some(100),
            start_time_seconds: Some(1_700_000_000.5),
            counters: CountersView {
                cpu_user_seconds: 12.5,
                cpu_system_seconds: 3.25,
                cpu_wait_seconds: 0.75,
                io_read_bytes: 4096,
                io_write_bytes: 8192,
                voluntary_context_switches: 1000,
                involuntary_context_switches: 50,
            },
            resident_memory_bytes: 300 << 20,
            swap_bytes: 1 << 20,
            virtual_memory_bytes: 2 << 30,
            open_fds: 64,
            max_fds: Some(1024),
            threads: 17,
            cgroup: Some(CgroupReading {
                layout: Layout::V2,
                memory_current_bytes: Some(400 << 20),
                memory_working_set_bytes: Some(350 << 20),
                memory_limit_bytes: Some(1 << 30),
                memory_limit_hits: Some(3),
                cpu_limit_cores: Some(1.5),
                memory_enclosing_limit_bytes: None,
                cpu_enclosing_limit_cores: None,
                cpu_periods: Some(1200),
                cpu_throttled_periods: Some(30),
                cpu_throttled_seconds: Some(2.5),
                oom_kills: Some(1),
                oom_kills_of_others: 0,
                pressure: vec![
                    ("cpu", "some", 1.5),
                    ("memory", "some", 0.25),
                    ("memory", "full", 0.125),
                    ("io", "some", 4.0),
                ],
                other_processes: Some(0),
            }),
            cgroup_unreachable: None,
            allocation: Allocation {
                cpu_request_cores: Some((0.5, Source::Config)),
                cpu_limit_cores: Some((1.5, Source::Cgroup)),
                memory_request_bytes: Some((512 << 20, Source::DownwardApi)),
                memory_limit_bytes: Some((1 << 30, Source::Cgroup)),
            },
            connections: Some(Connections {
                established: 12,
                time_wait: 3,
                close_wait: 2,
                listen: 1,
                other: 0,
                established_by_service: ByService {
                    postgres: 4,
                    mysql: 0,
                    redis: 2,
                    memcached: 0,
                    https: 1,
                    other: 5,
                },
                ..Default::default()
            }),
            jvm: Some(crate::sample::jvm::JvmHeap {
                old_used_bytes: 60 << 20,
                old_capacity_bytes: 96 << 20,
                young_capacity_bytes: Some(32 << 20),
                old_max_bytes: Some(256 << 20),
                old_collections: 7,
                young_collections: 120,
                heap_mappings: 1,
                shmem_resident_bytes: None,
                max_heap_bytes: None,
                heap_share: None,
                initial_heap_bytes: None,
                collector_given: None,
                ergonomics: None,
            }),
            workers: Some(Workers {
                server: ServerKind::Gunicorn,
                master_pid: 100,
                workers: 4,
                master_pss_bytes: Some(40 << 20),
                worker_pss_bytes: Some(60 << 20),
                workers_pss_total_bytes: Some(240 << 20),
                workers_with_pss: 4,
                other_rss_bytes: 0,
                pss_age_seconds: Some(5.0),
                pss_interval_seconds: Some(60.0),
            }),
        },
        verdicts: Some(rich_verdicts()),
        capacity: Some(Capacity {
            attribution: Attribution::Stream("web".into()),
            window_seconds: 300.0,
            requests: Some(3000),
            cpu_seconds: 150.0,
            requests_per_cpu_second: Some(20.0),
            cpu_seconds_per_request: Some(0.05),
            requests_per_second_at_cpu_request: Some(10.0),
            requests_per_second_at_cpu_limit: Some(30.0),
            reason: String::new(),
            worker_hint: Some(WorkerHint {
                workers_now: 4,
                recommended_workers: 3,
                cores: 1.5,
                cores_from: "cpu_limit",
                cpu_workers: 3,
                memory_workers: Some(15),
                bound_by: "cpu",
                reasoning: String::new(),
            }),
        }),
    }
}

/// Growth, leaks and a sizing verdict with every figure, the CPU over-allocated.
fn rich_verdicts() -> Verdicts {
    Verdicts {
        memory_leak: Leak {
            suspected: true,
            growth_per_second: Some(1024.0),
            time_to_limit_seconds: Some(3600.0),
            settling: false,
            in_heap: false,
            outside_heap: false,
            time_to_heap_max_seconds: Some(5400.0),
        },
        fd_leak: Leak {
            suspected: false,
            growth_per_second: Some(0.5),
            time_to_limit_seconds: Some(1920.0),
            settling: false,
            in_heap: false,
            outside_heap: false,
            time_to_heap_max_seconds: None,
        },
        thread_leak: Leak {
            suspected: false,
            growth_per_second: Some(0.0),
            time_to_limit_seconds: None,
            settling: false,
            in_heap: false,
            outside_heap: false,
            time_to_heap_max_seconds: None,
        },
        connection_leak: Leak {
            suspected: true,
            growth_per_second: Some(0.25),
            time_to_limit_seconds: None,
            settling: false,
            in_heap: false,
            outside_heap: false,
            time_to_heap_max_seconds: None,
        },
        sizing: SizingVerdict {
            cpu: CpuVerdict {
                p50_cores: Some(0.125),
                p90_cores: Some(0.25),
                p95_cores: Some(0.375),
                p99_cores: Some(0.5),
                max_cores: Some(0.75),
                recommended_request_cores: Some(0.3),
                throttled_share: Some(0.025),
                throttled_seconds_per_minute: Some(1.5),
                wait_share: Some(0.01),
                allocation: AllocationField(AllocationVerdict::Over),
                reason: String::new(),
            },
            memory: MemoryVerdict {
                peak_bytes: Some(400.0 * 1048576.0),
                recommended_request_bytes: Some(480.0 * 1048576.0),
                recommended_limit_bytes: Some(600.0 * 1048576.0),
                heap_max_bytes: None,
                heap_share: None,
                oom_kills: 1,
                allocation: AllocationField(AllocationVerdict::Ok),
                reason: String::new(),
            },
            data_seconds: 7200.0,
        },
        resources_yaml: None,
        heap_leak: Some(Leak {
            suspected: false,
            growth_per_second: Some(512.0),
            time_to_limit_seconds: None,
            settling: false,
            in_heap: true,
            outside_heap: false,
            time_to_heap_max_seconds: Some(5400.0),
        }),
        rss_growth_per_second: Some(1024.0),
        ..super::cost::rich_verdicts()
    }
}

/// A target that is down, with a partial cgroup reading and nothing else optional.
fn sparse_target() -> TargetStatus {
    TargetStatus {
        sample: TargetSample {
            name: "cron".into(),
            up: false,
            processes: 0,
            restarts: 0,
            main_pid: None,
            start_time_seconds: None,
            counters: CountersView::default(),
            resident_memory_bytes: 0,
            swap_bytes: 0,
            virtual_memory_bytes: 0,
            open_fds: 0,
            max_fds: None,
            threads: 0,
            cgroup: Some(CgroupReading {
                layout: Layout::V1,
                memory_current_bytes: Some(1 << 20),
                memory_working_set_bytes: None,
                memory_limit_bytes: None,
                memory_limit_hits: None,
                cpu_limit_cores: None,
                memory_enclosing_limit_bytes: Some(256 << 20),
                cpu_enclosing_limit_cores: Some(0.5),
                cpu_periods: Some(10),
                cpu_throttled_periods: Some(0),
                cpu_throttled_seconds: None,
                oom_kills: None,
                oom_kills_of_others: 0,
                pressure: vec![],
                other_processes: None,
            }),
            cgroup_unreachable: None,
            allocation: Allocation {
                cpu_request_cores: None,
                cpu_limit_cores: None,
                memory_request_bytes: Some((64 << 20, Source::Config)),
                memory_limit_bytes: None,
            },
            connections: None,
            workers: None,
            jvm: None,
        },
        verdicts: Some(Verdicts::default()),
        capacity: None,
    }
}

/// A target whose cgroup cannot be read and that has no verdicts yet.
fn bare_target() -> TargetStatus {
    TargetStatus {
        sample: TargetSample {
            name: "sidecar".into(),
            cgroup: None,
            cgroup_unreachable: Some("no cgroup2 mount".into()),
            allocation: Allocation::default(),
            ..sparse_target().sample
        },
        verdicts: None,
        capacity: None,
    }
}

fn rich_snapshot() -> Snapshot {
    let mut pending = Alert::example("MemoryLeak", "web", "warning", None);
    pending.state = AlertState::Pending;
    let mut firing = Alert::example("TargetDown", "cron", "critical", None);
    firing.state = AlertState::Firing;
    Snapshot {
        taken_at_unix: 1_800_000_000.0,
        sample_duration_seconds: 0.0125,
        targets: vec![rich_target(), sparse_target(), bare_target()],
        read_errors: [("cgroup", 3), ("proc", 7)].into_iter().collect(),
        logs: Some(LogRates {
            window_seconds: 300.0,
            errors_per_minute: 2.5,
            error_ratio: Some(0.125),
            http_5xx_ratio: Some(0.0625),
            requests_per_second: 10.0,
            latency: Some(crate::analysis::latency::Latency {
                requests: 3000,
                p50_seconds: 0.025,
                p95_seconds: 0.25,
                p99_seconds: 0.5,
                earlier_p95_seconds: None,
                recent_p95_seconds: None,
                rising: false,
            }),
        }),
        alerts: vec![pending, firing],
        connection_scans: Some(ScanStats {
            scans: 42,
            last_duration_seconds: 0.003,
        }),
        actions: vec![
            ActionCount {
                target: "web".into(),
                action: Action::Signal,
                result: Outcome::Ok,
                count: 2,
            },
            ActionCount {
                target: "web".into(),
                action: Action::Command,
                result: Outcome::Timeout,
                count: 1,
            },
        ],
        log_read_failures: Vec::new(),
    }
}

/// Two streams, one with access lines and request durations.
fn streams() -> Vec<Arc<StreamStats>> {
    let stdout = StreamStats::new("stdout");
    let mut latency = LatencyCounts::default();
    let buckets = Default::default();
    for (class, seconds) in [
        (StatusClass::Success, 0.125),
        (StatusClass::Success, 0.5),
        (StatusClass::Redirection, 0.0625),
        (StatusClass::ServerError, 2.0),
    ] {
        latency.observe(&buckets, class, seconds);
    }
    let mut counts = ScanCounts {
        lines: 120,
        bytes: 9000,
        oversized_lines: 1,
        latency,
        ..Default::default()
    };
    counts.events.error = 3;
    counts.events.warning = 5;
    counts.events.info = 100;
    counts.events.unknown = 2;
    counts.http.success = 80;
    counts.http.redirection = 4;
    counts.http.client_error = 6;
    counts.http.server_error = 2;
    stdout.publish(counts);
    stdout.add_rotation();
    let stderr = StreamStats::new("stderr");
    stderr.publish(ScanCounts {
        lines: 7,
        bytes: 700,
        ..Default::default()
    });
    stderr.add_truncation();
    vec![stdout, stderr]
}

fn receivers() -> Vec<Arc<ReceiverStats>> {
    use std::sync::atomic::Ordering::Relaxed;
    let hook = ReceiverStats {
        name: "hook".into(),
        ..Default::default()
    };
    hook.sent.store(5, Relaxed);
    hook.failed.store(2, Relaxed);
    hook.queued.store(1, Relaxed);
    let slack = ReceiverStats {
        name: "slack".into(),
        ..Default::default()
    };
    slack.dropped.store(1, Relaxed);
    slack.rate_limited.store(3, Relaxed);
    vec![Arc::new(hook), Arc::new(slack)]
}

/// The scrape with what varies by run masked: the version label, and the values of
/// the `process_*` lines (the names and labels stay).
fn masked(body: &str) -> String {
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    let mut out = String::with_capacity(body.len());
    for line in body.lines() {
        let line = line.replace(&version, "version=\"VERSION\"");
        match line.rsplit_once(' ') {
            Some((series, _)) if line.starts_with("process_") => {
                out.push_str(series);
                out.push_str(" VALUE");
            }
            _ => out.push_str(&line),
        }
        out.push('\n');
    }
    out
}

/// The registry of the golden scrapes: the rich snapshot, the streams, receivers
/// and the server's connection counts.
fn golden_metrics() -> Metrics {
    let shared = Arc::new(Shared::new(streams()));
    shared.publish(rich_snapshot());
    shared.set_receivers(receivers());
    let server = Arc::new(ServerStats::default());
    server.open.store(3, std::sync::atomic::Ordering::Relaxed);
    server
        .limit
        .store(256, std::sync::atomic::Ordering::Relaxed);
    server
        .shed
        .store(1244, std::sync::atomic::Ordering::Relaxed);
    Metrics::new(shared).with_server(server)
}

/// Compares in full; on a difference, writes the scrape next to the temp dir so
/// the two can be diffed (and the golden file replaced when the change is meant).
fn assert_golden(format: Exposition, golden: &str, file: &str) {
    let body = masked(&golden_metrics().render(format));
    if body != golden {
        let actual = std::env::temp_dir().join(format!("outrider-{file}.actual"));
        let _ = std::fs::write(&actual, &body);
        let first = body
            .lines()
            .zip(golden.lines())
            .position(|(a, g)| a != g)
            .unwrap_or(body.lines().count().min(golden.lines().count()));
        panic!(
            "the scrape differs from src/metrics/{file} from line {}; it is in {}",
            first + 1,
            actual.display()
        );
    }
}

#[test]
fn the_prometheus_scrape_matches_the_golden_file() {
    assert_golden(
        Exposition::Prometheus,
        include_str!("golden.prom"),
        "golden.prom",
    );
}

#[test]
fn the_openmetrics_scrape_matches_the_golden_file() {
    assert_golden(
        Exposition::OpenMetrics,
        include_str!("golden.openmetrics"),
        "golden.openmetrics",
    );
}

/// What prometheus-client's own text encoder writes for `m`'s registry: the way
/// both text formats were made before `Metrics::render` wrote them itself.
fn via_prometheus_client(m: &Metrics) -> String {
    let mut open = String::new();
    prometheus_client::encoding::text::encode(&mut open, &m.registry).unwrap();
    open
}

/// The golden snapshot with a name that needs escaping, floats dtoa writes in its
/// own way (1e20 in full, 1e-7, NaN, inf, -0.0), and no streams, receivers or
/// server.
fn odd_metrics() -> Metrics {
    let mut snap = rich_snapshot();
    let t = &mut snap.targets[0].sample;
    t.name = "we\"b\\x\ny".into();
    t.counters.cpu_user_seconds = 1e20;
    t.counters.cpu_system_seconds = 1e-7;
    t.counters.cpu_wait_seconds = f64::NAN;
    t.start_time_seconds = Some(f64::INFINITY);
    snap.sample_duration_seconds = -0.0;
    let shared = Arc::new(Shared::new(Vec::new()));
    shared.publish(snap);
    Metrics::new(shared)
}

#[test]
fn the_text_formats_are_written_as_prometheus_client_writes_them() {
    for (m, what) in [(golden_metrics(), "golden"), (odd_metrics(), "odd")] {
        let open = masked(&via_prometheus_client(&m));
        assert!(open.contains("le=\"+Inf\"") || what == "odd");
        assert!(open.contains("target=\"we\\\"b\\\\x\\ny\"") || what == "golden");
        assert!(open.contains(" inf\n") && open.contains(" NaN\n") || what == "golden");
        assert_eq!(masked(&m.render(Exposition::OpenMetrics)), open, "{what}");
        assert_eq!(
            masked(&m.render(Exposition::Prometheus)),
            to_prometheus_text(&open),
            "{what}"
        );
    }
}

/// `name{labels}` → value of every sample line in a text body; `le` written the
/// way Rust writes the float, so "1.0" and "1" are one bound; `process_*` values
/// (masked) are NaN.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        // Only a `_bucket` line's own `le` (a label `rule="…"` ends in le=" too).
        let le_at = series
            .find("{le=\"")
            .or_else(|| series.find(",le=\""))
            .filter(|_| series.contains("_bucket{"));
        let series = match le_at {
            Some(i) => {
                let (head, rest) = series.split_at(i + 5);
                let (le, tail) = rest.split_once('"').unwrap();
                let le: f64 = le.replace("+Inf", "inf").parse().unwrap();
                format!("{head}{}\"{tail}", bound(le))
            }
            None => series.to_string(),
        };
        out.insert(series, value.parse().unwrap_or(f64::NAN));
    }
    out
}

fn bound(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else {
        le.to_string()
    }
}

/// The decoded families as `samples` gives them.
fn proto_samples(families: &[MetricFamily]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for f in families {
        for m in &f.metric {
            let labels: Vec<String> = m
                .label
                .iter()
                .map(|l| format!("{}=\"{}\"", l.name, l.value))
                .collect();
            let series = |suffix: &str, extra: Option<String>| {
                // `le` first, as the text encoder writes it.
                let all: Vec<String> = extra.into_iter().chain(labels.iter().cloned()).collect();
                match all.is_empty() {
                    true => format!("{}{suffix}", f.name),
                    false => format!("{}{suffix}{{{}}}", f.name, all.join(",")),
                }
            };
            let nan_if_process = |v: f64| {
                if f.name.starts_with("process_") {
                    f64::NAN
                } else {
                    v
                }
            };
            if let Some(h) = &m.histogram {
                for b in &h.bucket {
                    let le = format!("le=\"{}\"", bound(b.upper_bound));
                    out.insert(series("_bucket", Some(le)), b.cumulative_count as f64);
                }
                out.insert(series("_sum", None), h.sample_sum);
                out.insert(series("_count", None), h.sample_count as f64);
                continue;
            }
            let value = match (&m.counter, &m.gauge) {
                (Some(c), _) => c.value,
                (_, Some(g)) => g.value,
                _ => panic!("{}: neither counter, gauge nor histogram", f.name),
            };
            out.insert(series("", None), nan_if_process(value));
        }
    }
    out
}

/// The protobuf scrape carries every sample of the golden text scrape with the same
/// name, labels and value, and the request durations' native histogram besides.
#[test]
fn the_protobuf_scrape_matches_the_golden_file() {
    let body = golden_metrics().body(Exposition::Protobuf).unwrap();
    let mut rest = &body[..];
    let mut families = Vec::new();
    while !rest.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut rest).unwrap());
    }
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    let decoded: BTreeMap<String, f64> = proto_samples(&families)
        .into_iter()
        .map(|(k, v)| (k.replace(&version, "version=\"VERSION\""), v))
        .collect();
    let golden = samples(include_str!("golden.prom"));
    let only = |a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>| {
        a.keys()
            .filter(|k| !b.contains_key(*k))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(&decoded, &golden),
        Vec::<String>::new(),
        "not in golden.prom"
    );
    assert_eq!(
        only(&golden, &decoded),
        Vec::<String>::new(),
        "not in the protobuf"
    );
    for (series, v) in &golden {
        let d = decoded[series];
        assert!(
            d == *v || (d.is_nan() && v.is_nan()),
            "{series}: {d} vs {v}"
        );
    }

    let durations = families
        .iter()
        .find(|f| f.name == "outrider_http_request_duration_seconds")
        .unwrap();
    // streams(): 2xx 0.125 s and 0.5 s (buckets -24 and -8: 2^-3, 2^-1), 3xx
    // 0.0625 s (-32), 5xx 2 s (8), 4xx nothing.
    // Spans (offset, length), then deltas.
    let want = [
        "[(-24, 1), (15, 1)] [1, 0]",
        "[(-32, 1)] [1]",
        "[] []",
        "[(8, 1)] [1]",
    ];
    for (m, want) in durations.metric.iter().zip(want) {
        let h = m.histogram.as_ref().unwrap();
        assert_eq!(
            (h.schema, h.zero_threshold, h.zero_count),
            (3, 1.0 / 1_048_576.0, 0)
        );
        let spans: Vec<(i32, u32)> = h
            .positive_span
            .iter()
            .map(|s| (s.offset, s.length))
            .collect();
        let got = format!("{spans:?} {:?}", h.positive_delta);
        assert_eq!(got, want, "{:?}", m.label);
    }
}
