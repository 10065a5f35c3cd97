//! This tick's processes and their groups: /proc listed in full, or between
//! listings only the processes that can join a group read afresh (see
//! [`Sampler::list_between`]); and, between listings while those are the same
//! processes as last tick, last tick's groups kept ([`Grouped::refresh`]).

use super::pid_hash::{PidMap, PidSet};
use super::process::{Identity, ProcEntry};
use super::target::{GroupSpec, Selector, TargetSpec};
use super::{Sampler, LISTED_LINGER, NAME_GROUPS_RELIST, OUTSIDER_RECHECK, PID_GROUPS_RELIST};
use std::time::Instant;

/// One tick's processes, which of them are in which group, and every live one.
#[derive(Debug, Default)]
pub(super) struct Grouped {
    /// Every visible process (as last read for those not read this tick); sorted
    /// by pid between listings.
    pub list: Vec<ProcEntry>,
    /// For each group, the indexes into `list` of its members.
    pub assignment: Vec<Vec<usize>>,
    pub alive: PidSet<Identity>,
    /// Indexes into `list` of the processes read afresh between listings; `None`
    /// after a full listing.
    fresh: Option<Vec<usize>>,
}

impl Grouped {
    /// Takes this tick's processes read afresh (sorted by pid) in place of their
    /// entries, when they are the very processes read afresh last tick, each with
    /// the same parent, name and state: the groups are then what they were (a
    /// group depends on nothing else that can change between listings: the
    /// outsiders are as last read, and a process' exe and command line are read
    /// once). Otherwise they are handed back, and nothing is changed.
    fn refresh(&mut self, fresh: Vec<ProcEntry>) -> Result<(), Vec<ProcEntry>> {
        let Some(kept) = &self.fresh else {
            return Err(fresh);
        };
        if kept.len() != fresh.len() {
            return Err(fresh);
        }
        for (e, &i) in fresh.iter().zip(kept) {
            let k = &self.list[i];
            let same = k.pid == e.pid
                && k.start_ticks == e.start_ticks
                && k.ppid == e.ppid
                && k.zombie == e.zombie
                && k.kernel_thread == e.kernel_thread
                && k.comm == e.comm;
            if !same {
                return Err(fresh);
            }
        }
        for (e, &i) in fresh.into_iter().zip(kept) {
            self.list[i] = e;
        }
        Ok(())
    }
}

/// How this tick's processes were found.
enum Listing {
    /// /proc listed in full.
    Full(Vec<ProcEntry>),
    /// Between listings: the processes read afresh, sorted by pid.
    Between(Vec<ProcEntry>),
}

impl Sampler {
    /// This tick's processes and their groups. Between listings, when the
    /// processes read afresh are last tick's, last tick's list and groups are kept
    /// with their new readings: grouping every visible process again, and the sets
    /// of live processes and outsiders made again, were a third of a tick's own
    /// work with nothing to change (docs/performance.md).
    pub(super) fn group_processes(&mut self) -> Grouped {
        let last = self.grouped.take();
        let fresh = match self.list_processes() {
            Listing::Full(list) => return self.regroup(list, None),
            Listing::Between(fresh) => fresh,
        };
        let fresh = match last {
            Some(mut grouped) => match grouped.refresh(fresh) {
                Ok(()) => return grouped,
                Err(fresh) => fresh,
            },
            None => fresh,
        };
        let pids: Vec<i32> = fresh.iter().map(|e| e.pid).collect();
        let list = self.with_outsiders(fresh);
        self.regroup(list, Some(pids))
    }

    /// Groups `list` afresh; `fresh`: the pids read afresh between listings (the
    /// list is then sorted by pid, as [`Sampler::with_outsiders`] makes it).
    fn regroup(&mut self, list: Vec<ProcEntry>, fresh: Option<Vec<i32>>) -> Grouped {
        let specs: Vec<GroupSpec> = self.groups.iter().map(|g| g.spec.clone()).collect();
        let assignment = self.grouper.assign(&specs, &list, &mut self.errors);
        let alive: PidSet<Identity> = list.iter().map(|e| e.identity()).collect();
        self.grouper.forget_gone(&alive);
        self.remember_outsiders(&list, &assignment);
        self.members = assignment
            .iter()
            .flatten()
            .map(|&i| list[i].identity())
            .collect();
        let fresh = fresh.map(|pids| {
            pids.iter()
                .filter_map(|p| list.binary_search_by_key(p, |e| e.pid).ok())
                .collect()
        });
        Grouped {
            list,
            assignment,
            alive,
            fresh,
        }
    }

    /// Every visible process; an outsider's `stat` is reused while it is fresh. A
    /// failed listing is counted and reads as no processes at all.
    fn list_processes(&mut self) -> Listing {
        self.by_pid = false;
        if let Some(fresh) = self.list_between() {
            self.by_pid = true;
            return Listing::Between(fresh);
        }
        self.listed_at = Some(Instant::now());
        self.reader.forget_threads();
        let outsiders = &self.outsiders;
        let reuse = |pid: i32| {
            outsiders
                .get(&pid)
                .filter(|(_, at)| at.elapsed() < OUTSIDER_RECHECK)
                .map(|(e, _)| e.clone())
        };
        Listing::Full(
            match self.reader.list(&mut self.errors, reuse, LISTED_LINGER) {
                Ok(l) => l,
                Err(e) => {
                    self.errors
                        .record("proc", &format!("{}: {e}", self.proc_root.display()));
                    Vec::new()
                }
            },
        )
    }

    /// Between full listings, when every group is chosen by pid or by name: the
    /// selected pids, last tick's members and their descendants read afresh (through
    /// `children` files), every other process as last read. Listing /proc was most
    /// of a tick's cost. `None`: list in full.
    ///
    /// Only a pid's own descendants can join its group, so pid-chosen groups come
    /// out as a full listing would make them; /proc is listed once per
    /// [`PID_GROUPS_RELIST`] as a safety net. A name-chosen group (comm, exe, command
    /// line) is followed only while it is whole: /proc is listed in full every
    /// [`NAME_GROUPS_RELIST`], and at once when such a group had no member last tick
    /// or a member of last tick is gone (a restart may have started its successor
    /// anywhere). So a new matching process that is not a member's descendant is
    /// found up to [`NAME_GROUPS_RELIST`] late while its group is up, at once while
    /// it is down. An outsider that exits stays listed until the next listing.
    fn list_between(&mut self) -> Option<Vec<ProcEntry>> {
        let mut roots: Vec<i32> = self.members.iter().map(|id| id.pid).collect();
        let (mut descend, mut by_name) = (false, false);
        for g in &self.groups {
            let GroupSpec::Configured(TargetSpec {
                selector, children, ..
            }) = &g.spec
            else {
                return None;
            };
            match selector {
                Selector::Pid(pid) => {
                    roots.push(*pid);
                    descend |= *children;
                }
                // A member's child may match by name whatever `children` says.
                Selector::Match { .. } => (descend, by_name) = (true, true),
                Selector::PidFile(_) => return None,
            }
        }
        let relist = if by_name {
            NAME_GROUPS_RELIST
        } else {
            PID_GROUPS_RELIST
        };
        if self.listed_at?.elapsed() >= relist || (by_name && self.name_group_down) {
            return None;
        }
        let mut fresh = self.reader.descendants(&roots, descend, &mut self.errors)?;
        fresh.sort_unstable_by_key(|e| e.pid);
        let gone = |id: &Identity| {
            let at = fresh.binary_search_by_key(&id.pid, |e| e.pid);
            at.map_or(true, |i| {
                (fresh[i].start_ticks, fresh[i].zombie) != (id.start_ticks, false)
            })
        };
        if by_name && self.members.iter().any(gone) {
            return None;
        }
        Some(fresh)
    }

    /// The processes read afresh between listings (sorted by pid) with every other
    /// process as last read: the whole list, sorted by pid.
    fn with_outsiders(&self, fresh: Vec<ProcEntry>) -> Vec<ProcEntry> {
        let is_fresh = |pid: &i32| fresh.binary_search_by_key(pid, |e| e.pid).is_ok();
        let kept: Vec<ProcEntry> = self
            .outsiders
            .iter()
            .filter(|(pid, _)| !is_fresh(pid))
            .map(|(_, (e, _))| e.clone())
            .collect();
        let mut list = fresh;
        list.extend(kept);
        list.sort_unstable_by_key(|e| e.pid);
        list
    }

    /// Notes which listed processes are in no group, keeping the time their `stat`
    /// was read for those already known.
    fn remember_outsiders(&mut self, list: &[ProcEntry], assignment: &[Vec<usize>]) {
        let mut member = vec![false; list.len()];
        for &i in assignment.iter().flatten() {
            member[i] = true;
        }
        let now = Instant::now();
        let mut next = PidMap::with_capacity_and_hasher(list.len(), Default::default());
        for (i, e) in list.iter().enumerate() {
            if member[i] {
                continue;
            }
            // Kept only while the entry was reused this tick (fresh, or any age
            // when /proc was not listed); re-read entries start a new window.
            let at = match self.outsiders.get(&e.pid) {
                Some((old, at))
                    if old.start_ticks == e.start_ticks
                        && (self.by_pid || at.elapsed() < OUTSIDER_RECHECK) =>
                {
                    *at
                }
                _ => now,
            };
            next.insert(e.pid, (e.clone(), at));
        }
        self.outsiders = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32, ppid: i32, comm: &str, rss_pages: u64) -> ProcEntry {
        ProcEntry {
            pid,
            ppid,
            start_ticks: 1000 + pid as u64,
            comm: comm.into(),
            kernel_thread: false,
            zombie: false,
            user_ticks: 0,
            system_ticks: 0,
            rss_pages,
            vsize_bytes: 0,
            threads: 1,
        }
    }

    /// Last tick: an outsider (pid 1), a member (10) and its child (11), the two
    /// read afresh between listings.
    fn last_tick() -> Grouped {
        Grouped {
            list: vec![
                entry(1, 0, "init", 1),
                entry(10, 1, "app", 1),
                entry(11, 10, "app", 1),
            ],
            assignment: vec![vec![1, 2]],
            alive: PidSet::default(),
            fresh: Some(vec![1, 2]),
        }
    }

    #[test]
    fn the_same_processes_read_afresh_keep_last_ticks_groups_with_their_new_readings() {
        let mut g = last_tick();
        let fresh = vec![entry(10, 1, "app", 7), entry(11, 10, "app", 8)];
        assert!(g.refresh(fresh).is_ok());
        let rss: Vec<u64> = g.list.iter().map(|e| e.rss_pages).collect();
        assert_eq!(
            rss,
            [1, 7, 8],
            "new readings in place, the outsider as it was"
        );
        assert_eq!(g.assignment, [vec![1, 2]]);
    }

    #[test]
    fn any_change_that_may_move_a_process_between_groups_groups_them_again() {
        let renamed = entry(11, 10, "worker", 1);
        let restarted = {
            let mut e = entry(11, 10, "app", 1);
            e.start_ticks = 5000;
            e
        };
        let exited = {
            let mut e = entry(11, 10, "app", 1);
            e.zombie = true;
            e
        };
        let cases = [
            (
                "a new child",
                vec![
                    entry(10, 1, "app", 1),
                    entry(11, 10, "app", 1),
                    entry(12, 10, "app", 1),
                ],
            ),
            ("a child gone", vec![entry(10, 1, "app", 1)]),
            (
                "another child in its place",
                vec![entry(10, 1, "app", 1), entry(12, 10, "app", 1)],
            ),
            ("a pid reused", vec![entry(10, 1, "app", 1), restarted]),
            (
                "reparented",
                vec![entry(10, 1, "app", 1), entry(11, 1, "app", 1)],
            ),
            ("renamed", vec![entry(10, 1, "app", 1), renamed]),
            ("exited, not reaped", vec![entry(10, 1, "app", 1), exited]),
        ];
        for (case, fresh) in cases {
            let mut g = last_tick();
            let back = g.refresh(fresh.clone()).expect_err(case);
            assert_eq!(back.len(), fresh.len(), "{case}: handed back whole");
            assert!(
                g.list.iter().all(|e| e.rss_pages == 1),
                "{case}: nothing changed"
            );
        }
        let mut listed = Grouped {
            fresh: None,
            ..last_tick()
        };
        let same = vec![entry(10, 1, "app", 1), entry(11, 10, "app", 1)];
        assert!(listed.refresh(same).is_err(), "after a full listing");
    }
}
