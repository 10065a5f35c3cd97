//! Every metric family Outrider exposes, in one place: the contract of DESIGN.md and
//! the README's metrics reference.
//!
//! The sampler publishes a [`Snapshot`](crate::state::Snapshot); a prometheus-client [`Collector`] renders it
//! on each scrape, so a value that became unknown disappears instead of going stale,
//! and the tick never touches the registry. prometheus-client writes the protobuf
//! exposition; the two text formats (the classic 0.0.4 that scrapers get unless they
//! ask for another, and OpenMetrics) are written here from the same rows, as
//! prometheus-client would write them (the golden files hold both).
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

use std::fmt;
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
    /// Outrider's collector (and the server's), for the protobuf exposition.
    registry: Registry,
    shared: Arc<Shared>,
    server: Option<Arc<ServerStats>>,
}

impl Metrics {
    pub fn new(shared: Arc<Shared>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector {
            shared: shared.clone(),
        }));
        Metrics {
            registry,
            shared,
            server: None,
        }
    }

    /// One scrape's body in a text format (the classic text for `Protobuf`, whose
    /// body is binary: see [`Metrics::body`]). Written directly from the families'
    /// rows, in one pass: prometheus-client's encoder (kept for protobuf) wrote
    /// OpenMetrics through a `dyn Write` per piece, which then had to be turned
    /// into the classic format line by line.
    pub fn render(&self, format: Exposition) -> String {
        let text = match format {
            Exposition::OpenMetrics => Text::OpenMetrics,
            Exposition::Prometheus | Exposition::Protobuf => Text::Prometheus,
        };
        let mut out = String::with_capacity(16 * 1024);
        with_families(&self.shared, |fams, streams| {
            for f in fams {
                f.write(&mut out, text);
            }
            logs::write_request_durations(&mut out, streams);
        });
        if let Some(server) = &self.server {
            for f in own::server_families(server) {
                f.write(&mut out, text);
            }
        }
        if text == Text::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    /// One scrape's body in any format; `Err` says why the protobuf encoder failed.
    pub fn body(&self, format: Exposition) -> Result<Vec<u8>, String> {
        match format {
            Exposition::Protobuf => protobuf::encode(&self.registry),
            text => Ok(self.render(text).into_bytes()),
        }
    }
}

/// The two text formats: they differ in a counter's name in HELP and TYPE (the
/// classic format names it with `_total`, as its samples) and OpenMetrics' `# EOF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Prometheus,
    OpenMetrics,
}

/// A value as it came: whole numbers stay whole in the output.
#[derive(Debug, Clone, Copy)]
enum Num {
    U(u64),
    F(f64),
}

/// The most labels a row has.
const MAX_LABELS: usize = 3;

/// A row's labels, kept inline: no allocation per row.
#[derive(Debug, Clone, Copy)]
struct Labels<'a> {
    pairs: [(&'static str, &'a str); MAX_LABELS],
    len: usize,
}

impl<'a> Labels<'a> {
    fn as_slice(&self) -> &[(&'static str, &'a str)] {
        &self.pairs[..self.len]
    }
}

impl<'a, const N: usize> From<[(&'static str, &'a str); N]> for Labels<'a> {
    fn from(given: [(&'static str, &'a str); N]) -> Self {
        const { assert!(N <= MAX_LABELS) };
        let mut pairs = [("", ""); MAX_LABELS];
        pairs[..N].copy_from_slice(&given);
        Labels { pairs, len: N }
    }
}

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

    fn add(&mut self, labels: impl Into<Labels<'a>>, v: Num) {
        self.rows.push((labels.into(), v));
    }

    fn add_opt<T: Into<Opt>>(&mut self, labels: impl Into<Labels<'a>>, v: T) {
        if let Some(n) = v.into().0 {
            self.rows.push((labels.into(), n));
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
            self.add_opt([("target", name)], value(t));
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
                self.add_opt([("target", name), (key, label)], v);
            }
        }
        self
    }

    fn encode(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut m = enc.encode_descriptor(self.name, self.help, None, self.kind)?;
        if self.bare() {
            return encode_value(self.kind, self.rows[0].1, m);
        }
        for (labels, v) in &self.rows {
            encode_value(self.kind, *v, m.encode_family(&labels.as_slice())?)?;
        }
        Ok(())
    }

    /// A family of one row without labels: no `{}` after the name.
    fn bare(&self) -> bool {
        matches!(self.rows.as_slice(), [(labels, _)] if labels.len == 0)
    }

    /// The family in a text format, as prometheus-client writes OpenMetrics (and
    /// the classic format names a counter with `_total` in HELP and TYPE too).
    fn write(&self, out: &mut String, text: Text) {
        if self.rows.is_empty() {
            return;
        }
        let counter = matches!(self.kind, MetricType::Counter);
        let sample_suffix = if counter { "_total" } else { "" };
        let head_suffix = if text == Text::Prometheus {
            sample_suffix
        } else {
            ""
        };
        for (head, tail) in [("# HELP ", self.help), ("# TYPE ", self.kind.as_str())] {
            for part in [head, self.name, head_suffix, " ", tail, "\n"] {
                out.push_str(part);
            }
        }
        let bare = self.bare();
        for (labels, v) in &self.rows {
            out.push_str(self.name);
            out.push_str(sample_suffix);
            if !bare {
                write_labels(out, labels.as_slice(), None);
            }
            out.push(' ');
            write_num(out, *v);
            out.push('\n');
        }
    }
}

/// `{k="v",…}`, `first` (a histogram bucket's `le`) before the others; values
/// escaped as the text formats want (backslash, double quote, newline).
fn write_labels(out: &mut String, labels: &[(&str, &str)], first: Option<(&str, &str)>) {
    out.push('{');
    for (i, (k, v)) in first.iter().chain(labels).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        if v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(v);
        }
        out.push('"');
    }
    out.push('}');
}

/// A value as prometheus-client writes it: integers as they are, floats by `dtoa`
/// (its shortest form, `1e20`, `0.0`, `NaN`, `inf`).
fn write_num(out: &mut String, v: Num) {
    match v {
        Num::U(x) => out.push_str(itoa::Buffer::new().format(x)),
        Num::F(x) => out.push_str(dtoa::Buffer::new().format(x)),
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
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        with_families(&self.shared, |fams, streams| {
            for f in fams {
                f.encode(&mut enc)?;
            }
            logs::request_durations(&mut enc, streams)
        })
    }
}

/// Every family, in the exposition's order (the golden files in `metrics/` fix
/// it), handed to `write` with the streams for the request-duration histogram,
/// which comes last: the target's, the container's, the allocation, the verdicts,
/// capacity, the app's output, alerts, actions, Outrider's own, connections and
/// `process_*`.
fn with_families<R>(
    shared: &Shared,
    write: impl FnOnce(&[Family], &[Arc<crate::logs::StreamStats>]) -> R,
) -> R {
    let snap = shared.snapshot();
    let streams = shared.streams();
    let receivers = shared.receivers();
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
    write(&fams, streams)
}

#[cfg(test)]
mod tests;
