//! The HTTP server: `/metrics`, `/healthz`, `/readyz`, `/api/v1/status`, `/`.
//! It only reads what the tick published.
//!
//! # Layout
//! - this file — [`App`] and the handlers
//! - [`accept`] — the accept loop and its bounds (header timeout, request size,
//!   connection limit, fd reserve, throttled logging); docs/security.md lists them

use std::fmt::Write;
use std::sync::Arc;

use crate::analysis::TargetStatus;
use crate::metrics::{Exposition, Metrics, ServerStats};
use crate::state::Shared;
use crate::words;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

/// What request handlers need.
#[derive(Debug)]
pub struct App {
    pub shared: Arc<Shared>,
    pub metrics: Metrics,
    /// Connection counts, and the limit `serve` keeps to.
    pub server: Arc<ServerStats>,
}

mod accept;

pub use accept::{connection_limit, raise_fd_limit, serve, HEADER_TIMEOUT, MAX_HEAD_BYTES};

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

pub fn handle(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    match req.uri().path() {
        "/metrics" => scrape(app, req.headers().get(ACCEPT).and_then(|v| v.to_str().ok())),
        "/healthz" => respond(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" => {
            if app.shared.ready() {
                respond(StatusCode::OK, TEXT, "ready\n")
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "not ready: no complete sample yet\n",
                )
            }
        }
        "/api/v1/status" => {
            let body = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "ready": app.shared.ready(),
                "snapshot": &*app.shared.snapshot(),
                "streams": app.shared.streams().iter().map(|s| serde_json::json!({
                    "name": s.name, "lines": s.lines(), "bytes": s.bytes(),
                })).collect::<Vec<_>>(),
            });
            respond(StatusCode::OK, "application/json", body.to_string())
        }
        "/" => {
            let snap = app.shared.snapshot();
            let page = crate::page::render(&snap, app.shared.ready(), &|t| app.shared.history(t));
            respond(StatusCode::OK, "text/html; charset=utf-8", page)
        }
        "/summary.txt" => respond(StatusCode::OK, TEXT, summary(&app.shared)),
        _ => respond(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found; try /, /summary.txt, /metrics, /api/v1/status, /healthz, /readyz\n",
        ),
    }
}

/// `/metrics` in the format the Accept header prefers.
fn scrape(app: &App, accept: Option<&str>) -> Response<Full<Bytes>> {
    let format = Exposition::from_accept(accept);
    match app.metrics.body(format) {
        Ok(body) => respond(StatusCode::OK, format.content_type(), body),
        Err(e) => {
            tracing::warn!(error = %e, "encoding the protobuf scrape failed");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                "encoding the metrics failed\n",
            )
        }
    }
}

/// A plain-text overview for a human with curl.
fn summary(shared: &Shared) -> String {
    let snap = shared.snapshot();
    let mut s = format!("Outrider {}\n\n", env!("CARGO_PKG_VERSION"));
    if !shared.ready() {
        s.push_str("No complete sample yet.\n");
    }
    // First: a failing log must not pass for a quiet app (as on the status page).
    for f in &snap.log_read_failures {
        let _ = writeln!(s, "{}", words::log_unreadable(&f.stream, &f.path, &f.error));
    }
    // Then what is pending or firing, as the status page lists it.
    if !snap.alerts.is_empty() {
        s.push_str("Alerts:\n");
        for a in crate::alerts::in_order(&snap.alerts) {
            let _ = writeln!(s, "  {}", a.line());
        }
        s.push('\n');
    }
    for t in &snap.targets {
        summary_target(&mut s, t);
    }
    if let Some(line) = snap.logs.as_ref().and_then(words::requests) {
        let _ = writeln!(s, "requests: {line}");
    }
    for st in shared.streams() {
        let _ = writeln!(
            s,
            "stream {}: {}, {} bytes",
            st.name,
            words::count(st.lines(), "line"),
            st.bytes()
        );
    }
    s.push_str("\nEndpoints: / (status page) /metrics /api/v1/status /healthz /readyz\n");
    s
}

/// One target's part of `/summary.txt`.
fn summary_target(s: &mut String, t: &TargetStatus) {
    let c = &t.counters;
    let _ = writeln!(
        s,
        "target {}: {} ({})\n  cpu {:.2}s user {:.2}s system, {:.2}s waiting for a CPU",
        t.name,
        if t.up { "up" } else { "DOWN" },
        words::usage(t).join(", "),
        c.cpu_user_seconds,
        c.cpu_system_seconds,
        c.cpu_wait_seconds,
    );
    if let Some(c) = &t.connections {
        let _ = writeln!(
            s,
            "  tcp: {} established, {} close_wait, {} time_wait, {} listening, {} other",
            c.established, c.close_wait, c.time_wait, c.listen, c.other
        );
    }
    if let Some(v) = &t.verdicts {
        for line in words::verdicts(v) {
            let _ = writeln!(s, "  {}", line.text);
        }
        if let Some(yaml) = &v.resources_yaml {
            // Labelled as the report labels it: under the last verdict line it
            // read as part of that line.
            s.push_str("  recommended:\n");
            for line in yaml.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    for line in words::capacity(t.workers.as_ref(), t.capacity.as_ref()) {
        let _ = writeln!(s, "  {line}");
    }
    match (&t.cgroup, &t.cgroup_unreachable) {
        (Some(cg), _) => {
            let _ = writeln!(s, "  {}", words::container(cg));
        }
        (None, Some(why)) => {
            let _ = writeln!(s, "  container: not readable ({why})");
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Snapshot;

    fn alert(name: &'static str, fired: bool, summary: &str) -> crate::alerts::Alert {
        crate::alerts::Alert {
            alertname: name,
            target: "web".into(),
            state: crate::alerts::AlertState::Firing,
            labels: [("severity".to_string(), "critical".to_string())]
                .into_iter()
                .collect(),
            annotations: [("summary".to_string(), summary.to_string())]
                .into_iter()
                .collect(),
            active_since: 1.8e9,
            fired_at: fired.then_some(1.8e9),
            ends_at: None,
        }
    }

    /// The summary lists what is pending or firing, firing first, as the status
    /// page does (it listed none: an OOM kill showed on the page alone).
    #[test]
    fn the_summary_lists_the_alerts_firing_first() {
        let shared = Shared::new(Vec::new());
        shared.publish(Snapshot {
            alerts: vec![
                alert("MemoryNearLimit", false, "web is near its memory limit"),
                alert("OOMKilled", true, "web was OOM-killed"),
            ],
            ..Default::default()
        });
        let s = summary(&shared);
        assert!(
            s.contains(
                "Alerts:\n  OOMKilled (firing, critical): web was OOM-killed\n  \
                 MemoryNearLimit (pending, critical): web is near its memory limit\n"
            ),
            "{s}"
        );
        shared.publish(Snapshot::default());
        assert!(!summary(&shared).contains("Alerts:"));
    }

    /// The resources block is labelled, as in `outrider report`: printed under
    /// the last verdict line, it read as part of that line.
    #[test]
    fn the_summary_labels_the_recommended_block() {
        let t = TargetStatus {
            sample: Default::default(),
            verdicts: Some(crate::analysis::Verdicts {
                resources_yaml: Some("resources:\n  requests:\n    cpu: 10m\n".into()),
                ..Default::default()
            }),
            capacity: None,
        };
        let mut s = String::new();
        summary_target(&mut s, &t);
        assert!(
            s.contains("\n  recommended:\n    resources:\n      requests:\n        cpu: 10m\n"),
            "{s}"
        );
    }
}
