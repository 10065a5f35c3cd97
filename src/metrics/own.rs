//! Outrider's own families: the build, the last sampling pass, failed reads, and
//! the `process_*` figures every Prometheus client library exports, read at scrape
//! time; and the HTTP server's connections ([`ServerStats`], a collector of its own
//! added by [`Metrics::with_server`](super::Metrics::with_server), so those families
//! come last). Labels: `version`, `source`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{Family, Metrics, Num};

/// The HTTP server's connection counts: kept by the server as connections come and
/// go, read at scrape time.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Client connections open now.
    pub open: AtomicU64,
    /// The most the server keeps open: `http.max_connections`, held to half the
    /// fd limit.
    pub limit: AtomicU64,
    /// Connections closed to make room for a new one.
    pub shed: AtomicU64,
}

impl Metrics {
    /// Adds the server's connection families, after every other.
    pub fn with_server(mut self, stats: Arc<ServerStats>) -> Self {
        self.registry
            .register_collector(Box::new(ServerCollector { stats }));
        self
    }
}

#[derive(Debug)]
struct ServerCollector {
    stats: Arc<ServerStats>,
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = &self.stats;
        let mut open = Family::gauge(
            "outrider_http_connections",
            "Client connections open on the HTTP port.",
        );
        open.add(vec![], Num::U(s.open.load(Ordering::Relaxed)));
        let mut limit = Family::gauge(
            "outrider_http_max_connections",
            "The most client connections kept open: http.max_connections, held to half the fd limit.",
        );
        limit.add(vec![], Num::U(s.limit.load(Ordering::Relaxed)));
        let mut shed = Family::counter(
            "outrider_http_connections_shed",
            "Client connections closed to make room for a new one (the limit reached, or no fd left to accept with): the least recently active goes.",
        );
        shed.add(vec![], Num::U(s.shed.load(Ordering::Relaxed)));
        for f in [open, limit, shed] {
            f.encode(&mut enc)?;
        }
        Ok(())
    }
}

/// Appends `outrider_build_info`, `outrider_sample_duration_seconds` (absent before
/// the first sample: `sampled` is `None`) and `outrider_read_errors_total`.
pub(super) fn families<'a>(
    sampled: Option<f64>,
    read_errors: &'a BTreeMap<&'static str, u64>,
    fams: &mut Vec<Family<'a>>,
) {
    let mut build = Family::gauge("outrider_build_info", "Always 1; the version is a label.");
    build.add(vec![("version", env!("CARGO_PKG_VERSION"))], Num::U(1));
    let mut took = Family::gauge(
        "outrider_sample_duration_seconds",
        "Time the last sampling pass took.",
    );
    if let Some(seconds) = sampled {
        took.add(vec![], Num::F(seconds));
    }
    let mut errors = Family::counter(
        "outrider_read_errors",
        "Reads of /proc, cgroup or downward API files that failed (not counting vanished processes), by source.",
    );
    for (source, n) in read_errors {
        errors.add(vec![("source", source)], Num::U(*n));
    }
    fams.extend([build, took, errors]);
}

/// Outrider's own `process_*` metrics, read at scrape time as client libraries do.
pub(super) fn process(fams: &mut Vec<Family<'_>>) {
    let Some(me) = myself() else {
        return;
    };
    let mut add =
        |kind: fn(&'static str, &'static str) -> Family<'static>, name, help, v: Option<Num>| {
            if let Some(v) = v {
                let mut f = kind(name, help);
                f.add(vec![], v);
                fams.push(f);
            }
        };
    let tps = procfs::ticks_per_second() as f64;
    let stat = me.stat().ok();
    add(
        Family::counter,
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        stat.as_ref()
            .map(|s| Num::F((s.utime + s.stime) as f64 / tps)),
    );
    add(
        Family::gauge,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        stat.as_ref().map(|s| Num::U(s.rss * procfs::page_size())),
    );
    add(
        Family::gauge,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        stat.as_ref().map(|s| Num::U(s.vsize)),
    );
    add(
        Family::gauge,
        "process_threads",
        "Number of OS threads in the process.",
        stat.as_ref().map(|s| Num::U(s.num_threads.max(0) as u64)),
    );
    // Boot time never changes: read /proc/stat once, not on every scrape.
    static BOOT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let boot =
        *BOOT.get_or_init(|| crate::sample::process::boot_time(std::path::Path::new("/proc")).ok());
    add(
        Family::gauge,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        stat.as_ref()
            .zip(boot)
            .map(|(s, b)| Num::F(b as f64 + s.starttime as f64 / tps)),
    );
    add(
        Family::gauge,
        "process_open_fds",
        "Number of open file descriptors.",
        me.fd_count().ok().map(|n| Num::U(n as u64)),
    );
    let max = me
        .limits()
        .ok()
        .and_then(|l| match l.max_open_files.soft_limit {
            procfs::process::LimitValue::Value(v) => Some(Num::U(v)),
            procfs::process::LimitValue::Unlimited => None,
        });
    add(
        Family::gauge,
        "process_max_fds",
        "Maximum number of open file descriptors.",
        max,
    );
}

/// `/proc/self`, opened once and kept: opening it on every scrape was about a
/// twentieth of Outrider's CPU at 1 s scrapes (docs/performance.md). The kept
/// directory is the process' own (not a thread's), and the fd count is the one a
/// fresh handle gave: that handle was open while it counted too.
fn myself() -> Option<&'static procfs::process::Process> {
    // Kept once opened; a failed open (fds exhausted for a moment) is tried again
    // at the next scrape rather than leaving the process_* families absent for good.
    static ME: std::sync::OnceLock<procfs::process::Process> = std::sync::OnceLock::new();
    if let Some(me) = ME.get() {
        return Some(me);
    }
    let me = procfs::process::Process::myself().ok()?;
    Some(ME.get_or_init(|| me))
}
