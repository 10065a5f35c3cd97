//! The sampling tick: sample (off the runtime thread), analyse, evaluate the alert
//! rules, queue notifications, publish; repeat every interval until told to stop.
//!
//! [`Analysis`] is the state the tick keeps between samples: one analyzer and one
//! capacity tracker per target name, the log-rate and latency windows, the alert
//! engine and its dispatcher, and the trace recorder.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::alerts;
use crate::alerts::{Evidence, Transition};
use crate::analysis::capacity::Capacity;
use crate::analysis::capacity::{CapacityConfig, CapacityTracker};
use crate::analysis::latency::Latency;
use crate::analysis::latency::LatencyWindow;
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
            visible_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// One tick: the log rates, every live target's verdicts and capacity, the
    /// alert rules and their notifications; the trace rows appended. Returns what
    /// the tick publishes.
    pub fn tick(&mut self, sample: Sample, streams: &[Arc<StreamStats>]) -> Snapshot {
        let now = sample.taken_at_unix;
        let (logs, http_per_stream) = self.log_rates(now, streams);
        let latency = logs.as_ref().and_then(|l| l.latency.as_ref());
        let up = sample.targets.iter().filter(|t| t.up).count();
        let mut rows = Vec::new();
        let targets = sample
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
                let o = Observation::of(&t, now);
                let verdicts = self.verdicts(&t.name, &o, latency);
                if self.recorder.is_some() {
                    rows.push((o, t.name.clone()));
                }
                let capacity = self.capacity(&t, now, up, &http_per_stream);
                TargetStatus {
                    sample: t,
                    verdicts: Some(verdicts),
                    capacity: Some(capacity),
                }
            })
            .collect();
        self.record(&rows);
        let mut snap = Snapshot {
            taken_at_unix: now,
            sample_duration_seconds: sample.sample_duration_seconds,
            targets,
            read_errors: sample.read_errors,
            logs,
            alerts: Vec::new(),
            connection_scans: sample.connection_scans,
        };
        let evidence = Evidence {
            targets: &snap.targets,
            logs: snap.logs.as_ref(),
        };
        let transitions = self.alerts.evaluate(evidence, now);
        snap.alerts = self.alerts.active();
        self.notifier.dispatch(&transitions, &snap.alerts, now);
        log_transitions(&transitions);
        snap
    }

    /// The rates of the app's output over the windows, and the HTTP lines per
    /// stream (cumulative) for the capacity. Each stream's totals are read once.
    fn log_rates<'s>(
        &mut self,
        now: f64,
        streams: &'s [Arc<StreamStats>],
    ) -> (Option<LogRates>, Vec<(&'s str, u64)>) {
        let mut http_per_stream = Vec::with_capacity(streams.len());
        if streams.is_empty() {
            return (None, http_per_stream);
        }
        let mut totals = LogTotals::default();
        let mut durations = FineHistogram::default();
        for s in streams {
            let c = s.counts();
            durations.add(&c.latency.fine);
            let http =
                c.http.success + c.http.redirection + c.http.client_error + c.http.server_error;
            http_per_stream.push((s.name.as_str(), http));
            totals.errors += c.events.get(Severity::Error);
            totals.events += c.events.total();
            totals.http_5xx += c.http.server_error;
            totals.http += http;
        }
        let mut rates = self.log_window.push(now, totals);
        rates.latency = self.latency_window.push(now, &durations);
        (Some(rates), http_per_stream)
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

    /// Requests per CPU-second and the worker hint of a live target, with the
    /// access lines (cumulative, per stream) attributed by
    /// [`analysis::capacity::attribute`] among the `up` live targets.
    fn capacity(
        &mut self,
        t: &TargetSample,
        now: f64,
        up: usize,
        http: &[(&str, u64)],
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

fn log_transitions(transitions: &[Transition]) {
    for t in transitions {
        match t {
            Transition::Fired(a) => {
                tracing::warn!(alert = a.alertname, target = %a.target, summary = %a.annotations["summary"], "alert firing")
            }
            Transition::Resolved(a) => {
                tracing::info!(alert = a.alertname, target = %a.target, "alert resolved")
            }
        }
    }
}

/// The sampling tick: sample (off the runtime thread), analyse, publish, repeat.
pub async fn tick_loop(
    mut sampler: Sampler,
    mut analysis: Analysis,
    interval: std::time::Duration,
    shared: Arc<state::Shared>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let result = tokio::task::spawn_blocking(move || {
            let snap = sampler.sample();
            (sampler, snap)
        })
        .await;
        match result {
            Ok((s, sample)) => {
                sampler = s;
                shared.publish(analysis.tick(sample, shared.streams()));
            }
            Err(e) => {
                tracing::error!(error = %e, "sampling pass panicked; stopping the tick");
                break;
            }
        }
    }
}
