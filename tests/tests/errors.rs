//! Errors at the edges: output into a closed pipe (`syslat ... | head -1`) ends quietly
//! with exit 0, as the README promises; a BPF call the kernel refuses for want of
//! privilege (a user namespace's root, whose capabilities the kernel does not honour for
//! BPF) is one line that names the capabilities, not a missing feature; and values a
//! subcommand does not support are refused by the parser (exit 2), before any work.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::process::{Output, Stdio};

use tests::{fails_with, record_workload, syslat, temp_path};

/// Runs `syslat ARGS` with stdout a pipe whose reading end is already closed, so the
/// first write fails with EPIPE (syslat's runtime ignores SIGPIPE).
fn into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    syslat(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn assert_quiet_exit(args: &[&str]) {
    let o = into_closed_pipe(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(o.status.code(), Some(0), "{args:?}: {stderr}");
    // The tracing subcommands' start-up note ("tracing all processes") may be there; no
    // complaint about the pipe.
    assert!(
        stderr.lines().all(|l| l.starts_with("syslat: tracing")),
        "{args:?}: no error on stderr: {stderr}"
    );
}

#[test]
fn a_closed_pipe_ends_every_subcommand_quietly() {
    let rec = temp_path("errors-pipe.json");
    let summary = record_workload(&rec, &[], &["getppid", "100"]);
    assert!(summary["calls"].as_u64().unwrap() >= 100);
    let rec = rec.to_str().unwrap();
    for args in [
        vec!["--help"],
        vec!["record", "--help"],
        vec!["--version"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["report", rec],
        vec!["report", "-f", "json", rec],
        vec!["compare", rec, rec],
        vec!["compare", "-f", "json", rec, rec],
        vec!["doctor"],
        vec!["record", "-d", "200ms", "-s", "getppid"],
        vec!["top", "-b", "-n", "1", "-i", "100ms", "-s", "getppid"],
    ] {
        assert_quiet_exit(&args);
    }
}

/// Root in a new user namespace has every capability in its effective set, but the kernel
/// checks BPF against the initial namespace and answers EPERM: the probe's own answer, not
/// a missing ring buffer, is what syslat must report, with the capabilities it needs.
#[test]
fn eperm_from_the_kernel_names_the_capabilities() {
    let o = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user"])
        .arg(tests::syslat_bin())
        .args(["record", "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("syslat: "), "{stderr}");
    assert!(!stderr.contains("lacks"), "not a missing feature: {stderr}");
    assert!(
        stderr.contains("Operation not permitted") && stderr.contains("CAP_BPF"),
        "{stderr}"
    );
}

#[test]
fn values_a_subcommand_does_not_support_are_parse_errors() {
    for (args, bad) in [
        (vec!["serve", "--by", "thread"], "'thread'"),
        (vec!["serve", "--by", "cgroup"], "'cgroup'"),
        (vec!["compare", "--by", "thread", "a", "b"], "'thread'"),
        (vec!["compare", "--by", "cgroup", "a", "b"], "'cgroup'"),
        (
            vec!["compare", "--by", "container", "a", "b"],
            "'container'",
        ),
    ] {
        fails_with(&args, &format!("invalid value {bad} for '--by <BY>'"));
    }
}
