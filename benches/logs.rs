//! Log pipeline throughput: framing (auto-detected) + classification + event grouping.
//!
//! `cargo bench --bench logs`. The input is `scripts/gen_log.py 32M` (fixed seed: text,
//! JSON, logfmt and access lines, ~2% errors with Python, Java, Go and Rust traces).
//! Before timing, one scan is checked against the counts the generator reports, so
//! the figure is for a pipeline that gets this log right.

use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outrider::logs::classify::Classifier;
use outrider::logs::scan::scan;

const SIZE: &str = "32M";

/// The generated log and the generator's own count of what it wrote.
fn generated_log() -> (Vec<u8>, serde_json::Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen_log.py");
    let out = Command::new("python3")
        .args([script, SIZE])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs scripts/gen_log.py");
    assert!(out.status.success(), "gen_log.py failed: {:?}", out.status);
    let truth = serde_json::from_slice(&out.stderr).expect("gen_log.py summary on stderr");
    (out.stdout, truth)
}

fn bench(c: &mut Criterion) {
    let (log, truth) = generated_log();
    let classifier = Classifier::default();

    let mut counts = serde_json::to_value(scan(&log[..], &classifier).unwrap()).unwrap();
    counts.as_object_mut().unwrap().remove("seconds");
    assert_eq!(counts, truth, "scan disagrees with the generator");

    let mut group = c.benchmark_group("logs");
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("scan_32MiB", |b| {
        b.iter(|| scan(&log[..], &classifier).unwrap())
    });
    // Classification alone, over lines split in advance: its share of the scan.
    let lines: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    group.bench_function("classify_32MiB", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| classifier.classify(l).http.is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
