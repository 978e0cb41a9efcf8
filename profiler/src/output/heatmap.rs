//! Latency heatmaps, the standard view of latency over time: one column per interval of
//! an interval recording (`record -i`), one row per power-of-two latency bucket, each cell
//! coloured by how many calls it holds (log scale), with p50 and p99 drawn over it.
//!
//! Pure: histograms in, SVG text out. The buckets come from the HdrHistogram exactly (its
//! sub-buckets never straddle a power of two), so every cell count is exact. A report draws
//! every row's heatmap over the same [`Timeline`], so their time axes line up.

use std::fmt::Write as _;

use super::svg::{self, Canvas};
use crate::{
    aggregate::{LatencyHist, log2_bucket},
    units::fmt_ns,
};

/// The most columns a heatmap has: adjacent intervals are added up beyond it, so a
/// recording of thousands of intervals still has columns a few pixels wide.
pub const MAX_COLUMNS: usize = 300;

/// The fewest calls a column needs for its p50 and its p99 to be drawn: with fewer, a
/// p99 is only the slowest call.
pub const LINE_MIN_CALLS: [u64; 2] = [10, 100];

/// The fewest rows (buckets) a heatmap draws.
pub const MIN_ROWS: u32 = 4;

/// One column: one interval, or several adjacent ones added up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Start, ns since the Unix epoch.
    pub start_ns: u64,
    /// End, ns since the Unix epoch.
    pub end_ns: u64,
    /// The first and last interval in it (1-based, in time order).
    pub intervals: (usize, usize),
}

/// The columns every heatmap of a report shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// Where time 0 of the axis is (the first interval's start), ns since the epoch.
    pub base_ns: u64,
    /// The columns, in time order.
    pub columns: Vec<Column>,
}

impl Timeline {
    /// The columns for intervals given as (start, length) in ns, in time order: one per
    /// interval, or `ceil(n / MAX_COLUMNS)` adjacent intervals each when there are more.
    pub fn new(intervals: &[(u64, u64)]) -> Self {
        let per = intervals.len().div_ceil(MAX_COLUMNS).max(1);
        let columns = intervals
            .chunks(per)
            .enumerate()
            .map(|(i, c)| Column {
                start_ns: c.iter().map(|x| x.0).min().unwrap_or(0),
                end_ns: c.iter().map(|x| x.0 + x.1).max().unwrap_or(0),
                intervals: (i * per + 1, i * per + c.len()),
            })
            .collect();
        Self {
            base_ns: intervals.iter().map(|x| x.0).min().unwrap_or(0),
            columns,
        }
    }

    /// How many adjacent intervals make a column (the last may hold fewer).
    pub fn intervals_per_column(&self) -> usize {
        self.columns
            .first()
            .map_or(1, |c| c.intervals.1 - c.intervals.0 + 1)
    }

    /// Seconds from the base to `ns`.
    fn secs(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.base_ns) as f64 / 1e9
    }

    /// What column `c` is, for hover text: `interval 3 (0.200–0.300 s)`, or
    /// `intervals 5–8 (…)` when it adds several up.
    pub fn label(&self, c: usize) -> String {
        let Some(col) = self.columns.get(c) else {
            return String::new();
        };
        let (a, b) = col.intervals;
        let which = if a == b {
            format!("interval {a}")
        } else {
            format!("intervals {a}–{b}")
        };
        format!(
            "{which} ({:.3}–{:.3} s)",
            self.secs(col.start_ns),
            self.secs(col.end_ns)
        )
    }
}

/// A bucket's range, for hover text and axis labels: `1.02µs–2.05µs`.
pub fn bucket_label(k: u32) -> String {
    format!("{}–{}", fmt_ns(1u64 << k), fmt_ns(1u64 << (k + 1)))
}

/// One column of one heatmap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Cells {
    /// Calls per bucket, indexed by bucket.
    counts: Vec<u64>,
    /// The column's median and 99th percentile, ns.
    p50: u64,
    p99: u64,
}

/// A heatmap of one row (or of several rows added up) over a [`Timeline`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heatmap {
    /// Per column; `None` where the row made no call.
    columns: Vec<Option<Cells>>,
    /// The lowest and highest bucket drawn.
    lo: u32,
    hi: u32,
    /// The largest cell count.
    max: u64,
}

impl Heatmap {
    /// The heatmap of `hists`, given as (column, histogram) pairs over `ncols` columns
    /// (pairs of one column are added up; columns past `ncols` are ignored). `None` when
    /// they hold no call.
    pub fn new(ncols: usize, hists: &[(usize, &LatencyHist)]) -> Option<Self> {
        let mut merged: Vec<Option<LatencyHist>> = vec![None; ncols];
        for (c, h) in hists {
            if let Some(slot) = merged.get_mut(*c)
                && h.count() > 0
            {
                slot.get_or_insert_with(LatencyHist::new).merge(h);
            }
        }
        let columns: Vec<Option<Cells>> = merged
            .iter()
            .map(|h| {
                h.as_ref().map(|h| {
                    let hist = h.histogram();
                    let mut counts = Vec::new();
                    for v in hist.iter_recorded() {
                        // The sub-bucket's lowest value: its bucket is the value's.
                        let k = log2_bucket(hist.lowest_equivalent(v.value_iterated_to()));
                        if counts.len() <= k {
                            counts.resize(k + 1, 0);
                        }
                        counts[k] += v.count_at_value();
                    }
                    Cells {
                        counts,
                        p50: h.percentile(50.0),
                        p99: h.percentile(99.0),
                    }
                })
            })
            .collect();
        let nonzero = || {
            columns.iter().flatten().flat_map(|c| {
                c.counts
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| (k as u32, *n))
            })
        };
        let mut lo = nonzero().map(|(k, _)| k).min()?;
        let mut hi = nonzero().map(|(k, _)| k).max()?;
        let max = nonzero().map(|(_, n)| n).max()?;
        // At least MIN_ROWS rows, the empty ones around the calls, for a sense of scale.
        while hi - lo + 1 < MIN_ROWS {
            lo = lo.saturating_sub(1);
            if hi - lo + 1 < MIN_ROWS {
                hi += 1;
            }
        }
        Some(Self {
            columns,
            lo,
            hi,
            max,
        })
    }

    /// Calls in column `c`, bucket `k`.
    pub fn count(&self, c: usize, k: u32) -> u64 {
        self.columns
            .get(c)
            .and_then(Option::as_ref)
            .and_then(|cells| cells.counts.get(k as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Calls in all cells.
    pub fn total(&self) -> u64 {
        self.columns
            .iter()
            .flatten()
            .map(|c| c.counts.iter().sum::<u64>())
            .sum()
    }

    /// The lowest and highest bucket drawn: those holding calls, widened to at least
    /// [`MIN_ROWS`] buckets.
    pub fn buckets(&self) -> (u32, u32) {
        (self.lo, self.hi)
    }

    /// The largest cell count (the top of the colour key).
    pub fn max_count(&self) -> u64 {
        self.max
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Rows drawn.
    fn rows(&self) -> u32 {
        self.hi - self.lo + 1
    }

    /// The colour level (0..LEVELS) of a count: log scale from 1 to the largest.
    fn level(&self, n: u64) -> usize {
        if self.max <= 1 {
            return LEVELS - 1;
        }
        let f = (n.max(1) as f64).ln() / (self.max as f64).ln();
        ((f * (LEVELS - 1) as f64).round() as usize).min(LEVELS - 1)
    }

    /// The SVG of this heatmap over `timeline`, titled `title`. With [`Hover::Titles`] each
    /// cell is a `<rect>` with a `<title>` (for a standalone file); with
    /// [`Hover::Script`] the cells are compact runs, and the counts are in `data-n` for
    /// the report page's script to show.
    pub fn svg(&self, timeline: &Timeline, title: &str, hover: Hover) -> String {
        let (w, h) = (640.0, 280.0);
        let (left, right, top, bottom) = (66.0, 96.0, 26.0, 38.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let cols = self.width();
        let rows = self.rows();
        let mut c = Canvas::new(w, h, "heatmap", title, hover == Hover::Titles);
        c.heading(left, title);
        // The cells, one unit each, stretched over the plot area.
        let _ = write!(
            c.body,
            "<svg class=\"cells\" x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" \
             viewBox=\"0 0 {cols} {rows}\" preserveAspectRatio=\"none\""
        );
        if hover == Hover::Script {
            let labels: Vec<String> = (0..rows).map(|r| bucket_label(self.hi - r)).collect();
            let _ = write!(
                c.body,
                " data-rows=\"{}\" data-n=\"{}\"",
                svg::escape(&labels.join("|")),
                self.counts_attr()
            );
        }
        let _ = write!(
            c.body,
            "><rect width=\"{cols}\" height=\"{rows}\" fill=\"#f4f4f4\"/>"
        );
        match hover {
            Hover::Titles => self.cell_rects(&mut c.body, timeline),
            Hover::Script => self.cell_runs(&mut c.body),
        }
        c.body.push_str("</svg>");
        self.percentile_lines(&mut c.body, (left, top, pw, ph));
        c.frame(left, top, pw, ph);
        // Latency axis: bucket boundaries, thinned to about 8 labels.
        let step = (rows + 1).div_ceil(8).max(1);
        for k in (self.lo..=self.hi + 1).filter(|k| (self.hi + 1 - k).is_multiple_of(step)) {
            let y = top + ph * f64::from(self.hi + 1 - k) / f64::from(rows);
            c.ytick(left, y, &svg::tick_label((1u64 << k) as f64));
        }
        c.ylabel(14.0, top + ph / 2.0, "latency");
        // Time axis: round seconds, placed inside the column that holds them (columns are
        // drawn one after another, gaps between recordings left out), 40 px apart at least.
        for (x, label) in time_ticks(timeline, pw) {
            c.xtick(left + x, top + ph, &label);
        }
        let per = timeline.intervals_per_column();
        let xdesc = if per > 1 {
            format!("seconds ({per} intervals a column)")
        } else {
            "seconds".to_string()
        };
        c.xlabel(left + pw / 2.0, h - 4.0, &xdesc);
        self.key(&mut c, left + pw + 14.0, top, ph);
        c.finish()
    }

    /// Counts for the hover script: columns separated by spaces, each the counts of its
    /// rows from the top, comma-separated, zeros empty and trailing zeros left out.
    fn counts_attr(&self) -> String {
        let mut out = String::new();
        for (i, col) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let Some(_) = col else { continue };
            let vals: Vec<u64> = (self.lo..=self.hi)
                .rev()
                .map(|k| self.count(i, k))
                .collect();
            let keep = vals.iter().rposition(|n| *n > 0).map_or(0, |p| p + 1);
            for (j, n) in vals[..keep].iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                if *n > 0 {
                    let _ = write!(out, "{n}");
                }
            }
        }
        out
    }

    /// Cells as horizontal runs of one colour level, one path per level (the stroke is
    /// one row high), for the page: a few bytes a cell.
    fn cell_runs(&self, out: &mut String) {
        let mut paths = vec![String::new(); LEVELS];
        for r in 0..self.rows() {
            let k = self.hi - r;
            let mut c = 0;
            while c < self.width() {
                let n = self.count(c, k);
                if n == 0 {
                    c += 1;
                    continue;
                }
                let lv = self.level(n);
                let start = c;
                while c < self.width() && self.count(c, k) > 0 && self.level(self.count(c, k)) == lv
                {
                    c += 1;
                }
                let _ = write!(paths[lv], "M{start} {r}h{}", c - start);
            }
        }
        out.push_str(
            "<g transform=\"translate(0 .5)\" fill=\"none\" stroke-width=\"1\" \
             shape-rendering=\"crispEdges\">",
        );
        for (lv, d) in paths.iter().enumerate().filter(|(_, d)| !d.is_empty()) {
            let _ = write!(out, "<path stroke=\"{}\" d=\"{d}\"/>", PALETTE[lv]);
        }
        out.push_str("</g>");
    }

    /// Cells as `<rect>`s with a `<title>` each, for a standalone SVG.
    fn cell_rects(&self, out: &mut String, timeline: &Timeline) {
        out.push_str("<g shape-rendering=\"crispEdges\">");
        for c in 0..self.width() {
            for r in 0..self.rows() {
                let k = self.hi - r;
                let n = self.count(c, k);
                if n == 0 {
                    continue;
                }
                let _ = write!(
                    out,
                    "<rect x=\"{c}\" y=\"{r}\" width=\"1\" height=\"1\" fill=\"{}\"><title>{}, {}: {}</title></rect>",
                    PALETTE[self.level(n)],
                    timeline.label(c),
                    bucket_label(k),
                    calls(n)
                );
            }
        }
        out.push_str("</g>");
    }

    /// p50 (solid) and p99 (dashed) through the columns' centres, over the plot area
    /// `(x, y, w, h)`: each through the columns with enough calls for it to mean more than
    /// the slowest call ([`LINE_MIN_CALLS`]), broken elsewhere; a lone column gets a tick
    /// across its width.
    fn percentile_lines(&self, out: &mut String, (x0, y0, pw, ph): (f64, f64, f64, f64)) {
        type Pick = fn(&Cells) -> u64;
        let lines: [(Pick, u64, &str); 2] = [
            (|c| c.p50, LINE_MIN_CALLS[0], ""),
            (|c| c.p99, LINE_MIN_CALLS[1], " stroke-dasharray=\"4 3\""),
        ];
        let (cw, rh) = (pw / self.width().max(1) as f64, ph / f64::from(self.rows()));
        for (pick, min_calls, dash) in lines {
            // Whole pixels, within half a pixel: a column is a few pixels wide, and a page
            // has a hundred of these.
            let mut d = svg::PathData::new(1, 0.5);
            let mut piece: Vec<(f64, f64)> = Vec::new();
            let flush = |piece: &mut Vec<(f64, f64)>, d: &mut svg::PathData| {
                if let [(x, y)] = piece.as_slice() {
                    d.to(x - cw / 2.0, *y);
                    d.to(x + cw / 2.0, *y);
                } else {
                    for (x, y) in piece.iter() {
                        d.to(*x, *y);
                    }
                }
                d.gap();
                piece.clear();
            };
            for (i, col) in self.columns.iter().enumerate() {
                match col {
                    Some(cells) if cells.counts.iter().sum::<u64>() >= min_calls => {
                        let v = (pick(cells).max(1) as f64).log2();
                        let r = (f64::from(self.hi + 1) - v).clamp(0.0, f64::from(self.rows()));
                        piece.push((x0 + cw * (i as f64 + 0.5), y0 + rh * r));
                    }
                    _ => flush(&mut piece, &mut d),
                }
            }
            flush(&mut piece, &mut d);
            let d = d.finish();
            if !d.is_empty() {
                let _ = write!(
                    out,
                    "<path d=\"{d}\" fill=\"none\" stroke=\"{LINE}\" stroke-width=\"1.5\"{dash} \
                     pointer-events=\"none\"/>"
                );
            }
        }
    }

    /// The colour key: the levels from 1 call (bottom) to the most (top), and the lines.
    fn key(&self, c: &mut Canvas, x: f64, top: f64, ph: f64) {
        let kh = (ph - 44.0).max(40.0);
        // The levels as a gradient of hard steps, defined once per page ([`ramp_defs`]).
        let _ = write!(
            c.body,
            "<rect x=\"{x}\" y=\"{top}\" width=\"12\" height=\"{}\" fill=\"url(#{RAMP})\"/>",
            svg::num(kh)
        );
        c.defs.push_str(&ramp_defs());
        let label = |c: &mut Canvas, y: f64, s: &str| {
            let _ = write!(
                c.body,
                "<text class=\"l\" x=\"{}\" y=\"{}\">{s}</text>",
                x + 16.0,
                svg::num(y + 4.0)
            );
        };
        if self.max > 1 {
            label(c, top + kh, "1");
        }
        if self.max >= 10 {
            let mid = (self.max as f64).sqrt().round() as u64;
            label(c, top + kh / 2.0, &mid.to_string());
        }
        label(c, top, &self.max.to_string());
        let _ = write!(
            c.body,
            "<text class=\"l\" x=\"{x}\" y=\"{}\">calls</text>",
            svg::num(top + kh + 16.0)
        );
        for (i, (name, dash)) in [("p50", ""), ("p99", " stroke-dasharray=\"4 3\"")]
            .iter()
            .enumerate()
        {
            let y = top + kh + 30.0 + 13.0 * i as f64;
            let _ = write!(
                c.body,
                "<path d=\"M{x} {y}h16\" stroke=\"{LINE}\" stroke-width=\"1.5\"{dash}/>\
                 <text class=\"l\" x=\"{}\" y=\"{}\">{name}</text>",
                x + 20.0,
                y + 4.0
            );
        }
    }
}

/// The id of the colour key's gradient.
const RAMP: &str = "syslat-ramp";

/// The `<linearGradient>` of the colour key: the levels bottom (1 call) to top, in hard
/// steps. A page defines it once; a standalone heatmap carries its own.
pub fn ramp_defs() -> String {
    let mut g = format!("<linearGradient id=\"{RAMP}\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">");
    for (i, colour) in PALETTE.iter().enumerate() {
        for edge in [i, i + 1] {
            let _ = write!(
                g,
                "<stop offset=\"{}\" stop-color=\"{colour}\"/>",
                svg::trim_num(edge as f64 / LEVELS as f64)
            );
        }
    }
    g.push_str("</linearGradient>");
    g
}

/// Ticks of a heatmap's time axis `pw` pixels wide: (x, label) at round seconds since the
/// start, each where its time falls inside a column, at least 40 px apart.
fn time_ticks(timeline: &Timeline, pw: f64) -> Vec<(f64, String)> {
    let cols = timeline.columns.len().max(1) as f64;
    let span = timeline
        .columns
        .last()
        .map_or(0.0, |l| timeline.secs(l.end_ns));
    let step = svg::nice_step(span / 6.0);
    let mut out: Vec<(f64, String)> = Vec::new();
    if step <= 0.0 {
        return out;
    }
    for i in 0..=((span / step).floor() as u64) {
        let m = step * i as f64;
        let Some((ci, col)) = timeline.columns.iter().enumerate().find(|(_, c)| {
            timeline.secs(c.start_ns) <= m + 1e-9 && m < timeline.secs(c.end_ns) - 1e-9
        }) else {
            continue;
        };
        let (a, b) = (timeline.secs(col.start_ns), timeline.secs(col.end_ns));
        let within = if b > a {
            ((m - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let x = pw * (ci as f64 + within) / cols;
        if out.last().is_none_or(|(last, _)| x - last >= 40.0) {
            out.push((x, svg::trim_num(m)));
        }
    }
    out
}

/// How a heatmap shows a cell's count on hover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hover {
    /// A `<title>` per cell (standalone SVG; larger).
    Titles,
    /// Counts in a data attribute, shown by the report page's script (compact).
    Script,
}

/// `1 call`, `5 calls`.
pub fn calls(n: u64) -> String {
    if n == 1 {
        "1 call".into()
    } else {
        format!("{n} calls")
    }
}

/// Colour levels of the key.
const LEVELS: usize = 12;

/// The levels' colours, from one call to the most: a sequential yellow-to-dark-red ramp
/// (ColorBrewer's YlOrRd, extended darker), visible on the light background.
const PALETTE: [&str; LEVELS] = [
    "#fed976", "#feb751", "#fd9a41", "#fd7a35", "#f9582a", "#ee3423", "#db1a1e", "#c20a22",
    "#a30026", "#820026", "#5c001e", "#380012",
];

/// The colour of the p50/p99 lines (blue, apart from the ramp).
const LINE: &str = "#1b5fc1";

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(vals: &[u64]) -> LatencyHist {
        let mut h = LatencyHist::new();
        for v in vals {
            h.record(*v);
        }
        h
    }

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket_label(0), "1ns–2ns");
        assert_eq!(bucket_label(10), "1.02µs–2.05µs");
        assert_eq!(bucket_label(23), "8.39ms–16.8ms");
    }

    #[test]
    fn cells_count_every_call_in_its_bucket_exactly() {
        // More than 64 values, so the histogram is a real HdrHistogram, with values on
        // both sides of bucket boundaries far above its exact range (2048).
        let mut a: Vec<u64> = (0..100).map(|i| 1_000 + i).collect(); // buckets 9 and 10
        a.extend([65_535, 65_536, 65_537, 1 << 30, (1 << 31) - 1]);
        let b = hist(&[5_000_000; 7]);
        let ha = hist(&a);
        let m = Heatmap::new(3, &[(0, &ha), (2, &b), (2, &hist(&[3]))]).unwrap();
        assert_eq!(m.count(0, 9), 24, "1000..=1023");
        assert_eq!(m.count(0, 10), 76, "1024..=1099");
        assert_eq!(m.count(0, 15), 1, "65535");
        assert_eq!(m.count(0, 16), 2, "65536, 65537");
        assert_eq!(m.count(0, 30), 2, "2^30, 2^31-1");
        assert_eq!(m.count(2, 22), 7, "5 ms");
        assert_eq!(m.count(2, 1), 1, "3 ns, added to the column");
        assert_eq!(m.count(1, 10), 0);
        assert_eq!(m.total(), 113);
        assert_eq!(m.buckets(), (1, 30));
        let low = Heatmap::new(1, &[(0, &hist(&[1]))]).unwrap();
        assert_eq!(low.buckets(), (0, MIN_ROWS - 1), "widened upwards at 0");
        assert_eq!(m.max_count(), 76);
        assert!(Heatmap::new(3, &[(1, &LatencyHist::new())]).is_none());
        assert!(Heatmap::new(1, &[(5, &ha)]).is_none(), "past the columns");
    }

    #[test]
    fn timeline_groups_intervals_beyond_the_cap() {
        let iv: Vec<(u64, u64)> = (0..10).map(|i| (1000 + i * 100, 100)).collect();
        let t = Timeline::new(&iv);
        assert_eq!(t.columns.len(), 10);
        assert_eq!(t.label(2), "interval 3 (0.000–0.000 s)");
        let iv: Vec<(u64, u64)> = (0..(MAX_COLUMNS as u64 * 2 + 1))
            .map(|i| (i * 100_000_000, 100_000_000))
            .collect();
        let t = Timeline::new(&iv);
        assert_eq!(t.columns.len(), MAX_COLUMNS.min(iv.len().div_ceil(3)));
        assert_eq!(t.intervals_per_column(), 3);
        assert_eq!(t.columns[1].intervals, (4, 6));
        assert_eq!(t.label(1), "intervals 4–6 (0.300–0.600 s)");
        let last = t.columns.last().unwrap();
        assert_eq!(last.intervals, (601, 601));
        assert_eq!(last.end_ns, 601 * 100_000_000);
    }

    #[test]
    fn time_ticks_fall_inside_their_columns_and_never_crowd() {
        // Two intervals of 65 ms: a step of at least 0.13 s / 6, rounded up to 0.05.
        let t = Timeline::new(&[(0, 65_000_000), (65_000_000, 65_000_000)]);
        let ticks = time_ticks(&t, 478.0);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "0.05", "0.1"]);
        // 0.1 s is 35/65 into the second column.
        let x = ticks[2].0;
        assert!((x - 478.0 * (1.0 + 35.0 / 65.0) / 2.0).abs() < 1e-6, "{x}");
        // A gap between two recordings: no tick in it.
        let g = Timeline::new(&[(0, 1_000_000_000), (5_000_000_000, 1_000_000_000)]);
        let labels: Vec<String> = time_ticks(&g, 478.0).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0", "5"]);
        // Many narrow columns: labels never closer than 40 px.
        let n: Vec<(u64, u64)> = (0..250).map(|i| (i * 7_000_000, 7_000_000)).collect();
        let ticks = time_ticks(&Timeline::new(&n), 100.0);
        assert!(ticks.len() >= 2);
        assert!(
            ticks.windows(2).all(|w| w[1].0 - w[0].0 >= 40.0),
            "{ticks:?}"
        );
    }

    #[test]
    fn svg_cells_titles_and_key() {
        let t = Timeline::new(&[(0, 1_000_000_000), (1_000_000_000, 1_000_000_000)]);
        let a = hist(&[1500; 10]);
        let b = hist(&[3000, 3000, 1500]);
        let m = Heatmap::new(2, &[(0, &a), (1, &b)]).unwrap();
        let s = m.svg(&t, "read", Hover::Titles);
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.contains("<title>interval 1 (0.000–1.000 s), 1.02µs–2.05µs: 10 calls</title>"));
        assert!(s.contains("<title>interval 2 (1.000–2.000 s), 2.05µs–4.10µs: 2 calls</title>"));
        assert!(s.contains("<title>interval 2 (1.000–2.000 s), 1.02µs–2.05µs: 1 call</title>"));
        assert_eq!(
            s.matches("<rect x=\"").count(),
            3 + 2,
            "cells, key and frame"
        );
        assert_eq!(
            s.matches("<stop ").count(),
            2 * LEVELS,
            "the key's gradient"
        );
        // The most calls get the darkest colour, one call the lightest.
        assert!(s.contains(&format!(
            "fill=\"{}\"><title>interval 1",
            PALETTE[LEVELS - 1]
        )));
        assert!(s.contains(&format!(
            "fill=\"{}\"><title>interval 2 (1.000–2.000 s), 1.02",
            PALETTE[0]
        )));
        let p = m.svg(&t, "read", Hover::Script);
        assert!(!p.contains("<title>interval"));
        // Buckets 10 and 11 hold the calls; 9 and 12 are drawn around them.
        assert_eq!(m.buckets(), (9, 12));
        assert!(
            p.contains("data-rows=\"4.10µs–8.19µs|2.05µs–4.10µs|1.02µs–2.05µs|512ns–1.02µs\""),
            "{p}"
        );
        assert!(p.contains("data-n=\",,10 ,2,1\""), "{p}");
    }

    #[test]
    fn runs_merge_equal_levels() {
        let t = Timeline::new(&[(0, 1), (1, 1), (2, 1), (3, 1)]);
        let a = hist(&[100; 5]);
        let m = Heatmap::new(4, &[(0, &a), (1, &a), (3, &a)]).unwrap();
        assert_eq!(m.buckets(), (4, 7), "100 ns is bucket 6, widened to 4 rows");
        let p = m.svg(&t, "x", Hover::Script);
        assert!(p.contains("d=\"M0 1h2M3 1h1\""), "{p}");
        assert!(p.contains("data-n=\",5 ,5  ,5\""), "{p}");
        assert!(!p.contains("<stop "), "the page defines the gradient");
        // Five calls a column: too few for either line.
        assert!(!p.contains("pointer-events"), "{p}");
        // Ten a column: p50 broken over the empty column (a tick for the lone one), no p99.
        let b = hist(&[100; 10]);
        let m = Heatmap::new(4, &[(0, &b), (1, &b), (3, &b)]).unwrap();
        let p = m.svg(&t, "x", Hover::Script);
        let lines: Vec<&str> = p
            .split("<path d=\"")
            .filter(|s| s.contains("pointer-events"))
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{p}");
        // Columns are 478/4 = 119.5 px wide, from x = 66; 100 ns is 1.36 rows below the
        // top of bucket 7, at y = 26 + 54 * 1.36. Columns 0 and 1 joined, column 3 a tick.
        assert_eq!(lines[0], "M126 99h119M425 99h119");
    }
}
