//! One receiver's delivery schedule as a state machine with the clock passed in:
//! groups waiting for their time, the queue of built messages, the retry time of the
//! message at its head, and the rate limit. [`Outbox::next`] says what to do at
//! `now` (send this, or wait until then); [`Outbox::done`] takes the outcome. The
//! receiver's task does the waiting and the HTTP, so tests drive the schedule with
//! tokio's paused clock and no network.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use super::group::{AlertGroups, GroupLabels};
use super::limit::{self, TokenBucket};
use super::spool::Spool;
use super::{payload, Backoff, Message, Receiver, ReceiverKind, ReceiverStats};
use crate::alerts::Alert;

/// What the task should do now.
#[derive(Debug, PartialEq)]
pub enum Next {
    Send(Message),
    /// Nothing to send before this time (or before new input).
    Wait(Instant),
    /// Nothing scheduled at all.
    Idle,
}

/// How one attempt went.
#[derive(Debug, PartialEq)]
pub enum Done {
    Sent,
    /// Retry, after this long if the receiver said (Retry-After).
    Retry(Option<std::time::Duration>),
    /// Refused (a 4xx): retrying cannot help.
    GiveUp,
}

#[derive(Debug)]
struct Queued {
    message: Message,
    spool_file: Option<PathBuf>,
    /// Counted once in `rate_limited`, however long it waits.
    rate_limited: bool,
    /// It took its token: retries do not take another.
    admitted: bool,
}

pub struct Outbox {
    receiver: Arc<Receiver>,
    external_url: String,
    stats: Arc<ReceiverStats>,
    /// `None` for an Alertmanager: it groups by itself.
    grouper: Option<AlertGroups>,
    limit: Option<TokenBucket>,
    queue: VecDeque<Queued>,
    spool: Option<Spool>,
    /// A spool was configured but could not be opened: each notification is then
    /// kept in memory only, and counted as `unspooled`.
    spool_missing: bool,
    backoff: Backoff,
    seed: u64,
    /// The head of the queue failed: not before this.
    retry_at: Option<Instant>,
}

impl Outbox {
    pub fn new(
        receiver: Arc<Receiver>,
        external_url: String,
        stats: Arc<ReceiverStats>,
        spool: Option<Spool>,
        seed: u64,
        now: Instant,
    ) -> Self {
        let grouper = (receiver.kind != ReceiverKind::Alertmanager).then(|| {
            AlertGroups::new(
                receiver.group_by.clone(),
                receiver.group_wait,
                receiver.group_interval,
            )
        });
        let limit = (receiver.max_per_minute > 0)
            .then(|| TokenBucket::new(receiver.max_per_minute, limit::BURST, now));
        let mut o = Outbox {
            receiver,
            external_url,
            stats,
            grouper,
            limit,
            queue: VecDeque::new(),
            spool,
            spool_missing: false,
            backoff: Backoff::new(seed),
            seed,
            retry_at: None,
        };
        o.reload();
        o
    }

    /// Whether a spool was configured but could not be opened (see
    /// `spool_missing`).
    pub fn spool_missing(mut self, missing: bool) -> Self {
        self.spool_missing = missing && self.spool.is_none();
        self
    }

    /// Queues what the spool kept from a previous run.
    fn reload(&mut self) {
        let Some(spool) = &mut self.spool else { return };
        let (loaded, dropped) = spool.load(self.receiver.queue_capacity);
        self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        if !loaded.is_empty() {
            tracing::info!(receiver = %self.receiver.name, notifications = loaded.len(), "re-queued spooled notifications");
        }
        for (message, path) in loaded {
            self.queue.push_back(Queued {
                message,
                spool_file: Some(path),
                rate_limited: false,
                admitted: false,
            });
        }
        self.publish();
    }

    /// Fired or resolved alerts for this receiver (webhook, Slack): into their groups.
    pub fn alerts(&mut self, alerts: Vec<Alert>, now: Instant) {
        if let Some(g) = &mut self.grouper {
            for a in alerts {
                g.add(a, now);
            }
        }
        self.publish();
    }

    /// A message built by the dispatcher (Alertmanager): straight into the queue.
    pub fn push(&mut self, message: Message) {
        if self.queue.len() >= self.receiver.queue_capacity {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(receiver = %self.receiver.name, capacity = self.receiver.queue_capacity, "notification queue full: notification dropped");
            return;
        }
        if self.spool_missing {
            self.stats.unspooled.fetch_add(1, Ordering::Relaxed);
        }
        let spool_file = self.spool.as_mut().and_then(|s| match s.write(&message) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(receiver = %self.receiver.name, error = %e, "cannot spool a notification; it is kept in memory only");
                None
            }
        });
        self.queue.push_back(Queued {
            message,
            spool_file,
            rate_limited: false,
            admitted: false,
        });
        self.publish();
    }

    /// Shutting down: groups send what they have without waiting.
    pub fn hurry(&mut self, now: Instant) {
        if let Some(g) = &mut self.grouper {
            g.hurry(now);
        }
    }

    /// Notifications waiting: queued messages and groups with news.
    pub fn waiting(&self) -> usize {
        self.queue.len() + self.grouper.as_ref().map_or(0, AlertGroups::pending)
    }

    fn publish(&self) {
        self.stats
            .queued
            .store(self.waiting() as u64, Ordering::Relaxed);
    }

    fn build(&self, labels: &GroupLabels, alerts: &[Alert]) -> Message {
        let r = &self.receiver;
        let body = match r.kind {
            ReceiverKind::Slack => payload::slack_group(labels, alerts),
            _ => payload::webhook_v4(&r.name, alerts, &self.external_url, labels),
        }
        .to_string()
        .into_bytes();
        // The same content is the same notification: a receiver may drop a repeat.
        let idempotency_key = format!("{}-{}", r.name, fnv64(&body));
        Message {
            body,
            idempotency_key,
        }
    }

    /// What to do at `now`: send the head of the queue, or wait.
    pub fn next(&mut self, now: Instant) -> Next {
        if let Some(g) = &mut self.grouper {
            let due = g.take_due(now);
            for (labels, alerts) in due {
                let m = self.build(&labels, &alerts);
                self.push(m);
            }
        }
        self.publish();
        let group_due = self.grouper.as_ref().and_then(AlertGroups::next_due);
        let wait = |t: Instant| Next::Wait(group_due.map_or(t, |g| g.min(t)));
        if self.queue.is_empty() {
            return group_due.map_or(Next::Idle, Next::Wait);
        }
        if let Some(at) = self.retry_at.filter(|at| *at > now) {
            return wait(at);
        }
        let head = self.queue.front_mut().expect("not empty");
        if !head.admitted {
            if let Some(Err(at)) = self.limit.as_mut().map(|l| l.take(now)) {
                if !head.rate_limited {
                    head.rate_limited = true;
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                }
                return wait(at);
            }
            head.admitted = true;
        }
        Next::Send(head.message.clone())
    }

    /// The outcome of sending the head of the queue.
    pub fn done(&mut self, outcome: Done, now: Instant) {
        match outcome {
            Done::Retry(after) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                // `Retry-After: 0` is honoured as the shortest backoff, not as
                // "retry at once, forever".
                let wait = match after {
                    Some(a) => a.max(Backoff::START),
                    None => self.backoff.next_delay(),
                };
                self.retry_at = Some(now + wait);
                return;
            }
            Done::Sent => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Done::GiveUp => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(q) = self.queue.pop_front() {
            if let (Some(p), Some(s)) = (&q.spool_file, &self.spool) {
                s.remove(p);
            }
        }
        self.retry_at = None;
        let sent = self.stats.sent.load(Ordering::Relaxed);
        self.backoff = Backoff::new(self.seed ^ sent);
        self.publish();
    }
}

/// FNV-1a 64 in hex.
fn fnv64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests;
