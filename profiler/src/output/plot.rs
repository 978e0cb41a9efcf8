//! The percentile plot of `report -f svg`: the HdrHistogram percentile spectrum (latency
//! against percentile, both on log axes, one line per series), drawn with plotters. The HTML
//! report draws its own, smaller charts (`html.rs`).

use plotters::prelude::*;

use crate::{aggregate::LatencyHist, units::fmt_ns};

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

/// A row's label in plots, from its key: `syscall`, then `comm[pid]`, `comm[pid] tid N`,
/// the cgroup path (`/` for the root), `name[short id]` of a container, or `other` for
/// folded rows. Names are escaped.
pub fn row_label(row: &crate::aggregate::Row) -> String {
    use crate::aggregate::RowKey;
    let esc = super::text::escape;
    let comm = |c: &Option<String>| esc(c.as_deref().unwrap_or("?"));
    let who = match &row.key {
        RowKey::Syscall => return row.syscall.clone(),
        RowKey::Other => "other".to_string(),
        RowKey::Process { pid, comm: c } => format!("{}[{pid}]", comm(c)),
        RowKey::Thread { pid, tid, comm: c } => format!("{}[{pid}] tid {tid}", comm(c)),
        RowKey::Cgroup { path } if path.is_empty() => "/".to_string(),
        RowKey::Cgroup { path } => esc(path),
        RowKey::Container(c) => format!("{}[{}]", esc(&c.name), c.short_id()),
    };
    format!("{} {who}", row.syscall)
}

#[cfg(test)]
mod tests {
    use profiler_common::SyscallEvent;

    use super::*;
    use crate::aggregate::{Aggregator, GroupBy, LossCounters, Snapshot};

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
    fn labels_tell_processes_threads_and_cgroups_apart() {
        use crate::aggregate::{Row, RowKey, Series};
        let row = |nr, key| Row::new(nr, key, Series::default());
        let comm = Some("ca\tt".to_string());
        let r = row(
            0,
            RowKey::Process {
                pid: 7,
                comm: comm.clone(),
            },
        );
        assert_eq!(row_label(&r), "read ca\\x09t[7]");
        let r = row(
            0,
            RowKey::Thread {
                pid: 7,
                tid: 8,
                comm,
            },
        );
        assert_eq!(row_label(&r), "read ca\\x09t[7] tid 8");
        let cgroup = |p: &str| row(1, RowKey::Cgroup { path: p.into() });
        assert_eq!(row_label(&cgroup("system.slice/x")), "write system.slice/x");
        assert_eq!(row_label(&cgroup("")), "write /");
        assert_eq!(row_label(&row(1, RowKey::Other)), "write other");
        assert_eq!(row_label(&row(1, RowKey::Syscall)), "write");
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
}
