//! The `outrider` command line: parse, load config, set up logging, call the library.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use outrider::config::{self, Overrides};
use outrider::demo::{self, DemoAppArgs};
use outrider::{Mode, WrapSpec};

/// Exit status for a bad command line or configuration (sysexits' EX_USAGE).
const EX_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "outrider",
    version,
    about = "Rides alongside your app: CPU, memory, fds, threads, logs; Prometheus metrics.",
    after_help = "Wrap an app:  outrider [FLAGS] -- CMD ARGS...\nTry it:       outrider demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: Flags,
    /// The app to run and watch (wrap mode).
    #[arg(last = true, value_name = "CMD")]
    wrap: Vec<String>,
}

#[derive(Debug, Args)]
struct Flags {
    /// TOML config file.
    #[arg(long, global = true, env = "OUTRIDER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to serve metrics on.
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Time between samples, e.g. 5s or 500ms.
    #[arg(long, global = true, value_name = "DURATION")]
    interval: Option<String>,
    /// Watch this process (and its descendants).
    #[arg(long, global = true, value_name = "PID")]
    pid: Option<i32>,
    /// Count the lines of this log; "-" for stdin.
    #[arg(long, global = true, value_name = "PATH|-")]
    log: Option<String>,
    /// Append every sample to this trace file (the format `replay` reads).
    #[arg(long, global = true, value_name = "FILE")]
    record: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch a built-in misbehaving app: leaks, errors and sizing verdicts within
    /// minutes (short analysis windows).
    Demo,
    /// Print the effective configuration, or every error in it (exit 64).
    CheckConfig,
    /// Analyse a recorded trace offline and print the verdicts as JSON
    /// (exit 65 for a bad trace, 66 when it cannot be read).
    Replay {
        /// The trace (CSV, as written by --record).
        trace: PathBuf,
        /// Which target of a multi-target trace (default: the first one named).
        #[arg(long)]
        target: Option<String>,
    },
    /// Read a log once (a file, or - for stdin) and print its counts as JSON: lines,
    /// bytes, events by severity, HTTP status classes, seconds taken.
    Scan {
        /// The log file, or - for stdin.
        file: String,
        /// auto | cri | docker | plain
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// Watch the app for a while, then print usage, trends, verdicts and the
    /// recommended resources; exit 0 when fine, 1 when something needs attention,
    /// 2 on error, 64 on a usage error. Use with --pid PID or -- CMD ARGS...
    Report {
        /// How long to watch.
        #[arg(long = "for", default_value = "10m", value_name = "DURATION")]
        duration: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The app to run and watch.
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    #[command(hide = true)]
    DemoApp(DemoAppArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Some(Command::DemoApp(args)) = &cli.command {
        return ExitCode::from(demo::demo_app(args) as u8);
    }
    // A report keeps the terminal for its progress and result: warnings only.
    init_logging(if matches!(cli.command, Some(Command::Report { .. })) {
        "warn"
    } else {
        "info"
    });
    let mut overrides = Overrides {
        listen: cli.flags.listen.clone(),
        interval: cli.flags.interval.clone(),
        pid: cli.flags.pid,
        log: cli.flags.log.clone(),
        record: cli.flags.record.clone(),
    };
    if matches!(cli.command, Some(Command::Report { .. } | Command::Demo)) {
        // A report or the demo is minutes long: sample every second unless told.
        overrides.interval.get_or_insert_with(|| "1s".into());
    }
    let mode = match mode_for(&cli) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let (raw, config) = match load_config(&cli, &overrides) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match &cli.command {
        Some(Command::Scan { file, format }) => scan(file, format, &config.log_settings),
        Some(Command::Replay { trace, target }) => {
            replay(trace, target.as_deref(), &config.analysis)
        }
        Some(Command::Report {
            duration,
            json,
            command,
        }) => {
            if command.is_empty() && cli.flags.pid.is_none() && config.targets.is_empty() {
                eprintln!(
                    "outrider: report needs --pid PID, a target in the config, or -- CMD ARGS..."
                );
                return ExitCode::from(EX_USAGE);
            }
            if let Some(code) = missing_pid(cli.flags.pid, &config.proc_root) {
                return code;
            }
            match report_duration(duration) {
                Ok(d) => report(config, mode, d, *json),
                Err(code) => code,
            }
        }
        Some(Command::CheckConfig) => check_config(&raw),
        _ => {
            if matches!(cli.command, Some(Command::Demo)) {
                demo_banner(&config);
            }
            serve(config, mode)
        }
    }
}

/// The configuration from the file, the environment and the flags; every problem
/// printed and exit 64 otherwise.
fn load_config(
    cli: &Cli,
    overrides: &Overrides,
) -> Result<(config::RawConfig, config::Config), ExitCode> {
    let (env, env_errors) = env_for(cli);
    let loaded = config::load(cli.flags.config.as_deref(), env, overrides);
    let errors = match (loaded, env_errors.is_empty()) {
        (Ok(c), true) => return Ok(c),
        (Ok(_), false) => env_errors,
        (Err(e), _) => env_errors.into_iter().chain(e.0).collect(),
    };
    eprintln!(
        "outrider: the configuration has {}:",
        outrider::words::count(errors.len() as u64, "problem")
    );
    for e in &errors {
        eprintln!("  {e}");
    }
    Err(ExitCode::from(EX_USAGE))
}

/// How the app is found: the demo's built-in app, a command to wrap, or /proc.
fn mode_for(cli: &Cli) -> Result<Mode, ExitCode> {
    Ok(match &cli.command {
        Some(Command::Demo) => {
            let exe = match std::env::current_exe() {
                Ok(e) => e.to_string_lossy().into_owned(),
                Err(e) => {
                    eprintln!("outrider: cannot find my own executable: {e}");
                    return Err(ExitCode::FAILURE);
                }
            };
            let mut argv = vec![exe];
            argv.extend(DemoAppArgs::demo_defaults());
            Mode::Wrap(WrapSpec {
                argv,
                name: Some("demo-app".into()),
                stdout_to_stderr: false,
            })
        }
        Some(Command::Report { command, .. }) if !command.is_empty() => Mode::Wrap(WrapSpec {
            argv: command.clone(),
            name: None,
            stdout_to_stderr: true,
        }),
        _ if !cli.wrap.is_empty() => Mode::Wrap(WrapSpec {
            argv: cli.wrap.clone(),
            name: None,
            stdout_to_stderr: false,
        }),
        _ => Mode::Sidecar,
    })
}

/// The environment the configuration reads. The demo shows every verdict within
/// minutes: short windows, and an allocation for the app to be judged against (the
/// user's own settings win). Read with `vars_os`: a variable that is not UTF-8 is
/// skipped, or an error when it is one of ours (second half).
fn env_for(cli: &Cli) -> (Vec<(String, String)>, Vec<String>) {
    let (mut env, errors) = config::env_vars(std::env::vars_os());
    if matches!(cli.command, Some(Command::Demo)) {
        for (k, v) in [
            ("OUTRIDER_ANALYSIS__LEAK_WINDOW", "4m"),
            ("OUTRIDER_ANALYSIS__SIZING_MIN_DATA", "1m"),
            ("OUTRIDER_RESOURCES__CPU_REQUEST", "500m"),
            ("OUTRIDER_RESOURCES__MEMORY_REQUEST", "256Mi"),
            ("OUTRIDER_RESOURCES__MEMORY_LIMIT", "512Mi"),
            ("OUTRIDER_SAMPLING__PSS_INTERVAL", "10s"),
        ] {
            if !env.iter().any(|(name, _)| name == k) {
                env.push((k.into(), v.into()));
            }
        }
    }
    (env, errors)
}

/// `--for`: a duration above zero.
fn report_duration(text: &str) -> Result<std::time::Duration, ExitCode> {
    match outrider::units::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => {
            eprintln!("outrider: --for must be above zero");
            Err(ExitCode::from(EX_USAGE))
        }
        Err(e) => {
            eprintln!("outrider: --for: {e}");
            Err(ExitCode::from(EX_USAGE))
        }
    }
}

/// `outrider check-config`: the effective configuration as TOML.
fn check_config(raw: &config::RawConfig) -> ExitCode {
    match toml::to_string_pretty(raw) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("outrider: cannot print the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo_banner(config: &config::Config) {
    let shown = match config.listen.ip().is_unspecified() {
        true => format!("127.0.0.1:{}", config.listen.port()),
        false => config.listen.to_string(),
    };
    eprintln!(
        "Outrider demo: watching a built-in app with two workers that leaks memory, file descriptors and connections, and logs errors.\n  http://{shown}/             the status page (open it in a browser)\n  curl http://{shown}/summary.txt   the same in plain text\n  curl http://{shown}/metrics       the Prometheus metrics\nLeak verdicts come after 2 minutes, sizing verdicts after 1, the cost at once (short demo windows); autoscaling and scale-to-zero advice needs 12 hours of data.\nCtrl-C to stop. The app's own output follows.\n"
    );
}

/// Sidecar, wrap and demo: bind, run until the end, exit with the app's code.
fn serve(config: config::Config, mode: Mode) -> ExitCode {
    // A trace file that cannot be written is bad input: say so before binding.
    if let Some(path) = &config.record {
        if let Err(e) = outrider::analysis::trace::Recorder::check(path) {
            eprintln!(
                "outrider: cannot open the trace file {}: {e}",
                path.display()
            );
            return ExitCode::from(EX_USAGE);
        }
    }
    outrider::http::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("outrider: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signal handlers go in before the port is bound: a SIGTERM that arrives once
    // we are listening must stop us cleanly, not kill us.
    let wrapping = matches!(mode, Mode::Wrap(_));
    let result = runtime.block_on(async {
        let signals = outrider::wrap::Forwarder::shutdown_signals();
        // In wrap mode signals are forwarded to the app, whose exit ends the run.
        let shutdown = async move {
            if wrapping {
                std::future::pending::<()>().await
            } else {
                signals.await
            }
        };
        let listener = outrider::bind(config.listen).await?;
        outrider::run(config, mode, listener, shutdown).await
    });
    // `run` drained within the grace; blocking work still running is stuck (a /proc
    // read of a process in D state, a log on a hung volume, stdin): not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code.clamp(0, 255) as u8),
        Err(e) => {
            let e = anyhow::Error::from(e);
            tracing::error!(error = format!("{e:#}"), "outrider stopped");
            eprintln!("outrider: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `outrider scan FILE|-`: the live pipeline over one input, counts as JSON.
fn scan(file: &str, format: &str, settings: &outrider::logs::LogSettings) -> ExitCode {
    use outrider::logs::framing::LogFormat;
    use outrider::logs::scan::scan_with;
    let format = match format {
        "auto" => LogFormat::Auto,
        "cri" => LogFormat::Cri,
        "docker" => LogFormat::Docker,
        "plain" => LogFormat::Plain,
        other => {
            eprintln!("outrider: --format {other:?} is not one of auto, cri, docker, plain");
            return ExitCode::from(EX_USAGE);
        }
    };
    let result = if file == "-" {
        scan_with(
            std::io::stdin().lock(),
            &settings.classifier,
            format,
            settings.max_line_bytes,
        )
    } else {
        match std::fs::File::open(file) {
            Ok(f) => scan_with(f, &settings.classifier, format, settings.max_line_bytes),
            Err(e) => {
                eprintln!("outrider: cannot read {file}: {e}");
                return ExitCode::from(66); // EX_NOINPUT
            }
        }
    };
    match result.map(|c| serde_json::to_string(&c)) {
        Ok(Ok(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("outrider: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("outrider: reading {file}: {e}");
            ExitCode::from(74) // EX_IOERR
        }
    }
}

/// A report's `--pid` that is not there now will not be: said at once (exit 2),
/// not after the whole report's duration.
fn missing_pid(pid: Option<i32>, proc_root: &std::path::Path) -> Option<ExitCode> {
    let pid = pid?;
    if proc_root.join(pid.to_string()).exists() {
        return None;
    }
    eprintln!(
        "outrider: no process {pid} (nothing in {}/{pid}): nothing to report on",
        proc_root.display()
    );
    Some(ExitCode::from(2))
}

/// `outrider report`: 0 fine, 1 attention, 2 error.
fn report(
    config: config::Config,
    mode: Mode,
    duration: std::time::Duration,
    json: bool,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("outrider: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(outrider::report::report(config, mode, duration));
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("outrider: {e:#}");
            return ExitCode::from(2);
        }
    };
    if json {
        match serde_json::to_string_pretty(&r) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("outrider: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", outrider::report::render(&r));
    }
    if r.targets.is_empty() {
        eprintln!("outrider: no target was seen: nothing was judged");
        ExitCode::from(2)
    } else if r.attention.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `outrider replay`: the live analysis over a trace, one JSON object on stdout.
fn replay(
    path: &std::path::Path,
    target: Option<&str>,
    cfg: &outrider::analysis::AnalysisConfig,
) -> ExitCode {
    use outrider::analysis::trace;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("outrider: cannot read {}: {e}", path.display());
            return ExitCode::from(66); // EX_NOINPUT
        }
    };
    let observations = match trace::read(std::io::BufReader::new(file), target) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("outrider: {}: {e}", path.display());
            return ExitCode::from(65); // EX_DATAERR
        }
    };
    let summary = trace::replay(&observations, cfg);
    match serde_json::to_string(&summary) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("outrider: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One JSON event per line on stderr; readable text when stderr is a terminal.
/// The level comes from `OUTRIDER_LOG` (default `info`).
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OUTRIDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.compact().init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}
