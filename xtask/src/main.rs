//! Developer tasks: `cargo xtask setup|build|run|test|lint|bench|dist|vm-test`.
//!
//! `setup` installs what a fresh machine lacks (see shared/ebpf-toolchain.md) and is
//! quick when everything is there; every other task runs it first.

mod bench;
mod deb;
mod dist;
mod fuzz;
mod setup;
mod vm;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "syslat developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the eBPF toolchain and test tools (apt packages, bpf-linker).
    Setup,
    /// Build the release `syslat` binary (eBPF object embedded).
    Build,
    /// Build, then run `syslat` with the given arguments (as root).
    Run {
        /// Arguments for syslat.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every test: unit tests and the integration tests that load real eBPF.
    Test,
    /// cargo fmt --check and clippy -D warnings (user space and eBPF).
    Lint,
    /// Measure the cost per syscall against a baseline and the floor.
    Bench(bench::BenchArgs),
    /// Build the release files: target/dist/syslat and target/dist/syslat_<version>_amd64.deb.
    Dist,
    /// Fuzz the readers of recordings (cargo fuzz, libFuzzer) for a bounded time.
    Fuzz(fuzz::FuzzArgs),
    /// Boot Debian's kernels (5.10 to 7.1, PREEMPT_RT among them) under qemu with a static
    /// syslat and run a smoke suite in each guest.
    VmTest(vm::VmTestArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    let root = root();
    match task {
        Task::Setup => setup::run(),
        Task::Build => {
            setup::run()?;
            build(&root)
        }
        Task::Run { args } => {
            setup::run()?;
            build(&root)?;
            let status = Command::new(root.join("target/release/syslat"))
                .args(&args)
                .status()
                .context("failed to run syslat")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Task::Test => {
            setup::run()?;
            test(&root)
        }
        Task::Lint => {
            setup::run()?;
            lint(&root)
        }
        Task::Bench(args) => {
            setup::run()?;
            build(&root)?;
            bench::run(&root, &args)
        }
        Task::Dist => {
            setup::run()?;
            dist::dist(&root)
        }
        Task::Fuzz(args) => {
            setup::run()?;
            build(&root)?;
            fuzz::run(&root, &args)
        }
        Task::VmTest(args) => {
            setup::run()?;
            vm::run(&root, &args)
        }
    }
}

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// Runs a command, failing on a non-zero exit.
pub(crate) fn sh(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root);
    c
}

/// `cargo` arguments that build the release `syslat` and the test workloads.
pub(crate) const BUILD_BINS: &[&str] = &[
    "build",
    "--release",
    "-p",
    "profiler",
    "-p",
    "tests",
    "--bins",
];

fn build(root: &Path) -> Result<()> {
    sh(cargo(root).args(BUILD_BINS))
}

fn test(root: &Path) -> Result<()> {
    build(root)?;
    if !nix_is_root() {
        bail!("the integration tests load eBPF programs: run `cargo xtask test` as root");
    }
    // bpftrace, the anatomy test's oracle, attaches to classic sched tracepoints, which need
    // tracefs; a fresh machine may not have it mounted.
    mount_tracefs()?;
    // One test at a time: the kernel is shared state (aya's integration tests do the same).
    sh(cargo(root)
        .args([
            "test",
            "--release",
            "--workspace",
            "--exclude",
            "profiler-ebpf",
        ])
        .env("SYSLAT_BIN", root.join("target/release/syslat"))
        .env_remove("SYSLAT_FORCE_FALLBACK")
        .args(["--", "--test-threads=1"]))?;
    // The integration tests again on the fallbacks older kernels get (the legacy eBPF
    // object, BTF read instead of mapped), so both paths are proven on every run.
    eprintln!("xtask: the integration tests again with SYSLAT_FORCE_FALLBACK=1");
    sh(cargo(root)
        .args(["test", "--release", "-p", "tests"])
        .env("SYSLAT_BIN", root.join("target/release/syslat"))
        .env("SYSLAT_FORCE_FALLBACK", "1")
        .args(["--", "--test-threads=1"]))
}

/// Mounts tracefs at /sys/kernel/tracing unless it is there.
pub(crate) fn mount_tracefs() -> Result<()> {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return Ok(());
    }
    eprintln!("xtask: mounting tracefs at /sys/kernel/tracing");
    sh(std::process::Command::new("mount").args([
        "-t",
        "tracefs",
        "tracefs",
        "/sys/kernel/tracing",
    ]))
}

fn lint(root: &Path) -> Result<()> {
    sh(cargo(root).args(["fmt", "--all", "--check"]))?;
    sh(cargo(root).args([
        "clippy",
        "--release",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The eBPF crate, both objects, with Debian's clippy (the same compiler that builds
    // it; `profiler/build.rs` has the rest of this route).
    for features in [None, Some("legacy")] {
        let mut c = cargo(&root.join("profiler-ebpf"));
        c.args([
            "check",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(root.join("target/ebpf-clippy"))
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_WORKSPACE_WRAPPER", "/usr/bin/clippy-driver")
        .env("RUSTC_BOOTSTRAP", "aya_ebpf,syslat,floor")
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            ["-C", "target-cpu=v3", "-D", "warnings"].join("\x1f"),
        );
        if let Some(f) = features {
            c.args(["--features", f]);
        }
        sh(&mut c)?;
    }
    Ok(())
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
