//! `cargo xtask setup`: installs, idempotently, what a fresh Debian 12 machine of this
//! project's kind lacks (shared/ebpf-toolchain.md): Debian's rustc-web with its prebuilt
//! `core` for bpfel-unknown-none, LLVM 22, bpf-linker built against it, and the tools the
//! tests use (bpftool, tmux, chromium, ...). Quick when everything is there.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, bail};

use crate::sh;

const APT_PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "/usr/bin/rustc"),
    (
        "libstd-rust-web-dev-bpf",
        "/usr/lib/rustlib/bpfel-unknown-none/lib",
    ),
    ("llvm-22-dev", "/usr/lib/llvm-22/bin/llvm-config"),
    // clippy for the eBPF crate (`cargo xtask lint`), matching rustc-web.
    ("rust-web-clippy", "/usr/bin/clippy-driver"),
    ("bpftool", "/usr/sbin/bpftool"),
    ("tmux", "/usr/bin/tmux"),
    // promtool checks `syslat serve`'s exposition in the tests, and the prometheus server
    // of the same package scrapes it (native histograms and classic).
    ("prometheus", "/usr/bin/promtool"),
    // A real container runtime for `--container` (the image is busybox-static, imported).
    ("docker.io", "/usr/sbin/dockerd"),
    ("busybox-static", "/usr/share/doc/busybox-static"),
    // A real browser opens `report -f html` in the tests (headless, over DevTools).
    ("chromium", "/usr/bin/chromium"),
    // The DaemonSet's pod is run under containerd's own client, and the unit is checked
    // with systemd-analyze (tests/tests/deploy.rs).
    ("containerd", "/usr/bin/ctr"),
    ("systemd", "/usr/bin/systemd-analyze"),
    // An independent tracer: the anatomy test's run-queue oracle (runqlat's method).
    ("bpftrace", "/usr/bin/bpftrace"),
];

/// The official Kubernetes Python client, whose API models check deploy/daemonset.yaml
/// (pinned: its type names are parsed).
const KUBERNETES_PY: &str = "kubernetes==37.0.2";

const BPF_LINKER: &str = "bpf-linker@0.13.0";

/// Installs what is missing.
pub(crate) fn run() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(_, p)| !Path::new(p).exists())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "missing packages {missing:?}: run `cargo xtask setup` as root (it uses apt-get)"
            );
        }
        eprintln!("xtask: installing {}", missing.join(" "));
        sh(Command::new("apt-get").args(["update", "-q"]))?;
        sh(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // The tests read syslat's HdrHistogram output with an independent implementation.
    let has_hdrh = Command::new("python3")
        .args(["-c", "import hdrh"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_hdrh {
        eprintln!("xtask: installing the Python hdrhistogram package (for the tests)");
        sh(Command::new("python3").args(["-m", "pip", "install", "-q", "hdrhistogram"]))?;
    }
    let has_kubernetes = Command::new("python3")
        .args(["-c", "import kubernetes, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_kubernetes {
        eprintln!("xtask: installing the Python {KUBERNETES_PY} package (for the tests)");
        sh(Command::new("python3").args(["-m", "pip", "install", "-q", KUBERNETES_PY]))?;
    }
    if bpf_linker().is_none() {
        eprintln!("xtask: installing {BPF_LINKER} (about 1.5 minutes)");
        sh(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args([
                    "install",
                    BPF_LINKER,
                    "--locked",
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                ])
                // Without this, bpf-linker's build finds Debian's default LLVM 14 and fails.
                .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
        )?;
    }
    Ok(())
}

fn bpf_linker() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    crate::nix_is_root()
}
