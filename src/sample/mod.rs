//! One sampling pass: /proc and cgroup readings folded into a [`Sample`].
//!
//! # Layout
//! - [`process`]: per-process files under `/proc/<pid>/`
//! - [`cgroup`]: the app container's cgroup files (v2, v1 or hybrid)
//! - [`allocation`]: the requests and limits Outrider judges against
//! - [`sockets`]: TCP connections by state and service, scanned at a lower rate
//! - [`target`]: choosing and grouping processes; identity, restarts, counters
//! - [`workers`]: pre-fork servers (master, workers) and their PSS, at a low rate
//! - [`pid_hash`]: a cheap hasher for the per-tick maps keyed by pids
//! - `listing`: this tick's processes and their groups, kept between listings
//!
//! The [`Sampler`] owns every piece of state that must survive between ticks (group
//! totals, restarts, cached cgroup directories, files kept open). It does blocking
//! file I/O, so it runs on the tick's own thread (`tick::tick_loop`).

pub mod allocation;
pub mod cgroup;
pub mod jvm;
mod listing;
pub mod pid_hash;
pub mod process;
pub mod sockets;
pub mod target;
pub mod workers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use allocation::Allocation;
use allocation::ResourceSpec;
use cgroup::CgroupReading;
use pid_hash::{PidMap, PidSet};
use process::{Identity, ProcEntry, ProcReader, ReadErrors};
use target::{
    Counters, GroupSpec, GroupState, MemberCounters, ProcessGroups, Selector, TargetSpec,
};

/// What one sampling pass read: readings only. The tick adds what the analysis and
/// the alert rules make of them (`state::Published`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    pub taken_at_unix: f64,
    pub sample_duration_seconds: f64,
    pub targets: Vec<TargetSample>,
    /// Cumulative failed reads by source.
    pub read_errors: BTreeMap<&'static str, u64>,
    /// Connection scans so far; `None` when they are off.
    pub connection_scans: Option<sockets::ScanStats>,
}

/// One group's figures at the end of a tick.
#[derive(Default, Debug, Clone, Serialize)]
pub struct TargetSample {
    pub name: String,
    pub up: bool,
    pub processes: u64,
    pub restarts: u64,
    pub main_pid: Option<i32>,
    /// Unix time the oldest member started.
    pub start_time_seconds: Option<f64>,
    pub counters: CountersView,
    pub resident_memory_bytes: u64,
    pub swap_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    /// Smallest soft fd limit among members; `None` if unlimited or unknown.
    pub max_fds: Option<u64>,
    pub threads: u64,
    /// `None` when the app's cgroup is not reachable (see `cgroup_unreachable`).
    pub cgroup: Option<CgroupReading>,
    pub cgroup_unreachable: Option<String>,
    pub allocation: Allocation,
    /// TCP sockets at the latest connection scan; `None` when scans are off or no
    /// fd directory of the group could be read.
    pub connections: Option<sockets::Connections>,
    /// The group's pre-fork server (master, workers, PSS); `None` without one.
    pub workers: Option<workers::Workers>,
    /// The group's JVM heap (its perf-data file); `None` when it is not a JVM or
    /// the file cannot be read.
    pub jvm: Option<jvm::JvmHeap>,
}

impl TargetSample {
    /// The group's resident memory with a JVM heap counted once: RSS counts
    /// each mapping of a page, and ZGC of one generation maps its heap three
    /// times (a capped cache of 160 MiB committed read 540 MiB of RSS). What
    /// memory verdicts judge; `resident_memory_bytes` stays the kernel's figure.
    pub fn resident_once_bytes(&self) -> u64 {
        jvm::JvmHeap::counted_once(self.jvm.as_ref(), self.resident_memory_bytes)
    }
}

/// Group totals as exposed; same fields as [`Counters`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CountersView {
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    pub cpu_wait_seconds: f64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub voluntary_context_switches: u64,
    pub involuntary_context_switches: u64,
}

impl From<Counters> for CountersView {
    fn from(c: Counters) -> Self {
        CountersView {
            cpu_user_seconds: c.user_seconds,
            cpu_system_seconds: c.system_seconds,
            cpu_wait_seconds: c.cpu_wait_seconds,
            io_read_bytes: c.read_bytes,
            io_write_bytes: c.write_bytes,
            voluntary_context_switches: c.voluntary_switches,
            involuntary_context_switches: c.involuntary_switches,
        }
    }
}

/// State kept between ticks.
#[derive(Debug)]
pub struct Sampler {
    proc_root: PathBuf,
    groups: Vec<GroupState>,
    grouper: ProcessGroups,
    errors: ReadErrors,
    resources: ResourceSpec,
    boot_time: Option<f64>,
    ticks_per_second: f64,
    page_size: u64,
    /// Resolved cgroup directories per main process identity.
    cgroup_dirs: PidMap<Identity, (Result<cgroup::Location, String>, Instant)>,
    /// Each group's cgroup as last resolved (by index in `groups`) and the main
    /// process it was resolved for, read while the group is down: the OOM kill that
    /// ended it is counted after it is gone. Kept through Outrider's own root when
    /// the app shares it (wrap mode: it is Outrider's own cgroup, still there); a
    /// vanished container's is forgotten once its directories are gone.
    last_cgroup: Vec<Option<(Identity, cgroup::Location)>>,
    /// Per group: the location `last_cgroup` was kept from, as resolved (before
    /// [`Sampler::through_own_root`]), and what its directories were then: a
    /// main process moved to another cgroup has it kept again, while a new one in
    /// the same cgroup (a restart: other `/proc/<pid>/root` paths) is no move.
    kept_from: Vec<Option<(cgroup::Location, cgroup::LocationIdentity)>>,
    /// Per group: which of its cgroup's OOM kills were its own.
    oom: Vec<cgroup::OomAttribution>,
    reader: ProcReader,
    /// Cgroup files kept open between ticks.
    cgroup_files: cgroup::Files,
    /// Processes in no group, with when their `stat` was read: re-read only every
    /// [`OUTSIDER_RECHECK`] (new pids are always read at once).
    outsiders: PidMap<i32, (ProcEntry, Instant)>,
    /// When /proc was last listed in full, and whether this tick's list was made
    /// without listing it (see [`Sampler::list_between`]).
    listed_at: Option<Instant>,
    by_pid: bool,
    /// Last tick's members, read again by [`Sampler::list_between`].
    members: Vec<Identity>,
    /// Last tick's processes and groups, kept between listings.
    grouped: Option<listing::Grouped>,
    /// Whether a group chosen by name had no member last tick: /proc is then
    /// listed in full (see [`Sampler::list_between`]).
    name_group_down: bool,
    /// Soft fd limit per member and when it was read: limits rarely change and
    /// `limits` is costly for the kernel to format, so it is re-read once a minute.
    max_fds: PidMap<Identity, (Option<u64>, Instant)>,
    /// When connections are scanned, and the latest figures.
    connections: sockets::ConnectionScans,
    /// PSS of pre-fork masters and workers, read at `sampling.pss_interval`.
    pss: workers::PssSampler,
    /// Each group's JVM heap, where it has one.
    jvm: jvm::JvmHeaps,
    /// Outrider's own pid: never a member, and not "another process" in the app's
    /// cgroup (in wrap mode they share it).
    self_pid: i32,
}

/// How long a process outside every group is trusted to stay so before its `stat`
/// is read again. Reading `stat` of every visible process is most of a tick's cost
/// for a small group; a process joins a group on its own (a new pid, a member's
/// child) without waiting for it, a new pid at the next listing (every tick, or
/// see [`Sampler::list_between`]). Only a process that `exec`s into a match, or a
/// pid reused within this window, is seen up to this late.
const OUTSIDER_RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// How long /proc goes without a full listing when every group is chosen by pid
/// (see [`Sampler::list_between`]). Such a group is found whole without it, so the
/// listing only refreshes processes that cannot join a group: a safety net. At
/// 1 s ticks a listing every 10 s was a fifth of a tick's CPU (docs/performance.md).
const PID_GROUPS_RELIST: std::time::Duration = std::time::Duration::from_secs(60);

/// How long /proc goes without a full listing when a group is chosen by name and
/// every such group is up (see [`Sampler::list_between`]): how late a new matching
/// process that is not a member's descendant may be found. The trust already given
/// an outsider ([`OUTSIDER_RECHECK`]): one that `exec`s into a match is seen as late.
const NAME_GROUPS_RELIST: std::time::Duration = OUTSIDER_RECHECK;

/// How long a `stat` file a full listing opened stays open unread: past the next
/// listing that reads it again (an outsider is read again once [`OUTSIDER_RECHECK`]
/// old, and listings are at most [`PID_GROUPS_RELIST`] apart). See
/// `process::Kept`.
const LISTED_LINGER: std::time::Duration = PID_GROUPS_RELIST.saturating_add(OUTSIDER_RECHECK);

/// How long a process' soft fd limit is trusted before it is read again.
const LIMITS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Sampler {
    pub fn new(
        proc_root: PathBuf,
        specs: Vec<GroupSpec>,
        resources: ResourceSpec,
        self_pid: i32,
    ) -> Self {
        let boot_time = match process::boot_time_precise(&proc_root) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(path = %proc_root.join("stat").display(), error = %e, "no boot time: start times will be missing");
                None
            }
        };
        Sampler {
            reader: ProcReader::new(&proc_root),
            cgroup_files: cgroup::Files::default(),
            pss: workers::PssSampler::new(&proc_root, None),
            jvm: jvm::JvmHeaps::default(),
            outsiders: PidMap::default(),
            listed_at: None,
            by_pid: false,
            members: Vec::new(),
            grouped: None,
            name_group_down: false,
            max_fds: PidMap::default(),
            grouper: ProcessGroups::new(&proc_root, self_pid),
            last_cgroup: vec![None; specs.len()],
            kept_from: vec![None; specs.len()],
            oom: vec![cgroup::OomAttribution::default(); specs.len()],
            groups: specs.into_iter().map(GroupState::new).collect(),
            proc_root,
            errors: ReadErrors::default(),
            resources,
            boot_time,
            ticks_per_second: process::ticks_per_second() as f64,
            page_size: process::page_size(),
            cgroup_dirs: PidMap::default(),
            connections: sockets::ConnectionScans::default(),
            self_pid,
        }
    }

    /// Scans TCP connections at most every `every` (`None`: never, the default),
    /// with ticks `tick` apart.
    pub fn with_connection_scans(
        mut self,
        every: Option<std::time::Duration>,
        tick: std::time::Duration,
    ) -> Self {
        self.connections = sockets::ConnectionScans::new(every, tick).watching_startups();
        self
    }

    /// Reads the PSS of detected pre-fork masters and workers at most once per
    /// `interval`; `None` (the default of [`Sampler::new`]) never reads it.
    pub fn with_pss_interval(mut self, interval: Option<std::time::Duration>) -> Self {
        self.pss = workers::PssSampler::new(&self.proc_root, interval);
        self
    }

    /// One pass over /proc and the cgroups.
    pub fn sample(&mut self) -> Sample {
        let started = Instant::now();
        let grouped = self.group_processes();
        let (list, assignment, alive) = (&grouped.list, &grouped.assignment, &grouped.alive);
        self.name_group_down = self.groups.iter().zip(assignment).any(|(g, m)| {
            m.is_empty()
                && matches!(
                    &g.spec,
                    GroupSpec::Configured(TargetSpec {
                        selector: Selector::Match { .. },
                        ..
                    })
                )
        });
        let allocation_base = allocation::configured(&self.resources, &mut self.errors);

        let mut targets = Vec::with_capacity(self.groups.len());
        let mut member_pids = Vec::with_capacity(self.groups.len());
        for (g, members) in assignment.iter().enumerate() {
            let Some(mut snap) = self.sample_group(g, list, members, alive) else {
                continue; // never seen yet: nothing to name it by
            };
            snap.allocation = allocation_base.with_cgroup_fallback(snap.cgroup.as_ref());
            member_pids.push((
                snap.name.clone(),
                members.iter().map(|&i| list[i].pid).collect(),
            ));
            targets.push(snap);
        }
        let found = self
            .connections
            .tick(&self.proc_root, &member_pids, &mut self.errors);
        for (snap, c) in targets.iter_mut().zip(found) {
            snap.connections = c;
        }
        self.forget_departed(&targets, alive);
        self.cgroup_files.sweep();
        self.reader.sweep();
        self.grouped = Some(grouped);

        Sample {
            taken_at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            sample_duration_seconds: started.elapsed().as_secs_f64(),
            targets,
            read_errors: self.errors.counts.clone(),
            connection_scans: self.connections.enabled().then_some(self.connections.stats),
        }
    }

    /// Group `g`'s figures from its `members` (indexes into `list`), all but the
    /// allocation and connections; `None` while the group has never had a main
    /// process to name it by.
    fn sample_group(
        &mut self,
        g: usize,
        list: &[ProcEntry],
        members: &[usize],
        alive: &PidSet<Identity>,
    ) -> Option<TargetSample> {
        let main = target::main_process(&self.groups[g].spec, list, members);
        let main_id = main.map(|i| list[i].identity());
        let state = &mut self.groups[g];
        state.observe_main(main_id, alive);
        if state.name.is_none() {
            state.name = main.map(|i| target::label_from_comm(&list[i].comm));
        }
        let name = state.name.clone()?;

        let mut snap = empty_target(name, members.len(), main.map(|i| list[i].pid));
        let (member_counters, oldest) = self.add_members(&mut snap, list, members);
        let member_entries: Vec<&ProcEntry> = members.iter().map(|&i| &list[i]).collect();
        let java = members
            .iter()
            .copied()
            .filter(|&i| Some(i) != main && &*list[i].comm == "java");
        snap.jvm = self.jvm.heap(
            g,
            &self.proc_root,
            main.into_iter().chain(java).map(|i| &list[i]),
            alive,
            &mut self.errors,
        );
        snap.workers = self.pss.observe(
            &snap.name,
            &member_entries,
            self.page_size,
            &mut self.errors,
        );
        let state = &mut self.groups[g];
        state.account(&member_counters, alive);
        snap.counters = state.totals.into();
        snap.restarts = state.restarts;
        if let (Some(boot), Some(ticks)) = (self.boot_time, oldest) {
            snap.start_time_seconds = Some(boot + ticks as f64 / self.ticks_per_second);
        }
        let member_pids: PidSet<i32> = members.iter().map(|&i| list[i].pid).collect();
        match main_id {
            Some(id) => self.read_cgroup(g, id, &member_pids, &mut snap),
            None => self.read_last_cgroup(g, &mut snap),
        }
        Some(snap)
    }

    /// Adds each member's memory, threads and fds into `snap`; returns each one's
    /// counters (for the group totals) and the oldest start, in clock ticks. A
    /// member whose details cannot be read (gone meanwhile) is left out.
    fn add_members(
        &mut self,
        snap: &mut TargetSample,
        list: &[ProcEntry],
        members: &[usize],
    ) -> (Vec<(Identity, MemberCounters)>, Option<u64>) {
        let mut member_counters = Vec::with_capacity(members.len());
        let mut oldest: Option<u64> = None;
        for &i in members {
            let e = &list[i];
            let Some(d) = self.reader.read_details(e, &mut self.errors) else {
                continue;
            };
            let max_fds = self.max_fds_of(e.identity());
            snap.resident_memory_bytes += e.rss_pages * self.page_size;
            snap.virtual_memory_bytes += e.vsize_bytes;
            snap.threads += e.threads;
            snap.swap_bytes += d.swap_bytes.unwrap_or(0);
            snap.open_fds += d.open_fds.unwrap_or(0);
            if let Some(m) = max_fds {
                snap.max_fds = Some(snap.max_fds.map_or(m, |x| x.min(m)));
            }
            oldest = Some(oldest.map_or(e.start_ticks, |o| o.min(e.start_ticks)));
            member_counters.push((
                e.identity(),
                MemberCounters {
                    user_seconds: e.user_ticks as f64 / self.ticks_per_second,
                    system_seconds: e.system_ticks as f64 / self.ticks_per_second,
                    cpu_wait_seconds: d.run_delay_ns.map(|ns| ns as f64 / 1e9),
                    read_bytes: d.read_bytes,
                    write_bytes: d.write_bytes,
                    voluntary_switches: d.voluntary_switches,
                    involuntary_switches: d.involuntary_switches,
                },
            ));
        }
        (member_counters, oldest)
    }

    /// Reads the cgroup of group `g`'s main process `id` into `snap` and keeps its
    /// location for when the group is down, or says why it is unreachable.
    fn read_cgroup(
        &mut self,
        g: usize,
        id: Identity,
        members: &PidSet<i32>,
        snap: &mut TargetSample,
    ) {
        match self.cgroup_of(id, &snap.name) {
            Ok(location) => {
                // Another cgroup than the last reading's: its counters are not
                // the ones read so far.
                // Compared by path first (no system call), then, for other
                // paths, by what the directories are: an app restarted in its
                // container is reached through its new pid's root.
                let identity = match &self.kept_from[g] {
                    Some((kept, _)) if *kept == location => None,
                    _ => Some(location.identity()),
                };
                // Directories not statted (gone, or not ours to see) are told
                // apart by their paths alone, as before.
                let known = |ids: &cgroup::LocationIdentity| ids.iter().any(Option::is_some);
                let moved = match (&self.kept_from[g], identity) {
                    (Some((_, was)), Some(now)) => *was != now || !known(was) || !known(&now),
                    _ => false,
                };
                let reading = self.read_at(g, &location, members, moved);
                // Nothing read: the directories are gone (the cgroup removed, the
                // app moved out of it); resolved again at the next tick. Checking
                // them every tick would cost a path walk each.
                if reading.memory_current_bytes.is_none() && reading.cpu_periods.is_none() {
                    self.cgroup_dirs.remove(&id);
                }
                snap.cgroup = Some(reading);
                let same =
                    self.last_cgroup[g].as_ref().map(|(kept, _)| *kept) == Some(id) && !moved;
                if !same {
                    let identity = identity.unwrap_or_else(|| location.identity());
                    self.kept_from[g] = Some((location.clone(), identity));
                    let kept = self.through_own_root(id.pid, location);
                    self.last_cgroup[g] = Some((id, kept));
                }
            }
            Err(why) => snap.cgroup_unreachable = Some(why),
        }
    }

    /// Reads the last cgroup of group `g`, down now, into `snap`: the kernel's
    /// counters (an OOM kill that ended it) outlive its processes. A cgroup that
    /// is gone (a sidecar's vanished container) is forgotten, once, quietly: not a
    /// read error every tick.
    fn read_last_cgroup(&mut self, g: usize, snap: &mut TargetSample) {
        let Some((id, location)) = self.last_cgroup[g].take() else {
            return;
        };
        if !still_there(&location) {
            tracing::info!(target_name = %snap.name, dirs = %location.describe(), "the app's cgroup is gone");
            return;
        }
        snap.cgroup = Some(self.read_at(g, &location, &PidSet::default(), false));
        self.last_cgroup[g] = Some((id, location));
    }

    /// `location`, found through `/proc/<pid>/root`, seen through Outrider's own
    /// root instead when the two are one (same mount namespace, same root): the
    /// directories then stay reachable after `pid` is gone. Otherwise (a sidecar
    /// looking into a container, or links it may not read) as it is.
    fn through_own_root(&self, pid: i32, location: cgroup::Location) -> cgroup::Location {
        let app = self.proc_root.join(pid.to_string());
        let own = self.proc_root.join(self.self_pid.to_string());
        let same = |link: &str| match (
            std::fs::read_link(app.join(link)),
            std::fs::read_link(own.join(link)),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !(same("ns/mnt") && same("root")) {
            return location;
        }
        let (from, to) = (app.join("root"), own.join("root"));
        let rebase = |dir: Option<PathBuf>| {
            dir.map(|d| match d.strip_prefix(&from) {
                Ok(rest) => to.join(rest),
                Err(_) => d,
            })
        };
        cgroup::Location {
            layout: location.layout,
            unified: rebase(location.unified),
            memory: rebase(location.memory),
            cpu: rebase(location.cpu),
        }
    }

    /// Group `g`'s reading at `location`, failed files counted; `members` (and
    /// Outrider) are not "other processes", and its OOM kills are attributed
    /// (`moved`: the cgroup is another than the last reading's).
    fn read_at(
        &mut self,
        g: usize,
        location: &cgroup::Location,
        members: &PidSet<i32>,
        moved: bool,
    ) -> CgroupReading {
        let (mut reading, failures) = cgroup::read_with(location, &mut self.cgroup_files);
        let mut members: Vec<i32> = members.iter().copied().collect();
        members.sort_unstable();
        reading.other_processes = self.cgroup_files.other_processes(
            location,
            &members,
            self.self_pid,
            OUTSIDER_RECHECK,
            reading.memory_current_bytes,
        );
        self.oom[g].attribute(&mut reading, &members, moved);
        for (path, e) in failures {
            self.errors.record("cgroup", &format!("{path}: {e}"));
        }
        reading
    }

    /// Drops what is kept for main processes, members and targets no longer seen.
    fn forget_departed(&mut self, targets: &[TargetSample], alive: &PidSet<Identity>) {
        let live_mains: PidSet<Identity> = self.groups.iter().filter_map(|g| g.main).collect();
        self.cgroup_dirs.retain(|id, _| live_mains.contains(id));
        self.max_fds.retain(|id, _| alive.contains(id));
        let seen: PidSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        self.pss.retain(&seen);
    }

    /// The soft fd limit of a member, from the cache while it is fresh.
    fn max_fds_of(&mut self, id: Identity) -> Option<u64> {
        if let Some((v, at)) = self.max_fds.get(&id) {
            if at.elapsed() < LIMITS_TTL {
                return *v;
            }
        }
        match self.reader.read_max_fds(id.pid) {
            Ok(v) => {
                self.max_fds.insert(id, (v, Instant::now()));
                v
            }
            Err(e) => {
                if !matches!(e, process::ReadError::Gone) {
                    let path = self.reader.last_path().to_string();
                    self.errors.record("limits", &format!("{path}: {e}"));
                }
                None
            }
        }
    }

    /// The cgroup directories of a main process, resolved once per identity and
    /// again every [`CGROUP_RECHECK`], or at the tick after one that read nothing
    /// there (see [`Sampler::read_cgroup`]): a process moved to another cgroup (or
    /// whose cgroup was removed) is followed. An unreachable
    /// cgroup, and a change of cgroup, is logged once.
    fn cgroup_of(&mut self, id: Identity, target: &str) -> Result<cgroup::Location, String> {
        let stale = match self.cgroup_dirs.get(&id) {
            None => true,
            Some((_, at)) => at.elapsed() >= CGROUP_RECHECK,
        };
        if stale {
            let r = cgroup::resolve(&self.proc_root, id.pid);
            // Gone since the listing (its /proc/<pid>/root with it): what was
            // resolved stands for this last reading, and nothing is said.
            let gone = !self.proc_root.join(id.pid.to_string()).exists();
            if r.is_err() && gone && self.cgroup_dirs.contains_key(&id) {
                return self.cgroup_dirs[&id].0.clone();
            }
            let before = self.cgroup_dirs.get(&id).map(|(f, _)| f);
            if before != Some(&r) {
                match &r {
                    Ok(l) => {
                        tracing::info!(target_name = target, layout = l.layout.as_str(), dirs = %l.describe(), "reading the app's cgroup")
                    }
                    Err(why) => {
                        tracing::info!(target_name = target, reason = %why, "app cgroup not reachable; carrying on with /proc alone")
                    }
                }
            }
            self.cgroup_dirs.insert(id, (r, Instant::now()));
        }
        self.cgroup_dirs
            .get(&id)
            .map(|(f, _)| f.clone())
            .unwrap_or_else(|| Err("not resolved".into()))
    }
}

/// How often a main process' cgroup is resolved again (`/proc/<pid>/cgroup` and
/// `mountinfo`): a process moved to another cgroup is followed within this.
const CGROUP_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether every directory of `location` still exists (a removed cgroup's do not).
fn still_there(location: &cgroup::Location) -> bool {
    [&location.unified, &location.memory, &location.cpu]
        .into_iter()
        .flatten()
        .all(|d| d.is_dir())
}

/// A target with its name, member count and main pid, every reading still zero or
/// unknown: [`Sampler::sample_group`] fills them in.
fn empty_target(name: String, processes: usize, main_pid: Option<i32>) -> TargetSample {
    TargetSample {
        name,
        up: processes > 0,
        processes: processes as u64,
        main_pid,
        ..TargetSample::default()
    }
}

/// The CPUs a process here may run on: `Cpus_allowed_list` of Outrider's own
/// `status`, its affinity, which a CPU limit of its own does not narrow (the
/// standard library's count would take Outrider's quota for the host's), read
/// once. What an app without a CPU limit can use (a worker hint's cores; a JVM
/// counts them to pick its collector); 1 where unread.
pub fn visible_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"));
        list.map_or(1, |l| cpu_list_len(l.trim()).max(1))
    })
}

/// How many CPUs a list such as `0-3,8,10-11` names.
fn cpu_list_len(list: &str) -> usize {
    list.split(',')
        .filter_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b) = (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            );
            Some(b.checked_sub(a)? + 1)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sampler of everything under `proc_root`, and the identity its tests give
    /// the group's main process.
    fn one_group(proc_root: &std::path::Path) -> (Sampler, Identity) {
        let s = Sampler::new(
            proc_root.to_path_buf(),
            vec![GroupSpec::Everything],
            ResourceSpec::default(),
            1,
        );
        (
            s,
            Identity {
                pid: 10,
                start_ticks: 1,
            },
        )
    }

    /// A main process moved to another cgroup: the one kept for when the group
    /// is down is the new one, and the new cgroup's past kills are not the app's.
    #[test]
    fn a_move_to_another_cgroup_is_kept_and_its_past_kills_are_a_baseline() {
        let proc_root = tempfile::tempdir().unwrap();
        let cgroup = tempfile::tempdir().unwrap();
        let dir = |name: &str, kills: u64| {
            let d = cgroup.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(
                d.join("memory.oom_control"),
                format!("oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n"),
            )
            .unwrap();
            cgroup::Location {
                layout: cgroup::Layout::V1,
                unified: None,
                memory: Some(d),
                cpu: None,
            }
        };
        let (a, b) = (dir("a", 0), dir("b", 2));
        let (mut s, id) = one_group(proc_root.path());
        let members: PidSet<i32> = [10].into_iter().collect();
        let read = |s: &mut Sampler, at: &cgroup::Location| {
            s.cgroup_dirs.insert(id, (Ok(at.clone()), Instant::now()));
            let mut snap = empty_target("app".into(), 1, Some(10));
            s.read_cgroup(0, id, &members, &mut snap);
            snap.cgroup.unwrap().app_oom_kills()
        };
        assert_eq!(read(&mut s, &a), Some(0));
        assert_eq!(s.last_cgroup[0].as_ref().map(|(_, l)| l), Some(&a));
        assert_eq!(
            read(&mut s, &b),
            Some(0),
            "b's 2 kills were before the app came"
        );
        assert_eq!(s.last_cgroup[0].as_ref().map(|(_, l)| l), Some(&b));
    }

    /// A group that is down has its last cgroup read (the kill that ended it is
    /// there); once that cgroup is gone it is forgotten without a read error.
    #[test]
    fn a_down_group_reads_its_last_cgroup_until_it_is_gone() {
        let proc_root = tempfile::tempdir().unwrap();
        let cgroup = tempfile::tempdir().unwrap();
        let memory = cgroup.path().join("app");
        std::fs::create_dir(&memory).unwrap();
        std::fs::write(memory.join("memory.limit_in_bytes"), "67108864\n").unwrap();
        std::fs::write(
            memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        let (mut s, id) = one_group(proc_root.path());
        let location = cgroup::Location {
            layout: cgroup::Layout::V1,
            unified: None,
            memory: Some(memory.clone()),
            cpu: None,
        };
        s.last_cgroup[0] = Some((id, location));
        let mut snap = empty_target("app".into(), 0, None);
        s.read_last_cgroup(0, &mut snap);
        let reading = snap.cgroup.expect("read while down");
        assert_eq!(reading.oom_kills, Some(1));
        assert_eq!(reading.memory_limit_bytes, Some(64 << 20));

        std::fs::remove_dir_all(&memory).unwrap();
        let mut snap = empty_target("app".into(), 0, None);
        s.read_last_cgroup(0, &mut snap);
        assert!(snap.cgroup.is_none());
        assert!(s.last_cgroup[0].is_none(), "forgotten");
        assert!(s.errors.counts.is_empty(), "{:?}", s.errors.counts);
    }

    /// A group chosen by name is followed between listings: a member's new child
    /// joins without a listing; a matching process that is no member's descendant
    /// waits for the next listing; a member's exit lists /proc at once.
    #[test]
    fn a_group_chosen_by_name_is_followed_between_listings() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let name = format!("t17n{}", std::process::id() % 100_000);
        let sh = dir.path().join(&name);
        std::fs::copy("/bin/sh", &sh).unwrap();
        let start = |script: &str| {
            Command::new(&sh)
                .args(["-c", script])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let spec = GroupSpec::Configured(TargetSpec {
            name: Some("app".into()),
            selector: Selector::Match {
                comm: Some(name.clone()),
                exe: None,
                cmdline: None,
            },
            children: true,
        });
        let mut s = Sampler::new("/proc".into(), vec![spec], ResourceSpec::default(), 1);
        let mut a = start("read x; sleep 100 & wait");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let processes = |s: &mut Sampler| s.sample().targets[0].processes;
        assert_eq!(processes(&mut s), 1, "the first tick lists /proc");
        assert!(!s.by_pid);

        a.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut b = start("sleep 100 & wait");
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(processes(&mut s), 2, "the member's child, from `children`");
        assert!(s.by_pid, "without a listing");
        assert_eq!(
            processes(&mut s),
            2,
            "the same two: last tick's groups kept"
        );
        assert!(s.by_pid);

        s.listed_at = Some(Instant::now() - NAME_GROUPS_RELIST);
        assert_eq!(
            processes(&mut s),
            4,
            "the other instance and its child, listed"
        );
        assert!(!s.by_pid);

        let _ = Command::new("pkill")
            .args(["-P", &a.id().to_string()])
            .status();
        a.kill().unwrap();
        a.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(processes(&mut s), 2, "a member gone: listed at once");
        assert!(!s.by_pid);
        let _ = Command::new("pkill")
            .args(["-P", &b.id().to_string()])
            .status();
        b.kill().unwrap();
        b.wait().unwrap();
    }

    /// The app's cgroup is kept through Outrider's own root when they share their
    /// mount namespace and root (it stays reachable after the app is gone), and
    /// through the app's when they do not (a container).
    #[test]
    fn the_kept_cgroup_goes_through_our_own_root_when_the_app_shares_it() {
        let proc_root = tempfile::tempdir().unwrap();
        let p = proc_root.path();
        let link = |pid: i32, name: &str, to: &str| {
            let at = p.join(pid.to_string()).join(name);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, at).unwrap();
        };
        for (pid, mnt) in [(1, "mnt:[1]"), (10, "mnt:[1]"), (20, "mnt:[2]")] {
            link(pid, "ns/mnt", mnt);
            link(pid, "root", "/");
        }
        let s = Sampler::new(
            p.to_path_buf(),
            vec![GroupSpec::Everything],
            ResourceSpec::default(),
            1,
        );
        let at = |pid: i32| cgroup::Location {
            layout: cgroup::Layout::Hybrid,
            unified: Some(p.join(format!("{pid}/root/sys/fs/cgroup/unified/app"))),
            memory: Some(p.join(format!("{pid}/root/sys/fs/cgroup/memory/app"))),
            cpu: None,
        };
        assert_eq!(s.through_own_root(10, at(10)), at(1));
        assert_eq!(s.through_own_root(20, at(20)), at(20), "another namespace");
        assert_eq!(s.through_own_root(30, at(30)), at(30), "links not readable");
    }

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(cpu_list_len("0-3,8,10-11"), 7);
        assert_eq!(cpu_list_len("0"), 1);
        assert!(visible_cpus() >= 1);
    }
}
