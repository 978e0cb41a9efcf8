//! The command syslat starts is treated as it would be without syslat: signals that reach
//! syslat are passed on to it (once: not again when the terminal sent them to the whole
//! group), tracing goes on while it cleans up, syslat exits with its status; it starts
//! with the signal dispositions and mask syslat was started with (SIGPIPE not ignored).
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tests::{
    Reaped, Record, Signal, Tmux, count, fails_with, signal, summary, syslat, syslat_bin, temp_path,
};

/// A Python command that, on SIGTERM or SIGINT, counts the signal, sleeps 0.5 s, writes
/// how many signals it got to `argv[1]` and exits 3; SIGTERM ignored instead with `ignore`.
const HANDLER: &str = r#"
import signal, sys, time
got = 0
def handler(*_):
    global got
    got += 1
    if got == 1:
        time.sleep(0.5)
        with open(sys.argv[1], "w") as f:
            f.write(str(got))
        sys.exit(3)
mode = sys.argv[2]
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore" else handler)
signal.signal(signal.SIGINT, handler)
print("ready", flush=True)
time.sleep(30)
"#;

/// Starts `syslat record ARGS -- python3 -c HANDLER FILE MODE`; returns once the command
/// is ready.
fn start(args: &[&str], file: &std::path::Path, mode: &str) -> Reaped {
    let mut c = syslat(&["record"]);
    c.args(args)
        .args(["--", "python3", "-c", HANDLER])
        .arg(file)
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Reaped(c.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

#[test]
fn sigterm_is_passed_on_and_the_clean_up_is_traced() {
    let done = temp_path("cleaned-up");
    let out = temp_path("cleanup.json");
    let mut rec = start(
        &["-f", "json", "-o", out.to_str().unwrap()],
        &done,
        "handle",
    );
    // Let it reach its 30 s sleep (it prints "ready" just before).
    std::thread::sleep(Duration::from_millis(300));
    signal(&rec, Signal::SIGTERM);
    // syslat exits with the command's own status, after its clean-up.
    assert_eq!(rec.wait().unwrap().code(), Some(3));
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "1");
    let s = summary(&out);
    // The handler's 0.5 s sleep was traced (and the interrupted 30 s one, unless the
    // signal came before it began).
    assert!((1..=2).contains(&count(&s, "clock_nanosleep")), "{s}");
    let sleeps = tests::rows(&s, "clock_nanosleep");
    assert!(sleeps[0]["max_ns"].as_u64().unwrap() >= 500_000_000, "{s}");
    assert!(count(&s, "openat") > 0);
}

#[test]
fn kill_after_and_a_second_signal_kill_the_command() {
    let done = temp_path("never");
    // SIGTERM ignored by the command: --kill-after ends it with SIGKILL.
    let mut rec = start(&["--kill-after", "1s"], &done, "ignore");
    let t = Instant::now();
    signal(&rec, Signal::SIGTERM);
    assert_eq!(rec.wait().unwrap().code(), Some(128 + libc::SIGKILL));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // Without it, a second signal does.
    let mut rec = start(&[], &done, "ignore");
    signal(&rec, Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rec.try_wait().unwrap().is_none(),
        "one ignored SIGTERM ends nothing"
    );
    signal(&rec, Signal::SIGTERM);
    assert_eq!(rec.wait().unwrap().code(), Some(128 + libc::SIGKILL));
    assert!(!done.exists());
}

#[test]
fn ctrl_c_at_a_terminal_reaches_the_command_once() {
    let done = temp_path("ctrl-c");
    let script = temp_path("handler.py");
    std::fs::write(&script, HANDLER).unwrap();
    let cmd = format!(
        "{} record -- python3 {} {} handle; echo syslat-exit=$?; sleep 30",
        syslat_bin().display(),
        script.display(),
        done.display()
    );
    let tmux = Tmux::start(&cmd);
    tmux.wait_for("the command to start", |s| s.contains("ready"));
    tmux.keys("C-c");
    let screen = tmux.wait_for("syslat to exit", |s| s.contains("syslat-exit="));
    // The terminal sent SIGINT to the whole foreground group; syslat did not add a second.
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "1", "{screen}");
    assert!(screen.contains("syslat-exit=3"), "{screen}");
}

/// What `sh -c 'trap...; exec PROG ARGS'` prints, run directly or under syslat.
fn under_sh(prelude: &str, with_syslat: bool, argv: &str) -> String {
    let syslat = if with_syslat {
        format!("{} record -o /dev/null -- ", syslat_bin().display())
    } else {
        String::new()
    };
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("{prelude} exec {syslat}{argv}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_command_gets_the_dispositions_and_mask_syslat_was_started_with() {
    let status = "grep -E '^Sig(Ign|Blk)' /proc/self/status";
    for prelude in ["", "trap '' PIPE HUP;"] {
        let direct = under_sh(prelude, false, status);
        assert_eq!(under_sh(prelude, true, status), direct, "with {prelude:?}");
    }
    // A pipeline's writer dies of SIGPIPE (141), as without syslat, instead of failing
    // with EPIPE and "write error".
    let pipeline = "bash -c 'seq 1 10000000 | head -1 >/dev/null; echo ${PIPESTATUS[0]}'";
    assert_eq!(under_sh("", true, pipeline), "141\n");
    assert_eq!(under_sh("", false, pipeline), "141\n");
}

#[test]
fn a_command_or_target_that_cannot_be_traced_says_why_and_leaves_no_file() {
    let plain = temp_path("plain-file");
    std::fs::write(&plain, "not a program").unwrap();
    let dir = temp_path("a-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let out = temp_path("never-written.json");
    let _ = std::fs::remove_file(&out);
    let o = out.to_str().unwrap();
    for (cmd, expect) in [
        (plain.to_str().unwrap(), "permission denied"),
        (dir.to_str().unwrap(), "is a directory"),
        ("/nonexistent/program", "command not found"),
    ] {
        fails_with(&["record", "-o", o, "--", cmd], expect);
        assert!(
            !out.exists(),
            "a failed record -o leaves no empty file behind"
        );
    }
    // pid 2 is kthreadd on every Linux: a kernel thread, which makes no syscalls.
    fails_with(&["record", "-p", "2"], "pid 2 is a kernel thread");
}

#[test]
fn hostile_process_names_are_escaped_in_every_text_output() {
    // Any process may name itself with terminal escapes: set the window title, colour the
    // administrator's terminal.
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[31m";
    let json = temp_path("evil.json");
    let steps = ["comm", evil, "getppid", "10", "sleep", "6", "2"];
    Record::json(&json, &["--by", "process"])
        .workload(&steps)
        .run();
    let text = temp_path("evil.txt");
    Record::to(&text, &["--by", "process", "--slow", "1ms"])
        .workload(&steps)
        .run();
    let report = tests::run(&["report", "--by", "process", json.to_str().unwrap()]);
    let html = temp_path("evil.html");
    let o = tests::run(&[
        "report",
        "--by",
        "process",
        "-f",
        "html",
        "-o",
        html.to_str().unwrap(),
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let md = tests::run(&[
        "compare",
        "--by",
        "process",
        "-f",
        "markdown",
        json.to_str().unwrap(),
        json.to_str().unwrap(),
    ]);
    for (what, bytes) in [
        (
            "record text and its slow-call log",
            std::fs::read(&text).unwrap(),
        ),
        ("report text", report.stdout),
        ("report html", std::fs::read(&html).unwrap()),
        ("compare markdown", md.stdout),
    ] {
        let s = String::from_utf8_lossy(&bytes);
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0x07),
            "{what} holds raw escapes"
        );
        assert!(
            s.contains(r"\x1b]0;pwned\x07"),
            "{what} shows the name escaped:\n{s}"
        );
    }
    // The JSON keeps the name as it is (JSON escapes it itself).
    let raw = std::fs::read_to_string(&json).unwrap();
    assert!(raw.contains(r"\u001b]0;pwned\u0007"), "{raw}");
}
