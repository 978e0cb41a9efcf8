//! A workload with an exactly known syscall mix, for syslat's integration tests.
//!
//! Usage: `workload STEP [STEP ...]`, steps run in order:
//! - `getppid N`: N raw getppid calls;
//! - `threads T N`: T threads, N getppid calls each;
//! - `sleep N MS`: N clock_nanosleep calls of MS milliseconds;
//! - `sleep-us N US`: N clock_nanosleep calls of US microseconds;
//! - `pipe N MS`: N blocking reads on a pipe, each woken by another thread after MS ms;
//! - `timed-sleep N MS`, `timed-pipe N MS`: as `sleep` and `pipe`, each call bracketed by
//!   two reads of CLOCK_MONOTONIC (the clock syslat's eBPF reads), then print those
//!   durations in ns on one line, in call order. Every call's time in the kernel lies
//!   inside its bracket, so syslat's percentiles of the same calls can be no larger (but
//!   for its histogram's 0.1 % rounding): an oracle for latency checks that holds however
//!   slow the machine is;
//! - `enoent N`: N openat calls on a missing path (ENOENT);
//! - `forks K`: K children that exit at once (via fork + _exit), each reaped;
//! - `named-children N K`: N children one after another, child `i` renamed `c<i>` (prctl
//!   PR_SET_NAME) before it makes K getppid calls and exits (via fork + _exit), each reaped:
//!   N short-lived processes of distinct names;
//! - `mixed N M`: N getppid calls on the main thread while a second thread makes M;
//! - `zoo N MS`: N rounds of one call each of the `tests::ZOO` syscalls (getters, pipe and file
//!   metadata calls, none with lasting effects), with an MS-millisecond clock_nanosleep
//!   after each round: a recording with many distinct syscalls over many intervals;
//! - `gate`: block until a line arrives on stdin;
//! - `comm NAME`: rename the process (prctl PR_SET_NAME: any bytes but NUL, 15 kept);
//! - `time-getppid N`: N getppid calls, then print the mean ns per call (for the bench);
//! - `time-pingpong N`: N round trips of a byte between two threads pinned to one CPU over
//!   two pipes (two context switches each), then print the mean ns per round trip;
//!   both count the measuring threads' own CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//!   the clock on the wall: a process of the machine that takes the CPU meanwhile adds
//!   nothing, so a shared machine gives the same figures as a quiet one;
//! - `pinned-threads T N CPU`: T threads pinned to CPU, started together, N getppid calls
//!   each (preemption inside syscalls on one CPU), then print the threads' involuntary
//!   context switches (getrusage, RUSAGE_THREAD);
//! - `starve N US SPIN_MS IDLE_MS`: a SCHED_FIFO thread (priority 10) pinned to CPU 0
//!   spins SPIN_MS and sleeps IDLE_MS in a loop while a thread of lower priority pinned to
//!   CPU 0 makes N clock_nanosleep calls of US microseconds (so it often wakes while the CPU
//!   is taken, and waits for it), then print that thread's id and the growth of its
//!   `/proc/thread-self/schedstat` run_delay (ns) over the loop: `TID RUN_DELAY_NS`. The
//!   sleeper is SCHED_FIFO too (priority 5): PREEMPT_RT kernels expire a normal task's
//!   sleep timer in a kernel thread the hog would starve (the sleeper would stay blocked,
//!   not runnable), a real-time task's in hard interrupt context as every kernel does.
//!   Needs root (SCHED_FIFO);
//! - `bpf-progs`: print the id, type and name of every loaded BPF program, one a line
//!   (through bpf(2), for machines without bpftool, such as `cargo xtask vm-test`'s guests);
//! - `json FILE KEY`: print one value of the summary line of a `syslat record -f json` file
//!   (for shells without jq): `FIELD` (a top-level field), `rows` (how many rows), or
//!   `SYSCALL.FIELD[.SUB]` (e.g. `openat.errnos.ENOENT`), integers summed over the syscall's
//!   rows; `none` when absent.
//!
//! Raw syscalls only (libc::syscall), so nothing is cached or batched by libc.

use std::{process::exit, thread, time::Duration};

fn getppid(n: u64) {
    for _ in 0..n {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

fn sleep(n: u64, ms: u64) {
    sleep_us(n, ms * 1000, None);
}

/// CLOCK_MONOTONIC now, ns.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Runs `call`, pushing its duration (CLOCK_MONOTONIC, ns) to `times` when given.
fn timed(times: &mut Option<&mut Vec<u64>>, call: impl FnOnce()) {
    match times {
        None => call(),
        Some(times) => {
            let t0 = monotonic_ns();
            call();
            times.push(monotonic_ns() - t0);
        }
    }
}

/// Prints `times` on one line, separated by spaces.
fn print_times(times: &[u64]) {
    let line: Vec<String> = times.iter().map(u64::to_string).collect();
    println!("{}", line.join(" "));
}

fn sleep_us(n: u64, us: u64, mut times: Option<&mut Vec<u64>>) {
    let ts = libc::timespec {
        tv_sec: (us / 1_000_000) as _,
        tv_nsec: ((us % 1_000_000) * 1000) as _,
    };
    for _ in 0..n {
        timed(&mut times, || {
            // SAFETY: valid timespec pointer, null remainder.
            unsafe {
                libc::syscall(
                    libc::SYS_clock_nanosleep,
                    libc::CLOCK_MONOTONIC,
                    0,
                    &ts,
                    std::ptr::null_mut::<libc::timespec>(),
                )
            };
        });
    }
}

fn pipe_reads(n: u64, ms: u64, mut times: Option<&mut Vec<u64>>) {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("pipe failed");
        exit(1);
    }
    let (r, w) = (fds[0], fds[1]);
    let writer = thread::spawn(move || {
        for _ in 0..n {
            thread::sleep(Duration::from_millis(ms));
            let b = [1u8];
            // SAFETY: valid fd and 1-byte buffer.
            unsafe { libc::syscall(libc::SYS_write, w, b.as_ptr(), 1) };
        }
    });
    let mut b = [0u8; 1];
    for _ in 0..n {
        timed(&mut times, || {
            // SAFETY: valid fd and 1-byte buffer.
            unsafe { libc::syscall(libc::SYS_read, r, b.as_mut_ptr(), 1) };
        });
    }
    writer.join().expect("writer thread");
}

/// Renames the calling thread (the main thread: the process's name) to `name`.
fn set_comm(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from `buf`.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr()) };
}

/// Pins the calling thread to CPU 0, so two threads must switch to take turns.
fn pin_to_cpu0() {
    pin_to(0);
}

/// Pins the calling thread to `cpu`; exits when that fails (a CPU that does not exist).
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it (it checks
    // the bound); sched_setaffinity(0, ..) reads it for the calling thread.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if r != 0 {
        eprintln!(
            "workload: cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
        exit(1);
    }
}

/// `t` threads pinned to `cpu`, released together, `n` getppid calls each; returns how
/// many times they were switched out involuntarily (preempted).
fn pinned_threads(t: u64, n: u64, cpu: usize) -> i64 {
    let start = std::sync::Arc::new(std::sync::Barrier::new(t as usize));
    let hs: Vec<_> = (0..t)
        .map(|_| {
            let start = start.clone();
            thread::spawn(move || {
                pin_to(cpu);
                start.wait();
                getppid(n);
                // SAFETY: a zeroed rusage is valid; getrusage writes it.
                unsafe {
                    let mut usage: libc::rusage = std::mem::zeroed();
                    libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
                    usage.ru_nivcsw
                }
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().expect("thread")).sum()
}

/// bpf(2) on a zeroed 128-byte attribute block (words in little-endian order: two u32 fields share a u64).
fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> libc::c_long {
    // SAFETY: attr is a valid, writable 128-byte block (larger than any union member used
    // here; the kernel accepts a larger size when the tail is zero).
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            size_of::<[u64; 16]>(),
        )
    }
}

/// Every loaded BPF program as (id, type, name), walked with BPF_PROG_GET_NEXT_ID,
/// BPF_PROG_GET_FD_BY_ID and BPF_OBJ_GET_INFO_BY_FD.
fn bpf_progs() -> std::io::Result<Vec<(u32, u32, String)>> {
    const PROG_GET_NEXT_ID: libc::c_long = 11;
    const PROG_GET_FD_BY_ID: libc::c_long = 13;
    const OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    let mut progs = Vec::new();
    let mut id = 0u32;
    loop {
        // union bpf_attr { u32 start_id; u32 next_id; u32 open_flags; }
        let mut attr = [0u64; 16];
        attr[0] = u64::from(id);
        if bpf(PROG_GET_NEXT_ID, &mut attr) != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(progs);
            }
            return Err(e);
        }
        id = (attr[0] >> 32) as u32;
        let mut attr = [0u64; 16];
        attr[0] = u64::from(id); // prog_id
        let fd = bpf(PROG_GET_FD_BY_ID, &mut attr);
        if fd < 0 {
            // Unloaded between the two calls.
            continue;
        }
        // struct bpf_prog_info: type at 0, id at 4, name[16] at 64.
        let mut info = [0u8; 256];
        let mut attr = [0u64; 16];
        attr[0] = (fd as u64) | ((info.len() as u64) << 32); // bpf_fd, info_len
        attr[1] = info.as_mut_ptr() as u64; // info
        let r = bpf(OBJ_GET_INFO_BY_FD, &mut attr);
        let e = std::io::Error::last_os_error();
        // SAFETY: fd is a descriptor bpf(2) just gave us.
        unsafe { libc::close(fd as i32) };
        if r != 0 {
            return Err(e);
        }
        let ty = u32::from_ne_bytes(info[0..4].try_into().expect("4 bytes"));
        let name = &info[64..80];
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        progs.push((id, ty, String::from_utf8_lossy(&name[..len]).into_owned()));
    }
}

/// One value of the summary line of a JSON Lines recording (see the module doc).
fn json_value(file: &str, key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let summary: serde_json::Value = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .ok_or_else(|| format!("{file}: no summary line"))?;
    let rows = summary["rows"].as_array().cloned().unwrap_or_default();
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "none".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    if key == "rows" {
        return Ok(rows.len().to_string());
    }
    let Some((syscall, path)) = key.split_once('.') else {
        return Ok(show(&summary[key]));
    };
    let values: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["syscall"] == syscall)
        .map(|r| path.split('.').fold(r, |v, k| &v[k]))
        .collect();
    Ok(match values.as_slice() {
        [] => "none".to_string(),
        [one] => show(one),
        many => match many.iter().map(|v| v.as_u64()).sum::<Option<u64>>() {
            Some(sum) => sum.to_string(),
            None => "none".to_string(),
        },
    })
}

/// The run_delay field (ns waiting on a run queue) of the calling thread's schedstat.
fn run_delay() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| {
            eprintln!("workload: cannot read /proc/thread-self/schedstat");
            exit(1)
        })
}

/// The calling thread's CPU time so far, ns (`CLOCK_THREAD_CPUTIME_ID`: the scheduler's
/// sum_exec_runtime brought up to now, which schedstat's copy is only at a tick).
fn cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        eprintln!("workload: cannot read the thread's CPU clock");
        exit(1);
    }
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Makes the calling thread SCHED_FIFO at `priority`; exits when refused (not root).
fn fifo(priority: i32) {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: a valid sched_param for the calling thread (0).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        eprintln!(
            "workload: SCHED_FIFO refused: {}",
            std::io::Error::last_os_error()
        );
        exit(1);
    }
}

fn starve(n: u64, us: u64, spin_ms: u64, idle_ms: u64) -> (i64, u64) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    let hog = thread::spawn(move || {
        pin_to_cpu0();
        fifo(10);
        while !DONE.load(Ordering::Relaxed) {
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_millis(spin_ms) {
                std::hint::spin_loop();
            }
            thread::sleep(Duration::from_millis(idle_ms));
        }
    });
    pin_to_cpu0();
    fifo(5);
    // SAFETY: gettid takes no arguments.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    let before = run_delay();
    sleep_us(n, us, None);
    let after = run_delay();
    DONE.store(true, Ordering::Relaxed);
    hog.join().expect("hog thread");
    (tid, after.saturating_sub(before))
}

/// Mean CPU ns (both threads' together) per round trip of `n` one-byte ping-pongs
/// between two threads on one CPU.
fn pingpong(n: u64) -> f64 {
    let (mut a, mut b) = ([0i32; 2], [0i32; 2]);
    // SAFETY: each array has room for two descriptors.
    if unsafe { libc::pipe(a.as_mut_ptr()) } != 0 || unsafe { libc::pipe(b.as_mut_ptr()) } != 0 {
        eprintln!("pipe failed");
        exit(1);
    }
    let hop = |from: i32, to: i32| {
        let mut c = [0u8; 1];
        // SAFETY: valid fds and a 1-byte buffer.
        unsafe {
            libc::syscall(libc::SYS_read, from, c.as_mut_ptr(), 1);
            libc::syscall(libc::SYS_write, to, c.as_ptr(), 1);
        }
    };
    let (a_read, b_write) = (a[0], b[1]);
    let peer = thread::spawn(move || {
        pin_to_cpu0();
        let t0 = cpu_ns();
        for _ in 0..n {
            hop(a_read, b_write);
        }
        cpu_ns() - t0
    });
    pin_to_cpu0();
    let t0 = cpu_ns();
    for _ in 0..n {
        let c = [0u8; 1];
        let mut d = [0u8; 1];
        // SAFETY: valid fds and 1-byte buffers.
        unsafe {
            libc::syscall(libc::SYS_write, a[1], c.as_ptr(), 1);
            libc::syscall(libc::SYS_read, b[0], d.as_mut_ptr(), 1);
        }
    }
    let mine = cpu_ns() - t0;
    let theirs = peer.join().expect("peer thread");
    (mine + theirs) as f64 / n.max(1) as f64
}

fn enoent(n: u64) {
    let path = c"/nonexistent/syslat-test-path";
    for _ in 0..n {
        // SAFETY: valid NUL-terminated path.
        unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                path.as_ptr(),
                libc::O_RDONLY,
            )
        };
    }
}

fn forks(k: u64) {
    for _ in 0..k {
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: async-signal-safe exit in the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

fn named_children(n: u64, k: u64) {
    for i in 0..n {
        // Formatted before the fork: the child must not allocate.
        let name = format!("c{i}");
        // SAFETY: the child only renames itself (prctl), makes raw syscalls and calls
        // _exit, all async-signal-safe.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            set_comm(&name);
            getppid(k);
            // SAFETY: async-signal-safe exit in the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

fn zoo(rounds: u64, ms: u64) {
    let mut buf = [0u8; 4096];
    let mut fds = [0i32; 2];
    let root = c"/";
    let exe = c"/proc/self/exe";
    for _ in 0..rounds {
        // SAFETY: every pointer passed points to a live local buffer at least as large as
        // the call writes (4096 bytes covers every struct here: rusage, tms, utsname,
        // sysinfo, timespec, stat, statfs, sigset, stack_t, itimerval, rlimit), or is a
        // NUL-terminated path; the fds used are the ones this round opened, and the calls
        // change nothing that lasts (umask is set to the value it returns, signal 0 only
        // checks the process exists).
        unsafe {
            let b = buf.as_mut_ptr();
            let n = buf.len();
            libc::syscall(libc::SYS_getpid);
            libc::syscall(libc::SYS_getppid);
            libc::syscall(libc::SYS_getuid);
            libc::syscall(libc::SYS_geteuid);
            libc::syscall(libc::SYS_getgid);
            libc::syscall(libc::SYS_getegid);
            let tid = libc::syscall(libc::SYS_gettid);
            libc::syscall(libc::SYS_getsid, 0);
            libc::syscall(libc::SYS_getpgid, 0);
            libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0);
            libc::syscall(libc::SYS_sched_yield);
            libc::syscall(libc::SYS_sched_getaffinity, 0, 128, b);
            libc::syscall(libc::SYS_sched_getscheduler, 0);
            libc::syscall(libc::SYS_sched_getparam, 0, b);
            libc::syscall(libc::SYS_getrusage, libc::RUSAGE_SELF, b);
            libc::syscall(libc::SYS_times, b);
            libc::syscall(libc::SYS_uname, b);
            libc::syscall(libc::SYS_sysinfo, b);
            let old = libc::syscall(libc::SYS_umask, 0o22);
            libc::syscall(libc::SYS_umask, old);
            libc::syscall(libc::SYS_getcwd, b, n);
            libc::syscall(
                libc::SYS_prlimit64,
                0,
                libc::RLIMIT_NOFILE,
                std::ptr::null::<u8>(),
                b,
            );
            libc::syscall(
                libc::SYS_getcpu,
                b,
                std::ptr::null_mut::<u8>(),
                std::ptr::null_mut::<u8>(),
            );
            libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, b);
            libc::syscall(libc::SYS_clock_getres, libc::CLOCK_MONOTONIC, b);
            libc::syscall(libc::SYS_gettimeofday, b, std::ptr::null_mut::<u8>());
            libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<u8>());
            libc::syscall(libc::SYS_getresuid, b, b.add(8), b.add(16));
            libc::syscall(libc::SYS_getresgid, b, b.add(8), b.add(16));
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                std::ptr::null::<u8>(),
                b,
                8,
            );
            libc::syscall(libc::SYS_rt_sigpending, b, 8);
            libc::syscall(libc::SYS_sigaltstack, std::ptr::null::<u8>(), b);
            libc::syscall(libc::SYS_getitimer, libc::ITIMER_REAL, b);
            libc::syscall(libc::SYS_prctl, libc::PR_GET_DUMPABLE, 0, 0, 0, 0);
            libc::syscall(libc::SYS_pipe2, fds.as_mut_ptr(), libc::O_CLOEXEC);
            libc::syscall(libc::SYS_write, fds[1], b, 1);
            libc::syscall(libc::SYS_read, fds[0], b, 1);
            let d = libc::syscall(libc::SYS_dup, fds[0]);
            libc::syscall(libc::SYS_fcntl, d, libc::F_GETFD);
            libc::syscall(libc::SYS_lseek, d, 0, libc::SEEK_CUR);
            libc::syscall(libc::SYS_fstat, d, b);
            libc::syscall(libc::SYS_close, d);
            libc::syscall(libc::SYS_close, fds[0]);
            libc::syscall(libc::SYS_close, fds[1]);
            let dir = libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                root.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            libc::syscall(libc::SYS_getdents64, dir, b, n);
            libc::syscall(libc::SYS_close, dir);
            libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, root.as_ptr(), b, 0);
            libc::syscall(
                libc::SYS_faccessat,
                libc::AT_FDCWD,
                root.as_ptr(),
                libc::R_OK,
            );
            libc::syscall(libc::SYS_readlinkat, libc::AT_FDCWD, exe.as_ptr(), b, n);
            libc::syscall(libc::SYS_statfs, root.as_ptr(), b);
            let pid = libc::syscall(libc::SYS_getpid);
            libc::syscall(libc::SYS_kill, pid, 0);
            libc::syscall(libc::SYS_tgkill, pid, tid, 0);
            let e = libc::syscall(libc::SYS_eventfd2, 0, libc::EFD_CLOEXEC);
            libc::syscall(libc::SYS_close, e);
            let e = libc::syscall(libc::SYS_epoll_create1, libc::EPOLL_CLOEXEC);
            libc::syscall(libc::SYS_close, e);
        }
        sleep(1, ms);
    }
}

fn gate() {
    let mut b = [0u8; 1];
    // SAFETY: valid 1-byte buffer on stdin.
    unsafe { libc::syscall(libc::SYS_read, 0, b.as_mut_ptr(), 1) };
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            eprintln!("workload: expected a number at argument {i}");
            exit(2)
        })
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "getppid" => {
                getppid(num(i + 1));
                i += 2;
            }
            "threads" => {
                let (t, n) = (num(i + 1), num(i + 2));
                let hs: Vec<_> = (0..t).map(|_| thread::spawn(move || getppid(n))).collect();
                for h in hs {
                    h.join().expect("thread");
                }
                i += 3;
            }
            "sleep" => {
                sleep(num(i + 1), num(i + 2));
                i += 3;
            }
            "sleep-us" => {
                sleep_us(num(i + 1), num(i + 2), None);
                i += 3;
            }
            "pipe" => {
                pipe_reads(num(i + 1), num(i + 2), None);
                i += 3;
            }
            "timed-sleep" => {
                let mut times = Vec::new();
                sleep_us(num(i + 1), num(i + 2) * 1000, Some(&mut times));
                print_times(&times);
                i += 3;
            }
            "timed-pipe" => {
                let mut times = Vec::new();
                pipe_reads(num(i + 1), num(i + 2), Some(&mut times));
                print_times(&times);
                i += 3;
            }
            "enoent" => {
                enoent(num(i + 1));
                i += 2;
            }
            "forks" => {
                forks(num(i + 1));
                i += 2;
            }
            "named-children" => {
                named_children(num(i + 1), num(i + 2));
                i += 3;
            }
            "time-getppid" => {
                let n = num(i + 1);
                let t0 = cpu_ns();
                getppid(n);
                println!("{:.1}", (cpu_ns() - t0) as f64 / n.max(1) as f64);
                i += 2;
            }
            "time-pingpong" => {
                println!("{:.1}", pingpong(num(i + 1)));
                i += 2;
            }
            "mixed" => {
                let (n, m) = (num(i + 1), num(i + 2));
                let h = thread::spawn(move || getppid(m));
                getppid(n);
                h.join().expect("thread");
                i += 3;
            }
            "zoo" => {
                zoo(num(i + 1), num(i + 2));
                i += 3;
            }
            "gate" => {
                gate();
                i += 1;
            }
            "comm" => {
                set_comm(args.get(i + 1).map_or("", String::as_str));
                i += 2;
            }
            "starve" => {
                let (tid, delay) = starve(num(i + 1), num(i + 2), num(i + 3), num(i + 4));
                println!("{tid} {delay}");
                i += 5;
            }
            "pinned-threads" => {
                let preempted = pinned_threads(num(i + 1), num(i + 2), num(i + 3) as usize);
                println!("{preempted} involuntary context switches");
                i += 4;
            }
            "bpf-progs" => {
                match bpf_progs() {
                    Ok(progs) => {
                        for (id, ty, name) in progs {
                            println!("{id} {ty} {name}");
                        }
                    }
                    Err(e) => {
                        eprintln!("workload: bpf-progs: {e}");
                        exit(1);
                    }
                }
                i += 1;
            }
            "json" => {
                let (Some(file), Some(key)) = (args.get(i + 1), args.get(i + 2)) else {
                    eprintln!("workload: json FILE KEY");
                    exit(2)
                };
                match json_value(file, key) {
                    Ok(v) => println!("{v}"),
                    Err(e) => {
                        eprintln!("workload: json: {e}");
                        exit(1);
                    }
                }
                i += 3;
            }
            other => {
                eprintln!("workload: unknown step {other}");
                exit(2);
            }
        }
    }
}
