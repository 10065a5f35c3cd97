//! The app's output: read it, pass it on where asked, and count it per stream.
//!
//! Counting here is exact line framing (`\n`, with a last unterminated line counted at
//! end of stream); classification of what the lines say builds on this.

pub mod tail;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Counts for one named stream (`stdout`, `stderr`, or a configured log name).
#[derive(Debug)]
pub struct StreamStats {
    /// The `stream` label: from config or fixed names, never from log content.
    pub name: String,
    lines: AtomicU64,
    bytes: AtomicU64,
}

impl StreamStats {
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(StreamStats {
            name: name.into(),
            lines: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Line framing across chunk boundaries.
#[derive(Debug, Default)]
pub struct LineCounter {
    /// Bytes seen since the last newline.
    open_line: bool,
}

impl LineCounter {
    /// Complete lines in `chunk`.
    pub fn feed(&mut self, chunk: &[u8]) -> u64 {
        if chunk.is_empty() {
            return 0;
        }
        let n = memchr::memchr_iter(b'\n', chunk).count() as u64;
        self.open_line = chunk.last() != Some(&b'\n');
        n
    }

    /// At end of stream, an unterminated last line still counts.
    pub fn finish(&mut self) -> u64 {
        std::mem::take(&mut self.open_line) as u64
    }
}

/// Reads `reader` to its end, writing every byte on to `writer` (when given, in the
/// order read) and counting lines and bytes into `stats`. A writer that fails (our
/// own stdout closed) is dropped with one warning; reading and counting go on so the
/// app never blocks on a full pipe.
pub async fn pump<R, W>(mut reader: R, mut writer: Option<W>, stats: Arc<StreamStats>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut counter = LineCounter::default();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(stream = %stats.name, error = %e, "reading the app's output failed; stream closed");
                break;
            }
        };
        let chunk = &buf[..n];
        if let Some(w) = writer.as_mut() {
            let written = async {
                w.write_all(chunk).await?;
                w.flush().await
            }
            .await;
            if let Err(e) = written {
                tracing::warn!(stream = %stats.name, error = %e, "cannot pass the app's output on; still counting it");
                writer = None;
            }
        }
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        stats
            .lines
            .fetch_add(counter.feed(chunk), Ordering::Relaxed);
    }
    stats.lines.fetch_add(counter.finish(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_across_chunks() {
        let mut c = LineCounter::default();
        assert_eq!(c.feed(b"one\ntw"), 1);
        assert_eq!(c.feed(b"o\nthree"), 1);
        assert_eq!(c.finish(), 1);
        assert_eq!(c.finish(), 0);
        assert_eq!(c.feed(b"\n\n"), 2);
        assert_eq!(c.finish(), 0);
    }

    #[tokio::test]
    async fn pump_passes_bytes_through_and_counts() {
        let input: &[u8] = b"a\nbb\n\xff\x00ccc";
        let mut out = Vec::new();
        let stats = StreamStats::new("stdout");
        pump(input, Some(&mut out), stats.clone()).await;
        assert_eq!(out, input);
        assert_eq!(stats.lines(), 3);
        assert_eq!(stats.bytes(), input.len() as u64);
    }
}
