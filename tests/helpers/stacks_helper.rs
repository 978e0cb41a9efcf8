//! The `--stacks` test's helper, built by `tests/build.rs` with frame pointers
//! (`-C force-frame-pointers=yes`) and nothing else: `slow_path_a` makes one 10 ms
//! `clock_nanosleep`, `fast_path_b` makes 100 `getppid`, repeated 30 times (or the count
//! given as the first argument).
//!
//! Each path calls the system through a function of its own (`sleep_for`, `ppid`) that
//! does more after the call: the frame-pointer walk finds a function through the frame
//! record of the function it called, and the C library's wrappers (built without frame
//! pointers on Debian) keep none, so the function that calls one of them directly would
//! be skipped (README, "Stacks").

use std::{hint::black_box, time::Duration};

unsafe extern "C" {
    fn getppid() -> i32;
}

/// Sleeps `d` (one `clock_nanosleep`).
#[inline(never)]
fn sleep_for(d: Duration) {
    std::thread::sleep(d);
    black_box(());
}

/// One 10 ms sleep.
#[inline(never)]
fn slow_path_a() {
    sleep_for(Duration::from_millis(10));
    black_box(());
}

/// One `getppid`.
#[inline(never)]
fn ppid() -> i32 {
    // SAFETY: getppid takes nothing and always succeeds.
    let p = unsafe { getppid() };
    black_box(p)
}

/// 100 `getppid`.
#[inline(never)]
fn fast_path_b() -> i64 {
    let mut sum = 0i64;
    for _ in 0..100 {
        sum += i64::from(ppid());
    }
    black_box(sum)
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let mut sum = 0;
    for _ in 0..rounds {
        slow_path_a();
        sum += fast_path_b();
    }
    black_box(sum);
}
