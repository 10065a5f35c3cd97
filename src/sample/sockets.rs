//! The app's TCP connections: the socket inodes among each target's fds, matched to
//! the kernel's TCP tables of the network namespaces its processes live in.
//!
//! # Layout
//! - [`parse_tcp_line`], [`parse_endpoint`]: one line of `/proc/<pid>/net/tcp{,6}`,
//!   hex addresses of both families (a v4-mapped v6 address is read as v6 and
//!   compared in its canonical v4 form)
//! - [`scan`]: one pass over many targets: fd links → socket inodes, one TCP table
//!   read per network namespace, counts per target
//! - [`Connections`]: what a target gets: sockets by state, established connections
//!   by the well-known service at the far end
//! - [`ConnectionScans`]: how often the sampler runs [`scan`] (at most every
//!   `sampling.connections_interval`), and the latest result carried in between
//!
//! What is counted, and how honestly:
//! - A socket is the target's when one of its processes holds an fd on it
//!   (`/proc/<pid>/fd/N -> socket:[INODE]`); a socket shared by several processes
//!   (a pre-fork server's listener) counts once.
//! - `time_wait`: a socket in TIME_WAIT has no owner any more (inode 0), so it is
//!   attributed by place, not by fd: TIME_WAIT entries in the target's network
//!   namespace whose local address and port match one of the target's listening
//!   sockets, i.e. connections the app served and closed first. TIME_WAIT left by
//!   the app's own outgoing connections (an ephemeral local port) cannot be told from
//!   another process' and is not counted.
//! - `other`: SYN_SENT, SYN_RECV, FIN_WAIT1/2, CLOSE, LAST_ACK, CLOSING still held by
//!   an fd.
//! - Services are told by the remote port of established connections: an inbound
//!   connection has the client's ephemeral port at the far end and counts as
//!   `other`.
//! - A process that vanishes during the scan is skipped; an fd directory, namespace
//!   link or TCP table that cannot be read (another uid) is counted in
//!   `outrider_read_errors_total{source}`. A target none of whose fd directories
//!   could be read has no figures (`None`), not zeros.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::process::{io_gone, ReadErrors};

/// TCP states as numbered in the kernel's `include/net/tcp_states.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Established,
    TimeWait,
    CloseWait,
    Listen,
    /// Any other state (SYN_SENT, FIN_WAIT1, LAST_ACK, …).
    Other,
}

impl TcpState {
    fn from_hex(st: &str) -> Option<TcpState> {
        Some(match u8::from_str_radix(st, 16).ok()? {
            0x01 => TcpState::Established,
            0x06 => TcpState::TimeWait,
            0x08 => TcpState::CloseWait,
            0x0A => TcpState::Listen,
            0x02..=0x0C => TcpState::Other,
            _ => return None,
        })
    }
}

/// One line of a TCP table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// 0 for sockets no process holds (TIME_WAIT, orphans).
    pub inode: u64,
}

/// `0100007F:1F90` (v4) or 32 hex digits and a port (v6). The kernel prints each
/// 32-bit word of the address as a native-endian integer and the port in host
/// order, so the word's native bytes are the address bytes.
pub fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`; `None` for the
/// header and for lines that do not parse.
pub fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let mut f = line.split_ascii_whitespace();
    let sl = f.next()?;
    if !sl.ends_with(':') {
        return None; // the header
    }
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = TcpState::from_hex(f.next()?)?;
    let inode = f.nth(5)?.parse().ok()?;
    Some(TcpSocket {
        local,
        remote,
        state,
        inode,
    })
}

/// Every parsable line of a table; garbage lines are skipped.
pub fn parse_tcp_table(text: &[u8], out: &mut Vec<TcpSocket>) {
    for line in text.split(|&b| b == b'\n') {
        if let Some(s) = std::str::from_utf8(line).ok().and_then(parse_tcp_line) {
            out.push(s);
        }
    }
}

/// The well-known services established connections are told apart by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByService {
    pub postgres: u64,
    pub mysql: u64,
    pub redis: u64,
    pub memcached: u64,
    pub https: u64,
    pub other: u64,
}

impl ByService {
    /// The `service` label values, fixed.
    pub const LABELS: [&'static str; 6] =
        ["postgres", "mysql", "redis", "memcached", "https", "other"];

    fn slot(&mut self, remote_port: u16) -> &mut u64 {
        match remote_port {
            5432 => &mut self.postgres,
            3306 => &mut self.mysql,
            6379 => &mut self.redis,
            11211 => &mut self.memcached,
            443 => &mut self.https,
            _ => &mut self.other,
        }
    }

    /// (label, count) in [`Self::LABELS`] order.
    pub fn rows(&self) -> [(&'static str, u64); 6] {
        let v = [
            self.postgres,
            self.mysql,
            self.redis,
            self.memcached,
            self.https,
            self.other,
        ];
        std::array::from_fn(|i| (Self::LABELS[i], v[i]))
    }
}

/// Established connections to the services a request is likely to wait on, told by
/// the remote port (one more than [`ByService`] tells apart, for the words; no
/// metric label). In the status API, by name: `{"postgres": 2, "mysql": 0, …}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnownServices(pub [u64; 8]);

impl Serialize for KnownServices {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(Self::PORTS.len()))?;
        for ((name, _), n) in Self::PORTS.iter().zip(self.0) {
            m.serialize_entry(name, &n)?;
        }
        m.end()
    }
}

impl KnownServices {
    /// Names and ports, in the order of the counts.
    pub const PORTS: [(&'static str, u16); 8] = [
        ("postgres", 5432),
        ("mysql", 3306),
        ("redis", 6379),
        ("mongodb", 27017),
        ("elasticsearch", 9200),
        ("memcached", 11211),
        ("rabbitmq", 5672),
        ("kafka", 9092),
    ];

    fn count(&mut self, remote_port: u16) {
        if let Some(i) = Self::PORTS.iter().position(|(_, p)| *p == remote_port) {
            self.0[i] += 1;
        }
    }

    /// The names with at least one established connection.
    pub fn names(&self) -> Vec<&'static str> {
        Self::PORTS
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|((name, _), _)| *name)
            .collect()
    }
}

/// One target's TCP sockets at the last scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    pub established: u64,
    /// Attributed by listening port (see the module docs).
    pub time_wait: u64,
    /// The peer closed, the app has not: what a connection leak leaves behind.
    pub close_wait: u64,
    pub listen: u64,
    pub other: u64,
    pub established_by_service: ByService,
    /// Established connections to known services (the likely waits).
    pub known_services: KnownServices,
}

impl Connections {
    /// The `state` label values, fixed.
    pub const STATES: [&'static str; 5] =
        ["established", "time_wait", "close_wait", "listen", "other"];

    /// (state, count) in [`Self::STATES`] order.
    pub fn by_state(&self) -> [(&'static str, u64); 5] {
        let v = [
            self.established,
            self.time_wait,
            self.close_wait,
            self.listen,
            self.other,
        ];
        std::array::from_fn(|i| (Self::STATES[i], v[i]))
    }
}

/// Which TCP tables a process sees: its network namespace, or the process itself
/// when the namespace link cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NetKey {
    Ns(u64),
    Pid(i32),
}

/// Reusable buffers for one scan.
struct Reader<'a> {
    root: &'a Path,
    path: String,
    buf: Vec<u8>,
}

impl Reader<'_> {
    fn set(&mut self, pid: i32, name: &str) -> &str {
        use std::fmt::Write;
        self.path.clear();
        let _ = write!(self.path, "{}/{pid}/{name}", self.root.display());
        &self.path
    }

    /// The TCP sockets of one family in the process' namespace, from `stat`
    /// (`net/sockstat` or `net/sockstat6`) at `key`; `None` when it cannot be
    /// read or parsed (the table is then read).
    fn in_use(&mut self, pid: i32, stat: &str, key: &str) -> Option<u64> {
        self.set(pid, stat);
        self.buf.clear();
        let mut f = std::fs::File::open(&self.path).ok()?;
        f.read_to_end(&mut self.buf).ok()?;
        sockstat_in_use(&self.buf, key)
    }

    /// `net:[4026531840]` → the namespace inode.
    fn netns(&mut self, pid: i32) -> std::io::Result<u64> {
        let link = std::fs::read_link(self.set(pid, "ns/net"))?;
        bracketed(link.as_os_str().as_bytes(), b"net:[").ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not a net:[N] link")
        })
    }

    /// Adds the inodes of the process' sockets to `out`.
    fn socket_inodes(&mut self, pid: i32, out: &mut HashSet<u64>) -> std::io::Result<()> {
        let dir = std::fs::read_dir(self.set(pid, "fd"))?;
        for entry in dir {
            let Ok(entry) = entry else { continue };
            // An fd closed between the listing and the readlink is normal churn.
            let Ok(link) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if let Some(inode) = bracketed(link.as_os_str().as_bytes(), b"socket:[") {
                out.insert(inode);
            }
        }
        Ok(())
    }

    /// `net/tcp` and `net/tcp6` of the process, each unless its namespace holds no
    /// TCP socket of that family (`net/sockstat`, `net/sockstat6`: counted without
    /// walking the socket hash, which each table's read does, 2 ms here).
    fn tables(&mut self, pid: i32, errors: &mut ReadErrors) -> Option<Vec<TcpSocket>> {
        let mut sockets = Vec::new();
        for (name, stat, key) in [
            ("net/tcp", "net/sockstat", "TCP:"),
            ("net/tcp6", "net/sockstat6", "TCP6:"),
        ] {
            if self.in_use(pid, stat, key) == Some(0) {
                continue;
            }
            self.set(pid, name);
            self.buf.clear();
            let read = std::fs::File::open(&self.path).and_then(|f| read_table(f, &mut self.buf));
            match read {
                Ok(_) => parse_tcp_table(&self.buf, &mut sockets),
                Err(e) if io_gone(&e) && name == "net/tcp" => return None,
                // No IPv6 in this kernel or namespace: nothing to add.
                Err(e) if io_gone(&e) => {}
                Err(e) => errors.record("net_tcp", &format!("{}: {e}", self.path)),
            }
        }
        Some(sockets)
    }
}

/// `TCP: inuse N …` (or `TCP6:`) of a `sockstat` text: the sockets of that family
/// in the hash (listening and connected; a TIME_WAIT socket is not one, and is
/// counted only on a listener's port, which would be).
fn sockstat_in_use(text: &[u8], key: &str) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let mut words = line.split_ascii_whitespace();
    words.position(|w| w == "inuse")?;
    words.next()?.parse().ok()
}

/// The longest line of `net/tcp` or `net/tcp6` (178 bytes), with room to spare.
const TABLE_LINE_MAX: usize = 512;

/// `net/tcp` or `net/tcp6` whole, without the read that returns 0. Each read of
/// these files walks the kernel's whole established-socket hash from where the
/// last one stopped, and the read that finds the end walks to it again: 2.1 ms a
/// read here for a table of two sockets (a hash sized for 24 GiB), four reads a
/// scan. The kernel (`seq_read_iter`) fills a read until the caller's buffer or
/// its own page is full, or no record is left: a read that stops short of a page
/// by more than a line found the end.
fn read_table(mut f: std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let page = super::process::page_size() as usize;
    let ask = page.max(64 << 10);
    loop {
        let start = buf.len();
        buf.resize(start + ask, 0);
        let n = f.read(&mut buf[start..]);
        buf.truncate(start + *n.as_ref().unwrap_or(&0));
        match n {
            Ok(n) if n == 0 || n + TABLE_LINE_MAX < page => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The number in `prefix…]`.
fn bracketed(link: &[u8], prefix: &[u8]) -> Option<u64> {
    let rest = link.strip_prefix(prefix)?.strip_suffix(b"]")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// What one target's processes hold.
#[derive(Default)]
struct Held {
    inodes: HashSet<u64>,
    /// Each network namespace once, with a member pid to read its tables through.
    nets: Vec<(NetKey, i32)>,
    /// At least one fd directory was read.
    read_any: bool,
}

/// Scans every target (a list of member pids each) under `proc_root`: `None` for a
/// target none of whose fd directories could be read.
pub fn scan(
    proc_root: &Path,
    targets: &[Vec<i32>],
    errors: &mut ReadErrors,
) -> Vec<Option<Connections>> {
    let mut r = Reader {
        root: proc_root,
        path: String::with_capacity(64),
        buf: Vec::with_capacity(64 * 1024),
    };
    let mut tables: HashMap<NetKey, Vec<TcpSocket>> = HashMap::new();
    let mut held: Vec<Held> = Vec::with_capacity(targets.len());
    for pids in targets {
        let mut h = Held::default();
        for &pid in pids {
            match r.socket_inodes(pid, &mut h.inodes) {
                Ok(()) => h.read_any = true,
                Err(e) if io_gone(&e) => continue,
                Err(e) => {
                    errors.record("socket_fds", &format!("{}: {e}", r.path));
                    continue;
                }
            }
            let key = match r.netns(pid) {
                Ok(ns) => NetKey::Ns(ns),
                Err(e) if io_gone(&e) => continue,
                Err(e) => {
                    errors.record("netns", &format!("{}: {e}", r.path));
                    NetKey::Pid(pid)
                }
            };
            if !h.nets.iter().any(|(k, _)| *k == key) {
                h.nets.push((key, pid));
            }
        }
        // The tables cost the kernel a walk of its whole TCP hash (milliseconds on
        // a large host, however few sockets it holds): not read for a target that
        // holds no socket, which then has no connections and no listener to
        // attribute TIME_WAIT to.
        if !h.inodes.is_empty() {
            for &(key, pid) in &h.nets {
                if let std::collections::hash_map::Entry::Vacant(slot) = tables.entry(key) {
                    if let Some(t) = r.tables(pid, errors) {
                        slot.insert(t);
                    }
                }
            }
        }
        held.push(h);
    }
    held.iter()
        .map(|h| h.read_any.then(|| count(h, &tables)))
        .collect()
}

/// Counts one target's sockets in the tables of its namespaces.
fn count(h: &Held, tables: &HashMap<NetKey, Vec<TcpSocket>>) -> Connections {
    let mut c = Connections::default();
    for (key, _) in &h.nets {
        let Some(table) = tables.get(key) else {
            continue;
        };
        let mut listeners = Vec::new();
        for s in table {
            if s.inode == 0 || !h.inodes.contains(&s.inode) {
                continue;
            }
            match s.state {
                TcpState::Established => {
                    c.established += 1;
                    *c.established_by_service.slot(s.remote.port()) += 1;
                    c.known_services.count(s.remote.port());
                }
                TcpState::CloseWait => c.close_wait += 1,
                TcpState::Listen => {
                    c.listen += 1;
                    listeners.push(s.local);
                }
                TcpState::TimeWait | TcpState::Other => c.other += 1,
            }
        }
        if listeners.is_empty() {
            continue;
        }
        c.time_wait += table
            .iter()
            .filter(|s| s.state == TcpState::TimeWait)
            .filter(|s| listeners.iter().any(|l| serves(*l, s.local)))
            .count() as u64;
    }
    c
}

/// Whether a listener at `listen` accepted a connection whose local end is `local`.
fn serves(listen: SocketAddr, local: SocketAddr) -> bool {
    listen.port() == local.port()
        && (listen.ip().is_unspecified() || listen.ip().to_canonical() == local.ip().to_canonical())
}

/// When the sampler scans, and what it carries between scans.
#[derive(Debug, Default)]
pub struct ConnectionScans {
    /// Scan on every this many ticks; `None`: scans are off.
    every_ticks: Option<u64>,
    ticks: u64,
    /// The latest figures per target name.
    latest: HashMap<String, Connections>,
    pub stats: ScanStats,
    /// Per target: its lowest member pid and when that was first seen, while no
    /// listener has been seen for it; scanned on every tick meanwhile (for at most
    /// [`STARTUP_WATCH`]), so a start-up is timed to the tick.
    starting: HashMap<String, (i32, Instant)>,
    /// Targets (by lowest member pid) seen listening.
    listening: HashMap<String, i32>,
    /// Whether new starts are scanned on every tick ([`Self::watching_startups`]).
    watch_startups: bool,
}

/// How long a new start without a listener is scanned on every tick.
const STARTUP_WATCH: Duration = Duration::from_secs(120);

impl ConnectionScans {
    /// Whether a target started (a new lowest member pid) within [`STARTUP_WATCH`]
    /// and has not been seen listening since.
    fn starting(&mut self, targets: &[(String, Vec<i32>)]) -> bool {
        let now = Instant::now();
        let mut any = false;
        for (name, pids) in targets {
            let Some(lowest) = pids.iter().copied().min() else {
                continue;
            };
            if self.listening.get(name) == Some(&lowest) {
                continue;
            }
            let since = self.starting.entry(name.clone()).or_insert((lowest, now));
            if since.0 != lowest {
                *since = (lowest, now);
            }
            any |= now.duration_since(since.1) < STARTUP_WATCH;
        }
        any
    }
}

/// Scans so far and the cost of the last one, for the self metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ScanStats {
    pub scans: u64,
    pub last_duration_seconds: f64,
}

impl ConnectionScans {
    /// Scans at most every `every` with ticks `tick` apart: every
    /// ceil(every / tick) ticks, the first tick included. `None`: never.
    pub fn new(every: Option<Duration>, tick: Duration) -> Self {
        let every_ticks = every.filter(|e| !e.is_zero()).map(|e| {
            let tick = tick.as_secs_f64().max(1e-3);
            ((e.as_secs_f64() / tick) - 1e-9).ceil().max(1.0) as u64
        });
        ConnectionScans {
            every_ticks,
            ..Default::default()
        }
    }

    /// Also scans on every tick while a target's new start has no listener yet
    /// (for at most [`STARTUP_WATCH`]): the start-up is then timed to the tick.
    pub fn watching_startups(mut self) -> Self {
        self.watch_startups = true;
        self
    }

    pub fn enabled(&self) -> bool {
        self.every_ticks.is_some()
    }

    /// Once per tick: scans if due, else hands back the latest figures. `targets`
    /// pairs each target name with its member pids.
    pub fn tick(
        &mut self,
        proc_root: &Path,
        targets: &[(String, Vec<i32>)],
        errors: &mut ReadErrors,
    ) -> Vec<Option<Connections>> {
        let Some(every) = self.every_ticks else {
            return vec![None; targets.len()];
        };
        let due = self.ticks % every == 0 || (self.watch_startups && self.starting(targets));
        self.ticks += 1;
        if due {
            let started = Instant::now();
            let pids: Vec<Vec<i32>> = targets.iter().map(|(_, p)| p.clone()).collect();
            let found = scan(proc_root, &pids, errors);
            self.stats.scans += 1;
            self.stats.last_duration_seconds = started.elapsed().as_secs_f64();
            self.latest.clear();
            for ((name, pids), c) in targets.iter().zip(&found) {
                if let Some(c) = c {
                    self.latest.insert(name.clone(), *c);
                    if c.listen > 0 {
                        let lowest = pids.iter().copied().min().unwrap_or(0);
                        self.listening.insert(name.clone(), lowest);
                    }
                }
            }
            return found;
        }
        targets
            .iter()
            .map(|(name, _)| self.latest.get(name).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests;
