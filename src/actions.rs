//! Acting before the kill: when a target's memory will reach its limit soon at the
//! current growth, or already fills a share of it, send the app's main process a
//! signal and/or run a command (a heap dump, a profile, a graceful drain), once per
//! episode and not again within a cooldown. Off unless `[actions]` names a signal or
//! a command.
//!
//! An episode starts on the tick the condition first holds and ends on the tick it
//! no longer does (the target down, or back under the level and far from the
//! limit). The command is spawned, never awaited on the tick: a task waits for it,
//! kills it after its timeout, and counts the result. What was done is kept for the
//! alerts' annotations ([`Done`]) while the episode lasts and for a cooldown after.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::Serialize;

use crate::analysis::TargetStatus;

/// `[actions]` as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsConfig {
    /// Sent to the target's main process; `None`: no signal.
    pub signal: Option<Signal>,
    /// Program and arguments, run as written (no shell unless it names one); empty:
    /// no command.
    pub command: Vec<String>,
    /// Act when the memory leak's time to the limit is below this.
    pub time_to_limit_seconds: f64,
    /// Act when memory in use reaches this share of the limit (above 0, at most 1).
    pub level: f64,
    /// The command is killed after this.
    pub timeout: Duration,
    /// Least time between two actions on one target.
    pub cooldown_seconds: f64,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            signal: None,
            command: Vec::new(),
            time_to_limit_seconds: 600.0,
            level: 0.9,
            timeout: Duration::from_secs(30),
            cooldown_seconds: 600.0,
        }
    }
}

impl ActionsConfig {
    /// Whether there is anything to do.
    pub fn enabled(&self) -> bool {
        self.signal.is_some() || !self.command.is_empty()
    }
}

/// Why an episode started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Memory in use reached `level` of the limit.
    Level,
    /// The limit is less than `time_to_limit` away at the current growth.
    TimeToLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Level => "level",
            Reason::TimeToLimit => "time_to_limit",
        }
    }
}

/// A live target's memory against its limit, as the trigger reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub pid: i32,
    /// The larger of the working set and RSS (as `MemoryNearLimit` reads it).
    pub memory_bytes: f64,
    /// The configured limit, else the cgroup's.
    pub limit_bytes: f64,
    /// The memory leak verdict's time to the limit at the current growth, while a
    /// leak is suspected.
    pub time_to_limit_seconds: Option<f64>,
}

impl Pressure {
    /// `None` while the target is down, without a main process or without a limit.
    pub fn of(t: &TargetStatus) -> Option<Pressure> {
        if !t.up {
            return None;
        }
        // A shared cgroup's working set is not the app's (see `other_processes`).
        let ws = t.cgroup.as_ref().and_then(|c| c.own_working_set_bytes());
        Some(Pressure {
            pid: t.main_pid?,
            memory_bytes: ws.unwrap_or(0).max(t.resident_once_bytes()) as f64,
            limit_bytes: t.allocation.memory_limit_bytes?.0 as f64,
            // Only a suspected leak's: a heap warming up grows fast toward its
            // steady size and must not get a heap dump for it.
            time_to_limit_seconds: t
                .verdicts
                .as_ref()
                .filter(|v| v.memory_leak.suspected)
                .and_then(|v| v.memory_leak.time_to_limit_seconds),
        })
    }

    /// Why to act, if at all: the level first, then the time to the limit.
    pub fn reason(&self, cfg: &ActionsConfig) -> Option<Reason> {
        if self.limit_bytes > 0.0 && self.memory_bytes / self.limit_bytes >= cfg.level {
            Some(Reason::Level)
        } else if self
            .time_to_limit_seconds
            .is_some_and(|s| s < cfg.time_to_limit_seconds)
        {
            Some(Reason::TimeToLimit)
        } else {
            None
        }
    }
}

/// One target's episode and cooldown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trigger {
    /// The condition held on the last tick.
    open: bool,
    /// The actions ran in the open episode.
    acted: bool,
    /// When they last ran.
    last_action: Option<f64>,
    /// When the last episode ended.
    closed_at: Option<f64>,
}

impl Trigger {
    /// Folds in whether the condition holds at `now`; true when the actions are due:
    /// the episode has not acted yet and the last action is `cooldown` seconds
    /// old (an episode that starts within the cooldown acts when it has passed).
    pub fn step(&mut self, holds: bool, now: f64, cooldown: f64) -> bool {
        if !holds {
            if self.open {
                self.closed_at = Some(now);
            }
            self.open = false;
            self.acted = false;
            return false;
        }
        self.open = true;
        let cooled = self.last_action.is_none_or(|t| now - t >= cooldown);
        if self.acted || !cooled {
            return false;
        }
        self.acted = true;
        self.last_action = Some(now);
        true
    }

    /// Whether what the last action did is still news at `now`: its episode is
    /// open, or ended less than `cooldown` ago.
    fn recent(&self, now: f64, cooldown: f64) -> bool {
        self.open || self.closed_at.is_some_and(|c| now - c < cooldown)
    }
}

/// The two things Outrider may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Signal,
    Command,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Signal => "signal",
            Action::Command => "command",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The signal was delivered; the command exited 0.
    Ok,
    /// The signal could not be sent; the command could not start or exited non-zero.
    Failed,
    /// The command ran past its timeout and was killed.
    Timeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
        }
    }
}

/// One row of `outrider_actions_total`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionCount {
    pub target: String,
    pub action: Action,
    pub result: Outcome,
    pub count: u64,
}

/// What Outrider did for a target, for the alert annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    /// Unix time it acted.
    pub at: f64,
    pub pid: i32,
    pub reason: Reason,
    /// The signal's name and whether it was delivered; `None`: no signal configured.
    pub signal: Option<(&'static str, bool)>,
    /// `None`: no command configured; `Some(None)`: it still runs.
    pub command: Option<Option<Outcome>>,
}

/// The last action per target while it is news (see [`Trigger`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Done(HashMap<String, Taken>);

impl Done {
    pub fn get(&self, target: &str) -> Option<&Taken> {
        self.0.get(target)
    }
}

/// What the command tasks report back.
#[derive(Debug, Default)]
struct Results {
    counts: BTreeMap<(String, Action, Outcome), u64>,
    /// Per target: (unix time the command was started, how it ended).
    commands: HashMap<String, (f64, Outcome)>,
}

impl Results {
    fn count(&mut self, target: &str, action: Action, outcome: Outcome) {
        *self
            .counts
            .entry((target.to_string(), action, outcome))
            .or_default() += 1;
    }
}

/// The actions' state across ticks.
#[derive(Debug, Default)]
pub struct Actions {
    config: ActionsConfig,
    triggers: HashMap<String, Trigger>,
    done: Done,
    results: Arc<Mutex<Results>>,
}

impl Actions {
    pub fn new(config: ActionsConfig) -> Self {
        Actions {
            config,
            ..Default::default()
        }
    }

    /// One tick at unix time `now`, after the analysis: each target's episode is
    /// brought up to date, and the actions run where they are due.
    pub fn act(&mut self, targets: &[TargetStatus], now: f64) {
        if !self.config.enabled() {
            return;
        }
        let cooldown = self.config.cooldown_seconds;
        for t in targets {
            let pressure = Pressure::of(t);
            let reason = pressure.and_then(|p| p.reason(&self.config));
            let trigger = self.triggers.entry(t.name.clone()).or_default();
            if let (true, Some(p), Some(r)) = (
                trigger.step(reason.is_some(), now, cooldown),
                pressure,
                reason,
            ) {
                let taken = self.run(&t.name, &p, r, now);
                self.done.0.insert(t.name.clone(), taken);
            }
        }
        let triggers = &self.triggers;
        self.done
            .0
            .retain(|name, _| triggers.get(name).is_some_and(|t| t.recent(now, cooldown)));
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        for (name, taken) in self.done.0.iter_mut() {
            if let (Some(cmd), Some((at, outcome))) =
                (&mut taken.command, results.commands.get(name))
            {
                if *at == taken.at {
                    *cmd = Some(*outcome);
                }
            }
        }
    }

    /// What was done, per target, while it is news.
    pub fn done(&self) -> &Done {
        &self.done
    }

    /// Every action and result so far, by target, action and result.
    pub fn counts(&self) -> Vec<ActionCount> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        results
            .counts
            .iter()
            .map(|((target, action, result), n)| ActionCount {
                target: target.clone(),
                action: *action,
                result: *result,
                count: *n,
            })
            .collect()
    }

    /// Sends the signal and starts the command for `target`.
    fn run(&self, target: &str, p: &Pressure, reason: Reason, now: f64) -> Taken {
        let signal = self.config.signal.map(|s| {
            let sent = nix::sys::signal::kill(Pid::from_raw(p.pid), s);
            match &sent {
                Ok(()) => tracing::warn!(target_name = target, pid = p.pid, signal = s.as_str(), reason = reason.as_str(), "pre-OOM action: signal sent"),
                Err(e) => tracing::warn!(target_name = target, pid = p.pid, signal = s.as_str(), error = %e, "pre-OOM action: the signal could not be sent"),
            }
            let outcome = if sent.is_ok() { Outcome::Ok } else { Outcome::Failed };
            self.lock().count(target, Action::Signal, outcome);
            (s.as_str(), sent.is_ok())
        });
        let command = (!self.config.command.is_empty()).then(|| self.spawn(target, p, reason, now));
        Taken {
            at: now,
            pid: p.pid,
            reason,
            signal,
            command,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the command with the figures in its environment; a task waits for it
    /// (at most the timeout) and counts how it ended. `None`: it runs; else it could
    /// not start.
    fn spawn(&self, target: &str, p: &Pressure, reason: Reason, at: f64) -> Option<Outcome> {
        let fail = |error: String| {
            tracing::warn!(target_name = target, command = ?self.config.command, %error, "pre-OOM action: the command could not start");
            let mut results = self.lock();
            results.count(target, Action::Command, Outcome::Failed);
            results
                .commands
                .insert(target.to_string(), (at, Outcome::Failed));
            Some(Outcome::Failed)
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return fail("no runtime to wait for it".into());
        };
        let mut cmd = tokio::process::Command::new(&self.config.command[0]);
        cmd.args(&self.config.command[1..])
            .envs(environment(target, p, reason))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let _guard = runtime.enter();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        tracing::warn!(target_name = target, pid = p.pid, command = ?self.config.command, reason = reason.as_str(), "pre-OOM action: command started");
        let (results, timeout, target) = (
            self.results.clone(),
            self.config.timeout,
            target.to_string(),
        );
        runtime.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, child.wait()).await {
                Ok(Ok(status)) if status.success() => {
                    tracing::info!(target_name = %target, "pre-OOM action: the command exited 0");
                    Outcome::Ok
                }
                Ok(status) => {
                    tracing::warn!(target_name = %target, ?status, "pre-OOM action: the command failed");
                    Outcome::Failed
                }
                Err(_) => {
                    let _ = child.kill().await;
                    tracing::warn!(target_name = %target, ?timeout, "pre-OOM action: the command ran past its timeout and was killed");
                    Outcome::Timeout
                }
            };
            let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
            r.count(&target, Action::Command, outcome);
            r.commands.insert(target, (at, outcome));
        });
        None
    }
}

/// The command's environment: the target, its main pid and its figures.
fn environment(target: &str, p: &Pressure, reason: Reason) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("OUTRIDER_PID", p.pid.to_string()),
        ("OUTRIDER_TARGET", target.to_string()),
        ("OUTRIDER_MEMORY_BYTES", format!("{:.0}", p.memory_bytes)),
        (
            "OUTRIDER_MEMORY_LIMIT_BYTES",
            format!("{:.0}", p.limit_bytes),
        ),
        ("OUTRIDER_REASON", reason.as_str().to_string()),
    ];
    if let Some(s) = p.time_to_limit_seconds {
        env.push(("OUTRIDER_TIME_TO_LIMIT_SECONDS", format!("{s:.0}")));
    }
    env
}

#[cfg(test)]
mod tests;
