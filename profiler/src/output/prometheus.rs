//! Prometheus exposition of a snapshot, through the `prometheus-client` crate: OpenMetrics
//! text, or the classic Prometheus text format (the same bytes without the OpenMetrics-only
//! `# EOF`/`# UNIT` lines, and with counter families named after their `_total` samples).
//!
//! Metrics (base units, counters end in `_total`):
//! - `syslat_syscall_duration_seconds{syscall[,comm]}` histogram, buckets 1 µs to 10 s;
//! - `syslat_syscall_errors_total{syscall,errno[,comm]}`;
//! - `syslat_events_lost_total{reason}` (`dropped`: event buffer full, `untimed`: no slot),
//!   `syslat_events_unpaired_total`;
//! - `syslat_self_cpu_seconds_total`, `syslat_self_resident_memory_bytes`,
//!   `syslat_traced_syscalls_total`.

use std::collections::BTreeMap;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet, text},
    metrics::MetricType,
    registry::{Registry, Unit},
};

use crate::aggregate::{Series, Snapshot};

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
type Labelled = BTreeMap<Vec<(String, String)>, Series>;

#[derive(Debug)]
struct SnapshotCollector {
    series: Labelled,
    errors: BTreeMap<Vec<(String, String)>, u64>,
    lost_dropped: u64,
    lost_untimed: u64,
    unpaired: u64,
    traced: u64,
    me: SelfStats,
}

impl SnapshotCollector {
    fn new(snap: &Snapshot, me: SelfStats, max_series: usize) -> Self {
        let mut series: Labelled = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for row in &snap.rows {
            let mut labels = vec![("syscall".to_string(), row.syscall.clone())];
            if row.pid.is_some() {
                labels.push((
                    "comm".to_string(),
                    row.comm.clone().unwrap_or_else(|| "?".into()),
                ));
            }
            if !series.contains_key(&labels) && series.len() >= max_series {
                // Cardinality cap: fold the rest into one exact "other" series.
                labels = vec![("syscall".to_string(), "other".to_string())];
                if row.pid.is_some() {
                    labels.push(("comm".to_string(), "other".to_string()));
                }
            }
            series.entry(labels.clone()).or_default().merge(&row.series);
            for (e, n) in &row.series.errnos {
                let mut l = labels.clone();
                l.push(("errno".to_string(), crate::syscalls::errno_name(*e)));
                *errors.entry(l).or_default() += n;
            }
        }
        SnapshotCollector {
            series,
            errors,
            lost_dropped: snap.loss.dropped,
            lost_untimed: snap.loss.no_storage,
            unpaired: snap.loss.unpaired,
            traced: snap.events,
            me,
        }
    }
}

/// Non-cumulative bucket counts of `s` for `bounds` (seconds), the last one `+Inf`.
fn bucket_counts(s: &Series, bounds: &[f64]) -> Vec<(f64, u64)> {
    let mut counts = vec![0u64; bounds.len() + 1];
    for v in s.hist.histogram().iter_recorded() {
        let secs = v.value_iterated_to() as f64 / 1e9;
        let i = bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(bounds.len());
        counts[i] += v.count_at_value();
    }
    bounds
        .iter()
        .copied()
        .chain([f64::MAX])
        .zip(counts)
        .collect()
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
        for (labels, s) in &self.series {
            m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
                s.total_ns as f64 / 1e9,
                s.count(),
                &bucket_counts(s, &bounds),
                None,
            )?;
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
            "Completed calls not counted: event buffer full (dropped) or no per-thread slot (untimed)",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("dropped", self.lost_dropped),
            ("untimed", self.lost_untimed),
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

/// The exposition of `snap`: OpenMetrics when `openmetrics`, else Prometheus text 0.0.4.
/// At most `max_series` label sets per family; the rest fold into an exact `other`.
pub fn render(snap: &Snapshot, me: SelfStats, openmetrics: bool, max_series: usize) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(snap, me, max_series)));
    let mut out = String::new();
    if openmetrics {
        text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        return out;
    }
    text::encode_registry(&mut out, &registry).expect("writing to a String cannot fail");
    to_prometheus_text(&out)
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
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, GroupBy, LossCounters};

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
            });
        }
        a.snapshot(
            0,
            0,
            LossCounters {
                dropped: 4,
                ..Default::default()
            },
            &|p| Some(format!("app{}", p % 2)),
        )
    }

    /// A snapshot with several syscalls, processes, errnos and values on bucket bounds.
    fn rich() -> Snapshot {
        let mut a = Aggregator::new(GroupBy::Process);
        let mut i = 0u64;
        for (nr, ns, ret) in [
            (0u32, 1_000u64, 0i64),
            (0, 999, -11),
            (0, 2_500, 0),
            (1, 10_000_000, 0),
            (1, 10_000_001, 0),
            (2, 0, -2),
            (2, 7_000_000_000_000, 0),
            (230, 10_080_000, 0),
        ] {
            for _ in 0..(1 + i % 3) {
                a.record(&SyscallEvent {
                    duration_ns: ns + i,
                    ret,
                    tgid: 7 + (i as u32 % 2),
                    tid: 7,
                    nr,
                    cgroup: 0,
                });
            }
            i += 1;
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
            let got = render(&rich(), me, openmetrics, 100);
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
        let text = render(&snap(GroupBy::Syscall), SelfStats::default(), false, 100);
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
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let text = render(&snap(GroupBy::Syscall), SelfStats::default(), true, 100);
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert!(
            text.contains("# UNIT syslat_syscall_duration_seconds seconds"),
            "{text}"
        );
    }

    #[test]
    fn by_process_uses_comm_and_caps_cardinality() {
        let text = render(&snap(GroupBy::Process), SelfStats::default(), false, 1);
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
