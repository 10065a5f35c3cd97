//! Access lines in the shapes the servers' documentation gives for each format.

use super::*;
use crate::logs::classify::Classifier;

const OK: Option<StatusClass> = Some(StatusClass::Success);

fn parser() -> AccessParser {
    AccessParser::default()
}

/// Classifies the line as Outrider does, then reads its duration.
fn read(p: &AccessParser, line: &str) -> Option<(StatusClass, f64)> {
    let http = Classifier::default().classify(line.as_bytes()).http;
    p.request(line.as_bytes(), http)
}

fn secs(p: &AccessParser, line: &str) -> Option<f64> {
    read(p, line).map(|(_, s)| s)
}

fn close(got: Option<f64>, want: f64) {
    let got = got.unwrap_or_else(|| panic!("no duration, wanted {want}"));
    assert!((got - want).abs() <= want * 1e-9 + 1e-12, "{got} vs {want}");
}

// gunicorn: access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
const GUNICORN_DEFAULT: &str = r#"127.0.0.1 - - [07/Dec/2020:02:36:29 +0100] "GET /spec HTTP/1.1" 200 104065 "http://localhost:9000/api/docs" "Mozilla/5.0 (X11; Linux x86_64)""#;

#[test]
fn gunicorn_default_format_has_no_duration_but_the_l_and_d_variants_do() {
    let p = parser();
    assert_eq!(read(&p, GUNICORN_DEFAULT), None);
    // … "%(a)s" %(L)s: seconds with microseconds.
    close(secs(&p, &format!("{GUNICORN_DEFAULT} 0.012345")), 0.012345);
    // … "%(a)s" %(D)s: microseconds.
    let (class, s) = read(&p, &format!("{GUNICORN_DEFAULT} 12345")).unwrap();
    assert_eq!(class, StatusClass::Success);
    close(Some(s), 0.012345);
}

#[test]
fn gunicorn_configured_format_reads_each_atom() {
    let fmt = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(T)s %(M)s"#;
    let p = AccessParser::new(None, Some(fmt), Buckets::default()).unwrap();
    // %(T)s first in the atom order? No: L, D, M, T — the milliseconds win here.
    close(secs(&p, &format!("{GUNICORN_DEFAULT} 1 1234")), 1.234);
    let fmt = r#"%({x-forwarded-for}i)s %(h)s %(t)s "%(r)s" %(s)s %(D)s"#;
    let p = AccessParser::new(None, Some(fmt), Buckets::default()).unwrap();
    let line = r#"10.0.0.9 127.0.0.1 [07/Dec/2020:02:36:29 +0100] "POST /api HTTP/1.1" 503 250000"#;
    let (class, s) = read(&p, line).unwrap();
    assert_eq!(class, StatusClass::ServerError);
    close(Some(s), 0.25);
    let err = AccessParser::new(None, Some(r#"%(h)s "%(r)s" %(s)s"#), Buckets::default());
    assert!(err.unwrap_err()[0].1.contains("no duration atom"));
}

#[test]
fn nginx_request_time_as_key_value_and_as_trailing_field() {
    let p = parser();
    // log_format latency_log '… "$http_referer" "$http_user_agent" rt=$request_time
    //   urt=$upstream_response_time uht=$upstream_header_time uct=$upstream_connect_time';
    let kv = r#"203.0.113.7 - [10.0.0.1 | 10/Oct/2023:13:55:36 +0000] "GET /api/x HTTP/1.1" 200 512 "-" "Mozilla/5.0" rt=0.123 urt=0.121 uht=0.120 uct=0.000"#;
    close(secs(&p, kv), 0.123);
    // The quoted upstream form: rt=0.123 uct="0.000" uht="0.120" urt="0.121".
    let quoted = r#"203.0.113.7 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 404 153 "-" "curl/8.0" rt=0.123 uct="0.000" uht="0.120" urt="0.121""#;
    let (class, s) = read(&p, quoted).unwrap();
    assert_eq!(class, StatusClass::ClientError);
    close(Some(s), 0.123);
    // Only the upstream time: used, several upstreams summed.
    let upstream = r#"203.0.113.7 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 502 0 "-" "curl/8.0" urt="0.010, 0.020""#;
    close(secs(&p, upstream), 0.03);
    let dash = r#"203.0.113.7 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 499 0 "-" "curl/8.0" urt="-""#;
    assert_eq!(read(&p, dash), None);
    // '… "$http_user_agent" "$upstream_addr" "$upstream_response_time" $request_time'
    let trailing = r#"203.0.113.7 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.0" "127.0.0.1:8000" "0.118" 0.120"#;
    close(secs(&p, trailing), 0.12);
}

#[test]
fn ingress_nginx_upstreaminfo() {
    // '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    //  "$http_referer" "$http_user_agent" $request_length $request_time
    //  [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
    //  $upstream_response_length $upstream_response_time $upstream_status $req_id'
    let line = r#"192.168.1.1 - - [10/Oct/2023:13:55:36 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.28" 110 0.003 [default-web-80] [] 10.244.0.5:8080 2 0.002 200 4c5c0d2b8e7d4f1a"#;
    close(secs(&parser(), line), 0.003);
}

#[test]
fn apache_d_trailing_and_before_the_referer() {
    let p = parser();
    // LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %D"
    let trailing = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)" 48213"#;
    close(secs(&p, trailing), 0.048213);
    // LogFormat "%h %l %u %t \"%r\" %>s %b %D \"%{Referer}i\" \"%{User-Agent}i\""
    let middle = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 48213 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;
    close(secs(&p, middle), 0.048213);
    // The common log format: the last number is the size, not a duration.
    let common =
        r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
    assert_eq!(read(&p, common), None);
    // %T (whole seconds) needs a regex.
    let p = AccessParser::new(Some(r#"" (?P<duration_s>\d+)$"#), None, Buckets::default()).unwrap();
    close(
        secs(&p, &common.replace(" 2326", r#" 2326 "-" "curl/8.0" 2"#)),
        2.0,
    );
}

#[test]
fn uvicorn_lines_have_a_status_but_no_duration() {
    let p = parser();
    let line = r#"INFO:     127.0.0.1:40000 - "GET / HTTP/1.1" 200 OK"#;
    assert_eq!(Classifier::default().classify(line.as_bytes()).http, OK);
    assert_eq!(read(&p, line), None);
    // uvicorn's AccessFormatter with a custom fmt and a duration: a regex reads it.
    let p = AccessParser::new(
        Some(r#"" (?P<status>\d{3}) .* (?P<duration_ms>[0-9.]+)ms$"#),
        None,
        Buckets::default(),
    )
    .unwrap();
    let custom =
        r#"INFO:     127.0.0.1:40000 - "GET /slow HTTP/1.1" 500 Internal Server Error 812.5ms"#;
    let (class, s) = read(&p, custom).unwrap();
    assert_eq!(class, StatusClass::ServerError);
    close(Some(s), 0.8125);
}

#[test]
fn json_keys_and_units() {
    let p = parser();
    let cases = [
        (
            r#"{"time":"2024-01-01T00:00:00Z","method":"GET","path":"/","status":200,"duration_ms":12.5}"#,
            0.0125,
        ),
        (r#"{"status":200,"duration_us":1500}"#, 0.0015),
        (r#"{"status":"200","duration":0.25}"#, 0.25),
        (r#"{"level":"info","status":200,"latency":"1.5ms"}"#, 0.0015),
        (r#"{"status":200,"latency":"1m2.5s"}"#, 62.5),
        (r#"{"status":200,"latency":"250µs"}"#, 0.00025),
        (r#"{"status":200,"elapsed":"0.5s"}"#, 0.5),
        (r#"{"status":200,"elapsed_ms":"12"}"#, 0.012),
        (r#"{"status":200,"responseTime":4}"#, 0.004),
        (r#"{"status":200,"response_time":"12ms"}"#, 0.012),
        (r#"{"status":200,"request_time":0.031}"#, 0.031),
        (r#"{"statusCode":201,"durationMs":7}"#, 0.007),
        // nginx log_format escape=json '{ … "status":$status, … "rt":$request_time, "urt":"…" }'
        (
            r#"{ "cf_ip":"-", "remote":"203.0.113.7", "time":"2023-10-10T13:55:36+00:00", "request":"GET / HTTP/1.1", "status":200, "bytes":512, "referer":"-", "agent":"curl/8.0", "rt":0.123, "urt":"0.121", "uht":"0.120", "uct":"0.000" }"#,
            0.123,
        ),
    ];
    for (line, want) in cases {
        let got = secs(&p, line);
        assert!(
            got.is_some_and(|g| (g - want).abs() <= want * 1e-9),
            "{line}: {got:?} vs {want}"
        );
    }
    // No status: not a request; a status but no duration key, or garbage: nothing.
    for line in [
        r#"{"level":"info","duration_ms":12}"#,
        r#"{"status":200,"bytes":12}"#,
        r#"{"status":200,"duration":"soon"}"#,
        r#"{"status":200,"duration":-1}"#,
        r#"{"status":200,"duration":1e999}"#,
        r#"{"status":200,"duration_ms":"12"#,
    ] {
        assert_eq!(read(&p, line), None, "{line}");
    }
}

#[test]
fn logfmt_duration_on_an_access_line() {
    let p = parser();
    let line = r#"time=2024-01-01T00:00:00Z msg="GET / HTTP/1.1" 200 duration=12ms"#;
    close(secs(&p, line), 0.012);
}

#[test]
fn user_regex_needs_one_duration_capture() {
    for bad in [
        r"(?P<status>\d+)",
        r"(?P<duration_ms>\d+) (?P<duration_s>\d+)",
        r"(",
    ] {
        assert!(
            AccessParser::new(Some(bad), None, Buckets::default()).is_err(),
            "{bad}"
        );
    }
    // A capture that is no number is no duration, and the built-ins go on.
    let p =
        AccessParser::new(Some(r"took (?P<duration_us>\S+)"), None, Buckets::default()).unwrap();
    close(
        secs(&p, r#"{"status":200,"duration":0.5,"msg":"took x"}"#),
        0.5,
    );
    // With a status capture, a line the classifier did not see as HTTP counts.
    let p = AccessParser::new(
        Some(r"status=(?P<status>\d{3}) .*took=(?P<duration_us>\d+)"),
        None,
        Buckets::default(),
    )
    .unwrap();
    let (class, s) = read(&p, "handled status=302 path=/x took=1500").unwrap();
    assert_eq!(class, StatusClass::Redirection);
    close(Some(s), 0.0015);
}

#[test]
fn garbage_never_panics() {
    let p = AccessParser::new(
        Some(r"(?P<duration_ms>\S+)"),
        Some("%(L)s"),
        Buckets::default(),
    )
    .unwrap();
    let inputs: [&[u8]; 10] = [
        b"",
        b"\"",
        b"\" ",
        b"{",
        b"{\"status\":200,\"duration\":",
        b"rt=",
        b"\"GET / HTTP/1.1\" 200 \"",
        b"\xff\xfe\"GET / HTTP/1.1\" 200 1 \"a\" \"b\" 1.2.3",
        b"x=\"",
        b"\"GET / HTTP/\" 200 1 2 \"",
    ];
    for line in inputs {
        let _ = p.request(line, OK);
        let _ = p.request(line, None);
    }
    assert_eq!(go_duration(b"1.5"), None);
    assert_eq!(go_duration(b"ms"), None);
    assert_eq!(duration_value(b" 12 ms ", 1.0), Some(0.012));
}

#[test]
fn a_key_value_inside_a_quoted_field_is_the_clients_not_the_servers() {
    let p = parser();
    // A user agent carrying `rt=900`: the trailing %(L)s is the duration.
    let line = r#"10.0.0.1 - - [07/Dec/2020:02:36:29 +0100] "GET / HTTP/1.1" 200 12 "-" "Mozilla/5.0 rt=900 (X11)" 0.005"#;
    close(secs(&p, line), 0.005);
    // Escaped quotes in the agent do not end it early.
    let line = r#"10.0.0.1 - - [07/Dec/2020:02:36:29 +0100] "GET / HTTP/1.1" 200 12 "-" "a \"b\" rt=900" rt=0.250"#;
    close(secs(&p, line), 0.25);
}

#[test]
fn an_absurd_duration_is_not_counted() {
    let p = parser();
    let line =
        r#"10.0.0.1 - - [07/Dec/2020:02:36:29 +0100] "GET / HTTP/1.1" 200 12 "-" "curl" rt=1e308"#;
    assert_eq!(read(&p, line), None);
    let line = r#"{"status": 200, "duration": "100000h"}"#;
    assert_eq!(read(&p, line), None);
}

#[test]
fn go_durations_in_json_are_integer_nanoseconds() {
    let p = parser();
    // Traefik's JSON access log, and slog's JSON handler for a time.Duration.
    let traefik = r#"{"ClientHost":"10.0.0.1","DownstreamStatus":200,"Duration":1500000,"RequestMethod":"GET","RequestPath":"/","status":200}"#;
    close(secs(&p, traefik), 0.0015);
    let slog = r#"{"time":"2024-05-01T10:00:00Z","level":"INFO","msg":"request","status":200,"duration":12500000}"#;
    close(secs(&p, slog), 0.0125);
    // Small whole numbers stay seconds; decimals always do.
    close(secs(&p, r#"{"status": 200, "duration": 2}"#), 2.0);
    close(secs(&p, r#"{"status": 200, "duration": 0.25}"#), 0.25);
}

#[test]
fn an_unclosed_gunicorn_atom_before_accented_text_is_an_error_not_a_panic() {
    let err = AccessParser::new(None, Some("%(L)s %(aééééé"), Buckets::default());
    assert!(err.is_err());
}

#[test]
fn traefik_and_pino_http_json_lines_give_status_and_duration() {
    let p = parser();
    // Traefik's JSON access log (`Duration` in nanoseconds).
    let traefik = r#"{"ClientAddr":"10.0.0.1:52124","ClientHost":"10.0.0.1","DownstreamContentSize":12,"DownstreamStatus":503,"Duration":250000000,"RequestMethod":"GET","RequestPath":"/","RouterName":"web@docker","level":"info","msg":"","time":"2024-05-01T10:00:00Z"}"#;
    let (class, s) = read(&p, traefik).unwrap();
    assert_eq!(class, StatusClass::ServerError);
    close(Some(s), 0.25);
    // pino-http: status nested in `res`, `responseTime` in milliseconds.
    let pino = r#"{"level":30,"time":1531171074631,"pid":657,"hostname":"box","req":{"id":1,"method":"GET","url":"/"},"res":{"statusCode":200},"responseTime":12,"msg":"request completed"}"#;
    let (class, s) = read(&p, pino).unwrap();
    assert_eq!(class, StatusClass::Success);
    close(Some(s), 0.012);
}

#[test]
fn duration_keys_with_leading_separators_still_count() {
    let p = AccessParser::default();
    let line = br#"{"status":200,"_duration_ms":12}"#;
    let (_, secs) = p.request(line, Some(StatusClass::Success)).unwrap();
    assert!((secs - 0.012).abs() < 1e-9, "{secs}");
}
