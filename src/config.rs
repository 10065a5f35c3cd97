//! Configuration: the TOML file as written, overlaid with `OUTRIDER_<SECTION>__<KEY>`
//! environment variables and then CLI flags, validated into a [`Config`].
//!
//! Two types, as ripgrep does it: [`RawConfig`] is the file as deserialized (strings
//! for durations, regexes and quantities, so one bad value does not hide the next);
//! [`Config`] holds parsed durations, compiled regexes and resolved paths. Validation
//! collects every problem with its key path ([`ConfigErrors`]) so a user fixes them
//! all in one go; the CLI exits 64 on them before any port is bound.
//!
//! # Layout
//! - this file — [`RawConfig`], [`Config`], [`load`], and [`validate`], which checks
//!   the sections one after the other
//! - [`sources`] — the environment and the flags, merged into the table
//! - [`runtime`] — `[http]`, `[sampling]`, `[lifecycle]`
//! - [`targets`] — `[[targets]]`
//! - [`resources`] — `[resources]`
//! - [`logs`] — `[[logs]]` and `[log_options]` (classification rules, durations, buckets)
//! - [`analysis`] — `[analysis]` (windows and thresholds)
//! - [`capacity`] — `[capacity]` and `sampling.pss_interval`
//! - [`alerts`] — `[alerts]` and `[[receivers]]`
//! - [`errors`] — TOML and type errors located by key and line, values cut out (a
//!   config error never shows a secret)
//! - [`actions`] — `[actions]` (what to do before the kill)
//! - [`cost`] — `[cost]` (prices, currency, replicas)
//! - [`disposability`] — `[disposability]` (slow start-up and shutdown, kill after)
//!
//! The quantity parsers live in [`crate::units`]. Each section's validated type lives
//! with the module that uses it (`sample::target::TargetSpec`,
//! `sample::allocation::ResourceSpec`, `analysis::AnalysisConfig`,
//! `alerts::AlertsConfig`, …) and is re-exported here where the config names it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisConfig;
use crate::logs::LogSettings;

pub mod actions;
pub mod alerts;
mod analysis;
pub mod capacity;
pub mod cost;
pub mod disposability;
mod errors;
mod logs;
mod resources;
mod runtime;
mod sources;
mod targets;

pub use crate::sample::allocation::ResourceSpec;
pub use crate::sample::target::{Selector, TargetSpec};
pub use analysis::RawAnalysis;
pub use logs::{LogSource, LogSpec, RawBuckets, RawLog, RawLogOptions, RawLogRule};
pub use resources::RawResources;
pub use runtime::{RawHttp, RawLifecycle, RawSampling, DEFAULT_LISTEN};
pub use sources::env_vars;
use sources::{apply_env, apply_overrides};
pub use targets::RawTarget;

/// Every problem found in a configuration, one line each, led by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The file as deserialized, before validation. Defaults are named functions so
/// `check-config` prints them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawConfig {
    pub http: RawHttp,
    pub sampling: RawSampling,
    pub lifecycle: RawLifecycle,
    pub targets: Vec<RawTarget>,
    pub logs: Vec<RawLog>,
    pub resources: RawResources,
    pub analysis: RawAnalysis,
    pub log_options: RawLogOptions,
    pub alerts: alerts::RawAlerts,
    pub receivers: Vec<alerts::RawReceiver>,
    pub capacity: capacity::RawCapacity,
    pub actions: actions::RawActions,
    pub cost: cost::RawCost,
    pub disposability: disposability::RawDisposability,
}

/// The few settings a CLI flag may override; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub interval: Option<String>,
    pub pid: Option<i32>,
    pub log: Option<String>,
    pub record: Option<String>,
}

/// The validated configuration every other module works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Time between two samples; at least 100 ms.
    pub interval: Duration,
    pub shutdown_grace: Duration,
    /// `/proc` normally; a fixture tree in tests.
    pub proc_root: PathBuf,
    pub targets: Vec<TargetSpec>,
    pub logs: Vec<LogSpec>,
    pub resources: ResourceSpec,
    pub analysis: AnalysisConfig,
    pub log_settings: LogSettings,
    /// Trace file every sample is appended to.
    pub record: Option<PathBuf>,
    /// The trace file is rotated to FILE.1 past this size.
    pub record_max_bytes: u64,
    /// Most HTTP client connections open at once (`http.max_connections`).
    pub max_connections: usize,
    /// Least time between two connection scans; `None`: scans are off.
    pub connections_interval: Option<Duration>,
    pub alerts: crate::alerts::AlertsConfig,
    pub receivers: Vec<crate::alerts::notify::Receiver>,
    /// PSS read interval for pre-fork servers; `None`: never read.
    pub pss_interval: Option<Duration>,
    pub capacity: crate::analysis::capacity::CapacityConfig,
    /// What to do before the kill; off unless a signal or a command is set.
    pub actions: crate::actions::ActionsConfig,
    /// `[disposability]`: slow start-up and shutdown, the kill after SIGTERM.
    pub disposability: disposability::DisposabilityConfig,
}

/// Reads the file (if any), applies the environment and the flags, and validates.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<(RawConfig, Config), ConfigErrors> {
    let text = match file {
        None => None,
        Some(path) => Some(read_config_file(path).map_err(|e| {
            ConfigErrors(vec![format!(
                "config file {}: cannot read it: {e}",
                path.display()
            )])
        })?),
    };
    load_text(file.zip(text.as_deref()), env, overrides)
}

/// The most a config file may hold: ours is a few KiB; a path such as /dev/zero
/// must end in an error, not fill memory. (A pipe, `--config <(envsubst < f)`,
/// is read as usual.)
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

fn read_config_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::other("over 4 MiB, too large for a config file"));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// [`load`] with the file's text given (path and text): the fuzz target's entry,
/// no file read.
pub fn load_text(
    located: Option<(&Path, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<(RawConfig, Config), ConfigErrors> {
    let mut table = match located {
        None => toml::Table::new(),
        Some((path, text)) => text
            .parse::<toml::Table>()
            .map_err(|e| ConfigErrors(vec![errors::syntax(path, text, &e)]))?,
    };
    let mut errors = Vec::new();
    let applied = apply_env(&mut table, env, &mut errors);
    apply_overrides(&mut table, overrides);
    let (raw, shapes, unknown, removed) = sources::parse_every_key(table, located, &applied);
    errors.extend(shapes);
    errors.extend(unknown);
    let Some(raw) = raw else {
        return Err(ConfigErrors(errors));
    };
    match validate(&raw) {
        Ok(config) if errors.is_empty() => Ok((raw, config)),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(ConfigErrors(more)) => {
            errors.extend(
                more.into_iter()
                    .filter(|p| !sources::follows_from_removal(p, &removed)),
            );
            Err(ConfigErrors(errors))
        }
    }
}

/// Checks every field and builds the [`Config`], or lists every problem: each
/// section in turn, each error led by its key path, in this order.
pub fn validate(raw: &RawConfig) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let e = &mut errors;
    let listen = runtime::validate_http(&raw.http, e);
    let intervals = runtime::validate_intervals(&raw.sampling, e);
    let grace = runtime::validate_lifecycle(&raw.lifecycle, e);
    runtime::validate_proc_root(&raw.sampling, e);
    let record_max_bytes = runtime::validate_record_max_size(&raw.sampling, e);
    let targets = targets::validate_targets(&raw.targets, e);
    let state_dir = raw.log_options.state_dir.as_deref();
    let mut logs = logs::validate_logs(&raw.logs, state_dir, e);
    let resources = resources::validate_resources(&raw.resources, e);
    let mut analysis = analysis::validate_analysis(&raw.analysis, e);
    analysis.cost = cost::validate_cost(&raw.cost, e);
    let log_settings = logs::validate_log_options(&raw.log_options, e);
    logs::validate_log_duration_regexes(&mut logs, &raw.logs, &log_settings, e);
    let alerts = alerts::validate(&raw.alerts, e);
    let receivers = alerts::validate_receivers(&raw.receivers, e);
    let pss_interval = capacity::validate_pss_interval(&raw.sampling.pss_interval, e);
    let capacity = capacity::validate_capacity(&raw.capacity, e);
    let actions = actions::validate_actions(&raw.actions, e);
    let disposability = disposability::validate_disposability(&raw.disposability, e);

    match (listen, intervals.interval, grace) {
        (Some(listen), Some(interval), Some(shutdown_grace)) if errors.is_empty() => Ok(Config {
            listen,
            interval,
            shutdown_grace,
            proc_root: PathBuf::from(&raw.sampling.proc_root),
            targets,
            logs,
            resources,
            analysis,
            log_settings,
            record: (!raw.sampling.record.is_empty()).then(|| PathBuf::from(&raw.sampling.record)),
            record_max_bytes,
            max_connections: raw.http.max_connections,
            connections_interval: intervals.connections_interval.flatten(),
            alerts,
            receivers,
            pss_interval,
            capacity,
            actions,
            disposability,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// The last non-blank line of an error (the regex crate's point at the fault).
fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests;
