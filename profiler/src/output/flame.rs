//! Flame graphs (SVG) of a recording's stacks, drawn by the inferno crate from folded
//! lines: one graph with a tower per syscall (`report -f flamegraph`), or one graph per
//! report row (the HTML report's row sections). Pure: stacks in, SVG text out.

use std::fmt::Write as _;

use crate::aggregate::stacks::{KERNEL_SUFFIX, OTHER_STACKS, StackSet, Weight, folded_name};

/// Why a flame graph could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    /// Nothing to draw.
    #[error("the recording holds no stacks: record with --stacks")]
    NoStacks,
    /// inferno failed.
    #[error("failed to draw the flame graph")]
    Render(#[source] std::io::Error),
}

/// The count label of a weight.
fn count_name(weight: Weight) -> &'static str {
    match weight {
        Weight::Time => "ns",
        Weight::Count => "calls",
    }
}

/// Draws sorted folded `lines` as an SVG flame graph.
fn draw(
    title: &str,
    subtitle: &str,
    lines: &[String],
    weight: Weight,
) -> Result<String, FlameError> {
    if lines.is_empty() {
        return Err(FlameError::NoStacks);
    }
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = title.to_string();
    opt.subtitle = Some(subtitle.to_string());
    opt.count_name = count_name(weight).to_string();
    opt.name_type = "Frame:".to_string();
    // The same stacks give the same colours (and the same file).
    opt.deterministic = true;
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), &mut out)
        .map_err(FlameError::Render)?;
    String::from_utf8(out).map_err(|e| FlameError::Render(std::io::Error::other(e)))
}

/// The lines of `set` with each syscall at the root: `syscall;comm;outer;...;inner`.
fn rooted_by_syscall(set: &StackSet, weight: Weight, only: Option<u32>) -> Vec<String> {
    let mut lines: std::collections::BTreeMap<String, u64> = Default::default();
    for r in set.rows.iter().filter(|r| only.is_none_or(|nr| r.nr == nr)) {
        let v = r.weight(weight);
        if v == 0 {
            continue;
        }
        let mut frames = vec![folded_name(&r.syscall), folded_name(&r.comm)];
        if r.other {
            frames.push(OTHER_STACKS.to_string());
        }
        frames.extend(r.user.iter().map(|f| folded_name(f)));
        frames.extend(
            r.kernel
                .iter()
                .map(|f| format!("{}{KERNEL_SUFFIX}", folded_name(f))),
        );
        *lines.entry(frames.join(";")).or_default() += v;
    }
    lines.into_iter().map(|(s, v)| format!("{s} {v}")).collect()
}

/// One flame graph of every syscall in `set`, each a tower of its own from the root
/// (syscall, then process name, then the user and kernel frames, outermost first).
pub fn by_syscall(set: &StackSet, weight: Weight) -> Result<String, FlameError> {
    draw(
        "syscall latency by call path",
        &format!(
            "width: {} in the calls; bottom frame: the syscall",
            what(weight)
        ),
        &rooted_by_syscall(set, weight, None),
        weight,
    )
}

/// The flame graph of syscall `nr`'s calls in `set`.
pub fn of_syscall(set: &StackSet, nr: u32, weight: Weight) -> Result<String, FlameError> {
    let name = set
        .rows
        .iter()
        .find(|r| r.nr == nr)
        .map(|r| r.syscall.clone())
        .ok_or(FlameError::NoStacks)?;
    draw(
        &format!("{name}: latency by call path"),
        &format!("width: {} in {name} calls", what(weight)),
        &rooted_by_syscall(set, weight, Some(nr)),
        weight,
    )
}

fn what(weight: Weight) -> &'static str {
    match weight {
        Weight::Time => "time",
        Weight::Count => "calls",
    }
}

/// The HTML section of a report row's flame graph: the calls of syscall `nr` (made by
/// processes named `comm`, for a row of one process), in an iframe of its own (inferno's
/// SVG carries its own script and element ids). `None` when no stack matches.
pub fn row_section(set: &StackSet, nr: u32, comm: Option<&str>, weight: Weight) -> Option<String> {
    let rows: Vec<_> = set
        .rows
        .iter()
        .filter(|r| r.nr == nr && comm.is_none_or(|c| r.comm == c))
        .cloned()
        .collect();
    let name = rows.first()?.syscall.clone();
    let svg = of_syscall(&StackSet { rows }, nr, weight).ok()?;
    let height = svg_height(&svg).unwrap_or(600) + 10;
    let mut h = String::new();
    let _ = write!(
        h,
        "<div class=\"flamegraph\"><h4>Call paths (flame graph)</h4>\
         <iframe title=\"{} flame graph\" style=\"width:100%;height:{height}px;border:0\" \
         srcdoc=\"{}\"></iframe></div>",
        html_escape(&name),
        html_escape(&svg)
    );
    Some(h)
}

/// The `height` of an SVG's root element, in pixels.
fn svg_height(svg: &str) -> Option<u32> {
    let root = &svg[svg.find("<svg")?..];
    let root = &root[..root.find('>')?];
    let at = root.find(" height=\"")? + " height=\"".len();
    let rest = &root[at..];
    rest[..rest.find('"')?].parse().ok()
}

/// Escapes text for an HTML attribute or element.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::stacks::StackRow;

    fn set() -> StackSet {
        let row = |syscall: &str, user: &[&str], count, total_ns| StackRow {
            comm: "helper".into(),
            syscall: syscall.into(),
            nr: crate::syscalls::number(syscall).unwrap(),
            user: user.iter().map(|s| s.to_string()).collect(),
            kernel: vec!["entry_SYSCALL_64".into()],
            other: false,
            count,
            total_ns,
        };
        StackSet {
            rows: vec![
                row("clock_nanosleep", &["main", "slow_path_a"], 3, 30_000_000),
                row("getppid", &["main", "<fast_path_b & co>"], 300, 60_000),
            ],
        }
    }

    #[test]
    fn draws_a_tower_per_syscall_naming_the_frames() {
        let svg = by_syscall(&set(), Weight::Time).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40]);
        for name in [
            "slow_path_a",
            "clock_nanosleep",
            "entry_SYSCALL_64",
            "getppid",
        ] {
            assert!(svg.contains(name), "{name} missing");
        }
        assert!(
            svg.contains("&lt;fast_path_b &amp; co&gt;"),
            "names are escaped"
        );
        let one = of_syscall(
            &set(),
            crate::syscalls::number("getppid").unwrap(),
            Weight::Count,
        )
        .unwrap();
        assert!(!one.contains("slow_path_a"));
        assert!(one.contains("300 calls"), "weighted by calls");
        assert!(matches!(
            by_syscall(&StackSet::default(), Weight::Time),
            Err(FlameError::NoStacks)
        ));
    }

    #[test]
    fn a_row_section_embeds_its_graph() {
        let getppid = crate::syscalls::number("getppid").unwrap();
        let h = row_section(&set(), getppid, Some("helper"), Weight::Time).unwrap();
        assert_eq!(h.matches("<iframe").count(), 1);
        assert!(h.contains("fast_path_b") && !h.contains("slow_path_a"));
        assert!(!h.contains("<svg"), "the SVG is escaped inside srcdoc");
        assert!(row_section(&set(), getppid, Some("other"), Weight::Time).is_none());
        assert_eq!(
            svg_height("<svg version=\"1.1\" width=\"1200\" height=\"230\" x>"),
            Some(230)
        );
    }
}
