//! A latency histogram: HdrHistogram with 3 significant digits over 1 ns to 1 hour.
//! Values above an hour saturate at an hour (and are still counted).

use std::borrow::Cow;

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

/// Calls kept as plain values before a histogram is allocated. A 3-digit HdrHistogram
/// needs 16 KiB even for one value; most per-process series hold a handful of calls.
const SMALL: usize = 64;

#[derive(Clone, Debug)]
enum Repr {
    /// Up to [`SMALL`] values, as recorded (already clamped).
    Small(Vec<u64>),
    /// The histogram.
    Full(Box<Histogram<u64>>),
}

/// A latency histogram in nanoseconds. It starts as a short list of values and becomes an
/// HdrHistogram at the 65th call; both answer every query the same way.
#[derive(Clone, Debug)]
pub struct LatencyHist {
    repr: Repr,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

fn empty_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, SIGFIG).expect("valid static bounds");
    h.auto(true);
    h
}

impl LatencyHist {
    /// An empty histogram (no allocation until the first call).
    pub fn new() -> Self {
        Self {
            repr: Repr::Small(Vec::new()),
        }
    }

    /// Records one call of `ns` nanoseconds (0 is kept as 0, above an hour as an hour).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let v = ns.min(MAX_TRACKED_NS);
        match &mut self.repr {
            Repr::Small(vals) if vals.len() < SMALL => vals.push(v),
            Repr::Small(_) => {
                let mut h = self.histogram().into_owned();
                // Recording cannot fail: auto-resize is on and the value is clamped.
                let _ = h.record(v);
                self.repr = Repr::Full(Box::new(h));
            }
            // Recording cannot fail: auto-resize is on and the value is clamped.
            Repr::Full(h) => drop(h.record(v)),
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHist) {
        match (&mut self.repr, &other.repr) {
            (Repr::Small(a), Repr::Small(b)) if a.len() + b.len() <= SMALL => {
                a.extend_from_slice(b)
            }
            (Repr::Full(a), Repr::Small(b)) => {
                for v in b {
                    let _ = a.record(*v);
                }
            }
            _ => {
                let mut h = self.histogram().into_owned();
                // Cannot fail: auto-resize is on.
                let _ = h.add(&*other.histogram());
                self.repr = Repr::Full(Box::new(h));
            }
        }
    }

    /// The values as an HdrHistogram (built on the fly while the list is short).
    pub fn histogram(&self) -> Cow<'_, Histogram<u64>> {
        match &self.repr {
            Repr::Full(h) => Cow::Borrowed(h),
            Repr::Small(vals) => {
                let mut h = empty_histogram();
                for v in vals {
                    let _ = h.record(*v);
                }
                Cow::Owned(h)
            }
        }
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        match &self.repr {
            Repr::Small(v) => v.len() as u64,
            Repr::Full(h) => h.len(),
        }
    }

    /// Smallest value (0 when empty), as its bucket's lowest equivalent.
    pub fn min(&self) -> u64 {
        let h = self.histogram();
        if h.is_empty() { 0 } else { h.min() }
    }

    /// Largest value, as the highest equivalent value of its bucket (0 when empty).
    pub fn max(&self) -> u64 {
        let h = self.histogram();
        if h.is_empty() { 0 } else { h.max() }
    }

    /// The value at percentile `p` (0..=100), 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        let h = self.histogram();
        if h.is_empty() {
            0
        } else {
            h.value_at_percentile(p)
        }
    }

    /// Mean of the recorded values (bucket midpoints).
    pub fn mean(&self) -> f64 {
        let h = self.histogram();
        if h.is_empty() { 0.0 } else { h.mean() }
    }

    /// HdrHistogram V2 compressed encoding, base64: the form every HdrHistogram port reads.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&*self.histogram(), &mut buf)
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
        Ok(Self {
            repr: Repr::Full(Box::new(h)),
        })
    }

    /// Bytes of heap this histogram holds (for memory accounting and tests).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.capacity() * 8,
            Repr::Full(h) => h.distinct_values() * 8 + std::mem::size_of::<Histogram<u64>>(),
        }
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
    fn small_and_full_answer_alike() {
        let mut small = LatencyHist::new();
        let mut big = LatencyHist::new();
        for i in 0..40u64 {
            small.record(1000 + i * 37);
        }
        for _ in 0..100 {
            big.record(5);
        }
        assert!(
            small.heap_bytes() < 1024,
            "a short list, not a 16 KiB histogram"
        );
        let full = LatencyHist::from_base64(&small.to_base64()).unwrap();
        for p in [0.0, 50.0, 90.0, 99.9, 100.0] {
            assert_eq!(small.percentile(p), full.percentile(p), "p{p}");
        }
        assert_eq!(
            (small.min(), small.max(), small.count()),
            (full.min(), full.max(), 40)
        );
        // Growing past the list and merging both ways keep every count.
        for i in 0..100u64 {
            small.record(2000 + i);
        }
        assert_eq!(small.count(), 140);
        let mut m = LatencyHist::new();
        m.record(1);
        m.merge(&big);
        m.merge(&small);
        assert_eq!(m.count(), 241);
        let mut s2 = LatencyHist::new();
        s2.record(7);
        big.merge(&s2);
        assert_eq!(big.count(), 101);
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
