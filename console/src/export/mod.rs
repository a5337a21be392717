//! `lucid export`: a recording (or a window of it) in formats other tools read.
//!
//! - [`perfetto`]: Chrome trace-event JSON for the Perfetto UI and `chrome://tracing`.
//! - [`folded`]: folded stacks for inferno and flamegraph.pl.

pub mod folded;
pub mod perfetto;
pub mod svg;

#[cfg(test)]
mod tests;

pub use folded::{Folded, write_folded_samples};
pub use perfetto::PerfettoWriter;
pub use svg::write_flamegraph;
