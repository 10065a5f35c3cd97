//! The built-in misbehaving app (`outrider demo-app`, hidden) and what `outrider demo`
//! runs it with.
//!
//! The app holds touched memory, leaks more at a set rate, opens file descriptors and
//! never closes them, opens TCP connections to itself and never closes those either,
//! keeps idle threads and quiet worker children (so it looks like a pre-fork server),
//! burns a little CPU, and logs access lines with response times, warnings, errors and
//! now and then a multi-line Python-style traceback. Every knob is a flag so tests can
//! set up exactly what they will check.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Flags of `outrider demo-app`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoAppArgs {
    /// Memory to allocate, touch and hold at start, in MiB.
    #[arg(long, default_value_t = 16)]
    pub hold_mib: u64,
    /// Memory leaked per second after start, in KiB (touched, never freed).
    #[arg(long, default_value_t = 256)]
    pub leak_kib_per_sec: u64,
    /// File descriptors (of /dev/null) opened at start and held.
    #[arg(long, default_value_t = 8)]
    pub fds: usize,
    /// File descriptors leaked per second after start.
    #[arg(long, default_value_t = 0.5)]
    pub fd_rate: f64,
    /// TCP connections per second opened to the app's own loopback listener and
    /// never closed (each holds two established sockets: both ends are the app's).
    #[arg(long, default_value_t = 0.0)]
    pub conn_rate: f64,
    /// Extra threads that sit idle.
    #[arg(long, default_value_t = 3)]
    pub threads: usize,
    /// Share of one core to burn (0 to 1).
    #[arg(long, default_value_t = 0.05)]
    pub cpu: f64,
    /// Log events per second (info, warnings, errors, tracebacks).
    #[arg(long, default_value_t = 4.0)]
    pub log_rate: f64,
    /// Write this many numbered lines to stdout as fast as possible first.
    #[arg(long, default_value_t = 0)]
    pub lines: u64,
    /// Exit after this many seconds.
    #[arg(long)]
    pub exit_after: Option<f64>,
    /// Exit code when `--exit-after` ends it.
    #[arg(long, default_value_t = 0)]
    pub exit_code: i32,
    /// Write the pid here at start.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Child processes (quiet copies of this app) to start and keep.
    #[arg(long, default_value_t = 0)]
    pub children: usize,
    /// Exit when the parent process goes away (set for the children above, so a
    /// killed demo leaves no orphans behind).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

impl DemoAppArgs {
    /// The arguments `outrider demo` starts the app with.
    /// Two worker children make it a pre-fork server; one leaked connection every
    /// five seconds is a slow connection leak.
    pub fn demo_defaults() -> Vec<String> {
        ["demo-app", "--children", "2", "--conn-rate", "0.2"]
            .map(String::from)
            .to_vec()
    }
}

/// Runs the demo app; returns the process exit code.
pub fn demo_app(args: &DemoAppArgs) -> i32 {
    if let Some(p) = &args.pid_file {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            eprintln!("demo-app: cannot write pid file {}: {e}", p.display());
            return 1;
        }
    }
    // Held until the app exits; the children watch for their parent to go.
    let Some(_children) = start_children(args.children) else {
        return 1;
    };
    let mut leaks = Leaks::start(args);
    for _ in 0..args.threads {
        std::thread::spawn(|| loop {
            std::thread::park();
        });
    }
    write_lines(args.lines);
    eprintln!(
        "{{\"event\":\"ready\",\"pid\":{},\"fds\":{},\"threads\":{}}}",
        std::process::id(),
        count_dir("/proc/self/fd").saturating_sub(1),
        count_dir("/proc/self/task"),
    );

    let parent = std::os::unix::process::parent_id();
    let started = Instant::now();
    loop {
        let tick_start = Instant::now();
        if let Some(secs) = args.exit_after {
            if started.elapsed().as_secs_f64() >= secs {
                return args.exit_code;
            }
        }
        if args.exit_with_parent && std::os::unix::process::parent_id() != parent {
            return 0;
        }
        burn_cpu(tick_start, TICK.mul_f64(args.cpu.clamp(0.0, 1.0)));
        leaks.tick(args);
        if let Some(rest) = TICK.checked_sub(tick_start.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// How often the demo app leaks, logs and burns its CPU share.
const TICK: Duration = Duration::from_millis(100);

/// Starts `n` quiet copies of this app that exit with their parent; `None` when
/// this executable cannot be found (a child that fails to start is only reported).
fn start_children(n: usize) -> Option<Vec<std::process::Child>> {
    let mut children = Vec::new();
    if n == 0 {
        return Some(children);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("demo-app: cannot find my own executable: {e}");
            return None;
        }
    };
    for _ in 0..n {
        let spawned = std::process::Command::new(&exe)
            .args([
                "demo-app",
                "--hold-mib",
                "1",
                "--leak-kib-per-sec",
                "0",
                "--fds",
                "0",
            ])
            .args([
                "--fd-rate",
                "0",
                "--threads",
                "0",
                "--cpu",
                "0",
                "--log-rate",
                "0",
                "--exit-with-parent",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(c) => children.push(c),
            Err(e) => eprintln!("demo-app: cannot start a child: {e}"),
        }
    }
    Some(children)
}

/// `--lines`: numbered lines to stdout as fast as it takes them.
fn write_lines(lines: u64) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 1..=lines {
        if writeln!(out, "line {i} of {lines}").is_err() {
            break;
        }
    }
    let _ = out.flush();
}

/// Spins from `tick_start` until `burn` has passed.
fn burn_cpu(tick_start: Instant, burn: Duration) {
    let mut x = 0u64;
    while tick_start.elapsed() < burn {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// What the app holds and leaks, and how much of each is due (rates are per
/// second, added a tenth per tick).
struct Leaks {
    held: Vec<Vec<u8>>,
    files: Vec<File>,
    conns: Connections,
    leak_due: f64,
    fds_due: f64,
    logs_due: f64,
    /// Log events written so far.
    event: u64,
}

impl Leaks {
    /// Holds the memory and fds asked for at start.
    fn start(args: &DemoAppArgs) -> Leaks {
        let mut held: Vec<Vec<u8>> = Vec::new();
        hold(&mut held, args.hold_mib * 1024 * 1024);
        let mut files: Vec<File> = Vec::new();
        for _ in 0..args.fds {
            open_one(&mut files);
        }
        Leaks {
            held,
            files,
            conns: Connections::new(args.conn_rate > 0.0),
            leak_due: 0.0,
            fds_due: 0.0,
            logs_due: 0.0,
            event: 0,
        }
    }

    /// One tick's leaks and log events.
    fn tick(&mut self, args: &DemoAppArgs) {
        self.leak_due += args.leak_kib_per_sec as f64 * 1024.0 / 10.0;
        if self.leak_due >= 4096.0 {
            hold(&mut self.held, self.leak_due as u64);
            self.leak_due = 0.0;
        }
        self.fds_due += args.fd_rate / 10.0;
        while self.fds_due >= 1.0 {
            open_one(&mut self.files);
            self.fds_due -= 1.0;
        }
        self.conns.due += args.conn_rate / 10.0;
        while self.conns.due >= 1.0 {
            self.conns.leak_one();
            self.conns.due -= 1.0;
        }
        self.logs_due += args.log_rate / 10.0;
        while self.logs_due >= 1.0 {
            self.event += 1;
            log_event(
                self.event,
                self.held.iter().map(Vec::len).sum(),
                self.files.len(),
            );
            self.logs_due -= 1.0;
        }
    }
}

fn hold(held: &mut Vec<Vec<u8>>, bytes: u64) {
    if bytes > 0 {
        // Filled with a non-zero byte so every page is touched and resident.
        held.push(vec![0xA5u8; bytes as usize]);
    }
}

fn open_one(files: &mut Vec<File>) {
    match File::open("/dev/null") {
        Ok(f) => files.push(f),
        Err(e) => eprintln!("ERROR cannot open /dev/null: {e}"),
    }
}

/// A loopback listener of the app's own and the connections it leaks to it.
struct Connections {
    listener: Option<std::net::TcpListener>,
    held: Vec<(std::net::TcpStream, std::net::TcpStream)>,
    due: f64,
}

impl Connections {
    fn new(enabled: bool) -> Self {
        let listener = enabled
            .then(|| std::net::TcpListener::bind("127.0.0.1:0"))
            .and_then(|r| {
                r.map_err(|e| eprintln!("ERROR cannot listen on loopback: {e}"))
                    .ok()
            });
        Connections {
            listener,
            held: Vec::new(),
            due: 0.0,
        }
    }

    fn leak_one(&mut self) {
        let Some(l) = &self.listener else { return };
        let pair = l
            .local_addr()
            .and_then(std::net::TcpStream::connect)
            .and_then(|client| Ok((client, l.accept()?.0)));
        match pair {
            Ok(p) => self.held.push(p),
            Err(e) => eprintln!("ERROR cannot open a connection: {e}"),
        }
    }
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

/// One log event: mostly info, some warnings and errors, a traceback every 25th.
fn log_event(n: u64, held_bytes: usize, fds: usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mib = held_bytes as f64 / 1048576.0;
    if n % 25 == 0 {
        eprintln!(
            "{now:.3} ERROR request {n} failed\nTraceback (most recent call last):\n  File \"/app/server.py\", line 42, in handle\n    cache.put(key, payload)\n  File \"/app/cache.py\", line 17, in put\n    raise MemoryError(\"cache full\")\nMemoryError: cache full"
        );
    } else if n % 10 == 0 {
        eprintln!("{now:.3} ERROR upstream timed out after 5000 ms (request {n})");
    } else if n % 7 == 0 {
        eprintln!("{now:.3} WARN slow request {n}: 1200 ms, cache {mib:.1} MiB, {fds} open files");
    } else {
        // An access line as gunicorn writes it with `%(L)s` (seconds) at the end;
        // now and then a 404 or a 503. Durations spread over 12-96 ms, and every
        // 9th request is slow.
        let status = match n {
            n if n % 13 == 0 => 503,
            n if n % 11 == 0 => 404,
            _ => 200,
        };
        let ms = if n % 9 == 0 {
            240 + n % 160
        } else {
            12 + (n * 37) % 85
        };
        println!(
            "127.0.0.1 - - [{}] \"GET /api/items/{n} HTTP/1.1\" {status} {} \"-\" \"python-requests/2.31\" {:.6}",
            clf_time(now as i64),
            200 + n % 800,
            ms as f64 / 1000.0 + (n % 1000) as f64 / 1e6
        );
    }
}

/// Unix seconds as the common log format's `%d/%b/%Y:%H:%M:%S +0000` (UTC).
fn clf_time(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (unix.div_euclid(86400), unix.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::clf_time;

    #[test]
    fn common_log_format_time() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        // `date -u -d @1795479190 '+%d/%b/%Y:%H:%M:%S'`
        assert_eq!(clf_time(1_795_479_190), "24/Nov/2026:00:13:10 +0000");
        assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
    }
}
