//! Secrets never leave (#16): the real binary, given configs holding a recognisable
//! secret through every way a mistake can be made, never prints it; a receiver that
//! refuses and echoes its URL's path does not bring it back into the logs, metrics,
//! status or spool; a non-UTF-8 environment is no panic.

mod util;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::Duration;

use util::{Outrider, BIN};

const SECRET: &str = "xoxb-SECRET-123";

/// Runs the binary with `args` and `env`; its exit code, stdout and stderr.
fn run(args: &[&str], env: &[(&OsStr, &OsStr)]) -> (Option<i32>, String, String) {
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

/// `check-config` of `text` with `env` (plain strings).
fn check(text: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outrider.toml");
    std::fs::write(&path, text).unwrap();
    let env: Vec<(&OsStr, &OsStr)> = env
        .iter()
        .map(|(k, v)| (OsStr::new(k), OsStr::new(v)))
        .collect();
    run(&["check-config", "--config", path.to_str().unwrap()], &env)
}

fn assert_no_secret(what: &str, out: &str) {
    assert!(!out.contains(SECRET), "{what}: the secret leaked:\n{out}");
    // Nor a part of it long enough to matter.
    assert!(!out.contains("SECRET-123"), "{what}: part leaked:\n{out}");
}

const HEAD: &str = "[[receivers]]\nname = \"s\"\nkind = \"slack\"\n";

#[test]
fn config_errors_name_the_key_and_line_never_the_secret() {
    let cases = [
        (
            "a syntax error on the url's line",
            format!("{HEAD}url = \"https://hooks.slack.com/services/{SECRET}\n"),
            "line 4, column",
        ),
        (
            "a type error on bearer_token",
            format!("{HEAD}url = \"http://127.0.0.1:1/\"\nbearer_token = [\"{SECRET}\"]\n"),
            "receivers.0.bearer_token (config file",
        ),
        (
            "a string where a table goes",
            format!("{HEAD}url = \"http://127.0.0.1:1/\"\nbasic_auth = \"user:{SECRET}\"\n"),
            "receivers.0.basic_auth (config file",
        ),
        (
            "an unknown key next to the secret",
            format!("{HEAD}url = \"https://h/{SECRET}\"\nbearer_toke = \"{SECRET}\"\n"),
            "unknown field `bearer_toke`",
        ),
        (
            "a url that is not http",
            format!("{HEAD}url = \"{SECRET}\"\n"),
            "receivers[0].url: must start with http",
        ),
        (
            "a duplicate key",
            format!("{HEAD}url = \"https://h/{SECRET}\"\nurl = \"https://h/{SECRET}\"\n"),
            "line 5, column 1",
        ),
    ];
    for (what, text, needle) in cases {
        let (code, out, err) = check(&text, &[]);
        assert_eq!(code, Some(64), "{what}: {err}");
        assert_no_secret(what, &(out + &err));
        assert!(err.contains(needle), "{what}: expected {needle:?} in {err}");
    }
}

#[test]
fn environment_overrides_with_bad_values_never_show_them() {
    let receiver = [
        ("OUTRIDER_RECEIVERS__0__NAME", "s"),
        ("OUTRIDER_RECEIVERS__0__KIND", "slack"),
    ];
    let cases: [(&str, &str, &str); 3] = [
        (
            "OUTRIDER_RECEIVERS__0__URL",
            SECRET,
            "receivers[0].url: must",
        ),
        (
            "OUTRIDER_RECEIVERS__0__BASIC_AUTH",
            SECRET,
            "receivers.0.basic_auth (set by OUTRIDER_RECEIVERS__0__BASIC_AUTH)",
        ),
        (
            "OUTRIDER_RECEIVERS__0__URL",
            "[\"xoxb-SECRET-123\"]",
            "receivers.0.url (set by OUTRIDER_RECEIVERS__0__URL)",
        ),
    ];
    for (var, value, needle) in cases {
        let mut env = receiver.to_vec();
        env.push((var, value));
        let (code, out, err) = check("", &env);
        assert_eq!(code, Some(64), "{var}: {err}");
        assert_no_secret(var, &(out + &err));
        assert!(err.contains(needle), "{var}: expected {needle:?} in {err}");
    }
}

#[test]
fn check_config_redacts_every_secret() {
    let text = format!(
        "{HEAD}url = \"https://user:{SECRET}@hooks.slack.com/services/{SECRET}?t={SECRET}\"\n\
         headers = {{ X-Key = \"{SECRET}\" }}\n\
         [[receivers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/{SECRET}\"\n\
         bearer_token = \"{SECRET}\"\n\
         [[receivers]]\nname = \"a\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:1/\"\n\
         basic_auth = {{ username = \"u\", password = \"{SECRET}\" }}\n"
    );
    let (code, out, err) = check(&text, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_no_secret("check-config", &(out.clone() + &err));
    // What is not secret is still shown, so the user can check it.
    assert!(
        out.contains("url = \"https://hooks.slack.com/<redacted>\""),
        "{out}"
    );
    assert!(out.contains("bearer_token = \"<redacted>\""), "{out}");
    assert!(out.contains("password = \"<redacted>\""), "{out}");
}

/// `alerts.external_url` (the alerts' generatorURL) may carry credentials too:
/// `check-config` shows its scheme, host and path, never its user, password or query.
#[test]
fn check_config_redacts_the_external_url() {
    let text = format!(
        "[alerts]\nexternal_url = \"https://ops:{SECRET}@outrider.example.com/pod/a?token={SECRET}#{SECRET}\"\n"
    );
    let (code, out, err) = check(&text, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_no_secret("check-config", &(out.clone() + &err));
    assert!(
        out.contains("external_url = \"https://<redacted>@outrider.example.com/pod/a?<redacted>\""),
        "{out}"
    );
    // A plain one is shown as it is.
    let (_, out, _) = check("[alerts]\nexternal_url = \"http://o:9717/\"\n", &[]);
    assert!(out.contains("external_url = \"http://o:9717/\""), "{out}");
}

/// A `*_file` key naming a FIFO or /dev/zero used to hang the start (the whole file
/// was read); now it is refused at once, as is a file past 64 KiB, with the key and
/// path named and never the content.
#[test]
fn secret_files_that_are_no_files_or_too_large_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = dir.path().join("big");
    std::fs::write(&big, SECRET.repeat(64 * 1024 / SECRET.len() + 1)).unwrap();
    let fits = dir.path().join("fits");
    std::fs::write(&fits, format!("{SECRET}\n")).unwrap();
    // Receiver n with `key` naming `path` (and a url, unless that is the key).
    let receiver = |n: usize, key: &str, path: &std::path::Path| {
        let url = if key == "url_file" {
            ""
        } else {
            "url = \"http://127.0.0.1:1/\"\n"
        };
        format!(
            "[[receivers]]\nname = \"w{n}\"\nkind = \"webhook\"\n{url}{key} = {:?}\n",
            path.display().to_string()
        )
    };
    let text = [
        receiver(0, "bearer_token_file", std::path::Path::new("/dev/zero")),
        receiver(1, "secret_file", &fifo),
        receiver(2, "url_file", &big),
        receiver(3, "secret_file", &fits),
    ]
    .concat();
    let config = dir.path().join("outrider.toml");
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["check-config", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("check-config hangs on a FIFO or /dev/zero");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let (code, out, err) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(code, Some(64), "{out}{err}");
    assert_no_secret("errors", &(out + &err));
    for want in [
        "receivers[0].bearer_token_file: /dev/zero is not a regular file".to_string(),
        format!(
            "receivers[1].secret_file: {} is not a regular file",
            fifo.display()
        ),
        format!("receivers[2].url_file: {} is over 64 KiB", big.display()),
    ] {
        assert!(err.contains(&want), "{want} missing from:\n{err}");
    }
    assert!(!err.contains("receivers[3]"), "a small file is fine: {err}");
}

#[test]
fn a_non_utf8_environment_is_no_panic() {
    let junk = OsStr::from_bytes(b"\xff\xfe");
    // Not ours: skipped, the configuration is fine.
    let (code, out, err) = run(&["check-config"], &[(OsStr::new("SOME_OTHER"), junk)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("[http]"), "{out}");
    let (code, _, err) = run(&["check-config"], &[(junk, OsStr::new("x"))]);
    assert_eq!(code, Some(0), "a non-UTF-8 name: {err}");
    // Ours: a configuration error naming it, exit 64, the value never shown.
    let value = OsStr::from_bytes(b"http://\xffxoxb-SECRET-123");
    let (code, out, err) = run(
        &["check-config"],
        &[(OsStr::new("OUTRIDER_RECEIVERS__0__URL"), value)],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("OUTRIDER_RECEIVERS__0__URL: the value is not valid UTF-8"),
        "{err}"
    );
    assert_no_secret("non-UTF-8 value", &(out + &err));
}

/// A receiver on loopback that refuses every request with 404, its body echoing the
/// request line (path included), as many web frameworks' error pages do.
fn echoing_refuser() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut len = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let page = format!("no route for {}", first.trim());
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{page}",
                    page.len()
                )
                .as_bytes(),
            );
            let _ = tx.send(first);
        }
    });
    (port, rx)
}

#[test]
fn a_refusing_receiver_with_the_token_in_its_path_leaks_it_nowhere() {
    let (port, requests) = echoing_refuser();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // A target that is gone: TargetDown fires on the first tick.
    let pid_file = dir.path().join("gone.pid");
    std::fs::write(&pid_file, "2147483646\n").unwrap();
    let text = format!(
        "[sampling]\ninterval = \"200ms\"\n[[targets]]\nname = \"gone\"\npid_file = {:?}\n\
         [alerts]\nspool_dir = {:?}\n{}\
         [[receivers]]\nname = \"hook\"\nkind = \"webhook\"\n\
         url = \"http://127.0.0.1:{port}/hooks/{SECRET}?token={SECRET}\"\n\
         bearer_token = \"{SECRET}\"\ngroup_wait = \"0s\"\n",
        pid_file.display().to_string(),
        spool.display().to_string(),
        util::only_rule("TargetDown", "0s"),
    );
    let mut outrider = Outrider::with_config(&text, &[], &[]);
    let first = requests
        .recv_timeout(Duration::from_secs(20))
        .expect("the receiver was called");
    // The receiver did get the token: the test can fail if Outrider leaked it.
    assert!(first.contains(SECRET), "{first}");
    let refused = || {
        outrider
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("notification refused"))
    };
    let deadline = std::time::Instant::now() + util::PATIENCE;
    while !refused() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused(), "{:?}", outrider.stderr.lock().unwrap());
    let metrics = outrider.scrape();
    let status = outrider.status().to_string();
    let page = util::get(outrider.addr, "/", None).1;
    let summary = util::get(outrider.addr, "/summary.txt", None).1;
    outrider.terminate();
    let logs = outrider.stderr.lock().unwrap().join("\n");
    assert!(logs.contains("HTTP 404"), "{logs}");
    for (what, text) in [
        ("logs", logs),
        ("/metrics", metrics),
        ("/api/v1/status", status),
        ("/", page),
        ("/summary.txt", summary),
    ] {
        assert_no_secret(what, &text);
    }
    let mut dirs = vec![spool];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let name = path.display().to_string();
                assert_no_secret(&name, &(name.clone() + &String::from_utf8_lossy(&bytes)));
            }
        }
    }
}
