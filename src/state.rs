//! What the tick publishes and the HTTP server reads.
//!
//! The snapshot sits behind a std `RwLock` holding an `Arc`: the tick swaps in a new
//! one, a scrape clones the `Arc` and renders without holding the lock, so neither
//! ever waits on the other for longer than a pointer copy.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::actions::ActionCount;
use crate::alerts::notify::ReceiverStats;
use crate::alerts::{Alert, Evidence};
use crate::analysis::{LogRates, TargetStatus};
use crate::history::{History, Point};
use crate::logs::StreamStats;
use crate::sample::sockets::ScanStats;

/// What one tick publishes: the sample's readings, the verdicts and capacity of each
/// target, the log rates and the active alerts. Built whole by the tick, never
/// changed after; `/api/v1/status` is its JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub taken_at_unix: f64,
    pub sample_duration_seconds: f64,
    pub targets: Vec<TargetStatus>,
    /// Cumulative failed reads by source.
    pub read_errors: BTreeMap<&'static str, u64>,
    /// Error rates of the app's output (all streams).
    pub logs: Option<LogRates>,
    /// Pending and firing alerts after this tick.
    pub alerts: Vec<Alert>,
    /// Connection scans so far; `None` when they are off.
    pub connection_scans: Option<ScanStats>,
    /// Actions taken before the kill so far, by target, action and result.
    pub actions: Vec<ActionCount>,
    /// Log files that cannot be read now, by stream (filled in by [`Shared::publish`]):
    /// an unreadable log must not look like a quiet app.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_read_failures: Vec<LogReadFailure>,
}

/// A followed log file whose open or read fails now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogReadFailure {
    pub stream: String,
    pub path: String,
    /// The operating system's words (`Permission denied (os error 13)`).
    pub error: String,
}

impl<'a> From<&'a Snapshot> for Evidence<'a> {
    fn from(s: &'a Snapshot) -> Self {
        Evidence {
            targets: &s.targets,
            logs: s.logs.as_ref(),
            actions: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    ready: AtomicBool,
    streams: Vec<Arc<StreamStats>>,
    history: Mutex<History>,
    receivers: Mutex<Vec<Arc<ReceiverStats>>>,
}

impl Shared {
    pub fn new(streams: Vec<Arc<StreamStats>>) -> Self {
        Shared {
            streams,
            ..Default::default()
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes a complete sample; the first one makes `/readyz` answer 200. The
    /// streams' failed log reads join the sample's (`read_errors["log"]`, present
    /// once a stream follows files or a pipe read failed) with the files failing now.
    pub fn publish(&self, mut snapshot: Snapshot) {
        for st in &self.streams {
            if let Some(n) = st.read_errors() {
                *snapshot.read_errors.entry("log").or_default() += n;
            }
            let Some(tail) = st.tail() else { continue };
            for (path, error) in tail.failing() {
                snapshot.log_read_failures.push(LogReadFailure {
                    stream: st.name.clone(),
                    path: path.display().to_string(),
                    error,
                });
            }
        }
        let lines = self.streams.iter().map(|s| s.lines()).sum();
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(
                snapshot.taken_at_unix,
                snapshot.targets.iter().map(|t| &t.sample),
                lines,
            );
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        self.ready.store(true, Ordering::Release);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A target's chart history.
    pub fn history(&self, target: &str) -> Vec<Point> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .points(target)
    }

    /// Delivery counts of the alert receivers, set once at start.
    pub fn set_receivers(&self, r: Vec<Arc<ReceiverStats>>) {
        *self.receivers.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }

    pub fn receivers(&self) -> Vec<Arc<ReceiverStats>> {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn streams(&self) -> &[Arc<StreamStats>] {
        &self.streams
    }
}
