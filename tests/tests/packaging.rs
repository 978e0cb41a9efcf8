//! What packaging takes from the binary: `syslat completions SHELL` prints a script for
//! each shell, `syslat man DIR` writes a page per visible subcommand, and the hidden `man`
//! stays out of the help. No eBPF is loaded.
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use tests::{run, temp_path};

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.contains("record"), "{shell}: {script}");
        assert!(script.contains("ring-buffer"), "{shell}: {script}");
    }
    let bash = String::from_utf8(run(&["completions", "bash"]).stdout).unwrap();
    assert!(bash.contains("complete -F _syslat"), "{bash}");
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("syslat: ") && err.contains("tcsh"), "{err}");
}

#[test]
fn man_pages_per_subcommand() {
    let dir = temp_path("man");
    let o = run(&["man", dir.to_str().unwrap(), "--date", "2026-12-01"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "syslat-compare.1",
            "syslat-completions.1",
            "syslat-doctor.1",
            "syslat-record.1",
            "syslat-report.1",
            "syslat-serve.1",
            "syslat-top.1",
            "syslat.1",
        ]
    );
    let record = std::fs::read_to_string(dir.join("syslat-record.1")).unwrap();
    assert!(
        record.contains(".TH syslat-record 1 2026-12-01 \"syslat "),
        "{record}"
    );
    assert!(record.contains("\\-\\-ring\\-buffer"), "{record}");
    let root = std::fs::read_to_string(dir.join("syslat.1")).unwrap();
    assert!(root.contains("syslat\\-record(1)"), "{root}");
    assert!(!root.contains("syslat\\-man"), "{root}");
}

#[test]
fn man_is_hidden_from_help() {
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(help.contains("completions"), "{help}");
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with("man ")),
        "{help}"
    );
}
