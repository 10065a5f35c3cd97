//! A whole run of Outrider: position the log tailers, start the wrapped app, spawn
//! the tick, the HTTP server and the log pumps, wait for shutdown (or, in wrap mode,
//! for the app to exit), then drain within the grace period.
//!
//! Binding is separate from running ([`bind`], then [`run`] with the listener), so a
//! test can start the whole of Outrider in-process on `127.0.0.1:0` with a oneshot
//! as its shutdown, as mini-redis' `server::run(listener, shutdown)` does.
//!
//! Shutdown has two parts: a `watch` tells every task to stop; each task holds a
//! clone of one `mpsc::Sender`, so when `recv` returns `None` they have all finished.
//! The drain sits inside `timeout(shutdown_grace, …)`.
//!
//! In wrap mode the app's exit is followed by one last tick before the stop (see
//! [`crate::tick::last_tick`]): an OOM kill between the last regular tick and the
//! exit is still counted, and its alert queued, so the receivers deliver it while
//! they drain. When the kernel OOM-killed the app, the last log line says so; when
//! it was told to stop (SIGTERM), the last log line says how long it took and how
//! it ended (`shutdown_seconds`, `exited_by`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, LogSource, Selector, TargetSpec};
use crate::logs::framing::LogFormat;
use crate::logs::tail::{StartAt, TailOptions, Tailer};
use crate::logs::{LogSettings, StreamStats};
use crate::sample::target::GroupSpec;
use crate::sample::Sampler;
use crate::state::Shared;
use crate::tick::{last_tick, tick_loop, Analysis, Ending};
use crate::{alerts, analysis, http, metrics, words, wrap};

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

/// Why a run could not start or go on. Each case says what Outrider was doing; the
/// error underneath is its `source` (`main` prints the chain: "cannot listen on
/// 0.0.0.0:9717: Address already in use (os error 98)").
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the trace file {}", path.display())]
    Trace {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the alert receivers")]
    Receivers(#[source] reqwest::Error),
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("cannot start {command:?}")]
    StartApp {
        command: String,
        source: std::io::Error,
    },
    #[error("waiting for the app")]
    WaitApp(#[source] std::io::Error),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// 0 in sidecar mode; the child's code (or 128+signal) in wrap mode.
    pub exit_code: i32,
    /// The wrapped app's code, when there was one.
    pub app_exit_code: Option<i32>,
    /// The run's last word when the kernel OOM-killed the wrapped app (also
    /// logged): `the app was OOM-killed at its 64 MiB memory limit`.
    pub app_oom_killed: Option<String>,
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

/// Binds the HTTP listener (`127.0.0.1:0` picks a free port; read it back with
/// `local_addr`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })
}

/// Runs until `shutdown` resolves (sidecar) or the child exits (wrap: signals reach
/// the child by forwarding and its exit ends the run; `shutdown` resolving sends it
/// one SIGTERM, so pass a pending future when signals are already forwarded).
/// Serves HTTP on `listener`.
pub async fn run(
    config: Config,
    mode: Mode,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<RunOutcome, RunError> {
    let shared = Arc::new(Shared::new(streams_for(&config, &mode)));
    run_with(config, mode, Some(listener), shared, shutdown).await
}

/// [`run`] with the shared state given by the caller (who may watch it), and the
/// HTTP server optional (`outrider report` serves nothing).
pub async fn run_with(
    config: Config,
    mode: Mode,
    listener: Option<TcpListener>,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunOutcome, RunError> {
    // Log files are positioned before we say we listen: a line written after that
    // is always read (the server answers only once `serve` runs, below).
    let tailers = position_tailers(&config).await;
    if let Some(addr) = listener.as_ref().and_then(|l| l.local_addr().ok()) {
        tracing::info!(%addr, "listening");
    }
    let app = match &mode {
        Mode::Wrap(spec) => Some(start_app(spec)?),
        Mode::Sidecar => None,
    };
    let sampler = Sampler::new(
        config.proc_root.clone(),
        group_specs(&config, &mode, app.as_ref().map(|a| a.wrapped.pid)),
        config.resources.clone(),
        std::process::id() as i32,
    )
    .with_connection_scans(config.connections_interval, config.interval)
    .with_pss_interval(config.pss_interval);

    let (stop_tx, stop_rx) = watch::channel(false);
    // Each task holds a clone; when all are dropped, every task has finished.
    let (done_tx, done_rx) = mpsc::channel::<()>(1);
    let tasks = Tasks {
        stop: stop_rx,
        done: done_tx,
    };
    let analysis = start_analysis(&config, &shared, &tasks)?;
    let (last_tx, last_rx) = mpsc::channel(1);
    tokio::spawn(tick_loop(
        sampler,
        analysis,
        config.interval,
        shared.clone(),
        tasks.stop.clone(),
        last_rx,
        tasks.done.clone(),
    ));
    if let Some(listener) = listener {
        tasks.serve(listener, shared.clone(), config.max_connections);
    }
    let streams = shared.streams();
    let (pipes, files) = match &app {
        Some(_) => streams.split_at(2),
        None => streams.split_at(0),
    };
    tasks.follow_logs(&config, files, tailers);
    let app_end = match app {
        Some(app) => Some(app.supervise(pipes, &mode, &config, shutdown).await?),
        None => {
            shutdown.await;
            tracing::info!("shutting down");
            None
        }
    };
    let app_exit_code = app_end.map(|(code, _)| code);
    // The app has exited: a last tick, before the stop, counts a kill since the
    // previous one and queues its alert for the receivers to flush.
    let ending = match app_exit_code {
        Some(_) => last_tick(&last_tx, config.shutdown_grace).await,
        None => None,
    };
    tasks
        .stop_and_drain(stop_tx, done_rx, config.shutdown_grace)
        .await;
    let app_oom_killed = last_word(&mode, app_end, ending.as_ref(), &config);
    Ok(RunOutcome {
        exit_code: app_exit_code.unwrap_or(0),
        app_exit_code,
        app_oom_killed,
    })
}

/// The run's last word in wrap mode: an OOM kill, or how the app shut down.
/// Returns the OOM kill's words, when that was how the app ended.
fn last_word(
    mode: &Mode,
    app_end: Option<(i32, Option<wrap::Shutdown>)>,
    ending: Option<&Ending>,
    config: &Config,
) -> Option<String> {
    let oom = match (mode, app_end, ending) {
        (Mode::Wrap(spec), Some((code, _)), Some(ending)) => {
            say_if_oom_killed(code, &app_target(spec), ending)
        }
        _ => None,
    };
    if let Some((code, Some(s))) = app_end {
        say_shutdown(code, &s, config);
    }
    oom
}

/// The run's last word when the kernel OOM-killed the app: it died of SIGKILL
/// (128 + 9) and its cgroup's OOM-kill count rose while Outrider watched. Neither
/// alone will do: a SIGKILL may come from anyone, and a kill may hit a child the
/// app survived.
fn say_if_oom_killed(exit_code: i32, app: &str, ending: &Ending) -> Option<String> {
    const KILLED: i32 = 128 + 9;
    let k = ending.oom_killed.iter().find(|k| k.target == app)?;
    if exit_code != KILLED {
        return None;
    }
    let text = words::app_oom_killed(k.memory_limit_bytes);
    tracing::error!(
        exit_code,
        target_name = app,
        oom_kills = k.kills,
        memory_limit_bytes = k.memory_limit_bytes,
        "{text}"
    );
    Some(text)
}

/// The run's last word when the app was told to stop: how long it took, how it
/// ended, and what a slow or forced shutdown costs.
fn say_shutdown(exit_code: i32, s: &wrap::Shutdown, config: &Config) {
    let d = &config.disposability;
    let (text, attention) = words::requests::shutdown(s, d.slow_shutdown, d.kill_after);
    let (seconds, by) = (s.seconds, s.exited_by.as_str());
    if attention {
        tracing::warn!(
            exit_code,
            shutdown_seconds = seconds,
            exited_by = by,
            "{text}"
        );
    } else {
        tracing::info!(
            exit_code,
            shutdown_seconds = seconds,
            exited_by = by,
            "{text}"
        );
    }
}

/// The `target` of the wrapped app: `--name`, else the command's file name.
fn app_target(spec: &WrapSpec) -> String {
    spec.name
        .clone()
        .unwrap_or_else(|| wrap::target_name(&spec.argv))
}

/// One tailer per `[[logs]]` entry that names files, positioned at its start point;
/// `None` for the others (stdin).
async fn position_tailers(config: &Config) -> Vec<Option<Tailer>> {
    let mut tailers = Vec::new();
    for spec in &config.logs {
        let LogSource::Files {
            pattern,
            start_at_beginning,
            checkpoint,
        } = &spec.source
        else {
            tailers.push(None);
            continue;
        };
        let mut opts = TailOptions::new(pattern.clone());
        if *start_at_beginning {
            opts.start_at = StartAt::Beginning;
        }
        opts.checkpoint = checkpoint.clone();
        tailers.push(Some(Tailer::new(opts).await));
    }
    tailers
}

/// The groups the sampler watches: the wrapped app (with its descendants), the
/// configured targets, or, with neither, everything visible.
fn group_specs(config: &Config, mode: &Mode, app_pid: Option<i32>) -> Vec<GroupSpec> {
    let mut specs = Vec::new();
    if let (Mode::Wrap(spec), Some(pid)) = (mode, app_pid) {
        specs.push(GroupSpec::Configured(TargetSpec {
            name: Some(app_target(spec)),
            selector: Selector::Pid(pid),
            children: true,
        }));
    }
    specs.extend(config.targets.iter().cloned().map(GroupSpec::Configured));
    if specs.is_empty() {
        specs.push(GroupSpec::Everything);
    }
    specs
}

/// The trace recorder, the alert dispatcher (its receivers' counts go to `shared`)
/// and the tick's analysis state.
fn start_analysis(config: &Config, shared: &Shared, tasks: &Tasks) -> Result<Analysis, RunError> {
    // The recorder's thread holds a `done` sender: the drain waits for its last rows.
    let recorder = match &config.record {
        Some(path) => Some(
            analysis::trace::Recorder::open(path, config.record_max_bytes, tasks.done.clone())
                .map_err(|source| RunError::Trace {
                    path: path.clone(),
                    source,
                })?,
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
        tasks.stop.clone(),
        tasks.done.clone(),
    )
    .map_err(RunError::Receivers)?;
    shared.set_receivers(receiver_stats);
    Ok(Analysis::new(config, notifier, recorder))
}

/// What every spawned task gets: the stop signal, and a sender whose drop says it
/// has finished.
struct Tasks {
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
}

impl Tasks {
    /// Tells every task to stop and waits, at most `grace`, for all to finish
    /// (each holds a clone of `done`'s sender; these are dropped here).
    async fn stop_and_drain(
        self,
        stop: watch::Sender<bool>,
        mut done: mpsc::Receiver<()>,
        grace: std::time::Duration,
    ) {
        let _ = stop.send(true);
        drop(self);
        if tokio::time::timeout(grace, done.recv()).await.is_err() {
            tracing::warn!(?grace, "tasks did not finish within the grace period");
        }
    }

    /// The HTTP server, until stopped, keeping at most `max_connections` open (and
    /// no more than half the fd limit).
    fn serve(&self, listener: TcpListener, shared: Arc<Shared>, max_connections: usize) {
        let server = Arc::new(metrics::ServerStats::default());
        let limit = http::connection_limit(max_connections);
        server
            .limit
            .store(limit as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            max_connections = limit,
            header_timeout = ?http::HEADER_TIMEOUT,
            "HTTP connections bounded"
        );
        let app = Arc::new(http::App {
            metrics: metrics::Metrics::new(shared.clone()).with_server(server.clone()),
            shared,
            server,
        });
        let done = self.done.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            http::serve(listener, app, stop).await;
            drop(done);
        });
    }

    /// A pump for stdin or a follower for each `[[logs]]` entry, counting into its
    /// stream.
    fn follow_logs(
        &self,
        config: &Config,
        streams: &[Arc<StreamStats>],
        tailers: Vec<Option<Tailer>>,
    ) {
        for ((spec, stats), tailer) in config.logs.iter().zip(streams).zip(tailers) {
            let settings = spec
                .settings
                .clone()
                .unwrap_or_else(|| config.log_settings.clone());
            match (&spec.source, tailer) {
                (LogSource::Stdin, _) => {
                    // Not joined at shutdown: stdin may stay open forever.
                    tokio::spawn(crate::logs::pump(
                        tokio::io::stdin(),
                        None::<tokio::io::Stdout>,
                        stats.clone(),
                        settings,
                        spec.format,
                    ));
                }
                (LogSource::Files { .. }, Some(tailer)) => {
                    let done = self.done.clone();
                    let follow = crate::logs::follow_files(
                        tailer,
                        stats.clone(),
                        settings,
                        spec.format,
                        self.stop.clone(),
                    );
                    tokio::spawn(async move {
                        follow.await;
                        // Drained and checkpointed: the shutdown may finish.
                        drop(done);
                    });
                }
                (LogSource::Files { .. }, None) => {}
            }
        }
    }
}

/// The wrapped app, started, with the handlers that forward signals to it.
struct App {
    wrapped: wrap::Wrapped,
    forwarder: wrap::Forwarder,
}

fn start_app(spec: &WrapSpec) -> Result<App, RunError> {
    let forwarder = wrap::Forwarder::install().map_err(RunError::Signals)?;
    let argv = &spec.argv;
    let wrapped = wrap::spawn(argv).map_err(|source| RunError::StartApp {
        command: argv[0].clone(),
        source,
    })?;
    tracing::info!(pid = wrapped.pid, command = %argv.join(" "), "started the app");
    Ok(App { wrapped, forwarder })
}

impl App {
    /// Pumps the app's stdout and stderr (passed on and counted in `pipes`), waits
    /// for it to exit, then for its remaining output within the grace period.
    /// Returns its exit code (or 128+signal) and its shutdown, when it was told to
    /// stop.
    async fn supervise(
        self,
        pipes: &[Arc<StreamStats>],
        mode: &Mode,
        config: &Config,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(i32, Option<wrap::Shutdown>), RunError> {
        let to_stderr = matches!(
            mode,
            Mode::Wrap(WrapSpec {
                stdout_to_stderr: true,
                ..
            })
        );
        let out_to: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if to_stderr {
            Box::new(tokio::io::stderr())
        } else {
            Box::new(tokio::io::stdout())
        };
        let w = self.wrapped;
        let ls = &config.log_settings;
        let pumps = [
            pump_pipe(w.stdout, out_to, &pipes[0], ls),
            pump_pipe(w.stderr, Box::new(tokio::io::stderr()), &pipes[1], ls),
        ];
        let kill_after = config.disposability.kill_after;
        let ended = self
            .forwarder
            .supervise(w.child, w.pid, shutdown, kill_after)
            .await
            .map_err(RunError::WaitApp)?;
        let code = wrap::exit_code(ended.status);
        tracing::info!(exit_code = code, "the app exited");
        // Its output may still be in the pipes (or held open by a grandchild).
        let _ = tokio::time::timeout(config.shutdown_grace, async {
            for p in pumps {
                let _ = p.await;
            }
        })
        .await;
        Ok((code, ended.shutdown))
    }
}

/// One of the app's pipes, passed on to `to` and counted in `stats`. The app
/// writes plain lines to its pipes.
fn pump_pipe(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    to: Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
    stats: &Arc<StreamStats>,
    settings: &LogSettings,
) -> JoinHandle<()> {
    tokio::spawn(crate::logs::pump(
        pipe,
        Some(to),
        stats.clone(),
        settings.clone(),
        LogFormat::Plain,
    ))
}
