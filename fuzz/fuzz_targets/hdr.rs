//! Any bytes as a row's encoded histogram (base64 of an HdrHistogram V2 encoding, the
//! `hdr` field of a recording): decoded with its lengths and bounds checked first, so a
//! crafted header or a zlib bomb is an error, not an allocation.
#![no_main]

use base64::Engine as _;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(h) = profiler::aggregate::LatencyHist::from_base64(&text) {
        let _ = (h.count(), h.percentile(99.0), h.to_base64());
    }
});
