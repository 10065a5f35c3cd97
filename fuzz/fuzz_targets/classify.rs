//! Classification of arbitrary lines, with user rules taken from the input too:
//! no panic, the same answer twice, an ignored line is `Unknown`, and a request's duration finite and non-negative.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outrider::logs::classify::{Classifier, Rule, RuleAction, Severity};

fuzz_target!(|data: &[u8]| {
    // "rule\0line": the rule a user might write (when it compiles), then the line.
    let (rule, line) = match data.iter().position(|b| *b == 0) {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let rules: Vec<Rule> = rule
        .filter(|r| r.len() < 64)
        .map(|p| Rule {
            pattern: p.to_string(),
            action: RuleAction::Severity(Severity::Error),
        })
        .into_iter()
        .collect();
    let classifier = Classifier::new(&rules).unwrap_or_default();
    let c = classifier.classify(line);
    assert_eq!(c, classifier.classify(line), "not deterministic");
    if c.ignored {
        assert_eq!(c.severity, Severity::Unknown);
    }
    if let Some((_, secs)) = classifier.request(line, c.http) {
        assert!(secs.is_finite() && secs >= 0.0, "duration {secs}");
    }
    if let Some(sev) = Severity::from_level_word(line) {
        assert_eq!(
            Severity::from_level_word(sev.as_str().as_bytes()),
            Some(sev)
        );
    }
});
