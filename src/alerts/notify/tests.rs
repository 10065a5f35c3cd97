//! The dispatcher's choices per tick, backoff, signatures and secrets.

use super::*;

#[test]
fn backoff_grows_by_half_with_jitter_up_to_the_cap() {
    let mut b = Backoff::new(42);
    let mut base = 0.5;
    for _ in 0..30 {
        let d = b.next_delay().as_secs_f64();
        assert!(
            d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
            "{d} vs {base}"
        );
        base = (base * 1.5f64).min(60.0);
    }
    assert_eq!(base, 60.0);
}

#[test]
fn signature_matches_a_known_vector() {
    // python3 -c 'import hmac,hashlib;print(hmac.new(b"k",b"1.{}",hashlib.sha256).hexdigest())'
    assert_eq!(
        signature(b"k", 1, b"{}"),
        "t=1,v1=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
    );
}

fn receiver(kind: ReceiverKind, capacity: usize) -> Receiver {
    Receiver {
        name: "r".into(),
        kind,
        url: Secret("http://127.0.0.1:1".into()),
        alertnames: vec![],
        severities: vec!["critical".into()],
        headers: vec![],
        auth: Auth::None,
        secret: None,
        queue_capacity: capacity,
        resend_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        group_by: vec!["target".into()],
        group_wait: Duration::from_secs(10),
        group_interval: Duration::from_secs(60),
        max_per_minute: 0,
    }
}

/// A dispatcher whose queue the test reads instead of a delivery task.
fn dispatcher(r: Receiver) -> (Dispatcher, mpsc::Receiver<Input>, Arc<ReceiverStats>) {
    let (tx, rx) = mpsc::channel(r.queue_capacity);
    let stats = Arc::new(ReceiverStats::default());
    let outlet = Outlet {
        receiver: Arc::new(r),
        tx,
        stats: stats.clone(),
        last_sent: None,
        resolved: Vec::new(),
    };
    let d = Dispatcher {
        outlets: vec![outlet],
        external_url: "http://outrider/".into(),
        last_dispatch: None,
        tick: 0.0,
    };
    (d, rx, stats)
}

fn alert(name: &'static str, severity: &str, ends_at: Option<f64>) -> Alert {
    let mut a = Alert::example(name, "app", severity, ends_at);
    a.labels.remove("target");
    a.annotations.clear();
    a
}

fn body(input: Input) -> serde_json::Value {
    match input {
        Input::Message(m) => serde_json::from_slice(&m.body).unwrap(),
        Input::Alerts(a) => panic!("alerts, not a message: {a:?}"),
    }
}

#[test]
fn one_input_per_tick_a_full_channel_drops_and_counts_and_severities_filter() {
    let (mut d, mut rx, stats) = dispatcher(receiver(ReceiverKind::Webhook, 1));
    let t = vec![
        Transition::Fired(alert("TargetDown", "critical", None)),
        Transition::Fired(alert("CpuOverAllocated", "info", None)),
        Transition::Fired(alert("OOMKilled", "critical", None)),
    ];
    d.dispatch(&t, &[], 1.0);
    d.dispatch(&t, &[], 2.0);
    assert_eq!(
        stats.dropped.load(Ordering::Relaxed),
        1,
        "the second tick did not fit"
    );
    let Ok(Input::Alerts(alerts)) = rx.try_recv() else {
        panic!("no alerts queued")
    };
    let names: Vec<&str> = alerts.iter().map(|a| a.alertname).collect();
    assert_eq!(
        names,
        ["TargetDown", "OOMKilled"],
        "the info alert is not for this receiver"
    );
    assert!(rx.try_recv().is_err());
}

#[test]
fn alertmanager_resends_firing_every_interval_and_resolved_for_a_while() {
    let (mut d, mut rx, _) = dispatcher(receiver(ReceiverKind::Alertmanager, 100));
    let firing = alert("TargetDown", "critical", None);
    d.dispatch(
        &[Transition::Fired(firing.clone())],
        std::slice::from_ref(&firing),
        100.0,
    );
    let b = body(rx.try_recv().unwrap());
    assert_eq!(b[0]["endsAt"], payload::rfc3339(100.0 + 240.0));
    d.dispatch(&[], std::slice::from_ref(&firing), 159.0);
    assert!(rx.try_recv().is_err(), "59 s: not yet due");
    d.dispatch(&[], std::slice::from_ref(&firing), 160.0);
    assert_eq!(
        body(rx.try_recv().unwrap())[0]["endsAt"],
        payload::rfc3339(400.0)
    );
    let gone = alert("TargetDown", "critical", Some(170.0));
    d.dispatch(&[Transition::Resolved(gone)], &[], 170.0);
    assert_eq!(
        body(rx.try_recv().unwrap())[0]["endsAt"],
        payload::rfc3339(170.0)
    );
    d.dispatch(&[], &[], 230.0);
    assert_eq!(
        body(rx.try_recv().unwrap())[0]["endsAt"],
        payload::rfc3339(170.0)
    );
    // 15 minutes after it resolved, it is no longer sent; nothing else is.
    d.dispatch(&[], &[], 170.0 + 901.0);
    assert!(rx.try_recv().is_err());
}

/// Re-sends come at ticks: where those are longer than the re-send interval, a
/// firing alert must outlast 4 of them, or Alertmanager resolves it between two
/// (a live Alertmanager paged resolved and firing every 5 s at 1 s re-sends and
/// 5 s ticks). And a re-send a hair short of its interval by the clock's rounding
/// goes at that tick, not the next.
#[test]
fn a_firing_alert_outlasts_four_ticks_longer_than_its_resend_interval() {
    let mut r = receiver(ReceiverKind::Alertmanager, 100);
    r.resend_interval = Duration::from_secs(1);
    let (mut d, mut rx, _) = dispatcher(r);
    let firing = alert("TargetDown", "critical", None);
    d.dispatch(&[], &[], 95.0);
    d.dispatch(
        &[Transition::Fired(firing.clone())],
        std::slice::from_ref(&firing),
        100.0,
    );
    assert_eq!(
        body(rx.try_recv().unwrap())[0]["endsAt"],
        payload::rfc3339(120.0)
    );
    d.dispatch(&[], std::slice::from_ref(&firing), 105.0);
    assert_eq!(
        body(rx.try_recv().unwrap())[0]["endsAt"],
        payload::rfc3339(125.0)
    );
    // Half-second ticks against a 1 s interval: 0.9999 s later is due.
    d.dispatch(&[], std::slice::from_ref(&firing), 105.5);
    assert!(rx.try_recv().is_err(), "half an interval: not due");
    d.dispatch(&[], std::slice::from_ref(&firing), 105.9999);
    assert!(rx.try_recv().is_ok(), "due within the clock's rounding");
}

#[test]
fn an_alert_firing_again_is_not_followed_by_its_old_resolved_copy() {
    let (mut d, mut rx, _) = dispatcher(receiver(ReceiverKind::Alertmanager, 100));
    let firing = alert("TargetDown", "critical", None);
    d.dispatch(
        &[Transition::Fired(firing.clone())],
        std::slice::from_ref(&firing),
        100.0,
    );
    let gone = alert("TargetDown", "critical", Some(200.0));
    d.dispatch(&[Transition::Resolved(gone)], &[], 200.0);
    let _ = (rx.try_recv().unwrap(), rx.try_recv().unwrap());
    // Fires again within the 15 minutes resolved alerts are re-sent for (the
    // tick before it 1 s earlier: re-sends are not put off past the interval).
    d.dispatch(&[], &[], 399.0);
    while rx.try_recv().is_ok() {}
    d.dispatch(&[Transition::Fired(firing.clone())], &[firing], 400.0);
    let b = body(rx.try_recv().unwrap());
    let alerts = b.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{b}");
    assert_eq!(alerts[0]["endsAt"], payload::rfc3339(400.0 + 240.0));
}

#[test]
fn secrets_do_not_print() {
    let a = Auth::Bearer(Secret("hunter2".into()));
    assert_eq!(format!("{a:?}"), "Bearer(<secret>)");
}
