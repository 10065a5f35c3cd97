//! `[log_options]`: how every stream's lines are read, and how access lines give
//! request durations.

use super::*;

/// `[log_options]`: how every stream's lines are read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawLogOptions {
    /// Longer lines are cut here and counted as oversized.
    pub max_line_bytes: Scalar,
    /// Checked first, in order: a regex and what a match means.
    pub rules: Vec<RawLogRule>,
    /// A directory (an emptyDir) for log offsets, so a restart resumes exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// A regex with a named capture `duration_s`, `duration_ms` or `duration_us`
    /// (and optionally `status`) for access lines the built-in readers miss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_regex: Option<String>,
    /// The app's gunicorn `access_log_format`, so its durations are read exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gunicorn_access_log_format: Option<String>,
    /// Upper bounds (seconds) of `outrider_http_request_duration_seconds`.
    pub duration_buckets: RawBuckets,
}

/// Histogram bounds as a TOML list, or a comma-separated string (from the
/// environment).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum RawBuckets {
    List(Vec<Scalar>),
    Csv(String),
}

impl Default for RawBuckets {
    fn default() -> Self {
        RawBuckets::List(
            crate::analysis::latency::Buckets::default()
                .0
                .into_iter()
                .map(Scalar::Float)
                .collect(),
        )
    }
}

impl RawBuckets {
    fn parse(&self) -> Result<Vec<f64>, String> {
        let parse = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number"))
        };
        match self {
            RawBuckets::List(v) => v.iter().map(|x| parse(&x.to_string())).collect(),
            RawBuckets::Csv(s) => s.split(',').map(parse).collect(),
        }
    }
}

impl Default for RawLogOptions {
    fn default() -> Self {
        RawLogOptions {
            max_line_bytes: Scalar::Str("64Ki".into()),
            rules: Vec::new(),
            state_dir: None,
            duration_regex: None,
            gunicorn_access_log_format: None,
            duration_buckets: RawBuckets::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawLogRule {
    pub pattern: String,
    /// error | warning | info | debug | unknown | ignore
    pub action: String,
}

/// Checks `[log_options]` and builds the classifier.
pub(super) fn validate_log_options(o: &RawLogOptions, errors: &mut Vec<String>) -> LogSettings {
    let max_line_bytes = match parse_bytes(&o.max_line_bytes.to_string()) {
        Ok(b) if b >= 256 => b as usize,
        Ok(_) => {
            errors.push("log_options.max_line_bytes: must be at least 256".into());
            DEFAULT_MAX_LINE_BYTES
        }
        Err(e) => {
            errors.push(format!("log_options.max_line_bytes: {e}"));
            DEFAULT_MAX_LINE_BYTES
        }
    };
    let mut rules = Vec::new();
    for (i, r) in o.rules.iter().enumerate() {
        let key = format!("log_options.rules[{i}]");
        let mut ok = true;
        if let Err(e) = Regex::new(&r.pattern) {
            errors.push(format!(
                "{key}.pattern: bad regex: {}",
                first_line(&e.to_string())
            ));
            ok = false;
        }
        match r.action.parse::<RuleAction>() {
            Ok(action) if ok => rules.push(Rule {
                pattern: r.pattern.clone(),
                action,
            }),
            Ok(_) => {}
            Err(e) => errors.push(format!("{key}.action: {e}")),
        }
    }
    let classifier = Classifier::new(&rules).unwrap_or_else(|e| {
        errors.push(format!("log_options.rules: {}", first_line(&e.to_string())));
        Classifier::default()
    });
    let classifier = classifier.with_access(validate_access(o, errors));
    LogSettings {
        classifier,
        max_line_bytes,
    }
}

/// Checks the request-duration keys of `[log_options]`.
pub(super) fn validate_access(o: &RawLogOptions, errors: &mut Vec<String>) -> AccessParser {
    let buckets = match o.duration_buckets.parse().and_then(Buckets::new) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!("log_options.duration_buckets: {e}"));
            Buckets::default()
        }
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let regex = nonempty(&o.duration_regex);
    let gunicorn = nonempty(&o.gunicorn_access_log_format);
    AccessParser::new(regex.as_deref(), gunicorn.as_deref(), buckets.clone()).unwrap_or_else(
        |errs| {
            for (key, e) in errs {
                errors.push(format!("log_options.{key}: {e}"));
            }
            AccessParser::default()
        },
    )
}
