//! `syslat report`: read recordings, merge their histograms exactly (never averaging
//! percentiles), regroup and filter, and print a table, JSON, or plots.

use std::io::Write;

use anyhow::{Context as _, bail};

use crate::{
    aggregate::stacks::StackSet,
    cli::{ReportArgs, ReportFormat},
    config::{group_by, stacks_weight},
    output::{
        flame, jsonl,
        plot::{self, Spectrum, TimePoint},
        stacks, text,
    },
    recording::{self, Part},
    syscalls,
};

/// Runs `report`; returns the exit status.
pub fn run(args: &ReportArgs) -> anyhow::Result<i32> {
    let percentiles = parse_percentiles(&args.percentiles)?;
    let only = match &args.syscalls {
        Some(list) => Some(syscalls::parse_list(list).map_err(anyhow::Error::msg)?),
        None => None,
    };
    // Validate the output path before the work.
    let mut file = match &args.output {
        Some(p) => Some(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        ),
        None => None,
    };
    let mut recordings = Vec::new();
    for f in &args.files {
        let r = recording::read(f)?;
        for w in &r.warnings {
            eprintln!("syslat: warning: {w}");
        }
        recordings.push((f, r));
    }
    let group = group_by(args.by);
    // Each recording is a run: a summary line, or a file's intervals when it has none.
    let runs: Vec<(&std::path::PathBuf, Vec<&Part>)> = recordings
        .iter()
        .flat_map(|(f, r)| r.runs().into_iter().map(move |parts| (*f, parts)))
        .collect();
    let body = if runs.len() > 1 && !args.merge {
        report_runs(&runs, args, group, only.as_deref(), &percentiles)?
    } else {
        let whole: Vec<&Part> = runs.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let mut snap = recording::merge(&whole, group, only.as_deref())?;
        // Runs recorded one after another: the time traced is the sum of theirs, not the
        // span from the first start to the last end.
        snap.duration_ns = runs.iter().map(|(_, p)| recording::span_ns(p)).sum();
        snap.sort_rows(crate::config::sort_key(args.sort));
        let merged = if runs.len() > 1 {
            format!("merged {} recordings\n", runs.len())
        } else {
            String::new()
        };
        let stacks = stacks_of(&whole, only.as_deref());
        let weight = stacks_weight(args.stacks_weight);
        let need_stacks = || {
            stacks.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "{} holds no stacks: record with --stacks (and -f json) to draw them",
                    text::escape(&args.files[0].display().to_string())
                )
            })
        };
        match args.format {
            ReportFormat::Text => {
                merged
                    + &text::render_percentiles(&snap, 0, &percentiles)
                    + &stacks.as_ref().map(stacks::paths_text).unwrap_or_default()
            }
            ReportFormat::Json => jsonl::line_with_stacks("summary", &snap, None, stacks.as_ref()),
            ReportFormat::Folded => need_stacks()?.folded(weight),
            ReportFormat::Flamegraph => flame::by_syscall(&need_stacks()?, weight)?,
            ReportFormat::Svg => {
                let spectra: Vec<Spectrum<'_>> = snap
                    .rows
                    .iter()
                    .map(|r| Spectrum {
                        label: plot::row_label(r),
                        hist: &r.series.hist,
                    })
                    .collect();
                plot::percentile_svg("syscall latency by percentile", &spectra)?
            }
            ReportFormat::Html => {
                let intervals: Vec<&Part> = recordings
                    .iter()
                    .flat_map(|(_, r)| r.intervals.iter())
                    .collect();
                let over_time = over_time(&intervals, group, only.as_deref(), snap.start_unix_ns)?;
                let page = plot::html(&snap, &over_time)?;
                match &stacks {
                    // The flame graphs of the syscalls with the most time, before the end.
                    Some(set) if !set.is_empty() => {
                        let sections = flame::html_sections(set, weight, FLAME_GRAPHS)?;
                        match page.rfind("</body>") {
                            Some(at) => format!("{}{sections}{}", &page[..at], &page[at..]),
                            None => page + &sections,
                        }
                    }
                    _ => page,
                }
            }
        }
    };
    match file.as_mut() {
        Some(f) => f
            .write_all(body.as_bytes())
            .with_context(|| "failed to write the report".to_string())?,
        None => std::io::stdout()
            .lock()
            .write_all(body.as_bytes())
            .context("failed to write to stdout")?,
    }
    Ok(0)
}

/// Several recordings, each reported as a run of its own: a table per run (text) or a
/// summary line per run with its `run` number (JSON). Plots take one recording.
fn report_runs(
    runs: &[(&std::path::PathBuf, Vec<&Part>)],
    args: &ReportArgs,
    group: crate::aggregate::GroupBy,
    only: Option<&[u32]>,
    percentiles: &[f64],
) -> anyhow::Result<String> {
    let n = runs.len();
    let mut body = String::new();
    for (k, (file, parts)) in runs.iter().enumerate() {
        let mut snap = recording::merge(parts, group, only)?;
        snap.sort_rows(crate::config::sort_key(args.sort));
        match args.format {
            ReportFormat::Text => {
                body += &format!(
                    "--- run {} of {n} ({}) ---\n",
                    k + 1,
                    text::escape(&file.display().to_string())
                );
                body += &text::render_percentiles(&snap, 0, percentiles);
                body.push('\n');
            }
            ReportFormat::Json => {
                body += &jsonl::line_of_run("summary", &snap, Some(k as u32 + 1));
            }
            ReportFormat::Svg
            | ReportFormat::Html
            | ReportFormat::Folded
            | ReportFormat::Flamegraph => bail!(
                "{n} recordings given: a plot shows one; pass --merge to merge them, or \
                 report each run's file on its own"
            ),
        }
    }
    if args.format == ReportFormat::Text {
        body += &format!("{n} recordings, reported as runs (--merge for one report)\n");
    }
    Ok(body)
}

/// Flame graphs in the HTML report: the syscalls with the most time.
const FLAME_GRAPHS: usize = 8;

/// The stacks of `parts` merged (only summaries carry them), restricted to `only`; `None`
/// when none of them has stacks.
fn stacks_of(parts: &[&Part], only: Option<&[u32]>) -> Option<StackSet> {
    let mut set: Option<StackSet> = None;
    for s in parts.iter().filter_map(|p| p.stacks.as_ref()) {
        set.get_or_insert_with(StackSet::default).merge(s);
    }
    if let (Some(set), Some(only)) = (set.as_mut(), only) {
        set.retain_syscalls(only);
    }
    set
}

/// p50/p99/max of each row label in each interval.
fn over_time(
    intervals: &[&Part],
    group: crate::aggregate::GroupBy,
    only: Option<&[u32]>,
    base_ns: u64,
) -> anyhow::Result<Vec<(String, Vec<TimePoint>)>> {
    let mut series: std::collections::BTreeMap<String, Vec<TimePoint>> = Default::default();
    for part in intervals {
        let snap = recording::merge(&[part], group, only)?;
        let t = (part.start_unix_ns + part.duration_ns).saturating_sub(base_ns) as f64 / 1e9;
        for row in &snap.rows {
            let st = row.stats();
            series
                .entry(plot::row_label(row))
                .or_default()
                .push(TimePoint {
                    t,
                    p50: st.p50_ns,
                    p99: st.p99_ns,
                    max: st.max_ns,
                });
        }
    }
    Ok(series
        .into_iter()
        .filter(|(_, pts)| pts.len() > 1)
        .collect())
}

fn parse_percentiles(list: &[String]) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for s in list {
        match s.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => out.push(p),
            _ => bail!("invalid percentile '{s}': give numbers in (0, 100], e.g. 50,99,99.9"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let p =
            |v: &[&str]| parse_percentiles(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["50", "99.99"]).unwrap(), vec![50.0, 99.99]);
        assert_eq!(
            p(&["0"]).unwrap_err().to_string(),
            "invalid percentile '0': give numbers in (0, 100], e.g. 50,99,99.9"
        );
        assert!(p(&["x"]).is_err());
        assert!(p(&["101"]).is_err());
    }
}
