//! Presentation: a [`Snapshot`](crate::aggregate::Snapshot) turned into bytes, one module
//! per format. Nothing here touches the kernel.
#![forbid(unsafe_code)]

pub mod compare;
pub mod doctor;
pub mod flame;
pub mod hdrlog;
pub mod heatmap;
pub mod html;
pub mod jsonl;
pub mod plot;
pub mod prometheus;
pub mod slow;
pub mod stacks;
pub mod svg;
pub mod text;
pub mod top;

/// Output formats of `record`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table, sorted by total time.
    Text,
    /// JSON Lines (schema in the README).
    Json,
    /// HdrHistogram interval log (readable by HdrHistogram's log tools and ports).
    Hdrlog,
    /// Folded stacks (`comm;outer;...;inner;syscall VALUE`, needs --stacks), for inferno
    /// and flamegraph.pl.
    Folded,
}
