//! One series: the calls of one key (a syscall, or a process and a syscall): a latency
//! histogram, the exact total time, and the failures by errno.

use std::collections::BTreeMap;

use super::LatencyHist;

/// Everything kept for one key.
#[derive(Clone, Debug)]
pub struct Series {
    /// Latency of every call.
    pub hist: LatencyHist,
    /// Exact sum of the latencies, in ns.
    pub total_ns: u64,
    /// Failed calls (return value in -4095..=-1).
    pub errors: u64,
    /// Failed calls by errno number.
    pub errnos: BTreeMap<i32, u64>,
    /// Exact fastest call, ns (`u64::MAX` while empty).
    pub min_ns: u64,
    /// Exact slowest call, ns.
    pub max_ns: u64,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            hist: LatencyHist::new(),
            total_ns: 0,
            errors: 0,
            errnos: BTreeMap::new(),
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

impl Series {
    /// Records one call.
    #[inline]
    pub fn record(&mut self, duration_ns: u64, errno: Option<i32>) {
        self.hist.record(duration_ns);
        self.total_ns = self.total_ns.saturating_add(duration_ns);
        self.min_ns = self.min_ns.min(duration_ns);
        self.max_ns = self.max_ns.max(duration_ns);
        if let Some(e) = errno {
            self.errors += 1;
            *self.errnos.entry(e).or_default() += 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Series) {
        self.hist.merge(&other.hist);
        self.total_ns = self.total_ns.saturating_add(other.total_ns);
        self.errors += other.errors;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        for (e, n) in &other.errnos {
            *self.errnos.entry(*e).or_default() += n;
        }
    }

    /// Number of calls.
    pub fn count(&self) -> u64 {
        self.hist.count()
    }

    /// Exact fastest call (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count() == 0 { 0 } else { self.min_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_errors_and_merges() {
        let mut a = Series::default();
        a.record(100, None);
        a.record(200, Some(2));
        let mut b = Series::default();
        b.record(300, Some(2));
        b.record(400, Some(11));
        a.merge(&b);
        assert_eq!(a.count(), 4);
        assert_eq!(a.total_ns, 1000);
        assert_eq!(a.errors, 3);
        assert_eq!(a.errnos.get(&2), Some(&2));
        assert_eq!(a.errnos.get(&11), Some(&1));
        assert_eq!((a.min(), a.max_ns), (100, 400));
        assert_eq!(Series::default().min(), 0);
    }
}
