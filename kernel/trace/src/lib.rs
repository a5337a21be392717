#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

mod lane;
mod loom;
mod ring;

pub use lane::{EncodeFn, Encoder, Lane, sealed_max};
pub use ring::FrameRing;

#[cfg(all(test, loom))]
mod loom_models;

#[cfg(all(test, not(loom)))]
mod tests;
