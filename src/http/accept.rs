//! The accept loop and its bounds: what keeps the port from being held open.
//!
//! - Every connection gets [`HEADER_TIMEOUT`] to send a whole request head, and the
//!   same again while idle between keep-alive requests (hyper's header-read timer
//!   starts as soon as it waits for a head): a half-open or slowloris connection is
//!   closed then.
//! - A request head is at most [`MAX_HEAD_BYTES`] (431 past it); bodies are never
//!   read (only GET and HEAD are served).
//! - At most `limit` connections are open ([`connection_limit`]: `http.max_connections`,
//!   held to half the fd limit so sampling and log following keep theirs). A new
//!   connection past it closes the least recently active one rather than being
//!   refused: a flood of idle connections cannot keep a scrape out, since a scrape's
//!   connection is the newest and sends its request at once.
//! - When accept fails for want of fds, the least recently active connection is
//!   closed too, and the loop backs off (10 ms doubling to 1 s) instead of spinning.
//! - Accept errors and sheddings are logged at most once per [`LOG_EVERY`], with a
//!   count of what was not logged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::{handle, App};

/// How long a connection has to send a whole request head, or to send the next
/// one while idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request head (request line and headers) read; hyper's minimum
/// buffer. A scrape's is a few hundred bytes.
pub const MAX_HEAD_BYTES: usize = 8192;

/// Least time between two log lines about failed accepts or shed connections.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let limit = app.server.limit.load(Ordering::Relaxed).max(1) as usize;
    let slots = Arc::new(Mutex::new(Slots::default()));
    let mut log = Throttle::default();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) => {
                let out_of_fds = matches!(e.raw_os_error(), Some(n) if is_out_of_fds(n));
                if out_of_fds && shed_one(&slots, &app) {
                    log.note(|n| tracing::warn!(error = %e, not_logged = n, "accept failed: out of fds; closed the least recently active connection"));
                } else {
                    log.note(|n| tracing::warn!(error = %e, not_logged = n, "accept failed"));
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if slots.lock().unwrap_or_else(|e| e.into_inner()).open.len() >= limit
            && shed_one(&slots, &app)
        {
            log.note(|n| {
                tracing::warn!(
                    limit,
                    not_logged = n,
                    "connection limit reached: closed the least recently active connection"
                )
            });
        }
        spawn_connection(stream, app.clone(), slots.clone(), shutdown.clone());
    }
}

/// ENFILE (23), EMFILE (24), ENOBUFS (105), ENOMEM (12): no fd or memory for a
/// new socket.
fn is_out_of_fds(errno: i32) -> bool {
    matches!(errno, 12 | 23 | 24 | 105)
}

/// Closes the least recently active connection; false when none is open.
fn shed_one(slots: &Mutex<Slots>, app: &App) -> bool {
    let closed = slots.lock().unwrap_or_else(|e| e.into_inner()).evict();
    if closed {
        app.server.shed.fetch_add(1, Ordering::Relaxed);
    }
    closed
}

/// Serves one connection on a task of its own until it ends, is shed, or the
/// server stops (then it finishes its request, at most [`HEADER_TIMEOUT`] later).
fn spawn_connection(
    stream: TcpStream,
    app: Arc<App>,
    slots: Arc<Mutex<Slots>>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (id, shed) = slots.lock().unwrap_or_else(|e| e.into_inner()).admit();
    app.server.open.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let _slot = Slot {
            id,
            slots: slots.clone(),
            app: app.clone(),
        };
        let service = hyper::service::service_fn(move |req| {
            slots.lock().unwrap_or_else(|e| e.into_inner()).touch(id);
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(&app, req)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            // Shed: dropping the connection closes the socket.
            _ = shed => {}
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(HEADER_TIMEOUT, conn).await;
            }
        }
    });
}

/// The open connections, by the order they were accepted, with when each last
/// began a request and how to close it.
#[derive(Debug, Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

impl Slots {
    /// A slot for a new connection, and the receiver that tells it to close.
    fn admit(&mut self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.open.insert(id, (Instant::now(), tx));
        (id, rx)
    }

    /// The connection began a request.
    fn touch(&mut self, id: u64) {
        if let Some((at, _)) = self.open.get_mut(&id) {
            *at = Instant::now();
        }
    }

    /// Tells the least recently active connection to close; false when none is open.
    fn evict(&mut self) -> bool {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(id, (at, _))| (*at, **id))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| self.open.remove(&id)) {
            Some((_, tx)) => {
                let _ = tx.send(());
                true
            }
            None => false,
        }
    }
}

/// A connection's place in [`Slots`], given back when its task ends.
struct Slot {
    id: u64,
    slots: Arc<Mutex<Slots>>,
    app: Arc<App>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .remove(&self.id);
        self.app.server.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One log line per [`LOG_EVERY`] at most, carrying how many were not logged.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    not_logged: u64,
}

impl Throttle {
    /// Calls `log` with the count of lines not logged since the last one, or counts
    /// this one as not logged.
    fn note(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.not_logged += 1;
            return;
        }
        log(self.not_logged);
        self.last = Some(now);
        self.not_logged = 0;
    }
}

/// How many connections the server keeps open: `configured`, held to half the
/// soft fd limit (the other half is for /proc, cgroup files, followed logs, the
/// spool and the receivers' connections).
pub fn connection_limit(configured: usize) -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    configured
        .min((soft / 2).min(usize::MAX as u64) as usize)
        .max(1)
}

/// Raises the soft fd limit to the hard one (at most 2^20, the kernel's usual
/// `nr_open`), saying so in the log: fds are what a flood of clients takes first.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let want = hard.min(1 << 20);
    if want <= soft {
        tracing::info!(fd_limit = soft, "fd limit");
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
        Ok(()) => tracing::info!(from = soft, fd_limit = want, "raised the fd limit"),
        Err(e) => {
            tracing::warn!(fd_limit = soft, error = %e, "cannot raise the fd limit")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_active_connection_is_shed_first() {
        let mut s = Slots::default();
        let (a, mut a_rx) = s.admit();
        tokio::time::advance(Duration::from_secs(1)).await;
        let (_b, mut b_rx) = s.admit();
        tokio::time::advance(Duration::from_secs(1)).await;
        // `a` sends a request: now `b` is the least recently active.
        s.touch(a);
        assert!(s.evict());
        assert!(b_rx.try_recv().is_ok(), "b was told to close");
        assert!(a_rx.try_recv().is_err(), "a stays");
        assert!(s.evict());
        assert!(!s.evict(), "none left");
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_logs_once_per_period_with_the_count_it_skipped() {
        let mut t = Throttle::default();
        let mut logged = Vec::new();
        for _ in 0..5 {
            t.note(|n| logged.push(n));
            tokio::time::advance(Duration::from_secs(3)).await;
        }
        // At 0 s, then at 12 s (3, 6 and 9 s skipped).
        assert_eq!(logged, [0, 3]);
    }
}
