//! Aggregation: plain data, no kernel and no I/O. Completed-call events are folded into
//! per-syscall (and optionally per-process) latency histograms; a [`Snapshot`] is the
//! immutable view every presenter reads.
#![forbid(unsafe_code)]

mod event;
mod fold;
mod hist;
mod key;
mod series;
mod snapshot;
pub mod stacks;

pub use event::{Batch, Event, Slot, StackRef, comm_name, each_caller, slot_width};
#[cfg(test)]
pub use event::{anatomy_slot, call_slot, stack_slot};
pub use fold::{Aggregator, DEFAULT_MAX_KEYS, GroupBy, OTHER_KEY};
pub use hist::{HistError, LatencyHist, MAX_TRACKED_NS};
pub use key::{KeyId, RowKey};
pub use series::{BucketSplit, OffCpu, Series, log2_bucket};
pub use snapshot::{ContainerInfo, LossCounters, Row, Snapshot, SortKey, Split, Stats};
