//! The `.lucid` recording format: the byte stream as the host received it, in
//! checksummed records, written append-only so a crash loses at most the last record.
//! The layout is documented in the crate README.

use std::fmt;
use std::io::{self, Read, Write};

use crate::frame::CRC32;

/// First bytes of every recording.
pub const MAGIC: [u8; 8] = *b"LUCIDREC";
/// Recording format major version; readers refuse another one.
pub const FORMAT_MAJOR: u16 = 1;
/// Recording format minor version; newer minors only add record types.
pub const FORMAT_MINOR: u16 = 0;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 16;
/// Bytes before a record's payload: type, length, receive time.
pub const RECORD_HEADER_LEN: usize = 1 + 4 + 8;
/// Bytes after a record's payload: CRC-32.
pub const RECORD_TRAILER_LEN: usize = 4;
/// Largest payload of one record; longer chunks are split on writing, and a larger
/// length on reading is corruption (so a damaged length never drives an allocation).
pub const MAX_RECORD_PAYLOAD: usize = 1 << 20;

/// Record type of a chunk of the received byte stream.
pub const RECORD_CHUNK: u8 = 1;

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// File offset of the record's first byte.
    pub offset: u64,
    /// Record type ([`RECORD_CHUNK`]; other types are skipped by [`RecordingReader`]).
    pub kind: u8,
    /// Host receive time, nanoseconds since the Unix epoch.
    pub rx_ns: u64,
    /// The bytes as received.
    pub data: Vec<u8>,
}

/// Why a recording cannot be read (further).
#[derive(Debug)]
pub enum RecordingError {
    /// The file does not start with [`MAGIC`].
    NotARecording {
        /// What the first bytes were.
        found: [u8; 8],
        /// How many of them the file had.
        len: usize,
    },
    /// The file was written in an unsupported format major version.
    UnsupportedVersion {
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
    },
    /// The file ends inside the header or a record.
    Truncated {
        /// Offset of the header or record that is cut short.
        offset: u64,
        /// Bytes it needs.
        needed: u64,
        /// Bytes the file still has from `offset`.
        available: u64,
    },
    /// A record is damaged.
    Corrupt {
        /// Offset of the damaged record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// Reading failed.
    Io(io::Error),
}

impl RecordingError {
    /// Offset where the damage starts, if the error is about the content.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        match self {
            Self::NotARecording { .. } | Self::UnsupportedVersion { .. } => Some(0),
            Self::Truncated { offset, .. } | Self::Corrupt { offset, .. } => Some(*offset),
            Self::Io(_) => None,
        }
    }
}

impl fmt::Display for RecordingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARecording { found, len } => write!(
                f,
                "not a Lucid recording: bad magic at byte offset 0 (expected \"LUCIDREC\", found {:?})",
                String::from_utf8_lossy(&found[..(*len).min(8)])
            ),
            Self::UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported recording format version {major}.{minor} at byte offset 8 \
                 (this build reads major version {FORMAT_MAJOR})"
            ),
            Self::Truncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "recording truncated at byte offset {offset}: the record there needs {needed} bytes, \
                 the file has {available}"
            ),
            Self::Corrupt { offset, reason } => {
                write!(f, "recording corrupt at byte offset {offset}: {reason}")
            }
            Self::Io(e) => write!(f, "cannot read recording: {e}"),
        }
    }
}

impl std::error::Error for RecordingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RecordingError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Writes a recording. Each record goes out in one `write_all`; the caller decides
/// when to flush (a `BufWriter` around a file is the usual `W`).
#[derive(Debug)]
pub struct RecordingWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
}

impl<W: Write> RecordingWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
        h[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self {
            out,
            scratch: Vec::new(),
        })
    }

    /// Records bytes received at `rx_ns` (nanoseconds since the Unix epoch).
    pub fn write_chunk(&mut self, rx_ns: u64, data: &[u8]) -> io::Result<()> {
        for part in data.chunks(MAX_RECORD_PAYLOAD) {
            self.write_record(RECORD_CHUNK, rx_ns, part)?;
        }
        Ok(())
    }

    /// Writes a record of any type (`data.len()` at most [`MAX_RECORD_PAYLOAD`]).
    pub fn write_record(&mut self, kind: u8, rx_ns: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&l| l as usize <= MAX_RECORD_PAYLOAD)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        let s = &mut self.scratch;
        s.clear();
        s.push(kind);
        s.extend_from_slice(&len.to_le_bytes());
        s.extend_from_slice(&rx_ns.to_le_bytes());
        s.extend_from_slice(data);
        let crc = CRC32.checksum(s);
        s.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(s)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a recording record by record.
#[derive(Debug)]
pub struct RecordingReader<R: Read> {
    input: R,
    header: Header,
    offset: u64,
}

/// Reads as much of `buf` as the input has; returns how much that was.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> RecordingReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, RecordingError> {
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(&mut input, &mut h)?;
        let mut found = [0u8; 8];
        found.copy_from_slice(&h[..8]);
        if h[..n.min(8)] != MAGIC[..n.min(8)] || n == 0 {
            return Err(RecordingError::NotARecording { found, len: n });
        }
        if n < HEADER_LEN {
            return Err(RecordingError::Truncated {
                offset: 0,
                needed: HEADER_LEN as u64,
                available: n as u64,
            });
        }
        let major = u16::from_le_bytes([h[8], h[9]]);
        let minor = u16::from_le_bytes([h[10], h[11]]);
        if major != FORMAT_MAJOR {
            return Err(RecordingError::UnsupportedVersion { major, minor });
        }
        Ok(Self {
            input,
            header: Header { major, minor },
            offset: HEADER_LEN as u64,
        })
    }

    /// A reader continuing at `offset`, a record boundary of a recording with
    /// `header` (an offset a reader reported earlier); `input` is positioned there.
    /// A wrong offset is not undefined behaviour, only a `Corrupt` error or garbage
    /// records (each checksummed) further on.
    pub fn resume(input: R, header: Header, offset: u64) -> Self {
        Self { input, header, offset }
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next chunk record; `Ok(None)` at a clean end of file. Records of unknown
    /// types (a newer minor version) are skipped.
    pub fn next_chunk(&mut self) -> Result<Option<Record>, RecordingError> {
        loop {
            match self.next_record()? {
                Some(r) if r.kind == RECORD_CHUNK => return Ok(Some(r)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// The next record of any type; `Ok(None)` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordingError> {
        let offset = self.offset;
        let mut h = [0u8; RECORD_HEADER_LEN];
        let n = read_full(&mut self.input, &mut h)?;
        if n == 0 {
            return Ok(None);
        }
        if n < RECORD_HEADER_LEN {
            return Err(RecordingError::Truncated {
                offset,
                needed: RECORD_HEADER_LEN as u64,
                available: n as u64,
            });
        }
        let kind = h[0];
        if kind == 0 {
            return Err(RecordingError::Corrupt {
                offset,
                reason: "record type 0 (zero-filled or damaged data)",
            });
        }
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
        if len > MAX_RECORD_PAYLOAD {
            return Err(RecordingError::Corrupt {
                offset,
                reason: "record length exceeds the format's limit",
            });
        }
        let mut rest = vec![0u8; len + RECORD_TRAILER_LEN];
        let m = read_full(&mut self.input, &mut rest)?;
        let total = (RECORD_HEADER_LEN + len + RECORD_TRAILER_LEN) as u64;
        if m < rest.len() {
            return Err(RecordingError::Truncated {
                offset,
                needed: total,
                available: (n + m) as u64,
            });
        }
        let mut digest = CRC32.digest();
        digest.update(&h);
        digest.update(&rest[..len]);
        let crc = u32::from_le_bytes([rest[len], rest[len + 1], rest[len + 2], rest[len + 3]]);
        if digest.finalize() != crc {
            return Err(RecordingError::Corrupt {
                offset,
                reason: "record checksum mismatch",
            });
        }
        rest.truncate(len);
        self.offset += total;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&h[5..13]);
        Ok(Some(Record {
            offset,
            kind,
            rx_ns: u64::from_le_bytes(ts),
            data: rest,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = RecordingWriter::new(Vec::new()).unwrap();
        w.write_chunk(1, b"abc").unwrap();
        w.write_record(9, 2, b"future record type").unwrap();
        w.write_chunk(3, &[0, 1, 2, 0]).unwrap();
        w.into_inner().unwrap()
    }

    fn read_all(bytes: &[u8]) -> (Vec<Record>, Option<RecordingError>) {
        let mut out = Vec::new();
        let mut r = match RecordingReader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (out, Some(e)),
        };
        loop {
            match r.next_chunk() {
                Ok(Some(rec)) => out.push(rec),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn round_trip_skips_unknown_record_types() {
        let (recs, err) = read_all(&sample());
        assert!(err.is_none());
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].rx_ns, recs[0].data.as_slice()), (1, &b"abc"[..]));
        assert_eq!((recs[1].rx_ns, recs[1].data.as_slice()), (3, &[0, 1, 2, 0][..]));
    }

    #[test]
    fn every_truncation_reads_a_prefix_and_names_the_offset() {
        let full = sample();
        let (all, _) = read_all(&full);
        // A cut at a record boundary is a shorter, valid recording (the format is
        // append-only, without a footer, so that a crash leaves a readable file).
        let mut boundaries = vec![HEADER_LEN];
        let mut r = RecordingReader::new(full.as_slice()).unwrap();
        while r.next_record().unwrap().is_some() {
            boundaries.push(r.offset() as usize);
        }
        for cut in 0..full.len() {
            let (recs, err) = read_all(&full[..cut]);
            assert!(all.starts_with(&recs), "cut {cut}");
            if boundaries.contains(&cut) {
                assert!(err.is_none(), "cut {cut}: {err:?}");
                continue;
            }
            let err = err.unwrap_or_else(|| panic!("cut {cut} must be reported"));
            let off = err.offset().unwrap();
            assert!(off <= cut as u64, "cut {cut}: offset {off}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("offset {off}")), "{msg}");
        }
    }

    #[test]
    fn every_single_byte_corruption_is_detected_or_harmless() {
        let full = sample();
        let (all, _) = read_all(&full);
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x5a;
            let (recs, err) = read_all(&bad);
            // Either an error, or (only in the header's reserved bytes) the same data.
            if err.is_none() {
                assert_eq!(recs, all, "flip at {i}");
            }
        }
    }

    #[test]
    fn wrong_magic_and_version() {
        let e = RecordingReader::new(&b"hello world, this is text"[..]).unwrap_err();
        assert!(matches!(e, RecordingError::NotARecording { .. }));
        assert!(e.to_string().contains("not a Lucid recording"));
        let mut v = sample();
        v[8] = 2;
        let e = RecordingReader::new(v.as_slice()).unwrap_err();
        assert!(matches!(e, RecordingError::UnsupportedVersion { major: 2, .. }));
    }

    #[test]
    fn huge_length_is_corruption_not_allocation() {
        let mut v = sample();
        v[HEADER_LEN + 1..HEADER_LEN + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_, err) = read_all(&v);
        assert!(matches!(err, Some(RecordingError::Corrupt { offset: 16, .. })));
    }
}
