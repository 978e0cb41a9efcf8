//! Builds the eBPF object (`profiler-ebpf`) and leaves it in `OUT_DIR/syslat.bpf.o`, where
//! `collect::loader` embeds it with `include_bytes_aligned!`.
//!
//! Two toolchain routes (see `shared/ebpf-toolchain.md` and `cargo xtask setup`):
//! - Debian's `rustc-web` (`/usr/bin/rustc`) with its prebuilt `core` for
//!   `bpfel-unknown-none`, driven by this cargo with `RUSTC_BOOTSTRAP` for the two crates that
//!   use unstable features;
//! - otherwise rustup nightly with `rust-src` and `-Z build-std=core`.
//!
//! `SYSLAT_EBPF_OBJECT=/path/to/object` skips the build and embeds that file instead.

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
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("syslat.bpf.o");
    for p in [
        "profiler-ebpf/src",
        "profiler-ebpf/Cargo.toml",
        "profiler-common/src",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=SYSLAT_EBPF_OBJECT");

    if let Some(obj) = env::var_os("SYSLAT_EBPF_OBJECT") {
        copy(Path::new(&obj), &out);
        return;
    }
    let Some(linker) = find_bpf_linker() else {
        fail("bpf-linker not found: run `cargo xtask setup` (it installs the eBPF toolchain)");
    };
    println!("cargo:rerun-if-changed={}", linker.display());

    let target_dir = root.join("target/ebpf");
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
    .arg(&target_dir)
    // aya-ebpf uses an unstable feature; our crate (bin "syslat") uses inline BPF asm.
    .env("RUSTC_BOOTSTRAP", "aya_ebpf,syslat,floor")
    .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
    .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", &linker);
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
    copy(&target_dir.join("bpfel-unknown-none/release/syslat"), &out);
    // The bench's floor programs, left where `cargo xtask bench` looks for them.
    let floor = target_dir.join("bpfel-unknown-none/release/floor");
    copy(&floor, &target_dir.join("floor.bpf.o"));
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
