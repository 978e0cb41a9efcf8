//! `syslat report`: read recordings, merge their histograms exactly (never averaging
//! percentiles), regroup and filter, and print a table, JSON, or plots.

use std::io::Write;

use anyhow::{Context as _, bail};

use std::collections::BTreeMap;

use crate::{
    aggregate::{GroupBy, LatencyHist, Snapshot, stacks::StackSet},
    cli::{Plot, ReportArgs, ReportFormat},
    config::{ReportConfig, group_by, stacks_weight},
    output::{
        flame,
        heatmap::{Heatmap, Hover, Timeline},
        html, jsonl,
        plot::{self, Spectrum},
        stacks, text,
    },
    recording::{self, MergeKey, Part, Recording},
};

/// Runs `report`; returns the exit status.
pub fn run(args: &ReportArgs) -> anyhow::Result<i32> {
    let ReportConfig {
        percentiles,
        only,
        output: mut file,
    } = ReportConfig::from_args(args)?;
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
    let whole: Vec<&Part> = runs.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let body = if runs.len() > 1 && !args.merge {
        report_runs(&runs, args, group, only.as_deref(), &percentiles)?
    } else {
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
            ReportFormat::Svg if args.plot == Some(Plot::Heatmap) => {
                heatmap_svg(&recordings, &snap, group, only.as_deref())?
            }
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
            ReportFormat::Html => html_page(
                &recordings,
                &snap,
                (group, only.as_deref()),
                crate::config::sort_key(args.sort),
                whole.iter().all(|p| p.anatomy),
                stacks.as_ref().map(|s| (s, weight)),
            )?,
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
    group: GroupBy,
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

/// Each row's histograms, by heatmap column.
type ByColumn = BTreeMap<MergeKey, Vec<(usize, LatencyHist)>>;

/// The heatmap columns of the recordings' intervals (none without intervals) and, per
/// row key, each column's histogram (the intervals of a column added up exactly).
fn columns(
    recordings: &[(&std::path::PathBuf, Recording)],
    group: GroupBy,
    only: Option<&[u32]>,
) -> anyhow::Result<Option<(Timeline, ByColumn)>> {
    let mut intervals: Vec<&Part> = recordings
        .iter()
        .flat_map(|(_, r)| r.intervals.iter())
        .collect();
    if intervals.is_empty() {
        return Ok(None);
    }
    intervals.sort_by_key(|p| p.start_unix_ns);
    let spans: Vec<(u64, u64)> = intervals
        .iter()
        .map(|p| (p.start_unix_ns, p.duration_ns))
        .collect();
    let timeline = Timeline::new(&spans);
    let mut by_key = ByColumn::new();
    for (c, chunk) in intervals
        .chunks(timeline.intervals_per_column())
        .enumerate()
    {
        for row in recording::merge(chunk, group, only)?.rows {
            by_key
                .entry(recording::row_key(&row))
                .or_default()
                .push((c, std::sync::Arc::unwrap_or_clone(row.series).hist));
        }
    }
    Ok(Some((timeline, by_key)))
}

/// The HTML report of `snap` (rows grouped and filtered as `(group, only)`, ordered by
/// `sort`), with heatmaps from the recordings' intervals, and the anatomy when `anatomy`.
fn html_page(
    recordings: &[(&std::path::PathBuf, Recording)],
    snap: &Snapshot,
    (group, only): (GroupBy, Option<&[u32]>),
    sort: crate::aggregate::SortKey,
    anatomy: bool,
    stacks: Option<(&StackSet, crate::aggregate::stacks::Weight)>,
) -> anyhow::Result<String> {
    let cols = columns(recordings, group, only)?;
    let mut flames = 0;
    let extras = snap
        .rows
        .iter()
        .take(html::MAX_SECTIONS)
        .map(|row| html::Extras {
            // The flame graphs of the first rows with stacks (each SVG is large).
            flame: stacks.and_then(|(set, weight)| {
                // The stacks of the folded rows' processes are not told apart from others'.
                if flames >= html::MAX_FLAME_GRAPHS || row.key.is_other() {
                    return None;
                }
                let section = flame::row_section(set, row.nr, row.key.comm(), weight)?;
                flames += 1;
                Some(section)
            }),
            heatmap: cols.as_ref().and_then(|(t, by_key)| {
                let hists: Vec<(usize, &LatencyHist)> = by_key
                    .get(&recording::row_key(row))
                    .map(|v| v.iter().map(|(c, h)| (*c, h)).collect())
                    .unwrap_or_default();
                Heatmap::new(t.columns.len(), &hists)
            }),
        })
        .collect();
    Ok(html::render(&html::Page {
        summary: snap,
        sort,
        anatomy,
        sources: recordings
            .iter()
            .map(|(f, _)| f.display().to_string())
            .collect(),
        timeline: cols.map(|(t, _)| t),
        extras,
    }))
}

/// One heatmap of every call reported (all rows added up), as a standalone SVG.
fn heatmap_svg(
    recordings: &[(&std::path::PathBuf, Recording)],
    snap: &Snapshot,
    group: GroupBy,
    only: Option<&[u32]>,
) -> anyhow::Result<String> {
    let Some((timeline, by_key)) = columns(recordings, group, only)? else {
        let names: Vec<String> = recordings
            .iter()
            .map(|(f, _)| text::escape(&f.display().to_string()))
            .collect();
        bail!(
            "{} holds no intervals: a heatmap needs an interval recording (record -i DURATION)",
            names.join(", ")
        );
    };
    let hists: Vec<(usize, &LatencyHist)> =
        by_key.values().flatten().map(|(c, h)| (*c, h)).collect();
    let Some(map) = Heatmap::new(timeline.columns.len(), &hists) else {
        bail!("no calls to plot (is -s too narrow?)");
    };
    let mut names: Vec<String> = snap.rows.iter().map(plot::row_label).collect();
    let title = match names.len() {
        1..=3 => names.join(", "),
        n => {
            names.truncate(3);
            format!("{}, and {} more", names.join(", "), n - 3)
        }
    };
    Ok(map.svg(
        &timeline,
        &format!("{title}: latency over time"),
        Hover::Titles,
    ))
}
