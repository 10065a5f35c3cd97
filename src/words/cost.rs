//! The money, autoscaling and scale-to-zero verdicts in words, one line each, for
//! the status page, `/summary.txt` and `outrider report` (through
//! [`super::verdicts`]): `Cost: over-allocated: 1.4 cores and 600 MiB above what it
//! uses, about $34 a month per replica`. Money always names its currency and its
//! period; cores and bytes their unit.

use super::{duration, Line};
use crate::analysis::autoscale::{self, Autoscaling, Reason as ScaleReason, Verdict as Scale};
use crate::analysis::cost::{Cost, Currency};
use crate::analysis::idle::{self, Basis, Reason as IdleReason, ScaleToZero, Verdict as Idle};
use crate::analysis::Verdicts;

const MIB: f64 = 1048576.0;

/// The three lines of a target's verdicts: cost (when anything is priced),
/// autoscaling and scale to zero.
pub fn lines(v: &Verdicts) -> Vec<Line> {
    let mut out = Vec::with_capacity(3);
    out.extend(v.cost.as_ref().map(cost));
    let currency = v.cost.as_ref().map_or(Currency::USD, |c| c.currency);
    let replicas = v.cost.as_ref().map_or(1, |c| c.replicas);
    out.push(autoscaling(&v.autoscaling, currency, replicas));
    let mut zero = scale_to_zero(&v.scale_to_zero);
    if v.scale_to_zero.verdict == Idle::Candidate {
        zero.push_str(&super::requests::cold_start(&v.startup));
    }
    out.push(zero);
    out.into_iter()
        .map(|text| Line {
            text,
            attention: false,
        })
        .collect()
}

/// `$34`, `$3.40`, `12 EUR`: whole units from 10 up, cents below.
pub fn money(amount: f64, currency: Currency) -> String {
    let n = if amount.abs() >= 10.0 {
        format!("{amount:.0}")
    } else {
        format!("{amount:.2}")
    };
    match currency.as_str() {
        "USD" => format!("${n}"),
        c => format!("{n} {c}"),
    }
}

/// How long to wait, rounded as a person would say it: [`crate::units::spoken`].
pub fn wait(seconds: f64) -> String {
    crate::units::spoken(seconds)
}

/// `1.4 cores`, `1 core`, `250m`.
pub fn cores(c: f64) -> String {
    if c >= 1.0 {
        let s = format!("{c:.1}");
        match s.as_str() {
            "1.0" => "1 core".into(),
            _ => format!("{} cores", s.trim_end_matches(".0")),
        }
    } else {
        format!("{:.0}m", c * 1000.0)
    }
}

/// `600 MiB`, `1.5 GiB`.
pub fn bytes(b: f64) -> String {
    if b >= 1024.0 * MIB {
        format!("{:.1} GiB", b / 1024.0 / MIB)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

/// The resources above the recommendation: `1.4 cores and 600 MiB`; `None` when
/// neither is above it (a few MiB or millicores do not count).
pub fn above(c: &Cost) -> Option<String> {
    let cpu = c.waste_cpu_cores.filter(|x| *x >= 0.0005).map(cores);
    let mem = c.waste_memory_bytes.filter(|x| *x >= MIB).map(bytes);
    match (cpu, mem) {
        (Some(a), Some(b)) => Some(format!("{a} and {b}")),
        (a, b) => a.or(b),
    }
}

/// `for 3 replicas, $102 a month` after a per-replica figure, when there are more.
fn workload(per_replica: f64, c: &Cost) -> String {
    match c.replicas {
        1 => String::new(),
        n => format!(
            " ({} a month for {n} replicas)",
            money(per_replica * n as f64, c.currency)
        ),
    }
}

/// `Cost: over-allocated: 1.4 cores and 600 MiB above what it needs, about $34 a
/// month per replica; requests $49, usage $12, recommended $15 a month (efficiency
/// 25%)`.
pub fn cost(c: &Cost) -> String {
    let m = |x: Option<f64>| x.map(|x| money(x, c.currency));
    let mut figures = Vec::new();
    for (what, x) in [
        ("requests", m(c.per_month.request.total)),
        ("usage", m(c.per_month.usage.total)),
        ("recommended", m(c.per_month.recommended.total)),
    ] {
        figures.extend(x.map(|x| format!("{what} {x}")));
    }
    let mut s = match (above(c), c.waste_per_month.total) {
        (Some(what), Some(waste)) => format!(
            "Cost: over-allocated: {what} above what it needs, about {} a month per replica{}; ",
            money(waste, c.currency),
            workload(waste, c)
        ),
        _ => "Cost: ".to_string(),
    };
    s.push_str(&figures.join(", "));
    s.push_str(" a month per replica");
    if let Some(e) = c.efficiency {
        s.push_str(&format!(
            " (efficiency {:.0}%: usage cost / request cost)",
            e * 100.0
        ));
    }
    s
}

/// The autoscaling verdict: when it will be ready, or why (not) and where to start.
/// `replicas`: the pods the money stands for (`[cost] replicas`).
pub fn autoscaling(a: &Autoscaling, currency: Currency, replicas: u32) -> String {
    let (Some(peak), Some(ratio), Some(savings)) =
        (a.peak_hour_p90_cores, a.peak_to_trough, a.savings_ratio)
    else {
        return match a.ready_in_seconds {
            Some(left) => format!(
                "Autoscaling: advice in {}, once it has {} of CPU usage ({} so far)",
                wait(left),
                wait(autoscale::MIN_DATA),
                wait(a.data_seconds)
            ),
            None => "Autoscaling: no CPU usage measured by the hour yet".into(),
        };
    };
    let mut s = match a.reason {
        ScaleReason::Steady => format!(
            "Autoscaling: not worthwhile — the busiest hour's p90 CPU ({}) is only {ratio:.1}× \
             the quietest (under {:.1}×): a fixed allocation wastes little",
            cores(peak),
            autoscale::MIN_PEAK_TO_TROUGH
        ),
        ScaleReason::SmallSavings => format!(
            "Autoscaling: not worthwhile — the busiest hour's p90 CPU ({}) is {ratio:.1}× the \
             quietest, but an ideal autoscaler would save only {:.0}% of a peak-sized \
             allocation (under {:.0}%)",
            cores(peak),
            savings * 100.0,
            autoscale::MIN_SAVINGS_RATIO * 100.0
        ),
        ScaleReason::LoadFollows | ScaleReason::NeedsMoreData => format!(
            "Autoscaling: worthwhile — the busiest hour's p90 CPU ({}) is {ratio:.1}× the \
             quietest; an ideal autoscaler would save {:.0}% of a peak-sized allocation{}",
            cores(peak),
            savings * 100.0,
            a.savings_per_month
                .map(|m| format!(
                    ", about {} a month{}",
                    money(m, currency),
                    for_all(replicas)
                ))
                .unwrap_or_default()
        ),
    };
    s.push_str(&hpa(a.hpa.as_ref()));
    if a.memory_bound && a.verdict == Scale::Worthwhile {
        s.push_str(". Memory costs more than CPU here: an HPA on CPU will not reduce memory cost");
    }
    s
}

/// Where to start, when worthwhile: the HPA sketch, or why one would have nothing
/// to scale (one replica carries the peak at the current request).
fn hpa(h: Option<&autoscale::Hpa>) -> String {
    match h {
        Some(h) if h.max_replicas > h.min_replicas => format!(
            ". Start from an HPA at {}% CPU, {} to {} replicas of {} requested each",
            h.target_cpu_utilization_percent,
            h.min_replicas,
            h.max_replicas,
            cores(h.cpu_request_cores)
        ),
        Some(h) => format!(
            ". But at {} requested per replica, {} at {}% CPU {} the busiest hour: an \
             HPA would have nothing to scale until each replica requests less",
            cores(h.cpu_request_cores),
            super::count(h.max_replicas.into(), "replica"),
            h.target_cpu_utilization_percent,
            if h.max_replicas == 1 {
                "carries"
            } else {
                "carry"
            }
        ),
        None => String::new(),
    }
}

/// ` for the 3 replicas` after a workload-wide figure; empty for one.
fn for_all(replicas: u32) -> String {
    match replicas {
        1 => String::new(),
        n => format!(" for the {n} replicas"),
    }
}

/// The scale-to-zero verdict: the share of time idle, the longest stretches.
pub fn scale_to_zero(z: &ScaleToZero) -> String {
    let by = match z.basis {
        Basis::Requests => "minutes without a request",
        Basis::Cpu => "minutes under 1% of a core: no access lines to count requests",
    };
    let share = |x: Option<f64>| format!("{:.0}%", x.unwrap_or(0.0) * 100.0);
    let long = duration(idle::LONG_STRETCH);
    let stretches = z
        .longest_idle
        .iter()
        .map(|s| duration(s.seconds))
        .collect::<Vec<_>>()
        .join(", ");
    match (z.verdict, z.reason) {
        (Idle::Unknown, _) => format!(
            "Scale to zero: advice in {}, once it has {} of data{}",
            wait(z.ready_in_seconds.unwrap_or(0.0)),
            wait(autoscale::MIN_DATA),
            z.idle_share
                .map(|x| format!("; idle {} of the time so far ({by})", share(Some(x))))
                .unwrap_or_default()
        ),
        (Idle::Candidate, _) => format!(
            "Scale to zero: candidate — idle {} of the time ({by}), {} in stretches of {long} \
             or more; longest {stretches}. Every first request after a stretch waits for a \
             cold start",
            share(z.idle_share),
            share(z.long_idle_share)
        ),
        (_, IdleReason::ShortStretches) => format!(
            "Scale to zero: not a candidate — idle {} of the time ({by}), but only {} in \
             stretches of {long} or more; longest {stretches}",
            share(z.idle_share),
            share(z.long_idle_share)
        ),
        _ => format!(
            "Scale to zero: not a candidate — idle only {} of the time ({by})",
            share(z.idle_share)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::cost::{Bases, Figures};

    fn usd(x: f64) -> String {
        money(x, Currency::USD)
    }

    #[test]
    fn money_and_quantities_carry_their_units() {
        assert_eq!(usd(34.1187), "$34");
        assert_eq!(usd(3.4), "$3.40");
        assert_eq!(money(12.0, Currency::new("EUR").unwrap()), "12 EUR");
        assert_eq!(cores(1.4), "1.4 cores");
        assert_eq!(cores(1.0), "1 core");
        assert_eq!(cores(2.0), "2 cores");
        assert_eq!(cores(0.25), "250m");
        assert_eq!(bytes(600.0 * MIB), "600 MiB");
        assert_eq!(bytes(1536.0 * MIB), "1.5 GiB");
    }

    /// The sentence, from the figures of `analysis::cost`'s test.
    #[test]
    fn an_over_allocation_is_worded_with_its_price() {
        let per_month = |cpu, mem| Figures::of(Some(cpu), Some(mem));
        let c = Cost {
            replicas: 3,
            per_month: Bases {
                request: per_month(46.15206, 3.09301),
                usage: per_month(11.538, 0.773),
                recommended: per_month(13.8456, 1.2808),
            },
            waste_per_month: per_month(32.306442, 1.812222),
            waste_cpu_cores: Some(1.4),
            waste_memory_bytes: Some(600.0 * MIB),
            efficiency: Some(0.25),
            ..Default::default()
        };
        assert_eq!(
            cost(&c),
            "Cost: over-allocated: 1.4 cores and 600 MiB above what it needs, about $34 a month \
             per replica ($102 a month for 3 replicas); requests $49, usage $12, recommended $15 \
             a month per replica (efficiency 25%: usage cost / request cost)"
        );
    }

    /// A scale-to-zero candidate's cold start carries the measured start-up.
    #[test]
    fn a_candidate_names_its_cold_start() {
        let mut v = Verdicts::default();
        v.scale_to_zero.verdict = Idle::Candidate;
        let zero = |v: &Verdicts| lines(v).last().unwrap().text.clone();
        assert!(zero(&v).ends_with("waits for a cold start"), "{}", zero(&v));
        v.startup.listening_seconds = Some(2.0);
        v.startup.first_request_seconds = Some(2.5);
        assert!(
            zero(&v).ends_with("waits for a cold start of 2.50 s (the measured start-up)"),
            "{}",
            zero(&v)
        );
    }

    #[test]
    fn autoscaling_says_when_it_will_be_ready() {
        let a = Autoscaling {
            data_seconds: 120.0,
            ready_in_seconds: Some(autoscale::MIN_DATA - 120.0),
            ..Default::default()
        };
        assert_eq!(
            autoscaling(&a, Currency::USD, 1),
            "Autoscaling: advice in 12 h, once it has 12 h of CPU usage (2 min so far)"
        );
        let z = ScaleToZero {
            data_seconds: 40.0,
            ready_in_seconds: Some(autoscale::MIN_DATA - 40.0),
            ..Default::default()
        };
        // No minute finished yet: no idle share to quote.
        assert_eq!(
            scale_to_zero(&z),
            "Scale to zero: advice in 12 h, once it has 12 h of data"
        );
        assert_eq!(wait(40.0), "40 s");
        assert_eq!(wait(2.4), "2.4 s");
        assert_eq!(wait(60.0), "1 min");
        assert_eq!(wait(90.0), "1.5 min");
        assert_eq!(wait(600.0), "10 min");
        assert_eq!(wait(11.5 * 3600.0), "11.5 h");
        assert_eq!(wait(3.0 * 86400.0), "3 days");
    }

    /// Idle often but briefly: the longest stretches show how brief.
    #[test]
    fn short_idle_stretches_are_quoted() {
        let stretch = |seconds| idle::Stretch {
            start_offset_seconds: 0.0,
            seconds,
        };
        let z = ScaleToZero {
            verdict: Idle::NotACandidate,
            reason: IdleReason::ShortStretches,
            basis: Basis::Requests,
            idle_share: Some(0.5),
            long_idle_share: Some(0.0),
            longest_idle: vec![stretch(600.0), stretch(600.0), stretch(540.0)],
            ..Default::default()
        };
        assert_eq!(
            scale_to_zero(&z),
            "Scale to zero: not a candidate — idle 50% of the time (minutes without a request), \
             but only 0% in stretches of 30 min or more; longest 10 min, 10 min, 9 min"
        );
    }

    fn worthwhile(min_replicas: u32, max_replicas: u32) -> Autoscaling {
        Autoscaling {
            verdict: Scale::Worthwhile,
            reason: ScaleReason::LoadFollows,
            peak_hour_p90_cores: Some(0.9),
            peak_to_trough: Some(8.1),
            savings_ratio: Some(0.415),
            savings_per_month: Some(40.92),
            hpa: Some(autoscale::Hpa {
                target_cpu_utilization_percent: 70,
                min_replicas,
                max_replicas,
                cpu_request_cores: 1.0,
            }),
            ..Default::default()
        }
    }

    /// The HPA sketch and its money (here for 3 replicas), and the memory warning.
    #[test]
    fn a_worthwhile_autoscaler_comes_with_its_hpa_and_its_money() {
        let mut a = worthwhile(1, 4);
        assert_eq!(
            autoscaling(&a, Currency::new("EUR").unwrap(), 3),
            "Autoscaling: worthwhile — the busiest hour's p90 CPU (900m) is 8.1× the quietest; \
             an ideal autoscaler would save 42% of a peak-sized allocation, about 41 EUR a \
             month for the 3 replicas. Start from an HPA at 70% CPU, 1 to 4 replicas of 1 core \
             requested each"
        );
        a.memory_bound = true;
        assert!(autoscaling(&a, Currency::USD, 1).ends_with(
            "1 core requested each. Memory costs more than CPU here: an HPA on CPU will not \
             reduce memory cost"
        ));
    }

    /// One replica covers the peak at the current request (the replay of the idle
    /// day: 300m at peak on a 500m request): no "1 to 1 replicas" sketch.
    #[test]
    fn an_hpa_with_nothing_to_scale_says_so() {
        let text = autoscaling(&worthwhile(1, 1), Currency::USD, 1);
        assert!(!text.contains("1 to 1"), "{text}");
        assert!(
            text.ends_with(
                ". But at 1 core requested per replica, 1 replica at 70% CPU carries the \
                 busiest hour: an HPA would have nothing to scale until each replica \
                 requests less"
            ),
            "{text}"
        );
    }
}
