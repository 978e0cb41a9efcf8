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

/// Syscall classes for `-s %class`, in the spirit of `strace -e trace=%class`. Names the
/// architecture lacks are skipped.
pub const CLASSES: &[(&str, &[&str])] = &[
    (
        "file",
        &[
            "open",
            "openat",
            "openat2",
            "creat",
            "access",
            "faccessat",
            "faccessat2",
            "stat",
            "lstat",
            "newfstatat",
            "statx",
            "statfs",
            "chdir",
            "chroot",
            "chmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "lchown",
            "fchownat",
            "link",
            "linkat",
            "unlink",
            "unlinkat",
            "symlink",
            "symlinkat",
            "readlink",
            "readlinkat",
            "rename",
            "renameat",
            "renameat2",
            "mkdir",
            "mkdirat",
            "rmdir",
            "mknod",
            "mknodat",
            "truncate",
            "utime",
            "utimes",
            "utimensat",
            "futimesat",
            "execve",
            "execveat",
            "getxattr",
            "lgetxattr",
            "setxattr",
            "lsetxattr",
            "listxattr",
            "llistxattr",
            "removexattr",
            "lremovexattr",
            "mount",
            "umount2",
            "swapon",
            "swapoff",
            "acct",
            "pivot_root",
            "quotactl",
            "name_to_handle_at",
            "inotify_add_watch",
            "fanotify_mark",
            "uselib",
        ],
    ),
    (
        "network",
        &[
            "socket",
            "socketpair",
            "bind",
            "connect",
            "listen",
            "accept",
            "accept4",
            "getsockname",
            "getpeername",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
            "setsockopt",
            "getsockopt",
        ],
    ),
    (
        "process",
        &[
            "fork",
            "vfork",
            "clone",
            "clone3",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "wait4",
            "waitid",
            "kill",
            "tkill",
            "tgkill",
            "rt_sigqueueinfo",
            "rt_tgsigqueueinfo",
            "pidfd_open",
            "pidfd_send_signal",
            "unshare",
        ],
    ),
    (
        "memory",
        &[
            "brk",
            "mmap",
            "munmap",
            "mremap",
            "mprotect",
            "madvise",
            "mlock",
            "mlock2",
            "munlock",
            "mlockall",
            "munlockall",
            "mincore",
            "msync",
            "remap_file_pages",
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "migrate_pages",
            "move_pages",
            "pkey_mprotect",
            "process_madvise",
        ],
    ),
    (
        "signal",
        &[
            "rt_sigaction",
            "rt_sigprocmask",
            "rt_sigpending",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "rt_sigqueueinfo",
            "rt_tgsigqueueinfo",
            "rt_sigreturn",
            "sigaltstack",
            "kill",
            "tkill",
            "tgkill",
            "signalfd",
            "signalfd4",
            "pause",
            "pidfd_send_signal",
        ],
    ),
    (
        "ipc",
        &[
            "msgget",
            "msgsnd",
            "msgrcv",
            "msgctl",
            "semget",
            "semop",
            "semtimedop",
            "semctl",
            "shmget",
            "shmat",
            "shmdt",
            "shmctl",
        ],
    ),
    (
        "desc",
        &[
            "read",
            "write",
            "readv",
            "writev",
            "pread64",
            "pwrite64",
            "preadv",
            "pwritev",
            "preadv2",
            "pwritev2",
            "close",
            "close_range",
            "dup",
            "dup2",
            "dup3",
            "fcntl",
            "ioctl",
            "lseek",
            "fstat",
            "fstatfs",
            "fsync",
            "fdatasync",
            "ftruncate",
            "fchmod",
            "fchown",
            "fchdir",
            "getdents",
            "getdents64",
            "select",
            "pselect6",
            "poll",
            "ppoll",
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "eventfd",
            "eventfd2",
            "timerfd_create",
            "timerfd_settime",
            "timerfd_gettime",
            "signalfd",
            "signalfd4",
            "pipe",
            "pipe2",
            "sendfile",
            "splice",
            "tee",
            "vmsplice",
            "copy_file_range",
            "fadvise64",
            "fallocate",
            "flock",
            "sync_file_range",
            "openat",
            "open",
            "openat2",
            "creat",
            "socket",
            "accept",
            "accept4",
            "memfd_create",
            "inotify_init",
            "inotify_init1",
            "fanotify_init",
            "io_uring_enter",
            "io_uring_setup",
            "io_uring_register",
            "mmap",
            "readahead",
            "fgetxattr",
            "fsetxattr",
            "flistxattr",
            "fremovexattr",
            "newfstatat",
            "statx",
            "faccessat",
            "unlinkat",
            "mkdirat",
            "renameat",
            "renameat2",
            "fchmodat",
            "fchownat",
            "linkat",
            "symlinkat",
            "readlinkat",
            "utimensat",
        ],
    ),
];

/// Syscalls whose argument N (0-based) is a path, for the slow-call log.
pub const PATH_ARGS: &[(&str, u32)] = &[
    ("open", 0),
    ("openat", 1),
    ("openat2", 1),
    ("creat", 0),
    ("execve", 0),
    ("execveat", 1),
    ("stat", 0),
    ("lstat", 0),
    ("newfstatat", 1),
    ("statx", 1),
    ("statfs", 0),
    ("access", 0),
    ("faccessat", 1),
    ("faccessat2", 1),
    ("unlink", 0),
    ("unlinkat", 1),
    ("mkdir", 0),
    ("mkdirat", 1),
    ("rmdir", 0),
    ("chdir", 0),
    ("chroot", 0),
    ("readlink", 0),
    ("readlinkat", 1),
    ("truncate", 0),
    ("chmod", 0),
    ("fchmodat", 1),
    ("chown", 0),
    ("lchown", 0),
    ("fchownat", 1),
    ("rename", 0),
    ("renameat", 1),
    ("renameat2", 1),
    ("link", 0),
    ("linkat", 1),
    ("symlink", 1),
    ("symlinkat", 2),
    ("utimensat", 1),
    ("mknod", 0),
    ("mknodat", 1),
    ("getxattr", 0),
    ("setxattr", 0),
    ("listxattr", 0),
    ("removexattr", 0),
    ("inotify_add_watch", 1),
];

/// Parses `-s`: comma-separated syscall names, numbers and `%class`es, into sorted numbers.
pub fn parse_list(list: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(class) = item.strip_prefix('%') {
            let Some((_, names)) = CLASSES.iter().find(|(c, _)| *c == class) else {
                let all: Vec<String> = CLASSES.iter().map(|(c, _)| format!("%{c}")).collect();
                return Err(format!(
                    "unknown syscall class '%{class}' (classes: {})",
                    all.join(", ")
                ));
            };
            out.extend(names.iter().filter_map(|n| number(n)));
        } else if let Ok(nr) = item.parse::<u32>() {
            if nr >= profiler_common::MAX_SYSCALLS || Sysno::new(nr as usize).is_none() {
                return Err(format!("unknown syscall number {nr}"));
            }
            out.push(nr);
        } else {
            match number(item) {
                Some(nr) => out.push(nr),
                None => return Err(unknown_name(item)),
            }
        }
    }
    if out.is_empty() {
        return Err("empty syscall list".into());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn unknown_name(name: &str) -> String {
    let mut close: Vec<(f64, &'static str)> = Sysno::iter()
        .map(|s| (strsim::jaro_winkler(name, s.name()), s.name()))
        .filter(|(score, _)| *score > 0.85)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let names: Vec<&str> = close.iter().take(3).map(|(_, n)| *n).collect();
    if names.is_empty() {
        format!("unknown syscall '{name}'")
    } else {
        format!(
            "unknown syscall '{name}' (did you mean {}?)",
            names.join(", ")
        )
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_classes() {
        let getppid = number("getppid").unwrap();
        assert_eq!(
            parse_list(&format!("getppid,{getppid}")).unwrap(),
            vec![getppid]
        );
        let net = parse_list("%network").unwrap();
        assert!(net.contains(&number("connect").unwrap()));
        assert!(!net.contains(&getppid));
        let file = parse_list("%file,read").unwrap();
        assert!(
            file.contains(&number("openat").unwrap()) && file.contains(&number("read").unwrap())
        );
    }

    #[test]
    fn rejects_unknowns_with_close_matches() {
        let e = parse_list("getpid,opnat").unwrap_err();
        assert!(
            e.starts_with("unknown syscall 'opnat' (did you mean "),
            "{e}"
        );
        assert!(e.contains("openat"), "{e}");
        assert_eq!(
            parse_list("zzzzzzzzzz").unwrap_err(),
            "unknown syscall 'zzzzzzzzzz'"
        );
        assert!(
            parse_list("%disk")
                .unwrap_err()
                .starts_with("unknown syscall class '%disk'")
        );
        assert_eq!(
            parse_list("99999").unwrap_err(),
            "unknown syscall number 99999"
        );
        assert_eq!(parse_list(",").unwrap_err(), "empty syscall list");
    }

    #[test]
    fn every_class_name_exists_somewhere() {
        for (class, names) in CLASSES {
            let known = names.iter().filter(|n| number(n).is_some()).count();
            assert!(
                known * 2 > names.len(),
                "%{class}: most names should exist on this arch"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn syscall_lists_never_panic(s in "[%a-z0-9,_ ]{0,40}|\\PC{0,20}") {
            let _ = parse_list(&s);
        }
    }
}
