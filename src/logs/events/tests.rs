use super::*;
use crate::logs::classify::Classifier;

/// Feeds `text` line by line, all at one instant, classified for real.
fn group(text: &str) -> EventCounts {
    let classifier = Classifier::default();
    let mut grouper = EventAssembler::default();
    let now = Instant::now();
    for line in text.lines() {
        let c = classifier.classify(line.as_bytes());
        grouper.push(line.as_bytes(), c.severity, now);
    }
    grouper.finish();
    grouper.counts()
}

fn counts(error: u64, warning: u64, info: u64, debug: u64, unknown: u64) -> EventCounts {
    EventCounts {
        error,
        warning,
        info,
        debug,
        unknown,
    }
}

const PYTHON_LOGGING_EXCEPTION: &str = r#"2024-05-01 10:00:00,001 INFO app: handling request 42
2024-05-01 10:00:00,120 ERROR app: payment failed for order 42
Traceback (most recent call last):
  File "/srv/app/payments.py", line 88, in charge
    resp = client.post(url, json=body, timeout=5)
  File "/usr/lib/python3.12/site-packages/httpx/_client.py", line 1145, in post
    return self.request(
           ^^^^^^^^^^^^^
httpx.ConnectTimeout: timed out
2024-05-01 10:00:00,121 INFO app: handling request 43
"#;

#[test]
fn python_logging_exception_is_one_error_with_its_head() {
    assert_eq!(group(PYTHON_LOGGING_EXCEPTION), counts(1, 0, 2, 0, 0));
}

#[test]
fn python_traceback_after_an_info_line_is_its_own_error() {
    let text = r#"INFO:root:starting worker
Traceback (most recent call last):
  File "worker.py", line 3, in <module>
    main()
  File "worker.py", line 2, in main
    int("x")
ValueError: invalid literal for int() with base 10: 'x'
INFO:root:worker restarted
"#;
    assert_eq!(group(text), counts(1, 0, 2, 0, 0));
}

#[test]
fn python_chained_traceback_is_one_event() {
    let text = r#"Traceback (most recent call last):
  File "db.py", line 10, in get
    return self.rows[key]
           ~~~~~~~~~^^^^^
KeyError: 'user:7'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "db.py", line 12, in get
    raise LookupError(key) from None
LookupError: user:7
Traceback (most recent call last):
  File "other.py", line 1, in <module>
ZeroDivisionError: division by zero
WARNING:root:retrying
"#;
    // The chained pair is one event; the third traceback is another.
    assert_eq!(group(text), counts(2, 1, 0, 0, 0));
}

const JAVA: &str = "2024-05-01 10:00:00.000 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() threw exception
java.lang.IllegalStateException: order 42 has no items
\tat com.example.shop.OrderService.checkout(OrderService.java:57)
\tat com.example.shop.OrderController.post(OrderController.java:31)
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)
Caused by: java.sql.SQLException: connection closed
\tat org.h2.jdbc.JdbcConnection.checkClosed(JdbcConnection.java:1553)
\t... 48 more
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.Io.close(Io.java:9)
2024-05-01 10:00:00.010  INFO 1 --- [nio-8080-exec-2] c.e.shop.OrderController : GET /orders
";

#[test]
fn java_trace_with_causes_is_one_error_with_its_head() {
    assert_eq!(group(JAVA), counts(1, 0, 1, 0, 0));
}

#[test]
fn java_exception_without_a_head_is_its_own_error() {
    let text = "2024-05-01 DEBUG polling
Exception in thread \"main\" java.lang.NullPointerException: Cannot invoke \"String.length()\"
\tat Main.main(Main.java:5)
2024-05-01 DEBUG polling
";
    assert_eq!(group(text), counts(1, 0, 0, 2, 0));
}

const GO_PANIC: &str = "2024/05/01 10:00:00 listening on :8080
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 18 [running]:
main.(*Server).handle(0x0, {0x6d0c48, 0xc00007e0c0})
\t/src/server.go:42 +0x2c
net/http.HandlerFunc.ServeHTTP(0xc000118000?, {0x6d0c48?, 0xc00007e0c0?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2166 +0x29
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3285 +0x4b4

goroutine 1 [IO wait]:
internal/poll.runtime_pollWait(0x7f2c, 0x72)
\t/usr/local/go/src/runtime/netpoll.go:345 +0x85
exit status 2
";

#[test]
fn go_panic_with_goroutine_dump_is_one_error() {
    assert_eq!(group(GO_PANIC), counts(1, 0, 0, 0, 1));
}

#[test]
fn a_go_panic_after_exit_status_is_the_next_runs_error() {
    // `go run` in a restart loop: each crash ends with `exit status 2`.
    let panic = GO_PANIC.split_once('\n').unwrap().1;
    let twice = format!("{panic}{panic}");
    assert_eq!(group(&twice), counts(2, 0, 0, 0, 0));
    // A re-panic inside one crash is still that crash's.
    let repanic = "panic: boom [recovered]\n\tpanic: boom\npanic: again\n\ngoroutine 1 [running]:\nexit status 2\n";
    assert_eq!(group(repanic), counts(1, 0, 0, 0, 0));
}

const RUST_PANIC: &str = "[2024-05-01T10:00:00Z INFO  app] starting
thread 'main' panicked at src/main.rs:14:9:
called `Option::unwrap()` on a `None` value
stack backtrace:
   0: rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   1: core::panicking::panic_fmt
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14
   2: app::main
             at ./src/main.rs:14:9
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
[2024-05-01T10:00:01Z INFO  app] restarted
";

#[test]
fn rust_panic_with_backtrace_is_one_error() {
    assert_eq!(group(RUST_PANIC), counts(1, 0, 2, 0, 0));
    let short = "thread 'tokio-runtime-worker' panicked at src/lib.rs:3:5:
boom
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
WARN next
";
    assert_eq!(group(short), counts(1, 1, 0, 0, 0));
}

#[test]
fn consecutive_error_lines_are_separate_events() {
    let text = "ERROR one\nERROR two\n\nERROR three\n";
    assert_eq!(group(text), counts(3, 0, 0, 0, 0));
}

#[test]
fn blank_lines_are_not_events_and_do_not_split_a_head_from_its_trace() {
    let text = "\n   \nERROR failed\n\nTraceback (most recent call last):\n  File \"x\", line 1\nOSError: x\n";
    assert_eq!(group(text), counts(1, 0, 0, 0, 0));
}

#[test]
fn jvm_frames_right_after_an_error_line_belong_to_it() {
    let text = "ERROR request failed\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nINFO ok\n";
    assert_eq!(group(text), counts(1, 0, 1, 0, 0));
}

#[test]
fn held_error_is_flushed_when_idle() {
    let t0 = Instant::now();
    let mut g = EventAssembler::new(Duration::from_millis(500));
    g.push(b"ERROR failed", Severity::Error, t0);
    g.flush_if_idle(t0 + Duration::from_millis(499));
    assert_eq!(g.counts().error, 0, "held: a trace may still follow");
    assert!(g.is_holding());
    g.flush_if_idle(t0 + Duration::from_millis(500));
    assert_eq!(g.counts().error, 1);
    assert!(!g.is_holding());
    g.flush_if_idle(t0 + Duration::from_secs(10));
    g.finish();
    assert_eq!(g.counts().error, 1, "flushed once");
}

#[test]
fn trace_arriving_after_the_flush_timeout_is_a_new_event() {
    let t0 = Instant::now();
    let mut g = EventAssembler::new(Duration::from_millis(500));
    g.push(b"ERROR failed", Severity::Error, t0);
    let t1 = t0 + Duration::from_secs(2);
    g.push(b"Traceback (most recent call last):", Severity::Error, t1);
    g.push(b"  File \"x.py\", line 1", Severity::Unknown, t1);
    g.push(b"OSError: boom", Severity::Error, t1);
    assert_eq!(g.counts().error, 1, "the head alone, closed by the gap");
    g.finish();
    assert_eq!(g.counts().error, 2);
}

#[test]
fn trace_within_the_timeout_joins_its_head() {
    let t0 = Instant::now();
    let mut g = EventAssembler::new(Duration::from_millis(500));
    g.push(b"ERROR failed", Severity::Error, t0);
    let t1 = t0 + Duration::from_millis(100);
    g.push(b"Traceback (most recent call last):", Severity::Error, t1);
    g.push(b"  File \"x.py\", line 1", Severity::Unknown, t1);
    g.push(b"OSError: boom", Severity::Error, t1);
    g.push(b"INFO next", Severity::Info, t1);
    assert_eq!(g.counts(), counts(1, 0, 1, 0, 0));
}

#[test]
fn counts_add_up() {
    let mut a = counts(1, 2, 3, 4, 5);
    a += counts(1, 1, 1, 1, 1);
    assert_eq!(a, counts(2, 3, 4, 5, 6));
    assert_eq!(a.total(), 20);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        r#"{"error":2,"warning":3,"info":4,"debug":5,"unknown":6}"#
    );
}

#[test]
fn with_no_flush_delay_no_line_joins_another_even_at_one_instant() {
    // The deadline is kept per instant (one addition per chunk, not per line): a
    // zero delay must still close every event at the next line, as it did per line.
    let t0 = Instant::now();
    let mut g = EventAssembler::new(Duration::ZERO);
    g.push(b"ERROR failed", Severity::Error, t0);
    g.push(b"Traceback (most recent call last):", Severity::Error, t0);
    assert_eq!(g.counts().error, 1, "the head, closed by the next line");
    g.push(b"  File \"x.py\", line 1", Severity::Unknown, t0);
    g.push(b"OSError: boom", Severity::Error, t0);
    g.finish();
    assert_eq!(g.counts(), counts(3, 0, 0, 0, 1));
}
