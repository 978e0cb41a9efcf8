//! `--stacks`: the user and kernel stacks of traced calls, against a helper built with
//! frame pointers whose call paths are known (`helpers/stacks_helper.rs`: `slow_path_a`
//! makes one 10 ms `clock_nanosleep`, `fast_path_b` 100 `getppid`, 30 times). The folded
//! output is read here and by the inferno crate (an independent reader of the format),
//! the flame graph is checked for the frames it must name, and the slow-call log for the
//! top frames of each slow call.

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use tests::{Record, Tmux, fails_with, record_json, syslat, syslat_bin, temp_path};

const HELPER: &str = env!("STACKS_HELPER");

/// One folded line: its frames (outermost first) and value.
struct Line {
    frames: Vec<String>,
    value: u64,
}

/// Parses folded lines (`a;b;c VALUE`), asserting the format.
fn parse_folded(text: &str) -> Vec<Line> {
    text.lines()
        .map(|l| {
            let (stack, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value: {l}"));
            Line {
                frames: stack.split(';').map(str::to_string).collect(),
                value: v.parse().unwrap_or_else(|_| panic!("bad value: {l}")),
            }
        })
        .collect()
}

/// Whether a frame is the helper's function `name` (Rust names are path-qualified).
fn is_fn(frame: &str, name: &str) -> bool {
    frame == name || frame.ends_with(&format!("::{name}"))
}

/// The lines of `syscall` (their leaf frame).
fn of<'a>(lines: &'a [Line], syscall: &str) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| l.frames.last().map(String::as_str) == Some(syscall))
        .collect()
}

/// `record -o OUT ARGS -- HELPER [ROUNDS]` (30 rounds without) with `env` set in syslat's
/// environment, asserting success; the text of OUT.
fn record_helper(name: &str, args: &[&str], rounds: Option<&str>, env: &[(&str, &str)]) -> String {
    let out = temp_path(name);
    let cmd: Vec<&str> = std::iter::once(HELPER).chain(rounds).collect();
    let mut rec = Record::to(&out, args).command(&cmd);
    for (key, value) in env {
        rec = rec.env(key, Some(value));
    }
    rec.run();
    std::fs::read_to_string(&out).expect("recorded output")
}

/// The share of `lines`' weight whose stack contains function `name`.
fn share_under(lines: &[&Line], name: &str) -> (u64, u64) {
    let total = lines.iter().map(|l| l.value).sum();
    let under = lines
        .iter()
        .filter(|l| l.frames.iter().any(|f| is_fn(f, name)))
        .map(|l| l.value)
        .sum();
    (under, total)
}

#[test]
fn the_slow_path_carries_the_sleep_weight() {
    let text = record_helper("stacks.folded", &["--stacks", "-f", "folded"], None, &[]);
    let lines = parse_folded(&text);
    let comm = "stacks-helper";
    assert!(
        lines.iter().all(|l| l.frames[0] == comm),
        "every line starts with the process name:\n{text}"
    );
    let sleeps = of(&lines, "clock_nanosleep");
    let (under, total) = share_under(&sleeps, "slow_path_a");
    // 30 sleeps of at least 10 ms each; the weight is their summed latency in ns.
    assert!(total >= 300_000_000, "clock_nanosleep weight {total} ns");
    assert!(
        under * 10 >= total * 9,
        "{under} of {total} ns of clock_nanosleep under slow_path_a:\n{text}"
    );
    let ppids = of(&lines, "getppid");
    let (wrong, ppid_total) = share_under(&ppids, "slow_path_a");
    assert!(ppid_total > 0, "getppid lines:\n{text}");
    assert_eq!(wrong, 0, "getppid weight under slow_path_a:\n{text}");
    let (right, _) = share_under(&ppids, "fast_path_b");
    assert!(
        right * 10 >= ppid_total * 9,
        "{right} of {ppid_total} ns of getppid under fast_path_b:\n{text}"
    );
    // Frame pointers really were followed: the sleep's stack goes out through the
    // helper's own frames to main, in order, not just the C library's wrapper.
    let deepest = sleeps
        .iter()
        .max_by_key(|l| l.value)
        .expect("a clock_nanosleep line");
    let pos = |name: &str| {
        deepest
            .frames
            .iter()
            .position(|f| is_fn(f, name))
            .unwrap_or_else(|| panic!("{name} missing from {:?}", deepest.frames))
    };
    assert!(
        pos("main") < pos("slow_path_a") && pos("slow_path_a") < pos("sleep_for"),
        "{:?}",
        deepest.frames
    );
    // Its kernel part was taken where the call blocked (the sleep, below the syscall).
    let kernel: Vec<&String> = deepest
        .frames
        .iter()
        .filter(|f| f.ends_with("_[k]"))
        .collect();
    assert!(
        kernel.iter().any(|f| f.contains("nanosleep")),
        "kernel frames {kernel:?}"
    );
    // inferno, an independent reader of the format, draws it and names the function.
    let mut svg = Vec::new();
    let mut opt = inferno::flamegraph::Options::default();
    inferno::flamegraph::from_lines(&mut opt, text.lines(), &mut svg).expect("inferno reads it");
    assert!(String::from_utf8_lossy(&svg).contains("slow_path_a"));
}

#[test]
fn calls_are_counted_exactly_with_the_count_weight() {
    let text = record_helper(
        "stacks-count.folded",
        &["--stacks", "--stacks-weight", "count", "-f", "folded"],
        None,
        &[],
    );
    let lines = parse_folded(&text);
    let sum = |syscall: &str| -> u64 { of(&lines, syscall).iter().map(|l| l.value).sum() };
    assert_eq!(sum("clock_nanosleep"), 30, "{text}");
    assert_eq!(sum("getppid"), 3000, "{text}");
    let (under, _) = share_under(&of(&lines, "getppid"), "fast_path_b");
    assert_eq!(under, 3000, "getppid under fast_path_b:\n{text}");
    assert!(!text.contains("lost"), "{text}");
}

/// The stack-trace map is a hash without chaining: a stack whose bucket holds another
/// (`EEXIST`, in several percent of runs at the full size) is sent in a ring buffer
/// instead. With two buckets nearly every stack collides, and every call still has its
/// own frames, user and kernel.
#[test]
fn stacks_that_collide_in_the_map_keep_their_frames() {
    let text = record_helper(
        "stacks-collide.folded",
        &["--stacks", "--stacks-weight", "count", "-f", "folded"],
        None,
        &[("SYSLAT_STACK_MAP_ENTRIES", "2")],
    );
    assert!(!text.contains("lost"), "{text}");
    let lines = parse_folded(&text);
    let ppids = of(&lines, "getppid");
    assert_eq!(share_under(&ppids, "fast_path_b"), (3000, 3000), "{text}");
    let sleeps = of(&lines, "clock_nanosleep");
    assert_eq!(share_under(&sleeps, "slow_path_a"), (30, 30), "{text}");
    // The kernel stack of a sleep is taken at its last switch-out: where it blocked, or
    // (rarely, on a loaded machine) where it was preempted on its way out after waking,
    // in the exit path.
    let blocked: u64 = sleeps
        .iter()
        .filter(|l| {
            l.frames
                .iter()
                .any(|f| f.ends_with("_[k]") && f.contains("nanosleep"))
        })
        .map(|l| l.value)
        .sum();
    assert!(
        blocked >= 27,
        "{blocked} of 30 sleeps blocked in nanosleep:\n{text}"
    );
}

#[test]
fn a_process_gone_before_its_stacks_are_read_keeps_its_names() {
    // Five rounds: the helper lives about 50 ms, and nothing wakes syslat before it exits
    // (no slow-call log, the call logs far from full), so its calls are drained after its
    // end; its mappings were read at its exec, when the programs said it had exec'd.
    let text = record_helper(
        "stacks-gone.folded",
        &["--stacks", "--stacks-weight", "count", "-f", "folded"],
        Some("5"),
        &[],
    );
    let lines = parse_folded(&text);
    let sleeps = of(&lines, "clock_nanosleep");
    let (under, total) = share_under(&sleeps, "slow_path_a");
    assert_eq!((under, total), (5, 5), "{text}");
    assert!(!text.contains("[unresolved"), "{text}");
}

#[test]
fn a_threshold_keeps_only_slow_calls() {
    let text = record_helper(
        "stacks-slow.folded",
        &["--stacks=5ms", "--stacks-weight", "count", "-f", "folded"],
        None,
        &[],
    );
    let lines = parse_folded(&text);
    let mut by: BTreeMap<&str, u64> = BTreeMap::new();
    for l in &lines {
        *by.entry(l.frames.last().expect("leaf")).or_default() += l.value;
    }
    assert_eq!(by.get("clock_nanosleep"), Some(&30), "{text}");
    assert_eq!(by.get("getppid"), None, "no getppid is 5 ms slow: {text}");
}

#[test]
fn report_draws_a_flame_graph_and_writes_folded_lines() {
    let json = temp_path("stacks.json");
    let s = record_json(&json, &["--stacks"], &[HELPER, "10"]);
    assert_eq!(s["version"], 5);
    let stacks = s["stacks"].as_array().expect("stacks in the summary");
    let sleeps: u64 = stacks
        .iter()
        .filter(|r| r["syscall"] == "clock_nanosleep")
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(sleeps, 10);
    let svg = temp_path("stacks.svg");
    // Weighted by calls: by time, fast_path_b's 1,000 getppid are a few hundredths of a
    // percent beside the sleeps, under the width a flame graph draws (seen once in CI).
    let o = syslat(&[
        "report",
        "-f",
        "flamegraph",
        "--stacks-weight",
        "count",
        "-o",
        svg.to_str().expect("utf-8"),
        json.to_str().expect("utf-8"),
    ])
    .output()
    .expect("report runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&svg).expect("svg");
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    for name in ["slow_path_a", "fast_path_b", "clock_nanosleep", "getppid"] {
        assert!(svg.contains(name), "{name} not in the flame graph");
    }
    // The same stacks as folded lines, from the recording.
    let o = syslat(&[
        "report",
        "-f",
        "folded",
        "--stacks-weight",
        "count",
        json.to_str().expect("utf-8"),
    ])
    .output()
    .expect("report runs");
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines = parse_folded(&text);
    let n: u64 = of(&lines, "getppid").iter().map(|l| l.value).sum();
    assert_eq!(n, 1000, "{text}");
    // An HTML report has a flame graph per syscall.
    let html = temp_path("stacks.html");
    let o = syslat(&[
        "report",
        "-f",
        "html",
        "-o",
        html.to_str().expect("utf-8"),
        json.to_str().expect("utf-8"),
    ])
    .output()
    .expect("report runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(
        page.contains("clock_nanosleep flame graph"),
        "no flame graph section"
    );
    assert!(page.contains("slow_path_a"));
    // In a real browser: no console errors, a flame graph in the sections of the syscalls
    // with stacks, and clock_nanosleep's drawn with slow_path_a in it.
    let mut b = tests::browser::Browser::start(1280, 900);
    b.open(&html);
    assert_eq!(b.eval("document.readyState"), "complete");
    let errors = b.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let graphs = b.eval(
        "[...document.querySelectorAll('section.series')]\
         .filter(s => s.querySelector('.flamegraph iframe')).length",
    );
    assert!(
        graphs.as_u64().is_some_and(|n| n >= 2),
        "sections with a flame graph: {graphs}"
    );
    let drawn = b.eval(
        "[...document.querySelectorAll('.flamegraph iframe')]\
         .filter(f => f.title === 'clock_nanosleep flame graph')\
         .map(f => f.contentDocument && f.contentDocument.querySelectorAll('svg g').length > 0\
              && f.contentDocument.documentElement.textContent.includes('slow_path_a'))",
    );
    assert_eq!(
        drawn,
        serde_json::json!([true]),
        "clock_nanosleep's flame graph"
    );
}

#[test]
fn the_slow_log_shows_each_slow_calls_frames() {
    let text = record_helper(
        "stacks-slow.txt",
        &["--stacks", "--slow", "5ms", "-s", "clock_nanosleep"],
        Some("5"),
        &[],
    );
    let lines: Vec<&str> = text.lines().collect();
    let slow: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("SLOW ") && lines[i].contains("clock_nanosleep("))
        .collect();
    assert_eq!(slow.len(), 5, "{text}");
    for i in slow {
        let at = lines.get(i + 1).copied().unwrap_or("");
        assert!(at.starts_with("    at "), "{at}");
        assert!(at.contains("slow_path_a"), "{at}");
    }
    // And the call paths under the table.
    assert!(text.contains("Call paths by time"), "{text}");
}

#[test]
fn tops_drill_down_shows_the_call_paths() {
    // 300 rounds: a little over 3 s of sleeps, most of the traced time.
    let cmd = format!(
        "{} top -i 500ms --stacks -- {HELPER} 300; sleep 60",
        syslat_bin().display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("the clock_nanosleep row", |s| s.contains("clock_nanosleep"));
    // The rows are sorted by time: clock_nanosleep is first, and selected.
    t.keys("c");
    t.keys("Enter");
    let s = t.wait_for("the call paths", |s| {
        s.contains("call paths making clock_nanosleep") && s.contains("slow_path_a")
    });
    let line = s
        .lines()
        .find(|l| l.contains("slow_path_a"))
        .expect("a path line");
    assert!(
        line.contains("sleep_for <- ") && line.contains("stacks-helper"),
        "innermost frame first, with the process name: {line}"
    );
    let share: f64 = line
        .split('%')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("a share: {line}"));
    assert!(share >= 90.0, "{line}");
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.screen().contains("call paths making") {
        assert!(Instant::now() < deadline, "top did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stacks_flags_are_checked() {
    fails_with(
        &["record", "-f", "folded", "--", "true"],
        "-f folded writes stacks: add --stacks",
    );
    fails_with(
        &["record", "--stacks", "-f", "hdrlog", "--", "true"],
        "--stacks needs -f text, json or folded",
    );
    let plain = temp_path("no-stacks.json");
    record_json(&plain, &[], &["true"]);
    fails_with(
        &["report", "-f", "flamegraph", plain.to_str().expect("utf-8")],
        "holds no stacks: record with --stacks",
    );
}
