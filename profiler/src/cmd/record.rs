//! `syslat record`: trace until Ctrl-C, `-d`, the command's exit or the `-p` targets' exit,
//! then write the summary. The final dump is always written, whatever ends the recording.

use std::{
    io::Write,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use profiler_common::SyscallEvent;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    aggregate::{Aggregator, GroupBy, Snapshot},
    cli::RecordArgs,
    collect::{Filter, Probe, launch, procinfo::Comms, target},
    config::{RecordConfig, Sink, Targets},
    output::{Format, jsonl, text},
};

/// How often the ring buffer is drained. Events are submitted without wake-ups, so this
/// sets the latency of the data, not its completeness (see the ring buffer size).
pub const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// Runs `record`; returns the exit status.
pub async fn run(args: &RecordArgs) -> anyhow::Result<i32> {
    let cfg = RecordConfig::from_args(args)?;
    let filter = if cfg.targets == Targets::All {
        Filter::All
    } else {
        Filter::Tgids
    };
    let mut probe = Probe::load(filter)?;
    let mut watched: Vec<u32> = Vec::new();
    if let Targets::Pids(pids) = &cfg.targets {
        for tgid in target::with_descendants(pids) {
            probe.add_tgid(tgid)?;
        }
        watched = pids.clone();
    }
    probe.attach()?;
    match &cfg.targets {
        Targets::All => eprintln!("syslat: tracing all processes; Ctrl-C to stop"),
        Targets::Pids(p) => eprintln!(
            "syslat: tracing {} process(es) and their children; Ctrl-C to stop",
            p.len()
        ),
        Targets::Command(_) => {}
    }
    let start_unix_ns = unix_ns(SystemTime::now());
    let t0 = Instant::now();

    let mut session = Session {
        agg: Aggregator::new(cfg.group),
        comms: Comms::default(),
        buf: Vec::with_capacity(1 << 16),
        group: cfg.group,
    };
    let child = match &cfg.targets {
        Targets::Command(argv) => {
            let parked = launch::spawn_parked(argv)?;
            probe.add_tgid(parked.pid())?;
            Some(parked.release())
        }
        _ => None,
    };
    let code = session
        .run_until_done(&mut probe, child, &watched, cfg.duration)
        .await?;
    session.drain(&mut probe);
    let loss = probe.loss();
    drop(probe); // detach before writing: nothing more is recorded
    let duration_ns = t0.elapsed().as_nanos() as u64;
    let snap = session.snapshot(start_unix_ns, duration_ns, loss);
    write_output(&cfg, &snap, child.is_some())?;
    Ok(code)
}

struct Session {
    agg: Aggregator,
    comms: Comms,
    buf: Vec<SyscallEvent>,
    group: GroupBy,
}

impl Session {
    /// Drains and aggregates until an end condition; returns the exit status to use.
    async fn run_until_done(
        &mut self,
        probe: &mut Probe,
        child: Option<u32>,
        watched: &[u32],
        duration: Option<Duration>,
    ) -> anyhow::Result<i32> {
        let mut sigint = signal(SignalKind::interrupt()).context("failed to handle SIGINT")?;
        let mut sigterm = signal(SignalKind::terminate()).context("failed to handle SIGTERM")?;
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let child_exit = async {
            match child {
                Some(pid) => launch::wait(pid).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline, child_exit);
        let mut watched: Vec<u32> = watched.to_vec();
        let mut last_check = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.drain(probe);
                    if !watched.is_empty() && last_check.elapsed() >= Duration::from_millis(200) {
                        last_check = Instant::now();
                        watched.retain(|&p| target::alive(p));
                        if watched.is_empty() {
                            log::info!("every traced process exited");
                            return Ok(0);
                        }
                    }
                }
                status = &mut child_exit => {
                    return status.context("failed to wait for the command");
                }
                _ = &mut deadline => return Ok(0),
                _ = sigint.recv() => return Ok(128 + libc::SIGINT),
                _ = sigterm.recv() => return Ok(128 + libc::SIGTERM),
            }
        }
    }

    fn drain(&mut self, probe: &mut Probe) {
        loop {
            self.buf.clear();
            if probe.drain(&mut self.buf) == 0 {
                break;
            }
            if self.group == GroupBy::Process {
                for ev in &self.buf {
                    if self.comms.cached(ev.tgid).is_none() {
                        let _ = self.comms.get(ev.tgid);
                    }
                }
            }
            self.agg.fold(&self.buf);
            if self.buf.len() < self.buf.capacity() {
                break;
            }
        }
        for (tgid, name) in probe.take_exits() {
            self.comms.learn(tgid, name);
        }
    }

    fn snapshot(
        &mut self,
        start_unix_ns: u64,
        duration_ns: u64,
        loss: crate::aggregate::LossCounters,
    ) -> Snapshot {
        let comms = &self.comms;
        self.agg
            .snapshot(start_unix_ns, duration_ns, loss, &|tgid| comms.cached(tgid))
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Writes the final dump. Without `-o`, it goes to stdout, or to stderr when a command
/// was traced (its own output owns stdout, as with `strace -c`).
fn write_output(cfg: &RecordConfig, snap: &Snapshot, traced_command: bool) -> anyhow::Result<()> {
    let body = match cfg.format {
        Format::Text => text::render(snap, 0),
        Format::Json => jsonl::line("summary", snap),
    };
    match &cfg.sink {
        Sink::File(path, file) => {
            let mut f = file;
            f.write_all(body.as_bytes())
                .and_then(|_| f.flush())
                .with_context(|| format!("failed to write {}", path.display()))
                .inspect_err(|_| {
                    // Nothing recorded is lost: the data goes to stderr instead.
                    let _ = std::io::stderr().write_all(body.as_bytes());
                })
        }
        Sink::Stdout if traced_command => std::io::stderr()
            .write_all(body.as_bytes())
            .context("failed to write to stderr"),
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes())
                .and_then(|_| out.flush())
                .context("failed to write to stdout")
        }
    }
}
