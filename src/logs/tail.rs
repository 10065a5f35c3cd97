//! Following log files that match a glob: every byte read exactly once across
//! rotations, and no file held open longer than needed.
//!
//! This module owns file discovery, identity, read offsets, the rotation and truncation
//! logic and the optional offset checkpoint. It hands raw bytes on as [`TailEvent`]s;
//! line framing is the consumer's job (it keeps one framing state per [`FileId`]).
//!
//! # How a file is known
//! A followed file is held open and read through its own handle with `pread`, never
//! re-opened by path, so a rename or unlink does not lose its tail. Its identity is
//! device + inode *plus* a fingerprint: its first bytes (up to [`FINGERPRINT_LEN`]).
//! While we hold the file open its inode cannot be reused; the fingerprint matters for
//! files we meet again after letting go of them (checkpoint, remembered offsets), where
//! a reused inode with other content is a new file, and for copytruncate below.
//!
//! # Each pass
//! A pass (on an inotify event, and every `poll_interval` regardless, because inotify
//! misses changes on NFS and some overlays and drops events when its queue overflows)
//! globs the pattern, opens files it has not seen, then for each followed file checks
//! truncation, reads what is new and decides whether to let it go. Passes run in
//! `spawn_blocking`: file I/O never blocks the runtime thread. A pass reads at most
//! 16 × `read_chunk` per file and then runs again at once, so memory stays bounded and
//! the channel's back-pressure reaches the reads. inotify watches the directories the
//! pattern can match in, and the real directory of each followed file (through
//! symlinks such as `/var/log/containers/*.log`); `watch: false` polls alone.
//!
//! # Rotation cases
//! - **rename + create** (logrotate `create`, the kubelet's size rotation, docker's
//!   json-file `-json.log` → `-json.log.1`): the old file no longer
//!   matches the glob under any name, so it is *rotated*: [`TailEvent::Rotated`], then it
//!   is read to its end; the new file at the old path is a new file read from byte 0.
//!   A renamed file that still matches the glob (`a.log` → `a.1.log` with `*.log`) is
//!   the same file under a new name: nothing is re-read.
//! - **delete + recreate**: as above; the link count turning 0 also marks it rotated.
//! - **a new `N.log` after a container restart** (CRI): a new file, read from byte 0;
//!   the previous `N-1.log` stays followed while it exists (it still matches the glob),
//!   and is let go once the kubelet deletes it.
//! - **letting go**: a rotated file is closed ([`TailEvent::Closed`], after all its
//!   data) once it is read to its end *and* has not grown for `release_after`, so a
//!   writer that reopens late still has its last lines read, and a deleted file's space
//!   is not held forever. A writer that goes on writing to a deleted file forever keeps
//!   it open forever: those lines are the app's output too.
//! - **copytruncate**: the same inode whose size fell below our offset, or whose first
//!   bytes no longer equal the fingerprint (it was truncated and has already grown past
//!   our offset), is *truncated*. The lines written between our last read and the copy
//!   are only in the copy, so we look in the same directory for a regular file whose
//!   first bytes equal the old fingerprint and that is at least as long as our offset,
//!   read it from our offset to its end, then send [`TailEvent::Truncated`] and read
//!   the file again from byte 0. Limits: the copy must sit in the same directory,
//!   uncompressed, when we notice the truncation (`delaycompress` does that); if two
//!   copytruncates happen between two passes, the generation in between is only in
//!   its copy and is missed; lines written between logrotate's copy and its truncate
//!   are lost by logrotate itself; the copy's name must not match the glob (it would
//!   be followed as a new file and read twice); a new generation whose first
//!   [`FINGERPRINT_LEN`] bytes equal the old one's is not noticed; a copytruncate while
//!   we were stopped is seen as a new file (read from byte 0) and the old content's
//!   unread tail is not looked for. The copy's remainder is read in one pass (its size
//!   is how far behind we were).
//! - **not seen at all**: a file created and rotated away between two passes (with
//!   inotify, a few milliseconds; polling alone, `poll_interval`) is never opened.
//! - **a file or directory that does not exist yet**: each pass globs again; the
//!   nearest existing ancestor of the pattern's fixed part is watched so a new
//!   directory wakes a pass, and directories matched by the pattern's wildcard levels
//!   are watched as they appear.
//!
//! # Start position and checkpoint
//! Files found at start are read from their end ([`StartAt::End`], so a restart does
//! not count history again) or beginning; files that appear later from byte 0. With a
//! checkpoint file that exists, files it names resume at their offset (same device,
//! inode and fingerprint), and any other file found at start is read from byte 0: it
//! appeared while we were stopped. A checkpointed file that was renamed out of the glob
//! while we were stopped is looked for in its old directory and read to its end. The
//! checkpoint holds, per file, the start of the last line not yet finished in the data
//! already *sent* on the channel, so a line cut by the stop is sent again whole after
//! the restart; it is written atomically (temp file + rename) every
//! [`CHECKPOINT_EVERY`] when something changed, and on stop. After a crash, data sent
//! since the last write is sent again.
//!
//! # What the consumer does
//! Keep a line-framing buffer per [`FileId`]. `Data`: append, take complete lines.
//! `Truncated`: the unfinished line is complete (flush it), then go on framing.
//! `Rotated`: nothing to do (counted in [`TailStats`]). `Closed`: flush the unfinished
//! line and forget the id. When `recv` gives `None` (the follower stopped), drop
//! unfinished lines uncounted: with a checkpoint they come again whole after the
//! restart. No `Closed` is sent at stop for files still followed.
//!
//! # Counters
//! [`TailStats`] (an `Arc` of atomics, see [`Tailer::stats`]) counts rotations,
//! truncations, read errors and open files for metrics; the events say the same per
//! file. Errors never stop the follower: they are logged with the path and counted.
//!
//! # Layout
//! - this file: the API and the async loop (wake-ups, sending, stop)
//! - `scan`: the blocking half: glob, open, read, rotation and truncation checks
//! - `watch_dirs`: which directories inotify watches
//! - `checkpoint`: the offsets file

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};
use tokio::time::MissedTickBehavior;

mod checkpoint;
mod scan;
mod watch_dirs;

use scan::FileReader;
use watch_dirs::Watches;

/// The most read from a copytruncate copy past our offset in one recovery. A copy
/// is normally read within a pass of the truncation (the bytes written since the
/// last pass); more means a writer far ahead of us or a copy that is not the file,
/// and reading it whole would hold it all in one pass's events. The rest is
/// skipped and counted ([`TailStats::skipped_bytes`]).
pub const COPY_RECOVERY_MAX: u64 = 4 * 1024 * 1024;

/// The most bytes one pass reads over all followed files before it sends them: a
/// pass's events are held in memory until sent, so N busy files must not hold N ×
/// (reads per pass × chunk). With more to read, the next pass starts at once.
pub const PASS_BUDGET: usize = 4 * 1024 * 1024;

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_LEN: usize = 256;

/// The least time between two passes woken by inotify.
const MIN_PASS_GAP: Duration = Duration::from_millis(10);

/// How often the checkpoint is written while running (when offsets changed).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Where to start reading files that exist when following starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// At their current end: history is not counted again on a restart.
    End,
    /// At byte 0.
    Beginning,
}

/// What to follow and how.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// A glob (`/var/log/pods/*/app/*.log`). Symlinks are followed; the identity is
    /// the target's.
    pub pattern: String,
    /// Only for files found at start without a checkpoint entry.
    pub start_at: StartAt,
    /// The safety-net poll, done even when inotify works.
    pub poll_interval: Duration,
    /// Offsets are kept here across restarts when set.
    pub checkpoint: Option<PathBuf>,
    /// How long a rotated file, read to its end, must stay unchanged before it is
    /// closed.
    pub release_after: Duration,
    /// Bytes per read, and the most one [`TailEvent::Data`] carries (0 means 64 KiB).
    pub read_chunk: usize,
    /// Use inotify to notice changes at once. Off, changes are noticed at the next
    /// poll (for file systems where inotify says nothing, or to save its watches).
    pub watch: bool,
}

impl TailOptions {
    /// Defaults: start at end, poll every 250 ms, no checkpoint, release after 5 s,
    /// 64 KiB reads, inotify on.
    pub fn new(pattern: impl Into<String>) -> TailOptions {
        TailOptions {
            pattern: pattern.into(),
            start_at: StartAt::End,
            poll_interval: Duration::from_millis(250),
            checkpoint: None,
            release_after: Duration::from_secs(5),
            read_chunk: 64 * 1024,
            watch: true,
        }
    }
}

/// A followed file, stable from first sight to [`TailEvent::Closed`]; never reused
/// within one [`Tailer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file#{}", self.0)
    }
}

/// What the follower tells its consumer. For one file, events arrive in file order
/// and `Closed` comes last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// The next bytes of `file` (not aligned to lines).
    Data { file: FileId, bytes: Vec<u8> },
    /// `file` left its name (renamed out of the glob or deleted); it is still read to
    /// its end.
    Rotated { file: FileId },
    /// `file` was truncated (copytruncate); the data before this event is the old
    /// content (including what was recovered from the copy), the data after it is new
    /// content from byte 0. A partial line before it is complete.
    Truncated { file: FileId },
    /// `file` is read to its end and let go: flush its partial last line.
    Closed { file: FileId },
}

/// Counters for metrics, shared with the follower.
#[derive(Debug, Default)]
pub struct TailStats {
    rotations: AtomicU64,
    truncations: AtomicU64,
    read_errors: AtomicU64,
    open_files: AtomicU64,
    /// Paths failing now, with the error: an unreadable log must not look like a
    /// quiet app. A path leaves when it reads again or is let go.
    failing: std::sync::Mutex<std::collections::BTreeMap<PathBuf, String>>,
    /// Bytes of a copytruncate copy not read because they passed
    /// [`COPY_RECOVERY_MAX`].
    skipped_bytes: AtomicU64,
}

impl TailStats {
    /// Files that left their name (renamed away or deleted) while followed.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// Truncations of a followed file (copytruncate) noticed.
    pub fn truncations(&self) -> u64 {
        self.truncations.load(Ordering::Relaxed)
    }

    /// Failed opens, reads, stats and checkpoint writes; each failing file counts
    /// once until it works again, not once per poll.
    pub fn read_errors(&self) -> u64 {
        self.read_errors.load(Ordering::Relaxed)
    }

    /// Files held open now.
    pub fn open_files(&self) -> u64 {
        self.open_files.load(Ordering::Relaxed)
    }

    /// The paths that fail now and why (the OS's words), by path.
    pub fn failing(&self) -> Vec<(PathBuf, String)> {
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing
            .iter()
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect()
    }

    /// Bytes skipped when recovering from a copy (see [`COPY_RECOVERY_MAX`]).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes.load(Ordering::Relaxed)
    }

    /// Counts a failure of `path` (the caller reports each failing path once) and
    /// notes it as failing.
    fn failed(&self, path: &std::path::Path, e: &std::io::Error) {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), e.to_string());
    }

    /// `path` works again, or is let go.
    fn recovered(&self, path: &std::path::Path) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        if !failing.is_empty() {
            failing.remove(path);
        }
    }
}

/// Follows `opts.pattern` until `stop` turns true (or its sender is dropped).
/// Shorthand for [`Tailer::new`] then [`Tailer::run`].
pub async fn follow(opts: TailOptions, tx: mpsc::Sender<TailEvent>, stop: watch::Receiver<bool>) {
    Tailer::new(opts).await.run(tx, stop).await
}

/// A follower whose start-of-run scan is done: files that exist now are positioned
/// (by `start_at` or the checkpoint); files created from now on are read from byte 0.
pub struct Tailer {
    scan: FileReader,
}

impl Tailer {
    /// Loads the checkpoint and positions the files that exist now (off the runtime
    /// thread). Data flows once [`Tailer::run`] is called.
    pub async fn new(opts: TailOptions) -> Tailer {
        let stats = Arc::new(TailStats::default());
        let fallback = opts.clone();
        let scan = FileReader::new(opts, stats.clone());
        let scan = match tokio::task::spawn_blocking(move || scan.start()).await {
            Ok(s) => s,
            Err(e) => {
                // Only a bug gets here; follow without the start-of-run scan.
                tracing::error!(error = %e, "the tailer's start-of-run scan panicked");
                FileReader::new(fallback, stats)
            }
        };
        Tailer { scan }
    }

    /// Counters to expose as metrics.
    pub fn stats(&self) -> Arc<TailStats> {
        self.scan.stats.clone()
    }

    /// Follows until `stop` turns true, then writes the checkpoint. Ends early when
    /// `tx`'s receiver is dropped. Returning drops `tx`: a consumer drains until
    /// `recv` gives `None` so that all data counted in the checkpoint is seen.
    pub async fn run(self, tx: mpsc::Sender<TailEvent>, mut stop: watch::Receiver<bool>) {
        let mut scan = Some(self.scan);
        let poll = scan.as_ref().map_or(Duration::from_millis(250), |s| {
            s.opts.poll_interval.max(Duration::from_millis(1))
        });
        let wake = Arc::new(Notify::new());
        let mut watches = Watches::new(wake.clone(), scan.as_ref().is_some_and(|s| s.opts.watch));
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut more = false;
        let mut last_checkpoint = Instant::now();
        let mut last_pass = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            // Directories to watch change rarely: looked for on poll ticks only.
            let mut tick = false;
            if !more {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    // Nobody to send to: offsets saved so far are what was consumed.
                    _ = tx.closed() => return,
                    _ = ticker.tick() => tick = true,
                    _ = wake.notified() => {
                        // A busy file (ours or a neighbour in a watched directory)
                        // would wake a pass per write: at most one per MIN_PASS_GAP.
                        tokio::time::sleep_until(last_pass + MIN_PASS_GAP).await;
                    }
                }
            }
            last_pass = tokio::time::Instant::now();
            let find_dirs = tick && watches.enabled();
            // All events of the previous pass are sent: offsets are safe to save.
            let save = last_checkpoint.elapsed() >= CHECKPOINT_EVERY;
            if save {
                last_checkpoint = Instant::now();
            }
            let Some(mut s) = scan.take() else { break };
            let result = tokio::task::spawn_blocking(move || {
                if save {
                    s.save_checkpoint();
                }
                let out = s.pass(Instant::now());
                let dirs = find_dirs.then(|| s.watch_dirs());
                (s, out, dirs)
            })
            .await;
            let events = match result {
                Ok((s, (events, m), dirs)) => {
                    scan = Some(s);
                    more = m;
                    if let Some(dirs) = dirs {
                        watches.reconcile(dirs);
                    }
                    events
                }
                Err(e) => {
                    tracing::error!(error = %e, "a tailer pass panicked; stopping the tailer");
                    return;
                }
            };
            for ev in events {
                if tx.send(ev).await.is_err() {
                    // Offsets now run ahead of what was consumed: do not save them.
                    tracing::debug!("tail consumer gone; stopping the tailer");
                    return;
                }
            }
        }
        if let Some(mut s) = scan {
            let _ = tokio::task::spawn_blocking(move || s.save_checkpoint()).await;
        }
    }
}
