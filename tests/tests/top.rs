//! `syslat top`: batch mode prints exactly the tables asked for; the live view runs in a
//! real terminal (tmux), shows the workload's syscall with a plausible rate, reacts to
//! sort, drill-down and quit keys, and leaves no program loaded.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    process::Command,
    time::{Duration, Instant},
};

use tests::{Tmux, our_program_ids, run, syslat_bin, workload};

#[test]
fn batch_mode_prints_count_tables() {
    let o = run(&["top", "-b", "-n", "2", "-i", "300ms"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("syslat top - ").count(), 2, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SYSCALL")).count(),
        2,
        "{out}"
    );
    // Not a terminal: batch mode even without -b.
    let o = run(&["top", "-n", "1", "-i", "200ms"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("syslat top - ")
            .count(),
        1
    );
}

#[test]
fn live_view_in_a_terminal() {
    let before = our_program_ids();
    let status = std::env::temp_dir().join(format!("syslat-top-status-{}", std::process::id()));
    let _ = std::fs::remove_file(&status);
    // 300 sleeps of 10 ms: about 3 s of ~100 clock_nanosleep calls a second.
    let cmd = format!(
        "{} top -i 500ms -- {} sleep 300 10; echo $? > {}; sleep 60",
        syslat_bin().display(),
        workload(),
        status.display()
    );
    let t = Tmux::start(&cmd);
    let s = t.wait_for("the clock_nanosleep row", |s| s.contains("clock_nanosleep"));
    let row = s
        .lines()
        .find(|l| l.trim_start().starts_with("clock_nanosleep"))
        .unwrap();
    let rate: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        (60.0..=110.0).contains(&rate),
        "about 100 calls/s expected: {row}"
    );
    assert!(s.contains("%TIME▼"), "{s}");
    let mine: Vec<u32> = our_program_ids().difference(&before).copied().collect();
    assert!(mine.len() >= 2, "programs loaded while running");
    // Sort by p99 (key 5), then drill down into the selected syscall.
    t.keys("5");
    t.wait_for("the sort marker on P99", |s| s.contains("P99▼"));
    t.keys("Enter");
    // The whole frame: a capture can catch the terminal between two writes of one frame
    // (the chart drawn, the process table below not yet).
    let s = t.wait_for("the drill-down", |s| {
        s.contains("clock_nanosleep: calls by latency")
            && s.split("processes making clock_nanosleep")
                .nth(1)
                .is_some_and(|table| table.contains("workload"))
    });
    assert!(
        s.contains("≥ 8.39ms"),
        "10 ms sleeps fall in the 8.39 ms..16.8 ms bucket: {s}"
    );
    assert!(
        s.contains("processes making clock_nanosleep") && s.contains("workload"),
        "{s}"
    );
    // Back, the process view, then wait for the command to end and quit.
    t.keys("Escape");
    t.wait_for("the syscall table", |s| s.contains(" syscalls, latency "));
    t.keys("p");
    t.wait_for("the process view", |s| {
        s.contains("processes, by syscall time") && s.contains("workload")
    });
    t.wait_for("the command's end", |s| s.contains("command exited (0)"));
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status.exists() {
        assert!(Instant::now() < deadline, "syslat top did not exit on q");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&status).unwrap().trim(),
        "0",
        "the command's status"
    );
    let now = our_program_ids();
    let deadline = Instant::now() + Duration::from_secs(10);
    while mine.iter().any(|id| our_program_ids().contains(id)) {
        assert!(
            Instant::now() < deadline,
            "programs left loaded after q: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The terminal is restored: the shell prompt screen no longer shows the view.
    let s = t.screen();
    assert!(!s.contains("syslat top  up"), "{s}");
}

#[test]
fn a_closed_terminal_ends_top() {
    // The command (an odd sleep length, to find it) outlives the terminal; syslat must not.
    let pattern = "syslat top -- sleep 301";
    let t = Tmux::start(&format!("{} top -- sleep 301", syslat_bin().display()));
    t.wait_for("the view", |s| s.contains("syslat top"));
    drop(t);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let o = Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .unwrap();
        if !o.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "syslat top still runs after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("pkill").args(["-f", "^sleep 301$"]).status();
}
