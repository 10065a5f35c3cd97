//! The one pass against the two searches it replaced.

use super::super::{Classifier, Severity, StatusClass};
use super::level_and_status;

// The two searches as they were before the pass, kept as the reference.

fn logfmt_level_reference(line: &[u8]) -> Option<Severity> {
    // One pass over the `=` signs (most lines have none). The first `level=` with a
    // level word wins, else the first such `lvl=`, else `severity=`: `best` keeps
    // the highest-ranked key found so far.
    let mut best: Option<(usize, Severity)> = None;
    for eq in memchr::memchr_iter(b'=', line) {
        // The key is what stands between the last space or tab and the `=`; only
        // the few bytes a key can have are looked at, so a line of `=` stays linear.
        let before = &line[..eq];
        let Some(rank) = super::LOGFMT_KEYS
            .iter()
            .position(|k| super::ends_with_key(before, k))
        else {
            continue;
        };
        if best.is_some_and(|(r, _)| r <= rank) {
            continue;
        }
        let value = &line[eq + 1..];
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => &quoted[..memchr::memchr(b'"', quoted).unwrap_or(quoted.len())],
            None => {
                &value[..value
                    .iter()
                    .position(|b| matches!(b, b' ' | b'\t'))
                    .unwrap_or(value.len())]
            }
        };
        if let Some(s) = Severity::from_level_word(value) {
            if rank == 0 {
                return Some(s);
            }
            best = Some((rank, s));
        }
    }
    best.map(|(_, s)| s)
}

/// `"GET /path HTTP/1.1" 200 …`: the status after a quoted request line.
fn access_line_status_reference(line: &[u8]) -> Option<StatusClass> {
    for at in super::HTTP_VERSION.find_iter(line) {
        let rest = &line[at + 5..];
        let version = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let Some(rest) = rest[version..].strip_prefix(b"\" ") else {
            continue;
        };
        let code = rest.get(..3)?;
        if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| b.is_ascii_digit()) {
            continue;
        }
        let code = code.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
        return StatusClass::of(code);
    }
    None
}

/// Lines built from pieces that exercise every branch of both searches, and of the
/// duration reading that uses what the pass found: keys and `=`, level words,
/// `H`s that are not `HTTP/`, request lines with and without a status, JSON with
/// duration members, leading and trailing whitespace.
pub(crate) fn random_lines(count: usize, mut each: impl FnMut(&[u8])) {
    const PIECES: [&str; 44] = [
        "\"status\":200,",
        "\"duration\":1.5,",
        "\"rt\":\"12ms\",",
        "\"responseTime\":7,",
        "level=",
        "lvl=",
        "severity=",
        "error",
        "info",
        "WARN",
        "\"",
        " ",
        "\t",
        "=",
        "HTTP/",
        "1.1",
        "\" ",
        "200",
        "404",
        "5",
        "HTTP/1.1\" 503",
        "H",
        "HTT",
        "GET /",
        "{",
        "}",
        ":",
        ",",
        "\"duration\":",
        "\"rt\":",
        "\"latency_ms\":",
        "\"status\":",
        "12",
        "1.5",
        "\"1.5ms\"",
        "\"abc\"",
        "rt=",
        "urt=",
        "0.25",
        "x",
        "\"level\":",
        "\u{c}",
        "-",
        "\"elapsed\":",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut line = String::new();
    for _ in 0..count {
        line.clear();
        match next(4) {
            0 | 1 => line.push('{'),
            2 => line.push(' '),
            _ => {}
        }
        for _ in 0..next(16) {
            line.push_str(PIECES[next(PIECES.len())]);
        }
        if next(6) == 0 {
            line.push(' ');
        }
        each(line.as_bytes());
    }
}

#[test]
fn the_pass_agrees_with_the_two_searches() {
    random_lines(300_000, |line| {
        let level = logfmt_level_reference(line);
        let http = access_line_status_reference(line);
        let shown = || String::from_utf8_lossy(line).into_owned();
        let both = level_and_status(line, true, true, 0);
        assert_eq!((both.level, both.http), (level, http), "{}", shown());
        assert_eq!(both.has_eq, Some(line.contains(&b'=')), "{}", shown());
        let first_http = memchr::memmem::find(line, b"HTTP/");
        assert_eq!(both.first_http, first_http, "{}", shown());
        let level_only = level_and_status(line, true, false, 0);
        assert_eq!((level_only.level, level_only.http), (level, None));
        let http_only = level_and_status(line, false, true, 0);
        assert_eq!((http_only.level, http_only.http), (None, http));
        assert_eq!(http_only.has_eq, None);
    });
}

#[test]
fn durations_read_with_what_the_pass_found_are_the_same() {
    let classifier = Classifier::default();
    let mut with_duration = [0, 0];
    random_lines(300_000, |line| {
        let (c, request) = classifier.classify_and_request(line);
        assert_eq!(c, classifier.classify(line));
        let alone = classifier.request(line, c.http);
        assert_eq!(request, alone, "{}", String::from_utf8_lossy(line));
        if request.is_some() {
            with_duration[usize::from(line.first() == Some(&b'{'))] += 1;
        }
    });
    // The pieces make lines with durations, JSON and not.
    assert!(with_duration.iter().all(|&n| n > 100), "{with_duration:?}");
}

/// Where the first `=` or `H` of `line` is, or its length: what the framer finds.
fn first_mark(line: &[u8]) -> usize {
    memchr::memchr2(b'=', b'H', line).unwrap_or(line.len())
}

/// Lines of many `=` and `H`, and lines whose first one comes late or early.
fn hostile_lines() -> Vec<Vec<u8>> {
    let mut lines = vec![
        vec![b'='; 1 << 20],
        vec![b'H'; 1 << 16],
        [&b"x=1 "[..]; 40].concat(),
        [&[&b"a=b "[..]; 33].concat()[..], b"lvl=warn level=info"].concat(),
        [&[&b"H"[..]; 32].concat()[..], b" \"GET / HTTP/1.1\" 404 0"].concat(),
        [
            &[&b"H="[..]; 20].concat()[..],
            b" \"GET / HTTP/1.1\" 301 severity=error",
        ]
        .concat(),
        [&[&b"x"[..]; 300].concat()[..], b" level=error"].concat(),
        b"HTTP/1.1\" 200 level=debug".to_vec(),
        b"level=error".to_vec(),
        b"a=1 level=error".to_vec(),
        b"a=1 b=2 lvl=warn level=info".to_vec(),
        b"H \"GET / HTTP/1.1\" 200".to_vec(),
        b"x=1 \"GET / HTTP/1.1\" 200 level=warn".to_vec(),
        b"no marks at all".to_vec(),
        Vec::new(),
    ];
    lines.push([&lines[0][..1000], b" level=warn HTTP/2\" 503"].concat());
    lines
}

/// Every way of asking, from the line's start and from its first mark (`unmarked_to`,
/// maybe past the line): the same answers.
fn agree_from(line: &[u8], unmarked_to: usize) {
    for (level, http) in [(true, true), (true, false), (false, true), (false, false)] {
        assert_eq!(
            level_and_status(line, level, http, unmarked_to),
            level_and_status(line, level, http, 0),
            "{level} {http} from {unmarked_to}: {}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        );
    }
}

#[test]
fn the_pass_from_the_first_mark_agrees_with_the_whole_search() {
    random_lines(200_000, |line| agree_from(line, first_mark(line)));
    for line in hostile_lines() {
        agree_from(&line, first_mark(&line));
    }
}

#[test]
fn a_first_mark_past_a_cut_line_is_its_end() {
    // The framer's offset is that of the physical line: a cut line (at the cap, or
    // its `\r` dropped) may be shorter than it.
    let tail: &[u8] = b"=H level=error \"GET / HTTP/1.1\" 500\r";
    random_lines(50_000, |line| {
        let physical = [line, tail].concat();
        agree_from(line, first_mark(&physical));
    });
    for line in hostile_lines() {
        for cut in [0, 1, 30, 31, 32, 33, 64, line.len() / 2] {
            let cut = cut.min(line.len());
            agree_from(&line[..cut], first_mark(&line));
        }
    }
}
