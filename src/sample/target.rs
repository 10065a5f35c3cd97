//! Choosing and grouping processes; identity, restarts and counters that never go
//! backwards.
//!
//! Each tick gets the full process list ([`ProcEntry`] per pid). A process joins the
//! first target whose selector matches it directly; otherwise it joins the group of
//! its nearest ancestor whose target takes `children`. With no target configured the
//! one group is "everything visible but Outrider itself, kernel threads and the pod's
//! pause process", named after its main process' comm.
//!
//! Group counters (CPU seconds, I/O bytes, context switches) are kept here as running
//! totals: a member seen before adds its increase since the last tick, a new member
//! (new pid *or* new start time for a known pid) adds its whole count, and a member
//! that exits leaves what it added. So the totals only grow, and pid reuse never
//! mixes two processes' numbers.

use super::pid_hash::{PidMap, PidSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use super::process::{self, Identity, ProcEntry, ReadErrors};

/// One configured group of processes.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The `target` label; `None` means "the main process' comm", fixed when first seen.
    pub name: Option<String>,
    pub selector: Selector,
    /// Whether descendants of a matched process join its group.
    pub children: bool,
}

#[derive(Debug, Clone)]
pub enum Selector {
    /// The process with this pid when first seen, and only it: a later process
    /// given the same pid (by the kernel, once the first is gone) is another.
    Pid(i32),
    PidFile(PathBuf),
    /// Every given field must match (process-exporter's semantics).
    Match {
        /// Exact comm (the kernel's 15-byte process name).
        comm: Option<String>,
        /// Exact executable path, or its file name when no `/` is given.
        exe: Option<String>,
        /// Regex searched in the arguments joined by spaces.
        cmdline: Option<Regex>,
    },
}

/// What a group is chosen by at run time.
#[derive(Debug, Clone)]
pub enum GroupSpec {
    Configured(TargetSpec),
    /// No target configured: every visible process but Outrider and pause.
    Everything,
}

impl GroupSpec {
    fn children(&self) -> bool {
        match self {
            GroupSpec::Configured(t) => t.children,
            GroupSpec::Everything => true,
        }
    }
}

/// Counters of one process (or a group's totals).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub cpu_wait_seconds: f64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

impl Counters {
    /// Adds `cur - prev` field by field, never a negative step.
    fn add_increase(&mut self, cur: &Counters, prev: &Counters) {
        self.user_seconds += (cur.user_seconds - prev.user_seconds).max(0.0);
        self.system_seconds += (cur.system_seconds - prev.system_seconds).max(0.0);
        self.cpu_wait_seconds += (cur.cpu_wait_seconds - prev.cpu_wait_seconds).max(0.0);
        self.read_bytes += cur.read_bytes.saturating_sub(prev.read_bytes);
        self.write_bytes += cur.write_bytes.saturating_sub(prev.write_bytes);
        self.voluntary_switches += cur
            .voluntary_switches
            .saturating_sub(prev.voluntary_switches);
        self.involuntary_switches += cur
            .involuntary_switches
            .saturating_sub(prev.involuntary_switches);
    }
}

/// One member's counters as read this tick: a figure whose file could not be
/// read (`io` of a process that made itself undumpable, a `schedstat` the kernel
/// lacks) is `None`, not 0, so that the next reading is not taken for growth
/// from nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemberCounters {
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub cpu_wait_seconds: Option<f64>,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
}

impl MemberCounters {
    /// This reading with each figure it lacks taken from `prev`, the member's
    /// last: unknown now is unchanged since then, not back to 0.
    fn or(self, prev: &MemberCounters) -> MemberCounters {
        MemberCounters {
            cpu_wait_seconds: self.cpu_wait_seconds.or(prev.cpu_wait_seconds),
            read_bytes: self.read_bytes.or(prev.read_bytes),
            write_bytes: self.write_bytes.or(prev.write_bytes),
            voluntary_switches: self.voluntary_switches.or(prev.voluntary_switches),
            involuntary_switches: self.involuntary_switches.or(prev.involuntary_switches),
            ..self
        }
    }

    /// The figures known, a figure never read as 0: the first reading of it
    /// adds the member's whole count, as a member seen for the first time does.
    fn known(&self) -> Counters {
        Counters {
            user_seconds: self.user_seconds,
            system_seconds: self.system_seconds,
            cpu_wait_seconds: self.cpu_wait_seconds.unwrap_or(0.0),
            read_bytes: self.read_bytes.unwrap_or(0),
            write_bytes: self.write_bytes.unwrap_or(0),
            voluntary_switches: self.voluntary_switches.unwrap_or(0),
            involuntary_switches: self.involuntary_switches.unwrap_or(0),
        }
    }
}

/// Running state of one group across ticks.
#[derive(Debug)]
pub struct GroupState {
    pub spec: GroupSpec,
    /// Fixed once known: the configured name, or the main process' comm.
    pub name: Option<String>,
    pub totals: Counters,
    /// Last counters seen per member identity; pruned when the process is gone.
    last: PidMap<Identity, MemberCounters>,
    pub main: Option<Identity>,
    pub restarts: u64,
}

impl GroupState {
    pub fn new(spec: GroupSpec) -> Self {
        let name = match &spec {
            GroupSpec::Configured(t) => t.name.clone(),
            GroupSpec::Everything => None,
        };
        GroupState {
            spec,
            name,
            totals: Counters::default(),
            last: PidMap::default(),
            main: None,
            restarts: 0,
        }
    }

    /// Folds this tick's member counters into the totals. `alive` is every identity
    /// in the process list, so a member whose reads failed this tick keeps its place,
    /// and a figure it could not be read for keeps its last value.
    pub fn account(&mut self, members: &[(Identity, MemberCounters)], alive: &PidSet<Identity>) {
        for (id, cur) in members {
            let prev = self.last.get(id).copied().unwrap_or_default();
            let cur = cur.or(&prev);
            self.totals.add_increase(&cur.known(), &prev.known());
            self.last.insert(*id, cur);
        }
        self.last.retain(|id, _| alive.contains(id));
    }

    /// Notes the group's main process; a new main while the old one is gone is a
    /// restart (a group that was empty and comes back counts too).
    pub fn observe_main(&mut self, main: Option<Identity>, alive: &PidSet<Identity>) {
        if let Some(new) = main {
            if let Some(old) = self.main {
                if old != new && !alive.contains(&old) {
                    self.restarts += 1;
                }
            }
            self.main = Some(new);
        }
    }
}

/// Cached per-process facts that matchers need and that cost a read.
#[derive(Debug, Default)]
struct Facts {
    exe: Option<Option<String>>,
    cmdline: Option<Option<String>>,
}

/// Assigns processes to groups, tick after tick.
#[derive(Debug)]
pub struct ProcessGroups {
    proc_root: PathBuf,
    self_pid: i32,
    facts: PidMap<Identity, Facts>,
    /// Per group chosen by pid: the process that pid named when first matched.
    pinned: Vec<Option<Identity>>,
}

impl ProcessGroups {
    pub fn new(proc_root: &Path, self_pid: i32) -> Self {
        ProcessGroups {
            proc_root: proc_root.to_path_buf(),
            self_pid,
            facts: PidMap::default(),
            pinned: Vec::new(),
        }
    }

    /// For each group, the indices into `list` of its members.
    pub fn assign(
        &mut self,
        groups: &[GroupSpec],
        list: &[ProcEntry],
        errors: &mut ReadErrors,
    ) -> Vec<Vec<usize>> {
        let by_pid: PidMap<i32, usize> = list.iter().enumerate().map(|(i, e)| (e.pid, i)).collect();
        // Pid files are read once per tick, not once per process.
        let pid_files: Vec<Option<i32>> = groups
            .iter()
            .map(|g| match g {
                GroupSpec::Configured(TargetSpec {
                    selector: Selector::PidFile(path),
                    ..
                }) => read_pid_file(path, errors),
                _ => None,
            })
            .collect();

        let mut direct: Vec<Option<usize>> = vec![None; list.len()];
        for (i, e) in list.iter().enumerate() {
            if self.excluded(e) {
                continue;
            }
            for (g, spec) in groups.iter().enumerate() {
                if self.matches(g, spec, pid_files[g], e, errors) {
                    direct[i] = Some(g);
                    break;
                }
            }
        }

        // Descendants join their nearest matched ancestor's group (if it takes
        // children). Walk up until a resolved or directly matched process, then
        // resolve the walked chain top-down.
        let mut owner: Vec<Option<usize>> = vec![None; list.len()];
        let mut done = vec![false; list.len()];
        let mut chain = Vec::new();
        for start in 0..list.len() {
            let mut i = start;
            let mut above = None;
            loop {
                if done[i] {
                    above = owner[i];
                    break;
                }
                chain.push(i);
                if direct[i].is_some() || self.excluded(&list[i]) {
                    break;
                }
                match by_pid.get(&list[i].ppid) {
                    // The length bound guards against a ppid cycle in a broken tree.
                    Some(&parent) if chain.len() < list.len() => i = parent,
                    _ => break,
                }
            }
            for &j in chain.iter().rev() {
                let o = if self.excluded(&list[j]) {
                    None
                } else {
                    direct[j].or(above.filter(|&g| groups[g].children()))
                };
                owner[j] = o;
                done[j] = true;
                above = o;
            }
            chain.clear();
        }

        let mut out = vec![Vec::new(); groups.len()];
        for (i, o) in owner.iter().enumerate() {
            if let Some(g) = o {
                out[*g].push(i);
            }
        }
        out
    }

    /// Drops cached facts of processes no longer listed (the tick's `alive` set).
    pub fn forget_gone(&mut self, alive: &PidSet<Identity>) {
        self.facts.retain(|id, _| alive.contains(id));
    }

    fn excluded(&self, e: &ProcEntry) -> bool {
        e.pid == self.self_pid
            || e.kernel_thread
            || e.zombie
            || e.pid == 2
            || (e.pid == 1 && &*e.comm == "pause")
    }

    fn matches(
        &mut self,
        g: usize,
        spec: &GroupSpec,
        pid_file: Option<i32>,
        e: &ProcEntry,
        errors: &mut ReadErrors,
    ) -> bool {
        let t = match spec {
            GroupSpec::Everything => return true,
            GroupSpec::Configured(t) => t,
        };
        match &t.selector {
            Selector::Pid(pid) if e.pid == *pid => {
                if self.pinned.len() <= g {
                    self.pinned.resize(g + 1, None);
                }
                *self.pinned[g].get_or_insert(e.identity()) == e.identity()
            }
            Selector::Pid(_) => false,
            Selector::PidFile(_) => pid_file == Some(e.pid),
            Selector::Match { comm, exe, cmdline } => {
                if let Some(c) = comm {
                    if *e.comm != **c {
                        return false;
                    }
                }
                if let Some(want) = exe {
                    let got = self.exe(e, errors);
                    let ok = got.is_some_and(|path| {
                        if want.contains('/') {
                            path == want
                        } else {
                            Path::new(path)
                                .file_name()
                                .is_some_and(|f| f == want.as_str())
                        }
                    });
                    if !ok {
                        return false;
                    }
                }
                if let Some(re) = cmdline {
                    let got = self.cmdline(e, errors);
                    if !got.is_some_and(|c| re.is_match(c)) {
                        return false;
                    }
                }
                true
            }
        }
    }

    fn exe(&mut self, e: &ProcEntry, errors: &mut ReadErrors) -> Option<&str> {
        let root = &self.proc_root;
        let facts = self.facts.entry(e.identity()).or_default();
        facts
            .exe
            .get_or_insert_with(|| read_fact("exe", process::read_exe(root, e.pid), errors))
            .as_deref()
    }

    fn cmdline(&mut self, e: &ProcEntry, errors: &mut ReadErrors) -> Option<&str> {
        let root = &self.proc_root;
        let facts = self.facts.entry(e.identity()).or_default();
        facts
            .cmdline
            .get_or_insert_with(|| read_fact("cmdline", process::read_cmdline(root, e.pid), errors))
            .as_deref()
    }
}

/// A matcher's fact, or `None` counted as a read error (unless the process is gone).
fn read_fact(
    source: &'static str,
    read: Result<String, procfs::ProcError>,
    errors: &mut ReadErrors,
) -> Option<String> {
    match read {
        Ok(s) => Some(s),
        Err(err) => {
            if !process::is_gone(&err) {
                errors.record(source, &err);
            }
            None
        }
    }
}

fn read_pid_file(path: &Path, errors: &mut ReadErrors) -> Option<i32> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse().ok(),
        // Not there yet (the app has not started): not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.record("pid_file", &format!("{}: {e}", path.display()));
            None
        }
    }
}

/// The main process of a group: the selected pid, or the oldest member whose parent
/// is not itself a member.
pub fn main_process(spec: &GroupSpec, list: &[ProcEntry], members: &[usize]) -> Option<usize> {
    if let GroupSpec::Configured(TargetSpec {
        selector: Selector::Pid(pid),
        ..
    }) = spec
    {
        if let Some(&i) = members.iter().find(|&&i| list[i].pid == *pid) {
            return Some(i);
        }
    }
    let pids: PidSet<i32> = members.iter().map(|&i| list[i].pid).collect();
    members
        .iter()
        .copied()
        .filter(|&i| !pids.contains(&list[i].ppid) || list[i].ppid == list[i].pid)
        .min_by_key(|&i| (list[i].start_ticks, list[i].pid))
}

/// A comm made safe as a label value.
pub fn label_from_comm(comm: &str) -> String {
    let s: String = comm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        "app".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
