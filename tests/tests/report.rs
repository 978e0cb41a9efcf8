//! `syslat report`: reproduces `record`'s summary from its recording, merges recordings by
//! adding histograms, reads hdrlog, draws plots that parse, and rejects bad files.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::{path::Path, process::Command};

use tests::{Record, count, fails_with, rows, run, summary, temp_path};

fn report(args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["report"];
    a.extend_from_slice(args);
    let o = run(&a);
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn report_reproduces_the_summary_and_merges() {
    let a = temp_path("rep-a.json");
    let b = temp_path("rep-b.json");
    Record::json(&a, &["--by", "process", "-i", "100ms"])
        .workload(&["getppid", "1000", "enoent", "10", "sleep", "3", "60"])
        .run();
    Record::json(&b, &[]).workload(&["getppid", "1000"]).run();
    let (code, out, err) = report(&["-f", "json", a.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rec = summary(&a);
    // Same rows, same numbers, regrouped by syscall.
    for syscall in ["getppid", "openat", "clock_nanosleep", "execve"] {
        let want = rows(&rec, syscall);
        let got = rows(&rep, syscall);
        assert_eq!(got.len(), 1, "{syscall}");
        assert_eq!(
            got[0]["count"].as_u64().unwrap(),
            want.iter()
                .map(|r| r["count"].as_u64().unwrap())
                .sum::<u64>()
        );
        if want.len() == 1 {
            for k in [
                "errors", "total_ns", "min_ns", "max_ns", "p50_ns", "p99_ns", "errnos",
            ] {
                assert_eq!(got[0][k], want[0][k], "{syscall}.{k}");
            }
        }
    }
    assert_eq!(count(&rep, "getppid"), 1000);
    // Two recordings add up with --merge.
    let (code, out, _) = report(&[
        "--merge",
        "-f",
        "json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let both: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(count(&both, "getppid"), 2000);
    // Per process, filtered, with chosen percentiles.
    let (code, out, err) = report(&[
        "--by",
        "process",
        "-s",
        "getppid",
        "--percentiles",
        "50,99.99",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].contains("P50") && lines[1].contains("P99.99") && !lines[1].contains("P90"),
        "{out}"
    );
    assert!(
        lines[2].contains("workload")
            && lines[2].contains("getppid")
            && lines[2].contains(" 1000 "),
        "{out}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("getppid")).count(),
        1,
        "{out}"
    );
    // --by process on a recording without processes is an error.
    let (code, _, err) = report(&["--by", "process", b.to_str().unwrap()]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("no process information"), "{err}");
}

#[test]
fn plots_parse_and_have_one_series_per_syscall() {
    let a = temp_path("plot.json");
    Record::json(&a, &["-i", "100ms"])
        .workload(&["getppid", "500", "sleep", "4", "60", "enoent", "5"])
        .run();
    let svg = temp_path("plot.svg");
    let (code, _, err) = report(&[
        "-f",
        "svg",
        "-o",
        svg.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    let rec = summary(&a);
    let nrows = rec["rows"].as_array().unwrap().len();
    assert_eq!(
        text.matches(r#"stroke-width="2" points"#).count(),
        2 * nrows,
        "a line and a legend sample per syscall"
    );
    let html = temp_path("plot.html");
    let (code, _, err) = report(&[
        "-f",
        "html",
        "-o",
        html.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        page.matches("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\"")
            .count(),
        nrows,
        "interval recordings get a heatmap per row"
    );
    assert!(page.contains("clock_nanosleep: latency over time"));
    assert!(
        !page.contains("<script src") && !page.contains("<link"),
        "self-contained"
    );
    // The heatmap alone, as SVG: a <title> per cell, whose counts add up to the calls.
    let heat = temp_path("heat.svg");
    let (code, _, err) = report(&[
        "-f",
        "svg",
        "--plot",
        "heatmap",
        "-s",
        "clock_nanosleep",
        "-o",
        heat.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let map = std::fs::read_to_string(&heat).unwrap();
    let cells: u64 = map
        .split("<title>")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("</title>").unwrap()];
            let n = t.rsplit(": ").next().unwrap();
            n.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(cells, 4, "the 4 sleeps: {map}");
    assert!(map.contains("clock_nanosleep: latency over time"));
    // A heatmap needs intervals, and --plot needs -f svg.
    let flat = temp_path("flat.json");
    Record::json(&flat, &[]).workload(&["getppid", "10"]).run();
    let (code, _, err) = report(&["-f", "svg", "--plot", "heatmap", flat.to_str().unwrap()]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("holds no intervals"), "{err}");
    let (code, _, err) = report(&["--plot", "heatmap", a.to_str().unwrap()]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("--plot chooses the plot of -f svg"), "{err}");
    // All parse as XML (the HTML page is XHTML-clean apart from the doctype).
    let script = "import sys, xml.etree.ElementTree as E\nE.parse(sys.argv[1])\nE.parse(sys.argv[3])\ns=open(sys.argv[2]).read()\nE.fromstring(s[s.index('<html'):])\nprint('ok')";
    let py = Command::new("python3")
        .args(["-c", script])
        .arg(&svg)
        .arg(&html)
        .arg(&heat)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
}

#[test]
fn reads_hdrlog_recordings() {
    let h = temp_path("rep.hlog");
    Record::to(&h, &["-f", "hdrlog", "-i", "100ms"])
        .workload(&["getppid", "777", "sleep", "3", "60"])
        .run();
    let (code, out, err) = report(&["-f", "json", h.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(count(&v, "getppid"), 777);
    assert_eq!(count(&v, "clock_nanosleep"), 3);
}

#[test]
fn hdrlog_keeps_threads_cgroups_and_dotted_names() {
    // On main: a dotted process name was read back as a pid (or, as here, as none:
    // "the recording has no process information"), and thread and cgroup rows were
    // tagged with the syscall alone.
    let steps = ["comm", "my.app3.11", "getppid", "500"];
    for by in ["thread", "cgroup"] {
        let h = temp_path(&format!("rep-{by}.hlog"));
        Record::to(&h, &["-f", "hdrlog", "--by", by])
            .workload(&steps)
            .run();
        let text = std::fs::read_to_string(&h).unwrap();
        assert!(text.contains(&format!("#[syslat rows by: {by}]")), "{text}");
        let mut views = vec![by];
        if by == "thread" {
            views.push("process");
        }
        for view in views {
            let (code, out, err) = report(&["-f", "json", "--by", view, h.to_str().unwrap()]);
            assert_eq!(code, 0, "--by {view} of --by {by}: {err}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let got = rows(&v, "getppid");
            assert_eq!(got.len(), 1, "{view}: {out}");
            let row = got[0];
            assert_eq!(row["count"], 500, "{view}: {out}");
            match view {
                "cgroup" => assert!(row["cgroup"].is_string(), "{out}"),
                _ => {
                    assert_eq!(row["comm"], "my.app3.11", "{out}");
                    let pid = row["pid"].as_u64().unwrap();
                    assert!(pid > 1, "{out}");
                    if view == "thread" {
                        assert_eq!(row["tid"].as_u64(), Some(pid), "one thread: {out}");
                    }
                }
            }
        }
    }
}

#[test]
fn bad_files_get_one_line() {
    let empty = temp_path("empty.json");
    std::fs::write(&empty, "").unwrap();
    let text = temp_path("text.txt");
    std::fs::write(&text, "hello world\n").unwrap();
    let bin = temp_path("bin.dat");
    std::fs::write(&bin, [0u8, 159, 146, 150, 255]).unwrap();
    let wrong = temp_path("wrong.json");
    std::fs::write(&wrong, "{\"type\":\"summary\",\"version\":1,\"rows\":5}\n").unwrap();
    for (file, expect) in [
        (empty.to_str().unwrap(), "is empty"),
        (text.to_str().unwrap(), "is not a syslat recording"),
        (bin.to_str().unwrap(), "is not a syslat recording"),
        (wrong.to_str().unwrap(), "is not a syslat recording"),
        ("/nonexistent/rec.json", "cannot read /nonexistent/rec.json"),
    ] {
        fails_with(&["report", file], expect);
    }
    // A truncated last line: a warning, and the complete lines are still reported.
    let a = temp_path("trunc.json");
    Record::json(&a, &["-i", "50ms"])
        .workload(&["getppid", "300", "sleep", "3", "40"])
        .run();
    let full = std::fs::read_to_string(&a).unwrap();
    let cut = &full[..full.len() - 40];
    std::fs::write(&a, cut).unwrap();
    let (code, out, err) = report(&["-f", "json", a.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("syslat: warning:") && err.contains("truncated last line"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        count(&v, "getppid"),
        300,
        "the intervals still hold every getppid"
    );
    let (code, _, err) = report(&["--percentiles", "0", a.to_str().unwrap()]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
}

/// Every summary line of a JSON Lines file.
fn summaries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "summary")
        .collect()
}

#[test]
fn record_starts_the_file_afresh_unless_append_and_report_shows_runs() {
    let f = temp_path("afresh.json");
    // With -i the file used to be appended to: a second run doubled it.
    for _ in 0..2 {
        Record::json(&f, &["-i", "100ms"])
            .workload(&["sleep", "3", "60"])
            .run();
    }
    let one = summaries(&f);
    assert_eq!(one.len(), 1, "the second recording replaced the first");
    assert_eq!(count(&one[0], "clock_nanosleep"), 3);
    assert!(one[0].get("run").is_none());
    // --append adds a run of its own, numbered after the one there.
    Record::json(&f, &["--append"])
        .workload(&["sleep", "2", "60"])
        .run();
    let two = summaries(&f);
    assert_eq!(two.len(), 2);
    assert_eq!(two[1]["run"], 2);
    assert_eq!(count(&two[1], "clock_nanosleep"), 2);

    // report: one table per run by default, and it says so.
    let (code, out, err) = report(&[f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("--- run 1 of 2 ("), "{out}");
    assert!(out.contains("--- run 2 of 2 ("), "{out}");
    assert!(
        out.trim_end()
            .ends_with("2 recordings, reported as runs (--merge for one report)"),
        "{out}"
    );
    let (code, out, _) = report(&["-f", "json", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    let per_run: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(per_run.len(), 2);
    assert_eq!(
        (
            count(&per_run[0], "clock_nanosleep"),
            count(&per_run[1], "clock_nanosleep")
        ),
        (3, 2)
    );
    assert_eq!(
        (per_run[0]["run"].clone(), per_run[1]["run"].clone()),
        (1.into(), 2.into())
    );

    // --merge: one report whose duration is the sum of the two, not the span between them.
    let (code, out, _) = report(&["--merge", "-f", "json", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    let merged: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(count(&merged, "clock_nanosleep"), 5);
    let sum = two[0]["duration_ns"].as_u64().unwrap() + two[1]["duration_ns"].as_u64().unwrap();
    assert_eq!(merged["duration_ns"].as_u64().unwrap(), sum);
    let (_, text, _) = report(&["--merge", f.to_str().unwrap()]);
    assert!(text.starts_with("merged 2 recordings\n"), "{text}");
    // A plot takes one recording.
    let (code, _, err) = report(&["-f", "svg", f.to_str().unwrap()]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("pass --merge"), "{err}");
    // --append with hdrlog is refused before anything runs.
    let o = Record::to(&f, &["--append", "-f", "hdrlog"])
        .command(&["true"])
        .exits(2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--append works with -f json or text"));
}
