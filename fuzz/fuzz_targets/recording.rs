//! Any bytes handed to `syslat report` or `compare` as a recording: the reader returns a
//! recording or an error, never panics, and never allocates beyond libFuzzer's malloc limit
//! (`cargo xtask fuzz` sets 64 MiB, the budget of the peak-memory test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = profiler::recording::parse("fuzz", data);
});
