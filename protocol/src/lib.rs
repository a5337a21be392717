#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

/// Defines `u64` newtypes that postcard, JSON, `Display` and `Debug` all show as the
/// bare number, so the wire and every rendering match a plain integer while the type
/// keeps one kind of number from standing in for another (the protocol's ids; the
/// console's clocks).
#[macro_export]
macro_rules! u64_newtype {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The number.
            #[inline]
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl ::core::convert::From<u64> for $name {
            #[inline]
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl ::core::convert::From<$name> for u64 {
            #[inline]
            fn from(n: $name) -> u64 {
                n.0
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.0, f)
            }
        }
    )*};
}

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
