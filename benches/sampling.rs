//! One sampling pass over real processes: a group of 1, and a group of 200.
//!
//! `cargo bench --bench sampling`. The pass includes listing all of /proc (as in
//! production), grouping, and reading each member's stat, status, fd count, limits,
//! io and per-thread schedstat.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use outrider::config::{ResourceSpec, Selector, TargetSpec};
use outrider::sample::target::GroupSpec;
use outrider::sample::Sampler;

/// A shell that starts `n - 1` sleeping children and then becomes a sleep itself: a
/// group of `n` processes. (Ending in `wait` raced for `n = 1`: with no children the
/// shell exits at once, and the group of one could vanish before it was seen.)
fn spawn_group(n: usize) -> Child {
    let script = format!(
        "for i in $(seq {}); do sleep 600 & done; exec sleep 600",
        n - 1
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh")
}

fn sampler_for(pid: u32) -> Sampler {
    let spec = GroupSpec::Configured(TargetSpec {
        name: Some("bench".into()),
        selector: Selector::Pid(pid as i32),
        children: true,
    });
    Sampler::new(
        PathBuf::from("/proc"),
        vec![spec],
        ResourceSpec::default(),
        std::process::id() as i32,
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sampling_pass");
    g.measurement_time(Duration::from_secs(5));
    for n in [1usize, 200] {
        let mut group = spawn_group(n);
        let mut sampler = sampler_for(group.id());
        // Wait until every child has started.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let snap = sampler.sample();
            if snap.targets.first().map(|t| t.processes) == Some(n as u64) {
                break;
            }
            assert!(Instant::now() < deadline, "group of {n} never formed");
            std::thread::sleep(Duration::from_millis(20));
        }
        g.bench_function(format!("group_of_{n}"), |b| b.iter(|| sampler.sample()));
        // Kill the children too: they are in the shell's group of processes.
        let _ = Command::new("pkill")
            .args(["-P", &group.id().to_string()])
            .status();
        let _ = group.kill();
        let _ = group.wait();
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
