//! The status page at `/`: one self-contained HTML document, no scripts, no external
//! assets. Charts are inline SVG drawn here from the bounded history; the page
//! reloads itself every few seconds. Readable on a phone and in dark mode.

use std::fmt::Write;

use crate::analysis::TargetStatus;
use crate::history::Point;
use crate::state::Snapshot;
use crate::words;

const MIB: f64 = 1048576.0;

/// Renders the page; `points` gives each target's history.
pub fn render(snap: &Snapshot, ready: bool, points: &dyn Fn(&str) -> Vec<Point>) -> String {
    let mut h = String::with_capacity(32 * 1024);
    h.push_str(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<meta http-equiv=\"refresh\" content=\"5\">",
        "<title>Outrider</title><style>",
        ":root{--bg:#fff;--fg:#1b1f24;--muted:#5b6470;--card:#f5f7fa;--line:#2f6fdb;--req:#8a6d00;--lim:#c62828;--rec:#2e7d32;--warn:#b3261e}",
        "@media (prefers-color-scheme: dark){:root{--bg:#111418;--fg:#e6e9ee;--muted:#9aa4b1;--card:#1c2128;--line:#6ea2ff;--req:#e0b84f;--lim:#ff6b6b;--rec:#6fcf73;--warn:#ff8a80}}",
        "body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif}",
        "main{max-width:1100px;margin:0 auto;padding:16px}",
        "h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}",
        ".muted{color:var(--muted)}.bad{color:var(--warn);font-weight:600}",
        ".target{background:var(--card);border-radius:10px;padding:14px;margin:14px 0}",
        ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{flex:1 1 240px;min-width:0}",
        ".chart svg{width:100%;height:70px;display:block}.chart .label{font-size:13px}",
        "ul{margin:6px 0;padding-left:20px}",
        "pre{background:var(--bg);padding:8px;border-radius:6px;overflow-x:auto;user-select:all}",
        ".key span{display:inline-block;margin-right:10px;font-size:12px}",
        "</style></head><body><main>"
    ));
    let _ = write!(
        h,
        "<h1>Outrider</h1><p class=\"muted\">version {} · {} · the page reloads every 5 s</p>",
        env!("CARGO_PKG_VERSION"),
        if ready {
            "sampling"
        } else {
            "no complete sample yet"
        }
    );
    alerts(&mut h, snap);
    for f in &snap.log_read_failures {
        let line = words::log_unreadable(&f.stream, &f.path, &f.error);
        let _ = write!(h, "<p class=\"bad\">{}</p>", esc(&line));
    }
    if let Some(line) = snap.logs.as_ref().and_then(words::requests) {
        let _ = write!(h, "<p class=\"requests\">Requests: {}</p>", esc(&line));
    }
    if snap.targets.is_empty() {
        h.push_str("<p>No target seen yet.</p>");
    }
    for t in &snap.targets {
        target(&mut h, t, &points(&t.name));
    }
    h.push_str("<p class=\"muted\">Endpoints: <a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/status\">/api/v1/status</a></p></main></body></html>\n");
    h
}

/// Pending and firing alerts, firing first, with their summaries.
fn alerts(h: &mut String, snap: &Snapshot) {
    if snap.alerts.is_empty() {
        h.push_str("<p class=\"muted alerts\">No alert is pending or firing.</p>");
        return;
    }
    h.push_str("<section class=\"target alerts\"><h2>Alerts</h2><ul>");
    for a in crate::alerts::in_order(&snap.alerts) {
        let firing = a.fired_at.is_some();
        let summary = a
            .annotations
            .get("summary")
            .map(String::as_str)
            .unwrap_or("");
        let severity = a.labels.get("severity").map(String::as_str).unwrap_or("");
        let _ = write!(
            h,
            "<li{}><strong>{}</strong> ({}, {}) {}</li>",
            if firing { " class=\"bad\"" } else { "" },
            esc(a.alertname),
            if firing { "firing" } else { "pending" },
            esc(severity),
            esc(summary)
        );
    }
    h.push_str("</ul></section>");
}

fn target(h: &mut String, t: &TargetStatus, pts: &[Point]) {
    let _ = write!(
        h,
        "<section class=\"target\"><h2>{} <span class=\"{}\">{}</span></h2><p class=\"muted\">{}</p>",
        esc(&t.name),
        if t.up { "muted" } else { "bad" },
        if t.up { "up" } else { "DOWN" },
        esc(&words::usage(t).join(" · "))
    );
    if let Some(c) = &t.connections {
        let _ = write!(
            h,
            "<p class=\"muted tcp\">TCP: {} established · {} close_wait · {} time_wait · {} listening</p>",
            c.established, c.close_wait, c.time_wait, c.listen
        );
    }
    h.push_str("<ul class=\"verdicts\">");
    match &t.verdicts {
        None => h.push_str("<li>No verdict yet.</li>"),
        Some(v) => {
            for line in words::verdicts(v) {
                let class = if line.attention { " class=\"bad\"" } else { "" };
                let _ = write!(h, "<li{class}>{}</li>", esc(&line.text));
            }
        }
    }
    for line in words::capacity(t.workers.as_ref(), t.capacity.as_ref()) {
        let _ = write!(h, "<li>{}</li>", esc(&line));
    }
    h.push_str("</ul>");
    charts(h, t, pts);
    if let Some(yaml) = t.verdicts.as_ref().and_then(|v| v.resources_yaml.as_ref()) {
        let _ = write!(
            h,
            "<p>Recommended resources (select and copy):</p><pre>{}</pre>",
            esc(yaml)
        );
    }
    h.push_str("</section>");
}

/// CPU, memory, open fds and log lines over time, with the allocation, the
/// recommendation and the trends drawn in.
fn charts(h: &mut String, t: &TargetStatus, pts: &[Point]) {
    h.push_str("<div class=\"charts\">");
    let a = &t.allocation;
    let rec_cpu = t
        .verdicts
        .as_ref()
        .and_then(|v| v.sizing.cpu.recommended_request_cores);
    chart(
        h,
        "CPU (cores)",
        pts,
        |p| p.cpu_cores,
        &[
            ("request", "var(--req)", a.cpu_request_cores.map(|v| v.0)),
            ("limit", "var(--lim)", a.cpu_limit_cores.map(|v| v.0)),
            ("recommended", "var(--rec)", rec_cpu),
        ],
        None,
    );
    let mem_trend = t
        .verdicts
        .as_ref()
        .and_then(|v| v.memory_leak.growth_per_second);
    chart(
        h,
        "Memory (MiB)",
        pts,
        |p| p.rss_bytes / MIB,
        &[(
            "limit",
            "var(--lim)",
            a.memory_limit_bytes.map(|v| v.0 as f64 / MIB),
        )],
        mem_trend.map(|r| r / MIB),
    );
    let fd_trend = t
        .verdicts
        .as_ref()
        .and_then(|v| v.fd_leak.growth_per_second);
    chart(h, "Open fds", pts, |p| p.open_fds, &[], fd_trend);
    chart(
        h,
        "Log lines per minute",
        pts,
        |p| p.log_lines_per_minute,
        &[],
        None,
    );
    h.push_str("</div>");
}

/// A chart's width in SVG units (its height is 70).
const CHART_WIDTH: f64 = 300.0;

/// One sparkline with optional horizontal lines and a trend line (units per second).
fn chart(
    h: &mut String,
    title: &str,
    pts: &[Point],
    value: impl Fn(&Point) -> f64,
    lines: &[(&str, &str, Option<f64>)],
    trend: Option<f64>,
) {
    const W: f64 = CHART_WIDTH;
    const H: f64 = 70.0;
    let vals: Vec<(f64, f64)> = pts.iter().map(|p| (p.t, value(p))).collect();
    let last = vals.last().map(|v| v.1);
    let mut max = vals.iter().map(|v| v.1).fold(0.0, f64::max);
    for (_, _, v) in lines {
        // A line far above the data would flatten the chart: show it only when near.
        if let Some(v) = v.filter(|v| *v <= max * 3.0 || max == 0.0) {
            max = max.max(v);
        }
    }
    let max = if max > 0.0 { max * 1.1 } else { 1.0 };
    let (t0, t1) = match (vals.first(), vals.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (a.0, b.0),
        (Some(a), _) => (a.0 - 1.0, a.0),
        _ => (0.0, 1.0),
    };
    let x = |t: f64| (t - t0) / (t1 - t0) * W;
    let y = |v: f64| H - (v / max).clamp(0.0, 1.0) * (H - 2.0) - 1.0;
    let _ = write!(
        h,
        "<div class=\"chart\"><div class=\"label\">{} <span class=\"muted\">{}</span></div><svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        last.map(|v| format!("now {}", short(v))).unwrap_or_else(|| "no data yet".into()),
        esc(title)
    );
    if !vals.is_empty() {
        let _ = write!(
            h,
            "<path class=\"series\" d=\"{}\" fill=\"none\" stroke=\"var(--line)\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\"/>",
            series_path(&vals, x, y)
        );
    }
    let drawn = |v: &f64| *v * 1.1 <= max;
    for (name, color, v) in lines {
        if let Some(v) = v.filter(drawn) {
            let _ = write!(
                h,
                "<path class=\"{name}\" d=\"M0,{yy:.1} L{W},{yy:.1}\" stroke=\"{color}\" stroke-dasharray=\"4 3\" vector-effect=\"non-scaling-stroke\"/>",
                yy = y(v)
            );
        }
    }
    if let (Some(rate), Some(&(tl, vl))) = (trend, vals.last()) {
        let v0 = vl - rate * (tl - t0);
        let _ = write!(
            h,
            "<path class=\"trend\" d=\"M0,{:.1} L{W},{:.1}\" stroke=\"var(--muted)\" stroke-dasharray=\"2 2\" vector-effect=\"non-scaling-stroke\"/>",
            y(v0),
            y(vl)
        );
    }
    h.push_str("</svg>");
    chart_key(h, lines, max, trend.is_some());
}

/// The SVG path of a chart's series: one point draws a level line across it.
fn series_path(vals: &[(f64, f64)], x: impl Fn(f64) -> f64, y: impl Fn(f64) -> f64) -> String {
    const W: f64 = CHART_WIDTH;
    let mut d = String::new();
    if let [(_, v)] = vals {
        let _ = write!(d, "M0.0,{:.1} L{W:.1},{:.1}", y(*v), y(*v));
    } else {
        for (i, (t, v)) in vals.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                x(*t),
                y(*v)
            );
        }
    }
    d.trim_end().to_string()
}

/// The key under a chart: each line's name and value (a line too far above the
/// data to draw, `max` being the chart's top, says so), and the trend's style.
fn chart_key(h: &mut String, lines: &[(&str, &str, Option<f64>)], max: f64, trend: bool) {
    h.push_str("<div class=\"key\">");
    for (name, color, v) in lines {
        if let Some(v) = v {
            let off = if *v * 1.1 <= max {
                ""
            } else {
                " (above the chart)"
            };
            let _ = write!(
                h,
                "<span style=\"color:{color}\">{name} {}{off}</span>",
                short(*v)
            );
        }
    }
    if trend {
        h.push_str("<span class=\"muted\">dotted: trend</span>");
    }
    h.push_str("</div></div>");
}

fn short(v: f64) -> String {
    // Counts (fds, lines) are whole: `7`, not `7.0`; `0`, not `0.000`.
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// HTML escaping for text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_draws() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let pts: Vec<Point> = (0..10)
            .map(|i| Point {
                t: i as f64 * 15.0,
                cpu_cores: 0.1 * i as f64,
                rss_bytes: 1e8,
                open_fds: 10.0,
                log_lines_per_minute: 5.0,
            })
            .collect();
        let mut h = String::new();
        chart(
            &mut h,
            "CPU",
            &pts,
            |p| p.cpu_cores,
            &[("limit", "red", Some(1.0))],
            Some(0.001),
        );
        assert!(h.contains("<path class=\"series\" d=\"M0.0,"), "{h}");
        assert!(h.contains("class=\"limit\""), "{h}");
        assert!(h.contains("class=\"trend\""), "{h}");
        assert!(h.contains(">limit 1</span>"), "{h}");
        // Whole figures (a count of fds, no log lines) without decimals.
        assert_eq!(
            [
                short(7.0),
                short(0.0),
                short(2.5),
                short(0.012),
                short(331.4)
            ],
            ["7", "0", "2.5", "0.012", "331"]
        );
        // A request 40x the data is not drawn: its key says so.
        let mut far = String::new();
        chart(
            &mut far,
            "CPU",
            &pts,
            |p| p.cpu_cores,
            &[("request", "blue", Some(40.0))],
            None,
        );
        assert!(!far.contains("class=\"request\""), "{far}");
        assert!(
            far.contains(">request 40 (above the chart)</span>"),
            "{far}"
        );
        let mut empty = String::new();
        chart(&mut empty, "CPU", &[], |p| p.cpu_cores, &[], None);
        assert!(empty.contains("no data yet") && !empty.contains("class=\"series\""));
    }
}
