//! A real browser for tests of the HTML report: Debian's headless Chromium, driven over the
//! Chrome DevTools Protocol (a websocket, `--remote-debugging-port=0`). It loads a page,
//! collects every console message, uncaught exception and network request, evaluates DOM
//! queries, sends real mouse events, and takes screenshots.
//!
//! A missing Chromium is a failure (`cargo xtask setup` installs it), never a skip.

use std::{
    io::{BufRead as _, BufReader},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// How long any one step may take (Chromium's start, a page load, a command).
const TIMEOUT: Duration = Duration::from_secs(60);

/// A headless Chromium with one page open; closed (and its profile removed) on drop.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Every event received, in order (`method` and `params`).
    events: Vec<Value>,
    profile: std::path::PathBuf,
}

/// The Chromium binary: Debian's `chromium`.
fn chromium_bin() -> std::path::PathBuf {
    let bin = std::path::PathBuf::from("/usr/bin/chromium");
    assert!(
        bin.exists(),
        "chromium is missing: run `cargo xtask setup` (it installs Debian's chromium package)"
    );
    bin
}

impl Browser {
    /// Starts Chromium with a fresh profile and a blank page of `width`×`height`.
    pub fn start(width: u32, height: u32) -> Self {
        let profile = crate::temp_path(&format!(
            "chromium-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after the epoch")
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let mut child = Command::new(chromium_bin())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // Chromium says where it listens on stderr; the rest of stderr is drained by a
        // thread so that it never blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(TIMEOUT) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not say where DevTools listens ({e})");
            }
        };
        let (ws, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
        }
        let mut b = Self {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            profile,
        };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Runtime", "Log", "Page", "Network"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        b
    }

    /// Sends `method` (to the page once attached) and returns its result; events that
    /// arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("sending {method}: {e}"));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "{method}: no answer");
            let v = self.read(method);
            if v["id"] == id {
                if let Some(err) = v.get("error") {
                    panic!("{method}: {err}");
                }
                return v["result"].clone();
            }
        }
    }

    /// The next message; events are recorded as they pass.
    fn read(&mut self, during: &str) -> Value {
        loop {
            let msg = self
                .ws
                .read()
                .unwrap_or_else(|e| panic!("DevTools connection, during {during}: {e}"));
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).expect("DevTools sends JSON");
            if v.get("method").is_some() {
                self.events.push(v.clone());
            }
            return v;
        }
    }

    /// Opens `path` and waits for its load event.
    pub fn open(&mut self, path: &Path) {
        let seen = self.events.len();
        let url = format!(
            "file://{}",
            path.canonicalize().expect("page exists").display()
        );
        let nav = self.call("Page.navigate", json!({ "url": url }));
        assert!(
            nav.get("errorText").is_none(),
            "loading {url}: {}",
            nav["errorText"]
        );
        let deadline = Instant::now() + TIMEOUT;
        while !self.events[seen..]
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            assert!(Instant::now() < deadline, "{url} did not load");
            self.read("the page load");
        }
    }

    /// Evaluates `expr` in the page and returns its value (as JSON); an exception fails.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("evaluating {expr}: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Moves the mouse to (`x`, `y`), in CSS pixels of the viewport.
    pub fn mouse_move(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
        );
    }

    /// A left click at (`x`, `y`): move, press, release, as a user's.
    pub fn click(&mut self, x: f64, y: f64) {
        self.mouse_move(x, y);
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64")
    }

    /// A PNG of the part of the page the selector `css` matches (its first element),
    /// widened by `pad` pixels.
    pub fn screenshot_of(&mut self, css: &str, pad: f64) -> Vec<u8> {
        let r = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); const r = e.getBoundingClientRect();
               return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }})()",
            serde_json::to_string(css).expect("a string")
        ));
        let n = |i: usize| r[i].as_f64().expect("a number");
        let clip = json!({
            "x": (n(0) - pad).max(0.0), "y": (n(1) - pad).max(0.0),
            "width": n(2) + 2.0 * pad, "height": n(3) + 2.0 * pad, "scale": 1
        });
        let r = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "clip": clip, "captureBeyondViewport": true }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64")
    }

    /// Console errors and warnings, uncaught exceptions and error log entries so far.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => {
                        Some(format!("exception: {}", p["exceptionDetails"]))
                    }
                    "Runtime.consoleAPICalled"
                        if matches!(p["type"].as_str(), Some("error" | "warning" | "assert")) =>
                    {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Log.entryAdded"
                        if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) =>
                    {
                        Some(format!("log: {}", p["entry"]))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// The URL of every request the page made.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session.clear();
        // Ask nicely, then make sure.
        let _ = self.ws.send(Message::text(
            json!({ "id": 0, "method": "Browser.close" }).to_string(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
