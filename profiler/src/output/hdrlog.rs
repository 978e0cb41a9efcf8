//! The HdrHistogram interval log format (the one Java's `HistogramLogWriter` writes and
//! `HistogramLogProcessor`, the Python `hdrh` and other ports read): a header, then one
//! tagged line per series per interval:
//! `Tag=<key>,<start s since BaseTime>,<length s>,<max ms>,<V2 compressed base64 histogram>`.
//! Histograms are in ns; the max column is in ms, like Java's default unit ratio (1e6).

use std::fmt::Write as _;

use crate::aggregate::{GroupBy, Row, Snapshot};

/// The header, written once at the start of a log. `base_unix_ns` is the recording's start.
pub fn header(base_unix_ns: u64) -> String {
    let secs = base_unix_ns as f64 / 1e9;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "#[Logged with syslat {}: syscall latencies in nanoseconds]",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(h, "#[Histogram log format version 1.3]");
    let _ = writeln!(h, "#[StartTime: {secs:.3} (seconds since epoch)]");
    let _ = writeln!(h, "#[BaseTime: {secs:.3} (seconds since epoch)]");
    h.push_str("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
    h
}

/// The tag of a row: the syscall name, `comm.pid.syscall` by process, `comm.pid.tid.syscall`
/// by thread, `other.syscall` for folded rows (tags
/// may not hold commas, spaces or `=`, so those are replaced in names).
pub fn tag(row: &Row, group: GroupBy) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c == ',' || c == '=' || c.is_whitespace() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    match (group, row.pid) {
        (GroupBy::Process, Some(pid)) => {
            format!(
                "{}.{pid}.{}",
                clean(row.comm.as_deref().unwrap_or("?")),
                row.syscall
            )
        }
        _ => row.syscall.clone(),
    }
}

/// One interval: a line per row, relative to `base_unix_ns`.
pub fn interval(snap: &Snapshot, base_unix_ns: u64) -> String {
    let start = snap.start_unix_ns.saturating_sub(base_unix_ns) as f64 / 1e9;
    let len = snap.duration_ns as f64 / 1e9;
    let mut out = String::new();
    for row in &snap.rows {
        let _ = writeln!(
            out,
            "Tag={},{start:.3},{len:.3},{:.3},{}",
            tag(row, snap.group),
            row.series.max_ns as f64 / 1e6,
            row.series.hist.to_base64()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, LatencyHist, LossCounters};

    #[test]
    fn log_parses_with_counts_per_tag() {
        let mut a = Aggregator::new(GroupBy::Syscall);
        for i in 0..100u64 {
            a.record(&SyscallEvent {
                duration_ns: 1000 + i,
                ret: 0,
                tgid: 1,
                tid: 1,
                nr: 0,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        a.record(&SyscallEvent {
            duration_ns: 5_000_000,
            ret: 0,
            tgid: 1,
            tid: 1,
            nr: 1,
            cgroup: 0,
            ..SyscallEvent::default()
        });
        let base = 1_700_000_000_000_000_000;
        let snap = a.snapshot(
            base + 2_000_000_000,
            1_000_000_000,
            LossCounters::default(),
            &|_| None,
        );
        let text = header(base) + &interval(&snap, base);
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(text.as_bytes()) {
            if let LogEntry::Interval(h) = entry.unwrap() {
                let hist = LatencyHist::from_base64(h.encoded_histogram()).unwrap();
                seen.push((
                    h.tag().unwrap().as_str().to_string(),
                    hist.count(),
                    h.start_timestamp().as_secs(),
                ));
            }
        }
        // Rows come largest total first: write (5 ms) before read.
        assert_eq!(
            seen,
            vec![("write".to_string(), 1, 2), ("read".to_string(), 100, 2)]
        );
    }

    #[test]
    fn tags_are_clean() {
        let mut a = Aggregator::new(GroupBy::Process);
        a.record(&SyscallEvent {
            duration_ns: 1,
            ret: 0,
            tgid: 42,
            tid: 42,
            nr: 0,
            cgroup: 0,
            ..SyscallEvent::default()
        });
        let snap = a.snapshot(0, 0, LossCounters::default(), &|_| {
            Some("my app,x=1".into())
        });
        assert_eq!(tag(&snap.rows[0], GroupBy::Process), "my_app_x_1.42.read");
    }
}
