//! A latency histogram: HdrHistogram with 3 significant digits over 1 ns to 1 hour.
//! Values above an hour saturate at an hour (and are still counted).

use base64::{Engine, engine::general_purpose::STANDARD};
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer, V2DeflateSerializer},
};

/// The largest latency kept exactly (one hour, in ns); larger values are clamped to it.
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 3;

/// Why a serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistError {
    /// Not base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not an HdrHistogram V2 encoding.
    #[error("histogram is not a valid HdrHistogram encoding: {0}")]
    Decode(String),
}

/// A latency histogram in nanoseconds.
#[derive(Clone, Debug)]
pub struct LatencyHist {
    h: Histogram<u64>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHist {
    /// An empty histogram. It starts small and grows with the largest value recorded.
    pub fn new() -> Self {
        let mut h = Histogram::new_with_bounds(1, 2, SIGFIG).expect("valid static bounds");
        h.auto(true);
        Self { h }
    }

    /// Records one call of `ns` nanoseconds (0 is kept as 0, above an hour as an hour).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        // Recording cannot fail: auto-resize is on and the value is clamped.
        let _ = self.h.record(ns.min(MAX_TRACKED_NS));
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHist) {
        // Cannot fail: auto-resize is on.
        let _ = self.h.add(&other.h);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Smallest value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.h.is_empty() { 0 } else { self.h.min() }
    }

    /// Largest value, as the highest equivalent value of its bucket (0 when empty).
    pub fn max(&self) -> u64 {
        if self.h.is_empty() { 0 } else { self.h.max() }
    }

    /// The value at percentile `p` (0..=100), 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.value_at_percentile(p)
        }
    }

    /// Mean of the recorded values (bucket midpoints).
    pub fn mean(&self) -> f64 {
        if self.h.is_empty() {
            0.0
        } else {
            self.h.mean()
        }
    }

    /// The underlying HdrHistogram, for exporters.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.h
    }

    /// HdrHistogram V2 compressed encoding, base64: the form every HdrHistogram port reads.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.h, &mut buf)
            .expect("serializing to memory cannot fail");
        STANDARD.encode(buf)
    }

    /// Reads [`Self::to_base64`] output (compressed or not).
    pub fn from_base64(s: &str) -> Result<Self, HistError> {
        let bytes = STANDARD.decode(s.trim())?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistError::Decode(format!("{e:?}")))?;
        h.auto(true);
        Ok(Self { h })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_queries() {
        let mut h = LatencyHist::new();
        assert_eq!(
            (h.count(), h.min(), h.max(), h.percentile(50.0)),
            (0, 0, 0, 0)
        );
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.percentile(50.0) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.001, "{p50}");
        let p99 = h.percentile(99.0) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.001, "{p99}");
    }

    #[test]
    fn clamps_huge_values() {
        let mut h = LatencyHist::new();
        h.record(u64::MAX);
        assert_eq!(h.count(), 1);
        let max = h.max() as f64;
        assert!((max - MAX_TRACKED_NS as f64).abs() / (MAX_TRACKED_NS as f64) < 0.001);
    }

    #[test]
    fn merge_adds_counts() {
        let (mut a, mut b) = (LatencyHist::new(), LatencyHist::new());
        a.record(10);
        b.record(1_000_000);
        b.record(20);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.min(), 10);
    }

    #[test]
    fn base64_round_trip() {
        let mut h = LatencyHist::new();
        for v in [5u64, 50, 5_000, 5_000_000, 10_000_000_000] {
            h.record(v);
        }
        let back = LatencyHist::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back.count(), 5);
        assert_eq!(back.percentile(50.0), h.percentile(50.0));
        assert_eq!(back.max(), h.max());
        assert!(LatencyHist::from_base64("not base64!").is_err());
        assert!(LatencyHist::from_base64("aGVsbG8=").is_err());
    }
}
