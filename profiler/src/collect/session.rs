//! A collection session, shared by `record`, `top` and `serve`: load and attach the programs,
//! set up the targets (processes, or a command started parked), then deliver drain ticks
//! and end conditions (command exit, `-d` elapsed, SIGINT/SIGTERM, every `-p` target gone).
//!
//! Nothing here runs on a fixed short timer, so a quiet machine costs almost no CPU: a tick
//! comes when the programs wake user space (a CPU's call log a quarter full, a slow call),
//! when the caller's next deadline is due (an interval dump, a refresh; [`Trace::wake_by`]),
//! or after [`MAX_DRAIN_GAP`] at the latest; never sooner than [`MIN_DRAIN_GAP`] after the
//! last one, which bounds the wake-ups under load. Signals, the command's exit and the
//! targets' exits (pidfds) are waited for, not polled.
//!
//! With a command, SIGINT, SIGTERM, SIGHUP and SIGQUIT end the command, not the session:
//! they are passed on to it (a SIGINT or SIGQUIT typed at the terminal already reached it,
//! with the whole foreground process group, and is not sent twice), tracing goes on while
//! it shuts down, and the session ends when it exits, with its status. A second such
//! signal, or `--kill-after` elapsed since the first, kills it with SIGKILL.

use std::{
    cell::Cell,
    collections::HashMap,
    pin::Pin,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    task::JoinHandle,
    time::Sleep,
};

use crate::{
    aggregate::{self, ContainerInfo, GroupBy, LossCounters, comm_name},
    collect::{
        Filter, LoadError, LoadOptions, Probe, cgroup,
        container_index::ContainerIndex,
        exits::Exits,
        launch,
        procinfo::Comms,
        scope::{Filters, Targets},
        stacks::Stacks,
        target,
    },
};

/// The shortest time between two drains: a wake-up from the programs sooner than this
/// after the last drain waits until then, so under heavy load syslat drains at most this
/// often (each drain then takes a large batch), and tiny buffers cannot make it spin. The
/// default call logs hold over 60 ms of calls at 4 million a second.
pub const MIN_DRAIN_GAP: Duration = Duration::from_millis(10);

/// The longest time between two drains when nothing wakes user space: it bounds how old
/// undrained data (process names, exit records) can get on a quiet machine, and is the
/// fallback should a wake-up be lost (ring buffer full).
pub const MAX_DRAIN_GAP: Duration = Duration::from_millis(500);

/// What [`Trace::next`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Time to drain: the programs asked for it, the caller's deadline ([`Trace::wake_by`])
    /// is due, or [`MAX_DRAIN_GAP`] passed.
    Tick,
    /// SIGUSR1: the user asks for a dump now.
    DumpRequested,
    /// The session is over; the value is the exit status to use.
    End(i32),
}

/// A running tracing session. Dropping it detaches every program.
pub struct Trace {
    probe: Probe,
    /// Process names, learned from /proc and from process-exit records.
    pub comms: Comms,
    /// With `--by container`: the container of each cgroup.
    containers: Option<ContainerIndex>,
    /// With `--by container`: a batch with container keys in place of cgroup ids.
    keyed: Vec<aggregate::Event>,
    /// With `--stacks`: the stacks of the calls, resolved as they are drained.
    stacks: Option<Stacks>,
    child: Option<(u32, JoinHandle<std::io::Result<i32>>)>,
    /// The `-p`/`-t` targets, while any is alive.
    exits: Exits,
    deadline: Option<Pin<Box<Sleep>>>,
    /// When [`Event::Tick`] was last returned.
    last_tick: Instant,
    /// The caller's next deadline ([`Trace::wake_by`]).
    due: Option<Instant>,
    /// The programs woke user space and no tick has been returned since (a cell, so the
    /// wait can record it and still be cancelled by another branch).
    woken: Cell<bool>,
    sigint: Signal,
    sigterm: Signal,
    sigusr1: Signal,
    sighup: Signal,
    sigquit: Signal,
    /// `--kill-after`.
    kill_after: Option<Duration>,
    /// Since a signal was passed to the command: when to SIGKILL it (`--kill-after`).
    stopping: Option<Option<Pin<Box<Sleep>>>>,
    had_child: bool,
    /// When tracing started, ns since the Unix epoch.
    pub start_unix_ns: u64,
    started: Instant,
}

/// Why a tracing session could not start or go on. The kernel's and the command's errors
/// pass through unchanged (their lines are the user's), the rest say what failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Loading, attaching or targeting the programs.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// `--by container`: the cgroup hierarchy could not be read.
    #[error(transparent)]
    Containers(#[from] cgroup::CgroupError),
    /// The command could not be started.
    #[error(transparent)]
    Launch(#[from] launch::LaunchError),
    /// A signal handler could not be installed.
    #[error("failed to handle {name}")]
    Signal {
        /// The signal's name.
        name: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The task waiting for the command failed.
    #[error("failed to wait for the command")]
    WaitTask(#[source] tokio::task::JoinError),
    /// waitpid(2) failed.
    #[error("failed to wait for the command")]
    Wait(#[source] std::io::Error),
}

impl SessionError {
    /// The load error inside, if that is what this is (for its hint).
    pub fn load(&self) -> Option<&LoadError> {
        match self {
            SessionError::Load(e) => Some(e),
            _ => None,
        }
    }
}

impl Trace {
    /// [`Trace::start_with`] without call filters.
    pub fn start(
        targets: &Targets,
        duration: Option<Duration>,
        announce: bool,
    ) -> Result<Self, SessionError> {
        Self::start_with(targets, &Filters::default(), duration, announce)
    }

    /// Loads, attaches and starts the targets. With `announce`, says on stderr what is
    /// traced once tracing is in place (not for a command, whose output comes first).
    pub fn start_with(
        targets: &Targets,
        filters: &Filters,
        duration: Option<Duration>,
        announce: bool,
    ) -> Result<Self, SessionError> {
        let filter = match targets {
            Targets::All => Filter::All,
            Targets::Tids(_) => Filter::Tids,
            Targets::Cgroup(c) => Filter::Cgroup {
                id: c.id,
                level: c.level,
                path: c.path.clone(),
            },
            Targets::Pids(_) | Targets::Comms(_) | Targets::Command(_) => Filter::Tgids,
        };
        let opts = LoadOptions {
            filter,
            syscalls: filters.syscalls.clone(),
            errors_only: filters.errors_only,
            slow_ns: filters.slow.map_or(0, |d| d.as_nanos().max(1) as u64),
            by_cgroup: filters.by_cgroup || filters.by_container,
            ring_bytes: filters.ring_bytes,
            stacks_ns: filters
                .stacks
                .map(|d| d.as_nanos().min(u128::from(u64::MAX - 1)) as u64),
            comms: match targets {
                Targets::Comms(c) => c.clone(),
                _ => Vec::new(),
            },
        };
        let containers = if filters.by_container {
            Some(ContainerIndex::new()?)
        } else {
            None
        };
        let mut probe = Probe::load(&opts)?;
        let mut exits = Exits::default();
        match targets {
            Targets::Pids(pids) => {
                for tgid in target::with_descendants(pids) {
                    probe.add_tgid(tgid)?;
                }
                exits = Exits::new(pids, false);
            }
            Targets::Tids(tids) => {
                for &tid in tids {
                    probe.add_tgid(tid)?;
                }
                exits = Exits::new(tids, true);
            }
            Targets::Comms(names) => {
                for pid in target::by_comm(names) {
                    probe.add_tgid(pid)?;
                }
            }
            _ => {}
        }
        let stacks = probe
            .take_stacks()
            .map(|map| Stacks::new(map, crate::aggregate::stacks::DEFAULT_MAX_STACKS));
        probe.attach()?;
        let sig = |k, name| signal(k).map_err(|source| SessionError::Signal { name, source });
        let mut trace = Trace {
            probe,
            comms: Comms::default(),
            containers,
            keyed: Vec::new(),
            stacks,
            child: None,
            exits,
            deadline: duration.map(|d| Box::pin(tokio::time::sleep(d))),
            last_tick: Instant::now(),
            due: None,
            woken: Cell::new(false),
            sigint: sig(SignalKind::interrupt(), "SIGINT")?,
            sigterm: sig(SignalKind::terminate(), "SIGTERM")?,
            sigusr1: sig(SignalKind::user_defined1(), "SIGUSR1")?,
            sighup: sig(SignalKind::hangup(), "SIGHUP")?,
            sigquit: sig(SignalKind::quit(), "SIGQUIT")?,
            kill_after: filters.kill_after,
            stopping: None,
            had_child: false,
            start_unix_ns: unix_ns(SystemTime::now()),
            started: Instant::now(),
        };
        match targets {
            Targets::Command(argv) => {
                let parked = launch::spawn_parked(argv)?;
                trace.probe.add_tgid(parked.pid())?;
                let pid = parked.release();
                trace.child = Some((pid, tokio::spawn(launch::wait(pid))));
                trace.had_child = true;
            }
            Targets::All if announce => eprintln!("syslat: tracing all processes; Ctrl-C to stop"),
            Targets::Pids(p) if announce => eprintln!(
                "syslat: tracing {} process(es) and their children; Ctrl-C to stop",
                p.len()
            ),
            Targets::Tids(t) if announce => {
                eprintln!("syslat: tracing {} thread(s); Ctrl-C to stop", t.len())
            }
            Targets::Comms(c) if announce => {
                eprintln!(
                    "syslat: tracing processes named {}; Ctrl-C to stop",
                    c.join(", ")
                )
            }
            Targets::Cgroup(c) if announce => {
                eprintln!(
                    "syslat: tracing cgroup {}; Ctrl-C to stop",
                    c.path.display()
                )
            }
            _ => {}
        }
        Ok(trace)
    }

    /// Whether a traced command was started and has exited.
    pub fn command_exited(&self) -> bool {
        self.had_child && self.child.is_none()
    }

    /// The pid of the traced command, if one was started.
    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|(p, _)| *p)
    }

    /// Time since tracing started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Asks for a tick at `at` (an interval dump or refresh is due then), on top of the
    /// programs' wake-ups and [`MAX_DRAIN_GAP`]; `None` asks for none. Kept until changed.
    pub fn wake_by(&mut self, at: Option<Instant>) {
        self.due = at;
    }

    /// Waits for the next tick or end condition. Cancel-safe.
    pub async fn next(&mut self) -> Result<Event, SessionError> {
        let had_targets = !self.exits.all_gone();
        let deadline = async {
            match self.deadline.as_mut() {
                Some(d) => d.as_mut().await,
                None => std::future::pending().await,
            }
        };
        let child = async {
            match self.child.as_mut() {
                Some((_, h)) => h.await,
                None => std::future::pending().await,
            }
        };
        let kill_due = async {
            match self.stopping.as_mut() {
                Some(Some(d)) => d.as_mut().await,
                _ => std::future::pending().await,
            }
        };
        let latest = self.last_tick + MAX_DRAIN_GAP;
        let due = self.due.map_or(latest, |d| d.min(latest));
        let soonest = (self.last_tick + MIN_DRAIN_GAP).min(due);
        let (probe, woken) = (&self.probe, &self.woken);
        let tick = async {
            if !woken.get() {
                tokio::select! {
                    r = probe.woken() => {
                        if let Err(e) = r {
                            // Not fatal: the timed drains go on.
                            log::debug!("waiting on the ring buffer failed: {e}");
                            return tokio::time::sleep_until(due.into()).await;
                        }
                        woken.set(true);
                    }
                    _ = tokio::time::sleep_until(due.into()) => return,
                }
            }
            tokio::time::sleep_until(soonest.into()).await;
        };
        let exits = &mut self.exits;
        let ending = tokio::select! {
            _ = tick => {
                self.woken.set(false);
                self.last_tick = Instant::now();
                None
            }
            _ = exits.next_exit(), if had_targets => {
                if self.exits.all_gone() {
                    log::info!("every traced process exited");
                    return Ok(Event::End(0));
                }
                None
            }
            status = child => {
                self.child = None;
                let code = status
                    .map_err(SessionError::WaitTask)?
                    .map_err(SessionError::Wait)?;
                return Ok(Event::End(code));
            }
            _ = deadline => return Ok(Event::End(0)),
            _ = kill_due => {
                log::info!("--kill-after elapsed: killing the command");
                self.kill_child(libc::SIGKILL);
                self.stopping = Some(None);
                None
            }
            _ = self.sigint.recv() => Some(libc::SIGINT),
            _ = self.sigterm.recv() => Some(libc::SIGTERM),
            _ = self.sigusr1.recv() => return Ok(Event::DumpRequested),
            // The terminal went away: end like Ctrl-C, with the final dump.
            _ = self.sighup.recv() => Some(libc::SIGHUP),
            _ = self.sigquit.recv() => Some(libc::SIGQUIT),
        };
        if let Some(sig) = ending {
            if self.child.is_none() {
                return Ok(Event::End(128 + sig));
            }
            self.pass_on(sig);
        }
        Ok(Event::Tick)
    }

    /// A signal that would end the session while the command runs: the first is passed on
    /// (unless the terminal sent it to the command's process group already), a second one
    /// kills the command.
    fn pass_on(&mut self, sig: i32) {
        if self.stopping.is_some() {
            log::info!("second signal: killing the command");
            self.kill_child(libc::SIGKILL);
            return;
        }
        let from_terminal = matches!(sig, libc::SIGINT | libc::SIGQUIT)
            && self.child_pid().is_some_and(launch::in_foreground_group);
        if from_terminal {
            log::info!("signal {sig} from the terminal reached the command too");
        } else {
            log::info!("passing signal {sig} on to the command");
            self.kill_child(sig);
        }
        self.stopping = Some(self.kill_after.map(|d| Box::pin(tokio::time::sleep(d))));
    }

    fn kill_child(&self, sig: i32) {
        if let Some(pid) = self.child_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }

    /// Drains every waiting record (completed calls and process-exit records, in order)
    /// into `fold`. With `names`, reads the name of each new process from /proc while it
    /// still exists. With `--by container`, each call's `cgroup` field is replaced by its
    /// container's key (see [`Trace::container_infos`]), found while the cgroup exists.
    pub fn drain(&mut self, names: bool, mut fold: impl FnMut(aggregate::Batch<'_>)) {
        let comms = &mut self.comms;
        comms.sweep();
        // The last caller whose name is known: a run of calls from one process looks the
        // cache up once.
        let mut named = None;
        let mut stacks = self.stacks.as_mut();
        if let Some(s) = stacks.as_mut() {
            s.begin_drain();
        }
        let (containers, keyed) = (&mut self.containers, &mut self.keyed);
        self.probe.drain(|batch, inline| {
            if let Some(s) = stacks.as_mut() {
                s.add_inline(inline);
                s.observe(batch);
            }
            match batch {
                aggregate::Batch::Slots(slots) if names => aggregate::each_caller(slots, |tgid| {
                    if named != Some(tgid) {
                        comms.see(tgid);
                        named = Some(tgid);
                    }
                }),
                aggregate::Batch::Slots(_) => {}
                aggregate::Batch::Events(events) => {
                    for ev in events {
                        match ev {
                            aggregate::Event::Exit(exit) => {
                                comms.exited(exit.tgid, comm_name(&exit.comm));
                                named = None;
                            }
                            aggregate::Event::Call(call, _)
                            | aggregate::Event::CallStack(call, ..)
                                if names && named != Some(call.tgid) =>
                            {
                                comms.see(call.tgid);
                                named = Some(call.tgid);
                            }
                            aggregate::Event::Call(..) | aggregate::Event::CallStack(..) => {}
                        }
                    }
                }
            }
            let Some(index) = containers.as_mut() else {
                fold(batch);
                return;
            };
            index.begin_batch();
            keyed.clear();
            keyed.extend(batch.events().map(|ev| match ev {
                aggregate::Event::Call(mut call, anatomy) => {
                    call.cgroup = index.key(call.cgroup, call.tgid);
                    aggregate::Event::Call(call, anatomy)
                }
                aggregate::Event::CallStack(mut call, anatomy, ids) => {
                    call.cgroup = index.key(call.cgroup, call.tgid);
                    aggregate::Event::CallStack(call, anatomy, ids)
                }
                other => other,
            }));
            fold(aggregate::Batch::Events(keyed));
        });
        if let Some(s) = self.stacks.as_mut() {
            for tgid in self.probe.take_execs() {
                s.exec(tgid);
            }
        }
    }

    /// Names for snapshot keys without copying the name cache: process names by pid (the
    /// cache itself), or cgroup paths by id (read now). For each snapshot taken while
    /// tracing; [`Trace::key_names`] copies them, for a snapshot taken after.
    pub fn namer(&self, group: GroupBy) -> Namer<'_> {
        match group {
            GroupBy::Process | GroupBy::Thread => Namer::Comms(&self.comms),
            GroupBy::Cgroup | GroupBy::Syscall | GroupBy::Container => {
                Namer::Map(self.key_names(group))
            }
        }
    }

    /// Names for snapshot keys: process names by pid, or cgroup paths by id.
    pub fn key_names(&self, group: GroupBy) -> HashMap<u32, String> {
        match group {
            GroupBy::Cgroup => cgroup::id_paths(),
            GroupBy::Syscall | GroupBy::Container => HashMap::new(),
            GroupBy::Process | GroupBy::Thread => self.comms.all(),
        }
    }

    /// The stacks of the calls drained so far (with `--stacks`).
    pub fn stacks(&mut self) -> Option<&mut Stacks> {
        self.stacks.as_mut()
    }

    /// With `--by container`: what each container key stands for, once the runtimes have
    /// answered the questions still due (waiting at most `wait`); empty otherwise.
    pub fn container_infos(&self, wait: Duration) -> HashMap<u32, ContainerInfo> {
        match &self.containers {
            Some(index) => {
                index.settle(wait);
                index.infos()
            }
            None => HashMap::new(),
        }
    }

    /// With `--by container`: the ids of the containers whose runtime has not answered yet.
    pub fn containers_pending(&self) -> std::collections::HashSet<String> {
        self.containers
            .as_ref()
            .map(ContainerIndex::pending)
            .unwrap_or_default()
    }

    /// Slow calls (with `--slow`) seen by the last drains, oldest first.
    pub fn take_slow(&mut self) -> Vec<profiler_common::SlowEvent> {
        self.probe.take_slow()
    }

    /// The loss counters now.
    pub fn loss(&self) -> LossCounters {
        self.probe.loss()
    }
}

/// Names snapshot keys (see [`Trace::namer`]).
pub enum Namer<'a> {
    /// Process names, from the name cache.
    Comms(&'a Comms),
    /// Names read for this snapshot.
    Map(HashMap<u32, String>),
}

impl Namer<'_> {
    /// The name of key `k`, if known.
    pub fn name(&self, k: u32) -> Option<String> {
        match self {
            Namer::Comms(c) => c.cached(k),
            Namer::Map(m) => m.get(&k).cloned(),
        }
    }
}

/// What to add to a `bpf_ktime_get_ns` (CLOCK_MONOTONIC) time to get Unix time, in ns.
pub fn monotonic_to_unix_offset() -> i128 {
    let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
        .unwrap_or(0);
    unix_ns(SystemTime::now()) as i128 - mono
}

/// Nanoseconds since the Unix epoch.
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
