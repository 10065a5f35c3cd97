//! Per-process readings from `/proc/<pid>/…`, through the procfs crate.
//!
//! Two passes per tick: [`list`] reads `stat` of every visible process (cheap: it is
//! what grouping needs), then [`read_details`] reads the rest only for processes that
//! belong to a target. A process that vanishes between the two is not an error; a file
//! that cannot be read is counted in [`ReadErrors`] and the process is kept with what
//! could be read.

use std::collections::BTreeMap;
use std::path::Path;

use procfs::process::{LimitValue, Process};
use procfs::ProcError;

/// Kernel threads carry this flag in `stat`; they never belong to an app.
const PF_KTHREAD: u32 = 0x0020_0000;

/// What `stat` says of one process: enough to group it and to know who it is.
#[derive(Debug, Clone)]
pub struct ProcEntry {
    pub pid: i32,
    pub ppid: i32,
    /// Start time in clock ticks after boot; with `pid` it is the process' identity.
    pub start_ticks: u64,
    pub comm: String,
    pub kernel_thread: bool,
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
    pub max_fds: Option<u64>,
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

/// Whether an error means "the process is gone", which is normal churn.
pub fn is_gone(e: &ProcError) -> bool {
    match e {
        ProcError::NotFound(_) => true,
        ProcError::Io(io, _) => io.raw_os_error() == Some(libc_esrch()),
        _ => false,
    }
}

const fn libc_esrch() -> i32 {
    3 // ESRCH on every Linux architecture
}

/// Reads `stat` of every process under `proc_root`. Processes that vanish while we
/// look are skipped silently; other failures are counted.
pub fn list(proc_root: &Path, errors: &mut ReadErrors) -> std::io::Result<Vec<ProcEntry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        match read_entry(proc_root, pid) {
            Ok(e) => out.push(e),
            Err(e) if is_gone(&e) => {}
            Err(e) => errors.record("stat", &e),
        }
    }
    out.sort_unstable_by_key(|e| e.pid);
    Ok(out)
}

/// Reads `stat` of one process.
pub fn read_entry(proc_root: &Path, pid: i32) -> Result<ProcEntry, ProcError> {
    let p = Process::new_with_root(proc_root.join(pid.to_string()))?;
    let s = p.stat()?;
    Ok(ProcEntry {
        pid: s.pid,
        ppid: s.ppid,
        start_ticks: s.starttime,
        kernel_thread: s.flags & PF_KTHREAD != 0,
        comm: s.comm,
        user_ticks: s.utime,
        system_ticks: s.stime,
        rss_pages: s.rss,
        vsize_bytes: s.vsize,
        threads: u64::try_from(s.num_threads).unwrap_or(0),
    })
}

/// Reads status, fds, limits, io and per-thread schedstat of a member process.
/// Returns `None` when the process is gone or is no longer `identity`.
pub fn read_details(
    proc_root: &Path,
    identity: Identity,
    errors: &mut ReadErrors,
) -> Option<Details> {
    let p = match Process::new_with_root(proc_root.join(identity.pid.to_string())) {
        Ok(p) => p,
        Err(e) if is_gone(&e) => return None,
        Err(e) => {
            errors.record("stat", &e);
            return None;
        }
    };
    let mut d = Details::default();
    let mut gone = false;
    let mut note = |source: &'static str, e: ProcError, errors: &mut ReadErrors| {
        if is_gone(&e) {
            gone = true;
        } else {
            errors.record(source, &e);
        }
    };
    match p.status() {
        Ok(s) => {
            d.swap_bytes = s.vmswap.map(|kb| kb * 1024);
            d.voluntary_switches = s.voluntary_ctxt_switches;
            d.involuntary_switches = s.nonvoluntary_ctxt_switches;
        }
        Err(e) => note("status", e, errors),
    }
    match p.fd_count() {
        Ok(n) => d.open_fds = Some(n as u64),
        Err(e) => note("fd", e, errors),
    }
    match p.limits() {
        Ok(l) => {
            d.max_fds = match l.max_open_files.soft_limit {
                LimitValue::Value(v) => Some(v),
                LimitValue::Unlimited => None,
            }
        }
        Err(e) => note("limits", e, errors),
    }
    match p.io() {
        Ok(io) => {
            d.read_bytes = Some(io.read_bytes);
            d.write_bytes = Some(io.write_bytes);
        }
        Err(e) => note("io", e, errors),
    }
    match p.tasks() {
        Ok(tasks) => {
            let mut total = 0u64;
            let mut any = false;
            for task in tasks.flatten() {
                // A thread that exits while we walk the list is normal.
                if let Ok(s) = task.schedstat() {
                    total += s.run_delay;
                    any = true;
                }
            }
            if any {
                d.run_delay_ns = Some(total);
            }
        }
        Err(e) => note("schedstat", e, errors),
    }
    // The pid may have been reused while we read: check the start time last.
    match p.stat() {
        Ok(s) if s.starttime == identity.start_ticks && !gone => Some(d),
        _ => None,
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

pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

pub fn page_size() -> u64 {
    procfs::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_root() -> &'static Path {
        Path::new("/proc")
    }

    #[test]
    fn reads_this_process() {
        let me = read_entry(proc_root(), std::process::id() as i32).unwrap();
        assert!(me.threads >= 1);
        assert!(me.rss_pages > 0);
        let mut errors = ReadErrors::default();
        let d = read_details(proc_root(), me.identity(), &mut errors).unwrap();
        assert!(d.open_fds.unwrap() >= 3);
        assert!(d.max_fds.unwrap() >= d.open_fds.unwrap());
    }

    #[test]
    fn a_vanished_or_replaced_process_is_none_and_no_error() {
        let mut errors = ReadErrors::default();
        let me = read_entry(proc_root(), std::process::id() as i32).unwrap();
        // Same pid, another start time: a reused pid is not our process.
        let other = Identity {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(read_details(proc_root(), other, &mut errors).is_none());
        // A child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        let gone = Identity {
            pid,
            start_ticks: 1,
        };
        assert!(read_details(proc_root(), gone, &mut errors).is_none());
        assert!(read_entry(proc_root(), pid).is_err_and(|e| is_gone(&e)));
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    }

    #[test]
    fn a_fixture_tree_lists_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        std::fs::create_dir(root.join("42")).unwrap();
        std::fs::write(
            root.join("42/stat"),
            "42 (my app) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("self")).unwrap(); // not a pid: skipped
        let mut errors = ReadErrors::default();
        let list = list(root, &mut errors).unwrap();
        assert_eq!(list.len(), 1);
        let e = &list[0];
        assert_eq!((e.pid, e.ppid, e.comm.as_str()), (42, 1, "my app"));
        assert_eq!((e.user_ticks, e.system_ticks, e.threads), (250, 50, 3));
        assert_eq!(
            (e.start_ticks, e.vsize_bytes, e.rss_pages),
            (12345, 104857600, 2560)
        );
        assert!(!e.kernel_thread);
        assert_eq!(boot_time(root).unwrap(), 1700000000);
    }
}
