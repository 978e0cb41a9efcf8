//! Scraping `syslat serve` in the tests: a plain HTTP/1.1 GET, the body of a response, one
//! sample of the text exposition, and `promtool check metrics` as an independent judge of
//! the format.
#![allow(
    clippy::unwrap_used,
    reason = "a test helper panics on failure, with the location"
)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
};

/// `GET PATH` with `Accept: ACCEPT` from the server at `addr`: the whole response, status
/// line and headers included (syslat closes the connection after it).
pub fn get(addr: &str, path: &str, accept: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// The body of a response (what follows the blank line after the headers).
pub fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").unwrap().1
}

/// The value of the first sample line of `text` that starts with `line_prefix` (a metric
/// name with its labels), as an integer.
pub fn metric(text: &str, line_prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Asserts that `promtool check metrics` accepts `text` (a text exposition).
pub fn assert_promtool_accepts(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by cargo xtask setup");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
