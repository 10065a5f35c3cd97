//! Every metric family Outrider exposes, in one place: the contract of DESIGN.md and
//! the README's metrics reference.
//!
//! The sampler publishes a [`Snapshot`](crate::sample::Snapshot); a prometheus-client [`Collector`] renders it
//! on each scrape, so a value that became unknown disappears instead of going stale,
//! and the tick never touches the registry. prometheus-client writes OpenMetrics;
//! [`to_prometheus_text`] turns that into the classic text format (0.0.4) that
//! scrapers get unless they ask for OpenMetrics.
//!
//! # Layout
//! - this file: the target, container, verdict and self families, and the encoding
//! - [`logs`] — per-stream counters, error and request rates, the duration histogram
//! - [`alerts`] — active alerts and notification delivery
//! - [`connections`] — TCP sockets by state and service, scans
//! - [`capacity`] — workers, PSS, the worker hint, requests per CPU-second

use std::fmt::{self, Write};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::state::Shared;

mod alerts;
mod capacity;
mod connections;
mod logs;

/// Which exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    Prometheus,
    OpenMetrics,
}

impl Exposition {
    /// OpenMetrics when the Accept header names it, else the classic text format.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Exposition::OpenMetrics,
            _ => Exposition::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The registry with Outrider's collector in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(shared: Arc<Shared>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector { shared }));
        Metrics { registry }
    }

    /// One scrape's body.
    pub fn render(&self, format: Exposition) -> String {
        let mut open = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut open, &self.registry);
        match format {
            Exposition::OpenMetrics => open,
            Exposition::Prometheus => to_prometheus_text(&open),
        }
    }
}

/// OpenMetrics → Prometheus text 0.0.4: counters are named with `_total` in HELP and
/// TYPE, and the `# EOF` marker goes.
pub fn to_prometheus_text(open: &str) -> String {
    let mut out = String::with_capacity(open.len());
    let mut lines = open.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            let is_counter = lines
                .peek()
                .is_some_and(|next| *next == format!("# TYPE {name} counter"));
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

/// A value as it came: whole numbers stay whole in the output.
#[derive(Debug, Clone, Copy)]
enum Num {
    U(u64),
    F(f64),
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Rows of one family, then written in one go (no family is written without rows).
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    rows: Vec<(Labels<'a>, Num)>,
}

impl<'a> Family<'a> {
    fn gauge(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Gauge,
            rows: Vec::new(),
        }
    }

    fn counter(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Counter,
            rows: Vec::new(),
        }
    }

    fn add(&mut self, labels: Labels<'a>, v: Num) {
        self.rows.push((labels, v));
    }

    fn add_opt<T: Into<Opt>>(&mut self, labels: Labels<'a>, v: T) {
        if let Some(n) = v.into().0 {
            self.rows.push((labels, n));
        }
    }

    fn encode(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut m = enc.encode_descriptor(self.name, self.help, None, self.kind)?;
        if let [(labels, v)] = self.rows.as_slice() {
            if labels.is_empty() {
                // A family without labels: no `{}` after the name.
                return encode_value(self.kind, *v, m);
            }
        }
        for (labels, v) in &self.rows {
            encode_value(self.kind, *v, m.encode_family(labels)?)?;
        }
        Ok(())
    }
}

fn encode_value(
    kind: MetricType,
    v: Num,
    e: prometheus_client::encoding::MetricEncoder,
) -> fmt::Result {
    match (kind, v) {
        (MetricType::Counter, Num::U(x)) => ConstCounter::new(x).encode(e),
        (MetricType::Counter, Num::F(x)) => ConstCounter::new(x).encode(e),
        (_, Num::U(x)) => ConstGauge::new(x).encode(e),
        (_, Num::F(x)) => ConstGauge::new(x).encode(e),
    }
}

/// An optional value of either kind.
struct Opt(Option<Num>);

impl From<Option<u64>> for Opt {
    fn from(v: Option<u64>) -> Self {
        Opt(v.map(Num::U))
    }
}

impl From<Option<f64>> for Opt {
    fn from(v: Option<f64>) -> Self {
        Opt(v.map(Num::F))
    }
}

#[derive(Debug)]
struct SnapshotCollector {
    shared: Arc<Shared>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snap = self.shared.snapshot();
        let mut fams: Vec<Family> = Vec::with_capacity(48);
        macro_rules! fam {
            ($kind:ident, $name:literal, $help:literal) => {{
                fams.push(Family::$kind($name, $help));
                fams.len() - 1
            }};
        }
        let up = fam!(
            gauge,
            "outrider_target_up",
            "1 while at least one process of the target is alive."
        );
        let procs = fam!(
            gauge,
            "outrider_target_processes",
            "Processes in the target's group."
        );
        let restarts = fam!(
            counter,
            "outrider_target_restarts",
            "Times the group's main process was replaced."
        );
        let start = fam!(
            gauge,
            "outrider_target_start_time_seconds",
            "Unix time the oldest process of the group started."
        );
        let cpu = fam!(
            counter,
            "outrider_target_cpu_seconds",
            "CPU time of the group by mode."
        );
        let wait = fam!(
            counter,
            "outrider_target_cpu_wait_seconds",
            "Time the group's threads were runnable but waiting for a CPU (schedstat run_delay)."
        );
        let rss = fam!(
            gauge,
            "outrider_target_resident_memory_bytes",
            "Summed resident set size."
        );
        let swap = fam!(gauge, "outrider_target_swap_bytes", "Summed swap use.");
        let vsize = fam!(
            gauge,
            "outrider_target_virtual_memory_bytes",
            "Summed virtual memory size."
        );
        let fds = fam!(
            gauge,
            "outrider_target_open_fds",
            "Summed open file descriptors."
        );
        let max_fds = fam!(
            gauge,
            "outrider_target_max_fds",
            "Smallest soft limit on open file descriptors in the group."
        );
        let threads = fam!(gauge, "outrider_target_threads", "Summed threads.");
        let io_r = fam!(
            counter,
            "outrider_target_io_read_bytes",
            "Bytes the group read from storage."
        );
        let io_w = fam!(
            counter,
            "outrider_target_io_write_bytes",
            "Bytes the group wrote to storage."
        );
        let ctx = fam!(
            counter,
            "outrider_target_context_switches",
            "Context switches by kind."
        );
        let cg_ok = fam!(
            gauge,
            "outrider_container_cgroup_available",
            "1 when the app's cgroup v2 is readable, 0 when Outrider works from /proc alone."
        );
        let ws = fam!(
            gauge,
            "outrider_container_memory_working_set_bytes",
            "Container memory in use less inactive file cache (what the kubelet evicts on)."
        );
        let mem_cur = fam!(
            gauge,
            "outrider_container_memory_usage_bytes",
            "Container memory in use (memory.current)."
        );
        let mem_lim = fam!(
            gauge,
            "outrider_container_memory_limit_bytes",
            "Container memory limit (memory.max); absent when unlimited."
        );
        let cpu_lim = fam!(
            gauge,
            "outrider_container_cpu_limit_cores",
            "Container CPU limit (cpu.max); absent when unlimited."
        );
        let periods = fam!(
            counter,
            "outrider_container_cpu_periods",
            "CFS enforcement periods elapsed."
        );
        let throttled = fam!(
            counter,
            "outrider_container_cpu_throttled_periods",
            "CFS periods in which the container was throttled."
        );
        let throttled_s = fam!(
            counter,
            "outrider_container_cpu_throttled_seconds",
            "Time the container was throttled."
        );
        let ooms = fam!(
            counter,
            "outrider_container_oom_kills",
            "Processes of the container killed by the OOM killer."
        );
        let psi = fam!(
            counter,
            "outrider_container_pressure_seconds",
            "Pressure stall time (PSI) by resource and kind."
        );
        let req_cpu = fam!(
            gauge,
            "outrider_target_cpu_request_cores",
            "CPU request the app is judged against."
        );
        let lim_cpu = fam!(
            gauge,
            "outrider_target_cpu_limit_cores",
            "CPU limit the app is judged against."
        );
        let req_mem = fam!(
            gauge,
            "outrider_target_memory_request_bytes",
            "Memory request the app is judged against."
        );
        let lim_mem = fam!(
            gauge,
            "outrider_target_memory_limit_bytes",
            "Memory limit the app is judged against."
        );

        let growth_mem = fam!(
            gauge,
            "outrider_memory_growth_bytes_per_second",
            "Robust trend of memory (RSS floors) over the leak window."
        );
        let growth_fd = fam!(
            gauge,
            "outrider_fd_growth_per_second",
            "Robust trend of open fds over the leak window."
        );
        let growth_thr = fam!(
            gauge,
            "outrider_thread_growth_per_second",
            "Robust trend of threads over the leak window."
        );
        let leak = fam!(
            gauge,
            "outrider_leak_suspected",
            "1 when steady growth of the resource looks like a leak."
        );
        let ttl = fam!(
            gauge,
            "outrider_time_to_limit_seconds",
            "Seconds until the limit at the current trend; absent without a limit or growth."
        );
        let usage = fam!(
            gauge,
            "outrider_cpu_usage_cores",
            "CPU usage percentiles over the sizing window (decaying histogram), and the maximum."
        );
        let rec_cpu = fam!(
            gauge,
            "outrider_recommended_cpu_request_cores",
            "Recommended CPU request: p90 usage times the request factor, with a floor."
        );
        let rec_mem = fam!(
            gauge,
            "outrider_recommended_memory_request_bytes",
            "Recommended memory request: peak times the request factor, with a floor."
        );
        let rec_lim = fam!(
            gauge,
            "outrider_recommended_memory_limit_bytes",
            "Recommended memory limit: peak times the limit factor."
        );
        let alloc = fam!(
            gauge,
            "outrider_allocation",
            "Allocation verdict per resource: exactly one state is 1."
        );

        for t in &snap.targets {
            let l = || vec![("target", t.name.as_str())];
            if let Some(v) = &t.verdicts {
                let res = |r: &'static str| vec![("target", t.name.as_str()), ("resource", r)];
                fams[growth_mem].add_opt(res("rss"), v.memory_leak.growth_per_second);
                fams[growth_fd].add_opt(l(), v.fd_leak.growth_per_second);
                fams[growth_thr].add_opt(l(), v.thread_leak.growth_per_second);
                for (r, lk) in [
                    ("memory", &v.memory_leak),
                    ("fds", &v.fd_leak),
                    ("threads", &v.thread_leak),
                    ("connections", &v.connection_leak),
                ] {
                    fams[leak].add(res(r), Num::U(lk.suspected as u64));
                }
                fams[ttl].add_opt(res("memory"), v.memory_leak.time_to_limit_seconds);
                fams[ttl].add_opt(res("fds"), v.fd_leak.time_to_limit_seconds);
                let c = &v.sizing.cpu;
                // `percentile`, not `quantile`: that label is reserved for summaries.
                for (q, val) in [
                    ("50", c.p50_cores),
                    ("90", c.p90_cores),
                    ("95", c.p95_cores),
                    ("99", c.p99_cores),
                    ("max", c.max_cores),
                ] {
                    fams[usage].add_opt(vec![("target", t.name.as_str()), ("percentile", q)], val);
                }
                fams[rec_cpu].add_opt(l(), c.recommended_request_cores);
                let m = &v.sizing.memory;
                fams[rec_mem].add_opt(l(), m.recommended_request_bytes);
                fams[rec_lim].add_opt(l(), m.recommended_limit_bytes);
                for (r, state) in [("cpu", c.allocation.0), ("memory", m.allocation.0)] {
                    for s in crate::analysis::sizing::AllocationVerdict::ALL {
                        fams[alloc].add(
                            vec![
                                ("target", t.name.as_str()),
                                ("resource", r),
                                ("state", s.as_str()),
                            ],
                            Num::U((s == state) as u64),
                        );
                    }
                }
            }
            let with = |k: &'static str, v: &'static str| vec![("target", t.name.as_str()), (k, v)];
            let c = &t.counters;
            fams[up].add(l(), Num::U(t.up as u64));
            fams[procs].add(l(), Num::U(t.processes));
            fams[restarts].add(l(), Num::U(t.restarts));
            fams[start].add_opt(l(), t.start_time_seconds);
            fams[cpu].add(with("mode", "user"), Num::F(c.cpu_user_seconds));
            fams[cpu].add(with("mode", "system"), Num::F(c.cpu_system_seconds));
            fams[wait].add(l(), Num::F(c.cpu_wait_seconds));
            fams[rss].add(l(), Num::U(t.resident_memory_bytes));
            fams[swap].add(l(), Num::U(t.swap_bytes));
            fams[vsize].add(l(), Num::U(t.virtual_memory_bytes));
            fams[fds].add(l(), Num::U(t.open_fds));
            fams[max_fds].add_opt(l(), t.max_fds);
            fams[threads].add(l(), Num::U(t.threads));
            fams[io_r].add(l(), Num::U(c.io_read_bytes));
            fams[io_w].add(l(), Num::U(c.io_write_bytes));
            fams[ctx].add(
                with("kind", "voluntary"),
                Num::U(c.voluntary_context_switches),
            );
            fams[ctx].add(
                with("kind", "involuntary"),
                Num::U(c.involuntary_context_switches),
            );
            fams[cg_ok].add(l(), Num::U(t.cgroup.is_some() as u64));
            if let Some(cg) = &t.cgroup {
                fams[ws].add_opt(l(), cg.memory_working_set_bytes);
                fams[mem_cur].add_opt(l(), cg.memory_current_bytes);
                fams[mem_lim].add_opt(l(), cg.memory_limit_bytes);
                fams[cpu_lim].add_opt(l(), cg.cpu_limit_cores);
                fams[periods].add_opt(l(), cg.cpu_periods);
                fams[throttled].add_opt(l(), cg.cpu_throttled_periods);
                fams[throttled_s].add_opt(l(), cg.cpu_throttled_seconds);
                fams[ooms].add_opt(l(), cg.oom_kills);
                for (resource, kind, secs) in &cg.pressure {
                    fams[psi].add(
                        vec![
                            ("target", t.name.as_str()),
                            ("resource", resource),
                            ("kind", kind),
                        ],
                        Num::F(*secs),
                    );
                }
            }
            let a = &t.allocation;
            fams[req_cpu].add_opt(l(), a.cpu_request_cores.map(|v| v.0));
            fams[lim_cpu].add_opt(l(), a.cpu_limit_cores.map(|v| v.0));
            fams[req_mem].add_opt(l(), a.memory_request_bytes.map(|v| v.0));
            fams[lim_mem].add_opt(l(), a.memory_limit_bytes.map(|v| v.0));
        }

        capacity::families(&snap, &mut fams);

        logs::families(&snap, self.shared.streams(), &mut fams);
        let receivers = self.shared.receivers();
        alerts::families(&snap, &receivers, &mut fams);

        let build = fam!(
            gauge,
            "outrider_build_info",
            "Always 1; the version is a label."
        );
        fams[build].add(vec![("version", env!("CARGO_PKG_VERSION"))], Num::U(1));
        let ready = fam!(
            gauge,
            "outrider_sample_duration_seconds",
            "Time the last sampling pass took."
        );
        if snap.taken_at_unix > 0.0 {
            fams[ready].add(vec![], Num::F(snap.sample_duration_seconds));
        }
        let errs = fam!(counter, "outrider_read_errors", "Reads of /proc, cgroup or downward API files that failed (not counting vanished processes), by source.");
        for (source, n) in &snap.read_errors {
            fams[errs].add(vec![("source", source)], Num::U(*n));
        }
        connections::families(&mut fams, &snap);
        own_process(&mut fams);

        for f in &fams {
            f.encode(&mut enc)?;
        }
        logs::request_durations(&mut enc, self.shared.streams())
    }
}

/// Outrider's own `process_*` metrics, read at scrape time as client libraries do.
fn own_process(fams: &mut Vec<Family<'_>>) {
    let Ok(me) = procfs::process::Process::myself() else {
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

#[cfg(test)]
mod tests;
