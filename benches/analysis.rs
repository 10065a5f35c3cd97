//! One analysis tick for one target with full windows: `cargo bench --bench analysis`.

use criterion::{criterion_group, criterion_main, Criterion};
use outrider::analysis::{AnalysisConfig, Analyzer, Observation};

fn obs(i: u64) -> Observation {
    let t = i as f64 * 5.0;
    Observation {
        t,
        rss_bytes: 2e8 + t * 1e4 + ((i * 7919) % 1000) as f64 * 1e3,
        open_fds: Some(30.0 + (i % 7) as f64),
        max_fds: Some(1024.0),
        threads: Some(8.0),
        cpu_seconds: Some(t * 0.2),
        cpu_wait_seconds: Some(t * 0.01),
        memory_limit_bytes: Some(1e9),
        cpu_request_cores: Some(0.5),
        memory_request_bytes: Some(5e8),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut a = Analyzer::new(&AnalysisConfig::default());
    // Fill a day at 5 s, so every window is full.
    let mut i = 0;
    while i < 17280 {
        a.observe(&obs(i));
        i += 1;
    }
    c.bench_function("analysis_tick_one_target", |b| {
        b.iter(|| {
            i += 1;
            a.observe(&obs(i))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
