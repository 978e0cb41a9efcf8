//! Field offsets of kernel structs, read from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), so the programs can read `task_struct` fields without
//! CO-RE relocations (which aya does not apply to Rust programs).
//!
//! The file is mapped where the kernel allows it (mmap of `/sys/kernel/btf/vmlinux` exists
//! since Linux 6.16; older kernels answer ENODEV while read() works): elsewhere it is read
//! once into an anonymous memory file, which is then mapped the same way.
#![forbid(unsafe_code)]

use std::{io::Write as _, os::fd::AsRawFd as _};

use btf_rs::{Btf, Type};

/// Where the BTF of the running kernel lives.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Why the kernel's BTF could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The kernel exposes no BTF.
    #[error(
        "the kernel has no BTF ({VMLINUX_BTF} does not exist): syslat needs a kernel built \
         with CONFIG_DEBUG_INFO_BTF (Linux 5.4 and later; on by default in current \
         distributions)"
    )]
    Missing,
    /// The file exists but could not be read.
    #[error("cannot read {VMLINUX_BTF}")]
    Read(#[source] std::io::Error),
    /// It was read but is not what syslat needs.
    #[error("cannot use the kernel's BTF ({VMLINUX_BTF}): {0}")]
    Parse(String),
}

/// How the BTF file was opened (for `syslat doctor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BtfAccess {
    /// Mapped in place (Linux 6.16 and later).
    Mapped,
    /// Read into memory, then mapped.
    Read,
}

/// The offsets the programs need.
#[derive(Clone, Copy, Debug)]
pub struct Offsets {
    /// `task_struct.pid` (the thread id).
    pub task_pid: u32,
    /// `task_struct.tgid`.
    pub task_tgid: u32,
    /// `task_struct.__state` (`state` before 5.14).
    pub task_state: u32,
    /// `task_struct.sched_info.run_delay`, the task's total run-queue wait; 0 without
    /// `CONFIG_SCHED_INFO` (then a call's time off CPU all counts as blocked).
    pub task_run_delay: u32,
    /// `task_struct.signal`.
    pub task_signal: u32,
    /// `signal_struct.live`.
    pub signal_live: u32,
    /// Where the first three syscall arguments are in `struct pt_regs`.
    pub args: [u32; 3],
}

/// Reads [`Offsets`] from the kernel's BTF; `force_read` skips the mapping in place (to
/// exercise the older kernels' path anywhere).
pub fn offsets(force_read: bool) -> Result<(Offsets, BtfAccess), BtfError> {
    let (btf, access) = open(force_read)?;
    let offsets = (|| {
        Ok(Offsets {
            task_pid: member_offset(&btf, "task_struct", "pid")?,
            task_tgid: member_offset(&btf, "task_struct", "tgid")?,
            task_state: member_offset(&btf, "task_struct", "__state")
                .or_else(|_| member_offset(&btf, "task_struct", "state"))?,
            task_run_delay: match (
                member_offset(&btf, "task_struct", "sched_info"),
                member_offset(&btf, "sched_info", "run_delay"),
            ) {
                (Ok(info), Ok(delay)) => info + delay,
                _ => {
                    log::warn!(
                        "the kernel has no task_struct.sched_info.run_delay \
                         (CONFIG_SCHED_INFO): time off CPU inside a call counts as blocked"
                    );
                    0
                }
            },
            task_signal: member_offset(&btf, "task_struct", "signal")?,
            signal_live: member_offset(&btf, "signal_struct", "live")?,
            args: arg_offsets(&btf)?,
        })
    })()
    .map_err(BtfError::Parse)?;
    Ok((offsets, access))
}

/// Opens the kernel's BTF without parsing all of it: four structs are needed, and parsing
/// everything costs tens of MiB of peak memory.
fn open(force_read: bool) -> Result<(Btf, BtfAccess), BtfError> {
    if !std::path::Path::new(VMLINUX_BTF).exists() {
        return Err(BtfError::Missing);
    }
    if !force_read {
        match Btf::from_file_with_backend(VMLINUX_BTF, btf_rs::Backend::Mmap) {
            Ok(btf) => return Ok((btf, BtfAccess::Mapped)),
            Err(e) => log::debug!("cannot map {VMLINUX_BTF} ({e}); reading it instead"),
        }
    }
    let bytes = std::fs::read(VMLINUX_BTF).map_err(BtfError::Read)?;
    // An anonymous memory file holds the copy, so the same mapped parser serves.
    let fd =
        nix::sys::memfd::memfd_create(c"syslat-btf", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
            .map_err(|e| BtfError::Read(e.into()))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes).map_err(BtfError::Read)?;
    drop(bytes);
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let btf = Btf::from_file_with_backend(&path, btf_rs::Backend::Mmap)
        .map_err(|e| BtfError::Parse(e.to_string()))?;
    Ok((btf, BtfAccess::Read))
}

/// Offsets of the registers holding syscall arguments 1 to 3 (the syscall ABI).
fn arg_offsets(btf: &Btf) -> Result<[u32; 3], String> {
    if cfg!(target_arch = "x86_64") {
        Ok([
            member_offset(btf, "pt_regs", "di")?,
            member_offset(btf, "pt_regs", "si")?,
            member_offset(btf, "pt_regs", "dx")?,
        ])
    } else {
        // aarch64 and most others: regs[0..] hold the arguments.
        let base = member_offset(btf, "pt_regs", "regs")?;
        Ok([base, base + 8, base + 16])
    }
}

/// Byte offset of the top-level member `member` of `struct name`.
fn member_offset(btf: &Btf, name: &str, member: &str) -> Result<u32, String> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|e| format!("struct {name}: {e}"))?;
    for t in types {
        if let Type::Struct(s) = t {
            for m in &s.members {
                if btf.resolve_name(m).is_ok_and(|n| n == member) {
                    return Ok(m.bit_offset() / 8);
                }
            }
        }
    }
    Err(format!(
        "struct {name} has no member {member} in the kernel's BTF"
    ))
}
