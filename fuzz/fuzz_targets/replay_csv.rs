//! The replay reader on arbitrary CSV, then the analysis over what it read (as
//! `outrider replay` does): no panic; observations come in increasing time.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outrider::analysis::trace;
use outrider::analysis::AnalysisConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(observations) = trace::read(data, None) else {
        return;
    };
    // Bound the analysis: the reader is the target, not the analysis's own cost.
    if observations.len() > 2000 {
        return;
    }
    let summary = trace::replay(&observations, &AnalysisConfig::default());
    let _ = serde_json::to_string(&summary).expect("the summary prints as JSON");
});
