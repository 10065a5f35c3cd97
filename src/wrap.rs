//! Wrap mode: run the app as a child, pass its output through, forward signals, and
//! end with its exit code.
//!
//! The child keeps Outrider's process group, so an interactive Ctrl-C reaches it
//! straight from the terminal; for that reason SIGINT is forwarded only when
//! Outrider's stdin is not a terminal (else the child would get it twice). Every
//! other forwarded signal (TERM, HUP, QUIT, USR1, USR2, WINCH) is always passed on.
//!
//! The app never outlives Outrider: it is started with the kernel's parent-death
//! signal set to SIGTERM (`prctl(PR_SET_PDEATHSIG)`), so however Outrider dies —
//! SIGKILL, the OOM killer, a crash — the kernel sends the app SIGTERM at once.
//! SIGTERM rather than SIGKILL: it is what Outrider itself passes on when told to
//! stop, and what Kubernetes, systemd and docker send first, so the app shuts down
//! the way it always does (finishing requests, flushing); its output pipes have no
//! reader any more either way. An app that ignores SIGTERM can still outlive us,
//! as it would outlive `kill`. The kernel sends the signal when the *thread* that
//! started the app ends: that is the runtime's thread, which lives for the whole
//! run. A set-user-ID or file-capability program loses the setting at exec.
//!
//! Shutdown is timed (disposability): from the first SIGTERM the app gets (passed
//! on, or sent when a report's time is up) to its exit. An app still running
//! `kill_after` later is killed with SIGKILL, as Kubernetes would at the end of its
//! grace period; [`Shutdown`] says which it was.

use std::io::IsTerminal;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::signal::unix::{signal, SignalKind};

/// A started child with its output pipes.
#[derive(Debug)]
pub struct Wrapped {
    pub child: Child,
    pub pid: i32,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Starts `argv` with stdin inherited and stdout/stderr piped to us.
pub fn spawn(argv: &[String]) -> std::io::Result<Wrapped> {
    let (program, args) = argv.split_first().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command to run")
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id().map(|p| p as i32).unwrap_or(0);
    let stdout = child.stdout.take().expect("stdout was piped");
    let stderr = child.stderr.take().expect("stderr was piped");
    Ok(Wrapped {
        child,
        pid,
        stdout,
        stderr,
    })
}

/// Sets the child's parent-death signal to SIGTERM between fork and exec (see the
/// module doc). If Outrider died before that (the child's parent is then no longer
/// Outrider), the child exits before running the app.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: `pre_exec` runs the closure in the forked child before exec, where only
    // async-signal-safe calls are allowed. It makes two system calls, prctl(2) and
    // getppid(2), and builds an io::Error from an errno code: nothing allocates,
    // takes a lock or touches state shared with the parent's other threads.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// How the app ended after it was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitedBy {
    /// It exited by itself after SIGTERM.
    Exit,
    /// It was still running `kill_after` later and was killed.
    Kill,
}

impl ExitedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitedBy::Exit => "exit",
            ExitedBy::Kill => "kill",
        }
    }
}

/// A timed shutdown: from the first SIGTERM to the app's exit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shutdown {
    pub seconds: f64,
    pub exited_by: ExitedBy,
}

/// The app's end: its status, and the shutdown when it was told to stop.
#[derive(Debug)]
pub struct Ended {
    pub status: ExitStatus,
    pub shutdown: Option<Shutdown>,
}

/// Signal handlers for forwarding, installed before the child starts so that no
/// signal arriving in between is lost (tokio keeps a signal that arrives before the
/// first `recv`).
#[derive(Debug)]
pub struct Forwarder {
    rx: tokio::sync::mpsc::UnboundedReceiver<Signal>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
    forward_int: bool,
}

impl Forwarder {
    /// Registers for SIGTERM and SIGINT now; the future resolves on either.
    pub fn shutdown_signals() -> impl std::future::Future<Output = ()> {
        let streams = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            let (Ok(mut term), Ok(mut int)) = streams else {
                tracing::error!("cannot listen for signals; stop me with SIGKILL");
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }

    pub fn install() -> std::io::Result<Forwarder> {
        let kinds = [
            (SignalKind::terminate(), Signal::SIGTERM),
            (SignalKind::interrupt(), Signal::SIGINT),
            (SignalKind::hangup(), Signal::SIGHUP),
            (SignalKind::quit(), Signal::SIGQUIT),
            (SignalKind::user_defined1(), Signal::SIGUSR1),
            (SignalKind::user_defined2(), Signal::SIGUSR2),
            (SignalKind::window_change(), Signal::SIGWINCH),
        ];
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut listeners = Vec::new();
        for (kind, sig) in kinds {
            let mut stream = signal(kind)?;
            let tx = tx.clone();
            listeners.push(tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            }));
        }
        Ok(Forwarder {
            rx,
            listeners,
            forward_int: !std::io::stdin().is_terminal(),
        })
    }

    /// Waits for the child, forwarding signals meanwhile; returns its exit status
    /// and, once it had a SIGTERM, how long it took to exit and how (killed with
    /// SIGKILL once `kill_after` has passed). When `stop` resolves (a report's time
    /// is up) the child gets one SIGTERM.
    pub async fn supervise(
        mut self,
        mut child: Child,
        pid: i32,
        stop: impl std::future::Future<Output = ()>,
        kill_after: Duration,
    ) -> std::io::Result<Ended> {
        let mut stop = std::pin::pin!(stop);
        let mut stopped = false;
        let mut termed: Option<Instant> = None;
        let mut killed = false;
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let deadline = tokio::time::sleep_until(far);
        tokio::pin!(deadline);
        let status = loop {
            let sent = tokio::select! {
                status = child.wait() => break status?,
                _ = &mut stop, if !stopped => {
                    stopped = true;
                    tracing::info!(pid, "time is up: stopping the app with SIGTERM");
                    signal_app(pid, Signal::SIGTERM, "could not stop the app")
                }
                Some(sig) = self.rx.recv() => {
                    if sig == Signal::SIGINT && !self.forward_int {
                        continue;
                    }
                    tracing::info!(signal = %sig, pid, "forwarding signal to the app");
                    signal_app(pid, sig, "could not forward signal")
                }
                _ = &mut deadline, if termed.is_some() && !killed => {
                    killed = true;
                    tracing::warn!(pid, ?kill_after, "the app did not exit after SIGTERM: killing it");
                    signal_app(pid, Signal::SIGKILL, "could not kill the app");
                    continue;
                }
            };
            if sent == Some(Signal::SIGTERM) && termed.is_none() {
                termed = Some(Instant::now());
                deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + kill_after);
            }
        };
        for l in self.listeners {
            l.abort();
        }
        let shutdown = termed.map(|at| Shutdown {
            seconds: at.elapsed().as_secs_f64(),
            exited_by: if killed {
                ExitedBy::Kill
            } else {
                ExitedBy::Exit
            },
        });
        Ok(Ended { status, shutdown })
    }
}

/// Sends `sig` to the app; the signal when it was sent, else logs `failed`.
fn signal_app(pid: i32, sig: Signal, failed: &str) -> Option<Signal> {
    match kill(Pid::from_raw(pid), sig) {
        Ok(()) => Some(sig),
        Err(e) => {
            tracing::warn!(signal = %sig, pid, error = %e, "{failed}");
            None
        }
    }
}

/// The shell convention: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// A label-safe name for the wrapped command: its file name.
pub fn target_name(argv: &[String]) -> String {
    let base = argv
        .first()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    crate::sample::target::label_from_comm(&base)
}
