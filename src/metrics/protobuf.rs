//! The Prometheus protobuf exposition (`io.prometheus.client.MetricFamily`,
//! length-delimited), served to a scraper that asks for it: the only format that
//! carries native histograms. prometheus-client's `prometheus_protobuf` encoder writes
//! it from the same collector as the text formats (which leave the native part out);
//! this file holds the content type and turns a class's [`NativeBuckets`] into the
//! spans and deltas of client_model's `Histogram`.

use prometheus_client::encoding::{NativeHistogram, NativeHistogramBuckets};
use prometheus_client::registry::Registry;

use crate::logs::latency::{NativeBuckets, NATIVE_SCHEMA, NATIVE_ZERO_THRESHOLD};

/// What a scraper's Accept names and what the response says it is.
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Every family, each a length-delimited `MetricFamily`.
pub(super) fn encode(registry: &Registry) -> Result<Vec<u8>, String> {
    prometheus_client::encoding::prometheus_protobuf::encode_to_vec(registry)
        .map_err(|e| e.to_string())
}

/// Spans and deltas of the positive buckets, as client_model wants them: a span
/// per run of buckets, where a run bridges up to two empty buckets (cheaper than a
/// new span, as client_golang does); each delta is a count minus the previous one
/// encoded.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Sparse {
    pub spans: Vec<(i32, u32)>,
    pub deltas: Vec<i64>,
}

impl Sparse {
    pub fn of(b: &NativeBuckets) -> Sparse {
        let mut s = Sparse::default();
        let (mut previous, mut next_index) = (0i64, 0i32);
        for (k, &n) in b.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let index = b.first + k as i32;
            let gap = index - next_index;
            match s.spans.last_mut() {
                None => s.spans.push((index, 1)),
                Some(last) if gap <= 2 => {
                    for _ in 0..gap {
                        s.deltas.push(-previous);
                        previous = 0;
                    }
                    last.1 += gap as u32 + 1;
                }
                Some(_) => s.spans.push((gap, 1)),
            }
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            s.deltas.push(n - previous);
            previous = n;
            next_index = index + 1;
        }
        s
    }

    /// The native half of a histogram, borrowing the spans and deltas.
    pub fn native<'a>(&'a self, b: &NativeBuckets) -> NativeHistogram<'a> {
        NativeHistogram {
            schema: NATIVE_SCHEMA,
            zero_threshold: NATIVE_ZERO_THRESHOLD,
            zero_count: b.zero,
            negative: NativeHistogramBuckets {
                spans: &[],
                deltas: &[],
            },
            positive: NativeHistogramBuckets {
                spans: &self.spans,
                deltas: &self.deltas,
            },
            created: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(values: &[f64]) -> NativeBuckets {
        let mut b = NativeBuckets::default();
        for v in values {
            b.observe(*v);
        }
        b
    }

    #[test]
    fn spans_bridge_two_empty_buckets_and_no_more() {
        // Bucket -24 holds two (0.125 s = 2^-3 is its upper bound); 0.15 s and
        // 0.17 s fall in -21 and -20 (log2 × 8 = -21.9, -20.4): the two empty
        // buckets between are bridged; 1 s is bucket 0, 19 empty buckets on: a new
        // span. 0 s goes to the zero bucket.
        let b = buckets(&[0.125, 0.125, 0.15, 0.17, 1.0, 0.0]);
        let s = Sparse::of(&b);
        assert_eq!(b.zero, 1);
        assert_eq!(s.spans, vec![(-24, 5), (19, 1)]);
        assert_eq!(s.deltas, vec![2, -2, 0, 1, 0, 0]);
    }

    #[test]
    fn an_empty_class_has_no_spans() {
        assert_eq!(Sparse::of(&NativeBuckets::default()), Sparse::default());
    }
}
