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

use crate::analysis::capacity::{CapacityConfig, CapacityTracker};
use crate::analysis::latency::LatencyWindow;
use crate::analysis::{self, AnalysisConfig, Analyzer, LogWindow};
use crate::config::Config;
use crate::logs::latency::FineHistogram;
use crate::logs::StreamStats;
use crate::sample::{self, Sampler};
use crate::{alerts, logs, state};

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
            config: config.analysis.clone(),
            per_target: HashMap::new(),
            recorder,
            alerts: alerts::Engine::new(config.alerts.clone()),
            notifier,
            capacity: HashMap::new(),
            capacity_config: config.capacity,
            visible_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Feeds every live target's figures to its analyzer, stores the verdicts in
    /// the snapshot, and appends the trace rows.
    fn apply(&mut self, snap: &mut sample::Snapshot, streams: &[Arc<StreamStats>]) {
        // Each stream's totals read once: HTTP lines per stream for the capacity.
        let mut http_per_stream = Vec::with_capacity(streams.len());
        if !streams.is_empty() {
            let mut totals = analysis::LogTotals::default();
            let mut durations = FineHistogram::default();
            for s in streams {
                let c = s.counts();
                durations.add(&c.latency.fine);
                let http =
                    c.http.success + c.http.redirection + c.http.client_error + c.http.server_error;
                http_per_stream.push((s.name.as_str(), http));
                totals.errors += c.events.get(logs::classify::Severity::Error);
                totals.events += c.events.total();
                totals.http_5xx += c.http.server_error;
                totals.http += http;
            }
            let mut rates = self.log_window.push(snap.taken_at_unix, totals);
            rates.latency = self.latency_window.push(snap.taken_at_unix, &durations);
            snap.logs = Some(rates);
        }
        let mut rows = Vec::new();
        for t in snap.targets.iter_mut().filter(|t| t.up) {
            let o = t.observation(snap.taken_at_unix);
            let analyzer = self
                .per_target
                .entry(t.name.clone())
                .or_insert_with(|| Analyzer::new(&self.config));
            let mut verdicts = analyzer.observe(&o);
            let latency = snap.logs.as_ref().and_then(|l| l.latency.as_ref());
            analysis::latency::note_cpu_rise(&mut verdicts.sizing.cpu, latency);
            t.verdicts = Some(verdicts);
            if self.recorder.is_some() {
                rows.push((o, t.name.clone()));
            }
        }
        self.apply_capacity(snap, &http_per_stream);
        if let Some(r) = &mut self.recorder {
            if let Err(e) = r.append(&rows) {
                tracing::warn!(error = %e, "cannot append to the trace file; recording stops");
                self.recorder = None;
            }
        }
    }

    /// Requests per CPU-second and the worker hint of every live target, with the
    /// access lines (cumulative, per stream) attributed by
    /// [`analysis::capacity::attribute`].
    fn apply_capacity(&mut self, snap: &mut sample::Snapshot, http: &[(&str, u64)]) {
        let up = snap.targets.iter().filter(|t| t.up).count();
        for t in snap.targets.iter_mut().filter(|t| t.up) {
            let (attribution, requests) = analysis::capacity::attribute(&t.name, up, http);
            let cfg = self.capacity_config;
            let tracker = self
                .capacity
                .entry(t.name.clone())
                .or_insert_with(|| CapacityTracker::new(cfg));
            t.capacity = Some(tracker.observe(
                snap.taken_at_unix,
                attribution,
                requests,
                t.counters.cpu_user_seconds + t.counters.cpu_system_seconds,
                &t.allocation,
                t.workers.as_ref(),
                self.visible_cpus,
            ));
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
            Ok((s, mut snap)) => {
                sampler = s;
                analysis.apply(&mut snap, shared.streams());
                let now = snap.taken_at_unix;
                let transitions = analysis.alerts.evaluate(&snap, now);
                snap.alerts = analysis.alerts.active();
                analysis.notifier.dispatch(&transitions, &snap.alerts, now);
                for t in &transitions {
                    match t {
                        alerts::Transition::Fired(a) => {
                            tracing::warn!(alert = a.alertname, target = %a.target, summary = %a.annotations["summary"], "alert firing")
                        }
                        alerts::Transition::Resolved(a) => {
                            tracing::info!(alert = a.alertname, target = %a.target, "alert resolved")
                        }
                    }
                }
                shared.publish(snap);
            }
            Err(e) => {
                tracing::error!(error = %e, "sampling pass panicked; stopping the tick");
                break;
            }
        }
    }
}
