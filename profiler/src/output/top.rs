//! `top -b`: one [`Frame`] as text, a header line (time, uptime, targets, rate, loss,
//! syslat's own CPU) over the interval's table and, with `--stacks`, its stacks.
#![forbid(unsafe_code)]

use std::time::SystemTime;

use super::{stacks, text};
use crate::tui::Frame;

/// Frame `f` as `top -b` prints it, stamped `now`, ending in an empty line.
pub fn batch(f: &Frame, now: SystemTime) -> String {
    let snap = &f.interval_syscalls;
    let secs = (snap.duration_ns as f64 / 1e9).max(1e-9);
    let mut out = format!(
        "syslat top - {} up {:.0}s, tracing {}, {:.0} syscalls/s, dropped {}, unpaired {}, syslat cpu {:.1}%{}\n",
        humantime::format_rfc3339_seconds(now),
        f.uptime_s,
        f.targets,
        snap.total_calls() as f64 / secs,
        snap.loss.lost(),
        snap.loss.unpaired,
        f.self_cpu_pct,
        f.finished
            .map(|c| format!(", command exited ({c})"))
            .unwrap_or_default(),
    );
    out.push_str(&text::render(snap, 0));
    if let Some(set) = &f.interval_stacks {
        out.push_str(&stacks::paths_text(set));
    }
    out.push('\n');
    out
}
