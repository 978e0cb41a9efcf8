//! `syslat top`: a collector task (kernel I/O and aggregation) publishes a [`Frame`] every
//! interval over a `watch` channel; the view (its own thread, polling keys every 50 ms) only
//! reads the latest one, so a slow terminal never delays collection. Batch mode prints the
//! table as text instead.

use std::{
    io::{IsTerminal, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::sync::watch;

use crate::{
    aggregate::{Aggregator, GroupBy, LossCounters, stacks::StackSet},
    cli::TopArgs,
    collect::{
        scope::Targets,
        session::{Event, Trace},
    },
    config,
    output::{stacks, text},
    tui::{Frame, app::App, input, terminal::TerminalGuard, view},
};

/// Runs `top`; returns the exit status (the command's, when one was traced).
pub async fn run(args: &TopArgs) -> anyhow::Result<i32> {
    let targets = config::targets(&args.target)?;
    let mut filters = config::filters(&args.target)?;
    filters.stacks = args.stacks;
    if args.interval.is_zero() {
        bail!("invalid interval: must be greater than zero");
    }
    if args.count == Some(0) {
        bail!("invalid count: must be at least 1");
    }
    let batch = args.batch || !std::io::stdout().is_terminal();
    let trace = Trace::start_with(&targets, &filters, None, false)?;
    let desc = describe(&targets);
    let (frame_tx, frame_rx) = watch::channel::<Option<Arc<Frame>>>(None);
    let (quit_tx, quit_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let ui = if batch {
        None
    } else {
        Some(tokio::task::spawn_blocking(move || {
            run_ui(frame_rx, stop_rx, quit_tx)
        }))
    };
    let limit = if batch { args.count } else { None };
    let mut collector = Collector::new(trace, desc, args.interval, batch, limit);
    let code = collector.run(&frame_tx, quit_rx).await;
    let _ = stop_tx.send(true);
    if let Some(ui) = ui {
        ui.await.context("the view failed")??;
    }
    code
}

fn describe(t: &Targets) -> String {
    match t {
        Targets::All => "all processes".into(),
        Targets::Pids(p) => format!("pids {p:?} and children"),
        Targets::Tids(t) => format!("threads {t:?}"),
        Targets::Comms(c) => format!("processes named {}", c.join(", ")),
        Targets::Cgroup(c) => format!("cgroup {}", c.path.display()),
        Targets::Command(argv) => format!("`{}`", argv.join(" ")),
    }
}

struct Collector {
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
    fn new(trace: Trace, desc: String, every: Duration, batch: bool, limit: Option<u64>) -> Self {
        Collector {
            trace,
            desc,
            every,
            batch,
            limit,
            cur: Aggregator::new(GroupBy::Process),
            total: Aggregator::new(GroupBy::Process),
            loss_before: LossCounters::default(),
            interval_start: Instant::now(),
            cpu_before: self_cpu_seconds(),
            printed: 0,
            total_stacks: None,
        }
    }

    async fn run(
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
                    self.trace.drain(true, |evs| cur.fold(evs));
                    if self.interval_start.elapsed() >= self.every {
                        self.publish(tx, None)?;
                        if self.limit.is_some_and(|n| self.printed >= n) {
                            return Ok(0);
                        }
                    }
                }
                Event::End(code) => {
                    let cur = &mut self.cur;
                    self.trace.drain(true, |evs| cur.fold(evs));
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
        let snap = &f.interval_syscalls;
        let secs = (snap.duration_ns as f64 / 1e9).max(1e-9);
        let mut out = format!(
            "syslat top - {} up {:.0}s, tracing {}, {:.0} syscalls/s, dropped {}, unpaired {}, syslat cpu {:.1}%{}\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            f.uptime_s,
            f.targets,
            snap.total_calls() as f64 / secs,
            snap.loss.lost(),
            snap.loss.unpaired,
            f.self_cpu_pct,
            f.finished
                .map(|c| format!(", command exited ({c})"))
                .unwrap_or_default(),
        );
        out.push_str(&text::render(snap, 0));
        if let Some(set) = &f.interval_stacks {
            out.push_str(&stacks::paths_text(set));
        }
        out.push('\n');
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|_| stdout.flush())
            .context("failed to write to stdout")
    }
}

/// The interactive view; returns when the user quits or the collector stops.
fn run_ui(
    mut frames: watch::Receiver<Option<Arc<Frame>>>,
    stop: watch::Receiver<bool>,
    quit: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::new().context("cannot use the terminal")?;
    let mut app = App::default();
    // Drawn when something changed (a frame, a key, the terminal's size), not every 50 ms:
    // an unchanged screen costs one size query per wait.
    let mut dirty = true;
    let mut size = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if frames.has_changed().unwrap_or(false)
            && let Some(f) = frames.borrow_and_update().clone()
        {
            app.update(f);
            dirty = true;
        }
        let now = guard.terminal.size().ok();
        if now != size {
            size = now;
            dirty = true;
        }
        if dirty {
            guard
                .terminal
                .draw(|f| view::draw(f, &app))
                .context("failed to draw")?;
            dirty = false;
        }
        // Wait for input ourselves: crossterm's poll spins forever on a terminal that hung
        // up (ssh dropped, tmux session killed); poll(2) reports the hang-up.
        match terminal_input(Duration::from_millis(50)) {
            Input::Gone => break,
            Input::Idle => {}
            Input::Ready => {
                while event::poll(Duration::ZERO).context("failed to read the terminal")? {
                    if let TermEvent::Key(k) =
                        event::read().context("failed to read the terminal")?
                        && k.kind == KeyEventKind::Press
                        && let Some(a) = input::action(k, app.editing_filter)
                    {
                        app.apply(a);
                    }
                    dirty = true;
                }
            }
        }
        if app.quit {
            break;
        }
    }
    let _ = quit.send(true);
    Ok(())
}

enum Input {
    Ready,
    Idle,
    Gone,
}

/// Waits up to `timeout` for the terminal (stdin) to have input, or to hang up.
fn terminal_input(timeout: Duration) -> Input {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::from(timeout.as_millis().min(u16::MAX as u128) as u16);
    match poll(&mut fds, ms) {
        Ok(0) => Input::Idle,
        Ok(_) => {
            let ev = fds[0].revents().unwrap_or(PollFlags::empty());
            if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                Input::Gone
            } else {
                Input::Ready
            }
        }
        Err(nix::Error::EINTR) => Input::Idle,
        Err(_) => Input::Gone,
    }
}
