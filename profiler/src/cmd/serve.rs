//! `syslat serve`: trace like `record`, and answer HTTP requests with the live cumulative
//! numbers: `/metrics` (Prometheus text; OpenMetrics or Prometheus protobuf, with native
//! histograms, when the scraper's `Accept` header prefers them) and a short page at `/`.
//! Each `/metrics` request asks the collector for a fresh snapshot: it drains the call logs
//! and publishes an immutable snapshot over a `watch` channel, which the HTTP side only
//! reads, so a slow scraper never stalls collection, and between scrapes nothing is built
//! (an idle `serve` costs almost nothing).
//!
//! With `--by process`, the series of a process that exited are kept for
//! [`RETAIN_SCRAPES`] snapshots after its exit (merged with those of the other exited
//! processes of its name), then dropped unless a live process has the same name (see
//! `Aggregator::expire`): memory stays bounded however many processes come and go.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};

use crate::{
    aggregate::{Aggregator, GroupBy, LossCounters, RowKey, Snapshot},
    cli::ServeArgs,
    collect::session::{Event, Trace},
    config::ServeConfig,
    output::prometheus::{self, Format, SelfStats},
};

/// How long a request waits for the collector's fresh snapshot before it is answered with
/// the last one.
const REFRESH_WAIT: Duration = Duration::from_secs(1);

/// Snapshots (scrapes) an exited process's series stay in, with their final values, before
/// they are dropped.
pub const RETAIN_SCRAPES: u32 = 2;

/// Runs `serve`; returns the exit status.
pub async fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    let cfg = ServeConfig::from_args(args)?;
    // Bind before loading anything, so a port in use is reported first.
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let mut trace = Trace::start_with(&cfg.targets, &cfg.filters, cfg.duration, false)?;
    eprintln!(
        "syslat: serving http://{}/metrics; Ctrl-C to stop",
        cfg.listen
    );
    let mut agg = Aggregator::new(cfg.group);
    agg.retain_exited(RETAIN_SCRAPES);
    let empty = agg.snapshot(trace.start_unix_ns, 0, LossCounters::default(), &|_| None);
    let (tx, rx) = watch::channel(Arc::new(empty));
    // Requests for a fresh snapshot; one pending request serves every scrape waiting.
    let (want_tx, mut want_rx) = mpsc::channel(1);
    let server = tokio::spawn(serve_http(listener, rx, want_tx, cfg.max_series));
    let names = matches!(cfg.group, GroupBy::Process | GroupBy::Thread);
    let code = loop {
        let ev = tokio::select! {
            ev = trace.next() => ev?,
            Some(()) = want_rx.recv() => Event::DumpRequested,
        };
        match ev {
            Event::Tick => trace.drain(names, |b| agg.fold_batch(b)),
            Event::DumpRequested => {
                trace.drain(names, |b| agg.fold_batch(b));
                let names = trace.namer(cfg.group);
                // Pending first: an answer that comes in between only holds a row back.
                let pending = trace.containers_pending();
                let containers = trace.container_infos(Duration::ZERO);
                let mut snap = agg.snapshot_with(
                    trace.start_unix_ns,
                    trace.elapsed().as_nanos() as u64,
                    trace.loss(),
                    &|k| names.name(k),
                    &|k| containers.get(&k).cloned(),
                );
                agg.expire(&|k| names.name(k));
                // A container's series appear once its runtime has named it, with every
                // call so far: a label that changed later would start a second series.
                if !pending.is_empty() {
                    snap.rows.retain(
                        |r| !matches!(&r.key, RowKey::Container(c) if pending.contains(&c.id)),
                    );
                }
                drop(tx.send_replace(Arc::new(snap)));
                // What expired and the previous snapshot go back to the kernel, so the
                // resident set follows the retention, not the highest churn seen.
                crate::collect::memory::give_back();
            }
            Event::End(code) => break code,
        }
    };
    server.abort();
    Ok(code)
}

async fn serve_http(
    listener: TcpListener,
    rx: watch::Receiver<Arc<Snapshot>>,
    want: mpsc::Sender<()>,
    max_series: usize,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (rx, want) = (rx.clone(), want.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, rx, &want, max_series).await {
                        log::debug!("http: {e:#}");
                    }
                });
            }
            Err(e) => {
                log::warn!("http accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The collector's snapshot, made for this request: asks the collector to drain and publish,
/// and waits for it (at most [`REFRESH_WAIT`]; else the last one is used).
async fn fresh(mut rx: watch::Receiver<Arc<Snapshot>>, want: &mpsc::Sender<()>) -> Arc<Snapshot> {
    rx.mark_unchanged();
    // Full: a refresh is pending, and it comes after this point; closed: the collector is
    // gone, and the last snapshot is all there is.
    if !matches!(want.try_send(()), Err(mpsc::error::TrySendError::Closed(_))) {
        let _ = tokio::time::timeout(REFRESH_WAIT, rx.changed()).await;
    }
    rx.borrow().clone()
}

/// Reads one request head (bounded in size and time) and answers it; HTTP/1.1, no keep-alive.
async fn answer(
    mut stream: TcpStream,
    rx: watch::Receiver<Arc<Snapshot>>,
    want: &mpsc::Sender<()>,
    max_series: usize,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .context("request timed out")??;
    let head = String::from_utf8_lossy(&buf);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let accept = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("accept"))
        .map(|(_, v)| v.trim())
        .collect::<Vec<_>>()
        .join(",");
    let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => {
            let format = Format::negotiate(&accept);
            let snap = fresh(rx, want).await;
            let body = prometheus::render(&snap, self_stats(), format, max_series);
            ("200 OK", format.content_type(), body)
        }
        ("GET", "/") => (
            "200 OK",
            "text/html; charset=utf-8",
            INDEX.as_bytes().to_vec(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n".to_vec(),
        ),
    };
    // One write: head and body in one segment (two small writes can meet Nagle's delay).
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(&body);
    stream.write_all(&resp).await?;
    stream.shutdown().await?;
    Ok(())
}

const INDEX: &str = "<!doctype html><html><head><title>syslat</title></head><body>\
<h1>syslat</h1><p>Syscall latency metrics: <a href=\"/metrics\">/metrics</a></p></body></html>\n";

/// syslat's own CPU time and resident memory, from /proc/self.
fn self_stats() -> SelfStats {
    let Ok(me) = procfs::process::Process::myself() else {
        return SelfStats::default();
    };
    let tps = procfs::ticks_per_second() as f64;
    let cpu_seconds = me
        .stat()
        .map(|s| (s.utime + s.stime) as f64 / tps)
        .unwrap_or(0.0);
    let rss_bytes = me
        .status()
        .ok()
        .and_then(|s| s.vmrss)
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    SelfStats {
        cpu_seconds,
        rss_bytes,
    }
}
