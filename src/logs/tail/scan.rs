//! The blocking half of the follower: globbing, opening, reading, truncation and
//! rotation checks, checkpoint I/O. Runs inside `spawn_blocking`, one pass at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint::{self, Known};
use super::watch_dirs::pattern_dirs;
use super::{
    FileId, StartAt, TailEvent, TailOptions, TailStats, COPY_RECOVERY_MAX, FINGERPRINT_LEN,
    PASS_BUDGET,
};

/// Reads per file per pass; with more to read, the next pass starts at once. With
/// [`PASS_BUDGET`] over all files, bounds the memory one pass holds.
const READS_PER_PASS: usize = 16;

/// Offsets remembered for files let go while they still exist (renamed out of the
/// glob), so that meeting one again does not read it twice.
const KNOWN_MAX: usize = 256;

/// (device, inode)
pub(super) type Inode = (u64, u64);

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
    /// Where the line holding `offset` starts: just after the last `\n` read. The
    /// checkpoint saves this, not `offset`, so that a line cut by a stop is sent again
    /// whole after the restart (the consumer drops unfinished lines at the end).
    line_start: u64,
    /// When it left its name; `None` while it still matches the glob.
    rotated_at: Option<Instant>,
    /// Last time data was read, to tell when a rotated file's writer is gone.
    last_data: Instant,
    /// An error on this file was reported and not yet cleared: report once.
    failing_since: Option<Instant>,
}

/// Where a followed file's reading stands: what a read that must be undone restores.
struct Position {
    offset: u64,
    line_start: u64,
    fingerprint: Vec<u8>,
}

impl Followed {
    /// Notes the name the glob matched this inode under (`None`: no match), or that
    /// it left its name or was deleted (not `linked`): a rotation, reported once.
    /// A file the glob missed while its name still leads to it (a directory that
    /// could not be listed for a moment) is not rotated: counting it would count
    /// its real rotation a second time, after it came back under its name.
    fn follow_name(
        &mut self,
        matched: Option<&PathBuf>,
        linked: bool,
        now: Instant,
        stats: &TailStats,
        events: &mut Vec<TailEvent>,
    ) {
        match matched {
            Some(p) if linked => {
                if *p != self.path {
                    self.path = p.clone();
                }
                // Back under a matching name (renamed back): not rotated any more.
                self.rotated_at = None;
            }
            _ => {
                if self.rotated_at.is_none() && !(linked && self.still_named()) {
                    self.rotated_at = Some(now);
                    stats.rotations.fetch_add(1, Ordering::Relaxed);
                    events.push(TailEvent::Rotated { file: self.id });
                    tracing::debug!(path = %self.path.display(), file = %self.id, "log file rotated");
                }
            }
        }
    }

    /// Whether the name it was last seen under still leads to this very file.
    fn still_named(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| inode_of(&m) == self.inode)
    }

    /// Whether the file (now `size` bytes) was truncated: shorter than our offset,
    /// or its first bytes are not the ones we read.
    fn truncated(&self, size: u64) -> bool {
        size < self.offset
            || (!self.fingerprint.is_empty()
                && match read_prefix(&self.file, self.fingerprint.len()) {
                    Ok(head) => head != self.fingerprint,
                    Err(_) => false, // the read below reports it
                })
    }

    fn position(&self) -> Position {
        Position {
            offset: self.offset,
            line_start: self.line_start,
            fingerprint: self.fingerprint.clone(),
        }
    }

    fn restore(&mut self, p: Position) {
        self.offset = p.offset;
        self.line_start = p.line_start;
        self.fingerprint = p.fingerprint;
    }

    /// Reads from `offset` (up to [`READS_PER_PASS`] reads into `buf`, and while
    /// `budget` lasts, each read taken from it), one `Data` event per read. Returns
    /// whether there is more to read at once.
    fn read_new(
        &mut self,
        buf: &mut [u8],
        budget: &mut usize,
        now: Instant,
        events: &mut Vec<TailEvent>,
    ) -> io::Result<bool> {
        let mut reads = 0;
        loop {
            if reads == READS_PER_PASS || *budget == 0 {
                return Ok(true);
            }
            reads += 1;
            match self.file.read_at(buf, self.offset) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    *budget = budget.saturating_sub(n);
                    let bytes = buf[..n].to_vec();
                    self.extend_fingerprint(&bytes);
                    if let Some(nl) = memchr::memrchr(b'\n', &bytes) {
                        self.line_start = self.offset + nl as u64 + 1;
                    }
                    self.offset += n as u64;
                    self.last_data = now;
                    events.push(TailEvent::Data {
                        file: self.id,
                        bytes,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Adds to the fingerprint what of `bytes`, read at `offset`, falls within its
    /// first [`FINGERPRINT_LEN`] bytes.
    fn extend_fingerprint(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if self.fingerprint.len() < FINGERPRINT_LEN && self.offset < FINGERPRINT_LEN as u64 {
            let start = self.fingerprint.len().saturating_sub(self.offset as usize);
            let want = (FINGERPRINT_LEN - self.fingerprint.len()).min(n - start.min(n));
            // The fingerprint continues where it stopped only if it was
            // built up to `offset`; it always is (see `open`).
            self.fingerprint
                .extend_from_slice(&bytes[start.min(n)..start.min(n) + want]);
        }
    }
}

/// The blocking half: all file I/O. Moved into `spawn_blocking` for each pass.
pub(super) struct FileReader {
    pub(super) opts: TailOptions,
    pub(super) stats: Arc<TailStats>,
    files: Vec<Followed>,
    known: VecDeque<Known>,
    next_id: u64,
    /// Paths whose open failed and was reported; reported again only after a success.
    failing_paths: HashSet<PathBuf>,
    /// Paths that failed in the current `discover` pass: a failing path not among
    /// them at its end works again, or is gone, and is no longer reported.
    failed_in_pass: HashSet<PathBuf>,
    /// The offsets saved last, to skip writing an unchanged checkpoint.
    saved: Option<String>,
    /// The read buffer, `read_chunk` long, reused across reads and passes.
    scratch: Vec<u8>,
    /// Where the last pass ran out of [`PASS_BUDGET`]: the next one starts there,
    /// so that busy files early in the list do not starve the others.
    resume_at: usize,
}

impl FileReader {
    pub(super) fn new(mut opts: TailOptions, stats: Arc<TailStats>) -> FileReader {
        if opts.read_chunk == 0 {
            opts.read_chunk = 64 * 1024;
        }
        FileReader {
            scratch: vec![0; opts.read_chunk],
            opts,
            stats,
            files: Vec::new(),
            known: VecDeque::new(),
            next_id: 0,
            failing_paths: HashSet::new(),
            failed_in_pass: HashSet::new(),
            saved: None,
            resume_at: 0,
        }
    }

    /// The start-of-run scan: checkpoint, then position the files that exist now.
    pub(super) fn start(mut self) -> FileReader {
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
    pub(super) fn pass(&mut self, now: Instant) -> (Vec<TailEvent>, bool) {
        let matched = self.discover(StartAt::Beginning, now);
        let mut events = Vec::new();
        let mut more = false;
        let mut budget = PASS_BUDGET;
        let resume_at = std::mem::take(&mut self.resume_at);
        if resume_at < self.files.len() {
            self.files.rotate_left(resume_at);
        }
        let mut i = 0;
        while i < self.files.len() {
            if budget == 0 && self.resume_at == 0 {
                self.resume_at = i;
            }
            let (done, m) = self.step(i, &matched, &mut budget, now, &mut events);
            more |= m;
            if done {
                let f = self.files.swap_remove(i);
                self.stats.recovered(&f.path);
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
    pub(super) fn watch_dirs(&self) -> HashSet<PathBuf> {
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
        self.failed_in_pass.clear();
        let matched = self.discover_files(start_at, now);
        // A directory that can be read again, a file deleted or made readable:
        // not reported for ever after (the status page, `outrider report`).
        let checkpoint = self.opts.checkpoint.clone();
        let cleared: Vec<PathBuf> = self
            .failing_paths
            .iter()
            .filter(|p| {
                !self.failed_in_pass.contains(*p) && Some(p.as_path()) != checkpoint.as_deref()
            })
            .cloned()
            .collect();
        for p in cleared {
            self.failing_paths.remove(&p);
            self.stats.recovered(&p);
        }
        matched
    }

    fn discover_files(&mut self, start_at: StartAt, now: Instant) -> HashMap<Inode, PathBuf> {
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
            if self.is_checkpoint(&path) {
                // A pattern like `/state/*` would otherwise follow our own writes.
                continue;
            }
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
        // Only now does the path work again: an open whose first read fails
        // (`read_head`) is the same failure, counted once.
        if self.failing_paths.remove(&path) {
            self.stats.recovered(&path);
        }
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
            line_start: offset,
            rotated_at: None,
            last_data: now,
            failing_since: None,
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
        budget: &mut usize,
        now: Instant,
        events: &mut Vec<TailEvent>,
    ) -> (bool, bool) {
        let release_after = self.opts.release_after;
        let stats = &*self.stats;
        let f = &mut self.files[i];
        let meta = match f.file.metadata() {
            Ok(m) => m,
            Err(e) => {
                return failed(f, stats, "stat", &e, now, release_after);
            }
        };
        f.follow_name(matched.get(&f.inode), meta.nlink() > 0, now, stats, events);
        if f.truncated(meta.len()) {
            recover_from_copy(f, self.opts.read_chunk, stats, events);
            stats.truncations.fetch_add(1, Ordering::Relaxed);
            events.push(TailEvent::Truncated { file: f.id });
            f.offset = 0;
            f.line_start = 0;
            f.fingerprint.clear();
        }

        // A truncation between the check above and a read below would make us read the
        // new content at the old offset; checked again after reading (see below).
        let mark = events.len();
        let before = f.position();
        let more = match f.read_new(&mut self.scratch, budget, now, events) {
            Ok(more) => more,
            Err(e) => return failed(f, stats, "read", &e, now, release_after),
        };
        if f.failing_since.take().is_some() {
            stats.recovered(&f.path);
        }
        if events.len() > mark
            && !before.fingerprint.is_empty()
            && read_prefix(&f.file, before.fingerprint.len()).is_ok_and(|h| h != before.fingerprint)
        {
            // Truncated while we read: what we read may be new content at the old
            // offset. Forget it; the next pass (at once) handles the truncation.
            events.truncate(mark);
            f.restore(before);
            return (false, true);
        }
        let release = match f.rotated_at {
            Some(at) => !more && now.duration_since(f.last_data.max(at)) >= release_after,
            None => false,
        };
        (release, more)
    }

    fn is_checkpoint(&self, path: &Path) -> bool {
        self.opts
            .checkpoint
            .as_deref()
            .is_some_and(|c| checkpoint::is_ours(path, c))
    }

    fn remember(&mut self, k: Known) {
        if self.known.len() == KNOWN_MAX {
            self.known.pop_front();
        }
        self.known.push_back(k);
    }

    fn report_path(&mut self, path: &Path, e: &io::Error) {
        self.failed_in_pass.insert(path.to_path_buf());
        if self.failing_paths.insert(path.to_path_buf()) {
            self.stats.failed(path, e);
            tracing::warn!(path = %path.display(), error = %e, "cannot open log file; will retry");
        }
    }

    fn load_checkpoint(&mut self, path: &Path) -> Option<Vec<Known>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                // Reported until a checkpoint is written there.
                self.failing_paths.insert(path.to_path_buf());
                self.stats.failed(path, &e);
                tracing::warn!(path = %path.display(), error = %e, "cannot read the tail checkpoint; starting without it");
                return None;
            }
        };
        match checkpoint::parse(&text) {
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
    pub(super) fn save_checkpoint(&mut self) {
        let Some(path) = self.opts.checkpoint.clone() else {
            return;
        };
        let entries = self
            .files
            .iter()
            .map(|f| Known {
                inode: f.inode,
                fingerprint: f.fingerprint.clone(),
                offset: f.line_start,
                path: f.path.clone(),
            })
            .chain(self.known.iter().cloned());
        let text = checkpoint::render(entries);
        if self.saved.as_deref() == Some(text.as_str()) {
            return;
        }
        match checkpoint::write_atomically(&path, text.as_bytes()) {
            Ok(()) => {
                self.saved = Some(text);
                if self.failing_paths.remove(&path) {
                    self.stats.recovered(&path);
                }
            }
            // Counted and logged once until a write works again, not every second.
            Err(e) if self.failing_paths.insert(path.clone()) => {
                self.stats.failed(&path, &e);
                tracing::warn!(path = %path.display(), error = %e, "cannot write the tail checkpoint");
            }
            Err(_) => {}
        }
    }
}

/// Reports a failing file once, and says (as `step` does) whether to let it go: a
/// rotated file that keeps failing (a stale NFS handle) is not held open forever.
fn failed(
    f: &mut Followed,
    stats: &TailStats,
    what: &str,
    e: &io::Error,
    now: Instant,
    release_after: Duration,
) -> (bool, bool) {
    let since = *f.failing_since.get_or_insert_with(|| {
        stats.failed(&f.path, e);
        tracing::warn!(path = %f.path.display(), error = %e, "cannot {what} log file; will retry");
        now
    });
    let give_up = f.rotated_at.is_some() && now.duration_since(since) >= release_after;
    if give_up {
        tracing::warn!(path = %f.path.display(), "letting go of a rotated log file that cannot be read");
    }
    (give_up, false)
}

/// On a truncation, sends what the copy holds past our offset (see the module doc),
/// up to [`COPY_RECOVERY_MAX`]; what lies beyond is skipped and counted.
fn recover_from_copy(f: &Followed, chunk: usize, stats: &TailStats, events: &mut Vec<TailEvent>) {
    if f.fingerprint.is_empty() {
        // Nothing was read (offset 0): nothing to recover, and nothing to match by.
        return;
    }
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
    let end = f.offset.saturating_add(COPY_RECOVERY_MAX);
    let mut buf = vec![0u8; chunk];
    loop {
        if offset >= end {
            let len = copy.metadata().map_or(offset, |m| m.len());
            let skipped = len.saturating_sub(offset);
            if skipped > 0 {
                stats.skipped_bytes.fetch_add(skipped, Ordering::Relaxed);
                tracing::warn!(path = %copy_path.display(), skipped_bytes = skipped, "rotated copy of log file holds more than we recover from a copy; the rest is skipped");
            }
            break;
        }
        let want = buf.len().min((end - offset) as usize);
        match copy.read_at(&mut buf[..want], offset) {
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
                stats.read_errors.fetch_add(1, Ordering::Relaxed);
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
        // Looked at before opening: opening a FIFO for reading would block.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    fn scanner(pattern: &Path) -> FileReader {
        let opts = TailOptions {
            start_at: StartAt::Beginning,
            release_after: Duration::from_secs(5),
            ..TailOptions::new(pattern.to_str().unwrap())
        };
        FileReader::new(opts, Arc::new(TailStats::default())).start()
    }

    fn data(events: &[TailEvent]) -> Vec<u8> {
        events
            .iter()
            .filter_map(|e| match e {
                TailEvent::Data { bytes, .. } => Some(bytes.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// The bound on holding a deleted file, on a clock we choose: not before
    /// `release_after` since it was rotated and last grew, at once after.
    #[test]
    fn the_checkpoint_is_not_followed_even_when_the_pattern_matches_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app"), b"x\n").unwrap();
        let opts = TailOptions {
            start_at: StartAt::Beginning,
            checkpoint: Some(dir.path().join("offsets")),
            ..TailOptions::new(format!("{}/*", dir.path().display()))
        };
        let mut s = FileReader::new(opts, Arc::new(TailStats::default())).start();
        let now = Instant::now();
        assert_eq!(data(&s.pass(now).0), b"x\n");
        s.save_checkpoint();
        std::fs::write(dir.path().join("offsets.tmp"), b"left over\n").unwrap();
        assert!(s.pass(now).0.is_empty());
        assert_eq!(s.stats.open_files(), 1);
    }

    #[test]
    fn a_deleted_file_is_let_go_release_after_its_last_growth() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let mut w = File::create(&log).unwrap();
        w.write_all(b"one\n").unwrap();
        let mut s = scanner(&log);
        let t0 = Instant::now();
        assert_eq!(data(&s.pass(t0).0), b"one\n");
        std::fs::remove_file(&log).unwrap();
        let (events, _) = s.pass(t0 + Duration::from_secs(1));
        assert_eq!(events, vec![TailEvent::Rotated { file: FileId(0) }]);
        // The writer still writes: the clock restarts.
        w.write_all(b"two\n").unwrap();
        let (events, _) = s.pass(t0 + Duration::from_secs(4));
        assert_eq!(data(&events), b"two\n");
        let (events, _) = s.pass(t0 + Duration::from_millis(8_999));
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(s.stats.open_files(), 1);
        let (events, _) = s.pass(t0 + Duration::from_secs(9));
        assert_eq!(events, vec![TailEvent::Closed { file: FileId(0) }]);
        assert_eq!(s.stats.open_files(), 0);
        assert_eq!(s.stats.rotations(), 1);
    }

    /// Same inode, content restarted and already longer than our offset: the
    /// fingerprint tells; the copy (not matching the glob) gives the unread tail.
    #[test]
    fn truncation_past_the_offset_is_noticed_and_the_copy_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        w.write_all(b"old 1\n").unwrap();
        let mut s = scanner(&log);
        let now = Instant::now();
        assert_eq!(data(&s.pass(now).0), b"old 1\n");
        w.write_all(b"old 2\n").unwrap();
        std::fs::copy(&log, dir.path().join("a.log.1")).unwrap();
        w.set_len(0).unwrap();
        w.write_all(b"new content, longer than before\n").unwrap();
        let (events, _) = s.pass(now);
        let at = events
            .iter()
            .position(|e| *e == TailEvent::Truncated { file: FileId(0) })
            .expect("Truncated");
        assert_eq!(data(&events[..at]), b"old 2\n", "the tail, from the copy");
        assert_eq!(
            data(&events[at..]),
            b"new content, longer than before\n",
            "then the new content from byte 0"
        );
        assert_eq!(s.stats.truncations(), 1);
        assert!(s.pass(now).0.is_empty(), "nothing twice");
    }

    /// A copy holding more past our offset than [`COPY_RECOVERY_MAX`]: that much is
    /// recovered, the rest skipped and counted.
    #[test]
    fn copy_recovery_is_capped_and_the_rest_counted() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"head\n").unwrap();
        let mut s = scanner(&log);
        let now = Instant::now();
        assert_eq!(data(&s.pass(now).0), b"head\n");
        let extra = COPY_RECOVERY_MAX as usize + 12_345;
        let mut copy = b"head\n".to_vec();
        copy.resize(copy.len() + extra, b'x');
        std::fs::write(dir.path().join("a.log.1"), &copy).unwrap();
        std::fs::write(&log, b"").unwrap();
        let (events, _) = s.pass(now);
        let at = events
            .iter()
            .position(|e| *e == TailEvent::Truncated { file: FileId(0) })
            .expect("Truncated");
        assert_eq!(data(&events[..at]).len() as u64, COPY_RECOVERY_MAX);
        assert_eq!(s.stats.skipped_bytes(), 12_345);
    }

    /// Many busy files: one pass holds at most [`PASS_BUDGET`] (plus one read), and
    /// the passes that follow start where it ran out, so every file is read.
    #[test]
    fn a_pass_holds_at_most_its_budget_and_starves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let size = 1024 * 1024;
        for i in 0..10 {
            std::fs::write(dir.path().join(format!("{i}.log")), vec![b'a'; size]).unwrap();
        }
        let mut s = scanner(&dir.path().join("*.log"));
        let now = Instant::now();
        let mut per_file: HashMap<FileId, usize> = HashMap::new();
        let mut passes = 0;
        loop {
            let (events, more) = s.pass(now);
            let mut held = 0;
            for e in &events {
                if let TailEvent::Data { file, bytes } = e {
                    held += bytes.len();
                    *per_file.entry(*file).or_default() += bytes.len();
                }
            }
            assert!(
                held <= PASS_BUDGET + s.opts.read_chunk,
                "{held} bytes in one pass"
            );
            passes += 1;
            if !more {
                break;
            }
            assert!(passes < 100, "no end");
        }
        assert_eq!(per_file.len(), 10);
        assert!(per_file.values().all(|&n| n == size), "{per_file:?}");
        // 10 MiB at 4 MiB a pass: three passes, and one that finds nothing more.
        assert!(passes <= 4, "{passes} passes");
    }

    /// A file the glob misses for a pass while its name still leads to it (an
    /// unreadable directory for a moment) is not rotated; its later real rotation
    /// counts once.
    #[test]
    fn a_glob_miss_is_no_rotation_and_a_rotation_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"one\n").unwrap();
        let mut s = scanner(&log);
        let now = Instant::now();
        assert_eq!(data(&s.pass(now).0), b"one\n");
        let mut events = Vec::new();
        let mut budget = PASS_BUDGET;
        s.step(0, &HashMap::new(), &mut budget, now, &mut events);
        assert!(events.is_empty(), "{events:?}");
        assert!(s.pass(now).0.is_empty());
        std::fs::rename(&log, dir.path().join("a.log.1")).unwrap();
        assert_eq!(s.pass(now).0, vec![TailEvent::Rotated { file: FileId(0) }]);
        assert_eq!(s.stats.rotations(), 1);
    }

    /// An open that fails (`/proc/self/mem` at offset 0 is an I/O error, whoever
    /// we are) is counted once and the path named with its error until it works.
    #[test]
    fn a_failing_open_is_counted_once_and_named() {
        let mut s = scanner(Path::new("/proc/self/mem"));
        s.pass(Instant::now());
        s.pass(Instant::now());
        assert_eq!(s.stats.read_errors(), 1);
        let failing = s.stats.failing();
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert_eq!(failing[0].0, Path::new("/proc/self/mem"));
        assert!(failing[0].1.contains("os error"), "{failing:?}");
    }
}
