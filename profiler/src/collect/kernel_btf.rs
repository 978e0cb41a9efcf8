//! Field offsets of kernel structs, read from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), so the programs can read `task_struct` fields without
//! CO-RE relocations (which aya does not apply to Rust programs).
#![forbid(unsafe_code)]

use btf_rs::{Btf, Type};

/// Where the BTF of the running kernel lives.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The offsets the programs need.
#[derive(Clone, Copy, Debug)]
pub struct Offsets {
    /// `task_struct.tgid`.
    pub task_tgid: u32,
    /// `task_struct.signal`.
    pub task_signal: u32,
    /// `signal_struct.live`.
    pub signal_live: u32,
    /// Where the first three syscall arguments are in `struct pt_regs`.
    pub args: [u32; 3],
}

/// Reads [`Offsets`] from the kernel's BTF.
pub fn offsets() -> Result<Offsets, String> {
    // Mmap rather than parse everything: three structs are needed, and parsing all of the
    // kernel's BTF costs tens of MiB of peak memory.
    let btf = Btf::from_file_with_backend(VMLINUX_BTF, btf_rs::Backend::Mmap)
        .map_err(|e| format!("{VMLINUX_BTF}: {e}"))?;
    Ok(Offsets {
        task_tgid: member_offset(&btf, "task_struct", "tgid")?,
        task_signal: member_offset(&btf, "task_struct", "signal")?,
        signal_live: member_offset(&btf, "signal_struct", "live")?,
        args: arg_offsets(&btf)?,
    })
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
