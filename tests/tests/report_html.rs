//! `report -f html` in a real browser, headless Chromium: the page loads with no console
//! error and no network request; it has the overview, a table that sorts on a real click,
//! one section per row with one heatmap each whose cells add up to the recording's counts,
//! hover text that matches the recording's intervals, and the anatomy split with the
//! recording's own numbers when (and only when) the recording holds it (schema 2). A recording of more than 47 syscalls over a couple of
//! hundred intervals gives a page under [`MAX_PAGE_BYTES`].
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::{browser::Browser, count, record_workload, run, temp_path};

/// The most bytes the page of the many-syscall recording (66 syscalls, about 200
/// intervals) may have: it has about 470 kB; before the heatmaps it had 2.1 MB.
const MAX_PAGE_BYTES: usize = 600_000;

fn report_html(input: &Path, name: &str) -> PathBuf {
    let page = temp_path(name);
    let o = run(&[
        "report",
        "-f",
        "html",
        "-o",
        page.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    page
}

/// The interval lines of a recording, in time order.
fn intervals(path: &Path) -> Vec<Value> {
    let mut v: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "interval")
        .collect();
    v.sort_by_key(|v| v["start_unix_ns"].as_u64().unwrap());
    v
}

/// Opens `page`, checks it loaded cleanly and offline, and returns the browser.
fn open(page: &Path) -> Browser {
    let mut b = Browser::start(1280, 900);
    b.open(page);
    // Let the page's script run its listeners' set-up, then look at what it said.
    assert_eq!(b.eval("document.readyState"), "complete");
    let errors = b.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let requests = b.requests();
    assert!(
        requests.iter().all(|r| *r == url),
        "the page fetched something besides itself: {requests:?}"
    );
    b
}

/// Per section: its name, its heatmaps, spectra and anatomy blocks, and the sum of its
/// heatmap's cells (from the counts the hover script reads).
const SECTIONS: &str = r#"[...document.querySelectorAll('section.series')].map(s => {
  const cells = s.querySelector('svg.cells');
  const sum = cells ? cells.getAttribute('data-n').split(/[ ,]/).reduce((a, n) => a + Number(n || 0), 0) : null;
  const r = s.querySelector('svg.heatmap')?.getBoundingClientRect();
  return {id: s.id, name: s.querySelector('h3').textContent,
    heatmaps: s.querySelectorAll('svg.heatmap').length,
    spectra: s.querySelectorAll('svg.spectrum').length,
    runs: s.querySelectorAll('svg.cells path').length,
    anatomy: s.querySelectorAll('.anatomy').length,
    width: r ? r.width : 0, height: r ? r.height : 0, sum};
})"#;

/// Checks one section per summary row, each with one heatmap (drawn, with cells) whose
/// cells add up to the row's calls, and returns the sections.
fn check_sections(b: &mut Browser, rec: &Value) -> Vec<Value> {
    let sections = b.eval(SECTIONS).as_array().unwrap().clone();
    let rows = rec["rows"].as_array().unwrap();
    assert_eq!(sections.len(), rows.len(), "a section per row");
    for s in &sections {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["heatmaps"], 1, "{name}: one heatmap");
        assert_eq!(s["spectra"], 1, "{name}: one spectrum");
        assert!(s["runs"].as_u64().unwrap() >= 1, "{name}: cells drawn");
        assert!(
            s["width"].as_f64().unwrap() > 300.0 && s["height"].as_f64().unwrap() > 100.0,
            "{name}: laid out: {s}"
        );
        // The intervals add up exactly to the summary: so do the heatmap's cells.
        assert_eq!(
            s["sum"].as_u64().unwrap(),
            count(rec, name),
            "{name}: cells"
        );
    }
    sections
}

/// The ns of a label such as `16.8ms` (as the report writes them).
fn parse_ns(s: &str) -> f64 {
    let i = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap();
    let scale = match &s[i..] {
        "ns" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        u => panic!("unit {u}"),
    };
    s[..i].parse::<f64>().unwrap() * scale
}

/// The floor of log2 of `ns`: the heatmap row (bucket) holding it.
fn bucket(ns: u64) -> u64 {
    u64::from(63 - ns.max(1).leading_zeros())
}

#[test]
fn report_in_a_browser_heatmaps_hover_and_sorting() {
    let rec_path = temp_path("browser.json");
    let rec = record_workload(
        &rec_path,
        &["-i", "50ms"],
        &[
            "getppid", "1000", "sleep", "30", "20", "enoent", "40", "getppid", "500",
        ],
    );
    let page = report_html(&rec_path, "browser.html");
    let mut b = open(&page);
    let sections = check_sections(&mut b, &rec);
    let nrows = sections.len();
    assert_eq!(
        b.eval("document.querySelectorAll('.overview svg.spectrum .key').length"),
        nrows.min(8),
        "the overview's legend names the top rows"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#rows tbody tr').length"),
        nrows
    );
    assert!(
        sections.iter().all(|s| s["anatomy"] == 1),
        "a schema 2 recording has the anatomy of every row"
    );
    assert_eq!(b.eval("document.querySelectorAll('.flamegraph').length"), 0);

    // Hover over a heatmap cell: the text names the interval, the bucket and the count,
    // as the recording's own interval line says.
    let sleep = sections
        .iter()
        .find(|s| s["name"] == "clock_nanosleep")
        .unwrap();
    let ivs = intervals(&rec_path);
    let (c, iv_row) = ivs
        .iter()
        .enumerate()
        .find_map(|(i, iv)| {
            let r = iv["rows"]
                .as_array()?
                .iter()
                .find(|r| r["syscall"] == "clock_nanosleep")?;
            let (lo, hi) = (r["min_ns"].as_u64()?, r["max_ns"].as_u64()?);
            // A cell that holds all of the interval's sleeps.
            (bucket(lo) == bucket(hi)).then(|| (i, r.clone()))
        })
        .expect("an interval whose sleeps share a bucket");
    // The row of the bucket 2^k..2^(k+1) that holds them, found by its label.
    let k = bucket(iv_row["min_ns"].as_u64().unwrap());
    let labels = b.eval(&format!(
        "document.querySelector('#{} svg.cells').getAttribute('data-rows').split('|')",
        sleep["id"].as_str().unwrap()
    ));
    let r = labels
        .as_array()
        .unwrap()
        .iter()
        .position(|l| {
            let from = l.as_str().unwrap().split('–').next().unwrap();
            parse_ns(from).log2().round() as u64 == k
        })
        .unwrap_or_else(|| panic!("no row for bucket {k}: {labels}"));
    let pos = b.eval(&format!(
        "(() => {{ const s = document.querySelector('#{} svg.cells'); s.scrollIntoView({{block: 'center'}});
           const p = s.createSVGPoint(); p.x = {c} + 0.5; p.y = {r} + 0.5;
           const q = p.matrixTransform(s.getScreenCTM()); return [q.x, q.y]; }})()",
        sleep["id"].as_str().unwrap()
    ));
    b.mouse_move(pos[0].as_f64().unwrap(), pos[1].as_f64().unwrap());
    let tip = b.eval(
        "[document.getElementById('tip').hidden, document.getElementById('tip').textContent]",
    );
    assert_eq!(tip[0], false, "the tooltip shows: {tip}");
    let text = tip[1].as_str().unwrap();
    let n = iv_row["count"].as_u64().unwrap();
    let calls = if n == 1 {
        "1 call".to_string()
    } else {
        format!("{n} calls")
    };
    assert!(text.starts_with(&format!("interval {} (", c + 1)), "{text}");
    assert!(text.ends_with(&format!(": {calls}")), "{text}");
    // The bucket named is the one that holds the interval's sleeps.
    let range = text.split(", ").nth(1).unwrap().split(": ").next().unwrap();
    let (a, z) = range.split_once('–').unwrap();
    let min = iv_row["min_ns"].as_f64().unwrap();
    assert!(
        parse_ns(a) <= min * 1.005 && min < parse_ns(z) * 1.005,
        "{range} holds {min} ns"
    );
    assert_eq!(parse_ns(a).log2().round() as u64, k, "{range}");
    b.mouse_move(5.0, 5.0);
    assert_eq!(
        b.eval("document.getElementById('tip').hidden"),
        true,
        "tooltip leaves"
    );

    // Hover titles on the spectrum's points name the percentile and its value, the same
    // as the table.
    let titles = b.eval(&format!(
        "[...document.querySelectorAll('#{} svg.spectrum circle.mark title')].map(t => t.textContent)",
        sleep["id"].as_str().unwrap()
    ));
    let titles: Vec<&str> = titles
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 6, "{titles:?}");
    let table_max = b.eval(
        "[...document.querySelectorAll('#rows tbody tr')].find(tr => tr.cells[0].textContent === 'clock_nanosleep').cells[10].textContent",
    );
    assert_eq!(titles[5], format!("max: {}", table_max.as_str().unwrap()));
    assert!(
        titles[0].starts_with("p50: ") && titles[2].starts_with("p99: "),
        "{titles:?}"
    );

    // Sorting: the table starts by total time; a click on "calls" sorts by calls, largest
    // first, a second click reverses it.
    let order = |b: &mut Browser| -> Vec<(String, u64)> {
        let v = b.eval(
            "[...document.querySelectorAll('#rows tbody tr')].map(tr => [tr.cells[0].textContent, Number(tr.cells[1].getAttribute('data-v'))])",
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
            .collect()
    };
    let by_total = order(&mut b);
    // By total time, largest first (rows of equal total in either order), every row of
    // the recording once.
    let totals = b.eval(
        "[...document.querySelectorAll('#rows tbody tr')].map(tr => Number(tr.cells[3].getAttribute('data-v')))",
    );
    let totals: Vec<u64> = serde_json::from_value(totals).unwrap();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    let mut names: Vec<String> = by_total.iter().map(|p| p.0.clone()).collect();
    let mut want: Vec<String> = rec["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["syscall"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names[0], want[0], "the most total time first");
    names.sort();
    want.sort();
    assert_eq!(names, want, "every row once");
    let click_header = |b: &mut Browser, name: &str| {
        let p = b.eval(&format!(
            "(() => {{ const th = [...document.querySelectorAll('#rows th')].find(t => t.textContent === '{name}');
               th.scrollIntoView({{block: 'center'}}); const r = th.getBoundingClientRect();
               return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        b.click(p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
    };
    click_header(&mut b, "calls");
    let by_calls = order(&mut b);
    assert_ne!(by_calls, by_total, "the order changed");
    assert!(
        by_calls.windows(2).all(|w| w[0].1 >= w[1].1),
        "{by_calls:?}"
    );
    assert_eq!(by_calls[0].0, "getppid", "1500 calls, the most");
    assert_eq!(
        b.eval("[...document.querySelectorAll('#rows th')].find(t => t.getAttribute('aria-sort')).textContent"),
        "calls"
    );
    click_header(&mut b, "calls");
    let up = order(&mut b);
    assert!(up.windows(2).all(|w| w[0].1 <= w[1].1), "{up:?}");
    let mut sorted = by_calls.clone();
    sorted.sort();
    let mut up_sorted = up.clone();
    up_sorted.sort();
    assert_eq!(sorted, up_sorted, "the same rows");
    assert!(b.errors().is_empty(), "{:?}", b.errors());
}

#[test]
fn anatomy_section_when_the_recording_has_it() {
    let rec_path = temp_path("anatomy.json");
    let rec = record_workload(
        &rec_path,
        &["-i", "100ms"],
        &["sleep", "5", "10", "getppid", "300"],
    );
    let page = report_html(&rec_path, "anatomy.html");
    let mut b = open(&page);
    let sections = check_sections(&mut b, &rec);
    assert!(
        b.eval(
            "[...document.querySelectorAll('#rows th')].some(t => t.textContent === 'run queue')"
        )
        .as_bool()
        .unwrap(),
        "the table has the anatomy columns"
    );
    for s in &sections {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["anatomy"], 1, "{name}");
        let got = b.eval(&format!(
            "(() => {{ const a = document.querySelector('#{} .anatomy');
               return {{widths: [...a.querySelectorAll('.bar span')].map(r => r.getBoundingClientRect().width),
                 titles: [...a.querySelectorAll('.bar span')].map(t => t.getAttribute('title')),
                 cells: [...a.querySelectorAll('table tr')].slice(1).map(tr => [...tr.cells].slice(1).map(c => c.getAttribute('data-v'))),
                 text: a.querySelector('p').textContent}}; }})()",
            s["id"].as_str().unwrap()
        ));
        // The page's numbers are the recording's.
        let row = &tests::rows(&rec, name)[0];
        let f = |k: &str| row[k].as_u64().unwrap();
        let v = |r: usize, c: usize| -> Option<u64> {
            got["cells"][r][c].as_str().map(|s| s.parse().unwrap())
        };
        let totals = [
            f("oncpu_total_ns"),
            f("runq_total_ns"),
            f("blocked_total_ns"),
        ];
        assert_eq!(totals.iter().sum::<u64>(), f("total_ns"), "{name}");
        for (r, want) in totals.iter().enumerate() {
            assert_eq!(v(r, 0), Some(*want), "{name} {got}");
        }
        assert_eq!(
            (v(0, 2), v(0, 3)),
            (None, None),
            "{name}: no per-call on-CPU percentiles"
        );
        assert_eq!(
            (v(1, 2), v(1, 3)),
            (Some(f("runq_p50_ns")), Some(f("runq_p99_ns"))),
            "{name}"
        );
        assert_eq!(
            (v(2, 2), v(2, 3)),
            (Some(f("blocked_p50_ns")), Some(f("blocked_p99_ns"))),
            "{name}"
        );
        assert!(
            got["text"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{} context switches", f("switches")))
                && got["text"].as_str().unwrap().contains(&format!(
                    ", {} of them preemptions",
                    f("involuntary_switches")
                )),
            "{name}: {got}"
        );
        // The bar's parts in proportion, and their hover titles.
        let w: Vec<f64> = got["widths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let sum: f64 = w.iter().sum();
        assert!((sum - 600.0).abs() < 0.5, "{name}: {w:?}");
        for (wi, t) in w.iter().zip(totals) {
            let want = 600.0 * t as f64 / f("total_ns") as f64;
            assert!((wi - want).abs() < 0.5, "{name}: {w:?} against {totals:?}");
        }
        let titles: Vec<&str> = got["titles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for (t, (part, ns)) in titles
            .iter()
            .zip(["on CPU", "run queue", "blocked"].into_iter().zip(totals))
        {
            let share = format!("({:.1}%)", 100.0 * ns as f64 / f("total_ns") as f64);
            assert!(
                t.starts_with(&format!("{part}: ")) && t.ends_with(&share),
                "{t} {share}"
            );
        }
        // What the calls did: a 10 ms sleep is blocked most of its time (whatever wait
        // for a CPU follows its wake-up on a busy machine); getppid never sleeps (it may
        // be preempted, so no claim on its run-queue share).
        if name == "clock_nanosleep" {
            assert!(w[2] > 0.5 * 600.0, "{w:?}");
        }
        if name == "getppid" {
            assert_eq!((totals[2], w[2]), (0, 0.0), "{w:?}");
        }
    }

    // A version 1 recording has no anatomy: no section, no columns.
    let v1 = temp_path("anatomy-v1.json");
    let text = std::fs::read_to_string(&rec_path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        v["version"] = 1.into();
        for r in v["rows"].as_array_mut().into_iter().flatten() {
            let o = r.as_object_mut().unwrap();
            o.retain(|k, _| {
                ![
                    "oncpu_total_ns",
                    "runq_total_ns",
                    "blocked_total_ns",
                    "runq_p50_ns",
                    "runq_p99_ns",
                    "blocked_p50_ns",
                    "blocked_p99_ns",
                    "switches",
                    "involuntary_switches",
                    "runq_hdr",
                    "blocked_hdr",
                ]
                .contains(&k.as_str())
            });
        }
        out += &v.to_string();
        out.push('\n');
    }
    std::fs::write(&v1, out).unwrap();
    let page = report_html(&v1, "anatomy-v1.html");
    b.open(&page);
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    let sections = check_sections(&mut b, &rec);
    assert!(sections.iter().all(|s| s["anatomy"] == 0), "{sections:?}");
    assert_eq!(
        b.eval("[...document.querySelectorAll('#rows th')].filter(t => t.textContent === 'run queue').length"),
        0
    );
}

#[test]
fn page_of_many_syscalls_over_hundreds_of_intervals_is_small() {
    let rec_path = temp_path("zoo.json");
    let rounds = 300;
    let rec = record_workload(
        &rec_path,
        &["-i", "10ms"],
        &["zoo", &rounds.to_string(), "6"],
    );
    let nrows = rec["rows"].as_array().unwrap().len();
    assert!(nrows >= 47, "{nrows} syscalls");
    for s in tests::ZOO {
        assert!(count(&rec, s) >= rounds, "{s}: {}", count(&rec, s));
    }
    let n_iv = intervals(&rec_path).len();
    assert!(n_iv >= 150, "{n_iv} intervals");
    let page = report_html(&rec_path, "zoo.html");
    let size = std::fs::metadata(&page).unwrap().len() as usize;
    eprintln!("{nrows} syscalls, {n_iv} intervals: the page has {size} bytes");
    assert!(size < MAX_PAGE_BYTES, "{size} bytes");
    let mut b = open(&page);
    let sections = check_sections(&mut b, &rec);
    // Screenshots (the README's docs/report-*.png): the overview, and sched_yield's
    // section (its calls return at once, or wait for a CPU behind other work).
    let busiest = sections
        .iter()
        .find(|s| s["name"] == "sched_yield")
        .unwrap();
    let shots = [
        ("report-overview.png", b.screenshot_of(".overview", 12.0)),
        (
            "report-section.png",
            b.screenshot_of(&format!("#{}", busiest["id"].as_str().unwrap()), 4.0),
        ),
    ];
    for (name, png) in shots {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
        // A blank region compresses to a few kB; charts and text take far more.
        assert!(png.len() > 20_000, "{name}: {} bytes, blank?", png.len());
        let path = temp_path(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}
