//! What the tick publishes and the HTTP server reads.
//!
//! The snapshot sits behind a std `RwLock` holding an `Arc`: the tick swaps in a new
//! one, a scrape clones the `Arc` and renders without holding the lock, so neither
//! ever waits on the other for longer than a pointer copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::history::{History, Point};

use crate::logs::StreamStats;
use crate::sample::Snapshot;

#[derive(Debug, Default)]
pub struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    ready: AtomicBool,
    streams: Vec<Arc<StreamStats>>,
    history: Mutex<History>,
    receivers: Mutex<Vec<Arc<crate::alerts::notify::ReceiverStats>>>,
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

    /// Publishes a complete sample; the first one makes `/readyz` answer 200.
    pub fn publish(&self, snapshot: Snapshot) {
        let lines = self.streams.iter().map(|s| s.lines()).sum();
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&snapshot, lines);
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
    pub fn set_receivers(&self, r: Vec<Arc<crate::alerts::notify::ReceiverStats>>) {
        *self.receivers.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }

    pub fn receivers(&self) -> Vec<Arc<crate::alerts::notify::ReceiverStats>> {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn streams(&self) -> &[Arc<StreamStats>] {
        &self.streams
    }
}
