//! `top`'s collector: drains the session, folds the calls into the interval's and the
//! total aggregates, and at every interval publishes a [`Frame`] (and in batch mode prints
//! it). It never draws.

use std::{
    io::Write,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::sync::watch;

use crate::{
    aggregate::{Aggregator, GroupBy, LossCounters, stacks::StackSet},
    collect::session::{Event, Trace},
    output::top,
    tui::Frame,
};

/// Collection for `top`: the session and what has been folded from it.
pub(super) struct Collector {
    trace: Trace,
    desc: String,
    every: Duration,
    batch: bool,
    limit: Option<u64>,
    cur: Aggregator,
    total: Aggregator,
    loss_before: LossCounters,
    interval_start: Instant,
    cpu_before: f64,
    printed: u64,
    /// With `--stacks`: since start.
    total_stacks: Option<StackSet>,
}

fn self_cpu_seconds() -> f64 {
    procfs::process::Process::myself()
        .and_then(|p| p.stat())
        .map(|s| (s.utime + s.stime) as f64 / procfs::ticks_per_second() as f64)
        .unwrap_or(0.0)
}

impl Collector {
    pub(super) fn new(
        trace: Trace,
        desc: String,
        every: Duration,
        batch: bool,
        limit: Option<u64>,
    ) -> Self {
        // The interval's per-syscall rows are derived from its per-process ones (a call
        // is recorded once); the total keeps its own, added up from each interval's.
        let mut total = Aggregator::new(GroupBy::Process);
        total.keep_syscall_totals();
        Collector {
            trace,
            desc,
            every,
            batch,
            limit,
            cur: Aggregator::new(GroupBy::Process),
            total,
            loss_before: LossCounters::default(),
            interval_start: Instant::now(),
            cpu_before: self_cpu_seconds(),
            printed: 0,
            total_stacks: None,
        }
    }

    pub(super) async fn run(
        &mut self,
        tx: &watch::Sender<Option<Arc<Frame>>>,
        mut quit: watch::Receiver<bool>,
    ) -> anyhow::Result<i32> {
        loop {
            self.trace.wake_by(Some(self.interval_start + self.every));
            let ev = tokio::select! {
                ev = self.trace.next() => ev?,
                _ = quit.changed() => return Ok(0),
            };
            match ev {
                Event::Tick | Event::DumpRequested => {
                    let cur = &mut self.cur;
                    self.trace.drain(true, |b| cur.fold_batch(b));
                    if self.interval_start.elapsed() >= self.every {
                        self.publish(tx, None)?;
                        if self.limit.is_some_and(|n| self.printed >= n) {
                            return Ok(0);
                        }
                    }
                }
                Event::End(code) => {
                    let cur = &mut self.cur;
                    self.trace.drain(true, |b| cur.fold_batch(b));
                    let finished = self.trace.command_exited().then_some(code);
                    self.publish(tx, finished)?;
                    if finished.is_some() && !self.batch {
                        // Keep the final numbers on screen until the user quits, or a
                        // signal (the terminal closing: SIGHUP) ends syslat.
                        self.trace.wake_by(None);
                        loop {
                            tokio::select! {
                                _ = quit.changed() => break,
                                ev = self.trace.next() => {
                                    if let Event::End(_) = ev? {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    return Ok(code);
                }
            }
        }
    }

    fn publish(
        &mut self,
        tx: &watch::Sender<Option<Arc<Frame>>>,
        finished: Option<i32>,
    ) -> anyhow::Result<()> {
        let part = self.cur.take();
        self.total.merge(&part);
        let now = Instant::now();
        let dur = now.duration_since(self.interval_start);
        let loss = self.trace.loss();
        let interval_loss = loss.since(&self.loss_before);
        let interval_stacks = self.trace.stacks().map(|s| s.take());
        let names = self.trace.namer(GroupBy::Process);
        let name = |k: u32| names.name(k);
        let start = self.trace.start_unix_ns;
        let up = self.trace.elapsed();
        let cpu = self_cpu_seconds();
        let calls = part.events().max(1);
        if let Some(i) = &interval_stacks {
            self.total_stacks
                .get_or_insert_with(StackSet::default)
                .merge(i);
        }
        let frame = Frame {
            interval_syscalls: part.syscall_snapshot(start, dur.as_nanos() as u64, interval_loss),
            interval_processes: part.snapshot(start, dur.as_nanos() as u64, interval_loss, &name),
            total_syscalls: self
                .total
                .syscall_snapshot(start, up.as_nanos() as u64, loss),
            total_processes: self
                .total
                .snapshot(start, up.as_nanos() as u64, loss, &name),
            uptime_s: up.as_secs_f64(),
            targets: self.desc.clone(),
            self_cpu_pct: 100.0 * (cpu - self.cpu_before) / dur.as_secs_f64().max(1e-9),
            self_ns_per_call: (cpu - self.cpu_before) * 1e9 / calls as f64,
            finished,
            interval_stacks,
            total_stacks: self.total_stacks.clone(),
        };
        self.interval_start = now;
        self.loss_before = loss;
        self.cpu_before = cpu;
        if self.batch {
            self.print(&frame)?;
        }
        let _ = tx.send(Some(Arc::new(frame)));
        Ok(())
    }

    fn print(&mut self, f: &Frame) -> anyhow::Result<()> {
        self.printed += 1;
        let out = top::batch(f, std::time::SystemTime::now());
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|_| stdout.flush())
            .context("failed to write to stdout")
    }
}
