//! The slow-call log (`record --slow`): one line per call slower than the threshold, as it
//! completes, in text or as `{"type":"slow", ...}` JSON lines; rate-limited, with the number
//! of lines the limit suppressed reported as `{"type":"slow_suppressed", ...}`.

use serde::Serialize;

use crate::{syscalls, units::fmt_ns};

/// One slow call, resolved for printing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SlowCall {
    /// `"slow"`.
    pub r#type: &'static str,
    /// Completion time, ns since the Unix epoch.
    pub time_unix_ns: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Process name, when known.
    pub comm: String,
    /// Syscall name.
    pub syscall: String,
    /// Syscall number.
    pub nr: u32,
    /// Latency, ns.
    pub duration_ns: u64,
    /// Raw return value.
    pub ret: i64,
    /// The errno name when the call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// First three arguments, raw.
    pub args: [u64; 3],
    /// The path argument of path-taking calls (lossily decoded: never trusted as UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With `--stacks`: the user frames, outermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_stack: Option<Vec<String>>,
    /// With `--stacks`: the kernel frames at the call's return, outermost first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_stack: Option<Vec<String>>,
}

impl SlowCall {
    /// Builds the printable record.
    #[allow(
        clippy::too_many_arguments,
        reason = "a plain constructor of a flat record"
    )]
    pub fn new(
        time_unix_ns: u64,
        pid: u32,
        tid: u32,
        comm: String,
        nr: u32,
        duration_ns: u64,
        ret: i64,
        args: [u64; 3],
    ) -> Self {
        SlowCall {
            r#type: "slow",
            time_unix_ns,
            pid,
            tid,
            comm,
            syscall: syscalls::name(nr),
            nr,
            duration_ns,
            ret,
            errno: syscalls::errno_of(ret).map(syscalls::errno_name),
            args,
            path: None,
            user_stack: None,
            kernel_stack: None,
        }
    }

    /// Adds the call's (user, kernel) frames, outermost first, when they were taken.
    pub fn with_stacks(mut self, stacks: Option<(Vec<String>, Vec<String>)>) -> Self {
        if let Some((user, kernel)) = stacks {
            self.user_stack = Some(user);
            self.kernel_stack = Some(kernel);
        }
        self
    }

    /// Adds the path read by the kernel (NUL-terminated bytes), if any.
    pub fn with_path(mut self, raw: &[u8]) -> Self {
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        if end > 0 && syscalls::PATH_ARGS.iter().any(|(n, _)| *n == self.syscall) {
            self.path = Some(String::from_utf8_lossy(&raw[..end]).into_owned());
        }
        self
    }

    /// One text line.
    pub fn text(&self) -> String {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.time_unix_ns);
        let ret = match &self.errno {
            Some(e) => format!("-1 {e}"),
            None => self.ret.to_string(),
        };
        let path = self
            .path
            .as_ref()
            .map(|p| format!(" path={p:?}"))
            .unwrap_or_default();
        let at = self
            .user_stack
            .as_ref()
            .map(|u| format!("    at {}\n", super::stacks::path_line(u, 8)))
            .unwrap_or_default();
        format!(
            "SLOW {} pid={} tid={} comm={} {}({:#x}, {:#x}, {:#x}) = {} in {}{path}\n{at}",
            humantime::format_rfc3339_millis(t),
            self.pid,
            self.tid,
            super::text::escape(&self.comm),
            self.syscall,
            self.args[0],
            self.args[1],
            self.args[2],
            ret,
            fmt_ns(self.duration_ns)
        )
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("plain data serializes");
        s.push('\n');
        s
    }
}

/// At most `per_second` lines in any one-second window; counts the rest.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
    window_start_ns: u64,
    in_window: u32,
    suppressed: u64,
}

impl RateLimit {
    /// A limiter allowing `per_second` lines a second.
    pub fn new(per_second: u32) -> Self {
        RateLimit {
            per_second,
            window_start_ns: 0,
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Whether a line at `now_ns` may be printed.
    pub fn allow(&mut self, now_ns: u64) -> bool {
        if now_ns.saturating_sub(self.window_start_ns) >= 1_000_000_000 {
            self.window_start_ns = now_ns;
            self.in_window = 0;
        }
        if self.in_window < self.per_second {
            self.in_window += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Lines suppressed since the last call.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

/// The line reporting `n` suppressed slow calls.
pub fn suppressed_line(n: u64, json: bool) -> String {
    if json {
        format!("{{\"type\":\"slow_suppressed\",\"count\":{n}}}\n")
    } else {
        format!("SLOW ... {n} more slow calls not shown (rate limit)\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_failed_call() {
        let openat = syscalls::number("openat").unwrap();
        let c = SlowCall::new(
            1_700_000_000_123_000_000,
            5,
            6,
            "cat".into(),
            openat,
            12_300_000,
            -2,
            [0xffffff9c, 0x1000, 0],
        );
        let t = c.text();
        assert!(t.starts_with("SLOW 2023-11-14T22:13:20.123Z pid=5 tid=6 comm=cat openat(0xffffff9c, 0x1000, 0x0) = -1 ENOENT in 12.3ms"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&c.json()).unwrap();
        assert_eq!(v["type"], "slow");
        assert_eq!(v["errno"], "ENOENT");
        assert_eq!(v["args"][1], 4096);
        assert_eq!(v["duration_ns"], 12_300_000);
        let with = c.clone().with_path(b"/etc/\xffpasswd\0garbage");
        assert_eq!(
            with.path.as_deref(),
            Some("/etc/\u{fffd}passwd"),
            "lossy, cut at the NUL"
        );
        assert!(
            with.text()
                .ends_with("in 12.3ms path=\"/etc/\u{fffd}passwd\"\n"),
            "{}",
            with.text()
        );
        let stacked = c.clone().with_stacks(Some((
            vec!["main".into(), "slow_path_a".into(), "nanosleep".into()],
            vec!["entry_SYSCALL_64".into()],
        )));
        assert!(
            stacked
                .text()
                .ends_with("in 12.3ms\n    at nanosleep <- slow_path_a <- main\n"),
            "{}",
            stacked.text()
        );
        let v: serde_json::Value = serde_json::from_str(&stacked.json()).unwrap();
        assert_eq!(v["user_stack"][1], "slow_path_a");
        assert_eq!(v["kernel_stack"][0], "entry_SYSCALL_64");
        assert!(c.json().find("user_stack").is_none());
        let getpid = syscalls::number("getpid").unwrap();
        assert_eq!(
            SlowCall::new(0, 1, 1, "x".into(), getpid, 1, 0, [0; 3])
                .with_path(b"/x\0")
                .path,
            None
        );
    }

    #[test]
    fn rate_limit_counts_what_it_drops() {
        let mut r = RateLimit::new(2);
        assert!(r.allow(1_000_000_000));
        assert!(r.allow(1_100_000_000));
        assert!(!r.allow(1_200_000_000));
        assert!(!r.allow(1_300_000_000));
        assert_eq!(r.take_suppressed(), 2);
        assert!(r.allow(2_100_000_000), "a new window");
        assert_eq!(r.take_suppressed(), 0);
        assert_eq!(
            suppressed_line(3, true),
            "{\"type\":\"slow_suppressed\",\"count\":3}\n"
        );
    }
}
