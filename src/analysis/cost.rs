//! What the allocation costs: the requests, the usage and the recommendation priced
//! per hour and per month (730 hours) at `[cost]`'s prices, the waste (requests −
//! recommendation, never negative per resource, and none for a resource judged
//! under-allocated) and the efficiency (usage cost /
//! request cost, OpenCost's definition). Pure arithmetic over figures the sizing
//! and the hourly usage already have; one replica's figures, with `replicas` saying
//! how many pods the workload runs.

use serde::{Serialize, Serializer};

use super::sizing::{Allocated, AllocationVerdict, SizingVerdict};

/// Hours in a month, as OpenCost and the cloud price lists count them.
pub const HOURS_PER_MONTH: f64 = 730.0;
const GIB: f64 = 1073741824.0;

/// A currency label for humans (`USD`, `EUR`, `€`): 1 to 8 bytes of UTF-8, no
/// spaces or control characters. Kept inline so [`CostConfig`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    bytes: [u8; 8],
    len: u8,
}

impl Currency {
    pub const USD: Currency = Currency {
        bytes: *b"USD\0\0\0\0\0",
        len: 3,
    };

    /// `None` for an empty label, one over 8 bytes, or one with spaces or controls.
    pub fn new(label: &str) -> Option<Currency> {
        let ok = !label.is_empty()
            && label.len() <= 8
            && !label.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| {
            let mut bytes = [0u8; 8];
            bytes[..label.len()].copy_from_slice(label.as_bytes());
            Currency {
                bytes,
                len: label.len() as u8,
            }
        })
    }

    pub fn as_str(&self) -> &str {
        // Built from a &str in `new`, cut at its own length: always UTF-8.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::USD
    }
}

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `[cost]`: prices per replica-hour and how many replicas a verdict stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostConfig {
    /// Price of one core for one hour.
    pub cpu_core_hour: f64,
    /// Price of one GiB of memory for one hour.
    pub memory_gib_hour: f64,
    pub currency: Currency,
    /// Pods of the workload; at least 1.
    pub replicas: u32,
}

impl Default for CostConfig {
    /// OpenCost's default prices (its `default.json`: 0.031611 per vCPU-hour,
    /// 0.004237 per GiB-hour), in USD, for one replica.
    fn default() -> Self {
        CostConfig {
            cpu_core_hour: 0.031611,
            memory_gib_hour: 0.004237,
            currency: Currency::USD,
            replicas: 1,
        }
    }
}

impl CostConfig {
    /// Cores and bytes → price per hour, per resource.
    pub fn per_hour(&self, cores: Option<f64>, bytes: Option<f64>) -> Figures {
        Figures::of(
            cores.map(|c| c * self.cpu_core_hour),
            bytes.map(|b| b / GIB * self.memory_gib_hour),
        )
    }
}

/// One price per resource and their sum (of those known).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    /// The sum of the known parts; `None` when neither is known.
    pub total: Option<f64>,
}

impl Figures {
    pub fn of(cpu: Option<f64>, memory: Option<f64>) -> Figures {
        let total = match (cpu, memory) {
            (None, None) => None,
            _ => Some(cpu.unwrap_or(0.0) + memory.unwrap_or(0.0)),
        };
        Figures { cpu, memory, total }
    }

    fn times(&self, k: f64) -> Figures {
        Figures::of(self.cpu.map(|x| x * k), self.memory.map(|x| x * k))
    }
}

/// The three bases priced: what is requested, what is used, what is recommended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Bases {
    pub request: Figures,
    pub usage: Figures,
    pub recommended: Figures,
}

/// The money verdict of one target, per replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    pub currency: Currency,
    /// Pods the workload runs (`[cost] replicas`): multiply to read it whole.
    pub replicas: u32,
    pub per_hour: Bases,
    /// `per_hour` × 730.
    pub per_month: Bases,
    /// Requests − recommendation per month, never negative per resource.
    pub waste_per_month: Figures,
    /// The resources behind the waste: cores and bytes requested above the
    /// recommendation (0 when at or under it).
    pub waste_cpu_cores: Option<f64>,
    pub waste_memory_bytes: Option<f64>,
    /// Usage cost / request cost over the resources both are known for.
    pub efficiency: Option<f64>,
}

/// What is used on average over the sizing window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanUsage {
    pub cpu_cores: Option<f64>,
    pub memory_bytes: Option<f64>,
}

/// The request a resource is billed at: its request, else its limit (Kubernetes
/// sets a missing request to the limit).
pub fn billed(alloc: &Allocated) -> (Option<f64>, Option<f64>) {
    (
        alloc.cpu_request.or(alloc.cpu_limit),
        alloc.memory_request.or(alloc.memory_limit),
    )
}

/// The cost figures; `None` when nothing is known to price.
pub fn cost(
    cfg: &CostConfig,
    alloc: &Allocated,
    sizing: &SizingVerdict,
    usage: MeanUsage,
) -> Option<Cost> {
    let (cpu_req, mem_req) = billed(alloc);
    let cpu_rec = sizing.cpu.recommended_request_cores;
    let mem_rec = sizing.memory.recommended_request_bytes;
    let per_hour = Bases {
        request: cfg.per_hour(cpu_req, mem_req),
        usage: cfg.per_hour(usage.cpu_cores, usage.memory_bytes),
        recommended: cfg.per_hour(cpu_rec, mem_rec),
    };
    if per_hour.request.total.is_none() && per_hour.usage.total.is_none() {
        return None;
    }
    // Waste is what the sizing verdict calls over-allocation: a resource judged
    // sized right (its request within the margin the verdict allows) or
    // under-allocated (throttled, starved, near its limit, OOM-killed) wastes
    // nothing, whatever its recommendation says, so the cost line never says
    // "over-allocated" beside a "sized right"; one not judged yet (too little
    // data) claims no waste: its early recommendation can still turn into an
    // under-allocation.
    let above = |req: Option<f64>, rec: Option<f64>, state: AllocationVerdict| {
        let waste = (req? - rec?).max(0.0);
        match state {
            AllocationVerdict::Unknown => None,
            AllocationVerdict::Under | AllocationVerdict::Ok => Some(0.0),
            AllocationVerdict::Over => Some(waste),
        }
    };
    let waste_cpu_cores = above(cpu_req, cpu_rec, sizing.cpu.allocation.0);
    let waste_memory_bytes = above(mem_req, mem_rec, sizing.memory.allocation.0);
    let waste = cfg.per_hour(waste_cpu_cores, waste_memory_bytes);
    Some(Cost {
        currency: cfg.currency,
        replicas: cfg.replicas,
        per_hour,
        per_month: Bases {
            request: per_hour.request.times(HOURS_PER_MONTH),
            usage: per_hour.usage.times(HOURS_PER_MONTH),
            recommended: per_hour.recommended.times(HOURS_PER_MONTH),
        },
        waste_per_month: waste.times(HOURS_PER_MONTH),
        waste_cpu_cores,
        waste_memory_bytes,
        efficiency: efficiency(&per_hour.usage, &per_hour.request),
    })
}

/// Whether memory, not CPU, is what the app is sized by: the recommendation's
/// memory costs more than its CPU (the requests' when there is no recommendation).
pub fn memory_bound(c: &Cost) -> bool {
    let of = |f: &Figures| f.cpu.zip(f.memory).map(|(cpu, mem)| mem > cpu);
    of(&c.per_hour.recommended)
        .or(of(&c.per_hour.request))
        .unwrap_or(false)
}

/// Usage / request over the resources both are priced for.
fn efficiency(usage: &Figures, request: &Figures) -> Option<f64> {
    let pair = |u: Option<f64>, r: Option<f64>| u.zip(r).unwrap_or((0.0, 0.0));
    let (cu, cr) = pair(usage.cpu, request.cpu);
    let (mu, mr) = pair(usage.memory, request.memory);
    (cr + mr > 0.0).then(|| (cu + mu) / (cr + mr))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    /// A sizing judged over-allocated, with these recommendations.
    fn sized(cpu_rec: f64, mem_rec: f64) -> SizingVerdict {
        let mut v = SizingVerdict::default();
        v.cpu.recommended_request_cores = Some(cpu_rec);
        v.memory.recommended_request_bytes = Some(mem_rec);
        v.cpu.allocation.0 = AllocationVerdict::Over;
        v.memory.allocation.0 = AllocationVerdict::Over;
        v
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    /// The example: 2 cores and 1 GiB requested, 600m and 424 MiB
    /// recommended: 1.4 cores and 600 MiB above.
    /// CPU: 1.4 × 0.031611 × 730 = 32.306442; memory: 600/1024 × 0.004237 × 730
    /// = 1.812222...; waste 34.118664 a month.
    #[test]
    fn waste_is_requests_minus_recommendation_at_the_prices() {
        let cfg = CostConfig::default();
        let alloc = Allocated {
            cpu_request: Some(2.0),
            memory_request: Some(1024.0 * MIB),
            ..Default::default()
        };
        let usage = MeanUsage {
            cpu_cores: Some(0.5),
            memory_bytes: Some(256.0 * MIB),
        };
        let c = cost(&cfg, &alloc, &sized(0.6, 424.0 * MIB), usage).unwrap();
        assert!(close(c.waste_cpu_cores, 1.4));
        assert!(close(c.waste_memory_bytes, 600.0 * MIB));
        assert!(close(c.waste_per_month.cpu, 32.306442));
        assert!(close(
            c.waste_per_month.memory,
            600.0 / 1024.0 * 0.004237 * 730.0
        ));
        assert!((c.waste_per_month.total.unwrap() - 34.1187).abs() < 1e-3);
        // Request per month: 2 × 0.031611 × 730 = 46.15206; 1 GiB: 3.09301.
        assert!(close(c.per_month.request.cpu, 46.15206));
        assert!(close(c.per_month.request.memory, 3.09301));
        // The waste is the difference of the cost figures.
        let diff = c.per_month.request.total.unwrap() - c.per_month.recommended.total.unwrap();
        assert!((c.waste_per_month.total.unwrap() - diff).abs() < 1e-9);
        // Efficiency: (0.5 × 0.031611 + 0.25 × 0.004237) / (2 × 0.031611 + 0.004237)
        // = 0.01686475 / 0.067459 = 0.25000...
        assert!((c.efficiency.unwrap() - 0.016864750 / 0.067459).abs() < 1e-9);
        // Recommended: 0.6 core = 0.0189666 an hour, 424 MiB = 0.0017544: CPU-bound.
        assert!(!memory_bound(&c));
        // 50m and 2 GiB: 0.00158 against 0.008474 an hour: memory-bound.
        let c = cost(&cfg, &alloc, &sized(0.05, 2048.0 * MIB), usage).unwrap();
        assert!(memory_bound(&c));
    }

    /// Under-allocated memory wastes nothing: the waste is never negative.
    #[test]
    fn waste_is_never_negative_per_resource() {
        let alloc = Allocated {
            cpu_request: Some(1.0),
            memory_request: Some(128.0 * MIB),
            ..Default::default()
        };
        let c = cost(
            &CostConfig::default(),
            &alloc,
            &sized(0.5, 512.0 * MIB),
            MeanUsage::default(),
        )
        .unwrap();
        assert!(close(c.waste_memory_bytes, 0.0));
        // 0.5 core × 0.031611 × 730 = 11.538015.
        assert!(close(c.waste_per_month.total, 11.538015));
        // A CPU judged under-allocated (here: starved) wastes nothing either.
        let mut starved = sized(0.5, 512.0 * MIB);
        starved.cpu.allocation.0 = AllocationVerdict::Under;
        let c = cost(
            &CostConfig::default(),
            &alloc,
            &starved,
            MeanUsage::default(),
        )
        .unwrap();
        assert_eq!(c.waste_per_month.total, Some(0.0));
        // No usage known: no efficiency.
        assert_eq!(c.efficiency, None);
    }

    /// A resource judged sized right wastes nothing: the demo's memory read
    /// "sized right: peak 150 MiB against a 256 MiB request" beside "Cost:
    /// over-allocated: 84 MiB above …", the request's margin counted as waste.
    #[test]
    fn a_resource_sized_right_wastes_nothing() {
        let alloc = Allocated {
            cpu_request: Some(0.5),
            memory_request: Some(256.0 * MIB),
            ..Default::default()
        };
        let mut right = sized(0.06, 172.0 * MIB);
        right.memory.allocation.0 = AllocationVerdict::Ok;
        let c = cost(&CostConfig::default(), &alloc, &right, MeanUsage::default()).unwrap();
        assert!(close(c.waste_memory_bytes, 0.0));
        assert!(close(c.waste_cpu_cores, 0.44));
        // 0.44 × 0.031611 × 730 = 10.1534532: the CPU's waste alone.
        assert!(close(c.waste_per_month.total, 10.1534532));
    }

    /// Before the sizing has judged (the demo's first minute), the early
    /// recommendation claims no waste: the demo said "over-allocated: 440m" for a
    /// minute, then judged its CPU under-allocated. The requests are priced at once.
    #[test]
    fn no_waste_is_claimed_before_the_sizing_judges() {
        let alloc = Allocated {
            cpu_request: Some(0.5),
            memory_request: Some(256.0 * MIB),
            ..Default::default()
        };
        let mut early = sized(0.06, 74.0 * MIB);
        early.cpu.allocation.0 = AllocationVerdict::Unknown;
        early.memory.allocation.0 = AllocationVerdict::Unknown;
        let c = cost(&CostConfig::default(), &alloc, &early, MeanUsage::default()).unwrap();
        assert_eq!((c.waste_cpu_cores, c.waste_memory_bytes), (None, None));
        assert_eq!(c.waste_per_month.total, None);
        // 0.5 × 0.031611 × 730 + 0.25 × 0.004237 × 730 = 11.538015 + 0.77325.
        assert!(close(c.per_month.request.total, 12.3112675));
    }

    /// A limit without a request is billed as the request (Kubernetes' default);
    /// nothing known prices nothing.
    #[test]
    fn a_limit_stands_for_a_missing_request() {
        let alloc = Allocated {
            cpu_limit: Some(1.0),
            ..Default::default()
        };
        let c = cost(
            &CostConfig::default(),
            &alloc,
            &SizingVerdict::default(),
            MeanUsage::default(),
        )
        .unwrap();
        assert!(close(c.per_hour.request.cpu, 0.031611));
        assert_eq!(c.per_hour.request.memory, None);
        assert_eq!(c.waste_cpu_cores, None);
        let none = cost(
            &CostConfig::default(),
            &Allocated::default(),
            &SizingVerdict::default(),
            MeanUsage::default(),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn a_currency_is_a_short_label() {
        assert_eq!(Currency::new("EUR").unwrap().as_str(), "EUR");
        assert_eq!(Currency::new("€").unwrap().as_str(), "€");
        assert_eq!(Currency::new(""), None);
        assert_eq!(Currency::new("US Dollar"), None);
        assert_eq!(Currency::new("DOLLARS!!"), None);
        assert_eq!(
            serde_json::to_string(&Currency::default()).unwrap(),
            "\"USD\""
        );
    }
}
