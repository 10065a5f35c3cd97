//! One source, end to end: bytes → lines → severities → events and HTTP counts.
//!
//! This module owns the assembly of [`framing`](super::framing),
//! [`classify`](super::classify) and [`events`](super::events) for one source
//! ([`StreamScanner`], fed chunks as they arrive) and the whole-input [`scan`] behind
//! `outrider scan FILE|-`. Each container stream of a source gets its own
//! [`EventAssembler`], because a CRI file interleaves stdout and stderr and a traceback on
//! stderr must not be cut by an access line on stdout.

use std::io::{self, Read};
use std::time::Instant;

use serde::Serialize;

use super::classify::{Classifier, StatusClass};
use super::events::{EventAssembler, EventCounts};
use super::framing::{Framer, Line, LogFormat, Stream, DEFAULT_MAX_LINE_BYTES};

/// HTTP access lines per status class. Serializes as
/// `{"2xx": N, "3xx": N, "4xx": N, "5xx": N}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HttpCounts {
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "3xx")]
    pub redirection: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

impl HttpCounts {
    pub fn get(&self, class: StatusClass) -> u64 {
        match class {
            StatusClass::Success => self.success,
            StatusClass::Redirection => self.redirection,
            StatusClass::ClientError => self.client_error,
            StatusClass::ServerError => self.server_error,
        }
    }

    fn add(&mut self, class: StatusClass) {
        let count = match class {
            StatusClass::Success => &mut self.success,
            StatusClass::Redirection => &mut self.redirection,
            StatusClass::ClientError => &mut self.client_error,
            StatusClass::ServerError => &mut self.server_error,
        };
        *count += 1;
    }
}

/// What a scan found. Serializes to exactly
/// `{"lines": N, "bytes": N, "events": {…}, "http": {…}, "seconds": F}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanCounts {
    /// Logical lines (a CRI or docker line in pieces counts once).
    pub lines: u64,
    /// Bytes read, wrapping included.
    pub bytes: u64,
    /// Closed events per severity.
    pub events: EventCounts,
    pub http: HttpCounts,
    /// Wall time of the scan; 0 in [`StreamScanner::counts`].
    pub seconds: f64,
    /// Lines cut at the cap (`outrider_log_oversized_lines_total`); not in the JSON.
    #[serde(skip)]
    pub oversized_lines: u64,
    /// Request durations read from access lines; not in the JSON.
    #[serde(skip)]
    pub latency: crate::logs::latency::LatencyCounts,
}

/// Framing, classification and grouping of one source, fed chunks as they come.
#[derive(Debug)]
pub struct StreamScanner {
    classifier: Classifier,
    framer: Framer,
    /// One per stream: stdout, stderr, unknown (plain sources).
    groupers: [EventAssembler; 3],
    counts: ScanCounts,
}

impl StreamScanner {
    pub fn new(classifier: Classifier, format: LogFormat, max_line_bytes: usize) -> Self {
        StreamScanner {
            classifier,
            framer: Framer::new(format, max_line_bytes),
            groupers: Default::default(),
            counts: ScanCounts::default(),
        }
    }

    /// Bytes read from the source at `now`.
    pub fn feed(&mut self, chunk: &[u8], now: Instant) {
        self.counts.bytes += chunk.len() as u64;
        let StreamScanner {
            classifier,
            framer,
            groupers,
            counts,
        } = self;
        framer.feed(chunk, &mut |line| {
            take_line(classifier, groupers, counts, line, now)
        });
    }

    /// Closes events held longer than the groupers' flush delay; call it on a
    /// timer while the source is quiet.
    pub fn flush_if_idle(&mut self, now: Instant) {
        for g in &mut self.groupers {
            g.flush_if_idle(now);
        }
    }

    /// End of the source: the last unterminated line, lines in pieces, held events.
    pub fn finish(&mut self, now: Instant) {
        let StreamScanner {
            classifier,
            framer,
            groupers,
            counts,
        } = self;
        framer.finish(&mut |line| take_line(classifier, groupers, counts, line, now));
        for g in groupers {
            g.finish();
        }
    }

    /// Counts so far (`seconds` is 0). Events still held are not in them yet.
    pub fn counts(&self) -> ScanCounts {
        let mut counts = self.counts.clone();
        for g in &self.groupers {
            counts.events += g.counts();
        }
        counts
    }

    /// The source's format: as given, or as detected (`Auto` until then).
    pub fn format(&self) -> LogFormat {
        self.framer.format()
    }
}

fn take_line(
    classifier: &Classifier,
    groupers: &mut [EventAssembler; 3],
    counts: &mut ScanCounts,
    line: Line<'_>,
    now: Instant,
) {
    counts.lines += 1;
    counts.oversized_lines += u64::from(line.oversized);
    let (c, request) = classifier.classify_marked(line.bytes, line.unmarked_to);
    if c.ignored {
        return;
    }
    if let Some(class) = c.http {
        counts.http.add(class);
    }
    if let Some((class, seconds)) = request {
        counts
            .latency
            .observe(classifier.duration_buckets(), class, seconds);
    }
    let slot = match line.stream {
        Some(Stream::Stdout) => 0,
        Some(Stream::Stderr) => 1,
        None => 2,
    };
    groupers[slot].push(line.bytes, c.severity, now);
}

/// Scans `reader` to its end (format detected, 64 KiB line cap). Lines are grouped
/// by structure alone: the whole input counts as written at one instant.
pub fn scan(reader: impl Read, classifier: &Classifier) -> io::Result<ScanCounts> {
    scan_with(reader, classifier, LogFormat::Auto, DEFAULT_MAX_LINE_BYTES)
}

/// [`scan`] with a given format and line cap.
pub fn scan_with(
    mut reader: impl Read,
    classifier: &Classifier,
    format: LogFormat,
    max_line_bytes: usize,
) -> io::Result<ScanCounts> {
    let started = Instant::now();
    let mut scanner = StreamScanner::new(classifier.clone(), format, max_line_bytes);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        scanner.feed(&buf[..n], started);
    }
    scanner.finish(started);
    let mut counts = scanner.counts();
    counts.seconds = started.elapsed().as_secs_f64();
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields one byte per read: every chunk boundary is exercised.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    const MIXED: &str = r#"2024-05-01 10:00:00,000 INFO app: started
127.0.0.1 - - [01/May/2024:10:00:01 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8"
127.0.0.1 - - [01/May/2024:10:00:02 +0000] "GET /missing HTTP/1.1" 404 0 "-" "curl/8"
{"level":"warn","msg":"slow query","status":503}
2024-05-01 10:00:03,000 ERROR app: payment failed
Traceback (most recent call last):
  File "/srv/app/pay.py", line 3, in charge
    raise TimeoutError("upstream")
TimeoutError: upstream
INFO:     127.0.0.1:5000 - "POST /pay HTTP/1.1" 302 Found
DEBUG cache warm

plain words
no trailing newline ERROR"#;

    #[test]
    fn scan_counts_serialize_to_the_documented_shape() {
        let mut counts = scan(MIXED.as_bytes(), &Classifier::default()).unwrap();
        assert!(counts.seconds >= 0.0);
        counts.seconds = 0.5;
        assert_eq!(
            serde_json::to_value(&counts).unwrap(),
            serde_json::json!({
                "lines": 14,
                "bytes": MIXED.len(),
                "events": {"error": 2, "warning": 1, "info": 2, "debug": 1, "unknown": 3},
                "http": {"2xx": 1, "3xx": 1, "4xx": 1, "5xx": 1},
                "seconds": 0.5
            })
        );
    }

    /// The counts without the time they took.
    fn timeless(c: &ScanCounts) -> ScanCounts {
        ScanCounts {
            seconds: 0.0,
            ..c.clone()
        }
    }

    #[test]
    fn scan_does_not_depend_on_read_sizes() {
        let whole = scan(MIXED.as_bytes(), &Classifier::default()).unwrap();
        let trickled = scan(Trickle(MIXED.as_bytes()), &Classifier::default()).unwrap();
        assert_eq!(timeless(&trickled), timeless(&whole));
    }

    /// Lines read whole from a chunk are classified knowing where their first `=` or
    /// `H` is; lines trickled in byte by byte never are: the counts must be the
    /// same, also on lines of many `=` and `H`.
    #[test]
    fn marked_and_unmarked_lines_count_the_same() {
        let mut input = MIXED.as_bytes().to_vec();
        input.push(b'\n');
        for line in [
            "=".repeat(70_000),
            "H".repeat(5000),
            format!("{}level=error", "a=b ".repeat(40)),
            format!("{}lvl=warn msg=x", "k=v ".repeat(31)),
            format!("{}\"GET / HTTP/1.1\" 503 0", "H".repeat(40)),
            format!(
                "{} 10.0.0.1 \"GET / HTTP/1.1\" 404 0 rt=0.5",
                "x=1 H ".repeat(20)
            ),
            "ts=1 level=info msg=\"ok\" duration=12ms".into(),
            "10.0.0.1 - - [x] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\" rt=0.120".into(),
        ] {
            input.extend_from_slice(line.as_bytes());
            input.extend_from_slice(b"\r\n");
        }
        let input = input.repeat(3);
        let whole = scan(&input[..], &Classifier::default()).unwrap();
        let trickled = scan(Trickle(&input), &Classifier::default()).unwrap();
        assert_eq!(timeless(&trickled), timeless(&whole));
        assert_eq!(whole.events.error, 3 * 3, "{:?}", whole.events);
        assert_eq!(whole.http.server_error, 3 * 2, "{:?}", whole.http);
    }

    #[test]
    fn cri_streams_are_grouped_apart() {
        // A stdout access line lands inside a stderr traceback: still one event.
        let input = "2024-05-01T10:00:00.000000001Z stderr F ERROR:root:failed
2024-05-01T10:00:00.000000002Z stderr F Traceback (most recent call last):
2024-05-01T10:00:00.000000003Z stdout F 10.0.0.1 - - [x] \"GET / HTTP/1.1\" 500 0
2024-05-01T10:00:00.000000004Z stderr P   File \"app.py\", line
2024-05-01T10:00:00.000000005Z stderr F  1, in <module>
2024-05-01T10:00:00.000000006Z stderr F KeyError: 'k'
";
        let counts = scan(Trickle(input.as_bytes()), &Classifier::default()).unwrap();
        assert_eq!(counts.lines, 5);
        assert_eq!(counts.events.error, 1);
        assert_eq!(counts.events.unknown, 1);
        assert_eq!(counts.http.server_error, 1);
    }

    #[test]
    fn ignored_lines_count_as_lines_only() {
        let classifier = Classifier::new(&[super::super::classify::Rule {
            pattern: "healthz".into(),
            action: super::super::classify::RuleAction::Ignore,
        }])
        .unwrap();
        let input = "ERROR \"GET /healthz HTTP/1.1\" 500 0\nERROR real\n";
        let counts = scan(input.as_bytes(), &classifier).unwrap();
        assert_eq!(counts.lines, 2);
        assert_eq!(counts.events.total(), 1);
        assert_eq!(counts.http, HttpCounts::default());
    }

    #[test]
    fn oversized_lines_are_counted() {
        let input = format!("{}\nshort\n", "x".repeat(100));
        let counts = scan_with(
            input.as_bytes(),
            &Classifier::default(),
            LogFormat::Auto,
            10,
        )
        .unwrap();
        assert_eq!((counts.lines, counts.oversized_lines), (2, 1));
    }

    #[test]
    fn scanner_flushes_a_held_error_when_idle() {
        let t0 = Instant::now();
        let mut s = StreamScanner::new(Classifier::default(), LogFormat::Plain, 1024);
        s.feed(b"ERROR failed\n", t0);
        assert_eq!(s.counts().events.error, 0);
        s.flush_if_idle(t0 + super::super::events::DEFAULT_FLUSH_AFTER);
        assert_eq!(s.counts().events.error, 1);
    }

    #[test]
    fn request_durations_are_counted_by_class_and_stay_out_of_the_json() {
        // A CRI file: the framing strips the prefix before the duration is read.
        let input = concat!(
            "2024-01-01T00:00:00.000000000Z stdout F 10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl/8\" rt=0.120\n",
            "2024-01-01T00:00:00.100000000Z stdout F {\"status\":503,\"duration_ms\":2500}\n",
            "2024-01-01T00:00:00.200000000Z stdout F 10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 404 5\n",
        );
        let counts = scan(input.as_bytes(), &Classifier::default()).unwrap();
        let l = &counts.latency;
        assert_eq!(
            counts.http.success + counts.http.client_error + counts.http.server_error,
            3
        );
        assert_eq!(l.fine.count(), 2, "the 404 line has no duration");
        assert_eq!(l.class(StatusClass::Success).count, 1);
        assert!((l.class(StatusClass::Success).sum - 0.12).abs() < 1e-9);
        assert!((l.class(StatusClass::ServerError).sum - 2.5).abs() < 1e-9);
        let json = serde_json::to_value(&counts).unwrap();
        assert!(json.get("latency").is_none(), "{json}");
    }
}
