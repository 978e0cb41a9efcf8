//! `compare`'s outputs: an aligned text table whose last line is the verdict, a Markdown
//! table ready to post on a pull request, and JSON for tools.

use std::fmt::Write as _;

use crate::{
    compare::{Comparison, Metric, MetricChange, RowResult, Status},
    units::fmt_ns,
};

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Regressed => "REGRESSED",
        Status::Improved => "improved",
        Status::New => "new",
        Status::Gone => "gone",
    }
}

fn value(m: Metric, v: f64) -> String {
    match m {
        Metric::Count | Metric::Errors => format!("{v:.0}"),
        _ => fmt_ns(v.max(0.0) as u64),
    }
}

fn cell(mc: &MetricChange) -> String {
    let change = match mc.change_pct {
        Some(p) => format!(" ({p:+.1}%)"),
        None if mc.new > 0.0 => " (new)".into(),
        None => String::new(),
    };
    let mark = if mc.regressed { "!" } else { "" };
    format!(
        "{}→{}{change}{mark}",
        value(mc.metric, mc.base),
        value(mc.metric, mc.new)
    )
}

const SHOWN: [Metric; 7] = [
    Metric::Count,
    Metric::Errors,
    Metric::P50,
    Metric::P99,
    Metric::Max,
    Metric::Total,
    Metric::RunqP99,
];

/// The row's name, with the process name's control characters escaped.
fn label(r: &RowResult) -> String {
    match &r.comm {
        Some(c) => format!("{}/{}", super::text::escape(c), r.syscall),
        None => r.syscall.clone(),
    }
}

/// The verdict line.
pub fn verdict(c: &Comparison) -> String {
    let regressed: Vec<&RowResult> = c
        .rows
        .iter()
        .filter(|r| r.status == Status::Regressed)
        .collect();
    if regressed.is_empty() {
        let improved = c
            .rows
            .iter()
            .filter(|r| r.status == Status::Improved)
            .count();
        format!(
            "verdict: OK, no regression in {} rows ({improved} improved){}",
            c.rows.len(),
            not_judged(c)
        )
    } else {
        let why: Vec<String> = regressed
            .iter()
            .map(|r| format!("{} {}", label(r), r.reasons.join(", ")))
            .collect();
        format!(
            "verdict: REGRESSION in {} of {} rows: {}{}",
            regressed.len(),
            c.rows.len(),
            why.join("; "),
            not_judged(c)
        )
    }
}

/// `; N rows not judged: fewer than M calls`, when there are such rows, and `; the on-CPU
/// tails of N rows not judged: one run per side`, when there are such tails.
fn not_judged(c: &Comparison) -> String {
    let rows = |n: usize| {
        if n == 1 {
            "1 row".to_string()
        } else {
            format!("{n} rows")
        }
    };
    let mut s = String::new();
    if c.not_judged > 0 {
        let _ = write!(
            s,
            "; {} not judged: fewer than {} calls",
            rows(c.not_judged),
            c.min_count
        );
    }
    if c.tails_not_judged > 0 {
        let _ = write!(
            s,
            "; the on-CPU tails of {} not judged: one run per side",
            rows(c.tails_not_judged)
        );
    }
    s
}

/// Text table; the verdict is the last line.
pub fn text(c: &Comparison) -> String {
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["SYSCALL".to_string(), "STATUS".into()];
    header.extend(SHOWN.iter().map(|m| m.name().to_uppercase()));
    table.push(header);
    for r in &c.rows {
        let mut row = vec![label(r), status_name(r.status).into()];
        for m in SHOWN {
            row.push(
                r.metrics
                    .iter()
                    .find(|x| x.metric == m)
                    .map(cell)
                    .unwrap_or_default(),
            );
        }
        table.push(row);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "base: {} run(s), new: {} run(s); '!' marks a failing metric\n",
        c.base_runs, c.new_runs
    );
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', pad + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&verdict(c));
    out.push('\n');
    out
}

/// A Markdown table for a pull-request comment.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::from("### syslat: syscall latency comparison\n\n");
    let _ = writeln!(
        out,
        "base: {} run(s), new: {} run(s)\n",
        c.base_runs, c.new_runs
    );
    out.push_str("| syscall | status |");
    for m in SHOWN {
        let _ = write!(out, " {} |", m.name());
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(SHOWN.len()));
    out.push('\n');
    for r in &c.rows {
        let status = match r.status {
            Status::Regressed => "**regressed**".to_string(),
            s => status_name(s).to_string(),
        };
        // A process name may hold the Markdown table's own punctuation.
        let name = label(r).replace('`', "'").replace('|', "\\|");
        let _ = write!(out, "| `{name}` | {status} |");
        for m in SHOWN {
            let cell = r
                .metrics
                .iter()
                .find(|x| x.metric == m)
                .map(cell)
                .unwrap_or_default();
            let _ = write!(out, " {} |", cell.replace('|', "\\|"));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\n**{}**", verdict(c));
    out
}

/// JSON for tools.
pub fn json(c: &Comparison) -> String {
    let v = serde_json::json!({
        "verdict": if c.regressed { "regressed" } else { "ok" },
        "base_runs": c.base_runs,
        "new_runs": c.new_runs,
        "rows": c.rows,
    });
    let mut s = serde_json::to_string(&v).expect("plain data serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Comparison;

    fn cmp(status: Status) -> Comparison {
        let mc = |m, b: f64, n: f64, r| MetricChange {
            metric: m,
            base: b,
            new: n,
            change_pct: Some((n - b) / b * 100.0),
            regressed: r,
            improved: false,
            on_cpu_tail: false,
        };
        Comparison {
            base_runs: 1,
            new_runs: 1,
            not_judged: 0,
            tails_not_judged: 0,
            min_count: 5,
            regressed: status == Status::Regressed,
            rows: vec![RowResult {
                syscall: "clock_nanosleep".into(),
                comm: None,
                status,
                metrics: vec![
                    mc(Metric::Count, 10.0, 10.0, false),
                    mc(Metric::P50, 10e6, 13e6, status == Status::Regressed),
                ],
                reasons: if status == Status::Regressed {
                    vec!["p50 +30.0%".into()]
                } else {
                    vec![]
                },
            }],
        }
    }

    #[test]
    fn verdict_is_the_last_line() {
        let t = text(&cmp(Status::Regressed));
        let last = t.lines().last().unwrap();
        assert_eq!(
            last,
            "verdict: REGRESSION in 1 of 1 rows: clock_nanosleep p50 +30.0%"
        );
        assert!(t.contains("10.0ms→13.0ms (+30.0%)!"), "{t}");
        assert_eq!(
            text(&cmp(Status::Ok)).lines().last().unwrap(),
            "verdict: OK, no regression in 1 rows (0 improved)"
        );
    }

    #[test]
    fn the_verdict_says_what_was_not_judged() {
        let mut c = cmp(Status::Ok);
        c.not_judged = 2;
        assert!(
            verdict(&c).ends_with("(0 improved); 2 rows not judged: fewer than 5 calls"),
            "{}",
            verdict(&c)
        );
        c.not_judged = 1;
        assert!(verdict(&c).ends_with("; 1 row not judged: fewer than 5 calls"));
        c.tails_not_judged = 3;
        assert!(
            verdict(&c).ends_with(
                "; 1 row not judged: fewer than 5 calls; \
                 the on-CPU tails of 3 rows not judged: one run per side"
            ),
            "{}",
            verdict(&c)
        );
    }

    #[test]
    fn markdown_and_json() {
        let md = markdown(&cmp(Status::Regressed));
        assert!(md.contains("| `clock_nanosleep` | **regressed** |"), "{md}");
        assert!(
            md.trim_end()
                .ends_with("**verdict: REGRESSION in 1 of 1 rows: clock_nanosleep p50 +30.0%**")
        );
        let v: serde_json::Value = serde_json::from_str(&json(&cmp(Status::Regressed))).unwrap();
        assert_eq!(v["verdict"], "regressed");
        assert_eq!(v["rows"][0]["status"], "regressed");
        assert_eq!(v["rows"][0]["metrics"][1]["metric"], "p50");
    }
}
