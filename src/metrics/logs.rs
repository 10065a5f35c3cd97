//! The families of the app's output: lines, bytes, events, HTTP classes and tailer
//! health per stream; error rates, request rate and latency percentiles over the
//! windows; and the request-duration histogram. Labels: `stream`, `severity`,
//! `code_class`, `percentile`, all from fixed sets but the configured stream names.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::{Family, Num};
use crate::analysis::LogRates;
use crate::logs::StreamStats;

/// Appends the per-stream counters and the windowed rates (`rates` is `None` before
/// the analysis has any).
pub(super) fn families<'a>(
    rates: Option<&'a LogRates>,
    streams: &'a [Arc<StreamStats>],
    fams: &mut Vec<Family<'a>>,
) {
    fams.extend(per_stream(streams));
    fams.extend(windowed(rates));
}

/// Lines, bytes, events, HTTP classes, oversized lines, rotations and truncations,
/// each stream's totals so far.
fn per_stream(streams: &[Arc<StreamStats>]) -> [Family<'_>; 7] {
    let mut lines = Family::counter(
        "outrider_log_lines",
        "Lines read from the app's output, by stream (a CRI or docker line in pieces counts once).",
    );
    let mut bytes = Family::counter(
        "outrider_log_bytes",
        "Bytes read from the app's output, by stream.",
    );
    let mut events = Family::counter(
        "outrider_log_events",
        "Log events by stream and severity; a multi-line trace is one event.",
    );
    let mut http = Family::counter(
        "outrider_http_responses",
        "HTTP access lines in the app's output, by stream and status class.",
    );
    let mut oversized = Family::counter(
        "outrider_log_oversized_lines",
        "Lines longer than log_options.max_line_bytes, cut there.",
    );
    let mut rotations = Family::counter(
        "outrider_log_rotations",
        "Log file rotations seen (rename, delete and recreate, new file).",
    );
    let mut truncations = Family::counter(
        "outrider_log_truncations",
        "Log file truncations seen (copytruncate).",
    );
    for s in streams {
        let c = s.counts();
        let st = || [("stream", s.name.as_str())];
        lines.add(st(), Num::U(c.lines));
        bytes.add(st(), Num::U(c.bytes));
        for sev in crate::logs::classify::Severity::ALL {
            events.add(
                [("stream", s.name.as_str()), ("severity", sev.as_str())],
                Num::U(c.events.get(sev)),
            );
        }
        for class in crate::logs::classify::StatusClass::ALL {
            http.add(
                [("stream", s.name.as_str()), ("code_class", class.as_str())],
                Num::U(c.http.get(class)),
            );
        }
        oversized.add(st(), Num::U(c.oversized_lines));
        rotations.add(st(), Num::U(s.rotations()));
        truncations.add(st(), Num::U(s.truncations()));
    }
    [
        lines,
        bytes,
        events,
        http,
        oversized,
        rotations,
        truncations,
    ]
}

/// Error rate and ratio, 5xx ratio, request rate and duration percentiles over the
/// analysis windows, all streams together.
fn windowed(rates: Option<&LogRates>) -> [Family<'static>; 5] {
    let mut epm = Family::gauge(
        "outrider_log_errors_per_minute",
        "Error events per minute over analysis.error_window, all streams.",
    );
    let mut eratio = Family::gauge(
        "outrider_log_error_ratio",
        "Error events / all events over analysis.error_window; absent without events.",
    );
    let mut r5xx = Family::gauge(
        "outrider_http_5xx_ratio",
        "5xx / all HTTP access lines over analysis.error_window; absent without access lines.",
    );
    let mut rps = Family::gauge(
        "outrider_http_requests_per_second",
        "HTTP access lines per second over analysis.error_window, all streams.",
    );
    let mut dq = Family::gauge("outrider_http_request_duration_percentile_seconds",
        "Request duration percentiles over analysis.latency_window (within 2%), all streams; absent without durations."
    );
    if let Some(r) = rates {
        epm.add([], Num::F(r.errors_per_minute));
        eratio.add_opt([], r.error_ratio);
        r5xx.add_opt([], r.http_5xx_ratio);
        rps.add([], Num::F(r.requests_per_second));
        if let Some(l) = &r.latency {
            for (q, v) in [
                ("50", l.p50_seconds),
                ("95", l.p95_seconds),
                ("99", l.p99_seconds),
            ] {
                dq.add([("percentile", q)], Num::F(v));
            }
        }
    }
    [epm, eratio, r5xx, rps, dq]
}

/// `outrider_http_request_duration_seconds{code_class}`: every stream's durations
/// summed; all four classes once any duration was read, none before. The classic
/// buckets in every format, the native ones (schema 3) in protobuf too.
pub(super) fn request_durations(
    enc: &mut DescriptorEncoder,
    streams: &[Arc<crate::logs::StreamStats>],
) -> fmt::Result {
    let Some(total) = durations(streams) else {
        return Ok(());
    };
    let mut m = enc.encode_descriptor(DURATIONS, DURATIONS_HELP, None, MetricType::Histogram)?;
    for class in crate::logs::classify::StatusClass::ALL {
        let h = total.class(class);
        let labels = [("code_class", class.as_str())];
        let sparse = super::protobuf::Sparse::of(&h.native);
        m.encode_family(&labels)?
            .encode_histogram_with_native::<prometheus_client::encoding::NoLabelSet>(
                h.sum,
                h.count,
                &total.class_buckets(class),
                None,
                sparse.native(&h.native),
            )?;
    }
    Ok(())
}

/// The same histogram in the text formats (the same in both), as
/// prometheus-client writes it: per class the sum, the count, then the
/// cumulative buckets with `le` first.
pub(super) fn write_request_durations(out: &mut String, streams: &[Arc<crate::logs::StreamStats>]) {
    let Some(total) = durations(streams) else {
        return;
    };
    for (head, tail) in [("# HELP ", DURATIONS_HELP), ("# TYPE ", "histogram")] {
        for part in [head, DURATIONS, " ", tail, "\n"] {
            out.push_str(part);
        }
    }
    for class in crate::logs::classify::StatusClass::ALL {
        let h = total.class(class);
        let labels = [("code_class", class.as_str())];
        for (suffix, v) in [("_sum", Num::F(h.sum)), ("_count", Num::U(h.count))] {
            out.push_str(DURATIONS);
            out.push_str(suffix);
            super::write_labels(out, &labels, None);
            out.push(' ');
            super::write_num(out, v);
            out.push('\n');
        }
        let mut cumulative = 0;
        for (bound, n) in total.class_buckets(class) {
            cumulative += n;
            let mut le = dtoa::Buffer::new();
            let le = if bound == f64::INFINITY {
                "+Inf"
            } else {
                le.format(bound)
            };
            out.push_str(DURATIONS);
            out.push_str("_bucket");
            super::write_labels(out, &labels, Some(("le", le)));
            out.push(' ');
            super::write_num(out, Num::U(cumulative));
            out.push('\n');
        }
    }
}

const DURATIONS: &str = "outrider_http_request_duration_seconds";
const DURATIONS_HELP: &str = "Durations of the requests in the app's access log, by status class.";

/// Every stream's durations summed; `None` before any was read.
fn durations(
    streams: &[Arc<crate::logs::StreamStats>],
) -> Option<crate::logs::latency::LatencyCounts> {
    let mut total = crate::logs::latency::LatencyCounts::default();
    for s in streams {
        total.add(&s.counts().latency);
    }
    (!total.bounds.is_empty()).then_some(total)
}
