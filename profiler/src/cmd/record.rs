//! `syslat record`: trace until Ctrl-C, `-d`, the command's exit or the `-p` targets' exit,
//! then write the summary. With `-i` (or on SIGUSR1) it also dumps each interval: every
//! call lands in exactly one interval (events are folded batch by batch into the current
//! interval, which is swapped out whole), so the intervals add up to the summary exactly.
//! The final dump is always written, whatever ends the recording.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{
    aggregate::{Aggregator, GroupBy, LossCounters, Snapshot, SortKey, StackRef, stacks::StackSet},
    cli::RecordArgs,
    collect::{
        scope::Targets,
        session::{Event, Trace, monotonic_to_unix_offset, unix_ns},
    },
    config::{RecordConfig, Sink},
    output::{
        Format, hdrlog, jsonl,
        slow::{RateLimit, SlowCall, suppressed_line},
        stacks, text,
    },
};

/// Runs `record`; returns the exit status (with `--repeat`, the first non-zero one; 2 when
/// the output could not be written and the data went to stderr instead).
pub async fn run(args: &RecordArgs) -> anyhow::Result<i32> {
    // An output file this run creates and never writes to is removed when the run fails:
    // a failed `record -o F` leaves no empty F behind.
    let created = args.output.as_ref().filter(|p| !p.exists());
    let result = record(args).await;
    if let (Err(_), Some(path)) = (&result, created)
        && std::fs::metadata(path).is_ok_and(|m| m.len() == 0)
    {
        let _ = std::fs::remove_file(path);
    }
    result
}

async fn record(args: &RecordArgs) -> anyhow::Result<i32> {
    let cfg = RecordConfig::from_args(args)?;
    let mut out = Output::new(&cfg);
    let mut status = 0;
    for k in 1..=cfg.repeat {
        // Runs are numbered with --repeat, and after those in the file with --append.
        let run = match cfg.appended_after {
            Some(before) => Some(before + k),
            None => (cfg.repeat > 1).then_some(k),
        };
        let code = run_once(&cfg, run, k == 1, &mut out).await?;
        if status == 0 {
            status = code;
        }
        if code > 128 && matches!(code - 128, libc::SIGINT | libc::SIGTERM) {
            break;
        }
    }
    Ok(if out.failed { 2 } else { status })
}

/// One recording (run `run` of `--repeat`; the `first` one says what is traced).
async fn run_once(
    cfg: &RecordConfig,
    run: Option<u32>,
    first: bool,
    out: &mut Output<'_>,
) -> anyhow::Result<i32> {
    let mut trace = Trace::start_with(&cfg.targets, &cfg.filters, cfg.duration, first)?;
    out.start_run(run, trace.start_unix_ns);
    out.write(&out.header())?;
    let names = matches!(cfg.group, GroupBy::Process | GroupBy::Thread);
    let mut total = Aggregator::with_max_keys(cfg.group, cfg.max_keys);
    let mut cur = Interval::new(
        Aggregator::with_max_keys(cfg.group, cfg.max_keys),
        &trace,
        cfg.sort,
    );
    let mut next_dump = cfg.interval.map(|i| Instant::now() + i);
    let mut slow = SlowLog::new(cfg);
    let code = loop {
        trace.wake_by(next_dump);
        match trace.next().await? {
            Event::Tick => {
                trace.drain(names, |b| cur.agg.fold_batch(b));
                slow.write(&mut trace, out)?;
                if let Some(at) = next_dump.filter(|at| Instant::now() >= *at) {
                    next_dump = cfg.interval.map(|i| at + i);
                    cur.dump(&mut trace, &mut total, out)?;
                }
            }
            Event::DumpRequested => {
                trace.drain(names, |b| cur.agg.fold_batch(b));
                slow.write(&mut trace, out)?;
                cur.dump(&mut trace, &mut total, out)?;
            }
            Event::End(code) => break code,
        }
    };
    trace.drain(names, |b| cur.agg.fold_batch(b));
    slow.write(&mut trace, out)?;
    slow.flush_suppressed(out)?;
    if cfg.interval.is_some() || cur.dumped_any {
        cur.dump(&mut trace, &mut total, out)?;
    } else {
        total.merge(&cur.agg.take());
    }
    let loss = trace.loss();
    let duration_ns = trace.elapsed().as_nanos() as u64;
    let start = trace.start_unix_ns;
    let names = trace.key_names(cfg.group);
    let stacks = trace.stacks().map(|s| {
        s.finish();
        s.summary()
    });
    let containers = trace.container_infos(FINAL_ANSWERS);
    drop(trace); // detach: nothing more is recorded
    let mut snap = total.snapshot_with(
        start,
        duration_ns,
        loss,
        &|k| names.get(&k).cloned(),
        &|k| containers.get(&k).cloned(),
    );
    snap.sort_rows(cfg.sort);
    out.summary(&snap, stacks.as_ref())?;
    Ok(code)
}

/// How long the summary waits for container runtimes still to say a container's name (each
/// question is asked when the container is first seen, and takes milliseconds).
const FINAL_ANSWERS: Duration = Duration::from_secs(3);
/// How long an interval dump waits for them.
const INTERVAL_ANSWERS: Duration = Duration::from_millis(500);

/// Most slow-call lines printed per second; the rest are counted.
const SLOW_LINES_PER_SECOND: u32 = 100;

/// Writes the slow-call log (`--slow`) as calls complete.
struct SlowLog {
    json: bool,
    limit: RateLimit,
    offset: i128,
}

impl SlowLog {
    fn new(cfg: &RecordConfig) -> Self {
        SlowLog {
            json: cfg.format == Format::Json,
            limit: RateLimit::new(SLOW_LINES_PER_SECOND),
            offset: monotonic_to_unix_offset(),
        }
    }

    fn write(&mut self, trace: &mut Trace, out: &mut Output<'_>) -> anyhow::Result<()> {
        let calls = trace.take_slow();
        if calls.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for c in calls {
            let unix = (c.exit_ns as i128 + self.offset).max(0) as u64;
            if !self.limit.allow(unix) {
                continue;
            }
            let ev = c.call;
            let comm = trace.comms.get(ev.tgid).unwrap_or_else(|| "?".into());
            let frames = match (trace.stacks(), c.stack.user) {
                (Some(s), user) if user != profiler_common::NO_STACK => {
                    let (u, k) = s.resolve(
                        ev.tgid,
                        StackRef {
                            user,
                            kernel: c.stack.kernel,
                        },
                    );
                    let list = |id| -> Vec<String> {
                        s.frames(id).iter().map(|f| f.to_string()).collect()
                    };
                    Some((list(u), list(k)))
                }
                _ => None,
            };
            let line = SlowCall::new(
                unix,
                ev.tgid,
                ev.tid,
                comm,
                u32::from(ev.nr),
                ev.duration_ns,
                ev.ret,
                c.args,
            )
            .with_path(&c.path)
            .with_stacks(frames);
            text.push_str(&if self.json { line.json() } else { line.text() });
        }
        self.flush_suppressed_into(&mut text);
        out.write_log(&text)
    }

    fn flush_suppressed_into(&mut self, text: &mut String) {
        let n = self.limit.take_suppressed();
        if n > 0 {
            text.push_str(&suppressed_line(n, self.json));
        }
    }

    fn flush_suppressed(&mut self, out: &mut Output<'_>) -> anyhow::Result<()> {
        let mut text = String::new();
        self.flush_suppressed_into(&mut text);
        out.write_log(&text)
    }
}

/// The interval being filled.
struct Interval {
    agg: Aggregator,
    start_unix_ns: u64,
    started: Instant,
    loss_before: LossCounters,
    dumped_any: bool,
    sort: SortKey,
}

impl Interval {
    fn new(agg: Aggregator, trace: &Trace, sort: SortKey) -> Self {
        Interval {
            agg,
            start_unix_ns: trace.start_unix_ns,
            started: Instant::now(),
            loss_before: LossCounters::default(),
            dumped_any: false,
            sort,
        }
    }

    /// Writes the current interval, adds it to `total`, and starts the next one.
    fn dump(
        &mut self,
        trace: &mut Trace,
        total: &mut Aggregator,
        out: &mut Output<'_>,
    ) -> anyhow::Result<()> {
        let part = self.agg.take();
        let loss_now = trace.loss();
        let names = trace.namer(part.group());
        let containers = trace.container_infos(INTERVAL_ANSWERS);
        let now = Instant::now();
        let mut snap = part.snapshot_with(
            self.start_unix_ns,
            now.duration_since(self.started).as_nanos() as u64,
            loss_now.since(&self.loss_before),
            &|k| names.name(k),
            &|k| containers.get(&k).cloned(),
        );
        snap.sort_rows(self.sort);
        total.merge(&part);
        self.start_unix_ns = unix_ns(std::time::SystemTime::now());
        self.started = now;
        self.loss_before = loss_now;
        self.dumped_any = true;
        out.interval(&snap)
    }
}

/// Where dumps go, in the chosen format. Without `-o`: stdout, or stderr when a command is
/// traced (its own output owns stdout, as with `strace -c`). When the output file cannot be
/// written (disk full, file removed), everything from then on goes to stderr.
struct Output<'a> {
    cfg: &'a RecordConfig,
    base_unix_ns: u64,
    intervals: u64,
    run: Option<u32>,
    /// The output file failed once (said on stderr); dumps go to stderr since.
    failed: bool,
}

impl<'a> Output<'a> {
    fn new(cfg: &'a RecordConfig) -> Self {
        Output {
            cfg,
            base_unix_ns: 0,
            intervals: 0,
            run: None,
            failed: false,
        }
    }

    /// Starts run `run` of `--repeat` (`None` without it), whose clock starts at `base_unix_ns`.
    fn start_run(&mut self, run: Option<u32>, base_unix_ns: u64) {
        self.run = run;
        self.base_unix_ns = base_unix_ns;
        self.intervals = 0;
    }

    fn header(&self) -> String {
        match self.cfg.format {
            Format::Hdrlog => hdrlog::header(self.base_unix_ns, self.cfg.group),
            Format::Text | Format::Json | Format::Folded => String::new(),
        }
    }

    fn interval(&mut self, snap: &Snapshot) -> anyhow::Result<()> {
        self.intervals += 1;
        let body = match self.cfg.format {
            Format::Text => {
                let ts = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_nanos(snap.start_unix_ns),
                );
                format!(
                    "--- interval {} from {ts} ---\n{}\n",
                    self.intervals,
                    text::render(snap, 0)
                )
            }
            Format::Json => jsonl::line_of_run("interval", snap, self.run),
            Format::Hdrlog => hdrlog::interval(snap, self.base_unix_ns),
            // Rejected by the config: the stacks are written once, for the whole recording.
            Format::Folded => String::new(),
        };
        self.write(&body)
    }

    fn summary(&mut self, snap: &Snapshot, stacks: Option<&StackSet>) -> anyhow::Result<()> {
        let paths = stacks.map(stacks::paths_text).unwrap_or_default();
        let body = match self.cfg.format {
            Format::Text if self.intervals > 0 || self.run.is_some() => {
                let run = self.run.map(|k| format!(" of run {k}")).unwrap_or_default();
                format!("--- summary{run} ---\n{}{paths}", text::render(snap, 0))
            }
            Format::Text => text::render(snap, 0) + &paths,
            Format::Json => jsonl::line_with_stacks("summary", snap, self.run, stacks),
            Format::Folded => {
                let set = stacks.cloned().unwrap_or_default();
                // Said on stderr: the folded lines themselves have no room for notes.
                let note = stacks::short_note(&set);
                if !note.is_empty() {
                    eprint!("syslat: {note}");
                }
                if set.folded_calls() > 0 {
                    eprintln!(
                        "syslat: {} calls of stacks beyond the first {} distinct ones are \
                         folded into [other stacks]",
                        set.folded_calls(),
                        crate::aggregate::stacks::DEFAULT_MAX_STACKS
                    );
                }
                set.folded(self.cfg.stacks_weight)
            }
            // The intervals already hold every call; without any, the whole recording is one.
            Format::Hdrlog if self.intervals > 0 => String::new(),
            Format::Hdrlog => hdrlog::interval(snap, self.base_unix_ns),
        };
        self.write(&body)
    }

    /// Writes log lines (the slow-call log): into the output with text and JSON, to
    /// stderr with hdrlog and folded (whose files hold histograms or stacks only).
    fn write_log(&mut self, text: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if matches!(self.cfg.format, Format::Hdrlog | Format::Folded) {
            return to_stderr(text);
        }
        self.write(text)
    }

    /// Writes one whole dump with a single write and flushes it, so a crash loses at most
    /// the dump in progress and never leaves half a line behind an earlier dump.
    fn write(&mut self, body: &str) -> anyhow::Result<()> {
        if body.is_empty() {
            return Ok(());
        }
        match &self.cfg.sink {
            Sink::File(path, file) if !self.failed => {
                let Err(err) = write_file(path, file, body) else {
                    return Ok(());
                };
                // Nothing recorded is lost: say so once, and the data goes to stderr instead
                // (with what the removed file held: only this process can still read it).
                self.failed = true;
                eprintln!(
                    "syslat: failed to write {}: {err}; writing to stderr instead",
                    path.display()
                );
                if matches!(err, FileError::Removed) {
                    let _ = copy_removed(file, &mut std::io::stderr().lock());
                }
                to_stderr(body)
            }
            Sink::File(..) => to_stderr(body),
            Sink::Stdout if matches!(self.cfg.targets, Targets::Command(_)) => to_stderr(body),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(body.as_bytes())
                    .and_then(|_| out.flush())
                    .context("failed to write to stdout")
            }
        }
    }
}

/// Writes `text` to stderr, where dumps go when stdout belongs to the traced command or the
/// output file failed.
fn to_stderr(text: &str) -> anyhow::Result<()> {
    std::io::stderr()
        .write_all(text.as_bytes())
        .context("failed to write to stderr")
}

/// Why the output file could not take a dump.
#[derive(Debug, thiserror::Error)]
enum FileError {
    /// The file was unlinked while syslat held it open: writes would succeed and be lost.
    #[error("the file was removed")]
    Removed,
    /// The write itself failed (disk full, I/O error, quota).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Appends `body` to the output file `path` and flushes it, unless the file has been
/// removed (no link left, and `path` is not it: some filesystems report no links).
fn write_file(path: &std::path::Path, file: &std::fs::File, body: &str) -> Result<(), FileError> {
    use std::os::unix::fs::MetadataExt as _;
    let held = file.metadata()?;
    if held.nlink() == 0 {
        let same = |m: std::fs::Metadata| m.dev() == held.dev() && m.ino() == held.ino();
        if !std::fs::metadata(path).is_ok_and(same) {
            return Err(FileError::Removed);
        }
    }
    let mut f = file;
    f.write_all(body.as_bytes())?;
    f.flush()?;
    Ok(())
}

/// Copies what a removed output file holds to `to`, reading it back through
/// `/proc/self/fd` (the file was opened write-only, and its name is gone).
fn copy_removed(file: &std::fs::File, to: &mut impl Write) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd as _;
    let mut held = std::fs::File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    std::io::copy(&mut held, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_output_is_detected_and_read_back() {
        let dir = std::env::temp_dir().join(format!("syslat-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let file = std::fs::File::create(&path).unwrap();
        write_file(&path, &file, "first\n").unwrap();
        // A rename keeps the data reachable: not an error.
        let moved = dir.join("moved");
        std::fs::rename(&path, &moved).unwrap();
        write_file(&path, &file, "second\n").unwrap();
        std::fs::remove_file(&moved).unwrap();
        assert!(matches!(
            write_file(&moved, &file, "third\n"),
            Err(FileError::Removed)
        ));
        let mut held = Vec::new();
        copy_removed(&file, &mut held).unwrap();
        assert_eq!(held, b"first\nsecond\n");
        let _ = std::fs::remove_dir(&dir);
    }
}
