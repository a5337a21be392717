//! Prometheus metrics from the state model: the text exposition of a [`State`]
//! (`encode`, `text`) and a small HTTP server for `/metrics` (`server`).
//!
//! Any holder of a [`State`] can export it: start a [`Server`] and call
//! [`Server::publish`] (or [`Server::publish_if_due`] from a loop) whenever the state
//! changed.
//!
//! [`State`]: crate::state::State

mod encode;
mod server;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;

pub use encode::{DEFAULT_INSTANCE, instance_name, render};
pub use server::{MAX_CLIENTS, MAX_REQUEST_BYTES, PUBLISH_EVERY, REQUEST_DEADLINE, Server};
pub use text::CONTENT_TYPE;

/// Why the metrics endpoint could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsError {
    /// The address is not a `host:port` that resolves.
    Address {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Listening on the address failed (in use, not local, no permission).
    Bind {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address { addr, reason } => {
                write!(f, "metrics address `{addr}` is not a host:port ({reason})")
            }
            Self::Bind { addr, reason } => write!(f, "cannot serve metrics on `{addr}`: {reason}"),
        }
    }
}

impl std::error::Error for MetricsError {}
