//! Command-line flags (clap derive). No validation beyond parsing: see [`crate::config`].
#![forbid(unsafe_code)]

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    output::Format,
    units::{parse_duration, parse_percent},
};

/// syslat: exact syscall counts and latency percentiles, per syscall and per process, via eBPF.
#[derive(Debug, Parser)]
#[command(name = "syslat", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, including the verifier log on failure).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record syscall latencies of a command, of running processes, or of the whole system,
    /// and print a summary when done (Ctrl-C, -d elapsed, or the command exits).
    Record(RecordArgs),
    /// Read recordings (JSON Lines or HdrHistogram logs from `record`), merge their
    /// histograms exactly, and print the table, JSON, or plots (HTML, SVG).
    Report(ReportArgs),
    /// A live, top-style view of syscall latencies per syscall and per process; batch mode
    /// (`-b`, or when stdout is not a terminal) prints the table every interval.
    Top(TopArgs),
    /// Compare recordings of a base and a new revision; exit 1 when something regressed
    /// beyond its threshold and beyond noise (a CI gate).
    Compare(CompareArgs),
    /// Serve live metrics over HTTP in the Prometheus text format (and OpenMetrics on request):
    /// `/metrics`, plus a short page at `/`.
    Serve(ServeArgs),
    /// Probe what this kernel's BPF supports, and print which mechanism syslat uses for
    /// each feature (with the fallbacks older kernels get) and what it costs; exit 2 when
    /// syslat cannot trace here.
    Doctor,
    /// Print a shell completion script to stdout, e.g. `syslat completions bash >
    /// ~/.local/share/bash-completion/completions/syslat`.
    Completions(CompletionsArgs),
    /// Write man pages generated from these flags (`syslat.1`, `syslat-record.1`, ...) for
    /// packaging.
    #[command(hide = true)]
    Man(ManArgs),
}

/// `syslat completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `syslat man` (hidden: packaging runs it).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The pages' date, YYYY-MM-DD (default: today, UTC); packaging passes the release
    /// commit's date, so the same source gives the same pages.
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
}

/// How rows are keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// One row per syscall.
    Syscall,
    /// One row per process and syscall.
    Process,
    /// One row per thread and syscall.
    Thread,
    /// One row per cgroup v2 and syscall (containers, services).
    Cgroup,
    /// One row per container (id, name, image; Kubernetes pod UID) and syscall; the
    /// processes outside any container are one host row.
    Container,
}

/// How `compare` keys rows: by syscall, or by process name and syscall (pids differ
/// between runs; threads, cgroups and containers are not offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ByName {
    /// One row per syscall.
    Syscall,
    /// One row per process name and syscall.
    Process,
}

impl From<ByName> for By {
    fn from(b: ByName) -> By {
        match b {
            ByName::Syscall => By::Syscall,
            ByName::Process => By::Process,
        }
    }
}

/// How `serve` labels series: by syscall, by process name, or by container (pids differ
/// between runs and make no Prometheus labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServeBy {
    /// Label `syscall`.
    Syscall,
    /// Labels `syscall`, `comm`.
    Process,
    /// Labels `syscall`, `container_id`, `container_name`, `pod_uid`.
    Container,
}

impl From<ServeBy> for By {
    fn from(b: ServeBy) -> By {
        match b {
            ServeBy::Syscall => By::Syscall,
            ServeBy::Process => By::Process,
            ServeBy::Container => By::Container,
        }
    }
}

/// Which processes and calls to trace (shared by the tracing subcommands). The filters are
/// applied in the kernel: an untargeted process pays only the filter check.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Trace these running processes (comma-separated pids) and their descendants.
    #[arg(short = 'p', long = "pid", value_delimiter = ',', value_name = "PID")]
    pub pids: Vec<u32>,
    /// Trace only these threads (comma-separated thread ids).
    #[arg(short = 't', long = "tid", value_delimiter = ',', value_name = "TID")]
    pub tids: Vec<u32>,
    /// Trace processes whose command name is NAME: the kernel's name, at most 15 characters
    /// (as in /proc/PID/comm and `ps -o comm`); repeatable. Processes that start later with
    /// that name (at exec) are picked up.
    #[arg(short = 'c', long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,
    /// Trace every process in this cgroup v2 directory and below, present and future
    /// (e.g. /sys/fs/cgroup/system.slice/nginx.service).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<std::path::PathBuf>,
    /// Trace a container: its name (asked of Docker's or Podman's API socket), its id, or at
    /// least 12 hex digits of the id; its cgroup is found from /proc/*/cgroup.
    #[arg(long, value_name = "NAME|ID")]
    pub container: Option<String>,
    /// Time only these syscalls: names or numbers, comma-separated, and classes like strace's
    /// (%file, %network, %process, %memory, %signal, %ipc, %desc).
    #[arg(short = 's', long = "syscall", value_name = "LIST")]
    pub syscalls: Option<String>,
    /// Count only failed calls (return value -4095..-1).
    #[arg(long)]
    pub errors_only: bool,
    /// Size of the per-CPU event buffers, all CPUs together: a power of two from 4K, e.g.
    /// 512K, 8M (default), 64M. Larger absorbs longer bursts; every completed call that does
    /// not fit is counted as dropped.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub ring_buffer: Option<u32>,
    /// With -- CMD: SIGINT/SIGTERM/SIGHUP/SIGQUIT are passed on to the command and tracing
    /// goes on until it exits; kill it with SIGKILL if it has not exited DURATION after
    /// the first (a second signal kills it at once).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "command")]
    pub kill_after: Option<Duration>,
    /// Start this command and trace it and every descendant, from its first syscall.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Parses an event buffer size: bytes, or with a K/M/G suffix; a power of two, at least 4K.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let bytes = num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult));
    match bytes {
        Some(b) if (4096..=(1 << 30)).contains(&b) && b.is_power_of_two() => Ok(b as u32),
        _ => Err(format!(
            "invalid size '{s}': a power of two from 4K to 1G, e.g. 8M"
        )),
    }
}

/// What a folded stack's value counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StacksWeight {
    /// The calls' summed latency, in ns.
    Time,
    /// The number of calls.
    Count,
}

/// What rows are ordered by, largest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sort {
    /// Total time in the calls.
    Total,
    /// Number of calls.
    Calls,
    /// Time running on a CPU inside the calls.
    Oncpu,
    /// Time runnable but waiting for a CPU inside the calls (CPU starvation).
    Runq,
    /// Time blocked (sleeping) inside the calls.
    Blocked,
}

/// `syslat record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Targets; with none, every process on the system is traced.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Stop after this long (e.g. 10s, 500ms, 2m).
    #[arg(short, long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Write the output here instead of stdout (the file is started afresh, unless
    /// --append).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Add this recording to the end of the -o file instead of replacing it, as a run of
    /// its own (`"run": k` in JSON, numbered after the runs already there; text or json).
    #[arg(long, requires = "output")]
    pub append: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also dump every DURATION the calls completed in that interval (with -o, each dump is
    /// flushed to the file as it is written). SIGUSR1 forces a dump at any time.
    #[arg(short, long, value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// Also log every call slower than DURATION as it completes: time, pid, tid, comm,
    /// syscall, duration, return value and first three arguments (rate-limited).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub slow: Option<Duration>,
    /// Row key.
    #[arg(long, value_enum, default_value_t = By::Syscall)]
    pub by: By,
    /// Run the command N times, tracing each run separately: one summary per run (with
    /// `"run": k` in JSON), the repetitions `compare` uses to measure noise.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Most processes (threads, cgroups, containers) kept as rows of their own with --by
    /// process|thread|cgroup|container, each with all its syscalls; calls of further ones fold into
    /// exact `other` rows, and the output says how many were folded (0 folds all).
    #[arg(long, default_value_t = crate::aggregate::DEFAULT_MAX_KEYS, value_name = "N")]
    pub max_keys: usize,
    /// Order the rows by this, largest first.
    #[arg(long, value_enum, default_value_t = Sort::Total)]
    pub sort: Sort,
    /// Capture the user and kernel stack of every call (or, with =DURATION, of calls at
    /// least that slow) at its return; shown as call paths, written with -f folded and in
    /// JSON, drawn as flame graphs by `report`. User stacks need frame pointers (README,
    /// "Stacks").
    #[arg(long, value_parser = parse_duration, num_args = 0..=1, require_equals = true,
          default_missing_value = "0", value_name = "DURATION")]
    pub stacks: Option<Duration>,
    /// What the value of a folded stack counts: the calls' summed latency in ns, or calls.
    #[arg(long, value_enum, default_value_t = StacksWeight::Time, requires = "stacks")]
    pub stacks_weight: StacksWeight,
}

/// `syslat serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Targets; with none, every process on the system is traced.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Address and port to listen on (only this machine by default).
    #[arg(
        short,
        long,
        default_value = "127.0.0.1:9876",
        value_name = "ADDR:PORT"
    )]
    pub listen: String,
    /// Label series by syscall, by process name (`comm`) and syscall, or by container
    /// (`container_id`, `container_name`, `pod_uid`) and syscall; pids are never labels.
    #[arg(long, value_enum, default_value_t = ServeBy::Syscall)]
    pub by: ServeBy,
    /// Most label sets per metric; the rest are folded, exactly, into `other`.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub max_series: usize,
    /// Stop after this long (default: until Ctrl-C, or until the command exits).
    #[arg(short, long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
}

/// Formats of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The table of `record`.
    Text,
    /// One JSON `summary` line (the schema of `record`).
    Json,
    /// A self-contained HTML page: overview, sortable table, and per row its percentile
    /// spectrum, latency heatmap and time split.
    Html,
    /// One plot as SVG (`--plot`): the percentile spectrum, or a latency heatmap.
    Svg,
    /// Folded stacks of a recording made with --stacks (`comm;outer;...;inner;syscall
    /// VALUE`), for inferno and flamegraph.pl.
    Folded,
    /// A flame graph (SVG) of a recording made with --stacks: one tower per syscall,
    /// weighted by time (or calls, --stacks-weight).
    Flamegraph,
}

/// The plot of `report -f svg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Plot {
    /// The percentile spectrum of every row.
    Spectrum,
    /// A latency heatmap of all the calls reported (filter with -s), over time: needs an
    /// interval recording (record -i).
    Heatmap,
}

/// `syslat report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Recordings to read. Several recordings (files, or runs in one file) are reported as
    /// runs, one table each, unless --merge.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Row key (the recording must hold it: record with the same --by).
    #[arg(long, value_enum, default_value_t = By::Syscall)]
    pub by: By,
    /// Only these syscalls (names, numbers, %classes).
    #[arg(short = 's', long = "syscall", value_name = "LIST")]
    pub syscalls: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// With -f svg: which plot (default spectrum).
    #[arg(long, value_enum, value_name = "PLOT")]
    pub plot: Option<Plot>,
    /// Percentile columns of the text table.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50,90,99,99.9",
        value_name = "LIST"
    )]
    pub percentiles: Vec<String>,
    /// Merge every recording into one report (histograms added exactly; the duration is
    /// the sum of the recordings').
    #[arg(long)]
    pub merge: bool,
    /// Order the rows by this, largest first.
    #[arg(long, value_enum, default_value_t = Sort::Total)]
    pub sort: Sort,
    /// With -f folded or flamegraph: what a stack's value counts.
    #[arg(long, value_enum, default_value_t = StacksWeight::Time)]
    pub stacks_weight: StacksWeight,
}

/// Formats of `compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// An aligned table; the verdict is the last line.
    Text,
    /// A Markdown table for a pull-request comment.
    Markdown,
    /// One JSON object.
    Json,
}

/// `syslat compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// BASE NEW: two recordings (or use --base and --new for several runs per side).
    #[arg(value_name = "FILE", num_args = 0..=2)]
    pub files: Vec<PathBuf>,
    /// Base recordings (each summary line is one run).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub base: Vec<PathBuf>,
    /// New recordings.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub new: Vec<PathBuf>,
    /// Relative thresholds, e.g. p99=10%,p50=5%,count=5% (keys: count, errors, p50, p90, p99,
    /// p999, max, total; defaults: count=5%, errors=10%, p50=10%, p99=25%, total=15%).
    #[arg(long, value_name = "LIST")]
    pub threshold: Option<String>,
    /// Calls per run a side needs for its row to be judged (both sides, for latencies);
    /// the default, 5, is the fewest with which the median test can reach its 1% level.
    #[arg(long, default_value_t = crate::compare::default_min_count(), value_name = "N")]
    pub min_count: u64,
    /// Latency changes smaller than this per call are noise (a run can shift by tens of ns).
    #[arg(long, value_parser = parse_duration, default_value = "1us", value_name = "DURATION")]
    pub min_delta: Duration,
    /// With one run on a side, latency changes smaller than this share of the base's
    /// on-CPU time per call are noise: a whole run's CPU-bound calls drift together.
    #[arg(long, value_parser = parse_percent, default_value = "100%", value_name = "PERCENT")]
    pub run_drift: f64,
    /// Compare per syscall, or per process name and syscall.
    #[arg(long, value_enum, default_value_t = ByName::Syscall)]
    pub by: ByName,
    /// Only these syscalls (names, numbers, %classes).
    #[arg(short = 's', long = "syscall", value_name = "LIST")]
    pub syscalls: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
}

/// `syslat top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Targets and filters; with no target, every process on the system is traced.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Refresh interval.
    #[arg(short, long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub interval: Duration,
    /// Batch mode: print the table as text every interval (like `top -b`).
    #[arg(short, long)]
    pub batch: bool,
    /// In batch mode, stop after COUNT tables.
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub count: Option<u64>,
    /// Capture the stacks of every call (or of calls at least DURATION slow): the
    /// drill-down (Enter) then shows the call paths that make the syscall, by time.
    #[arg(long, value_parser = parse_duration, num_args = 0..=1, require_equals = true,
          default_missing_value = "0", value_name = "DURATION")]
    pub stacks: Option<Duration>,
}
