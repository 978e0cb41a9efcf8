//! `syslat serve` scraped by real Prometheus servers (Debian's `prometheus`, 2.42 on Debian
//! 12), every second: one with native histograms on (it asks for the protobuf format and
//! stores `syslat_syscall_duration_seconds` as a native histogram), one without (text
//! scrape, classic `_bucket` series). A known workload runs between the first scrapes and
//! the queries; the HTTP API then answers the exact call counts, a median of 10 ms sleeps
//! within the native bucket error, and every query of the Grafana dashboard
//! (`deploy/grafana/syslat.json`, read panel by panel) returns data.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{io::Write, path::PathBuf, time::Duration};

use serde_json::Value;
use tests::{
    prometheus::{Prometheus, free_port, has_data, now, substitute, urlencode},
    start_serving, wait_for_exit, workload,
};

/// The workload between the two gates: 1000 getppid, 300 sleeps of 10 ms, 50 ENOENTs.
const GETPPID: u64 = 1000;
const SLEEPS: u64 = 300;
const ENOENT: u64 = 50;

/// Relative width of a native bucket at syslat's schema 3: 2^(1/8) - 1
/// (`profiler::output::prometheus::native_bucket_error`).
fn bucket_error() -> f64 {
    (1.0f64 / 8.0).exp2() - 1.0
}

/// Dashboard panels whose queries need `syslat serve --by container` of containers (the
/// labels `container_id`, `container_name`, `pod_uid`; the workload here runs on the host):
/// checked here to be valid PromQL (Prometheus parses and runs them), and for data in
/// tests/tests/container.rs, against `serve --by container` of real containers.
const NEEDS_BY_CONTAINER: &[&str] = &["Time in syscalls by container", "p99 latency by container"];

#[test]
fn prometheus_scrapes_native_and_classic_histograms_and_the_dashboard_has_data() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // Held at the first gate until both servers scrape, at the second until the end.
    let mut srv = start_serving(
        &addr,
        &[
            "--by",
            "process",
            "--",
            workload(),
            "gate",
            "getppid",
            &GETPPID.to_string(),
            "sleep",
            &SLEEPS.to_string(),
            "10",
            "enoent",
            &ENOENT.to_string(),
            "gate",
        ],
    );
    let native = Prometheus::start("native", &addr, true);
    let classic = Prometheus::start("classic", &addr, false);
    native.wait_up();
    classic.wait_up();
    let start = now();
    let mut gate = srv.stdin.take().unwrap();
    gate.write_all(b"\n").unwrap();
    gate.flush().unwrap();

    let sleeps = r#"syslat_syscall_duration_seconds{syscall="clock_nanosleep"}"#;
    let count = native.settle(&format!("histogram_count(sum({sleeps}))"), SLEEPS as f64);
    assert_eq!(
        count,
        Some(SLEEPS as f64),
        "native histogram_count of clock_nanosleep"
    );
    assert_eq!(
        native.settle(
            r#"histogram_count(sum(syslat_syscall_duration_seconds{syscall="getppid"}))"#,
            GETPPID as f64
        ),
        Some(GETPPID as f64)
    );
    // Stored as a native histogram (so scraped as protobuf), and as nothing else: 2.42
    // has no scrape_classic_histograms.
    let raw = native.query(sleeps);
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert!(
        raw[0]["histogram"][1].is_object(),
        "not a native histogram: {raw:?}"
    );
    assert!(
        native
            .query("syslat_syscall_duration_seconds_bucket")
            .is_empty()
    );
    // The median of the 10 ms sleeps (each takes a little more) lies within the native
    // bucket error of 10 ms.
    let p50 = native
        .scalar(&format!("histogram_quantile(0.5, sum({sleeps}))"))
        .unwrap();
    let e = bucket_error();
    assert!(
        (p50 - 0.010).abs() <= 0.010 * e,
        "p50 of 10 ms sleeps {p50} s, not within {:.2}% of 10 ms: {raw:?}",
        e * 100.0
    );
    // Every call in exactly one native bucket: the buckets add up to the count.
    let buckets: f64 = raw[0]["histogram"][1]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[3].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(buckets, SLEEPS as f64, "{raw:?}");

    // The text scrape: classic buckets, the same count.
    let classic_count = classic.settle(
        r#"sum(syslat_syscall_duration_seconds_count{syscall="clock_nanosleep"})"#,
        SLEEPS as f64,
    );
    assert_eq!(classic_count, Some(SLEEPS as f64));
    // Every sleep takes more than 10 ms, so none is in the 10 ms bucket.
    for (le, want) in [("+Inf", SLEEPS), ("0.01", 0)] {
        let got = classic.scalar(&format!(
            r#"sum(syslat_syscall_duration_seconds_bucket{{syscall="clock_nanosleep",le="{le}"}})"#
        ));
        assert_eq!(got, Some(want as f64), "le={le}");
    }
    assert!(classic.query("syslat_syscall_duration_seconds").is_empty());
    // The anatomy: the sleeps' time is almost all blocked, and the three parts add up to
    // the duration histogram's sum.
    let part = |p: &str| {
        classic
            .scalar(&format!(
                r#"sum(syslat_syscall_time_seconds_total{{syscall="clock_nanosleep",part="{p}"}})"#
            ))
            .unwrap_or(0.0)
    };
    let sum = classic
        .scalar(r#"sum(syslat_syscall_duration_seconds_sum{syscall="clock_nanosleep"})"#)
        .expect("duration sum");
    let (oncpu, runq, blocked) = (part("oncpu"), part("runq"), part("blocked"));
    assert!(
        ((oncpu + runq + blocked) - sum).abs() < 1e-6,
        "parts {oncpu} + {runq} + {blocked} vs sum {sum}"
    );
    assert!(blocked >= 0.85 * sum, "blocked {blocked} of {sum}");
    assert_eq!(
        classic.scalar(r#"sum(syslat_syscall_runq_seconds_count{syscall="clock_nanosleep"})"#),
        Some(SLEEPS as f64),
        "the run-queue histogram counts every sleep"
    );
    assert_eq!(
        native.settle(
            r#"histogram_count(sum(syslat_syscall_runq_seconds{syscall="clock_nanosleep"}))"#,
            SLEEPS as f64
        ),
        Some(SLEEPS as f64),
        "native run-queue histogram"
    );
    let errors = r#"sum(syslat_syscall_errors_total{syscall="openat",errno="ENOENT"})"#;
    for p in [&native, &classic] {
        // The workload's 50, and any the dynamic loader met before main.
        let n = p.settle(errors, ENOENT as f64).unwrap();
        assert!(n >= ENOENT as f64, "native {}: {n}", p.native);
    }

    // Every panel of the dashboard, on both servers (its queries fall back to the classic
    // buckets where native histograms are off).
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/syslat.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let range_s = (now() - start).ceil() as u64 + 5;
    let panels: Vec<&Value> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .collect();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for title in NEEDS_BY_CONTAINER {
        assert!(
            panels.iter().any(|p| p["title"] == *title),
            "no panel {title:?} in the dashboard"
        );
    }
    let mut checked = 0;
    for p in &panels {
        let title = p["title"].as_str().unwrap();
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = substitute(t["expr"].as_str().unwrap(), range_s);
            assert!(!expr.contains('$'), "{title}: unknown variable in {expr}");
            for prom in [&native, &classic] {
                let instant = t["instant"] == true;
                let result = if instant {
                    prom.query(&expr)
                } else {
                    let data = prom
                        .api(&format!(
                            "query_range?query={}&start={start:.3}&end={:.3}&step=1",
                            urlencode(&expr),
                            now()
                        ))
                        .unwrap_or_else(|e| panic!("{title}: {expr}: {e}"));
                    data["result"].as_array().unwrap().clone()
                };
                if NEEDS_BY_CONTAINER.contains(&title) {
                    // Valid PromQL here (it ran); data is checked below, by container.
                    continue;
                }
                assert!(
                    has_data(&result),
                    "panel {title:?} has no data (native: {}): {expr}: {result:?}",
                    prom.native
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 14, "{checked} queries checked");
    // The template variables (`label_values(SELECTOR, LABEL)`) find values.
    for var in dash["templating"]["list"].as_array().unwrap() {
        if var["type"] != "query" {
            continue;
        }
        let def = var["definition"].as_str().unwrap();
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected variable query {def}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let selector = substitute(selector.trim(), range_s);
        for prom in [&native, &classic] {
            let series = prom
                .api(&format!("series?match[]={}", urlencode(&selector)))
                .unwrap();
            assert!(
                series
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s[label.trim()].is_string()),
                "variable {}: no {label} in {selector} (native: {})",
                var["name"],
                prom.native
            );
        }
    }

    // The workload passes its second gate; serve ends with it, status 0.
    drop(gate);
    let st = wait_for_exit(
        &mut srv,
        Duration::from_secs(10),
        "serve did not end with the command",
    );
    assert_eq!(st.code(), Some(0));
}
