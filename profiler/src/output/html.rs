//! The HTML report (`report -f html`): one self-contained page, no network needed to open
//! it. An overview (the percentile spectrum of the rows with the most total time and where
//! the time goes), a sortable table of every row, and a section per row: its percentile
//! spectrum, its latency heatmap over time (interval recordings), the split of its time
//! on-CPU / run queue / blocked (when recorded), and its flame graph (when stacks are
//! recorded). Hovering a point, a bar or a heatmap cell shows its values.
//!
//! Every chart is inline SVG written by hand (see `svg.rs` and `heatmap.rs`), a few
//! kilobytes each; the anatomy's bar is plain HTML. The page is also well-formed XML, apart from the doctype, so tools can
//! parse it. It computes nothing: the numbers come in through [`Page`].

use std::fmt::Write as _;

use super::{
    heatmap::{Heatmap, Hover, Timeline},
    svg::{self, Line, escape},
};
use crate::{
    aggregate::{Row, Snapshot, SortKey},
    units::fmt_ns,
};

/// Rows (largest total time first) shown together in the overview.
pub const OVERVIEW_ROWS: usize = 8;

/// Rows that get a section of their own; the rest are in the table only.
pub const MAX_SECTIONS: usize = 100;

/// Rows whose section gets a flame graph (each is a large SVG), the first rows with stacks.
pub const MAX_FLAME_GRAPHS: usize = 8;

/// What one row's section shows beyond the row itself.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Its heatmap over the page's timeline (interval recordings).
    pub heatmap: Option<Heatmap>,
    /// Its flame graph section (`output::flame::row_section`), for a recording with stacks.
    pub flame: Option<String>,
}

/// Everything the page shows.
pub struct Page<'a> {
    /// The rows, in the order of `sort`.
    pub summary: &'a Snapshot,
    /// What the rows are ordered by.
    pub sort: SortKey,
    /// Whether the rows hold the latency anatomy (on CPU, run queue, blocked): recordings
    /// of JSON schema version 2 and later.
    pub anatomy: bool,
    /// The recordings read (for the header).
    pub sources: Vec<String>,
    /// The heatmaps' columns, for an interval recording.
    pub timeline: Option<Timeline>,
    /// Per row with a section (the first [`MAX_SECTIONS`] rows), in row order.
    pub extras: Vec<Extras>,
}

/// Colours of the overview's lines and bars.
const PALETTE: [&str; OVERVIEW_ROWS] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// The page's styles.
const CSS: &str = "body{font:14px sans-serif;margin:1.5em 2em;color:#222}\
h1{margin:0 0 .2em}h2{margin:1.4em 0 .4em;border-bottom:1px solid #ddd}\
h3{margin:0 0 .3em}h4{margin:.6em 0 .3em}\
.meta,.hint,.note{color:#555}.bad{color:#c00;font-weight:bold}\
table{border-collapse:collapse}td,th{padding:2px 9px;text-align:right}\
td:first-child,th:first-child{text-align:left}\
#rows thead th{cursor:pointer;user-select:none;border-bottom:1px solid #999;white-space:nowrap}\
#rows tbody tr:nth-child(even){background:#f6f6f6}#rows tbody tr:hover{background:#e8f0fb}\
th[aria-sort=descending]::after{content:' \\25BC'}th[aria-sort=ascending]::after{content:' \\25B2'}\
section.series{margin:1.2em 0;padding:.6em .8em;border:1px solid #ddd;border-radius:4px}\
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}\
.anat td:first-child{font-weight:bold}\
.bar{display:flex;width:600px;height:24px;line-height:24px;margin:2px 0 6px}\
.bar span{color:#fff;font-size:12px;overflow:hidden;white-space:nowrap;text-indent:5px}\
.bar .on{background:#2ca02c}.bar .rq{background:#d62728}.bar .bl{background:#1f77b4}\
#tip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:3px 7px;\
border-radius:3px;font-size:12px;white-space:nowrap;z-index:9}";

/// The page's script: sorting the table on a header click, and the heatmap hover text.
const SCRIPT: &str = r#"(function(){
var tbl=document.getElementById('rows'),ths=tbl.tHead.rows[0].cells,body=tbl.tBodies[0];
function sortBy(i){
  var th=ths[i],num=th.getAttribute('data-t')!=='s',cur=th.getAttribute('aria-sort');
  var desc=cur?cur==='ascending':num;
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){
    var x=a.cells[i],y=b.cells[i];
    var r=num?Number(x.getAttribute('data-v'))-Number(y.getAttribute('data-v')):x.textContent.localeCompare(y.textContent);
    return desc?-r:r;
  });
  for(var j=0;j<ths.length;j++)ths[j].removeAttribute('aria-sort');
  th.setAttribute('aria-sort',desc?'descending':'ascending');
  rows.forEach(function(r){body.appendChild(r);});
}
for(var i=0;i<ths.length;i++)ths[i].addEventListener('click',sortBy.bind(null,i));
var colsEl=document.getElementById('columns'),tip=document.getElementById('tip');
if(!colsEl)return;
var cols=JSON.parse(colsEl.textContent);
document.querySelectorAll('svg.cells').forEach(function(s){
  var rows=null,n=null;
  s.addEventListener('mousemove',function(e){
    if(!rows){rows=s.getAttribute('data-rows').split('|');n=s.getAttribute('data-n').split(' ').map(function(c){return c.split(',');});}
    var p=s.createSVGPoint();p.x=e.clientX;p.y=e.clientY;
    p=p.matrixTransform(s.getScreenCTM().inverse());
    var c=Math.floor(p.x),r=Math.floor(p.y);
    if(c<0||r<0||c>=n.length||r>=rows.length){tip.hidden=true;return;}
    var v=Number(n[c][r]||0);
    tip.textContent=cols[c]+', '+rows[r]+': '+v+(v===1?' call':' calls');
    tip.style.left=(e.clientX+14)+'px';tip.style.top=(e.clientY+14)+'px';tip.hidden=false;
  });
  s.addEventListener('mouseleave',function(){tip.hidden=true;});
});
})();"#;

/// A row's name on the page: its syscall, and its process, thread or cgroup.
pub fn label(row: &Row) -> String {
    super::plot::row_label(row)
}

/// Percent of `total`, one decimal.
fn pct(part: u64, total: u64) -> String {
    if total == 0 {
        "0.0%".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / total as f64)
    }
}

/// The page.
pub fn render(page: &Page<'_>) -> String {
    let snap = page.summary;
    let rows = &snap.rows;
    let time: u64 = rows.iter().map(|r| r.series.total_ns).sum();
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <title>syslat report</title><style>/*<![CDATA[*/{CSS}{}/*]]>*/</style></head><body>\
         <h1>syslat report</h1>",
        svg::STYLE
    );
    header(&mut h, page);
    // Definitions the charts share (the heatmaps' colour key).
    let _ = write!(
        h,
        "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>{}</defs></svg>",
        super::heatmap::ramp_defs()
    );
    overview(&mut h, rows, time, page.sort);
    table(&mut h, rows, time, page.sort, page.anatomy);
    if !rows.is_empty() {
        h.push_str("<h2 id=\"sections\">Each row</h2>");
    }
    if rows.len() > page.extras.len() {
        let _ = write!(
            h,
            "<p class=\"note\">Sections for the {} rows with the most {}; the other {} are in \
             the table.</p>",
            page.extras.len(),
            sort_name(page.sort),
            rows.len() - page.extras.len()
        );
    }
    for (i, (row, extras)) in rows.iter().zip(&page.extras).enumerate() {
        section(&mut h, i, row, extras, page, time);
    }
    h.push_str("<div id=\"tip\" role=\"tooltip\" hidden=\"hidden\"></div>");
    if let Some(t) = &page.timeline {
        let labels: Vec<String> = (0..t.columns.len()).map(|c| t.label(c)).collect();
        // The labels are words, digits and dashes: nothing in them can end the element
        // early or needs escaping in XML.
        let json = serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into());
        let _ = write!(
            h,
            "<script type=\"application/json\" id=\"columns\">{json}</script>"
        );
    }
    let _ = write!(
        h,
        "<script>//<![CDATA[\n{SCRIPT}\n//]]></script></body></html>\n"
    );
    h
}

fn header(h: &mut String, page: &Page<'_>) {
    let snap = page.summary;
    let mut facts = vec![
        page.sources
            .iter()
            .map(|s| escape(&super::text::escape(s)))
            .collect::<Vec<_>>()
            .join(", "),
        format!("{} traced", fmt_ns(snap.duration_ns)),
        format!("{} calls", snap.total_calls()),
        format!("{} rows", snap.rows.len()),
    ];
    match &page.timeline {
        Some(t) => facts.push(format!(
            "{} intervals",
            t.columns.last().map_or(0, |c| c.intervals.1)
        )),
        None => facts.push("no intervals (record with -i DURATION for heatmaps)".into()),
    }
    let lost = snap.loss.lost();
    let lost = if lost > 0 {
        format!("<span class=\"bad\">{lost} lost events</span>")
    } else {
        "0 lost events".into()
    };
    let _ = write!(h, "<p class=\"meta\">{}, {lost}</p>", facts.join(", "));
}

/// What the rows are ordered by, in words.
fn sort_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Total => "total time",
        SortKey::Calls => "calls",
        SortKey::Oncpu => "time on CPU",
        SortKey::Runq => "run-queue wait",
        SortKey::Blocked => "time blocked",
    }
}

fn overview(h: &mut String, rows: &[Row], time: u64, sort: SortKey) {
    if rows.is_empty() {
        h.push_str("<p class=\"note\">No calls recorded.</p>");
        return;
    }
    let top = &rows[..rows.len().min(OVERVIEW_ROWS)];
    h.push_str("<h2 id=\"overview\">Overview</h2><p class=\"hint\">");
    if rows.len() > top.len() {
        let _ = write!(
            h,
            "The {} rows with the most {}; the other {} are in the table below.",
            top.len(),
            sort_name(sort),
            rows.len() - top.len()
        );
    } else {
        h.push_str("Every row.");
    }
    h.push_str(" Hover a point for its value.</p><div class=\"plots overview\">");
    let lines: Vec<Line<'_>> = top
        .iter()
        .zip(PALETTE)
        .map(|(r, colour)| Line {
            label: label(r),
            row: r,
            colour,
        })
        .collect();
    h.push_str(&svg::spectrum(
        "latency by percentile",
        &lines,
        900.0,
        360.0,
    ));
    h.push_str(&time_share(top, time));
    h.push_str("</div>");
}

/// A bar of the time in syscalls, split by the top rows (and the rest).
fn time_share(top: &[Row], time: u64) -> String {
    let (w, bar) = (900.0, 870.0);
    let mut c = svg::Canvas::new(w, 62.0, "share", "share of the time in syscalls", false);
    c.heading(0.0, "share of the time in syscalls");
    let mut x = 0.0;
    let shown: u64 = top.iter().map(|r| r.series.total_ns).sum();
    let mut parts: Vec<(String, u64, &str)> = top
        .iter()
        .zip(PALETTE)
        .map(|(r, col)| (label(r), r.series.total_ns, col))
        .collect();
    if time > shown {
        parts.push(("the other rows".into(), time - shown, "#d9d9d9"));
    }
    for (name, ns, colour) in parts {
        let bw = if time == 0 {
            0.0
        } else {
            bar * ns as f64 / time as f64
        };
        let _ = write!(
            c.body,
            "<rect x=\"{}\" y=\"26\" width=\"{}\" height=\"22\" fill=\"{colour}\"><title>{}: {} ({})</title></rect>",
            svg::num(x),
            svg::num(bw),
            escape(&name),
            fmt_ns(ns),
            pct(ns, time)
        );
        if bw >= 8.0 * name.chars().count() as f64 {
            let _ = write!(
                c.body,
                "<text x=\"{}\" y=\"41\" style=\"fill:#fff\">{}</text>",
                svg::num(x + 4.0),
                escape(&name)
            );
        }
        x += bw;
    }
    c.finish()
}

fn table(h: &mut String, rows: &[Row], time: u64, sort: SortKey, anatomy: bool) {
    h.push_str(
        "<h2 id=\"table\">All rows</h2><p class=\"hint\">Click a column to sort by it (again \
         to reverse); a name leads to its section.</p><table id=\"rows\"><thead><tr>",
    );
    let mut columns = vec![
        "series", "calls", "errors", "total", "% time", "mean", "p50", "p90", "p99", "p99.9", "max",
    ];
    if anatomy {
        columns.extend(["on CPU", "run queue", "blocked", "runq p99"]);
    }
    let sorted = match sort {
        SortKey::Total => Some("total"),
        SortKey::Calls => Some("calls"),
        // Sorted by a time the table shows as a share: no column is in that order.
        SortKey::Oncpu | SortKey::Runq | SortKey::Blocked => None,
    };
    for name in columns {
        let kind = if name == "series" { "s" } else { "n" };
        let mark = if Some(name) == sorted {
            " aria-sort=\"descending\""
        } else {
            ""
        };
        let _ = write!(h, "<th data-t=\"{kind}\"{mark}>{name}</th>");
    }
    h.push_str("</tr></thead><tbody>");
    for (i, row) in rows.iter().enumerate() {
        let st = row.stats();
        let name = escape(&label(row));
        if i < MAX_SECTIONS {
            let _ = write!(h, "<tr><td><a href=\"#r{}\">{name}</a></td>", i + 1);
        } else {
            let _ = write!(h, "<tr><td>{name}</td>");
        }
        let _ = write!(
            h,
            "<td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td>",
            st.count, st.count, st.errors, st.errors
        );
        let _ = write!(
            h,
            "<td data-v=\"{}\">{}</td><td data-v=\"{:.6}\">{}</td>",
            st.total_ns,
            fmt_ns(st.total_ns),
            share(st.total_ns, time),
            pct(st.total_ns, time)
        );
        for v in [
            st.mean_ns, st.p50_ns, st.p90_ns, st.p99_ns, st.p999_ns, st.max_ns,
        ] {
            let _ = write!(h, "<td data-v=\"{v}\">{}</td>", fmt_ns(v));
        }
        if anatomy {
            let s = &row.series;
            for part in [s.oncpu_ns(), s.off_cpu.runq_ns, s.off_cpu.blocked_ns] {
                let _ = write!(
                    h,
                    "<td data-v=\"{:.6}\">{}</td>",
                    share(part, s.total_ns),
                    pct(part, s.total_ns)
                );
            }
            let p99 = row.runq_percentile(99.0);
            let _ = write!(h, "<td data-v=\"{p99}\">{}</td>", fmt_ns(p99));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
}

/// `part / total` (0 for an empty total).
fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

fn section(h: &mut String, i: usize, row: &Row, extras: &Extras, page: &Page<'_>, time: u64) {
    let st = row.stats();
    let name = label(row);
    let _ = write!(
        h,
        "<section class=\"series\" id=\"r{}\"><h3>{}</h3><p class=\"stats\">{}",
        i + 1,
        escape(&name),
        super::heatmap::calls(st.count)
    );
    if st.errors > 0 {
        let errnos: Vec<String> = st
            .errnos
            .iter()
            .map(|(e, n)| format!("{} {n}", escape(e)))
            .collect();
        let _ = write!(h, ", {} failed ({})", st.errors, errnos.join(", "));
    }
    let _ = write!(
        h,
        "; total {} ({} of the time in syscalls), mean {}, p50 {}, p99 {}, max {}</p><div class=\"plots\">",
        fmt_ns(st.total_ns),
        pct(st.total_ns, time),
        fmt_ns(st.mean_ns),
        fmt_ns(st.p50_ns),
        fmt_ns(st.p99_ns),
        fmt_ns(st.max_ns)
    );
    let line = Line {
        label: name.clone(),
        row,
        colour: PALETTE[0],
    };
    h.push_str(&svg::spectrum(
        &format!("{name}: latency by percentile"),
        std::slice::from_ref(&line),
        440.0,
        280.0,
    ));
    if let (Some(map), Some(t)) = (&extras.heatmap, &page.timeline) {
        h.push_str(&map.svg(t, &format!("{name}: latency over time"), Hover::Script));
    }
    h.push_str("</div>");
    if page.anatomy {
        h.push_str(&anatomy_section(row));
    }
    if let Some(f) = &extras.flame {
        h.push_str(f);
    }
    h.push_str("</section>");
}

/// The split of a row's time: on a CPU, in the run queue, blocked; a bar (HTML, hover for
/// values) and a table with the per-call percentiles (exact: from the recording's
/// run-queue and blocked histograms) and the context switches.
fn anatomy_section(row: &Row) -> String {
    let s = &row.series;
    let off = &s.off_cpu;
    let total = s.total_ns;
    /// Name, total, p50 and p99 a call, class (colour).
    type Part<'a> = (&'a str, u64, Option<u64>, Option<u64>, &'a str);
    let parts: [Part<'_>; 3] = [
        ("on CPU", s.oncpu_ns(), None, None, "on"),
        (
            "run queue",
            off.runq_ns,
            Some(row.runq_percentile(50.0)),
            Some(row.runq_percentile(99.0)),
            "rq",
        ),
        (
            "blocked",
            off.blocked_ns,
            Some(row.blocked_percentile(50.0)),
            Some(row.blocked_percentile(99.0)),
            "bl",
        ),
    ];
    let mut h =
        String::from("<div class=\"anatomy\"><h4>Where the time went</h4><div class=\"bar\">");
    for (name, ns, _, _, class) in parts {
        // Named inside when there is room (a sixth of the bar), else only on hover.
        let inside = if share(ns, total) >= 1.0 / 6.0 {
            format!("{name} {}", pct(ns, total))
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<span class=\"{class}\" style=\"width:{:.3}%\" title=\"{name}: {} ({})\">{inside}</span>",
            100.0 * share(ns, total),
            fmt_ns(ns),
            pct(ns, total)
        );
    }
    h.push_str("</div>");
    h.push_str(
        "<table class=\"anat\"><tr><th></th><th>total</th><th>share</th><th>p50 a call</th>\
         <th>p99 a call</th></tr>",
    );
    let cell = |v: Option<u64>| match v {
        Some(ns) => format!("<td data-v=\"{ns}\">{}</td>", fmt_ns(ns)),
        None => "<td>–</td>".to_string(),
    };
    for (name, ns, p50, p99, _) in parts {
        let _ = write!(
            h,
            "<tr><td>{name}</td>{}<td>{}</td>{}{}</tr>",
            cell(Some(ns)),
            pct(ns, total),
            cell(p50),
            cell(p99)
        );
    }
    h.push_str("</table>");
    let count = s.count();
    let per_call = if count == 0 {
        0.0
    } else {
        off.switches() as f64 / count as f64
    };
    let _ = write!(
        h,
        "<p>{} context switches ({per_call:.2} a call), {} of them preemptions.</p></div>",
        off.switches(),
        off.involuntary
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{GroupBy, LatencyHist, LossCounters, OffCpu, Series};

    fn row(nr: u32, vals: &[u64]) -> Row {
        let mut s = Series::default();
        for v in vals {
            s.record(*v, None);
        }
        Row::new(nr, crate::aggregate::RowKey::Syscall, s)
    }

    fn snapshot(rows: Vec<Row>) -> Snapshot {
        Snapshot {
            start_unix_ns: 0,
            duration_ns: 2_000_000_000,
            group: GroupBy::Syscall,
            loss: LossCounters::default(),
            events: rows.iter().map(|r| r.series.count()).sum(),
            folded_keys: 0,
            rows,
        }
    }

    #[test]
    fn page_has_overview_table_sections_and_heatmaps() {
        let rows: Vec<Row> = (0..12)
            .map(|i| row(i, &vec![1000 * (u64::from(i) + 1); 100 - i as usize]))
            .collect();
        let mut snap = snapshot(rows);
        snap.rows
            .sort_by_key(|r| std::cmp::Reverse(r.series.total_ns));
        let t = Timeline::new(&[(0, 1_000_000_000), (1_000_000_000, 1_000_000_000)]);
        let extras: Vec<Extras> = snap
            .rows
            .iter()
            .map(|r| Extras {
                heatmap: Heatmap::new(2, &[(0, &r.series.hist), (1, &LatencyHist::new())]),
                flame: None,
            })
            .collect();
        let page = render(&Page {
            summary: &snap,
            sort: SortKey::Total,
            anatomy: false,
            sources: vec!["a<b.json".into()],
            timeline: Some(t),
            extras,
        });
        assert!(page.contains("a&lt;b.json"));
        assert!(
            !page.contains("<script src") && !page.contains("<link"),
            "self-contained"
        );
        assert_eq!(page.matches("<section class=\"series\"").count(), 12);
        assert_eq!(page.matches("class=\"heatmap\"").count(), 12);
        assert_eq!(
            page.matches("class=\"spectrum\"").count(),
            13,
            "overview and rows"
        );
        assert_eq!(page.matches("class=\"key\"").count(), OVERVIEW_ROWS);
        assert!(
            page.contains("the other 4 are in the table below"),
            "{page}"
        );
        assert_eq!(page.matches("<tr><td><a href=\"#r").count(), 12);
        assert!(page.contains("<script type=\"application/json\" id=\"columns\">[\"interval 1 (0.000–1.000 s)\",\"interval 2 (1.000–2.000 s)\"]</script>"));
        assert!(!page.contains("class=\"anatomy\"") && !page.contains(">run queue</th>"));
        assert!(!page.contains("lost events</span>"));
        assert!(page.contains("<th data-t=\"n\" aria-sort=\"descending\">total</th>"));
    }

    #[test]
    fn anatomy_split_with_exact_percentiles() {
        let mut r = row(0, &[100, 200, 300, 400]);
        // Per-call run-queue waits 0, 0, 100, 200 and blocked times 0, 0, 0, 200: 300 ns
        // each in all, on CPU the other 400 of the 1000.
        let hist = |v: &[u64]| {
            let mut h = LatencyHist::new();
            for x in v {
                h.record(*x);
            }
            h
        };
        std::sync::Arc::make_mut(&mut r.series).off_cpu = OffCpu::restore(
            [300, 200, 4, 2],
            Some((hist(&[0, 0, 100, 200]), hist(&[0, 0, 0, 200]))),
        );
        let s = anatomy_section(&r);
        assert_eq!(s.matches("<span class=").count(), 3);
        assert!(s.contains("<span class=\"on\" style=\"width:50.000%\" title=\"on CPU: 500ns (50.0%)\">on CPU 50.0%</span>"), "{s}");
        assert!(
            s.contains("style=\"width:30.000%\" title=\"run queue: 300ns (30.0%)\""),
            "{s}"
        );
        assert!(
            s.contains("style=\"width:20.000%\" title=\"blocked: 200ns (20.0%)\""),
            "{s}"
        );
        assert!(
            s.contains(
                "<tr><td>run queue</td><td data-v=\"300\">300ns</td><td>30.0%</td>\
                 <td data-v=\"0\">0ns</td><td data-v=\"200\">200ns</td></tr>"
            ),
            "{s}"
        );
        assert!(
            s.contains("<tr><td>on CPU</td><td data-v=\"500\">500ns</td><td>50.0%</td><td>–</td><td>–</td></tr>"),
            "{s}"
        );
        assert!(
            s.contains("6 context switches (1.50 a call), 2 of them preemptions."),
            "{s}"
        );
        // In the page: the section, and the table's columns; sorted by run-queue wait, no
        // column claims the order.
        let snap = snapshot(vec![r]);
        let page = render(&Page {
            summary: &snap,
            sort: SortKey::Runq,
            anatomy: true,
            sources: vec![],
            timeline: None,
            extras: vec![Extras::default()],
        });
        assert_eq!(page.matches("class=\"anatomy\"").count(), 1);
        assert!(page.contains("<th data-t=\"n\">run queue</th><th data-t=\"n\">blocked</th>"));
        assert!(page.contains("<td data-v=\"0.300000\">30.0%</td><td data-v=\"0.200000\">20.0%</td><td data-v=\"200\">200ns</td></tr>"), "{page}");
        assert!(!page.contains("aria-sort=\"descending\">"));
        assert!(page.contains("Every row."));
    }

    #[test]
    fn hostile_names_are_escaped_once() {
        let mut r = row(0, &[100]);
        r.key = crate::aggregate::RowKey::Process {
            pid: 7,
            comm: Some("\u{1b}]0;x\u{7}<b>\\".into()),
        };
        let snap = snapshot(vec![r]);
        let page = render(&Page {
            summary: &snap,
            sort: SortKey::Total,
            anatomy: false,
            sources: vec!["f\u{1b}.json".into()],
            timeline: None,
            extras: vec![Extras::default()],
        });
        assert!(
            !page.contains('\u{1b}') && !page.contains('\u{7}'),
            "raw escapes"
        );
        assert!(
            page.contains("<h3>read \\x1b]0;x\\x07&lt;b&gt;\\\\[7]</h3>"),
            "{page}"
        );
        assert!(page.contains("f\\x1b.json"), "{page}");
        assert!(!page.contains("\\\\x1b"), "escaped twice");
    }

    #[test]
    fn no_intervals_no_heatmaps_and_sections_capped() {
        let rows: Vec<Row> = (0..(MAX_SECTIONS as u32 + 3))
            .map(|i| row(i % 300, &[100]))
            .collect();
        let snap = snapshot(rows);
        let extras = vec![Extras::default(); MAX_SECTIONS];
        let page = render(&Page {
            summary: &snap,
            sort: SortKey::Calls,
            anatomy: false,
            sources: vec![],
            timeline: None,
            extras,
        });
        assert_eq!(
            page.matches("<section class=\"series\"").count(),
            MAX_SECTIONS
        );
        assert!(page.contains("rows with the most calls; the other 3 are in the table."));
        assert!(page.contains("<th data-t=\"n\" aria-sort=\"descending\">calls</th>"));
        assert!(!page.contains("class=\"heatmap\"") && !page.contains("id=\"columns\""));
        assert!(page.contains("record with -i DURATION for heatmaps"));
        assert_eq!(page.matches("<tr><td>").count(), MAX_SECTIONS + 3);
    }
}
