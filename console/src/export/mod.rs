//! `lucid export`: a recording (or a window of it) in formats other tools read.
//!
//! - [`perfetto`]: Chrome trace-event JSON for the Perfetto UI and `chrome://tracing`.
//! - [`perfetto_proto`]: Perfetto's native protobuf trace, about a tenth of the JSON's
//!   size.
//! - [`folded`]: folded stacks for inferno and flamegraph.pl.
//! - [`waiting`]: the live-task and waiting-task counts both Perfetto formats draw.

pub mod folded;
pub mod perfetto;
pub mod perfetto_proto;
pub mod svg;
pub mod waiting;

#[cfg(test)]
mod tests;

pub use folded::{Folded, write_folded_samples};
pub use perfetto::PerfettoWriter;
pub use perfetto_proto::PerfettoProtoWriter;
pub use svg::write_flamegraph;
