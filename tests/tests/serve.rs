//! `syslat serve`: scraped during a known workload, the histogram count equals the
//! workload's calls, the output passes `promtool check metrics`, and bad addresses fail.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::time::{Duration, Instant};

use tests::{
    fails_with,
    http::{assert_promtool_accepts, body, get, metric},
    start_serving, wait_for_exit, workload,
};

#[test]
fn scrape_counts_the_workload_and_passes_promtool() {
    let addr = "127.0.0.1:19876";
    // 4321 getppid calls, then 3 s of sleeping during which the metrics are scraped.
    let mut srv = start_serving(
        addr,
        &["--", workload(), "getppid", "4321", "sleep", "30", "100"],
    );
    let want = r#"syslat_syscall_duration_seconds_count{syscall="getppid"}"#;
    let deadline = Instant::now() + Duration::from_secs(3);
    let text = loop {
        let resp = get(addr, "/metrics", "text/plain");
        if metric(body(&resp), want) == Some(4321) {
            break resp;
        }
        assert!(
            Instant::now() < deadline,
            "count never reached 4321: {:?}",
            metric(body(&resp), want)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4"),
        "{text}"
    );
    let text = body(&text);
    assert_eq!(
        metric(
            text,
            r#"syslat_syscall_duration_seconds_bucket{le="+Inf",syscall="getppid"}"#
        ),
        Some(4321)
    );
    assert!(
        text.contains("syslat_events_lost_total{reason=\"dropped\"} 0"),
        "{text}"
    );
    assert!(text.contains("syslat_self_cpu_seconds_total"), "{text}");
    assert_promtool_accepts(text);
    // OpenMetrics on request; an index page; 404 elsewhere.
    let om = get(
        addr,
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    );
    assert!(
        om.contains("Content-Type: application/openmetrics-text"),
        "{om}"
    );
    assert!(om.trim_end().ends_with("# EOF"), "{om}");
    assert!(get(addr, "/", "text/html").contains("href=\"/metrics\""));
    assert!(get(addr, "/nope", "*/*").starts_with("HTTP/1.1 404"));
    // The command ends after its sleeps; serve ends with it and exits with its status.
    let st = wait_for_exit(
        &mut srv,
        Duration::from_secs(10),
        "serve did not end with the command",
    );
    assert_eq!(st.code(), Some(0));
}

#[test]
fn bad_listen_addresses_fail_with_one_line() {
    for (args, expect) in [
        (
            vec!["serve", "--listen", "localhost"],
            "invalid listen address 'localhost'",
        ),
        (
            vec!["serve", "--listen", "999.1.1.1:80"],
            "invalid listen address",
        ),
        // serve labels by syscall or process name only; it used to take these and
        // mislabel them.
        (
            vec!["serve", "--by", "cgroup"],
            "invalid value 'cgroup' for '--by",
        ),
        (
            vec!["serve", "--by", "thread"],
            "invalid value 'thread' for '--by",
        ),
    ] {
        fails_with(&args, expect);
    }
    // A port in use.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let err = fails_with(
        &["serve", "--listen", &addr],
        &format!("cannot listen on {addr}"),
    );
    assert!(err.contains("in use"), "{err}");
}
