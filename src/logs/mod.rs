//! The app's output: read it, pass it on where asked, and tell what it says.
//!
//! # Layout
//! - [`framing`]: bytes → lines (plain, CRI with partials, docker json-file)
//! - [`classify`]: a line's severity and HTTP status class
//! - [`access`]: a request's duration, read from its access line
//! - [`latency`]: request durations counted: exported buckets per status class, and the fine histogram
//! - [`events`]: multi-line traces grouped into one event
//! - [`scan`]: the three assembled for one source, and `outrider scan`
//!
//! Every source (the wrapped app's stdout and stderr, stdin) is read by a [`pump`]
//! that feeds a [`StreamScanner`] and publishes its totals into the
//! stream's [`StreamStats`].

pub mod access;
mod bytes;
pub mod classify;
pub mod events;
pub mod framing;
pub mod latency;
pub mod scan;

pub mod tail;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use classify::Classifier;
use framing::LogFormat;
use scan::{ScanCounts, StreamScanner};

/// How often a quiet stream's held multi-line event is given a chance to flush.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// Counts for one named stream (`stdout`, `stderr`, or a configured log name),
/// published by whoever reads the stream and read by the metrics endpoint.
#[derive(Debug)]
pub struct StreamStats {
    /// The `stream` label: from config or fixed names, never from log content.
    pub name: String,
    counts: Mutex<ScanCounts>,
    rotations: AtomicU64,
    truncations: AtomicU64,
    /// Failed reads of the pipe (the wrapped app's stdout or stderr, stdin): each
    /// ends the stream, so it is 0 or 1 per source.
    pipe_read_errors: AtomicU64,
    /// The follower's counters, for a stream read from files.
    tail: std::sync::OnceLock<Arc<tail::TailStats>>,
}

impl StreamStats {
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(StreamStats {
            name: name.into(),
            counts: Mutex::new(ScanCounts::default()),
            rotations: AtomicU64::new(0),
            truncations: AtomicU64::new(0),
            pipe_read_errors: AtomicU64::new(0),
            tail: std::sync::OnceLock::new(),
        })
    }

    /// The stream's totals so far.
    pub fn counts(&self) -> ScanCounts {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the totals (they only grow: each source keeps cumulative counts).
    pub fn publish(&self, counts: ScanCounts) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    pub fn lines(&self) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).lines
    }

    pub fn bytes(&self) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    pub fn add_rotation(&self) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_truncation(&self) {
        self.truncations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    pub fn truncations(&self) -> u64 {
        self.truncations.load(Ordering::Relaxed)
    }

    /// The follower's counters when the stream is read from files: failed opens
    /// and reads, and the paths failing now.
    pub fn tail(&self) -> Option<&Arc<tail::TailStats>> {
        self.tail.get()
    }

    /// Failed reads of the stream for `outrider_read_errors_total{source="log"}`:
    /// the follower's (files) and the pipe's. `None` for a pipe that has not
    /// failed, so a wrapped app whose output reads fine has no such series.
    pub fn read_errors(&self) -> Option<u64> {
        let pipe = self.pipe_read_errors.load(Ordering::Relaxed);
        match self.tail() {
            Some(tail) => Some(tail.read_errors() + pipe),
            None => (pipe > 0).then_some(pipe),
        }
    }
}

/// How every stream's lines are read: one classifier (built from the user's rules)
/// and the framing settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub classifier: Classifier,
    pub max_line_bytes: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            classifier: Classifier::default(),
            max_line_bytes: framing::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Reads `reader` to its end, writing every byte on to `writer` (when given, in the
/// order read) and scanning it into `stats`: lines, bytes, events by severity, HTTP
/// status classes. A writer that fails (our own stdout closed) is dropped with one
/// warning; reading and counting go on so the app never blocks on a full pipe.
pub async fn pump<R, W>(
    mut reader: R,
    mut writer: Option<W>,
    stats: Arc<StreamStats>,
    settings: LogSettings,
    format: LogFormat,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut scanner = StreamScanner::new(settings.classifier, format, settings.max_line_bytes);
    let mut idle = tokio::time::interval(IDLE_CHECK);
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let n = tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    stats.pipe_read_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %stats.name, error = %e, "reading the app's output failed; stream closed");
                    break;
                }
            },
            _ = idle.tick() => {
                // A traceback held for its continuation is let go after a quiet spell.
                scanner.flush_if_idle(Instant::now());
                stats.publish(scanner.counts());
                continue;
            }
        };
        let chunk = &buf[..n];
        if let Some(w) = writer.as_mut() {
            let written = async {
                w.write_all(chunk).await?;
                w.flush().await
            }
            .await;
            if let Err(e) = written {
                tracing::warn!(stream = %stats.name, error = %e, "cannot pass the app's output on; still counting it");
                writer = None;
            }
        }
        scanner.feed(chunk, Instant::now());
        stats.publish(scanner.counts());
    }
    scanner.finish(Instant::now());
    stats.publish(scanner.counts());
}

/// Adds one source's counts into a stream's total.
fn add_counts(total: &mut ScanCounts, c: &ScanCounts) {
    total.lines += c.lines;
    total.bytes += c.bytes;
    total.events += c.events;
    total.http.success += c.http.success;
    total.http.redirection += c.http.redirection;
    total.http.client_error += c.http.client_error;
    total.http.server_error += c.http.server_error;
    total.oversized_lines += c.oversized_lines;
    total.latency.add(&c.latency);
}

/// Follows a file glob across rotations (the [`tail::Tailer`] already positioned on
/// the files that existed at start) and scans it into `stats`: one scanner per
/// followed file (a partial line belongs to its file), rotations and truncations
/// counted, the stream's totals republished after every event. Ends when `stop`
/// turns true and the follower has drained.
pub async fn follow_files(
    tailer: tail::Tailer,
    stats: Arc<StreamStats>,
    settings: LogSettings,
    format: LogFormat,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stats.tail.set(tailer.stats());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let follower = tokio::spawn(tailer.run(tx, stop));
    let mut scanners: std::collections::HashMap<tail::FileId, StreamScanner> = Default::default();
    // Counts of files let go, so totals never go backwards.
    let mut retired = ScanCounts::default();
    let new_scanner =
        || StreamScanner::new(settings.classifier.clone(), format, settings.max_line_bytes);
    let mut idle = tokio::time::interval(IDLE_CHECK);
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = Instant::now();
        tokio::select! {
            event = rx.recv() => match event {
                None => break,
                Some(tail::TailEvent::Data { file, bytes }) => {
                    scanners.entry(file).or_insert_with(new_scanner).feed(&bytes, now);
                }
                Some(tail::TailEvent::Rotated { .. }) => stats.add_rotation(),
                Some(tail::TailEvent::Truncated { file }) => {
                    // The unfinished line before the truncation is complete.
                    stats.add_truncation();
                    if let Some(mut s) = scanners.remove(&file) {
                        s.finish(now);
                        add_counts(&mut retired, &s.counts());
                    }
                }
                Some(tail::TailEvent::Closed { file }) => {
                    if let Some(mut s) = scanners.remove(&file) {
                        s.finish(now);
                        add_counts(&mut retired, &s.counts());
                    }
                }
            },
            _ = idle.tick() => {
                for s in scanners.values_mut() {
                    s.flush_if_idle(now);
                }
            }
        }
        let mut total = retired.clone();
        for s in scanners.values() {
            add_counts(&mut total, &s.counts());
        }
        stats.publish(total);
    }
    let _ = follower.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_passes_bytes_through_and_counts() {
        let input: &[u8] = b"a\nERROR bb\n\xff\x00ccc";
        let mut out = Vec::new();
        let stats = StreamStats::new("stdout");
        pump(
            input,
            Some(&mut out),
            stats.clone(),
            LogSettings::default(),
            LogFormat::Plain,
        )
        .await;
        assert_eq!(out, input);
        let c = stats.counts();
        assert_eq!(c.lines, 3);
        assert_eq!(c.bytes, input.len() as u64);
        assert_eq!(c.events.get(classify::Severity::Error), 1);
        assert_eq!(stats.read_errors(), None, "no failed read, no series");
    }

    /// A read that fails (a directory read as a file: EISDIR, a real error from the
    /// kernel) is counted for `outrider_read_errors_total{source="log"}`.
    #[tokio::test]
    async fn a_failed_pipe_read_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let reader = tokio::fs::File::open(dir.path()).await.unwrap();
        let stats = StreamStats::new("stdout");
        pump(
            reader,
            None::<tokio::io::Sink>,
            stats.clone(),
            LogSettings::default(),
            LogFormat::Plain,
        )
        .await;
        assert_eq!(stats.read_errors(), Some(1));
    }
}
