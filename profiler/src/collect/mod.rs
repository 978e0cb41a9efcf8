//! Collection: everything that talks to the kernel. Loading and attaching the programs,
//! draining the call logs and the ring buffer, reading the loss counters, resolving targets in /proc, and
//! starting a command under tracing, and the session ([`session`]) that runs them for a
//! subcommand. The rest of syslat sees plain data only.

pub mod calllog;
pub mod cgroup;
pub mod cgroup_watch;
pub mod container;
pub mod container_index;
pub mod exits;
pub mod features;
pub mod kernel_btf;
pub mod launch;
pub mod loader;
pub mod memory;
pub mod privileges;
pub mod procinfo;
pub mod prog_stats;
pub mod runtime_api;
pub mod scope;
pub mod session;
pub mod stacks;
pub mod target;
pub mod tracepoint_format;

pub use loader::{Filter, LoadError, LoadOptions, Probe};
