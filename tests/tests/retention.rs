//! `syslat serve --by process` keeps the series of a process that exited for two scrapes
//! after its exit, with its exact final counts, and drops them from the third on; the
//! series of live processes and syslat's own total of traced calls stay.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
};

use tests::{
    Reaped,
    prometheus::{free_port, http_get},
    syslat,
};

/// The body of one text scrape of `/metrics`.
fn scrape(port: u16) -> String {
    let (status, body) = http_get(port, "/metrics").unwrap();
    assert!(status.contains("200"), "{status}");
    body
}

/// The value of the sample whose line starts with `prefix`, if there is one.
fn sample(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn getppid_count(comm: &str) -> String {
    format!(r#"syslat_syscall_duration_seconds_count{{syscall="getppid",comm="{comm}"}}"#)
}

#[test]
fn exited_processes_are_scraped_twice_then_dropped() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // Three children named c0, c1, c2 make 250 getppid calls each and exit; then the
    // shell says so and waits (live) with the workload at its gate.
    let workload = tests::workload();
    let script = format!("{workload} named-children 3 250; echo done; {workload} gate");
    let mut srv = Reaped(
        syslat(&[
            "serve", "--by", "process", "--listen", &addr, "--", "sh", "-c", &script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(srv.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("serving"), "{line}");
    let mut done = String::new();
    BufReader::new(srv.stdout.take().unwrap())
        .read_line(&mut done)
        .unwrap();
    assert_eq!(done.trim(), "done");
    let traced = "syslat_traced_syscalls_total ";
    let mut totals = Vec::new();
    for k in 1..=2 {
        let text = scrape(port);
        for c in ["c0", "c1", "c2"] {
            assert_eq!(
                sample(&text, &getppid_count(c)),
                Some(250),
                "scrape {k} after the exits holds {c}'s final count:\n{text}"
            );
        }
        totals.push(sample(&text, traced).unwrap());
    }
    let text = scrape(port);
    for c in ["c0", "c1", "c2"] {
        assert!(
            !text.contains(&format!(r#"comm="{c}""#)),
            "the third scrape has no series of {c}:\n{text}"
        );
    }
    // The live shell's series stay, and the total of traced calls never goes down.
    assert!(text.contains(r#"comm="sh""#), "{text}");
    totals.push(sample(&text, traced).unwrap());
    assert!(totals[0] >= 750, "{totals:?}");
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
    drop(srv.stdin.take());
    let status = srv.wait().unwrap();
    assert!(status.success(), "{status}");
}
