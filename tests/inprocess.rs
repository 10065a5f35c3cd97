//! The whole of Outrider in-process: bound on 127.0.0.1:0, stopped by a oneshot.

mod util;

use util::inprocess::InProcess;

#[tokio::test]
async fn a_run_in_process_watches_its_target_serves_and_stops_on_the_oneshot() {
    // Outrider leaves its own pid out of every group, and in-process that is ours:
    // watch a child.
    let child = util::Group::spawn(std::process::Command::new("sleep").arg("60")).unwrap();
    let me = child.pid();
    let o = InProcess::start(&format!(
        "[sampling]\ninterval = \"100ms\"\n[[targets]]\nname = \"sleep\"\npid = {me}\n"
    ))
    .await;
    let status = o
        .wait_status("the child sampled, with verdicts", |s| {
            let t = &s["snapshot"]["targets"][0];
            t["name"] == "sleep" && t["up"] == true && t["verdicts"].is_object()
        })
        .await;
    let t = &status["snapshot"]["targets"][0];
    assert_eq!(t["main_pid"], me, "{t}");
    assert!(t["resident_memory_bytes"].as_u64().unwrap() > 0, "{t}");
    assert!(t["threads"].as_u64().unwrap() >= 1, "{t}");
    let (code, metrics) = o.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("outrider_target_up{target=\"sleep\"} 1"),
        "{metrics}"
    );
    let outcome = o.stop().await;
    drop(child); // stops the sleep, also when an assertion above fails
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(outcome.app_exit_code, None);
}
