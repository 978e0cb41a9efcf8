//! Prometheus exposition of a snapshot, through the `prometheus-client` crate: OpenMetrics
//! text, the classic Prometheus text format (the same bytes without the OpenMetrics-only
//! `# EOF`/`# UNIT` lines, and with counter families named after their `_total` samples),
//! or the Prometheus protobuf format (`io.prometheus.client.MetricFamily`, length-delimited),
//! the only one that carries native histograms. [`Format::negotiate`] picks one from a
//! scrape's `Accept` header.
//!
//! Metrics (base units, counters end in `_total`):
//! - `syslat_syscall_duration_seconds{syscall[,comm]}` histogram: classic buckets 1 µs to
//!   10 s in every format, and in protobuf also native (sparse exponential) buckets of
//!   schema [`NATIVE_SCHEMA`];
//! - `syslat_syscall_runq_seconds{syscall[,comm]}` histogram (classic and native like the
//!   duration's): the per-call run-queue wait, 0 for calls that never left their CPU;
//! - `syslat_syscall_time_seconds_total{syscall[,comm],part}` counter, `part` = `oncpu`,
//!   `runq` or `blocked`: the calls' time by part (the parts sum to the duration's `_sum`);
//! - `syslat_syscall_errors_total{syscall,errno[,comm]}`;
//!
//! With `--by container`, `container_id`, `container_name` and `pod_uid` stand where
//! `comm` does; with rows by cgroup, `cgroup` (its path). Rows folded by `--max-keys`
//! have `other` there.
//! - `syslat_events_lost_total{reason}` (`dropped`: event buffer full, `untimed`: no slot,
//!   `skipped`: program runs the kernel skipped),
//!   `syslat_events_unpaired_total`;
//! - `syslat_self_cpu_seconds_total`, `syslat_self_resident_memory_bytes`,
//!   `syslat_traced_syscalls_total`.
//!
//! Both kinds of buckets are filled from the HdrHistogram: each of its buckets (1 ns wide
//! below 2,048 ns, under 0.1% of the value above) goes whole into the one classic and the
//! one native bucket that hold its highest value. So every call is counted in exactly one
//! bucket, the same value always lands in the same bucket (bucket counts never go down
//! between scrapes), and native histograms from any number of machines, all on the same
//! schema and zero threshold, add up exactly.

use std::collections::BTreeMap;

use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, NativeHistogram, NativeHistogramBuckets, NoLabelSet,
        prometheus_protobuf, text,
    },
    metrics::MetricType,
    registry::{Registry, Unit},
};

use crate::aggregate::{GroupBy, LatencyHist, Row, RowKey, Series, Snapshot};

/// Histogram bucket upper bounds in seconds: 1, 2.5, 5 per decade from 1 µs to 10 s
/// (literals, so they print exactly). A call is put in a bucket by its HdrHistogram
/// bucket's highest value, so a value within 0.1% of a bound may land one bucket up.
pub fn buckets() -> Vec<f64> {
    vec![
        1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
        2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// syslat's own cost, for the `syslat_self_*` metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct SelfStats {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
}

/// Rows keyed by their label values; rows of one comm are merged (pids are never labels).
type Labelled = BTreeMap<Vec<(String, String)>, Buckets>;

#[derive(Debug)]
struct SnapshotCollector {
    series: Labelled,
    /// Per label set: the calls' per-call run-queue waits, and their time by part
    /// (on CPU, run queue, blocked), ns.
    runq: Labelled,
    parts: BTreeMap<Vec<(String, String)>, [u64; 3]>,
    errors: BTreeMap<Vec<(String, String)>, u64>,
    lost_dropped: u64,
    lost_untimed: u64,
    lost_skipped: u64,
    unpaired: u64,
    traced: u64,
    me: SelfStats,
    /// Native buckets too (protobuf only: the text formats cannot carry them).
    native: bool,
}

/// The label set of a row, from its key: `syscall`, then `comm` (rows of processes and
/// threads), `cgroup` (by cgroup), or `container_id`, `container_name`, `pod_uid` (by
/// container; the host row has `container_id=""`, `container_name="-"`). A row folded by
/// `--max-keys`, or by the series cap when `folded`, has `other` in each (and an empty
/// `pod_uid`). Values are raw: the text encoder escapes `\\`, `"` and newlines, protobuf
/// needs nothing.
fn labels_of(row: &Row, group: GroupBy, folded: bool) -> Vec<(String, String)> {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let syscall = if folded { "other" } else { &row.syscall };
    let folded = folded || row.key.is_other();
    let other = |v: &str| {
        if folded {
            "other".to_string()
        } else {
            v.to_string()
        }
    };
    let mut labels = vec![pair("syscall", syscall)];
    match (group, &row.key) {
        (GroupBy::Syscall, _) => {}
        (GroupBy::Process | GroupBy::Thread, k) => {
            labels.push(pair("comm", &other(k.comm().unwrap_or("?"))));
        }
        (GroupBy::Cgroup, k) => {
            let path = match k {
                RowKey::Cgroup { path } => path.as_str(),
                _ => "",
            };
            labels.push(pair("cgroup", &other(path)));
        }
        (GroupBy::Container, k) => {
            let (id, name, pod) = match k {
                RowKey::Container(c) => (
                    c.id.as_str(),
                    c.name.as_str(),
                    c.pod_uid.as_deref().unwrap_or(""),
                ),
                _ => ("", "", ""),
            };
            labels.push(pair("container_id", &other(id)));
            labels.push(pair("container_name", &other(name)));
            labels.push(pair("pod_uid", if folded { "" } else { pod }));
        }
    }
    labels
}

impl SnapshotCollector {
    fn new(snap: &Snapshot, me: SelfStats, max_series: usize, native: bool) -> Self {
        let bounds = buckets();
        let mut series: Labelled = BTreeMap::new();
        let mut runq: Labelled = BTreeMap::new();
        let mut parts: BTreeMap<Vec<(String, String)>, [u64; 3]> = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for row in &snap.rows {
            let mut labels = labels_of(row, snap.group, false);
            if !series.contains_key(&labels) && series.len() >= max_series {
                // Cardinality cap: fold the rest into one exact "other" series.
                labels = labels_of(row, snap.group, true);
            }
            series
                .entry(labels.clone())
                .or_default()
                .add(&row.series, &bounds, native);
            let off = &row.series.off_cpu;
            let r = runq.entry(labels.clone()).or_default();
            match off.hists() {
                Some((h, _)) => r.add_hist(h, off.runq_ns, &bounds, native),
                None => r.add_zeros(row.series.count(), &bounds, native),
            }
            let p = parts.entry(labels.clone()).or_default();
            for (sum, ns) in p
                .iter_mut()
                .zip([row.series.oncpu_ns(), off.runq_ns, off.blocked_ns])
            {
                *sum += ns;
            }
            for (e, n) in &row.series.errnos {
                let mut l = labels.clone();
                l.push(("errno".to_string(), crate::syscalls::errno_name(*e)));
                *errors.entry(l).or_default() += n;
            }
        }
        SnapshotCollector {
            series,
            runq,
            parts,
            errors,
            lost_dropped: snap.loss.dropped,
            lost_untimed: snap.loss.no_storage,
            lost_skipped: snap.loss.skipped,
            unpaired: snap.loss.unpaired,
            traced: snap.events,
            me,
            native,
        }
    }
}

/// The native histograms' schema: 2^3 = 8 buckets per power of two, bucket `i` holding
/// (2^((i-1)/8), 2^(i/8)] seconds, its upper bound 2^(1/8) = 1.0905 times its lower. The
/// schema Prometheus's own clients default to (bucket factor 1.1); a syscall spanning 100 ns
/// to 1 s fills at most 187 buckets.
pub const NATIVE_SCHEMA: i32 = 3;

/// Width of the native zero bucket, in seconds: 2^-128, Prometheus's default, far below
/// 1 ns, so only calls that took 0 ns land in it.
pub const NATIVE_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// The relative width of a native bucket, 2^(2^-schema) - 1: a percentile
/// `histogram_quantile` estimates from native buckets lies in the bucket of the true
/// one, so within this fraction of it.
pub fn native_bucket_error() -> f64 {
    (1.0 / f64::from(1u32 << NATIVE_SCHEMA)).exp2() - 1.0
}

/// Upper bounds of the native buckets 0..8 of a power of two, as fractions in [0.5, 1):
/// `2^(j/8 - 1)`.
fn native_bounds() -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| {
        let n = 1u32 << NATIVE_SCHEMA;
        (0..n)
            .map(|j| (f64::from(j) / f64::from(n) - 1.0).exp2())
            .collect()
    })
}

/// The index of the native bucket holding `secs` (positive, finite): the `i` with
/// 2^((i-1)/8) < secs <= 2^(i/8), found as Prometheus's clients do, from the mantissa
/// and exponent of `secs`, so a power of two is exactly a bucket's upper bound.
pub fn native_index(secs: f64) -> i32 {
    // secs = frac * 2^exp with frac in [0.5, 1) (C's frexp), for a normal positive f64.
    let bits = secs.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1022u64 << 52));
    let bounds = native_bounds();
    let j = bounds.partition_point(|b| *b < frac) as i32;
    j + (exp - 1) * bounds.len() as i32
}

/// The upper bound of native bucket `i`, in seconds, from the same table as
/// [`native_index`] (times a power of two, which is exact), so that `native_index(v)` is
/// the least `i` with `v <= native_upper(i)`.
fn native_upper(i: i32) -> f64 {
    let n = 1i32 << NATIVE_SCHEMA;
    native_bounds()[i.rem_euclid(n) as usize] * 2f64.powi(i.div_euclid(n) + 1)
}

/// The bounds (lower, upper] of native bucket `i`, in seconds.
pub fn native_bucket_bounds(i: i32) -> (f64, f64) {
    (native_upper(i - 1), native_upper(i))
}

/// A label set's histogram, summed over its rows: the exact sum and count, the classic
/// bucket counts (not cumulative; the last is `+Inf`), and, when native buckets are
/// wanted, the zero bucket's count and the native buckets (increasing index, counts above
/// 0). Counting buckets per row and adding them is exact: a value's bucket does not
/// depend on the row it is in.
#[derive(Debug, Default, PartialEq)]
struct Buckets {
    sum_ns: u64,
    count: u64,
    classic: Vec<u64>,
    zero: u64,
    native: Vec<(i32, u64)>,
}

impl Buckets {
    /// Adds the calls of `s`, in one pass over its HdrHistogram (in increasing value, so
    /// both bucket cursors only move up).
    fn add(&mut self, s: &Series, bounds: &[f64], native_too: bool) {
        self.add_hist(&s.hist, s.total_ns, bounds, native_too);
    }

    /// `n` calls of 0 ns (a series none of whose calls waited for a CPU).
    fn add_zeros(&mut self, n: u64, bounds: &[f64], native_too: bool) {
        self.count += n;
        self.classic.resize(bounds.len() + 1, 0);
        self.classic[0] += n;
        if native_too {
            self.zero += n;
        }
    }

    /// Adds the values of `hist`, whose exact sum is `sum_ns`.
    fn add_hist(&mut self, hist: &LatencyHist, sum_ns: u64, bounds: &[f64], native_too: bool) {
        self.sum_ns += sum_ns;
        self.count += hist.count();
        self.classic.resize(bounds.len() + 1, 0);
        let mut native: Vec<(i32, u64)> = Vec::new();
        let mut upper = f64::NEG_INFINITY;
        let mut ci = 0;
        for v in hist.histogram().iter_recorded() {
            let n = v.count_at_value();
            let secs = v.value_iterated_to() as f64 / 1e9;
            while ci < bounds.len() && secs > bounds[ci] {
                ci += 1;
            }
            self.classic[ci] += n;
            if !native_too {
                continue;
            }
            if secs <= NATIVE_ZERO_THRESHOLD {
                self.zero += n;
                continue;
            }
            match native.last_mut() {
                Some((_, c)) if secs <= upper => *c += n,
                _ => {
                    let i = native_index(secs);
                    upper = native_upper(i);
                    native.push((i, n));
                }
            }
        }
        if self.native.is_empty() {
            self.native = native;
        } else if !native.is_empty() {
            self.native = merge_sparse(&self.native, &native);
        }
    }

    /// Writes this histogram as one member of family `m`, with native buckets when
    /// `native`.
    fn encode(
        &self,
        m: &mut prometheus_client::encoding::MetricEncoder<'_>,
        labels: &Vec<(String, String)>,
        bounds: &[f64],
        native: bool,
    ) -> Result<(), std::fmt::Error> {
        let (sum, count) = (self.sum_ns as f64 / 1e9, self.count);
        let classic = self.classic_pairs(bounds);
        let mut family = m.encode_family(labels)?;
        if !native {
            return family.encode_histogram::<NoLabelSet>(sum, count, &classic, None);
        }
        let (spans, deltas) = spans_and_deltas(&self.native);
        family.encode_histogram_with_native::<NoLabelSet>(
            sum,
            count,
            &classic,
            None,
            NativeHistogram {
                schema: NATIVE_SCHEMA,
                zero_threshold: NATIVE_ZERO_THRESHOLD,
                zero_count: self.zero,
                negative: NativeHistogramBuckets {
                    spans: &[],
                    deltas: &[],
                },
                positive: NativeHistogramBuckets {
                    spans: &spans,
                    deltas: &deltas,
                },
                created: None,
            },
        )
    }

    /// The classic buckets as (upper bound, count) pairs for the encoder.
    fn classic_pairs(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.classic.iter().copied())
            .collect()
    }
}

/// Two sparse bucket lists (increasing index) added bucket by bucket.
fn merge_sparse(a: &[(i32, u64)], b: &[(i32, u64)]) -> Vec<(i32, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                let v = (x.0, x.1 + y.1);
                a.next();
                b.next();
                v
            }
            (Some(x), Some(y)) if x.0 < y.0 => *a.next().expect("peeked"),
            (_, Some(_)) => *b.next().expect("peeked"),
            (Some(_), None) => *a.next().expect("peeked"),
            (None, None) => return out,
        };
        out.push(next);
    }
}

/// Sparse buckets (increasing index, counts above 0) in the protobuf's form: spans of
/// consecutive buckets (the first offset absolute, the others the gap since the previous
/// span) and each count as the change from the bucket before it. Gaps of one or two empty
/// buckets are kept as zero counts inside a span, which is shorter than a new span.
fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let mut prev: Option<(i32, u64)> = None;
    for &(i, n) in buckets {
        match prev {
            None => spans.push((i, 1)),
            Some((p, pn)) => {
                let gap = i - p - 1;
                if gap <= 2 {
                    let span = spans.last_mut().expect("a span was pushed first");
                    span.1 += gap as u32 + 1;
                    let mut last = pn;
                    for _ in 0..gap {
                        deltas.push(-(last as i64));
                        last = 0;
                    }
                    deltas.push(n as i64 - last as i64);
                    prev = Some((i, n));
                    continue;
                }
                spans.push((gap, 1));
            }
        }
        deltas.push(n as i64 - prev.map_or(0, |(_, pn)| pn as i64));
        prev = Some((i, n));
    }
    if spans.is_empty() {
        // An empty native histogram still needs a span to be told from a classic one.
        spans.push((0, 0));
    }
    (spans, deltas)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let bounds = buckets();
        let mut m = enc.encode_descriptor(
            "syslat_syscall_duration",
            "Latency of completed system calls",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (labels, b) in &self.series {
            b.encode(&mut m, labels, &bounds, self.native)?;
        }
        let mut m = enc.encode_descriptor(
            "syslat_syscall_runq",
            "Per-call time runnable but waiting for a CPU inside system calls (0 for calls that never left their CPU)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (labels, b) in &self.runq {
            b.encode(&mut m, labels, &bounds, self.native)?;
        }
        let mut m = enc.encode_descriptor(
            "syslat_syscall_time",
            "Time inside system calls by part: running on a CPU (oncpu), runnable but waiting for one (runq), sleeping (blocked); the parts sum to the histogram's _sum",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        for (labels, parts) in &self.parts {
            for (part, ns) in ["oncpu", "runq", "blocked"].into_iter().zip(parts) {
                let mut l = labels.clone();
                l.push(("part".to_string(), part.to_string()));
                m.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, f64>(&(*ns as f64 / 1e9), None)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "syslat_syscall_errors",
            "Failed system calls by errno",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &self.errors {
            m.encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        let mut m = enc.encode_descriptor(
            "syslat_events_lost",
            "Completed calls not counted: event buffer full (dropped), no per-thread slot (untimed), or program runs the kernel skipped (skipped: Linux 7.2+, each a call lost or mis-timed)",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("dropped", self.lost_dropped),
            ("untimed", self.lost_untimed),
            ("skipped", self.lost_skipped),
        ] {
            m.encode_family(&vec![("reason", reason)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        enc.encode_descriptor(
            "syslat_events_unpaired",
            "Exits with no recorded enter (calls in flight when tracing started)",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, u64>(&self.unpaired, None)?;
        enc.encode_descriptor(
            "syslat_traced_syscalls",
            "System calls traced",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, u64>(&self.traced, None)?;
        enc.encode_descriptor(
            "syslat_self_cpu_seconds",
            "CPU time used by syslat",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, f64>(&self.me.cpu_seconds, None)?;
        enc.encode_descriptor(
            "syslat_self_resident_memory",
            "Resident memory of syslat",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?
        .encode_gauge(&self.me.rss_bytes)?;
        Ok(())
    }
}

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (classic buckets only).
    Text,
    /// OpenMetrics 1.0.0 text (classic buckets only).
    OpenMetrics,
    /// Prometheus protobuf, length-delimited `io.prometheus.client.MetricFamily` messages
    /// (classic and native buckets).
    Protobuf,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// The format an `Accept` header asks for: the acceptable media range with the highest
    /// `q` (the first listed among equals) that names one of the formats; protobuf only
    /// with `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`, as
    /// Prometheus sends when native histograms are on. Text when nothing matches (as for a
    /// browser, curl, or no header).
    pub fn negotiate(accept: &str) -> Format {
        let mut best: Option<(f64, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0;
            let (mut proto, mut delimited) = (false, false);
            for param in parts {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.parse::<f64>().unwrap_or(0.0),
                    "proto" => proto = v == "io.prometheus.client.MetricFamily",
                    "encoding" => delimited = v == "delimited",
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/vnd.google.protobuf" if proto && delimited => Format::Protobuf,
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Text,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }
}

/// The exposition of `snap` in `format`. At most `max_series` label sets per family; the
/// rest fold into an exact `other`.
pub fn render(snap: &Snapshot, me: SelfStats, format: Format, max_series: usize) -> Vec<u8> {
    let mut registry = Registry::default();
    let native = format == Format::Protobuf;
    registry.register_collector(Box::new(SnapshotCollector::new(
        snap, me, max_series, native,
    )));
    let mut out = String::new();
    match format {
        Format::Protobuf => prometheus_protobuf::encode_to_vec(&registry)
            .expect("every metric here encodes: finite bounds, no exemplars, no timestamps"),
        Format::OpenMetrics => {
            text::encode(&mut out, &registry).expect("writing to a String cannot fail");
            out.into_bytes()
        }
        Format::Text => {
            // Not the crate's own `prometheus_text`: it orders labels and formats bounds
            // differently (`le` last, `1e-06`), which would break byte-identity.
            text::encode_registry(&mut out, &registry).expect("writing to a String cannot fail");
            to_prometheus_text(&out).into_bytes()
        }
    }
}

/// OpenMetrics → Prometheus text: drop `# UNIT` lines and name counter families after
/// their `_total` samples, as the Prometheus text format expects.
fn to_prometheus_text(om: &str) -> String {
    let counters: Vec<String> = om
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# TYPE ")?
                .strip_suffix(" counter")
                .map(str::to_string)
        })
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        // Only comment lines are renamed; samples (nearly every line) are copied as they
        // are, without the per-counter prefix tests, which made text scrapes 3x slower
        // than OpenMetrics ones.
        if line.starts_with('#') {
            let mut line = line.to_string();
            for c in &counters {
                for kind in ["# TYPE ", "# HELP "] {
                    let prefix = format!("{kind}{c} ");
                    if let Some(rest) = line.strip_prefix(&prefix) {
                        line = format!("{kind}{c}_total {rest}");
                    }
                }
            }
            out.push_str(&line);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, GroupBy, LossCounters};

    fn text(snap: &Snapshot, format: Format, max_series: usize) -> String {
        String::from_utf8(render(snap, SelfStats::default(), format, max_series)).unwrap()
    }

    fn snap(group: GroupBy) -> Snapshot {
        let mut a = Aggregator::new(group);
        for (i, ns) in [500u64, 2_000, 2_000, 40_000_000, 20_000_000_000]
            .into_iter()
            .enumerate()
        {
            a.record(&SyscallEvent {
                duration_ns: ns,
                ret: if i == 0 { -2 } else { 0 },
                tgid: 7 + (i as u32 % 2),
                tid: 7,
                nr: 0,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        a.snapshot(
            0,
            0,
            LossCounters {
                dropped: 4,
                skipped: 6,
                ..Default::default()
            },
            &|p| Some(format!("app{}", p % 2)),
        )
    }

    /// A snapshot with several syscalls, processes, errnos and values on bucket bounds.
    fn rich() -> Snapshot {
        let mut a = Aggregator::new(GroupBy::Process);
        for (i, (nr, ns, ret)) in [
            (0, 1_000u64, 0i64),
            (0, 999, -11),
            (0, 2_500, 0),
            (1, 10_000_000, 0),
            (1, 10_000_001, 0),
            (2, 0, -2),
            (2, 7_000_000_000_000, 0),
            (230, 10_080_000, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let i = i as u64;
            for _ in 0..(1 + i % 3) {
                // Field by field, so the test does not depend on the event's other fields.
                let mut e = SyscallEvent::default();
                (e.duration_ns, e.ret, e.tgid, e.tid, e.nr) =
                    (ns + i, ret, 7 + (i as u32 % 2), 7, nr);
                a.record(&e);
            }
        }
        a.snapshot(
            0,
            0,
            LossCounters {
                dropped: 4,
                no_storage: 2,
                unpaired: 3,
                ..Default::default()
            },
            &|p| Some(format!("app{}", p % 2)),
        )
    }

    /// The text formats are byte-identical to what prometheus-client 0.24 wrote (the files
    /// were written by it), so scrapers and recording rules see no change.
    #[test]
    fn text_formats_match_golden_files() {
        let me = SelfStats {
            cpu_seconds: 1.25,
            rss_bytes: 12_345_678,
        };
        for (openmetrics, golden) in [
            (false, include_str!("testdata/prometheus.txt")),
            (true, include_str!("testdata/openmetrics.txt")),
        ] {
            let format = if openmetrics {
                Format::OpenMetrics
            } else {
                Format::Text
            };
            let got = String::from_utf8(render(&rich(), me, format, 100)).unwrap();
            if std::env::var_os("SYSLAT_WRITE_GOLDEN").is_some() {
                let name = if openmetrics {
                    "openmetrics"
                } else {
                    "prometheus"
                };
                std::fs::write(format!("src/output/testdata/{name}.txt"), &got).unwrap();
            }
            assert_eq!(got, golden, "openmetrics: {openmetrics}");
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_complete() {
        let text = text(&snap(GroupBy::Syscall), Format::Text, 100);
        assert!(
            text.contains("# TYPE syslat_syscall_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"syslat_syscall_duration_seconds_count{syscall="read"} 5"#),
            "{text}"
        );
        // 500 ns is under the first bucket; 2 µs under 2.5 µs; 40 ms under 50 ms; 20 s only in +Inf.
        assert!(
            text.contains(
                r#"syslat_syscall_duration_seconds_bucket{le="0.000001",syscall="read"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"{le="0.0000025",syscall="read"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"{le="0.05",syscall="read"} 4"#), "{text}");
        assert!(text.contains(r#"{le="10.0",syscall="read"} 4"#), "{text}");
        assert!(text.contains(r#"{le="+Inf",syscall="read"} 5"#), "{text}");
        assert!(
            text.contains(r#"syslat_syscall_errors_total{syscall="read",errno="ENOENT"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE syslat_syscall_errors_total counter"),
            "{text}"
        );
        assert!(
            text.contains(r#"syslat_events_lost_total{reason="dropped"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"syslat_events_lost_total{reason="skipped"} 6"#),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let text = text(&snap(GroupBy::Syscall), Format::OpenMetrics, 100);
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert!(
            text.contains("# UNIT syslat_syscall_duration_seconds seconds"),
            "{text}"
        );
    }

    #[test]
    fn by_container_labels_are_escaped_and_capped() {
        use crate::aggregate::ContainerInfo;
        let mut a = Aggregator::new(GroupBy::Container);
        for key in [0u32, 2, 2, 3] {
            a.record(&SyscallEvent {
                duration_ns: 1_000,
                ret: -2,
                tgid: 1,
                tid: 1,
                nr: 0,
                cgroup: key,
                ..SyscallEvent::default()
            });
        }
        let id = "ab".repeat(32);
        let info = |k: u32| {
            Some(match k {
                0 => ContainerInfo::host(),
                2 => ContainerInfo {
                    id: id.clone(),
                    name: "we\"b\\\n".into(),
                    image: "img".into(),
                    pod_uid: Some("0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d".into()),
                },
                _ => ContainerInfo {
                    id: "cd".repeat(32),
                    name: "db".into(),
                    ..Default::default()
                },
            })
        };
        let snap = a.snapshot_with(0, 0, LossCounters::default(), &|_| None, &info);
        let text = text(&snap, Format::Text, 100);
        assert!(
            text.contains(&format!(
                r#"syslat_syscall_duration_seconds_count{{syscall="read",container_id="{id}",container_name="we\"b\\\n",pod_uid="0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"}} 2"#
            )),
            "{text}"
        );
        assert!(
            text.contains(
                r#"_count{syscall="read",container_id="",container_name="-",pod_uid=""} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                r#"syslat_syscall_errors_total{{syscall="read",container_id="{id}",container_name="we\"b\\\n",pod_uid="0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",errno="ENOENT"}} 2"#
            )),
            "{text}"
        );
        // Protobuf carries the name as it is: no text escapes.
        let pb = render(&snap, SelfStats::default(), Format::Protobuf, 100);
        assert!(
            pb.windows(6).any(|w| w == b"we\"b\\\n"),
            "raw name in protobuf"
        );
        assert!(
            !pb.windows(2).any(|w| w == b"\\\""),
            "no escape in protobuf"
        );
        // Two label sets at most: the third folds into other, exactly.
        let text = self::text(&snap, Format::Text, 2);
        assert!(
            text.contains(r#"_count{syscall="other",container_id="other",container_name="other",pod_uid=""} 1"#),
            "{text}"
        );
        assert!(!text.contains("comm="), "{text}");
    }

    #[test]
    fn by_cgroup_and_folded_rows_keep_their_labels() {
        // On main a cgroup row had the syscall label only: every cgroup merged into one
        // series, and --max-keys' other rows lost their comm.
        let mut a = Aggregator::with_max_keys(GroupBy::Cgroup, 2);
        for cg in [1u32, 2, 2, 3] {
            a.record(&SyscallEvent {
                duration_ns: 1_000,
                tgid: 7,
                tid: 7,
                cgroup: cg,
                ..SyscallEvent::default()
            });
        }
        let snap = a.snapshot(0, 0, LossCounters::default(), &|k| {
            Some(format!("system.slice/s{k}.service"))
        });
        let text = text(&snap, Format::Text, 100);
        let count = |labels: &str| format!("syslat_syscall_duration_seconds_count{{{labels}}}");
        for (labels, n) in [
            (r#"syscall="read",cgroup="system.slice/s1.service""#, 1),
            (r#"syscall="read",cgroup="system.slice/s2.service""#, 2),
            (r#"syscall="read",cgroup="other""#, 1),
        ] {
            assert!(
                text.contains(&format!("{} {n}\n", count(labels))),
                "{labels}: {text}"
            );
        }
        let mut a = Aggregator::with_max_keys(GroupBy::Process, 1);
        for pid in [1u32, 2] {
            a.record(&SyscallEvent {
                duration_ns: 1_000,
                tgid: pid,
                tid: pid,
                ..SyscallEvent::default()
            });
        }
        let snap = a.snapshot(0, 0, LossCounters::default(), &|_| Some("app".into()));
        let text = self::text(&snap, Format::Text, 100);
        assert!(
            text.contains(&format!("{} 1\n", count(r#"syscall="read",comm="other""#))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", count(r#"syscall="read",comm="app""#))),
            "{text}"
        );
    }

    #[test]
    fn by_process_uses_comm_and_caps_cardinality() {
        let text = text(&snap(GroupBy::Process), Format::Text, 1);
        assert!(text.contains(r#"comm="app1""#), "{text}");
        assert!(!text.contains("pid"), "pids are never labels: {text}");
        assert!(text.contains(r#"syscall="other",comm="other""#), "{text}");
        // Folding keeps the totals exact.
        let counts: u64 = text
            .lines()
            .filter(|l| l.starts_with("syslat_syscall_duration_seconds_count"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(counts, 5);
    }
}

#[cfg(test)]
mod native_tests {
    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricFamily;
    use prost::Message as _;

    use super::*;
    use crate::aggregate::{Aggregator, GroupBy, LossCounters};

    fn snap_of(values: &[u64]) -> Snapshot {
        snap_by(GroupBy::Syscall, values)
    }

    /// `values` as clock_nanosleep calls, alternately of pids 1 and 2, both named `app`.
    fn snap_by(group: GroupBy, values: &[u64]) -> Snapshot {
        let mut a = Aggregator::new(group);
        for (k, &ns) in values.iter().enumerate() {
            let mut e = profiler_common::SyscallEvent::default();
            let pid = 1 + (k % 2) as u32;
            (e.duration_ns, e.tgid, e.tid, e.nr) = (ns, pid, pid, 230);
            a.record(&e);
        }
        a.snapshot(0, 0, LossCounters::default(), &|_| Some("app".into()))
    }

    /// Every family of a protobuf exposition, read back with prost.
    fn families(bytes: &[u8]) -> Vec<MetricFamily> {
        let mut buf = bytes;
        let mut out = Vec::new();
        while !buf.is_empty() {
            out.push(MetricFamily::decode_length_delimited(&mut buf).unwrap());
        }
        out
    }

    /// The native buckets of the duration histogram's only series, decoded from spans and
    /// deltas (independently of the encoder): zero count and index → count.
    fn native_of(values: &[u64]) -> (u64, u64, BTreeMap<i32, u64>) {
        let bytes = render(
            &snap_of(values),
            SelfStats::default(),
            Format::Protobuf,
            100,
        );
        let fams = families(&bytes);
        let fam = fams
            .iter()
            .find(|f| f.name == "syslat_syscall_duration_seconds")
            .unwrap();
        if values.is_empty() {
            assert!(fam.metric.is_empty());
            return (0, 0, BTreeMap::new());
        }
        assert_eq!(fam.metric.len(), 1);
        let h = fam.metric[0].histogram.as_ref().unwrap();
        assert_eq!(h.schema, NATIVE_SCHEMA);
        assert_eq!(h.zero_threshold, NATIVE_ZERO_THRESHOLD);
        assert!(h.negative_span.is_empty() && h.negative_delta.is_empty());
        let mut buckets = BTreeMap::new();
        let (mut idx, mut count, mut deltas) = (0i32, 0i64, h.positive_delta.iter());
        for span in &h.positive_span {
            // The first offset is the first index; the others, the gap since the last span.
            idx += span.offset;
            for _ in 0..span.length {
                count += deltas.next().unwrap();
                assert!(count >= 0);
                if count > 0 {
                    buckets.insert(idx, count as u64);
                }
                idx += 1;
            }
        }
        assert!(deltas.next().is_none(), "deltas beyond the spans");
        // Classic buckets ride along, cumulative, ending at +Inf with the count.
        let last = h.bucket.last().unwrap();
        assert_eq!(last.upper_bound, f64::INFINITY);
        assert_eq!(last.cumulative_count, h.sample_count);
        (h.sample_count, h.zero_count, buckets)
    }

    #[test]
    fn native_index_matches_bucket_bounds() {
        // Powers of two are upper bounds: 1 s is the top of bucket 0, 0.5 s of bucket -8.
        assert_eq!(native_index(1.0), 0);
        assert_eq!(native_index(1.0000001), 1);
        assert_eq!(native_index(0.5), -8);
        assert_eq!(native_index(2.0), 8);
        // Every ns value from 1 ns to 1 h (a geometric sweep) lies in its bucket's bounds.
        let mut ns = 1u64;
        while ns <= 3_600_000_000_000 {
            let secs = ns as f64 / 1e9;
            let i = native_index(secs);
            let (lo, hi) = native_bucket_bounds(i);
            assert!(
                lo < secs && secs <= hi,
                "{ns} ns in bucket {i} ({lo}, {hi}]"
            );
            ns = ns + 1 + ns / 97;
        }
        let e = native_bucket_error();
        assert!((e - 0.0905).abs() < 1e-4, "{e}");
        assert_eq!(NATIVE_ZERO_THRESHOLD, 2f64.powi(-128));
        let (lo, hi) = native_bucket_bounds(-53);
        assert!((hi / lo - 1.0 - e).abs() < 1e-12);
    }

    #[test]
    fn native_buckets_count_every_call_once() {
        // 0 ns goes to the zero bucket; 10 ms sleeps (10.08 ms) to bucket -53.
        let values = [
            0,
            1,
            1,
            2,
            999,
            1_000,
            10_080_000,
            10_080_000,
            7_000_000_000,
        ];
        let (count, zero, buckets) = native_of(&values);
        assert_eq!(count, values.len() as u64);
        assert_eq!(zero, 1);
        assert_eq!(zero + buckets.values().sum::<u64>(), count);
        assert_eq!(buckets[&native_index(0.01008)], 2);
        assert_eq!(native_index(0.01008), -53);
        assert_eq!(buckets[&native_index(1e-9)], 2);
        // Gaps of 1-2 empty buckets are zeros in a span; longer ones start a new span.
        let (spans, deltas) = spans_and_deltas(&[(-5, 3), (-3, 1), (0, 4), (4, 2), (5, 2)]);
        assert_eq!(spans, vec![(-5, 6), (3, 2)]);
        assert_eq!(deltas, vec![3, -3, 1, -1, 0, 4, -2, 0]);
        assert_eq!(spans_and_deltas(&[]), (vec![(0, 0)], vec![]));
    }

    proptest::proptest! {
        /// Native histograms of two machines add up to the native histogram of all their
        /// calls together, bucket by bucket: merging across a fleet is exact.
        #[test]
        fn native_buckets_merge_exactly(
            a in proptest::collection::vec(0u64..5_000_000_000, 0..300),
            b in proptest::collection::vec(0u64..5_000_000_000, 1..300),
        ) {
            let (ca, za, ba) = native_of(&a);
            let (cb, zb, bb) = native_of(&b);
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            let (c, z, merged) = native_of(&all);
            let mut sum = ba.clone();
            for (i, n) in bb {
                *sum.entry(i).or_default() += n;
            }
            proptest::prop_assert_eq!(c, ca + cb);
            proptest::prop_assert_eq!(z, za + zb);
            proptest::prop_assert_eq!(merged, sum);
        }
    }

    #[test]
    fn rows_of_one_label_set_add_up_exactly() {
        // Two processes of one name are one series: its buckets are those of all the calls.
        let values: Vec<u64> = (0..500u64).map(|k| k * k * 997 % 50_000_000).collect();
        let families_of = |group| {
            let bytes = render(
                &snap_by(group, &values),
                SelfStats::default(),
                Format::Protobuf,
                100,
            );
            let fam = families(&bytes).remove(0);
            assert_eq!(fam.metric.len(), 1);
            fam.metric[0].histogram.clone().unwrap()
        };
        let (by_syscall, by_process) =
            (families_of(GroupBy::Syscall), families_of(GroupBy::Process));
        assert_eq!(by_process.sample_count, 500);
        assert_eq!(by_process, by_syscall);
    }

    #[test]
    fn protobuf_has_every_family_of_the_text_format() {
        let values = [1_000u64, 2_000, 30_000];
        let bytes = render(
            &snap_of(&values),
            SelfStats::default(),
            Format::Protobuf,
            100,
        );
        let names: Vec<String> = families(&bytes).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "syslat_syscall_duration_seconds",
                "syslat_syscall_runq_seconds",
                "syslat_syscall_time_seconds_total",
                "syslat_syscall_errors_total",
                "syslat_events_lost_total",
                "syslat_events_unpaired_total",
                "syslat_traced_syscalls_total",
                "syslat_self_cpu_seconds_total",
                "syslat_self_resident_memory_bytes",
            ]
        );
        // The text formats carry the classic buckets alone.
        let text = String::from_utf8(render(
            &snap_of(&values),
            SelfStats::default(),
            Format::Text,
            100,
        ))
        .unwrap();
        assert!(text.contains(r#"_bucket{le="0.000025",syscall="clock_nanosleep"} 2"#));
    }

    #[test]
    fn accept_header_negotiation() {
        use Format::*;
        for (accept, want) in [
            // Prometheus 2.42 with --enable-feature=native-histograms.
            (
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                Protobuf,
            ),
            // Prometheus 2.42 without it.
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                OpenMetrics,
            ),
            ("text/plain", Text),
            ("*/*", Text),
            ("", Text),
            ("text/html,application/xhtml+xml", Text),
            ("application/openmetrics-text; version=1.0.0", OpenMetrics),
            // Protobuf of another message, or not delimited, is not ours.
            (
                "application/vnd.google.protobuf;proto=foo;encoding=delimited",
                Text,
            ),
            (
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily",
                Text,
            ),
            // q decides, then order; q=0 refuses.
            ("text/plain;q=0.9, application/openmetrics-text;q=0.5", Text),
            ("application/openmetrics-text;q=0, text/plain;q=0.1", Text),
            (
                "application/vnd.google.protobuf; proto=\"io.prometheus.client.MetricFamily\"; encoding=delimited; q=0.6, text/plain;q=0.5",
                Protobuf,
            ),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept}");
        }
    }
}
