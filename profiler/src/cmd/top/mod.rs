//! `syslat top`: wiring. A collector task ([`collector`]: kernel I/O and aggregation)
//! publishes a [`Frame`] every interval over a `watch` channel; the view
//! ([`tui::run`](crate::tui::run), its own thread) only reads the latest one, so a slow
//! terminal never delays collection. Batch mode prints each frame as text instead
//! ([`output::top`](crate::output::top)).

mod collector;

use std::{io::IsTerminal, sync::Arc};

use anyhow::Context as _;
use tokio::sync::watch;

use self::collector::Collector;
use crate::{
    cli::TopArgs,
    collect::{scope::Targets, session::Trace},
    config::TopConfig,
    tui::{self, Frame},
};

/// Runs `top`; returns the exit status (the command's, when one was traced).
pub async fn run(args: &TopArgs) -> anyhow::Result<i32> {
    let cfg = TopConfig::from_args(args)?;
    let batch = args.batch || !std::io::stdout().is_terminal();
    let trace = Trace::start_with(&cfg.targets, &cfg.filters, None, false)?;
    let desc = describe(&cfg.targets);
    let (frame_tx, frame_rx) = watch::channel::<Option<Arc<Frame>>>(None);
    let (quit_tx, quit_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let ui = if batch {
        None
    } else {
        Some(tokio::task::spawn_blocking(move || {
            tui::run::run(frame_rx, stop_rx, quit_tx)
        }))
    };
    let limit = if batch { cfg.count } else { None };
    let mut collector = Collector::new(trace, desc, cfg.interval, batch, limit);
    let code = collector.run(&frame_tx, quit_rx).await;
    let _ = stop_tx.send(true);
    if let Some(ui) = ui {
        ui.await.context("the view failed")??;
    }
    code
}

fn describe(t: &Targets) -> String {
    match t {
        Targets::All => "all processes".into(),
        Targets::Pids(p) => format!("pids {p:?} and children"),
        Targets::Tids(t) => format!("threads {t:?}"),
        Targets::Comms(c) => format!("processes named {}", c.join(", ")),
        Targets::Cgroup(c) => format!("cgroup {}", c.path.display()),
        Targets::Command(argv) => format!("`{}`", argv.join(" ")),
    }
}
