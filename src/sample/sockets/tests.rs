use super::*;

use std::os::unix::fs::symlink;
use std::path::PathBuf;

const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const HEADER6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/// One table line as the kernel writes it.
fn line(sl: usize, local: &str, remote: &str, st: &str, inode: u64) -> String {
    format!("{sl:4}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 20 4 30 10 -1\n")
}

/// A fixture `/proc/<pid>` with fd links, a netns link and TCP tables.
fn proc_dir(
    root: &Path,
    pid: i32,
    netns: u64,
    fds: &[&str],
    tcp: Option<&str>,
    tcp6: Option<&str>,
) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(dir.join("fd")).unwrap();
    std::fs::create_dir_all(dir.join("ns")).unwrap();
    std::fs::create_dir_all(dir.join("net")).unwrap();
    for (i, target) in fds.iter().enumerate() {
        symlink(target, dir.join("fd").join(i.to_string())).unwrap();
    }
    symlink(format!("net:[{netns}]"), dir.join("ns/net")).unwrap();
    if let Some(t) = tcp {
        std::fs::write(dir.join("net/tcp"), t).unwrap();
    }
    if let Some(t) = tcp6 {
        std::fs::write(dir.join("net/tcp6"), t).unwrap();
    }
}

/// Pid 100 holding one established loopback connection (inode 5) in netns 1.
fn one_connection_app(root: &Path) {
    let tcp = [
        HEADER.to_string(),
        line(0, "0100007F:1F90", "0100007F:D431", "01", 5),
    ]
    .concat();
    proc_dir(root, 100, 1, &["socket:[5]"], Some(&tcp), None);
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[cfg(target_endian = "little")]
#[test]
fn parses_v4_v6_and_v4_mapped_endpoints() {
    assert_eq!(
        parse_endpoint("0100007F:1F90"),
        Some(addr("127.0.0.1:8080"))
    );
    assert_eq!(parse_endpoint("0500000A:1538"), Some(addr("10.0.0.5:5432")));
    assert_eq!(parse_endpoint("00000000:0000"), Some(addr("0.0.0.0:0")));
    assert_eq!(
        parse_endpoint("00000000000000000000000001000000:0050"),
        Some(addr("[::1]:80"))
    );
    assert_eq!(
        parse_endpoint("B80D0120000000000000000001000000:01BB"),
        Some(addr("[2001:db8::1]:443"))
    );
    let mapped = parse_endpoint("0000000000000000FFFF00000100007F:18EB").unwrap();
    assert_eq!(mapped, addr("[::ffff:127.0.0.1]:6379"));
    assert_eq!(
        mapped.ip().to_canonical(),
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
    for bad in [
        "",
        "0100007F",
        "0100007F:",
        "0100007:1F90",
        "ZZ00007F:1F90",
        "0100007F:10000",
    ] {
        assert_eq!(parse_endpoint(bad), None, "{bad:?}");
    }
}

#[cfg(target_endian = "little")]
#[test]
fn parses_table_lines_and_states() {
    let l = line(0, "0100007F:1F90", "00000000:0000", "0A", 4242);
    let s = parse_tcp_line(&l).unwrap();
    assert_eq!(
        s,
        TcpSocket {
            local: addr("127.0.0.1:8080"),
            remote: addr("0.0.0.0:0"),
            state: TcpState::Listen,
            inode: 4242
        }
    );
    let states = [
        ("01", TcpState::Established),
        ("02", TcpState::Other),
        ("05", TcpState::Other),
        ("06", TcpState::TimeWait),
        ("08", TcpState::CloseWait),
        ("09", TcpState::Other),
        ("0A", TcpState::Listen),
        ("0B", TcpState::Other),
    ];
    for (st, want) in states {
        let l = line(1, "0100007F:1F90", "0100007F:D431", st, 1);
        assert_eq!(parse_tcp_line(&l).unwrap().state, want, "{st}");
    }
    assert_eq!(parse_tcp_line(HEADER), None);
    assert_eq!(
        parse_tcp_line(&line(1, "0100007F:1F90", "0100007F:D431", "FF", 1)),
        None
    );
    assert_eq!(parse_tcp_line("   3: garbage"), None);
    let mut out = Vec::new();
    let text = format!(
        "{HEADER}{l}garbage\n\n{}",
        line(2, "0100007F:1F90", "0100007F:D432", "01", 7)
    );
    parse_tcp_table(text.as_bytes(), &mut out);
    assert_eq!(out.len(), 2);
}

/// Two processes of one target in one namespace, one in another target and
/// namespace; sockets by state, services, TIME_WAIT by listening port, a shared
/// listener counted once, and each namespace's table read once.
#[cfg(target_endian = "little")]
#[test]
fn counts_a_fixture_tree_by_state_and_service() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tcp = [
        HEADER.to_string(),
        // Listener 0.0.0.0:8080, shared by both processes.
        line(0, "00000000:1F90", "00000000:0000", "0A", 1001),
        // Outgoing: postgres, an https one in CLOSE_WAIT, and a SYN_SENT.
        line(1, "0200000A:C350", "0500000A:1538", "01", 1002),
        line(2, "0200000A:C351", "0600000A:01BB", "08", 1003),
        line(3, "0200000A:C352", "0700000A:0CEA", "02", 1005),
        // Inbound on the listener: the client's ephemeral port is the far end.
        line(4, "0200000A:1F90", "0900000A:D431", "01", 1006),
        // TIME_WAIT: two served on 8080 (ours), one from an ephemeral port (not
        // attributable), one on another process' listener port 9090.
        line(5, "0200000A:1F90", "0900000A:D432", "06", 0),
        line(6, "0100007F:1F90", "0100007F:D433", "06", 0),
        line(7, "0200000A:C353", "0800000A:01BB", "06", 0),
        line(8, "0200000A:2382", "0900000A:D434", "06", 0),
        // Another process' established socket.
        line(9, "0200000A:C354", "0500000A:1538", "01", 2000),
    ]
    .concat();
    let tcp6 = [
        HEADER6.to_string(),
        // Redis through a v4-mapped address, held by the second process.
        line(
            0,
            "0000000000000000FFFF00000200000A:C355",
            "0000000000000000FFFF00000A00000A:18EB",
            "01",
            1004,
        ),
        // A served connection on the dual-stack side in TIME_WAIT.
        line(
            1,
            "0000000000000000FFFF00000200000A:1F90",
            "0000000000000000FFFF00000900000A:D435",
            "06",
            0,
        ),
    ]
    .concat();
    proc_dir(
        root,
        100,
        4026531840,
        &[
            "/dev/null",
            "socket:[1001]",
            "socket:[1002]",
            "socket:[1003]",
            "socket:[1005]",
            "socket:[1006]",
            "pipe:[55]",
            "socket:[777]",
        ],
        Some(&tcp),
        Some(&tcp6),
    );
    // Same namespace: its tables must not be read (a directory would fail to).
    proc_dir(
        root,
        101,
        4026531840,
        &["socket:[1001]", "socket:[1004]"],
        None,
        None,
    );
    std::fs::create_dir(root.join("101/net/tcp")).unwrap();
    // Another target in another namespace.
    let other = [
        HEADER.to_string(),
        line(0, "0100007F:1F91", "0100007F:0CEA", "01", 3000),
    ]
    .concat();
    proc_dir(
        root,
        200,
        4026532999,
        &["socket:[3000]", "socket:[1002]"],
        Some(&other),
        None,
    );

    let mut errors = ReadErrors::default();
    let got = scan(root, &[vec![100, 101], vec![200]], &mut errors);
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    let app = got[0].unwrap();
    assert_eq!(
        (
            app.established,
            app.close_wait,
            app.listen,
            app.other,
            app.time_wait
        ),
        (3, 1, 1, 1, 3),
        "{app:?}"
    );
    assert_eq!(
        app.established_by_service,
        ByService {
            postgres: 1,
            redis: 1,
            other: 1,
            ..Default::default()
        }
    );
    // Inode 1002 is in its fds but not in its namespace's table: not counted.
    let second = got[1].unwrap();
    assert_eq!(second.established, 1);
    assert_eq!(second.established_by_service.mysql, 1);
    assert_eq!(second.established_by_service.postgres, 0);
}

#[test]
fn a_vanished_process_is_skipped_and_an_unreadable_fd_dir_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    one_connection_app(root);
    // An fd "directory" that cannot be listed.
    std::fs::create_dir_all(root.join("300")).unwrap();
    std::fs::write(root.join("300/fd"), "").unwrap();
    let mut errors = ReadErrors::default();
    let got = scan(root, &[vec![999, 100], vec![300], vec![998]], &mut errors);
    assert_eq!(got[0].map(|c| c.established), Some(1));
    assert_eq!(got[1], None, "nothing readable: unknown, not zero");
    assert_eq!(got[2], None);
    assert_eq!(
        errors.counts.get("socket_fds"),
        Some(&1),
        "{:?}",
        errors.counts
    );
    assert_eq!(errors.counts.len(), 1, "{:?}", errors.counts);
}

#[test]
fn a_target_without_sockets_does_not_read_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Tables that cannot be read (directories): reading them is a counted error.
    proc_dir(root, 100, 1, &["/dev/null", "pipe:[7]"], None, None);
    std::fs::create_dir_all(root.join("100/net/tcp")).unwrap();
    proc_dir(root, 200, 2, &["socket:[5]"], None, None);
    std::fs::create_dir_all(root.join("200/net/tcp")).unwrap();
    let mut errors = ReadErrors::default();
    let got = scan(root, &[vec![100]], &mut errors);
    assert_eq!(got[0], Some(Connections::default()), "read, and no sockets");
    assert!(errors.counts.is_empty(), "{:?}", errors.counts);
    let got = scan(root, &[vec![200]], &mut errors);
    assert_eq!(got[0], Some(Connections::default()));
    assert_eq!(
        errors.counts.get("net_tcp"),
        Some(&1),
        "{:?}",
        errors.counts
    );
}

#[test]
fn scans_run_every_so_many_ticks_and_carry_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    one_connection_app(root);
    let targets = vec![("app".to_string(), vec![100])];
    let mut errors = ReadErrors::default();
    // 15 s at 5 s ticks: ticks 0, 3, 6, … scan.
    let mut s = ConnectionScans::new(Some(Duration::from_secs(15)), Duration::from_secs(5));
    let mut seen = Vec::new();
    for _ in 0..7 {
        let got = s.tick(root, &targets, &mut errors);
        seen.push(got[0].map(|c| c.established));
    }
    assert_eq!(s.stats.scans, 3);
    assert_eq!(seen, vec![Some(1); 7], "carried between scans");
    // A shorter period than the tick: every tick. Not a whole number: rounded up.
    let mut s = ConnectionScans::new(Some(Duration::from_millis(100)), Duration::from_secs(1));
    let mut t = ConnectionScans::new(Some(Duration::from_secs(7)), Duration::from_secs(5));
    for _ in 0..4 {
        s.tick(root, &targets, &mut errors);
        t.tick(root, &targets, &mut errors);
    }
    assert_eq!((s.stats.scans, t.stats.scans), (4, 2));
    let mut off = ConnectionScans::new(None, Duration::from_secs(5));
    assert_eq!(off.tick(root, &targets, &mut errors), vec![None]);
    assert_eq!(off.stats.scans, 0);
    assert!(!off.enabled());
}

/// The kernel's own tables: this process' loopback connections, a CLOSE_WAIT left
/// by a peer that closed, and the TIME_WAIT a server leaves when it closes first.
#[test]
fn scans_this_process_real_sockets() {
    use std::net::{TcpListener, TcpStream};
    let me = std::process::id() as i32;
    let root = PathBuf::from("/proc");
    let scan_me = || {
        let mut errors = ReadErrors::default();
        let c = scan(&root, &[vec![me]], &mut errors)[0].unwrap();
        assert!(errors.counts.is_empty(), "{:?}", errors.counts);
        c
    };
    let before = scan_me();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // 80 connections: several pages of `net/tcp` (27 lines a page), read whole
    // although a read stops at each page.
    let n = 40;
    let clients: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(listener.local_addr().unwrap()).unwrap())
        .collect();
    let served: Vec<TcpStream> = (0..n).map(|_| listener.accept().unwrap().0).collect();
    let open = scan_me();
    // Other tests in this process open sockets too: compare with at least.
    assert!(open.listen > before.listen, "{open:?}");
    assert!(
        open.established >= before.established + 2 * n as u64,
        "{open:?}"
    );
    // The server closes first: the clients are left in CLOSE_WAIT.
    drop(served);
    std::thread::sleep(Duration::from_millis(100));
    let half = scan_me();
    assert!(half.close_wait >= n as u64, "{half:?}");
    // The clients close: the served ends go to TIME_WAIT on the listener's port.
    drop(clients);
    std::thread::sleep(Duration::from_millis(100));
    let closed = scan_me();
    assert!(closed.time_wait >= n as u64, "{closed:?}");
    drop(listener);
}

/// A family the namespace holds no TCP socket of (`sockstat`, `sockstat6`) is not
/// read: its table would cost a walk of the kernel's socket hash for nothing. A
/// `sockstat` that cannot be read or parsed reads the table as before.
#[test]
fn a_family_without_sockets_in_the_namespace_is_not_read() {
    assert_eq!(
        sockstat_in_use(
            b"sockets: used 21\nTCP: inuse 10 orphan 0 tw 75 alloc 10 mem 92\nUDP: inuse 0 mem 0\n",
            "TCP:"
        ),
        Some(10)
    );
    assert_eq!(
        sockstat_in_use(b"TCP6: inuse 0\nUDP6: inuse 0\n", "TCP6:"),
        Some(0)
    );
    assert_eq!(sockstat_in_use(b"TCP6: inuse\n", "TCP6:"), None);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tcp = [HEADER, &line(0, "0100007F:1F90", "0100007F:D431", "01", 5)].concat();
    let tcp6 = [
        HEADER6,
        &line(
            0,
            "00000000000000000000000001000000:1F90",
            "00000000000000000000000001000000:D432",
            "01",
            6,
        ),
    ]
    .concat();
    proc_dir(
        root,
        100,
        1,
        &["socket:[5]", "socket:[6]"],
        Some(&tcp),
        Some(&tcp6),
    );
    let established = || {
        let mut errors = ReadErrors::default();
        scan(root, &[vec![100]], &mut errors)[0]
            .unwrap()
            .established
    };
    assert_eq!(established(), 2, "no sockstat: both tables read");
    std::fs::write(
        root.join("100/net/sockstat6"),
        "TCP6: inuse 0\nUDP6: inuse 0\n",
    )
    .unwrap();
    std::fs::write(
        root.join("100/net/sockstat"),
        "sockets: used 3\nTCP: inuse 2 orphan 0 tw 0 alloc 2 mem 1\n",
    )
    .unwrap();
    assert_eq!(established(), 1, "tcp6 skipped");
    std::fs::write(root.join("100/net/sockstat6"), "TCP6: inuse 1\n").unwrap();
    assert_eq!(established(), 2, "tcp6 read again");
}

/// The status API names each count (it was an unlabelled array of eight).
#[test]
fn known_services_serialize_by_name() {
    let mut k = KnownServices::default();
    k.count(5432);
    k.count(5432);
    k.count(6379);
    let v = serde_json::to_value(k).unwrap();
    assert_eq!(v["postgres"], 2);
    assert_eq!(v["redis"], 1);
    assert_eq!(v["kafka"], 0);
    assert_eq!(v.as_object().unwrap().len(), 8);
}
