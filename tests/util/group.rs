//! Children that leave nothing behind. Each is started as the leader of a process
//! group of its own, so a wrapped app, its workers and their children (all of which
//! inherit the group) can be stopped together: on drop, also when a test panics,
//! the leader gets SIGTERM (Outrider forwards it to a wrapped app), a short grace,
//! then the whole group gets SIGKILL.
//!
//! The leader is waited for with `WNOWAIT` and reaped only after the group was
//! killed: while it is an unreaped zombie its pid, the group's id, cannot be handed
//! to another process, so the SIGKILL cannot reach anything but our own group.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// What a leader gets after SIGTERM before its group is killed: Outrider's shutdown
/// grace is 1 s, and a wrapped app gets the signal first.
pub const GRACE: Duration = Duration::from_secs(3);

/// A child leading its own process group; dropping it stops the whole group.
pub struct Group {
    child: Child,
    status: Option<ExitStatus>,
}

impl Group {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        let child = cmd.process_group(0).spawn()?;
        Ok(Group {
            child,
            status: None,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The child, for its pipes.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig` to the leader alone.
    pub fn signal(&self, sig: Signal) {
        if self.status.is_none() {
            kill(Pid::from_raw(self.pid()), sig)
                .unwrap_or_else(|e| panic!("kill -{sig} {}: {e}", self.pid()));
        }
    }

    /// Whether the leader has exited within `timeout` (left unreaped).
    pub fn exited_within(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        loop {
            if !matches!(self.peek(flags), WaitStatus::StillAlive) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the leader to exit by itself, kills what is left of its group and
    /// returns the leader's exit status.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        self.peek(WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
        // Whatever the leader left in its group (a wrapped app, workers) goes too.
        match killpg(Pid::from_raw(self.pid()), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => panic!("kill -KILL -{}: {e}", self.pid()),
        }
        let status = self.child.wait().expect("reap the group's leader");
        self.status = Some(status);
        status
    }

    /// SIGTERM to the leader, up to `grace` for it to exit, then SIGKILL to the
    /// whole group; returns the leader's exit status.
    pub fn stop(&mut self, grace: Duration) -> ExitStatus {
        if self.status.is_none() {
            self.signal(Signal::SIGTERM);
            if !self.exited_within(grace) {
                let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
            }
        }
        self.wait()
    }

    /// `waitid` on the leader, retried on EINTR.
    fn peek(&self, flags: WaitPidFlag) -> WaitStatus {
        loop {
            match waitid(Id::Pid(Pid::from_raw(self.pid())), flags) {
                Err(Errno::EINTR) => continue,
                Ok(status) => return status,
                Err(e) => panic!("waitid {}: {e}", self.pid()),
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop(GRACE);
    }
}

/// Like `Command::output`, with the child leading a process group of its own that is
/// killed, stragglers and all, once the child has exited.
pub fn output(cmd: &mut Command) -> Output {
    let mut group = Group::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("spawn");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                p.read_to_end(&mut buf).expect("read the child's output");
            }
            buf
        })
    };
    let stdout = drain(group.child().stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(group.child().stderr.take().map(|p| Box::new(p) as _));
    let status = group.wait();
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
