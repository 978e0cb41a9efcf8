//! Builds the eBPF objects (`profiler-ebpf`) and leaves them in `OUT_DIR/syslat.bpf.o` and
//! `OUT_DIR/syslat-legacy.bpf.o` (the same programs built with feature `legacy`, for
//! kernels such as 5.10: see `profiler-ebpf/src/moved.rs`), where `collect::loader` embeds
//! them with `include_bytes_aligned!`.
//!
//! Two toolchain routes (see `shared/ebpf-toolchain.md` and `cargo xtask setup`):
//! - Debian's `rustc-web` (`/usr/bin/rustc`) with its prebuilt `core` for
//!   `bpfel-unknown-none`, driven by this cargo with `RUSTC_BOOTSTRAP` for the two crates that
//!   use unstable features;
//! - otherwise rustup nightly with `rust-src` and `-Z build-std=core`.
//!
//! `SYSLAT_EBPF_OBJECT=/path/to/object` skips the build and embeds that file instead (and
//! `SYSLAT_EBPF_LEGACY_OBJECT` the legacy one; without it, the same file serves as both).

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, exit},
};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("profiler/ has a parent")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let out = out_dir.join("syslat.bpf.o");
    let out_legacy = out_dir.join("syslat-legacy.bpf.o");
    for p in [
        "profiler-ebpf/src",
        "profiler-ebpf/Cargo.toml",
        "profiler-common/src",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=SYSLAT_EBPF_OBJECT");
    println!("cargo:rerun-if-env-changed=SYSLAT_EBPF_LEGACY_OBJECT");

    if let Some(obj) = env::var_os("SYSLAT_EBPF_OBJECT") {
        copy(Path::new(&obj), &out);
        let legacy = env::var_os("SYSLAT_EBPF_LEGACY_OBJECT").unwrap_or(obj);
        copy(Path::new(&legacy), &out_legacy);
        return;
    }
    let Some(linker) = find_bpf_linker() else {
        fail("bpf-linker not found: run `cargo xtask setup` (it installs the eBPF toolchain)");
    };
    println!("cargo:rerun-if-changed={}", linker.display());

    let target_dir = root.join("target/ebpf");
    build_ebpf(&root, &linker, &target_dir, None);
    copy(&target_dir.join("bpfel-unknown-none/release/syslat"), &out);
    let legacy_dir = root.join("target/ebpf-legacy");
    build_ebpf(&root, &linker, &legacy_dir, Some("legacy"));
    copy(
        &legacy_dir.join("bpfel-unknown-none/release/syslat"),
        &out_legacy,
    );
    // The bench's floor programs, left where `cargo xtask bench` looks for them.
    let floor = target_dir.join("bpfel-unknown-none/release/floor");
    copy(&floor, &target_dir.join("floor.bpf.o"));
}

/// Builds profiler-ebpf's programs into `target_dir` with `features` on.
fn build_ebpf(root: &Path, linker: &Path, target_dir: &Path, features: Option<&str>) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let flags = [
        "-C",
        "debuginfo=2",
        "-C",
        "link-arg=--btf",
        "-C",
        "target-cpu=v3",
    ];
    let debian_rustc = Path::new("/usr/bin/rustc");
    let debian_core = Path::new("/usr/lib/rustlib/bpfel-unknown-none/lib");
    let mut cmd;
    if debian_rustc.exists() && debian_core.exists() {
        cmd = Command::new(&cargo);
        cmd.env("RUSTC", debian_rustc);
    } else if nightly_has_rust_src() {
        cmd = Command::new("rustup");
        cmd.args(["run", "nightly", "cargo"]);
        cmd.args(["-Z", "build-std=core"]);
        cmd.env_remove("RUSTC");
    } else {
        fail(
            "no eBPF-capable Rust toolchain: run `cargo xtask setup` (installs Debian's \
             rustc-web and libstd-rust-web-dev-bpf), or install rustup nightly with rust-src",
        );
    }
    cmd.args([
        "build",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "--bins",
    ])
    .arg("--manifest-path")
    .arg(root.join("profiler-ebpf/Cargo.toml"))
    .arg("--target-dir")
    .arg(target_dir)
    // aya-ebpf uses an unstable feature; our crate (bin "syslat") uses inline BPF asm.
    .env("RUSTC_BOOTSTRAP", "aya_ebpf,syslat,floor")
    .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
    .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", linker);
    if let Some(features) = features {
        cmd.args(["--features", features]);
    }
    // The outer build's wrappers and flags are for the host, not for BPF.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => fail(&format!("failed to run cargo for profiler-ebpf: {e}")),
    };
    std::fs::write(target_dir.join("last-build.log"), &output.stderr).ok();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
        fail("building the eBPF programs (profiler-ebpf) failed; see the lines above");
    }
}

fn find_bpf_linker() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}

fn nightly_has_rust_src() -> bool {
    Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("rust-src"))
        .unwrap_or(false)
}

fn copy(from: &Path, to: &Path) {
    if let Err(e) = std::fs::copy(from, to) {
        fail(&format!(
            "failed to copy {} to {}: {e}",
            from.display(),
            to.display()
        ));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    println!("cargo::error={msg}");
    exit(1);
}
