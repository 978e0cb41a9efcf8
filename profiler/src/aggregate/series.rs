//! One series: the calls of one key (a syscall, or a process and a syscall): a latency
//! histogram, the exact total time, the failures by errno, and where the time went off CPU
//! (the calls' anatomy: run-queue wait and blocked; on-CPU is the rest).

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
    /// Time off CPU.
    pub off_cpu: OffCpu,
}

/// Where a series' calls spent their time off CPU. Exact totals; the per-call histograms
/// exist once a call of the series was switched out (calls that never were count as 0).
#[derive(Debug, Default)]
pub struct OffCpu {
    /// Exact sum of the calls' run-queue waits (runnable, not running), ns.
    pub runq_ns: u64,
    /// Exact sum of the calls' blocked time (sleeping), ns.
    pub blocked_ns: u64,
    /// Switches out while sleeping, summed over the calls.
    pub voluntary: u64,
    /// Switches out while runnable (preemptions), summed over the calls.
    pub involuntary: u64,
    hists: Option<Box<OffCpuHists>>,
}

#[derive(Debug)]
struct OffCpuHists {
    runq: LatencyHist,
    blocked: LatencyHist,
    /// Run-queue and blocked ns summed by the call's latency bucket (power of two of its
    /// duration): how the split changes from fast calls to slow ones.
    by_bucket: [[u64; 2]; 64],
    /// Calls that never switched, not yet recorded as zeros (recorded in bulk when the
    /// series is copied, so such a call costs an increment).
    zeros: u64,
}

impl OffCpuHists {
    fn new(zeros: u64) -> Box<Self> {
        Box::new(Self {
            runq: LatencyHist::new(),
            blocked: LatencyHist::new(),
            by_bucket: [[0; 2]; 64],
            zeros,
        })
    }

    fn settle(&mut self) {
        let n = std::mem::take(&mut self.zeros);
        if n > 0 {
            self.runq.record_n(0, n);
            self.blocked.record_n(0, n);
        }
    }
}

/// A copy is settled: its histograms hold every call.
impl Clone for OffCpu {
    fn clone(&self) -> Self {
        Self {
            runq_ns: self.runq_ns,
            blocked_ns: self.blocked_ns,
            voluntary: self.voluntary,
            involuntary: self.involuntary,
            hists: self.hists.as_ref().map(|h| {
                let mut c = Box::new(OffCpuHists {
                    runq: h.runq.clone(),
                    blocked: h.blocked.clone(),
                    by_bucket: h.by_bucket,
                    zeros: h.zeros,
                });
                c.settle();
                c
            }),
        }
    }
}

impl PartialEq for OffCpu {
    fn eq(&self, other: &Self) -> bool {
        (
            self.runq_ns,
            self.blocked_ns,
            self.voluntary,
            self.involuntary,
        ) == (
            other.runq_ns,
            other.blocked_ns,
            other.voluntary,
            other.involuntary,
        )
    }
}

/// The power-of-two bucket of `ns`: `i` holds `2^i ..= 2^(i+1) - 1` (0 and 1 in bucket 0).
pub fn log2_bucket(ns: u64) -> usize {
    63 - ns.max(1).leading_zeros() as usize
}

/// One latency bucket of a series: its calls and where their time went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketSplit {
    /// The bucket's lower bound, ns (a power of two).
    pub lo_ns: u64,
    /// Calls in it.
    pub calls: u64,
    /// Their time on CPU, ns (the bucket's total, from the histogram, less the rest).
    pub oncpu_ns: u64,
    /// Their run-queue wait, ns (exact).
    pub runq_ns: u64,
    /// Their blocked time, ns (exact).
    pub blocked_ns: u64,
}

impl OffCpu {
    /// Context switches out, summed over the calls.
    pub fn switches(&self) -> u64 {
        self.voluntary + self.involuntary
    }

    /// Whether calls that never switched are still to be added to the histograms (a
    /// clone adds them).
    pub fn unsettled(&self) -> bool {
        self.hists.as_ref().is_some_and(|h| h.zeros > 0)
    }

    /// Per-call run-queue and blocked histograms over every call, when a call switched.
    /// Exact on a snapshot's series (settled); the aggregator's own may lag behind by the
    /// calls that never switched.
    pub fn hists(&self) -> Option<(&LatencyHist, &LatencyHist)> {
        self.hists.as_ref().map(|h| (&h.runq, &h.blocked))
    }

    /// Sets the totals and histograms read back from a recording (the histograms already
    /// hold every call).
    pub fn restore(totals: [u64; 4], hists: Option<(LatencyHist, LatencyHist)>) -> Self {
        let [runq_ns, blocked_ns, voluntary, involuntary] = totals;
        Self {
            runq_ns,
            blocked_ns,
            voluntary,
            involuntary,
            hists: hists.map(|(runq, blocked)| {
                Box::new(OffCpuHists {
                    runq,
                    blocked,
                    by_bucket: [[0; 2]; 64],
                    zeros: 0,
                })
            }),
        }
    }

    /// The series' calls by power-of-two latency bucket (from the first non-empty to the
    /// last), each with its on-CPU, run-queue and blocked time. `hist` is the series'
    /// latency histogram; bucket totals come from it (within its 3 significant digits).
    pub fn buckets(&self, hist: &LatencyHist) -> Vec<BucketSplit> {
        let mut calls = [0u64; 64];
        let mut total = [0u64; 64];
        let h = hist.histogram();
        for v in h.iter_recorded() {
            // The middle of the value's bucket: the best estimate of its calls' durations.
            let x = h.median_equivalent(v.value_iterated_to());
            let i = log2_bucket(x);
            calls[i] += v.count_at_value();
            total[i] = total[i].saturating_add(x.saturating_mul(v.count_at_value()));
        }
        let (Some(first), Some(last)) = (
            calls.iter().position(|&c| c > 0),
            calls.iter().rposition(|&c| c > 0),
        ) else {
            return Vec::new();
        };
        (first..=last)
            .map(|i| {
                let [runq, blocked] = self.hists.as_ref().map_or([0, 0], |h| h.by_bucket[i]);
                BucketSplit {
                    lo_ns: 1 << i,
                    calls: calls[i],
                    oncpu_ns: total[i].saturating_sub(runq).saturating_sub(blocked),
                    runq_ns: runq,
                    blocked_ns: blocked,
                }
            })
            .collect()
    }

    /// Adds `other` (of `theirs` calls) into `self` (of `ours` calls).
    fn merge(&mut self, ours: u64, other: &OffCpu, theirs: u64) {
        self.runq_ns = self.runq_ns.saturating_add(other.runq_ns);
        self.blocked_ns = self.blocked_ns.saturating_add(other.blocked_ns);
        self.voluntary += other.voluntary;
        self.involuntary += other.involuntary;
        match (&mut self.hists, &other.hists) {
            (None, None) => {}
            (Some(a), None) => a.zeros += theirs,
            (mine, Some(b)) => {
                let a = mine.get_or_insert_with(|| OffCpuHists::new(ours));
                a.runq.merge(&b.runq);
                a.blocked.merge(&b.blocked);
                for (x, y) in a.by_bucket.iter_mut().zip(&b.by_bucket) {
                    x[0] += y[0];
                    x[1] += y[1];
                }
                a.zeros += b.zeros;
            }
        }
    }
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
            off_cpu: OffCpu::default(),
        }
    }
}

impl Series {
    /// Records one call that never left its CPU.
    #[inline]
    pub fn record(&mut self, duration_ns: u64, errno: Option<i32>) {
        if let Some(h) = &mut self.off_cpu.hists {
            h.zeros += 1;
        }
        self.record_call(duration_ns, errno);
    }

    /// Records a run of calls that never left their CPU, each as its duration and its raw
    /// return value (as [`Series::record`] on each, with the errno of the value), in one
    /// pass: the totals stay in registers over the run and the histogram takes it whole.
    #[inline]
    pub fn record_run(&mut self, calls: impl Iterator<Item = (u64, i64)>) {
        let (mut total, mut min, mut max, mut n) = (self.total_ns, self.min_ns, self.max_ns, 0);
        let (errors, errnos) = (&mut self.errors, &mut self.errnos);
        self.hist.record_all(calls.map(|(d, ret)| {
            total = total.saturating_add(d);
            min = min.min(d);
            max = max.max(d);
            n += 1;
            if let Some(e) = crate::syscalls::errno_of(ret) {
                *errors += 1;
                *errnos.entry(e).or_default() += 1;
            }
            d
        }));
        (self.total_ns, self.min_ns, self.max_ns) = (total, min, max);
        if let Some(h) = &mut self.off_cpu.hists {
            h.zeros += n;
        }
    }

    /// Records one call that was switched out: `runq_ns` waiting for a CPU, `blocked_ns`
    /// sleeping (kept within the call's duration, so the parts always sum to it), with
    /// `voluntary` and `involuntary` switches.
    pub fn record_switched(&mut self, duration_ns: u64, errno: Option<i32>, off: [u64; 4]) {
        let [runq, blocked, voluntary, involuntary] = off;
        let blocked = blocked.min(duration_ns);
        let runq = runq.min(duration_ns - blocked);
        let before = self.count();
        let o = &mut self.off_cpu;
        let h = o.hists.get_or_insert_with(|| OffCpuHists::new(before));
        h.runq.record(runq);
        h.blocked.record(blocked);
        let b = &mut h.by_bucket[log2_bucket(duration_ns)];
        b[0] += runq;
        b[1] += blocked;
        o.runq_ns = o.runq_ns.saturating_add(runq);
        o.blocked_ns = o.blocked_ns.saturating_add(blocked);
        o.voluntary += voluntary;
        o.involuntary += involuntary;
        self.record_call(duration_ns, errno);
    }

    #[inline]
    fn record_call(&mut self, duration_ns: u64, errno: Option<i32>) {
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
        self.off_cpu
            .merge(self.hist.count(), &other.off_cpu, other.hist.count());
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

    /// Exact on-CPU time: the total less the time off CPU.
    pub fn oncpu_ns(&self) -> u64 {
        self.total_ns
            .saturating_sub(self.off_cpu.runq_ns)
            .saturating_sub(self.off_cpu.blocked_ns)
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

    #[test]
    fn off_cpu_parts_sum_to_the_total_and_count_every_call() {
        let mut a = Series::default();
        a.record(100, None);
        a.record(1000, None);
        a.record_switched(10_000, None, [2_000, 7_000, 1, 0]);
        a.record(50, None);
        // Parts beyond the duration are cut so the three always sum to it.
        a.record_switched(500, None, [400, 300, 0, 2]);
        assert_eq!(a.off_cpu.runq_ns, 2_000 + 200);
        assert_eq!(a.off_cpu.blocked_ns, 7_000 + 300);
        assert_eq!(
            a.oncpu_ns() + a.off_cpu.runq_ns + a.off_cpu.blocked_ns,
            a.total_ns
        );
        assert_eq!((a.off_cpu.voluntary, a.off_cpu.involuntary), (1, 2));
        let c = a.clone();
        let (runq, blocked) = c.off_cpu.hists().unwrap();
        assert_eq!((runq.count(), blocked.count()), (5, 5));
        assert_eq!(runq.percentile(50.0), 0);
        assert!(blocked.percentile(100.0) >= 6_990);
        // Merging a series that never switched adds its calls as zeros, and the other way.
        let mut plain = Series::default();
        plain.record(10, None);
        plain.record(20, None);
        let mut m = a.clone();
        m.merge(&plain);
        assert_eq!(m.clone().off_cpu.hists().unwrap().0.count(), 7);
        let mut m = plain.clone();
        m.merge(&a);
        let m = m.clone();
        assert_eq!(m.off_cpu.hists().unwrap().1.count(), 7);
        assert_eq!(m.off_cpu.blocked_ns, 7_300);
        // By latency bucket: the 10 µs call is in 8192.., blocked 7 µs of it.
        let b = m.off_cpu.buckets(&m.hist);
        let slow = b.iter().find(|b| b.lo_ns == 8192).unwrap();
        assert_eq!(
            (slow.calls, slow.runq_ns, slow.blocked_ns),
            (1, 2_000, 7_000)
        );
        assert!(slow.oncpu_ns < 1_100, "{slow:?}");
        assert_eq!(b.iter().map(|b| b.calls).sum::<u64>(), 7);
    }
}
