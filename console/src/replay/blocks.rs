//! What an index knows of the recording bytes it was built from: the file's identity
//! (length, device, inode, modification and change times) and a CRC-32 of every
//! block, so bytes that changed after the build are found before a keyframe that
//! depends on them is used.
//!
//! A keyframe at record offset `x` is the state after the bytes before `x`, and the
//! bytes after it are read from the recording itself; so a keyframe may be restored
//! once the blocks before `x` match, whatever came after.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

/// Recording bytes per checksummed block.
pub(crate) const BLOCK_LEN: u64 = 1 << 20;
/// Smallest and largest block length accepted from an index file.
const BLOCK_LEN_RANGE: std::ops::RangeInclusive<u64> = 4096..=(1 << 30);

/// Slice-by-16 tables: checking a whole recording runs at memory speed.
static CRC32: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// What the file system says about a file: equal identities mean the same bytes
/// (a write changes the change time, which no user can set back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    len: u64,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The identity of the file `meta` describes; `None` where the platform has no
/// change time (every open then checks every block).
#[cfg(unix)]
pub(crate) fn identity(meta: &Metadata) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity {
        len: meta.len(),
        dev: meta.dev(),
        ino: meta.ino(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    })
}

/// The identity of the file `meta` describes; `None` where the platform has no
/// change time (every open then checks every block).
#[cfg(not(unix))]
pub(crate) fn identity(_meta: &Metadata) -> Option<Identity> {
    None
}

/// A CRC-32 of every `block_len` bytes of a recording (the last block may be short).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockSums {
    block_len: u64,
    crcs: Vec<u32>,
}

impl BlockSums {
    /// The sums of the first `len` bytes of `file`.
    pub(crate) fn of(file: &mut File, len: u64) -> io::Result<Self> {
        let mut crcs = Vec::with_capacity(usize::try_from(len.div_ceil(BLOCK_LEN)).unwrap_or(0));
        file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; BLOCK_LEN as usize];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(BLOCK_LEN) as usize;
            file.read_exact(&mut buf[..n])?;
            crcs.push(CRC32.checksum(&buf[..n]));
            at += n as u64;
        }
        Ok(Self {
            block_len: BLOCK_LEN,
            crcs,
        })
    }

    /// Whether these sums, read from an index file, can describe `len` bytes.
    pub(crate) fn is_sound(&self, len: u64) -> bool {
        BLOCK_LEN_RANGE.contains(&self.block_len) && self.crcs.len() as u64 == len.div_ceil(self.block_len)
    }

    /// The end of the block holding byte `offset - 1`: checking up to it covers every
    /// byte before `offset`.
    pub(crate) fn block_end(&self, offset: u64, len: u64) -> u64 {
        offset.div_ceil(self.block_len).saturating_mul(self.block_len).min(len)
    }

    /// Checks the blocks from `from` (a block start) up to `to` (a block end or the
    /// length) against `file`; returns the start of the first block that differs.
    /// Only meaningful on [`Self::is_sound`] sums.
    pub(crate) fn first_change(&self, file: &mut File, from: u64, to: u64) -> io::Result<Option<u64>> {
        file.seek(SeekFrom::Start(from))?;
        let mut buf = vec![0u8; usize::try_from(self.block_len.min(to - from)).unwrap_or(0)];
        let mut at = from;
        while at < to {
            let n = (to - at).min(self.block_len) as usize;
            let block = usize::try_from(at / self.block_len).unwrap_or(usize::MAX);
            match file.read_exact(&mut buf[..n]) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(at)),
                Err(e) => return Err(e),
            }
            if self.crcs.get(block) != Some(&CRC32.checksum(&buf[..n])) {
                return Ok(Some(at));
            }
            at += n as u64;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::tests::TempDir;

    #[test]
    fn a_changed_byte_is_found_in_its_block_and_nowhere_else() {
        let dir = TempDir::new();
        let len = 3 * BLOCK_LEN + 5;
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let path = dir.file("r", &bytes);
        let mut f = File::open(&path).expect("open");
        let sums = BlockSums::of(&mut f, len).expect("sums");
        assert!(sums.is_sound(len));
        assert!(!sums.is_sound(len + BLOCK_LEN));
        assert_eq!(sums.first_change(&mut f, 0, len).expect("read"), None);

        let mut changed = bytes.clone();
        changed[(2 * BLOCK_LEN + 17) as usize] ^= 1;
        let path = dir.file("r", &changed);
        let mut f = File::open(&path).expect("open");
        assert_eq!(sums.first_change(&mut f, 0, 2 * BLOCK_LEN).expect("read"), None);
        assert_eq!(sums.first_change(&mut f, 0, len).expect("read"), Some(2 * BLOCK_LEN));
        assert_eq!(sums.block_end(2 * BLOCK_LEN + 1, len), 3 * BLOCK_LEN);
        assert_eq!(sums.block_end(len, len), len);
    }

    #[test]
    fn untrusted_block_lengths_are_refused() {
        let tiny = BlockSums {
            block_len: 1,
            crcs: vec![0; 10],
        };
        assert!(!tiny.is_sound(10));
        let huge = BlockSums {
            block_len: u64::MAX,
            crcs: vec![0],
        };
        assert!(!huge.is_sound(10));
    }
}
