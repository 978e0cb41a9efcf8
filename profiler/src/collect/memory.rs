//! Giving freed heap memory back to the kernel.
//!
//! glibc's allocator keeps freed memory for reuse, and it returns pages only from the top
//! of the heap. A long-running syslat frees much memory at two points: after loading,
//! when the kernel's BTF (parsed by aya's loader, then again for the tp_btf programs) is
//! freed, and when `serve` drops the series of processes that exited. Without a trim,
//! that memory stays in the resident set. With one, the resident set follows what is
//! live.

/// Returns the free pages of the heap to the kernel: whole free pages anywhere in the
/// heap, not only at its top. This costs a walk of the allocator's free lists, which is
/// milliseconds for tens of MiB, so call it after large frees, not on a hot path.
pub fn give_back() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) only releases memory the allocator holds free; it takes the
    // allocator's own locks and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
