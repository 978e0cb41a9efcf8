//! The overhead floors for `cargo xtask bench`, on sys_enter and sys_exit:
//! - `floor_*`: raw tracepoint programs that do nothing. No syscall tracer can cost less.
//!   `floor_switch` and `floor_wakeup` do nothing on the scheduler's hooks syslat also
//!   uses (context switches, wake-ups): the floor of the context-switch row.
//! - `clock_*`: programs that only read `bpf_ktime_get_ns` (and keep the value, so the read
//!   is not optimised away). No syscall *latency* tool can cost less than this either: it
//!   needs a timestamp at both ends of every call. `clock_switch` reads it at each context
//!   switch too: a tool that splits a call's time at its switches (latency anatomy) needs
//!   the time the task left the CPU, so with it the clock floor of the context-switch row.
//! - `ptfloor_*` and `ptclock_*`: the same two on the same tracepoints through perf's
//!   handler (`tracepoint/raw_syscalls/*`), the hook syslat uses from Linux 7.2: its floors.
#![no_std]
#![no_main]

use aya_ebpf::{
    btf_maps::PerCpuArray,
    helpers::bpf_ktime_get_ns,
    macros::{btf_map, btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};

/// Where the clock programs leave their reading.
#[btf_map]
static CLOCK: PerCpuArray<u64, 1> = PerCpuArray::new();

#[raw_tracepoint(tracepoint = "sys_enter")]
fn floor_enter(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
fn floor_exit(_ctx: RawTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_switch")]
fn floor_switch(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_wakeup")]
fn floor_wakeup(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// Reads the clock and stores it in this CPU's slot.
#[inline(always)]
fn clock() -> i32 {
    if let Some(p) = CLOCK.get_ptr_mut(0) {
        // SAFETY: helper with no arguments; `p` points to this CPU's live map value.
        unsafe { *p = bpf_ktime_get_ns() };
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_enter")]
fn clock_enter(_ctx: RawTracePointContext) -> i32 {
    clock()
}

#[raw_tracepoint(tracepoint = "sys_exit")]
fn clock_exit(_ctx: RawTracePointContext) -> i32 {
    clock()
}

#[btf_tracepoint(function = "sched_switch")]
fn clock_switch(_ctx: BtfTracePointContext) -> i32 {
    clock()
}

#[tracepoint(category = "raw_syscalls", name = "sys_enter")]
fn ptfloor_enter(_ctx: TracePointContext) -> u32 {
    0
}

#[tracepoint(category = "raw_syscalls", name = "sys_exit")]
fn ptfloor_exit(_ctx: TracePointContext) -> u32 {
    0
}

#[tracepoint(category = "raw_syscalls", name = "sys_enter")]
fn ptclock_enter(_ctx: TracePointContext) -> u32 {
    clock() as u32
}

#[tracepoint(category = "raw_syscalls", name = "sys_exit")]
fn ptclock_exit(_ctx: TracePointContext) -> u32 {
    clock() as u32
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
