//! The alert spool on a full filesystem: a 64 KiB tmpfs the test mounts (root only;
//! skipped with the reason elsewhere, required when `OUTRIDER_REQUIRE_CGROUPS=1`, as
//! in CI). What fit is delivered after a restart, what did not is kept in memory and
//! delivered once the receiver answers, the failure is logged once per episode and
//! its end once, and nothing crashes.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use util::receivers::{free_port, TestServer};
use util::Outrider;

/// A tmpfs mounted with `options` on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None`, with the reason printed, where the machine does not allow it; with
    /// `OUTRIDER_REQUIRE_CGROUPS=1` (CI runs as root) that fails the test instead.
    fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let why = if !util::is_root() {
            "not root".to_string()
        } else {
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "tmpfs"])
                .arg(dir.path())
                .output()
                .unwrap();
            if out.status.success() {
                return Some(Tmpfs { dir });
            }
            format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        };
        let required = std::env::var("OUTRIDER_REQUIRE_CGROUPS").as_deref() == Ok("1");
        assert!(!required, "OUTRIDER_REQUIRE_CGROUPS=1 but {why}");
        eprintln!("skipped: {why}; this test mounts a small tmpfs, which needs root");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(self.dir.path()).status();
        if !ok.is_ok_and(|s| s.success()) {
            // Still busy (a process of a failed test): detach it, never leave it.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The spooled notifications' files (`*.json`) and temp files (`.*.tmp`) in `dir`.
fn spool_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let is = |p: &PathBuf, ext: &str| p.extension().is_some_and(|x| x == ext);
    let json = all.iter().filter(|p| is(p, "json")).cloned().collect();
    let tmp = all.iter().filter(|p| is(p, "tmp")).cloned().collect();
    (json, tmp)
}

/// The idempotency keys of the notifications spooled in `dir`.
fn spooled_keys(dir: &Path) -> BTreeSet<String> {
    spool_files(dir)
        .0
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["idempotency_key"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Outrider's log lines whose message starts with `start`.
fn logged(o: &Outrider, start: &str) -> Vec<serde_json::Value> {
    o.stderr
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"].as_str().is_some_and(|m| m.starts_with(start)))
        .collect()
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const CANNOT_SPOOL: &str = "cannot spool a notification";
const SPOOLING_AGAIN: &str = "the alert spool is written again";
const CANNOT_OPEN: &str = "cannot open the alert spool";

/// A pid file naming a process that is gone: TargetDown fires on the first tick.
fn dead_pid_file(path: &Path) {
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(path, format!("{}\n", gone.id())).unwrap();
}

/// An Alertmanager receiver re-sent to every second (a new notification each time)
/// while TargetDown fires; the receiver is down (nothing listens on `port`).
fn start(pid_file: &Path, spool: &Path, port: u16) -> Outrider {
    let toml = format!(
        "[sampling]\ninterval = \"200ms\"\n[[targets]]\nname = \"app\"\npid_file = {:?}\n\
         [alerts]\nspool_dir = {:?}\n{}\
         [[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{port}/\"\n\
         resend_interval = \"1s\"\ntimeout = \"1s\"\n",
        pid_file.display().to_string(),
        spool.display().to_string(),
        util::only_rule("TargetDown", "0s"),
    );
    Outrider::with_config(&toml, &[], &[])
}

fn queued(o: &Outrider) -> f64 {
    o.metric("outrider_notification_queue", &[("receiver", "am")])
        .unwrap_or(0.0)
}

/// The fault: the spool's volume fills while the receiver is down.
#[test]
fn a_full_spool_volume_loses_nothing_that_fit_and_says_so_once() {
    let Some(fs) = Tmpfs::mount("size=64k") else {
        return;
    };
    // Fill it but for three pages: a few notifications fit, the rest do not.
    let filler = vec![b'x'; 52 * 1024];
    std::fs::write(fs.path().join("filler"), &filler).unwrap();
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("app.pid");
    dead_pid_file(&pid_file);
    let port = free_port();
    let spooled = fs.path().join("receiver-am");

    // 1. The receiver is down; notifications pile up past what the volume holds.
    let mut first = start(&pid_file, fs.path(), port);
    wait_for("the spool failing", 30, || {
        !logged(&first, CANNOT_SPOOL).is_empty()
    });
    let fit = spool_files(&spooled).0.len();
    wait_for("three notifications more than fit", 30, || {
        queued(&first) >= (fit + 3) as f64
    });
    let errors = logged(&first, CANNOT_SPOOL);
    assert_eq!(errors.len(), 1, "logged once for the episode: {errors:#?}");
    assert_eq!(errors[0]["level"], "ERROR", "{:?}", errors[0]);
    let error = errors[0]["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    let unspooled = notifications(&first, "unspooled").unwrap();
    assert!(unspooled >= 3.0, "each failed write counted: {unspooled}");
    assert!(first.terminate().success(), "a full volume is no crash");

    let (files, temps) = spool_files(&spooled);
    assert!(!files.is_empty(), "some notifications fit");
    assert!(temps.is_empty(), "no half-written temp file: {temps:?}");
    let kept = spooled_keys(&spooled);

    // 2. Restarted, the receiver still down: the spool is read back, new
    //    notifications do not fit (a new episode, logged once again).
    dead_pid_file(&pid_file);
    let second = start(&pid_file, fs.path(), port);
    wait_for("the spool failing again", 30, || {
        !logged(&second, CANNOT_SPOOL).is_empty()
    });
    wait_for("three notifications more than were spooled", 30, || {
        queued(&second) >= (kept.len() + 3) as f64
    });
    let in_memory = queued(&second) as usize - kept.len();

    // 3. The receiver comes back: what fit before the restart and what was kept in
    //    memory since are delivered (each key is `am-<unix ms>` of its tick); the
    //    freed room is written again.
    let back_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let server = TestServer::start_on(port, |_| (200, vec![]));
    let keys = |s: &[util::receivers::Seen]| -> BTreeSet<String> {
        s.iter()
            .filter_map(|r| r.headers.get("idempotency-key").cloned())
            .collect()
    };
    let older = |keys: &BTreeSet<String>| {
        let ms = |k: &String| k.strip_prefix("am-").and_then(|m| m.parse::<u64>().ok());
        keys.iter()
            .filter(|k| ms(k).is_some_and(|m| m < back_ms))
            .count()
    };
    server.wait("the spooled and the in-memory notifications", 60, |s| {
        let seen = keys(s);
        kept.is_subset(&seen) && older(&seen) >= kept.len() + in_memory
    });
    wait_for("spooling again", 30, || {
        !logged(&second, SPOOLING_AGAIN).is_empty()
    });
    let again = logged(&second, SPOOLING_AGAIN);
    assert_eq!(again.len(), 1, "{again:#?}");
    let failed_writes = again[0]["failed_writes"].as_u64().unwrap();
    assert!(failed_writes >= 3, "{again:?}");
    let unspooled = notifications(&second, "unspooled").unwrap();
    assert!(
        unspooled >= failed_writes as f64,
        "{unspooled} < {failed_writes}"
    );
    assert_eq!(logged(&second, CANNOT_SPOOL).len(), 1);
    let sent = notifications(&second, "sent").unwrap();
    assert!(sent >= (kept.len() + in_memory) as f64, "sent {sent}");
    assert_eq!(notifications(&second, "dropped"), Some(0.0));
}

/// A spool on a read-only volume cannot be opened at start: every notification is
/// kept in memory and counted as unspooled, the failure logged once, and what was
/// kept is delivered once the receiver answers.
#[test]
fn a_spool_that_cannot_be_opened_counts_every_notification_as_unspooled() {
    let Some(fs) = Tmpfs::mount("size=64k,ro") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("app.pid");
    dead_pid_file(&pid_file);
    let port = free_port();
    let mut o = start(&pid_file, fs.path(), port);
    wait_for("three notifications queued", 30, || queued(&o) >= 3.0);
    let unspooled = notifications(&o, "unspooled").unwrap();
    assert!(unspooled >= 3.0, "each notification counted: {unspooled}");
    let errors = logged(&o, CANNOT_OPEN);
    assert_eq!(errors.len(), 1, "logged once: {errors:#?}");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(error.contains("Read-only file system"), "{error}");
    let server = TestServer::start_on(port, |_| (200, vec![]));
    server.wait("the notifications kept in memory", 60, |s| s.len() >= 3);
    assert!(o.terminate().success());
}

/// `outrider_notifications_total` of the receiver `am` with `result`.
fn notifications(o: &Outrider, result: &str) -> Option<f64> {
    o.metric(
        "outrider_notifications_total",
        &[("receiver", "am"), ("result", result)],
    )
}
