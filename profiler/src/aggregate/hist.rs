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

/// The V2 encoding's cookies (HdrHistogram's `V2_COOKIE` and `V2_COMPRESSED_COOKIE`:
/// the base value with the word size, 0x10, or'ed in).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// Bytes of a V2 header before the payload.
const V2_HEADER: usize = 40;
/// The largest `highest_trackable_value` accepted: a histogram resized to hold an hour may
/// round its bound up, never past twice the value.
const MAX_HIGHEST: u64 = 2 * MAX_TRACKED_NS;

/// The most payload bytes a V2 encoding of a 3-digit histogram up to [`MAX_HIGHEST`] can
/// have: every count a 9-byte LEB128 varint.
fn max_payload() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        Histogram::<u64>::new_with_bounds(1, MAX_HIGHEST, SIGFIG)
            .map_or(0, |h| h.distinct_values() * 9)
    })
}

/// `bytes` as an uncompressed V2 encoding whose header is within bounds (inflated, with
/// the output bounded, when compressed).
fn checked_v2(bytes: &[u8]) -> Result<Cow<'_, [u8]>, &'static str> {
    use std::io::Read as _;
    let be32 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let be64 = |b: &[u8], at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let limit = V2_HEADER + max_payload();
    let v2: Cow<'_, [u8]> = match be32(bytes, 0).ok_or("too short")? {
        V2_COOKIE => Cow::Borrowed(bytes),
        V2_COMPRESSED_COOKIE => {
            let len = be32(bytes, 4).ok_or("too short")? as usize;
            let deflated = bytes
                .get(8..8 + len)
                .ok_or("compressed length past the end")?;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(deflated)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| "bad compressed data")?;
            if out.len() > limit {
                return Err("inflates past the largest histogram of 1 ns..1 h at 3 digits");
            }
            Cow::Owned(out)
        }
        _ => return Err("not an HdrHistogram V2 encoding"),
    };
    if be32(&v2, 0) != Some(V2_COOKIE) {
        return Err("not an HdrHistogram V2 encoding");
    }
    let payload = be32(&v2, 4).ok_or("too short")? as usize;
    let sigfig = be32(&v2, 12).ok_or("too short")?;
    let lowest = be64(&v2, 16).ok_or("too short")?;
    let highest = be64(&v2, 24).ok_or("too short")?;
    if payload > v2.len() - V2_HEADER.min(v2.len()) || payload > max_payload() {
        return Err("payload length past the data or the largest histogram");
    }
    if !(1..=u32::from(SIGFIG)).contains(&sigfig) || lowest == 0 || lowest > highest {
        return Err("bounds or precision out of range");
    }
    if highest > MAX_HIGHEST {
        return Err("highest trackable value above 2 hours");
    }
    Ok(v2)
}

/// Calls kept as plain values before a histogram is allocated. A 3-digit HdrHistogram
/// needs 16 KiB even for one value; most per-process series hold a handful of calls.
const SMALL: usize = 64;
/// Distinct buckets kept as a sorted list of (bucket, count) before a histogram is
/// allocated (2 KiB at most): a series of a few hundred calls, as short-lived processes
/// make, costs a few hundred bytes instead of 16 to 90 KiB.
const SPARSE_BUCKETS: usize = 128;
/// Calls after which a series becomes a histogram whatever its spread: a busy series pays
/// a histogram's constant-time record, not a search in the list, for nearly all its calls.
const SPARSE_CALLS: u64 = 4096;

/// Values below this are counted by value before they reach the HdrHistogram: at 3
/// significant digits each of them is a bucket of its own (the histogram is exact below
/// 2,048 ns), so a count by value is the histogram's count, kept for an increment instead
/// of a record (most calls of a busy series are that fast).
const DENSE: usize = 2048;

/// A histogram, with the counts of its fast values not yet added to it.
#[derive(Debug)]
struct Full {
    h: Histogram<u64>,
    /// Counts by value below [`DENSE`] (allocated at the first such value).
    dense: Option<Box<[u32; DENSE]>>,
    /// Values counted in `dense`.
    pending: u64,
}

impl Full {
    fn new(h: Histogram<u64>) -> Box<Self> {
        Box::new(Full {
            h,
            dense: None,
            pending: 0,
        })
    }

    #[inline]
    fn record(&mut self, v: u64) {
        self.record_all(std::iter::once(v));
    }

    /// Records every value of `values` (each clamped to [`MAX_TRACKED_NS`]), keeping the
    /// count of fast values in a register over the run.
    #[inline]
    fn record_all(&mut self, values: impl Iterator<Item = u64>) {
        let dense = self.dense.get_or_insert_with(|| Box::new([0; DENSE]));
        // Added to `pending` at the end, so it may wrap below zero meanwhile (a count
        // spilled to the histogram can be older than the run).
        let mut pending: u64 = 0;
        for ns in values {
            let v = ns.min(MAX_TRACKED_NS);
            if v < DENSE as u64 {
                let c = &mut dense[v as usize];
                *c += 1;
                pending = pending.wrapping_add(1);
                if *c == u32::MAX {
                    let n = std::mem::take(c);
                    pending = pending.wrapping_sub(u64::from(n));
                    // Cannot fail: auto-resize is on and the value is clamped.
                    let _ = self.h.record_n(v, u64::from(n));
                }
            } else {
                // Cannot fail: auto-resize is on and the value is clamped.
                let _ = self.h.record(v);
            }
        }
        self.pending = self.pending.wrapping_add(pending);
    }

    /// The histogram with every count.
    fn settled(&self) -> Cow<'_, Histogram<u64>> {
        match &self.dense {
            Some(dense) if self.pending > 0 => {
                let mut h = self.h.clone();
                for (v, &n) in dense.iter().enumerate() {
                    if n > 0 {
                        // Cannot fail: auto-resize is on.
                        let _ = h.record_n(v as u64, u64::from(n));
                    }
                }
                Cow::Owned(h)
            }
            _ => Cow::Borrowed(&self.h),
        }
    }
}

/// A copy holds every count in its histogram.
impl Clone for Full {
    fn clone(&self) -> Self {
        Full {
            h: self.settled().into_owned(),
            dense: None,
            pending: 0,
        }
    }
}

#[derive(Clone, Debug)]
enum Repr {
    /// Up to [`SMALL`] values, as recorded (already clamped).
    Small(Vec<u64>),
    /// Counts per bucket (each value as its bucket's lowest equivalent), sorted by bucket,
    /// with their total.
    Sparse(Vec<(u64, u64)>, u64),
    /// The histogram.
    Full(Box<Full>),
}

/// A latency histogram in nanoseconds. It starts as a short list of values, becomes a
/// sparse list of bucket counts past [`SMALL`] calls and an HdrHistogram past
/// [`SPARSE_BUCKETS`] buckets or [`SPARSE_CALLS`] calls; all answer every query the same
/// way.
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

/// The lowest value of `v`'s bucket in a 3-digit histogram (the buckets do not depend on
/// its range).
fn bucket_of(v: u64) -> u64 {
    static REF: std::sync::OnceLock<Histogram<u64>> = std::sync::OnceLock::new();
    REF.get_or_init(|| {
        Histogram::new_with_bounds(1, MAX_HIGHEST, SIGFIG).expect("valid static bounds")
    })
    .lowest_equivalent(v)
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
            Repr::Full(f) => f.record(v),
            _ => self.record_n(v, 1),
        }
    }

    /// Records every value of `values` (as [`LatencyHist::record`] on each). A busy
    /// histogram takes the run in a loop that keeps its count of fast values in a register
    /// and finds its counts by value once.
    #[inline]
    pub fn record_all(&mut self, values: impl Iterator<Item = u64>) {
        let Repr::Full(f) = &mut self.repr else {
            for v in values {
                self.record(v);
            }
            return;
        };
        f.record_all(values);
    }

    /// Records `n` calls of `ns` nanoseconds at once.
    pub fn record_n(&mut self, ns: u64, n: u64) {
        if n == 0 {
            return;
        }
        let v = ns.min(MAX_TRACKED_NS);
        match &mut self.repr {
            Repr::Small(vals) if vals.len() as u64 + n <= SMALL as u64 => {
                vals.extend(std::iter::repeat_n(v, n as usize));
            }
            Repr::Small(vals) => {
                let (mut counts, mut total) = (Vec::new(), 0);
                for x in std::mem::take(vals) {
                    add_sparse(&mut counts, &mut total, bucket_of(x), 1);
                }
                add_sparse(&mut counts, &mut total, bucket_of(v), n);
                self.repr = Repr::Sparse(counts, total);
                self.settle();
            }
            Repr::Sparse(counts, total) => {
                add_sparse(counts, total, bucket_of(v), n);
                self.settle();
            }
            // Cannot fail: auto-resize is on and the value is clamped.
            Repr::Full(f) => drop(f.h.record_n(v, n)),
        }
    }

    /// A sparse list past its bounds becomes a histogram.
    fn settle(&mut self) {
        if let Repr::Sparse(counts, total) = &self.repr
            && (counts.len() > SPARSE_BUCKETS || *total > SPARSE_CALLS)
        {
            let h = self.histogram().into_owned();
            self.repr = Repr::Full(Full::new(h));
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHist) {
        match &other.repr {
            Repr::Small(b) => {
                for v in b {
                    self.record(*v);
                }
            }
            Repr::Sparse(b, _) => {
                for &(v, n) in b {
                    self.record_n(v, n);
                }
            }
            Repr::Full(b) => {
                let theirs = b.settled();
                if let Repr::Full(f) = &mut self.repr {
                    // Cannot fail: auto-resize is on.
                    let _ = f.h.add(&*theirs);
                    return;
                }
                let mut h = self.histogram().into_owned();
                // Cannot fail: auto-resize is on.
                let _ = h.add(&*theirs);
                self.repr = Repr::Full(Full::new(h));
            }
        }
    }

    /// The values as an HdrHistogram (built on the fly while the list is short).
    pub fn histogram(&self) -> Cow<'_, Histogram<u64>> {
        match &self.repr {
            Repr::Full(f) => f.settled(),
            Repr::Small(vals) => {
                let mut h = empty_histogram();
                for v in vals {
                    let _ = h.record(*v);
                }
                Cow::Owned(h)
            }
            Repr::Sparse(counts, _) => {
                let mut h = empty_histogram();
                for &(v, n) in counts {
                    let _ = h.record_n(v, n);
                }
                Cow::Owned(h)
            }
        }
    }

    /// Whether fast values are still to be added to the histogram itself (a clone adds
    /// them; queries see them either way).
    pub fn unsettled(&self) -> bool {
        matches!(&self.repr, Repr::Full(f) if f.pending > 0)
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        match &self.repr {
            Repr::Small(v) => v.len() as u64,
            Repr::Sparse(_, total) => *total,
            Repr::Full(f) => f.h.len() + f.pending,
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

    /// Reads [`Self::to_base64`] output (compressed or not). The encoding's own lengths
    /// and bounds are checked first against what 1 ns..[`MAX_TRACKED_NS`] at 3 digits can
    /// need, and against the input's size, so a crafted value costs no more memory than
    /// an honest one (the decoder would otherwise allocate whatever the header claims).
    pub fn from_base64(s: &str) -> Result<Self, HistError> {
        let bytes = STANDARD.decode(s.trim())?;
        let v2 = checked_v2(&bytes).map_err(|e| HistError::Decode(e.into()))?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut v2.as_ref())
            .map_err(|e| HistError::Decode(format!("{e:?}")))?;
        h.auto(true);
        Ok(Self {
            repr: Repr::Full(Full::new(h)),
        })
    }

    /// Bytes of heap this histogram holds (for memory accounting and tests).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.capacity() * 8,
            Repr::Sparse(c, _) => c.capacity() * 16,
            Repr::Full(f) => {
                f.h.distinct_values() * 8
                    + std::mem::size_of::<Full>()
                    + f.dense.as_ref().map_or(0, |_| DENSE * 4)
            }
        }
    }
}

/// Adds `n` calls in `bucket` to the sorted `counts` and to `total`.
fn add_sparse(counts: &mut Vec<(u64, u64)>, total: &mut u64, bucket: u64, n: u64) {
    *total += n;
    match counts.binary_search_by_key(&bucket, |&(b, _)| b) {
        Ok(i) => counts[i].1 += n,
        Err(i) => counts.insert(i, (bucket, n)),
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

    /// `values` in an HdrHistogram, in one [`LatencyHist`], and split at `split` in two.
    fn recorded(
        values: &[u64],
        split: usize,
    ) -> (Histogram<u64>, LatencyHist, LatencyHist, LatencyHist) {
        let mut reference = empty_histogram();
        let (mut whole, mut a, mut b) =
            (LatencyHist::new(), LatencyHist::new(), LatencyHist::new());
        for (i, &v) in values.iter().enumerate() {
            let _ = reference.record(v);
            whole.record(v);
            if i < split { a.record(v) } else { b.record(v) }
        }
        (reference, whole, a, b)
    }

    proptest::proptest! {
        /// Through the list, the sparse counts and the histogram, every answer is that of
        /// an HdrHistogram of the same values, also after merges.
        #[test]
        fn every_form_answers_like_a_histogram(
            values in proptest::collection::vec(0u64..10_000_000_000, 0..6000),
            split in 0usize..6000,
        ) {
            let (reference, whole, mut a, b) = recorded(&values, split);
            a.merge(&b);
            for h in [&whole, &a] {
                proptest::prop_assert_eq!(h.count(), reference.len());
                proptest::prop_assert_eq!(&*h.histogram(), &reference);
                for p in [0.0, 50.0, 99.0, 100.0] {
                    proptest::prop_assert_eq!(h.percentile(p), if reference.is_empty() { 0 } else { reference.value_at_percentile(p) });
                }
            }
        }
    }

    #[test]
    fn a_few_hundred_calls_stay_small() {
        let mut h = LatencyHist::new();
        for i in 0..300u64 {
            h.record(1_000 + (i % 40) * 13);
        }
        assert!(matches!(h.repr, Repr::Sparse(..)));
        assert!(h.heap_bytes() <= 1024, "{} bytes", h.heap_bytes());
        for i in 0..SPARSE_CALLS {
            h.record(i);
        }
        assert!(
            matches!(h.repr, Repr::Full(_)),
            "a busy series is a histogram"
        );
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

    /// A V2 header with these fields and `payload` after it.
    fn v2(payload_len: u32, sigfig: u32, low: u64, high: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&V2_COOKIE.to_be_bytes());
        b.extend_from_slice(&payload_len.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&sigfig.to_be_bytes());
        b.extend_from_slice(&low.to_be_bytes());
        b.extend_from_slice(&high.to_be_bytes());
        b.extend_from_slice(&1.0f64.to_be_bytes());
        b.extend_from_slice(payload);
        b
    }

    fn compressed(inner: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(inner).unwrap();
        let deflated = z.finish().unwrap();
        let mut b = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        b.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
        b.extend_from_slice(&deflated);
        b
    }

    fn decode(bytes: &[u8]) -> Result<LatencyHist, HistError> {
        LatencyHist::from_base64(&STANDARD.encode(bytes))
    }

    #[test]
    fn crafted_encodings_are_rejected_before_allocating() {
        // A claimed payload of 2^31-1 bytes behind a 40-byte header (the decoder would
        // allocate it all).
        let e = decode(&v2(i32::MAX as u32, 3, 1, 3_600_000_000_000, &[])).unwrap_err();
        assert!(e.to_string().contains("payload length"), "{e}");
        // A zlib bomb: 300 MB of zeros behind a valid compressed cookie.
        let bomb = compressed(&v2(300 << 20, 3, 1, 1 << 40, &vec![0u8; 300 << 20]));
        assert!(bomb.len() < 1 << 20);
        let e = decode(&bomb).unwrap_err();
        assert!(e.to_string().contains("inflates past"), "{e}");
        // Bounds that would size a huge counts array.
        for (sigfig, high) in [(5, 1u64 << 40), (3, u64::MAX / 2), (0, 1 << 40)] {
            let e = decode(&v2(0, sigfig, 1, high, &[])).unwrap_err();
            assert!(
                e.to_string().contains("range") || e.to_string().contains("2 hours"),
                "{e}"
            );
        }
        // A compressed length past the end.
        let mut cut = compressed(&v2(0, 3, 1, 1 << 40, &[]));
        cut.truncate(cut.len() - 4);
        assert!(decode(&cut).is_err());
        // An honest histogram still reads back.
        let mut h = LatencyHist::new();
        for v in 1..=5000u64 {
            h.record(v * 997);
        }
        assert_eq!(
            LatencyHist::from_base64(&h.to_base64()).unwrap().count(),
            5000
        );
    }

    proptest::proptest! {
        /// Fast values (below 2,048 ns, counted by value in a busy histogram) and slow ones
        /// mixed: every answer, every merge (of busy into busy, busy into short, short into
        /// busy), every copy and every encoding is that of an HdrHistogram of the same
        /// values.
        #[test]
        fn fast_values_are_counted_like_any_other(
            values in proptest::collection::vec(
                proptest::prop_oneof![4 => 0u64..2048, 1 => 2048u64..100_000_000],
                4000..12000,
            ),
            split in 0usize..12000,
        ) {
            let (reference, whole, a, b) = recorded(&values, split);
            let (mut ab, mut ba) = (a.clone(), b.clone());
            ab.merge(&b);
            ba.merge(&a);
            let copy = whole.clone();
            proptest::prop_assert!(!copy.unsettled());
            let decoded = LatencyHist::from_base64(&whole.to_base64()).unwrap();
            for h in [&whole, &ab, &ba, &copy, &decoded] {
                proptest::prop_assert_eq!(h.count(), reference.len());
                proptest::prop_assert_eq!(&*h.histogram(), &reference);
                proptest::prop_assert_eq!((h.min(), h.max()), (reference.min(), reference.max()));
                for p in [0.0, 50.0, 99.0, 100.0] {
                    proptest::prop_assert_eq!(h.percentile(p), reference.value_at_percentile(p));
                }
            }
        }
    }

    proptest::proptest! {
        /// Values recorded in runs (`record_all`, from the first call, through the short
        /// forms, and into a busy histogram one of whose counts by value is about to
        /// overflow) answer as the same values recorded one by one.
        #[test]
        fn a_run_is_recorded_like_its_calls(
            values in proptest::collection::vec(
                proptest::prop_oneof![4 => 1000u64..1004, 1 => 2048u64..100_000_000],
                1..9000,
            ),
            cuts in proptest::collection::vec(0usize..9000, 0..8),
            near in 0u32..3,
        ) {
            let mut cuts: Vec<usize> =
                cuts.into_iter().filter(|&c| c < values.len()).collect();
            cuts.push(values.len());
            cuts.sort_unstable();
            let (mut reference, mut runs) = (empty_histogram(), LatencyHist::new());
            let mut from = 0;
            for to in cuts {
                runs.record_all(values[from..to].iter().copied());
                for &v in &values[from..to] {
                    let _ = reference.record(v);
                }
                from = to;
                // Once busy: one count by value so close to overflow that the run spills it.
                if let Repr::Full(f) = &mut runs.repr
                    && let Some(d) = &mut f.dense
                    && d[1001] == 0
                {
                    let n = u32::MAX - 1 - near;
                    d[1001] = n;
                    f.pending += u64::from(n);
                    let _ = reference.record_n(1001, u64::from(n));
                }
            }
            proptest::prop_assert_eq!(runs.count(), reference.len());
            proptest::prop_assert_eq!(&*runs.histogram(), &reference);
            let copy = runs.clone();
            proptest::prop_assert_eq!(&*copy.histogram(), &reference);
        }
    }

    proptest::proptest! {
        /// Any header fields, compressed or not: an error or a histogram, never a panic.
        #[test]
        fn any_header_never_panics(
            payload_len in proptest::num::u32::ANY,
            sigfig in 0u32..8,
            low in proptest::num::u64::ANY,
            high in proptest::num::u64::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            zip in proptest::bool::ANY,
        ) {
            let raw = v2(payload_len, sigfig, low, high, &payload);
            let bytes = if zip { compressed(&raw) } else { raw };
            let _ = decode(&bytes);
        }
    }
}
