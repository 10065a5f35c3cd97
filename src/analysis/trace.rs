//! Replay traces: the CSV that `--record` appends and `replay` reads.
//!
//! ```text
//! timestamp,rss_bytes,open_fds,threads,cpu_seconds,memory_limit_bytes,cpu_limit_cores,memory_request_bytes,cpu_request_cores
//! 0,52428800,12,4,0.00,536870912,1.0,268435456,0.5
//! ```
//!
//! `timestamp` (seconds, increasing) and `rss_bytes` are required; every other
//! column is optional (empty = unknown) and unknown columns are ignored. Recording
//! adds `working_set_bytes`, `max_fds`, `cpu_wait_seconds`, `cpu_periods`,
//! `cpu_throttled_periods`, `oom_kills`, `restarts` and `target`, then
//! `tcp_established` and `tcp_close_wait` (connection scans), then
//! `cpu_throttled_seconds`, then `http_requests` (access lines attributed to the
//! target, cumulative), then a JVM's heap (`jvm_old_used_bytes`,
//! `jvm_old_capacity_bytes`, `jvm_old_collections`, `jvm_young_collections`,
//! empty for other apps), then `jvm_old_max_bytes` (the old generation's
//! maximum; optional beside the other four), then `jvm_heap_mappings` (how many
//! times RSS counts the heap: 3 under ZGC of one generation; optional, 1 when
//! absent) and `jvm_shmem_resident_bytes` (the JVM's `RssShmem`, read under
//! ZGC only), then `jvm_young_capacity_bytes` (the young generation's committed
//! bytes, where published), then `jvm_max_heap_bytes` (the `-Xmx` the JVM was
//! given, if any) (older traces lack the last thirteen). A trace with a
//! `target` column is replayed for one target (the first one named, or the one
//! asked for).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{AnalysisConfig, Analyzer, Observation, Verdicts};
use crate::sample::jvm::JvmHeap;

/// Columns written by `--record`, in order.
pub const COLUMNS: [&str; 30] = [
    "timestamp",
    "rss_bytes",
    "open_fds",
    "threads",
    "cpu_seconds",
    "memory_limit_bytes",
    "cpu_limit_cores",
    "memory_request_bytes",
    "cpu_request_cores",
    "working_set_bytes",
    "max_fds",
    "cpu_wait_seconds",
    "cpu_periods",
    "cpu_throttled_periods",
    "oom_kills",
    "restarts",
    "target",
    "tcp_established",
    "tcp_close_wait",
    "cpu_throttled_seconds",
    "http_requests",
    "jvm_old_used_bytes",
    "jvm_old_capacity_bytes",
    "jvm_old_collections",
    "jvm_young_collections",
    "jvm_old_max_bytes",
    "jvm_heap_mappings",
    "jvm_shmem_resident_bytes",
    "jvm_young_capacity_bytes",
    "jvm_max_heap_bytes",
];

/// A bad trace: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceError {
    pub line: usize,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column {c}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for TraceError {}

/// One row as CSV text (no newline).
pub fn row(o: &Observation, target: &str) -> String {
    let f = |v: Option<f64>| v.map(fmt_num).unwrap_or_default();
    [
        fmt_num(o.t),
        fmt_num(o.rss_bytes),
        f(o.open_fds),
        f(o.threads),
        f(o.cpu_seconds),
        f(o.memory_limit_bytes),
        f(o.cpu_limit_cores),
        f(o.memory_request_bytes),
        f(o.cpu_request_cores),
        f(o.working_set_bytes),
        f(o.max_fds),
        f(o.cpu_wait_seconds),
        f(o.cpu_periods),
        f(o.cpu_throttled_periods),
        f(o.oom_kills),
        f(o.restarts),
        target.to_string(),
        f(o.tcp_established),
        f(o.tcp_close_wait),
        f(o.cpu_throttled_seconds),
        f(o.http_requests),
        f(o.jvm.map(|j| j.old_used_bytes as f64)),
        f(o.jvm.map(|j| j.old_capacity_bytes as f64)),
        f(o.jvm.map(|j| j.old_collections as f64)),
        f(o.jvm.map(|j| j.young_collections as f64)),
        f(o.jvm.and_then(|j| j.old_max_bytes).map(|v| v as f64)),
        f(o.jvm.map(|j| f64::from(j.heap_mappings))),
        f(o.jvm.and_then(|j| j.shmem_resident_bytes).map(|v| v as f64)),
        f(o.jvm.and_then(|j| j.young_capacity_bytes).map(|v| v as f64)),
        f(o.jvm.and_then(|j| j.max_heap_bytes).map(|v| v as f64)),
    ]
    .join(",")
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.6}")
    }
}

/// Appends rows to a trace file, on a thread of its own: the tick formats the rows
/// and hands them over without waiting, so a slow or hung disk never holds up
/// sampling, scrapes or log following. The thread writes the header when the file
/// is new or empty, flushes after each tick (a crash loses at most the ticks still
/// queued) and, once the file would pass `max_bytes`, renames it to `FILE.1`
/// (replacing an older one) and begins a new one with its header: a recording holds
/// at most about twice `max_bytes` on disk.
#[derive(Debug)]
pub struct Recorder {
    tx: std::sync::mpsc::SyncSender<String>,
    /// The error that stopped the thread, for the next `append` to return.
    failed: Arc<Mutex<Option<std::io::Error>>>,
    /// Ticks dropped because the thread was [`QUEUED_TICKS`] behind.
    dropped: u64,
}

/// How many ticks' rows may wait for the writer thread before new ones are dropped.
const QUEUED_TICKS: usize = 64;

impl Recorder {
    /// Checks that `path` can be opened for appending (creating it if missing):
    /// what the command line runs before binding its port.
    pub fn check(path: &Path) -> std::io::Result<()> {
        append_to(path).map(drop)
    }

    /// Opens `path` for appending and starts the writer thread. `token` is dropped
    /// by the thread once everything handed to it is on disk (`run` passes a clone
    /// of its drain's sender, so the shutdown waits for the last rows within its
    /// grace, and never blocks on the disk).
    pub fn open<T: Send + 'static>(
        path: &Path,
        max_bytes: u64,
        token: T,
    ) -> std::io::Result<Recorder> {
        let mut file = TraceFile::open(path.to_path_buf(), max_bytes)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(QUEUED_TICKS);
        let failed = Arc::new(Mutex::new(None));
        let report = failed.clone();
        std::thread::Builder::new()
            .name("outrider-record".into())
            .spawn(move || {
                let _token = token;
                for rows in rx {
                    if let Err(e) = file.write(&rows) {
                        *report.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        return;
                    }
                }
            })?;
        Ok(Recorder {
            tx,
            failed,
            dropped: 0,
        })
    }

    /// Hands the rows of one tick to the writer thread without waiting. An error
    /// means the recording has stopped (the thread's write error, once).
    pub fn append(&mut self, rows: &[(Observation, String)]) -> std::io::Result<()> {
        let mut text = String::with_capacity(rows.len() * 128);
        for (o, target) in rows {
            text.push_str(&row(o, target));
            text.push('\n');
        }
        match self.tx.try_send(text) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        ticks_dropped = self.dropped,
                        "the trace file is written too slowly: rows of this tick are not recorded"
                    );
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(self
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| std::io::Error::other("the trace writer stopped"))),
        }
    }
}

/// The trace file as the writer thread keeps it: its size so far, rotated past
/// `max_bytes`.
struct TraceFile {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    len: u64,
    max_bytes: u64,
}

/// `path` opened for appending, created if missing.
fn append_to(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl TraceFile {
    fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<TraceFile> {
        let file = append_to(&path)?;
        let len = file.metadata()?.len();
        let mut t = TraceFile {
            path,
            file: std::io::BufWriter::new(file),
            len,
            max_bytes,
        };
        if len == 0 {
            t.header()?;
        }
        Ok(t)
    }

    fn header(&mut self) -> std::io::Result<()> {
        let header = format!("{}\n", COLUMNS.join(","));
        self.file.write_all(header.as_bytes())?;
        self.len += header.len() as u64;
        self.file.flush()
    }

    /// Appends one tick's rows and flushes, rotating first if they would pass the
    /// size cap (never a file with only a header: a tick's rows always go in whole).
    fn write(&mut self, rows: &str) -> std::io::Result<()> {
        let header_len = COLUMNS.join(",").len() as u64 + 1;
        if self.len + rows.len() as u64 > self.max_bytes && self.len > header_len {
            self.rotate()?;
        }
        self.file.write_all(rows.as_bytes())?;
        self.len += rows.len() as u64;
        self.file.flush()
    }

    /// FILE → FILE.1, and a new FILE with its header.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.file = std::io::BufWriter::new(file);
        self.len = 0;
        self.header()
    }
}

/// Parses a trace into observations (for `target`, or the first one named).
pub fn read(input: impl BufRead, target: Option<&str>) -> Result<Vec<Observation>, TraceError> {
    let mut lines = input.lines().enumerate();
    let header = Header::parse(&header_line(&mut lines)?)?;
    let mut wanted = target.map(str::to_string);
    let mut out: Vec<Observation> = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        let line = line.map_err(|e| err(line_no, None, &format!("unreadable: {e}")))?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cells = header.cells(line_no, &line)?;
        if let Some(tc) = header.target {
            let name = cells[tc];
            match &wanted {
                Some(w) if w != name => continue,
                Some(_) => {}
                None => wanted = Some(name.to_string()),
            }
        }
        let previous = out.last().map(|o| o.t);
        out.push(header.observation(line_no, &cells, previous)?);
    }
    if out.is_empty() {
        return Err(err(1, None, "no samples"));
    }
    Ok(out)
}

/// The first line that is neither blank nor a `#` comment.
fn header_line(
    lines: &mut impl Iterator<Item = (usize, std::io::Result<String>)>,
) -> Result<String, TraceError> {
    loop {
        match lines.next() {
            None => return Err(err(1, None, "empty trace: no header line")),
            Some((i, Err(e))) => return Err(err(i + 1, None, &format!("unreadable: {e}"))),
            Some((_, Ok(l))) if l.trim().is_empty() || l.starts_with('#') => continue,
            Some((_, Ok(l))) => return Ok(l),
        }
    }
}

/// A trace's columns, by name, with where the required ones and `target` are.
struct Header {
    names: Vec<String>,
    timestamp: usize,
    rss_bytes: usize,
    target: Option<usize>,
}

impl Header {
    fn parse(line: &str) -> Result<Header, TraceError> {
        let names: Vec<String> = line.split(',').map(|s| s.trim().to_string()).collect();
        let col = |name: &str| names.iter().position(|n| n == name);
        let (Some(timestamp), Some(rss_bytes)) = (col("timestamp"), col("rss_bytes")) else {
            let missing = if col("timestamp").is_none() {
                "timestamp"
            } else {
                "rss_bytes"
            };
            return Err(err(
                1,
                Some(missing),
                "required column is missing from the header",
            ));
        };
        let target = col("target");
        Ok(Header {
            names,
            timestamp,
            rss_bytes,
            target,
        })
    }

    fn col(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// A row's cells, trimmed; as many as the header has columns.
    fn cells<'l>(&self, line_no: usize, line: &'l str) -> Result<Vec<&'l str>, TraceError> {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != self.names.len() {
            return Err(err(
                line_no,
                None,
                &format!(
                    "{} fields where the header has {}",
                    cells.len(),
                    self.names.len()
                ),
            ));
        }
        Ok(cells)
    }

    /// Cell `c` as a finite number; `None` when empty.
    fn num(&self, line_no: usize, cells: &[&str], c: usize) -> Result<Option<f64>, TraceError> {
        let s = cells[c];
        if s.is_empty() {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(err(
                line_no,
                Some(&self.names[c]),
                &format!("{s:?} is not a number"),
            )),
        }
    }

    /// A row's JVM heap: all four columns, or `None` when any is missing or empty
    /// (the maximum is optional: traces recorded before it lack it).
    fn jvm(&self, line_no: usize, cells: &[&str]) -> Result<Option<JvmHeap>, TraceError> {
        let mut v = [0u64; 4];
        for (slot, name) in v.iter_mut().zip(&COLUMNS[21..25]) {
            match self.col(name) {
                Some(c) => match self.num(line_no, cells, c)? {
                    Some(x) => *slot = x.max(0.0) as u64,
                    None => return Ok(None),
                },
                None => return Ok(None),
            }
        }
        let max = match self.col(COLUMNS[25]) {
            Some(c) => self.num(line_no, cells, c)?,
            None => None,
        };
        let [mappings, shmem, young_capacity, max_heap] =
            [26, 27, 28, 29].map(|i| match self.col(COLUMNS[i]) {
                Some(c) => self.num(line_no, cells, c),
                None => Ok(None),
            });
        Ok(Some(JvmHeap {
            old_used_bytes: v[0],
            old_capacity_bytes: v[1],
            young_capacity_bytes: young_capacity?.map(|v| v.max(0.0) as u64),
            old_max_bytes: max.filter(|&m| m > 0.0).map(|m| m as u64),
            old_collections: v[2],
            young_collections: v[3],
            heap_mappings: mappings?.map_or(1, |m| m.clamp(1.0, 8.0) as u8),
            shmem_resident_bytes: shmem?.map(|v| v.max(0.0) as u64),
            max_heap_bytes: max_heap?.filter(|&m| m > 0.0).map(|m| m as u64),
            heap_share: None,
            initial_heap_bytes: None,
            collector_given: None,
            ergonomics: None,
        }))
    }

    /// One row; its timestamp must come after the `previous` row's.
    fn observation(
        &self,
        line_no: usize,
        cells: &[&str],
        previous: Option<f64>,
    ) -> Result<Observation, TraceError> {
        let opt = |name: &str| match self.col(name) {
            Some(c) => self.num(line_no, cells, c),
            None => Ok(None),
        };
        let t = self
            .num(line_no, cells, self.timestamp)?
            .ok_or_else(|| err(line_no, Some("timestamp"), "empty"))?;
        let rss = self
            .num(line_no, cells, self.rss_bytes)?
            .ok_or_else(|| err(line_no, Some("rss_bytes"), "empty"))?;
        if let Some(prev) = previous {
            if t <= prev {
                return Err(err(
                    line_no,
                    Some("timestamp"),
                    &format!("{t} does not increase (the previous row has {prev})"),
                ));
            }
        }
        Ok(Observation {
            t,
            rss_bytes: rss,
            working_set_bytes: opt("working_set_bytes")?,
            open_fds: opt("open_fds")?,
            max_fds: opt("max_fds")?,
            threads: opt("threads")?,
            cpu_seconds: opt("cpu_seconds")?,
            cpu_wait_seconds: opt("cpu_wait_seconds")?,
            cpu_periods: opt("cpu_periods")?,
            cpu_throttled_periods: opt("cpu_throttled_periods")?,
            oom_kills: opt("oom_kills")?,
            restarts: opt("restarts")?,
            memory_limit_bytes: opt("memory_limit_bytes")?,
            cpu_limit_cores: opt("cpu_limit_cores")?,
            memory_request_bytes: opt("memory_request_bytes")?,
            cpu_request_cores: opt("cpu_request_cores")?,
            tcp_established: opt("tcp_established")?,
            tcp_close_wait: opt("tcp_close_wait")?,
            cpu_throttled_seconds: opt("cpu_throttled_seconds")?,
            http_requests: opt("http_requests")?,
            jvm: self.jvm(line_no, cells)?,
        })
    }
}

fn err(line: usize, column: Option<&str>, message: &str) -> TraceError {
    TraceError {
        line,
        column: column.map(str::to_string),
        message: message.to_string(),
    }
}

/// What `outrider replay` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub samples: usize,
    pub duration_seconds: f64,
    pub memory_leak: bool,
    pub memory_leak_first_detected_at: Option<f64>,
    /// A JVM's old generation (`heap`): when its own verdict was first given;
    /// `None` without heap columns or without that verdict.
    pub heap_leak_first_detected_at: Option<f64>,
    pub memory_growth_bytes_per_second: Option<f64>,
    /// After the last row: seconds to the memory limit, and for a leak in a
    /// JVM's heap to its old generation's maximum, at the leak's rate.
    pub memory_time_to_limit_seconds: Option<f64>,
    pub memory_time_to_heap_max_seconds: Option<f64>,
    pub fd_leak: bool,
    pub fd_leak_first_detected_at: Option<f64>,
    pub fd_growth_per_second: Option<f64>,
    pub thread_leak: bool,
    pub thread_leak_first_detected_at: Option<f64>,
    pub connection_leak: bool,
    pub connection_leak_first_detected_at: Option<f64>,
    pub cpu: CpuSummary,
    pub memory: MemorySummary,
    pub resources_yaml: Option<String>,
    /// The money, autoscaling and scale-to-zero verdicts after the last row.
    pub cost: Option<super::cost::Cost>,
    pub autoscaling: super::autoscale::Autoscaling,
    pub scale_to_zero: super::idle::ScaleToZero,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuSummary {
    pub p50_cores: Option<f64>,
    pub p90_cores: Option<f64>,
    pub p95_cores: Option<f64>,
    pub p99_cores: Option<f64>,
    pub max_cores: Option<f64>,
    pub recommended_request_cores: Option<f64>,
    pub allocation: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemorySummary {
    pub peak_bytes: Option<f64>,
    pub recommended_request_bytes: Option<f64>,
    pub recommended_limit_bytes: Option<f64>,
    pub allocation: &'static str,
    pub reason: String,
}

/// Runs the live analysis over a trace.
pub fn replay(observations: &[Observation], cfg: &AnalysisConfig) -> Summary {
    let mut a = Analyzer::new(cfg);
    let mut v = Verdicts::default();
    let (mut mem_at, mut fd_at, mut thr_at, mut conn_at) = (None, None, None, None);
    let mut heap_at = None;
    for o in observations {
        v = a.observe(o);
        let first = |at: &mut Option<f64>, now: bool| {
            if now && at.is_none() {
                *at = Some(o.t);
            }
        };
        first(&mut mem_at, v.memory_leak.suspected);
        first(&mut heap_at, v.heap_leak.is_some_and(|h| h.suspected));
        first(&mut fd_at, v.fd_leak.suspected);
        first(&mut thr_at, v.thread_leak.suspected);
        first(&mut conn_at, v.connection_leak.suspected);
    }
    let s = &v.sizing;
    Summary {
        samples: observations.len(),
        duration_seconds: observations.last().map_or(0.0, |l| l.t - observations[0].t),
        memory_leak: v.memory_leak.suspected,
        memory_leak_first_detected_at: mem_at,
        heap_leak_first_detected_at: heap_at,
        memory_growth_bytes_per_second: v.memory_leak.growth_per_second,
        memory_time_to_limit_seconds: v.memory_leak.time_to_limit_seconds,
        memory_time_to_heap_max_seconds: v.memory_leak.time_to_heap_max_seconds,
        fd_leak: v.fd_leak.suspected,
        fd_leak_first_detected_at: fd_at,
        fd_growth_per_second: v.fd_leak.growth_per_second,
        thread_leak: v.thread_leak.suspected,
        thread_leak_first_detected_at: thr_at,
        connection_leak: v.connection_leak.suspected,
        connection_leak_first_detected_at: conn_at,
        cpu: CpuSummary {
            p50_cores: s.cpu.p50_cores,
            p90_cores: s.cpu.p90_cores,
            p95_cores: s.cpu.p95_cores,
            p99_cores: s.cpu.p99_cores,
            max_cores: s.cpu.max_cores,
            recommended_request_cores: s.cpu.recommended_request_cores,
            allocation: s.cpu.allocation.0.as_str(),
            reason: s.cpu.reason.clone(),
        },
        memory: MemorySummary {
            peak_bytes: s.memory.peak_bytes,
            recommended_request_bytes: s.memory.recommended_request_bytes,
            recommended_limit_bytes: s.memory.recommended_limit_bytes,
            allocation: s.memory.allocation.0.as_str(),
            reason: s.memory.reason.clone(),
        },
        resources_yaml: v.resources_yaml,
        cost: v.cost,
        autoscaling: v.autoscaling,
        scale_to_zero: v.scale_to_zero,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example() {
        let text = "timestamp,rss_bytes,open_fds,threads,cpu_seconds,memory_limit_bytes,cpu_limit_cores,memory_request_bytes,cpu_request_cores\n0,52428800,12,4,0.00,536870912,1.0,268435456,0.5\n5,52441088,12,4,0.03,536870912,1.0,268435456,0.5\n";
        let obs = read(text.as_bytes(), None).unwrap();
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[1].rss_bytes, 52441088.0);
        assert_eq!(obs[1].cpu_request_cores, Some(0.5));
        assert_eq!(obs[0].working_set_bytes, None);
    }

    #[test]
    fn bad_traces_name_line_and_column() {
        let cases = [
            (
                "timestamp,open_fds\n0,1\n",
                "line 1, column rss_bytes: required column is missing",
            ),
            (
                "timestamp,rss_bytes\n0,1\n5,lots\n",
                "line 3, column rss_bytes: \"lots\" is not a number",
            ),
            (
                "timestamp,rss_bytes\n5,1\n5,2\n",
                "line 3, column timestamp: 5 does not increase",
            ),
            (
                "timestamp,rss_bytes\n0,1,2\n",
                "line 2: 3 fields where the header has 2",
            ),
            ("", "line 1: empty trace"),
        ];
        for (text, want) in cases {
            let e = read(text.as_bytes(), None).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn rows_round_trip_and_pick_one_target() {
        let o = Observation {
            t: 1700000000.5,
            rss_bytes: 1048576.0,
            open_fds: Some(12.0),
            cpu_seconds: Some(1.25),
            jvm: Some(JvmHeap {
                old_used_bytes: 60 << 20,
                old_capacity_bytes: 96 << 20,
                young_capacity_bytes: Some(40 << 20),
                old_max_bytes: Some(256 << 20),
                old_collections: 7,
                young_collections: 120,
                heap_mappings: 1,
                shmem_resident_bytes: Some(3 << 20),
                max_heap_bytes: Some(256 << 20),
                heap_share: None,
                initial_heap_bytes: None,
                collector_given: None,
                ergonomics: None,
            }),
            ..Default::default()
        };
        let mut text = COLUMNS.join(",") + "\n";
        text += &(row(&o, "web") + "\n");
        text += &(row(
            &Observation {
                rss_bytes: 5.0,
                ..o.clone()
            },
            "db",
        ) + "\n");
        let back = read(text.as_bytes(), None).unwrap();
        assert_eq!(back, vec![o.clone()]);
        let db = read(text.as_bytes(), Some("db")).unwrap();
        assert_eq!(db[0].rss_bytes, 5.0);
    }

    /// The recorder writes on its thread and drops its token once done; past the
    /// cap the file goes to FILE.1 and a new one starts with the header, both
    /// readable by `replay`, no row lost or split.
    #[test]
    fn the_recorder_rotates_at_its_cap_and_loses_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.csv");
        let (token, finished) = std::sync::mpsc::channel::<()>();
        let mut r = Recorder::open(&path, 4096, token).unwrap();
        // 40 ticks of 10 rows (fewer ticks than the queue holds: none dropped), about
        // 12 KiB: three rotations.
        let rows = 400;
        for tick in 0..rows / 10 {
            let rows: Vec<(Observation, String)> = (0..10)
                .map(|i| {
                    let o = Observation {
                        t: (tick * 10 + i) as f64,
                        rss_bytes: 1e6,
                        ..Default::default()
                    };
                    (o, "app".to_string())
                })
                .collect();
            r.append(&rows).unwrap();
        }
        assert_eq!(r.dropped, 0);
        drop(r);
        // The token is dropped once every row is written.
        assert!(finished.recv().is_err());
        let current = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.path().join("trace.csv.1")).unwrap();
        assert!(current.len() <= 4096 && old.len() <= 4096);
        let a = read(old.as_bytes(), None).unwrap();
        let b = read(current.as_bytes(), None).unwrap();
        // Only the last rotation's file is kept: what is left ends at the last row.
        assert_eq!(b.last().unwrap().t, (rows - 1) as f64);
        assert_eq!(a.last().unwrap().t + 1.0, b[0].t, "consecutive, none lost");
    }

    #[test]
    fn check_fails_on_a_path_that_cannot_be_written() {
        let e = Recorder::check(Path::new("/nonexistent-dir/trace.csv")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
