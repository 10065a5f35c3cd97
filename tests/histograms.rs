//! The exported request-duration histogram read the way a dashboard reads it: a real
//! Prometheus scrapes a real Outrider that follows an nginx access log of lognormal
//! durations (median 33 ms, p95 122 ms, a fixed seed), and `histogram_quantile(0.95,
//! rate(…))` must land within 10% of the true p95 of the lines written, both on the
//! classic buckets (a Prometheus scraping text) and on the native histogram (a
//! Prometheus with `--enable-feature=native-histograms`, which negotiates protobuf).

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::group::Group;
use util::{get, Outrider, PATIENCE};

/// Lines after the first (which only makes the series exist before the rest).
const LINES: usize = 20_000;
const MEDIAN_SECONDS: f64 = 0.033;
/// ln(122 / 33) / z(0.95): the spread that puts the p95 at 122 ms.
const SIGMA: f64 = 0.795;
/// The dashboard's tolerance.
const TOLERANCE: f64 = 0.10;

/// xorshift64* and Box-Muller: the same durations every run, without a crate.
struct Lognormal(u64);

impl Lognormal {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A duration in whole milliseconds, as nginx's `$request_time` writes it.
    fn next(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
        ((MEDIAN_SECONDS * (SIGMA * z).exp()) * 1000.0)
            .round()
            .max(1.0)
            / 1000.0
    }
}

fn nginx_line(seconds: f64) -> String {
    format!(
        "127.0.0.1 - - [03/Dec/2026:17:00:00 +0000] \"GET /work HTTP/1.1\" 200 5 \"-\" \"load\" rt={seconds:.3} uct=\"0.000\" uht=\"{seconds:.3}\" urt=\"{seconds:.3}\""
    )
}

fn append(path: &std::path::Path, durations: &[f64]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    let text: String = durations.iter().map(|d| nginx_line(*d) + "\n").collect();
    f.write_all(text.as_bytes()).unwrap();
}

/// Nearest rank: the smallest duration with 95% of them at or below it.
fn true_p95(durations: &[f64]) -> f64 {
    let mut v = durations.to_vec();
    v.sort_by(f64::total_cmp);
    v[(0.95 * v.len() as f64).ceil() as usize - 1]
}

/// A Prometheus scraping `target` every second, with `flags`; stopped on drop.
struct Prometheus {
    group: Group,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr, flags: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n\
                 scrape_configs:\n  - job_name: outrider\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        // A free port: bound by us, then released for Prometheus.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let group = Group::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .args(flags)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        )
        .unwrap_or_else(|e| {
            panic!("prometheus not found ({e}): the README's test command installs Debian's prometheus package")
        });
        let p = Prometheus { group, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(addr).is_ok() && get(addr, "/-/ready", None).0 == 200 {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready:\n{}", p.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query's result vector.
    fn query(&self, expr: &str) -> Vec<Value> {
        let q: String = expr
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = get(self.addr, &format!("/api/v1/query?query={q}"), None);
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{expr}: {status} {body}\n{}", self.log()));
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The one sample's value of `expr` (a float query).
    fn value(&self, expr: &str) -> Option<f64> {
        let r = self.query(expr);
        let v = r.first()?["value"][1].as_str()?;
        v.parse().ok()
    }

    /// Waits until `expr` has the value `want`.
    fn wait_value(&self, expr: &str, want: f64) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.value(expr) == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "{expr} never became {want}: {:?}\n{}",
            self.query(expr),
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.group.stop(Duration::from_secs(10));
    }
}

fn within(what: &str, got: f64, truth: f64) {
    let error = (got - truth).abs() / truth;
    eprintln!(
        "{what}: {got:.4} s against {truth:.4} s, {:.1}% off",
        error * 100.0
    );
    assert!(
        error <= TOLERANCE,
        "{what}: {got} s is {:.1}% off the true p95 {truth} s",
        error * 100.0
    );
}

#[test]
fn histogram_quantile_on_classic_and_native_buckets_is_within_ten_percent() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let mut target = Group::spawn(Command::new("sleep").arg("600")).unwrap();
    let config = format!(
        "[[logs]]\nname = \"nginx\"\npath = {:?}\nstart_at = \"beginning\"\n",
        log.to_str().unwrap()
    );
    let o = Outrider::with_config(
        &config,
        &[],
        &["--interval", "200ms", "--pid", &target.pid().to_string()],
    );
    let classic = Prometheus::start(o.addr, &[]);
    let native = Prometheus::start(o.addr, &["--enable-feature=native-histograms"]);

    let mut durations = Lognormal(0x5eed_0015);
    // One line first, so every series exists before the load: rate() then sees the
    // whole load as an increase.
    append(&log, &[durations.next()]);
    let classic_count = "sum(outrider_http_request_duration_seconds_count)";
    classic.wait_value(classic_count, 1.0);
    let native_count = "sum(histogram_count(outrider_http_request_duration_seconds))";
    native.wait_value(native_count, 1.0);

    let load: Vec<f64> = (0..LINES).map(|_| durations.next()).collect();
    append(&log, &load);
    let total = (LINES + 1) as f64;
    classic.wait_value(classic_count, total);
    native.wait_value(native_count, total);
    // One more scrape each, so the last value is not alone at the window's end.
    std::thread::sleep(Duration::from_secs(2));
    let truth = true_p95(&load);

    let buckets =
        classic.query("outrider_http_request_duration_seconds_bucket{code_class=\"2xx\"}");
    assert_eq!(buckets.len(), 50, "49 bounds and +Inf");
    let p95_classic = classic
        .value("histogram_quantile(0.95, sum by (le) (rate(outrider_http_request_duration_seconds_bucket[5m])))")
        .expect("a classic p95");
    within("classic buckets", p95_classic, truth);

    // The native Prometheus stored a native histogram (a `histogram`, not a value).
    let series = native.query("outrider_http_request_duration_seconds{code_class=\"2xx\"}");
    assert!(
        series.first().is_some_and(|s| s.get("histogram").is_some()),
        "no native histogram: {series:?}"
    );
    let p95_native = native
        .value("histogram_quantile(0.95, sum(rate(outrider_http_request_duration_seconds[5m])))")
        .expect("a native p95");
    within("native histogram", p95_native, truth);
    target.stop(Duration::from_secs(1));
}
