//! The state of the live view and the rows it shows, derived from the latest [`Frame`].
//! Plain data, unit-tested without a terminal.

use std::sync::Arc;

use super::Frame;
use crate::aggregate::{BucketSplit, LatencyHist, Snapshot, stacks::CallPath};

/// What is on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One row per syscall.
    Syscalls,
    /// One row per process.
    Processes,
    /// One syscall: its latency distribution and the processes that make it.
    DrillSyscall(u32),
    /// One process: its syscalls.
    DrillProcess(u32),
}

/// Sortable columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// Name.
    Name,
    /// Calls per second.
    Calls,
    /// Errors per second.
    Errors,
    /// Median.
    P50,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Slowest.
    Max,
    /// Share of the total time.
    Share,
    /// Share of the calls' time on CPU.
    Oncpu,
    /// Share of the calls' time waiting for a CPU.
    Runq,
    /// Share of the calls' time blocked.
    Blocked,
    /// 99th percentile of the per-call run-queue wait.
    RunqP99,
}

impl Column {
    /// The latency view's columns in display order (keys 1..8).
    pub const ALL: [Column; 8] = [
        Column::Name,
        Column::Calls,
        Column::Errors,
        Column::P50,
        Column::P99,
        Column::P999,
        Column::Max,
        Column::Share,
    ];

    /// The anatomy view's columns in display order (keys 1..8).
    pub const ANATOMY: [Column; 8] = [
        Column::Name,
        Column::Calls,
        Column::P99,
        Column::Share,
        Column::Oncpu,
        Column::Runq,
        Column::Blocked,
        Column::RunqP99,
    ];
}

/// A key's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Leave syslat.
    Quit,
    /// Leave the drill-down, help or filter; quit at the top.
    Back,
    /// Drill down into the selected row.
    Enter,
    /// Select the row above.
    Up,
    /// Select the row below.
    Down,
    /// Sort by this column (again: reverse).
    Sort(Column),
    /// Sort by the column under key `n` (1..=8) of the current view.
    SortKey(usize),
    /// Syscalls ↔ processes.
    ToggleProcesses,
    /// Latency columns ↔ anatomy columns (on-CPU, run-queue, blocked).
    ToggleAnatomy,
    /// Last interval ↔ since start.
    ToggleCumulative,
    /// Freeze the view (collection goes on).
    TogglePause,
    /// Show or hide help.
    ToggleHelp,
    /// Start typing a name filter.
    FilterStart,
    /// A character of the filter.
    FilterChar(char),
    /// Delete the last filter character.
    FilterBackspace,
    /// Stop typing the filter.
    FilterDone,
}

/// One row of the syscall table.
#[derive(Clone, Debug, PartialEq)]
pub struct SyscallRow {
    /// Syscall number.
    pub nr: u32,
    /// Name.
    pub name: String,
    /// Calls per second.
    pub calls_per_s: f64,
    /// Errors per second.
    pub errors_per_s: f64,
    /// Percentiles and max, ns.
    pub p50: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
    /// Total time, ns.
    pub total_ns: u64,
    /// Share of all traced time, percent.
    pub share: f64,
    /// Shares of the row's time on CPU, waiting for a CPU and blocked, percent.
    pub split: [f64; 3],
    /// 99th percentile per-call run-queue wait, ns.
    pub runq_p99: u64,
}

/// One row of the process table.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessRow {
    /// Process id.
    pub pid: u32,
    /// Name.
    pub comm: String,
    /// Calls per second.
    pub calls_per_s: f64,
    /// Errors per second.
    pub errors_per_s: f64,
    /// Syscall time, ns.
    pub total_ns: u64,
    /// The syscall taking most of its time.
    pub worst: String,
    /// Share of all traced time, percent.
    pub share: f64,
}

/// The view's state.
#[derive(Debug)]
pub struct App {
    /// What is shown.
    pub mode: Mode,
    /// Help overlay.
    pub help: bool,
    /// Sort column.
    pub sort: Column,
    /// Sort ascending instead of descending.
    pub ascending: bool,
    /// Since start instead of the last interval.
    pub cumulative: bool,
    /// The anatomy columns instead of the latency ones.
    pub anatomy: bool,
    /// Frozen view.
    pub paused: bool,
    /// Name filter (substring).
    pub filter: String,
    /// Typing the filter.
    pub editing_filter: bool,
    /// Selected row.
    pub selected: usize,
    /// The frame shown.
    pub frame: Option<Arc<Frame>>,
    /// Set when the user quits.
    pub quit: bool,
}

impl Default for App {
    fn default() -> Self {
        App {
            mode: Mode::Syscalls,
            help: false,
            sort: Column::Share,
            ascending: false,
            cumulative: false,
            anatomy: false,
            paused: false,
            filter: String::new(),
            editing_filter: false,
            selected: 0,
            frame: None,
            quit: false,
        }
    }
}

fn per_s(n: u64, snap: &Snapshot) -> f64 {
    let secs = snap.duration_ns as f64 / 1e9;
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

impl App {
    /// Shows `frame` unless paused.
    pub fn update(&mut self, frame: Arc<Frame>) {
        if !self.paused || self.frame.is_none() {
            self.frame = Some(frame);
        }
    }

    fn snapshots(&self) -> Option<(&Snapshot, &Snapshot)> {
        let f = self.frame.as_deref()?;
        Some(if self.cumulative {
            (&f.total_syscalls, &f.total_processes)
        } else {
            (&f.interval_syscalls, &f.interval_processes)
        })
    }

    fn matches(&self, name: &str) -> bool {
        self.filter.is_empty() || name.contains(&self.filter)
    }

    /// The syscall table (or, drilled into a process, that process's syscalls), sorted.
    pub fn syscall_rows(&self) -> Vec<SyscallRow> {
        let Some((sys, procs)) = self.snapshots() else {
            return Vec::new();
        };
        let (rows, snap): (Vec<&crate::aggregate::Row>, &Snapshot) = match self.mode {
            Mode::DrillProcess(pid) => (
                procs
                    .rows
                    .iter()
                    .filter(|r| r.key.pid() == Some(pid))
                    .collect(),
                procs,
            ),
            _ => (sys.rows.iter().collect(), sys),
        };
        let all_ns: u64 = sys.rows.iter().map(|r| r.series.total_ns).sum();
        let mut out: Vec<SyscallRow> = rows
            .into_iter()
            .filter(|r| self.matches(&r.syscall))
            .map(|r| SyscallRow {
                nr: r.nr,
                name: r.syscall.clone(),
                calls_per_s: per_s(r.series.count(), snap),
                errors_per_s: per_s(r.series.errors, snap),
                p50: r.percentile(50.0),
                p99: r.percentile(99.0),
                p999: r.percentile(99.9),
                max: r.series.max_ns,
                total_ns: r.series.total_ns,
                share: if all_ns > 0 {
                    100.0 * r.series.total_ns as f64 / all_ns as f64
                } else {
                    0.0
                },
                split: {
                    let s = r.anatomy_split();
                    [s.oncpu, s.runq, s.blocked].map(|x| 100.0 * x.unwrap_or(0.0))
                },
                runq_p99: r.runq_percentile(99.0),
            })
            .collect();
        let key = |r: &SyscallRow| -> f64 {
            match self.sort {
                Column::Name => 0.0,
                Column::Calls => r.calls_per_s,
                Column::Errors => r.errors_per_s,
                Column::P50 => r.p50 as f64,
                Column::P99 => r.p99 as f64,
                Column::P999 => r.p999 as f64,
                Column::Max => r.max as f64,
                Column::Share => r.share,
                Column::Oncpu => r.split[0],
                Column::Runq => r.split[1],
                Column::Blocked => r.split[2],
                Column::RunqP99 => r.runq_p99 as f64,
            }
        };
        out.sort_by(|a, b| {
            let ord = if self.sort == Column::Name {
                b.name.cmp(&a.name)
            } else {
                key(a).total_cmp(&key(b)).then_with(|| b.name.cmp(&a.name))
            };
            if self.ascending { ord } else { ord.reverse() }
        });
        out
    }

    /// The process table (or, drilled into a syscall, the processes making it), sorted by
    /// syscall time (or by the chosen column where it applies).
    pub fn process_rows(&self) -> Vec<ProcessRow> {
        let Some((sys, procs)) = self.snapshots() else {
            return Vec::new();
        };
        let all_ns: u64 = sys.rows.iter().map(|r| r.series.total_ns).sum();
        let mut by_pid: std::collections::BTreeMap<u32, ProcessRow> = Default::default();
        let mut worst: std::collections::HashMap<u32, u64> = Default::default();
        for r in &procs.rows {
            let Some(pid) = r.key.pid() else { continue };
            if let Mode::DrillSyscall(nr) = self.mode
                && r.nr != nr
            {
                continue;
            }
            let e = by_pid.entry(pid).or_insert_with(|| ProcessRow {
                pid,
                comm: r.key.comm().unwrap_or("?").to_string(),
                calls_per_s: 0.0,
                errors_per_s: 0.0,
                total_ns: 0,
                worst: String::new(),
                share: 0.0,
            });
            e.calls_per_s += per_s(r.series.count(), procs);
            e.errors_per_s += per_s(r.series.errors, procs);
            e.total_ns += r.series.total_ns;
            let w = worst.entry(pid).or_default();
            if r.series.total_ns >= *w {
                *w = r.series.total_ns;
                e.worst = r.syscall.clone();
            }
        }
        let mut out: Vec<ProcessRow> = by_pid
            .into_values()
            .filter(|p| self.matches(&p.comm) || self.matches(&p.pid.to_string()))
            .map(|mut p| {
                p.share = if all_ns > 0 {
                    100.0 * p.total_ns as f64 / all_ns as f64
                } else {
                    0.0
                };
                p
            })
            .collect();
        out.sort_by(|a, b| {
            let ord = match self.sort {
                Column::Name => b.comm.cmp(&a.comm),
                Column::Calls => a.calls_per_s.total_cmp(&b.calls_per_s),
                Column::Errors => a.errors_per_s.total_cmp(&b.errors_per_s),
                _ => a.total_ns.cmp(&b.total_ns),
            }
            .then_with(|| b.pid.cmp(&a.pid));
            if self.ascending { ord } else { ord.reverse() }
        });
        out
    }

    /// The call paths that make the drilled-down syscall (with `--stacks`), most time
    /// first, at most `n`; with the syscall's total time over all its paths.
    pub fn drilled_paths(&self, n: usize) -> Option<(Vec<CallPath>, u64)> {
        let Mode::DrillSyscall(nr) = self.mode else {
            return None;
        };
        let f = self.frame.as_deref()?;
        let set = if self.cumulative {
            f.total_stacks.as_ref()
        } else {
            f.interval_stacks.as_ref()
        }?;
        let total = set
            .rows
            .iter()
            .filter(|r| r.nr == nr)
            .map(|r| r.total_ns)
            .sum();
        Some((set.paths(nr, n), total))
    }

    /// The latency histogram of the drilled-down syscall.
    pub fn drilled_hist(&self) -> Option<&LatencyHist> {
        self.drilled_row().map(|r| &r.series.hist)
    }

    /// The drilled-down syscall's calls by latency bucket, with the time split of each.
    pub fn drilled_buckets(&self) -> Vec<BucketSplit> {
        self.drilled_row()
            .map(|r| r.series.off_cpu.buckets(&r.series.hist))
            .unwrap_or_default()
    }

    fn drilled_row(&self) -> Option<&crate::aggregate::Row> {
        let Mode::DrillSyscall(nr) = self.mode else {
            return None;
        };
        let (sys, _) = self.snapshots()?;
        sys.rows.iter().find(|r| r.nr == nr)
    }

    fn rows_len(&self) -> usize {
        match self.mode {
            Mode::Syscalls | Mode::DrillProcess(_) => self.syscall_rows().len(),
            Mode::Processes | Mode::DrillSyscall(_) => self.process_rows().len(),
        }
    }

    /// Applies a key's action.
    pub fn apply(&mut self, a: Action) {
        match a {
            Action::Quit => self.quit = true,
            Action::Back if self.help => self.help = false,
            Action::Back if self.editing_filter => self.editing_filter = false,
            Action::Back => match self.mode {
                Mode::DrillSyscall(_) => self.mode = Mode::Syscalls,
                Mode::DrillProcess(_) => self.mode = Mode::Processes,
                Mode::Syscalls | Mode::Processes => self.quit = true,
            },
            Action::Enter => {
                let sel = self.selected;
                self.mode = match self.mode {
                    Mode::Syscalls => self
                        .syscall_rows()
                        .get(sel)
                        .map_or(self.mode, |r| Mode::DrillSyscall(r.nr)),
                    Mode::Processes => self
                        .process_rows()
                        .get(sel)
                        .map_or(self.mode, |r| Mode::DrillProcess(r.pid)),
                    m => m,
                };
                self.selected = 0;
            }
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => {
                self.selected = (self.selected + 1).min(self.rows_len().saturating_sub(1))
            }
            Action::SortKey(n) => {
                let cols = if self.anatomy {
                    Column::ANATOMY
                } else {
                    Column::ALL
                };
                if let Some(c) = cols.get(n.wrapping_sub(1)) {
                    self.apply(Action::Sort(*c));
                }
            }
            Action::ToggleAnatomy => self.anatomy = !self.anatomy,
            Action::Sort(c) => {
                if self.sort == c {
                    self.ascending = !self.ascending;
                } else {
                    self.sort = c;
                    self.ascending = c == Column::Name;
                }
            }
            Action::ToggleProcesses => {
                self.mode = match self.mode {
                    Mode::Syscalls | Mode::DrillSyscall(_) => Mode::Processes,
                    Mode::Processes | Mode::DrillProcess(_) => Mode::Syscalls,
                };
                self.selected = 0;
            }
            Action::ToggleCumulative => self.cumulative = !self.cumulative,
            Action::TogglePause => self.paused = !self.paused,
            Action::ToggleHelp => self.help = !self.help,
            Action::FilterStart => {
                self.editing_filter = true;
                self.filter.clear();
            }
            Action::FilterChar(c) => self.filter.push(c),
            Action::FilterBackspace => {
                self.filter.pop();
            }
            Action::FilterDone => self.editing_filter = false,
        }
    }
}

/// Counts of a histogram in power-of-two buckets: (lower bound ns, calls), from the first
/// non-empty bucket to the last.
pub fn log2_buckets(h: &LatencyHist) -> Vec<(u64, u64)> {
    let mut counts = [0u64; 64];
    for v in h.histogram().iter_recorded() {
        let x = v.value_iterated_to().max(1);
        counts[63 - x.leading_zeros() as usize] += v.count_at_value();
    }
    let first = counts.iter().position(|&c| c > 0);
    let last = counts.iter().rposition(|&c| c > 0);
    match (first, last) {
        (Some(a), Some(b)) => (a..=b).map(|i| (1u64 << i, counts[i])).collect(),
        _ => Vec::new(),
    }
}
