//! A real Prometheus server for the tests (Debian's `prometheus`): started on a free
//! 127.0.0.1 port with its own temporary storage, scraping one `syslat serve` every second,
//! queried through its HTTP API, and killed (its storage removed) when dropped.
#![allow(
    clippy::unwrap_used,
    reason = "a test helper panics on failure, with the location"
)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use crate::temp_path;

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `s` percent-encoded for a URL query.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An HTTP/1.0 GET (so the body is never chunked): status line and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

/// A Prometheus server on 127.0.0.1 with its storage in a temporary directory, scraping
/// one target every second; killed and its storage removed when dropped, even when the
/// test fails.
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Whether it has native histograms on.
    pub native: bool,
}

impl Prometheus {
    pub fn start(name: &str, target: &str, native: bool) -> Self {
        let dir = temp_path(&format!("prometheus-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: syslat\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap());
        if native {
            cmd.arg("--enable-feature=native-histograms");
        }
        let child = cmd
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed by cargo xtask setup");
        Prometheus {
            child,
            port,
            dir,
            native,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>`: the `data` of a successful answer, or the error text.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) =
            http_get(self.port, &format!("/api/v1/{path}")).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    /// An instant query's result vector.
    pub fn query(&self, q: &str) -> Vec<Value> {
        let data = self
            .api(&format!("query?query={}", urlencode(q)))
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(data["resultType"], "vector", "{q}: {data}");
        data["result"].as_array().unwrap().clone()
    }

    /// The one value of an instant query that answers one float sample.
    pub fn scalar(&self, q: &str) -> Option<f64> {
        let r = self.query(q);
        assert!(r.len() <= 1, "{q}: {r:?}");
        r.first()
            .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Waits until the target has been scraped successfully.
    pub fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(t) = self.api("targets") {
                let t = &t["activeTargets"][0];
                if t["health"] == "up" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus (native: {}) never scraped syslat: {:?}\n{}",
                self.native,
                self.api("targets"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `q` (one float sample) until it reaches `want` or 20 s pass; returns the last.
    pub fn settle(&self, q: &str, want: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.scalar(q);
            if v.is_some_and(|v| v >= want) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `expr` with the dashboard's variables replaced as Grafana would for "All" and a 1 s
/// scrape interval (`$__rate_interval` = 4 scrape intervals).
pub fn substitute(expr: &str, range_s: u64) -> String {
    expr.replace("$__rate_interval", "4s")
        .replace("$__range", &format!("{range_s}s"))
        .replace("$__interval", "1s")
        .replace("$instance", ".+")
        .replace("$syscall", ".+")
}

/// Whether a query result (instant or range, floats or native histograms) holds at least
/// one finite sample.
pub fn has_data(result: &[Value]) -> bool {
    let finite = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    result.iter().any(|series| {
        let point = |p: &Value| finite(&p[1]) || finite(&p[1]["count"]);
        ["value", "histogram"].iter().any(|k| {
            let p = &series[*k];
            !p.is_null() && point(p)
        }) || ["values", "histograms"]
            .iter()
            .any(|k| series[*k].as_array().is_some_and(|ps| ps.iter().any(point)))
    })
}
