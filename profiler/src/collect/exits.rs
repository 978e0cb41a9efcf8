//! Waits for the `-p`/`-t` targets to exit without polling: a pidfd per target (readable
//! once it has exited), registered with the runtime. A target whose pidfd cannot be opened
//! (a thread id on kernels before 6.9, which lack `PIDFD_THREAD`) is checked in /proc every
//! [`POLL_EVERY`] instead, as all of them were before.
//!
//! It only reports who is gone; what to do then (end the session) is the caller's.

use std::{
    future::poll_fn,
    os::fd::{FromRawFd, OwnedFd},
    task::Poll,
    time::Duration,
};

use tokio::io::unix::AsyncFd;

use super::target;

/// How often targets without a pidfd are looked up in /proc.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for one thread, readable when that thread exits.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// The targets still alive.
#[derive(Debug, Default)]
pub struct Exits {
    /// Targets with a pidfd.
    fds: Vec<(u32, AsyncFd<OwnedFd>)>,
    /// Targets without one, polled in /proc.
    polled: Vec<u32>,
    /// When to look them up next (kept across calls: the wait is often cancelled).
    next_poll: Option<tokio::time::Instant>,
}

/// Opens a pidfd for `id`: a process, or with `thread` a single thread.
fn pidfd_open(id: u32, thread: bool) -> std::io::Result<OwnedFd> {
    let flags = if thread { PIDFD_THREAD } else { 0 };
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1; it touches no
    // memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, id as libc::pid_t, flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Registers `fd` with the runtime for readability. Must be called within the runtime.
pub(crate) fn register_readable(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is owned by the AsyncFd from here on, so it stays open and refers to the
    // same file until the AsyncFd is dropped.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

impl Exits {
    /// Watches `ids`: processes, or with `threads` thread ids. Must be called within the
    /// runtime. Targets already gone are left out.
    pub fn new(ids: &[u32], threads: bool) -> Self {
        let mut w = Exits::default();
        for &id in ids {
            match pidfd_open(id, threads).and_then(register_readable) {
                Ok(fd) => w.fds.push((id, fd)),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => {
                    log::debug!("no pidfd for {id} ({e}): checking /proc every 200 ms");
                    w.polled.push(id);
                }
            }
        }
        w.polled.retain(|&id| target::alive(id));
        w
    }

    /// Whether every target has exited (true at once when none was given).
    pub fn all_gone(&self) -> bool {
        self.fds.is_empty() && self.polled.is_empty()
    }

    /// Waits until some target has exited, and forgets it; pending forever when there is
    /// nothing to watch. Cancel-safe.
    pub async fn next_exit(&mut self) {
        if self.all_gone() {
            return std::future::pending().await;
        }
        let polled = !self.polled.is_empty();
        let at = *self
            .next_poll
            .get_or_insert_with(|| tokio::time::Instant::now() + POLL_EVERY);
        let mut timer = polled.then(|| Box::pin(tokio::time::sleep_until(at)));
        poll_fn(|cx| {
            let before = self.fds.len();
            // A pidfd is readable from the target's exit on; a failed poll means the same.
            self.fds
                .retain(|(_, fd)| fd.poll_read_ready(cx).is_pending());
            if self.fds.len() < before {
                return Poll::Ready(());
            }
            if let Some(t) = timer.as_mut()
                && t.as_mut().poll(cx).is_ready()
            {
                let n = self.polled.len();
                self.polled.retain(|&id| target::alive(id));
                let next = tokio::time::Instant::now() + POLL_EVERY;
                self.next_poll = Some(next);
                if self.polled.len() < n {
                    return Poll::Ready(());
                }
                t.as_mut().reset(next);
                // Registers the new deadline's waker.
                if t.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_each_exit_without_polling() {
        let mut a = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let mut b = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut w = Exits::new(&[a.id(), b.id()], false);
        assert!(w.polled.is_empty(), "pidfds work here");
        assert!(!w.all_gone());
        let t = std::time::Instant::now();
        // `a` exits (a zombie until reaped, which is what a pidfd reports).
        tokio::time::timeout(Duration::from_secs(5), w.next_exit())
            .await
            .expect("the exit of `a` is seen");
        assert!(t.elapsed() >= Duration::from_millis(150));
        assert!(!w.all_gone());
        b.kill().unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.next_exit())
            .await
            .expect("the exit of `b` is seen");
        assert!(w.all_gone());
        a.wait().unwrap();
        b.wait().unwrap();
        // Gone before watching: nothing to wait for.
        assert!(Exits::new(&[a.id()], false).all_gone());
    }

    #[tokio::test]
    async fn threads_are_watched_one_by_one() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let mut w = Exits::new(&[tid], true);
        assert!(!w.all_gone());
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.next_exit())
            .await
            .expect("the thread's exit is seen");
        assert!(w.all_gone());
        h.join().unwrap();
    }
}
