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
/// by thread, `other.syscall` for folded rows, `name.id.syscall` by container (the full
/// id; `-` for the host and unknown rows, named `-` and `?`). Tags may not hold commas,
/// spaces or `=`, so those (and control characters; in container names also dots) are
/// replaced in names by `_`.
pub fn tag(row: &Row, group: GroupBy) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c == ',' || c == '=' || c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    if let Some(c) = &row.container {
        let id = if c.id.is_empty() { "-" } else { &c.id };
        let name = if c.name.is_empty() { "_" } else { &c.name };
        return format!("{}.{id}.{}", clean(name).replace('.', "_"), row.syscall);
    }
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

/// The container a `name.id.syscall` tag names (the id 64 hex digits, or `-`), if it is
/// one; the name and image are not in tags beyond the cleaned name.
pub fn container_of_tag(tag: &str) -> Option<crate::aggregate::ContainerInfo> {
    let mut f = tag.split('.');
    let (name, id, _syscall) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some() || name.is_empty() {
        return None;
    }
    let id = match id {
        "-" => "",
        id if crate::collect::container::is_id(id) => id,
        _ => return None,
    };
    Some(crate::aggregate::ContainerInfo {
        id: id.to_string(),
        name: if name == "_" {
            String::new()
        } else {
            name.to_string()
        },
        ..Default::default()
    })
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

    #[test]
    fn container_tags_read_back() {
        use crate::aggregate::ContainerInfo;
        let id = "ab".repeat(32);
        let mut a = Aggregator::new(GroupBy::Container);
        for key in [0u32, 2] {
            a.record(&SyscallEvent {
                duration_ns: 1 + u64::from(key),
                ret: 0,
                tgid: 1,
                tid: 1,
                nr: 0,
                cgroup: key,
                ..SyscallEvent::default()
            });
        }
        let info = |k: u32| {
            Some(match k {
                0 => ContainerInfo::host(),
                _ => ContainerInfo {
                    id: id.clone(),
                    name: "we b.1,x=\u{1b}".into(),
                    image: "img".into(),
                    pod_uid: None,
                },
            })
        };
        let snap = a.snapshot_with(0, 0, LossCounters::default(), &|_| None, &info);
        let tags: Vec<String> = snap
            .rows
            .iter()
            .map(|r| tag(r, GroupBy::Container))
            .collect();
        assert_eq!(
            tags,
            vec![format!("we_b_1_x__.{id}.read"), "-.-.read".to_string()]
        );
        let back = container_of_tag(&tags[0]).unwrap();
        assert_eq!(
            (back.id.as_str(), back.name.as_str()),
            (id.as_str(), "we_b_1_x__")
        );
        assert_eq!(container_of_tag(&tags[1]), Some(ContainerInfo::host()));
        // Process tags are no container's.
        assert_eq!(container_of_tag("cat.42.read"), None);
        assert_eq!(container_of_tag("read"), None);
    }
}
