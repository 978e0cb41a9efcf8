//! JSON Lines. Every line is one object with a `type`; `record` ends with one
//! `{"type":"summary", ...}` line. The schema is a public interface (README, "JSON Lines").

use serde::Serialize;

use crate::aggregate::{
    GroupBy, Row, Snapshot,
    stacks::{StackRow, StackSet},
};

/// Version of the JSON Lines schema, carried in every line as `"version"`. Version 2 added
/// the rows' anatomy fields (`oncpu_total_ns` ... `blocked_hdr`), version 3 the container
/// fields of `--by container` rows (`container_id` ... `pod_uid`), version 4 the summary's
/// `stacks` (`record --stacks`); older files still read.
pub const SCHEMA_VERSION: u32 = 4;

/// One row, as serialized.
#[derive(Serialize)]
pub struct JsonRow {
    /// Syscall name.
    pub syscall: String,
    /// Syscall number.
    pub nr: u32,
    /// Process id (`--by process`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Thread id (`--by thread`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// cgroup v2 path (`--by cgroup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Container id, 64 hex digits, or empty for the host and unknown rows (`--by container`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Container name (`-` host, `?` unknown, empty when its runtime did not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The container's image (empty when its runtime did not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_image: Option<String>,
    /// The container's Kubernetes pod UID, when it is in a pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Process name (`--by process|thread`); `other` for folded rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Set on rows that hold the calls of keys folded beyond `--max-keys`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
    /// Calls.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Failures by errno name.
    pub errnos: serde_json::Map<String, serde_json::Value>,
    /// Exact total time, ns.
    pub total_ns: u64,
    /// Fastest call, ns.
    pub min_ns: u64,
    /// Exact mean, ns.
    pub mean_ns: u64,
    /// Percentiles, ns.
    pub p50_ns: u64,
    /// 90th percentile, ns.
    pub p90_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Slowest call, ns.
    pub max_ns: u64,
    /// The histogram: HdrHistogram V2 compressed encoding, base64.
    pub hdr: String,
    /// Exact time running on a CPU, ns: `total_ns` less `runq_total_ns` and
    /// `blocked_total_ns`.
    pub oncpu_total_ns: u64,
    /// Exact time runnable but waiting for a CPU, ns.
    pub runq_total_ns: u64,
    /// Exact time sleeping (blocked), ns.
    pub blocked_total_ns: u64,
    /// Median per-call run-queue wait, ns.
    pub runq_p50_ns: u64,
    /// 99th percentile per-call run-queue wait, ns.
    pub runq_p99_ns: u64,
    /// Median per-call blocked time, ns.
    pub blocked_p50_ns: u64,
    /// 99th percentile per-call blocked time, ns.
    pub blocked_p99_ns: u64,
    /// Context switches out inside the calls.
    pub switches: u64,
    /// Of which involuntary (preempted while runnable).
    pub involuntary_switches: u64,
    /// Per-call run-queue wait, encoded like `hdr`; absent when no call switched (all 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runq_hdr: Option<String>,
    /// Per-call blocked time, encoded like `hdr`; absent when no call switched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_hdr: Option<String>,
}

impl From<&Row> for JsonRow {
    fn from(row: &Row) -> Self {
        let st = row.stats();
        let (pid, comm) = match (row.pid, row.other) {
            (Some(p), _) => (Some(p), Some(row.comm.clone().unwrap_or_default())),
            (None, true) => (None, Some("other".to_string())),
            (None, false) => (None, None),
        };
        let off = &row.series.off_cpu;
        let hists = off.hists();
        JsonRow {
            syscall: row.syscall.clone(),
            nr: row.nr,
            pid,
            tid: row.tid,
            cgroup: row.cgroup.clone(),
            container_id: row.container.as_ref().map(|c| c.id.clone()),
            container_name: row.container.as_ref().map(|c| c.name.clone()),
            container_image: row.container.as_ref().map(|c| c.image.clone()),
            pod_uid: row.container.as_ref().and_then(|c| c.pod_uid.clone()),
            comm,
            other: row.other,
            count: st.count,
            errors: st.errors,
            errnos: st.errnos.into_iter().map(|(k, v)| (k, v.into())).collect(),
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

#[derive(Serialize)]
struct Line<'a> {
    r#type: &'a str,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<u32>,
    by: &'a str,
    start_unix_ns: u64,
    duration_ns: u64,
    calls: u64,
    lost_events: u64,
    dropped_events: u64,
    unpaired_events: u64,
    stale_events: u64,
    unfinished_calls: u64,
    folded_keys: u64,
    rows: Vec<JsonRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stacks: Option<&'a [StackRow]>,
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
    let l = Line {
        r#type: kind,
        version: SCHEMA_VERSION,
        run,
        by: match snap.group {
            GroupBy::Syscall => "syscall",
            GroupBy::Process => "process",
            GroupBy::Thread => "thread",
            GroupBy::Cgroup => "cgroup",
            GroupBy::Container => "container",
        },
        start_unix_ns: snap.start_unix_ns,
        duration_ns: snap.duration_ns,
        calls: snap.total_calls(),
        lost_events: snap.loss.lost(),
        dropped_events: snap.loss.dropped,
        unpaired_events: snap.loss.unpaired,
        stale_events: snap.loss.stale,
        unfinished_calls: snap.loss.unfinished,
        folded_keys: snap.folded_keys,
        rows: snap.rows.iter().map(JsonRow::from).collect(),
        stacks: stacks.map(|s| s.rows.as_slice()),
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
