//! The log follower against real files and real rotations: a writer thread writes
//! numbered lines while rotating, and every line must come out exactly once, in order
//! within each followed file.
//!
//! What the writer waits for before a rotation is what the follower needs and no
//! more: that it has seen the current file at all (a file created and rotated away
//! between two looks cannot be followed by anyone), and for copytruncate that it
//! noticed the previous truncation (see each test).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outrider::logs::tail::{FileId, StartAt, TailEvent, TailOptions, TailStats, Tailer};
use tokio::sync::{mpsc, watch};

/// Lines per rotation test.
const N: u64 = 20_000;
/// Rotations per rotation test.
const ROTATIONS: u64 = 40;
/// Time after the last line for a line read twice to show up (several polls).
const SETTLE: Duration = Duration::from_millis(500);
/// Generous: a loaded 2-core machine must never fail these for being slow.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the consumer saw, framed into lines per file.
#[derive(Default)]
struct Seen {
    partial: HashMap<FileId, Vec<u8>>,
    /// Line numbers per file, in arrival order.
    lines: HashMap<FileId, Vec<u64>>,
    numbers: HashSet<u64>,
    duplicates: Vec<u64>,
    /// Files closed, with how many lines they had when `Closed` came.
    closed: HashMap<FileId, usize>,
    /// Events for a file after its `Closed`.
    after_close: usize,
    rotated: usize,
    truncated: usize,
}

impl Seen {
    fn line(&mut self, file: FileId, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let n: u64 = text
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("not one of our lines: {text:?}"));
        if !self.numbers.insert(n) {
            self.duplicates.push(n);
        }
        self.lines.entry(file).or_default().push(n);
    }

    fn event(&mut self, ev: TailEvent) {
        let id = match &ev {
            TailEvent::Data { file, .. }
            | TailEvent::Rotated { file }
            | TailEvent::Truncated { file }
            | TailEvent::Closed { file } => *file,
        };
        if self.closed.contains_key(&id) {
            self.after_close += 1;
        }
        match ev {
            TailEvent::Data { file, bytes } => {
                let mut buf = self.partial.remove(&file).unwrap_or_default();
                buf.extend_from_slice(&bytes);
                let mut start = 0;
                while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                    let line = buf[start..start + nl].to_vec();
                    self.line(file, &line);
                    start += nl + 1;
                }
                buf.drain(..start);
                self.partial.insert(file, buf);
            }
            TailEvent::Rotated { .. } => self.rotated += 1,
            TailEvent::Truncated { file } => {
                self.truncated += 1;
                self.flush(file);
            }
            TailEvent::Closed { file } => {
                self.flush(file);
                let n = self.lines.get(&file).map_or(0, Vec::len);
                self.closed.insert(file, n);
            }
        }
    }

    fn flush(&mut self, file: FileId) {
        if let Some(rest) = self.partial.remove(&file).filter(|r| !r.is_empty()) {
            self.line(file, &rest);
        }
    }

    /// Every number in `want` exactly once, nothing else, ascending within each file.
    fn assert_exactly(&self, want: impl IntoIterator<Item = u64>) {
        assert!(
            self.duplicates.is_empty(),
            "lines read twice: {:?}",
            &self.duplicates[..self.duplicates.len().min(20)]
        );
        let want: HashSet<u64> = want.into_iter().collect();
        let mut missing: Vec<u64> = want.difference(&self.numbers).copied().collect();
        missing.sort_unstable();
        let mut extra: Vec<u64> = self.numbers.difference(&want).copied().collect();
        extra.sort_unstable();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {} (first {:?}), extra {} (first {:?})",
            missing.len(),
            &missing[..missing.len().min(20)],
            extra.len(),
            &extra[..extra.len().min(20)]
        );
        for (file, nums) in &self.lines {
            assert!(
                nums.windows(2).all(|w| w[0] < w[1]),
                "{file}: lines out of order"
            );
        }
        assert_eq!(self.after_close, 0, "events after Closed");
    }
}

/// A follower running on the test's runtime, with a consumer framing its output.
struct Follower {
    seen: Arc<Mutex<Seen>>,
    stats: Arc<TailStats>,
    stop: watch::Sender<bool>,
    run: tokio::task::JoinHandle<()>,
    consumer: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Returns once files that exist now are positioned: anything created later is
    /// read from its first byte.
    async fn start(opts: TailOptions) -> Follower {
        let tailer = Tailer::new(opts).await;
        let stats = tailer.stats();
        // Small, so that a slow consumer pushes back on the follower in these tests.
        let (tx, mut rx) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let run = tokio::spawn(tailer.run(tx, stop_rx));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let consumer = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                s.lock().unwrap().event(ev);
            }
        });
        Follower {
            seen,
            stats,
            stop,
            run,
            consumer,
        }
    }

    /// Waits until `ok` holds (panics after [`PATIENCE`]).
    async fn wait(&self, what: &str, ok: impl Fn(&Seen, &TailStats) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if ok(&self.seen.lock().unwrap(), &self.stats) {
                return;
            }
            if Instant::now() > deadline {
                let s = self.seen.lock().unwrap();
                panic!(
                    "timed out waiting for {what}: {} lines seen, {} duplicates",
                    s.numbers.len(),
                    s.duplicates.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `count` distinct lines, lets a few polls pass so that any line read
    /// twice would show, then stops and returns what was seen.
    async fn finish(self, count: usize, settle: Duration) -> Arc<Mutex<Seen>> {
        self.wait(&format!("{count} lines"), |s, _| s.numbers.len() >= count)
            .await;
        tokio::time::sleep(settle).await;
        self.stop().await
    }

    async fn stop(self) -> Arc<Mutex<Seen>> {
        self.stop.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.run)
            .await
            .expect("follower stops")
            .unwrap();
        // The follower dropped its sender: the consumer drains and ends.
        tokio::time::timeout(PATIENCE, self.consumer)
            .await
            .expect("consumer ends")
            .unwrap();
        self.seen
    }
}

fn opts(pattern: &Path) -> TailOptions {
    TailOptions {
        poll_interval: Duration::from_millis(100),
        release_after: Duration::from_millis(500),
        // Small reads: many Data events, lines split across them.
        read_chunk: 1000,
        ..TailOptions::new(pattern.to_str().unwrap())
    }
}

fn line(n: u64) -> String {
    format!("line {n} {}\n", "x".repeat((n % 40) as usize))
}

/// Blocks the writer until the consumer has seen line `n` (so the file holding it
/// was found).
fn await_line(seen: &Mutex<Seen>, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    while !seen.lock().unwrap().numbers.contains(&n) {
        assert!(Instant::now() < deadline, "follower never saw line {n}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Writes lines `1..=N` with small pauses, calling `rotate` every `N / ROTATIONS`
/// lines with the line number just written and the current file; `rotate` returns
/// the file to write on.
fn write_rotating(
    mut file: File,
    mut rotate: impl FnMut(u64, File) -> File + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for n in 1..=N {
            file.write_all(line(n).as_bytes()).unwrap();
            if n % (N / ROTATIONS) == 0 && n < N {
                file = rotate(n, file);
            }
            if n % 200 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })
}

async fn join(writer: std::thread::JoinHandle<()>) {
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .unwrap()
        .expect("writer thread");
}

#[tokio::test]
async fn rename_and_create_loses_nothing_and_reads_nothing_twice() {
    rename_and_create(|o| o).await;
}

/// The safety net alone (as on NFS, or after an inotify queue overflow).
#[tokio::test]
async fn rename_and_create_by_polling_alone() {
    rename_and_create(|o| TailOptions {
        watch: false,
        poll_interval: Duration::from_millis(20),
        ..o
    })
    .await;
}

async fn rename_and_create(adjust: impl FnOnce(TailOptions) -> TailOptions) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let first = append(&log);
    let f = Follower::start(adjust(opts(&dir.path().join("*.log")))).await;
    let seen = f.seen.clone();
    let path = log.clone();
    let writer = write_rotating(first, move |n, mut old| {
        // The file holding line `n` was found; its tail may still be unread.
        await_line(&seen, n + 1 - N / ROTATIONS);
        // Over the previous `.1`, which may still be open and unread by the
        // follower: it lives on until we let go of it.
        std::fs::rename(&path, path.with_extension("log.1")).unwrap();
        // The app writes to its old file until it reopens: a line numbered past N.
        old.write_all(line(N + n).as_bytes()).unwrap();
        append(&path)
    });
    join(writer).await;
    let late: Vec<u64> = (1..ROTATIONS).map(|k| N + k * (N / ROTATIONS)).collect();
    f.wait("every rotated file let go", |s, _| {
        s.closed.len() == late.len()
    })
    .await;
    let seen = f.finish(N as usize + late.len(), SETTLE).await;
    let s = seen.lock().unwrap();
    s.assert_exactly((1..=N).chain(late.iter().copied()));
    assert_eq!(s.rotated, late.len(), "one Rotated per rename");
}

/// Guaranteed for copytruncate: exactly once when the follower notices each
/// truncation before the next one, and the copy stays in the same directory under a
/// name the glob does not match (here `app.log.K`, as logrotate's `dateext` or
/// numbered copies with `delaycompress`). The writer pauses during copy + truncate, as
/// the part logrotate itself loses (written between its copy and its truncate) is
/// not the follower's to recover.
#[tokio::test]
async fn copytruncate_reads_the_unread_tail_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let first = append(&log);
    let f = Follower::start(opts(&dir.path().join("*.log"))).await;
    let (seen, stats) = (f.seen.clone(), f.stats.clone());
    let path = log.clone();
    let mut k = 0;
    let writer = write_rotating(first, move |n, file| {
        await_line(&seen, n + 1 - N / ROTATIONS);
        let deadline = Instant::now() + PATIENCE;
        while stats.truncations() < k {
            assert!(Instant::now() < deadline, "truncation {k} never noticed");
            std::thread::sleep(Duration::from_millis(1));
        }
        k += 1;
        std::fs::copy(&path, dir_of(&path).join(format!("app.log.{k}"))).unwrap();
        // The writer's handle is O_APPEND: it goes on at the new end, byte 0.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        file
    });
    join(writer).await;
    let seen = f.finish(N as usize, SETTLE).await;
    let s = seen.lock().unwrap();
    s.assert_exactly(1..=N);
    assert_eq!(
        s.truncated,
        (ROTATIONS - 1) as usize,
        "one Truncated per copy"
    );
    assert_eq!(s.rotated, 0);
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap()
}

#[tokio::test]
async fn delete_and_recreate_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let first = append(&log);
    let f = Follower::start(opts(&dir.path().join("*.log"))).await;
    let seen = f.seen.clone();
    let path = log.clone();
    let writer = write_rotating(first, move |n, mut old| {
        await_line(&seen, n + 1 - N / ROTATIONS);
        std::fs::remove_file(&path).unwrap();
        // Written to a deleted file: still the app's output, still read.
        old.write_all(line(N + n).as_bytes()).unwrap();
        append(&path)
    });
    join(writer).await;
    let late: Vec<u64> = (1..ROTATIONS).map(|k| N + k * (N / ROTATIONS)).collect();
    f.wait("every deleted file let go", |s, st| {
        s.closed.len() == late.len() && st.open_files() == 1
    })
    .await;
    let seen = f.finish(N as usize + late.len(), SETTLE).await;
    let s = seen.lock().unwrap();
    s.assert_exactly((1..=N).chain(late.iter().copied()));
    assert_eq!(s.rotated, late.len(), "one Rotated per delete");
}

/// CRI layout: `pods/<ns>_<pod>_<uid>/<container>/N.log`, a new `N.log` per container
/// restart, the kubelet keeping the previous one and deleting older ones. The pod
/// directory appears after the follower started.
#[tokio::test]
async fn kubelet_restarts_new_files_in_a_directory_that_appears_later() {
    let root = tempfile::tempdir().unwrap();
    let pattern = root.path().join("pods/*/app/*.log");
    let f = Follower::start(opts(&pattern)).await;
    let container = root.path().join("pods/default_web-0_1234/app");
    std::fs::create_dir_all(&container).unwrap();
    let seen = f.seen.clone();
    let dir = container.clone();
    let mut restarts = 0;
    let writer = write_rotating(append(&container.join("0.log")), move |n, old| {
        await_line(&seen, n + 1 - N / ROTATIONS);
        drop(old);
        restarts += 1;
        let new = append(&dir.join(format!("{restarts}.log")));
        if restarts >= 2 {
            std::fs::remove_file(dir.join(format!("{}.log", restarts - 2))).unwrap();
        }
        new
    });
    join(writer).await;
    let seen = f.finish(N as usize, SETTLE).await;
    let s = seen.lock().unwrap();
    s.assert_exactly(1..=N);
    assert_eq!(s.lines.len(), ROTATIONS as usize, "one FileId per N.log");
}

#[tokio::test]
async fn a_file_that_does_not_exist_yet_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later/app.log");
    let f = Follower::start(opts(&log)).await;
    std::fs::create_dir_all(dir_of(&log)).unwrap();
    let mut file = append(&log);
    for n in 1..=100 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    let seen = f.finish(100, SETTLE).await;
    seen.lock().unwrap().assert_exactly(1..=100);
}

async fn existing_then_more(start_at: StartAt) -> Arc<Mutex<Seen>> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut file = append(&log);
    for n in 1..=10 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    let f = Follower::start(TailOptions {
        start_at,
        ..opts(&log)
    })
    .await;
    for n in 11..=20 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    let count = if start_at == StartAt::End { 10 } else { 20 };
    f.finish(count, SETTLE).await
}

#[tokio::test]
async fn start_at_end_skips_history_and_beginning_reads_it() {
    existing_then_more(StartAt::End)
        .await
        .lock()
        .unwrap()
        .assert_exactly(11..=20);
    existing_then_more(StartAt::Beginning)
        .await
        .lock()
        .unwrap()
        .assert_exactly(1..=20);
}

/// Stopped mid-line, then lines written, the file rotated (renamed out of the glob) and
/// more lines written to the new file; restarted: exactly the lines written in between.
#[tokio::test]
async fn checkpoint_resumes_exactly_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let checkpoint = state.join("tail.offsets");
    let options = TailOptions {
        checkpoint: Some(checkpoint.clone()),
        ..opts(&dir.path().join("*.log"))
    };
    let mut file = append(&log);
    let write = |file: &mut File, range: std::ops::RangeInclusive<u64>| {
        for n in range {
            file.write_all(line(n).as_bytes()).unwrap();
        }
    };
    write(&mut file, 1..=50);
    // No checkpoint yet: start at the end, as configured.
    let f = Follower::start(options.clone()).await;
    write(&mut file, 51..=100);
    // Stopped in the middle of line 101: the consumer drops the unfinished line, and
    // the checkpoint points at its start, so it comes again whole.
    let line_101 = line(101);
    let (cut_a, cut_b) = line_101.split_at(6);
    file.write_all(cut_a.as_bytes()).unwrap();
    f.wait("half of line 101", |s, _| {
        s.partial.values().any(|p| p.as_slice() == cut_a.as_bytes())
    })
    .await;
    f.finish(50, SETTLE)
        .await
        .lock()
        .unwrap()
        .assert_exactly(51..=100);
    assert!(checkpoint.exists(), "written on stop");

    file.write_all(cut_b.as_bytes()).unwrap();
    write(&mut file, 102..=150);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    let mut file = append(&log);
    write(&mut file, 151..=200);

    let f = Follower::start(options).await;
    let seen = f.finish(100, SETTLE).await;
    seen.lock().unwrap().assert_exactly(101..=200);
}

#[tokio::test]
async fn a_deleted_file_is_let_go_after_release_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut file = append(&log);
    let f = Follower::start(opts(&log)).await;
    for n in 1..=100 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    f.wait("all lines", |s, _| s.numbers.len() == 100).await;
    drop(file);
    std::fs::remove_file(&log).unwrap();
    let deleted = Instant::now();
    f.wait("Closed", |s, st| {
        s.closed.len() == 1 && st.open_files() == 0
    })
    .await;
    // Not before the bound (release_after is 500 ms); the upper bound is PATIENCE.
    assert!(deleted.elapsed() >= Duration::from_millis(500));
    assert!(
        !open_fds()
            .iter()
            .any(|t| t.to_string_lossy().starts_with(log.to_str().unwrap())),
        "the deleted file is still open: {:?}",
        open_fds()
    );
    let seen = f.stop().await;
    let s = seen.lock().unwrap();
    s.assert_exactly(1..=100);
    assert_eq!(
        s.closed.values().next(),
        Some(&100),
        "all data before Closed"
    );
    assert_eq!(s.rotated, 1);
}

fn open_fds() -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect()
}

/// A copytruncate noticed only after the file grew past the old offset again (the
/// fingerprint, not the size, gives it away): polling alone, slowly, and the whole
/// rotation done right after a pass.
#[tokio::test]
async fn copytruncate_noticed_after_the_file_regrew_past_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut file = append(&log);
    for n in 1..=100 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    let f = Follower::start(TailOptions {
        start_at: StartAt::Beginning,
        watch: false,
        poll_interval: Duration::from_secs(3),
        ..opts(&log)
    })
    .await;
    // The first pass runs at once and reads 1..=100; the next one is 3 s later.
    f.wait("the first pass", |s, _| s.numbers.len() == 100)
        .await;
    for n in 101..=110 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    file.set_len(0).unwrap();
    let regrown: String = (111..=400).map(line).collect();
    file.write_all(regrown.as_bytes()).unwrap();
    let seen = f.finish(400, SETTLE).await;
    let s = seen.lock().unwrap();
    s.assert_exactly(1..=400);
    assert_eq!(s.truncated, 1);
}

/// The checkpoint names (device, inode, fingerprint): a file deleted while we were
/// stopped whose inode went to a new file (file systems reuse freed inodes at once)
/// is a new file, read from its start, not resumed at the old offset.
#[tokio::test]
async fn checkpoint_does_not_mistake_a_reused_inode_for_the_old_file() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let checkpoint = dir.path().join("offsets");
    let options = TailOptions {
        checkpoint: Some(checkpoint.clone()),
        start_at: StartAt::Beginning,
        ..opts(&log)
    };
    let mut file = append(&log);
    let old: String = (1..=100).map(line).collect();
    file.write_all(old.as_bytes()).unwrap();
    let old_inode = file.metadata().unwrap().ino();
    drop(file);
    let f = Follower::start(options.clone()).await;
    f.finish(100, SETTLE)
        .await
        .lock()
        .unwrap()
        .assert_exactly(1..=100);

    std::fs::remove_file(&log).unwrap();
    // Longer than the old content, so resuming at the old offset would skip lines.
    let new: String = (1001..=1300).map(line).collect();
    let mut file = append(&log);
    file.write_all(new.as_bytes()).unwrap();
    eprintln!(
        "inode reused: {}",
        file.metadata().unwrap().ino() == old_inode
    );
    let f = Follower::start(options).await;
    f.finish(300, SETTLE)
        .await
        .lock()
        .unwrap()
        .assert_exactly(1001..=1300);
}

/// Renamed to a name the glob still matches (logrotate's `extension .log`): the same
/// file under a new name, neither rotated nor read again.
#[tokio::test]
async fn a_rename_within_the_glob_is_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut file = append(&log);
    let f = Follower::start(opts(&dir.path().join("*.log"))).await;
    for n in 1..=100 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    f.wait("lines before the rename", |s, _| s.numbers.len() == 100)
        .await;
    std::fs::rename(&log, dir.path().join("app-1.log")).unwrap();
    for n in 101..=200 {
        file.write_all(line(n).as_bytes()).unwrap();
    }
    let mut new = append(&log);
    for n in 201..=300 {
        new.write_all(line(n).as_bytes()).unwrap();
    }
    let seen = f.finish(300, SETTLE).await;
    let s = seen.lock().unwrap();
    s.assert_exactly(1..=300);
    assert_eq!(s.rotated, 0);
    assert_eq!(s.lines.len(), 2, "two files");
}

/// The state directory is the followed one reached through a symlink: the
/// checkpoint written there is still known as ours. Named otherwise than the
/// glob names it, it was followed, and Outrider counted its own writes
/// without end (review: 10, 28, 49 lines, every 3 s).
#[tokio::test]
async fn a_checkpoint_named_through_a_symlink_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let state = dir.path().join("state");
    std::os::unix::fs::symlink(&logs, &state).unwrap();
    let options = TailOptions {
        checkpoint: Some(state.join("tail.offsets")),
        ..opts(&logs.join("*"))
    };
    let mut file = append(&logs.join("app.log"));
    let f = Follower::start(options).await;
    for n in 1..=100 {
        file.write_all(line(n).as_bytes()).unwrap();
        if n % 25 == 0 {
            // Passes (and checkpoint saves) in between.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    assert!(logs.join("tail.offsets").exists(), "saved while running");
    let seen = f.finish(100, SETTLE).await;
    seen.lock().unwrap().assert_exactly(1..=100);
}

/// A failure that has cleared is no longer reported: an unreadable checkpoint
/// once one is written, a file whose reads failed once it is gone. Each stayed
/// on the status page and made `outrider report` exit 1 for ever (review).
#[tokio::test]
async fn failures_that_cleared_are_no_longer_reported() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("tail.offsets");
    std::fs::write(&checkpoint, b"outrider-tail-checkpoint 1\n\xff\n").unwrap();
    // A regular file whose every read fails, for root too: a live process's
    // memory (as tests/hostile.rs reads it); it goes with the process.
    let mut app = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let mem = PathBuf::from(format!("/proc/{}/mem", app.id()));
    let options = TailOptions {
        checkpoint: Some(checkpoint.clone()),
        ..opts(&mem)
    };
    let f = Follower::start(options).await;
    let failing = |s: &TailStats| s.failing().into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    assert!(
        failing(&f.stats).contains(&checkpoint),
        "{:?}",
        f.stats.failing()
    );
    f.wait("the unreadable file reported", |_, stats| {
        failing(stats).contains(&mem)
    })
    .await;
    let _ = app.kill();
    let _ = app.wait();
    f.wait("every failure cleared", |_, stats| {
        stats.failing().is_empty()
    })
    .await;
    f.finish(0, SETTLE)
        .await
        .lock()
        .unwrap()
        .assert_exactly(std::iter::empty());
}
