//! A workload with an exactly known syscall mix, for syslat's integration tests.
//!
//! Usage: `workload STEP [STEP ...]`, steps run in order:
//! - `getppid N`: N raw getppid calls;
//! - `threads T N`: T threads, N getppid calls each;
//! - `sleep N MS`: N clock_nanosleep calls of MS milliseconds;
//! - `pipe N MS`: N blocking reads on a pipe, each woken by another thread after MS ms;
//! - `enoent N`: N openat calls on a missing path (ENOENT);
//! - `forks K`: K children that exit at once (via fork + _exit), each reaped;
//! - `mixed N M`: N getppid calls on the main thread while a second thread makes M;
//! - `gate`: block until a line arrives on stdin;
//! - `time-getppid N`: N getppid calls, then print the mean ns per call (for the bench);
//! - `time-pingpong N`: N round trips of a byte between two threads pinned to one CPU over
//!   two pipes (two context switches each), then print the mean ns per round trip.
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
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    for _ in 0..n {
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
    }
}

fn pipe_reads(n: u64, ms: u64) {
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
        // SAFETY: valid fd and 1-byte buffer.
        unsafe { libc::syscall(libc::SYS_read, r, b.as_mut_ptr(), 1) };
    }
    writer.join().expect("writer thread");
}

/// Pins the calling thread to CPU 0, so two threads must switch to take turns.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it;
    // sched_setaffinity(0, ..) reads it for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Mean ns per round trip of `n` one-byte ping-pongs between two threads on one CPU.
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
        for _ in 0..n {
            hop(a_read, b_write);
        }
    });
    pin_to_cpu0();
    let t = std::time::Instant::now();
    for _ in 0..n {
        let c = [0u8; 1];
        let mut d = [0u8; 1];
        // SAFETY: valid fds and 1-byte buffers.
        unsafe {
            libc::syscall(libc::SYS_write, a[1], c.as_ptr(), 1);
            libc::syscall(libc::SYS_read, b[0], d.as_mut_ptr(), 1);
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
    peer.join().expect("peer thread");
    ns
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
            "pipe" => {
                pipe_reads(num(i + 1), num(i + 2));
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
            "time-getppid" => {
                let n = num(i + 1);
                let t = std::time::Instant::now();
                getppid(n);
                println!("{:.1}", t.elapsed().as_nanos() as f64 / n.max(1) as f64);
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
            "gate" => {
                gate();
                i += 1;
            }
            other => {
                eprintln!("workload: unknown step {other}");
                exit(2);
            }
        }
    }
}
