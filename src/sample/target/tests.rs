use super::TargetSpec;
use super::*;

fn proc(pid: i32, ppid: i32, start: u64, comm: &str) -> ProcEntry {
    ProcEntry {
        pid,
        ppid,
        start_ticks: start,
        comm: comm.into(),
        kernel_thread: false,
        zombie: false,
        user_ticks: 0,
        system_ticks: 0,
        rss_pages: 0,
        vsize_bytes: 0,
        threads: 1,
    }
}

fn spec(name: &str, selector: Selector, children: bool) -> GroupSpec {
    GroupSpec::Configured(TargetSpec {
        name: Some(name.into()),
        selector,
        children,
    })
}

fn comm(c: &str) -> Selector {
    Selector::Match {
        comm: Some(c.into()),
        exe: None,
        cmdline: None,
    }
}

fn pids(list: &[ProcEntry], members: &[usize]) -> Vec<i32> {
    members.iter().map(|&i| list[i].pid).collect()
}

#[test]
fn descendants_join_their_ancestors_group() {
    let list = vec![
        proc(1, 0, 1, "init"),
        proc(10, 1, 5, "gunicorn"),
        proc(11, 10, 6, "gunicorn"),
        proc(12, 11, 7, "sh"),
        proc(20, 1, 8, "nginx"),
        proc(21, 20, 9, "nginx"),
        proc(30, 1, 9, "cron"),
    ];
    let groups = vec![
        spec("web", comm("gunicorn"), true),
        spec("proxy", Selector::Pid(20), false),
    ];
    let mut g = ProcessGroups::new(Path::new("/nonexistent"), 999);
    let mut errors = ReadErrors::default();
    let out = g.assign(&groups, &list, &mut errors);
    assert_eq!(pids(&list, &out[0]), vec![10, 11, 12]);
    // children = false: the worker stays out.
    assert_eq!(pids(&list, &out[1]), vec![20]);
}

/// `--pid 20` is the process pid 20 named when first seen: once it is gone, a
/// later process the kernel gives pid 20 is another's (review: it became the
/// target, its CPU added to the app's and a restart counted).
#[test]
fn a_pid_reused_after_its_process_exited_is_not_the_target() {
    let groups = vec![spec("app", Selector::Pid(20), true)];
    let mut g = ProcessGroups::new(Path::new("/nonexistent"), 999);
    let mut errors = ReadErrors::default();
    let first = vec![proc(20, 1, 100, "sleep"), proc(21, 20, 101, "sleep")];
    let out = g.assign(&groups, &first, &mut errors);
    assert_eq!(pids(&first, &out[0]), vec![20, 21]);
    let reused = vec![proc(20, 1, 900, "python3"), proc(22, 20, 901, "python3")];
    assert!(g.assign(&groups, &reused, &mut errors)[0].is_empty());
    // Still the first process, while it lives.
    let out = g.assign(&groups, &first, &mut errors);
    assert_eq!(pids(&first, &out[0]), vec![20, 21]);
}

#[test]
fn everything_skips_outrider_kernel_threads_and_pause() {
    let mut kthread = proc(2, 0, 1, "kthreadd");
    kthread.kernel_thread = true;
    let mut worker = proc(3, 2, 1, "kworker/0:0");
    worker.kernel_thread = true;
    let list = vec![
        proc(1, 0, 1, "pause"),
        kthread,
        worker,
        proc(7, 0, 3, "app"),
        proc(8, 7, 4, "app-worker"),
        proc(9, 0, 5, "outrider"),
    ];
    let mut g = ProcessGroups::new(Path::new("/nonexistent"), 9);
    let mut errors = ReadErrors::default();
    let out = g.assign(&[GroupSpec::Everything], &list, &mut errors);
    assert_eq!(pids(&list, &out[0]), vec![7, 8]);
    let main = main_process(&GroupSpec::Everything, &list, &out[0]).unwrap();
    assert_eq!(list[main].pid, 7);
}

#[test]
fn pid_files_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.pid");
    let groups = vec![spec("app", Selector::PidFile(file.clone()), true)];
    let list = vec![proc(40, 1, 10, "app"), proc(41, 1, 11, "app")];
    let mut g = ProcessGroups::new(Path::new("/nonexistent"), 999);
    let mut errors = ReadErrors::default();
    assert!(
        g.assign(&groups, &list, &mut errors)[0].is_empty(),
        "no pid file yet: empty group"
    );
    std::fs::write(&file, "41\n").unwrap();
    assert_eq!(
        pids(&list, &g.assign(&groups, &list, &mut errors)[0]),
        vec![41]
    );
    assert!(
        errors.counts.is_empty(),
        "a missing pid file is not an error"
    );
}

fn counters(user: f64, read: u64) -> MemberCounters {
    MemberCounters {
        user_seconds: user,
        read_bytes: Some(read),
        ..Default::default()
    }
}

fn id(pid: i32, start: u64) -> Identity {
    Identity {
        pid,
        start_ticks: start,
    }
}

#[test]
fn totals_never_go_backwards_when_members_exit() {
    let mut s = GroupState::new(spec("app", comm("app"), true));
    let a = id(10, 100);
    let b = id(11, 101);
    let alive: PidSet<Identity> = [a, b].into_iter().collect();
    s.account(&[(a, counters(5.0, 100)), (b, counters(2.0, 50))], &alive);
    assert_eq!(s.totals.user_seconds, 7.0);
    s.account(&[(a, counters(6.0, 150)), (b, counters(3.0, 60))], &alive);
    assert_eq!(s.totals.user_seconds, 9.0);
    assert_eq!(s.totals.read_bytes, 210);
    // b exits: its share stays in the totals.
    let alive: PidSet<Identity> = [a].into_iter().collect();
    s.account(&[(a, counters(6.5, 150))], &alive);
    assert_eq!(s.totals.user_seconds, 9.5);
    assert_eq!(s.totals.read_bytes, 210);
}

#[test]
fn pid_reuse_is_a_new_process_not_a_drop() {
    let mut s = GroupState::new(spec("app", Selector::Pid(10), true));
    let old = id(10, 100);
    let new = id(10, 900);
    s.observe_main(Some(old), &[old].into_iter().collect());
    s.account(&[(old, counters(50.0, 1000))], &[old].into_iter().collect());
    // Same pid, new start time, small counters: added in full, never subtracted.
    s.observe_main(Some(new), &[new].into_iter().collect());
    s.account(&[(new, counters(1.0, 10))], &[new].into_iter().collect());
    assert_eq!(s.totals.user_seconds, 51.0);
    assert_eq!(s.totals.read_bytes, 1010);
    assert_eq!(s.restarts, 1);
}

#[test]
fn a_member_whose_reads_failed_once_is_not_counted_twice() {
    let mut s = GroupState::new(spec("app", comm("app"), true));
    let a = id(10, 100);
    let alive: PidSet<Identity> = [a].into_iter().collect();
    s.account(&[(a, counters(5.0, 0))], &alive);
    s.account(&[], &alive); // listed, but its details could not be read this tick
    s.account(&[(a, counters(6.0, 0))], &alive);
    assert_eq!(s.totals.user_seconds, 6.0);
}

/// A process that makes itself undumpable (sshd, gpg-agent, a daemon dropping its
/// credentials) turns its `io` unreadable to a sidecar of its own user, and back:
/// the figure it could not be read for is unchanged, not 0, so its next reading
/// is not its whole lifetime added again.
#[test]
fn a_figure_unread_for_a_while_is_not_counted_again_when_read() {
    let mut s = GroupState::new(spec("app", comm("app"), true));
    let a = id(10, 100);
    let alive: PidSet<Identity> = [a].into_iter().collect();
    s.account(&[(a, counters(1.0, 1000))], &alive);
    let unreadable = MemberCounters {
        user_seconds: 2.0,
        voluntary_switches: Some(7),
        ..Default::default()
    };
    s.account(&[(a, unreadable)], &alive);
    s.account(&[(a, unreadable)], &alive);
    assert_eq!(
        (s.totals.read_bytes, s.totals.voluntary_switches),
        (1000, 7)
    );
    s.account(&[(a, counters(3.0, 1500))], &alive);
    assert_eq!(s.totals.read_bytes, 1500, "the lifetime's 1500 bytes, once");
    assert_eq!(s.totals.user_seconds, 3.0);
    // A figure never read until now: the member's whole count, as at first sight.
    let b = id(11, 200);
    let alive: PidSet<Identity> = [a, b].into_iter().collect();
    s.account(&[(b, MemberCounters::default())], &alive);
    s.account(&[(b, counters(0.0, 40))], &alive);
    assert_eq!(s.totals.read_bytes, 1540);
}

#[test]
fn restarts_count_replacements_and_returns_only() {
    let mut s = GroupState::new(spec("app", comm("app"), true));
    let a = id(10, 100);
    let b = id(12, 300);
    s.observe_main(Some(a), &[a].into_iter().collect());
    s.observe_main(Some(a), &[a].into_iter().collect());
    assert_eq!(s.restarts, 0);
    // The group empties, then comes back as a new process: one restart.
    s.observe_main(None, &PidSet::default());
    s.observe_main(Some(b), &[b].into_iter().collect());
    assert_eq!(s.restarts, 1);
    // A new main while the old is still alive (a handover) is not a restart.
    let c = id(13, 400);
    s.observe_main(Some(c), &[b, c].into_iter().collect());
    assert_eq!(s.restarts, 1);
}

#[test]
fn comm_becomes_a_label() {
    assert_eq!(label_from_comm("kworker/0:1"), "kworker_0_1");
    assert_eq!(label_from_comm(""), "app");
    assert_eq!(label_from_comm("python3.12"), "python3.12");
}
