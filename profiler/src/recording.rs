//! Reads syslat recordings back: JSON Lines (`summary` and `interval` lines, any mix; `slow`
//! lines are skipped) and HdrHistogram interval logs. Pure: no kernel, no output. Every
//! histogram is decoded from its `hdr` field, so merging is exact (histograms are added,
//! percentiles are never averaged).
#![forbid(unsafe_code)]

use std::{collections::BTreeMap, path::Path};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use crate::{
    aggregate::{
        GroupBy, KeyId, LatencyHist, LossCounters, OffCpu, Row, Series, Snapshot, stacks::StackSet,
    },
    output::{
        hdrlog,
        jsonl::{JsonLine, JsonRow, SCHEMA_VERSION},
    },
    syscalls,
};

/// Why a file could not be read as a recording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordingError {
    /// Missing or unreadable.
    #[error("cannot read {path}: {err}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        err: String,
    },
    /// Nothing in it.
    #[error("{0} is empty")]
    Empty(String),
    /// Not JSON Lines from syslat, nor an HdrHistogram log.
    #[error("{path} is not a syslat recording ({why})")]
    NotARecording {
        /// The path.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// A newer schema.
    #[error(
        "{path}: schema version {version} is not supported (this syslat reads versions 1 to {SCHEMA_VERSION})"
    )]
    Version {
        /// The path.
        path: String,
        /// The version found.
        version: u64,
    },
}

/// One summary or interval.
#[derive(Clone, Debug, Default)]
pub struct Part {
    /// Start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Length, ns.
    pub duration_ns: u64,
    /// Lost events reported for it.
    pub lost_events: u64,
    /// Whether its rows hold the latency anatomy (JSON schema version 2 and later; not a
    /// version 1 line, nor an hdrlog).
    pub anatomy: bool,
    /// Its rows (keyed as recorded).
    pub rows: Vec<Row>,
    /// Its stacks (`record --stacks`, schema version 3 summaries).
    pub stacks: Option<StackSet>,
}

/// A whole recording.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// Summary lines (one per recording or run).
    pub summaries: Vec<Part>,
    /// Interval lines, in file order.
    pub intervals: Vec<Part>,
    /// Problems that did not stop the reading (a truncated last line).
    pub warnings: Vec<String>,
}

/// Reads `path`.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| RecordingError::Io {
        path: name.clone(),
        err: e.to_string(),
    })?;
    parse(&name, &bytes)
}

/// Parses the bytes of a recording called `name`.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Recording, RecordingError> {
    let not = |why: &str| RecordingError::NotARecording {
        path: name.to_string(),
        why: why.to_string(),
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(RecordingError::Empty(name.to_string()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| not("not text"))?;
    let first = text.trim_start();
    if first.starts_with('{') {
        parse_jsonl(name, text)
    } else if first.starts_with("#[")
        || first.starts_with("Tag=")
        || first.starts_with("\"StartTimestamp\"")
    {
        parse_hdrlog(name, text)
    } else {
        Err(not("neither JSON Lines nor an HdrHistogram log"))
    }
}

fn parse_jsonl(name: &str, text: &str) -> Result<Recording, RecordingError> {
    let not = |why: String| RecordingError::NotARecording {
        path: name.to_string(),
        why,
    };
    let mut rec = Recording::default();
    let lines: Vec<&str> = text.lines().collect();
    let complete_end = text.ends_with('\n');
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) if i + 1 == lines.len() && !complete_end => {
                rec.warnings.push(format!(
                    "{name}: ignoring the truncated last line {} ({e})",
                    i + 1
                ));
                continue;
            }
            Err(e) => return Err(not(format!("line {}: {e}", i + 1))),
        };
        let kind = v["type"].as_str().unwrap_or("").to_string();
        match kind.as_str() {
            "summary" | "interval" => {}
            "slow" | "slow_suppressed" => continue,
            _ => return Err(not(format!("line {}: no syslat record type", i + 1))),
        }
        let version = v["version"]
            .as_u64()
            .ok_or_else(|| not(format!("line {}: no version", i + 1)))?;
        if version == 0 || version > u64::from(SCHEMA_VERSION) {
            return Err(RecordingError::Version {
                path: name.to_string(),
                version,
            });
        }
        // The failing field's path (`rows[0].count`) goes into the message.
        let part = serde_path_to_error::deserialize::<_, JsonLine<'_>>(v)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))
            .and_then(part_of)
            .map_err(|why| not(format!("line {}: {why}", i + 1)))?;
        if kind == "summary" {
            rec.summaries.push(part);
        } else {
            rec.intervals.push(part);
        }
    }
    if rec.summaries.is_empty() && rec.intervals.is_empty() {
        return Err(not("no summary or interval line".into()));
    }
    Ok(rec)
}

/// A row's anatomy (schema version 2; zero in version 1 files): totals, switches, and the
/// per-call histograms when present, each holding the row's `count` calls.
fn off_cpu_of(r: &JsonRow) -> Result<OffCpu, String> {
    let hist = |k: &str, b64: &Option<String>| -> Result<Option<LatencyHist>, String> {
        let Some(b64) = b64 else {
            return Ok(None);
        };
        let h = LatencyHist::from_base64(b64).map_err(|e| format!("{k}: {e}"))?;
        if h.count() != r.count {
            return Err(format!(
                "{k} holds {} calls, count says {}",
                h.count(),
                r.count
            ));
        }
        Ok(Some(h))
    };
    let hists = match (
        hist("runq_hdr", &r.runq_hdr)?,
        hist("blocked_hdr", &r.blocked_hdr)?,
    ) {
        (Some(r), Some(b)) => Some((r, b)),
        (None, None) => None,
        _ => return Err("runq_hdr and blocked_hdr come together".into()),
    };
    let involuntary = r.involuntary_switches.min(r.switches);
    Ok(OffCpu::restore(
        [
            r.runq_total_ns,
            r.blocked_total_ns,
            r.switches - involuntary,
            involuntary,
        ],
        hists,
    ))
}

/// A row read back: its key from its key fields, its series from `hdr` and the exact totals.
fn row_of(r: &JsonRow) -> Result<Row, String> {
    let syscall = &r.syscall;
    let hist = LatencyHist::from_base64(&r.hdr).map_err(|e| format!("{syscall}: {e}"))?;
    if hist.count() != r.count {
        return Err(format!(
            "{syscall}: hdr holds {} calls, count says {}",
            hist.count(),
            r.count
        ));
    }
    let mut series = Series {
        hist,
        ..Series::default()
    };
    series.total_ns = r.total_ns;
    series.errors = r.errors;
    series.min_ns = r.min_ns;
    series.max_ns = r.max_ns;
    series.off_cpu = off_cpu_of(r).map_err(|e| format!("{syscall}: {e}"))?;
    for (k, n) in &r.errnos {
        if let Some(e) = syscalls::errno_number(k) {
            series.errnos.insert(e, *n);
        }
    }
    let nr = if r.nr == u32::MAX {
        syscalls::number(syscall).unwrap_or(u32::MAX)
    } else {
        r.nr
    };
    Ok(Row {
        nr,
        syscall: syscall.clone(),
        key: r.key(),
        series: series.into(),
    })
}

fn part_of(line: JsonLine<'_>) -> Result<Part, String> {
    let rows = line.rows.iter().map(row_of).collect::<Result<_, _>>()?;
    Ok(Part {
        start_unix_ns: line.start_unix_ns,
        duration_ns: line.duration_ns,
        lost_events: line.lost_events,
        anatomy: line.version >= 2,
        rows,
        stacks: line.stacks.map(|s| StackSet {
            rows: s.into_owned(),
        }),
    })
}

fn parse_hdrlog(name: &str, text: &str) -> Result<Recording, RecordingError> {
    let not = |why: String| RecordingError::NotARecording {
        path: name.to_string(),
        why,
    };
    let mut rec = Recording::default();
    let mut base_ns: u64 = 0;
    let mut group = None;
    for line in text.lines() {
        group = group.or_else(|| hdrlog::group_of_line(line));
        if let Some(rest) = line.strip_prefix("#[StartTime: ") {
            let secs: f64 = rest
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            base_ns = (secs * 1e9) as u64;
        }
    }
    // One part per distinct interval start, rows by tag.
    let mut parts: BTreeMap<u64, Part> = BTreeMap::new();
    let complete_end = text.ends_with('\n');
    for (i, entry) in IntervalLogIterator::new(text.as_bytes()).enumerate() {
        let h = match entry {
            Ok(LogEntry::Interval(h)) => h,
            Ok(_) => continue,
            Err(e) if !complete_end => {
                rec.warnings.push(format!(
                    "{name}: ignoring the truncated end of the log ({e:?})"
                ));
                break;
            }
            Err(e) => return Err(not(format!("entry {}: {e:?}", i + 1))),
        };
        let hist = match LatencyHist::from_base64(h.encoded_histogram()) {
            Ok(hist) => hist,
            Err(e) if !complete_end => {
                rec.warnings
                    .push(format!("{name}: ignoring the truncated last line ({e})"));
                break;
            }
            Err(e) => return Err(not(e.to_string())),
        };
        let tag = h.tag().map(|t| t.as_str()).unwrap_or_default();
        let (syscall, key) = hdrlog::key_of_tag(tag, group);
        let start = base_ns + h.start_timestamp().as_nanos() as u64;
        let part = parts.entry(start).or_insert_with(|| Part {
            start_unix_ns: start,
            duration_ns: h.duration().as_nanos() as u64,
            ..Part::default()
        });
        let mut series = Series {
            hist,
            ..Series::default()
        };
        series.min_ns = series.hist.min();
        series.max_ns = series.hist.max();
        // The log has no exact totals: the histogram's mean stands in.
        series.total_ns = (series.hist.mean() * series.hist.count() as f64) as u64;
        let nr = syscalls::number(&syscall).unwrap_or(u32::MAX);
        part.rows.push(Row {
            syscall,
            nr,
            key,
            series: series.into(),
        });
    }
    if parts.is_empty() {
        return Err(not("no histogram lines".into()));
    }
    rec.intervals = parts.into_values().collect();
    Ok(rec)
}

impl Recording {
    /// The parts that together hold every call once: the summaries when there are any
    /// (several recordings or runs add up), else the intervals.
    pub fn whole(&self) -> &[Part] {
        if self.summaries.is_empty() {
            &self.intervals
        } else {
            &self.summaries
        }
    }

    /// The recordings (runs) this file holds, each as the parts that hold its calls once:
    /// every summary line is one (`record --repeat`, `--append`); a file without a summary
    /// (cut short, or an hdrlog) is one run made of its intervals.
    pub fn runs(&self) -> Vec<Vec<&Part>> {
        if self.summaries.is_empty() {
            vec![self.intervals.iter().collect()]
        } else {
            self.summaries.iter().map(|p| vec![p]).collect()
        }
    }
}

/// The time `parts` cover, from the first start to the last end.
pub fn span_ns(parts: &[&Part]) -> u64 {
    let start = parts.iter().map(|p| p.start_unix_ns).min().unwrap_or(0);
    let end = parts
        .iter()
        .map(|p| p.start_unix_ns + p.duration_ns)
        .max()
        .unwrap_or(0);
    end.saturating_sub(start)
}

/// Why parts cannot be regrouped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the recording has no {0} information (record it with --by {0})")]
pub struct RegroupError(pub &'static str);

/// What identifies a merged row: its key's identity, its syscall's name and number.
pub type MergeKey = (KeyId, String, u32);

/// The identity of a row of a merged [`Snapshot`] (as [`merge`] made it).
pub fn row_key(row: &Row) -> MergeKey {
    (row.key.id(), row.syscall.clone(), row.nr)
}

/// The name `--by` gives `group`, for the error that says the recording lacks it.
fn group_word(group: GroupBy) -> &'static str {
    crate::output::jsonl::by_name(group)
}

/// Merges the rows of `parts` (histograms added exactly) into a snapshot keyed by `group`,
/// keeping only the syscalls in `only` when given.
pub fn merge(
    parts: &[&Part],
    group: GroupBy,
    only: Option<&[u32]>,
) -> Result<Snapshot, RegroupError> {
    let mut rows: BTreeMap<MergeKey, Row> = BTreeMap::new();
    let mut lost = 0;
    for part in parts {
        lost += part.lost_events;
        for r in &part.rows {
            if only.is_some_and(|o| !o.contains(&r.nr)) {
                continue;
            }
            let key = r
                .key
                .regroup(group)
                .ok_or(RegroupError(group_word(group)))?;
            let id = (key.id(), r.syscall.clone(), r.nr);
            let row = rows.entry(id).or_insert_with(|| Row {
                nr: r.nr,
                syscall: r.syscall.clone(),
                key: key.clone(),
                series: Series::default().into(),
            });
            // The names (a process's, a container's from its runtime) from whichever part
            // has them.
            row.key.absorb(&key);
            std::sync::Arc::make_mut(&mut row.series).merge(&r.series);
        }
    }
    let start = parts.iter().map(|p| p.start_unix_ns).min().unwrap_or(0);
    let mut out: Vec<Row> = rows.into_values().collect();
    out.sort_by(|a, b| {
        b.series
            .total_ns
            .cmp(&a.series.total_ns)
            .then_with(|| a.syscall.cmp(&b.syscall))
    });
    let events = out.iter().map(|r| r.series.count()).sum();
    Ok(Snapshot {
        start_unix_ns: start,
        duration_ns: span_ns(parts),
        group,
        loss: LossCounters {
            dropped: lost,
            ..LossCounters::default()
        },
        events,
        folded_keys: 0,
        rows: out,
    })
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::{
        aggregate::Aggregator,
        output::{hdrlog, jsonl},
    };

    fn container(r: &Row) -> crate::aggregate::ContainerInfo {
        match &r.key {
            crate::aggregate::RowKey::Container(c) => c.clone(),
            k => panic!("not a container row: {k:?}"),
        }
    }

    fn snapshot_line(kind: &str, group: GroupBy) -> String {
        let mut a = Aggregator::new(group);
        for i in 0..50u64 {
            a.record(&SyscallEvent {
                duration_ns: 1000 + i,
                ret: if i < 5 { -2 } else { 0 },
                tgid: 7,
                tid: 7,
                nr: 257,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        jsonl::line(
            kind,
            &a.snapshot(1_000, 2_000, LossCounters::default(), &|_| {
                Some("cat".into())
            }),
        )
    }

    #[test]
    fn reads_json_lines_exactly() {
        let text = snapshot_line("interval", GroupBy::Process)
            + &snapshot_line("summary", GroupBy::Process);
        let r = parse("x", text.as_bytes()).unwrap();
        assert_eq!((r.intervals.len(), r.summaries.len()), (1, 1));
        let row = &r.summaries[0].rows[0];
        assert_eq!(
            (row.syscall.as_str(), row.nr, row.key.pid(), row.key.comm()),
            ("openat", 257, Some(7), Some("cat"))
        );
        assert_eq!(row.series.count(), 50);
        assert_eq!(row.series.errnos.get(&2), Some(&5));
        assert_eq!((row.series.min_ns, row.series.max_ns), (1000, 1049));
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn truncated_last_line_is_a_warning() {
        let full = snapshot_line("interval", GroupBy::Syscall);
        let text = format!("{full}{}", &full[..full.len() / 2]);
        let r = parse("x", text.as_bytes()).unwrap();
        assert_eq!(r.intervals.len(), 1);
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("truncated last line 2"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn rejects_what_is_not_a_recording() {
        let err = |b: &[u8]| parse("f", b).unwrap_err().to_string();
        assert_eq!(err(b""), "f is empty");
        assert_eq!(err(b"  \n"), "f is empty");
        assert!(err(b"\x00\x01\xff").starts_with("f is not a syslat recording (not text)"));
        assert!(err(b"hello\n").starts_with("f is not a syslat recording"));
        assert!(err(b"{\"a\":1}\n").contains("line 1: no syslat record type"));
        assert!(err(b"{\"type\":\"summary\",\"version\":9}\n").contains("schema version 9"));
        assert!(err(b"{\"type\":\"summary\",\"version\":1,\"start_unix_ns\":1,\"duration_ns\":1,\"rows\":[{\"syscall\":\"read\",\"count\":3,\"hdr\":\"AAAA\"}]}\n").contains("read:"));
        assert!(err(b"{broken\n{\"type\":\"summary\"}\n").contains("line 1"));
        let huge = "{\"type\":\"summary\",\"version\":1,\"start_unix_ns\":1e400,\"duration_ns\":1,\"rows\":[]}\n";
        assert!(err(huge.as_bytes()).contains("not a syslat recording"));
    }

    #[test]
    fn merging_adds_histograms_and_regroups() {
        let text = snapshot_line("summary", GroupBy::Process).repeat(2);
        let r = parse("x", text.as_bytes()).unwrap();
        let parts: Vec<&Part> = r.whole().iter().collect();
        let s = merge(&parts, GroupBy::Syscall, None).unwrap();
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0].series.count(), 100);
        assert_eq!(s.rows[0].series.errnos.get(&2), Some(&10));
        assert_eq!(s.rows[0].key, crate::aggregate::RowKey::Syscall);
        let p = merge(&parts, GroupBy::Process, None).unwrap();
        assert_eq!(
            (p.rows[0].key.pid(), p.rows[0].key.comm()),
            (Some(7), Some("cat"))
        );
        assert_eq!(
            merge(&parts, GroupBy::Syscall, Some(&[0]))
                .unwrap()
                .rows
                .len(),
            0
        );
        let by_syscall = parse("y", snapshot_line("summary", GroupBy::Syscall).as_bytes()).unwrap();
        let parts: Vec<&Part> = by_syscall.whole().iter().collect();
        assert_eq!(
            merge(&parts, GroupBy::Process, None).unwrap_err(),
            RegroupError("process")
        );
    }

    #[test]
    fn parts_say_whether_they_hold_the_anatomy() {
        let v2 = snapshot_line("summary", GroupBy::Syscall);
        let v1 = v2.replacen(&format!("\"version\":{SCHEMA_VERSION}"), "\"version\":1", 1);
        assert_ne!(v1, v2);
        let r = parse("x", (v2 + &v1).as_bytes()).unwrap();
        assert!(r.summaries[0].anatomy);
        assert!(!r.summaries[1].anatomy);
    }

    #[test]
    fn container_rows_read_back_and_merge_by_id() {
        use crate::aggregate::ContainerInfo;
        let id = "ab".repeat(32);
        // Two intervals of one container: the runtime had not named it in the first.
        let mut text = String::new();
        for (name, n) in [("", 3u64), ("web", 4)] {
            let mut a = Aggregator::new(GroupBy::Container);
            for key in [0u32, 2] {
                for _ in 0..n {
                    a.record(&SyscallEvent {
                        duration_ns: 100,
                        ret: 0,
                        tgid: 1,
                        tid: 1,
                        nr: 110,
                        cgroup: key,
                        ..SyscallEvent::default()
                    });
                }
            }
            let info = |k: u32| {
                Some(match k {
                    0 => ContainerInfo::host(),
                    _ => ContainerInfo {
                        id: id.clone(),
                        name: name.into(),
                        image: "img:1".into(),
                        pod_uid: Some("0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d".into()),
                    },
                })
            };
            text += &jsonl::line(
                "interval",
                &a.snapshot_with(0, 1, LossCounters::default(), &|_| None, &info),
            );
        }
        let r = parse("c", text.as_bytes()).unwrap();
        let parts: Vec<&Part> = r.whole().iter().collect();
        let s = merge(&parts, GroupBy::Container, None).unwrap();
        let got: Vec<(String, String, u64)> = s
            .rows
            .iter()
            .map(|r| {
                let c = container(r);
                (c.id, c.name, r.series.count())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (String::new(), "-".into(), 7),
                (id.clone(), "web".into(), 7)
            ]
        );
        let web = container(&s.rows[1]);
        assert_eq!(web.image, "img:1");
        assert_eq!(
            web.pod_uid.as_deref(),
            Some("0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")
        );
        assert_eq!(
            merge(&parts, GroupBy::Syscall, None).unwrap().rows[0]
                .series
                .count(),
            14
        );
        assert_eq!(
            merge(&parts, GroupBy::Process, None).unwrap_err(),
            RegroupError("process")
        );
        // Version 1 files (before the container fields) still read.
        let v1 = snapshot_line("summary", GroupBy::Process)
            .replace(&format!(r#""version":{SCHEMA_VERSION}"#), r#""version":1"#);
        assert!(v1.contains(r#""version":1"#));
        assert_eq!(parse("v1", v1.as_bytes()).unwrap().summaries.len(), 1);
        // The same through an HdrHistogram log.
        let mut a = Aggregator::new(GroupBy::Container);
        a.record(&SyscallEvent {
            duration_ns: 100,
            ret: 0,
            tgid: 1,
            tid: 1,
            nr: 110,
            cgroup: 2,
            ..SyscallEvent::default()
        });
        let snap = a.snapshot_with(1, 1, LossCounters::default(), &|_| None, &|_| {
            Some(ContainerInfo {
                id: id.clone(),
                name: "web".into(),
                ..Default::default()
            })
        });
        let log = hdrlog::header(0, GroupBy::Container) + &hdrlog::interval(&snap, 0);
        let r = parse("h", log.as_bytes()).unwrap();
        let parts: Vec<&Part> = r.whole().iter().collect();
        let s = merge(&parts, GroupBy::Container, None).unwrap();
        let c = container(&s.rows[0]);
        assert_eq!((c.id.as_str(), c.name.as_str()), (id.as_str(), "web"));
        assert_eq!(s.rows[0].syscall, "getppid");
    }

    #[test]
    fn hdrlogs_keep_every_key_and_dotted_names() {
        // On main a dotted name was read as a pid ("python3.11" as pid 11; "my.app" as no
        // pid at all, so `report --by process` said the recording had no process
        // information), and thread and cgroup rows were tagged with the syscall alone.
        let names = |pid: u32| match pid {
            1 => Some("python3.11".to_string()),
            2 => Some("my.app".to_string()),
            _ => None,
        };
        for group in [GroupBy::Process, GroupBy::Thread, GroupBy::Cgroup] {
            let mut a = Aggregator::new(group);
            for (pid, n) in [(1u32, 3u64), (2, 5), (3, 7)] {
                for _ in 0..n {
                    a.record(&SyscallEvent {
                        duration_ns: 100 * u64::from(pid),
                        tgid: pid,
                        tid: pid + 10,
                        nr: 39,
                        cgroup: pid,
                        ..SyscallEvent::default()
                    });
                }
            }
            let snap = a.snapshot(1, 1, LossCounters::default(), &|k| match group {
                GroupBy::Cgroup => Some(format!("a.slice/{k}.scope")),
                _ => names(k),
            });
            let log = hdrlog::header(0, group) + &hdrlog::interval(&snap, 0);
            let r = parse("h", log.as_bytes()).unwrap();
            let parts: Vec<&Part> = r.whole().iter().collect();
            let s = merge(&parts, group, None).unwrap();
            let got: Vec<(crate::aggregate::RowKey, u64)> = s
                .rows
                .iter()
                .map(|r| (r.key.clone(), r.series.count()))
                .collect();
            let want: Vec<(crate::aggregate::RowKey, u64)> = snap
                .rows
                .iter()
                .map(|r| (r.key.clone(), r.series.count()))
                .collect();
            assert_eq!(got, want, "{group:?}");
            assert_eq!(got.len(), 3);
        }
    }

    #[test]
    fn reads_hdrlog() {
        let mut a = Aggregator::new(GroupBy::Syscall);
        for i in 0..10u64 {
            a.record(&SyscallEvent {
                duration_ns: 500 + i,
                ret: 0,
                tgid: 1,
                tid: 1,
                nr: 0,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        let base = 1_700_000_000_000_000_000;
        let snap = a.snapshot(base, 1_000_000_000, LossCounters::default(), &|_| None);
        let text = hdrlog::header(base, GroupBy::Syscall) + &hdrlog::interval(&snap, base);
        let r = parse("h", text.as_bytes()).unwrap();
        assert_eq!(r.intervals.len(), 1);
        assert_eq!(r.intervals[0].rows[0].syscall, "read");
        assert_eq!(r.intervals[0].rows[0].series.count(), 10);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: mutate valid recordings byte by byte.
        let valid = snapshot_line("summary", GroupBy::Process).into_bytes();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut b = valid.clone();
            let i = (seed as usize) % b.len();
            b[i] = (seed >> 32) as u8;
            b.truncate(((seed >> 16) as usize) % (b.len() + 1));
            let _ = parse("fuzz", &b);
        }
    }

    /// What a format keeps of a row, for comparing rows read back with those written:
    /// identity, key, syscall and the calls; with `exact`, the exact totals and errnos too
    /// (JSON; an hdrlog has the histogram only, so its min and max are its buckets').
    fn kept(rows: &[Row], exact: bool, hdrlog: bool) -> Vec<String> {
        let mut out: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut key = r.key.clone();
                if let (true, crate::aggregate::RowKey::Container(c)) = (hdrlog, &mut key) {
                    // An hdrlog tag has a container's id and name only.
                    c.image.clear();
                    c.pod_uid = None;
                }
                let s = &r.series;
                let mut line = format!(
                    "{:?} {key:?} {} {} {} {:?}",
                    r.id(),
                    r.syscall,
                    r.nr,
                    s.count(),
                    buckets(&s.hist)
                );
                if exact {
                    line += &format!(
                        " {} {} {} {} {:?}",
                        s.min(),
                        s.max_ns,
                        s.total_ns,
                        s.errors,
                        s.errnos
                    );
                }
                line
            })
            .collect();
        out.sort();
        out
    }

    /// A histogram's buckets: (highest equivalent value, count) of each non-empty one.
    fn buckets(h: &LatencyHist) -> Vec<(u64, u64)> {
        h.histogram()
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// A snapshot of `group` holding `rows` (keys of that grouping, deduplicated).
    fn snapshot_of(group: GroupBy, rows: Vec<Row>) -> Snapshot {
        let mut seen = std::collections::BTreeSet::new();
        let rows: Vec<Row> = rows
            .into_iter()
            .filter(|r| seen.insert((r.key.id(), r.nr)))
            .collect();
        Snapshot {
            start_unix_ns: 1_700_000_000_000_000_000,
            duration_ns: 1_000_000_000,
            group,
            loss: LossCounters::default(),
            events: 0,
            folded_keys: 0,
            rows,
        }
    }

    fn arb_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            // Any bytes, as the kernel's comm is decoded.
            proptest::collection::vec(any::<u8>(), 0..16)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            any::<String>(),
            Just("python3.11".to_string()),
            Just("php-fpm8.2".to_string()),
            Just("other".to_string()),
            Just("?".to_string()),
            Just("a.1.2".to_string()),
            Just("%2E".to_string()),
        ]
    }

    fn arb_key(group: GroupBy) -> proptest::strategy::BoxedStrategy<crate::aggregate::RowKey> {
        use crate::aggregate::{ContainerInfo, RowKey};
        use proptest::prelude::*;
        // A process's unknown name is written as an empty one: no row has an empty name.
        let comm = proptest::option::of(arb_name().prop_filter("named", |c| !c.is_empty()));
        let key: BoxedStrategy<RowKey> = match group {
            GroupBy::Syscall => return Just(RowKey::Syscall).boxed(),
            GroupBy::Process => (any::<u32>(), comm)
                .prop_map(|(pid, comm)| RowKey::Process { pid, comm })
                .boxed(),
            GroupBy::Thread => (0..4u32, any::<u32>(), comm)
                .prop_map(|(pid, tid, comm)| RowKey::Thread { pid, tid, comm })
                .boxed(),
            GroupBy::Cgroup => arb_name().prop_map(|path| RowKey::Cgroup { path }).boxed(),
            GroupBy::Container => prop_oneof![
                Just(ContainerInfo::host()),
                Just(ContainerInfo::unknown()),
                (
                    "[0-9a-f]{64}",
                    arb_name(),
                    arb_name(),
                    proptest::option::of("[0-9a-f-]{36}")
                )
                    .prop_map(|(id, name, image, pod_uid)| ContainerInfo {
                        id,
                        name,
                        image,
                        pod_uid,
                    }),
            ]
            .prop_map(RowKey::Container)
            .boxed(),
        };
        prop_oneof![1 => Just(RowKey::Other), 6 => key].boxed()
    }

    fn arb_snapshot() -> impl proptest::strategy::Strategy<Value = Snapshot> {
        use proptest::prelude::*;
        let group = prop_oneof![
            Just(GroupBy::Syscall),
            Just(GroupBy::Process),
            Just(GroupBy::Thread),
            Just(GroupBy::Cgroup),
            Just(GroupBy::Container),
        ];
        group.prop_flat_map(|group| {
            let row = (
                arb_key(group),
                0..8u32,
                proptest::collection::vec((1..10_000_000u64, proptest::option::of(1..5i32)), 1..20),
            )
                .prop_map(|(key, nr, calls)| {
                    let mut s = Series::default();
                    for (ns, errno) in calls {
                        s.record(ns, errno);
                    }
                    Row::new(nr, key, s)
                });
            proptest::collection::vec(row, 0..8).prop_map(move |rows| snapshot_of(group, rows))
        })
    }

    proptest::proptest! {
        /// For every grouping, a snapshot written as JSON and as an hdrlog reads back as the
        /// same rows (keys, counts, histograms; JSON also the exact totals), whatever bytes
        /// the names hold.
        #[test]
        fn every_format_reads_back_the_same_rows(snap in arb_snapshot()) {
            let json = jsonl::line("summary", &snap);
            let r = parse("j", json.as_bytes()).unwrap();
            let parts: Vec<&Part> = r.whole().iter().collect();
            let back = merge(&parts, snap.group, None).unwrap();
            proptest::prop_assert_eq!(kept(&back.rows, true, false), kept(&snap.rows, true, false));
            if !snap.rows.is_empty() {
                let base = snap.start_unix_ns;
                let log = hdrlog::header(base, snap.group) + &hdrlog::interval(&snap, base);
                let r = parse("h", log.as_bytes()).unwrap();
                let parts: Vec<&Part> = r.whole().iter().collect();
                let back = merge(&parts, snap.group, None).unwrap();
                proptest::prop_assert_eq!(kept(&back.rows, false, true), kept(&snap.rows, false, true));
            }
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes, arbitrary JSON-ish lines and huge numbers never panic the reader.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = parse("p", &bytes);
        }

        #[test]
        fn json_like_lines_never_panic(
            kind in "(summary|interval|slow|x)",
            version in proptest::num::u64::ANY,
            start in proptest::num::u64::ANY,
            count in proptest::num::u64::ANY,
            hdr in "[A-Za-z0-9+/=]{0,64}",
        ) {
            let line = format!(
                "{{\"type\":\"{kind}\",\"version\":{version},\"start_unix_ns\":{start},\"duration_ns\":1,\
                 \"rows\":[{{\"syscall\":\"read\",\"count\":{count},\"hdr\":\"{hdr}\"}}]}}\n"
            );
            let _ = parse("p", line.as_bytes());
        }
    }
}
