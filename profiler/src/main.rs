//! The `syslat` binary: parse flags, run, print one error line. No logic lives here.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use profiler::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let level = match cli.verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .init();
    // One thread: the daemon is a single loop (drain, aggregate, write) that must cost the
    // traced machine little; a multi-thread runtime would also wake a second worker on
    // many of its wake-ups. Blocking work (waiting for the command, the TUI) runs on tokio's
    // blocking threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syslat: failed to start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(profiler::cmd::run(cli));
    // Do not wait for blocking tasks: one may be waiting for a traced command that syslat
    // leaves running (Ctrl-C, or `q` in top).
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            let broken_pipe = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            // A load or attach error says what to do about the kernel's answer (EPERM: the
            // capabilities; ENOENT: what is missing) after the answer itself.
            let hint = err
                .chain()
                .find_map(|e| {
                    e.downcast_ref::<profiler::collect::LoadError>()
                        .or_else(|| {
                            e.downcast_ref::<profiler::collect::session::SessionError>()
                                .and_then(profiler::collect::session::SessionError::load)
                        })
                })
                .and_then(profiler::collect::LoadError::hint)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            eprintln!("syslat: {err:#}{hint}");
            ExitCode::from(2)
        }
    }
}

/// Help and version go out as clap prints them; a bad flag becomes one line and exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            let line = line.strip_prefix("error: ").unwrap_or(line);
            eprintln!("syslat: {line} (see --help)");
            ExitCode::from(2)
        }
    }
}
