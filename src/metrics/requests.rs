//! Where a request's time goes and how long the app took to start:
//! `outrider_request_time_seconds{target, part="on_cpu|cpu_wait|other"}` (mean per
//! request over the latency window, while the split is judged) and
//! `outrider_target_startup_seconds{target, until="listening|first_request"}` (the
//! last start, once measured).

use super::Family;
use crate::analysis::requests::Bound;
use crate::analysis::Verdicts;

/// Appends the request-time and start-up families.
pub(super) fn families<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)>,
    fams: &mut Vec<Family<'a>>,
) {
    let mut time = Family::gauge(
        "outrider_request_time_seconds",
        "Mean seconds per request over analysis.latency_window: on a CPU, waiting for one, or waiting on something else.",
    );
    let mut startup = Family::gauge(
        "outrider_target_startup_seconds",
        "Seconds from the main process' start to its first listening TCP socket, and to its first access line (the last start).",
    );
    for (name, v) in verdicts {
        if let Some(r) = v.requests.as_ref().map(|r| &r.time_per_request) {
            if r.bound != Bound::Unknown {
                for (part, value) in r.parts() {
                    time.add_opt([("target", name), ("part", part)], value);
                }
            }
        }
        for (until, value) in [
            ("listening", v.startup.listening_seconds),
            ("first_request", v.startup.first_request_seconds),
        ] {
            startup.add_opt([("target", name), ("until", until)], value);
        }
    }
    fams.extend([time, startup]);
}
