//! Validated settings built from the flags. Every bad-input error is raised here, before
//! anything is loaded into the kernel, as one line that names the bad value.
#![forbid(unsafe_code)]

use std::{fs::File, path::PathBuf, time::Duration};

use crate::{
    aggregate::{GroupBy, SortKey, stacks::Weight},
    cli::{
        By, CompareArgs, RecordArgs, ReportArgs, ReportFormat, Sort, StacksWeight, TargetArgs,
        TopArgs,
    },
    collect::{
        cgroup, container, launch,
        scope::{Filters, Targets},
        target,
    },
    compare::Thresholds,
    output::Format,
};

/// A bad flag value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `-p` of a pid that does not exist.
    #[error("no such process: {0}")]
    NoSuchProcess(u32),
    /// `-p` of a kernel thread.
    #[error("pid {0} is a kernel thread: kernel threads make no syscalls, nothing to trace")]
    KernelThread(u32),
    /// `-p` of a thread id.
    #[error("pid {0} is a thread, not a process (use the process id)")]
    NotAProcess(u32),
    /// Two kinds of target.
    #[error("give one kind of target: -p, -t, -c, --cgroup, --container or -- CMD")]
    TooManyTargets,
    /// `-t` of a thread that does not exist.
    #[error("no such thread: {0}")]
    NoSuchThread(u32),
    /// `-c` with a bad name.
    #[error("invalid process name '{0}': the kernel's names are 1 to 15 characters")]
    CommLength(String),
    /// `--cgroup` problems.
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    /// `--container` problems.
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    /// `--by container` without a cgroup v2 hierarchy.
    #[error("--by container")]
    ByContainer(#[source] cgroup::CgroupError),
    /// `-s` problems.
    #[error("{0}")]
    Syscalls(String),
    /// `-- CMD` that cannot be run.
    #[error(transparent)]
    Command(#[from] launch::LaunchError),
    /// Zero duration.
    #[error("invalid duration: must be greater than zero")]
    ZeroDuration,
    /// `--repeat` without a command, or 0.
    #[error("--repeat N needs N >= 1 and a command to run (-- CMD)")]
    Repeat,
    /// `--listen` is not an address.
    #[error("invalid listen address '{0}': expected ADDR:PORT, e.g. 127.0.0.1:9876")]
    Listen(String),
    /// `--max-series 0`.
    #[error("invalid --max-series: must be at least 1")]
    MaxSeries,
    /// `--append` of an HdrHistogram log (one start time per file).
    #[error("--append works with -f json or text (an hdrlog file has one start time)")]
    AppendHdrlog,
    /// `-f folded` without `--stacks`, or with `-i`/`--append`.
    #[error("{0}")]
    Folded(&'static str),
    /// `--stacks` with `-f hdrlog`.
    #[error("--stacks needs -f text, json or folded (an hdrlog file holds histograms only)")]
    StacksHdrlog,
    /// `top -i 0`.
    #[error("invalid interval: must be greater than zero")]
    ZeroInterval,
    /// `top -n 0`.
    #[error("invalid count: must be at least 1")]
    ZeroCount,
    /// `report --plot` without `-f svg`.
    #[error("--plot chooses the plot of -f svg: add -f svg, or leave --plot out")]
    PlotWithoutSvg,
    /// `report --percentiles` with a value outside (0, 100].
    #[error("invalid percentile '{0}': give numbers in (0, 100], e.g. 50,99,99.9")]
    Percentile(String),
    /// `compare` given neither two files nor `--base` and `--new`.
    #[error("give BASE NEW, or --base FILE.. --new FILE..")]
    CompareFiles,
    /// `compare --threshold` problems.
    #[error("{0}")]
    Thresholds(String),
    /// The output cannot be written.
    #[error("cannot write {}", .path.display())]
    Output {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Validates the target flags (at most one kind of target).
pub fn targets(t: &TargetArgs) -> Result<Targets, ConfigError> {
    let kinds = [
        !t.pids.is_empty(),
        !t.tids.is_empty(),
        !t.comms.is_empty(),
        t.cgroup.is_some(),
        t.container.is_some(),
        !t.command.is_empty(),
    ];
    if kinds.iter().filter(|k| **k).count() > 1 {
        return Err(ConfigError::TooManyTargets);
    }
    if !t.pids.is_empty() {
        for &p in &t.pids {
            if !target::alive(p) {
                return Err(ConfigError::NoSuchProcess(p));
            }
            if !target::is_process(p) {
                return Err(ConfigError::NotAProcess(p));
            }
            if target::is_kernel_thread(p) {
                return Err(ConfigError::KernelThread(p));
            }
        }
        return Ok(Targets::Pids(t.pids.clone()));
    }
    if !t.tids.is_empty() {
        for &tid in &t.tids {
            if !target::alive(tid) {
                return Err(ConfigError::NoSuchThread(tid));
            }
        }
        return Ok(Targets::Tids(t.tids.clone()));
    }
    if !t.comms.is_empty() {
        for c in &t.comms {
            if c.is_empty() || c.len() > 15 {
                return Err(ConfigError::CommLength(c.clone()));
            }
        }
        return Ok(Targets::Comms(t.comms.clone()));
    }
    if let Some(path) = &t.cgroup {
        return Ok(Targets::Cgroup(cgroup::resolve(path)?));
    }
    if let Some(id) = &t.container {
        let path = container::cgroup_of(id)?;
        return Ok(Targets::Cgroup(cgroup::resolve(&path)?));
    }
    if !t.command.is_empty() {
        launch::resolve(&t.command[0])?;
        return Ok(Targets::Command(t.command.clone()));
    }
    Ok(Targets::All)
}

/// Validates `-s` and `--errors-only`.
pub fn filters(t: &TargetArgs) -> Result<Filters, ConfigError> {
    let syscalls = syscall_list(t.syscalls.as_deref())?;
    Ok(Filters {
        syscalls,
        errors_only: t.errors_only,
        slow: None,
        by_cgroup: false,
        by_container: false,
        ring_bytes: t.ring_buffer,
        kill_after: t.kill_after,
        stacks: None,
    })
}

/// Where the output goes.
#[derive(Debug)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A file, created (truncated) while validating, so an unwritable path fails early.
    File(PathBuf, File),
}

/// Validated `record` settings.
#[derive(Debug)]
pub struct RecordConfig {
    /// What to trace.
    pub targets: Targets,
    /// Which calls.
    pub filters: Filters,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Output format.
    pub format: Format,
    /// Row key.
    pub group: GroupBy,
    /// Cap on per-process keys.
    pub max_keys: usize,
    /// Output destination.
    pub sink: Sink,
    /// Interval between dumps.
    pub interval: Option<Duration>,
    /// Runs of the command (`--repeat`).
    pub repeat: u32,
    /// With `--append`: the runs already in the output file, after which this one is
    /// numbered; `None` without `--append`.
    pub appended_after: Option<u32>,
    /// Row order.
    pub sort: SortKey,
    /// What a folded stack's value counts.
    pub stacks_weight: Weight,
}

/// The aggregate's row order for `--sort`.
pub fn sort_key(s: Sort) -> SortKey {
    match s {
        Sort::Total => SortKey::Total,
        Sort::Calls => SortKey::Calls,
        Sort::Oncpu => SortKey::Oncpu,
        Sort::Runq => SortKey::Runq,
        Sort::Blocked => SortKey::Blocked,
    }
}

impl RecordConfig {
    /// Validates `record`'s flags.
    pub fn from_args(a: &RecordArgs) -> Result<Self, ConfigError> {
        let targets = targets(&a.target)?;
        if a.repeat == 0 || (a.repeat > 1 && a.target.command.is_empty()) {
            return Err(ConfigError::Repeat);
        }
        let mut filters = filters(&a.target)?;
        filters.slow = a.slow;
        filters.by_cgroup = a.by == By::Cgroup;
        filters.by_container = a.by == By::Container;
        if filters.by_container {
            cgroup::v2_root().map_err(ConfigError::ByContainer)?;
        }
        if a.duration == Some(Duration::ZERO)
            || a.interval == Some(Duration::ZERO)
            || a.slow == Some(Duration::ZERO)
        {
            return Err(ConfigError::ZeroDuration);
        }
        if a.append && a.format == Format::Hdrlog {
            return Err(ConfigError::AppendHdrlog);
        }
        filters.stacks = a.stacks;
        if a.format == Format::Folded {
            if a.stacks.is_none() {
                return Err(ConfigError::Folded(
                    "-f folded writes stacks: add --stacks (or --stacks=DURATION)",
                ));
            }
            if a.interval.is_some() {
                return Err(ConfigError::Folded(
                    "-f folded writes the stacks of the whole recording once: drop -i",
                ));
            }
            if a.append {
                return Err(ConfigError::Folded(
                    "--append works with -f json or text (folded lines have no runs)",
                ));
            }
        }
        if a.stacks.is_some() && a.format == Format::Hdrlog {
            return Err(ConfigError::StacksHdrlog);
        }
        let appended_after = match (&a.output, a.append) {
            (Some(p), true) => Some(runs_in(p, a.format)),
            _ => None,
        };
        let sink = match &a.output {
            None => Sink::Stdout,
            Some(p) => Sink::File(p.clone(), open_output(p, a.append)?),
        };
        Ok(RecordConfig {
            targets,
            filters,
            duration: a.duration,
            format: a.format,
            group: group_by(a.by),
            max_keys: a.max_keys,
            sink,
            interval: a.interval,
            repeat: a.repeat,
            appended_after,
            sort: sort_key(a.sort),
            stacks_weight: stacks_weight(a.stacks_weight),
        })
    }
}

/// The aggregate's folded-stack weight for `--stacks-weight`.
pub fn stacks_weight(w: StacksWeight) -> Weight {
    match w {
        StacksWeight::Time => Weight::Time,
        StacksWeight::Count => Weight::Count,
    }
}

/// The aggregation key for `--by`.
pub fn group_by(by: By) -> GroupBy {
    match by {
        By::Syscall => GroupBy::Syscall,
        By::Process => GroupBy::Process,
        By::Thread => GroupBy::Thread,
        By::Cgroup => GroupBy::Cgroup,
        By::Container => GroupBy::Container,
    }
}

/// Validated `serve` settings.
#[derive(Debug)]
pub struct ServeConfig {
    /// What to trace.
    pub targets: Targets,
    /// Which calls.
    pub filters: Filters,
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// Label by process name or container too.
    pub group: GroupBy,
    /// Cardinality cap.
    pub max_series: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

impl ServeConfig {
    /// Validates `serve`'s flags.
    pub fn from_args(a: &crate::cli::ServeArgs) -> Result<Self, ConfigError> {
        let listen = a
            .listen
            .parse()
            .map_err(|_| ConfigError::Listen(a.listen.clone()))?;
        if a.max_series == 0 {
            return Err(ConfigError::MaxSeries);
        }
        if a.duration == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration);
        }
        let by_container = a.by == crate::cli::ServeBy::Container;
        if by_container {
            cgroup::v2_root().map_err(ConfigError::ByContainer)?;
        }
        Ok(ServeConfig {
            targets: targets(&a.target)?,
            filters: Filters {
                by_cgroup: false,
                by_container,
                ..filters(&a.target)?
            },
            listen,
            group: group_by(a.by.into()),
            max_series: a.max_series,
            duration: a.duration,
        })
    }
}

/// Validated `top` settings.
#[derive(Debug)]
pub struct TopConfig {
    /// What to trace.
    pub targets: Targets,
    /// Which calls (with `--stacks`).
    pub filters: Filters,
    /// Time between frames.
    pub interval: Duration,
    /// With `-b`: stop after this many frames.
    pub count: Option<u64>,
}

impl TopConfig {
    /// Validates `top`'s flags.
    pub fn from_args(a: &TopArgs) -> Result<Self, ConfigError> {
        let targets = targets(&a.target)?;
        let mut filters = filters(&a.target)?;
        filters.stacks = a.stacks;
        if a.interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        if a.count == Some(0) {
            return Err(ConfigError::ZeroCount);
        }
        Ok(TopConfig {
            targets,
            filters,
            interval: a.interval,
            count: a.count,
        })
    }
}

/// Validated `report` settings (the rest of its flags need no check).
#[derive(Debug)]
pub struct ReportConfig {
    /// The percentile columns of the text table.
    pub percentiles: Vec<f64>,
    /// Only these syscall numbers (`-s`).
    pub only: Option<Vec<u32>>,
    /// `-o`'s file, created while validating; `None` for stdout.
    pub output: Option<File>,
}

impl ReportConfig {
    /// Validates `report`'s flags.
    pub fn from_args(a: &ReportArgs) -> Result<Self, ConfigError> {
        let percentiles = parse_percentiles(&a.percentiles)?;
        if a.plot.is_some() && a.format != ReportFormat::Svg {
            return Err(ConfigError::PlotWithoutSvg);
        }
        let only = syscall_list(a.syscalls.as_deref())?;
        let output = match &a.output {
            Some(p) => Some(open_output(p, false)?),
            None => None,
        };
        Ok(ReportConfig {
            percentiles,
            only,
            output,
        })
    }
}

/// Validated `compare` settings (the rest of its flags need no check).
#[derive(Debug)]
pub struct CompareConfig {
    /// The base recordings.
    pub base: Vec<PathBuf>,
    /// The new recordings.
    pub new: Vec<PathBuf>,
    /// The thresholds (`--threshold` over the defaults).
    pub thresholds: Thresholds,
    /// Only these syscall numbers (`-s`).
    pub only: Option<Vec<u32>>,
}

impl CompareConfig {
    /// Validates `compare`'s flags.
    pub fn from_args(a: &CompareArgs) -> Result<Self, ConfigError> {
        let (base, new) = match (a.files.as_slice(), a.base.is_empty(), a.new.is_empty()) {
            ([b, n], true, true) => (vec![b.clone()], vec![n.clone()]),
            ([], false, false) => (a.base.clone(), a.new.clone()),
            _ => return Err(ConfigError::CompareFiles),
        };
        let thresholds = match &a.threshold {
            Some(t) => Thresholds::parse(t).map_err(ConfigError::Thresholds)?,
            None => Thresholds::default(),
        };
        Ok(CompareConfig {
            base,
            new,
            thresholds,
            only: syscall_list(a.syscalls.as_deref())?,
        })
    }
}

/// `-s LIST` as syscall numbers, if given.
fn syscall_list(list: Option<&str>) -> Result<Option<Vec<u32>>, ConfigError> {
    list.map(|l| crate::syscalls::parse_list(l).map_err(ConfigError::Syscalls))
        .transpose()
}

/// `--percentiles`: each in (0, 100].
fn parse_percentiles(list: &[String]) -> Result<Vec<f64>, ConfigError> {
    let mut out = Vec::new();
    for s in list {
        match s.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => out.push(p),
            _ => return Err(ConfigError::Percentile(s.clone())),
        }
    }
    Ok(out)
}

/// Opens `path` for writing: appending (interval dumps), or created afresh.
/// How many recordings (runs) the file at `path` already holds: its summaries, or one if it
/// has content but no summary line (a recording cut short). A missing file holds none.
fn runs_in(path: &std::path::Path, format: Format) -> u32 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut summaries = 0u32;
    let mut any = false;
    for line in std::io::BufRead::lines(std::io::BufReader::new(file)).map_while(Result::ok) {
        any |= !line.trim().is_empty();
        let summary = match format {
            Format::Json => line.starts_with(r#"{"type":"summary""#),
            Format::Text | Format::Hdrlog | Format::Folded => line.starts_with("--- summary"),
        };
        summaries += u32::from(summary);
    }
    if summaries == 0 && any { 1 } else { summaries }
}

/// Opens `record -o`'s file: started afresh, or with `append` added to at its end.
pub fn open_output(path: &std::path::Path, append: bool) -> Result<File, ConfigError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true);
    if append {
        opts.append(true);
    } else {
        opts.truncate(true);
    }
    opts.open(path).map_err(|source| ConfigError::Output {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// The subcommand `pre` followed by `args` parses to.
    fn command(pre: &[&str], args: &[&str]) -> Command {
        Cli::try_parse_from([pre, args].concat())
            .expect("parses")
            .command
    }

    fn record(args: &[&str]) -> Result<RecordConfig, ConfigError> {
        let Command::Record(r) = command(&["syslat", "record"], args) else {
            panic!("not record")
        };
        RecordConfig::from_args(&r)
    }

    #[test]
    fn targets() {
        assert_eq!(record(&[]).unwrap().targets, Targets::All);
        let me = std::process::id();
        assert_eq!(
            record(&["-p", &me.to_string()]).unwrap().targets,
            Targets::Pids(vec![me])
        );
        assert_eq!(
            record(&["--", "true"]).unwrap().targets,
            Targets::Command(vec!["true".into()])
        );
    }

    #[test]
    fn bad_inputs() {
        assert!(matches!(
            record(&["-p", "4000000000"]).unwrap_err(),
            ConfigError::NoSuchProcess(4_000_000_000)
        ));
        assert!(matches!(
            record(&["-p", "1", "--", "true"]).unwrap_err(),
            ConfigError::TooManyTargets
        ));
        assert!(matches!(
            record(&["-c", "a", "-t", "1"]).unwrap_err(),
            ConfigError::TooManyTargets
        ));
        assert!(matches!(
            record(&["-c", "sixteen-chars-xx"]).unwrap_err(),
            ConfigError::CommLength(ref v) if v == "sixteen-chars-xx"
        ));
        assert!(matches!(
            record(&["-t", "3999998"]).unwrap_err(),
            ConfigError::NoSuchThread(3_999_998)
        ));
        assert!(matches!(
            record(&["-s", "opnat"]).unwrap_err(),
            ConfigError::Syscalls(_)
        ));
        assert!(
            record(&["--cgroup", "/tmp"])
                .unwrap_err()
                .to_string()
                .contains("not a cgroup v2 directory")
        );
        assert_eq!(
            record(&["--", "no-such-cmd-xyz"]).unwrap_err().to_string(),
            "command not found: no-such-cmd-xyz"
        );
        assert!(matches!(
            record(&["-d", "0s"]).unwrap_err(),
            ConfigError::ZeroDuration
        ));
        let e = record(&["-o", "/nonexistent-dir/x.json"]).unwrap_err();
        assert_eq!(e.to_string(), "cannot write /nonexistent-dir/x.json");
        assert!(matches!(
            e,
            ConfigError::Output { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound
        ));
    }

    fn serve(args: &[&str]) -> Result<ServeConfig, ConfigError> {
        let Command::Serve(s) = command(&["syslat", "serve"], args) else {
            panic!("not serve")
        };
        ServeConfig::from_args(&s)
    }

    #[test]
    fn serve_settings() {
        let c = serve(&[]).unwrap();
        assert_eq!(
            c.listen.to_string(),
            "127.0.0.1:9876",
            "only this machine by default"
        );
        assert_eq!(
            serve(&["--listen", "[::1]:80"]).unwrap().listen.to_string(),
            "[::1]:80"
        );
        assert!(matches!(
            serve(&["--listen", "nope"]).unwrap_err(),
            ConfigError::Listen(ref v) if v == "nope"
        ));
        assert!(matches!(
            serve(&["--max-series", "0"]).unwrap_err(),
            ConfigError::MaxSeries
        ));
    }

    fn top(args: &[&str]) -> Result<TopConfig, ConfigError> {
        let Command::Top(t) = command(&["syslat", "top"], args) else {
            panic!("not top")
        };
        TopConfig::from_args(&t)
    }

    fn report(args: &[&str]) -> Result<ReportConfig, ConfigError> {
        let Command::Report(r) = command(&["syslat", "report", "x.json"], args) else {
            panic!("not report")
        };
        ReportConfig::from_args(&r)
    }

    fn compare(args: &[&str]) -> Result<CompareConfig, ConfigError> {
        let Command::Compare(c) = command(&["syslat", "compare"], args) else {
            panic!("not compare")
        };
        CompareConfig::from_args(&c)
    }

    #[test]
    fn top_report_compare_settings() {
        assert!(matches!(top(&["-i", "0s"]), Err(ConfigError::ZeroInterval)));
        assert!(matches!(
            top(&["-b", "-n", "0"]),
            Err(ConfigError::ZeroCount)
        ));
        assert!(matches!(
            report(&["--plot", "heatmap"]),
            Err(ConfigError::PlotWithoutSvg)
        ));
        assert_eq!(
            report(&["--percentiles", "50,0"]).unwrap_err().to_string(),
            "invalid percentile '0': give numbers in (0, 100], e.g. 50,99,99.9"
        );
        for bad in ["x", "101"] {
            assert!(matches!(
                report(&["--percentiles", bad]),
                Err(ConfigError::Percentile(ref v)) if v == bad
            ));
        }
        assert_eq!(
            report(&["--percentiles", "50,99.99"]).unwrap().percentiles,
            vec![50.0, 99.99]
        );
        for args in [&["a.json"][..], &["a", "--base", "b", "--new", "c"]] {
            assert!(
                matches!(compare(args), Err(ConfigError::CompareFiles)),
                "{args:?}"
            );
        }
        let c = compare(&["a", "b"]).unwrap();
        assert_eq!(
            (c.base, c.new),
            (vec![PathBuf::from("a")], vec![PathBuf::from("b")])
        );
    }

    #[test]
    fn sizes() {
        use crate::cli::parse_size;
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        for bad in ["3M", "1K", "2G", "x", "-4K", "99999999999999999999K"] {
            assert!(
                parse_size(bad).unwrap_err().starts_with("invalid size"),
                "{bad}"
            );
        }
    }

    #[test]
    fn clap_rejects_bad_values() {
        for args in [
            vec!["syslat", "record", "-d", "soon"],
            vec!["syslat", "record", "-p", "abc"],
            vec!["syslat", "record", "-f", "xml"],
            vec!["syslat", "record", "--by", "color"],
            // serve labels by syscall, process or container; compare by syscall or process.
            vec!["syslat", "serve", "--by", "thread"],
            vec!["syslat", "serve", "--by", "cgroup"],
            vec!["syslat", "compare", "a", "b", "--by", "thread"],
            vec!["syslat", "compare", "a", "b", "--by", "cgroup"],
            vec!["syslat", "compare", "a", "b", "--by", "container"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }
}
