//! Leak verdicts against what real runtimes do (issue 17), on the labelled corpus
//! of `scripts/gen_traces.py` (`syn-*`: generated shapes; `rt-*`: runtime-shaped
//! traces labelled by construction; `real-*`: recordings): the verdict does not
//! depend on the trace's phase against the clock.

use std::collections::BTreeMap;
use std::path::PathBuf;

use outrider::analysis::{trace, AnalysisConfig, LeakTrackers, Observation};
use outrider::config::{self, Overrides};

fn traces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces")
}

fn labels() -> BTreeMap<String, serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(traces().join("labels.json")).unwrap()).unwrap()
}

fn load(name: &str) -> Vec<Observation> {
    let file = std::fs::File::open(traces().join(format!("{name}.csv"))).unwrap();
    trace::read(std::io::BufReader::new(file), None).unwrap()
}

/// The analysis settings a label asks for (the real recordings are minutes long).
fn settings(label: &serde_json::Value) -> AnalysisConfig {
    let mut env = Vec::new();
    if let Some(a) = label["analysis"].as_object() {
        for (k, v) in a {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            env.push((format!("OUTRIDER_ANALYSIS__{}", k.to_uppercase()), v));
        }
    }
    config::load(None, env, &Overrides::default())
        .unwrap()
        .1
        .analysis
}

/// Every leak verdict (memory, fds, threads, connections) after every observation,
/// with the seconds since the trace's first sample. The leak trackers are what the
/// analyzer runs (`replay` runs sizing as well, which tells nothing about leaks).
fn leak_verdicts(obs: &[Observation], cfg: &AnalysisConfig) -> Vec<(f64, [bool; 4])> {
    let mut leaks = LeakTrackers::new(cfg);
    obs.iter()
        .map(|o| (o.t - obs[0].t, leaks.observe(o).map(|l| l.suspected)))
        .collect()
}

fn shifted(obs: &[Observation], by: f64) -> Vec<Observation> {
    obs.iter()
        .map(|o| Observation {
            t: o.t + by,
            ..o.clone()
        })
        .collect()
}

/// Issue 17: with buckets aligned to the clock, the Node sawtooth got a verdict at
/// four of eight shifts. Every trace of the corpus, shifted by 15 s steps across two
/// minutes, must get the same verdicts at the same times after its start.
#[test]
fn same_samples_shifted_in_time_get_the_same_verdicts() {
    let labels = labels();
    assert!(labels.contains_key("rt-node-bounded-sawtooth"));
    let mut failures = Vec::new();
    for (name, label) in &labels {
        let cfg = settings(label);
        let obs = load(name);
        let unshifted = leak_verdicts(&obs, &cfg);
        for by in (1..8).map(|k| k as f64 * 15.0) {
            let got = leak_verdicts(&shifted(&obs, by), &cfg);
            if let Some((a, b)) = unshifted.iter().zip(&got).find(|(a, b)| a != b) {
                failures.push(format!("{name} shifted {by} s: {a:?} became {b:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
