//! Subcommand wiring: the only place that sees every layer (flags, collection,
//! aggregation, output).

pub mod compare;
pub mod completions;
pub mod doctor;
pub mod man;
pub mod record;
pub mod report;
pub mod serve;
pub mod top;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Record(args) => record::run(&args).await,
        Command::Serve(args) => serve::run(&args).await,
        Command::Top(args) => top::run(&args).await,
        Command::Report(args) => report::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Doctor => doctor::run(),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
    }
}
