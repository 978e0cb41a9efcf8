//! `syslat compare`: read the base and new recordings, compare them (see `crate::compare`
//! for the method), print the result, and return 1 when something regressed.

use std::io::Write as _;

use anyhow::Context as _;

use crate::{
    cli::{ByName, CompareArgs, CompareFormat},
    compare::{self, Settings},
    config::CompareConfig,
    output::compare as out,
    recording::{self, Part, Recording},
};

/// Runs `compare`; returns 0 (no regression) or 1 (regression).
pub fn run(args: &CompareArgs) -> anyhow::Result<i32> {
    let CompareConfig {
        base: base_files,
        new: new_files,
        thresholds,
        only,
    } = CompareConfig::from_args(args)?;
    let read = |files: &[std::path::PathBuf]| -> anyhow::Result<Vec<Recording>> {
        files
            .iter()
            .map(|f| {
                let r = recording::read(f)?;
                for w in &r.warnings {
                    eprintln!("syslat: warning: {w}");
                }
                Ok(r)
            })
            .collect()
    };
    let (base, new) = (read(&base_files)?, read(&new_files)?);
    let runs = |recs: &[Recording]| -> Vec<Part> { recs.iter().flat_map(runs_of).collect() };
    let (base_runs, new_runs) = (runs(&base), runs(&new));
    let settings = Settings {
        thresholds,
        min_count: args.min_count,
        by_process: args.by == ByName::Process,
        only,
        min_delta_ns: args.min_delta.as_nanos() as u64,
        run_drift: args.run_drift,
    };
    let b: Vec<&Part> = base_runs.iter().collect();
    let n: Vec<&Part> = new_runs.iter().collect();
    let c = compare::compare(&b, &n, &settings);
    let text = match args.format {
        CompareFormat::Text => out::text(&c),
        CompareFormat::Markdown => out::markdown(&c),
        CompareFormat::Json => out::json(&c),
    };
    // Not `print!`, which panics when stdout is a closed pipe (`syslat compare a b | head`):
    // the error goes up, and `main` ends quietly on a broken pipe.
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("failed to write to stdout")?;
    Ok(i32::from(c.regressed))
}

/// The runs of a recording ([`Recording::runs`]), each as one part.
fn runs_of(r: &Recording) -> Vec<Part> {
    r.runs()
        .into_iter()
        .map(|parts| {
            let mut merged = Part::default();
            for p in parts {
                merged.rows.extend(p.rows.iter().cloned());
                merged.lost_events += p.lost_events;
            }
            merged
        })
        .collect()
}
