//! The money and scaling families: `outrider_cost_per_hour{target,resource,basis}`
//! (per replica, in `[cost] currency`), the efficiency, and the autoscaling and
//! scale-to-zero verdicts as state sets with the figures behind them.

use super::{Family, Num};
use crate::analysis::{autoscale, idle, Verdicts};

/// Appends the cost, autoscaling and scale-to-zero families.
pub(super) fn families<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)> + Clone,
    fams: &mut Vec<Family<'a>>,
) {
    let each = || verdicts.clone();
    let mut per_hour = Family::gauge(
        "outrider_cost_per_hour",
        "Price per hour of one replica's requests, mean usage and recommended requests, in the configured currency.",
    );
    for (name, v) in each() {
        let Some(c) = &v.cost else { continue };
        for (basis, f) in [
            ("request", &c.per_hour.request),
            ("usage", &c.per_hour.usage),
            ("recommended", &c.per_hour.recommended),
        ] {
            for (resource, x) in [("cpu", f.cpu), ("memory", f.memory)] {
                per_hour.add_opt(
                    [("target", name), ("resource", resource), ("basis", basis)],
                    x,
                );
            }
        }
    }
    fams.push(per_hour);
    // The money's unit: a label of its own family, as Prometheus' `*_info`
    // families carry what is not a measurement.
    let mut currency = Family::gauge(
        "outrider_cost_currency_info",
        "The currency the cost families are in ([cost] currency): 1 for that label.",
    );
    for (name, v) in each() {
        if let Some(c) = &v.cost {
            currency.add(
                [("target", name), ("currency", c.currency.as_str())],
                Num::U(1),
            );
        }
    }
    fams.push(currency);
    fams.push(
        Family::gauge(
            "outrider_cost_efficiency_ratio",
            "Usage cost / request cost over the sizing window (OpenCost's efficiency).",
        )
        .per_target(each(), |v| v.cost.as_ref().and_then(|c| c.efficiency)),
    );
    autoscaling(each(), fams);
    scale_to_zero(each(), fams);
}

fn autoscaling<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)> + Clone,
    fams: &mut Vec<Family<'a>>,
) {
    let mut state = Family::gauge(
        "outrider_autoscaling",
        "Whether a horizontal autoscaler would pay off: exactly one verdict is 1.",
    );
    for (name, v) in verdicts.clone() {
        for s in autoscale::Verdict::ALL {
            state.add(
                [("target", name), ("verdict", s.as_str())],
                Num::U((s == v.autoscaling.verdict) as u64),
            );
        }
    }
    fams.extend([
        state,
        Family::gauge(
            "outrider_autoscaling_savings_ratio",
            "1 - mean/max of the hourly p90 CPU: the share an ideal autoscaler saves.",
        )
        .per_target(verdicts.clone(), |v| v.autoscaling.savings_ratio),
        Family::gauge(
            "outrider_autoscaling_peak_to_trough_ratio",
            "The busiest hour's p90 CPU over the quietest's.",
        )
        .per_target(verdicts.clone(), |v| v.autoscaling.peak_to_trough),
        Family::gauge(
            "outrider_autoscaling_ready_in_seconds",
            "Seconds of data still needed before the autoscaling advice; absent once given.",
        )
        .per_target(verdicts, |v| v.autoscaling.ready_in_seconds),
    ]);
}

fn scale_to_zero<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)> + Clone,
    fams: &mut Vec<Family<'a>>,
) {
    let mut state = Family::gauge(
        "outrider_scale_to_zero",
        "Whether the target could scale to zero: exactly one verdict is 1.",
    );
    for (name, v) in verdicts.clone() {
        for s in idle::Verdict::ALL {
            state.add(
                [("target", name), ("verdict", s.as_str())],
                Num::U((s == v.scale_to_zero.verdict) as u64),
            );
        }
    }
    fams.extend([
        state,
        Family::gauge(
            "outrider_idle_ratio",
            "Share of the sizing window's minutes without requests (or, without access lines, under 1% of a core).",
        )
        .per_target(verdicts, |v| v.scale_to_zero.idle_share),
    ]);
}

/// Verdicts with every cost and scaling figure, for the golden scrape.
#[cfg(test)]
pub(super) fn rich_verdicts() -> Verdicts {
    use crate::analysis::cost::{Bases, Cost, Figures};
    let f = |cpu, mem| Figures::of(Some(cpu), Some(mem));
    Verdicts {
        cost: Some(Cost {
            replicas: 2,
            per_hour: Bases {
                request: f(0.0625, 0.00425),
                usage: f(0.015625, 0.0015),
                recommended: f(0.03125, 0.002),
            },
            efficiency: Some(0.25),
            ..Default::default()
        }),
        autoscaling: autoscale::Autoscaling {
            verdict: autoscale::Verdict::Worthwhile,
            savings_ratio: Some(0.375),
            peak_to_trough: Some(4.5),
            ..Default::default()
        },
        scale_to_zero: idle::ScaleToZero {
            idle_share: Some(0.125),
            ready_in_seconds: Some(3600.0),
            ..Default::default()
        },
        ..Default::default()
    }
}
