#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
//!
//! The host side of Lucid's trace stream: byte sources, the state model the decoded
//! stream builds, and the reports made from it. The `lucid` binary wires them to a
//! command line; a TUI adds views on the same state model.
//!
//! ```text
//! source (file | socket | tcp | serial | stdin) ─▶ Pipeline (Decoder ─▶ Merge) ─▶ State ─▶ stats | views (ui)
//! ```

pub mod export;
pub mod fmt;
pub mod live;
pub mod merge;
pub mod metrics;
pub mod pipeline;
pub mod profile;
pub mod replay;
pub mod samples;
pub mod source;
pub mod state;
pub mod stats;
pub mod symbols;
pub mod time;
pub mod ui;
pub mod window;
