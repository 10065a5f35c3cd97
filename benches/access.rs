//! Access-log parse rate: framing + classification + request durations into the
//! histograms, over access lines only (the worst case: every line is a request).
//!
//! `cargo bench --bench access`. The input is built here (fixed, about 16 MiB): one
//! line in five each of nginx `rt=… uct=… uht=… urt=…`, combined + gunicorn
//! `%(L)s`, Apache `%D`, JSON `duration_ms`, and uvicorn (no duration). Before
//! timing, one scan is checked: every line is an HTTP line and four in five have a
//! duration.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outrider::logs::classify::Classifier;
use outrider::logs::scan::scan;

const LINES: usize = 100_000;

fn access_log() -> Vec<u8> {
    let mut out = String::with_capacity(LINES * 170);
    for i in 0..LINES {
        let ms = 5 + (i * 7919) % 400;
        let status = [200, 200, 200, 301, 404, 500][i % 6];
        let line = match i % 5 {
            0 => format!(
                r#"203.0.113.{} - - [10/Oct/2023:13:55:36 +0000] "GET /api/items/{i} HTTP/1.1" {status} {} "-" "Mozilla/5.0 (X11; Linux x86_64)" rt=0.{ms:03} uct="0.000" uht="0.{ms:03}" urt="0.{ms:03}""#,
                i % 250,
                i % 9000
            ),
            1 => format!(
                r#"127.0.0.1 - - [07/Dec/2020:02:36:29 +0100] "GET /spec/{i} HTTP/1.1" {status} 104065 "http://localhost:9000/api/docs" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)" 0.{ms:03}123"#
            ),
            2 => format!(
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?{i} HTTP/1.0" {status} 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)" {}"#,
                ms * 1000 + 17
            ),
            3 => format!(
                r#"{{"time":"2024-01-01T00:00:{:02}Z","level":"info","method":"GET","path":"/v1/orders/{i}","status":{status},"bytes":512,"duration_ms":{ms}.25}}"#,
                i % 60
            ),
            _ => format!(
                r#"INFO:     127.0.0.1:{} - "GET /items/{i} HTTP/1.1" {status} OK"#,
                40000 + i % 20000
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let log = access_log();
    let classifier = Classifier::default();

    let counts = scan(&log[..], &classifier).unwrap();
    let http = counts.http.success
        + counts.http.redirection
        + counts.http.client_error
        + counts.http.server_error;
    assert_eq!(http, LINES as u64, "every line is an access line");
    assert_eq!(
        counts.latency.fine.count(),
        (LINES - LINES / 5) as u64,
        "four in five lines carry a duration"
    );

    let mut bytes = c.benchmark_group("access_bytes");
    bytes.throughput(Throughput::Bytes(log.len() as u64));
    bytes.sample_size(20);
    bytes.measurement_time(Duration::from_secs(10));
    bytes.bench_function("scan", |b| b.iter(|| scan(&log[..], &classifier).unwrap()));
    bytes.finish();

    // The same work per line: classification and the duration, no framing.
    let lines: Vec<&[u8]> = log
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut per_line = c.benchmark_group("access_lines");
    per_line.throughput(Throughput::Elements(lines.len() as u64));
    per_line.sample_size(20);
    per_line.measurement_time(Duration::from_secs(10));
    per_line.bench_function("classify_and_duration", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter_map(|l| classifier.request(l, classifier.classify(l).http))
                .count()
        })
    });
    // Classification alone: what reading the duration adds is the difference.
    per_line.bench_function("classify_only", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| classifier.classify(l).http.is_some())
                .count()
        })
    });
    per_line.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
