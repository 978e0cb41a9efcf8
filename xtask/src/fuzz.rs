//! `cargo xtask fuzz [--seconds N]`: runs each cargo-fuzz target of `fuzz/` (the readers of
//! recordings others hand to syslat) for N seconds with libFuzzer's malloc limit at 64 MiB,
//! so a crash, a hang or one oversized allocation fails the task. Installs cargo-fuzz when
//! missing. libFuzzer needs nightly compiler flags; the stable toolchain takes them with
//! `RUSTC_BOOTSTRAP=1` (its standard library ships the sanitizer runtimes).

use std::{path::Path, process::Command};

use anyhow::Result;
use clap::Args;

use crate::sh;

/// The targets in `fuzz/fuzz_targets/`.
const TARGETS: &[&str] = &["recording", "hdr"];

/// `cargo xtask fuzz` options.
#[derive(Args)]
pub(crate) struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// Runs every target.
pub(crate) fn run(root: &Path, args: &FuzzArgs) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let installed = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("xtask: installing cargo-fuzz (about 1 minute)");
        sh(Command::new(&cargo).args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let corpus = root.join("target/fuzz-corpus");
    for target in TARGETS {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        eprintln!("xtask: fuzzing {target} for {} s", args.seconds);
        sh(Command::new(&cargo)
            .current_dir(root.join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            // The sanitizer flags are for the host code, not the eBPF object: embed the one
            // the normal build made (profiler/build.rs).
            .env(
                "SYSLAT_EBPF_OBJECT",
                root.join("target/ebpf/bpfel-unknown-none/release/syslat"),
            )
            .env(
                "SYSLAT_EBPF_LEGACY_OBJECT",
                root.join("target/ebpf-legacy/bpfel-unknown-none/release/syslat"),
            )
            .args(["fuzz", "run", "--release", target])
            .arg(&dir)
            .args([
                "--",
                &format!("-max_total_time={}", args.seconds),
                "-malloc_limit_mb=64",
                "-rss_limit_mb=512",
                "-timeout=10",
            ]))?;
    }
    Ok(())
}
