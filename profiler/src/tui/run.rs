//! `top`'s interactive loop: takes the latest [`Frame`] from the collector, draws it when
//! something changed, and turns keys into [`App`] actions. It never touches the kernel.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::sync::watch;

use super::{Frame, app::App, input, terminal::TerminalGuard, view};

/// The interactive view; returns when the user quits or the collector stops.
pub fn run(
    mut frames: watch::Receiver<Option<Arc<Frame>>>,
    stop: watch::Receiver<bool>,
    quit: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::new().context("cannot use the terminal")?;
    let mut app = App::default();
    // Drawn when something changed (a frame, a key, the terminal's size), not every 50 ms:
    // an unchanged screen costs one size query per wait.
    let mut dirty = true;
    let mut size = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if frames.has_changed().unwrap_or(false)
            && let Some(f) = frames.borrow_and_update().clone()
        {
            app.update(f);
            dirty = true;
        }
        let now = guard.terminal.size().ok();
        if now != size {
            size = now;
            dirty = true;
        }
        if dirty {
            guard
                .terminal
                .draw(|f| view::draw(f, &app))
                .context("failed to draw")?;
            dirty = false;
        }
        // Wait for input ourselves: crossterm's poll spins forever on a terminal that hung
        // up (ssh dropped, tmux session killed); poll(2) reports the hang-up.
        match terminal_input(Duration::from_millis(50)) {
            Input::Gone => break,
            Input::Idle => {}
            Input::Ready => {
                while event::poll(Duration::ZERO).context("failed to read the terminal")? {
                    if let TermEvent::Key(k) =
                        event::read().context("failed to read the terminal")?
                        && k.kind == KeyEventKind::Press
                        && let Some(a) = input::action(k, app.editing_filter)
                    {
                        app.apply(a);
                    }
                    dirty = true;
                }
            }
        }
        if app.quit {
            break;
        }
    }
    let _ = quit.send(true);
    Ok(())
}

enum Input {
    Ready,
    Idle,
    Gone,
}

/// Waits up to `timeout` for the terminal (stdin) to have input, or to hang up.
fn terminal_input(timeout: Duration) -> Input {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::from(timeout.as_millis().min(u16::MAX as u128) as u16);
    match poll(&mut fds, ms) {
        Ok(0) => Input::Idle,
        Ok(_) => {
            let ev = fds[0].revents().unwrap_or(PollFlags::empty());
            if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                Input::Gone
            } else {
                Input::Ready
            }
        }
        Err(nix::Error::EINTR) => Input::Idle,
        Err(_) => Input::Gone,
    }
}
