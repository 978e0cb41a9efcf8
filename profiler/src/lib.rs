//! syslat: an eBPF syscall latency profiler.
//!
//! The crate is a library with a thin binary (`main.rs`) so the integration tests can use
//! its parts directly. Layers, each depending only on those listed before it:
//! - [`syscalls`]: syscall and errno names for the build's architecture;
//! - [`aggregate`]: plain data, events → histograms → [`aggregate::Snapshot`], no I/O;
//! - [`output`]: snapshots → text and JSON Lines;
//! - [`collect`]: kernel I/O (load, attach, drain, loss counters, targets, /proc);
//! - [`cli`] and [`config`]: flags, then validated settings;
//! - [`cmd`]: wiring, the only module that sees every layer.

#![deny(
    clippy::print_stdout,
    reason = "print! panics when stdout is a closed pipe (syslat ... | head): write to a \
              locked stdout and return the error, which main ends quietly"
)]

pub mod aggregate;
pub mod cli;
pub mod cmd;
pub mod collect;
pub mod compare;
pub mod config;
pub mod output;
pub mod recording;
pub mod syscalls;
pub mod tui;
pub mod units;
