//! Where the app's cgroup is, in each hierarchy that matters.
//!
//! `/proc/<pid>/cgroup` gives the app's path in every hierarchy: one line per v1
//! hierarchy (`4:memory:/kubepods/…`, `1:cpu,cpuacct:/…`) and `0::/…` for v2. The
//! app's own mount table (`/proc/<pid>/mountinfo`) says where each hierarchy is
//! mounted (the `cgroup2` filesystem, or a `cgroup` one whose super options name the
//! controller) and which part of it (the mount's root). Both are read as the app
//! sees them and the directories are reached through `/proc/<pid>/root`, so a
//! sidecar sees into the app's container and wrap mode sees its own cgroup.
//!
//! The directory is the mount point joined with the path less the mount's root;
//! inside a container (its own cgroup namespace, or a bind mount of its cgroup)
//! that is the mount point itself, which is tried last.
//!
//! Not a container: v2's root cgroup has neither `cpu.max` nor `memory.max`; a v1
//! hierarchy's root is the only directory with `cgroup.sane_behavior`; in the
//! unified mount of a hybrid host, the root is the only cgroup without
//! `cgroup.events`. A root is skipped, and an app in the root of every hierarchy is
//! reported as unreachable.

use std::path::{Path, PathBuf};

use super::{Layout, Location};

/// A cgroup filesystem in a mount table.
#[derive(Debug, Clone, PartialEq)]
struct Mount<'a> {
    /// The part of the hierarchy mounted (`/` for all of it).
    root: &'a str,
    point: &'a str,
    /// `cgroup2`; else a v1 `cgroup` mount of the controllers in `options`.
    unified: bool,
    /// The super options of a v1 mount: `rw,cpu,cpuacct`.
    options: &'a str,
}

/// The hierarchy of a controller: v1 `memory` or `cpu`, or the unified one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hierarchy {
    V1(&'static str),
    Unified,
}

/// What the search for the app's cgroup in one hierarchy found.
#[derive(Debug, PartialEq)]
enum Found {
    /// The hierarchy is not mounted, or the app has no path in it.
    Absent,
    /// Only a root cgroup (or nothing visible): its path in the hierarchy.
    Root(String),
    Dir(PathBuf),
}

impl Found {
    fn dir(self) -> Option<PathBuf> {
        match self {
            Found::Dir(d) => Some(d),
            _ => None,
        }
    }
}

/// Finds the cgroup of `pid` under `proc_root`, or says why there is none.
pub fn resolve(proc_root: &Path, pid: i32) -> Result<Location, String> {
    let pdir = proc_root.join(pid.to_string());
    let read = |name: &str| {
        std::fs::read_to_string(pdir.join(name))
            .map_err(|e| format!("cannot read {}: {e}", pdir.join(name).display()))
    };
    let mountinfo = read("mountinfo")?;
    let cgroup = read("cgroup")?;
    locate(&pdir.join("root"), &mountinfo, &cgroup)
}

/// The app's cgroup from its `mountinfo` and `cgroup` texts, with directories
/// under `root` (the app's root directory).
pub fn locate(root: &Path, mountinfo: &str, cgroup: &str) -> Result<Location, String> {
    let mounts = cgroup_mounts(mountinfo);
    let find = |h, accept: fn(&Path) -> bool| find(root, &mounts, cgroup, h, accept);
    let memory = find(Hierarchy::V1("memory"), |d| {
        has(d, "memory.limit_in_bytes") && !has(d, "cgroup.sane_behavior")
    });
    let cpu = find(Hierarchy::V1("cpu"), |d| {
        has(d, "cpu.cfs_quota_us") && !has(d, "cgroup.sane_behavior")
    });
    let has_unified = mounts.iter().any(|m| m.unified);
    if memory == Found::Absent && cpu == Found::Absent {
        if !has_unified {
            return Err("no cgroup mount: neither cgroup2 nor a v1 memory or cpu hierarchy".into());
        }
        return match find(Hierarchy::Unified, |d| has(d, "cpu.max") || has(d, "memory.max")) {
            Found::Dir(dir) => Ok(Location {
                layout: Layout::V2,
                unified: Some(dir),
                memory: None,
                cpu: None,
            }),
            Found::Absent => Err("no cgroup v2 entry (0::) in /proc/<pid>/cgroup".into()),
            Found::Root(rel) => Err(format!(
                "cgroup {rel} is the root cgroup or not visible from here: no container limits to read"
            )),
        };
    }
    let (memory, cpu) = (memory.dir(), cpu.dir());
    if memory.is_none() && cpu.is_none() {
        return Err("in the root of the v1 memory and cpu hierarchies, or not visible from here: no container limits to read".into());
    }
    Ok(Location {
        layout: if has_unified {
            Layout::Hybrid
        } else {
            Layout::V1
        },
        // No controller is enabled there: `cgroup.events` tells a cgroup from the root.
        unified: has_unified
            .then(|| find(Hierarchy::Unified, |d| has(d, "cgroup.events")).dir())
            .flatten(),
        memory,
        cpu,
    })
}

/// The app's cgroup in hierarchy `h`: the first candidate directory that `accept`
/// holds to be a container's (not a root; see the module doc).
fn find(
    root: &Path,
    mounts: &[Mount],
    cgroup: &str,
    h: Hierarchy,
    accept: fn(&Path) -> bool,
) -> Found {
    let mount = mounts.iter().find(|m| match h {
        Hierarchy::Unified => m.unified,
        Hierarchy::V1(c) => !m.unified && m.options.split(',').any(|o| o == c),
    });
    let (Some(mount), Some(path)) = (mount, path_in(cgroup, h)) else {
        return Found::Absent;
    };
    let base = root.join(mount.point.trim_start_matches('/'));
    let rel = match path.strip_prefix(mount.root) {
        Some(rest) if mount.root != "/" && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    };
    let mut candidates = Vec::new();
    if !rel.split('/').any(|s| s == "..") && !rel.trim_matches('/').is_empty() {
        candidates.push(base.join(rel.trim_start_matches('/')));
    }
    candidates.push(base);
    candidates
        .into_iter()
        .find(|d| accept(d))
        .map_or_else(|| Found::Root(path.to_string()), Found::Dir)
}

fn has(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

/// The cgroup mounts of a mountinfo text, in its order.
fn cgroup_mounts(mountinfo: &str) -> Vec<Mount<'_>> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split_whitespace();
            let unified = match right.next()? {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let options = right.nth(1).unwrap_or("");
            let mut left = left.split_whitespace().skip(3);
            Some(Mount {
                root: left.next()?,
                point: left.next()?,
                unified,
                options,
            })
        })
        .collect()
}

/// The mount point of the first cgroup2 filesystem in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<String> {
    cgroup_mounts(mountinfo)
        .into_iter()
        .find(|m| m.unified)
        .map(|m| m.point.to_string())
}

/// The app's path in hierarchy `h` from a `/proc/<pid>/cgroup` text.
fn path_in(cgroup: &str, h: Hierarchy) -> Option<&str> {
    cgroup.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (id, controllers, path) = (it.next()?, it.next()?, it.next()?);
        let hit = match h {
            Hierarchy::Unified => id == "0" && controllers.is_empty(),
            Hierarchy::V1(c) => controllers.split(',').any(|x| x == c),
        };
        hit.then_some(path)
    })
}

/// The path of the `0::` line of a `/proc/<pid>/cgroup` text.
pub fn unified_path(cgroup: &str) -> Option<&str> {
    path_in(cgroup, Hierarchy::Unified)
}
