//! The command line: bad configs exit 64 with every problem named; check-config.

mod util;

use std::process::Command;

use util::BIN;

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outrider.toml");
    std::fs::write(&path, text).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

#[test]
fn bad_configs_exit_64_naming_each_problem() {
    let cases = [
        ("[http]\nlisen = \"0.0.0.0:1\"\n", "http.lisen: unknown key"),
        (
            "[[targets]]\nname = \"a\"\ncmdline = \"(\"\n",
            "targets[0].cmdline: bad regex",
        ),
        (
            "[sampling]\ninterval = \"fast\"\n",
            "sampling.interval: \"fast\" is not a duration",
        ),
        ("[sampling]\ninterval = 5\n", "invalid type"),
        ("[http\n", "not valid TOML"),
    ];
    for (text, needle) in cases {
        let (_dir, path) = config(text);
        // A port that must stay free: the process exits before binding it.
        let (code, _, err) = run(&["--config", &path, "--listen", "127.0.0.1:0"], &[]);
        assert_eq!(code, Some(64), "{text:?}: {err}");
        assert!(
            err.contains(needle),
            "{text:?}: expected {needle:?} in {err}"
        );
    }
    let (code, _, err) = run(&["--config", "/nonexistent/outrider.toml"], &[]);
    assert_eq!(code, Some(64));
    assert!(err.contains("/nonexistent/outrider.toml"), "{err}");
}

#[test]
fn all_problems_are_listed_at_once() {
    let (_dir, path) = config("[http]\nlisten = \"x\"\n[sampling]\ninterval = \"y\"\n");
    let (code, _, err) = run(
        &["check-config", "--config", &path],
        &[("OUTRIDER_HTTP__COLOUR", "red")],
    );
    assert_eq!(code, Some(64));
    assert!(err.contains("3 problems"), "{err}");
    for needle in [
        "http.listen",
        "sampling.interval",
        "http.colour (set by OUTRIDER_HTTP__COLOUR): unknown key",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let (code, _, _) = run(&["--no-such-flag"], &[]);
    assert_eq!(code, Some(64));
    let (code, _, _) = run(&["--pid", "abc"], &[]);
    assert_eq!(code, Some(64));
}

#[test]
fn check_config_prints_the_effective_config() {
    let (code, out, err) = run(
        &["check-config", "--interval", "2s"],
        &[("OUTRIDER_HTTP__LISTEN", "127.0.0.1:9999")],
    );
    assert_eq!(code, Some(0), "{err}");
    let v: toml::Table = out.parse().unwrap();
    assert_eq!(v["http"]["listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(v["sampling"]["interval"].as_str(), Some("2s"));
    assert_eq!(v["lifecycle"]["shutdown_grace"].as_str(), Some("1s"));
}

#[test]
fn the_example_config_checks_out() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/outrider.toml");
    let (code, _, err) = run(&["check-config", "--config", path], &[]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_demo_uses_short_windows_and_a_stated_allocation() {
    let mut o = util::Outrider::start(&["demo", "--interval", "200ms"]);
    let v = o.wait_metric(
        "outrider_target_cpu_request_cores",
        &[("target", "demo-app")],
        |_| true,
    );
    assert_eq!(v, 0.5);
    assert_eq!(
        o.metric(
            "outrider_target_memory_limit_bytes",
            &[("target", "demo-app")]
        ),
        Some(512.0 * 1048576.0)
    );
    let (_, status) = util::get(o.addr, "/summary.txt", None);
    assert!(status.contains("a verdict needs 1 min"), "{status}");
    // The demo shows issue 8's figures too: workers, connections, response times.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let shows_all = |s: &str| {
        s.contains("Workers: 2 prefork workers")
            && s.contains("  tcp: ")
            && s.contains("requests: ")
            && s.contains(" p95 ")
    };
    let mut status = String::new();
    while std::time::Instant::now() < deadline && !shows_all(&status) {
        std::thread::sleep(std::time::Duration::from_millis(300));
        status = util::get(o.addr, "/summary.txt", None).1;
    }
    assert!(shows_all(&status), "{status}");
    // The demo wraps its app: SIGTERM reaches it, and its death by SIGTERM (128 + 15)
    // is the exit status.
    let exit = o.terminate();
    assert_eq!(exit.code(), Some(143), "{exit:?}");
}
