use super::*;

#[test]
fn read_errors_tell_gone_from_permission_from_other_io() {
    use std::io::{Error, ErrorKind};
    assert!(matches!(
        ReadError::from(Error::from(ErrorKind::NotFound)),
        ReadError::Gone
    ));
    assert!(matches!(
        ReadError::from(Error::from_raw_os_error(3)),
        ReadError::Gone
    ));
    let denied = ReadError::from(Error::from(ErrorKind::PermissionDenied));
    assert!(matches!(denied, ReadError::Permission(_)), "{denied:?}");
    assert!(matches!(
        ReadError::from(Error::from_raw_os_error(5)),
        ReadError::Io(_)
    ));
}

fn me() -> (ProcReader, ProcEntry) {
    let mut r = ProcReader::new(Path::new("/proc"));
    let e = r.read_entry(std::process::id() as i32).unwrap();
    (r, e)
}

#[test]
fn reads_this_process() {
    let (mut r, e) = me();
    assert!(e.threads >= 1);
    assert!(e.rss_pages > 0);
    let mut errors = ReadErrors::default();
    let d = r.read_details(&e, &mut errors).unwrap();
    assert!(d.open_fds.unwrap() >= 3);
    assert!(d.run_delay_ns.is_some());
    let max = r.read_max_fds(e.pid).unwrap().unwrap();
    assert!(max >= d.open_fds.unwrap());
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
}

#[test]
fn a_vanished_process_is_none_and_no_error() {
    let (mut r, mut e) = me();
    let mut errors = ReadErrors::default();
    // A child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    e.pid = pid;
    assert!(r.read_details(&e, &mut errors).is_none());
    assert!(matches!(r.read_entry(pid), Err(ReadError::Gone)));
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
}

#[test]
fn parses_stat_with_an_awkward_comm() {
    let text = b"42 (my (odd) app) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    let e = parse_stat(42, text).unwrap();
    assert_eq!((e.pid, e.ppid, &*e.comm), (42, 1, "my (odd) app"));
    assert_eq!((e.user_ticks, e.system_ticks, e.threads), (250, 50, 3));
    assert_eq!(
        (e.start_ticks, e.vsize_bytes, e.rss_pages),
        (12345, 104857600, 2560)
    );
    assert!(!e.kernel_thread && !e.zombie);
    let zombie = b"43 (gone) Z 1 42 42 0 -1 4194564 100 0 0 0 250 50 0 0 20 0 1 0 12345 0 0 0\n";
    assert!(parse_stat(43, zombie).unwrap().zombie);
    // Killed, memory handed back, not yet `Z` (read live: a 3 GiB process for
    // 0.23 s after SIGKILL): as gone as a zombie.
    let exiting = b"44 (dying) R 1 44 44 0 -1 4194628 100 0 0 0 250 50 0 0 20 0 1 0 12345 0 0 0\n";
    assert!(parse_stat(44, exiting).unwrap().zombie);
    let kthread = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    assert!(parse_stat(2, kthread).unwrap().kernel_thread);
    assert!(parse_stat(1, b"1 (x) S 0").is_none());
}

#[test]
fn parses_status_io_schedstat_and_limits() {
    let status = b"Name:\tapp\nVmRSS:\t  1024 kB\nVmSwap:\t      8 kB\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
    assert_eq!(
        parse_status(status),
        StatusFields {
            swap_bytes: Some(8192),
            voluntary_switches: Some(12),
            involuntary_switches: Some(3),
        }
    );
    let io = b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
    assert_eq!(keyed_value(io, b"read_bytes:"), Some(4096));
    assert_eq!(keyed_value(io, b"write_bytes:"), Some(8192));
    assert_eq!(parse_run_delay(b"123456 7890 12\n"), Some(7890));
    let limits = b"Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
    assert_eq!(parse_max_open_files(limits), Some(Some(1024)));
    let unlimited = b"Max open files            unlimited            unlimited            files\n";
    assert_eq!(parse_max_open_files(unlimited), Some(None));
}

#[test]
fn a_fixture_tree_lists_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
    std::fs::create_dir(root.join("42")).unwrap();
    std::fs::write(
        root.join("42/stat"),
        "42 (app) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 104857600 2560 0\n",
    )
    .unwrap();
    std::fs::create_dir(root.join("43")).unwrap();
    std::fs::write(root.join("43/stat"), "garbage").unwrap();
    std::fs::create_dir(root.join("self")).unwrap(); // not a pid: skipped
    let mut errors = ReadErrors::default();
    let list = ProcReader::new(root)
        .list(&mut errors, |_| None, std::time::Duration::ZERO)
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(&*list[0].comm, "app");
    assert_eq!(
        errors.counts.get("stat"),
        Some(&1),
        "the unparsable one is counted"
    );
    assert_eq!(boot_time(root).unwrap(), 1700000000);
}

/// A listing's `stat` files stay open unread until their linger time has
/// passed, up to [`LINGER_MAX`] of them; a file read between listings is
/// closed at the first sweep it went unread, as before.
#[test]
fn a_listings_files_linger_until_the_next_listing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pids = 10..(10 + LINGER_MAX as i32 + 5);
    for pid in pids.clone() {
        std::fs::create_dir(root.join(pid.to_string())).unwrap();
        let stat = format!("{pid} (p) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 1000 10 0\n");
        std::fs::write(root.join(format!("{pid}/stat")), stat).unwrap();
    }
    let mut r = ProcReader::new(root);
    r.kept.max = 1000;
    let mut errors = ReadErrors::default();
    let linger = std::time::Duration::from_millis(300);
    let list = r.list(&mut errors, |_| None, linger).unwrap();
    assert_eq!(list.len(), pids.len());
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    assert_eq!(r.kept.open.len(), pids.len(), "all kept for this tick");
    r.sweep();
    r.sweep();
    assert_eq!(r.kept.open.len(), LINGER_MAX, "unread, still open");
    assert_eq!(r.kept.lingering, LINGER_MAX);
    std::thread::sleep(linger);
    r.sweep();
    assert!(r.kept.open.is_empty(), "{:?}", r.kept.open.len());

    r.read_entry(10).unwrap();
    r.sweep();
    r.sweep();
    assert!(r.kept.open.is_empty(), "read between listings: closed");
}

/// A pid's descendants are found through each thread's `children` file; a
/// process with many threads, or a kernel without those files, asks for the
/// full listing instead.
#[test]
fn descendants_follow_every_threads_children() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let proc = |pid: i32, ppid: i32, threads: u64, children: &[(i32, &str)]| {
        let at = root.join(pid.to_string());
        std::fs::create_dir_all(&at).unwrap();
        let stat = format!(
            "{pid} (p{pid}) S {ppid} 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 {threads} 0 100 0 1 0\n"
        );
        std::fs::write(at.join("stat"), stat).unwrap();
        for (tid, text) in children {
            std::fs::create_dir_all(at.join(format!("task/{tid}"))).unwrap();
            std::fs::write(at.join(format!("task/{tid}/children")), text).unwrap();
        }
    };
    proc(10, 1, 1, &[(10, "11 ")]);
    proc(11, 10, 2, &[(11, ""), (12, "14 15 ")]);
    proc(14, 11, 1, &[(14, "")]);
    proc(20, 1, 1, &[(20, "")]); // not a descendant
    let mut errors = ReadErrors::default();
    let mut reader = ProcReader::new(root);
    let pids = |l: Option<Vec<ProcEntry>>| {
        let mut p: Vec<i32> = l.expect("found").iter().map(|e| e.pid).collect();
        p.sort_unstable();
        p
    };
    // 15 is gone (no stat): skipped, not counted.
    assert_eq!(
        pids(reader.descendants(&[10], true, &mut errors)),
        [10, 11, 14]
    );
    assert_eq!(
        pids(reader.descendants(&[10, 20], false, &mut errors)),
        [10, 20]
    );
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);

    proc(16, 1, CHILDREN_MAX_THREADS + 1, &[]);
    assert!(
        reader.descendants(&[16], true, &mut errors).is_none(),
        "too many threads"
    );
    // A fresh reader: a kept descriptor of a fixture file outlives its removal,
    // where a real /proc file is removed only with its process (whose kept
    // descriptors then fail).
    std::fs::remove_file(root.join("14/task/14/children")).unwrap();
    assert!(
        ProcReader::new(root)
            .descendants(&[10], true, &mut errors)
            .is_none(),
        "no children file"
    );
}

/// Between listings the `children` files are read again only once a process
/// has been created (the newest pid in `loadavg` moved): a child that appears
/// with the newest pid unchanged is not looked for, one that appears with it
/// moved is found.
#[test]
fn children_are_read_again_only_when_a_pid_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let proc = |pid: i32, children: &str| {
        let at = root.join(pid.to_string());
        std::fs::create_dir_all(at.join(format!("task/{pid}"))).unwrap();
        let stat = format!("{pid} (p{pid}) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 0 1 0\n");
        std::fs::write(at.join("stat"), stat).unwrap();
        std::fs::write(at.join(format!("task/{pid}/children")), children).unwrap();
    };
    let newest = |pid: i32| {
        let text = format!("0.06 0.02 0.00 1/123 {pid}\n");
        std::fs::write(root.join("loadavg"), text).unwrap();
    };
    newest(11);
    proc(10, "11 ");
    proc(11, "");
    let mut errors = ReadErrors::default();
    let mut reader = ProcReader::new(root);
    let mut pids = || {
        let list = reader.descendants(&[10], true, &mut errors).expect("found");
        let mut p: Vec<i32> = list.iter().map(|e| e.pid).collect();
        p.sort_unstable();
        p
    };
    assert_eq!(pids(), [10, 11]);
    // A fixture can change a children file without a new pid; the kernel cannot.
    proc(12, "");
    proc(11, "12 ");
    assert_eq!(
        pids(),
        [10, 11],
        "no pid created: the children as last read"
    );
    newest(12);
    assert_eq!(pids(), [10, 11, 12], "a pid created: read again");
    std::fs::remove_file(root.join("loadavg")).unwrap();
    let mut reader = ProcReader::new(root);
    proc(11, "");
    let list = reader.descendants(&[10], true, &mut errors).expect("found");
    assert_eq!(list.len(), 2, "no loadavg: read every time");
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
}

/// A process of more threads than [`CHILDREN_MAX_THREADS`] (a JVM) has its
/// children from the last listing while no process is created: no listing each
/// tick (it was one every tick). Once a pid is created, it needs a listing again.
#[test]
fn a_listing_gives_a_many_threaded_process_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let proc = |pid: i32, ppid: i32, threads: u64| {
        let at = root.join(pid.to_string());
        std::fs::create_dir_all(&at).unwrap();
        let stat = format!(
            "{pid} (p{pid}) S {ppid} 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 {threads} 0 100 0 1 0\n"
        );
        std::fs::write(at.join("stat"), stat).unwrap();
    };
    let newest = |pid: i32| {
        let text = format!("0.06 0.02 0.00 1/123 {pid}\n");
        std::fs::write(root.join("loadavg"), text).unwrap();
    };
    newest(12);
    proc(10, 1, CHILDREN_MAX_THREADS + 8);
    proc(11, 10, 1);
    proc(12, 11, 1);
    proc(20, 1, 1); // not a descendant
    let mut errors = ReadErrors::default();
    let mut reader = ProcReader::new(root);
    assert!(
        reader.descendants(&[10], true, &mut errors).is_none(),
        "no listing yet: too many threads to read their children"
    );
    reader
        .list(&mut errors, |_| None, std::time::Duration::ZERO)
        .unwrap();
    for _ in 0..2 {
        let list = reader
            .descendants(&[10], true, &mut errors)
            .expect("from the listing");
        let mut pids: Vec<i32> = list.iter().map(|e| e.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 12]);
    }
    newest(13);
    assert!(
        reader.descendants(&[10], true, &mut errors).is_none(),
        "a pid created: listed again"
    );
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
}

/// On the real /proc: a shell's two children found, and once one is killed and
/// reaped (no pid created for that), it is gone from the next answer.
#[test]
fn a_reaped_child_is_gone_from_the_descendants() {
    let mut sh = std::process::Command::new("sh")
        .args(["-c", "sleep 100 & sleep 100 & wait"])
        .spawn()
        .unwrap();
    let pid = sh.id() as i32;
    let mut reader = ProcReader::new(Path::new("/proc"));
    let mut errors = ReadErrors::default();
    let mut kids = |reader: &mut ProcReader| -> Vec<i32> {
        let list = reader
            .descendants(&[pid], true, &mut errors)
            .expect("found");
        list.iter().map(|e| e.pid).filter(|&p| p != pid).collect()
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut found = kids(&mut reader);
    while found.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        found = kids(&mut reader);
    }
    assert_eq!(found.len(), 2, "both sleeps: {found:?}");
    let victim = found[0];
    std::process::Command::new("kill")
        .arg(victim.to_string())
        .status()
        .unwrap();
    let mut left = kids(&mut reader);
    while left.contains(&victim) && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = kids(&mut reader);
    }
    for p in &found[1..] {
        let _ = std::process::Command::new("kill")
            .arg(p.to_string())
            .status();
    }
    let _ = sh.kill();
    let _ = sh.wait();
    assert_eq!(left, [found[1]], "the killed one reaped and gone");
}

/// Files read every tick stay open and give what a fresh open would: new
/// figures while the process lives, and "gone" (no error counted) once it has
/// exited; a sweep after a tick without reads closes them.
#[test]
fn kept_files_follow_the_process_and_fail_once_it_is_gone() {
    let mut child = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // `sleep` opens and closes files while it starts (the loader, the locale):
    // wait until it has slept a while, so its fd count holds still.
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat[stat.rfind(')').unwrap() + 2..].chars().next()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut asleep = 0;
    while asleep < 5 {
        assert!(std::time::Instant::now() < deadline, "sleep never slept");
        asleep = if state() == Some('S') { asleep + 1 } else { 0 };
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut r = ProcReader::new(Path::new("/proc"));
    let mut errors = ReadErrors::default();
    let e = r.read_entry(pid).unwrap();
    let first = r.read_details(&e, &mut errors).unwrap();
    r.sweep();
    let kept = r.kept.open.len();
    // stat, status, fd, io, schedstat
    assert_eq!(kept, 5, "{:?}", r.kept.open.keys());
    let e = r.read_entry(pid).unwrap();
    let again = r.read_details(&e, &mut errors).unwrap();
    assert_eq!(again.open_fds, first.open_fds);
    assert_eq!(r.kept.open.len(), kept, "read through the kept files");

    // Our own `stat`, read again through its kept descriptor, follows the CPU
    // time this loop spends.
    let me = std::process::id() as i32;
    let ticks = |e: ProcEntry| e.user_ticks + e.system_ticks;
    let start = ticks(r.read_entry(me).unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut now = start;
    while now == start && std::time::Instant::now() < deadline {
        now = ticks(r.read_entry(me).unwrap());
    }
    assert!(now > start, "figures are fresh");
    assert!(r.kept.open.contains_key(&format!("/proc/{me}/stat")));

    child.kill().unwrap();
    child.wait().unwrap();
    assert!(matches!(r.read_entry(pid), Err(ReadError::Gone)));
    assert!(r.read_details(&e, &mut errors).is_none());
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    r.sweep();
    r.sweep();
    assert!(r.kept.open.is_empty(), "{:?}", r.kept.open.keys());
}

/// `status` and `io` are read at a member's first tick and then once per
/// `slow_every`, their files kept open between; the other details every time.
#[test]
fn status_and_io_are_read_again_once_per_slow_interval() {
    use std::time::{Duration, Instant};
    // Two threads that switch context a hundred times a second each: counts in
    // `status`, and run-queue wait at each wake-up in their `schedstat`. Killed
    // on the way out, a failed assertion included.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let py = Killed(
        std::process::Command::new("python3")
            .args([
                "-c",
                "import threading, time\n\
                 def spin():\n    while True: time.sleep(0.01)\n\
                 threading.Thread(target=spin, daemon=True).start()\nspin()",
            ])
            .spawn()
            .unwrap(),
    );
    let pid = py.0.id() as i32;
    let mut r = ProcReader::new(Path::new("/proc"));
    r.slow_every = Duration::from_millis(400);
    let mut errors = ReadErrors::default();
    let mut details = |r: &mut ProcReader| {
        let e = r.read_entry(pid).unwrap();
        let d = r.read_details(&e, &mut errors).unwrap();
        r.sweep();
        d
    };
    // Both threads running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.read_entry(pid).unwrap().threads < 2 {
        assert!(Instant::now() < deadline, "no second thread");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = details(&mut r);
    let read_at = Instant::now();
    assert!(first.voluntary_switches.is_some() && first.read_bytes.is_some());
    assert!(first.run_delay_ns.is_some());
    std::thread::sleep(Duration::from_millis(100));
    let cached = details(&mut r);
    if read_at.elapsed() < Duration::from_millis(350) {
        assert_eq!(cached.voluntary_switches, first.voluntary_switches);
        assert_eq!(cached.read_bytes, first.read_bytes);
        assert_eq!(cached.run_delay_ns, first.run_delay_ns);
    }
    let kept = |name: &str| {
        r.kept
            .open
            .keys()
            .any(|k| k.starts_with(&format!("/proc/{pid}/")) && k.ends_with(name))
    };
    assert!(
        kept("/status") && kept("/io") && kept("/schedstat"),
        "kept open between reads: {:?}",
        r.kept.open.keys()
    );
    std::thread::sleep(Duration::from_millis(450));
    let later = details(&mut r);
    assert!(
        later.voluntary_switches > first.voluntary_switches,
        "read again: {:?} then {:?}",
        first.voluntary_switches,
        later.voluntary_switches
    );
    // Each of some 90 wake-ups waited some nanoseconds for a CPU.
    assert!(
        later.run_delay_ns > first.run_delay_ns,
        "read again: {:?} then {:?}",
        first.run_delay_ns,
        later.run_delay_ns
    );
    drop(py);
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
}

/// A kept thread list serves while the thread count holds, and is listed again
/// in the same tick when a thread has gone and another started (the count
/// unchanged): the gone thread's `schedstat` fails.
#[test]
fn a_kept_thread_list_is_listed_again_when_a_thread_is_replaced() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    // One thread besides the main one, replaced by a new one on each line in;
    // it ends with its stdin (a daemon thread), should the test fail first.
    let script = "import sys, threading\n\
        def start():\n    e = threading.Event()\n    t = threading.Thread(target=e.wait, daemon=True)\n    t.start()\n    return e, t\n\
        e, t = start()\n\
        print(t.native_id, flush=True)\n\
        for line in sys.stdin:\n    n = start()\n    e.set()\n    t.join()\n    e, t = n\n    print(t.native_id, flush=True)\n";
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = py.id() as i32;
    let mut out = std::io::BufReader::new(py.stdout.take().unwrap());
    let mut next_tid = || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim().to_string()
    };
    let first = next_tid();
    let mut r = ProcReader::new(Path::new("/proc"));
    let e = r.read_entry(pid).unwrap();
    assert_eq!(e.threads, 2);
    assert!(r.run_delay(&e).unwrap().is_some());
    let (tids, kept) = r.tids(&e).unwrap();
    assert!(kept, "kept from the first listing");
    assert!(tids.contains(&first), "{tids:?}");

    py.stdin.as_mut().unwrap().write_all(b"next\n").unwrap();
    let second = next_tid();
    // Python's join returns once the thread has run its last Python code; the
    // kernel thread may still be exiting (CI saw 3 threads here once): wait
    // for it, up to 2 s.
    let mut e = r.read_entry(pid).unwrap();
    for _ in 0..200 {
        if e.threads == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        e = r.read_entry(pid).unwrap();
    }
    assert_eq!(e.threads, 2, "replaced, not added");
    assert!(r.run_delay(&e).unwrap().is_some());
    let (tids, kept) = r.tids(&e).unwrap();
    assert!(kept);
    assert!(tids.contains(&second), "listed again: {tids:?}");
    assert!(!tids.contains(&first), "{tids:?}");
    py.kill().unwrap();
    py.wait().unwrap();
}
