//! The labelled trace corpus under `tests/data/traces` (`scripts/gen_traces.py`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use outrider::analysis::{trace, AnalysisConfig, Observation};
use outrider::config::{self, Overrides};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces")
}

/// `labels.json`: each trace's name and what it is labelled as.
pub fn labels() -> BTreeMap<String, serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(dir().join("labels.json")).unwrap()).unwrap()
}

/// The observations of `<name>.csv`.
pub fn load(name: &str) -> Vec<Observation> {
    let file = std::fs::File::open(dir().join(format!("{name}.csv"))).unwrap();
    trace::read(std::io::BufReader::new(file), None).unwrap()
}

/// The analysis settings a label asks for (the real recordings are minutes long),
/// read as the environment would give them.
pub fn settings(label: &serde_json::Value) -> AnalysisConfig {
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
