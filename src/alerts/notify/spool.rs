//! The spool: each receiver's undelivered notifications as files under
//! `<alerts.spool_dir>/receiver-<name>/`, so they survive a restart of Outrider.
//!
//! A notification is written when it enters the queue (to a temp file, then renamed:
//! a crash never leaves half a file under a real name) and removed once delivered or
//! refused. At start the files are read back, oldest first, into the queue. The spool
//! holds no more than the queue does (`queue_capacity`): older files beyond that are
//! removed and counted as dropped. A file that cannot be read or parsed is logged and
//! removed, never fatal, and so is a temp file left by a crash or a failed write.
//! A write that fails (a full or read-only volume) leaves the notification in memory
//! only: it is still delivered when the receiver answers, but lost if Outrider
//! restarts first. The first failure is logged (an error), later ones are only
//! counted until a write succeeds again, which is logged with their number: a full
//! disk gives two lines, not one per notification; every failed write is counted
//! (`outrider_notifications_total{result="unspooled"}`). Writes (with their fsync) and removals go to a thread of the
//! spool's own, in order, through a bounded queue: the runtime is single-threaded,
//! and an fsync on a slow volume must not hold up the tick, the scrapes or the log
//! pumps. The thread holds a token (`run` gives a clone of its drain's sender, see
//! [`Spool::holding`]) until everything asked of it is done, so the shutdown waits
//! for the disk within its grace and never longer: dropping the spool on a runtime
//! thread does not join the thread (a hung volume would hang the shutdown); off a
//! runtime it does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Message;

/// A spool file larger than this is not one Outrider wrote.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Writes and removals that may wait for the thread; past it a write fails (the
/// notification is kept in memory only) and a removal is left for the next start.
const QUEUED_OPS: usize = 1024;

#[derive(Serialize, Deserialize)]
struct SpoolFile {
    idempotency_key: String,
    body: String,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    seq: u64,
    /// `None` if the thread could not be started: then the calls block.
    writer: Option<Writer>,
    /// Notifications that could not be written (here or on the thread): kept in
    /// memory only, lost if Outrider restarts before they are delivered.
    failures: Arc<AtomicU64>,
}

/// What the writer thread does, in the order asked.
enum Op {
    Write {
        tmp: PathBuf,
        path: PathBuf,
        bytes: Vec<u8>,
    },
    Remove(PathBuf),
    /// Kept until the thread ends.
    Hold(Box<dyn Send>),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Write { path, .. } => write!(f, "Write({})", path.display()),
            Op::Remove(path) => write!(f, "Remove({})", path.display()),
            Op::Hold(_) => write!(f, "Hold"),
        }
    }
}

#[derive(Debug)]
struct Writer {
    tx: Option<std::sync::mpsc::SyncSender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// The thread for the spool at `dir` (named in its log lines).
    fn start(dir: PathBuf, failures: Arc<AtomicU64>) -> Option<Writer> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Op>(QUEUED_OPS);
        let thread = std::thread::Builder::new()
            .name("outrider-spool".into())
            .spawn(move || {
                let mut held = Vec::new();
                let mut failing = Failing::new(dir, failures);
                for op in rx {
                    run(op, &mut held, &mut failing);
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "no spool thread: spool writes will block"))
            .ok()?;
        Some(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands `op` to the thread without waiting; gives it back if the thread is gone
    /// (`Ok(false)`: the queue is full, `op` dropped).
    fn send(&self, op: Op) -> Result<bool, Op> {
        use std::sync::mpsc::TrySendError;
        match &self.tx {
            Some(tx) => match tx.try_send(op) {
                Ok(()) => Ok(true),
                Err(TrySendError::Full(_)) => Ok(false),
                Err(TrySendError::Disconnected(op)) => Err(op),
            },
            None => Err(op),
        }
    }
}

impl Drop for Writer {
    /// Closes the queue; the thread finishes what is in it. Waits for it only off a
    /// tokio runtime: on one, its token tells the drain instead.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = t.join();
            }
        }
    }
}

/// Does `op`; a token is kept in `held` until the thread ends.
fn run(op: Op, held: &mut Vec<Box<dyn Send>>, failing: &mut Failing) {
    match op {
        Op::Hold(token) => held.push(token),
        Op::Write { tmp, path, bytes } => match write_atomically(&tmp, &path, &bytes) {
            Ok(()) => failing.succeeded(),
            Err(e) => failing.failed(&e),
        },
        Op::Remove(path) => remove(&path),
    }
}

/// An episode of failing writes (a full or read-only volume): its first failure is
/// logged, the others counted and told when a write succeeds again, so a full disk
/// costs two log lines, not one per notification.
#[derive(Debug)]
struct Failing {
    dir: PathBuf,
    /// Writes failed since the last that succeeded.
    writes: u64,
    /// Every failed write, for the receiver's `unspooled` count.
    failures: Arc<AtomicU64>,
}

impl Failing {
    fn new(dir: PathBuf, failures: Arc<AtomicU64>) -> Self {
        Failing {
            dir,
            writes: 0,
            failures,
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.writes == 0 {
            tracing::error!(
                dir = %self.dir.display(),
                error = %e,
                until = "a write succeeds: later failures are counted, not logged",
                "cannot spool a notification; it is kept in memory only (delivered if the receiver answers, lost if Outrider restarts first)"
            );
        }
        self.writes += 1;
    }

    fn succeeded(&mut self) {
        if self.writes > 0 {
            tracing::info!(dir = %self.dir.display(), failed_writes = self.writes, "the alert spool is written again");
            self.writes = 0;
        }
    }
}

/// Temp file, fsync, rename; on failure the temp file is removed (on a full volume
/// a half-written one would keep its blocks).
fn write_atomically(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let written = std::fs::File::create(tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    });
    if written.is_err() {
        remove(tmp);
    }
    written
}

impl Spool {
    /// The receiver's directory, created if missing.
    pub fn open(base: &Path, receiver: &str) -> std::io::Result<Spool> {
        // The prefix keeps a receiver named ".." inside the spool.
        let dir = base.join(format!("receiver-{receiver}"));
        std::fs::create_dir_all(&dir)?;
        let failures = Arc::new(AtomicU64::new(0));
        Ok(Spool {
            writer: Writer::start(dir.clone(), failures.clone()),
            dir,
            seq: 0,
            failures,
        })
    }

    /// The count of notifications that could not be written, shared with the
    /// writer thread.
    pub fn failures(&self) -> Arc<AtomicU64> {
        self.failures.clone()
    }

    /// Gives the writer thread `token` to drop once everything asked of it is
    /// done (at once when there is no thread).
    pub fn holding<T: Send + 'static>(self, token: T) -> Spool {
        if let Some(w) = &self.writer {
            let _ = w.send(Op::Hold(Box::new(token)));
        }
        self
    }

    /// The spooled notifications, oldest first, at most `capacity` (the newest);
    /// the older rest (and the unreadable, and temp files) are removed. Returns them with their files,
    /// and how many were dropped for room.
    pub fn load(&mut self, capacity: usize) -> (Vec<(Message, PathBuf)>, u64) {
        let (mut files, temps): (Vec<PathBuf>, Vec<PathBuf>) = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "tmp"))
                .partition(|p| p.extension().is_some_and(|x| x == "json")),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the alert spool");
                return (Vec::new(), 0);
            }
        };
        // Left by a crash mid-write: no notification, only blocks a full volume needs.
        temps.iter().for_each(|p| remove(p));
        // Names are <unix ms>-<seq>, zero-padded: name order is age order.
        files.sort();
        let mut out = Vec::new();
        for path in files {
            if let Some(seq) = seq_of(&path) {
                self.seq = self.seq.max(seq + 1);
            }
            match read(&path) {
                Ok(m) => out.push((m, path)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable alert spool file skipped and removed");
                    remove(&path);
                }
            }
        }
        // The oldest go: the newest say what is true now (a later resolved, an
        // Alertmanager's latest body).
        let surplus = out.len().saturating_sub(capacity);
        for (_, path) in out.drain(..surplus) {
            tracing::warn!(file = %path.display(), capacity, "alert spool holds more than the queue: its oldest notification dropped");
            remove(&path);
        }
        (out, surplus as u64)
    }

    /// Writes `m` to a new file (temp file, fsync, rename; on the spool's thread) and
    /// returns its path.
    pub fn write(&mut self, m: &Message) -> std::io::Result<PathBuf> {
        let written = self.try_write(m);
        if written.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    fn try_write(&mut self, m: &Message) -> std::io::Result<PathBuf> {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{ms:013}-{:010}.json", self.seq);
        self.seq += 1;
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = SpoolFile {
            idempotency_key: m.idempotency_key.clone(),
            body: String::from_utf8_lossy(&m.body).into_owned(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        let op = Op::Write {
            tmp,
            path: path.clone(),
            bytes,
        };
        let unsent = match &self.writer {
            Some(w) => match w.send(op) {
                Ok(true) => None,
                Ok(false) => {
                    return Err(std::io::Error::other(
                        "the spool's writer is behind (a slow or hung volume)",
                    ))
                }
                Err(op) => Some(op),
            },
            None => Some(op),
        };
        // No thread: write here (this blocks, but only when it could not start).
        if let Some(Op::Write { tmp, path, bytes }) = unsent {
            write_atomically(&tmp, &path, &bytes)?;
        }
        Ok(path)
    }

    /// Removes a delivered (or given up) notification's file, on the spool's thread
    /// (after its write).
    pub fn remove(&self, path: &Path) {
        match self
            .writer
            .as_ref()
            .map(|w| w.send(Op::Remove(path.to_path_buf())))
        {
            Some(Ok(true)) => {}
            Some(Ok(false)) => {
                tracing::warn!(file = %path.display(), "the spool's writer is behind: the file stays until the next start")
            }
            Some(Err(_)) | None => remove(path),
        }
    }
}

fn seq_of(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.split_once('-')?.1.parse().ok()
}

fn read(path: &Path) -> Result<Message, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_FILE_BYTES {
        return Err(format!("{len} bytes: too large to be a notification"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let f: SpoolFile = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    serde_json::from_str::<serde_json::Value>(&f.body)
        .map_err(|e| format!("the body is not JSON: {e}"))?;
    Ok(Message {
        body: f.body.into_bytes(),
        idempotency_key: f.idempotency_key,
    })
}

/// Removes a delivered (or given up) notification's file; a failure is logged.
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove an alert spool file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u32) -> Message {
        Message {
            body: format!("{{\"n\":{n}}}").into_bytes(),
            idempotency_key: format!("k{n}"),
        }
    }

    #[test]
    fn written_files_come_back_in_order_and_corrupt_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "hook").unwrap();
        let paths: Vec<PathBuf> = (0..4).map(|n| s.write(&message(n)).unwrap()).collect();
        s.remove(&paths[1]);
        // Dropping the spool waits for its thread: everything asked is done.
        drop(s);
        assert!(paths[0].exists() && !paths[1].exists());
        let rdir = dir.path().join("receiver-hook");
        std::fs::write(rdir.join("0000000000001-0000000000.json"), b"{not json").unwrap();
        std::fs::write(rdir.join("0000000000002-0000000001.json"), [0xff, 0xfe]).unwrap();
        // A temp file left by a crash mid-write is not a notification.
        std::fs::write(rdir.join(".x.json.tmp"), b"{}").unwrap();

        let mut again = Spool::open(dir.path(), "hook").unwrap();
        let (loaded, dropped) = again.load(2);
        let keys: Vec<&str> = loaded
            .iter()
            .map(|(m, _)| m.idempotency_key.as_str())
            .collect();
        assert_eq!(keys, ["k2", "k3"]);
        assert_eq!(loaded[0].0.body, message(2).body);
        assert_eq!(dropped, 1, "k0, the oldest, did not fit");
        let left: Vec<_> = std::fs::read_dir(&rdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert_eq!(left.len(), 2, "corrupt and surplus files removed: {left:?}");
        assert!(!rdir.join(".x.json.tmp").exists(), "the temp file removed");
        // New files sort after the loaded ones.
        let next = again.write(&message(9)).unwrap();
        assert!(next > loaded[1].1);
    }

    /// A write that fails on the thread (the directory gone, as on a volume
    /// unmounted under it) is counted, and one that succeeds after it is not.
    #[test]
    fn failed_writes_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), "hook").unwrap();
        let failures = s.failures();
        let rdir = dir.path().join("receiver-hook");
        std::fs::remove_dir(&rdir).unwrap();
        for n in 0..3 {
            s.write(&message(n)).unwrap(); // handed to the thread
        }
        drop(s); // waits for the thread
        assert_eq!(failures.load(Ordering::Relaxed), 3);
        let mut again = Spool::open(dir.path(), "hook").unwrap();
        let path = again.write(&message(3)).unwrap();
        drop(again);
        assert!(path.exists());
        assert_eq!(failures.load(Ordering::Relaxed), 3, "another spool's count");
    }

    /// On a runtime the drop does not wait for the thread (a hung volume would
    /// hang the runtime); the token the thread holds tells when all is on disk.
    #[tokio::test]
    async fn on_a_runtime_the_token_not_the_drop_waits_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (token, mut finished) = tokio::sync::mpsc::channel::<()>(1);
        let mut s = Spool::open(dir.path(), "hook").unwrap().holding(token);
        let paths: Vec<PathBuf> = (0..50).map(|n| s.write(&message(n)).unwrap()).collect();
        drop(s);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), finished.recv());
        assert_eq!(waited.await, Ok(None), "the thread dropped its token");
        assert!(paths.iter().all(|p| p.exists()), "every write done by then");
    }
}
