//! Log framing alone, every format, on arbitrary bytes: the lines do not depend on
//! how the input is cut (one chunk, fixed chunks, chunks of varying size), none is
//! over the cap, a cut line says so, and a CRI/docker line knows its stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outrider::logs::framing::{Framer, Line, LogFormat, Stream};

type Owned = (Vec<u8>, Option<Stream>, bool);

fn frame(
    format: LogFormat,
    max: usize,
    cuts: impl Iterator<Item = std::ops::Range<usize>>,
    input: &[u8],
) -> (Vec<Owned>, LogFormat) {
    let mut framer = Framer::new(format, max);
    let mut lines = Vec::new();
    let mut out = |l: Line<'_>| lines.push((l.bytes.to_vec(), l.stream, l.oversized));
    for r in cuts {
        framer.feed(&input[r], &mut out);
    }
    framer.finish(&mut out);
    // Nothing more comes after the end.
    framer.finish(&mut |_| panic!("a line after finish"));
    (lines, framer.format())
}

/// Ranges of sizes 1..=`seed`-derived, varying, covering `len`.
fn varying(len: usize, seed: u8) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut k = usize::from(seed) + 1;
    while at < len {
        k = (k * 7 + 3) % 97 + 1;
        let end = (at + k).min(len);
        out.push(at..end);
        at = end;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let format = [
        LogFormat::Auto,
        LogFormat::Cri,
        LogFormat::Docker,
        LogFormat::Plain,
    ][usize::from(data[0] & 3)];
    let max = 1 + usize::from(data[1]) * 2;
    let input = &data[2..];
    let (whole, detected) = frame(format, max, std::iter::once(0..input.len()), input);
    let (bytewise, d2) = frame(format, max, (0..input.len()).map(|i| i..i + 1), input);
    let (varied, d3) = frame(
        format,
        max,
        varying(input.len(), data[0]).into_iter(),
        input,
    );
    assert_eq!(whole, bytewise, "one byte at a time changes the lines");
    assert_eq!(whole, varied, "varying chunks change the lines");
    assert_eq!((detected, detected), (d2, d3));
    for (bytes, stream, _) in &whole {
        assert!(
            bytes.len() <= max,
            "{} bytes over the cap {max}",
            bytes.len()
        );
        if detected == LogFormat::Plain {
            assert!(stream.is_none());
        }
    }
});
