//! Delivery of alerts to receivers: a plain webhook (Alertmanager's webhook v4 JSON),
//! an Alertmanager (`POST /api/v2/alerts`), or a Slack incoming webhook.
//!
//! # Layout
//! - this file: receivers, the [`Dispatcher`] the tick calls, the HTTP attempt, and
//!   the task per receiver that runs an [`outbox::Outbox`]
//! - [`outbox`]: one receiver's schedule (groups, queue, retry, rate limit), a state
//!   machine with the clock passed in
//! - [`group`]: grouping by `group_by` with `group_wait` / `group_interval`
//! - [`limit`]: the `max_per_minute` token bucket
//! - [`spool`]: undelivered notifications on disk, re-queued after a restart
//!
//! The tick never waits on the network: [`Dispatcher::dispatch`] `try_send`s the
//! changed alerts (webhook, Slack) or a built body (Alertmanager) into a bounded
//! channel per receiver. The receiver's task groups alerts into messages, queues
//! them (at most `queue_capacity`; a full queue drops the new one, counted and
//! logged), and delivers them in order, retrying with exponential backoff and jitter
//! (500 ms, ×1.5, capped at 60 s, as Alertmanager does), honouring `Retry-After` on
//! 429 and 503. Any other 4xx is the receiver refusing the body: retrying cannot
//! help, so it is logged with the start of the response and given up. The rate limit
//! delays a message, never drops it.
//!
//! Counts per receiver ([`ReceiverStats`]): `sent` notifications delivered, `failed`
//! delivery attempts that did not succeed (each retry counts), `dropped`
//! notifications given up (queue full, or refused with a 4xx), `rate_limited`
//! notifications that had to wait for the rate limit (once each), `unspooled`
//! notifications the spool could not write, or all of them when it could not be
//! opened (kept in memory only).
//!
//! Secrets (tokens, passwords, HMAC keys) live in [`Secret`], whose `Debug` prints
//! `<secret>`; they are never logged, exported or shown by `check-config`.

mod group;
mod limit;
mod outbox;
mod spool;

pub use group::ALL_LABELS;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use super::{payload, Alert, AlertState, Transition};

/// What a receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverKind {
    Webhook,
    Alertmanager,
    Slack,
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

/// A value that must not be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// One `[[receivers]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
    /// For `alertmanager`, the base URL (`/api/v2/alerts` is appended). May carry a
    /// token (Slack's does), so it is a [`Secret`].
    pub url: Secret,
    /// Only these alertnames (all when empty).
    pub alertnames: Vec<String>,
    /// Only these severities (all when empty).
    pub severities: Vec<String>,
    pub headers: Vec<(String, Secret)>,
    pub auth: Auth,
    /// Webhook only: key of the `Outrider-Signature` HMAC.
    pub secret: Option<Secret>,
    /// Notifications waiting beyond this are dropped.
    pub queue_capacity: usize,
    /// Alertmanager only: how often firing alerts are re-sent.
    pub resend_interval: Duration,
    /// Per request; a receiver that hangs longer is retried.
    pub timeout: Duration,
    /// Webhook, Slack: alerts agreeing on these labels share a message
    /// ([`ALL_LABELS`]: every label, one message per alert).
    pub group_by: Vec<String>,
    /// Webhook, Slack: how long a new group waits for more alerts.
    pub group_wait: Duration,
    /// Webhook, Slack: the least time between two messages about one group.
    pub group_interval: Duration,
    /// Requests per minute at most (a bucket of this many); 0: no limit.
    pub max_per_minute: u32,
}

impl Receiver {
    fn wants(&self, a: &Alert) -> bool {
        let sev = a.labels.get("severity").map(String::as_str).unwrap_or("");
        (self.alertnames.is_empty() || self.alertnames.iter().any(|n| n == a.alertname))
            && (self.severities.is_empty() || self.severities.iter().any(|s| s == sev))
    }
}

/// Delivery counts of one receiver, read by the metrics.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    pub name: String,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Notifications that waited for the rate limit (each counted once).
    pub rate_limited: AtomicU64,
    /// Notifications waiting: queued messages and groups with news.
    pub queued: AtomicU64,
    /// Notifications that could not be written to the spool (kept in memory
    /// only), shared with the spool's thread.
    pub unspooled: Arc<AtomicU64>,
}

/// One notification: a body, and the key that lets a receiver drop a repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    body: Vec<u8>,
    idempotency_key: String,
}

/// How long resolved alerts keep being re-sent to an Alertmanager (Prometheus: 15 min).
const RESOLVED_RESEND: f64 = 15.0 * 60.0;

/// What the tick hands a receiver's task.
#[derive(Debug)]
enum Input {
    /// Fired or resolved alerts, to be grouped (webhook, Slack).
    Alerts(Vec<Alert>),
    /// A body ready to send (Alertmanager).
    Message(Message),
}

struct Outlet {
    receiver: Arc<Receiver>,
    tx: mpsc::Sender<Input>,
    stats: Arc<ReceiverStats>,
    /// Alertmanager: when the alerts were last sent, and the recently resolved.
    last_sent: Option<f64>,
    resolved: Vec<Alert>,
}

/// Turns transitions into notifications and hands them to the receivers' tasks.
pub struct Dispatcher {
    outlets: Vec<Outlet>,
    external_url: String,
    /// When `dispatch` was last called, and the time between its last two calls:
    /// the tick, after which a firing alert is re-sent at the earliest.
    last_dispatch: Option<f64>,
    tick: f64,
}

/// The HTTP client every receiver shares. A pure-Rust resolver (hickory, reading
/// /etc/resolv.conf and /etc/hosts): the static binary in a distroless image has
/// no glibc NSS modules, so the system resolver would fail on every host name.
/// No redirects followed: a 301/302/303 turns the POST into a body-less GET whose
/// 200 would count as delivered, and a 307/308 to another host would carry the
/// receiver's headers, signature and body there.
fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("outrider/", env!("CARGO_PKG_VERSION")))
        .hickory_dns(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// A seed for a receiver's retry jitter: the clock's nanoseconds.
fn jitter_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(1)
}

impl Dispatcher {
    /// Spawns one delivery task per receiver. Each holds a clone of `done` and
    /// drains its queue after `stop`, so `run`'s grace bounds the flush. With a
    /// `spool_dir`, undelivered notifications are kept there across restarts.
    pub fn start(
        receivers: Vec<Receiver>,
        external_url: String,
        spool_dir: Option<std::path::PathBuf>,
        stop: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
    ) -> Result<(Self, Vec<Arc<ReceiverStats>>), reqwest::Error> {
        let mut outlets = Vec::new();
        let mut all = Vec::new();
        if receivers.is_empty() {
            // No client at all without receivers: its TLS roots and resolver cost
            // memory a sidecar that sends nothing should not pay.
            return Ok((Dispatcher::new(outlets, external_url), all));
        }
        let client = client()?;
        for r in receivers {
            let (tx, rx) = mpsc::channel(r.queue_capacity.max(1));
            let receiver = Arc::new(r);
            let spool = spool_dir.as_ref().and_then(|d| {
                spool::Spool::open(d, &receiver.name)
                    .map(|s| s.holding(done.clone()))
                    .map_err(|e| {
                        tracing::error!(receiver = %receiver.name, dir = %d.display(), error = %e, "cannot open the alert spool; notifications are kept in memory only (counted as unspooled)");
                    })
                    .ok()
            });
            let stats = Arc::new(ReceiverStats {
                name: receiver.name.clone(),
                unspooled: spool.as_ref().map(|s| s.failures()).unwrap_or_default(),
                ..Default::default()
            });
            let missing = spool_dir.is_some() && spool.is_none();
            let outbox = outbox::Outbox::new(
                receiver.clone(),
                external_url.clone(),
                stats.clone(),
                spool,
                jitter_seed(),
                tokio::time::Instant::now(),
            )
            .spool_missing(missing);
            tokio::spawn(deliver_loop(
                receiver.clone(),
                client.clone(),
                outbox,
                rx,
                stop.clone(),
                done.clone(),
            ));
            all.push(stats.clone());
            outlets.push(Outlet {
                receiver,
                tx,
                stats,
                last_sent: None,
                resolved: Vec::new(),
            });
        }
        Ok((Dispatcher::new(outlets, external_url), all))
    }

    fn new(outlets: Vec<Outlet>, external_url: String) -> Self {
        Dispatcher {
            outlets,
            external_url,
            last_dispatch: None,
            tick: 0.0,
        }
    }

    /// Queues what this tick's transitions (and, for Alertmanagers, the re-send
    /// schedule) call for. Never waits.
    pub fn dispatch(&mut self, transitions: &[Transition], active: &[Alert], now: f64) {
        if let Some(last) = self.last_dispatch.filter(|&l| now > l) {
            self.tick = now - last;
        }
        self.last_dispatch = Some(now);
        for o in &mut self.outlets {
            let r = &o.receiver;
            let changed: Vec<&Alert> = transitions
                .iter()
                .map(|t| match t {
                    Transition::Fired(a) | Transition::Resolved(a) => a,
                })
                .filter(|a| r.wants(a))
                .collect();
            let mut inputs = Vec::new();
            match r.kind {
                ReceiverKind::Webhook | ReceiverKind::Slack => {
                    if !changed.is_empty() {
                        inputs.push(Input::Alerts(changed.into_iter().cloned().collect()));
                    }
                }
                ReceiverKind::Alertmanager => {
                    o.resolved.extend(
                        changed
                            .iter()
                            .filter(|a| a.ends_at.is_some())
                            .map(|a| (*a).clone()),
                    );
                    o.resolved
                        .retain(|a| a.ends_at.is_some_and(|e| now - e <= RESOLVED_RESEND));
                    // A re-send comes at a tick: one that falls a hair short of the
                    // interval by the clock's rounding is not put off a whole tick.
                    let due = o
                        .last_sent
                        .is_none_or(|t| now - t + 1e-3 >= r.resend_interval.as_secs_f64());
                    let firing: Vec<Alert> = active
                        .iter()
                        .filter(|a| a.state == AlertState::Firing && r.wants(a))
                        .cloned()
                        .collect();
                    // Fired again: its old resolved copy (same labels, later in the
                    // body) would make Alertmanager show it resolved.
                    o.resolved
                        .retain(|old| !firing.iter().any(|f| f.labels == old.labels));
                    if (due || !changed.is_empty()) && !(firing.is_empty() && o.resolved.is_empty())
                    {
                        let mut alerts = firing;
                        alerts.extend(o.resolved.iter().cloned());
                        // Like Prometheus: a firing alert ends 4 re-sends from now,
                        // so Alertmanager resolves it if Outrider goes quiet; re-sends
                        // come at ticks, so 4 ticks where those are longer (a 1 s
                        // re-send at 5 s ticks expired between each, and Alertmanager
                        // paged resolved and firing every 5 s).
                        let every = r.resend_interval.as_secs_f64().max(self.tick);
                        let ends = now + 4.0 * every;
                        inputs.push(Input::Message(Message {
                            body: payload::alertmanager_v2(&alerts, ends, &self.external_url)
                                .to_string()
                                .into_bytes(),
                            idempotency_key: format!("{}-{}", r.name, (now * 1000.0) as u64),
                        }));
                        o.last_sent = Some(now);
                    }
                }
            }
            for input in inputs {
                match o.tx.try_send(input) {
                    Ok(()) => {}
                    Err(_) => {
                        o.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(receiver = %r.name, capacity = r.queue_capacity, "notification queue full: notification dropped");
                    }
                }
            }
        }
    }
}

/// Exponential backoff with ±20% jitter: 500 ms, ×1.5, capped at 60 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    rng: u64,
}

impl Backoff {
    pub const START: Duration = Duration::from_millis(500);
    pub const CAP: Duration = Duration::from_secs(60);

    pub fn new(seed: u64) -> Self {
        Backoff {
            next: Self::START,
            rng: seed | 1,
        }
    }

    /// The next wait; each is 1.5 times the one before (before jitter), up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter needs no cryptographic randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let d = self.next.mul_f64(0.8 + 0.4 * unit);
        self.next = self.next.mul_f64(1.5).min(Self::CAP);
        d
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// How an attempt went, with why it failed (for the log).
enum Attempt {
    Sent,
    Retry(Option<Duration>, String),
    GiveUp(String),
}

async fn attempt(client: &reqwest::Client, r: &Receiver, m: &Message) -> Attempt {
    let url = match r.kind {
        ReceiverKind::Alertmanager => {
            format!("{}/api/v2/alerts", r.url.0.trim_end_matches('/'))
        }
        _ => r.url.0.clone(),
    };
    let mut req = client
        .post(url)
        .timeout(r.timeout)
        .header("content-type", "application/json")
        .header("Idempotency-Key", &m.idempotency_key)
        .body(m.body.clone());
    for (k, v) in &r.headers {
        req = req.header(k, &v.0);
    }
    req = match &r.auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(&t.0),
        Auth::Basic { username, password } => req.basic_auth(username, Some(&password.0)),
    };
    if let (ReceiverKind::Webhook, Some(secret)) = (r.kind, &r.secret) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        req = req.header(
            "Outrider-Signature",
            signature(secret.0.as_bytes(), t, &m.body),
        );
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        // A request that cannot be built never will be.
        Err(e) if e.is_builder() => return Attempt::GiveUp(why_not_sent(r, e)),
        Err(e) => return Attempt::Retry(None, why_not_sent(r, e)),
    };
    let status = resp.status();
    if status.is_success() {
        return Attempt::Sent;
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(600)));
    if status.is_redirection() {
        // Its Location is not said: it may carry a token too.
        return Attempt::GiveUp(format!(
            "HTTP {status}: redirected; give the receiver its final URL"
        ));
    }
    let body = body_start(resp, ERROR_BODY_BYTES).await;
    let start: String = body.chars().take(200).collect();
    // A refusal page may echo the request's path ("no route for /services/T0/…").
    let why = scrub(r, format!("HTTP {status}: {start}"));
    match status.as_u16() {
        429 | 503 => Attempt::Retry(retry_after, why),
        400..=499 => Attempt::GiveUp(why),
        _ => Attempt::Retry(None, why),
    }
}

/// Why a request was not sent, with its causes (a refused connection, a
/// certificate not trusted, a timeout: reqwest's own words alone said "error
/// sending request" for all three), without the URL and scrubbed: they may
/// carry a token.
fn why_not_sent(r: &Receiver, e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut why = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        why.push_str(": ");
        why.push_str(&c.to_string());
        cause = c.source();
    }
    scrub(r, why)
}

/// How much of a refusal's body is read for the log: a receiver or proxy may
/// answer with megabytes (an 800 MiB error page took a sidecar to 1.6 GiB).
const ERROR_BODY_BYTES: usize = 1024;

/// The first `most` bytes of `resp`'s body (fewer if it ends first, or fails),
/// as text; the rest is never read.
async fn body_start(mut resp: reqwest::Response, most: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < most {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk[..chunk.len().min(most - bytes.len())])
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `text` with every secret of `r` cut out: the URL, its path and query and each
/// part of them, the token, password, header values and signing key. What a
/// receiver answers is logged; it must not carry them back into our logs.
fn scrub(r: &Receiver, mut text: String) -> String {
    let url = r.url.0.as_str();
    let after_host = url
        .find("://")
        .and_then(|i| url[i + 3..].find(['/', '?']).map(|j| &url[i + 3 + j..]))
        .unwrap_or("");
    let mut secrets: Vec<&str> = vec![url, after_host];
    secrets.extend(after_host.split(['/', '?', '&', '=']));
    // Basic credentials as sent: a refusal page echoing the request's headers
    // carries them base64-encoded.
    let basic = match &r.auth {
        Auth::Basic { username, password } => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.0))
        }
        _ => String::new(),
    };
    secrets.push(&basic);
    match &r.auth {
        Auth::None => {}
        Auth::Bearer(t) => secrets.push(&t.0),
        Auth::Basic { password, .. } => secrets.push(&password.0),
    }
    secrets.extend(r.headers.iter().map(|(_, v)| v.0.as_str()));
    secrets.extend(r.secret.iter().map(|s| s.0.as_str()));
    // Longest first, so a part never leaves the rest of a whole behind. Parts of
    // three characters or fewer ("v1", "api") are not worth hiding and would
    // mangle the message.
    secrets.retain(|s| s.len() > 3);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        if text.contains(s) {
            text = text.replace(s, "<redacted>");
        }
    }
    text
}

/// One receiver's task: feeds the outbox from the channel, waits when it says
/// wait, sends when it says send. After `stop`, groups go out at once and the task
/// ends when the queue is empty (or when `run`'s grace runs out; what is spooled
/// stays for the next start).
async fn deliver_loop(
    r: Arc<Receiver>,
    client: reqwest::Client,
    mut outbox: outbox::Outbox,
    mut rx: mpsc::Receiver<Input>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    use tokio::time::Instant;
    let mut stopping = false;
    let mut closed = false;
    loop {
        let wake = match outbox.next(Instant::now()) {
            outbox::Next::Send(m) => {
                let done = match attempt(&client, &r, &m).await {
                    Attempt::Sent => outbox::Done::Sent,
                    Attempt::Retry(after, why) => {
                        tracing::warn!(receiver = %r.name, error = %why, retry_after = ?after, "notification not delivered; will retry");
                        outbox::Done::Retry(after)
                    }
                    Attempt::GiveUp(why) => {
                        tracing::warn!(receiver = %r.name, error = %why, "notification refused; not retried");
                        outbox::Done::GiveUp
                    }
                };
                outbox.done(done, Instant::now());
                continue;
            }
            outbox::Next::Wait(at) => Some(at),
            outbox::Next::Idle if closed => break,
            outbox::Next::Idle => None,
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            input = rx.recv(), if !closed => match input {
                Some(Input::Alerts(alerts)) => outbox.alerts(alerts, Instant::now()),
                Some(Input::Message(m)) => outbox.push(m),
                None => closed = true,
            },
            _ = sleep => {}
            _ = stop.changed(), if !stopping => {
                // Flush what is queued and grouped (within run's grace), take no more.
                stopping = true;
                rx.close();
            }
        }
        if stopping {
            outbox.hurry(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
