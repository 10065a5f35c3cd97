//! `[[targets]]`: which processes are watched, and the `target` label each group
//! carries.

use std::collections::HashSet;
use std::path::PathBuf;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};

use super::last_line;
use crate::sample::target::{Selector, TargetSpec};
use crate::units::{valid_label_value, Scalar};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub children: bool,
}

fn yes() -> bool {
    true
}

/// Environment variables arrive as strings; accept `"1234"` where a number is due.
fn lenient_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    match Option::<Scalar>::deserialize(d)? {
        None => Ok(None),
        Some(Scalar::Int(i)) => i32::try_from(i)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{i} is out of range for a pid"))),
        Some(Scalar::Str(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
        Some(Scalar::Float(x)) => Err(serde::de::Error::custom(format!(
            "{x} is not a whole number"
        ))),
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Str(String),
    }
    match B::deserialize(d)? {
        B::Bool(b) => Ok(b),
        B::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not true or false"
            ))),
        },
    }
}

/// Checks every `[[targets]]` entry; the result holds the ones whose selector is
/// usable (it is only used when there is no error at all).
pub(super) fn validate_targets(raw: &[RawTarget], errors: &mut Vec<String>) -> Vec<TargetSpec> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, t)| validate_target(i, t, &mut names, errors))
        .collect()
}

/// `targets[i]`: its name (unique, label-safe), and exactly one way of choosing it.
fn validate_target(
    i: usize,
    t: &RawTarget,
    names: &mut HashSet<String>,
    errors: &mut Vec<String>,
) -> Option<TargetSpec> {
    let key = |field: &str| format!("targets[{i}].{field}");
    if let Some(name) = &t.name {
        if !valid_label_value(name) {
            errors.push(format!(
                "{}: {name:?} must be 1-64 characters of letters, digits, '_', '-', '.'",
                key("name")
            ));
        } else if !names.insert(name.clone()) {
            errors.push(format!(
                "{}: {name:?} is used by another target",
                key("name")
            ));
        }
    }
    let selector = selector(i, t, errors);
    let named_by_selector = matches!(selector, Some(Selector::Pid(_) | Selector::PidFile(_)));
    if t.name.is_none() && !named_by_selector && t.comm.is_none() {
        errors.push(format!(
            "{}: is required unless the target is chosen by pid, pid_file or comm",
            key("name")
        ));
    }
    let selector = selector?;
    let name = t.name.clone().or_else(|| match &selector {
        Selector::Match { comm, .. } => comm.clone(),
        _ => None,
    });
    Some(TargetSpec {
        name,
        selector,
        children: t.children,
    })
}

/// One of pid, pid_file, or comm/exe/cmdline; the cmdline regex is checked whichever
/// is given.
fn selector(i: usize, t: &RawTarget, errors: &mut Vec<String>) -> Option<Selector> {
    let cmdline = t.cmdline.as_ref().and_then(|re| match Regex::new(re) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.push(format!(
                "targets[{i}].cmdline: bad regex: {}",
                last_line(&e.to_string())
            ));
            None
        }
    });
    let given = [
        t.pid.is_some(),
        t.pid_file.is_some(),
        t.comm.is_some() || t.exe.is_some() || t.cmdline.is_some(),
    ];
    match given {
        [true, false, false] => {
            let pid = t.pid.unwrap_or_default();
            if pid <= 0 {
                errors.push(format!("targets[{i}].pid: {pid} is not a process id"));
            }
            Some(Selector::Pid(pid))
        }
        [false, true, false] => Some(Selector::PidFile(PathBuf::from(
            t.pid_file.clone().unwrap_or_default(),
        ))),
        [false, false, true] => Some(Selector::Match {
            comm: t.comm.clone(),
            exe: t.exe.clone(),
            cmdline,
        }),
        [false, false, false] => {
            errors.push(format!(
                "targets[{i}]: needs one of pid, pid_file, or comm/exe/cmdline"
            ));
            None
        }
        _ => {
            errors.push(format!(
                "targets[{i}]: pid, pid_file and comm/exe/cmdline exclude one another"
            ));
            None
        }
    }
}
