//! Recordings handed to syslat by someone else: crafted headers, zlib bombs and nonsense
//! numbers get one clear line and exit 2, cheaply: the peak memory of `report` and
//! `compare` on each stays under 64 MiB (measured with getrusage of the children; this
//! test binary starts no other child, so the maximum is theirs).
#![allow(
    clippy::unwrap_used,
    reason = "a test panics on failure, with the location"
)]

use std::io::Write as _;

use tests::{fails_with, temp_path};

/// A summary line with one row whose `hdr` is `hdr` (base64 given as is) and `count`.
fn line(hdr: &str, count: &str, duration: &str) -> String {
    format!(
        "{{\"type\":\"summary\",\"version\":1,\"by\":\"syscall\",\"start_unix_ns\":1,\
         \"duration_ns\":{duration},\"rows\":[{{\"syscall\":\"read\",\"nr\":0,\"count\":{count},\
         \"hdr\":\"{hdr}\"}}]}}\n"
    )
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An uncompressed V2 histogram header (cookie 0x1c849313) with these fields.
fn v2(payload_len: u32, sigfig: u32, high: u64) -> Vec<u8> {
    let mut b = 0x1c84_9313u32.to_be_bytes().to_vec();
    b.extend_from_slice(&payload_len.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&sigfig.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&high.to_be_bytes());
    b.extend_from_slice(&1.0f64.to_be_bytes());
    b
}

/// A compressed V2 encoding (cookie 0x1c849314) whose zlib stream inflates to `prefix`
/// and then `n` zero bytes; compressed in chunks, so this test itself stays small.
fn zlib_zeros_after(prefix: &[u8], n: usize) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(prefix).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..n / chunk.len() {
        z.write_all(&chunk).unwrap();
    }
    let deflated = z.finish().unwrap();
    let mut b = 0x1c84_9314u32.to_be_bytes().to_vec();
    b.extend_from_slice(&(deflated.len() as u32).to_be_bytes());
    b.extend_from_slice(&deflated);
    b
}

fn peak_rss_of_children_kib() -> i64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

#[test]
fn crafted_recordings_get_one_line_and_little_memory() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "claims a 2 GiB payload",
            line(&b64(&v2(i32::MAX as u32, 3, 3_600_000_000_000)), "0", "1"),
            "payload length",
        ),
        (
            "a zlib bomb",
            line(
                &b64(&zlib_zeros_after(&v2(300 << 20, 3, 1 << 40), 300 << 20)),
                "0",
                "1",
            ),
            "inflates past",
        ),
        (
            "huge bounds",
            line(&b64(&v2(0, 5, u64::MAX / 4)), "0", "1"),
            "out of range",
        ),
        (
            "a negative count",
            line(&b64(&v2(0, 3, 1 << 40)), "-5", "1"),
            "rows[0].count: invalid value: integer `-5`",
        ),
        (
            "a negative duration",
            line(&b64(&v2(0, 3, 1 << 40)), "0", "-1"),
            "duration_ns: invalid value: integer `-1`",
        ),
    ];
    for (what, text, expect) in cases {
        let f = temp_path("crafted.json");
        std::fs::File::create(&f)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(text.len() < 1 << 20, "{what}: the file itself is small");
        for args in [
            vec!["report", f.to_str().unwrap()],
            vec!["compare", f.to_str().unwrap(), f.to_str().unwrap()],
        ] {
            fails_with(&args, expect);
        }
    }
    let peak = peak_rss_of_children_kib();
    assert!(peak < 64 * 1024, "peak RSS of report/compare {peak} KiB");
}
