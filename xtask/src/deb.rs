//! The Debian package of `cargo xtask dist`: stage a root tree around a given `syslat`
//! binary and build `syslat_<version>_amd64.deb` with `dpkg-deb`. The man pages and shell
//! completions come from running that binary (so they match it); the systemd unit, the
//! control file, the copyright and the maintainer scripts are read from `packaging/`.
//! It must not build syslat: the caller chooses the binary to package.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::sh;

/// The package's version: the workspace's, which xtask inherits (`version.workspace`).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where each shell's completion script goes (the paths Debian's bash-completion, zsh and
/// fish packages load vendor scripts from).
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "usr/share/bash-completion/completions/syslat"),
    ("zsh", "usr/share/zsh/vendor-completions/_syslat"),
    ("fish", "usr/share/fish/vendor_completions.d/syslat.fish"),
];

/// Builds `out_dir/syslat_<version>_amd64.deb` holding `syslat` and returns its path.
pub(crate) fn build_deb(root: &Path, syslat: &Path, out_dir: &Path) -> Result<PathBuf> {
    let syslat =
        fs::canonicalize(syslat).with_context(|| format!("failed to find {}", syslat.display()))?;
    check_version(&syslat)?;
    let commit = last_commit(root)?;
    let packaging = root.join("packaging");
    let control = read(&packaging.join("deb/control"))?;
    let stage = root.join(format!("target/deb/syslat_{VERSION}_amd64"));
    if stage.exists() {
        fs::remove_dir_all(&stage)
            .with_context(|| format!("failed to remove {}", stage.display()))?;
    }

    // Stripped, as Debian ships binaries (dh_strip's flags for an executable). The eBPF
    // object is data inside the binary and is left as it is.
    let bin_dir = stage.join("usr/bin");
    fs::create_dir_all(&bin_dir)
        .with_context(|| format!("failed to create {}", bin_dir.display()))?;
    let bin = bin_dir.join("syslat");
    sh(Command::new("strip")
        .args(["--remove-section=.comment", "--remove-section=.note", "-o"])
        .arg(&bin)
        .arg(&syslat))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to set the mode of {}", bin.display()))?;
    copy(
        &packaging.join("syslat.service"),
        &stage.join("lib/systemd/system/syslat.service"),
        0o644,
    )?;
    man_pages(&syslat, &stage.join("usr/share/man/man1"), &commit.date)?;
    for (shell, path) in COMPLETIONS {
        let script = output(Command::new(&syslat).args(["completions", shell]))?;
        write(&stage.join(path), &script, 0o644)?;
    }
    copy(
        &packaging.join("deb/copyright"),
        &stage.join("usr/share/doc/syslat/copyright"),
        0o644,
    )?;
    changelog(
        &stage.join("usr/share/doc/syslat/changelog.gz"),
        &control,
        &commit,
    )?;
    for script in ["postinst", "prerm", "postrm"] {
        copy(
            &packaging.join("deb").join(script),
            &stage.join("DEBIAN").join(script),
            0o755,
        )?;
    }
    md5sums(&stage)?;
    let mut control = control
        .replace("@VERSION@", VERSION)
        .replace("@INSTALLED_SIZE@", &installed_size_kib(&stage)?.to_string());
    // The release binary is static and needs nothing; a dynamic one needs the C library.
    if has_interpreter(&syslat)? {
        eprintln!(
            "xtask: warning: {} is linked dynamically: the package depends on libc6",
            syslat.display()
        );
        control = control.replacen("\nDescription:", "\nDepends: libc6\nDescription:", 1);
    }
    write(&stage.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    // Directories as dpkg expects them whatever the umask was.
    set_dir_modes(&stage)?;

    fs::create_dir_all(out_dir)
        .with_context(|| format!("failed to create {}", out_dir.display()))?;
    let deb = out_dir.join(format!("syslat_{VERSION}_amd64.deb"));
    sh(Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&stage)
        .arg(&deb))?;
    Ok(deb)
}

/// Fails unless `syslat --version` is the workspace's version: a stale binary would give
/// the package a version it does not have.
fn check_version(syslat: &Path) -> Result<()> {
    let out = output(Command::new(syslat).arg("--version"))?;
    let text = String::from_utf8_lossy(&out);
    let found = text.split_whitespace().nth(1).unwrap_or_default();
    if found != VERSION {
        bail!(
            "{} is version {found}, the workspace is {VERSION}: rebuild it",
            syslat.display()
        );
    }
    Ok(())
}

/// The commit a package is built from: it dates the man pages and the changelog, so the
/// same commit gives the same files.
struct Commit {
    /// `git describe --always --dirty`: the abbreviated hash (after the last tag, if any),
    /// and whether the checkout had changes.
    name: String,
    /// Committer date, YYYY-MM-DD.
    date: String,
    /// Committer date, RFC 2822 (as a Debian changelog wants it).
    date_rfc2822: String,
}

/// The checkout's last commit.
fn last_commit(root: &Path) -> Result<Commit> {
    let git = |args: &[&str]| -> Result<String> {
        let out = output(Command::new("git").arg("-C").arg(root).args(args))
            .context("packaging dates its files by the last commit: run it in the git checkout")?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    };
    let name = git(&["describe", "--always", "--dirty"])?;
    let dates = git(&["log", "-1", "--format=%cs%n%cD"])?;
    match dates.split_once('\n') {
        Some((date, date_rfc2822)) => Ok(Commit {
            name,
            date: date.to_owned(),
            date_rfc2822: date_rfc2822.to_owned(),
        }),
        None => bail!("unexpected output of git log: {dates:?}"),
    }
}

/// Writes a native package's changelog (Debian policy 12.7; one entry, for this build) to
/// `path`, gzipped. The maintainer is the control file's.
fn changelog(path: &Path, control: &str, commit: &Commit) -> Result<()> {
    let maintainer = control
        .lines()
        .find_map(|l| l.strip_prefix("Maintainer:"))
        .map(str::trim)
        .context("packaging/deb/control has no Maintainer field")?;
    let text = format!(
        "syslat ({VERSION}) unstable; urgency=medium\n\n  * Release {VERSION}, built from \
         {}.\n\n -- {maintainer}  {}\n",
        commit.name, commit.date_rfc2822
    );
    let plain = path.with_extension("");
    write(&plain, text.as_bytes(), 0o644)?;
    sh(Command::new("gzip").arg("-9n").arg(&plain))
}

/// Writes `DEBIAN/md5sums` (what `dpkg --verify` checks) for the files under `stage`.
fn md5sums(stage: &Path) -> Result<()> {
    let relative = payload(stage)?
        .iter()
        .map(|f| f.strip_prefix(stage).map(Path::to_path_buf))
        .collect::<Result<Vec<_>, _>>()
        .context("a staged file outside the stage")?;
    let sums = output(Command::new("md5sum").current_dir(stage).args(&relative))?;
    write(&stage.join("DEBIAN/md5sums"), &sums, 0o644)
}

/// The files under `stage` that the package installs (all but `DEBIAN/`), sorted.
fn payload(stage: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in
            fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
        {
            let path = entry
                .with_context(|| format!("failed to read {}", dir.display()))?
                .path();
            if path.is_dir() {
                walk(&path, files)?;
            } else {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(stage, &mut files)?;
    files.retain(|f| !f.starts_with(stage.join("DEBIAN")));
    files.sort();
    Ok(files)
}

/// Writes the man pages with `syslat man`, dated `date`, into `dir`, compressed as Debian
/// policy asks (`gzip -9n`: best compression, no name or time stamp).
fn man_pages(syslat: &Path, dir: &Path, date: &str) -> Result<()> {
    sh(Command::new(syslat)
        .arg("man")
        .arg(dir)
        .args(["--date", date]))?;
    let mut pages = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("failed to read {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "1") {
            pages.push(path);
        }
    }
    if !pages.iter().any(|p| p.ends_with("syslat.1")) {
        bail!("`syslat man` wrote no syslat.1 into {}", dir.display());
    }
    for page in &pages {
        fs::set_permissions(page, fs::Permissions::from_mode(0o644))
            .with_context(|| format!("failed to set the mode of {}", page.display()))?;
    }
    sh(Command::new("gzip").arg("-9n").args(&pages))
}

/// Whether the ELF file at `path` names a program interpreter (`PT_INTERP`), i.e. is linked
/// dynamically. A static(-pie) binary has none.
fn has_interpreter(path: &Path) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let elf = fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let not_elf = || anyhow::anyhow!("{} is not a 64-bit little-endian ELF file", path.display());
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err(not_elf());
    }
    let u16_at = |at: usize| -> Option<u64> {
        Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?).into())
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?))
    };
    // ELF64 header: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38; p_type first.
    let (phoff, entsize, count) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let (Some(phoff), Some(entsize), Some(count)) = (phoff, entsize, count) else {
        return Err(not_elf());
    };
    for i in 0..count {
        let at = usize::try_from(phoff + i * entsize).map_err(|_| not_elf())?;
        match u32_at(at) {
            Some(PT_INTERP) => return Ok(true),
            Some(_) => {}
            None => return Err(not_elf()),
        }
    }
    Ok(false)
}

/// The size of the files under `stage` in KiB, as `Installed-Size` counts it (each file
/// rounded up to a KiB), without the control files.
fn installed_size_kib(stage: &Path) -> Result<u64> {
    let mut total = 0;
    for file in payload(stage)? {
        let meta =
            fs::metadata(&file).with_context(|| format!("failed to stat {}", file.display()))?;
        total += meta.len().div_ceil(1024);
    }
    Ok(total)
}

/// Sets every directory under `dir`, and `dir`, to mode 0755.
fn set_dir_modes(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to set the mode of {}", dir.display()))?;
    for entry in fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("failed to read {}", dir.display()))?
            .path();
        if path.is_dir() {
            set_dir_modes(&path)?;
        }
    }
    Ok(())
}

/// Copies `from` to `to` (creating its directory) with `mode`.
fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("failed to read {}", from.display()))?;
    write(to, &bytes, mode)
}

/// Writes `bytes` to `path` (creating its directory) with `mode`.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("failed to write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of {}", path.display()))
}

/// Reads a text file.
fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

/// Runs a command and returns its stdout, failing on a non-zero exit.
fn output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("{cmd:?} failed with {}: {}", out.status, err.trim());
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_of_dynamic_and_static_binaries() {
        // On Debian, coreutils are dynamic and ldconfig is static-pie.
        assert!(has_interpreter(Path::new("/bin/true")).unwrap());
        assert!(!has_interpreter(Path::new("/sbin/ldconfig")).unwrap());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(has_interpreter(&manifest).is_err());
    }
}
