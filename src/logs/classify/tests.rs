use super::markers::*;
use super::*;

fn severity(line: &str) -> Severity {
    Classifier::default().classify(line.as_bytes()).severity
}

fn http(line: &str) -> Option<&'static str> {
    Classifier::default()
        .classify(line.as_bytes())
        .http
        .map(StatusClass::as_str)
}

#[track_caller]
fn check(expected: Severity, lines: &[&str]) {
    for line in lines {
        assert_eq!(severity(line), expected, "line: {line:?}");
    }
}

#[test]
fn errors_in_common_formats() {
    check(
        Severity::Error,
        &[
            "ERROR:root:payment failed",
            "2024-01-01 12:00:00,123 ERROR [main] c.e.Service - failed",
            "2024-01-01T00:00:00.000000Z ERROR app::db: connection refused",
            "\x1b[31mERROR\x1b[0m something broke",
            "2024/01/01 00:00:00 [error] 12#0: *1 open() failed",
            "2024-01-01T00:00:00.000Z\terror\tmain.go:12\tboom",
            "error: could not compile `x`",
            "npm ERR! code ENOENT",
            "[2024-01-01 00:00:00] CRITICAL: disk full",
            "FATAL: database is shutting down",
            "Traceback (most recent call last):",
            "panic: runtime error: index out of range [5] with length 3",
            "fatal error: all goroutines are asleep - deadlock!",
            "thread 'main' panicked at src/main.rs:4:5:",
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "java.lang.NullPointerException: null",
            "ValueError: invalid literal for int() with base 10: 'x'",
            "Error: ENOENT: no such file or directory",
            "Unhandled exception. System.InvalidOperationException: bad state",
            "E1123 12:00:00.000000       1 controller.go:114] sync failed",
            "E0101 00:00:01.5 boot",
            "level=error msg=\"db down\"",
            "ts=2024-01-01 lvl=crit msg=x",
            r#"{"level":"error","msg":"db down"}"#,
            r#"{"severity":"ERROR","message":"x"}"#,
            r#"{"msg":"x","level":50}"#,
            r#"{"msg":"x","level":60}"#,
            r#"{"log":{"level":"error"},"message":"ecs"}"#,
            r#"{"log.level":"error","message":"ecs dotted"}"#,
        ],
    );
}

#[test]
fn other_levels() {
    check(
        Severity::Warning,
        &[
            "WARNING:root:disk 91% full",
            "2024-01-01 WARN  retrying",
            "W1123 12:00:00.000000 1 x.go:1] slow",
            "level=warn msg=slow",
            r#"{"level":40}"#,
            r#"{"lvl":"warning"}"#,
            "[warn] low memory",
        ],
    );
    check(
        Severity::Info,
        &[
            "INFO:     127.0.0.1:5000 - \"GET / HTTP/1.1\" 200 OK",
            "I1123 12:00:00.000000 1 x.go:1] started",
            r#"{"level":30,"msg":"hi"}"#,
            "level=info msg=\"ERROR in message is not the level\"",
            "info: listening on 8080",
            // The first marker wins: the level comes before the message.
            "INFO request failed upstream with ERROR 502",
        ],
    );
    check(
        Severity::Debug,
        &[
            "DEBUG cache miss",
            r#"{"level":20}"#,
            r#"{"level":10}"#,
            "level=trace x=1",
        ],
    );
}

#[test]
fn counts_and_words_are_not_levels() {
    check(
        Severity::Unknown,
        &[
            "processed 100 records, error=0",
            "stats: errors: 0, warnings: 0",
            "finished with no errors",
            "0 errors, 0 warnings",
            "error_count=0 retries=3",
            "ERROR=0 WARN=0",
            "ERRORS: 0",
            "completed: ERROR: 0",
            "no ERROR found",
            "0 ERROR",
            "without error",
            "the error handler was registered",
            "ErrorHandler registered",
            "information about warnings",
            "my_error_budget is fine",
            "debugging is off",
            "GET /errors 200",
            // glog needs its time: `E0101` alone may be an error code in a message.
            "E0101 boot",
            "",
            "\0\u{1}\u{2}",
            r#"{"msg":"x","errors":0}"#,
        ],
    );
}

#[test]
fn level_words_past_the_head_are_message_text() {
    let line = format!("{} ERROR", "x ".repeat(200));
    assert_eq!(severity(&line), Severity::Unknown);
    let line = format!("{} ERROR", "x ".repeat(100));
    assert_eq!(severity(&line), Severity::Error);
}

#[test]
fn json_level_beats_text_and_falls_back_to_it() {
    check(
        Severity::Info,
        &[r#"{"level":"info","msg":"ERROR rate dropped"}"#],
    );
    check(
        Severity::Error,
        &[r#"{"msg":"ERROR without a level field","n":1}"#],
    );
    // A key in a nested object or a string is not a top-level level field.
    check(
        Severity::Unknown,
        &[r#"{"ctx":{"level":"error"},"msg":"\"level\":\"error\""}"#],
    );
}

#[test]
fn invalid_utf8_is_classified() {
    assert_eq!(
        Classifier::default()
            .classify(b"\xff\xfe ERROR \xc3 broken")
            .severity,
        Severity::Error
    );
}

#[test]
fn access_lines() {
    assert_eq!(
        http(
            r#"127.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /a?b=c HTTP/1.1" 200 612 "-" "curl/8""#
        ),
        Some("2xx")
    );
    assert_eq!(
        http(r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "POST /x HTTP/2.0" 503 0"#),
        Some("5xx")
    );
    assert_eq!(
        http(r#"[2024-01-01 00:00:00 +0000] [7] [INFO] 10.0.0.2 - - "GET /y HTTP/1.0" 404 9"#),
        Some("4xx")
    );
    assert_eq!(
        http(r#"INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 301 Moved Permanently"#),
        Some("3xx")
    );
    assert_eq!(http(r#"{"status":500,"path":"/x"}"#), Some("5xx"));
    assert_eq!(http(r#"{"status_code":"404"}"#), Some("4xx"));
    assert_eq!(http(r#"{"statusCode":201}"#), Some("2xx"));
    assert_eq!(http(r#"{"status":"ok"}"#), None);
    assert_eq!(http(r#""GET / HTTP/1.1" 101 Switching"#), None);
    assert_eq!(http(r#"fetching "GET / HTTP/1.1" 2000 bytes"#), None);
    assert_eq!(http("upgraded to HTTP/2 200 times"), None);
    assert_eq!(http("ERROR 500 internal"), None);
}

#[test]
fn user_rules_come_first_and_in_order() {
    let classifier = Classifier::new(&[
        Rule {
            pattern: "healthz".into(),
            action: "ignore".parse().unwrap(),
        },
        Rule {
            pattern: r"^\[SEVERE\]|out of memory".into(),
            action: "error".parse().unwrap(),
        },
        Rule {
            pattern: "memory".into(),
            action: "debug".parse().unwrap(),
        },
    ])
    .unwrap();
    let c = classifier.classify(br#"ERROR "GET /healthz HTTP/1.1" 500 0"#);
    assert_eq!((c.ignored, c.http), (true, None));
    let c = classifier.classify(b"INFO java: out of memory");
    assert_eq!((c.severity, c.ignored), (Severity::Error, false));
    assert_eq!(
        classifier.classify(b"ERROR memory low").severity,
        Severity::Debug
    );
    assert_eq!(
        classifier.classify(b"WARN other").severity,
        Severity::Warning
    );
    assert!(Classifier::new(&[Rule {
        pattern: "(".into(),
        action: RuleAction::Ignore
    }])
    .is_err());
    assert!("fatal".parse::<RuleAction>().is_err());
}

#[test]
fn labels() {
    let labels: Vec<_> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(labels, ["error", "warning", "info", "debug", "unknown"]);
    let labels: Vec<_> = StatusClass::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(labels, ["2xx", "3xx", "4xx", "5xx"]);
}

#[test]
fn logfmt_keys_take_precedence_in_order() {
    // `level=` before `lvl=` before `severity=`, wherever each stands in the line.
    check(Severity::Info, &["severity=error lvl=warn level=info"]);
    check(
        Severity::Warning,
        &["severity=error level=nonsense lvl=warn"],
    );
    check(Severity::Error, &["msg=x\tseverity=\"error\""]);
    // Only a whole key counts: `loglevel=`, `x.level=`, `a=level=` are other keys.
    check(
        Severity::Unknown,
        &[
            "loglevel=error",
            "x.level=error",
            "a=level=error",
            "level=",
            "=error",
        ],
    );
    // A line of `=` signs is read in one pass.
    let long = "=".repeat(60_000);
    check(Severity::Unknown, &[long.as_str()]);
}

/// The text-marker scan as first written, byte by byte: the reference the faster
/// scan in `text_marker` must agree with.
fn text_marker_bytewise(line: &[u8]) -> Option<Severity> {
    if let Some(s) = line_start_marker(line) {
        return Some(s);
    }
    let head = &line[..line.len().min(HEAD_BYTES)];
    let mut before = OPENER;
    let mut i = 0;
    while i < head.len() {
        let class = BYTE_CLASS[usize::from(head[i])];
        if class & WORD == 0 {
            if class & ESC != 0 {
                i = skip_ansi(head, i);
                before = 0;
            } else {
                before = class;
                i += 1;
            }
            continue;
        }
        let start = i;
        i += 1;
        while i < line.len() && is_word(line[i]) {
            i += 1;
        }
        if class & UPPER != 0 || before & OPENER != 0 {
            if let Some(s) = token_marker(line, start, i) {
                return Some(s);
            }
        }
        before = 0;
    }
    None
}

#[test]
fn the_fast_text_scan_agrees_with_the_bytewise_one() {
    // Lines built from pieces that exercise every branch: capitals inside and at the
    // start of tokens, openers, ANSI codes (with upper-case final bytes), counts,
    // and the 256-byte head boundary.
    const PIECES: [&str; 43] = [
        "\u{1}",
        "é",
        "Handler_2",
        "ERROR",
        "error",
        "Warn",
        "info",
        "DEBUG",
        "errorHandler",
        "xERROR",
        "[",
        "]",
        "<",
        ">",
        "(",
        ")",
        "|",
        "\t",
        " ",
        ":",
        "=",
        "0",
        "no ",
        "\x1b[31m",
        "\x1b[K",
        "\x1b",
        "NullPointerException",
        "GET",
        "2024-05-01",
        "_",
        "Traceback",
        // Capitals that cannot start a level word, before and inside tokens.
        "RuntimeException",
        "GetError",
        "Mozilla",
        "X11",
        "myError",
        "HTTP",
        "xException",
        "Exception",
        "GetWARN",
        // Tokens that start with a digit or `_` and hold a capital that can start a
        // marker: passed over from their first byte.
        "7",
        "1ERROR",
        "_Warn",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..200_000 {
        let len = next(12) + if next(8) == 0 { 60 } else { 0 };
        let mut line = String::new();
        for _ in 0..len {
            line.push_str(PIECES[next(PIECES.len())]);
        }
        let line = line.as_bytes();
        let word_end = line.iter().position(|&b| !is_word(b)).unwrap_or(line.len());
        if word_end > 0 {
            assert_eq!(token_end(line, 0), word_end);
        }
        assert_eq!(
            text_marker(line),
            text_marker_bytewise(line),
            "line: {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn level_words_in_any_case_and_nothing_else() {
    let words = [
        ("error", Severity::Error),
        ("ERR", Severity::Error),
        ("Critical", Severity::Error),
        ("crit", Severity::Error),
        ("FATAL", Severity::Error),
        ("severe", Severity::Error),
        ("Alert", Severity::Error),
        ("emerg", Severity::Error),
        ("EMERGENCY", Severity::Error),
        ("panic", Severity::Error),
        ("warn", Severity::Warning),
        ("WaRnInG", Severity::Warning),
        ("INFO", Severity::Info),
        ("notice", Severity::Info),
        ("Debug", Severity::Debug),
        ("TRACE", Severity::Debug),
    ];
    for (word, expected) in words {
        assert_eq!(
            Severity::from_level_word(word.as_bytes()),
            Some(expected),
            "{word}"
        );
    }
    // Near misses: other lengths, a byte that is not a letter but ORs to one
    // (`@` is 0x40, `` ` `` 0x60), digits, NUL, non-ASCII.
    for word in [
        "errors",
        "er",
        "erro",
        "err0r",
        "inf0",
        "inf",
        "emergencyy",
        "i\u{0}fo",
        "IN@O",
        "in`o",
        "wärn",
        "get",
        "HTTP",
        "",
    ] {
        assert_eq!(Severity::from_level_word(word.as_bytes()), None, "{word:?}");
    }
}

#[test]
fn string_ends_agree_with_a_plain_search() {
    // Strings of quotes, backslashes and letters around the 16-byte chunk.
    let reference = |s: &[u8], mut i: usize| loop {
        let j = i + s.get(i..)?.iter().position(|&b| b == b'"' || b == b'\\')?;
        if s[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2;
    };
    let mut state = 0x1234_5678_9abc_def1_u64;
    for _ in 0..100_000 {
        let mut line = Vec::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 48) as usize;
        for k in 0..len {
            line.push(match (state >> (k % 60)) % 11 {
                0 => b'"',
                1 => b'\\',
                _ => b'a',
            });
        }
        for start in 0..=line.len() + 1 {
            assert_eq!(
                string_end(&line, start),
                reference(&line, start),
                "{:?} from {start}",
                String::from_utf8_lossy(&line)
            );
        }
    }
}
