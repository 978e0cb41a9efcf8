//! JSON Lines. Every line is one object with a `type`; `record` ends with one
//! `{"type":"summary", ...}` line. The schema is a public interface (README, "JSON Lines").

use std::{borrow::Cow, collections::BTreeMap};

use serde::{Deserialize, Serialize};

use crate::aggregate::{
    ContainerInfo, GroupBy, Row, RowKey, Snapshot,
    stacks::{StackRow, StackSet},
};

/// Version of the JSON Lines schema, carried in every line as `"version"`. Version 2 added
/// the rows' anatomy fields (`oncpu_total_ns` ... `blocked_hdr`), version 3 the container
/// fields of `--by container` rows (`container_id` ... `pod_uid`), version 4 the summary's
/// `stacks` (`record --stacks`), version 5 the summary's `skipped_runs`; older files still
/// read.
pub const SCHEMA_VERSION: u32 = 5;

/// One row, as written and as read back (`recording.rs`). Fields that older schema
/// versions lack are read as 0 (or absent); the statistics are written for readers and
/// recomputed from `hdr` on reading.
#[derive(Serialize, Deserialize)]
pub struct JsonRow {
    /// Syscall name.
    pub syscall: String,
    /// Syscall number (absent in files of other architectures' tools: found by name).
    #[serde(default = "no_nr")]
    pub nr: u32,
    /// Process id (`--by process|thread`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Thread id (`--by thread`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// cgroup v2 path (`--by cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Container id, 64 hex digits, or empty for the host and unknown rows (`--by container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Container name (`-` host, `?` unknown, empty when its runtime did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The container's image (empty when its runtime did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image: Option<String>,
    /// The container's Kubernetes pod UID, when it is in a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Process name (`--by process|thread`; empty when unknown); `other` for folded rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Set on rows that hold the calls of keys folded beyond `--max-keys`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
    /// Calls.
    pub count: u64,
    /// Failed calls.
    #[serde(default)]
    pub errors: u64,
    /// Failures by errno name.
    #[serde(default)]
    pub errnos: BTreeMap<String, u64>,
    /// Exact total time, ns.
    #[serde(default)]
    pub total_ns: u64,
    /// Fastest call, ns.
    #[serde(default = "no_min")]
    pub min_ns: u64,
    /// Exact mean, ns.
    #[serde(default)]
    pub mean_ns: u64,
    /// Percentiles, ns.
    #[serde(default)]
    pub p50_ns: u64,
    /// 90th percentile, ns.
    #[serde(default)]
    pub p90_ns: u64,
    /// 99th percentile, ns.
    #[serde(default)]
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    #[serde(default)]
    pub p999_ns: u64,
    /// Slowest call, ns.
    #[serde(default)]
    pub max_ns: u64,
    /// The histogram: HdrHistogram V2 compressed encoding, base64.
    pub hdr: String,
    /// Exact time running on a CPU, ns: `total_ns` less `runq_total_ns` and
    /// `blocked_total_ns`.
    #[serde(default)]
    pub oncpu_total_ns: u64,
    /// Exact time runnable but waiting for a CPU, ns.
    #[serde(default)]
    pub runq_total_ns: u64,
    /// Exact time sleeping (blocked), ns.
    #[serde(default)]
    pub blocked_total_ns: u64,
    /// Median per-call run-queue wait, ns.
    #[serde(default)]
    pub runq_p50_ns: u64,
    /// 99th percentile per-call run-queue wait, ns.
    #[serde(default)]
    pub runq_p99_ns: u64,
    /// Median per-call blocked time, ns.
    #[serde(default)]
    pub blocked_p50_ns: u64,
    /// 99th percentile per-call blocked time, ns.
    #[serde(default)]
    pub blocked_p99_ns: u64,
    /// Context switches out inside the calls.
    #[serde(default)]
    pub switches: u64,
    /// Of which involuntary (preempted while runnable).
    #[serde(default)]
    pub involuntary_switches: u64,
    /// Per-call run-queue wait, encoded like `hdr`; absent when no call switched (all 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runq_hdr: Option<String>,
    /// Per-call blocked time, encoded like `hdr`; absent when no call switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_hdr: Option<String>,
}

/// `nr` of a row that lacks it (found by name when read).
fn no_nr() -> u32 {
    u32::MAX
}

/// `min_ns` of a row that lacks it.
fn no_min() -> u64 {
    u64::MAX
}

/// The name `comm` is written as when a process's name is unknown (and read back as unknown).
const UNKNOWN_COMM: &str = "";

/// The name `comm` holds in a folded row.
const OTHER_COMM: &str = "other";

/// The key fields of a row: each [`RowKey`] is written as one set of them, and read back
/// from them (the only place either is spelled).
#[derive(Default)]
struct KeyFields {
    pid: Option<u32>,
    tid: Option<u32>,
    cgroup: Option<String>,
    container: Option<ContainerInfo>,
    comm: Option<String>,
    other: bool,
}

impl From<&RowKey> for KeyFields {
    fn from(key: &RowKey) -> Self {
        let comm = |c: &Option<String>| Some(c.clone().unwrap_or_else(|| UNKNOWN_COMM.into()));
        match key {
            RowKey::Syscall => KeyFields::default(),
            RowKey::Other => KeyFields {
                comm: Some(OTHER_COMM.into()),
                other: true,
                ..KeyFields::default()
            },
            RowKey::Process { pid, comm: c } => KeyFields {
                pid: Some(*pid),
                comm: comm(c),
                ..KeyFields::default()
            },
            RowKey::Thread { pid, tid, comm: c } => KeyFields {
                pid: Some(*pid),
                tid: Some(*tid),
                comm: comm(c),
                ..KeyFields::default()
            },
            RowKey::Cgroup { path } => KeyFields {
                cgroup: Some(path.clone()),
                ..KeyFields::default()
            },
            RowKey::Container(c) => KeyFields {
                container: Some(c.clone()),
                ..KeyFields::default()
            },
        }
    }
}

impl From<KeyFields> for RowKey {
    fn from(f: KeyFields) -> Self {
        let KeyFields {
            pid,
            tid,
            cgroup,
            container,
            comm,
            other,
        } = f;
        // Version 1 files mark folded rows by their name alone.
        let legacy_other = comm.as_deref() == Some(OTHER_COMM)
            && pid.is_none()
            && cgroup.is_none()
            && container.is_none();
        let comm = comm.filter(|c| c != UNKNOWN_COMM);
        match (pid, tid, cgroup, container) {
            _ if other || legacy_other => RowKey::Other,
            (_, _, _, Some(c)) => RowKey::Container(c),
            (_, _, Some(path), None) => RowKey::Cgroup { path },
            (Some(pid), Some(tid), None, None) => RowKey::Thread { pid, tid, comm },
            (Some(pid), None, None, None) => RowKey::Process { pid, comm },
            (None, _, None, None) => RowKey::Syscall,
        }
    }
}

impl JsonRow {
    /// The row's key, from its key fields.
    pub fn key(&self) -> RowKey {
        RowKey::from(KeyFields {
            pid: self.pid,
            tid: self.tid,
            cgroup: self.cgroup.clone(),
            container: self.container_id.as_ref().map(|id| ContainerInfo {
                id: id.clone(),
                name: self.container_name.clone().unwrap_or_default(),
                image: self.container_image.clone().unwrap_or_default(),
                pod_uid: self.pod_uid.clone(),
            }),
            comm: self.comm.clone(),
            other: self.other,
        })
    }
}

impl From<&Row> for JsonRow {
    fn from(row: &Row) -> Self {
        let st = row.stats();
        let k = KeyFields::from(&row.key);
        let c = k.container.as_ref();
        let off = &row.series.off_cpu;
        let hists = off.hists();
        JsonRow {
            syscall: row.syscall.clone(),
            nr: row.nr,
            pid: k.pid,
            tid: k.tid,
            cgroup: k.cgroup.clone(),
            container_id: c.map(|c| c.id.clone()),
            container_name: c.map(|c| c.name.clone()),
            container_image: c.map(|c| c.image.clone()),
            pod_uid: c.and_then(|c| c.pod_uid.clone()),
            comm: k.comm,
            other: k.other,
            count: st.count,
            errors: st.errors,
            errnos: st.errnos.into_iter().collect(),
            total_ns: st.total_ns,
            min_ns: st.min_ns,
            mean_ns: st.mean_ns,
            p50_ns: st.p50_ns,
            p90_ns: st.p90_ns,
            p99_ns: st.p99_ns,
            p999_ns: st.p999_ns,
            max_ns: st.max_ns,
            hdr: row.series.hist.to_base64(),
            oncpu_total_ns: row.series.oncpu_ns(),
            runq_total_ns: off.runq_ns,
            blocked_total_ns: off.blocked_ns,
            runq_p50_ns: row.runq_percentile(50.0),
            runq_p99_ns: row.runq_percentile(99.0),
            blocked_p50_ns: row.blocked_percentile(50.0),
            blocked_p99_ns: row.blocked_percentile(99.0),
            switches: off.switches(),
            involuntary_switches: off.involuntary,
            runq_hdr: hists.map(|(r, _)| r.to_base64()),
            blocked_hdr: hists.map(|(_, b)| b.to_base64()),
        }
    }
}

/// One `summary` or `interval` line, as written and as read back (`recording.rs`; the
/// reader checks `type` and `version` first, and skips the other line types).
#[derive(Serialize, Deserialize)]
pub struct JsonLine<'a> {
    /// `summary` or `interval`.
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    /// [`SCHEMA_VERSION`] when written.
    pub version: u64,
    /// The run number of `record --repeat` and `--append`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u32>,
    /// How rows are keyed (`syscall`, `process`, ...).
    #[serde(default)]
    pub by: Cow<'a, str>,
    /// Start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Length, ns.
    pub duration_ns: u64,
    /// Calls in the rows.
    #[serde(default)]
    pub calls: u64,
    /// Completed calls not counted (dropped plus untimed).
    #[serde(default)]
    pub lost_events: u64,
    /// Completed calls lost to a full event buffer.
    #[serde(default)]
    pub dropped_events: u64,
    /// Exits with no recorded enter.
    #[serde(default)]
    pub unpaired_events: u64,
    /// Enters that found an earlier call whose exit was never seen.
    #[serde(default)]
    pub stale_events: u64,
    /// Threads that exited inside a syscall.
    #[serde(default)]
    pub unfinished_calls: u64,
    /// Runs of syslat's programs the kernel skipped (a run of the same program was in
    /// progress on that CPU: the raw hook on Linux 7.2 and later); each a call lost or mis-timed.
    #[serde(default)]
    pub skipped_runs: u64,
    /// Keys folded into the `other` rows.
    #[serde(default)]
    pub folded_keys: u64,
    /// The rows.
    pub rows: Vec<JsonRow>,
    /// The recording's stacks (`record --stacks`, summaries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<Cow<'a, [StackRow]>>,
}

/// The `by` of a grouping (as `--by` spells it).
pub fn by_name(group: GroupBy) -> &'static str {
    match group {
        GroupBy::Syscall => "syscall",
        GroupBy::Process => "process",
        GroupBy::Thread => "thread",
        GroupBy::Cgroup => "cgroup",
        GroupBy::Container => "container",
    }
}

/// The grouping `by` names ([`by_name`] read back).
pub fn group_named(by: &str) -> Option<GroupBy> {
    [
        GroupBy::Syscall,
        GroupBy::Process,
        GroupBy::Thread,
        GroupBy::Cgroup,
        GroupBy::Container,
    ]
    .into_iter()
    .find(|g| by_name(*g) == by)
}

/// One JSON line (with its newline) of type `kind` (`summary`, `interval`) for `snap`.
pub fn line(kind: &str, snap: &Snapshot) -> String {
    line_of_run(kind, snap, None)
}

/// [`line`] with the run number of `record --repeat`.
pub fn line_of_run(kind: &str, snap: &Snapshot, run: Option<u32>) -> String {
    line_with_stacks(kind, snap, run, None)
}

/// [`line_of_run`] with the recording's stacks (`record --stacks`), in `stacks`.
pub fn line_with_stacks(
    kind: &str,
    snap: &Snapshot,
    run: Option<u32>,
    stacks: Option<&StackSet>,
) -> String {
    let l = JsonLine {
        kind: Cow::Borrowed(kind),
        version: u64::from(SCHEMA_VERSION),
        run,
        by: Cow::Borrowed(by_name(snap.group)),
        start_unix_ns: snap.start_unix_ns,
        duration_ns: snap.duration_ns,
        calls: snap.total_calls(),
        lost_events: snap.loss.lost(),
        dropped_events: snap.loss.dropped,
        unpaired_events: snap.loss.unpaired,
        stale_events: snap.loss.stale,
        unfinished_calls: snap.loss.unfinished,
        skipped_runs: snap.loss.skipped,
        folded_keys: snap.folded_keys,
        rows: snap.rows.iter().map(JsonRow::from).collect(),
        stacks: stacks.map(|s| Cow::Borrowed(s.rows.as_slice())),
    };
    let mut s = serde_json::to_string(&l).expect("plain data serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, LatencyHist, LossCounters};

    #[test]
    fn summary_line_schema() {
        let mut a = Aggregator::new(GroupBy::Process);
        let nr = crate::syscalls::number("openat").unwrap();
        for i in 0..4 {
            let ret = if i < 3 { -2 } else { 3 };
            a.record(&SyscallEvent {
                duration_ns: 1000 * (i + 1),
                ret,
                tgid: 9,
                tid: 9,
                nr: nr as u16,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        let loss = LossCounters {
            dropped: 1,
            unpaired: 2,
            skipped: 7,
            ..Default::default()
        };
        let snap = a.snapshot(123, 456, loss, &|_| Some("cat".into()));
        let text = line("summary", &snap);
        assert!(text.ends_with('\n') && !text[..text.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "summary");
        assert_eq!(v["start_unix_ns"], 123);
        assert_eq!(v["duration_ns"], 456);
        assert_eq!(v["lost_events"], 1);
        assert_eq!(v["unpaired_events"], 2);
        assert_eq!(v["skipped_runs"], 7);
        let row = &v["rows"][0];
        assert_eq!(row["syscall"], "openat");
        assert_eq!(row["nr"], nr);
        assert_eq!(row["pid"], 9);
        assert_eq!(row["comm"], "cat");
        assert_eq!(row["count"], 4);
        assert_eq!(row["errors"], 3);
        assert_eq!(row["errnos"]["ENOENT"], 3);
        assert_eq!(row["total_ns"], 10_000);
        assert_eq!(row["mean_ns"], 2_500);
        assert_eq!(row["min_ns"], 1000);
        assert_eq!(row["max_ns"], 4000);
        let h = LatencyHist::from_base64(row["hdr"].as_str().unwrap()).unwrap();
        assert_eq!(h.count(), 4);
        assert_eq!(h.percentile(50.0), row["p50_ns"].as_u64().unwrap());
    }

    #[test]
    fn container_rows_have_their_fields() {
        use crate::aggregate::ContainerInfo;
        let mut a = Aggregator::with_max_keys(GroupBy::Container, 2);
        for key in [0u32, 2, 3] {
            a.record(&SyscallEvent {
                duration_ns: 5 + u64::from(key),
                ret: 0,
                tgid: 1,
                tid: 1,
                nr: 0,
                cgroup: key,
                ..SyscallEvent::default()
            });
        }
        let info = |k: u32| {
            (k == 2).then(|| ContainerInfo {
                id: "ab".repeat(32),
                name: "web\u{1b}".into(),
                image: "nginx:1".into(),
                pod_uid: Some("0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d".into()),
            })
        };
        let snap = a.snapshot_with(0, 0, LossCounters::default(), &|_| None, &|k| {
            if k == 0 {
                Some(ContainerInfo::host())
            } else {
                info(k)
            }
        });
        let v: serde_json::Value = serde_json::from_str(&line("summary", &snap)).unwrap();
        assert_eq!(
            (v["by"].as_str(), v["version"].as_u64()),
            (Some("container"), Some(u64::from(SCHEMA_VERSION)))
        );
        let rows = v["rows"].as_array().unwrap();
        // Largest total first: the folded third container (other), then web, then the host.
        assert_eq!(rows[0]["other"], true);
        assert_eq!(rows[0]["comm"], "other");
        assert!(rows[0].get("container_id").is_none());
        assert_eq!(rows[1]["container_id"], "ab".repeat(32));
        assert_eq!(rows[1]["container_name"], "web\u{1b}");
        assert!(
            line("summary", &snap).contains(r"web\u001b"),
            "JSON escapes controls"
        );
        assert_eq!(rows[1]["container_image"], "nginx:1");
        assert_eq!(rows[1]["pod_uid"], "0f6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d");
        assert_eq!(rows[2]["container_id"], "");
        assert_eq!(rows[2]["container_name"], "-");
        assert!(rows[2].get("pod_uid").is_none() && rows[2].get("pid").is_none());
    }

    #[test]
    fn by_syscall_rows_have_no_pid() {
        let mut a = Aggregator::new(GroupBy::Syscall);
        a.record(&SyscallEvent {
            duration_ns: 5,
            ret: 0,
            tgid: 1,
            tid: 1,
            nr: 0,
            cgroup: 0,
            ..SyscallEvent::default()
        });
        let v: serde_json::Value = serde_json::from_str(&line(
            "summary",
            &a.snapshot(0, 0, LossCounters::default(), &|_| None),
        ))
        .unwrap();
        assert!(v["rows"][0].get("pid").is_none());
        assert!(v["rows"][0].get("comm").is_none());
        assert_eq!(v["by"], "syscall");
    }
}
