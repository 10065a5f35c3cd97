//! Pre-fork servers in a group: the master, its workers, and their memory as PSS.
//!
//! gunicorn, uwsgi, puma, php-fpm, celery's prefork pool and Python multiprocessing
//! all look the same from /proc: one parent with two or more children of the same
//! executable. [`detect`] finds that shape among a group's members from `stat`
//! alone (ppid and comm, already read every tick); the master's cmdline is read
//! once per master to name the server.
//!
//! Memory per worker is PSS (proportional set size) from `smaps_rollup`: RSS counts
//! the pages a forked worker shares with its master in full, so RSS per worker times
//! workers overstates what one more worker costs, where PSS splits each shared page
//! between its sharers. The kernel walks every mapping to produce `smaps_rollup`,
//! which can stall a large process (DESIGN.md), so [`PssSampler`] reads it only
//! for a detected master and its workers, at most once per `sampling.pss_interval`
//! (default 60 s, `off` disables), and carries the last reading in between.
//!
//! # Layout
//! - [`detect`]: the master and its workers among a group's members
//! - [`ServerKind`]: which server, from the master's comm and cmdline
//! - [`parse_pss`]: the `Pss:` line of `smaps_rollup`
//! - [`PssSampler`]: rate-limited PSS readings per target → [`Workers`]

use std::collections::HashMap;

use super::pid_hash::{PidMap, PidSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::process::{io_gone, read_cmdline, Identity, ProcEntry, ReadErrors};

/// Which pre-fork server a master is; `as_str` is a fixed set of words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    Gunicorn,
    Uwsgi,
    Puma,
    PhpFpm,
    Celery,
    /// A Python parent with forked children of its own executable.
    Multiprocessing,
    /// Any other parent with two or more children of one executable.
    Prefork,
}

impl ServerKind {
    /// From the master's comm and (lower-cased) cmdline: the server's own name
    /// wins, then a Python interpreter means multiprocessing.
    pub fn classify(comm: &str, cmdline: &str) -> ServerKind {
        let comm = comm.to_ascii_lowercase();
        let cmd = cmdline.to_ascii_lowercase();
        let says = |w: &str| comm.contains(w) || cmd.contains(w);
        if says("gunicorn") {
            ServerKind::Gunicorn
        } else if says("uwsgi") {
            ServerKind::Uwsgi
        } else if says("puma") {
            ServerKind::Puma
        } else if says("php-fpm") {
            ServerKind::PhpFpm
        } else if says("celery") {
            ServerKind::Celery
        } else if comm.starts_with("python") {
            ServerKind::Multiprocessing
        } else {
            ServerKind::Prefork
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Gunicorn => "gunicorn",
            ServerKind::Uwsgi => "uwsgi",
            ServerKind::Puma => "puma",
            ServerKind::PhpFpm => "php_fpm",
            ServerKind::Celery => "celery",
            ServerKind::Multiprocessing => "multiprocessing",
            ServerKind::Prefork => "prefork",
        }
    }
}

/// The pre-fork shape found in a group: indexes into the members given to [`detect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub master: usize,
    /// The master's children that share one comm, in pid order.
    pub workers: Vec<usize>,
}

/// The member with the most children of one comm, if it has at least two; ties go
/// to the lowest pid. Children outside the group do not count (the group already
/// follows descendants when `children = true`).
pub fn detect(members: &[&ProcEntry]) -> Option<Detected> {
    // Linear in the group: children by (parent, comm), parents by pid. Zombies
    // have exited (and have no smaps): they are not workers.
    let mut children: PidMap<(i32, &str), Vec<usize>> = PidMap::default();
    let mut by_pid: PidMap<i32, usize> =
        PidMap::with_capacity_and_hasher(members.len(), Default::default());
    for (i, e) in members.iter().enumerate() {
        if e.zombie {
            continue;
        }
        by_pid.insert(e.pid, i);
        children.entry((e.ppid, &*e.comm)).or_default().push(i);
    }
    let mut best: Option<Detected> = None;
    for ((ppid, _), kids) in children {
        let Some(&master) = by_pid.get(&ppid) else {
            continue; // the parent is outside the group
        };
        if kids.len() < 2 {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => {
                kids.len() > b.workers.len()
                    || (kids.len() == b.workers.len()
                        && members[master].pid < members[b.master].pid)
            }
        };
        if better {
            let mut workers = kids;
            workers.sort_by_key(|&w| members[w].pid);
            best = Some(Detected { master, workers });
        }
    }
    best
}

/// `Pss:` of `smaps_rollup` in bytes (the file says kB).
pub fn parse_pss(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("Pss:")?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// A group's pre-fork server as seen this tick, with the last PSS readings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workers {
    pub server: ServerKind,
    pub master_pid: i32,
    /// Children of the master that share one executable (comm).
    pub workers: u64,
    /// The master's PSS; `None` until read (or when PSS reading is off).
    pub master_pss_bytes: Option<u64>,
    /// Mean PSS of the workers that have a reading (the mean, so that workers ×
    /// it is their total); `None` until read.
    pub worker_pss_bytes: Option<u64>,
    /// Summed PSS of the workers that have a reading.
    pub workers_pss_total_bytes: Option<u64>,
    /// Workers with a PSS reading (a worker forked since the last read has none).
    pub workers_with_pss: u64,
    /// Summed RSS of the group's other members (neither master nor worker): the
    /// shared baseline the hint reserves. RSS, not PSS: their smaps are not read.
    pub other_rss_bytes: u64,
    /// Seconds since the PSS readings were taken; `None` when never.
    pub pss_age_seconds: Option<f64>,
    /// `sampling.pss_interval` in seconds; `None` when PSS reading is off.
    pub pss_interval_seconds: Option<f64>,
}

/// Last PSS readings of one target's server.
#[derive(Debug, Default)]
struct Readings {
    at: Option<Instant>,
    pss: HashMap<Identity, u64>,
    /// Server kind per master identity: cmdline is read once per master.
    kind: Option<(Identity, ServerKind)>,
    /// Python's own helper children (multiprocessing's resource tracker and fork
    /// server), by identity: cmdline read once per child of a Python master.
    helpers: HashMap<Identity, bool>,
}

/// Whether a Python master's child is one of multiprocessing's helper processes
/// (`-c 'from multiprocessing.resource_tracker import main;main(5)'`, the fork
/// server), which share the master's comm but serve no requests.
fn is_python_helper(cmdline: &str) -> bool {
    cmdline.contains("multiprocessing.resource_tracker")
        || cmdline.contains("multiprocessing.forkserver")
        || cmdline.contains("multiprocessing.semaphore_tracker")
}

/// Rate-limited PSS readings of detected pre-fork servers, per target name.
#[derive(Debug)]
pub struct PssSampler {
    proc_root: PathBuf,
    /// `None`: PSS is never read.
    interval: Option<Duration>,
    per_target: HashMap<String, Readings>,
}

impl PssSampler {
    pub fn new(proc_root: &Path, interval: Option<Duration>) -> Self {
        PssSampler {
            proc_root: proc_root.to_path_buf(),
            interval,
            per_target: HashMap::new(),
        }
    }

    /// Detects the server among `members` and returns what is known of it, reading
    /// `smaps_rollup` of its master and workers (only theirs) when the last reading
    /// is older than the interval. `None` when the group has no pre-fork shape.
    pub fn observe(
        &mut self,
        target: &str,
        members: &[&ProcEntry],
        page_size: u64,
        errors: &mut ReadErrors,
    ) -> Option<Workers> {
        let Some(mut found) = detect(members) else {
            self.per_target.remove(target);
            return None;
        };
        let master = members[found.master];
        let r = self.per_target.entry(target.to_string()).or_default();
        if master.comm.starts_with("python") {
            r.drop_python_helpers(&self.proc_root, members, &mut found.workers);
            if found.workers.len() < 2 {
                self.per_target.remove(target);
                return None;
            }
        }
        let kind = r.kind_of(&self.proc_root, master);
        if r.pss_due(self.interval) {
            r.read_pss(&self.proc_root, members, &found, errors);
        }
        Some(r.workers(kind, members, &found, page_size, self.interval))
    }

    /// Forgets targets not seen this tick.
    pub fn retain(&mut self, seen: &PidSet<&str>) {
        self.per_target.retain(|k, _| seen.contains(k.as_str()));
    }
}

impl Readings {
    /// Leaves multiprocessing's helper children out of `workers` (a Python
    /// master's), reading the cmdline of each child once.
    fn drop_python_helpers(
        &mut self,
        root: &Path,
        members: &[&ProcEntry],
        workers: &mut Vec<usize>,
    ) {
        let helpers = &mut self.helpers;
        helpers.retain(|id, _| workers.iter().any(|&w| members[w].identity() == *id));
        workers.retain(|&w| {
            let e = members[w];
            !*helpers
                .entry(e.identity())
                .or_insert_with(|| is_python_helper(&read_cmdline(root, e.pid).unwrap_or_default()))
        });
    }

    /// Which server `master` is; its cmdline is read once per master.
    fn kind_of(&mut self, root: &Path, master: &ProcEntry) -> ServerKind {
        match self.kind {
            Some((id, k)) if id == master.identity() => k,
            _ => {
                let cmdline = read_cmdline(root, master.pid).unwrap_or_default();
                let k = ServerKind::classify(&master.comm, &cmdline);
                self.kind = Some((master.identity(), k));
                k
            }
        }
    }

    /// Whether PSS is to be read now: never when off, at once the first time, then
    /// once the interval has passed.
    fn pss_due(&self, interval: Option<Duration>) -> bool {
        match (interval, self.at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(iv), Some(at)) => at.elapsed() >= iv,
        }
    }

    /// Replaces the readings with the PSS of the master and workers of `found`; a
    /// process gone meanwhile has none, other failures are counted.
    fn read_pss(
        &mut self,
        root: &Path,
        members: &[&ProcEntry],
        found: &Detected,
        errors: &mut ReadErrors,
    ) {
        self.pss.clear();
        let read = std::iter::once(found.master).chain(found.workers.iter().copied());
        for e in read.map(|i| members[i]) {
            let path = root.join(e.pid.to_string()).join("smaps_rollup");
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse_pss(&text) {
                    Some(v) => {
                        self.pss.insert(e.identity(), v);
                    }
                    None => {
                        errors.record("smaps_rollup", &format!("{}: no Pss line", path.display()))
                    }
                },
                Err(err) if io_gone(&err) => {}
                Err(err) => errors.record("smaps_rollup", &format!("{}: {err}", path.display())),
            }
        }
        self.at = Some(Instant::now());
    }

    /// The server as seen this tick, with the readings kept.
    fn workers(
        &self,
        server: ServerKind,
        members: &[&ProcEntry],
        found: &Detected,
        page_size: u64,
        interval: Option<Duration>,
    ) -> Workers {
        let master = members[found.master];
        let worker_pss: Vec<u64> = found
            .workers
            .iter()
            .filter_map(|&i| self.pss.get(&members[i].identity()).copied())
            .collect();
        let total: u64 = worker_pss.iter().sum();
        let n = worker_pss.len() as u64;
        let other_rss_bytes = members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != found.master && !found.workers.contains(i))
            .map(|(_, e)| e.rss_pages * page_size)
            .sum();
        Workers {
            server,
            master_pid: master.pid,
            workers: found.workers.len() as u64,
            master_pss_bytes: self.pss.get(&master.identity()).copied(),
            worker_pss_bytes: (n > 0).then(|| total / n),
            workers_pss_total_bytes: (n > 0).then_some(total),
            workers_with_pss: n,
            other_rss_bytes,
            pss_age_seconds: self.at.map(|at| at.elapsed().as_secs_f64()),
            pss_interval_seconds: interval.map(|d| d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32, ppid: i32, comm: &str) -> ProcEntry {
        ProcEntry {
            pid,
            ppid,
            start_ticks: 100 + pid as u64,
            comm: comm.into(),
            kernel_thread: false,
            zombie: false,
            user_ticks: 0,
            system_ticks: 0,
            rss_pages: 256,
            vsize_bytes: 0,
            threads: 1,
        }
    }

    const ROLLUP: &str = "55d0c0a00000-7ffd5a3f1000 ---p 00000000 00:00 0                          [rollup]\nRss:               24576 kB\nPss:               10240 kB\nPss_Dirty:          8000 kB\nPss_Anon:           8000 kB\nShared_Clean:       4000 kB\n";

    #[test]
    fn parses_pss_from_smaps_rollup() {
        assert_eq!(parse_pss(ROLLUP), Some(10240 * 1024));
        // Pss_Dirty etc. are not Pss.
        assert_eq!(parse_pss("Pss_Dirty:  8 kB\n"), None);
        assert_eq!(parse_pss("garbage"), None);
        assert_eq!(parse_pss("Pss: lots kB\n"), None);
    }

    #[test]
    fn detects_the_master_and_its_same_comm_children() {
        // A shell starts gunicorn; gunicorn forks three workers; one worker runs a
        // helper of another executable.
        let list = [
            entry(10, 1, "sh"),
            entry(11, 10, "gunicorn"),
            entry(12, 11, "gunicorn"),
            entry(13, 11, "gunicorn"),
            entry(14, 11, "gunicorn"),
            entry(15, 12, "convert"),
        ];
        let members: Vec<&ProcEntry> = list.iter().collect();
        let d = detect(&members).unwrap();
        assert_eq!(members[d.master].pid, 11);
        let pids: Vec<i32> = d.workers.iter().map(|&i| members[i].pid).collect();
        assert_eq!(pids, vec![12, 13, 14]);
    }

    #[test]
    fn zombies_are_not_workers_and_ties_go_to_the_lowest_pid() {
        let mut dead = entry(13, 10, "python3");
        dead.zombie = true;
        let list = [
            entry(10, 1, "python3"),
            entry(11, 10, "python3"),
            entry(12, 10, "python3"),
            dead,
            entry(20, 1, "celery"),
            entry(21, 20, "celery"),
            entry(22, 20, "celery"),
        ];
        let members: Vec<&ProcEntry> = list.iter().collect();
        let d = detect(&members).unwrap();
        assert_eq!(members[d.master].pid, 10);
        assert_eq!(d.workers.len(), 2, "the zombie is left out");
    }

    #[test]
    fn one_child_or_mixed_children_is_not_a_prefork_server() {
        let one = [entry(10, 1, "python3"), entry(11, 10, "python3")];
        assert_eq!(detect(&one.iter().collect::<Vec<_>>()), None);
        let mixed = [
            entry(10, 1, "bash"),
            entry(11, 10, "sleep"),
            entry(12, 10, "cat"),
        ];
        assert_eq!(detect(&mixed.iter().collect::<Vec<_>>()), None);
    }

    #[test]
    fn names_the_server() {
        let k = ServerKind::classify;
        assert_eq!(
            k(
                "python3",
                "/usr/bin/python3 /usr/local/bin/gunicorn app:app"
            ),
            ServerKind::Gunicorn
        );
        assert_eq!(k("uwsgi", "uwsgi --ini app.ini"), ServerKind::Uwsgi);
        assert_eq!(
            k("ruby", "puma 6.4.0 (tcp://0.0.0.0:3000) [app]"),
            ServerKind::Puma
        );
        assert_eq!(
            k(
                "php-fpm8.2",
                "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"
            ),
            ServerKind::PhpFpm
        );
        assert_eq!(
            k(
                "celery",
                "/usr/bin/python3 /usr/local/bin/celery -A proj worker"
            ),
            ServerKind::Celery
        );
        assert_eq!(
            k("python3.11", "python3 pool.py"),
            ServerKind::Multiprocessing
        );
        assert_eq!(k("node", "node cluster.js"), ServerKind::Prefork);
    }

    /// A fixture /proc tree: the master and workers are read, the outsider's
    /// smaps_rollup (present, and it would count) never is; readings are carried
    /// until the interval has passed.
    #[test]
    fn reads_pss_of_master_and_workers_only_at_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |pid: i32, pss_kb: u64| {
            let d = root.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("smaps_rollup"),
                format!("Rss: 1 kB\nPss: {pss_kb} kB\n"),
            )
            .unwrap();
            std::fs::write(d.join("cmdline"), "gunicorn\0app:app\0").unwrap();
        };
        write(11, 20_000);
        write(12, 10_000);
        write(13, 14_000);
        // A helper in the same group, not a worker: its smaps_rollup is a directory,
        // so a read of it would be counted as an error.
        std::fs::create_dir_all(root.join("20/smaps_rollup")).unwrap();
        let list = [
            entry(11, 1, "gunicorn"),
            entry(12, 11, "gunicorn"),
            entry(13, 11, "gunicorn"),
            entry(20, 1, "helper"),
        ];
        let members: Vec<&ProcEntry> = list.iter().collect();
        let mut errors = ReadErrors::default();
        let mut s = PssSampler::new(root, Some(Duration::from_secs(3600)));
        let w = s.observe("app", &members, 4096, &mut errors).unwrap();
        assert_eq!(w.server, ServerKind::Gunicorn);
        assert_eq!(w.master_pid, 11);
        assert_eq!(w.workers, 2);
        assert_eq!(w.master_pss_bytes, Some(20_000 * 1024));
        assert_eq!(w.worker_pss_bytes, Some(12_000 * 1024), "the mean");
        assert_eq!(w.workers_pss_total_bytes, Some(24_000 * 1024));
        assert_eq!(w.other_rss_bytes, 256 * 4096, "the helper's RSS");
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);

        // Within the interval the file is not read again: the old figure stays.
        std::fs::write(root.join("12/smaps_rollup"), "Pss: 50000 kB\n").unwrap();
        let w = s.observe("app", &members, 4096, &mut errors).unwrap();
        assert_eq!(w.worker_pss_bytes, Some(12_000 * 1024));

        // Off: never read at all.
        let mut off = PssSampler::new(root, None);
        let w = off.observe("app", &members, 4096, &mut errors).unwrap();
        assert_eq!((w.master_pss_bytes, w.worker_pss_bytes), (None, None));
        assert_eq!(w.workers, 2, "workers are still counted");

        // Interval zero: read every tick, and garbage is counted, not fatal.
        let mut every = PssSampler::new(root, Some(Duration::ZERO));
        std::fs::write(root.join("13/smaps_rollup"), "garbage\n").unwrap();
        let w = every.observe("app", &members, 4096, &mut errors).unwrap();
        assert_eq!(w.worker_pss_bytes, Some(50_000 * 1024));
        assert_eq!(w.workers_with_pss, 1);
        assert_eq!(errors.counts.get("smaps_rollup"), Some(&1));
    }

    /// A Python spawn pool: the master's children of its own comm include
    /// multiprocessing's resource tracker, which is no worker.
    #[test]
    fn pythons_resource_tracker_is_not_a_worker() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cmdline = |pid: i32, text: &str| {
            let d = root.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cmdline"), text).unwrap();
        };
        cmdline(10, "python3\0pool.py\0");
        cmdline(
            11,
            "/usr/bin/python3\0-c\0from multiprocessing.resource_tracker import main;main(5)\0",
        );
        for pid in [12, 13] {
            cmdline(
                pid,
                "/usr/bin/python3\0-c\0from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=6, pipe_handle=8)\0--multiprocessing-fork\0",
            );
        }
        let list = [
            entry(10, 1, "python3"),
            entry(11, 10, "python3"),
            entry(12, 10, "python3"),
            entry(13, 10, "python3"),
        ];
        let members: Vec<&ProcEntry> = list.iter().collect();
        let mut errors = ReadErrors::default();
        let mut s = PssSampler::new(root, None);
        let w = s.observe("app", &members, 4096, &mut errors).unwrap();
        assert_eq!(w.workers, 2);
        assert_eq!(w.other_rss_bytes, 256 * 4096, "the tracker's RSS");
        // One worker and the tracker: no pre-fork shape.
        let w = s.observe("app", &members[..3], 4096, &mut errors);
        assert!(w.is_none(), "{w:?}");
    }
}
