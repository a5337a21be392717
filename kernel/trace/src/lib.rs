#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

mod loom;
mod producer;
mod ring;

pub use producer::{EncodeFn, Encoder, Producer, sealed_max};
pub use ring::FrameRing;

#[cfg(all(test, loom))]
mod loom_models;

#[cfg(all(test, not(loom)))]
mod tests;
