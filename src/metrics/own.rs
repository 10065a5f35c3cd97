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
        self.registry.register_collector(Box::new(ServerCollector {
            stats: stats.clone(),
        }));
        self.server = Some(stats);
        self
    }
}

#[derive(Debug)]
struct ServerCollector {
    stats: Arc<ServerStats>,
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        for f in server_families(&self.stats) {
            f.encode(&mut enc)?;
        }
        Ok(())
    }
}

/// The server's connection families: open now, the most kept, shed.
pub(super) fn server_families(s: &ServerStats) -> [Family<'static>; 3] {
    let mut open = Family::gauge(
        "outrider_http_connections",
        "Client connections open on the HTTP port.",
    );
    open.add([], Num::U(s.open.load(Ordering::Relaxed)));
    let mut limit = Family::gauge(
        "outrider_http_max_connections",
        "The most client connections kept open: http.max_connections, held to half the fd limit.",
    );
    limit.add([], Num::U(s.limit.load(Ordering::Relaxed)));
    let mut shed = Family::counter(
        "outrider_http_connections_shed",
        "Client connections closed to make room for a new one (the limit reached, or no fd left to accept with): the least recently active goes.",
    );
    shed.add([], Num::U(s.shed.load(Ordering::Relaxed)));
    [open, limit, shed]
}

/// Appends `outrider_build_info`, `outrider_sample_duration_seconds` (absent before
/// the first sample: `sampled` is `None`) and `outrider_read_errors_total`.
pub(super) fn families<'a>(
    sampled: Option<f64>,
    read_errors: &'a BTreeMap<&'static str, u64>,
    fams: &mut Vec<Family<'a>>,
) {
    let mut build = Family::gauge("outrider_build_info", "Always 1; the version is a label.");
    build.add([("version", env!("CARGO_PKG_VERSION"))], Num::U(1));
    let mut took = Family::gauge(
        "outrider_sample_duration_seconds",
        "Time the last sampling pass took.",
    );
    if let Some(seconds) = sampled {
        took.add([], Num::F(seconds));
    }
    let mut errors = Family::counter(
        "outrider_read_errors",
        "Reads of /proc, cgroup or downward API files that failed (not counting vanished processes), by source.",
    );
    for (source, n) in read_errors {
        errors.add([("source", *source)], Num::U(*n));
    }
    fams.extend([build, took, errors]);
}

/// Outrider's own `process_*` metrics, read at scrape time as client libraries do
/// (the soft fd limit at most a minute old: see [`Myself`]).
pub(super) fn process(fams: &mut Vec<Family<'_>>) {
    let mut me = MYSELF.lock().unwrap_or_else(|e| e.into_inner());
    let me = me.get_or_insert_with(Myself::new);
    let mut add =
        |kind: fn(&'static str, &'static str) -> Family<'static>, name, help, v: Option<Num>| {
            if let Some(v) = v {
                let mut f = kind(name, help);
                f.add([], v);
                fams.push(f);
            }
        };
    let tps = crate::sample::process::ticks_per_second() as f64;
    let stat = me.reader.read_entry(me.pid).ok();
    add(
        Family::counter,
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        stat.as_ref()
            .map(|s| Num::F((s.user_ticks + s.system_ticks) as f64 / tps)),
    );
    add(
        Family::gauge,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        stat.as_ref()
            .map(|s| Num::U(s.rss_pages * crate::sample::process::page_size())),
    );
    add(
        Family::gauge,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        stat.as_ref().map(|s| Num::U(s.vsize_bytes)),
    );
    add(
        Family::gauge,
        "process_threads",
        "Number of OS threads in the process.",
        stat.as_ref().map(|s| Num::U(s.threads)),
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
            .map(|(s, b)| Num::F(b as f64 + s.start_ticks as f64 / tps)),
    );
    add(
        Family::gauge,
        "process_open_fds",
        "Number of open file descriptors.",
        me.reader.open_fds(me.pid).ok().map(Num::U),
    );
    add(
        Family::gauge,
        "process_max_fds",
        "Maximum number of open file descriptors.",
        me.max_fds().map(Num::U),
    );
}

/// Outrider's own `/proc/<pid>/` files, read through the sampler's reader: `stat`
/// and the fd directory kept open between scrapes (one `pread`, one `statx`), as
/// the tick keeps a member's. procfs opened and parsed every field of `stat` and
/// `limits`, and listed `fd/`, on each scrape: together about a third of
/// answering `/metrics` (docs/performance.md). A failed read is tried again on a fresh open at the next
/// scrape, so a moment without fds does not leave the families absent for good.
struct Myself {
    reader: crate::sample::process::ProcReader,
    pid: i32,
    /// The soft fd limit (`None`: unlimited) and when it was read.
    max_fds: Option<(Option<u64>, std::time::Instant)>,
}

static MYSELF: std::sync::Mutex<Option<Myself>> = std::sync::Mutex::new(None);

/// How long the soft fd limit is trusted: Outrider sets its own once, at start
/// (`http::raise_fd_limit`), and `limits` is dear for the kernel to format (the
/// sampler trusts a member's as long).
const LIMITS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Myself {
    fn new() -> Self {
        Myself {
            reader: crate::sample::process::ProcReader::new(std::path::Path::new("/proc")),
            pid: std::process::id() as i32,
            max_fds: None,
        }
    }

    /// The soft fd limit, read again once [`LIMITS_TTL`] old; `None` when unlimited
    /// or unreadable.
    fn max_fds(&mut self) -> Option<u64> {
        match self.max_fds {
            Some((v, at)) if at.elapsed() < LIMITS_TTL => v,
            _ => {
                let v = self.reader.read_max_fds(self.pid).ok()?;
                self.max_fds = Some((v, std::time::Instant::now()));
                v
            }
        }
    }
}
