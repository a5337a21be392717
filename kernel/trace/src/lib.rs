#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

mod loom;
mod producer;
mod record;
mod ring;

pub use producer::{Encoder, Event, Producer, sealed_max};
pub use ring::{MAX_ENTRY_SLOTS, RecordRing, Slot};

#[cfg(all(test, loom))]
mod loom_models;

#[cfg(all(test, not(loom)))]
mod tests;
