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

mod parse;
use parse::{keyed_value, parse_children};
pub use parse::{parse_max_open_files, parse_run_delay, parse_stat, parse_status, StatusFields};

/// Kernel threads carry this flag in `stat`; they never belong to an app.
const PF_KTHREAD: u32 = 0x0020_0000;
/// `PF_EXITING`: the task is tearing itself down. From its first step (its
/// memory handed back) its `stat` reads 0 resident bytes while its state is
/// still `R`: a 3 GiB process killed by SIGKILL read so for 0.23 s, its fds
/// still open, before it turned `Z`.
const PF_EXITING: u32 = 0x0000_0004;

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
    /// Exited but not yet reaped (`Z`/`X`), or exiting (`PF_EXITING`, its memory
    /// already given back): no longer running, nothing to measure.
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
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
    /// `root` as text, once: `Path::display` per file read was a tenth of a
    /// tick's own instructions.
    root_text: String,
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
    /// `status`, `io` and `schedstat` figures by pid as last read, and how long
    /// they serve ([`SLOW_DETAILS_EVERY`]).
    slow: PidMap<i32, Slow>,
    slow_every: std::time::Duration,
}

/// How often a member's `status` (swap, context switches), `io` (bytes read
/// and written) and its threads' `schedstat` (run-queue wait) are read again; its
/// `stat` and fd count are read every tick. They feed the exported counters, the
/// swap gauge, and verdicts that sum the wait over minutes (CPU sizing, the time
/// split of a request), and a scrape is seldom more often than this. At 1 s
/// ticks, watching a group of 120 processes, `status` and `io` were 27-42% of the
/// tick thread's CPU; a JVM's tick read sixteen threads' `schedstat`, about 1 ms
/// (docs/performance.md). A new member is read at its first tick; one that exits
/// loses what it did since its last read, at most this long (was one tick), and
/// so does a thread that exits.
pub const SLOW_DETAILS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// One process' `status`, `io` and `schedstat` figures as last read.
#[derive(Debug)]
struct Slow {
    /// Start time of the process read: a reused pid is read afresh.
    start_ticks: u64,
    at: Instant,
    /// Only the figures of `status`, `io` and `schedstat` are set.
    figures: Details,
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
            root_text: root.display().to_string(),
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
    /// the new thread then is found when `schedstat` is next read (within
    /// [`SLOW_DETAILS_EVERY`]), or at the next full listing, for a process whose
    /// `schedstat` is not read.
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
        self.path.push_str(&self.root_text);
        let _ = write!(self.path, "/{pid}/{name}");
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
        let mark = self.newest_pid();
        self.kept.linger = Some(Instant::now() + linger);
        let out = self.list_all(errors, reuse);
        self.kept.linger = None;
        if let Ok(list) = &out {
            self.remember_children(list, mark);
        }
        out
    }

    /// Every listed process' children, from their `ppid`s, kept for
    /// [`ProcReader::descendants`] with the newest pid read before the listing:
    /// until a process is created they hold, and a process of more than
    /// [`CHILDREN_MAX_THREADS`] threads (a JVM, Node), whose `children` files are
    /// not read, needs no listing either. Listing /proc every tick for such an
    /// app was most of its tick (docs/performance.md).
    fn remember_children(&mut self, list: &[ProcEntry], mark: Option<u32>) {
        let mut kids: PidMap<i32, (u64, Vec<i32>)> = list
            .iter()
            .map(|e| (e.pid, (e.start_ticks, Vec::new())))
            .collect();
        for e in list {
            if let Some((_, children)) = kids.get_mut(&e.ppid) {
                children.push(e.pid);
            }
        }
        (self.kids, self.kids_mark) = (kids, mark);
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
        Some(d)
    }

    /// `status`, `io` and the run-queue wait of `entry` into `d`: read again when last read
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
            *d = s.figures;
            // Their kept descriptors stay open for the next read: opening walks
            // the path, dearer than the read.
            self.touch(entry.pid, "status");
            self.touch(entry.pid, "io");
            self.touch_schedstat(entry);
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
        d.run_delay_ns = match self.run_delay(entry).map_err(ReadError::from) {
            Ok(v) => v,
            Err(ReadError::Gone) => return None,
            Err(e) => {
                errors.record("schedstat", &format!("{}: {e}", self.path));
                None
            }
        };
        let slow = Slow {
            start_ticks: entry.start_ticks,
            at: now,
            figures: *d,
            used: true,
        };
        self.slow.insert(entry.pid, slow);
        Some(())
    }

    /// Keeps the `schedstat` files [`ProcReader::run_delay`] reads open, and its
    /// thread list, through a tick that does not read them.
    fn touch_schedstat(&mut self, entry: &ProcEntry) {
        let tids = match self.tids.get_mut(&entry.pid) {
            Some(t) if entry.threads > 1 => {
                t.used = true;
                t.tids.clone()
            }
            _ => return self.touch(entry.pid, "schedstat"),
        };
        let mut path = String::with_capacity(32);
        for tid in tids.iter() {
            path.clear();
            path.push_str("task/");
            path.push_str(tid);
            path.push_str("/schedstat");
            self.touch(entry.pid, &path);
        }
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

/// Above this many threads a process' children are not read from its threads'
/// `children` files: they come from the last listing of the root, which is
/// listed again once a pid has been created since (`remember_children`).
const CHILDREN_MAX_THREADS: u64 = 8;

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
mod tests;
