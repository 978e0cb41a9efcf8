//! Empty library target: the programs live in `main.rs` (the `profiler` binary, an eBPF object).
#![no_std]
