//! One connection scan of an app with 10,000 TCP sockets.
//!
//! `cargo bench --bench sockets`. Two cases:
//! - `fixture_10k`: a fixture /proc tree (one process, 10,000 `socket:[N]` fd links,
//!   a 10,000-line `net/tcp`): deterministic, the parsing and matching cost plus the
//!   readlinks, without the kernel formatting its TCP table.
//! - `loopback_10k`: this process' own 5,000 loopback connections (both ends here,
//!   10,000 established sockets) scanned through the real /proc, kernel included;
//!   the table also holds whatever else the machine's namespace holds. Skipped when
//!   the soft fd limit is too low for 10,000 sockets.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use outrider::sample::process::ReadErrors;
use outrider::sample::sockets::scan;

const SOCKETS: usize = 10_000;

/// `<root>/1/` with `SOCKETS` fd links and a table listing each (plus a few
/// thousand TIME_WAIT entries on the listener's port).
fn fixture(root: &Path) {
    let dir = root.join("1");
    for sub in ["fd", "ns", "net"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    symlink("net:[4026531840]", dir.join("ns/net")).unwrap();
    let mut tcp = String::from("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    let ports = [5432u16, 3306, 6379, 11211, 443, 8080];
    for i in 0..SOCKETS {
        let inode = 100_000 + i;
        symlink(
            format!("socket:[{inode}]"),
            dir.join("fd").join(i.to_string()),
        )
        .unwrap();
        let (local, remote, st) = if i == 0 {
            (
                "00000000:1F90".to_string(),
                "00000000:0000".to_string(),
                "0A",
            )
        } else {
            let st = if i % 10 == 0 { "08" } else { "01" };
            (
                format!("0200000A:{:04X}", 32768 + i),
                format!("0500000A:{:04X}", ports[i % ports.len()]),
                st,
            )
        };
        tcp.push_str(&format!("{i:5}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"));
    }
    for i in 0..2000 {
        tcp.push_str(&format!("{:5}: 0200000A:1F90 0900000A:{:04X} 06 00000000:00000000 03:00000AB1 00000000     0        0 0 3 0000000000000000\n", SOCKETS + i, 40000 + i));
    }
    std::fs::write(dir.join("net/tcp"), tcp).unwrap();
    std::fs::write(dir.join("net/tcp6"), "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n").unwrap();
}

fn soft_fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection_scan");
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(30);

    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let mut errors = ReadErrors::default();
    let check = scan(dir.path(), &[vec![1]], &mut errors)[0].unwrap();
    assert_eq!(
        check.established + check.close_wait + check.listen,
        SOCKETS as u64
    );
    assert_eq!(check.time_wait, 2000);
    g.bench_function("fixture_10k", |b| {
        b.iter(|| scan(dir.path(), &[vec![1]], &mut errors))
    });

    if soft_fd_limit() < SOCKETS as u64 + 200 {
        eprintln!("loopback_10k skipped: the soft fd limit is below {SOCKETS} (ulimit -n)");
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::with_capacity(SOCKETS);
        for _ in 0..SOCKETS / 2 {
            held.push(TcpStream::connect(addr).unwrap());
            held.push(listener.accept().unwrap().0);
        }
        let me = std::process::id() as i32;
        let root = Path::new("/proc");
        let c = scan(root, &[vec![me]], &mut errors)[0].unwrap();
        assert!(c.established >= SOCKETS as u64, "{c:?}");
        g.bench_function("loopback_10k", |b| {
            b.iter(|| scan(root, &[vec![me]], &mut errors))
        });
        drop(held);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
