//! The HdrHistogram interval log format (the one Java's `HistogramLogWriter` writes and
//! `HistogramLogProcessor`, the Python `hdrh` and other ports read): a header, then one
//! tagged line per series per interval:
//! `Tag=<key>,<start s since BaseTime>,<length s>,<max ms>,<V2 compressed base64 histogram>`.
//! Histograms are in ns; the max column is in ms, like Java's default unit ratio (1e6).

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::aggregate::{ContainerInfo, GroupBy, Row, RowKey, Snapshot};

/// The header line that says how the log's rows are keyed, so that tags read back
/// unambiguously (`#[syslat rows by: thread]`). Readers of the format skip `#` lines.
const BY_LINE: &str = "#[syslat rows by: ";

/// The header, written once at the start of a log. `base_unix_ns` is the recording's start;
/// `group` how its rows are keyed.
pub fn header(base_unix_ns: u64, group: GroupBy) -> String {
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
    let _ = writeln!(h, "{BY_LINE}{}]", super::jsonl::by_name(group));
    h.push_str("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
    h
}

/// The grouping a header line states, if it is the line [`header`] writes for it.
pub fn group_of_line(line: &str) -> Option<GroupBy> {
    let by = line.strip_prefix(BY_LINE)?.strip_suffix(']')?;
    super::jsonl::group_named(by)
}

/// Bytes written `%XX` in a name: those a log line cannot hold in a tag (`,`, spaces and
/// controls; `=`, which some readers split on), non-ASCII ones, and `%` itself. Dots stay:
/// tags are read from the right, where only the pid, tid, id and syscall are, none of
/// which holds a dot.
const NAME: &AsciiSet = &CONTROLS.add(b' ').add(b',').add(b'=').add(b'%');

/// The fields that are never names (syscall, pid, id) hold no dot either.
const FIELD: &AsciiSet = &NAME.add(b'.');

/// The tag field of a folded row (`other.syscall`).
const OTHER: &str = "other";

/// The name field of a process whose name is unknown.
const UNKNOWN: &str = "?";

/// `name` as a tag field: escaped, and a name that reads as a marker (`other`; for a
/// process name also `?`) with its first byte escaped too, so that it reads back as itself.
fn name_field(name: &str, markers: &[&str]) -> String {
    let s = utf8_percent_encode(name, NAME).to_string();
    if s == OTHER || markers.contains(&s.as_str()) {
        format!("%{:02X}{}", s.as_bytes()[0], &s[1..])
    } else {
        s
    }
}

/// A tag field read back.
fn unescape(field: &str) -> String {
    percent_decode_str(field).decode_utf8_lossy().into_owned()
}

/// The tag of a row, derived from its key: the syscall name by syscall, `comm.pid.syscall`
/// by process (`?` for an unknown name), `comm.pid.tid.syscall` by thread, `path.syscall`
/// by cgroup, `name.id.syscall` by container (the full id; `-` for the host and unknown
/// rows, named `-` and `?`), `other.syscall` for folded rows. Names are escaped
/// (see [`NAME`]; a name `other`, or a process name `?`, has its first byte escaped), so every name
/// reads back as itself.
pub fn tag(row: &Row) -> String {
    let sys = utf8_percent_encode(&row.syscall, FIELD);
    match &row.key {
        RowKey::Syscall => sys.to_string(),
        RowKey::Other => format!("{OTHER}.{sys}"),
        RowKey::Process { pid, comm } => {
            let comm = comm
                .as_deref()
                .map_or_else(|| UNKNOWN.into(), |c| name_field(c, &[UNKNOWN]));
            format!("{comm}.{pid}.{sys}")
        }
        RowKey::Thread { pid, tid, comm } => {
            let comm = comm
                .as_deref()
                .map_or_else(|| UNKNOWN.into(), |c| name_field(c, &[UNKNOWN]));
            format!("{comm}.{pid}.{tid}.{sys}")
        }
        RowKey::Cgroup { path } => format!("{}.{sys}", name_field(path, &[])),
        RowKey::Container(c) => {
            let id = if c.id.is_empty() {
                "-".to_string()
            } else {
                utf8_percent_encode(&c.id, FIELD).to_string()
            };
            format!("{}.{id}.{sys}", name_field(&c.name, &[]))
        }
    }
}

/// The syscall name and the key a tag stands for, in a log whose rows are keyed by
/// `group` (from its header; `None` for logs without that line, written before syslat
/// said it: their tags are the syscall, `comm.pid.syscall` and `name.id.syscall`). A tag
/// that does not fit is the syscall's row, named by its last field.
pub fn key_of_tag(tag: &str, group: Option<GroupBy>) -> (String, RowKey) {
    let (rest, sys) = match tag.rsplit_once('.') {
        Some((rest, sys)) => (Some(rest), unescape(sys)),
        None => (None, unescape(tag)),
    };
    let Some(rest) = rest else {
        return (sys, RowKey::Syscall);
    };
    let comm = |c: &str| (c != UNKNOWN).then(|| unescape(c));
    let num = |s: &str| s.parse::<u32>().ok();
    let key = match group {
        _ if rest == OTHER && group != Some(GroupBy::Syscall) => Some(RowKey::Other),
        Some(GroupBy::Syscall) => None,
        Some(GroupBy::Process) => rest.rsplit_once('.').and_then(|(c, pid)| {
            Some(RowKey::Process {
                pid: num(pid)?,
                comm: comm(c),
            })
        }),
        Some(GroupBy::Thread) => rest.rsplit_once('.').and_then(|(rest, tid)| {
            let (c, pid) = rest.rsplit_once('.')?;
            Some(RowKey::Thread {
                pid: num(pid)?,
                tid: num(tid)?,
                comm: comm(c),
            })
        }),
        Some(GroupBy::Cgroup) => Some(RowKey::Cgroup {
            path: unescape(rest),
        }),
        Some(GroupBy::Container) => rest.rsplit_once('.').map(|(name, id)| {
            RowKey::Container(ContainerInfo {
                id: if id == "-" {
                    String::new()
                } else {
                    unescape(id)
                },
                name: unescape(name),
                ..ContainerInfo::default()
            })
        }),
        None => legacy_key(rest),
    };
    (sys, key.unwrap_or(RowKey::Syscall))
}

/// The key of a tag (less its syscall) of a log written before tags were escaped: a
/// container's `name.id` (dots in the name were written `_`), or a process's `comm.pid`
/// (the name as it was, dots included).
fn legacy_key(rest: &str) -> Option<RowKey> {
    let (head, last) = rest.rsplit_once('.')?;
    let is_id = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if (last == "-" || is_id(last)) && !head.is_empty() && !head.contains('.') {
        return Some(RowKey::Container(ContainerInfo {
            id: if last == "-" { "" } else { last }.to_string(),
            name: if head == "_" { "" } else { head }.to_string(),
            ..ContainerInfo::default()
        }));
    }
    Some(RowKey::Process {
        pid: last.parse().ok()?,
        comm: (head != UNKNOWN).then(|| head.to_string()),
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
            tag(row),
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
    use crate::aggregate::ContainerInfo;
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
        let text = header(base, GroupBy::Syscall) + &interval(&snap, base);
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

    fn row(key: RowKey) -> Row {
        Row::new(0, key, crate::aggregate::Series::default())
    }

    fn process(pid: u32, comm: Option<&str>) -> RowKey {
        RowKey::Process {
            pid,
            comm: comm.map(str::to_string),
        }
    }

    #[test]
    fn tags_escape_what_a_log_line_cannot_hold() {
        assert_eq!(
            tag(&row(process(42, Some("my app,x=1%")))),
            "my%20app%2Cx%3D1%25.42.read"
        );
        assert_eq!(
            tag(&row(process(42, Some("caf\u{e9}\t")))),
            "caf%C3%A9%09.42.read"
        );
        // Markers: an unknown name is `?`, a name that is `?` or `other` is escaped.
        assert_eq!(tag(&row(process(1, None))), "?.1.read");
        assert_eq!(tag(&row(process(1, Some("?")))), "%3F.1.read");
        assert_eq!(tag(&row(process(1, Some("other")))), "%6Fther.1.read");
        assert_eq!(tag(&row(RowKey::Other)), "other.read");
        for r in [
            process(1, Some("other")),
            process(1, Some("?")),
            process(1, None),
        ] {
            let t = tag(&row(r.clone()));
            assert_eq!(key_of_tag(&t, Some(GroupBy::Process)), ("read".into(), r));
            assert!(hdrhistogram::serialization::interval_log::Tag::new(&t).is_some());
        }
    }

    #[test]
    fn every_grouping_tags_its_whole_key() {
        // On main, thread and cgroup rows were tagged with the syscall alone, and a
        // dotted name was read back as a pid.
        let thread = RowKey::Thread {
            pid: 7,
            tid: 8,
            comm: Some("php-fpm8.2".into()),
        };
        let cgroup = RowKey::Cgroup {
            path: "system.slice/nginx.service".into(),
        };
        let web = RowKey::Container(ContainerInfo {
            id: "ab".repeat(32),
            name: "we b.1,x=\u{1b}".into(),
            ..ContainerInfo::default()
        });
        let cases = [
            (GroupBy::Syscall, RowKey::Syscall, "read".to_string()),
            (
                GroupBy::Process,
                process(9, Some("python3.11")),
                "python3.11.9.read".into(),
            ),
            (GroupBy::Thread, thread, "php-fpm8.2.7.8.read".into()),
            (
                GroupBy::Cgroup,
                cgroup,
                "system.slice/nginx.service.read".into(),
            ),
            (
                GroupBy::Cgroup,
                RowKey::Cgroup {
                    path: String::new(),
                },
                ".read".into(),
            ),
            (
                GroupBy::Container,
                web,
                format!("we%20b.1%2Cx%3D%1B.{}.read", "ab".repeat(32)),
            ),
            (
                GroupBy::Container,
                RowKey::Container(ContainerInfo::host()),
                "-.-.read".into(),
            ),
            (
                GroupBy::Container,
                RowKey::Container(ContainerInfo::unknown()),
                "?.-.read".into(),
            ),
            (GroupBy::Cgroup, RowKey::Other, "other.read".into()),
            (
                GroupBy::Cgroup,
                RowKey::Cgroup {
                    path: "other".into(),
                },
                "%6Fther.read".into(),
            ),
        ];
        for (group, key, want) in cases {
            let t = tag(&row(key.clone()));
            assert_eq!(t, want);
            assert_eq!(
                key_of_tag(&t, Some(group)),
                ("read".to_string(), key),
                "{t}"
            );
        }
    }

    #[test]
    fn the_header_says_the_grouping() {
        for g in [GroupBy::Syscall, GroupBy::Thread, GroupBy::Container] {
            let h = header(0, g);
            assert_eq!(h.lines().find_map(group_of_line), Some(g));
        }
        assert_eq!(group_of_line("#[syslat rows by: nonsense]"), None);
    }

    #[test]
    fn logs_without_the_grouping_line_read_as_before() {
        let legacy = |t: &str| key_of_tag(t, None).1;
        assert_eq!(legacy("read"), RowKey::Syscall);
        // The name as it was, dots included: read from the right.
        assert_eq!(
            legacy("python3.11.42.read"),
            process(42, Some("python3.11"))
        );
        assert_eq!(legacy("?.42.read"), process(42, None));
        let id = "ab".repeat(32);
        let c = legacy(&format!("we_b.{id}.read"));
        assert_eq!(
            c,
            RowKey::Container(ContainerInfo {
                id,
                name: "we_b".into(),
                ..ContainerInfo::default()
            })
        );
        assert_eq!(legacy("-.-.read"), RowKey::Container(ContainerInfo::host()));
        assert_eq!(legacy("x.y.read"), RowKey::Syscall, "no pid, no container");
    }
}
