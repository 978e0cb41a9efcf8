//! `syslat doctor` and the choice of eBPF object: on this kernel (6.18, every feature
//! there) the default object, and the legacy one when `SYSLAT_FORCE_FALLBACK=1` asks for
//! it, for `doctor` and for a real recording (whose counts stay exact).
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use tests::{Record, count, syslat, temp_path};

fn doctor(force: bool) -> String {
    let mut c = syslat(&["doctor"]);
    if force {
        c.env("SYSLAT_FORCE_FALLBACK", "1");
    } else {
        c.env_remove("SYSLAT_FORCE_FALLBACK");
    }
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn doctor_lists_every_feature_and_the_object() {
    let text = doctor(false);
    for feature in [
        "BPF ring buffer map",
        "task-local storage map",
        "bpf_task_storage_get in raw tracepoints",
        "bpf_get_current_task_btf in raw tracepoints",
        "BPF atomic or/and instructions",
        "bpf_get_current_ancestor_cgroup_id in raw tracepoints",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(feature))
            .unwrap_or_else(|| panic!("no line for {feature}:\n{text}"));
        assert_eq!(
            line[feature.len()..].split_whitespace().next(),
            Some("yes"),
            "{line}"
        );
    }
    assert!(text.contains("eBPF object  default\n"), "{text}");
    assert!(
        text.contains("status       syslat can trace here"),
        "{text}"
    );

    let forced = doctor(true);
    assert!(
        forced.contains("eBPF object  legacy (forced by SYSLAT_FORCE_FALLBACK)"),
        "{forced}"
    );
    assert!(forced.contains("kernel BTF   read into memory"), "{forced}");
}

/// Records the workload with `-vv`, on the legacy object when `force`; returns the summary
/// and the log.
fn record(force: bool) -> (serde_json::Value, String) {
    let out = temp_path(if force { "forced.json" } else { "default.json" });
    let o = Record::json(&out, &["-vv"])
        .workload(&["threads", "4", "25000", "forks", "200", "pipe", "10", "2"])
        .env("SYSLAT_FORCE_FALLBACK", force.then_some("1"))
        .run();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    (tests::summary(&out), log)
}

#[test]
fn forced_fallback_records_exactly_with_the_legacy_object() {
    let (legacy, log) = record(true);
    assert!(
        log.contains("loading the legacy (fallbacks) eBPF object"),
        "{log}"
    );
    let (default, log) = record(false);
    assert!(log.contains("loading the default eBPF object"), "{log}");
    for s in [&legacy, &default] {
        assert_eq!(count(s, "getppid"), 100_000);
        assert_eq!(s["unpaired_events"], 0);
        assert_eq!(s["stale_events"], 0);
        assert_eq!(s["lost_events"], 0);
    }
    // The blocking pipe reads are switched out and come back through the tid-keyed hash
    // (legacy) or task storage (default): the same calls either way.
    for syscall in ["read", "clone", "clone3", "wait4", "exit_group"] {
        assert_eq!(
            count(&legacy, syscall),
            count(&default, syscall),
            "{syscall}"
        );
    }
    assert!(count(&legacy, "read") >= 10);
}
