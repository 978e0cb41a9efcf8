//! Starts `-- CMD` so that not one of its syscalls is missed: the child is forked, parks
//! in a spin loop on a shared page (no syscalls), syslat adds its pid to the target set,
//! and only then lets it `execve`. The first syscall traced is that `execve`.
//!
//! `std::process::Command` cannot do this: its `spawn` waits for the `exec`, which would
//! deadlock with a child waiting for syslat.
//!
//! The command gets the signal dispositions and mask syslat itself was started with, as
//! under strace or perf: they are read before Rust's runtime starts (which ignores SIGPIPE,
//! a setting an exec keeps) and restored in the child before `execve`.

use std::{
    ffi::{CString, OsStr, c_char},
    num::NonZeroUsize,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::PathBuf,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use nix::{
    sys::{
        mman::{MapFlags, ProtFlags, mmap_anonymous, munmap},
        wait::{WaitStatus, waitpid},
    },
    unistd::{ForkResult, Pid, fork},
};

/// Why the command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Not found (as a path, or in PATH).
    #[error("command not found: {0}")]
    NotFound(String),
    /// Found, but not executable.
    #[error("cannot run {0}: permission denied (not executable)")]
    NotExecutable(String),
    /// A directory.
    #[error("cannot run {0}: is a directory")]
    Directory(String),
    /// An argument holds a NUL byte.
    #[error("argument contains a NUL byte: {0:?}")]
    Nul(String),
    /// fork/mmap failed.
    #[error("failed to start {cmd}")]
    Sys {
        /// The command.
        cmd: String,
        /// The error.
        #[source]
        err: nix::Error,
    },
    /// The child never reached its start gate.
    #[error("the child process for {0} did not start")]
    Stuck(String),
}

/// Signals (bit `n - 1` for signal `n`) ignored when syslat started.
static START_IGNORED: AtomicU64 = AtomicU64::new(0);
/// Signals blocked when syslat started.
static START_BLOCKED: AtomicU64 = AtomicU64::new(0);
/// Whether the two above were read (not in unit-test binaries, which start elsewhere).
static START_READ: AtomicBool = AtomicBool::new(false);

/// Reads the start-up dispositions and mask. Runs from `.init_array`, before `main` and
/// before Rust's runtime sets SIGPIPE to ignored.
extern "C" fn read_start_signals() {
    let (mut ignored, mut blocked) = (0u64, 0u64);
    // SAFETY: sigaction and sigprocmask only read the current settings into local,
    // zero-initialised structs; no handler is installed.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) == 0 {
            for sig in 1..=64 {
                if libc::sigismember(&mask, sig) == 1 {
                    blocked |= 1 << (sig - 1);
                }
            }
        }
        for sig in 1..=64 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                ignored |= 1 << (sig - 1);
            }
        }
    }
    START_IGNORED.store(ignored, Ordering::Relaxed);
    START_BLOCKED.store(blocked, Ordering::Relaxed);
    START_READ.store(true, Ordering::Release);
}

/// The `.init_array` entry that runs [`read_start_signals`] at load time.
#[used]
// SAFETY: `.init_array` holds plain `extern "C" fn()` pointers, which the C runtime calls
// once before `main`; `read_start_signals` has that signature and touches only atomics
// and libc calls that are safe that early.
#[unsafe(link_section = ".init_array")]
static READ_START_SIGNALS: extern "C" fn() = read_start_signals;

/// Whether syslat was started with `sig` ignored.
pub fn ignored_at_start(sig: i32) -> bool {
    (1..=64).contains(&sig) && START_IGNORED.load(Ordering::Relaxed) & (1 << (sig - 1)) != 0
}

/// In the child, before `execve`: every disposition back to what syslat was started with
/// (ignored, or the default: handlers do not survive an exec anyway) and the start mask.
/// Only async-signal-safe calls.
///
/// # Safety
/// Called in a forked child between `fork` and `execve`, or in a process about to exec.
unsafe fn restore_start_signals() {
    let read = START_READ.load(Ordering::Acquire);
    let ignored = if read {
        START_IGNORED.load(Ordering::Relaxed)
    } else {
        0
    };
    let blocked = if read {
        START_BLOCKED.load(Ordering::Relaxed)
    } else {
        0
    };
    // SAFETY: sigaction/sigprocmask/sigaddset on local structs; errors (SIGKILL, SIGSTOP,
    // the C library's internal signals) are left alone.
    unsafe {
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = if ignored & (1 << (sig - 1)) != 0 {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        for sig in 1..=64 {
            if blocked & (1 << (sig - 1)) != 0 {
                libc::sigaddset(&mut mask, sig);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
    }
}

const READY: u32 = 1;
const GO: u32 = 2;

/// A forked child parked before `execve`.
#[derive(Debug)]
pub struct Parked {
    pid: u32,
    page: NonNull<core::ffi::c_void>,
}

/// Finds `program` like `execvp` would: as given when it has a `/`, else the first
/// executable file of that name in `PATH`; says why when there is none.
pub fn resolve(program: &str) -> Result<PathBuf, LaunchError> {
    let executable = |m: &std::fs::Metadata| m.is_file() && m.permissions().mode() & 0o111 != 0;
    let shown = || crate::output::text::escape(program);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return match p.metadata() {
            Ok(m) if executable(&m) => Ok(p),
            Ok(m) if m.is_dir() => Err(LaunchError::Directory(shown())),
            Ok(_) => Err(LaunchError::NotExecutable(shown())),
            Err(_) => Err(LaunchError::NotFound(shown())),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut not_executable = false;
    for p in std::env::split_paths(&path).map(|d| d.join(program)) {
        match p.metadata() {
            Ok(m) if executable(&m) => return Ok(p),
            // execvp goes on past a file it may not run, and reports EACCES at the end.
            Ok(m) if m.is_file() => not_executable = true,
            _ => {}
        }
    }
    Err(if not_executable {
        LaunchError::NotExecutable(shown())
    } else {
        LaunchError::NotFound(shown())
    })
}

fn cstring(s: &OsStr) -> Result<CString, LaunchError> {
    CString::new(s.as_bytes()).map_err(|_| LaunchError::Nul(s.to_string_lossy().into_owned()))
}

/// Forks `argv` and parks the child before `execve`; returns once it is parked.
pub fn spawn_parked(argv: &[String]) -> Result<Parked, LaunchError> {
    let cmd = argv.first().cloned().unwrap_or_default();
    let path = cstring(resolve(&cmd)?.as_os_str())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(OsStr::new(a)))
        .collect::<Result<_, _>>()?;
    let mut arg_ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let sys = |err| LaunchError::Sys {
        cmd: cmd.clone(),
        err,
    };
    let page_len = NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: a fresh anonymous shared mapping; no existing memory is affected.
    let page = unsafe {
        mmap_anonymous(
            None,
            page_len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }
    .map_err(sys)?;
    // SAFETY: the page is zeroed, page-aligned and lives until `Parked` is dropped (the
    // child's copy lives until its execve).
    let gate: &AtomicU32 = unsafe { AtomicU32::from_ptr(page.as_ptr().cast()) };
    let parent = std::process::id() as i32;
    // Keeps the `.init_array` entry's object file in the link.
    std::hint::black_box(&READ_START_SIGNALS);
    // SAFETY: between fork and execve the child only makes async-signal-safe calls
    // (prctl, getppid, atomics, execv, _exit) and allocates nothing.
    match unsafe { fork() }.map_err(sys)? {
        ForkResult::Child => {
            // SAFETY: plain syscalls; the pointers are valid C strings built before fork.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(126);
                }
                gate.store(READY, Ordering::Release);
                while gate.load(Ordering::Acquire) != GO {
                    std::hint::spin_loop();
                }
                // After the gate: the spin loop makes no syscall, so none of these is
                // traced before the execve.
                restore_start_signals();
                libc::execv(path.as_ptr(), arg_ptrs.as_ptr());
                libc::_exit(127);
            }
        }
        ForkResult::Parent { child } => {
            let parked = Parked {
                pid: child.as_raw() as u32,
                page,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while gate.load(Ordering::Acquire) != READY {
                if Instant::now() > deadline {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(LaunchError::Stuck(cmd));
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            Ok(parked)
        }
    }
}

impl Parked {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the child `execve`. Returns its pid.
    pub fn release(self) -> u32 {
        // SAFETY: the page stays mapped until `self` is dropped at the end of this call.
        let gate = unsafe { AtomicU32::from_ptr(self.page.as_ptr().cast()) };
        gate.store(GO, Ordering::Release);
        self.pid
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // SAFETY: unmaps the page mapped in `spawn_parked`; nothing refers to it after this.
        let _ = unsafe { munmap(self.page, 4096) };
    }
}

/// Whether `pid` shares syslat's process group and that group is in the foreground of
/// syslat's controlling terminal: then a SIGINT or SIGQUIT typed there reached both.
pub fn in_foreground_group(pid: u32) -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    let ours = nix::unistd::getpgrp();
    nix::unistd::tcgetpgrp(&tty).is_ok_and(|fg| fg == ours)
        && nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))).is_ok_and(|g| g == ours)
}

/// Waits for child `pid` to end; returns the shell-style status (code, or 128+signal).
pub async fn wait(pid: u32) -> std::io::Result<i32> {
    tokio::task::spawn_blocking(move || {
        loop {
            match waitpid(Pid::from_raw(pid as i32), None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(std::io::Error::from(e)),
            }
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        assert!(resolve("sh").unwrap().is_absolute());
        assert!(matches!(
            resolve("no-such-program-xyz"),
            Err(LaunchError::NotFound(_))
        ));
        assert!(matches!(
            resolve("/nonexistent/bin"),
            Err(LaunchError::NotFound(_))
        ));
        assert!(matches!(resolve("/tmp"), Err(LaunchError::Directory(_))));
        let plain = std::env::temp_dir().join(format!("syslat-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = resolve(plain.to_str().unwrap());
        let _ = std::fs::remove_file(&plain);
        assert!(matches!(r, Err(LaunchError::NotExecutable(_))));
    }

    #[tokio::test]
    async fn parks_then_runs() {
        let parked = spawn_parked(&["sh".into(), "-c".into(), "exit 7".into()]).unwrap();
        let pid = parked.pid();
        assert!(super::super::target::alive(pid), "parked child is alive");
        assert_eq!(parked.release(), pid);
        assert_eq!(wait(pid).await.unwrap(), 7);
        let parked = spawn_parked(&["sh".into(), "-c".into(), "kill -TERM $$".into()]).unwrap();
        let pid = parked.release();
        assert_eq!(wait(pid).await.unwrap(), 128 + 15);
    }
}
