//! Running `syslat record` in the tests: [`Record`] puts the command line together (`record
//! -o OUT`, flags and targets, `-- CMD`) and its environment, then runs it to its end with
//! the exit status expected, or starts it and waits until it traces; [`record_json`] and
//! [`record_workload`] are its commonest use, a JSON recording's summary; [`record_timed`]
//! also returns the workload's own durations of the calls it timed, an oracle for latency
//! checks ([`own_at_p50`]).

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::{Reaped, start_tracing_with, summary, workload};

/// A `syslat record -o OUT ARGS [-- CMD]` to run, with the environment it runs in.
pub struct Record {
    cmd: Command,
    out: PathBuf,
}

impl Record {
    /// `syslat record -o OUT ARGS` (ARGS: flags and targets, the format among them).
    pub fn to(out: impl AsRef<Path>, args: &[&str]) -> Self {
        let out = out.as_ref().to_path_buf();
        // Built on `syslat()`, which keeps cargo's LD_LIBRARY_PATH from the traced command.
        let mut cmd = crate::syslat(&[]);
        cmd.arg("record").arg("-o").arg(&out).args(args);
        Self { cmd, out }
    }

    /// `syslat record -f json -o OUT ARGS`.
    pub fn json(out: impl AsRef<Path>, args: &[&str]) -> Self {
        let mut r = Self::to(out, &["-f", "json"]);
        r.cmd.args(args);
        r
    }

    /// Then `-- CMD`: the command syslat starts and traces.
    pub fn command(mut self, cmd: &[impl AsRef<OsStr>]) -> Self {
        self.cmd.arg("--").args(cmd);
        self
    }

    /// Then `-- WORKLOAD STEPS`: the test workload (`src/bin/workload.rs`) with `steps`.
    pub fn workload(mut self, steps: &[&str]) -> Self {
        self.cmd.arg("--").arg(workload()).args(steps);
        self
    }

    /// Sets `key` to `value` in syslat's environment, or removes it for `None`.
    pub fn env(mut self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.cmd.env(key, v),
            None => self.cmd.env_remove(key),
        };
        self
    }

    /// The command, for a test that runs it its own way (with other stdio, say).
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// Runs it to its end and asserts that it exits with `code`; returns its output.
    pub fn exits(mut self, code: i32) -> Output {
        let o = self.cmd.output().expect("syslat runs");
        assert_eq!(
            o.status.code(),
            Some(code),
            "{:?}: {}",
            self.cmd,
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Runs it to its end and asserts that it succeeds; returns its output.
    pub fn run(self) -> Output {
        self.exits(0)
    }

    /// Runs it to its end, asserts that it succeeds, and returns OUT's summary.
    pub fn summary(self) -> serde_json::Value {
        let out = self.out.clone();
        self.run();
        summary(&out)
    }

    /// Starts it with its stderr piped and returns once its first stderr line says it is
    /// tracing.
    pub fn start(mut self) -> Reaped {
        start_tracing_with(&mut self.cmd)
    }
}

/// `syslat record -f json -o OUT ARGS -- CMD`, asserting success; returns OUT's summary.
pub fn record_json(out: &Path, args: &[&str], cmd: &[&str]) -> serde_json::Value {
    Record::json(out, args).command(cmd).summary()
}

/// `syslat record -f json -o OUT ARGS -- WORKLOAD STEPS`, asserting success; returns OUT's
/// summary.
pub fn record_workload(out: &Path, args: &[&str], steps: &[&str]) -> serde_json::Value {
    Record::json(out, args).workload(steps).summary()
}

/// `syslat record -f json -o OUT ARGS -- WORKLOAD STEPS` of a `timed-sleep` or `timed-pipe`
/// step, asserting success; returns OUT's summary and the workload's own durations (ns,
/// sorted) of the calls it timed, each bracketed by two reads of the clock the programs
/// read.
pub fn record_timed(out: &Path, args: &[&str], steps: &[&str]) -> (serde_json::Value, Vec<u64>) {
    let o = Record::json(out, args).workload(steps).run();
    (summary(out), own_durations(&o))
}

/// The durations (ns, sorted) a run of the workload's `timed-sleep` or `timed-pipe` step
/// printed on its stdout.
pub fn own_durations(o: &Output) -> Vec<u64> {
    let mut own: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(|t| t.parse().expect("the workload prints durations"))
        .collect();
    own.sort_unstable();
    own
}

/// The workload's own duration (of `own`, sorted) that bounds the p50 of a row holding
/// those calls and `fast` more that are faster than any of them (a process's start-up
/// reads): the row's p50 is its ⌈n/2⌉-th smallest call (HDR's definition), at most the
/// matching timed call's bracket, since every call's time in the kernel, and any part of
/// it, lies inside its bracket (so the row's p50 can exceed it only by the histogram's
/// 0.1 % rounding).
pub fn own_at_p50(own: &[u64], fast: usize) -> u64 {
    let nth = (own.len() + fast).div_ceil(2) - fast;
    own[nth - 1]
}

/// Where a p50 of the calls whose matching bracket is `own` ([`own_at_p50`]) may lie: no
/// larger than it but for the histogram's 0.1 % rounding, and not smaller by more than the
/// bracket's own cost could explain (10 %). Holds however loaded the machine.
pub fn own_range(own: u64) -> std::ops::RangeInclusive<u64> {
    own - own / 10..=own + own / 1000 + 1
}
