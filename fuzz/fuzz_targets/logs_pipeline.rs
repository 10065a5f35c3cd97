//! Framing + classification + grouping on arbitrary bytes, with oracles:
//! lines do not depend on chunk boundaries, never exceed the cap, plain framing
//! finds one line per `\n` (plus an unterminated last one), events never outnumber
//! lines, and nothing is held after `finish`.

#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use outrider::logs::classify::{Classifier, Rule, RuleAction};
use outrider::logs::events::EventAssembler;
use outrider::logs::framing::{Framer, Line, LogFormat, Stream};
use outrider::logs::scan::scan_with;

type Owned = (Vec<u8>, Option<Stream>, bool);

fn frame(format: LogFormat, max: usize, input: &[u8], chunk: usize) -> (Vec<Owned>, LogFormat) {
    let mut framer = Framer::new(format, max);
    let mut lines = Vec::new();
    let mut out = |l: Line<'_>| lines.push((l.bytes.to_vec(), l.stream, l.oversized));
    for c in input.chunks(chunk) {
        framer.feed(c, &mut out);
    }
    framer.finish(&mut out);
    (lines, framer.format())
}

/// Built once: compiling the rule's regex per input would dominate the run.
static CLASSIFIER: LazyLock<Classifier> = LazyLock::new(|| {
    Classifier::new(&[Rule {
        pattern: "(?i)ignore-me".into(),
        action: RuleAction::Ignore,
    }])
    .expect("valid rule")
});

const FORMATS: [LogFormat; 4] = [
    LogFormat::Auto,
    LogFormat::Cri,
    LogFormat::Docker,
    LogFormat::Plain,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let format = FORMATS[usize::from(data[0] & 3)];
    // Small caps reach the oversized paths with small inputs.
    let max = 1 + usize::from(data[1]) * 4;
    let chunk = 1 + usize::from(data[2] & 63);
    let step = Duration::from_millis(u64::from(data[2] >> 6) * 400);
    let input = &data[3..];

    let (whole, detected) = frame(format, max, input, input.len().max(1));
    let (cut, detected_cut) = frame(format, max, input, chunk);
    assert_eq!(whole, cut, "chunks of {chunk} change the lines");
    assert_eq!(detected, detected_cut);
    for (bytes, _, _) in &whole {
        assert!(
            bytes.len() <= max,
            "line of {} bytes over the cap {max}",
            bytes.len()
        );
    }
    if detected == LogFormat::Plain || (format == LogFormat::Auto && detected == LogFormat::Auto) {
        let expected = memchr::memchr_iter(b'\n', input).count()
            + usize::from(!input.is_empty() && !input.ends_with(b"\n"));
        assert_eq!(whole.len(), expected, "plain lines are not one per newline");
    }

    let classifier = &*CLASSIFIER;
    let t0 = Instant::now();
    let mut events = EventAssembler::default();
    let mut pushed = 0u64;
    for (i, (bytes, _, _)) in whole.iter().enumerate() {
        let c = classifier.classify(bytes);
        if c.ignored {
            continue;
        }
        let now = t0 + step * i as u32;
        events.push(bytes, c.severity, now);
        pushed += 1;
        if i % 7 == 0 {
            events.flush_if_idle(now + step);
        }
    }
    events.finish();
    assert!(!events.is_holding());
    assert!(events.counts().total() <= pushed);

    let counts = scan_with(input, classifier, format, max).expect("reading a slice");
    assert_eq!(counts.lines, whole.len() as u64);
    assert_eq!(counts.bytes, input.len() as u64);
    assert!(counts.events.total() <= pushed);
});
