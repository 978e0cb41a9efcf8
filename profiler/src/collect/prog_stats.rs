//! The kernel's own count of the runs of a loaded program it skipped
//! (`bpf_prog_info.recursion_misses`, Linux 5.12 and later): a run is skipped when a run of
//! the same program is already in progress on that CPU. Before 7.2 the syscall programs
//! cannot be preempted, so that never happens to them; from 7.2 a task preempted inside
//! one makes the kernel skip it for every other task on the CPU until it resumes, and each
//! skipped run is a call lost or mis-timed (`profiler-ebpf/src/cpu.rs`). aya's
//! `ProgramInfo` does not expose the field, so it is read here with
//! `BPF_OBJ_GET_INFO_BY_FD`.

use std::os::fd::{AsRawFd, BorrowedFd};

use aya_obj::generated::bpf_prog_info;

/// The head of `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD` (linux/bpf.h: `info`),
/// zero-padded: the kernel requires every byte it does not know to be zero.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
    _rest: [u64; 4],
}

/// How many runs of program `fd` the kernel skipped since it was loaded (0 on kernels
/// before 5.12, which do not count them).
pub fn recursion_misses(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: bpf_prog_info is plain integers and pointers-as-u64 (bindgen's); all zeros
    // is a valid value, and the zero pointers ask the kernel for no arrays.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    let attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: (&raw mut info) as u64,
        _rest: [0; 4],
    };
    // SAFETY: `attr` is a valid, fully initialised attribute whose `info` points to a
    // writable `bpf_prog_info` of `info_len` bytes that outlives the call; the kernel
    // writes at most that many bytes (fewer on older kernels, leaving the rest zero).
    unsafe { super::features::sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) }?;
    Ok(info.recursion_misses)
}
