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
//! `spawn_blocking`: file I/O never blocks the runtime thread.
//!
//! # Rotation cases
//! - **rename + create** (logrotate `create`, the kubelet): the old file no longer
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
//!   [`FINGERPRINT_LEN`] bytes equal the old one's is not noticed.
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
//! checkpoint holds the offsets of data already *sent* on the channel; it is written
//! atomically (temp file + rename) every [`CHECKPOINT_EVERY`] when something changed,
//! and on stop. After a crash, data sent since the last write is sent again.
//!
//! # Counters
//! [`TailStats`] (an `Arc` of atomics, see [`Tailer::stats`]) counts rotations,
//! truncations, read errors and open files for metrics; the events say the same per
//! file. Errors never stop the follower: they are logged with the path and counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};
use tokio::time::MissedTickBehavior;

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_LEN: usize = 256;

/// How often the checkpoint is written while running (when offsets changed).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Reads per file per pass; with more to read, the next pass starts at once. Bounds
/// the memory one pass holds (`READS_PER_PASS * read_chunk` per file).
const READS_PER_PASS: usize = 16;

/// Offsets remembered for files let go while they still exist (renamed out of the
/// glob), so that meeting one again does not read it twice.
const KNOWN_MAX: usize = 256;

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
}

/// Follows `opts.pattern` until `stop` turns true (or its sender is dropped).
/// Shorthand for [`Tailer::new`] then [`Tailer::run`].
pub async fn follow(opts: TailOptions, tx: mpsc::Sender<TailEvent>, stop: watch::Receiver<bool>) {
    Tailer::new(opts).await.run(tx, stop).await
}

/// A follower whose start-of-run scan is done: files that exist now are positioned
/// (by `start_at` or the checkpoint); files created from now on are read from byte 0.
pub struct Tailer {
    scan: Scanner,
}

impl Tailer {
    /// Loads the checkpoint and positions the files that exist now (off the runtime
    /// thread). Data flows once [`Tailer::run`] is called.
    pub async fn new(opts: TailOptions) -> Tailer {
        let stats = Arc::new(TailStats::default());
        let fallback = opts.clone();
        let scan = Scanner::new(opts, stats.clone());
        let scan = match tokio::task::spawn_blocking(move || scan.start()).await {
            Ok(s) => s,
            Err(e) => {
                // Only a bug gets here; follow without the start-of-run scan.
                tracing::error!(error = %e, "the tailer's start-of-run scan panicked");
                Scanner::new(fallback, stats)
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
                    _ = ticker.tick() => tick = true,
                    _ = wake.notified() => {}
                }
            }
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

/// inotify watches on the directories the pattern can match in. Best effort: where
/// inotify is missing or out of watches, the poll does the work.
struct Watches {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: HashSet<PathBuf>,
}

impl Watches {
    fn new(wake: Arc<Notify>, enabled: bool) -> Watches {
        if !enabled {
            return Watches {
                watcher: None,
                dirs: HashSet::new(),
            };
        }
        // Any event (or error, such as a queue overflow) only wakes a pass: the pass
        // finds out what changed by looking.
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            wake.notify_one();
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "no file change notifications; following logs by polling alone");
                None
            }
        };
        Watches {
            watcher,
            dirs: HashSet::new(),
        }
    }

    fn enabled(&self) -> bool {
        self.watcher.is_some()
    }

    /// Watches exactly `want` (inotify calls only: cheap on the runtime thread).
    fn reconcile(&mut self, want: HashSet<PathBuf>) {
        use notify::Watcher;
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        for gone in self.dirs.difference(&want).cloned().collect::<Vec<_>>() {
            // Fails when inotify already dropped the watch with the directory.
            let _ = w.unwatch(&gone);
            self.dirs.remove(&gone);
        }
        for dir in want {
            if self.dirs.contains(&dir) {
                continue;
            }
            match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir);
                }
                Err(e) => {
                    // Not counted as a read error: polling still reads the files.
                    tracing::debug!(path = %dir.display(), error = %e, "cannot watch directory; polling it");
                }
            }
        }
    }
}

/// The directories whose changes can change what `pattern` matches: the nearest
/// existing ancestor of its fixed leading part, and every existing directory matched
/// by its wildcard levels.
fn pattern_dirs(pattern: &str) -> HashSet<PathBuf> {
    let path = Path::new(pattern);
    let parts: Vec<Component> = path.components().collect();
    let fixed = parts
        .iter()
        .position(|c| {
            let s = c.as_os_str().to_string_lossy();
            s.contains(['*', '?', '['])
        })
        .unwrap_or(parts.len().saturating_sub(1));
    let mut dirs = HashSet::new();
    let mut anchor: PathBuf = parts[..fixed].iter().collect();
    while !anchor.is_dir() {
        if !anchor.pop() {
            break;
        }
    }
    if anchor.is_dir() {
        dirs.insert(anchor);
    }
    // Wildcard directory levels: every level between the fixed part and the file name.
    for level in fixed + 1..parts.len() {
        let sub: PathBuf = parts[..level].iter().collect();
        let Ok(found) = glob::glob(&sub.to_string_lossy()) else {
            continue;
        };
        dirs.extend(found.flatten().filter(|p| p.is_dir()));
    }
    dirs
}

/// (device, inode)
type Inode = (u64, u64);

fn inode_of(m: &Metadata) -> Inode {
    (m.dev(), m.ino())
}

/// One file being followed.
struct Followed {
    id: FileId,
    /// The name it was last seen under (for logs and the checkpoint).
    path: PathBuf,
    file: File,
    inode: Inode,
    /// Its first bytes as of `offset`: up to [`FINGERPRINT_LEN`], shorter only while
    /// the file is.
    fingerprint: Vec<u8>,
    /// Bytes read (and sent, once the pass's events are sent).
    offset: u64,
    /// When it left its name; `None` while it still matches the glob.
    rotated_at: Option<Instant>,
    /// Last time data was read, to tell when a rotated file's writer is gone.
    last_data: Instant,
    /// An error on this file was reported and not yet cleared: report once.
    failing: bool,
}

/// An offset kept for a file not open now (from the checkpoint, or let go while it
/// still existed).
#[derive(Debug, Clone)]
struct Known {
    inode: Inode,
    fingerprint: Vec<u8>,
    offset: u64,
    path: PathBuf,
}

/// The blocking half: all file I/O. Moved into `spawn_blocking` for each pass.
struct Scanner {
    opts: TailOptions,
    stats: Arc<TailStats>,
    files: Vec<Followed>,
    known: VecDeque<Known>,
    next_id: u64,
    /// Paths whose open failed and was reported; reported again only after a success.
    failing_paths: HashSet<PathBuf>,
    /// The offsets saved last, to skip writing an unchanged checkpoint.
    saved: Option<String>,
}

impl Scanner {
    fn new(mut opts: TailOptions, stats: Arc<TailStats>) -> Scanner {
        if opts.read_chunk == 0 {
            opts.read_chunk = 64 * 1024;
        }
        Scanner {
            opts,
            stats,
            files: Vec::new(),
            known: VecDeque::new(),
            next_id: 0,
            failing_paths: HashSet::new(),
            saved: None,
        }
    }

    /// The start-of-run scan: checkpoint, then position the files that exist now.
    fn start(mut self) -> Scanner {
        if let Err(e) = glob::Pattern::new(&self.opts.pattern) {
            tracing::warn!(pattern = %self.opts.pattern, error = %e, "invalid log file pattern; nothing will be followed");
        }
        let checkpoint = self.opts.checkpoint.clone();
        let loaded = checkpoint.as_deref().and_then(|p| self.load_checkpoint(p));
        let had_checkpoint = loaded.is_some();
        self.known.extend(loaded.unwrap_or_default());
        let start_at = if had_checkpoint {
            // Unknown files appeared while we were stopped: all their lines are new.
            StartAt::Beginning
        } else {
            self.opts.start_at
        };
        let now = Instant::now();
        self.discover(start_at, now);
        self.recover_renamed(now);
        self
    }

    /// One pass: find new files, read every followed file, let go of drained rotated
    /// ones. Returns the events in order, and whether there is more to read at once.
    fn pass(&mut self, now: Instant) -> (Vec<TailEvent>, bool) {
        let matched = self.discover(StartAt::Beginning, now);
        let mut events = Vec::new();
        let mut more = false;
        let mut i = 0;
        while i < self.files.len() {
            let (done, m) = self.step(i, &matched, now, &mut events);
            more |= m;
            if done {
                let f = self.files.swap_remove(i);
                self.stats.open_files.fetch_sub(1, Ordering::Relaxed);
                events.push(TailEvent::Closed { file: f.id });
                tracing::debug!(path = %f.path.display(), file = %f.id, "let go of rotated log file");
                if f.file.metadata().is_ok_and(|m| m.nlink() > 0) {
                    self.remember(Known {
                        inode: f.inode,
                        fingerprint: f.fingerprint,
                        offset: f.offset,
                        path: f.path,
                    });
                }
            } else {
                i += 1;
            }
        }
        (events, more)
    }

    /// What to watch: [`pattern_dirs`], and the real directory of each file followed
    /// under its name (through symlinks such as `/var/log/containers/*.log`, whose
    /// targets' writes inotify reports only in the target's directory).
    fn watch_dirs(&self) -> HashSet<PathBuf> {
        let mut dirs = pattern_dirs(&self.opts.pattern);
        for f in self.files.iter().filter(|f| f.rotated_at.is_none()) {
            if let Some(dir) = std::fs::canonicalize(&f.path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                dirs.insert(dir);
            }
        }
        dirs
    }

    /// Globs the pattern, follows files not followed yet (starting at `start_at`
    /// unless remembered), and returns every matched inode with its path.
    fn discover(&mut self, start_at: StartAt, now: Instant) -> HashMap<Inode, PathBuf> {
        let mut matched = HashMap::new();
        let paths = match glob::glob(&self.opts.pattern) {
            Ok(p) => p,
            // Warned about once, in `start`.
            Err(_) => return matched,
        };
        for entry in paths {
            let path = match entry {
                Ok(p) => p,
                Err(e) => {
                    // An unreadable directory on the way.
                    let p = e.path().to_path_buf();
                    self.report_path(&p, e.error());
                    continue;
                }
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // vanished between glob and stat
            };
            if !meta.is_file() {
                continue;
            }
            let inode = inode_of(&meta);
            matched.insert(inode, path.clone());
            if self.files.iter().any(|f| f.inode == inode) {
                continue;
            }
            match File::open(&path) {
                Ok(file) => {
                    self.failing_paths.remove(&path);
                    self.open(file, path, start_at, now, &mut matched);
                }
                Err(e) => self.report_path(&path, &e),
            }
        }
        matched
    }

    /// Starts following an opened file, unless (by its own inode, which may differ
    /// from the one globbed if the name was replaced meanwhile) it is followed already.
    fn open(
        &mut self,
        file: File,
        path: PathBuf,
        start_at: StartAt,
        now: Instant,
        matched: &mut HashMap<Inode, PathBuf>,
    ) -> Option<usize> {
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                self.report_path(&path, &e);
                return None;
            }
        };
        let inode = inode_of(&meta);
        matched.insert(inode, path.clone());
        if self.files.iter().any(|f| f.inode == inode) {
            return None;
        }
        let head = match read_head(&file) {
            Ok(h) => h,
            Err(e) => {
                self.report_path(&path, &e);
                return None;
            }
        };
        let size = meta.len();
        let remembered = self
            .known
            .iter()
            .position(|k| k.inode == inode && head.starts_with(&k.fingerprint) && size >= k.offset);
        let (offset, fingerprint) = match remembered {
            Some(i) => {
                let k = self.known.remove(i).expect("index from position");
                (k.offset, head)
            }
            None => match start_at {
                StartAt::End => (size, head),
                StartAt::Beginning => (0, Vec::new()),
            },
        };
        let id = FileId(self.next_id);
        self.next_id += 1;
        tracing::debug!(path = %path.display(), file = %id, offset, "following log file");
        self.stats.open_files.fetch_add(1, Ordering::Relaxed);
        self.files.push(Followed {
            id,
            path,
            file,
            inode,
            // From byte 0 the fingerprint is built from what we read, so it always
            // describes the content we actually sent.
            fingerprint,
            offset,
            rotated_at: None,
            last_data: now,
            failing: false,
        });
        Some(self.files.len() - 1)
    }

    /// Checkpointed files that no longer match the glob (renamed while we were
    /// stopped): find them by inode in their old directory and read them to the end.
    fn recover_renamed(&mut self, now: Instant) {
        let pending: Vec<Known> = self
            .known
            .iter()
            .filter(|k| !self.files.iter().any(|f| f.inode == k.inode))
            .cloned()
            .collect();
        for k in pending {
            let Some(dir) = k.path.parent() else { continue };
            // The same checks `open` makes to take the remembered offset.
            let found = find_sibling(dir, |file, meta| {
                inode_of(meta) == k.inode
                    && meta.len() >= k.offset
                    && read_prefix(file, k.fingerprint.len()).is_ok_and(|h| h == k.fingerprint)
            });
            let Some((path, file)) = found else { continue };
            let mut ignore = HashMap::new();
            if let Some(i) = self.open(file, path, StartAt::Beginning, now, &mut ignore) {
                // Not matched by the glob: counts as rotated from the start (no
                // `Rotated` event; the consumer never saw this id), let go once read.
                self.files[i].rotated_at = Some(now);
                tracing::info!(path = %self.files[i].path.display(), "reading the rest of a log file rotated while stopped");
            }
        }
    }

    /// Checks, reads and ages one followed file. Returns (let go now, more to read).
    fn step(
        &mut self,
        i: usize,
        matched: &HashMap<Inode, PathBuf>,
        now: Instant,
        events: &mut Vec<TailEvent>,
    ) -> (bool, bool) {
        let chunk = self.opts.read_chunk;
        let release_after = self.opts.release_after;
        let stats = self.stats.clone();
        let f = &mut self.files[i];
        let meta = match f.file.metadata() {
            Ok(m) => m,
            Err(e) => {
                report_file(f, &stats, "stat", &e);
                return (false, false);
            }
        };
        match matched.get(&f.inode) {
            Some(p) if meta.nlink() > 0 => {
                if *p != f.path {
                    f.path = p.clone();
                }
                // Back under a matching name (renamed back): not rotated any more.
                f.rotated_at = None;
            }
            _ => {
                if f.rotated_at.is_none() {
                    f.rotated_at = Some(now);
                    stats.rotations.fetch_add(1, Ordering::Relaxed);
                    events.push(TailEvent::Rotated { file: f.id });
                    tracing::debug!(path = %f.path.display(), file = %f.id, "log file rotated");
                }
            }
        }

        let size = meta.len();
        let truncated = size < f.offset
            || (!f.fingerprint.is_empty()
                && match read_prefix(&f.file, f.fingerprint.len()) {
                    Ok(head) => head != f.fingerprint,
                    Err(_) => false, // the read below reports it
                });
        if truncated {
            recover_from_copy(f, chunk, events);
            stats.truncations.fetch_add(1, Ordering::Relaxed);
            events.push(TailEvent::Truncated { file: f.id });
            f.offset = 0;
            f.fingerprint.clear();
        }

        // A truncation between the check above and a read below would make us read the
        // new content at the old offset; checked again after reading (see below).
        let mark = events.len();
        let (old_offset, old_fingerprint) = (f.offset, f.fingerprint.clone());
        let mut more = false;
        let mut reads = 0;
        let mut buf = vec![0u8; chunk];
        loop {
            if reads == READS_PER_PASS {
                more = true;
                break;
            }
            reads += 1;
            match f.file.read_at(&mut buf, f.offset) {
                Ok(0) => break,
                Ok(n) => {
                    let bytes = buf[..n].to_vec();
                    if f.fingerprint.len() < FINGERPRINT_LEN && f.offset < FINGERPRINT_LEN as u64 {
                        let start = f.fingerprint.len().saturating_sub(f.offset as usize);
                        let want = (FINGERPRINT_LEN - f.fingerprint.len()).min(n - start.min(n));
                        // The fingerprint continues where it stopped only if it was
                        // built up to `offset`; it always is (see `open`).
                        f.fingerprint
                            .extend_from_slice(&bytes[start.min(n)..start.min(n) + want]);
                    }
                    f.offset += n as u64;
                    f.last_data = now;
                    f.failing = false;
                    events.push(TailEvent::Data { file: f.id, bytes });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    report_file(f, &stats, "read", &e);
                    return (false, false);
                }
            }
        }
        if events.len() > mark
            && !old_fingerprint.is_empty()
            && read_prefix(&f.file, old_fingerprint.len()).is_ok_and(|h| h != old_fingerprint)
        {
            // Truncated while we read: what we read may be new content at the old
            // offset. Forget it; the next pass (at once) handles the truncation.
            events.truncate(mark);
            f.offset = old_offset;
            f.fingerprint = old_fingerprint;
            return (false, true);
        }
        let release = match f.rotated_at {
            Some(at) => !more && now.duration_since(f.last_data.max(at)) >= release_after,
            None => false,
        };
        (release, more)
    }

    fn remember(&mut self, k: Known) {
        if self.known.len() == KNOWN_MAX {
            self.known.pop_front();
        }
        self.known.push_back(k);
    }

    fn report_path(&mut self, path: &Path, e: &io::Error) {
        if self.failing_paths.insert(path.to_path_buf()) {
            self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), error = %e, "cannot open log file; will retry");
        }
    }

    fn load_checkpoint(&mut self, path: &Path) -> Option<Vec<Known>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), error = %e, "cannot read the tail checkpoint; starting without it");
                return None;
            }
        };
        match parse_checkpoint(&text) {
            Some(k) => {
                self.saved = Some(text);
                Some(k)
            }
            None => {
                tracing::warn!(path = %path.display(), "the tail checkpoint is not one we wrote; starting without it");
                None
            }
        }
    }

    /// Writes the offsets now held (only call when all events read so far are sent).
    fn save_checkpoint(&mut self) {
        let Some(path) = self.opts.checkpoint.clone() else {
            return;
        };
        let entries = self
            .files
            .iter()
            .map(|f| Known {
                inode: f.inode,
                fingerprint: f.fingerprint.clone(),
                offset: f.offset,
                path: f.path.clone(),
            })
            .chain(self.known.iter().cloned());
        let text = render_checkpoint(entries);
        if self.saved.as_deref() == Some(text.as_str()) {
            return;
        }
        match write_atomically(&path, text.as_bytes()) {
            Ok(()) => self.saved = Some(text),
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), error = %e, "cannot write the tail checkpoint");
            }
        }
    }
}

fn report_file(f: &mut Followed, stats: &TailStats, what: &str, e: &io::Error) {
    if !f.failing {
        f.failing = true;
        stats.read_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(path = %f.path.display(), error = %e, "cannot {what} log file; will retry");
    }
}

/// On a truncation, sends what the copy holds past our offset (see the module doc).
fn recover_from_copy(f: &Followed, chunk: usize, events: &mut Vec<TailEvent>) {
    let dir = f.path.parent().unwrap_or(Path::new("."));
    let copy = find_sibling(dir, |file, meta| {
        inode_of(meta) != f.inode
            && meta.len() >= f.offset
            && read_prefix(file, f.fingerprint.len()).is_ok_and(|h| h == f.fingerprint)
    });
    let Some((copy_path, copy)) = copy else {
        if f.offset > 0 {
            tracing::warn!(path = %f.path.display(), offset = f.offset, "log file truncated and no rotated copy found; lines written just before the truncation may be missed");
        }
        return;
    };
    tracing::debug!(path = %f.path.display(), copy = %copy_path.display(), "log file truncated; reading the rest from its copy");
    let mut offset = f.offset;
    let mut buf = vec![0u8; chunk];
    loop {
        match copy.read_at(&mut buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                offset += n as u64;
                events.push(TailEvent::Data {
                    file: f.id,
                    bytes: buf[..n].to_vec(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(path = %copy_path.display(), error = %e, "cannot read rotated copy of log file");
                break;
            }
        }
    }
}

/// The newest regular file in `dir` that `want` accepts, opened.
fn find_sibling(dir: &Path, want: impl Fn(&File, &Metadata) -> bool) -> Option<(PathBuf, File)> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(i64, PathBuf, File)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() || !want(&file, &meta) {
            continue;
        }
        if best.as_ref().is_none_or(|(t, _, _)| meta.mtime() > *t) {
            best = Some((meta.mtime(), path, file));
        }
    }
    best.map(|(_, p, f)| (p, f))
}

fn read_head(file: &File) -> io::Result<Vec<u8>> {
    read_prefix(file, FINGERPRINT_LEN)
}

/// Up to `len` bytes from byte 0 (fewer only at end of file).
fn read_prefix(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

const CHECKPOINT_HEADER: &str = "outrider-tail-checkpoint 1";

/// One line per file: `dev ino offset fingerprint-hex path` (path last: it may hold
/// spaces; it is only a hint for finding a file renamed while we were stopped).
fn render_checkpoint(entries: impl Iterator<Item = Known>) -> String {
    let mut s = String::from(CHECKPOINT_HEADER);
    s.push('\n');
    for k in entries {
        let hex: String = k.fingerprint.iter().map(|b| format!("{b:02x}")).collect();
        let fp = if hex.is_empty() { "-".to_string() } else { hex };
        s.push_str(&format!(
            "{} {} {} {} {}\n",
            k.inode.0,
            k.inode.1,
            k.offset,
            fp,
            k.path.display()
        ));
    }
    s
}

fn parse_checkpoint(text: &str) -> Option<Vec<Known>> {
    let mut lines = text.lines();
    if lines.next()? != CHECKPOINT_HEADER {
        return None;
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let mut f = line.splitn(5, ' ');
        let dev = f.next()?.parse().ok()?;
        let ino = f.next()?.parse().ok()?;
        let offset = f.next()?.parse().ok()?;
        let hex = f.next()?;
        let fingerprint = if hex == "-" {
            Vec::new()
        } else {
            if hex.len() % 2 != 0 {
                return None;
            }
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?
        };
        let path = PathBuf::from(f.next().unwrap_or(""));
        out.push(Known {
            inode: (dev, ino),
            fingerprint,
            offset,
            path,
        });
    }
    Some(out)
}

/// Temp file in the same directory, fsync, rename: a reader sees the old or the new
/// checkpoint, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename durable; not fatal where directories cannot be synced.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let entries = vec![
            Known {
                inode: (2049, 77),
                fingerprint: b"a\x00b".to_vec(),
                offset: 12,
                path: PathBuf::from("/var/log/my app/a.log"),
            },
            Known {
                inode: (1, 2),
                fingerprint: Vec::new(),
                offset: 0,
                path: PathBuf::from("/x"),
            },
        ];
        let text = render_checkpoint(entries.clone().into_iter());
        let back = parse_checkpoint(&text).expect("parses");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].inode, (2049, 77));
        assert_eq!(back[0].fingerprint, b"a\x00b");
        assert_eq!(back[0].offset, 12);
        assert_eq!(back[0].path, PathBuf::from("/var/log/my app/a.log"));
        assert!(back[1].fingerprint.is_empty());
        assert!(parse_checkpoint("something else\n").is_none());
        assert!(parse_checkpoint(&format!("{CHECKPOINT_HEADER}\n1 2 x - /p\n")).is_none());
    }

    #[test]
    fn watches_the_nearest_existing_ancestor_and_wildcard_levels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("pods/a_b_c/app")).unwrap();
        let dirs = pattern_dirs(&format!("{}/pods/*/app/*.log", root.display()));
        assert!(dirs.contains(&root.join("pods")), "{dirs:?}");
        assert!(dirs.contains(&root.join("pods/a_b_c")), "{dirs:?}");
        assert!(dirs.contains(&root.join("pods/a_b_c/app")), "{dirs:?}");
        let dirs = pattern_dirs(&format!("{}/later/deeper/app.log", root.display()));
        assert_eq!(dirs, HashSet::from([root.to_path_buf()]));
    }
}
