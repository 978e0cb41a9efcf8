//! Hand-built SVG for the HTML report: a small canvas with axes, ticks and labels, and the
//! HdrHistogram percentile spectrum (latency against percentile, both axes logarithmic) with
//! hover markers at the usual percentiles. A few kilobytes a chart, where plotters' output
//! is about fifteen, so a report of a hundred rows stays small; styled by classes that the
//! page (or, standalone, the SVG's own `<style>`) defines.

use std::fmt::Write as _;

use crate::{aggregate::Row, units::fmt_ns};

/// The styles a chart's classes need: in the page's `<style>`, or in a standalone SVG.
pub const STYLE: &str = "text{font:11px sans-serif;fill:#333}.t{font-size:13px;font-weight:bold}\
                         .r{text-anchor:end}.m{text-anchor:middle}";

/// `s` for SVG/HTML text or an attribute: the markup characters escaped. `s` must already
/// be printable: names from the kernel (a process name, a cgroup path, a file name) go
/// through [`super::text::escape`] first, once ([`super::plot::row_label`] does it).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A coordinate with at most one decimal (`12`, `12.5`).
pub fn num(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// A number without trailing zeros (`0.5`, `2`, `0.25`).
pub fn trim_num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

/// A latency tick label: [`fmt_ns`] without trailing zeros (`1µs`, `2.05µs`, `10ms`).
pub fn tick_label(ns: f64) -> String {
    let s = fmt_ns(ns.round() as u64);
    let digits = s.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
    let unit = &s[digits.len()..];
    let digits = if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        digits
    };
    format!("{digits}{unit}")
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `x` (0 for `x <= 0`).
pub fn nice_step(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || !x.is_finite() {
        return 0.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// Path data for a line through points, compact: each piece simplified (points that lie
/// within a tolerance of the line through their neighbours left out, Douglas–Peucker), the
/// first point absolute, then moves relative to the previous point as rounded, so rounding
/// never accumulates.
pub struct PathData {
    /// Pieces of the line (a gap starts a new one).
    pieces: Vec<Vec<(f64, f64)>>,
    /// Steps per pixel: 10 rounds to 0.1, 1 to whole pixels.
    per_px: f64,
    /// How far (pixels) a point may lie off the simplified line.
    tolerance: f64,
}

impl Default for PathData {
    /// Rounded to 0.1 pixel, simplified within 0.2.
    fn default() -> Self {
        Self::new(10, 0.2)
    }
}

impl PathData {
    /// Rounded to 1/`per_px` pixel (1 or 10), simplified within `tolerance` pixels.
    pub fn new(per_px: u8, tolerance: f64) -> Self {
        Self {
            pieces: vec![Vec::new()],
            per_px: f64::from(per_px.max(1)),
            tolerance,
        }
    }

    /// Lifts the pen: the next point starts a new piece.
    pub fn gap(&mut self) {
        if self.pieces.last().is_some_and(|p| !p.is_empty()) {
            self.pieces.push(Vec::new());
        }
    }

    /// A line to (`x`, `y`), or a move there after a gap.
    pub fn to(&mut self, x: f64, y: f64) {
        if let Some(p) = self.pieces.last_mut() {
            p.push((x, y));
        }
    }

    /// The `d` attribute's value.
    pub fn finish(self) -> String {
        let k = self.per_px;
        let steps = |v: i64| num(v as f64 / k);
        let mut d = String::new();
        for piece in &self.pieces {
            let mut last: Option<(i64, i64)> = None;
            for &(x, y) in &simplify(piece, self.tolerance) {
                let p = ((x * k).round() as i64, (y * k).round() as i64);
                match last {
                    None => {
                        let _ = write!(d, "M{} {}", steps(p.0), steps(p.1));
                    }
                    Some(l) if p == l => continue,
                    Some(l) if p.1 == l.1 => {
                        let _ = write!(d, "h{}", steps(p.0 - l.0));
                    }
                    Some(l) if p.0 == l.0 => {
                        let _ = write!(d, "v{}", steps(p.1 - l.1));
                    }
                    Some(l) => {
                        let dy = steps(p.1 - l.1);
                        let sep = if dy.starts_with('-') { "" } else { " " };
                        let _ = write!(d, "l{}{sep}{dy}", steps(p.0 - l.0));
                    }
                }
                last = Some(p);
            }
        }
        d
    }
}

/// `pts` without the points that lie within `tol` of the line through the points kept
/// around them (Douglas–Peucker); the ends are always kept.
fn simplify(pts: &[(f64, f64)], tol: f64) -> Vec<(f64, f64)> {
    if pts.len() < 3 {
        return pts.to_vec();
    }
    let mut keep = vec![false; pts.len()];
    keep[0] = true;
    keep[pts.len() - 1] = true;
    let mut todo = vec![(0, pts.len() - 1)];
    while let Some((a, b)) = todo.pop() {
        let ((x0, y0), (x1, y1)) = (pts[a], pts[b]);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = dx.hypot(dy);
        let far = (a + 1..b)
            .map(|i| {
                let (x, y) = pts[i];
                let dist = if len == 0.0 {
                    (x - x0).hypot(y - y0)
                } else {
                    (dy * (x - x0) - dx * (y - y0)).abs() / len
                };
                (i, dist)
            })
            .max_by(|p, q| p.1.total_cmp(&q.1));
        if let Some((i, dist)) = far
            && dist > tol
        {
            keep[i] = true;
            todo.push((a, i));
            todo.push((i, b));
        }
    }
    pts.iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(p, _)| *p)
        .collect()
}

/// An SVG being written: the opening tag is made by [`Canvas::finish`].
pub struct Canvas {
    w: f64,
    h: f64,
    class: &'static str,
    label: String,
    standalone: bool,
    /// Grid lines (drawn first), tick marks, and the labels of the left and bottom axes.
    grid: String,
    ticks: String,
    ylabels: String,
    xlabels: String,
    /// Definitions a standalone file needs (a page defines them once).
    pub defs: String,
    /// The elements, in order.
    pub body: String,
}

impl Canvas {
    /// A `w`×`h` canvas of class `class`, labelled `label` for assistive technology;
    /// `standalone` adds the styles (for a file of its own).
    pub fn new(w: f64, h: f64, class: &'static str, label: &str, standalone: bool) -> Self {
        Self {
            w,
            h,
            class,
            label: label.to_string(),
            standalone,
            grid: String::new(),
            ticks: String::new(),
            ylabels: String::new(),
            xlabels: String::new(),
            defs: String::new(),
            body: String::new(),
        }
    }

    /// The chart's title, at the top left.
    pub fn heading(&mut self, x: f64, title: &str) {
        let _ = write!(
            self.body,
            "<text class=\"t\" x=\"{}\" y=\"17\">{}</text>",
            num(x),
            escape(title)
        );
    }

    /// The plot area's frame.
    pub fn frame(&mut self, x: f64, y: f64, w: f64, h: f64) {
        let _ = write!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
            num(x),
            num(y),
            num(w),
            num(h)
        );
    }

    /// A tick on the left axis at height `y`, labelled to its left.
    pub fn ytick(&mut self, x: f64, y: f64, label: &str) {
        let _ = write!(self.ticks, "M{} {}h4", num(x - 4.0), num(y));
        let _ = write!(
            self.ylabels,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            num(x - 6.0),
            num(y + 4.0),
            escape(label)
        );
    }

    /// A tick on the bottom axis at `x`, labelled below.
    pub fn xtick(&mut self, x: f64, y: f64, label: &str) {
        let _ = write!(self.ticks, "M{} {}v4", num(x), num(y));
        let _ = write!(
            self.xlabels,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            num(x),
            num(y + 15.0),
            escape(label)
        );
    }

    /// A light grid line across the plot area at height `y`.
    pub fn hgrid(&mut self, x: f64, w: f64, y: f64) {
        let _ = write!(self.grid, "M{} {}h{}", num(x), num(y), num(w));
    }

    /// A light grid line down the plot area at `x`.
    pub fn vgrid(&mut self, x: f64, y: f64, h: f64) {
        let _ = write!(self.grid, "M{} {}v{}", num(x), num(y), num(h));
    }

    /// The left axis's name, written upwards, centred on (`x`, `y`).
    pub fn ylabel(&mut self, x: f64, y: f64, text: &str) {
        let _ = write!(
            self.body,
            "<text class=\"m\" transform=\"translate({} {}) rotate(-90)\">{}</text>",
            num(x),
            num(y),
            escape(text)
        );
    }

    /// The bottom axis's name, centred on `x`.
    pub fn xlabel(&mut self, x: f64, y: f64, text: &str) {
        let _ = write!(
            self.body,
            "<text class=\"m\" x=\"{}\" y=\"{}\">{}</text>",
            num(x),
            num(y),
            escape(text)
        );
    }

    /// The whole SVG.
    pub fn finish(self) -> String {
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{}\" width=\"{}\" height=\"{}\" \
             viewBox=\"0 0 {} {}\" aria-label=\"{}\">",
            self.class,
            num(self.w),
            num(self.h),
            num(self.w),
            num(self.h),
            escape(&self.label)
        );
        if self.standalone {
            let _ = write!(
                out,
                "<style>{STYLE}</style><defs>{}</defs><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>",
                self.defs
            );
        }
        if !self.grid.is_empty() {
            let _ = write!(out, "<path d=\"{}\" stroke=\"#e4e4e4\"/>", self.grid);
        }
        out.push_str(&self.body);
        if !self.ticks.is_empty() {
            let _ = write!(out, "<path d=\"{}\" stroke=\"#999\"/>", self.ticks);
        }
        if !self.ylabels.is_empty() {
            let _ = write!(out, "<g class=\"r\">{}</g>", self.ylabels);
        }
        if !self.xlabels.is_empty() {
            let _ = write!(out, "<g class=\"m\">{}</g>", self.xlabels);
        }
        out.push_str("</svg>");
        out
    }
}

/// A log latency axis holding `lo..=hi` ns: its ticks, and its ends as log10. The ends are
/// the nearest 1, 2 or 5 times a power of ten around the data, so a narrow range fills the
/// chart; the ticks are the decades over a wide range (more than two decades: an end next
/// to a decade would crowd its label), else every 1, 2 and 5, ends included.
pub fn latency_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64, f64) {
    let nice: Vec<f64> = (0..=13)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .collect();
    let lo = lo.max(1.0);
    let bottom = nice
        .iter()
        .copied()
        .rfind(|v| *v <= lo * (1.0 + 1e-9))
        .unwrap_or(1.0);
    let top = nice
        .iter()
        .copied()
        .find(|v| *v >= hi * (1.0 - 1e-9) && *v > bottom)
        .unwrap_or(bottom * 10.0);
    let wide = top / bottom > 100.0 * (1.0 + 1e-9);
    let ticks = nice
        .into_iter()
        .filter(|v| *v >= bottom && *v <= top)
        .filter(|v| !wide || (v.log10().fract()).abs() < 1e-9)
        .collect();
    (ticks, bottom.log10(), top.log10())
}

/// One line of a spectrum chart.
pub struct Line<'a> {
    /// Its name (legend, hover).
    pub label: String,
    /// Its calls.
    pub row: &'a Row,
    /// Its colour, `#rrggbb`.
    pub colour: &'static str,
}

/// The percentiles marked on a spectrum (hover shows their values), and the max.
const MARKS: [(f64, &str); 6] = [
    (50.0, "p50"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (100.0, "max"),
];

/// The deepest percentile on the axis: 99.999% (log10 of 1/(1-p) up to 5).
const DEPTH: f64 = 5.0;

/// Where percentile `p` (0..=100) lies on the axis: log10(1/(1-p)), the max at the end.
fn depth_of(p: f64) -> f64 {
    if p >= 100.0 {
        DEPTH
    } else {
        (-(1.0 - p / 100.0).log10()).min(DEPTH)
    }
}

/// Points (axis position, latency ns) of a row's spectrum: sixty steps along the
/// axis, repeated latencies inside a flat stretch left out.
pub fn spectrum_points(row: &Row) -> Vec<(f64, u64)> {
    const STEPS: usize = 60;
    if row.series.count() == 0 {
        return Vec::new();
    }
    let all: Vec<(f64, u64)> = (0..=STEPS)
        .map(|i| {
            let d = DEPTH * i as f64 / STEPS as f64;
            let p = if i == STEPS {
                100.0
            } else {
                100.0 * (1.0 - 10f64.powf(-d))
            };
            (d, row.percentile(p).max(1))
        })
        .collect();
    all.iter()
        .enumerate()
        .filter(|(i, (_, v))| *i == 0 || *i == STEPS || all[i - 1].1 != *v || all[i + 1].1 != *v)
        .map(|(_, p)| *p)
        .collect()
}

/// The percentile spectrum of `lines`, one SVG of `w`×`h`, with a legend on the right when
/// there are several lines.
pub fn spectrum(title: &str, lines: &[Line<'_>], w: f64, h: f64) -> String {
    let legend = lines.len() > 1;
    let (left, right, top, bottom) = (58.0, if legend { 190.0 } else { 30.0 }, 26.0, 38.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let pts: Vec<Vec<(f64, u64)>> = lines.iter().map(|l| spectrum_points(l.row)).collect();
    let lo = pts.iter().flatten().map(|p| p.1).min().unwrap_or(1).max(1) as f64;
    let hi = pts.iter().flatten().map(|p| p.1).max().unwrap_or(10).max(2) as f64;
    let (ticks, ylo, yhi) = latency_ticks(lo, hi);
    let span = yhi - ylo;
    let sx = |d: f64| left + pw * d / DEPTH;
    let sy = |ns: f64| top + ph * (1.0 - (ns.max(1.0).log10() - ylo) / span);
    let mut c = Canvas::new(w, h, "spectrum", title, false);
    c.heading(left, title);
    for v in ticks {
        let y = sy(v);
        c.hgrid(left, pw, y);
        c.ytick(left, y, &tick_label(v));
    }
    for (d, name) in [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (5.0, "99.999%"),
    ] {
        c.vgrid(sx(d), top, ph);
        c.xtick(sx(d), top + ph, name);
    }
    c.frame(left, top, pw, ph);
    c.ylabel(14.0, top + ph / 2.0, "latency");
    c.xlabel(left + pw / 2.0, h - 4.0, "percentile");
    for (line, pts) in lines.iter().zip(&pts) {
        let mut d = PathData::default();
        for (x, v) in pts {
            d.to(sx(*x), sy(*v as f64));
        }
        let d = d.finish();
        let _ = write!(
            c.body,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"><title>{}</title></path>",
            line.colour,
            escape(&line.label)
        );
        let who = if legend {
            format!("{} ", escape(&line.label))
        } else {
            String::new()
        };
        for (p, name) in MARKS {
            let v = line.row.percentile(p);
            let _ = write!(
                c.body,
                "<circle class=\"mark\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{who}{name}: {}</title></circle>",
                num(sx(depth_of(p))),
                num(sy(v as f64)),
                line.colour,
                fmt_ns(v)
            );
        }
    }
    if legend {
        let x = left + pw + 14.0;
        for (i, line) in lines.iter().enumerate() {
            let y = top + 6.0 + 17.0 * i as f64;
            let _ = write!(
                c.body,
                "<g class=\"key\"><path d=\"M{} {}h16\" stroke=\"{}\" stroke-width=\"3\"/>\
                 <text x=\"{}\" y=\"{}\">{}</text></g>",
                num(x),
                num(y),
                line.colour,
                num(x + 22.0),
                num(y + 4.0),
                escape(&line.label)
            );
        }
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Series;

    fn row(vals: impl IntoIterator<Item = u64>) -> Row {
        let mut s = Series::default();
        for v in vals {
            s.record(v, None);
        }
        Row::new(0, crate::aggregate::RowKey::Syscall, s)
    }

    #[test]
    fn labels_and_steps() {
        assert_eq!(tick_label(1000.0), "1µs");
        assert_eq!(tick_label(1024.0), "1.02µs");
        assert_eq!(tick_label(10_000_000.0), "10ms");
        assert_eq!(tick_label(100.0), "100ns");
        assert_eq!(tick_label(2_000_000_000.0), "2s");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.03), 0.05);
        assert_eq!(nice_step(0.0), 0.0);
        assert_eq!(trim_num(0.5), "0.5");
        assert_eq!(trim_num(2.0), "2");
        assert_eq!(num(3.04), "3");
        assert_eq!(num(3.25), "3.2");
    }

    #[test]
    fn latency_axis_fits_the_data() {
        let (t, lo, hi) = latency_ticks(10_100_000.0, 10_200_000.0);
        assert_eq!(t, vec![10e6, 20e6], "10.1 ms to 10.2 ms: 10 ms to 20 ms");
        assert_eq!((lo, hi), (7.0, 20e6f64.log10()));
        let (t, _, _) = latency_ticks(300.0, 4_000.0);
        assert_eq!(t, vec![200.0, 500.0, 1e3, 2e3, 5e3]);
        let (t, _, _) = latency_ticks(300.0, 3e7);
        assert_eq!(t, vec![1e3, 1e4, 1e5, 1e6, 1e7], "decades only");
        let (t, _, _) = latency_ticks(1000.0, 1000.0);
        assert_eq!(t, vec![1e3, 2e3], "one value: one step up");
    }

    #[test]
    fn path_data_is_relative_without_drift() {
        let mut d = PathData::new(10, 0.0);
        for (x, y) in [(10.0, 20.0), (12.34, 20.0), (14.68, 25.55), (14.68, 22.0)] {
            d.to(x, y);
        }
        d.gap();
        d.gap();
        d.to(30.0, 5.0);
        d.to(30.05, 4.0);
        // 12.34 and 14.68 round to 12.3 and 14.7: the second step is 2.4, not 2.3.
        assert_eq!(d.finish(), "M10 20h2.3l2.4 5.6v-3.6M30 5l0.1-1");
        let mut d = PathData::new(1, 0.0);
        for (x, y) in [(0.4, 0.6), (2.6, 0.9), (4.9, 3.2)] {
            d.to(x, y);
        }
        assert_eq!(d.finish(), "M0 1h3l2 2");
    }

    #[test]
    fn simplification_keeps_what_is_visible() {
        // A flat stretch with a little noise, then a step.
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), if i % 2 == 0 { 5.0 } else { 5.3 }))
            .chain([(10.0, 9.0), (11.0, 9.0)])
            .collect();
        let s = simplify(&pts, 0.5);
        assert_eq!(s.first(), pts.first());
        assert_eq!(s.last(), pts.last());
        assert!(s.len() <= 5, "{s:?}");
        assert!(s.contains(&(10.0, 9.0)), "the step is kept: {s:?}");
        // Nothing is ever more than the tolerance off the simplified line.
        for (x, y) in &pts {
            let seg = s.windows(2).find(|w| w[0].0 <= *x && *x <= w[1].0).unwrap();
            let t = (x - seg[0].0) / (seg[1].0 - seg[0].0);
            let on = seg[0].1 + t * (seg[1].1 - seg[0].1);
            assert!((on - y).abs() <= 0.5 + 1e-9, "({x}, {y}) off by {}", on - y);
        }
        assert_eq!(
            simplify(&pts, 0.0).len(),
            pts.len(),
            "no point lies on its neighbours' line"
        );
        let line: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), 2.0 * f64::from(i))).collect();
        assert_eq!(simplify(&line, 0.0), vec![(0.0, 0.0), (4.0, 8.0)]);
    }

    #[test]
    fn spectrum_rises_to_the_max_with_hover_marks() {
        let r = row((1..=10_000).map(|i| i * 10));
        let pts = spectrum_points(&r);
        assert_eq!(pts[0], (0.0, r.percentile(0.0)));
        assert_eq!(pts.last().unwrap(), &(DEPTH, 100_000));
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        let s = spectrum(
            "read",
            &[Line {
                label: "read".into(),
                row: &r,
                colour: "#123456",
            }],
            440.0,
            260.0,
        );
        assert!(s.starts_with("<svg"));
        assert_eq!(s.matches("<circle").count(), MARKS.len());
        assert!(
            s.contains(&format!(
                "<title>p99: {}</title>",
                fmt_ns(r.percentile(99.0))
            )),
            "{s}"
        );
        assert!(s.contains("<title>max: 100µs</title>"), "{s}");
        assert!(!s.contains("class=\"key\""), "no legend for one line");
        // A flat spectrum keeps only the ends of its flat stretch.
        assert_eq!(spectrum_points(&row([500; 100])).len(), 2);
        assert!(spectrum_points(&row([])).is_empty());
    }

    #[test]
    fn several_lines_get_a_legend() {
        let a = row([100, 200, 300]);
        let b = row([1_000_000]);
        let s = spectrum(
            "top",
            &[
                Line {
                    label: "a<b".into(),
                    row: &a,
                    colour: "#111111",
                },
                Line {
                    label: "b".into(),
                    row: &b,
                    colour: "#222222",
                },
            ],
            900.0,
            360.0,
        );
        assert_eq!(s.matches("class=\"key\"").count(), 2);
        assert!(s.contains(">a&lt;b</text>"));
        assert!(s.contains("<title>a&lt;b p50: 200ns</title>"), "{s}");
        for l in [">100ns<", ">1ms<", ">99.9%<"] {
            assert!(s.contains(l), "{l} missing");
        }
    }
}
