//! The sampling tick: sample (on a thread of its own), analyse, act before the kill
//! where `[actions]` says so, evaluate the alert rules, queue notifications,
//! publish; repeat every interval until told to stop, or until asked for a last
//! tick (when the wrapped app has exited, before the tasks are told to stop), whose
//! answer is the run's [`Ending`].
//!
//! [`Analysis`] is the state the tick keeps between samples: one analyzer and one
//! capacity tracker per target name, the log-rate and latency windows, the alert
//! engine and its dispatcher, the pre-OOM actions, and the trace recorder.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::actions::Actions;
use crate::alerts;
use crate::alerts::{Evidence, Transition};
use crate::analysis::capacity::Capacity;
use crate::analysis::capacity::{CapacityConfig, CapacityTracker};
use crate::analysis::latency::Latency;
use crate::analysis::latency::LatencyWindow;
use crate::analysis::requests;
use crate::analysis::startup::{Seen, StartupTracker};
use crate::analysis::{
    self, AnalysisConfig, Analyzer, LogRates, LogTotals, LogWindow, Observation, TargetStatus,
    Verdicts,
};
use crate::config::Config;
use crate::logs::classify::Severity;
use crate::logs::latency::FineHistogram;
use crate::logs::StreamStats;
use crate::sample::{Sample, Sampler, TargetSample};
use crate::state::{self, Snapshot};

/// Analysis state across ticks: one analyzer per target name, and the recorder.
pub struct Analysis {
    log_window: LogWindow,
    latency_window: LatencyWindow,
    config: AnalysisConfig,
    per_target: HashMap<String, Analyzer>,
    recorder: Option<analysis::trace::Recorder>,
    alerts: alerts::Engine,
    notifier: alerts::notify::Dispatcher,
    /// Requests per CPU-second window per target name.
    capacity: HashMap<String, CapacityTracker>,
    capacity_config: CapacityConfig,
    /// CPUs Outrider may run on: the worker hint's cores when no CPU limit or
    /// request is known.
    visible_cpus: usize,
    /// Per target name: the kernel's OOM-kill count at the last reading, and the
    /// kills seen while Outrider watched (rises only: a new container's counter
    /// starts again from 0).
    oom_kills: HashMap<String, (u64, u64)>,
    /// What to do before the kill, and what was done.
    actions: Actions,
    /// Per target name: where a request's time goes, and the start-up.
    requests: HashMap<String, (requests::Tracker, StartupTracker)>,
    /// `[disposability] slow_startup`, seconds.
    slow_startup: f64,
}

/// Each log stream's cumulative figures, read once a tick: access lines, and the
/// access lines with a duration with the sum of their durations (microseconds).
#[derive(Debug, Default)]
struct PerStream<'s> {
    http: Vec<(&'s str, u64)>,
    timed: Vec<(&'s str, u64)>,
    timed_micros: Vec<(&'s str, u64)>,
}

/// What the last tick saw, for the run's last word.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ending {
    /// The targets whose cgroup counted an OOM kill while Outrider watched.
    pub oom_killed: Vec<OomKilled>,
}

/// A target OOM-killed during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct OomKilled {
    pub target: String,
    /// Kills the kernel counted while Outrider watched.
    pub kills: u64,
    /// The cgroup's memory limit at the last reading (the one the kernel enforced),
    /// else the configured one; `None` when neither is known.
    pub memory_limit_bytes: Option<u64>,
}

impl Analysis {
    /// Fresh state for a run: nothing observed yet.
    pub fn new(
        config: &Config,
        notifier: alerts::notify::Dispatcher,
        recorder: Option<analysis::trace::Recorder>,
    ) -> Self {
        Analysis {
            log_window: LogWindow::new(config.analysis.error_window),
            latency_window: LatencyWindow::new(config.analysis.latency_window),
            config: config.analysis,
            per_target: HashMap::new(),
            recorder,
            alerts: alerts::Engine::new(config.alerts.clone()),
            notifier,
            capacity: HashMap::new(),
            capacity_config: config.capacity,
            visible_cpus: crate::sample::visible_cpus(),
            oom_kills: HashMap::new(),
            actions: Actions::new(config.actions.clone()),
            requests: HashMap::new(),
            slow_startup: config.disposability.slow_startup.as_secs_f64(),
        }
    }

    /// One tick: the log rates, every live target's verdicts and capacity, the
    /// alert rules and their notifications; the trace rows appended. Returns what
    /// the tick publishes.
    pub fn tick(&mut self, sample: Sample, streams: &[Arc<StreamStats>]) -> Snapshot {
        let now = sample.taken_at_unix;
        self.count_oom_kills(&sample.targets);
        let (logs, per_stream) = self.log_rates(now, streams);
        let latency = logs.as_ref().and_then(|l| l.latency.as_ref());
        let up = sample.targets.iter().filter(|t| t.up).count();
        let mut rows = Vec::new();
        let targets: Vec<TargetStatus> = sample
            .targets
            .into_iter()
            .map(|t| {
                if !t.up {
                    return TargetStatus {
                        sample: t,
                        verdicts: None,
                        capacity: None,
                    };
                }
                let mut o = Observation::of(&t, now);
                o.http_requests = requests_of(&t.name, up, &per_stream.http);
                let mut verdicts = self.verdicts(&t.name, &o, latency);
                self.request_verdicts(&t, now, up, &per_stream, &mut verdicts);
                if self.recorder.is_some() {
                    rows.push((o, t.name.clone()));
                }
                let split = verdicts.requests.as_ref().map(|r| &r.time_per_request);
                let capacity = self.capacity(&t, now, up, &per_stream.http, split);
                TargetStatus {
                    sample: t,
                    verdicts: Some(verdicts),
                    capacity: Some(capacity),
                }
            })
            .collect();
        self.record(&rows);
        // After the analysis (its time to the limit), before the alerts (which say
        // what was done).
        self.actions.act(&targets, now);
        let mut snap = Snapshot {
            taken_at_unix: now,
            sample_duration_seconds: sample.sample_duration_seconds,
            targets,
            read_errors: sample.read_errors,
            logs,
            alerts: Vec::new(),
            connection_scans: sample.connection_scans,
            actions: self.actions.counts(),
            log_read_failures: Vec::new(),
        };
        let evidence = Evidence {
            targets: &snap.targets,
            logs: snap.logs.as_ref(),
            actions: Some(self.actions.done()),
        };
        let transitions = self.alerts.evaluate(evidence, now);
        snap.alerts = self.alerts.active();
        self.notifier.dispatch(&transitions, &snap.alerts, now);
        log_transitions(&transitions);
        snap
    }

    /// Folds each target's OOM-kill counter into the kills seen during the run. The
    /// first reading is the baseline: kills before Outrider started are not its.
    fn count_oom_kills(&mut self, targets: &[TargetSample]) {
        for t in targets {
            let Some(now) = t.cgroup.as_ref().and_then(|c| c.app_oom_kills()) else {
                continue;
            };
            let (last, seen) = self.oom_kills.entry(t.name.clone()).or_insert((now, 0));
            *seen += now.saturating_sub(*last);
            *last = now;
        }
    }

    /// The run's ending as `snap` (the last tick's) shows it.
    pub fn ending(&self, snap: &Snapshot) -> Ending {
        let oom_killed = snap
            .targets
            .iter()
            .filter_map(|t| {
                let kills = self.oom_kills.get(&t.name).map_or(0, |(_, seen)| *seen);
                (kills > 0).then(|| OomKilled {
                    target: t.name.clone(),
                    kills,
                    memory_limit_bytes: t
                        .cgroup
                        .as_ref()
                        .and_then(|c| c.binding_memory_limit().map(|(l, _)| l))
                        .or(t.allocation.memory_limit_bytes.map(|l| l.0)),
                })
            })
            .collect();
        Ending { oom_killed }
    }

    /// The rates of the app's output over the windows, and each stream's figures
    /// (cumulative) for the capacity and the time per request. Each stream's totals
    /// are read once.
    fn log_rates<'s>(
        &mut self,
        now: f64,
        streams: &'s [Arc<StreamStats>],
    ) -> (Option<LogRates>, PerStream<'s>) {
        let mut per_stream = PerStream::default();
        if streams.is_empty() {
            return (None, per_stream);
        }
        let mut totals = LogTotals::default();
        let mut durations = FineHistogram::default();
        for s in streams {
            let c = s.counts();
            durations.add(&c.latency.fine);
            let http =
                c.http.success + c.http.redirection + c.http.client_error + c.http.server_error;
            let name = s.name.as_str();
            per_stream.http.push((name, http));
            let classes = c.latency.classes.iter();
            let (timed, sum) = classes.fold((0, 0.0), |(n, sum), h| (n + h.count, sum + h.sum));
            per_stream.timed.push((name, timed));
            per_stream.timed_micros.push((name, (sum * 1e6) as u64));
            totals.errors += c.events.get(Severity::Error);
            totals.events += c.events.total();
            totals.http_5xx += c.http.server_error;
            totals.http += http;
        }
        let mut rates = self.log_window.push(now, totals);
        rates.latency = self.latency_window.push(now, &durations);
        (Some(rates), per_stream)
    }

    /// A live target's leak and sizing verdicts; a CPU under-allocation names a
    /// latency rise seen in the same window.
    fn verdicts(&mut self, name: &str, o: &Observation, latency: Option<&Latency>) -> Verdicts {
        let config = &self.config;
        let analyzer = self
            .per_target
            .entry(name.to_string())
            .or_insert_with(|| Analyzer::new(config));
        let mut verdicts = analyzer.observe(o);
        analysis::latency::note_cpu_rise(&mut verdicts.sizing.cpu, latency);
        verdicts
    }

    /// Where a live target's request time goes, and its start-up, into `v`: its
    /// timed access lines attributed as the capacity attributes them.
    fn request_verdicts(
        &mut self,
        t: &TargetSample,
        now: f64,
        up: usize,
        streams: &PerStream,
        v: &mut Verdicts,
    ) {
        let (window, slow) = (self.config.latency_window, self.slow_startup);
        let (tracker, startup) = self
            .requests
            .entry(t.name.clone())
            .or_insert_with(|| (requests::Tracker::new(window), StartupTracker::new(slow)));
        let attributed = |list: &[(&str, u64)]| analysis::capacity::attribute(&t.name, up, list).1;
        let cg = t.cgroup.as_ref();
        let totals = attributed(&streams.timed)
            .zip(attributed(&streams.timed_micros))
            .map(|(n, micros)| requests::Totals {
                requests: n,
                duration_seconds: micros as f64 / 1e6,
                cpu_seconds: Some(t.counters.cpu_user_seconds + t.counters.cpu_system_seconds),
                cpu_wait_seconds: t.counters.cpu_wait_seconds,
                throttled_seconds: cg.and_then(|c| c.cpu_throttled_seconds),
            });
        v.requests = tracker.observe(&requests::Input {
            t: now,
            totals,
            any_requests: streams.timed.iter().any(|(_, n)| *n > 0),
            cpu_limit_cores: t.allocation.cpu_limit_cores.map(|c| c.0),
            likely_waits: t
                .connections
                .map(|c| c.known_services.names())
                .unwrap_or_default(),
            threads: t.threads,
            allowed_cores: t
                .allocation
                .cpu_limit_cores
                .map_or(self.visible_cpus as f64, |c| c.0),
        });
        v.startup = startup.observe(&Seen {
            t: now,
            start_time: t.start_time_seconds,
            listening: t.connections.map(|c| c.listen),
            requests: attributed(&streams.http),
        });
    }

    /// Requests per CPU-second and the worker hint of a live target, with the
    /// access lines (cumulative, per stream) attributed by
    /// [`analysis::capacity::attribute`] among the `up` live targets.
    fn capacity(
        &mut self,
        t: &TargetSample,
        now: f64,
        up: usize,
        http: &[(&str, u64)],
        split: Option<&analysis::requests::TimePerRequest>,
    ) -> Capacity {
        let (attribution, requests) = analysis::capacity::attribute(&t.name, up, http);
        let cfg = self.capacity_config;
        let tracker = self
            .capacity
            .entry(t.name.clone())
            .or_insert_with(|| CapacityTracker::new(cfg));
        tracker.observe(
            now,
            attribution,
            requests,
            t.counters.cpu_user_seconds + t.counters.cpu_system_seconds,
            &t.allocation,
            t.workers.as_ref(),
            self.visible_cpus,
            split,
        )
    }

    /// Appends the trace rows; a failed write stops the recording, not the tick.
    fn record(&mut self, rows: &[(Observation, String)]) {
        if let Some(r) = &mut self.recorder {
            if let Err(e) = r.append(rows) {
                tracing::warn!(error = %e, "cannot append to the trace file; recording stops");
                self.recorder = None;
            }
        }
    }
}

/// A target's access lines (cumulative), attributed as the capacity attributes
/// them: the scale-to-zero verdict's requests, and a trace's `http_requests`.
fn requests_of(target: &str, up: usize, http: &[(&str, u64)]) -> Option<f64> {
    analysis::capacity::attribute(target, up, http)
        .1
        .map(|n| n as f64)
}

fn log_transitions(transitions: &[Transition]) {
    for t in transitions {
        match t {
            Transition::Fired(a) => {
                tracing::warn!(alert = a.alertname, target_name = %a.target, summary = %a.annotations["summary"], "alert firing")
            }
            Transition::Resolved(a) => {
                tracing::info!(alert = a.alertname, target_name = %a.target, "alert resolved")
            }
        }
    }
}

/// The sampling tick: sample, analyse, publish, repeat until `stop`. A request on
/// `last` gets one more tick at once, answered with the run's [`Ending`] after its
/// notifications are queued; the loop then ends.
///
/// The ticks run on a thread of their own that owns the sampler and the analysis
/// and sleeps until each deadline: the runtime thread is not woken per tick, and
/// no task is handed to the blocking pool and back (a timer wake-up, a futex, an
/// eventfd and an `epoll_wait` return per tick: a third of a small tick's CPU in
/// the profile, docs/performance.md). The thread enters the runtime, for what the
/// analysis starts on it (a pre-OOM command). This task only passes `stop` and
/// `last` on; `done` is dropped when the thread has finished.
pub async fn tick_loop(
    sampler: Sampler,
    analysis: Analysis,
    interval: std::time::Duration,
    shared: Arc<state::Shared>,
    mut stop: watch::Receiver<bool>,
    mut last: mpsc::Receiver<oneshot::Sender<Ending>>,
    done: mpsc::Sender<()>,
) {
    let (orders, inbox) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("outrider-tick".into())
        .spawn(move || {
            let _runtime = runtime.enter();
            let _done = done;
            ticks(sampler, analysis, interval, &shared, &inbox);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the sampling thread; nothing will be sampled");
        return;
    }
    // Dropping `orders` (stop, or after the last tick's order) ends the thread.
    tokio::select! {
        Some(reply) = last.recv() => {
            let _ = orders.send(reply);
        }
        _ = stop.changed() => {}
    }
}

/// The sampling thread's loop: a tick at each deadline, `interval` apart (a late
/// tick moves the next ones back, as tokio's `MissedTickBehavior::Delay`), the
/// first at once; a last tick as soon as one is asked for. Ends when `orders` is
/// closed, after a last tick, or after a panicking tick.
fn ticks(
    mut sampler: Sampler,
    mut analysis: Analysis,
    interval: std::time::Duration,
    shared: &state::Shared,
    orders: &std::sync::mpsc::Receiver<oneshot::Sender<Ending>>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};
    // Tokio's interval counts a tick this late as missed.
    const LATE: Duration = Duration::from_millis(5);
    let mut deadline = Instant::now();
    loop {
        let reply = match orders.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(reply) => Some(reply),
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                deadline = if now > deadline + LATE {
                    now + interval
                } else {
                    deadline + interval
                };
                None
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let snap = analysis.tick(sampler.sample(), shared.streams());
            let ending = reply.as_ref().map(|_| analysis.ending(&snap));
            shared.publish(snap);
            ending
        }));
        match (tick, reply) {
            (Err(_), _) => {
                tracing::error!("sampling pass panicked; stopping the tick");
                break;
            }
            (Ok(Some(ending)), Some(reply)) => {
                let _ = reply.send(ending);
                break;
            }
            _ => {}
        }
    }
}

/// Asks the tick loop behind `last` for its last tick and waits for it, at most
/// `grace`; `None` when it did not answer (stopped, or too slow).
pub async fn last_tick(
    last: &mpsc::Sender<oneshot::Sender<Ending>>,
    grace: std::time::Duration,
) -> Option<Ending> {
    let (tx, rx) = oneshot::channel();
    let asked = async {
        last.send(tx).await.ok()?;
        rx.await.ok()
    };
    match tokio::time::timeout(grace, asked).await {
        Ok(ending) => ending,
        Err(_) => {
            tracing::warn!(
                ?grace,
                "the last tick did not finish within the grace period"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertState;
    use crate::sample::cgroup::CgroupReading;

    fn analysis() -> Analysis {
        let config = crate::config::validate(&Default::default()).unwrap();
        let (_, stop) = watch::channel(false);
        let (done, _) = mpsc::channel(1);
        let (notifier, _) =
            alerts::notify::Dispatcher::start(Vec::new(), String::new(), None, stop, done).unwrap();
        Analysis::new(&config, notifier, None)
    }

    /// The app at `now`, up or down, its cgroup counting `kills` under 64 MiB.
    fn app(now: f64, up: bool, kills: u64) -> Sample {
        Sample {
            taken_at_unix: now,
            targets: vec![TargetSample {
                name: "app".into(),
                up,
                processes: up as u64,
                cgroup: Some(CgroupReading {
                    oom_kills: Some(kills),
                    memory_limit_bytes: Some(64 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The kill that ended the app is read after it is down: OOMKilled fires on
    /// that tick (its `for` is 0s), and the ending names the kill and the limit.
    /// Kills before the first reading are not the run's.
    #[test]
    fn a_kill_seen_after_the_app_is_down_fires_and_ends_the_run() {
        let mut a = analysis();
        let snap = a.tick(app(0.0, true, 2), &[]);
        assert!(snap.alerts.is_empty(), "{:?}", snap.alerts);
        assert_eq!(a.ending(&snap), Ending::default());

        let snap = a.tick(app(1.0, false, 3), &[]);
        let oom: Vec<_> = snap
            .alerts
            .iter()
            .filter(|al| al.alertname == "OOMKilled")
            .collect();
        assert_eq!(oom.len(), 1, "{:?}", snap.alerts);
        assert_eq!(oom[0].state, AlertState::Firing);
        assert_eq!(
            a.ending(&snap).oom_killed,
            vec![OomKilled {
                target: "app".into(),
                kills: 1,
                memory_limit_bytes: Some(64 << 20),
            }]
        );
    }

    /// A counter that starts again (a new container) adds its rises, never less.
    #[test]
    fn oom_kills_are_counted_across_a_reset_counter() {
        let mut a = analysis();
        a.tick(app(0.0, true, 5), &[]);
        a.tick(app(1.0, true, 6), &[]);
        a.tick(app(2.0, true, 0), &[]);
        let snap = a.tick(app(3.0, true, 2), &[]);
        assert_eq!(a.ending(&snap).oom_killed[0].kills, 3);
    }

    /// With `[actions]`, a target near its limit is acted on after the analysis and
    /// before the alerts: the MemoryNearLimit annotation on the same tick says what
    /// was done, and the snapshot counts it.
    #[test]
    fn the_alerts_say_what_was_done_before_the_kill() {
        let mut config = crate::config::validate(&Default::default()).unwrap();
        config.actions.signal = Some(nix::sys::signal::Signal::SIGCONT);
        let (_, stop) = watch::channel(false);
        let (done, _) = mpsc::channel(1);
        let (notifier, _) =
            alerts::notify::Dispatcher::start(Vec::new(), String::new(), None, stop, done).unwrap();
        let mut a = Analysis::new(&config, notifier, None);
        let pid = std::process::id() as i32;
        let near = Sample {
            taken_at_unix: 100.0,
            targets: vec![TargetSample {
                name: "app".into(),
                up: true,
                processes: 1,
                main_pid: Some(pid),
                resident_memory_bytes: 60 << 20,
                allocation: crate::sample::allocation::Allocation {
                    memory_limit_bytes: Some((64 << 20, crate::sample::allocation::Source::Cgroup)),
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let snap = a.tick(near, &[]);
        let alert = snap
            .alerts
            .iter()
            .find(|al| al.alertname == "MemoryNearLimit")
            .expect("MemoryNearLimit pending");
        assert!(
            alert.annotations["description"]
                .ends_with(&format!("Outrider sent SIGCONT to pid {pid} just now.")),
            "{:?}",
            alert.annotations
        );
        assert_eq!(snap.actions.len(), 1, "{:?}", snap.actions);
        assert_eq!(snap.actions[0].count, 1);
    }

    /// The ticks run on a thread of their own: the first at once (the interval
    /// here is an hour), a last one as soon as it is asked for, answered with the
    /// run's ending; a stop ends the thread too. Either way `done` is let go of
    /// once the thread has finished.
    #[tokio::test]
    async fn the_tick_thread_ticks_at_once_answers_the_last_tick_and_stops() {
        use std::time::Duration;
        for ask_last in [true, false] {
            let proc_root = tempfile::tempdir().unwrap();
            let sampler = Sampler::new(
                proc_root.path().to_path_buf(),
                vec![crate::sample::target::GroupSpec::Everything],
                Default::default(),
                1,
            );
            let shared = Arc::new(state::Shared::new(Vec::new()));
            let (stop_tx, stop) = watch::channel(false);
            let (last_tx, last_rx) = mpsc::channel(1);
            let (done, mut finished) = mpsc::channel::<()>(1);
            let hour = Duration::from_secs(3600);
            let task = tokio::spawn(tick_loop(
                sampler,
                analysis(),
                hour,
                shared.clone(),
                stop,
                last_rx,
                done,
            ));
            let ticked = async {
                while shared.snapshot().taken_at_unix == 0.0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(20), ticked)
                .await
                .expect("a first tick at once");
            if ask_last {
                let ending = last_tick(&last_tx, Duration::from_secs(20)).await;
                assert_eq!(ending, Some(Ending::default()));
            } else {
                stop_tx.send(true).unwrap();
            }
            let ended = tokio::time::timeout(Duration::from_secs(20), finished.recv()).await;
            assert_eq!(ended, Ok(None), "the thread let go of done");
            task.await.unwrap();
        }
    }
}
