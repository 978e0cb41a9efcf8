//! Syscall and errno names for the architecture syslat is built for, from the `syscalls`
//! crate's generated tables (x86_64, aarch64, ...), never a hand-written list.
#![forbid(unsafe_code)]

use ::syscalls::{Errno, Sysno};

/// The name of syscall `nr` on this architecture, or `syscall_<nr>` when unknown.
pub fn name(nr: u32) -> String {
    match Sysno::new(nr as usize) {
        Some(s) => s.name().to_string(),
        None => format!("syscall_{nr}"),
    }
}

/// The number of the syscall called `name`, if this architecture has one.
pub fn number(name: &str) -> Option<u32> {
    name.parse::<Sysno>().ok().map(|s| s.id() as u32)
}

/// The symbolic name of errno `e` (`ENOENT`), or `E<number>` when unknown.
pub fn errno_name(e: i32) -> String {
    match Errno::new(e).name() {
        Some(n) => n.to_string(),
        None => format!("E{e}"),
    }
}

/// The errno number called `name` (`ENOENT` → 2).
pub fn errno_number(name: &str) -> Option<i32> {
    (1..4096).find(|&e| Errno::new(e).name() == Some(name))
}

/// The errno in a raw syscall return value, if it is one (`-4095..=-1`, as the kernel and
/// strace define it).
pub fn errno_of(ret: i64) -> Option<i32> {
    (-4095..=-1).contains(&ret).then(|| (-ret) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let nr = number("getppid").expect("getppid exists everywhere");
        assert_eq!(name(nr), "getppid");
        assert_eq!(name(100_000), "syscall_100000");
    }

    #[test]
    fn errnos() {
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_number("EAGAIN"), Some(11));
        assert_eq!(errno_name(4000), "E4000");
        assert_eq!(errno_of(-2), Some(2));
        assert_eq!(errno_of(-4096), None);
        assert_eq!(errno_of(0), None);
        assert_eq!(errno_of(140_000_000_000), None);
    }
}
