//! The app's container, from its cgroup: v2, v1 or the hybrid of both.
//!
//! # Layout
//! - this file: the reading ([`CgroupReading`]), the layout found ([`Layout`]), where
//!   each controller's files are ([`Location`]) and [`read`], which reads them
//! - [`discover`]: where the app's cgroup is, from `/proc/<pid>/cgroup` and
//!   `/proc/<pid>/mountinfo`, seen through `/proc/<pid>/root`
//! - [`v2`]: the unified hierarchy's files (`memory.max`, `cpu.max`, `memory.events`,
//!   `*.pressure`)
//! - [`v1`]: the v1 `memory` and `cpu` controllers' files (`memory.limit_in_bytes`,
//!   `cpu.cfs_quota_us`, `memory.oom_control`, …)
//!
//! Whatever the layout, the same [`CgroupReading`] comes out, so every metric, verdict
//! and alert reads one shape. A root cgroup (v2's, or a v1 hierarchy's) is not a
//! container: it is reported as unreachable rather than passed off as one.
//!
//! Every parser takes a string so tests can feed fixture text.

pub mod discover;
pub mod v1;
pub mod v2;

use super::pid_hash::PidMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::process::read_at_start;

pub use discover::resolve;

/// Which cgroup hierarchies the app's container figures come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The unified hierarchy alone (a `cgroup2` mount): every figure from one directory.
    #[default]
    V2,
    /// v1 controllers only (`memory`, `cpu` hierarchies); no pressure stall figures.
    V1,
    /// v1 controllers for memory and CPU, plus a `cgroup2` mount (often
    /// `/sys/fs/cgroup/unified`) for pressure stall figures.
    Hybrid,
}

impl Layout {
    /// The `layout` label value: `v2`, `v1`, `hybrid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::V2 => "v2",
            Layout::V1 => "v1",
            Layout::Hybrid => "hybrid",
        }
    }
}

/// One reading of a container's cgroup. `None` where a file is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupReading {
    /// Where the figures came from.
    pub layout: Layout,
    /// v2 `memory.current`, v1 `memory.usage_in_bytes`.
    pub memory_current_bytes: Option<u64>,
    /// Memory in use less inactive file cache, floored at 0, as the kubelet and
    /// cAdvisor compute it (v2 `inactive_file`, v1 `total_inactive_file`).
    pub memory_working_set_bytes: Option<u64>,
    /// `None` when unlimited (v2 `max`, v1's huge `limit_in_bytes`).
    pub memory_limit_bytes: Option<u64>,
    /// Times a charge hit the memory limit: v2 `memory.events` `max`, v1
    /// `memory.failcnt`.
    pub memory_limit_hits: Option<u64>,
    /// `None` when unlimited (v2 `max`, v1 quota `-1`).
    pub cpu_limit_cores: Option<f64>,
    /// The lowest memory limit of a cgroup enclosing the app's, when it is below
    /// the app's own or the app has none: it binds the app too, shared with
    /// whatever else runs under that cgroup (a pod-level limit, a systemd slice's
    /// `MemoryMax`). v1: `memory.stat` `hierarchical_memory_limit`, which sees
    /// every ancestor; v2: `memory.max` of each ancestor visible from here.
    pub memory_enclosing_limit_bytes: Option<u64>,
    /// The same for the CPU quota (v1 `cpu.cfs_quota_us`, v2 `cpu.max` of each
    /// visible ancestor). The throttling figures then come from that cgroup's
    /// `cpu.stat`: its quota is the one that throttles the app.
    pub cpu_enclosing_limit_cores: Option<f64>,
    pub cpu_periods: Option<u64>,
    pub cpu_throttled_periods: Option<u64>,
    /// v2 `throttled_usec`, v1 `throttled_time` (nanoseconds), in seconds.
    pub cpu_throttled_seconds: Option<f64>,
    /// The kernel's count of OOM kills: v2 `memory.events`, v1 `memory.oom_control`.
    pub oom_kills: Option<u64>,
    /// (resource, kind, seconds stalled) from `cpu|memory|io.pressure`.
    pub pressure: Vec<(&'static str, &'static str, f64)>,
    /// Of `oom_kills`, those attributed to other processes: kills that came while
    /// the cgroup was shared and none of the target's processes went. A shared
    /// cgroup's counter counts every process in it, and an app that lost none of
    /// its processes was not the one killed.
    pub oom_kills_of_others: u64,
    /// Processes in the cgroup that are neither the target's nor Outrider's own;
    /// `None` when `cgroup.procs` could not be read. Above 0 the cgroup is shared
    /// (a host's session or a machine slice rather than the app's container): its
    /// limits still bind the app, but its memory figures are not the app's alone.
    pub other_processes: Option<u64>,
}

impl CgroupReading {
    /// The working set that is the app's own: `None` in a shared cgroup.
    pub fn own_working_set_bytes(&self) -> Option<u64> {
        match self.other_processes {
            Some(n) if n > 0 => None,
            _ => self.memory_working_set_bytes,
        }
    }

    /// The OOM kills that were the target's: the kernel's count less those of
    /// other processes sharing the cgroup.
    pub fn app_oom_kills(&self) -> Option<u64> {
        self.oom_kills
            .map(|k| k.saturating_sub(self.oom_kills_of_others))
    }

    /// The memory limit that binds the app, and whether an enclosing cgroup sets
    /// it: the lower of its own and its enclosing cgroups' limits.
    pub fn binding_memory_limit(&self) -> Option<(u64, bool)> {
        binding(self.memory_limit_bytes, self.memory_enclosing_limit_bytes)
    }

    /// The CPU limit that binds the app, and whether an enclosing cgroup sets it.
    pub fn binding_cpu_limit(&self) -> Option<(f64, bool)> {
        binding(self.cpu_limit_cores, self.cpu_enclosing_limit_cores)
    }
}

/// Which of a cgroup's OOM kills were the target's, from one reading to the next.
/// A rise of the kernel's count is another process' when the cgroup was shared (at
/// this reading or the last: a killed neighbour that was the only other process is
/// gone at this one) and every process the target had at the last reading is
/// still there; otherwise (a cgroup of its own, or a member gone) it is the
/// target's. A member that exits at the tick of another process' kill takes it:
/// the kernel does not say whose kill it was.
///
/// A count from another cgroup (the app moved) or one that went back (a new
/// cgroup under the same name) is a new baseline: the target's count carries on
/// from where it was, not from that cgroup's history.
#[derive(Debug, Clone, Default)]
pub struct OomAttribution {
    last: Option<u64>,
    others: u64,
    was_shared: bool,
    /// The target's processes at the last reading, sorted.
    members: Vec<i32>,
}

impl OomAttribution {
    /// Takes this reading and the target's `members` (sorted), and sets the
    /// reading's [`CgroupReading::oom_kills_of_others`]; `moved`: the reading is
    /// of another cgroup than the last one.
    pub fn attribute(&mut self, r: &mut CgroupReading, members: &[i32], moved: bool) {
        let shared = r.other_processes.is_some_and(|n| n > 0);
        if let Some(now) = r.oom_kills {
            match self.last {
                Some(last) if moved || now < last => {
                    // The target's own count so far carries on.
                    let app = last.saturating_sub(self.others);
                    self.others = now.saturating_sub(app);
                }
                Some(last) if now > last => {
                    let lost = self
                        .members
                        .iter()
                        .any(|p| members.binary_search(p).is_err());
                    if (shared || self.was_shared) && !lost {
                        self.others += now - last;
                    }
                }
                _ => {}
            }
            self.last = Some(now);
        }
        self.was_shared = shared;
        if self.members != members {
            self.members = members.to_vec();
        }
        r.oom_kills_of_others = self.others;
    }
}

/// `enclosing` (set only when it is the lower) wins over `own`.
fn binding<T>(own: Option<T>, enclosing: Option<T>) -> Option<(T, bool)> {
    match (own, enclosing) {
        (_, Some(e)) => Some((e, true)),
        (Some(o), None) => Some((o, false)),
        (None, None) => None,
    }
}

/// `enclosing` when it is below `own` (or `own` is unlimited), else `None`.
fn lower<T: PartialOrd>(own: Option<T>, enclosing: Option<T>) -> Option<T> {
    enclosing.filter(|e| own.as_ref().is_none_or(|o| e < o))
}

/// How often the limits of the cgroups enclosing the app's are read again: they
/// change only when someone resizes a pod or a slice, and a walk reads a file or
/// two per level.
const ENCLOSING_EVERY: Duration = Duration::from_secs(10);

/// The lowest limits set on the cgroups enclosing one, as a walk found them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enclosing {
    /// The lowest memory limit, bytes.
    pub memory: Option<u64>,
    /// The lowest CPU limit in cores, and the cgroup that sets it.
    pub cpu: Option<(f64, PathBuf)>,
}

/// The cgroups enclosing `dir` that have the `control` file, nearest first: the
/// walk stops at a v2 root (no limit files), a v1 hierarchy's root (the one with
/// `cgroup.sane_behavior`) and the top of what is mounted here (a container's
/// own cgroup namespace shows no ancestor).
fn enclosing_dirs<'a>(dir: &'a Path, control: &'a str) -> impl Iterator<Item = &'a Path> + 'a {
    dir.ancestors()
        .skip(1)
        .take_while(move |d| d.join(control).exists() && !d.join("cgroup.sane_behavior").exists())
}

/// The text of `dir/name`, for a walk: an unreadable ancestor sets no limit.
fn read_plain(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

/// Where the app's cgroup files are, as [`discover::resolve`] found them.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub layout: Layout,
    /// v2: the directory of every file. Hybrid: the app's cgroup in the unified
    /// mount, read for pressure only; `None` when that is the root cgroup (its
    /// pressure is the whole host's). v1: `None`.
    pub unified: Option<PathBuf>,
    /// v1 and hybrid: the app's cgroup in the `memory` hierarchy, when it is not
    /// the hierarchy's root.
    pub memory: Option<PathBuf>,
    /// v1 and hybrid: the app's cgroup in the `cpu` hierarchy, when it is not the
    /// hierarchy's root.
    pub cpu: Option<PathBuf>,
}

/// Which cgroups a [`Location`]'s directories are: (device, inode) of each, in
/// the order unified, memory, cpu; `None` for a directory not there or not
/// statted. The same cgroup reached through another process' `/proc/<pid>/root`
/// (an app restarted in its container) has other paths but the same identity.
pub type LocationIdentity = [Option<(u64, u64)>; 3];

impl Location {
    /// What the directories are now (one `stat` each): see [`LocationIdentity`].
    pub fn identity(&self) -> LocationIdentity {
        use std::os::unix::fs::MetadataExt;
        [&self.unified, &self.memory, &self.cpu].map(|d| {
            let m = std::fs::metadata(d.as_ref()?).ok()?;
            Some((m.dev(), m.ino()))
        })
    }

    /// The directories read, for the log: `memory=/…, cpu=/…`.
    pub fn describe(&self) -> String {
        [
            ("unified", &self.unified),
            ("memory", &self.memory),
            ("cpu", &self.cpu),
        ]
        .iter()
        .filter_map(|(k, d)| Some(format!("{k}={}", d.as_ref()?.display())))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Files that exist but could not be read: (path, error).
pub type Failures = Vec<(String, std::io::Error)>;

/// Cgroup files kept open between ticks and read again from the start: opening
/// one walks its whole path, most of the cost of a small read (the profile in
/// docs/performance.md). A file not read during a tick is closed by
/// [`Files::sweep`]; one that fails on its kept descriptor (a removed cgroup) is
/// opened afresh, so every answer is what a fresh open would give. Also collects
/// the tick's failures, and keeps the last count of other processes per cgroup
/// ([`Files::other_processes`]).
#[derive(Debug, Default)]
pub struct Files {
    /// By path, hashed as bytes (`Path`'s own hash walks its components: it was
    /// a tenth of a tick's own instructions).
    open: PidMap<OsString, (File, bool)>,
    failures: Failures,
    buf: Vec<u8>,
    /// By `cgroup.procs` directory: the last count and what it was made with.
    counted: PidMap<PathBuf, Counted>,
    /// By the app's cgroup directory: the last walk of its enclosing cgroups.
    enclosing: PidMap<PathBuf, Walked>,
    /// By the app's cgroup directory: its throttling counters as shown.
    cpu_counters: PidMap<PathBuf, CpuCounters>,
}

/// The throttling counters shown for one app's cgroup, kept continuous when the
/// `cpu.stat` they are read from changes (the quota that binds moved between the
/// app's cgroup and an enclosing one): a jump from one cgroup's count to
/// another's would read as a tick of throttling, or as a reset.
#[derive(Debug)]
struct CpuCounters {
    from: PathBuf,
    /// Added to the raw periods, throttled periods and throttled seconds.
    offset: [f64; 3],
    shown: [Option<f64>; 3],
    used: bool,
}

/// One walk of a cgroup's enclosing cgroups.
#[derive(Debug)]
struct Walked {
    at: Instant,
    found: Enclosing,
    used: bool,
}

/// One count of a cgroup's other processes.
#[derive(Debug)]
struct Counted {
    /// The members it was made with, sorted.
    members: Vec<i32>,
    at: Instant,
    count: u64,
    /// The cgroup's memory in use when it was made.
    usage: Option<u64>,
    used: bool,
}

/// A change of the cgroup's memory in use past which the last count of its other
/// processes is not trusted: a process joining with its memory shows there first,
/// and counting it late would charge its memory to the app's sizing for the whole
/// window. The larger of 16 MiB and a tenth of the last figure.
fn usage_jumped(now: Option<u64>, then: Option<u64>) -> bool {
    match (now, then) {
        (Some(a), Some(b)) => a.abs_diff(b) > (16 << 20).max(b / 10),
        _ => false,
    }
}

impl Files {
    /// Closes the files not read since the last sweep, and forgets the counts of
    /// cgroups no longer read.
    pub fn sweep(&mut self) {
        self.open.retain(|_, (_, used)| std::mem::take(used));
        self.counted.retain(|_, c| std::mem::take(&mut c.used));
        self.enclosing.retain(|_, w| std::mem::take(&mut w.used));
        self.cpu_counters.retain(|_, c| std::mem::take(&mut c.used));
    }

    /// Makes `r`'s throttling counters, read from `from`'s `cpu.stat` for the app's
    /// cgroup `dir`, carry on from those shown last when `from` changed.
    fn continuous_cpu(&mut self, dir: &Path, from: &Path, r: &mut CgroupReading) {
        let raw = [
            r.cpu_periods.map(|v| v as f64),
            r.cpu_throttled_periods.map(|v| v as f64),
            r.cpu_throttled_seconds,
        ];
        let c = match self.cpu_counters.get_mut(dir) {
            Some(c) => c,
            None => {
                let fresh = CpuCounters {
                    from: from.to_path_buf(),
                    offset: [0.0; 3],
                    shown: [None; 3],
                    used: true,
                };
                self.cpu_counters.insert(dir.to_path_buf(), fresh);
                self.cpu_counters.get_mut(dir).expect("just inserted")
            }
        };
        c.used = true;
        if c.from != from {
            c.from = from.to_path_buf();
            for ((offset, x), shown) in c.offset.iter_mut().zip(raw).zip(c.shown) {
                if let (Some(x), Some(shown)) = (x, shown) {
                    *offset = shown - x;
                }
            }
        }
        let shown: [Option<f64>; 3] =
            std::array::from_fn(|i| raw[i].map(|x| (x + c.offset[i]).max(0.0)));
        c.shown = shown;
        r.cpu_periods = shown[0].map(|v| v.round() as u64);
        r.cpu_throttled_periods = shown[1].map(|v| v.round() as u64);
        r.cpu_throttled_seconds = shown[2];
    }

    /// What `walk` finds in the cgroups enclosing `dir`, walked again once
    /// [`ENCLOSING_EVERY`] has passed since the last walk.
    fn enclosing(&mut self, dir: &Path, walk: fn(&Path) -> Enclosing) -> Enclosing {
        if let Some(w) = self.enclosing.get_mut(dir) {
            if w.at.elapsed() < ENCLOSING_EVERY {
                w.used = true;
                return w.found.clone();
            }
        }
        let found = walk(dir);
        let walked = Walked {
            at: Instant::now(),
            found: found.clone(),
            used: true,
        };
        self.enclosing.insert(dir.to_path_buf(), walked);
        found
    }

    fn read(&mut self, path: &Path) -> std::io::Result<String> {
        let n = match self.open.get_mut(path.as_os_str()) {
            Some((f, used)) => {
                *used = true;
                match read_at_start(f, &mut self.buf, true) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.open.remove(path.as_os_str());
                        None
                    }
                }
            }
            None => None,
        };
        let n = match n {
            Some(n) => n,
            None => {
                let f = File::open(path)?;
                let n = read_at_start(&f, &mut self.buf, true)?;
                self.open.insert(path.as_os_str().to_owned(), (f, true));
                n
            }
        };
        text(&self.buf[..n])
    }

    /// [`other_processes`] at `loc`, the group's `members` (sorted) and Outrider
    /// (`own`) being ours, read again only when the answer may have changed: when
    /// the members differ from those of the last count, when that count is
    /// `recheck` old, when the cgroup's memory in use (`usage`) jumped since it
    /// ([`usage_jumped`]), or when it could not be made. A member's start or exit is
    /// seen at once; a process that is not ours entering or leaving the cgroup, up
    /// to `recheck` late (the trust the sampler gives a process outside every
    /// group). `cgroup.procs` is otherwise opened every tick: v1 builds a
    /// descriptor's pid list once, so it cannot be kept open like the rest.
    pub fn other_processes(
        &mut self,
        loc: &Location,
        members: &[i32],
        own: i32,
        recheck: Duration,
        usage: Option<u64>,
    ) -> Option<u64> {
        let dir = procs_dir(loc)?;
        if let Some(c) = self.counted.get_mut(dir) {
            if c.members == members && c.at.elapsed() < recheck && !usage_jumped(usage, c.usage) {
                c.used = true;
                c.usage = c.usage.or(usage);
                return Some(c.count);
            }
        }
        let ours = |pid| pid == own || members.binary_search(&pid).is_ok();
        let Some(count) = other_processes(loc, &ours) else {
            self.counted.remove(dir);
            return None;
        };
        let counted = Counted {
            members: members.to_vec(),
            at: Instant::now(),
            count,
            usage,
            used: true,
        };
        self.counted.insert(dir.clone(), counted);
        Some(count)
    }
}

/// The bytes of a cgroup file as text.
fn text(bytes: &[u8]) -> std::io::Result<String> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads every file it knows at `loc`; missing or unreadable files leave `None`.
/// Returns the reading and the files that exist but could not be read.
pub fn read(loc: &Location) -> (CgroupReading, Failures) {
    read_with(loc, &mut Files::default())
}

/// [`read`], through files kept open in `files`.
pub fn read_with(loc: &Location, files: &mut Files) -> (CgroupReading, Failures) {
    let mut r = CgroupReading::default();
    match loc.layout {
        Layout::V2 => {
            if let Some(dir) = &loc.unified {
                r = v2::read(dir, files);
            }
        }
        Layout::V1 | Layout::Hybrid => {
            if let Some(dir) = &loc.memory {
                v1::read_memory(dir, &mut r, files);
            }
            if let Some(dir) = &loc.cpu {
                v1::read_cpu(dir, &mut r, files);
            }
            if let Some(dir) = &loc.unified {
                r.pressure = v2::read_pressure(dir, files);
            }
        }
    }
    r.layout = loc.layout;
    (r, std::mem::take(&mut files.failures))
}

/// Processes in the cgroup whose memory Outrider reads (v1's `memory` hierarchy, or
/// the v2 directory) that are not in `ours` (the target's members and Outrider).
/// `cgroup.procs` lists only the processes directly in that cgroup.
/// Opened afresh each time, not kept in [`Files`]: v1 builds a `cgroup.procs`
/// descriptor's pid list once, when it is first read, so a kept one never sees a
/// process join.
pub fn other_processes(loc: &Location, ours: &dyn Fn(i32) -> bool) -> Option<u64> {
    let file = File::open(procs_dir(loc)?.join("cgroup.procs")).ok()?;
    // Many records (one per pid): read to the end, not to the first short read.
    let mut buf = Vec::new();
    let n = read_at_start(&file, &mut buf, false).ok()?;
    Some(count_others(&text(&buf[..n]).ok()?, ours))
}

/// The directory whose `cgroup.procs` says who shares the app's memory figures.
fn procs_dir(loc: &Location) -> Option<&PathBuf> {
    match loc.layout {
        Layout::V2 => loc.unified.as_ref(),
        Layout::V1 | Layout::Hybrid => loc.memory.as_ref(),
    }
}

fn count_others(procs: &str, ours: &dyn Fn(i32) -> bool) -> u64 {
    procs
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| !ours(*pid))
        .count() as u64
}

/// The text of `dir/name`; `None` when missing, and also when unreadable, which is
/// then added to `failures`.
fn get(dir: &Path, name: &str, files: &mut Files) -> Option<String> {
    match files.read(&dir.join(name)) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            files
                .failures
                .push((dir.join(name).display().to_string(), e));
            None
        }
    }
}

/// A value of a flat-keyed file such as `cpu.stat`, `memory.stat` or
/// `memory.oom_control`: the first line `key value` whose value is a number.
/// Searches for the key rather than splitting every line: v1's `memory.stat` is
/// read every tick for `total_inactive_file`, its 40th line of 42.
pub fn flat_keyed(s: &str, key: &str) -> Option<u64> {
    let finder = memchr::memmem::Finder::new(key);
    let mut from = 0;
    while let Some(at) = finder.find(&s.as_bytes()[from..]).map(|i| from + i) {
        from = at + key.len();
        let line_start = at == 0 || s.as_bytes()[at - 1] == b'\n';
        if let (true, Some(rest)) = (line_start, s[from..].strip_prefix(' ')) {
            let value = rest.split('\n').next().unwrap_or("");
            if let Ok(v) = value.trim().parse() {
                return Some(v);
            }
        }
    }
    None
}

/// Memory in use less inactive file cache, floored at 0 (cAdvisor's `setMemoryStats`).
fn working_set(usage: u64, inactive_file: Option<u64>) -> u64 {
    usage.saturating_sub(inactive_file.unwrap_or(0))
}

#[cfg(test)]
mod tests;
