//! The text table: one row per syscall (or process and syscall), sorted by total time,
//! with human units, followed by the loss accounting.

use std::fmt::Write as _;

use crate::{
    aggregate::{GroupBy, RowKey, Snapshot},
    units::fmt_ns,
};

/// The headers of the key columns of a table of rows keyed by `group`.
fn key_header(group: GroupBy) -> &'static [&'static str] {
    match group {
        GroupBy::Syscall => &[],
        GroupBy::Process => &["PID", "COMM"],
        GroupBy::Thread => &["PID", "COMM", "TID"],
        GroupBy::Cgroup => &["CGROUP"],
        GroupBy::Container => &["CONTAINER", "NAME", "IMAGE"],
    }
}

/// The key columns of a row in a table of rows keyed by `group` (see the header):
/// PID COMM [TID], CGROUP, or CONTAINER NAME IMAGE; a folded row is named `other`.
fn key_cells(key: &RowKey, group: GroupBy) -> Vec<String> {
    let other = || "other".to_string();
    let comm = |c: Option<&str>| c.map_or_else(|| "?".into(), escape);
    match (group, key) {
        (GroupBy::Syscall, _) => vec![],
        (GroupBy::Process, RowKey::Process { pid, comm: c }) => {
            vec![pid.to_string(), comm(c.as_deref())]
        }
        (GroupBy::Process, _) => vec![String::new(), other()],
        (GroupBy::Thread, RowKey::Thread { pid, tid, comm: c }) => {
            vec![pid.to_string(), comm(c.as_deref()), tid.to_string()]
        }
        (GroupBy::Thread, _) => vec![String::new(), other(), String::new()],
        (GroupBy::Cgroup, RowKey::Cgroup { path }) => vec![escape(path)],
        (GroupBy::Cgroup, _) => vec![other()],
        (GroupBy::Container, RowKey::Container(c)) => {
            vec![c.short_id().to_string(), escape(&c.name), escape(&c.image)]
        }
        (GroupBy::Container, _) => vec![String::new(), other(), String::new()],
    }
}

/// Renders `snap` as a table. `limit` caps the number of rows (0: all).
pub fn render(snap: &Snapshot, limit: usize) -> String {
    render_percentiles(snap, limit, DEFAULT_PERCENTILES)
}

/// The percentile columns of the table unless asked otherwise.
pub const DEFAULT_PERCENTILES: &[f64] = &[50.0, 90.0, 99.0, 99.9];

/// [`render`] with the given percentile columns (0..=100).
pub fn render_percentiles(snap: &Snapshot, limit: usize, percentiles: &[f64]) -> String {
    let mut out = String::new();
    let by_proc = matches!(snap.group, GroupBy::Process | GroupBy::Thread);
    let by_container = snap.group == GroupBy::Container;
    let pods = by_container
        && snap
            .rows
            .iter()
            .any(|r| matches!(&r.key, RowKey::Container(c) if c.pod_uid.is_some()));
    let calls = snap.total_calls();
    let _ = writeln!(
        out,
        "{} calls traced in {}, {} syscalls{}",
        calls,
        fmt_ns(snap.duration_ns),
        count_distinct(snap),
        if by_proc || by_container {
            format!(", {} rows", snap.rows.len())
        } else {
            String::new()
        },
    );
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = key_header(snap.group).to_vec();
    if pods {
        header.push("POD");
    }
    let mut header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    header.extend(["SYSCALL", "CALLS", "ERRORS", "TOTAL"].map(String::from));
    header.extend(percentiles.iter().map(|p| format!("P{p}")));
    header.push("MAX".into());
    header.extend(["ONCPU%", "RUNQ%", "BLOCKED%", "RUNQ P99"].map(String::from));
    table.push(header);
    let rows = if limit == 0 {
        snap.rows.len()
    } else {
        limit.min(snap.rows.len())
    };
    for row in &snap.rows[..rows] {
        let st = row.stats();
        let mut cells = key_cells(&row.key, snap.group);
        if pods {
            let pod = match &row.key {
                RowKey::Container(c) => c.pod_uid.as_deref(),
                _ => None,
            };
            cells.push(pod.unwrap_or("").to_string());
        }
        cells.push(row.syscall.clone());
        cells.push(st.count.to_string());
        cells.push(st.errors.to_string());
        cells.push(fmt_ns(st.total_ns));
        for p in percentiles {
            cells.push(fmt_ns(row.percentile(*p)));
        }
        cells.push(fmt_ns(st.max_ns));
        let split = row.anatomy_split();
        cells.extend([split.oncpu, split.runq, split.blocked].map(pct));
        cells.push(fmt_ns(row.runq_percentile(99.0)));
        table.push(cells);
    }
    // The key columns and the syscall are text (left-aligned).
    let text_cols = key_header(snap.group).len() + usize::from(pods) + 1;
    write_table(&mut out, &table, text_cols);
    if rows < snap.rows.len() {
        let _ = writeln!(out, "... {} more rows", snap.rows.len() - rows);
    }
    if snap.folded_keys > 0 {
        let _ = writeln!(
            out,
            "{} keys beyond --max-keys are folded into the 'other' rows (their counts are exact)",
            snap.folded_keys
        );
    }
    let errnos = snap.errno_totals();
    if !errnos.is_empty() {
        let list: Vec<String> = errnos.iter().map(|(e, n)| format!("{e} {n}")).collect();
        let _ = writeln!(out, "errors: {}", list.join(", "));
    }
    let l = &snap.loss;
    let _ = writeln!(
        out,
        "events: {} received, {} dropped (buffer full), {} untimed (no slot), {} unpaired, {} stale, {} unfinished",
        l.received, l.dropped, l.no_storage, l.unpaired, l.stale, l.unfinished
    );
    if l.lost() > 0 {
        let _ = writeln!(
            out,
            "WARNING: {} completed calls were lost and are not in the table",
            l.lost()
        );
    }
    if l.skipped > 0 {
        let _ = writeln!(
            out,
            "WARNING: the kernel skipped syslat's programs {} times (a run was in progress on the same CPU, preempted: the raw hook on Linux 7.2 and later, SYSLAT_SYSCALL_HOOK=raw); as many calls are missing or mis-timed (README, \"Linux 7.2 and later\")",
            l.skipped
        );
    }
    out
}

/// A share as a percentage with one decimal ("-" for an empty row).
fn pct(share: Option<f64>) -> String {
    share.map_or_else(|| "-".into(), |s| format!("{:.1}", s * 100.0))
}

fn count_distinct(snap: &Snapshot) -> usize {
    let mut nrs: Vec<u32> = snap.rows.iter().map(|r| r.nr).collect();
    nrs.sort_unstable();
    nrs.dedup();
    nrs.len()
}

/// Writes an aligned table: the first `left` columns left-aligned, the rest right-aligned.
fn write_table(out: &mut String, table: &[Vec<String>], left: usize) {
    let ncols = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncols)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            if c < left {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, LossCounters};

    fn snap(group: GroupBy) -> Snapshot {
        let mut a = Aggregator::new(group);
        let getppid = crate::syscalls::number("getppid").unwrap();
        let openat = crate::syscalls::number("openat").unwrap();
        for _ in 0..10 {
            a.record(&SyscallEvent {
                duration_ns: 1_500,
                ret: 1,
                tgid: 5,
                tid: 5,
                nr: getppid as u16,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        a.record(&SyscallEvent {
            duration_ns: 2_000_000,
            ret: -2,
            tgid: 6,
            tid: 6,
            nr: openat as u16,
            cgroup: 0,
            ..SyscallEvent::default()
        });
        let loss = LossCounters {
            received: 11,
            dropped: 3,
            ..Default::default()
        };
        a.snapshot(0, 1_000_000_000, loss, &|p| Some(format!("proc{p}")))
    }

    #[test]
    fn table_sorted_with_units_and_loss() {
        let t = render(&snap(GroupBy::Syscall), 0);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "11 calls traced in 1.00s, 2 syscalls");
        assert!(lines[1].starts_with("SYSCALL"), "{t}");
        assert!(lines[2].starts_with("openat "), "largest total first: {t}");
        assert!(lines[2].contains("2.00ms"), "{t}");
        assert!(lines[3].starts_with("getppid"), "{t}");
        assert!(lines[3].contains("1.50µs"), "{t}");
        assert!(t.contains("errors: ENOENT 1"), "{t}");
        assert!(t.contains("3 dropped"), "{t}");
        assert!(t.contains("WARNING: 3 completed calls were lost"), "{t}");
        assert!(!t.contains("skipped"), "nothing skipped, nothing said: {t}");
        // Columns line up: every row has the same width up to the last column.
        assert_eq!(lines[1].chars().count(), lines[3].chars().count(), "{t}");
    }

    #[test]
    fn skipped_program_runs_are_warned_of() {
        let mut s = snap(GroupBy::Syscall);
        s.loss.skipped = 42;
        let t = render(&s, 0);
        assert!(
            t.contains("WARNING: the kernel skipped syslat's programs 42 times"),
            "{t}"
        );
    }

    #[test]
    fn by_container_has_id_name_image_and_pod() {
        use crate::aggregate::ContainerInfo;
        let mut a = Aggregator::new(GroupBy::Container);
        for (key, n) in [(0u32, 1), (2, 3), (3, 2)] {
            for _ in 0..n {
                a.record(&SyscallEvent {
                    duration_ns: 1_000,
                    ret: 0,
                    tgid: 9,
                    tid: 9,
                    nr: crate::syscalls::number("getppid").unwrap() as u16,
                    cgroup: key,
                    ..SyscallEvent::default()
                });
            }
        }
        let id = "0123456789ab".to_string() + &"f".repeat(52);
        let info = |k: u32| {
            Some(match k {
                0 => ContainerInfo::host(),
                2 => ContainerInfo {
                    id: id.clone(),
                    name: "evil\u{1b}[2J".into(),
                    image: "busybox:1".into(),
                    pod_uid: Some("0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d".into()),
                },
                _ => return None,
            })
        };
        let snap = a.snapshot_with(0, 1, LossCounters::default(), &|_| None, &info);
        let t = render(&snap, 0);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].starts_with("CONTAINER     NAME         IMAGE      POD  "),
            "{t}"
        );
        assert!(
            lines[2].starts_with(
                "0123456789ab  evil\\x1b[2J  busybox:1  0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d  getppid      3"
            ),
            "names are escaped: {t}"
        );
        assert!(lines[3].starts_with("-             ?    "), "unknown: {t}");
        assert!(lines[4].starts_with("-             -    "), "host: {t}");
        assert!(!t.contains('\u{1b}'), "{t}");
    }

    #[test]
    fn by_process_has_pid_and_comm() {
        let t = render(&snap(GroupBy::Process), 1);
        assert!(t.lines().nth(1).unwrap().starts_with("PID  COMM"), "{t}");
        assert!(t.contains("6    proc6  openat"), "{t}");
        assert!(t.contains("... 1 more rows"), "{t}");
    }
}

/// `s` with every control character (C0, DEL, C1: terminal escapes among them) written as
/// `\xNN` or `\u{NNNN}`, so text that others chose (names, paths) cannot drive the
/// terminal it is printed on.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod escape_tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::escape("a\u{1b}]0;x\u{7}b"), "a\\x1b]0;x\\x07b");
        assert_eq!(super::escape("caf\u{e9} \u{9b}2J"), "caf\u{e9} \\u{009b}2J");
        assert_eq!(super::escape("back\\slash"), "back\\\\slash");
    }
}
