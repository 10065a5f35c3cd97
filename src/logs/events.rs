//! Lines → events: a multi-line stack trace is one event, not forty.
//!
//! This module owns grouping and the per-severity event counts
//! (`outrider_log_events_total{severity}`); what a single line means is
//! [`super::classify`]'s. One [`EventAssembler`] follows one stream of lines: give each
//! container stream (stdout, stderr) its own, since their lines interleave.
//!
//! # Rules
//!
//! - Every non-blank line that does not continue an event is an event of its own
//!   severity. Blank lines are never events and never end one.
//! - A **trace** starts at `Traceback (most recent call last):` (Python), an exception
//!   line such as `java.lang.IllegalStateException: boom` or `Exception in thread …`
//!   (JVM; .NET's `   at …` frames follow the same shape), `panic: `, `fatal error: `
//!   or `goroutine N [running]:` (Go), `thread '…' panicked at` or
//!   `stack backtrace:` (Rust). It goes on while lines look like that runtime's
//!   frames: Python's indented frames, the final exception line and chained
//!   tracebacks (`During handling of the above exception…`); `\tat`, `Caused by:`,
//!   `Suppressed:` and `... N more`; Go's goroutine headers, `pkg.func(…)` and
//!   `\t/path/file.go:12 +0x1d`, `created by`, and `exit status 2`, which ends it
//!   (the process has exited: a `panic: ` after it is the next run's); Rust's panic message,
//!   indented backtrace frames and `note:` lines. A trace is one **error** event.
//! - A trace that comes right after an error-level line (what Python's
//!   `logging.exception` and logback's `log.error("failed", e)` write) is part of that
//!   line's event. After any other line it is an error event of its own.
//! - An error line is therefore held until the next line shows whether a trace
//!   follows, and a trace until a line does not continue it. A line that arrives
//!   `flush_after` or more after the previous one never joins it, and
//!   [`EventAssembler::flush_if_idle`] closes a held event once the stream has been quiet
//!   that long, so the last event of a burst is counted without waiting for more
//!   output.
//!
//! Time is a parameter (`now: Instant`), never read here, so tests set it; with
//! tokio's paused clock pass `tokio::time::Instant::now().into_std()`.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::classify::{is_exception_line, Severity};

/// How long a held event waits for its next line: output written in one burst
/// (a log call and its traceback) arrives well within it.
pub const DEFAULT_FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Events per severity since the grouper started. Serializes as
/// `{"error": N, "warning": N, "info": N, "debug": N, "unknown": N}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    pub error: u64,
    pub warning: u64,
    pub info: u64,
    pub debug: u64,
    pub unknown: u64,
}

impl EventCounts {
    pub fn get(&self, severity: Severity) -> u64 {
        match severity {
            Severity::Error => self.error,
            Severity::Warning => self.warning,
            Severity::Info => self.info,
            Severity::Debug => self.debug,
            Severity::Unknown => self.unknown,
        }
    }

    pub fn add(&mut self, severity: Severity, n: u64) {
        let count = match severity {
            Severity::Error => &mut self.error,
            Severity::Warning => &mut self.warning,
            Severity::Info => &mut self.info,
            Severity::Debug => &mut self.debug,
            Severity::Unknown => &mut self.unknown,
        };
        *count += n;
    }

    pub fn total(&self) -> u64 {
        Severity::ALL.iter().map(|&s| self.get(s)).sum()
    }
}

impl std::ops::AddAssign for EventCounts {
    fn add_assign(&mut self, other: EventCounts) {
        for s in Severity::ALL {
            self.add(s, other.get(s));
        }
    }
}

/// The error event being held open. Only error events are held: nothing else can
/// be continued by a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// An error line a trace may still continue.
    Head,
    Trace(Trace),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trace {
    Python(PythonPhase),
    Jvm,
    /// `exited`: `exit status N` was read; the process is gone, nothing more is its.
    Go {
        exited: bool,
    },
    /// `expect_message`: the head ended with `:` and the panic message follows.
    Rust {
        expect_message: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PythonPhase {
    /// After `Traceback …:`; indented frames, then the exception line.
    Frames,
    /// After the exception line; a chained traceback may follow.
    Ended,
    /// After `During handling…` / `The above exception…`: the next `Traceback`.
    Chained,
}

/// Groups one stream's classified lines into events and counts them.
#[derive(Debug)]
pub struct EventAssembler {
    flush_after: Duration,
    held: Option<Held>,
    /// `flush_after` past the last line: a line at or after it never joins the held
    /// event. Kept as an instant so a line costs one comparison, not a subtraction.
    quiet_at: Option<Instant>,
    /// The instant of the last line, whose deadline `quiet_at` is.
    last_now: Option<Instant>,
    counts: EventCounts,
}

impl Default for EventAssembler {
    fn default() -> Self {
        EventAssembler::new(DEFAULT_FLUSH_AFTER)
    }
}

impl EventAssembler {
    pub fn new(flush_after: Duration) -> Self {
        EventAssembler {
            flush_after,
            held: None,
            quiet_at: None,
            last_now: None,
            counts: EventCounts::default(),
        }
    }

    /// One line (without its newline) and the severity [`super::classify`] gave it,
    /// arriving at `now`. Lines a user rule ignores should not be pushed.
    pub fn push(&mut self, line: &[u8], severity: Severity, now: Instant) {
        // Lines come in chunks read at one instant: the deadline only moves when the
        // instant does (an addition per line was 4% of a scan's instructions).
        if self.last_now != Some(now) {
            self.flush_if_idle(now);
            // An instant too far to add to (`None`) never comes.
            self.quiet_at = now.checked_add(self.flush_after);
            self.last_now = Some(now);
        } else if self.flush_after.is_zero() {
            // The same instant is at the deadline only when there is no delay.
            self.close();
        }
        if let Some(held) = &mut self.held {
            if continues(held, line) {
                return;
            }
        }
        if let Some(trace) = trace_start(line) {
            // After an error line the trace is that line's; else its own event.
            if self.held != Some(Held::Head) {
                self.close();
            }
            self.held = Some(Held::Trace(trace));
            return;
        }
        if is_blank(line) {
            return;
        }
        self.close();
        if severity == Severity::Error {
            self.held = Some(Held::Head);
        } else {
            self.counts.add(severity, 1);
        }
    }

    /// Closes the held event if no line has come for `flush_after`.
    pub fn flush_if_idle(&mut self, now: Instant) {
        if self.quiet_at.is_some_and(|quiet| now >= quiet) {
            self.close();
        }
    }

    /// End of stream: closes the held event.
    pub fn finish(&mut self) {
        self.close();
    }

    /// Counts of closed events (a held one is not in them yet).
    pub fn counts(&self) -> EventCounts {
        self.counts
    }

    /// An event is held open, waiting to see whether the next line continues it.
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    fn close(&mut self) {
        if self.held.take().is_some() {
            self.counts.add(Severity::Error, 1);
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn indented(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

fn trim_start(line: &[u8]) -> &[u8] {
    let n = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &line[n..]
}

/// A line that begins a trace, and the trace's state after it.
fn trace_start(line: &[u8]) -> Option<Trace> {
    match line.first()? {
        b'T' if line.starts_with(b"Traceback (most recent call last):") => {
            Some(Trace::Python(PythonPhase::Frames))
        }
        b'p' | b'f' if line.starts_with(b"panic: ") || line.starts_with(b"fatal error: ") => {
            Some(Trace::Go { exited: false })
        }
        b'g' if is_goroutine_header(line) => Some(Trace::Go { exited: false }),
        b't' if line.starts_with(b"thread '")
            && memchr::memmem::find(line, b"' panicked at").is_some() =>
        {
            Some(Trace::Rust {
                expect_message: line.ends_with(b":"),
            })
        }
        b's' | b'S' if line[1..].starts_with(b"tack backtrace:") => Some(Trace::Rust {
            expect_message: false,
        }),
        b'E' if line.starts_with(b"Exception in thread ") => Some(Trace::Jvm),
        b'A'..=b'Z' | b'a'..=b'z' if is_exception_line(line) => Some(Trace::Jvm),
        _ => None,
    }
}

/// `goroutine 1 [running]:`
fn is_goroutine_header(line: &[u8]) -> bool {
    line.strip_prefix(b"goroutine ")
        .is_some_and(|rest| rest.first().is_some_and(u8::is_ascii_digit) && rest.ends_with(b":"))
}

/// `main.main()`, `net/http.(*conn).serve(0xc000118000, {0x6d0c48, 0xc00007e0c0})`:
/// no space before the first `(`, a `)` at the end.
fn is_go_frame(line: &[u8]) -> bool {
    let Some(paren) = memchr::memchr(b'(', line) else {
        return false;
    };
    paren > 0
        && !line[..paren].iter().any(u8::is_ascii_whitespace)
        && (line.ends_with(b")") || line.ends_with(b"...)"))
}

/// Whether `line` continues the held event; updates the event's phase.
fn continues(held: &mut Held, line: &[u8]) -> bool {
    let trace = match held {
        Held::Head => {
            // Some loggers print the frames without the exception line.
            if is_jvm_frame(line) {
                *held = Held::Trace(Trace::Jvm);
                return true;
            }
            return false;
        }
        Held::Trace(trace) => trace,
    };
    match trace {
        Trace::Python(phase) => match phase {
            PythonPhase::Frames => {
                if !indented(line) && !is_blank(line) {
                    // The exception line (`ValueError: …`) ends the frames.
                    *phase = PythonPhase::Ended;
                }
                true
            }
            PythonPhase::Ended | PythonPhase::Chained => {
                if is_blank(line) {
                    true
                } else if line.starts_with(b"During handling of the above exception")
                    || line.starts_with(b"The above exception was the direct cause")
                {
                    *phase = PythonPhase::Chained;
                    true
                } else if *phase == PythonPhase::Chained
                    && line.starts_with(b"Traceback (most recent call last):")
                {
                    *phase = PythonPhase::Frames;
                    true
                } else {
                    false
                }
            }
        },
        Trace::Jvm => is_jvm_frame(line),
        Trace::Go { exited: true } => false,
        Trace::Go { exited } => {
            if line.starts_with(b"exit status ") {
                *exited = true;
                return true;
            }
            is_blank(line)
                || line.starts_with(b"\t")
                || is_goroutine_header(line)
                || line.starts_with(b"created by ")
                || line.starts_with(b"[signal ")
                || line.starts_with(b"panic: ")
                || line.starts_with(b"runtime: ")
                || is_go_frame(line)
        }
        Trace::Rust { expect_message } => {
            if *expect_message {
                *expect_message = false;
                return true;
            }
            indented(line) || line.starts_with(b"stack backtrace:") || line.starts_with(b"note: ")
        }
    }
}

/// `\tat com.x.Y.z(Y.java:12)`, `Caused by: …`, `\t... 12 more`, `Suppressed: …`,
/// .NET's `   at X.Y() in f.cs:line 3`, logback's `... 5 common frames omitted`.
fn is_jvm_frame(line: &[u8]) -> bool {
    if line.starts_with(b"Caused by: ") {
        return true;
    }
    if !indented(line) {
        return false;
    }
    let t = trim_start(line);
    t.starts_with(b"at ")
        || t.starts_with(b"...")
        || t.starts_with(b"Caused by: ")
        || t.starts_with(b"Suppressed: ")
}

#[cfg(test)]
mod tests;
