//! Outrider: a sidecar that watches an app through /proc, its cgroup and its output,
//! and serves what it sees as Prometheus metrics.
//!
//! # Layout
//! - [`alerts`]: built-in alert rules, pending → firing → resolved
//! - [`analysis`]: leak detection and right-sizing verdicts; record and replay
//! - [`config`]: file + environment + flags → validated [`config::Config`]
//! - [`target`]: choosing and grouping processes; identity, restarts, counters
//! - [`sample`]: /proc and cgroup readers → [`sample::Snapshot`]
//! - [`logs`]: the app's output: pass-through, line framing, counts per stream
//! - [`metrics`]: every metric family, rendered from the snapshot
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`, `/api/v1/status`, `/`, `/summary.txt`
//! - [`history`]: bounded per-target history for the charts
//! - [`page`]: the HTML status page
//! - [`report`]: `outrider report`: watch for a while, then a verdict for humans or CI
//! - [`state`]: what the tick publishes and the server reads
//! - [`wrap`]: child process, signal forwarding, exit code
//! - [`demo`]: the built-in misbehaving app and the `demo` command
//!
//! [`run`] wires them: bind, spawn the tick, the server and the log pumps, wait for
//! shutdown (or, in wrap mode, for the child to exit), then drain within the grace.

#![forbid(unsafe_code)]
// Module docs map their private submodules too; read them with
// `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod alerts;
pub mod analysis;
pub mod config;
pub mod demo;
pub mod history;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod page;
pub mod report;
pub mod sample;
pub mod state;
pub mod target;
pub mod units;
pub mod wrap;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use config::{Config, LogSource, TargetSpec};
use logs::StreamStats;
use sample::Sampler;
use target::GroupSpec;

/// How Outrider finds the app.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Watch processes chosen from /proc.
    Sidecar,
    /// Run a command as a child and watch it.
    Wrap(WrapSpec),
}

/// The wrapped command and the `target` label it gets.
#[derive(Debug, Clone)]
pub struct WrapSpec {
    pub argv: Vec<String>,
    /// Defaults to the command's file name.
    pub name: Option<String>,
    /// Pass the app's stdout on to our stderr (a report keeps stdout for itself).
    pub stdout_to_stderr: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// 0 in sidecar mode; the child's code (or 128+signal) in wrap mode.
    pub exit_code: i32,
    /// The wrapped app's code, when there was one.
    pub app_exit_code: Option<i32>,
}

/// The output streams a run counts: the child's stdout and stderr in wrap mode,
/// then the configured logs, in that order.
pub fn streams_for(config: &Config, mode: &Mode) -> Vec<Arc<StreamStats>> {
    let mut streams = Vec::new();
    if let Mode::Wrap(_) = mode {
        streams.push(StreamStats::new("stdout"));
        streams.push(StreamStats::new("stderr"));
    }
    for l in &config.logs {
        streams.push(StreamStats::new(l.name.clone()));
    }
    streams
}

/// Runs until `shutdown` resolves (sidecar) or the child exits (wrap: signals reach
/// the child by forwarding and its exit ends the run; `shutdown` resolving sends it
/// one SIGTERM, so pass a pending future when signals are already forwarded).
pub async fn run(
    config: Config,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RunOutcome> {
    let shared = Arc::new(state::Shared::new(streams_for(&config, &mode)));
    run_with(config, mode, shutdown, shared, true).await
}

/// [`run`] with the shared state given by the caller (who may watch it), and the
/// HTTP server optional (`outrider report` serves nothing).
pub async fn run_with(
    config: Config,
    mode: Mode,
    shutdown: impl Future<Output = ()>,
    shared: Arc<state::Shared>,
    serve: bool,
) -> anyhow::Result<RunOutcome> {
    // Log files are positioned before we say we listen: a line written after that
    // is always read.
    let mut tailers = Vec::new();
    for spec in &config.logs {
        if let LogSource::Files {
            pattern,
            start_at_beginning,
            checkpoint,
        } = &spec.source
        {
            let mut opts = logs::tail::TailOptions::new(pattern.clone());
            if *start_at_beginning {
                opts.start_at = logs::tail::StartAt::Beginning;
            }
            opts.checkpoint = checkpoint.clone();
            tailers.push(Some(logs::tail::Tailer::new(opts).await));
        } else {
            tailers.push(None);
        }
    }
    let listener = if serve {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        Some(listener)
    } else {
        None
    };
    let streams: Vec<Arc<StreamStats>> = shared.streams().to_vec();
    let mut wrapped = None;
    let mut forwarder = None;
    if let Mode::Wrap(WrapSpec { argv, .. }) = &mode {
        forwarder = Some(wrap::Forwarder::install().context("cannot install signal handlers")?);
        let w = wrap::spawn(argv).with_context(|| format!("cannot start {:?}", argv[0]))?;
        tracing::info!(pid = w.pid, command = %argv.join(" "), "started the app");
        wrapped = Some(w);
    }

    let mut specs = Vec::new();
    if let (Mode::Wrap(spec), Some(w)) = (&mode, &wrapped) {
        specs.push(GroupSpec::Configured(TargetSpec {
            name: Some(
                spec.name
                    .clone()
                    .unwrap_or_else(|| wrap::target_name(&spec.argv)),
            ),
            selector: config::Selector::Pid(w.pid),
            children: true,
        }));
    }
    specs.extend(config.targets.iter().cloned().map(GroupSpec::Configured));
    if specs.is_empty() {
        specs.push(GroupSpec::Everything);
    }
    let sampler = Sampler::new(
        config.proc_root.clone(),
        specs,
        config.resources.clone(),
        std::process::id() as i32,
    )
    .with_connection_scans(config.connections_interval, config.interval)
    .with_pss_interval(config.pss_interval);

    let (stop_tx, stop_rx) = watch::channel(false);
    // Each task holds a clone; when all are dropped, every task has finished.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);

    let recorder = match &config.record {
        Some(path) => Some(
            analysis::trace::Recorder::open(path)
                .with_context(|| format!("cannot open the trace file {}", path.display()))?,
        ),
        None => None,
    };
    let external_url = match config.alerts.external_url.as_str() {
        "" => format!("http://{}/", config.listen),
        u => u.to_string(),
    };
    let (notifier, receiver_stats) = alerts::notify::Dispatcher::start(
        config.receivers.clone(),
        external_url,
        config.alerts.spool_dir.clone(),
        stop_rx.clone(),
        done_tx.clone(),
    )
    .context("cannot set up the alert receivers")?;
    shared.set_receivers(receiver_stats);
    let analysis = Analysis {
        notifier,
        log_window: analysis::LogWindow::new(config.analysis.error_window),
        latency_window: analysis::latency::LatencyWindow::new(config.analysis.latency_window),
        config: config.analysis,
        per_target: std::collections::HashMap::new(),
        recorder,
        alerts: alerts::Engine::new(config.alerts.clone()),
        capacity: std::collections::HashMap::new(),
        capacity_config: config.capacity,
        visible_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    tokio::spawn(tick_loop(
        sampler,
        analysis,
        config.interval,
        shared.clone(),
        stop_rx.clone(),
        done_tx.clone(),
    ));
    let app = Arc::new(http::App {
        metrics: metrics::Metrics::new(shared.clone()),
        shared: shared.clone(),
    });
    if let Some(listener) = listener {
        let done = done_tx.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            http::serve(listener, app, stop).await;
            drop(done);
        });
    }
    let mut pumps = Vec::new();
    let mut stream_iter = streams.iter();
    let mut child = None;
    if let Some(w) = wrapped {
        let out = stream_iter.next().expect("stdout stream").clone();
        let err = stream_iter.next().expect("stderr stream").clone();
        let to_stderr = matches!(
            &mode,
            Mode::Wrap(WrapSpec {
                stdout_to_stderr: true,
                ..
            })
        );
        let ls = &config.log_settings;
        // The app writes plain lines to its pipes.
        let plain = logs::framing::LogFormat::Plain;
        let out_to: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if to_stderr {
            Box::new(tokio::io::stderr())
        } else {
            Box::new(tokio::io::stdout())
        };
        pumps.push(tokio::spawn(logs::pump(
            w.stdout,
            Some(out_to),
            out,
            ls.clone(),
            plain,
        )));
        let err_to = Some(tokio::io::stderr());
        pumps.push(tokio::spawn(logs::pump(
            w.stderr,
            err_to,
            err,
            ls.clone(),
            plain,
        )));
        child = Some((w.child, w.pid));
    }
    for ((spec, stats), tailer) in config.logs.iter().zip(stream_iter).zip(tailers) {
        match &spec.source {
            LogSource::Stdin => {
                // Not joined at shutdown: stdin may stay open forever.
                tokio::spawn(logs::pump(
                    tokio::io::stdin(),
                    None::<tokio::io::Stdout>,
                    stats.clone(),
                    spec.settings
                        .clone()
                        .unwrap_or_else(|| config.log_settings.clone()),
                    spec.format,
                ));
            }
            LogSource::Files { .. } => {
                let Some(tailer) = tailer else { continue };
                let done = done_tx.clone();
                let follow = logs::follow_files(
                    tailer,
                    stats.clone(),
                    spec.settings
                        .clone()
                        .unwrap_or_else(|| config.log_settings.clone()),
                    spec.format,
                    stop_rx.clone(),
                );
                tokio::spawn(async move {
                    follow.await;
                    // Drained and checkpointed: the shutdown may finish.
                    drop(done);
                });
            }
        }
    }

    let app_exit_code = match child.zip(forwarder) {
        Some(((child, pid), forwarder)) => {
            let status = forwarder
                .supervise(child, pid, shutdown)
                .await
                .context("waiting for the app")?;
            let code = wrap::exit_code(status);
            tracing::info!(exit_code = code, "the app exited");
            // Its output may still be in the pipes (or held open by a grandchild).
            let _ = tokio::time::timeout(config.shutdown_grace, async {
                for p in pumps {
                    let _ = p.await;
                }
            })
            .await;
            Some(code)
        }
        None => {
            shutdown.await;
            tracing::info!("shutting down");
            None
        }
    };

    let _ = stop_tx.send(true);
    drop(done_tx);
    if tokio::time::timeout(config.shutdown_grace, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?config.shutdown_grace, "tasks did not finish within the grace period");
    }
    Ok(RunOutcome {
        exit_code: app_exit_code.unwrap_or(0),
        app_exit_code,
    })
}

/// Analysis state across ticks: one analyzer per target name, and the recorder.
struct Analysis {
    log_window: analysis::LogWindow,
    latency_window: analysis::latency::LatencyWindow,
    config: analysis::AnalysisConfig,
    per_target: std::collections::HashMap<String, analysis::Analyzer>,
    recorder: Option<analysis::trace::Recorder>,
    alerts: alerts::Engine,
    notifier: alerts::notify::Dispatcher,
    /// Requests per CPU-second window per target name.
    capacity: std::collections::HashMap<String, analysis::capacity::CapacityTracker>,
    capacity_config: analysis::capacity::CapacityConfig,
    /// CPUs Outrider may run on: the worker hint's cores when no CPU limit or
    /// request is known.
    visible_cpus: usize,
}

impl Analysis {
    /// Feeds every live target's figures to its analyzer, stores the verdicts in
    /// the snapshot, and appends the trace rows.
    fn apply(&mut self, snap: &mut sample::Snapshot, streams: &[Arc<StreamStats>]) {
        // Each stream's totals read once: HTTP lines per stream for the capacity.
        let mut http_per_stream = Vec::with_capacity(streams.len());
        if !streams.is_empty() {
            let mut totals = analysis::LogTotals::default();
            let mut durations = analysis::latency::FineHistogram::default();
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
                .or_insert_with(|| analysis::Analyzer::new(&self.config));
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
                .or_insert_with(|| analysis::capacity::CapacityTracker::new(cfg));
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
async fn tick_loop(
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
