//! Stacks as text: the call paths under the table (`record --stacks`), the top frames of
//! a slow call, and the note on stacks that look truncated. Names are escaped for the
//! terminal here; folded lines and flame graphs have their own rules (`aggregate::stacks`,
//! `flame`).

use std::fmt::Write as _;

use super::text::escape;
use crate::{
    aggregate::stacks::{CallPath, SHORT_STACK, StackSet, Weight},
    units::fmt_ns,
};

/// Frames shown of a call path, innermost first.
const PATH_FRAMES: usize = 6;

/// Call paths per syscall under the table, and syscalls shown.
const PATHS: usize = 3;
const SYSCALLS: usize = 5;

/// A call path on one line, innermost user frame first: `f <- g <- h (+N)`; the kernel
/// frames (taken at the call's return, always the exit path) are left out.
pub fn path_line(user: &[String], max: usize) -> String {
    let frames: Vec<&String> = user
        .iter()
        .rev()
        .filter(|f| f.as_str() != SHORT_STACK)
        .collect();
    let mut s = frames
        .iter()
        .take(max)
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join(" <- ");
    if frames.len() > max {
        let _ = write!(s, " <- ... ({} more)", frames.len() - max);
    }
    if s.is_empty() {
        s.push_str("[no user frames]");
    }
    s
}

/// The top call paths of the syscalls with the most time, for the text output.
pub fn paths_text(set: &StackSet) -> String {
    let mut out = String::new();
    if set.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nCall paths by time (innermost frame first):");
    for (nr, name, total) in set.syscalls(Weight::Time).into_iter().take(SYSCALLS) {
        let _ = writeln!(
            out,
            "  {} ({} calls, {}):",
            escape(&name),
            total.count,
            fmt_ns(total.total_ns)
        );
        for p in set.paths(nr, PATHS) {
            let _ = writeln!(out, "    {}", path_summary(&p, total.total_ns));
        }
    }
    out.push_str(&short_note(set));
    out
}

/// One call path with its share of `of_ns`; only its user frames are shown.
pub fn path_summary(p: &CallPath, of_ns: u64) -> String {
    let share = if of_ns == 0 {
        0.0
    } else {
        100.0 * p.tally.total_ns as f64 / of_ns as f64
    };
    format!(
        "{share:5.1}% {:>9} {:>7} calls  {}: {}{}",
        fmt_ns(p.tally.total_ns),
        p.tally.count,
        escape(&p.comm),
        path_line(&p.user, PATH_FRAMES),
        if p.short {
            "  [short: no frame pointers?]"
        } else {
            ""
        }
    )
}

/// A note when a share of the calls had user stacks of one or two frames; empty otherwise.
pub fn short_note(set: &StackSet) -> String {
    let (short, all) = set.short_calls();
    if short == 0 || all == 0 {
        return String::new();
    }
    format!(
        "note: {short} of {all} calls ({:.0}%) have user stacks of one or two frames, \
         marked {SHORT_STACK}: that code likely lacks frame pointers (README, \"Stacks\")\n",
        100.0 * short as f64 / all as f64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_innermost_first_and_bounded() {
        let user: Vec<String> = ["main", "run", "slow_path_a", "sleep", "nanosleep"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            path_line(&user, 3),
            "nanosleep <- sleep <- slow_path_a <- ... (2 more)"
        );
        assert_eq!(path_line(&[], 3), "[no user frames]");
        assert_eq!(path_line(&["a\x1b[31m".to_string()], 3), "a\\x1b[31m");
    }
}
