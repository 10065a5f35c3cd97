//! `[cost]`: the prices the money verdicts use ([`crate::analysis::cost`]), the
//! currency label and the replicas a verdict stands for, validated with their key
//! paths like every other section.

use serde::{Deserialize, Serialize};

use crate::analysis::cost::{CostConfig, Currency};
use crate::units::Scalar;

/// `[cost]` as written. Defaults: OpenCost's default prices, in USD.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawCost {
    /// Price of one core (vCPU) for one hour.
    pub cpu_core_hour: Scalar,
    /// Price of one GiB of memory for one hour.
    pub memory_gib_hour: Scalar,
    /// A label for humans: `USD`, `EUR`, `€`.
    pub currency: String,
    /// Pods of the workload this verdict stands for.
    pub replicas: Scalar,
}

impl Default for RawCost {
    fn default() -> Self {
        let d = CostConfig::default();
        RawCost {
            cpu_core_hour: Scalar::Float(d.cpu_core_hour),
            memory_gib_hour: Scalar::Float(d.memory_gib_hour),
            currency: d.currency.as_str().into(),
            replicas: Scalar::Int(d.replicas.into()),
        }
    }
}

/// Checks `[cost]`; a wrong value is reported and its default stands in.
pub fn validate_cost(c: &RawCost, errors: &mut Vec<String>) -> CostConfig {
    let d = CostConfig::default();
    let mut price = |key: &str, v: &Scalar, default: f64| match v.to_string().trim().parse::<f64>()
    {
        Ok(x) if x.is_finite() && x >= 0.0 => x,
        Ok(_) => {
            errors.push(format!("cost.{key}: must be a price of 0 or more"));
            default
        }
        Err(_) => {
            errors.push(format!("cost.{key}: {:?} is not a number", v.to_string()));
            default
        }
    };
    let cpu_core_hour = price("cpu_core_hour", &c.cpu_core_hour, d.cpu_core_hour);
    let memory_gib_hour = price("memory_gib_hour", &c.memory_gib_hour, d.memory_gib_hour);
    let currency = Currency::new(c.currency.trim()).unwrap_or_else(|| {
        errors.push(format!(
            "cost.currency: {:?} is not a label of 1 to 8 characters without spaces",
            c.currency
        ));
        d.currency
    });
    let replicas = match c.replicas.to_string().trim().parse::<u32>() {
        Ok(n) if n >= 1 => n,
        _ => {
            errors.push(format!(
                "cost.replicas: {:?} is not a whole number of 1 or more",
                c.replicas.to_string()
            ));
            d.replicas
        }
    };
    CostConfig {
        cpu_core_hour,
        memory_gib_hour,
        currency,
        replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_opencosts_prices_in_usd() {
        let mut errors = Vec::new();
        let c = validate_cost(&RawCost::default(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c, CostConfig::default());
        assert_eq!(c.cpu_core_hour, 0.031611);
        assert_eq!(c.memory_gib_hour, 0.004237);
        assert_eq!(c.currency.as_str(), "USD");
        assert_eq!(c.replicas, 1);
    }

    #[test]
    fn bad_values_are_all_reported_with_their_keys() {
        let mut errors = Vec::new();
        let raw = RawCost {
            cpu_core_hour: Scalar::Float(-1.0),
            memory_gib_hour: Scalar::Str("cheap".into()),
            currency: "US dollars".into(),
            replicas: Scalar::Int(0),
        };
        let c = validate_cost(&raw, &mut errors);
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("cost.cpu_core_hour: must be a price"));
        assert!(errors[1].starts_with("cost.memory_gib_hour: \"cheap\" is not a number"));
        assert!(errors[2].starts_with("cost.currency:"));
        assert!(errors[3].starts_with("cost.replicas:"));
        assert_eq!(c, CostConfig::default());
        let ok = RawCost {
            cpu_core_hour: Scalar::Str("0.04".into()),
            memory_gib_hour: Scalar::Int(0),
            currency: "EUR".into(),
            replicas: Scalar::Int(3),
        };
        let c = validate_cost(&ok, &mut errors);
        assert_eq!(errors.len(), 4);
        assert_eq!((c.cpu_core_hour, c.replicas), (0.04, 3));
        assert_eq!(c.currency.as_str(), "EUR");
    }
}
