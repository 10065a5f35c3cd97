//! The floor under one watched process' steady cost (issue 17): a program that
//! does only what any exporter in Outrider's place must do for the bench's one
//! process, and nothing else. Each tick it reads the files Outrider's tick reads
//! for it (listed with `strace -f -y -p <outrider>` at rest, 1 s ticks, on a v1
//! host): the process' `stat`, its fd directory's size (`statx`), the five v1
//! memory-cgroup files, `/proc/loadavg` and `/proc/stat`, through descriptors
//! kept open, as Outrider does; it parses nothing, keeps no history, judges
//! nothing. Each scrape it answers with a fixed body of Outrider's size (11.1 KB)
//! after reading its own `stat` and fd directory (the `process_*` figures every
//! exporter serves), over a kept-alive connection, on a thread of its own.
//!
//! It takes Outrider's command line, so `scripts/bench_steady.py` runs it in
//! Outrider's place, against process-exporter, in the same run:
//!
//!     rustc -O --edition 2021 -o /tmp/bench-floor scripts/bench_floor.rs
//!     python3 scripts/bench_steady.py --only one --settle 125 \
//!         --binary target/release/outrider --binary /tmp/bench-floor
//!
//! The target is the process whose `comm` is `benchapp` (the bench's own).
//! Standard library only: it is built with `rustc`, not part of the crate.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

const BODY_BYTES: usize = 11_130;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let listen = value("--listen").unwrap_or_else(|| "127.0.0.1:9464".into());
    let interval = parse_interval(&value("--interval").unwrap_or_else(|| "1s".into()));
    let listener = TcpListener::bind(&listen).expect("bind --listen");
    thread::spawn(move || ticks(interval));
    let body = body();
    for conn in listener.incoming().flatten() {
        let body = body.clone();
        thread::spawn(move || serve(conn, &body));
    }
}

fn parse_interval(text: &str) -> Duration {
    match text.strip_suffix("ms") {
        Some(ms) => Duration::from_millis(ms.parse().expect("--interval")),
        None => Duration::from_secs(text.trim_end_matches('s').parse().expect("--interval")),
    }
}

/// The target's pid: the first process whose comm is `benchapp`, waited for.
fn target_pid() -> u32 {
    loop {
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim_end() == "benchapp" {
                return pid;
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The target's v1 memory cgroup directory, or its cgroup2 one.
fn memory_cgroup(pid: u32) -> (String, &'static [&'static str]) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if controllers.split(',').any(|c| c == "memory") {
            let files: &[&str] = &[
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "memory.stat",
                "memory.oom_control",
                "memory.failcnt",
            ];
            return (format!("/sys/fs/cgroup/memory{path}"), files);
        }
    }
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    let files: &[&str] = &[
        "memory.current",
        "memory.max",
        "memory.stat",
        "memory.events",
    ];
    let root = if Path::new("/sys/fs/cgroup/unified").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    (format!("{root}{path}"), files)
}

fn ticks(interval: Duration) {
    let pid = target_pid();
    let (cgroup, names) = memory_cgroup(pid);
    let mut files: Vec<File> = vec![
        File::open(format!("/proc/{pid}/stat")).expect("stat"),
        File::open("/proc/loadavg").expect("loadavg"),
        File::open("/proc/stat").expect("/proc/stat"),
    ];
    files.extend(
        names
            .iter()
            .filter_map(|n| File::open(format!("{cgroup}/{n}")).ok()),
    );
    let fd_dir = File::open(format!("/proc/{pid}/fd")).expect("fd dir");
    let mut buf = vec![0u8; 16384];
    let mut bytes = 0usize;
    let start = Instant::now();
    let mut n = 0u32;
    loop {
        n += 1;
        for f in &files {
            bytes += f.read_at(&mut buf, 0).unwrap_or(0);
        }
        bytes += fd_dir.metadata().map(|m| m.len() as usize).unwrap_or(0);
        std::hint::black_box(bytes);
        let next = start + interval * n;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// A fixed body of Outrider's size, with the line the bench checks.
fn body() -> Vec<u8> {
    let mut body = String::from("outrider_target_processes{target=\"benchapp\"} 1\n");
    let mut i = 0;
    while body.len() < BODY_BYTES {
        body.push_str(&format!(
            "outrider_floor_filler{{target=\"benchapp\",n=\"{i}\"}} 0\n"
        ));
        i += 1;
    }
    body.truncate(BODY_BYTES - 1);
    body.push('\n');
    body.into_bytes()
}

fn serve(conn: TcpStream, body: &[u8]) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut out = conn;
    let own_stat = File::open("/proc/self/stat").expect("own stat");
    let mut buf = [0u8; 4096];
    let mut line = String::new();
    loop {
        // The request: lines up to the empty one (a GET has no body).
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => {}
            }
        }
        let _ = own_stat.read_at(&mut buf, 0);
        let _ = std::fs::metadata("/proc/self/fd");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut response = Vec::with_capacity(head.len() + body.len());
        response.extend_from_slice(head.as_bytes());
        response.extend_from_slice(body);
        if out.write_all(&response).is_err() {
            return;
        }
    }
}
