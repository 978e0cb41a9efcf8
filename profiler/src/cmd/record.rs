//! `syslat record`: trace until Ctrl-C, `-d`, the command's exit or the `-p` targets' exit,
//! then write the summary. The final dump is always written, whatever ends the recording.

use std::io::Write;

use anyhow::Context as _;

use super::trace::{Event, Trace};
use crate::{
    aggregate::{Aggregator, GroupBy, Snapshot},
    cli::RecordArgs,
    config::{RecordConfig, Sink, Targets},
    output::{Format, jsonl, text},
};

/// Runs `record`; returns the exit status.
pub async fn run(args: &RecordArgs) -> anyhow::Result<i32> {
    let cfg = RecordConfig::from_args(args)?;
    let mut trace = Trace::start(&cfg.targets, cfg.duration, true)?;
    let mut agg = Aggregator::new(cfg.group);
    let names = cfg.group == GroupBy::Process;
    let code = loop {
        match trace.next().await? {
            Event::Tick | Event::DumpRequested => trace.drain(names, |evs| agg.fold(evs)),
            Event::End(code) => break code,
        }
    };
    trace.drain(names, |evs| agg.fold(evs));
    let loss = trace.loss();
    let duration_ns = trace.elapsed().as_nanos() as u64;
    let start = trace.start_unix_ns;
    let comms = std::mem::take(&mut trace.comms);
    drop(trace); // detach: nothing more is recorded
    let snap = agg.snapshot(start, duration_ns, loss, &|tgid| comms.cached(tgid));
    write_output(&cfg, &snap, matches!(cfg.targets, Targets::Command(_)))?;
    Ok(code)
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
