//! What it costs and whether to scale (#14), as `outrider replay` judges generated
//! days with known answers (`python3 scripts/gen_traces.py cost`: one row a minute
//! for 24 h and 2 min, starting 22 min 17 s past an hour), with `--config` for the
//! prices.

mod util;

use std::process::Command;

use serde_json::Value;

/// `outrider [--config FILE] replay <trace>` → its JSON.
fn replay(trace: &std::path::Path, config: Option<&str>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(util::BIN);
    if let Some(toml) = config {
        let path = dir.path().join("outrider.toml");
        std::fs::write(&path, toml).unwrap();
        cmd.arg("--config").arg(path);
    }
    let out = cmd.arg("replay").arg(trace).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn trace(name: &str) -> std::path::PathBuf {
    util::traces::dir().join(format!("{name}.csv"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A day of CPU load as a sine between 0.1 and 0.9 cores. Analytically (the
/// script's `sine_savings()`): sampled once an hour, the mean is 0.5 and the peak
/// 0.9, so an ideal autoscaler saves 1 − 0.5/0.9 = 4/9 = 0.4444; with each hour's
/// p90 of its sixty one-minute means (what Outrider computes) the p90s sit nearer
/// each hour's top: 1 − mean/max = 0.4153. The trace must give 0.4153 ± 0.005.
#[test]
fn a_daily_sine_is_worth_autoscaling_with_the_analytic_savings() {
    let v = replay(&trace("cost-diurnal-sine"), None);
    let a = &v["autoscaling"];
    assert_eq!(a["verdict"], "worthwhile", "{a}");
    assert_eq!(a["hours"], 24, "{a}");
    let savings = num(&a["savings_ratio"]);
    assert!((savings - 0.4153).abs() < 0.005, "{savings}");
    assert!((savings - 4.0 / 9.0).abs() < 0.035, "{savings}");
    // The busiest hour's p90 near 0.9 and the quietest's near 0.1: a ratio above 1.5.
    assert!((num(&a["peak_hour_p90_cores"]) - 0.9).abs() < 0.01, "{a}");
    assert!(num(&a["peak_to_trough"]) > 6.0, "{a}");
    // At the 1-core request and 70%: ceil(0.11 / 0.7) = 1 to ceil(0.9 / 0.7) = 2.
    assert_eq!(a["hpa"]["min_replicas"], 1, "{a}");
    assert_eq!(a["hpa"]["max_replicas"], 2, "{a}");
    // In money: (peak − mean hourly p90) × 0.031611 × 730 at the default prices.
    let money =
        (num(&a["peak_hour_p90_cores"]) - num(&a["mean_hour_p90_cores"])) * 0.031611 * 730.0;
    assert!((num(&a["savings_per_month"]) - money).abs() < 1e-6, "{a}");
}

/// 0.5 cores with noise (σ 0.03): hourly p90s within a few percent of each other.
#[test]
fn a_flat_load_is_not_worth_autoscaling() {
    let v = replay(&trace("cost-flat-noise"), None);
    let a = &v["autoscaling"];
    assert_eq!(a["verdict"], "not_worthwhile", "{a}");
    assert_eq!(a["reason"], "steady", "{a}");
    assert!(num(&a["peak_to_trough"]) < 1.1, "{a}");
    assert!(num(&a["savings_ratio"]) < 0.05, "{a}");
    assert!(a["hpa"].is_null());
    assert_eq!(v["scale_to_zero"]["verdict"], "not_a_candidate");
}

/// Busy from 07:12 to 14:24 of the trace (432 of 1440 minutes, 30%), no requests
/// the rest of the day: idle 70% in two long stretches → a candidate, judged by
/// its access lines.
#[test]
fn an_app_idle_most_of_the_day_could_scale_to_zero() {
    let v = replay(&trace("cost-idle-70pct"), None);
    let z = &v["scale_to_zero"];
    assert_eq!(z["verdict"], "candidate", "{z}");
    assert_eq!(z["basis"], "requests", "{z}");
    assert!((num(&z["idle_share"]) - 0.7).abs() < 0.01, "{z}");
    assert!(num(&z["long_idle_share"]) >= 0.69, "{z}");
    // Longest first: from 14:24 to the end of the trace (34620 s: the window keeps
    // the last 1440 finished minutes), then the one before 07:12 (its first minute
    // has left the window).
    let longest = z["longest_idle"].as_array().unwrap();
    assert_eq!(longest.len(), 2, "{z}");
    assert_eq!(num(&longest[0]["start_offset_seconds"]), 51840.0, "{z}");
    assert_eq!(num(&longest[0]["seconds"]), 34620.0, "{z}");
    let before = num(&longest[1]["start_offset_seconds"]) + num(&longest[1]["seconds"]);
    assert_eq!(before, 25920.0, "{z}");
}

/// 0.2 cores and 200 MiB used of 2 cores and 1 GiB requested, at prices set in
/// `--config`: the waste per month is the difference of the request's and the
/// recommendation's cost figures, per resource, and equals the resources above
/// the recommendation priced by hand.
#[test]
fn over_allocation_wastes_the_difference_of_the_cost_figures() {
    let toml =
        "[cost]\ncpu_core_hour = 0.05\nmemory_gib_hour = 0.01\ncurrency = \"EUR\"\nreplicas = 3\n";
    let v = replay(&trace("cost-over-allocated"), Some(toml));
    let c = &v["cost"];
    assert_eq!(c["currency"], "EUR");
    assert_eq!(c["replicas"], 3);
    let m = &c["per_month"];
    // 2 cores × 0.05 × 730 = 73; 1 GiB × 0.01 × 730 = 7.3.
    assert!((num(&m["request"]["cpu"]) - 73.0).abs() < 1e-9, "{m}");
    assert!((num(&m["request"]["memory"]) - 7.3).abs() < 1e-9, "{m}");
    for r in ["cpu", "memory", "total"] {
        let diff = num(&m["request"][r]) - num(&m["recommended"][r]);
        assert!(diff > 0.0, "{r}: {m}");
        assert!(
            (num(&c["waste_per_month"][r]) - diff).abs() < 1e-9,
            "{r}: {c}"
        );
    }
    let rec_cores = num(&v["cpu"]["recommended_request_cores"]);
    let rec_bytes = num(&v["memory"]["recommended_request_bytes"]);
    let by_hand =
        (2.0 - rec_cores) * 0.05 * 730.0 + (1073741824.0 - rec_bytes) / 1073741824.0 * 0.01 * 730.0;
    assert!(
        (num(&c["waste_per_month"]["total"]) - by_hand).abs() < 1e-9,
        "{c}"
    );
    assert!((num(&c["waste_cpu_cores"]) - (2.0 - rec_cores)).abs() < 1e-9);
    // Usage ~0.2 cores, 200 MiB of 2 cores and 1 GiB: efficiency about 10%.
    let e = num(&c["efficiency"]);
    assert!((0.08..0.13).contains(&e), "{e}");
    assert_eq!(v["autoscaling"]["verdict"], "not_worthwhile");
}

/// Six hours of the sine: no verdict yet, and it says how long is left.
#[test]
fn before_half_a_day_the_advice_says_when_it_will_be_ready() {
    let text = std::fs::read_to_string(trace("cost-diurnal-sine")).unwrap();
    let six_hours: Vec<&str> = text.lines().take(1 + 6 * 60 + 1).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("six.csv");
    std::fs::write(&path, six_hours.join("\n") + "\n").unwrap();
    let v = replay(&path, None);
    for verdict in [&v["autoscaling"], &v["scale_to_zero"]] {
        assert_eq!(verdict["verdict"], "unknown", "{verdict}");
        assert!(
            (num(&verdict["ready_in_seconds"]) - 6.0 * 3600.0).abs() < 1.0,
            "{verdict}"
        );
    }
    // The money is there from the first minutes.
    assert!(v["cost"]["per_month"]["request"]["total"]
        .as_f64()
        .is_some());
}

/// The demo prices its allocation within its first seconds and says when the
/// autoscaling and scale-to-zero advice will come (12 h of data; its other windows
/// are short), in the banner, `/summary.txt` and `/api/v1/status`. Its app logs
/// access lines, so scale to zero is judged by requests from the first one (the
/// first minute used to say "no access lines").
#[test]
fn the_demo_prices_at_once_and_says_when_the_scaling_advice_comes() {
    let o = util::Outrider::start(&["demo", "--interval", "200ms"]);
    let status = o.wait_status("the demo's cost and its first request", |s| {
        let v = &s["snapshot"]["targets"][0]["verdicts"];
        v["cost"]["per_month"]["request"]["total"].is_f64()
            && v["scale_to_zero"]["basis"] == "requests"
    });
    let v = &status["snapshot"]["targets"][0]["verdicts"];
    // The demo's 500m and 256 MiB requests at the default prices: 0.5 × 0.031611 ×
    // 730 + 0.25 × 0.004237 × 730 = 11.538015 + 0.77325 = 12.311268 a month.
    let request = num(&v["cost"]["per_month"]["request"]["total"]);
    assert!((request - 12.311268).abs() < 1e-5, "{}", v["cost"]);
    // No waste is claimed before the sizing has judged (its first minute).
    if v["sizing"]["cpu"]["allocation"] == "unknown" {
        assert!(v["cost"]["waste_cpu_cores"].is_null(), "{}", v["cost"]);
    }
    for advice in [&v["autoscaling"], &v["scale_to_zero"]] {
        assert_eq!(advice["verdict"], "unknown", "{advice}");
        let left = num(&advice["ready_in_seconds"]) + num(&advice["data_seconds"]);
        assert!((left - 12.0 * 3600.0).abs() < 1e-6, "{advice}");
    }
    let (_, summary) = util::get(o.addr, "/summary.txt", None);
    for words in [
        "  Cost: ",
        "requests $12, usage $",
        "  Autoscaling: advice in 12 h, once it has 12 h of CPU usage (",
        "  Scale to zero: advice in 12 h, once it has 12 h of data",
    ] {
        assert!(summary.contains(words), "{words}: {summary}");
    }
    assert!(
        !summary.contains("no access lines to count requests"),
        "{summary}"
    );
    let banner = o.stderr.lock().unwrap().join("\n");
    assert!(
        banner.contains("the cost at once (short demo windows); autoscaling and scale-to-zero advice needs 12 hours of data"),
        "{banner}"
    );
}

/// The daily sine with 64 times the memory (about 12.5 GiB used of 32 GiB
/// requested): the recommendation's memory (about 0.063 an hour at the default
/// prices) costs more than its CPU (about 0.032), so the advice warns that an HPA on
/// CPU will not reduce the memory bill; at the trace's own memory it does not.
#[test]
fn a_memory_sized_app_is_warned_that_an_hpa_on_cpu_leaves_memory_cost() {
    let text = std::fs::read_to_string(trace("cost-diurnal-sine")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let memory = |c: &str| c == "rss_bytes" || c == "memory_request_bytes";
    let mut out = vec![header.to_string()];
    for line in lines {
        let row: Vec<String> = line
            .split(',')
            .zip(&columns)
            .map(|(x, c)| match memory(c) {
                true => (x.parse::<u64>().unwrap() * 64).to_string(),
                false => x.to_string(),
            })
            .collect();
        out.push(row.join(","));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    let v = replay(&path, None);
    let (a, rec) = (&v["autoscaling"], &v["cost"]["per_hour"]["recommended"]);
    assert_eq!(a["verdict"], "worthwhile", "{a}");
    assert!(num(&rec["memory"]) > num(&rec["cpu"]), "{rec}");
    assert_eq!(a["memory_bound"], true, "{a}");
    let small = replay(&trace("cost-diurnal-sine"), None);
    assert_eq!(small["autoscaling"]["memory_bound"], false);
}
