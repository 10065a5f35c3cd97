//! `[resources]`: the app's requests and limits as the user states them, and where
//! the downward API files are.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sample::allocation::ResourceSpec;
use crate::units::{parse_bytes, parse_cpu, Scalar};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawResources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downward_api_dir: Option<String>,
    pub downward_api_cpu_divisor: Scalar,
}

impl Default for RawResources {
    fn default() -> Self {
        RawResources {
            cpu_request: None,
            cpu_limit: None,
            memory_request: None,
            memory_limit: None,
            downward_api_dir: None,
            downward_api_cpu_divisor: Scalar::Str("1m".into()),
        }
    }
}

/// Checks `[resources]`: CPU and memory quantities, and a divisor above zero.
pub(super) fn validate_resources(r: &RawResources, errors: &mut Vec<String>) -> ResourceSpec {
    let cpu = |key: &str, v: &Option<Scalar>, errs: &mut Vec<String>| -> Option<f64> {
        v.as_ref().and_then(|s| match parse_cpu(&s.to_string()) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(format!("resources.{key}: {e}"));
                None
            }
        })
    };
    let mem = |key: &str, v: &Option<Scalar>, errs: &mut Vec<String>| -> Option<u64> {
        v.as_ref().and_then(|s| match parse_bytes(&s.to_string()) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(format!("resources.{key}: {e}"));
                None
            }
        })
    };
    ResourceSpec {
        cpu_request_cores: cpu("cpu_request", &r.cpu_request, errors),
        cpu_limit_cores: cpu("cpu_limit", &r.cpu_limit, errors),
        memory_request_bytes: mem("memory_request", &r.memory_request, errors),
        memory_limit_bytes: mem("memory_limit", &r.memory_limit, errors),
        downward_api_dir: r.downward_api_dir.as_ref().map(PathBuf::from),
        downward_api_cpu_divisor: match parse_cpu(&r.downward_api_cpu_divisor.to_string()) {
            Ok(d) if d > 0.0 => d,
            Ok(_) => {
                errors.push("resources.downward_api_cpu_divisor: must be above zero".into());
                0.001
            }
            Err(e) => {
                errors.push(format!("resources.downward_api_cpu_divisor: {e}"));
                0.001
            }
        },
    }
}
