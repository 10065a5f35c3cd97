use super::*;

type Owned = (Vec<u8>, Option<Stream>, bool);

/// Frames `input` cut into chunks of `chunk` bytes (0: one chunk).
fn frame_chunked(
    format: LogFormat,
    max: usize,
    input: &[u8],
    chunk: usize,
) -> (Vec<Owned>, LogFormat) {
    let mut framer = Framer::new(format, max);
    let mut lines = Vec::new();
    let mut out = |l: Line<'_>| lines.push((l.bytes.to_vec(), l.stream, l.oversized));
    if chunk == 0 {
        framer.feed(input, &mut out);
    } else {
        for c in input.chunks(chunk) {
            framer.feed(c, &mut out);
        }
    }
    framer.finish(&mut out);
    (lines, framer.format())
}

/// Frames `input` whole, byte by byte and in odd chunk sizes; all must agree.
fn frame(format: LogFormat, max: usize, input: &[u8]) -> (Vec<Owned>, LogFormat) {
    let whole = frame_chunked(format, max, input, 0);
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(
            frame_chunked(format, max, input, chunk),
            whole,
            "chunks of {chunk} differ from one chunk"
        );
    }
    whole
}

fn plain(s: &str) -> Owned {
    (s.as_bytes().to_vec(), None, false)
}

#[test]
fn plain_lines_with_crlf_and_unterminated_last_line() {
    let (lines, format) = frame(LogFormat::Auto, 1024, b"one\r\ntwo\n\nthree");
    assert_eq!(format, LogFormat::Plain);
    assert_eq!(
        lines,
        vec![plain("one"), plain("two"), plain(""), plain("three")]
    );
}

#[test]
fn finish_without_pending_input_hands_out_nothing() {
    let (lines, _) = frame(LogFormat::Plain, 1024, b"a\n");
    assert_eq!(lines, vec![plain("a")]);
    let (lines, format) = frame(LogFormat::Auto, 1024, b"");
    assert!(lines.is_empty());
    assert_eq!(format, LogFormat::Auto);
}

#[test]
fn invalid_utf8_and_nul_pass_through() {
    let input = b"a\x00b\xff\xfe\nc\xc3\n\xa9d\n";
    let (lines, _) = frame(LogFormat::Plain, 1024, input);
    assert_eq!(
        lines,
        vec![
            (b"a\x00b\xff\xfe".to_vec(), None, false),
            (b"c\xc3".to_vec(), None, false),
            (b"\xa9d".to_vec(), None, false),
        ]
    );
}

#[test]
fn oversized_plain_line_is_cut_and_framing_goes_on() {
    let mut input = b"short\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100));
    input.extend_from_slice(b"\nexact\n0123456789\nafter");
    let (lines, _) = frame(LogFormat::Plain, 10, &input);
    assert_eq!(
        lines,
        vec![
            plain("short"),
            (b"xxxxxxxxxx".to_vec(), None, true),
            plain("exact"),
            plain("0123456789"),
            plain("after"),
        ]
    );
}

#[test]
fn oversized_line_is_not_buffered() {
    // A 10 MB line fed in 64 KiB chunks keeps at most the physical cap in memory.
    let mut framer = Framer::new(LogFormat::Plain, 1000);
    let mut seen = Vec::new();
    let chunk = vec![b'y'; 64 * 1024];
    for _ in 0..160 {
        framer.feed(&chunk, &mut |l: Line<'_>| seen.push(l.bytes.len()));
        assert!(framer.physical.capacity() <= 64 * 1024 + 1000);
    }
    framer.feed(b"\nnext\n", &mut |l: Line<'_>| seen.push(l.bytes.len()));
    assert_eq!(seen, vec![1000, 4]);
}

const CRI: &[u8] = b"2024-01-01T00:00:00.123456789Z stdout F hello world
2024-01-01T00:00:00.2Z stderr P first half 
2024-01-01T00:00:00.3Z stdout P out-a 
2024-01-01T00:00:00.4Z stderr P second 
2024-01-01T00:00:00.5Z stdout F out-b
2024-01-01T00:00:00.6Z stderr F end
2024-01-01T00:00:00.7+02:00 stdout F
not a cri line
2024-01-01T00:00:00.8Z stdout F:x tagged
";

#[test]
fn cri_partials_are_joined_per_stream() {
    let (lines, format) = frame(LogFormat::Auto, 1024, CRI);
    assert_eq!(format, LogFormat::Cri);
    let out = Some(Stream::Stdout);
    let err = Some(Stream::Stderr);
    assert_eq!(
        lines,
        vec![
            (b"hello world".to_vec(), out, false),
            (b"out-a out-b".to_vec(), out, false),
            (b"first half second end".to_vec(), err, false),
            (b"".to_vec(), out, false),
            (b"not a cri line".to_vec(), None, false),
            (b"tagged".to_vec(), out, false),
        ]
    );
}

#[test]
fn cri_partial_line_over_the_cap_is_cut() {
    let mut input = Vec::new();
    for _ in 0..5 {
        input.extend_from_slice(b"2024-01-01T00:00:00.1Z stdout P 0123456789\n");
    }
    input.extend_from_slice(b"2024-01-01T00:00:00.1Z stdout F end\n");
    input.extend_from_slice(b"2024-01-01T00:00:00.1Z stdout F next\n");
    let (lines, _) = frame(LogFormat::Cri, 25, &input);
    let out = Some(Stream::Stdout);
    assert_eq!(
        lines,
        vec![
            (b"0123456789012345678901234".to_vec(), out, true),
            (b"next".to_vec(), out, false),
        ]
    );
}

#[test]
fn cri_unfinished_partial_is_flushed_at_finish() {
    let (lines, _) = frame(LogFormat::Cri, 100, b"2024-01-01T00:00:00.1Z stderr P tail");
    assert_eq!(lines, vec![(b"tail".to_vec(), Some(Stream::Stderr), false)]);
}

#[test]
fn docker_lines_are_unescaped_and_splits_joined() {
    let input = br#"{"log":"plain \"quoted\" \\ tab\t\u00e9 \ud83d\ude00 nul\u0000\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}
{"log":"split at 16 ","stream":"stderr","time":"t"}
{"log":"interleaved\r\n","stream":"stdout","time":"t"}
{"log":"KiB\n","stream":"stderr","time":"t"}
{"log":"bad \x escape and lone \ud800!\n","stream":"stdout","time":"t"}
no json here
"#;
    let (lines, format) = frame(LogFormat::Auto, 1024, input);
    assert_eq!(format, LogFormat::Docker);
    let out = Some(Stream::Stdout);
    let err = Some(Stream::Stderr);
    assert_eq!(
        lines,
        vec![
            (
                "plain \"quoted\" \\ tab\t\u{e9} \u{1F600} nul\0"
                    .as_bytes()
                    .to_vec(),
                out,
                false
            ),
            (b"interleaved".to_vec(), out, false),
            (b"split at 16 KiB".to_vec(), err, false),
            (
                "bad \\x escape and lone \u{FFFD}!".as_bytes().to_vec(),
                out,
                false
            ),
            (b"no json here".to_vec(), None, false),
        ]
    );
}

#[test]
fn docker_split_over_the_cap_is_cut() {
    let input = br#"{"log":"aaaaaaaaaa","stream":"stdout"}
{"log":"bbbbbbbbbb\n","stream":"stdout"}
{"log":"ok\n","stream":"stdout"}
"#;
    let (lines, _) = frame(LogFormat::Docker, 15, input);
    let out = Some(Stream::Stdout);
    assert_eq!(
        lines,
        vec![
            (b"aaaaaaaaaabbbbb".to_vec(), out, true),
            (b"ok".to_vec(), out, false)
        ]
    );
}

#[test]
fn docker_line_cut_inside_its_value_is_reported_oversized() {
    // Twice the cap plus header room, then the line is cut mid-value.
    let mut input = br#"{"log":""#.to_vec();
    input.extend(std::iter::repeat_n(b'z', 2 * 10 + HEADER_ROOM + 50));
    input.extend_from_slice(
        b"\\n\",\"stream\":\"stdout\"}\n{\"log\":\"next\\n\",\"stream\":\"stderr\"}\n",
    );
    let (lines, _) = frame(LogFormat::Docker, 10, &input);
    assert_eq!(
        lines,
        vec![
            (b"zzzzzzzzzz".to_vec(), None, true),
            (b"next".to_vec(), Some(Stream::Stderr), false)
        ]
    );
}

#[test]
fn explicit_format_is_not_redetected() {
    let (lines, format) = frame(
        LogFormat::Plain,
        1024,
        b"2024-01-01T00:00:00.1Z stdout F x\n",
    );
    assert_eq!(format, LogFormat::Plain);
    assert_eq!(lines, vec![plain("2024-01-01T00:00:00.1Z stdout F x")]);
}

#[test]
fn decode_json_string_reports_the_closing_quote() {
    let mut out = Vec::new();
    assert_eq!(decode_json_string(br#"a\"b" rest"#, &mut out), Some(5));
    assert_eq!(out, b"a\"b");
    out.clear();
    assert_eq!(decode_json_string(br#"unterminated\"#, &mut out), None);
    assert_eq!(out, b"unterminated");
}

/// Plain lines with and without `=` and `H`, early and late in them.
fn marked_input() -> Vec<u8> {
    let mut input = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for n in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 300) as usize;
        let rare = state % 3 == 0;
        for k in 0..len {
            let r = (state >> (k % 50)) as usize + k * 7 + n;
            input.push(match r % if rare { 200 } else { 11 } {
                0 => b'=',
                1 => b'H',
                2 => b' ',
                3 => b'\r',
                _ => b'a' + (r % 26) as u8,
            });
        }
        input.push(b'\n');
    }
    input.extend_from_slice(&[b'='; 5000]);
    input.extend_from_slice(b"\nlast H= unterminated");
    input
}

#[test]
fn plain_lines_tell_where_their_first_mark_is() {
    for chunk in [0, 1, 7, 64, 4096] {
        let mut framer = Framer::new(LogFormat::Auto, 1024);
        let (mut told, mut lines) = (0, 0);
        let mut out = |l: Line<'_>| {
            lines += 1;
            if let Some(at) = l.unmarked_to {
                told += 1;
                // The offset is the physical line's: of the bytes, or past them
                // (the `\r` dropped, the cut).
                let first = memchr::memchr2(b'=', b'H', l.bytes).unwrap_or(l.bytes.len());
                assert_eq!(
                    at.min(l.bytes.len()),
                    first,
                    "{}",
                    String::from_utf8_lossy(l.bytes)
                );
            }
        };
        let input = marked_input();
        if chunk == 0 {
            framer.feed(&input, &mut out);
        } else {
            for c in input.chunks(chunk) {
                framer.feed(c, &mut out);
            }
        }
        framer.finish(&mut out);
        assert_eq!(lines, 3002, "chunks of {chunk}");
        // Whole, only the unterminated last line is not told; in 4 KiB chunks, the
        // ~110 lines across a chunk's end neither.
        match chunk {
            0 => assert_eq!(told, 3001),
            4096 => assert!((2850..3000).contains(&told), "{told} told"),
            _ => {}
        }
    }
}

#[test]
fn runtime_formats_are_not_told() {
    let input = b"2024-01-01T00:00:00.000000000Z stdout F a=b H\n{\"log\":\"x=1\\n\",\"stream\":\"stdout\"}\n";
    for format in [LogFormat::Cri, LogFormat::Docker] {
        let mut framer = Framer::new(format, 1024);
        framer.feed(input, &mut |l: Line<'_>| assert_eq!(l.unmarked_to, None));
    }
}
