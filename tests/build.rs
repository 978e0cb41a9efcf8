//! Builds the `--stacks` test's helper (`helpers/stacks_helper.rs`) with frame pointers,
//! which a Cargo binary of this package cannot be given without changing the flags of the
//! whole build, and tells the tests where it is (`STACKS_HELPER`).

use std::{env, path::PathBuf, process::Command};

fn main() {
    let src = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("helpers/stacks_helper.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("stacks-helper");
    println!("cargo:rerun-if-changed={}", src.display());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "-C",
            "opt-level=2",
            "-C",
            "force-frame-pointers=yes",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("rustc runs");
    assert!(status.success(), "building {} failed", src.display());
    println!("cargo:rustc-env=STACKS_HELPER={}", out.display());
}
