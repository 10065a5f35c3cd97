//! Per-process readings from `/proc/<pid>/…`, through the procfs crate.
//!
//! Two passes per tick: [`ProcReader::list`] reads `stat` of every visible process (cheap: it is
//! what grouping needs), then [`ProcReader::read_details`] reads the rest only for processes that
//! belong to a target. A process that vanishes between the two is not an error; a file
//! that cannot be read is counted in [`ReadErrors`] and the process is kept with what
//! could be read.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use procfs::process::Process;
use procfs::ProcError;

use super::pid_hash::{PidMap, PidSet};

/// Kernel threads carry this flag in `stat`; they never belong to an app.
const PF_KTHREAD: u32 = 0x0020_0000;

/// What `stat` says of one process: enough to group it and to know who it is.
#[derive(Debug, Clone)]
pub struct ProcEntry {
    pub pid: i32,
    pub ppid: i32,
    /// Start time in clock ticks after boot; with `pid` it is the process' identity.
    pub start_ticks: u64,
    /// Shared, not copied, when the entry is (an outsider's is kept between ticks).
    pub comm: std::sync::Arc<str>,
    pub kernel_thread: bool,
    /// Exited but not yet reaped (`Z`/`X`): no longer running, nothing to measure.
    pub zombie: bool,
    pub user_ticks: u64,
    pub system_ticks: u64,
    pub rss_pages: u64,
    pub vsize_bytes: u64,
    pub threads: u64,
}

impl ProcEntry {
    pub fn identity(&self) -> Identity {
        Identity {
            pid: self.pid,
            start_ticks: self.start_ticks,
        }
    }
}

/// A process is (pid, start time): pid reuse never merges two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Identity {
    pub pid: i32,
    pub start_ticks: u64,
}

/// The rest of what a member process reports; `None` where a file could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub swap_bytes: Option<u64>,
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
    pub open_fds: Option<u64>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    /// Summed over threads, nanoseconds runnable but waiting for a CPU.
    pub run_delay_ns: Option<u64>,
}

/// Failed reads by source (`stat`, `status`, `io`, …), cumulative. Sources are a
/// fixed set of file names, so the label stays bounded.
#[derive(Debug, Clone, Default)]
pub struct ReadErrors {
    pub counts: BTreeMap<&'static str, u64>,
}

impl ReadErrors {
    /// Counts a failed read; the first failure of each source is logged at warn
    /// level with its path, later ones at debug, so a permanent condition does not
    /// flood the log.
    pub fn record(&mut self, source: &'static str, error: &dyn std::fmt::Display) {
        let n = self.counts.entry(source).or_insert(0);
        *n += 1;
        if *n == 1 {
            tracing::warn!(source, error = %error, "read failed; counting it in outrider_read_errors_total and carrying on");
        } else {
            tracing::debug!(source, error = %error, "read failed");
        }
    }
}

/// Why a read under `/proc/<pid>/` failed, as callers tell the cases apart: a
/// process that exited while we looked (normal churn: not counted, not logged), one
/// we may not read (another user's process), any other I/O error, or a file in a
/// shape we do not know. All but `Gone` are counted in `outrider_read_errors_total`
/// and never stop the tick.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the process is gone")]
    Gone,
    #[error("{0}")]
    Permission(std::io::Error),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("unexpected format: {0}")]
    Malformed(&'static str),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        if io_gone(&e) {
            ReadError::Gone
        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
            ReadError::Permission(e)
        } else {
            ReadError::Io(e)
        }
    }
}

/// Whether an error means "the process is gone", which is normal churn.
pub fn is_gone(e: &ProcError) -> bool {
    match e {
        ProcError::NotFound(_) => true,
        ProcError::Io(io, _) => io_gone(io),
        _ => false,
    }
}

/// The same for plain I/O errors: no such file, or ESRCH from a dying process.
pub fn io_gone(e: &std::io::Error) -> bool {
    const ESRCH: i32 = 3; // the same on every Linux architecture
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH)
}

/// Reads `/proc/<pid>/…` files with one reused buffer and path, parsing only the
/// fields Outrider uses.
///
/// This is the hot path of every tick (one `stat` per visible process, four reads
/// per member). The procfs crate opens an `O_PATH` directory handle per process and
/// parses every field of every file; measured on a group of 200 that cost about
/// twice the syscalls and most of the user time, so the few formats needed here are
/// parsed by hand (each in a small function with its own test). procfs still serves
/// `exe`, `cmdline` and Outrider's own `process_*` metrics.
///
/// Files read every tick are kept open and read again from offset 0 (see [`Kept`]).
#[derive(Debug)]
pub struct ProcReader {
    root: PathBuf,
    path: String,
    /// Always at least [`READ_CHUNK`] long: its first bytes hold the last file read.
    buf: Vec<u8>,
    kept: Kept,
    /// Thread ids by pid, kept between ticks (see [`ProcReader::tids`]).
    tids: PidMap<i32, Tasks>,
    /// Children by pid as last read between listings, and the newest pid of the
    /// host (`loadavg`) read before them (see [`ProcReader::descendants`]).
    kids: PidMap<i32, (u64, Vec<i32>)>,
    kids_mark: Option<u32>,
    loadavg: Option<File>,
    /// `status` and `io` figures by pid as last read, and how long they serve
    /// ([`SLOW_DETAILS_EVERY`]).
    slow: PidMap<i32, Slow>,
    slow_every: std::time::Duration,
}

/// How often a member's `status` (swap, context switches) and `io` (bytes read
/// and written) are read again; its other files are read every tick. They feed
/// only the exported counters and the swap gauge, never a verdict, and a scrape
/// is seldom more often than this. At 1 s ticks, watching a group of 120
/// processes, the two files were 27-42% of the tick thread's CPU
/// (docs/performance.md). A new member is read at its first tick; one that exits
/// loses what it did since its last read, at most this long (was one tick).
pub const SLOW_DETAILS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// One process' `status` and `io` figures as last read.
#[derive(Debug, Clone, Copy)]
struct Slow {
    /// Start time of the process read: a reused pid is read afresh.
    start_ticks: u64,
    at: Instant,
    swap_bytes: Option<u64>,
    voluntary_switches: Option<u64>,
    involuntary_switches: Option<u64>,
    read_bytes: Option<u64>,
    write_bytes: Option<u64>,
    /// Used since the last sweep.
    used: bool,
}

/// Files of processes kept open between ticks and read again from offset 0
/// (`pread`), like the cgroup's (`cgroup::Files`): opening `/proc/<pid>/status`
/// walks its path, dearer than the read itself (docs/performance.md). A kept
/// descriptor belongs to one process: once that process is gone its files fail
/// (`ESRCH`, `ENOENT`), even when its pid is reused. A failed read is tried again
/// on a fresh open, so every answer is the one a fresh open would give. Files not
/// read during a tick are closed by [`ProcReader::sweep`]; at most `max` are kept,
/// a quarter of Outrider's own fd limit. A full listing's `stat` files (of
/// processes in no group, read again only at a later listing) are the exception:
/// up to [`LINGER_MAX`] of them stay open unread until `linger` after the listing
/// that last read them.
#[derive(Debug)]
struct Kept {
    /// By path: the file, whether it was read since the last sweep, and until when
    /// it stays open unread (a listing's).
    open: PidMap<String, (File, bool, Option<Instant>)>,
    max: usize,
    /// While [`ProcReader::list`] reads: until when its new files stay open unread.
    linger: Option<Instant>,
    /// How many kept files have a `linger` time.
    lingering: usize,
}

/// The most `stat` files a listing keeps open unread. Closing them after each
/// listing was 8% of the tick thread's CPU at 1 s ticks, one process watched among
/// ~90, and opening them again most of the listing's 4% (docs/performance.md); each
/// kept one holds a descriptor and the kernel's page-sized read buffer, so this
/// bounds that to 1 MiB on a host of many processes (the rest are opened and
/// closed as before).
const LINGER_MAX: usize = 256;

/// A process' thread ids as last listed (`task/`), kept between ticks: listing
/// `task/` every tick was about a fifth of the tick's CPU for the steady bench's
/// four-threaded app (docs/performance.md).
#[derive(Debug)]
struct Tasks {
    /// Start time of the process listed: a reused pid is listed afresh.
    start_ticks: u64,
    tids: std::sync::Arc<[String]>,
    /// Read since the last sweep.
    used: bool,
}

/// The first read of a file asks for this much.
const READ_CHUNK: usize = 4096;

impl ProcReader {
    pub fn new(root: &Path) -> Self {
        ProcReader {
            root: root.to_path_buf(),
            path: String::with_capacity(64),
            buf: vec![0; READ_CHUNK],
            kept: Kept {
                open: PidMap::default(),
                max: keep_max(),
                linger: None,
                lingering: 0,
            },
            tids: PidMap::default(),
            kids: PidMap::default(),
            kids_mark: None,
            loadavg: None,
            slow: PidMap::default(),
            slow_every: SLOW_DETAILS_EVERY,
        }
    }

    /// Reads `<root>/<pid>/<name>`, a one-record file (`stat`, `status`, `io`,
    /// `schedstat`, `limits`: the kernel formats it whole, so a short read is its
    /// end), through a kept descriptor.
    fn read(&mut self, pid: i32, name: &str) -> std::io::Result<&[u8]> {
        self.read_kept(pid, name, true)
    }

    /// Marks the kept descriptor of `<root>/<pid>/<name>`, if any, as read this
    /// tick, so that [`ProcReader::sweep`] keeps it open.
    fn touch(&mut self, pid: i32, name: &str) {
        self.set_path(pid, name);
        if let Some((_, used, _)) = self.kept.open.get_mut(self.path.as_str()) {
            *used = true;
        }
    }

    /// Reads `<root>/<pid>/<name>` into the buffer through its kept descriptor, or
    /// a fresh one then kept. `one_record`: stop at the first short read (a
    /// seq_file of many records, such as `children`, may return less than asked
    /// before its end: read those until 0).
    fn read_kept(&mut self, pid: i32, name: &str, one_record: bool) -> std::io::Result<&[u8]> {
        self.set_path(pid, name);
        let Self {
            path, buf, kept, ..
        } = self;
        if let Some((f, used, until)) = kept.open.get_mut(path.as_str()) {
            *used = true;
            if until.is_some() && kept.linger.is_some() {
                *until = kept.linger;
            }
            if let Ok(n) = read_at_start(f, buf, one_record) {
                return Ok(&buf[..n]);
            }
            if let Some((_, _, Some(_))) = kept.open.remove(path.as_str()) {
                kept.lingering -= 1;
            }
        }
        let f = File::open(path.as_str())?;
        let n = read_at_start(&f, buf, one_record)?;
        let linger = kept.linger.filter(|_| kept.lingering < LINGER_MAX);
        if kept.open.len() < kept.max {
            kept.lingering += usize::from(linger.is_some());
            kept.open.insert(path.clone(), (f, true, linger));
        }
        Ok(&buf[..n])
    }

    /// Closes the kept files not read since the last sweep (processes gone or no
    /// longer watched). Called once per tick.
    pub fn sweep(&mut self) {
        let now = Instant::now();
        let mut lingering = 0;
        self.kept.open.retain(|_, (_, used, until)| {
            let keep = std::mem::take(used) || until.is_some_and(|t| now < t);
            lingering += usize::from(keep && until.is_some());
            keep
        });
        self.kept.lingering = lingering;
        self.tids.retain(|_, t| std::mem::take(&mut t.used));
        self.slow.retain(|_, s| std::mem::take(&mut s.used));
    }

    /// Forgets every kept thread list: the next read of each lists `task/` again.
    /// Called at each full listing of /proc, which bounds how long a stale list
    /// can last (see [`ProcReader::tids`]).
    pub fn forget_threads(&mut self) {
        self.tids.clear();
    }

    /// The thread ids of `entry` (its `children` files and its threads' `schedstat`
    /// need them) and whether they come from an earlier listing. `task/` is listed
    /// again when the list is of another process (a reused pid) or its length is
    /// not this tick's thread count in `stat`. With the count unchanged the list can
    /// still be stale when one thread exited and another started: the gone thread's
    /// `schedstat` then fails and [`ProcReader::run_delay`] lists again, in the same
    /// tick; a `children` file of a gone thread reads empty, so a child forked by
    /// the new thread in that tick is found at the next tick (or at the next full
    /// listing, for a process whose `schedstat` is not read).
    fn tids(&mut self, entry: &ProcEntry) -> std::io::Result<(std::sync::Arc<[String]>, bool)> {
        if let Some(t) = self.tids.get_mut(&entry.pid) {
            if t.start_ticks == entry.start_ticks && t.tids.len() as u64 == entry.threads {
                t.used = true;
                return Ok((t.tids.clone(), true));
            }
        }
        self.set_path(entry.pid, "task");
        let tids: std::sync::Arc<[String]> = std::fs::read_dir(&self.path)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        let t = Tasks {
            start_ticks: entry.start_ticks,
            tids: tids.clone(),
            used: true,
        };
        self.tids.insert(entry.pid, t);
        Ok((tids, false))
    }

    fn set_path(&mut self, pid: i32, name: &str) {
        use std::fmt::Write;
        self.path.clear();
        let _ = write!(self.path, "{}/{pid}/{name}", self.root.display());
    }

    /// `stat` of every process under the root, except where `reuse` hands back a
    /// recent entry for a pid. Processes that vanish while we look are skipped
    /// silently; other failures are counted. The `stat` files it opens stay open
    /// for `linger` (see [`Kept`]): the next listing reads them again.
    pub fn list(
        &mut self,
        errors: &mut ReadErrors,
        reuse: impl Fn(i32) -> Option<ProcEntry>,
        linger: std::time::Duration,
    ) -> std::io::Result<Vec<ProcEntry>> {
        self.kept.linger = Some(Instant::now() + linger);
        let out = self.list_all(errors, reuse);
        self.kept.linger = None;
        out
    }

    fn list_all(
        &mut self,
        errors: &mut ReadErrors,
        reuse: impl Fn(i32) -> Option<ProcEntry>,
    ) -> std::io::Result<Vec<ProcEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(e) = reuse(pid) {
                out.push(e);
                continue;
            }
            match self.read_entry(pid) {
                Ok(e) => out.push(e),
                Err(ReadError::Gone) => {}
                Err(e) => errors.record("stat", &format!("{}: {e}", self.path)),
            }
        }
        out.sort_unstable_by_key(|e| e.pid);
        Ok(out)
    }

    /// `stat` of one process.
    pub fn read_entry(&mut self, pid: i32) -> Result<ProcEntry, ReadError> {
        let text = self.read(pid, "stat")?;
        parse_stat(pid, text).ok_or(ReadError::Malformed("stat"))
    }

    /// status, fd count, io and schedstat of a member process. Files that cannot be
    /// read are counted and left `None`; `None` overall when the process is gone.
    pub fn read_details(&mut self, entry: &ProcEntry, errors: &mut ReadErrors) -> Option<Details> {
        let pid = entry.pid;
        let mut d = Details::default();
        self.slow_details(entry, &mut d, errors)?;
        match self.open_fds(pid).map_err(ReadError::from) {
            Ok(n) => d.open_fds = Some(n),
            Err(ReadError::Gone) => return None,
            Err(e) => errors.record("fd", &format!("{}: {e}", self.path)),
        }
        d.run_delay_ns = match self.run_delay(entry).map_err(ReadError::from) {
            Ok(v) => v,
            Err(ReadError::Gone) => return None,
            Err(e) => {
                errors.record("schedstat", &format!("{}: {e}", self.path));
                None
            }
        };
        Some(d)
    }

    /// `status` and `io` of `entry` into `d`: read again when last read
    /// [`SLOW_DETAILS_EVERY`] ago or more (or never, or for another process of the
    /// same pid), else as last read. `None` when the process is gone.
    fn slow_details(
        &mut self,
        entry: &ProcEntry,
        d: &mut Details,
        errors: &mut ReadErrors,
    ) -> Option<()> {
        let now = Instant::now();
        let fresh = self.slow.get_mut(&entry.pid).filter(|s| {
            s.start_ticks == entry.start_ticks && now.duration_since(s.at) < self.slow_every
        });
        if let Some(s) = fresh {
            s.used = true;
            let kept = *s;
            // Their kept descriptors stay open for the next read: opening walks
            // the path, dearer than the read.
            self.touch(entry.pid, "status");
            self.touch(entry.pid, "io");
            let s = kept;
            *d = Details {
                swap_bytes: s.swap_bytes,
                voluntary_switches: s.voluntary_switches,
                involuntary_switches: s.involuntary_switches,
                read_bytes: s.read_bytes,
                write_bytes: s.write_bytes,
                ..Details::default()
            };
            return Some(());
        }
        match self.read(entry.pid, "status").map_err(ReadError::from) {
            Ok(text) => {
                let s = parse_status(text);
                d.swap_bytes = s.swap_bytes;
                d.voluntary_switches = s.voluntary_switches;
                d.involuntary_switches = s.involuntary_switches;
            }
            Err(ReadError::Gone) => return None,
            Err(e) => errors.record("status", &format!("{}: {e}", self.path)),
        }
        match self.read(entry.pid, "io").map_err(ReadError::from) {
            Ok(text) => {
                d.read_bytes = keyed_value(text, b"read_bytes:");
                d.write_bytes = keyed_value(text, b"write_bytes:");
            }
            Err(ReadError::Gone) => return None,
            Err(e) => errors.record("io", &format!("{}: {e}", self.path)),
        }
        let slow = Slow {
            start_ticks: entry.start_ticks,
            at: now,
            swap_bytes: d.swap_bytes,
            voluntary_switches: d.voluntary_switches,
            involuntary_switches: d.involuntary_switches,
            read_bytes: d.read_bytes,
            write_bytes: d.write_bytes,
            used: true,
        };
        self.slow.insert(entry.pid, slow);
        Some(())
    }

    /// Run-queue wait summed over threads. A single-threaded process' own
    /// `schedstat` is its only thread's, which saves listing `task/`. A thread of a
    /// kept list that cannot be read is gone: `task/` is listed again and the sum
    /// made afresh (see [`ProcReader::tids`]).
    fn run_delay(&mut self, entry: &ProcEntry) -> std::io::Result<Option<u64>> {
        if entry.threads <= 1 {
            let text = self.read(entry.pid, "schedstat")?;
            return Ok(parse_run_delay(text));
        }
        let mut path = String::with_capacity(32);
        loop {
            let (tids, kept) = self.tids(entry)?;
            let (mut total, mut failed) = (None, false);
            for tid in tids.iter() {
                path.clear();
                path.push_str("task/");
                path.push_str(tid);
                path.push_str("/schedstat");
                // A thread that exits while we walk a fresh list is normal.
                match self.read(entry.pid, &path) {
                    Ok(text) => {
                        if let Some(v) = parse_run_delay(text) {
                            total = Some(total.unwrap_or(0) + v);
                        }
                    }
                    Err(_) => failed = true,
                }
            }
            if !(kept && failed) {
                return Ok(total);
            }
            self.tids.remove(&entry.pid);
        }
    }

    /// `stat` of `roots` and, with `descend`, of all their descendants, found
    /// through `children` files rather than by listing the root. `None` when that
    /// cannot be done (see [`ProcReader::children`]): the caller lists instead.
    /// Failed reads are counted only when the answer is used.
    ///
    /// The `children` files (one per thread, a fifth of a steady tick's CPU for a
    /// four-threaded app) are read again only when a process has been created
    /// since they were last read: the last field of `loadavg`, the newest pid in
    /// Outrider's pid namespace (which holds every process it can see), read
    /// before them, is the same as last time. A child that exits or is reaped
    /// needs no new pid and is skipped as gone, as a fresh read would; a thread
    /// that exits hands its children to another of its process' threads, still in
    /// the list. One case reads late: a process that becomes a member's child by
    /// being reparented to it (a member that is a child subreaper, such as `tini`,
    /// when its grandchild's parent exits) is found at the next full listing.
    pub fn descendants(
        &mut self,
        roots: &[i32],
        descend: bool,
        errors: &mut ReadErrors,
    ) -> Option<Vec<ProcEntry>> {
        let mark = if descend { self.newest_pid() } else { None };
        let mut kids = std::mem::take(&mut self.kids);
        if mark.is_none() || mark != self.kids_mark {
            kids.clear();
        }
        self.kids_mark = None;
        let mut fresh = PidMap::default();
        let mut todo = roots.to_vec();
        let mut seen = PidSet::default();
        let (mut out, mut failed) = (Vec::new(), Vec::new());
        while let Some(pid) = todo.pop() {
            if !seen.insert(pid) {
                continue;
            }
            match self.read_entry(pid) {
                Ok(e) => {
                    if descend {
                        let list = match kids.remove(&pid) {
                            Some((start, list)) if start == e.start_ticks => list,
                            _ => {
                                let mut list = Vec::new();
                                if !self.children(&e, &mut list).ok()? {
                                    return None;
                                }
                                list
                            }
                        };
                        todo.extend_from_slice(&list);
                        fresh.insert(pid, (e.start_ticks, list));
                    }
                    out.push(e);
                }
                Err(ReadError::Gone) => {}
                Err(e) => failed.push(format!("{}: {e}", self.path)),
            }
        }
        for f in failed {
            errors.record("stat", &f);
        }
        (self.kids, self.kids_mark) = (fresh, mark);
        Some(out)
    }

    /// The newest pid in Outrider's pid namespace: the last field of
    /// `<root>/loadavg`, through a kept descriptor. `None` when it cannot be read
    /// (a fixture root without one): the `children` files are then always read.
    fn newest_pid(&mut self) -> Option<u32> {
        if self.loadavg.is_none() {
            self.loadavg = File::open(self.root.join("loadavg")).ok();
        }
        let n = read_at_start(self.loadavg.as_ref()?, &mut self.buf, true).ok()?;
        let text = std::str::from_utf8(&self.buf[..n]).ok()?;
        text.split_ascii_whitespace().nth(4)?.parse().ok()
    }

    /// Appends the children of `entry` to `out`, from each thread's
    /// `task/<tid>/children` (a child belongs to the thread that forked it).
    /// `Ok(false)` past [`CHILDREN_MAX_THREADS`] threads, where the reads would cost
    /// more than the listing they save; an error when a file cannot be read (a
    /// kernel without `CONFIG_PROC_CHILDREN`, or a thread gone meanwhile).
    fn children(&mut self, entry: &ProcEntry, out: &mut Vec<i32>) -> std::io::Result<bool> {
        if entry.threads > CHILDREN_MAX_THREADS {
            return Ok(false);
        }
        let tids: std::sync::Arc<[String]> = if entry.threads <= 1 {
            std::sync::Arc::new([entry.pid.to_string()])
        } else {
            self.tids(entry)?.0
        };
        for tid in tids.iter() {
            let text = self.read_kept(entry.pid, &format!("task/{tid}/children"), false)?;
            out.extend(parse_children(text));
        }
        Ok(true)
    }

    /// The soft limit on open files; `None` when unlimited.
    pub fn read_max_fds(&mut self, pid: i32) -> Result<Option<u64>, ReadError> {
        let text = self.read(pid, "limits")?;
        parse_max_open_files(text).ok_or(ReadError::Malformed("no Max open files line in limits"))
    }

    /// The path of the last file read, for error messages.
    pub fn last_path(&self) -> &str {
        &self.path
    }

    /// Open fds: the size of the fd directory on Linux 6.2+ (a `stat` of the
    /// directory kept open, a descriptor that fails once the process is gone),
    /// else its entries counted.
    pub fn open_fds(&mut self, pid: i32) -> std::io::Result<u64> {
        self.set_path(pid, "fd");
        if let Some((dir, used, _)) = self.kept.open.get_mut(self.path.as_str()) {
            *used = true;
            match dir.metadata() {
                Ok(m) if m.len() > 0 => return Ok(m.len()),
                _ => {
                    self.kept.open.remove(self.path.as_str());
                }
            }
        }
        let size = std::fs::metadata(&self.path)?.len();
        if size == 0 {
            return Ok(std::fs::read_dir(&self.path)?.count() as u64);
        }
        // Opening it asks for more than its size did (ptrace access): another
        // user's process is counted by path, as before.
        if let (true, Ok(dir)) = (self.kept.open.len() < self.kept.max, File::open(&self.path)) {
            self.kept.open.insert(self.path.clone(), (dir, true, None));
        }
        Ok(size)
    }
}

/// The text of `f` from offset 0 into `buf` (`pread`, so the descriptor can be
/// kept), grown as needed; returns its length. `one_record`: a read shorter than
/// asked is the end (procps reads /proc the same way), which saves the read that
/// would return 0.
pub fn read_at_start(f: &File, buf: &mut Vec<u8>, one_record: bool) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    if buf.len() < READ_CHUNK {
        buf.resize(READ_CHUNK, 0);
    }
    let mut n = 0;
    loop {
        let got = f.read_at(&mut buf[n..], n as u64)?;
        n += got;
        if got == 0 || (one_record && n < buf.len()) {
            return Ok(n);
        }
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// How many files [`Kept`] may hold: a quarter of Outrider's own soft fd limit
/// (from `/proc/self/limits`), at most 4096; 256 when it cannot be read.
fn keep_max() -> usize {
    let limit = std::fs::read("/proc/self/limits")
        .ok()
        .and_then(|text| parse_max_open_files(&text));
    match limit {
        Some(Some(soft)) => (soft / 4).min(4096) as usize,
        Some(None) => 4096,
        None => 256,
    }
}

/// Above this many threads a process' children are found by listing the root.
const CHILDREN_MAX_THREADS: u64 = 8;

/// The pids of a `children` file: `"12 345 "`.
fn parse_children(text: &[u8]) -> impl Iterator<Item = i32> + '_ {
    text.split(|b| b.is_ascii_whitespace())
        .filter_map(|w| std::str::from_utf8(w).ok()?.parse().ok())
}

/// `pid (comm) S ppid …`: comm may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(pid: i32, text: &[u8]) -> Option<ProcEntry> {
    let open = memchr::memchr(b'(', text)?;
    let close = memchr::memrchr(b')', text)?;
    let comm = String::from_utf8_lossy(text.get(open + 1..close)?).into();
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let mut field = |n: usize| -> Option<&str> { f.nth(n) };
    // Positions after comm: 0 state, 1 ppid, 6 flags, 11 utime, 12 stime,
    // 17 num_threads, 19 starttime, 20 vsize, 21 rss.
    let zombie = matches!(field(0)?, "Z" | "X");
    let ppid = field(0)?.parse().ok()?;
    let flags: u32 = field(4)?.parse().ok()?;
    let user_ticks = field(4)?.parse().ok()?;
    let system_ticks = field(0)?.parse().ok()?;
    let threads = field(4)?.parse().ok()?;
    let start_ticks = field(1)?.parse().ok()?;
    let vsize_bytes = field(0)?.parse().ok()?;
    let rss_pages = field(0)?.parse::<i64>().ok()?.max(0) as u64;
    Some(ProcEntry {
        pid,
        ppid,
        start_ticks,
        comm,
        kernel_thread: flags & PF_KTHREAD != 0,
        zombie,
        user_ticks,
        system_ticks,
        rss_pages,
        vsize_bytes,
        threads,
    })
}

/// The fields of `status` Outrider uses.
#[derive(Debug, Default, PartialEq)]
pub struct StatusFields {
    pub swap_bytes: Option<u64>,
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
}

pub fn parse_status(text: &[u8]) -> StatusFields {
    StatusFields {
        swap_bytes: keyed_value(text, b"VmSwap:").map(|kb| kb * 1024),
        voluntary_switches: keyed_value(text, b"voluntary_ctxt_switches:"),
        involuntary_switches: keyed_value(text, b"nonvoluntary_ctxt_switches:"),
    }
}

/// The number after `key` at the start of a line (`key   123 kB`).
fn keyed_value(text: &[u8], key: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at < text.len() {
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let line = &text[at..end];
        if let Some(rest) = line.strip_prefix(key) {
            let s = std::str::from_utf8(rest).ok()?;
            return s.split_ascii_whitespace().next()?.parse().ok();
        }
        at = end + 1;
    }
    None
}

/// `sum_exec_runtime run_delay timeslices`: the second number.
pub fn parse_run_delay(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text)
        .ok()?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `Max open files   1024   1048576   files`: the soft limit; `Some(None)` when
/// unlimited.
pub fn parse_max_open_files(text: &[u8]) -> Option<Option<u64>> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// The executable path, for `exe` matchers.
pub fn read_exe(proc_root: &Path, pid: i32) -> Result<String, ProcError> {
    let p = Process::new_with_root(proc_root.join(pid.to_string()))?;
    Ok(p.exe()?.to_string_lossy().into_owned())
}

/// The arguments joined by spaces, for `cmdline` matchers.
pub fn read_cmdline(proc_root: &Path, pid: i32) -> Result<String, ProcError> {
    let p = Process::new_with_root(proc_root.join(pid.to_string()))?;
    Ok(p.cmdline()?.join(" "))
}

/// Boot time in unix seconds, from `stat`'s `btime` line.
pub fn boot_time(proc_root: &Path) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(proc_root.join("stat"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| std::io::Error::other("no btime line in stat"))
}

/// Unix time of boot to the hundredth of a second: now less `uptime`, which start
/// times count from (`btime` in `stat` is rounded down to the second). Falls back
/// to `btime` when `uptime` cannot be read (a fixture tree without it).
pub fn boot_time_precise(proc_root: &Path) -> std::io::Result<f64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let uptime = std::fs::read_to_string(proc_root.join("uptime")).ok();
    match uptime.and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok()) {
        Some(up) => Ok(now - up),
        None => boot_time(proc_root).map(|b| b as f64),
    }
}

pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

pub fn page_size() -> u64 {
    procfs::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_tell_gone_from_permission_from_other_io() {
        use std::io::{Error, ErrorKind};
        assert!(matches!(
            ReadError::from(Error::from(ErrorKind::NotFound)),
            ReadError::Gone
        ));
        assert!(matches!(
            ReadError::from(Error::from_raw_os_error(3)),
            ReadError::Gone
        ));
        let denied = ReadError::from(Error::from(ErrorKind::PermissionDenied));
        assert!(matches!(denied, ReadError::Permission(_)), "{denied:?}");
        assert!(matches!(
            ReadError::from(Error::from_raw_os_error(5)),
            ReadError::Io(_)
        ));
    }

    fn me() -> (ProcReader, ProcEntry) {
        let mut r = ProcReader::new(Path::new("/proc"));
        let e = r.read_entry(std::process::id() as i32).unwrap();
        (r, e)
    }

    #[test]
    fn reads_this_process() {
        let (mut r, e) = me();
        assert!(e.threads >= 1);
        assert!(e.rss_pages > 0);
        let mut errors = ReadErrors::default();
        let d = r.read_details(&e, &mut errors).unwrap();
        assert!(d.open_fds.unwrap() >= 3);
        assert!(d.run_delay_ns.is_some());
        let max = r.read_max_fds(e.pid).unwrap().unwrap();
        assert!(max >= d.open_fds.unwrap());
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    }

    #[test]
    fn a_vanished_process_is_none_and_no_error() {
        let (mut r, mut e) = me();
        let mut errors = ReadErrors::default();
        // A child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        e.pid = pid;
        assert!(r.read_details(&e, &mut errors).is_none());
        assert!(matches!(r.read_entry(pid), Err(ReadError::Gone)));
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    }

    #[test]
    fn parses_stat_with_an_awkward_comm() {
        let text = b"42 (my (odd) app) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let e = parse_stat(42, text).unwrap();
        assert_eq!((e.pid, e.ppid, &*e.comm), (42, 1, "my (odd) app"));
        assert_eq!((e.user_ticks, e.system_ticks, e.threads), (250, 50, 3));
        assert_eq!(
            (e.start_ticks, e.vsize_bytes, e.rss_pages),
            (12345, 104857600, 2560)
        );
        assert!(!e.kernel_thread && !e.zombie);
        let zombie =
            b"43 (gone) Z 1 42 42 0 -1 4194564 100 0 0 0 250 50 0 0 20 0 1 0 12345 0 0 0\n";
        assert!(parse_stat(43, zombie).unwrap().zombie);
        let kthread = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert!(parse_stat(2, kthread).unwrap().kernel_thread);
        assert!(parse_stat(1, b"1 (x) S 0").is_none());
    }

    #[test]
    fn parses_status_io_schedstat_and_limits() {
        let status = b"Name:\tapp\nVmRSS:\t  1024 kB\nVmSwap:\t      8 kB\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(
            parse_status(status),
            StatusFields {
                swap_bytes: Some(8192),
                voluntary_switches: Some(12),
                involuntary_switches: Some(3),
            }
        );
        let io = b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(keyed_value(io, b"read_bytes:"), Some(4096));
        assert_eq!(keyed_value(io, b"write_bytes:"), Some(8192));
        assert_eq!(parse_run_delay(b"123456 7890 12\n"), Some(7890));
        let limits = b"Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(Some(1024)));
        let unlimited =
            b"Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), Some(None));
    }

    #[test]
    fn a_fixture_tree_lists_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        std::fs::create_dir(root.join("42")).unwrap();
        std::fs::write(
            root.join("42/stat"),
            "42 (app) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 104857600 2560 0\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("43")).unwrap();
        std::fs::write(root.join("43/stat"), "garbage").unwrap();
        std::fs::create_dir(root.join("self")).unwrap(); // not a pid: skipped
        let mut errors = ReadErrors::default();
        let list = ProcReader::new(root)
            .list(&mut errors, |_| None, std::time::Duration::ZERO)
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(&*list[0].comm, "app");
        assert_eq!(
            errors.counts.get("stat"),
            Some(&1),
            "the unparsable one is counted"
        );
        assert_eq!(boot_time(root).unwrap(), 1700000000);
    }

    /// A listing's `stat` files stay open unread until their linger time has
    /// passed, up to [`LINGER_MAX`] of them; a file read between listings is
    /// closed at the first sweep it went unread, as before.
    #[test]
    fn a_listings_files_linger_until_the_next_listing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let pids = 10..(10 + LINGER_MAX as i32 + 5);
        for pid in pids.clone() {
            std::fs::create_dir(root.join(pid.to_string())).unwrap();
            let stat = format!("{pid} (p) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 1000 10 0\n");
            std::fs::write(root.join(format!("{pid}/stat")), stat).unwrap();
        }
        let mut r = ProcReader::new(root);
        r.kept.max = 1000;
        let mut errors = ReadErrors::default();
        let linger = std::time::Duration::from_millis(300);
        let list = r.list(&mut errors, |_| None, linger).unwrap();
        assert_eq!(list.len(), pids.len());
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
        assert_eq!(r.kept.open.len(), pids.len(), "all kept for this tick");
        r.sweep();
        r.sweep();
        assert_eq!(r.kept.open.len(), LINGER_MAX, "unread, still open");
        assert_eq!(r.kept.lingering, LINGER_MAX);
        std::thread::sleep(linger);
        r.sweep();
        assert!(r.kept.open.is_empty(), "{:?}", r.kept.open.len());

        r.read_entry(10).unwrap();
        r.sweep();
        r.sweep();
        assert!(r.kept.open.is_empty(), "read between listings: closed");
    }

    /// A pid's descendants are found through each thread's `children` file; a
    /// process with many threads, or a kernel without those files, asks for the
    /// full listing instead.
    #[test]
    fn descendants_follow_every_threads_children() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let proc = |pid: i32, ppid: i32, threads: u64, children: &[(i32, &str)]| {
            let at = root.join(pid.to_string());
            std::fs::create_dir_all(&at).unwrap();
            let stat = format!(
                "{pid} (p{pid}) S {ppid} 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 {threads} 0 100 0 1 0\n"
            );
            std::fs::write(at.join("stat"), stat).unwrap();
            for (tid, text) in children {
                std::fs::create_dir_all(at.join(format!("task/{tid}"))).unwrap();
                std::fs::write(at.join(format!("task/{tid}/children")), text).unwrap();
            }
        };
        proc(10, 1, 1, &[(10, "11 ")]);
        proc(11, 10, 2, &[(11, ""), (12, "14 15 ")]);
        proc(14, 11, 1, &[(14, "")]);
        proc(20, 1, 1, &[(20, "")]); // not a descendant
        let mut errors = ReadErrors::default();
        let mut reader = ProcReader::new(root);
        let pids = |l: Option<Vec<ProcEntry>>| {
            let mut p: Vec<i32> = l.expect("found").iter().map(|e| e.pid).collect();
            p.sort_unstable();
            p
        };
        // 15 is gone (no stat): skipped, not counted.
        assert_eq!(
            pids(reader.descendants(&[10], true, &mut errors)),
            [10, 11, 14]
        );
        assert_eq!(
            pids(reader.descendants(&[10, 20], false, &mut errors)),
            [10, 20]
        );
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);

        proc(16, 1, CHILDREN_MAX_THREADS + 1, &[]);
        assert!(
            reader.descendants(&[16], true, &mut errors).is_none(),
            "too many threads"
        );
        // A fresh reader: a kept descriptor of a fixture file outlives its removal,
        // where a real /proc file is removed only with its process (whose kept
        // descriptors then fail).
        std::fs::remove_file(root.join("14/task/14/children")).unwrap();
        assert!(
            ProcReader::new(root)
                .descendants(&[10], true, &mut errors)
                .is_none(),
            "no children file"
        );
    }

    /// Between listings the `children` files are read again only once a process
    /// has been created (the newest pid in `loadavg` moved): a child that appears
    /// with the newest pid unchanged is not looked for, one that appears with it
    /// moved is found.
    #[test]
    fn children_are_read_again_only_when_a_pid_was_created() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let proc = |pid: i32, children: &str| {
            let at = root.join(pid.to_string());
            std::fs::create_dir_all(at.join(format!("task/{pid}"))).unwrap();
            let stat =
                format!("{pid} (p{pid}) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 0 1 0\n");
            std::fs::write(at.join("stat"), stat).unwrap();
            std::fs::write(at.join(format!("task/{pid}/children")), children).unwrap();
        };
        let newest = |pid: i32| {
            let text = format!("0.06 0.02 0.00 1/123 {pid}\n");
            std::fs::write(root.join("loadavg"), text).unwrap();
        };
        newest(11);
        proc(10, "11 ");
        proc(11, "");
        let mut errors = ReadErrors::default();
        let mut reader = ProcReader::new(root);
        let mut pids = || {
            let list = reader.descendants(&[10], true, &mut errors).expect("found");
            let mut p: Vec<i32> = list.iter().map(|e| e.pid).collect();
            p.sort_unstable();
            p
        };
        assert_eq!(pids(), [10, 11]);
        // A fixture can change a children file without a new pid; the kernel cannot.
        proc(12, "");
        proc(11, "12 ");
        assert_eq!(
            pids(),
            [10, 11],
            "no pid created: the children as last read"
        );
        newest(12);
        assert_eq!(pids(), [10, 11, 12], "a pid created: read again");
        std::fs::remove_file(root.join("loadavg")).unwrap();
        let mut reader = ProcReader::new(root);
        proc(11, "");
        let list = reader.descendants(&[10], true, &mut errors).expect("found");
        assert_eq!(list.len(), 2, "no loadavg: read every time");
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    }

    /// On the real /proc: a shell's two children found, and once one is killed and
    /// reaped (no pid created for that), it is gone from the next answer.
    #[test]
    fn a_reaped_child_is_gone_from_the_descendants() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 100 & sleep 100 & wait"])
            .spawn()
            .unwrap();
        let pid = sh.id() as i32;
        let mut reader = ProcReader::new(Path::new("/proc"));
        let mut errors = ReadErrors::default();
        let mut kids = |reader: &mut ProcReader| -> Vec<i32> {
            let list = reader
                .descendants(&[pid], true, &mut errors)
                .expect("found");
            list.iter().map(|e| e.pid).filter(|&p| p != pid).collect()
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut found = kids(&mut reader);
        while found.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = kids(&mut reader);
        }
        assert_eq!(found.len(), 2, "both sleeps: {found:?}");
        let victim = found[0];
        std::process::Command::new("kill")
            .arg(victim.to_string())
            .status()
            .unwrap();
        let mut left = kids(&mut reader);
        while left.contains(&victim) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            left = kids(&mut reader);
        }
        for p in &found[1..] {
            let _ = std::process::Command::new("kill")
                .arg(p.to_string())
                .status();
        }
        let _ = sh.kill();
        let _ = sh.wait();
        assert_eq!(left, [found[1]], "the killed one reaped and gone");
    }

    /// Files read every tick stay open and give what a fresh open would: new
    /// figures while the process lives, and "gone" (no error counted) once it has
    /// exited; a sweep after a tick without reads closes them.
    #[test]
    fn kept_files_follow_the_process_and_fail_once_it_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // `sleep` opens and closes files while it starts (the loader, the locale):
        // wait until it has slept a while, so its fd count holds still.
        let state = || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat[stat.rfind(')').unwrap() + 2..].chars().next()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut asleep = 0;
        while asleep < 5 {
            assert!(std::time::Instant::now() < deadline, "sleep never slept");
            asleep = if state() == Some('S') { asleep + 1 } else { 0 };
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut r = ProcReader::new(Path::new("/proc"));
        let mut errors = ReadErrors::default();
        let e = r.read_entry(pid).unwrap();
        let first = r.read_details(&e, &mut errors).unwrap();
        r.sweep();
        let kept = r.kept.open.len();
        // stat, status, fd, io, schedstat
        assert_eq!(kept, 5, "{:?}", r.kept.open.keys());
        let e = r.read_entry(pid).unwrap();
        let again = r.read_details(&e, &mut errors).unwrap();
        assert_eq!(again.open_fds, first.open_fds);
        assert_eq!(r.kept.open.len(), kept, "read through the kept files");

        // Our own `stat`, read again through its kept descriptor, follows the CPU
        // time this loop spends.
        let me = std::process::id() as i32;
        let ticks = |e: ProcEntry| e.user_ticks + e.system_ticks;
        let start = ticks(r.read_entry(me).unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut now = start;
        while now == start && std::time::Instant::now() < deadline {
            now = ticks(r.read_entry(me).unwrap());
        }
        assert!(now > start, "figures are fresh");
        assert!(r.kept.open.contains_key(&format!("/proc/{me}/stat")));

        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(r.read_entry(pid), Err(ReadError::Gone)));
        assert!(r.read_details(&e, &mut errors).is_none());
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
        r.sweep();
        r.sweep();
        assert!(r.kept.open.is_empty(), "{:?}", r.kept.open.keys());
    }

    /// `status` and `io` are read at a member's first tick and then once per
    /// `slow_every`, their files kept open between; the other details every time.
    #[test]
    fn status_and_io_are_read_again_once_per_slow_interval() {
        use std::time::{Duration, Instant};
        // Switches context a hundred times a second, its own count in `status`.
        // Killed on the way out, a failed assertion included.
        struct Killed(std::process::Child);
        impl Drop for Killed {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let py = Killed(
            std::process::Command::new("python3")
                .args(["-c", "import time\nwhile True: time.sleep(0.01)"])
                .spawn()
                .unwrap(),
        );
        let pid = py.0.id() as i32;
        let mut r = ProcReader::new(Path::new("/proc"));
        r.slow_every = Duration::from_millis(400);
        let mut errors = ReadErrors::default();
        let mut details = |r: &mut ProcReader| {
            let e = r.read_entry(pid).unwrap();
            let d = r.read_details(&e, &mut errors).unwrap();
            r.sweep();
            d
        };
        let first = details(&mut r);
        let read_at = Instant::now();
        assert!(first.voluntary_switches.is_some() && first.read_bytes.is_some());
        std::thread::sleep(Duration::from_millis(100));
        let cached = details(&mut r);
        if read_at.elapsed() < Duration::from_millis(350) {
            assert_eq!(cached.voluntary_switches, first.voluntary_switches);
            assert_eq!(cached.read_bytes, first.read_bytes);
        }
        assert!(
            r.kept.open.contains_key(&format!("/proc/{pid}/status"))
                && r.kept.open.contains_key(&format!("/proc/{pid}/io")),
            "kept open between reads: {:?}",
            r.kept.open.keys()
        );
        std::thread::sleep(Duration::from_millis(450));
        let later = details(&mut r);
        assert!(
            later.voluntary_switches > first.voluntary_switches,
            "read again: {:?} then {:?}",
            first.voluntary_switches,
            later.voluntary_switches
        );
        drop(py);
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    }

    /// A kept thread list serves while the thread count holds, and is listed again
    /// in the same tick when a thread has gone and another started (the count
    /// unchanged): the gone thread's `schedstat` fails.
    #[test]
    fn a_kept_thread_list_is_listed_again_when_a_thread_is_replaced() {
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        // One thread besides the main one, replaced by a new one on each line in;
        // it ends with its stdin (a daemon thread), should the test fail first.
        let script = "import sys, threading\n\
            def start():\n    e = threading.Event()\n    t = threading.Thread(target=e.wait, daemon=True)\n    t.start()\n    return e, t\n\
            e, t = start()\n\
            print(t.native_id, flush=True)\n\
            for line in sys.stdin:\n    n = start()\n    e.set()\n    t.join()\n    e, t = n\n    print(t.native_id, flush=True)\n";
        let mut py = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = py.id() as i32;
        let mut out = std::io::BufReader::new(py.stdout.take().unwrap());
        let mut next_tid = || {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim().to_string()
        };
        let first = next_tid();
        let mut r = ProcReader::new(Path::new("/proc"));
        let e = r.read_entry(pid).unwrap();
        assert_eq!(e.threads, 2);
        assert!(r.run_delay(&e).unwrap().is_some());
        let (tids, kept) = r.tids(&e).unwrap();
        assert!(kept, "kept from the first listing");
        assert!(tids.contains(&first), "{tids:?}");

        py.stdin.as_mut().unwrap().write_all(b"next\n").unwrap();
        let second = next_tid();
        // Python's join returns once the thread has run its last Python code; the
        // kernel thread may still be exiting (CI saw 3 threads here once): wait
        // for it, up to 2 s.
        let mut e = r.read_entry(pid).unwrap();
        for _ in 0..200 {
            if e.threads == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            e = r.read_entry(pid).unwrap();
        }
        assert_eq!(e.threads, 2, "replaced, not added");
        assert!(r.run_delay(&e).unwrap().is_some());
        let (tids, kept) = r.tids(&e).unwrap();
        assert!(kept);
        assert!(tids.contains(&second), "listed again: {tids:?}");
        assert!(!tids.contains(&first), "{tids:?}");
        py.kill().unwrap();
        py.wait().unwrap();
    }
}
