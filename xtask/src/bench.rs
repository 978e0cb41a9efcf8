//! `cargo xtask bench`: the cost per syscall of a tight getppid loop, measured in one run,
//! as medians of interleaved repetitions so machine noise hits every row alike (the added
//! cost and the ratio to the floor are medians of per-round differences, so drift between
//! rounds cancels, and each round starts at another row):
//! no tracing (base), the floor (empty raw_tp programs on sys_enter/sys_exit, loaded here;
//! for the context-switch row also empty sched_switch/sched_wakeup programs), the clock floor (the same reading bpf_ktime_get_ns), `syslat record` tracing everything,
//! `syslat record -p` of the loop itself, syslat filtered to another process (what an
//! untargeted process pays), and with `--peers`
//! bpftrace, libbpf-tools' syscount -L, perf trace -s and strace -c -f. Then the same for a
//! pipe ping-pong (the cost on context switches), a sustained two-thread storm under
//! `syslat record` (rate, drops), a burst that hits a syslat sitting idle (rate, drops),
//! syslat's own CPU time on an idle machine (`record`, `serve`, and `record -p` of a
//! sleeping process), peak RSS with 10,000 short-lived processes, and the time of a
//! `/metrics` scrape of 200 series (text, and protobuf with native histograms).
//!
//! The loop rows count the measuring threads' own CPU time (the workload's `time-getppid`
//! and `time-pingpong`, by `CLOCK_THREAD_CPUTIME_ID`), not wall time: another process
//! taking the CPU meanwhile adds nothing to them, and the hooks' cost, paid on those
//! threads, is all in.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::{Ebpf, programs::Program};

/// Flags of `cargo xtask bench`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Interleaved rounds; the median of each row is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// getppid calls per measurement.
    #[arg(long, default_value_t = 2_000_000)]
    calls: u64,
    /// Also measure bpftrace, syscount -L, perf trace -s and strace -c -f (installed with apt
    /// when missing).
    #[arg(long)]
    peers: bool,
    /// Write the table into README.md's performance section.
    #[arg(long)]
    readme: bool,
    /// Round trips of the context-switch run (a pipe ping-pong between two threads on one
    /// CPU); 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    pingpong: u64,
    /// getppid calls per thread of the sustained-load run (two threads); 0 skips it.
    #[arg(long, default_value_t = 21_000_000)]
    storm_calls: u64,
    /// getppid calls per thread of the burst run (two threads, hitting a syslat that sat
    /// idle); 0 skips it.
    #[arg(long, default_value_t = 6_000_000)]
    burst_calls: u64,
    /// Seconds of each idle-cost measurement (`record`, `serve`, `record -p` of a sleeping
    /// process); 0 skips them.
    #[arg(long, default_value_t = 20)]
    idle_seconds: u64,
    /// Measure this syslat binary instead of target/release/syslat (an older build, for a
    /// before/after comparison).
    #[arg(long)]
    syslat: Option<PathBuf>,
    /// Run only one part: `cost` (syslat's CPU per traced call in each mode: record,
    /// record --by process, top, serve), `memory` (peak RSS with many short-lived
    /// processes: record of 10,000, serve of 30,000 distinctly named ones) or `pingpong`
    /// (the context-switch rows).
    #[arg(long, value_enum)]
    only: Option<Part>,
}

/// A part of the bench that `--only` runs alone.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub(crate) enum Part {
    /// syslat's CPU time per traced call, by mode.
    Cost,
    /// Peak RSS with many short-lived processes.
    Memory,
    /// The context-switch rows (the pipe ping-pong) alone.
    Pingpong,
    /// The two syscall hooks (raw tracepoints, perf's tracepoints) against their floors.
    Hooks,
}

/// The goal for syslat's CPU time per traced call in every mode, ns.
const COST_GOAL_NS: f64 = 15.0;
/// The goal for `serve`'s peak RSS at any number of processes, MiB.
const SERVE_RSS_GOAL_MIB: f64 = 64.0;
/// Distinctly named short-lived processes of the serve memory row, and calls of each.
const SERVE_PROCESSES: u32 = 30_000;
const SERVE_CALLS_EACH: u32 = 100;

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Base,
    Floor,
    SchedFloor,
    /// The clock floor of the context-switch row: the clock read on sys_enter, sys_exit
    /// and sched_switch, an empty sched_wakeup.
    SchedClock,
    Clock,
    /// Empty programs on sys_enter/sys_exit through perf's tracepoint handler.
    PerfFloor,
    /// The same that read the clock.
    PerfClock,
    SyslatAll,
    SyslatPid,
    /// `record -p` of the loop on perf's tracepoints (`SYSLAT_SYSCALL_HOOK=perf`).
    SyslatPidPerf,
    SyslatOther,
    SyslatStacks,
    /// `record --by process -p` of the loop.
    SyslatByProcess,
    /// `top -b -p` of the loop (batch mode: the table printed every second).
    SyslatTop,
    /// `serve --by process -p` of the loop, scraped every second.
    SyslatServe,
    Bpftrace,
    Syscount,
    PerfTrace,
    Strace,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Base => "no tracing (base)",
            Setup::Floor => "floor: empty raw_tp programs",
            Setup::SchedFloor => {
                "floor: empty programs on sys_enter/sys_exit and sched_switch/sched_wakeup"
            }
            Setup::SchedClock => {
                "clock floor: bpf_ktime_get_ns on sys_enter/sys_exit and sched_switch, empty sched_wakeup"
            }
            Setup::Clock => "clock floor: raw_tp programs that only read bpf_ktime_get_ns",
            Setup::PerfFloor => "floor: empty tracepoint programs (perf's handler)",
            Setup::PerfClock => {
                "clock floor: tracepoint programs (perf's handler) that only read bpf_ktime_get_ns"
            }
            Setup::SyslatPidPerf => "`SYSLAT_SYSCALL_HOOK=perf syslat record -p` (the loop)",
            Setup::SyslatAll => "`syslat record` (all processes)",
            Setup::SyslatPid => "`syslat record -p` (the loop)",
            Setup::SyslatOther => "untargeted (`syslat record -p` of another process)",
            Setup::SyslatStacks => "`syslat record -p --stacks` (every call's stacks)",
            Setup::SyslatByProcess => "`syslat record -p --by process` (the loop)",
            Setup::SyslatTop => "`syslat top -b -p` (the loop, a table a second)",
            Setup::SyslatServe => "`syslat serve --by process -p` (the loop, scraped every second)",
            Setup::Bpftrace => "bpftrace, tid-keyed hist one-liner",
            Setup::Syscount => "libbpf-tools `syscount -L -p`",
            Setup::PerfTrace => "`perf trace -s -p`",
            Setup::Strace => "`strace -c -f -p`",
        }
    }

    /// Slow tracers get fewer calls so a round stays short.
    fn calls(self, base: u64) -> u64 {
        match self {
            Setup::Strace => (base / 100).max(10_000),
            Setup::PerfTrace => (base / 10).max(10_000),
            _ => base,
        }
    }
}

struct Sample {
    ns: f64,
    /// syslat's CPU time per million traced syscalls, ms, and its peak RSS, KiB.
    cost: Option<(f64, u64)>,
}

pub(crate) fn run(root: &Path, args: &BenchArgs) -> Result<()> {
    let syslat = args
        .syslat
        .clone()
        .unwrap_or_else(|| root.join("target/release/syslat"));
    let workload = root.join("target/release/workload");
    let floor = root.join("target/ebpf/floor.bpf.o");
    for p in [&syslat, &workload, &floor] {
        if !p.exists() {
            bail!("{} is missing: the build did not produce it", p.display());
        }
    }
    let mut setups = vec![
        Setup::Base,
        Setup::Floor,
        Setup::Clock,
        Setup::SyslatAll,
        Setup::SyslatPid,
        Setup::SyslatOther,
        Setup::SyslatStacks,
    ];
    if args.peers {
        setups.extend(install_peers());
    }
    let ctx = Ctx {
        syslat: &syslat,
        workload: &workload,
        floor: &floor,
    };
    match args.only {
        Some(Part::Cost) => {
            println!("{}", cost_table(&ctx, args));
            return Ok(());
        }
        Some(Part::Memory) => {
            println!("{}", memory_lines(&syslat, &workload));
            return Ok(());
        }
        Some(Part::Pingpong) => {
            println!("{}", pingpong_table(&ctx, args)?);
            return Ok(());
        }
        Some(Part::Hooks) => {
            println!("{}", hooks_table(&ctx, args));
            return Ok(());
        }
        None => {}
    }
    let samples = rounds(&ctx, &setups, args.rounds, "time-getppid", |s| {
        s.calls(args.calls)
    });
    let mut table = render(&setups, &samples);
    table.push_str(&hooks_table(&ctx, args));
    if args.pingpong > 0 {
        table.push_str(&pingpong_table(&ctx, args)?);
    }
    if args.storm_calls > 0 {
        eprintln!(
            "xtask bench: sustained load, two threads of {} calls",
            args.storm_calls
        );
        match storm(&syslat, &workload, args.storm_calls) {
            Ok(line) => table.push_str(&line),
            Err(e) => eprintln!("xtask bench: the sustained-load run failed: {e:#}"),
        }
    }
    if args.burst_calls > 0 {
        eprintln!(
            "xtask bench: a burst of two threads of {} calls on an idle syslat",
            args.burst_calls
        );
        match burst(&syslat, &workload, args.burst_calls) {
            Ok(line) => table.push_str(&line),
            Err(e) => eprintln!("xtask bench: the burst run failed: {e:#}"),
        }
    }
    if args.idle_seconds > 0 {
        table.push_str(&idle_table(&syslat, args.idle_seconds));
    }
    table.push_str(&cost_table(&ctx, args));
    table.push_str(&memory_lines(&syslat, &workload));
    match scrape_cost(&syslat, &workload) {
        Ok(line) => table.push_str(&line),
        Err(e) => eprintln!("xtask bench: the scrape run failed: {e:#}"),
    }
    println!("{table}");
    if args.readme {
        write_readme(root, &table, args)?;
    }
    Ok(())
}

/// syslat's own CPU time per traced call in each mode (user + system time of the syslat
/// process over the loop, divided by the loop's calls), medians of interleaved rounds (the
/// machine may be shared: a median, not a mean, and the spread is said).
fn cost_table(ctx: &Ctx<'_>, args: &BenchArgs) -> String {
    let setups = [
        Setup::SyslatPid,
        Setup::SyslatByProcess,
        Setup::SyslatTop,
        Setup::SyslatServe,
    ];
    let samples = rounds(ctx, &setups, args.rounds, "time-getppid", |_| args.calls);
    let mut t = format!(
        "\n\nsyslat's CPU time per traced call (a getppid loop of {} calls; goal: at most \
         {COST_GOAL_NS:.0} ns in every mode), medians of {} interleaved rounds\n\n\
         | mode | syslat ns/call | min | max | calls/s traced | goal |\n|---|---:|---:|---:|---:|---|\n",
        args.calls, args.rounds
    );
    for (s, row) in setups.iter().zip(&samples) {
        let ns: Vec<f64> = row
            .iter()
            .flatten()
            .filter_map(|x| x.cost)
            .map(|c| c.0)
            .collect();
        let rate: Vec<f64> = row.iter().flatten().map(|x| 1e9 / x.ns.max(1e-9)).collect();
        let lo = ns.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ns.iter().copied().fold(0.0, f64::max);
        match (median(ns.clone()), median(rate)) {
            (Some(m), Some(r)) => t.push_str(&format!(
                "| {} | {m:.1} | {lo:.1} | {hi:.1} | {:.2} M | {} |\n",
                s.label(),
                r / 1e6,
                if m <= COST_GOAL_NS { "met" } else { "not met" }
            )),
            _ => t.push_str(&format!("| {} | failed | | | | |\n", s.label())),
        }
    }
    t
}

/// Peak RSS with many short-lived processes: `record --by process` of 10,000 (forks), and
/// `serve --by process` of [`SERVE_PROCESSES`] distinctly named ones, scraped every second.
fn memory_lines(syslat: &Path, workload: &Path) -> String {
    let mut t = String::new();
    eprintln!("xtask bench: peak RSS, record of 10,000 short-lived processes");
    match rss_with_processes(syslat, workload, 10_000) {
        Ok(kib) => t.push_str(&format!(
            "\n`syslat record --by process` of 10,000 short-lived processes: peak RSS {:.1} MiB",
            kib as f64 / 1024.0
        )),
        Err(e) => eprintln!("xtask bench: the memory run failed: {e:#}"),
    }
    eprintln!("xtask bench: peak RSS, serve of {SERVE_PROCESSES} distinctly named processes");
    match serve_rss(syslat, workload, SERVE_PROCESSES, SERVE_CALLS_EACH) {
        Ok((kib, secs)) => {
            let mib = kib as f64 / 1024.0;
            t.push_str(&format!(
                "\n`syslat serve --by process`, scraped every second, of {SERVE_PROCESSES} \
                 short-lived processes of distinct names making {SERVE_CALLS_EACH} calls each \
                 ({secs:.0} s): peak RSS {mib:.1} MiB (goal: at most {SERVE_RSS_GOAL_MIB:.0} \
                 MiB, {})",
                if mib <= SERVE_RSS_GOAL_MIB {
                    "met"
                } else {
                    "not met"
                }
            ));
        }
        Err(e) => eprintln!("xtask bench: the serve memory run failed: {e:#}"),
    }
    t
}

/// Peak RSS (KiB) of `syslat serve --by process`, scraped every second, while `n`
/// distinctly named children make `calls` getppid calls each and exit; and the seconds the
/// children took.
fn serve_rss(syslat: &Path, workload: &Path, n: u32, calls: u32) -> Result<(u64, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    // The children first; the workload then waits at its gate, so the run's end is seen
    // on its stdout ("done") while serve still holds whatever it keeps.
    let script = format!(
        "{w} named-children {n} {calls}; echo done; {w} gate",
        w = workload.display()
    );
    let mut srv = started(
        Command::new(syslat)
            .args(["serve", "--by", "process", "--listen", &addr, "--"])
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
        "serving",
    )?;
    let t0 = Instant::now();
    let out = srv.stdout.take().context("stdout")?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = done_tx.send(());
    });
    let result = (|| {
        let mut peak = 0;
        let mut secs = None;
        // Two scrapes after the children are done: what serve keeps of exited processes.
        let mut after = 0;
        while after < 2 {
            std::thread::sleep(Duration::from_secs(1));
            scrape_text(&addr)?;
            peak = peak.max(peak_rss_kib(srv.id()));
            if secs.is_none() && done_rx.try_recv().is_ok() {
                secs = Some(t0.elapsed().as_secs_f64());
            }
            if secs.is_some() {
                after += 1;
            }
            if t0.elapsed() > Duration::from_secs(1800) {
                bail!("the children did not finish in 30 minutes");
            }
        }
        Ok((peak, secs.unwrap_or(0.0)))
    })();
    end_served(&mut srv)?;
    result
}

/// Ends a `serve` of a command waiting at its gate: closes its stdin (the gate opens, the
/// command exits, serve ends with it), killing it after 10 s.
fn end_served(srv: &mut Child) -> Result<()> {
    drop(srv.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.try_wait()?.is_none() {
        if Instant::now() > deadline {
            srv.kill()?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// One text scrape of `/metrics` at `addr`: the response's bytes.
fn scrape_text(addr: &str) -> Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    Ok(resp)
}

/// A thread scraping `/metrics` every second until dropped (for the `serve` cost row).
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    fn start(addr: String) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = scrape_text(&addr) {
                    eprintln!("\nxtask bench: a scrape failed: {e:#}");
                }
                // Sleep in steps, so dropping the scraper does not wait a whole second.
                for _ in 0..10 {
                    if flag.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Scraper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `rounds` interleaved rounds of workload step `step` under every setup (`calls(setup)`
/// iterations each), each round starting at another setup; `[setup][round]`, `None` where
/// that measurement failed (said on stderr).
fn rounds(
    ctx: &Ctx<'_>,
    setups: &[Setup],
    rounds: usize,
    step: &str,
    calls: impl Fn(Setup) -> u64,
) -> Vec<Vec<Option<Sample>>> {
    let mut samples: Vec<Vec<Option<Sample>>> = setups.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for i in rotated(setups.len(), round) {
            let s = setups[i];
            eprint!(
                "\rxtask bench: {step} round {}/{rounds}, {:<55}",
                round + 1,
                s.label()
            );
            let _ = std::io::stderr().flush();
            samples[i].push(
                ctx.measure(s, step, calls(s))
                    .inspect_err(|e| eprintln!("\nxtask bench: {} failed: {e:#}", s.label()))
                    .ok(),
            );
        }
    }
    eprintln!();
    samples
}

struct Ctx<'a> {
    syslat: &'a Path,
    workload: &'a Path,
    floor: &'a Path,
}

impl Ctx<'_> {
    /// One run of workload step `step` (`time-getppid` or `time-pingpong`) with `calls`
    /// iterations under `setup`.
    fn measure(&self, setup: Setup, step: &str, calls: u64) -> Result<Sample> {
        let mut w = Command::new(self.workload)
            // The second gate keeps the loop's process alive while syslat's cost is read:
            // `syslat record -p` ends as soon as its target exits.
            .args(["gate", step, &calls.to_string(), "gate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("workload")?;
        let pid = w.id().to_string();
        let mut other: Option<Child> = None;
        let mut floor: Option<Ebpf> = None;
        let mut scraper: Option<Scraper> = None;
        let started: Result<Option<Child>> = (|| {
            Ok(match setup {
            Setup::Base => None,
            Setup::Floor => {
                floor = Some(load_floor(self.floor, "floor")?);
                None
            }
            Setup::SchedFloor => {
                let mut f = load_floor(self.floor, "floor")?;
                attach_sched_floor(&mut f, "floor_switch")?;
                floor = Some(f);
                None
            }
            Setup::SchedClock => {
                let mut f = load_floor(self.floor, "clock")?;
                attach_sched_floor(&mut f, "clock_switch")?;
                floor = Some(f);
                None
            }
            Setup::Clock => {
                floor = Some(load_floor(self.floor, "clock")?);
                None
            }
            Setup::PerfFloor => {
                floor = Some(load_floor(self.floor, "ptfloor")?);
                None
            }
            Setup::PerfClock => {
                floor = Some(load_floor(self.floor, "ptclock")?);
                None
            }
            Setup::SyslatPidPerf => {
                Some(self.syslat_env(&["-p", &pid], &[("SYSLAT_SYSCALL_HOOK", "perf")])?)
            }
            Setup::SyslatAll => Some(self.syslat(&[])?),
            Setup::SyslatPid => Some(self.syslat(&["-p", &pid])?),
            Setup::SyslatStacks => Some(self.syslat(&["-p", &pid, "--stacks"])?),
            Setup::SyslatByProcess => Some(self.syslat(&["-p", &pid, "--by", "process"])?),
            Setup::SyslatTop => Some(self.top(&pid)?),
            Setup::SyslatServe => {
                let (c, addr) = self.serve(&pid)?;
                scraper = Some(Scraper::start(addr));
                Some(c)
            }
            Setup::SyslatOther => {
                let o = Command::new("sleep").arg("600").spawn()?;
                let t = self.syslat(&["-p", &o.id().to_string()])?;
                other = Some(o);
                Some(t)
            }
            Setup::Bpftrace => Some(peer(Command::new("bpftrace").arg("-e").arg(format!(
                "tracepoint:raw_syscalls:sys_enter /pid == {pid}/ {{ @s[tid] = nsecs; }} \
                 tracepoint:raw_syscalls:sys_exit /@s[tid]/ {{ @h = hist(nsecs - @s[tid]); delete(@s[tid]); }}"
            )))?),
            Setup::Syscount => Some(peer(Command::new(syscount_bin()).args(["-L", "-p", &pid]))?),
            Setup::PerfTrace => Some(peer(Command::new("perf").args(["trace", "-s", "-p", &pid]))?),
            Setup::Strace => Some(peer(Command::new("strace").args(["-c", "-f", "-p", &pid]))?),
        })
        })();
        let mut tracer = match started {
            Ok(t) => t,
            Err(e) => {
                // Do not leave the loop waiting at its gate.
                let _ = w.kill();
                let _ = w.wait();
                return Err(e);
            }
        };
        let before = tracer.as_ref().map(|t| cpu_ms(t.id()));
        let mut gate = w.stdin.take().context("stdin")?;
        // One byte: each gate reads one.
        gate.write_all(b"g")?;
        let mut out = String::new();
        BufReader::new(w.stdout.take().context("stdout")?).read_line(&mut out)?;
        let ns: f64 = out
            .trim()
            .parse()
            .with_context(|| format!("workload printed {out:?}"))?;
        let mut cost = None;
        if let Some(t) = tracer.as_mut() {
            let is_syslat = matches!(
                setup,
                Setup::SyslatAll
                    | Setup::SyslatPid
                    | Setup::SyslatPidPerf
                    | Setup::SyslatStacks
                    | Setup::SyslatByProcess
                    | Setup::SyslatTop
                    | Setup::SyslatServe
            ) && step == "time-getppid";
            if is_syslat {
                let cpu_ms = cpu_ms(t.id()) - before.unwrap_or(0.0);
                cost = Some((cpu_ms / calls as f64 * 1e6, peak_rss_kib(t.id())));
            }
        }
        drop(scraper);
        // Closing its stdin opens the second gate.
        drop(gate);
        w.wait()?;
        if let Some(t) = tracer.as_mut() {
            // SAFETY: kill(2) on a child we spawned and have not reaped.
            unsafe { libc_kill(t.id(), 2) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while t.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    t.kill()?;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(mut o) = other {
            o.kill()?;
            o.wait()?;
        }
        drop(floor);
        Ok(Sample { ns, cost })
    }

    /// `syslat top -b -p PID`, once it printed its first table (it says nothing on stderr
    /// when it starts); its stdout is read and thrown away meanwhile.
    fn top(&self, pid: &str) -> Result<Child> {
        let mut c = Command::new(self.syslat)
            .args(["top", "-b", "-p", pid])
            .stdout(Stdio::piped())
            .spawn()
            .context("syslat top")?;
        let mut out = BufReader::new(c.stdout.take().context("stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if !line.starts_with("syslat top") {
            let _ = c.kill();
            let _ = c.wait();
            bail!("syslat top did not start: {line}");
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Ok(c)
    }

    /// `syslat serve --by process -p PID` on a free port: the child and the address it serves.
    fn serve(&self, pid: &str) -> Result<(Child, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let c = started(
            Command::new(self.syslat)
                .args(["serve", "--by", "process", "-p", pid, "--listen", &addr]),
            "serving",
        )?;
        Ok((c, addr))
    }

    fn syslat(&self, args: &[&str]) -> Result<Child> {
        self.syslat_env(args, &[])
    }

    /// [`Ctx::syslat`] with `env` set in its environment.
    fn syslat_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Child> {
        let mut c = Command::new(self.syslat)
            .envs(env.iter().copied())
            .args(["record", "-o", "/dev/null"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .context("syslat")?;
        let mut line = String::new();
        BufReader::new(c.stderr.take().context("stderr")?).read_line(&mut line)?;
        if !line.contains("tracing") {
            bail!("syslat did not start: {line}");
        }
        Ok(c)
    }
}

/// Peak RSS (KiB) of `syslat record --by process` over a workload forking `n` children.
fn rss_with_processes(syslat: &Path, workload: &Path, n: u32) -> Result<u64> {
    let mut c = Command::new(syslat)
        .args(["record", "--by", "process", "-o", "/dev/null", "--"])
        .arg(workload)
        .args(["forks", &n.to_string()])
        .spawn()?;
    let mut peak = 0;
    while c.try_wait()?.is_none() {
        peak = peak.max(peak_rss_kib(c.id()));
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(peak)
}

/// One `/metrics` scrape of `syslat serve --by process` holding about 200 series (five
/// processes of different names, ~40 syscalls each), timed from connect to the last byte:
/// as text and as protobuf with native histograms, medians of 50 scrapes each.
fn scrape_cost(syslat: &Path, workload: &Path) -> Result<String> {
    const TEXT: &str = "text/plain;version=0.0.4";
    const PROTOBUF: &str = "application/vnd.google.protobuf;\
        proto=io.prometheus.client.MetricFamily;encoding=delimited";
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let w = workload.display();
    let script = format!(
        "for i in 0 1 2 3 4; do {w} comm w$i getppid 100 sleep-us 20 50 enoent 5 \
         pipe 2 1; done; {w} gate"
    );
    let mut srv = Command::new(syslat)
        .args([
            "serve", "--by", "process", "--listen", &addr, "--", "sh", "-c", &script,
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("syslat serve")?;
    let mut line = String::new();
    BufReader::new(srv.stderr.take().context("stderr")?).read_line(&mut line)?;
    let scrape = |accept: &str| -> Result<(Duration, Vec<u8>)> {
        use std::io::Read as _;
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(&addr)?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
        )?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        Ok((t.elapsed(), resp))
    };
    let result = (|| {
        // Every name is in, and the last process waits at its gate.
        let deadline = Instant::now() + Duration::from_secs(60);
        let text = loop {
            let (_, r) = scrape(TEXT)?;
            let text = String::from_utf8_lossy(&r).into_owned();
            if text.contains(r#"comm="w4""#) && text.contains(r#"syscall="read",comm="workload""#) {
                break text;
            }
            if Instant::now() > deadline {
                bail!("serve never showed the five processes: {line}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        std::thread::sleep(Duration::from_millis(500));
        let series = text
            .lines()
            .filter(|l| l.starts_with("syslat_syscall_duration_seconds_count"))
            .count();
        // Interleaved, so machine noise hits both alike.
        let (mut times, mut bytes) = ([Vec::new(), Vec::new()], [0usize; 2]);
        for _ in 0..50 {
            for (k, accept) in [TEXT, PROTOBUF].into_iter().enumerate() {
                let (t, r) = scrape(accept)?;
                times[k].push(t.as_secs_f64() * 1e3);
                bytes[k] = r.len();
            }
        }
        let row: Vec<(f64, f64)> = times
            .into_iter()
            .zip(bytes)
            .map(|(t, b)| (median(t).unwrap_or(0.0), b as f64 / 1024.0))
            .collect();
        Ok(format!(
            "\n`syslat serve --by process`, {series} series: one scrape {:.2} ms as text \
             ({:.0} KiB), {:.2} ms as protobuf with native histograms ({:.0} KiB); medians of 50",
            row[0].0, row[0].1, row[1].0, row[1].1
        ))
    })();
    end_served(&mut srv)?;
    result
}

/// The ns per iteration of each round's sample.
fn ns_only(samples: Vec<Vec<Option<Sample>>>) -> Vec<Vec<Option<f64>>> {
    samples
        .into_iter()
        .map(|row| row.into_iter().map(|x| x.map(|x| x.ns)).collect())
        .collect()
}

/// Table rows of `setups` (the first the base) with their ns, the ns each adds to the
/// base, and that added cost over two floors' added costs, which `floors` gives per setup
/// (`None`: no ratio, as for the base).
fn rows_over_floors(
    setups: &[Setup],
    samples: &[Vec<Option<f64>>],
    floors: impl Fn(Setup) -> (Option<f64>, Option<f64>),
) -> String {
    let over = |add: f64, floor: Option<f64>| match floor {
        Some(f) if f > 0.0 => format!("{:.2}x", add / f),
        _ => String::new(),
    };
    let mut t = String::new();
    for (s, row) in setups.iter().zip(samples) {
        match (
            median(row.iter().flatten().copied().collect()),
            added(row, &samples[0]),
        ) {
            (Some(ns), Some(add)) => {
                let (a, b) = floors(*s);
                t.push_str(&format!(
                    "| {} | {ns:.0} | {add:+.0} | {} | {} |\n",
                    s.label(),
                    over(add, a),
                    over(add, b),
                ));
            }
            _ => t.push_str(&format!("| {} | failed | | | |\n", s.label())),
        }
    }
    t
}

/// The two syscall hooks side by side, each against its own floors: raw tracepoints (up
/// to Linux 7.1) and perf's tracepoint handler (from 7.2, where the kernel runs raw
/// tracepoint programs preemptible), with syslat on each.
fn hooks_table(ctx: &Ctx<'_>, args: &BenchArgs) -> String {
    let setups = [
        Setup::Base,
        Setup::Floor,
        Setup::Clock,
        Setup::SyslatPid,
        Setup::PerfFloor,
        Setup::PerfClock,
        Setup::SyslatPidPerf,
    ];
    let samples = ns_only(rounds(ctx, &setups, args.rounds, "time-getppid", |_| {
        args.calls
    }));
    let add = |i: usize| added(&samples[i], &samples[0]);
    let mut t = String::from(
        "\n\nThe syscall hooks: raw tracepoints (up to Linux 7.1) and perf's tracepoint \
         handler (from 7.2), each against its own floors (a getppid loop)\n\n\
         | setup | ns/syscall | added ns | added / its hook's floor's | added / its hook's clock floor's |\n\
         |---|---:|---:|---:|---:|\n",
    );
    t.push_str(&rows_over_floors(&setups, &samples, |s| match s {
        Setup::Base => (None, None),
        Setup::Floor | Setup::Clock | Setup::SyslatPid => (add(1), add(2)),
        _ => (add(4), add(5)),
    }));
    t
}

/// The context-switch cost: a pipe ping-pong between two threads pinned to one CPU (each
/// round trip: two switches, two writes, two reads), interleaved like the main table.
fn pingpong_table(ctx: &Ctx<'_>, args: &BenchArgs) -> Result<String> {
    let setups = [
        Setup::Base,
        Setup::Floor,
        Setup::SchedFloor,
        Setup::SchedClock,
        Setup::SyslatPid,
        Setup::SyslatOther,
    ];
    let samples = ns_only(rounds(ctx, &setups, args.rounds, "time-pingpong", |_| {
        args.pingpong
    }));
    let mut t = String::from(
        "\n\nContext switches: a pipe ping-pong between two threads on one CPU \
         (per round trip: 2 switches, 2 writes, 2 reads; CPU ns of the two threads)\n\n\
         | setup | ns/round trip | added ns | added / scheduler floor's | added / clock floor's |\n\
         |---|---:|---:|---:|---:|\n",
    );
    // The floor of everything syslat hooks on this path (the goal is at most 1.5x its
    // added cost), and the floor of any exact latency-anatomy tool: the clock read at each
    // end of every call and at each switch.
    let sched_floor = added(&samples[2], &samples[0]);
    let clock_floor = added(&samples[3], &samples[0]);
    t.push_str(&rows_over_floors(&setups, &samples, |s| match s {
        Setup::Base => (None, None),
        _ => (sched_floor, clock_floor),
    }));
    Ok(t)
}

/// `syslat record` (default buffer) of two threads making `calls` getppid calls each, as
/// fast as they can: the sustained traced rate and what was dropped, from the summary.
fn storm(syslat: &Path, workload: &Path, calls: u64) -> Result<String> {
    let out = std::env::temp_dir().join(format!("syslat-bench-storm-{}.json", std::process::id()));
    let st = Command::new(syslat)
        .args(["record", "-f", "json", "-o"])
        .arg(&out)
        .arg("--")
        .arg(workload)
        .args(["threads", "2", &calls.to_string()])
        .stderr(Stdio::null())
        .status()?;
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    if !st.success() {
        bail!("syslat exited with {st}");
    }
    let summary: serde_json::Value = text?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .context("no summary line")?;
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    let secs = n("duration_ns") as f64 / 1e9;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    Ok(format!(
        "\nSustained load (`syslat record`, default buffer, two threads of {calls} getppid calls \
         on {cpus} CPUs): {} calls traced in {secs:.1} s = {:.2} M calls/s, {} dropped, {} lost",
        n("calls"),
        n("calls") as f64 / secs.max(1e-9) / 1e6,
        n("dropped_events"),
        n("lost_events"),
    ))
}

/// `syslat record -p` of a workload that waits at its gate for 3 s (syslat's drains asleep
/// all that time), then makes `calls` getppid calls on each of two threads as fast as it
/// can: the burst's rate and what was dropped (goal: nothing at 4 M calls/s). Only the
/// workload is traced, so other processes on the machine cannot blur the count.
fn burst(syslat: &Path, workload: &Path, calls: u64) -> Result<String> {
    let out = std::env::temp_dir().join(format!("syslat-bench-burst-{}.json", std::process::id()));
    let mut w = Command::new(workload)
        .args(["gate", "threads", "2", &calls.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .context("workload")?;
    let rec = started(
        Command::new(syslat)
            .args(["record", "-f", "json", "-o"])
            .arg(&out)
            .args(["-p", &w.id().to_string()]),
        "tracing",
    );
    let mut rec = match rec {
        Ok(r) => r,
        Err(e) => {
            let _ = w.kill();
            let _ = w.wait();
            return Err(e);
        }
    };
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    w.stdin.take().context("stdin")?.write_all(b"go\n")?;
    let st = w.wait()?;
    let secs = t.elapsed().as_secs_f64();
    // syslat ends by itself once its target has exited.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.try_wait()?.is_none() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) on a child we spawned and have not reaped.
            unsafe { libc_kill(rec.id(), 2) };
            rec.wait()?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    if !st.success() {
        bail!("the workload exited with {st}");
    }
    let summary = summary_of(&text?)?;
    let getppid: u64 = summary["rows"]
        .as_array()
        .context("no rows")?
        .iter()
        .filter(|r| r["syscall"] == "getppid")
        .filter_map(|r| r["count"].as_u64())
        .sum();
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    Ok(format!(
        "\nBurst on an idle syslat (`syslat record -p` of a process that waits 3 s, then makes \
         {calls} getppid calls on each of two threads): {getppid} of {} calls traced in \
         {secs:.2} s = {:.2} M calls/s, {} dropped, {} lost (goal: 0 dropped at 4 M calls/s)",
        2 * calls,
        (2 * calls) as f64 / secs.max(1e-9) / 1e6,
        n("dropped_events"),
        n("lost_events"),
    ))
}

/// syslat's own CPU time on an idle machine: `record` and `serve` of every process (which
/// also pay for whatever the machine's other processes call, so the table says how many
/// calls were traced), and `record -p` of a sleeping process (only the fixed cost).
fn idle_table(syslat: &Path, secs: u64) -> String {
    let mut t = format!(
        "\n\nIdle cost: syslat's own CPU time over {secs} s on a machine left alone (goal: at \
         most 1 ms per second)\n\n\
         | setup | CPU ms/s | wake-ups/s | calls traced/s |\n|---|---:|---:|---:|\n"
    );
    let sleeper = Command::new("sleep").arg((secs + 60).to_string()).spawn();
    let rows: [(&str, Vec<String>); 3] = [
        ("`syslat record` (all processes)", vec!["record".into()]),
        ("`syslat serve` (all processes)", vec!["serve".into()]),
        (
            "`syslat record -p` of a sleeping process",
            match &sleeper {
                Ok(s) => vec!["record".into(), "-p".into(), s.id().to_string()],
                Err(_) => Vec::new(),
            },
        ),
    ];
    for (label, args) in rows {
        eprintln!("xtask bench: idle cost, {label}, {secs} s");
        let r = if args.is_empty() {
            Err(anyhow::anyhow!("could not start sleep"))
        } else {
            idle(syslat, &args, secs)
        };
        match r {
            Ok(i) => t.push_str(&format!(
                "| {label} | {:.2} | {:.1} | {:.0} |\n",
                i.cpu_ms_per_s, i.wakeups_per_s, i.calls_per_s
            )),
            Err(e) => {
                eprintln!("xtask bench: {label} failed: {e:#}");
                t.push_str(&format!("| {label} | failed | | |\n"));
            }
        }
    }
    if let Ok(mut s) = sleeper {
        let _ = s.kill();
        let _ = s.wait();
    }
    t
}

/// What one idle measurement found.
struct Idle {
    cpu_ms_per_s: f64,
    /// Times syslat's threads were scheduled in, per second.
    wakeups_per_s: f64,
    calls_per_s: f64,
}

/// Runs `syslat ARGS` (`record` or `serve`), lets it settle for 2 s, then measures its
/// threads' CPU time (schedstat, ns) and wake-ups over `secs` seconds, and how many calls it
/// traced meanwhile (`serve`: its counter, scraped just outside the window; `record`: its
/// summary's rate).
fn idle(syslat: &Path, args: &[String], secs: u64) -> Result<Idle> {
    let serve = args[0] == "serve";
    let out = std::env::temp_dir().join(format!("syslat-bench-idle-{}.json", std::process::id()));
    let addr = "127.0.0.1:19871";
    let mut cmd = Command::new(syslat);
    cmd.args(args);
    if serve {
        cmd.args(["--listen", addr]);
    } else {
        cmd.args(["-f", "json", "-o"]).arg(&out);
    }
    let mut c = started(&mut cmd, if serve { "serving" } else { "tracing" })?;
    let measured = (|| {
        std::thread::sleep(Duration::from_secs(2));
        let calls_before = if serve { traced_calls(addr)? } else { 0 };
        let (cpu0, runs0) = schedstat(c.id());
        std::thread::sleep(Duration::from_secs(secs));
        let (cpu1, runs1) = schedstat(c.id());
        let calls_after = if serve { traced_calls(addr)? } else { 0 };
        let secs = secs as f64;
        Ok::<_, anyhow::Error>(Idle {
            cpu_ms_per_s: (cpu1 - cpu0) as f64 / 1e6 / secs,
            wakeups_per_s: (runs1 - runs0) as f64 / secs,
            calls_per_s: (calls_after - calls_before) as f64 / secs,
        })
    })();
    let summary = if serve {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc_kill(c.id(), 2) };
        c.wait()?;
        None
    } else {
        Some(stop_and_summary(&mut c, &out))
    };
    let _ = std::fs::remove_file(&out);
    let mut idle = measured?;
    if let Some(summary) = summary {
        let summary = summary?;
        let n = |k: &str| summary[k].as_u64().unwrap_or(0);
        idle.calls_per_s = n("calls") as f64 / (n("duration_ns") as f64 / 1e9).max(1e-9);
    }
    Ok(idle)
}

/// Spawns `cmd` with stderr piped and waits for its first line, which must contain `word`.
fn started(cmd: &mut Command, word: &str) -> Result<Child> {
    let mut c = cmd.stderr(Stdio::piped()).spawn().context("syslat")?;
    let mut line = String::new();
    BufReader::new(c.stderr.take().context("stderr")?).read_line(&mut line)?;
    if !line.contains(word) {
        let _ = c.kill();
        let _ = c.wait();
        bail!("syslat did not start: {line}");
    }
    Ok(c)
}

/// Ends a `record` with SIGINT and reads the summary line it wrote to `out`.
fn stop_and_summary(c: &mut Child, out: &Path) -> Result<serde_json::Value> {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe { libc_kill(c.id(), 2) };
    c.wait()?;
    summary_of(&std::fs::read_to_string(out)?)
}

/// The summary line of a JSON Lines recording.
fn summary_of(text: &str) -> Result<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .context("no summary line")
}

/// `syslat_traced_syscalls_total` of the `serve` at `addr`.
fn traced_calls(addr: &str) -> Result<u64> {
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    resp.lines()
        .find_map(|l| l.strip_prefix("syslat_traced_syscalls_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .context("no syslat_traced_syscalls_total in /metrics")
}

/// CPU time (ns) and times scheduled in of every thread of `pid`, from
/// `/proc/PID/task/*/schedstat` (exact, unlike the 10 ms ticks of `/proc/PID/stat`).
fn schedstat(pid: u32) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return total;
    };
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let f: Vec<u64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if let [cpu, _, runs, ..] = f[..] {
            total.0 += cpu;
            total.1 += runs;
        }
    }
    total
}

fn peer(cmd: &mut Command) -> Result<Child> {
    let mut c = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // Peers print no reliable "attached" line; give them time to compile and attach.
    std::thread::sleep(Duration::from_secs(3));
    if let Some(st) = c.try_wait()? {
        bail!("{cmd:?} exited ({st}) before the loop: not attached");
    }
    Ok(c)
}

/// Loads and attaches the `{kind}_enter` / `{kind}_exit` pair of the floor object.
/// Attaches the empty scheduler programs of the floor object.
/// Attaches `switch` (`floor_switch` or `clock_switch`) to sched_switch and the empty
/// program to sched_wakeup.
fn attach_sched_floor(ebpf: &mut Ebpf, switch: &'static str) -> Result<()> {
    let btf = aya::Btf::from_sys_fs().context("kernel BTF")?;
    for (name, tp) in [(switch, "sched_switch"), ("floor_wakeup", "sched_wakeup")] {
        let p: &mut aya::programs::BtfTracePoint =
            ebpf.program_mut(name).context(name)?.try_into()?;
        p.load(tp, &btf)?;
        p.attach()?;
    }
    Ok(())
}

/// Loads and attaches the floor programs `KIND_enter` and `KIND_exit`, raw tracepoints or
/// perf's tracepoints as the object declares them.
fn load_floor(path: &Path, kind: &str) -> Result<Ebpf> {
    let mut ebpf = Ebpf::load_file(path).context("loading the floor programs")?;
    for tp in ["sys_enter", "sys_exit"] {
        let name = format!("{kind}_{}", &tp[4..]);
        match ebpf.program_mut(&name).context(name.clone())? {
            Program::RawTracePoint(p) => {
                p.load()?;
                p.attach(tp)?;
            }
            Program::TracePoint(p) => {
                p.load()?;
                p.attach("raw_syscalls", tp)?;
            }
            _ => bail!("{name} is neither a raw tracepoint nor a tracepoint program"),
        }
    }
    Ok(ebpf)
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends signal `sig` to `pid`.
///
/// # Safety
/// `pid` must be a live child of ours.
unsafe fn libc_kill(pid: u32, sig: i32) {
    // SAFETY: upheld by the caller; kill(2) has no memory effects.
    unsafe { kill(pid as i32, sig) };
}

/// utime + stime of `pid`, in ms (0 if it cannot be read).
fn cpu_ms(pid: u32) -> f64 {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .map(|s| (s.utime + s.stime) as f64 * 1000.0 / procfs::ticks_per_second() as f64)
        .unwrap_or(0.0)
}

/// The peak resident set size of `pid` (`VmHWM`), in KiB (0 if it cannot be read).
fn peak_rss_kib(pid: u32) -> u64 {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.vmhwm)
        .unwrap_or(0)
}

/// The indices `0..n` starting at `round % n`: each round starts with another setup, so noise
/// that drifts within a round does not always fall on the same rows.
fn rotated(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k + round) % n.max(1))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// Median over the rounds where both `row` and `base` were measured of row minus base: the
/// added cost, paired by round so that drift between rounds cancels.
fn added(row: &[Option<f64>], base: &[Option<f64>]) -> Option<f64> {
    median(
        row.iter()
            .zip(base)
            .filter_map(|(r, b)| Some((*r)? - (*b)?))
            .collect(),
    )
}

/// Median over the rounds where all three were measured of (row - base) / (floor - base).
fn ratio(row: &[Option<f64>], floor: &[Option<f64>], base: &[Option<f64>]) -> Option<f64> {
    median(
        row.iter()
            .zip(floor)
            .zip(base)
            .filter_map(|((r, f), b)| {
                let (r, f, b) = ((*r)?, (*f)?, (*b)?);
                (f > b).then(|| (r - b) / (f - b))
            })
            .collect(),
    )
}

fn render(setups: &[Setup], samples: &[Vec<Option<Sample>>]) -> String {
    let ns: Vec<Vec<Option<f64>>> = samples
        .iter()
        .map(|row| row.iter().map(|x| x.as_ref().map(|x| x.ns)).collect())
        .collect();
    let mut t = String::from(
        "| setup | ns/syscall | added ns | added / floor's added |\n|---|---:|---:|---:|\n",
    );
    for (i, s) in setups.iter().enumerate() {
        match (
            median(ns[i].iter().flatten().copied().collect()),
            added(&ns[i], &ns[0]),
        ) {
            (Some(med), Some(add)) => {
                let ratio = match ratio(&ns[i], &ns[1], &ns[0]) {
                    Some(x) if *s != Setup::Base => format!("{x:.2}x"),
                    _ => "-".to_string(),
                };
                t.push_str(&format!(
                    "| {} | {med:.0} | {add:+.0} | {ratio} |\n",
                    s.label()
                ));
            }
            _ => t.push_str(&format!("| {} | failed | | |\n", s.label())),
        }
    }
    for (i, s) in setups.iter().enumerate() {
        let costs: Vec<(f64, u64)> = samples[i].iter().flatten().filter_map(|x| x.cost).collect();
        if let (Some(cpu), Some(rss)) = (
            median(costs.iter().map(|c| c.0).collect()),
            costs.iter().map(|c| c.1).max(),
        ) {
            t.push_str(&format!(
                "\n{}: syslat CPU {cpu:.0} ms per million traced syscalls, peak RSS {:.1} MiB",
                s.label(),
                rss as f64 / 1024.0
            ));
        }
    }
    t
}

/// The CPU model from /proc/cpuinfo ("AMD EPYC", ...), or "unknown CPU".
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn write_readme(root: &Path, table: &str, args: &BenchArgs) -> Result<()> {
    let path = root.join("README.md");
    let text = std::fs::read_to_string(&path)?;
    let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
    let (Some(a), Some(b)) = (text.find(start), text.find(end)) else {
        bail!("README.md has no {start} ... {end} section");
    };
    let date = Command::new("date").arg("-u").arg("+%Y-%m-%d").output()?;
    let kernel = Command::new("uname").arg("-r").output()?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let peers = if args.peers { " --peers" } else { "" };
    let body = format!(
        "{start}\nMeasured {} on {cpus} vCPUs ({}), kernel {} \
         (`cargo xtask bench --rounds {}{peers}`):\n\n{table}\n{end}",
        String::from_utf8_lossy(&date.stdout).trim(),
        cpu_model(),
        String::from_utf8_lossy(&kernel.stdout).trim(),
        args.rounds,
    );
    let new = format!("{}{}{}", &text[..a], body, &text[b + end.len()..]);
    std::fs::write(&path, new)?;
    Ok(())
}

/// libbpf-tools' `syscount` (CO-RE, needs no kernel headers), else bcc's.
fn syscount_bin() -> &'static str {
    if Path::new("/usr/sbin/syscount").exists() {
        "/usr/sbin/syscount"
    } else {
        "/usr/sbin/syscount-bpfcc"
    }
}

/// Installs the peers with apt when missing; returns those available. Classic tracepoints
/// (bpftrace, perf) need tracefs, which may not be mounted.
fn install_peers() -> Vec<Setup> {
    let _ = crate::mount_tracefs();
    let wanted = [
        (Setup::Bpftrace, "bpftrace", "/usr/bin/bpftrace"),
        (Setup::Syscount, "libbpf-tools", "/usr/sbin/syscount"),
        (Setup::PerfTrace, "linux-perf", "/usr/bin/perf"),
        (Setup::Strace, "strace", "/usr/bin/strace"),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, _, p)| !Path::new(p).exists())
        .map(|(_, pkg, _)| *pkg)
        .collect();
    if !missing.is_empty() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    wanted
        .iter()
        .filter(|(_, pkg, p)| {
            let ok = Path::new(p).exists();
            if !ok {
                eprintln!("xtask bench: {pkg} is not available; its row is left out");
            }
            ok
        })
        .map(|(s, _, _)| *s)
        .collect()
}
