//! Aggregation: plain data, no kernel and no I/O. Completed-call events are folded into
//! per-syscall (and optionally per-process) latency histograms; a [`Snapshot`] is the
//! immutable view every presenter reads.
#![forbid(unsafe_code)]

mod fold;
mod hist;
mod series;
mod snapshot;

pub use fold::{Aggregator, DEFAULT_MAX_KEYS, GroupBy, decode_comm};
pub use hist::{HistError, LatencyHist, MAX_TRACKED_NS};
pub use series::Series;
pub use snapshot::{LossCounters, Row, Snapshot, Stats};
