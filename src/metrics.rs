//! Every metric family Outrider exposes, in one place: the contract of DESIGN.md and
//! the README's metrics reference.
//!
//! The sampler publishes a [`Snapshot`](crate::state::Snapshot); a prometheus-client [`Collector`] renders it
//! on each scrape, so a value that became unknown disappears instead of going stale,
//! and the tick never touches the registry. prometheus-client writes OpenMetrics;
//! [`to_prometheus_text`] turns that into the classic text format (0.0.4) that
//! scrapers get unless they ask for OpenMetrics or protobuf.
//!
//! # Layout
//! - this file: the formats, the family builder, and the order of the families
//! - [`target`] — the process group: liveness, CPU, memory, fds, threads, I/O, and
//!   the requests and limits the app is judged against
//! - [`container`] — the cgroup: memory, CPU limit and throttling, OOM kills, PSI
//! - [`verdicts`] — growth and leaks, time to limit, usage percentiles, the
//!   recommendations and the allocation verdict
//! - [`cost`] — what the allocation costs per hour, efficiency, the autoscaling and
//!   scale-to-zero verdicts
//! - [`capacity`] — workers, PSS, the worker hint, requests per CPU-second
//! - [`requests`] — where a request's time goes, the start-up
//! - [`logs`] — per-stream counters, error and request rates, the duration histogram
//! - [`alerts`] — active alerts and notification delivery
//! - [`actions`] — what was done before the kill, by result
//! - [`own`] — build info, the sampling pass, failed reads, Outrider's `process_*`
//! - [`connections`] — TCP sockets by state and service, scans
//! - [`protobuf`] — the protobuf exposition and the native histogram's spans

use std::fmt::{self, Write};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::state::Shared;

mod actions;
mod alerts;
mod capacity;
mod connections;
mod container;
mod cost;
mod logs;
mod own;
mod protobuf;
mod requests;
mod target;
mod verdicts;

pub use own::ServerStats;

/// Which exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    Prometheus,
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages, with the
    /// request durations' native histogram.
    Protobuf,
}

/// Media ranges of an Accept header looked at; the head is bounded anyway
/// (`http::MAX_HEAD_BYTES`), this bounds the work on a pathological one.
const MAX_MEDIA_RANGES: usize = 32;

impl Exposition {
    /// The format the Accept header prefers (highest `q`, the first on a tie) among
    /// those it names: protobuf, OpenMetrics, text; the classic text format when it
    /// names none of them.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        let mut best = (Exposition::Prometheus, 0.0);
        for range in accept.unwrap_or("").split(',').take(MAX_MEDIA_RANGES) {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut proto, mut encoding) = (1.0, None, None);
            for p in parts {
                match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                    Some(("q", v)) => q = v.parse::<f64>().unwrap_or(0.0),
                    Some(("proto", v)) => proto = Some(v),
                    Some(("encoding", v)) => encoding = Some(v),
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/vnd.google.protobuf"
                    if proto == Some("io.prometheus.client.MetricFamily")
                        && encoding == Some("delimited") =>
                {
                    Exposition::Protobuf
                }
                "application/openmetrics-text" => Exposition::OpenMetrics,
                "text/plain" => Exposition::Prometheus,
                _ => continue,
            };
            if q > best.1 {
                best = (format, q);
            }
        }
        best.0
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Protobuf => protobuf::CONTENT_TYPE,
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

    /// One scrape's body in a text format (the classic text for `Protobuf`, whose
    /// body is binary: see [`Metrics::body`]).
    pub fn render(&self, format: Exposition) -> String {
        let mut open = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut open, &self.registry);
        match format {
            Exposition::OpenMetrics => open,
            Exposition::Prometheus | Exposition::Protobuf => to_prometheus_text(&open),
        }
    }

    /// One scrape's body in any format; `Err` says why the protobuf encoder failed.
    pub fn body(&self, format: Exposition) -> Result<Vec<u8>, String> {
        match format {
            Exposition::Protobuf => protobuf::encode(&self.registry),
            text => Ok(self.render(text).into_bytes()),
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

    /// Adds a row labelled `target` for each target `value` has a figure for, in
    /// the targets' order.
    fn per_target<T, V: Into<Opt>>(
        mut self,
        targets: impl IntoIterator<Item = (&'a str, T)>,
        value: impl Fn(T) -> V,
    ) -> Self {
        for (name, t) in targets {
            self.add_opt(vec![("target", name)], value(t));
        }
        self
    }

    /// Adds rows labelled `target` and then `key`: for each target, one per
    /// (label value, figure) that `rows` gives and that has a figure.
    fn per_target_and<T, V: Into<Opt>, R: IntoIterator<Item = (&'static str, V)>>(
        mut self,
        targets: impl IntoIterator<Item = (&'a str, T)>,
        key: &'static str,
        rows: impl Fn(T) -> R,
    ) -> Self {
        for (name, t) in targets {
            for (label, v) in rows(t) {
                self.add_opt(vec![("target", name), (key, label)], v);
            }
        }
        self
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

impl From<Num> for Opt {
    fn from(v: Num) -> Self {
        Opt(Some(v))
    }
}

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
    /// Every family, in the exposition's order (the golden files in `metrics/` fix
    /// it): the target's, the container's, the allocation, the verdicts, capacity,
    /// the app's output, alerts, actions, Outrider's own, connections, `process_*`, and last
    /// the request-duration histogram.
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snap = self.shared.snapshot();
        let streams = self.shared.streams();
        let receivers = self.shared.receivers();
        let verdicts = snap
            .targets
            .iter()
            .filter_map(|t| Some((t.name.as_str(), t.verdicts.as_ref()?)));
        let sampled = (snap.taken_at_unix > 0.0).then_some(snap.sample_duration_seconds);

        let mut fams: Vec<Family> = Vec::with_capacity(80);
        target::families(&snap.targets, &mut fams);
        container::families(&snap.targets, &mut fams);
        target::allocation(&snap.targets, &mut fams);
        verdicts::families(verdicts.clone(), &mut fams);
        cost::families(verdicts.clone(), &mut fams);
        capacity::families(&snap, &mut fams);
        requests::families(verdicts, &mut fams);
        logs::families(snap.logs.as_ref(), streams, &mut fams);
        alerts::families(&snap, &receivers, &mut fams);
        actions::families(&snap.actions, &mut fams);
        own::families(sampled, &snap.read_errors, &mut fams);
        connections::families(&mut fams, &snap);
        own::process(&mut fams);

        for f in &fams {
            f.encode(&mut enc)?;
        }
        logs::request_durations(&mut enc, streams)
    }
}

#[cfg(test)]
mod tests;
