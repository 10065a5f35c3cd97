//! The allocation Outrider judges the app against: CPU and memory requests and limits.
//!
//! Per field, first found wins: the config (`[resources]`, which the environment can
//! set), then the downward API directory (files `cpu_request`, `cpu_limit`,
//! `mem_request`, `mem_limit`, re-read every tick so in-place resizes are followed),
//! then, for limits only, the cgroup (`cpu.max`, `memory.max`, or v1's
//! `cpu.cfs_quota_us` and `memory.limit_in_bytes`), or a cgroup enclosing it when
//! that one's limit is lower (a pod-level limit, a systemd slice's).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cgroup::CgroupReading;
use super::process::ReadErrors;
use crate::units::parse_bytes;

/// The app's allocation as configured; unset fields fall back to the downward API
/// directory and then to the cgroup's limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSpec {
    pub cpu_request_cores: Option<f64>,
    pub cpu_limit_cores: Option<f64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub downward_api_dir: Option<PathBuf>,
    /// Cores per unit in the downward API's CPU files (`divisor: 1m` gives 0.001).
    pub downward_api_cpu_divisor: f64,
}

/// Where a figure came from, shown in the status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    DownwardApi,
    Cgroup,
    /// A cgroup enclosing the app's, whose limit is below the app's own.
    EnclosingCgroup,
}

impl Source {
    /// `cgroup` or `enclosing` from whether an enclosing cgroup sets the limit.
    fn of_cgroup(enclosing: bool) -> Source {
        if enclosing {
            Source::EnclosingCgroup
        } else {
            Source::Cgroup
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Allocation {
    pub cpu_request_cores: Option<(f64, Source)>,
    pub cpu_limit_cores: Option<(f64, Source)>,
    pub memory_request_bytes: Option<(u64, Source)>,
    pub memory_limit_bytes: Option<(u64, Source)>,
}

/// Config values, then downward API files for what config leaves unset.
pub fn configured(spec: &ResourceSpec, errors: &mut ReadErrors) -> Allocation {
    let mut a = Allocation {
        cpu_request_cores: spec.cpu_request_cores.map(|v| (v, Source::Config)),
        cpu_limit_cores: spec.cpu_limit_cores.map(|v| (v, Source::Config)),
        memory_request_bytes: spec.memory_request_bytes.map(|v| (v, Source::Config)),
        memory_limit_bytes: spec.memory_limit_bytes.map(|v| (v, Source::Config)),
    };
    if let Some(dir) = &spec.downward_api_dir {
        let divisor = spec.downward_api_cpu_divisor;
        let cpu = |name: &str, errors: &mut ReadErrors| {
            read_number(dir, name, errors).map(|v| (v * divisor, Source::DownwardApi))
        };
        if a.cpu_request_cores.is_none() {
            a.cpu_request_cores = cpu("cpu_request", errors);
        }
        if a.cpu_limit_cores.is_none() {
            a.cpu_limit_cores = cpu("cpu_limit", errors);
        }
        let mem = |name: &str, errors: &mut ReadErrors| {
            read_number(dir, name, errors).map(|v| (v.round() as u64, Source::DownwardApi))
        };
        if a.memory_request_bytes.is_none() {
            a.memory_request_bytes = mem("mem_request", errors);
        }
        if a.memory_limit_bytes.is_none() {
            a.memory_limit_bytes = mem("mem_limit", errors);
        }
    }
    a
}

impl Allocation {
    /// Fills unset limits from the cgroup: the limit that binds the app, its own
    /// cgroup's or an enclosing one's, whichever is lower.
    pub fn with_cgroup_fallback(mut self, cgroup: Option<&CgroupReading>) -> Allocation {
        if let Some(cg) = cgroup {
            if self.cpu_limit_cores.is_none() {
                self.cpu_limit_cores = cg
                    .binding_cpu_limit()
                    .map(|(v, e)| (v, Source::of_cgroup(e)));
            }
            if self.memory_limit_bytes.is_none() {
                self.memory_limit_bytes = cg
                    .binding_memory_limit()
                    .map(|(v, e)| (v, Source::of_cgroup(e)));
            }
        }
        self
    }
}

/// A downward API file: a plain number (the divisor applies) or a quantity.
/// A missing file means the field is not exposed: not an error.
fn read_number(dir: &Path, name: &str, errors: &mut ReadErrors) -> Option<f64> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let t = s.trim();
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                _ => match parse_bytes(t) {
                    Ok(v) => Some(v as f64),
                    Err(e) => {
                        errors.record("downward_api", &format!("{}: {e}", path.display()));
                        None
                    }
                },
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.record("downward_api", &format!("{}: {e}", path.display()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_wins_then_downward_api_then_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cpu_request"), "250\n").unwrap();
        std::fs::write(dir.path().join("cpu_limit"), "2000\n").unwrap();
        std::fs::write(dir.path().join("mem_request"), "134217728\n").unwrap();
        let spec = ResourceSpec {
            cpu_request_cores: Some(0.5),
            downward_api_dir: Some(dir.path().to_path_buf()),
            downward_api_cpu_divisor: 0.001,
            ..Default::default()
        };
        let mut errors = ReadErrors::default();
        let a = configured(&spec, &mut errors).with_cgroup_fallback(Some(&CgroupReading {
            memory_limit_bytes: Some(536870912),
            cpu_limit_cores: Some(4.0),
            ..Default::default()
        }));
        assert_eq!(a.cpu_request_cores, Some((0.5, Source::Config)));
        assert_eq!(a.cpu_limit_cores, Some((2.0, Source::DownwardApi)));
        assert_eq!(
            a.memory_request_bytes,
            Some((134217728, Source::DownwardApi))
        );
        assert_eq!(a.memory_limit_bytes, Some((536870912, Source::Cgroup)));
        assert!(errors.counts.is_empty());

        // A lower limit on an enclosing cgroup is the one that binds.
        let a = configured(&ResourceSpec::default(), &mut errors).with_cgroup_fallback(Some(
            &CgroupReading {
                memory_limit_bytes: Some(536870912),
                memory_enclosing_limit_bytes: Some(268435456),
                cpu_enclosing_limit_cores: Some(0.5),
                ..Default::default()
            },
        ));
        assert_eq!(
            a.memory_limit_bytes,
            Some((268435456, Source::EnclosingCgroup))
        );
        assert_eq!(a.cpu_limit_cores, Some((0.5, Source::EnclosingCgroup)));

        // An in-place resize is followed on the next read.
        std::fs::write(dir.path().join("cpu_limit"), "3000\n").unwrap();
        let a = configured(&spec, &mut errors);
        assert_eq!(a.cpu_limit_cores, Some((3.0, Source::DownwardApi)));

        std::fs::write(dir.path().join("mem_request"), "lots\n").unwrap();
        let a = configured(&spec, &mut errors);
        assert_eq!(a.memory_request_bytes, None);
        assert_eq!(errors.counts.get("downward_api"), Some(&1));
    }
}
