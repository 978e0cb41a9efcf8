//! `syslat man DIR` (hidden; packaging runs it): write man pages generated from the clap
//! definitions in [`crate::cli`], one for `syslat` and one per visible subcommand
//! (`syslat-record.1`, ...). The pages are derived, so they cannot drift from the parser;
//! this module must not describe any flag itself.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;

use crate::cli::{Cli, ManArgs};

/// Runs `man`; returns the exit status.
pub fn run(args: &ManArgs) -> anyhow::Result<i32> {
    let date = match &args.date {
        Some(date) => date.clone(),
        None => today(),
    };
    write_pages(&args.dir, &date)?;
    Ok(0)
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    stamp[..10].to_owned()
}

/// Writes the pages, dated `date`, into `dir` (created if missing); returns their paths,
/// `syslat.1` first.
pub fn write_pages(dir: &Path, date: &str) -> anyhow::Result<Vec<PathBuf>> {
    // An empty date would vanish from the `.TH` line and shift the fields after it.
    if date.is_empty() {
        bail!("the man pages' date is empty");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    // Without the `help` subcommand, as `clap_mangen::generate_to` does: a page per real
    // subcommand only. Building names each subcommand `syslat-<name>` for its page's title.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let subcommands = root
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect::<Vec<_>>();
    // Every page's footer names syslat and its version (clap_mangen would name the subcommand).
    let source = format!("syslat {}", root.get_version().unwrap_or_default());
    // NAME reads "syslat \- <about>", and the about already starts with "syslat: ".
    if let Some(about) = root.get_about().map(ToString::to_string)
        && let Some(rest) = about.strip_prefix("syslat: ")
    {
        root = root.about(rest.to_owned());
    }
    let mut paths = Vec::new();
    for cmd in std::iter::once(root).chain(subcommands) {
        let title = cmd
            .get_display_name()
            .unwrap_or_else(|| cmd.get_name())
            .to_owned();
        let path = dir.join(format!("{title}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .date(date)
            .source(source.clone())
            .manual("User Commands")
            .render(&mut page)
            .with_context(|| format!("failed to render the man page {title}"))?;
        std::fs::write(&path, page)
            .with_context(|| format!("failed to write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand() {
        let dir = std::env::temp_dir().join(format!("syslat-man-{}", std::process::id()));
        let paths = write_pages(&dir, "2026-12-01").unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "syslat.1",
                "syslat-record.1",
                "syslat-report.1",
                "syslat-top.1",
                "syslat-compare.1",
                "syslat-serve.1",
                "syslat-doctor.1",
                "syslat-completions.1",
            ]
        );
        let record = std::fs::read_to_string(dir.join("syslat-record.1")).unwrap();
        let title = format!(
            ".TH syslat-record 1 2026-12-01 \"syslat {}\" \"User Commands\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(record.contains(&title), "{record}");
        assert!(record.contains("ring\\-buffer"), "{record}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10, "{d}");
        assert_eq!((&d[4..5], &d[7..8]), ("-", "-"), "{d}");
    }
}
