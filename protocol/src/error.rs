//! Error types. Hand-written so the crate stays `no_std` without `alloc`.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Encoding failed; the frame being built is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The frame buffer cannot take this event; finish the frame (or count the loss).
    BufferFull,
    /// The output slice given to `finish` is shorter than `max_finished_len()`.
    OutputTooSmall,
    /// A value cannot be represented on the wire (e.g. a list longer than `u32::MAX`).
    Unrepresentable,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BufferFull => "frame buffer full",
            Self::OutputTooSmall => "output buffer too small for the finished frame",
            Self::Unrepresentable => "value cannot be represented on the wire",
        })
    }
}

impl core::error::Error for EncodeError {}

/// A record inside a frame (or a primitive inside a record) is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// A varint is longer than 10 bytes or exceeds 64 bits.
    VarintOverflow,
    /// A value does not fit its field (e.g. a CPU number above `u32::MAX`).
    OutOfRange,
    /// A string is not UTF-8.
    InvalidUtf8,
    /// An enum discriminant the decoder does not know in a known message.
    InvalidDiscriminant,
    /// A compact record carries fewer fields than its kind needs.
    MissingFields,
    /// Record shape 0 is reserved and never written.
    ReservedShape,
    /// The postcard body of an extended record did not parse.
    Body,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "input ends inside a value",
            Self::VarintOverflow => "varint overflows 64 bits",
            Self::OutOfRange => "value out of range for its field",
            Self::InvalidUtf8 => "string is not valid UTF-8",
            Self::InvalidDiscriminant => "unknown enum discriminant",
            Self::MissingFields => "record has fewer fields than its kind needs",
            Self::ReservedShape => "record uses the reserved shape 0",
            Self::Body => "extended record body is malformed",
        })
    }
}

impl core::error::Error for DecodeError {}

/// A whole frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameError {
    /// The COBS encoding is invalid (a stray 0x00 or a code running past the end).
    Cobs,
    /// Fewer bytes than the smallest possible frame.
    TooShort {
        /// Decoded length.
        len: usize,
    },
    /// The frame exceeds [`crate::MAX_FRAME_LEN`]; its bytes were discarded.
    TooLarge {
        /// Bytes seen before the decoder gave up on the frame.
        len: usize,
    },
    /// The CRC-32 does not match the content.
    Crc {
        /// CRC carried in the frame.
        expected: u32,
        /// CRC computed over the content.
        actual: u32,
    },
    /// The frame was written by an incompatible major protocol version.
    IncompatibleVersion {
        /// Major version in the frame.
        found: u8,
        /// Major version this decoder speaks.
        supported: u8,
    },
    /// The frame header is malformed.
    Header(DecodeError),
    /// A record inside the frame is malformed; the records before it were delivered.
    Record(DecodeError),
    /// The input ended in the middle of a frame.
    Incomplete {
        /// Bytes of the unfinished frame.
        len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cobs => f.write_str("invalid COBS encoding"),
            Self::TooShort { len } => write!(f, "frame too short ({len} bytes)"),
            Self::TooLarge { len } => write!(
                f,
                "frame larger than {} bytes ({len} seen), discarded",
                crate::MAX_FRAME_LEN
            ),
            Self::Crc { expected, actual } => write!(
                f,
                "CRC mismatch (frame says {expected:#010x}, content has {actual:#010x})"
            ),
            Self::IncompatibleVersion { found, supported } => write!(
                f,
                "incompatible protocol version: the stream speaks major version {found}, \
                 this decoder speaks major version {supported}"
            ),
            Self::Header(e) => write!(f, "malformed frame header: {e}"),
            Self::Record(e) => write!(f, "malformed record: {e}"),
            Self::Incomplete { len } => {
                write!(f, "input ends inside a frame ({len} bytes without a delimiter)")
            }
        }
    }
}

impl core::error::Error for FrameError {}
