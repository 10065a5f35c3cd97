//! Raw bytes of one log source → logical lines.
//!
//! This module owns line framing: it takes the byte chunks a source yields (chunk
//! boundaries fall anywhere, even inside a UTF-8 sequence or a CRI header) and hands
//! out whole lines, unwrapping container-runtime formats on the way:
//!
//! - **Plain**: a line ends at `\n`; a trailing `\r` is dropped.
//! - **CRI** (kubelet files under /var/log/pods):
//!   `2024-01-01T00:00:00.123456789Z stdout F message`. A `P` tag marks a piece of a
//!   longer line; pieces are joined per stream (stdout and stderr separately, as they
//!   interleave in one file) until the `F` piece.
//! - **Docker** json-file: `{"log":"msg\n","stream":"stderr","time":"…"}`. The `log`
//!   string is unescaped; a value without a trailing `\n` is a 16 KiB split and is
//!   joined per stream with what follows.
//! - **Auto** picks one of the above from the first non-empty line of the source.
//!
//! A line longer than the cap is cut at the cap and flagged `oversized`; the rest of
//! it is skipped as it arrives, never buffered, and framing resumes at the next line.
//! Bytes are bytes: invalid UTF-8 and NULs pass through untouched.
//!
//! Buffers are owned by the [`Framer`] and reused, so a steady stream of lines costs
//! no allocation; a line that arrives whole inside one chunk is handed out straight
//! from the chunk without a copy.
//!
//! A plain line handed out straight from its chunk also tells where its first `=` or
//! `H` is ([`Line::unmarked_to`]): one search over the chunk finds those with the
//! `\n`s, so classification does not search a line without them again for its
//! logfmt level and its access status, nor the start of one with them (issue 17).

use memchr::{memchr, memchr2};

use super::bytes::{Byte, ThreeBytes};

/// The largest logical line handed out whole (64 KiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Finds the `\n`s with the `=` and `H` of plain lines. One for all framers: a
/// searcher keeps its needles as vectors (about 150 bytes, aligned to 32), which
/// each of 10,000 followed files would carry (4–7 MiB more peak RSS in
/// `scripts/bench_hostile_logs.py`'s `cri-glob` case as a field).
static NEWLINE_OR_MARK: std::sync::LazyLock<ThreeBytes> =
    std::sync::LazyLock::new(|| ThreeBytes::new(b'\n', b'=', b'H'));

/// Room for the wrapping around a capped message: a CRI header is ~45 bytes.
const HEADER_ROOM: usize = 256;

/// How a source wraps its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Detect from the first non-empty line.
    Auto,
    Cri,
    Docker,
    Plain,
}

/// The container stream a line came from, when the format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One logical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The message, without its `\n` (or `\r\n`) and without CRI/docker wrapping.
    /// At most the framer's cap long.
    pub bytes: &'a [u8],
    /// Known for CRI and docker lines; `None` for plain ones.
    pub stream: Option<Stream>,
    /// The line was longer than the cap: `bytes` is its first cap bytes, the rest
    /// was dropped. Counted in `outrider_log_oversized_lines_total`.
    pub oversized: bool,
    /// No `=` or `H` lies in `bytes` before this offset: where the first one is, or
    /// the end of the physical line (it may lie past `bytes`). Known for a plain
    /// line whole in its chunk, found with its end; `None` otherwise.
    pub unmarked_to: Option<usize>,
}

/// A line of a runtime format that is still arriving in pieces.
#[derive(Debug, Default)]
struct Partial {
    /// The pieces so far, at most the cap.
    buf: Vec<u8>,
    /// Bytes were dropped at the cap.
    oversized: bool,
    /// A piece has arrived (an empty piece still opens a line).
    open: bool,
}

/// Frames one source. Feed it chunks in order; call [`Framer::finish`] at end of
/// stream.
#[derive(Debug)]
pub struct Framer {
    /// `Auto` until the first non-empty line decides.
    format: LogFormat,
    max_line_bytes: usize,
    /// The current physical line when it spans chunks; at most `physical_cap()`.
    physical: Vec<u8>,
    /// Bytes of the current physical line were dropped at `physical_cap()`.
    physical_truncated: bool,
    /// Pieces per stream: stdout, stderr, and lines whose stream was lost.
    partial: [Partial; 3],
    /// A docker `log` value, unescaped.
    decoded: Vec<u8>,
    /// Finds the `\n`s.
    newline: Byte,
}

impl Framer {
    /// `max_line_bytes` is the cap on a logical line (at least 1).
    pub fn new(format: LogFormat, max_line_bytes: usize) -> Self {
        Framer {
            format,
            max_line_bytes: max_line_bytes.max(1),
            physical: Vec::new(),
            physical_truncated: false,
            partial: Default::default(),
            decoded: Vec::new(),
            newline: Byte::new(b'\n'),
        }
    }

    /// The format in use: the one given, or the one detected (`Auto` until then).
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Frames `chunk`, calling `out` for every line it completes.
    pub fn feed(&mut self, chunk: &[u8], out: &mut impl FnMut(Line<'_>)) {
        // One searcher, built once, called directly: `memchr` paid its dispatch on
        // every line (issue 17).
        let mut start = 0;
        if !self.physical.is_empty() || self.physical_truncated {
            // The line begun in an earlier chunk: joined, then framed as it always was.
            let Some(i) = self.newline.find(chunk) else {
                self.append_physical(chunk);
                return;
            };
            self.append_physical(&chunk[..i]);
            let buf = std::mem::take(&mut self.physical);
            let truncated = std::mem::take(&mut self.physical_truncated);
            self.physical_line(&buf, truncated, None, out);
            self.physical = buf;
            self.physical.clear();
            start = i + 1;
        }
        if matches!(self.format, LogFormat::Plain | LogFormat::Auto) {
            start = self.feed_plain(chunk, start, out);
        } else {
            while let Some(i) = self.newline.find(&chunk[start..]).map(|i| start + i) {
                self.whole_line(&chunk[start..i], None, out);
                start = i + 1;
            }
        }
        self.append_physical(&chunk[start..]);
    }

    /// The lines of `chunk` from `start`, each with where its first `=` or `H` is,
    /// found by one search for `\n`, `=` and `H`; returns where the unterminated
    /// rest begins. Past a line's first mark only its end is searched for: a search
    /// over the chunk per further mark cost about what the pass's search over the
    /// line does, and lines of many `=` paid both (32 marks kept per line: 45% more
    /// instructions on lines of 40 `=`; issue 17).
    fn feed_plain(
        &mut self,
        chunk: &[u8],
        mut start: usize,
        out: &mut impl FnMut(Line<'_>),
    ) -> usize {
        let newline_or_mark: &ThreeBytes = &NEWLINE_OR_MARK;
        while let Some(hit) = newline_or_mark.find(&chunk[start..]).map(|i| start + i) {
            let end = if chunk[hit] == b'\n' {
                hit
            } else {
                match self.newline.find(&chunk[hit..]) {
                    Some(n) => hit + n,
                    None => break,
                }
            };
            let line = &chunk[start..end];
            let unmarked_to = Some(hit - start);
            if self.format == LogFormat::Plain {
                // What `whole_line` does for a plain line (its cap is the line cap),
                // without its calls: most lines of most sources come this way.
                let max = self.max_line_bytes;
                let oversized = line.len() > max;
                emit(
                    &line[..line.len().min(max)],
                    None,
                    oversized,
                    unmarked_to,
                    out,
                );
            } else {
                self.whole_line(line, unmarked_to, out);
            }
            start = end + 1;
        }
        start
    }

    /// A physical line that lies whole in the chunk: framed in place.
    #[inline]
    fn whole_line(
        &mut self,
        line: &[u8],
        unmarked_to: Option<usize>,
        out: &mut impl FnMut(Line<'_>),
    ) {
        let cap = self.physical_cap();
        let truncated = line.len() > cap;
        self.physical_line(&line[..line.len().min(cap)], truncated, unmarked_to, out);
    }

    /// End of stream: hands out a last unterminated line and any line still in
    /// pieces. The framer may be fed again afterwards (the detected format stays).
    pub fn finish(&mut self, out: &mut impl FnMut(Line<'_>)) {
        if !self.physical.is_empty() || self.physical_truncated {
            let buf = std::mem::take(&mut self.physical);
            let truncated = std::mem::take(&mut self.physical_truncated);
            self.physical_line(&buf, truncated, None, out);
            self.physical = buf;
            self.physical.clear();
        }
        for (slot, stream) in self.partial.iter_mut().zip(SLOT_STREAMS) {
            if slot.open {
                emit(&slot.buf, stream, slot.oversized, None, out);
                slot.buf.clear();
                slot.oversized = false;
                slot.open = false;
            }
        }
    }

    /// The most of one physical line worth keeping: the cap plus the wrapping. A
    /// docker value may be escaped (`\u0000` is 6 bytes for 1), so it gets twice the
    /// cap; beyond that the value is cut and the line reported oversized.
    fn physical_cap(&self) -> usize {
        let cap = self.max_line_bytes;
        match self.format {
            LogFormat::Plain => cap,
            LogFormat::Cri => cap.saturating_add(HEADER_ROOM),
            LogFormat::Docker | LogFormat::Auto => {
                cap.saturating_mul(2).saturating_add(HEADER_ROOM)
            }
        }
    }

    fn append_physical(&mut self, bytes: &[u8]) {
        let room = self.physical_cap().saturating_sub(self.physical.len());
        if bytes.len() > room {
            self.physical.extend_from_slice(&bytes[..room]);
            self.physical_truncated = true;
        } else {
            self.physical.extend_from_slice(bytes);
        }
    }

    /// One physical line, without its `\n`; `truncated` when bytes were dropped;
    /// `unmarked_to` as in [`Line`] (used for a plain line).
    fn physical_line(
        &mut self,
        line: &[u8],
        truncated: bool,
        unmarked_to: Option<usize>,
        out: &mut impl FnMut(Line<'_>),
    ) {
        if self.format == LogFormat::Auto && !line.is_empty() {
            self.format = detect(line);
        }
        let max = self.max_line_bytes;
        match self.format {
            LogFormat::Auto | LogFormat::Plain => {
                emit_capped(line, None, truncated, max, unmarked_to, out)
            }
            LogFormat::Cri => match parse_cri(line) {
                Some((stream, last, message)) => piece(
                    &mut self.partial[slot(Some(stream))],
                    Some(stream),
                    message,
                    last,
                    truncated,
                    max,
                    out,
                ),
                None => emit_capped(line, None, truncated, max, None, out),
            },
            LogFormat::Docker => {
                let Some(body) = line.strip_prefix(DOCKER_PREFIX) else {
                    return emit_capped(line, None, truncated, max, None, out);
                };
                self.decoded.clear();
                let (stream, last, cut) = match decode_json_string(body, &mut self.decoded) {
                    Some(end) => {
                        let stream = docker_stream(&body[end..]);
                        let last = self.decoded.last() == Some(&b'\n');
                        if last {
                            self.decoded.pop();
                        }
                        (stream, last, truncated)
                    }
                    // The value was cut with the physical line (or the line is not
                    // docker's after all): hand out what there is.
                    None => (None, true, true),
                };
                piece(
                    &mut self.partial[slot(stream)],
                    stream,
                    &self.decoded,
                    last,
                    cut,
                    max,
                    out,
                );
            }
        }
    }
}

const DOCKER_PREFIX: &[u8] = b"{\"log\":\"";

/// Partial slots in order, and the stream each stands for.
const SLOT_STREAMS: [Option<Stream>; 3] = [Some(Stream::Stdout), Some(Stream::Stderr), None];

fn slot(stream: Option<Stream>) -> usize {
    match stream {
        Some(Stream::Stdout) => 0,
        Some(Stream::Stderr) => 1,
        None => 2,
    }
}

fn detect(line: &[u8]) -> LogFormat {
    if parse_cri(line).is_some() {
        LogFormat::Cri
    } else if line.starts_with(DOCKER_PREFIX) {
        LogFormat::Docker
    } else {
        LogFormat::Plain
    }
}

#[inline]
fn emit(
    bytes: &[u8],
    stream: Option<Stream>,
    oversized: bool,
    unmarked_to: Option<usize>,
    out: &mut impl FnMut(Line<'_>),
) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    out(Line {
        bytes,
        stream,
        oversized,
        unmarked_to,
    });
}

fn emit_capped(
    bytes: &[u8],
    stream: Option<Stream>,
    truncated: bool,
    max: usize,
    unmarked_to: Option<usize>,
    out: &mut impl FnMut(Line<'_>),
) {
    if bytes.len() > max {
        emit(&bytes[..max], stream, true, unmarked_to, out);
    } else {
        emit(bytes, stream, truncated, unmarked_to, out);
    }
}

/// One piece of a runtime-format line; `last` ends the line.
fn piece(
    partial: &mut Partial,
    stream: Option<Stream>,
    message: &[u8],
    last: bool,
    truncated: bool,
    max: usize,
    out: &mut impl FnMut(Line<'_>),
) {
    if last && !partial.open {
        // The common case, a line in one piece: no copy.
        return emit_capped(message, stream, truncated, max, None, out);
    }
    partial.open = true;
    partial.oversized |= truncated;
    let room = max.saturating_sub(partial.buf.len());
    if message.len() > room {
        partial.buf.extend_from_slice(&message[..room]);
        partial.oversized = true;
    } else {
        partial.buf.extend_from_slice(message);
    }
    if last {
        emit(&partial.buf, stream, partial.oversized, None, out);
        partial.buf.clear();
        partial.oversized = false;
        partial.open = false;
    }
}

/// `TIMESTAMP STREAM TAG MESSAGE` → (stream, is the last piece, message).
fn parse_cri(line: &[u8]) -> Option<(Stream, bool, &[u8])> {
    let space = memchr(b' ', line)?;
    let ts = &line[..space];
    // RFC 3339: `2024-01-01T…`; enough to tell it from a plain line.
    if ts.len() < 20 || ts[4] != b'-' || ts[7] != b'-' || ts[10] != b'T' {
        return None;
    }
    if !ts[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rest = &line[space + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (Stream::Stderr, r)
    } else {
        return None;
    };
    let (tag, message) = match memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    // Tags are `:`-separated; the first is P (partial) or F (full).
    let last = match tag.split(|&b| b == b':').next() {
        Some(b"F") => true,
        Some(b"P") => false,
        _ => return None,
    };
    Some((stream, last, message))
}

/// The `"stream":"…"` after docker's `log` value.
fn docker_stream(after: &[u8]) -> Option<Stream> {
    static STREAM_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"stream\":\""));
    let i = STREAM_KEY.find(after)?;
    let value = &after[i + 10..];
    if value.starts_with(b"stdout\"") {
        Some(Stream::Stdout)
    } else if value.starts_with(b"stderr\"") {
        Some(Stream::Stderr)
    } else {
        None
    }
}

/// Unescapes a JSON string body (after its opening quote) into `out`. Returns the
/// index just past the closing quote, or `None` when the string is unterminated
/// (what there was is still in `out`). Malformed escapes are kept as written and
/// lone surrogates become U+FFFD: a log line is never refused.
pub(crate) fn decode_json_string(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut i = 0;
    loop {
        let j = match memchr2(b'"', b'\\', &src[i..]) {
            Some(j) => i + j,
            None => {
                out.extend_from_slice(&src[i..]);
                return None;
            }
        };
        out.extend_from_slice(&src[i..j]);
        if src[j] == b'"' {
            return Some(j + 1);
        }
        let &escape = src.get(j + 1)?;
        i = j + 2;
        let byte = match escape {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'"' | b'\\' | b'/' => escape,
            b'u' => {
                let Some(unit) = hex4(src, i) else {
                    out.extend_from_slice(&src[j..i]);
                    continue;
                };
                i += 4;
                let mut code = unit;
                if (0xD800..0xDC00).contains(&unit) && src.get(i..i + 2) == Some(b"\\u") {
                    if let Some(low) = hex4(src, i + 2).filter(|l| (0xDC00..0xE000).contains(l)) {
                        code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        i += 6;
                    }
                }
                let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => {
                out.extend_from_slice(&src[j..i]);
                continue;
            }
        };
        out.push(byte);
    }
}

fn hex4(src: &[u8], at: usize) -> Option<u32> {
    let digits = src.get(at..at + 4)?;
    let mut v = 0;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests;
