//! What the capacity advice costs: finding the pre-fork shape in a group (every
//! tick), and reading PSS from `smaps_rollup` (every `sampling.pss_interval`, 60 s)
//! of a real fork pool whose workers hold 1 MiB and 256 MiB each — the kernel walks
//! every page table entry for it, so the cost grows with the memory mapped.
//!
//! `cargo bench --bench capacity`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use outrider::sample::process::{ProcEntry, ProcReader, ReadErrors};
use outrider::sample::workers::{detect, PssSampler};

const POOL: &str = r#"
import multiprocessing as mp, sys, time
def init(mib):
    global held
    held = b"x" * (mib << 20)
def ready(_):
    return len(held)
if __name__ == "__main__":
    n, mib = int(sys.argv[1]), int(sys.argv[2])
    pool = mp.get_context("fork").Pool(n, initializer=init, initargs=(mib,))
    pool.map(ready, range(n * 4))
    print("ready", flush=True)
    sys.stdin.read()
    pool.terminate()
"#;

fn entry(pid: i32, ppid: i32, comm: &str) -> ProcEntry {
    ProcEntry {
        pid,
        ppid,
        start_ticks: pid as u64,
        comm: comm.into(),
        kernel_thread: false,
        zombie: false,
        user_ticks: 0,
        system_ticks: 0,
        rss_pages: 0,
        vsize_bytes: 0,
        threads: 1,
    }
}

/// A fork pool of `n` workers holding `mib` MiB each; ends when stdin closes.
fn spawn_pool(n: usize, mib: usize) -> Child {
    let mut child = Command::new("python3")
        .args(["-c", POOL, &n.to_string(), &mib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

fn members_of(master: u32) -> Vec<ProcEntry> {
    let kids = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap();
    let mut reader = ProcReader::new(Path::new("/proc"));
    std::iter::once(master as i32)
        .chain(kids.split_whitespace().map(|p| p.parse().unwrap()))
        .map(|pid| reader.read_entry(pid).unwrap())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("capacity");
    g.measurement_time(Duration::from_secs(5));

    // A master with 199 workers plus a shell with a helper: the shape every tick.
    let mut list = vec![
        entry(1, 0, "gunicorn"),
        entry(500, 0, "sh"),
        entry(501, 500, "cat"),
    ];
    list.extend((2..201).map(|p| entry(p, 1, "gunicorn")));
    let members: Vec<&ProcEntry> = list.iter().collect();
    g.bench_function("detect_group_of_202", |b| b.iter(|| detect(&members)));

    for mib in [1usize, 256] {
        let mut pool = spawn_pool(4, mib);
        let list = members_of(pool.id());
        let members: Vec<&ProcEntry> = list.iter().collect();
        // Interval zero: every call reads the master's and 4 workers' smaps_rollup.
        let mut pss = PssSampler::new(Path::new("/proc"), Some(Duration::ZERO));
        let mut errors = ReadErrors::default();
        g.bench_function(format!("pss_read_master_and_4_workers_of_{mib}MiB"), |b| {
            b.iter(|| pss.observe("bench", &members, 4096, &mut errors))
        });
        drop(pool.stdin.take());
        let _ = pool.wait();
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
