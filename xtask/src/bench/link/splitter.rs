//! Splits the link bench's stream into its bulk phase and the trace after it.

use anyhow::{Result, bail};

/// Where the link bench's stream is: the header, the bulk chunks, or the trace after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkPhase {
    Header,
    /// Inside a bulk chunk of `size` bytes with `left` still to come.
    Chunk {
        size: u64,
        left: u64,
    },
    Trace,
}

/// Splits the stream of `workload=link-bench` (`kernel/src/link_bench.rs`): `LUCIDLNK`
/// and the chunk size (u64 LE), then chunks of that size starting with `LNK-MORE`, the
/// last with `LNK-LAST`, then the ordinary trace stream.
#[derive(Debug)]
pub struct LinkSplitter {
    phase: LinkPhase,
    /// The header or the current chunk's marker, as far as it has arrived.
    pending: Vec<u8>,
    /// Bytes of the header and bulk chunks so far.
    pub bulk_bytes: u64,
}

impl LinkSplitter {
    const MAGIC: &[u8; 8] = b"LUCIDLNK";
    const MORE: &[u8; 8] = b"LNK-MORE";
    const LAST: &[u8; 8] = b"LNK-LAST";

    pub fn new() -> Self {
        Self {
            phase: LinkPhase::Header,
            pending: Vec::new(),
            bulk_bytes: 0,
        }
    }

    pub fn in_trace(&self) -> bool {
        self.phase == LinkPhase::Trace
    }

    /// Consumes the bulk part of `data`; returns what belongs to the trace stream.
    pub fn feed<'a>(&mut self, mut data: &'a [u8]) -> Result<&'a [u8]> {
        while !data.is_empty() {
            match self.phase {
                LinkPhase::Header => {
                    let take = (16 - self.pending.len()).min(data.len());
                    self.pending.extend_from_slice(&data[..take]);
                    self.bulk_bytes += take as u64;
                    data = &data[take..];
                    if self.pending.len() == 16 {
                        if &self.pending[..8] != Self::MAGIC {
                            bail!("the link bench stream does not start with LUCIDLNK");
                        }
                        let size = u64::from_le_bytes(self.pending[8..].try_into().expect("8 bytes"));
                        if size < 8 {
                            bail!("link bench chunk size {size} is smaller than its marker");
                        }
                        self.pending.clear();
                        self.phase = LinkPhase::Chunk { size, left: size };
                    }
                }
                LinkPhase::Chunk { size, left } => {
                    let take = left.min(data.len() as u64) as usize;
                    let at = (size - left) as usize;
                    if at < 8 {
                        let marker = (8 - at).min(take);
                        self.pending.extend_from_slice(&data[..marker]);
                    }
                    self.bulk_bytes += take as u64;
                    data = &data[take..];
                    let left = left - take as u64;
                    self.phase = LinkPhase::Chunk { size, left };
                    if left == 0 {
                        self.phase = match &self.pending[..] {
                            m if m == Self::MORE => LinkPhase::Chunk { size, left: size },
                            m if m == Self::LAST => LinkPhase::Trace,
                            m => bail!("bad link bench chunk marker {m:?}"),
                        };
                        self.pending.clear();
                    }
                }
                LinkPhase::Trace => return Ok(data),
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_stream(chunk: usize, chunks: usize, trace: &[u8]) -> Vec<u8> {
        let mut s = b"LUCIDLNK".to_vec();
        s.extend_from_slice(&(chunk as u64).to_le_bytes());
        for i in 0..chunks {
            let mut c = vec![0xa5u8; chunk];
            c[..8].copy_from_slice(if i + 1 == chunks { b"LNK-LAST" } else { b"LNK-MORE" });
            s.extend_from_slice(&c);
        }
        s.extend_from_slice(trace);
        s
    }

    #[test]
    fn the_link_splitter_finds_the_trace_after_the_bulk_chunks_in_any_pieces() {
        let trace = b"\x01trace frames\x00";
        let stream = link_stream(20, 3, trace);
        for piece in [1, 3, 7, 20, 1000] {
            let mut split = LinkSplitter::new();
            let mut out = Vec::new();
            for p in stream.chunks(piece) {
                out.extend_from_slice(split.feed(p).unwrap());
            }
            assert!(split.in_trace(), "piece {piece}");
            assert_eq!(split.bulk_bytes, 16 + 60, "piece {piece}");
            assert_eq!(out, trace, "piece {piece}");
        }
        let mut split = LinkSplitter::new();
        assert!(split.feed(&link_stream(20, 2, b"")[..40]).unwrap().is_empty());
        assert!(!split.in_trace(), "still inside the second chunk");
    }

    #[test]
    fn the_link_splitter_rejects_a_foreign_stream() {
        assert!(LinkSplitter::new().feed(b"not a link bench").is_err());
        let mut bad = link_stream(20, 2, b"");
        bad[16 + 20] = b'X';
        assert!(LinkSplitter::new().feed(&bad).is_err());
        let mut tiny = b"LUCIDLNK".to_vec();
        tiny.extend_from_slice(&4u64.to_le_bytes());
        assert!(LinkSplitter::new().feed(&tiny).is_err());
    }
}
