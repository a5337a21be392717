//! A `.lucid` recording on disk.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use lucid_protocol::recording::RecordingReader;

use super::{Chunk, Source, SourceError};
use crate::time::HostNs;

/// Reads the chunks of a recording file.
#[derive(Debug)]
pub struct RecordingFile {
    reader: RecordingReader<BufReader<File>>,
    len: u64,
}

impl RecordingFile {
    /// Opens `path` and checks the recording header.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let open_err = |error| SourceError::Open {
            what: path.display().to_string(),
            error,
        };
        let file = File::open(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let reader = RecordingReader::new(BufReader::with_capacity(1 << 16, file))?;
        Ok(Self { reader, len })
    }

    /// File size in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (it cannot be: the header was read).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the next record.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }
}

impl Source for RecordingFile {
    fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        Ok(self.reader.next_chunk()?.map(|r| Chunk {
            rx: HostNs(r.rx_ns),
            data: r.data,
        }))
    }
}
