//! Where trace bytes come from. Every source yields chunks of the byte stream as it
//! was received, with the host receive time, so live and replayed input feed the
//! decoder the same way. Live sources are read on their own thread ([`Ingest`]).

mod connection;
mod file;
mod ingest;

use std::fmt;

pub use connection::{ConnectError, Connection, Endpoint, READ_TIMEOUT};
pub use file::RecordingFile;
pub use ingest::{CHANNEL_CAPACITY, Ingest, IngestEvent, Recorder, now_ns, snapshot_request};
use lucid_protocol::recording::RecordingError;

use crate::time::HostNs;

/// A piece of the received byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Host receive time.
    pub rx: HostNs,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A producer of chunks.
pub trait Source {
    /// The next chunk; `Ok(None)` when the source is exhausted.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError>;
}

/// A source failed.
#[derive(Debug)]
pub enum SourceError {
    /// The source could not be opened.
    Open {
        /// What was opened.
        what: String,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A recording is not readable (further).
    Recording(RecordingError),
}

impl SourceError {
    /// Byte offset in the source where the problem starts, if known.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        match self {
            Self::Open { .. } => None,
            Self::Recording(e) => e.offset(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { what, error } => write!(f, "cannot open {what}: {error}"),
            Self::Recording(e) => e.fmt(f),
        }
    }
}

// The Display of each variant already includes its cause, so `source` stays `None`
// and a `{:#}` chain does not print the cause twice.
impl std::error::Error for SourceError {}

impl From<RecordingError> for SourceError {
    fn from(e: RecordingError) -> Self {
        Self::Recording(e)
    }
}
