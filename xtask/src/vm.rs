//! `cargo xtask vm-test [--kernel LIST]`: boots Debian's distribution kernels under qemu with
//! a static `syslat` and the workload helper, runs a smoke suite in each guest and fails on
//! any wrong number.
//!
//! - Kernels come from Debian's archive through an apt configuration of our own (its own
//!   lists and cache under `target/vm/apt/`, the system's apt untouched); the current
//!   package of each series is resolved from the `linux-image-amd64` / `linux-image-rt-amd64`
//!   metapackage (trixie-backports' follows the newest kernel Debian builds), and only `vmlinuz` is kept, in `target/vm/kernels/` (a rerun downloads
//!   nothing; `--refresh` looks for newer packages).
//! - The guest has no disk: an initramfs (busybox-static from the same archive, the two
//!   static binaries, `vm-init.sh` as `/init`), unpacked by the kernel into a tmpfs, so no
//!   driver module is needed and the userland has no libc.
//! - The guest prints `CHECK <name> PASS|FAIL <detail>` on the serial console (qemu's
//!   stdout); a kernel fails on any FAIL, any check of [`CHECKS`] missing, or a guest that
//!   does not finish within `--timeout`. Console logs go to `target/vm/results/<kernel>.log`.
//! - qemu runs single-threaded TCG (multi-threaded TCG hangs guests at random when
//!   tracepoints are toggled; see shared/kernel-matrix.md); KVM is used only when a probe
//!   boot shows it works, which it does not on machines whose /dev/kvm only runs PVM guests.

use std::{
    collections::{BTreeMap, VecDeque},
    fs,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{dist, sh};

/// The checks of `vm-init.sh`, in its order: each must report on every kernel.
pub(crate) const CHECKS: &[&str] = &[
    "doctor",
    "getppid-1thread",
    "getppid-threads",
    "getppid-forks",
    "pid",
    "cgroup",
    "comm-later",
    "syscall-filter",
    "sleep-p50",
    "pipe-p50",
    "anatomy",
    "enoent",
    "stacks",
    "top",
    "serve",
    "sigkill-detach",
    "preempt-stress",
];

const INIT_SCRIPT: &str = include_str!("vm-init.sh");

/// One entry of the matrix.
struct Kernel {
    /// What `--kernel` selects.
    name: &'static str,
    suite: &'static str,
    /// The metapackage that depends on the current kernel package.
    meta: &'static str,
    /// What the resolved package name must start and end with.
    prefix: &'static str,
    suffix: &'static str,
    /// The oldest upstream version (major, minor) the resolved package may have: for a
    /// series that follows the newest kernel, the reason it is in the matrix.
    min_version: (u32, u32),
    /// Added to the kernel command line.
    cmdline: &'static str,
}

const KERNELS: &[Kernel] = &[
    Kernel {
        name: "5.10",
        suite: "bullseye",
        meta: "linux-image-amd64",
        prefix: "linux-image-5.10.0-",
        suffix: "-amd64",
        min_version: (0, 0),
        cmdline: "",
    },
    Kernel {
        name: "6.1",
        suite: "bookworm",
        meta: "linux-image-amd64",
        prefix: "linux-image-6.1.0-",
        suffix: "-amd64",
        min_version: (0, 0),
        cmdline: "",
    },
    Kernel {
        name: "6.12",
        suite: "trixie",
        meta: "linux-image-amd64",
        prefix: "linux-image-6.12.",
        suffix: "+deb13-amd64",
        min_version: (0, 0),
        cmdline: "",
    },
    // PREEMPT_RT as shipped (lazy preemption: a task is rarely switched out in a syscall).
    Kernel {
        name: "6.12-rt",
        suite: "trixie",
        meta: "linux-image-rt-amd64",
        prefix: "linux-image-6.12.",
        suffix: "+deb13-rt-amd64",
        min_version: (0, 0),
        cmdline: "",
    },
    // The same kernel with full preemption: tasks are preempted inside syscalls.
    Kernel {
        name: "6.12-rt-full",
        suite: "trixie",
        meta: "linux-image-rt-amd64",
        prefix: "linux-image-6.12.",
        suffix: "+deb13-rt-amd64",
        min_version: (0, 0),
        cmdline: "preempt=full",
    },
    // A kernel of trixie-backports from after 6.14 (faultable syscall tracepoints), as
    // shipped (PREEMPT_DYNAMIC, lazy preemption by default): the last whose raw syscall
    // tracepoints run programs with preemption disabled (syslat's raw hook).
    Kernel {
        name: "7.1",
        suite: "trixie-backports",
        meta: "linux-image-7.1.13+deb13-amd64",
        prefix: "linux-image-7.1.",
        suffix: "+deb13-amd64",
        min_version: (6, 14),
        cmdline: "",
    },
    // The same kernel with full preemption: the programs themselves get preempted.
    Kernel {
        name: "7.1-full",
        suite: "trixie-backports",
        meta: "linux-image-7.1.13+deb13-amd64",
        prefix: "linux-image-7.1.",
        suffix: "+deb13-amd64",
        min_version: (6, 14),
        cmdline: "preempt=full",
    },
    // The newest kernel of trixie-backports (7.2 and later: 7.3.4 on 2026-12-03), whose
    // raw syscall tracepoints run programs preemptible: syslat's perf hook
    // (`features::SyscallHook`). As shipped, and with full preemption.
    Kernel {
        name: "newest",
        suite: "trixie-backports",
        meta: "linux-image-amd64",
        prefix: "linux-image-",
        suffix: "+deb13-amd64",
        min_version: (7, 2),
        cmdline: "",
    },
    Kernel {
        name: "newest-full",
        suite: "trixie-backports",
        meta: "linux-image-amd64",
        prefix: "linux-image-",
        suffix: "+deb13-amd64",
        min_version: (7, 2),
        cmdline: "preempt=full",
    },
];

/// Where busybox-static comes from (any suite would do; the host's is bookworm).
const BUSYBOX_SUITE: &str = "bookworm";

/// Host tools: (package, a file it installs).
const HOST_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
    ("cpio", "/usr/bin/cpio"),
    ("file", "/usr/bin/file"),
];

const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 softlockup_panic=1 quiet";

#[derive(Args)]
pub(crate) struct VmTestArgs {
    /// Kernels to boot, comma-separated: 5.10, 6.1, 6.12, 6.12-rt, 6.12-rt-full, 7.1,
    /// 7.1-full, newest, newest-full (default: all).
    #[arg(long, value_delimiter = ',')]
    kernel: Vec<String>,
    /// Guests running at once (each takes one host CPU).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Seconds a guest may run before it is killed and its kernel failed.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Resolve the kernel packages again and download the ones that changed.
    #[arg(long)]
    refresh: bool,
    /// qemu accelerator: auto (KVM if a probe boot works, else TCG), kvm, or tcg.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    accel: String,
}

/// What one guest reported.
#[derive(Default)]
struct Outcome {
    /// check name -> (passed, detail)
    checks: BTreeMap<String, (bool, String)>,
    booted: bool,
    finished: bool,
    timed_out: bool,
    secs: f64,
    /// Why the guest produced no result, when it did not run.
    error: Option<String>,
}

pub(crate) fn run(root: &Path, args: &VmTestArgs) -> Result<()> {
    let t0 = Instant::now();
    let kernels = select(&args.kernel)?;
    install_host_tools()?;
    let vm = root.join("target/vm");
    fs::create_dir_all(vm.join("results"))?;
    let bins = dist::build_static(root)?;
    let apt = Apt::new(&vm)?;
    let busybox = busybox(&vm, &apt)?;
    let mut images = BTreeMap::new();
    for k in &kernels {
        if let std::collections::btree_map::Entry::Vacant(e) = images.entry((k.suite, k.meta)) {
            e.insert(kernel_image(&vm, &apt, k, args.refresh)?);
        }
    }
    let initrd = initramfs(&vm, &busybox, &bins)?;
    let accel = match args.accel.as_str() {
        "auto" => {
            let (_, image) = images.iter().next().expect("at least one kernel");
            if kvm_works(&vm, image, &initrd) {
                "kvm"
            } else {
                "tcg"
            }
        }
        a => a,
    };
    progress(
        t0,
        &format!(
            "{} kernel(s), {} at a time, accel {accel}, prepared",
            kernels.len(),
            args.jobs
        ),
    );

    let queue = Mutex::new(kernels.iter().copied().collect::<VecDeque<&Kernel>>());
    let results: Mutex<BTreeMap<&str, Outcome>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let Some(k) = queue.lock().expect("queue").pop_front() else {
                        break;
                    };
                    let image = &images[&(k.suite, k.meta)];
                    let log = vm.join("results").join(format!("{}.log", k.name));
                    let outcome = boot(
                        k,
                        image,
                        &initrd,
                        accel,
                        Duration::from_secs(args.timeout),
                        &log,
                        t0,
                    )
                    .unwrap_or_else(|e| Outcome {
                        error: Some(format!("{e:#}")),
                        ..Outcome::default()
                    });
                    results.lock().expect("results").insert(k.name, outcome);
                }
            });
        }
    });
    let results = results.into_inner().expect("results");
    let table = report(&kernels, &results);
    print!("{table}");
    fs::write(vm.join("results/summary.txt"), &table)?;
    progress(t0, "done");
    let failed: Vec<&str> = kernels
        .iter()
        .filter(|k| !all_passed(&results[k.name]))
        .map(|k| k.name)
        .collect();
    if !failed.is_empty() {
        bail!(
            "vm-test failed on {} (logs in target/vm/results/)",
            failed.join(", ")
        );
    }
    Ok(())
}

fn progress(t0: Instant, msg: &str) {
    eprintln!("vm-test [{:4}s] {msg}", t0.elapsed().as_secs());
}

fn select(names: &[String]) -> Result<Vec<&'static Kernel>> {
    if names.is_empty() {
        return Ok(KERNELS.iter().collect());
    }
    let all = || KERNELS.iter();
    for n in names {
        if !all().any(|k| k.name == n.trim()) {
            let known: Vec<&str> = all().map(|k| k.name).collect();
            bail!("unknown kernel {n:?}; known: {}", known.join(", "));
        }
    }
    // In the matrix's order, so tables of different runs line up.
    Ok(all()
        .filter(|k| names.iter().any(|n| n.trim() == k.name))
        .collect())
}

fn install_host_tools() -> Result<()> {
    let missing: Vec<&str> = HOST_PACKAGES
        .iter()
        .filter(|(_, p)| !Path::new(p).exists())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::nix_is_root() {
        bail!("missing packages {missing:?}: run `cargo xtask vm-test` as root (it uses apt-get)");
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    // Another build may hold the dpkg lock (setup in a second worktree): wait for it.
    sh(Command::new("apt-get").args(["update", "-q"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(["-o", "DPkg::Lock::Timeout=600"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// apt with a configuration of our own per suite: sources, lists and cache under
/// `target/vm/apt/SUITE/`, the system's sources, preferences and state untouched.
struct Apt {
    dir: PathBuf,
    mirror: String,
    updated: Mutex<Vec<String>>,
}

impl Apt {
    fn new(vm: &Path) -> Result<Self> {
        Ok(Self {
            dir: vm.join("apt"),
            mirror: mirror()?,
            updated: Mutex::new(Vec::new()),
        })
    }

    fn cmd(&self, tool: &str, suite: &str) -> Result<Command> {
        let d = self.dir.join(suite);
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(d.join(sub))?;
        }
        let empty = d.join("empty");
        fs::create_dir_all(&empty)?;
        let sources = d.join("sources.list");
        fs::write(
            &sources,
            format!(
                "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} {suite} main\n",
                self.mirror
            ),
        )?;
        let mut c = Command::new(tool);
        let opt = |k: &str, v: &Path| format!("{k}={}", v.display());
        for o in [
            opt("Dir::Etc::sourcelist", &sources),
            opt("Dir::Etc::sourceparts", &empty),
            opt("Dir::Etc::preferences", &empty.join("preferences")),
            opt("Dir::Etc::preferencesparts", &empty),
            opt("Dir::State::Lists", &d.join("lists")),
            opt("Dir::Cache", &d.join("cache")),
            // Downloads land in our own directory, which _apt may not be able to write.
            "APT::Sandbox::User=root".to_string(),
        ] {
            c.args(["-o", &o]);
        }
        c.arg("-q");
        Ok(c)
    }

    /// `apt-get update` for `suite`, once per run.
    fn update(&self, suite: &str) -> Result<()> {
        let mut done = self.updated.lock().expect("apt state");
        if !done.iter().any(|s| s == suite) {
            eprintln!("xtask: apt-get update ({suite}, private lists)");
            let out = self
                .cmd("apt-get", suite)?
                .arg("update")
                .output()
                .context("failed to run apt-get update")?;
            if !out.status.success() {
                bail!(
                    "apt-get update for {suite} failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            done.push(suite.to_string());
        }
        Ok(())
    }

    /// The packages `package` depends on, in apt-cache's order (alternatives included).
    fn depends(&self, suite: &str, package: &str) -> Result<Vec<String>> {
        self.update(suite)?;
        let out = self
            .cmd("apt-cache", suite)?
            .args(["depends", package])
            .output()
            .context("failed to run apt-cache")?;
        if !out.status.success() {
            bail!(
                "apt-cache depends {package} ({suite}) failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().trim_start_matches('|').strip_prefix("Depends: "))
            .map(|p| p.trim().to_string())
            .collect())
    }

    /// The first package `meta` depends on that `wanted` accepts (the current kernel of a
    /// series; newer metapackages also depend on `linux-base-*` and `linux-modules-*`).
    fn resolve(&self, suite: &str, meta: &str, wanted: impl Fn(&str) -> bool) -> Result<String> {
        if wanted(meta) {
            // A pinned kernel package, not a metapackage.
            return Ok(meta.to_string());
        }
        let deps = self.depends(suite, meta)?;
        deps.iter().find(|p| wanted(p)).cloned().with_context(|| {
            format!(
                "apt-cache depends {meta} ({suite}) names no kernel package: {}",
                deps.join(", ")
            )
        })
    }

    /// Downloads `package` into `dir` and returns the .deb's path.
    fn download(&self, suite: &str, package: &str, dir: &Path) -> Result<PathBuf> {
        self.update(suite)?;
        fs::create_dir_all(dir)?;
        eprintln!("xtask: downloading {package} ({suite})");
        sh(self
            .cmd("apt-get", suite)?
            .args(["download", package])
            .current_dir(dir))?;
        fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
                })
            })
            .with_context(|| format!("apt-get download {package} left no .deb"))
    }
}

/// The Debian mirror the system's apt uses (deb822 `debian.sources`, or `sources.list`).
fn mirror() -> Result<String> {
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let from_deb822 = deb822
        .lines()
        .filter_map(|l| l.trim().strip_prefix("URIs:"))
        .flat_map(|u| u.split_whitespace())
        .find(|u| !u.contains("security"));
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    let from_list = list
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first() == Some(&"deb"))
        .filter_map(|w| w.into_iter().skip(1).find(|w| !w.starts_with('[')))
        .find(|u| !u.contains("security"));
    from_deb822
        .or(from_list)
        .map(|u| u.trim_end_matches('/').to_string())
        .context(
            "no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list",
        )
}

/// Extracts the files matching `pattern` (a tar wildcard such as `./boot/vmlinuz-*`) of a
/// .deb into `dest` (without the rest of the package: a kernel's modules are 300 MB).
fn extract(deb: &Path, pattern: &str, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest)?;
    sh(Command::new("bash")
        .arg("-c")
        .arg(r#"set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "$3""#)
        .args([
            "extract",
            &deb.to_string_lossy(),
            &dest.to_string_lossy(),
            pattern,
        ]))
}

/// Whether the .deb holds a file matching `pattern` (a tar wildcard).
fn deb_lists(deb: &Path, pattern: &str) -> Result<bool> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -t --wildcards "$2""#)
        .args(["deb_lists", &deb.to_string_lossy(), pattern])
        .stderr(Stdio::null())
        .output()
        .context("failed to run dpkg-deb")?;
    Ok(out.status.success() && !out.stdout.is_empty())
}

/// The cached vmlinuz of kernel `k`, downloaded when absent (or changed, with `refresh`).
fn kernel_image(vm: &Path, apt: &Apt, k: &Kernel, refresh: bool) -> Result<PathBuf> {
    let dir = vm.join("kernels").join(format!("{}-{}", k.suite, k.meta));
    let image = dir.join("vmlinuz");
    let package_file = dir.join("package");
    let cached = fs::read_to_string(&package_file).ok();
    if image.exists() && cached.is_some() && !refresh {
        return Ok(image);
    }
    let package = apt
        .resolve(k.suite, k.meta, |p| {
            p.starts_with(k.prefix) && p.ends_with(k.suffix)
        })
        .with_context(|| format!("kernel {} wants {}*{}", k.name, k.prefix, k.suffix))?;
    match package_version(&package) {
        Some(v) if v >= k.min_version => {}
        v => bail!(
            "{} ({}) depends on {package} (version {v:?}), older than the {}.{} that kernel {} needs",
            k.meta,
            k.suite,
            k.min_version.0,
            k.min_version.1,
            k.name
        ),
    }
    if image.exists() && cached.as_deref().map(str::trim) == Some(package.as_str()) {
        return Ok(image);
    }
    // Since 7.0 Debian splits the image package: linux-image-V (2 kB) depends on
    // linux-binary-V, which holds the kernel, in /boot (7.0, 7.1) or, from 7.2, in
    // /usr/lib/modules/V/.
    let binary = format!("linux-binary-{}", &package["linux-image-".len()..]);
    let split = apt.depends(k.suite, &package)?.contains(&binary);
    let tmp = vm.join("download");
    let _ = fs::remove_dir_all(&tmp);
    let x = tmp.join("x");
    let deb = apt.download(k.suite, if split { &binary } else { &package }, &tmp)?;
    let pattern = if deb_lists(&deb, "./usr/lib/modules/*/vmlinuz")? {
        "./usr/lib/modules/*/vmlinuz"
    } else {
        "./boot/vmlinuz-*"
    };
    extract(&deb, pattern, &x)?;
    let candidates = |d: &str| -> Vec<PathBuf> {
        fs::read_dir(x.join(d))
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let found = candidates("boot")
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .chain(
            candidates("usr/lib/modules")
                .into_iter()
                .map(|d| d.join("vmlinuz")),
        )
        .find(|p| p.is_file())
        .with_context(|| format!("{} has no kernel image", deb.display()))?;
    fs::create_dir_all(&dir)?;
    fs::copy(&found, &image)?;
    fs::write(&package_file, format!("{package}\n"))?;
    fs::remove_dir_all(&tmp)?;
    Ok(image)
}

/// The upstream (major, minor) of a kernel package name: `linux-image-7.3.4+deb13-amd64` and
/// `linux-image-6.1.0-50-amd64` give (7, 3) and (6, 1).
fn package_version(package: &str) -> Option<(u32, u32)> {
    let v = package.strip_prefix("linux-image-")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// busybox-static's binary, cached in `target/vm/busybox`.
fn busybox(vm: &Path, apt: &Apt) -> Result<PathBuf> {
    let bin = vm.join("busybox");
    if !bin.exists() {
        let tmp = vm.join("download");
        let _ = fs::remove_dir_all(&tmp);
        let deb = apt.download(BUSYBOX_SUITE, "busybox-static", &tmp)?;
        extract(&deb, "./bin/busybox", &tmp.join("x"))?;
        fs::copy(tmp.join("x/bin/busybox"), &bin)?;
        fs::remove_dir_all(&tmp)?;
    }
    dist::ensure_static(&bin)?;
    Ok(bin)
}

/// The guest's initramfs (newc cpio, gzip): busybox, syslat, workload, /init.
fn initramfs(vm: &Path, busybox: &Path, bins: &dist::StaticBins) -> Result<PathBuf> {
    let tree = vm.join("initramfs");
    let _ = fs::remove_dir_all(&tree);
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "root",
    ] {
        fs::create_dir_all(tree.join(d))?;
    }
    for (from, to) in [
        (busybox, "bin/busybox"),
        (bins.syslat.as_path(), "bin/syslat"),
        (bins.workload.as_path(), "bin/workload"),
    ] {
        fs::copy(from, tree.join(to)).with_context(|| format!("copying {}", from.display()))?;
    }
    fs::write(tree.join("init"), INIT_SCRIPT)?;
    sh(Command::new("chmod").arg("0755").arg(tree.join("init")))?;
    let out = vm.join("initramfs.cpio.gz");
    sh(Command::new("bash")
        .arg("-c")
        .arg(
            r#"set -o pipefail; cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$2""#,
        )
        .args(["initramfs", &tree.to_string_lossy(), &out.to_string_lossy()]))?;
    Ok(out)
}

fn qemu(accel: &str, image: &Path, initrd: &Path, cmdline: &str) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    if accel == "kvm" {
        c.args(["-accel", "kvm"]);
    } else {
        c.args(["-accel", "tcg,thread=single"]);
    }
    c.args(["-cpu", "max", "-smp", "2", "-m", "2G"])
        .arg("-kernel")
        .arg(image)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", cmdline])
        .args(["-nic", "none", "-nographic", "-no-reboot"])
        .stdin(Stdio::null());
    c
}

/// Whether KVM boots a stock kernel here (the answer is cached per host kernel).
fn kvm_works(vm: &Path, image: &Path, initrd: &Path) -> bool {
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let host = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cache = vm.join(format!("kvm-works-{}", host.trim()));
    if let Ok(answer) = fs::read_to_string(&cache) {
        return answer.trim() == "yes";
    }
    eprintln!("xtask: probing KVM (a 30 s boot at most)");
    let cmdline = format!("{BASE_CMDLINE} vmtest=probe");
    let works = run_guest(
        qemu("kvm", image, initrd, &cmdline),
        Duration::from_secs(30),
        |_| {},
    )
    .is_ok_and(|(out, _)| out.contains("VMTEST-BOOTED"));
    let _ = fs::write(&cache, if works { "yes\n" } else { "no\n" });
    works
}

/// Runs a guest until it exits or `timeout` passes (then kills it), calling `line` for each
/// console line as it arrives; returns the console output and whether it timed out.
fn run_guest(
    mut cmd: Command,
    timeout: Duration,
    mut line: impl FnMut(&str) + Send,
) -> Result<(String, bool)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("failed to start qemu-system-x86_64")?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let start = Instant::now();
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut all = String::new();
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let l = String::from_utf8_lossy(&buf);
                let l = l.trim_end_matches(['\n', '\r']).replace('\r', "");
                line(&l);
                all.push_str(&l);
                all.push('\n');
                buf.clear();
            }
            all
        });
        let errs = s.spawn(move || {
            let mut e = String::new();
            let _ = stderr.read_to_string(&mut e);
            e
        });
        let mut timed_out = false;
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > timeout {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut out = reader.join().expect("console reader");
        let errs = errs.join().expect("stderr reader");
        if !errs.is_empty() {
            out.push_str("--- qemu stderr ---\n");
            out.push_str(&errs);
        }
        Ok((out, timed_out))
    })
}

/// Boots kernel `k`, runs the suite, writes the console log to `log`.
fn boot(
    k: &Kernel,
    image: &Path,
    initrd: &Path,
    accel: &str,
    timeout: Duration,
    log: &Path,
    t0: Instant,
) -> Result<Outcome> {
    let package = fs::read_to_string(image.with_file_name("package")).unwrap_or_default();
    let cmdline = format!("{BASE_CMDLINE} {}", k.cmdline);
    let cmdline = cmdline.trim();
    progress(
        t0,
        &format!("{}: booting {} ({cmdline})", k.name, package.trim()),
    );
    let start = Instant::now();
    let mut file = fs::File::create(log)?;
    writeln!(
        file,
        "# cargo xtask vm-test: {} = {}, accel {accel}, cmdline: {cmdline}",
        k.name,
        package.trim()
    )?;
    let mut outcome = Outcome::default();
    let (out, timed_out) = run_guest(qemu(accel, image, initrd, cmdline), timeout, |l| {
        let _ = writeln!(file, "{l}");
        if l.contains("VMTEST-BOOTED") {
            progress(
                t0,
                &format!("{}: booted in {}s", k.name, start.elapsed().as_secs()),
            );
        }
        if let Some((name, passed, _)) = parse_check(l) {
            let word = if passed { "PASS" } else { "FAIL" };
            progress(t0, &format!("{}: {name} {word}", k.name));
        }
    })?;
    for l in out.lines() {
        if let Some((name, passed, detail)) = parse_check(l) {
            outcome.checks.insert(name, (passed, detail));
        }
    }
    outcome.booted = out.contains("VMTEST-BOOTED");
    outcome.finished = out.lines().any(|l| l.trim_end().ends_with("VMTEST-END"));
    outcome.timed_out = timed_out;
    outcome.secs = start.elapsed().as_secs_f64();
    if let Some(qemu_err) = out.split_once("--- qemu stderr ---\n").map(|(_, e)| e) {
        write!(file, "--- qemu stderr ---\n{qemu_err}")?;
    }
    let passed = CHECKS
        .iter()
        .filter(|c| outcome.checks.get(**c).is_some_and(|(p, _)| *p))
        .count();
    let state = if timed_out {
        format!("killed after {} s", timeout.as_secs())
    } else if !outcome.finished {
        "guest ended before the suite did".to_string()
    } else {
        "finished".to_string()
    };
    writeln!(
        file,
        "# {}: {passed}/{} passed, {state}, {:.0} s",
        k.name,
        CHECKS.len(),
        outcome.secs
    )?;
    progress(
        t0,
        &format!(
            "{}: {passed}/{} passed, {state}, {:.0} s",
            k.name,
            CHECKS.len(),
            outcome.secs
        ),
    );
    Ok(outcome)
}

/// `CHECK <name> PASS|FAIL <detail>` anywhere in a console line (a kernel message may
/// precede it on the same line).
fn parse_check(line: &str) -> Option<(String, bool, String)> {
    let rest = &line[line.find("CHECK ")? + "CHECK ".len()..];
    let mut words = rest.splitn(3, ' ');
    let name = words.next()?.to_string();
    let passed = match words.next()? {
        "PASS" => true,
        "FAIL" => false,
        _ => return None,
    };
    Some((name, passed, words.next().unwrap_or("").trim().to_string()))
}

fn all_passed(o: &Outcome) -> bool {
    o.error.is_none()
        && o.finished
        && !o.timed_out
        && CHECKS
            .iter()
            .all(|c| o.checks.get(*c).is_some_and(|(p, _)| *p))
        && o.checks.values().all(|(p, _)| *p)
}

/// The kernel × check table, then every failure with its detail.
fn report(kernels: &[&Kernel], results: &BTreeMap<&str, Outcome>) -> String {
    let mut extra: Vec<&str> = Vec::new();
    for o in results.values() {
        for name in o.checks.keys() {
            if !CHECKS.contains(&name.as_str()) && !extra.contains(&name.as_str()) {
                extra.push(name);
            }
        }
    }
    let rows: Vec<&str> = CHECKS.iter().copied().chain(extra).collect();
    let w = rows.iter().map(|r| r.len()).max().unwrap_or(5).max(8);
    let cols: Vec<usize> = kernels.iter().map(|k| k.name.len().max(7)).collect();
    let mut s = format!("\n{:w$}", "check");
    for (k, c) in kernels.iter().zip(&cols) {
        s += &format!("  {:c$}", k.name);
    }
    s += "\n";
    let mut notes = String::new();
    for r in &rows {
        s += &format!("{r:w$}");
        for (k, c) in kernels.iter().zip(&cols) {
            let o = &results[k.name];
            let cell = match o.checks.get(*r) {
                Some((true, _)) => "PASS",
                Some((false, d)) => {
                    notes += &format!("{} {r}: FAIL {d}\n", k.name);
                    "FAIL"
                }
                None => "-",
            };
            s += &format!("  {cell:c$}");
        }
        s += "\n";
    }
    s += &format!("{:w$}", "passed");
    for (k, c) in kernels.iter().zip(&cols) {
        let o = &results[k.name];
        let n = CHECKS
            .iter()
            .filter(|ch| o.checks.get(**ch).is_some_and(|(p, _)| *p))
            .count();
        s += &format!("  {:c$}", format!("{n}/{}", CHECKS.len()));
    }
    s += "\n";
    // The eBPF object each kernel ran (the doctor check's detail: `object=NAME ...`).
    s += &format!("{:w$}", "object");
    for (k, c) in kernels.iter().zip(&cols) {
        let object = results[k.name]
            .checks
            .get("doctor")
            .and_then(|(_, d)| d.split_whitespace().find_map(|w| w.strip_prefix("object=")))
            .unwrap_or("-");
        s += &format!("  {object:c$}");
    }
    s += "\n";
    s += &format!("{:w$}", "seconds");
    for (k, c) in kernels.iter().zip(&cols) {
        s += &format!("  {:c$}", format!("{:.0}", results[k.name].secs));
    }
    s += "\n";
    for k in kernels {
        let o = &results[k.name];
        if let Some(e) = &o.error {
            notes += &format!("{}: did not run: {e}\n", k.name);
        } else if o.timed_out {
            notes += &format!(
                "{}: the guest was killed at the time limit (booted: {})\n",
                k.name, o.booted
            );
        } else if !o.finished {
            notes += &format!(
                "{}: the guest ended before the suite did (booted: {}; see its log)\n",
                k.name, o.booted
            );
        }
        let missing: Vec<&str> = CHECKS
            .iter()
            .copied()
            .filter(|c| !o.checks.contains_key(*c))
            .collect();
        if !missing.is_empty() && o.error.is_none() {
            notes += &format!("{}: no result for {}\n", k.name, missing.join(", "));
        }
    }
    if !notes.is_empty() {
        s += "\n";
        s += &notes;
    }
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host expects exactly the checks the guest script runs.
    #[test]
    fn checks_match_the_guest_script() {
        let in_script: Vec<&str> = INIT_SCRIPT
            .lines()
            .filter_map(|l| l.strip_prefix("check "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(in_script, CHECKS);
    }

    #[test]
    fn parses_check_lines() {
        assert_eq!(
            parse_check("[  3.1] x CHECK pid PASS getppid=5 (1.0s)"),
            Some(("pid".into(), true, "getppid=5 (1.0s)".into()))
        );
        assert_eq!(
            parse_check("CHECK top FAIL"),
            Some(("top".into(), false, String::new()))
        );
        assert_eq!(parse_check("CHECK top maybe"), None);
        assert_eq!(parse_check("no check here"), None);
    }

    #[test]
    fn selects_kernels() {
        let names = |v: &[&str]| {
            select(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map(|ks| ks.iter().map(|k| k.name).collect::<Vec<_>>())
        };
        assert_eq!(names(&[]).expect("all").len(), KERNELS.len());
        assert_eq!(names(&["6.12", "6.1"]).expect("two"), ["6.1", "6.12"]);
        assert!(names(&["4.19"]).is_err());
    }

    #[test]
    fn reads_package_versions() {
        assert_eq!(
            package_version("linux-image-7.3.4+deb13-amd64"),
            Some((7, 3))
        );
        assert_eq!(package_version("linux-image-6.1.0-50-amd64"), Some((6, 1)));
        assert_eq!(
            package_version("linux-image-6.12.117+deb13-rt-amd64"),
            Some((6, 12))
        );
        assert_eq!(package_version("linux-image-amd64"), None);
        assert_eq!(package_version("busybox"), None);
    }
}
