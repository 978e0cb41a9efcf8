//! `syslat completions SHELL`: print a completion script for SHELL. The script is derived
//! from the clap definitions in [`crate::cli`], so it cannot drift from the parser; this
//! module must not describe any flag itself.
#![forbid(unsafe_code)]

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};

/// Runs `completions`; returns the exit status.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    out.write_all(&script(args.shell))
        .and_then(|()| out.flush())
        .context("failed to write the completion script to stdout")?;
    Ok(0)
}

/// The completion script of `syslat` for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    // clap_complete panics when a write fails. Writing to a Vec cannot fail, and the write
    // to stdout in `run` reports its own error (a closed pipe is exit 0, as everywhere).
    clap_complete::generate(shell, &mut completed_command(), "syslat", &mut buf);
    buf
}

/// `Cli`'s command line without its hidden subcommands (`man`), which clap_complete would
/// offer too (clap-rs/clap#1335). `clap::Command` cannot remove a subcommand, so the root is
/// put together again from the built command's own arguments and visible subcommands: no
/// flag is restated here, so the script cannot drift from `Cli`.
fn completed_command() -> clap::Command {
    // Built, the subcommands carry what the root propagates to them (--version, -v). The
    // `help` subcommand is left out here and made afresh, from the visible subcommands only,
    // when clap_complete builds the new root.
    let mut full = Cli::command().disable_help_subcommand(true);
    full.build();
    clap::Command::new("syslat")
        // The copied arguments hold -h/--help and -V/--version already; clap wants the
        // version they print (the one clap's derive takes for `Cli`).
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of a script, split at every character that is not a letter or digit (so
    /// bash's `syslat__subcmd__man` holds the word `man`).
    fn words(script: &str) -> impl Iterator<Item = &str> {
        script.split(|c: char| !c.is_ascii_alphanumeric())
    }

    #[test]
    fn bash_offers_the_subcommands_but_not_man() {
        let bash = String::from_utf8(script(Shell::Bash)).unwrap();
        let top = bash
            .lines()
            .find(|l| l.trim_start().starts_with("opts=\"") && l.contains("record"))
            .expect("the top-level opts line");
        for word in [
            "record",
            "report",
            "top",
            "compare",
            "serve",
            "completions",
            "--version",
        ] {
            assert!(
                top.split(['"', ' ']).any(|w| w == word),
                "{top} lacks {word}"
            );
        }
        assert!(
            bash.contains("--ring-buffer"),
            "bash script lacks --ring-buffer"
        );
    }

    #[test]
    fn every_shell_completes_flags_and_hides_man() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let text = String::from_utf8(script(shell)).unwrap();
            assert!(words(&text).any(|w| w == "record"), "{shell}: no record");
            assert!(text.contains("ring-buffer"), "{shell}: no --ring-buffer");
            assert!(!words(&text).any(|w| w == "man"), "{shell} offers man");
        }
        // The check above can fail: the whole command line, hidden `man` included, has it.
        let mut full = Vec::new();
        clap_complete::generate(Shell::Bash, &mut Cli::command(), "syslat", &mut full);
        assert!(words(&String::from_utf8(full).unwrap()).any(|w| w == "man"));
    }
}
