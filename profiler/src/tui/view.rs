//! Drawing: a pure function of the [`App`] (and the frame it holds) onto a ratatui frame.
//! No I/O, no locks: the collector never waits for it.

use ratatui::{
    Frame as TermFrame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState},
};

use super::app::{App, Column, Mode, SyscallRow};
use crate::units::fmt_ns;

/// Draws the whole screen.
pub fn draw(f: &mut TermFrame<'_>, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app);
    match app.mode {
        Mode::Syscalls | Mode::DrillProcess(_) => draw_syscalls(f, body, app),
        Mode::Processes => draw_processes(f, body, app),
        Mode::DrillSyscall(nr) => draw_drill(f, body, app, nr),
    }
    let hint = if app.editing_filter {
        format!("filter: {}_   (Enter to apply, Esc to stop)", app.filter)
    } else {
        "q quit  ? help  1-8 sort  a anatomy  p processes  Enter drill down  Esc back  / filter  c cumulative  space pause".to_string()
    };
    f.render_widget(
        Paragraph::new(hint).style(Style::default().fg(Color::DarkGray)),
        footer,
    );
    if app.help {
        draw_help(f, f.area());
    }
}

fn draw_header(f: &mut TermFrame<'_>, area: Rect, app: &App) {
    let Some(fr) = app.frame.as_deref() else {
        f.render_widget(
            Paragraph::new("syslat top: waiting for the first interval..."),
            area,
        );
        return;
    };
    let snap = if app.cumulative {
        &fr.total_syscalls
    } else {
        &fr.interval_syscalls
    };
    let secs = (snap.duration_ns as f64 / 1e9).max(1e-9);
    let rate = snap.total_calls() as f64 / secs;
    let loss = &snap.loss;
    let warn = |n: u64| {
        if n > 0 {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    };
    let mut line1 = vec![Span::styled(
        "syslat top",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    line1.push(Span::raw(format!(
        "  up {:.0}s  tracing {}  {}  {}",
        fr.uptime_s,
        fr.targets,
        if app.cumulative {
            "since start"
        } else {
            "last interval"
        },
        if app.paused { "PAUSED" } else { "" }
    )));
    if let Some(code) = fr.finished {
        line1.push(Span::styled(
            format!("  command exited ({code}); final numbers, q to quit"),
            Style::default().fg(Color::Yellow),
        ));
    }
    let line2 = vec![
        Span::raw(format!("syscalls/s {:.0}   ", rate)),
        Span::styled(
            format!("dropped {}", loss.dropped + loss.no_storage),
            warn(loss.lost()),
        ),
        Span::raw("   "),
        Span::styled(format!("unpaired {}", loss.unpaired), warn(loss.unpaired)),
        Span::raw(format!(
            "   syslat cpu {:.1}%  ~{:.0} ns of its time per traced call",
            fr.self_cpu_pct, fr.self_ns_per_call
        )),
    ];
    let filter = if app.filter.is_empty() {
        String::new()
    } else {
        format!("filter '{}'", app.filter)
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::from(line1),
            Line::from(line2),
            Line::from(filter),
        ]),
        area,
    );
}

fn heading(label: &str, col: Column, app: &App) -> String {
    if app.sort == col {
        format!("{label}{}", if app.ascending { "▲" } else { "▼" })
    } else {
        label.to_string()
    }
}

fn table_block(title: String) -> Block<'static> {
    Block::default().borders(Borders::TOP).title(title)
}

/// How one column of the syscall table is drawn: its heading, its width in cells and its
/// cell of a row. Both views take their headers, widths and cells from this one table, in
/// the order [`Column::ALL`] and [`Column::ANATOMY`] give (the order the sort keys use).
struct ColumnSpec {
    /// The heading, before any sort marker.
    label: &'static str,
    /// Width in terminal cells.
    width: u16,
    /// The cell of a row.
    cell: fn(&SyscallRow) -> String,
}

/// The drawing of `col` in the syscall table.
fn column_spec(col: Column) -> ColumnSpec {
    let (label, width, cell): (_, _, fn(&SyscallRow) -> String) = match col {
        Column::Name => ("SYSCALL", 18, |r| r.name.clone()),
        Column::Calls => ("CALLS/s", 10, |r| format!("{:.0}", r.calls_per_s)),
        Column::Errors => ("ERR/s", 8, |r| format!("{:.0}", r.errors_per_s)),
        Column::P50 => ("P50", 9, |r| fmt_ns(r.p50)),
        Column::P99 => ("P99", 9, |r| fmt_ns(r.p99)),
        Column::P999 => ("P99.9", 9, |r| fmt_ns(r.p999)),
        Column::Max => ("MAX", 9, |r| fmt_ns(r.max)),
        Column::Share => ("%TIME", 7, |r| format!("{:.1}", r.share)),
        Column::Oncpu => ("ONCPU%", 8, |r| format!("{:.1}", r.split[0])),
        Column::Runq => ("RUNQ%", 8, |r| format!("{:.1}", r.split[1])),
        Column::Blocked => ("BLOCKED%", 10, |r| format!("{:.1}", r.split[2])),
        Column::RunqP99 => ("RUNQ P99", 10, |r| fmt_ns(r.runq_p99)),
    };
    ColumnSpec { label, width, cell }
}

fn draw_syscalls(f: &mut TermFrame<'_>, area: Rect, app: &App) {
    let rows = app.syscall_rows();
    let columns = if app.anatomy {
        Column::ANATOMY
    } else {
        Column::ALL
    }
    .map(|c| (c, column_spec(c)));
    let header = Row::new(columns.iter().map(|(c, s)| heading(s.label, *c, app)))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = columns.iter().map(|(_, s)| Constraint::Length(s.width));
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|r| Row::new(columns.iter().map(|(_, s)| (s.cell)(r))))
        .collect();
    let view = if app.anatomy { "anatomy" } else { "latency" };
    let title = match app.mode {
        Mode::DrillProcess(pid) => format!(" syscalls of process {pid}, {view} (Esc back) "),
        _ => format!(" syscalls, {view} (a: switch) "),
    };
    let table = Table::new(body, widths)
        .header(header)
        .block(table_block(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state =
        TableState::default().with_selected(Some(app.selected.min(rows.len().saturating_sub(1))));
    f.render_stateful_widget(table, area, &mut state);
}

fn process_table<'a>(rows: &[super::app::ProcessRow], app: &App, title: String) -> Table<'a> {
    let header = Row::new(vec![
        "PID".to_string(),
        heading("COMM", Column::Name, app),
        heading("CALLS/s", Column::Calls, app),
        heading("ERR/s", Column::Errors, app),
        heading("TIME", Column::Share, app),
        "%TIME".to_string(),
        "WORST SYSCALL".to_string(),
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let body: Vec<Row<'a>> = rows
        .iter()
        .map(|p| {
            Row::new(vec![
                p.pid.to_string(),
                p.comm.clone(),
                format!("{:.0}", p.calls_per_s),
                format!("{:.0}", p.errors_per_s),
                fmt_ns(p.total_ns),
                format!("{:.1}", p.share),
                p.worst.clone(),
            ])
        })
        .collect();
    let widths = [8, 16, 10, 8, 9, 7, 18].map(Constraint::Length);
    Table::new(body, widths)
        .header(header)
        .block(table_block(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
}

fn draw_processes(f: &mut TermFrame<'_>, area: Rect, app: &App) {
    let rows = app.process_rows();
    let mut state =
        TableState::default().with_selected(Some(app.selected.min(rows.len().saturating_sub(1))));
    f.render_stateful_widget(
        process_table(&rows, app, " processes, by syscall time ".into()),
        area,
        &mut state,
    );
}

/// Glyphs of the drill-down's stacked bars: on CPU, run queue, blocked (also coloured).
const GLYPHS: [(char, Color); 3] = [('█', Color::Green), ('▓', Color::Red), ('░', Color::Blue)];

/// Call paths shown in the drill-down (with `--stacks`).
const DRILL_PATHS: usize = 6;

fn draw_drill(f: &mut TermFrame<'_>, area: Rect, app: &App, nr: u32) {
    let name = crate::syscalls::name(nr);
    let paths = app.drilled_paths(DRILL_PATHS);
    let (chart_area, paths_area, procs_area) = if paths.is_some() {
        let [c, s, p] = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Length(DRILL_PATHS as u16 + 1),
            Constraint::Min(3),
        ])
        .areas(area);
        (c, Some(s), p)
    } else {
        let [c, p] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
        (c, None, p)
    };
    let buckets = app.drilled_buckets();
    let most = buckets.iter().map(|b| b.calls).max().unwrap_or(0).max(1);
    let bar_cols = chart_area.width.saturating_sub(32).max(10) as u64;
    let mut lines: Vec<Line<'_>> = buckets
        .iter()
        .map(|b| {
            // Bar length: calls; its parts: where those calls' time went.
            let len = (b.calls * bar_cols).div_ceil(most);
            let parts = [b.oncpu_ns, b.runq_ns, b.blocked_ns];
            let time: u64 = parts.iter().sum::<u64>().max(1);
            let mut widths = parts.map(|p| p * len / time);
            // Rounding leftovers go to the largest part, so the bar keeps its length.
            let short = len - widths.iter().sum::<u64>();
            if let Some(i) = (0..3).max_by_key(|&i| parts[i]) {
                widths[i] += short;
            }
            let mut spans = vec![Span::raw(format!(
                "≥{:>7} {:>8} ",
                fmt_ns(b.lo_ns),
                b.calls
            ))];
            for ((glyph, color), w) in GLYPHS.iter().zip(widths) {
                spans.push(Span::styled(
                    glyph.to_string().repeat(w as usize),
                    Style::default().fg(*color),
                ));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::from(vec![
        Span::raw("  "),
        Span::styled("█ on CPU", Style::default().fg(GLYPHS[0].1)),
        Span::raw("  "),
        Span::styled("▓ run queue", Style::default().fg(GLYPHS[1].1)),
        Span::raw("  "),
        Span::styled("░ blocked", Style::default().fg(GLYPHS[2].1)),
    ]));
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(format!(
            " {name}: calls by latency (log2 buckets), each bar split by where the time went (Esc back) "
        ))),
        chart_area,
    );
    if let (Some((paths, total)), Some(paths_area)) = (paths, paths_area) {
        let mut lines: Vec<Line<'_>> = paths
            .iter()
            .map(|p| Line::from(crate::output::stacks::path_summary(p, total)))
            .collect();
        if lines.is_empty() {
            lines.push(Line::from("  no stacks for this syscall in this view"));
        }
        f.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(format!(
                " call paths making {name}, by time (innermost frame first) "
            ))),
            paths_area,
        );
    }
    let rows = app.process_rows();
    let mut state =
        TableState::default().with_selected(Some(app.selected.min(rows.len().saturating_sub(1))));
    f.render_stateful_widget(
        process_table(&rows, app, format!(" processes making {name} ")),
        procs_area,
        &mut state,
    );
}

fn draw_help(f: &mut TermFrame<'_>, area: Rect) {
    let text = vec![
        Line::from("syslat top: keys"),
        Line::from(""),
        Line::from(
            "1-8      sort by column (again: reverse): name, calls/s, errors/s, p50, p99, p99.9, max, %time",
        ),
        Line::from(
            "a        anatomy view: on-CPU, run-queue and blocked shares, run-queue p99 (1-8 sort those)",
        ),
        Line::from("p        syscalls <-> processes"),
        Line::from(
            "Enter    drill down: a syscall's latency histogram and its processes, or a process's syscalls",
        ),
        Line::from("Esc      back (quits at the top level)"),
        Line::from("/        filter by name; Enter applies, Esc stops typing"),
        Line::from("c        last interval <-> cumulative since start"),
        Line::from("space    pause the view (tracing goes on)"),
        Line::from("Up/Down  select a row"),
        Line::from("q Ctrl-C quit"),
    ];
    let w = area.width.min(100);
    let h = area.height.min(15);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" help (? or Esc to close) "),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use profiler_common::SyscallEvent;
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::{
        aggregate::{Aggregator, GroupBy, LossCounters},
        tui::{
            Frame,
            app::{Action, log2_buckets},
        },
    };

    fn frame() -> Arc<Frame> {
        frame_with(false)
    }

    /// The test frame; with `starved`, also 20 reads of 4 ms that waited 3 ms for a CPU.
    fn frame_with(starved: bool) -> Arc<Frame> {
        let mut a = Aggregator::new(GroupBy::Process);
        let read = crate::syscalls::number("read").unwrap();
        let write = crate::syscalls::number("write").unwrap();
        let openat = crate::syscalls::number("openat").unwrap();
        let ev = |tgid, nr, ns, ret| SyscallEvent {
            duration_ns: ns,
            ret,
            tgid,
            tid: tgid,
            nr: nr as u16,
            cgroup: 0,
            ..SyscallEvent::default()
        };
        for i in 0..300u64 {
            a.record(&ev(100, read, 2_000 + i, 1));
        }
        for _ in 0..50 {
            a.record(&ev(200, write, 1_000_000, 1));
        }
        for _ in 0..10 {
            a.record(&ev(200, openat, 5_000, -2));
        }
        // Slow reads that waited for a CPU most of their time.
        let anatomy = profiler_common::Anatomy {
            runq_ns: 3_000_000,
            blocked_ns: 500_000,
            involuntary: 1,
            ..Default::default()
        };
        for _ in 0..if starved { 20 } else { 0 } {
            a.record_call(&ev(100, read, 4_000_000, 1), &anatomy);
        }
        let loss = LossCounters {
            dropped: 3,
            ..Default::default()
        };
        let p = a.snapshot(0, 1_000_000_000, loss, &|pid| Some(format!("app{pid}")));
        let s = a.syscall_snapshot(0, 1_000_000_000, loss);
        Arc::new(Frame {
            interval_syscalls: s.clone(),
            interval_processes: p.clone(),
            total_syscalls: s,
            total_processes: p,
            uptime_s: 5.0,
            targets: "all processes".into(),
            self_cpu_pct: 1.5,
            self_ns_per_call: 40.0,
            finished: None,
            interval_stacks: None,
            total_stacks: None,
        })
    }

    fn render(app: &App) -> String {
        let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
        term.draw(|f| draw(f, app)).unwrap();
        let buf = term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn line_of(screen: &str, needle: &str) -> usize {
        screen
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not on screen:\n{screen}"))
    }

    #[test]
    fn syscall_table_sorted_with_units() {
        let mut app = App::default();
        app.update(frame());
        let s = render(&app);
        assert!(s.contains("syscalls/s 360"), "{s}");
        assert!(s.contains("dropped 3"), "{s}");
        assert!(s.contains("%TIME▼"), "the sort column is marked: {s}");
        assert!(
            line_of(&s, "write") < line_of(&s, "read"),
            "write has most time: {s}"
        );
        let write = s.lines().find(|l| l.contains("write ")).unwrap();
        assert!(
            write.contains("1.00ms") && write.contains(" 50 "),
            "{write}"
        );
        app.apply(Action::Sort(Column::Calls));
        let s = render(&app);
        assert!(s.contains("CALLS/s▼"), "{s}");
        assert!(
            line_of(&s, "read") < line_of(&s, "write"),
            "read has most calls: {s}"
        );
        app.apply(Action::Sort(Column::Calls));
        assert!(render(&app).contains("CALLS/s▲"));
    }

    #[test]
    fn processes_and_drill_down() {
        let mut app = App::default();
        app.update(frame());
        app.apply(Action::ToggleProcesses);
        let s = render(&app);
        assert!(line_of(&s, "app200") < line_of(&s, "app100"), "{s}");
        assert!(
            s.lines()
                .find(|l| l.contains("app200"))
                .unwrap()
                .contains("write"),
            "worst syscall: {s}"
        );
        app.apply(Action::Enter);
        assert_eq!(app.mode, Mode::DrillProcess(200));
        let s = render(&app);
        assert!(s.contains("syscalls of process 200"), "{s}");
        assert!(!s.contains(" read "), "only that process's syscalls: {s}");
        app.apply(Action::Back);
        app.apply(Action::ToggleProcesses);
        app.apply(Action::Sort(Column::Calls));
        app.apply(Action::Enter);
        let read = crate::syscalls::number("read").unwrap();
        assert_eq!(app.mode, Mode::DrillSyscall(read));
        let s = render(&app);
        assert!(s.contains("read: calls by latency"), "{s}");
        assert!(
            s.contains("≥ 2.05µs") || s.contains("≥ 1.02µs"),
            "log2 buckets: {s}"
        );
        assert!(
            s.contains("processes making read") && s.contains("app100") && !s.contains("app200"),
            "{s}"
        );
    }

    #[test]
    fn the_drill_down_shows_call_paths_with_stacks() {
        use crate::aggregate::stacks::{StackRow, StackSet};
        let read = crate::syscalls::number("read").unwrap();
        let row = |user: &[&str], count, total_ns| StackRow {
            comm: "app100".into(),
            syscall: "read".into(),
            nr: read,
            user: user.iter().map(|s| s.to_string()).collect(),
            kernel: vec!["ksys_read".into()],
            other: false,
            count,
            total_ns,
        };
        let set = StackSet {
            rows: vec![
                row(&["main", "load_config"], 200, 600_000),
                row(&["main", "poll_socket"], 100, 200_000),
            ],
        };
        let mut f = (*frame()).clone();
        f.interval_stacks = Some(set);
        let mut app = App::default();
        app.update(Arc::new(f));
        app.apply(Action::Sort(Column::Calls));
        app.apply(Action::Enter);
        assert_eq!(app.mode, Mode::DrillSyscall(read));
        let s = render(&app);
        assert!(s.contains("call paths making read, by time"), "{s}");
        let first = line_of(&s, "load_config <- main");
        assert!(first < line_of(&s, "poll_socket <- main"), "{s}");
        assert!(
            s.lines().nth(first).unwrap().contains("75.0%"),
            "share of the time: {s}"
        );
        // Without stacks the drill-down has no such section.
        let mut plain = App::default();
        plain.update(frame());
        plain.apply(Action::Sort(Column::Calls));
        plain.apply(Action::Enter);
        assert!(!render(&plain).contains("call paths making"));
    }

    #[test]
    fn anatomy_view_and_stacked_drill_down() {
        let mut app = App::default();
        app.update(frame_with(true));
        app.apply(Action::ToggleAnatomy);
        let s = render(&app);
        assert!(s.contains("RUNQ%") && s.contains("BLOCKED%"), "{s}");
        let read = s.lines().find(|l| l.contains("read ")).unwrap();
        // 20 reads of 4 ms: 60 ms of 80.6 ms waiting for a CPU.
        assert!(read.contains("74.") && read.contains("3.00ms"), "{read}");
        // Key 6 of the anatomy view sorts by run-queue share.
        app.apply(Action::SortKey(6));
        let s = render(&app);
        assert!(s.contains("RUNQ%▼"), "{s}");
        assert!(line_of(&s, "read") < line_of(&s, "write"), "{s}");
        app.apply(Action::Enter);
        let s = render(&app);
        assert!(s.contains("split by where the time went"), "{s}");
        // The 4 ms bucket is mostly run queue (▓), the 2 µs bucket all on CPU (█).
        let slow = s.lines().find(|l| l.contains("≥ 2.10ms")).unwrap();
        let fast = s.lines().find(|l| l.contains("≥ 2.05µs")).unwrap();
        assert!(
            slow.matches('▓').count() > 2 * slow.matches('█').count(),
            "{slow}"
        );
        assert!(fast.contains('█') && !fast.contains('▓'), "{fast}");
        assert!(s.contains("▓ run queue"), "{s}");
    }

    #[test]
    fn filter_and_empty_data() {
        let mut app = App::default();
        assert!(render(&app).contains("waiting for the first interval"));
        app.update(frame());
        for a in [
            Action::FilterStart,
            Action::FilterChar('w'),
            Action::FilterChar('r'),
            Action::FilterDone,
        ] {
            app.apply(a);
        }
        let s = render(&app);
        assert!(s.contains("write") && !s.contains("openat"), "{s}");
        app.apply(Action::ToggleHelp);
        assert!(render(&app).contains("help (? or Esc to close)"));
    }

    #[test]
    fn buckets_are_powers_of_two() {
        let mut h = crate::aggregate::LatencyHist::new();
        for v in [3u64, 3, 1000, 1100] {
            h.record(v);
        }
        let b = log2_buckets(&h);
        assert_eq!(b.first(), Some(&(2, 2)));
        assert_eq!(b.last(), Some(&(1024, 1)), "1100 ns");
        assert!(b.contains(&(512, 1)), "1000 ns");
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 4);
    }
}
