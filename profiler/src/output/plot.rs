//! Plots, for people who would rather look than read: the HdrHistogram percentile spectrum
//! (latency against percentile, both on log axes, one line per series) and p50/p99/max over
//! time for interval recordings, as SVG (plotters), and a self-contained HTML report that
//! inlines them (no network access needed to open it).

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::{
    aggregate::{LatencyHist, Snapshot},
    units::fmt_ns,
};

/// Errors from drawing (plotters reports them as strings).
#[derive(Debug, thiserror::Error)]
#[error("failed to draw the plot: {0}")]
pub struct PlotError(String);

fn err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError(format!("{e:?}"))
}

/// One line of a percentile plot.
pub struct Spectrum<'a> {
    /// Legend label.
    pub label: String,
    /// The latencies.
    pub hist: &'a LatencyHist,
}

/// The deepest percentile drawn: 99.999% (x = 1/(1-p) up to 1e5).
const MAX_X: f64 = 1e5;

/// Points (1/(1-p), latency ns) of the percentile spectrum, as HdrHistogram plots it.
pub fn spectrum_points(h: &LatencyHist) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    if h.count() == 0 {
        return pts;
    }
    for v in h.histogram().iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let x = if q >= 1.0 {
            MAX_X
        } else {
            (1.0 / (1.0 - q)).min(MAX_X)
        };
        pts.push((x, v.value_iterated_to().max(1) as f64));
        if x >= MAX_X {
            break;
        }
    }
    pts
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn percentile_label(x: &f64) -> String {
    match *x {
        x if x < 1.5 => "0%".into(),
        x => {
            let p = 100.0 * (1.0 - 1.0 / x);
            let s = format!("{p:.4}");
            format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
        }
    }
}

/// The percentile spectrum of each series, one SVG.
pub fn percentile_svg(title: &str, series: &[Spectrum<'_>]) -> Result<String, PlotError> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s.label.clone(), spectrum_points(s.hist)))
        .collect();
    let (lo, hi) = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let lo = if lo == f64::MAX {
        1.0
    } else {
        (lo / 2.0).max(1.0)
    };
    let hi = (hi * 2.0).max(lo * 10.0);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d((1.0f64..MAX_X).log_scale(), (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&percentile_label)
            .y_label_formatter(&|y| fmt_ns(*y as u64))
            .draw()
            .map_err(err)?;
        for (i, (label, pts)) in lines.into_iter().enumerate() {
            draw_line(&mut chart, pts, label, PALETTE[i % PALETTE.len()])?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// One point in time of an interval recording: seconds since the start, p50, p99, max (ns).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimePoint {
    /// Seconds since the recording started (interval end).
    pub t: f64,
    /// Median, ns.
    pub p50: u64,
    /// 99th percentile, ns.
    pub p99: u64,
    /// Slowest call, ns.
    pub max: u64,
}

/// p50, p99 and max over time, one SVG.
pub fn over_time_svg(title: &str, points: &[TimePoint]) -> Result<String, PlotError> {
    let t_max = points.iter().map(|p| p.t).fold(1.0f64, f64::max);
    let hi = points.iter().map(|p| p.max).max().unwrap_or(1).max(10) as f64 * 2.0;
    let lo = points
        .iter()
        .map(|p| p.p50)
        .filter(|v| *v > 0)
        .min()
        .unwrap_or(1) as f64
        / 2.0;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..t_max, (lo.max(1.0)..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("latency")
            .y_label_formatter(&|y| fmt_ns(*y as u64))
            .draw()
            .map_err(err)?;
        type Pick = fn(&TimePoint) -> u64;
        let lines: [(&str, Pick, RGBColor); 3] = [
            ("p50", |p| p.p50, PALETTE[0]),
            ("p99", |p| p.p99, PALETTE[1]),
            ("max", |p| p.max, PALETTE[3]),
        ];
        for (label, pick, color) in lines {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (p.t, pick(p).max(1) as f64))
                .collect();
            draw_line(&mut chart, pts, label.to_string(), color)?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// One labelled line and its legend sample.
fn draw_line<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    pts: Vec<(f64, f64)>,
    label: String,
    color: RGBColor,
) -> Result<(), PlotError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    Ok(())
}

/// `s` for HTML text or an attribute: control characters escaped as in the text output,
/// then the markup characters.
fn escape(s: &str) -> String {
    super::text::escape(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML report: the summary table, the percentile spectrum of every row
/// (all rows together, then each alone), and, given interval series, p50/p99/max over time.
pub fn html(
    summary: &Snapshot,
    over_time: &[(String, Vec<TimePoint>)],
) -> Result<String, PlotError> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"/><title>syslat report</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{padding:2px 10px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>\
         </head><body><h1>syslat report</h1><p>{} calls, {} rows, {} lost events</p>",
        summary.total_calls(),
        summary.rows.len(),
        summary.loss.lost()
    );
    h.push_str("<table><tr><th>series</th><th>calls</th><th>errors</th><th>total</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    for row in &summary.rows {
        let st = row.stats();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row_label(row)),
            st.count,
            st.errors,
            fmt_ns(st.total_ns),
            fmt_ns(st.p50_ns),
            fmt_ns(st.p90_ns),
            fmt_ns(st.p99_ns),
            fmt_ns(st.p999_ns),
            fmt_ns(st.max_ns)
        );
    }
    h.push_str("</table>");
    let spectra: Vec<Spectrum<'_>> = summary
        .rows
        .iter()
        .map(|r| Spectrum {
            label: row_label(r),
            hist: &r.series.hist,
        })
        .collect();
    h.push_str("<h2>Latency by percentile</h2>");
    h.push_str(&percentile_svg("all series", &spectra)?);
    for s in &spectra {
        let _ = write!(h, "<h3>{}</h3>", escape(&s.label));
        h.push_str(&percentile_svg(&s.label, std::slice::from_ref(s))?);
        if let Some((_, pts)) = over_time.iter().find(|(l, _)| *l == s.label) {
            h.push_str(&over_time_svg(&format!("{} over time", s.label), pts)?);
        }
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

/// A row's label in plots: `syscall`, or `syscall comm[pid]`.
pub fn row_label(row: &crate::aggregate::Row) -> String {
    if let Some(c) = &row.container {
        return format!(
            "{} {}[{}]",
            row.syscall,
            super::text::escape(&c.name),
            c.short_id()
        );
    }
    match row.pid {
        Some(pid) => format!(
            "{} {}[{pid}]",
            row.syscall,
            super::text::escape(row.comm.as_deref().unwrap_or("?"))
        ),
        None => row.syscall.clone(),
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, GroupBy, LossCounters};

    fn snap() -> Snapshot {
        let mut a = Aggregator::new(GroupBy::Syscall);
        for i in 0..1000u64 {
            a.record(&SyscallEvent {
                duration_ns: 100 + i * 7,
                ret: 0,
                tgid: 1,
                tid: 1,
                nr: 0,
                cgroup: 0,
                ..SyscallEvent::default()
            });
            a.record(&SyscallEvent {
                duration_ns: 10_000 + i * 50,
                ret: 0,
                tgid: 1,
                tid: 1,
                nr: 1,
                cgroup: 0,
                ..SyscallEvent::default()
            });
        }
        a.record(&SyscallEvent {
            duration_ns: 5,
            ret: 0,
            tgid: 1,
            tid: 1,
            nr: 2,
            cgroup: 0,
            ..SyscallEvent::default()
        });
        a.snapshot(0, 0, LossCounters::default(), &|_| None)
    }

    #[test]
    fn spectrum_rises_and_reaches_the_max() {
        let s = snap();
        let pts = spectrum_points(&s.rows[0].series.hist);
        assert!(pts.len() > 10);
        assert_eq!(pts[0].0, 1.0);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let max = s.rows[0].series.hist.max() as f64;
        assert_eq!(pts.last().unwrap().1, max);
        assert!(spectrum_points(&LatencyHist::new()).is_empty());
    }

    #[test]
    fn svg_has_one_line_per_series() {
        let s = snap();
        let spectra: Vec<Spectrum<'_>> = s
            .rows
            .iter()
            .map(|r| Spectrum {
                label: r.syscall.clone(),
                hist: &r.series.hist,
            })
            .collect();
        let svg = percentile_svg("test", &spectra).unwrap();
        assert!(svg.starts_with("<svg"));
        // One data line per series plus its legend sample (axes are thinner lines).
        assert_eq!(
            svg.matches(r#"stroke-width="2" points"#).count(),
            2 * spectra.len(),
            "{svg}"
        );
        for c in &PALETTE[..spectra.len()] {
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            assert!(svg.matches(&hex).count() >= 2, "{hex}");
        }
        for l in ["write", "read", "open", "99.9%", "90%"] {
            assert!(svg.contains(&format!("\n{l}\n")), "{l} missing");
        }
    }

    #[test]
    fn html_is_self_contained() {
        let s = snap();
        let pts = vec![
            TimePoint {
                t: 1.0,
                p50: 100,
                p99: 1000,
                max: 5000,
            },
            TimePoint {
                t: 2.0,
                p50: 120,
                p99: 900,
                max: 7000,
            },
        ];
        let page = html(&s, &[("read".into(), pts)]).unwrap();
        assert!(
            !page.contains("<script src") && !page.contains("<link"),
            "no external resources"
        );
        assert_eq!(
            page.matches("<svg").count(),
            1 + 3 + 1,
            "all, three rows, one over-time plot"
        );
        assert!(page.contains("read over time"));
    }
}
