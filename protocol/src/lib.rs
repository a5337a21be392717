#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

mod cobs;
mod error;
mod frame;
mod message;
mod wire;

#[cfg(any(test, feature = "alloc"))]
mod decoder;
#[cfg(any(test, feature = "std"))]
pub mod recording;
#[cfg(any(test, feature = "std"))]
pub mod testdata;

pub use cobs::max_encoded_len as cobs_max_encoded_len;
pub use error::{DecodeError, EncodeError, FrameError};
pub use frame::{
    Event, Events, Frame, FrameEncoder, MAJOR, MAX_FRAME_LEN, MAX_WIRE_FRAME_LEN, MINOR, StreamId, decode_frame,
    min_buffer_len,
};
pub use message::*;
pub use wire::{unzigzag, varint_len, zigzag};

#[cfg(any(test, feature = "alloc"))]
pub use decoder::{Decoder, DecoderStats, Item};
