//! `syslat serve`: scraped during a known workload, the histogram count equals the
//! workload's calls, the output passes `promtool check metrics`, and bad addresses fail.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{Reaped, fails_with, run, syslat};

const WORKLOAD: &str = env!("CARGO_BIN_EXE_workload");

fn get(addr: &str, path: &str, accept: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").unwrap().1
}

fn metric(text: &str, line_prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn scrape_counts_the_workload_and_passes_promtool() {
    let addr = "127.0.0.1:19876";
    // 4321 getppid calls, then 3 s of sleeping during which the metrics are scraped.
    let mut srv = Reaped(
        syslat(&[
            "serve", "--listen", addr, "--", WORKLOAD, "getppid", "4321", "sleep", "30", "100",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(srv.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("serving http://127.0.0.1:19876/metrics"),
        "{line}"
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
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by cargo xtask setup");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "serve did not end with the command"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(srv.try_wait().unwrap().unwrap().code(), Some(0));
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
    let o = run(&["serve", "--listen", &addr]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
        "{err}"
    );
}
