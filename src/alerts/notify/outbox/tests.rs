//! The schedule under tokio's paused clock: grouping windows, backoff, rate limit,
//! spool. `advance` moves the clock; nothing sleeps and no socket is opened.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{advance, Instant};

use super::{Done, Next, Outbox};
use crate::alerts::notify::{
    spool::Spool, Auth, Backoff, Message, Receiver, ReceiverKind, ReceiverStats, Secret,
};
use crate::alerts::Alert;

fn receiver(kind: ReceiverKind, max_per_minute: u32) -> Arc<Receiver> {
    Arc::new(Receiver {
        name: "hook".into(),
        kind,
        url: Secret("http://127.0.0.1:1/".into()),
        alertnames: vec![],
        severities: vec![],
        headers: vec![],
        auth: Auth::None,
        secret: None,
        queue_capacity: 10,
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        group_by: vec!["target".into()],
        group_wait: Duration::from_secs(10),
        group_interval: Duration::from_secs(60),
        max_per_minute,
    })
}

fn outbox(r: Arc<Receiver>, spool: Option<Spool>) -> (Outbox, Arc<ReceiverStats>) {
    let stats = Arc::new(ReceiverStats::default());
    let o = Outbox::new(
        r,
        "http://outrider/".into(),
        stats.clone(),
        spool,
        42,
        Instant::now(),
    );
    (o, stats)
}

fn alert(name: &'static str, target: &str, ends_at: Option<f64>) -> Alert {
    Alert {
        active_since: 1.8e9,
        fired_at: Some(1.8e9),
        ..Alert::example(name, target, "critical", ends_at)
    }
}

fn sent(next: Next) -> serde_json::Value {
    match next {
        Next::Send(m) => serde_json::from_slice(&m.body).unwrap(),
        other => panic!("expected a message, got {other:?}"),
    }
}

fn message(n: u32) -> Message {
    Message {
        body: format!("[{n}]").into_bytes(),
        idempotency_key: format!("k{n}"),
    }
}

#[tokio::test(start_paused = true)]
async fn alerts_of_one_tick_go_out_as_one_message_after_group_wait() {
    let (mut o, stats) = outbox(receiver(ReceiverKind::Webhook, 0), None);
    let t0 = Instant::now();
    o.alerts(
        vec![
            alert("TargetDown", "app", None),
            alert("OOMKilled", "app", None),
        ],
        t0,
    );
    assert_eq!(stats.queued.load(Ordering::Relaxed), 1, "one group waiting");
    assert_eq!(
        o.next(Instant::now()),
        Next::Wait(t0 + Duration::from_secs(10))
    );
    advance(Duration::from_secs(10)).await;
    let body = sent(o.next(Instant::now()));
    assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(body["groupLabels"], serde_json::json!({"target": "app"}));
    assert_eq!(body["commonLabels"]["target"], "app");
    assert!(body["commonLabels"].get("alertname").is_none());
    assert_eq!(body["groupKey"], "{}:{target=\"app\"}");
    o.done(Done::Sent, Instant::now());
    assert_eq!(o.next(Instant::now()), Next::Idle);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 1);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);

    // A resolve 5 s later waits for group_interval (60 s after the message).
    advance(Duration::from_secs(5)).await;
    o.alerts(
        vec![alert("OOMKilled", "app", Some(1.8e9 + 15.0))],
        Instant::now(),
    );
    assert_eq!(
        o.next(Instant::now()),
        Next::Wait(t0 + Duration::from_secs(70))
    );
    advance(Duration::from_secs(55)).await;
    let body = sent(o.next(Instant::now()));
    let statuses: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["resolved", "firing"], "OOMKilled sorts first");
    assert_eq!(body["status"], "firing", "one alert still fires");
}

#[tokio::test(start_paused = true)]
async fn slack_gets_one_text_per_group() {
    let (mut o, _) = outbox(receiver(ReceiverKind::Slack, 0), None);
    o.alerts(
        vec![
            alert("TargetDown", "app", None),
            alert("TargetDown", "db", None),
        ],
        Instant::now(),
    );
    advance(Duration::from_secs(10)).await;
    let first = sent(o.next(Instant::now()));
    assert_eq!(
        first["text"],
        "*[FIRING:1]* target=app\n🔥 FIRING *TargetDown* [critical] app: TargetDown"
    );
    o.done(Done::Sent, Instant::now());
    let second = sent(o.next(Instant::now()));
    assert!(second["text"].as_str().unwrap().contains("target=db"));
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_by_half_honour_retry_after_and_keep_the_message() {
    let (mut o, stats) = outbox(receiver(ReceiverKind::Alertmanager, 0), None);
    o.push(message(1));
    let mut base = 0.5;
    for _ in 0..12 {
        assert_eq!(o.next(Instant::now()), Next::Send(message(1)));
        o.done(Done::Retry(None), Instant::now());
        let Next::Wait(at) = o.next(Instant::now()) else {
            panic!("not waiting")
        };
        let wait = (at - Instant::now()).as_secs_f64();
        assert!(
            (base * 0.8 - 1e-3..=base * 1.2 + 1e-3).contains(&wait),
            "{wait} vs {base}"
        );
        // A moment before: still waiting. At the time: the same message again.
        advance(Duration::from_secs_f64(wait) - Duration::from_millis(1)).await;
        assert!(matches!(o.next(Instant::now()), Next::Wait(_)));
        advance(Duration::from_millis(1)).await;
        base = (base * 1.5f64).min(60.0);
    }
    assert_eq!(o.next(Instant::now()), Next::Send(message(1)));
    o.done(Done::Retry(Some(Duration::from_secs(7))), Instant::now());
    assert_eq!(
        o.next(Instant::now()),
        Next::Wait(Instant::now() + Duration::from_secs(7))
    );
    advance(Duration::from_secs(7)).await;
    // `Retry-After: 0` waits the shortest backoff, not nothing.
    assert_eq!(o.next(Instant::now()), Next::Send(message(1)));
    o.done(Done::Retry(Some(Duration::ZERO)), Instant::now());
    assert_eq!(
        o.next(Instant::now()),
        Next::Wait(Instant::now() + Backoff::START)
    );
    advance(Backoff::START).await;
    o.done(Done::Sent, Instant::now());
    assert_eq!(stats.failed.load(Ordering::Relaxed), 14);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 1);

    // After a success, backoff starts again at 500 ms.
    o.push(message(2));
    assert_eq!(o.next(Instant::now()), Next::Send(message(2)));
    o.done(Done::Retry(None), Instant::now());
    let Next::Wait(at) = o.next(Instant::now()) else {
        panic!("not waiting")
    };
    assert!((at - Instant::now()) <= Duration::from_millis(600));
    // A 4xx gives up: dropped, not retried.
    o.done(Done::GiveUp, Instant::now());
    assert_eq!(o.next(Instant::now()), Next::Idle);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_delays_messages_and_never_drops_them() {
    let (mut o, stats) = outbox(receiver(ReceiverKind::Alertmanager, 2), None);
    let t0 = Instant::now();
    for n in 0..5 {
        o.push(message(n));
    }
    let mut failed_once = false;
    let mut times = Vec::new();
    for n in 0..5 {
        loop {
            match o.next(Instant::now()) {
                Next::Send(m) => {
                    assert_eq!(m, message(n), "in order");
                    if n == 1 && !failed_once {
                        // A retry follows the backoff; it takes no new token.
                        failed_once = true;
                        o.done(Done::Retry(Some(Duration::from_secs(1))), Instant::now());
                        continue;
                    }
                    times.push(Instant::now() - t0);
                    o.done(Done::Sent, Instant::now());
                    break;
                }
                Next::Wait(at) => tokio::time::advance(at - Instant::now()).await,
                Next::Idle => panic!("message {n} lost"),
            }
        }
    }
    let secs: Vec<u64> = times.iter().map(|d| d.as_secs()).collect();
    // One every 30 s; message 1's retry went 1 s after its first attempt.
    assert_eq!(secs, [0, 31, 60, 90, 120]);
    assert_eq!(stats.sent.load(Ordering::Relaxed), 5);
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), 4);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_the_new_message() {
    let (mut o, stats) = outbox(receiver(ReceiverKind::Alertmanager, 0), None);
    for n in 0..11 {
        o.push(message(n));
    }
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 10);
    assert_eq!(o.next(Instant::now()), Next::Send(message(0)));
}

#[tokio::test(start_paused = true)]
async fn on_shutdown_groups_go_out_at_once() {
    let (mut o, _) = outbox(receiver(ReceiverKind::Webhook, 0), None);
    o.alerts(vec![alert("TargetDown", "app", None)], Instant::now());
    o.hurry(Instant::now());
    let body = sent(o.next(Instant::now()));
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "TargetDown");
}

#[tokio::test(start_paused = true)]
async fn the_spool_keeps_what_was_not_delivered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let r = receiver(ReceiverKind::Webhook, 0);
    let (mut o, _) = outbox(r.clone(), Some(Spool::open(dir.path(), "hook").unwrap()));
    o.alerts(vec![alert("TargetDown", "app", None)], Instant::now());
    advance(Duration::from_secs(10)).await;
    let Next::Send(first) = o.next(Instant::now()) else {
        panic!("nothing to send")
    };
    o.done(Done::Retry(None), Instant::now());
    // Outrider stops with the message undelivered. Dropped off the runtime: there
    // the drop waits for the spool's thread (on it, the drain does).
    std::thread::spawn(move || drop(o)).join().unwrap();

    let files = || {
        std::fs::read_dir(dir.path().join("receiver-hook"))
            .unwrap()
            .count()
    };
    assert_eq!(files(), 1);
    let (mut again, stats) = outbox(r, Some(Spool::open(dir.path(), "hook").unwrap()));
    assert_eq!(stats.queued.load(Ordering::Relaxed), 1);
    assert_eq!(again.next(Instant::now()), Next::Send(first.clone()));
    again.done(Done::Sent, Instant::now());
    std::thread::spawn(move || drop(again)).join().unwrap(); // waits for the spool's thread
    assert_eq!(files(), 0, "delivered: removed");
}
