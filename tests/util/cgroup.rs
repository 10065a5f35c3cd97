//! Real v1 cgroups for tests: made under /sys/fs/cgroup/<hierarchy>/, removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the v1 hierarchies are mounted.
pub const V1: &str = "/sys/fs/cgroup";

/// Cgroups made by one test, removed on drop (children before parents): what is
/// still inside (the test's own app, when it failed early) is SIGKILLed first, as a
/// cgroup with members cannot be removed.
#[derive(Default)]
pub struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    /// `/sys/fs/cgroup/<hierarchy>/outrider-test-<pid>-<name>`, with `settings`
    /// (file, value) written in order.
    pub fn make(&mut self, hierarchy: &str, name: &str, settings: &[(&str, &str)]) -> PathBuf {
        let dir = Path::new(V1)
            .join(hierarchy)
            .join(format!("outrider-test-{}-{name}", std::process::id()));
        self.make_at(dir, settings)
    }

    /// `parent/<name>`: a cgroup inside one made here (removed before it).
    pub fn make_in(&mut self, parent: &Path, name: &str, settings: &[(&str, &str)]) -> PathBuf {
        self.make_at(parent.join(name), settings)
    }

    fn make_at(&mut self, dir: PathBuf, settings: &[(&str, &str)]) -> PathBuf {
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.dirs.push(dir.clone());
        for (file, value) in settings {
            std::fs::write(dir.join(file), value)
                .unwrap_or_else(|e| panic!("{}/{file} <- {value}: {e}", dir.display()));
        }
        dir
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                for pid in pids_in(dir) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    // Removed by the test itself.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(e) => {
                        eprintln!("could not remove {}: {e}", dir.display());
                        break;
                    }
                }
            }
        }
    }
}

pub fn pids_in(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether a v1 memory cgroup can be made here: root, and the hierarchy mounted.
pub fn v1_memory_writable() -> bool {
    super::is_root() && Path::new(V1).join("memory/memory.limit_in_bytes").exists()
}

/// `sh -c` that moves itself into each of `cgroups` and then execs `program`.
pub fn in_cgroups(cgroups: &[&Path], program: &[&str]) -> Command {
    let mut script = String::new();
    for dir in cgroups {
        script.push_str(&format!("echo $$ > {}/cgroup.procs && ", dir.display()));
    }
    script.push_str("exec \"$@\"");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").args(program);
    cmd
}

/// Polls `memory.oom_control` in the v1 memory cgroup `dir` every 5 ms until its
/// `oom_kill` count reaches `n`; returns when it was seen there (within 5 ms of the
/// kill), or panics after `timeout`.
pub fn wait_oom_kills(dir: &Path, n: u64, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(dir.join("memory.oom_control")).unwrap_or_default();
        let kills = text
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if kills >= n {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{}: oom_kill {kills}, not {n} within {timeout:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
