//! The record layout of the `raw_syscalls` trace events, checked before the perf-handled
//! syscall programs (`features::SyscallHook::Perf`) load: those programs read `id`,
//! `args` and `ret` at fixed offsets of the record (`profiler-ebpf/src/main.rs`, `mod tp`),
//! so a kernel that laid the record out otherwise gets one clear line instead of wrong
//! numbers. The layout comes from tracefs (`events/raw_syscalls/*/format`), which the perf
//! tracepoints need anyway (their ids are read there).

use std::path::{Path, PathBuf};

/// Where tracefs may be mounted, in the order the kernel's documentation gives.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The fields the programs read: (event, declaration, offset).
const FIELDS: [(&str, &str, u32); 4] = [
    ("sys_enter", "long id", 8),
    ("sys_enter", "unsigned long args[6]", 16),
    ("sys_exit", "long id", 8),
    ("sys_exit", "long ret", 16),
];

/// Why the layout could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// No tracefs mounted with the raw_syscalls events.
    #[error(
        "the syscall tracepoints of this kernel need tracefs, which is not mounted \
         (mount -t tracefs tracefs /sys/kernel/tracing)"
    )]
    NoTracefs,
    /// A format file could not be read.
    #[error("cannot read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    /// A field is missing or elsewhere.
    #[error("raw_syscalls:{event} lays out `{decl}` {found} (syslat reads it at offset {want})")]
    Layout {
        /// The event.
        event: &'static str,
        /// The field's declaration.
        decl: &'static str,
        /// Where it is, as a phrase.
        found: String,
        /// Where the programs read it.
        want: u32,
    },
}

/// Checks the layout in the mounted tracefs.
pub fn check() -> Result<(), FormatError> {
    let root = TRACEFS
        .iter()
        .map(Path::new)
        .find(|p| p.join("events/raw_syscalls").is_dir())
        .ok_or(FormatError::NoTracefs)?;
    for event in ["sys_enter", "sys_exit"] {
        let path = root.join("events/raw_syscalls").join(event).join("format");
        let text = std::fs::read_to_string(&path).map_err(|e| FormatError::Read(path, e))?;
        check_event(event, &text)?;
    }
    Ok(())
}

/// Checks one event's format text.
fn check_event(event: &str, format: &str) -> Result<(), FormatError> {
    for &(ev, decl, want) in FIELDS.iter().filter(|f| f.0 == event) {
        let found = field_offset(format, decl);
        if found != Some(want) {
            return Err(FormatError::Layout {
                event: ev,
                decl,
                found: match found {
                    Some(off) => format!("at offset {off}"),
                    None => "nowhere".to_string(),
                },
                want,
            });
        }
    }
    Ok(())
}

/// The offset of the field declared as `decl` in a tracefs format text, whose lines read
/// `\tfield:long id;\toffset:8;\tsize:8;\tsigned:1;`.
fn field_offset(format: &str, decl: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        if parts.next()?.strip_prefix("field:")? != decl {
            return None;
        }
        parts.next()?.strip_prefix("offset:")?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::{check_event, field_offset};

    const ENTER: &str = "name: sys_enter\nID: 23\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:long id;\toffset:8;\tsize:8;\tsigned:1;\n\
        \tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;\n\n\
        print fmt: \"NR %ld (%lx, %lx, %lx, %lx, %lx, %lx)\", REC->id\n";

    #[test]
    fn offsets_are_read_from_the_format() {
        assert_eq!(field_offset(ENTER, "long id"), Some(8));
        assert_eq!(field_offset(ENTER, "unsigned long args[6]"), Some(16));
        assert_eq!(field_offset(ENTER, "long ret"), None);
        assert_eq!(field_offset(ENTER, "int common_pid"), Some(4));
    }

    #[test]
    fn a_moved_field_is_refused_with_its_place() {
        check_event("sys_enter", ENTER).unwrap();
        let moved = ENTER.replace("args[6];\toffset:16", "args[6];\toffset:24");
        assert_eq!(
            check_event("sys_enter", &moved).unwrap_err().to_string(),
            "raw_syscalls:sys_enter lays out `unsigned long args[6]` at offset 24 \
             (syslat reads it at offset 16)"
        );
        assert_eq!(
            check_event("sys_exit", ENTER).unwrap_err().to_string(),
            "raw_syscalls:sys_exit lays out `long ret` nowhere (syslat reads it at offset 16)"
        );
    }
}
