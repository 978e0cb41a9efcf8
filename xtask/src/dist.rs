//! Binaries for other machines: static builds of `syslat` and the workload helper, which
//! run on any x86_64 Linux whatever its libc (`cargo xtask vm-test` boots them in guests
//! that have no libc at all), and `cargo xtask dist`: the static `syslat` and the Debian
//! package around it (`deb.rs`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cargo, sh};

/// The target of the static builds: glibc's, linked statically (`+crt-static`). A musl
/// target would need rustup to download its standard library, which cannot be assumed.
pub(crate) const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Paths of the static release binaries.
pub(crate) struct StaticBins {
    pub(crate) syslat: PathBuf,
    pub(crate) workload: PathBuf,
}

/// Builds `syslat` and `workload` statically linked into `target/STATIC_TARGET/release/`
/// and checks that they are static.
///
/// With an explicit `--target`, RUSTFLAGS reach only the target's crates, not build scripts
/// or proc macros (which cannot be static); `profiler/build.rs` removes RUSTFLAGS before it
/// builds the eBPF object with its own cargo.
pub(crate) fn build_static(root: &Path) -> Result<StaticBins> {
    sh(cargo(root)
        .args(crate::BUILD_BINS)
        .args(["--target", STATIC_TARGET])
        // CARGO_ENCODED_RUSTFLAGS would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static"))?;
    let dir = root.join("target").join(STATIC_TARGET).join("release");
    let bins = StaticBins {
        syslat: dir.join("syslat"),
        workload: dir.join("workload"),
    };
    ensure_static(&bins.syslat)?;
    ensure_static(&bins.workload)?;
    Ok(bins)
}

/// `cargo xtask dist`: writes `target/dist/syslat` (static, eBPF objects inside) and
/// `target/dist/syslat_<version>_amd64.deb`.
pub(crate) fn dist(root: &Path) -> Result<()> {
    let bins = build_static(root)?;
    let dist = root.join("target/dist");
    std::fs::create_dir_all(&dist)
        .with_context(|| format!("failed to create {}", dist.display()))?;
    let syslat = dist.join("syslat");
    std::fs::copy(&bins.syslat, &syslat)
        .with_context(|| format!("failed to write {}", syslat.display()))?;
    let deb = crate::deb::build_deb(root, &syslat, &dist)?;
    println!("{}\n{}", syslat.display(), deb.display());
    Ok(())
}

/// Fails unless `file` calls `bin` statically linked and `ldd` finds no shared library.
pub(crate) fn ensure_static(bin: &Path) -> Result<()> {
    let file = Command::new("file")
        .arg("-b")
        .arg(bin)
        .output()
        .context("failed to run `file`")?;
    let file = String::from_utf8_lossy(&file.stdout);
    if !(file.contains("statically linked") || file.contains("static-pie linked")) {
        bail!(
            "{} is not a static executable: {}",
            bin.display(),
            file.trim()
        );
    }
    // ldd exits non-zero for "not a dynamic executable"; what matters is that it lists no
    // library ("libc.so.6 => ...").
    let ldd = Command::new("ldd")
        .arg(bin)
        .output()
        .context("failed to run `ldd`")?;
    let ldd = String::from_utf8_lossy(&ldd.stdout) + String::from_utf8_lossy(&ldd.stderr);
    if ldd.contains("=>") || ldd.contains(".so") {
        bail!("{} links shared libraries:\n{ldd}", bin.display());
    }
    Ok(())
}
