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
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// Recording bytes per checksummed block.
pub(crate) const BLOCK_LEN: u64 = 1 << 20;
/// Smallest and largest block length accepted from an index file.
const BLOCK_LEN_RANGE: std::ops::RangeInclusive<u64> = 4096..=(1 << 30);

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
            crcs.push(crc32fast::hash(&buf[..n]));
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
            if self.crcs.get(block) != Some(&crc32fast::hash(&buf[..n])) {
                return Ok(Some(at));
            }
            at += n as u64;
        }
        Ok(None)
    }
}

/// How far a [`Verifier`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Progress {
    /// The bytes before this offset match.
    Matching(u64),
    /// The block starting here differs (or the file is no longer as long).
    Changed(u64),
    /// The recording could not be read.
    Failed(String),
}

#[derive(Debug)]
struct Shared {
    progress: Mutex<Progress>,
    advanced: Condvar,
    cancelled: AtomicBool,
}

/// Checks a recording's blocks on a thread of its own, from the start, so that
/// opening does not wait for it and a keyframe restore waits only for the blocks
/// before the keyframe that it has not reached yet. Dropping it stops the thread
/// (at its next block).
#[derive(Debug)]
pub(crate) struct Verifier(Arc<Shared>);

impl Verifier {
    /// Starts checking the first `len` bytes of `path` against `sums` (sound sums).
    pub(crate) fn start(path: &Path, sums: BlockSums, len: u64) -> Self {
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress::Matching(0)),
            advanced: Condvar::new(),
            cancelled: AtomicBool::new(false),
        });
        let (theirs, path) = (Arc::clone(&shared), path.to_path_buf());
        let run = move || check(&theirs, &path, &sums, len);
        if let Err(e) = std::thread::Builder::new().name("lucid-index-verify".into()).spawn(run) {
            *lock(&shared) = Progress::Failed(format!("cannot start checking the recording: {e}"));
        }
        Self(shared)
    }

    /// Waits until the bytes before `end` are checked: `Ok` if they match, else what
    /// was found.
    pub(crate) fn wait_for(&self, end: u64) -> Result<(), String> {
        let mut progress = lock(&self.0);
        loop {
            match &*progress {
                // Checking stops at the first changed block: the bytes before it
                // matched.
                Progress::Matching(done) | Progress::Changed(done) if *done >= end => return Ok(()),
                Progress::Matching(_) => {
                    progress = self.0.advanced.wait(progress).unwrap_or_else(PoisonError::into_inner);
                }
                Progress::Changed(at) => return Err(format!("index stale: the recording changed at byte {at}")),
                Progress::Failed(e) => return Err(format!("index not usable: {e}")),
            }
        }
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Progress> {
    shared.progress.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The verifier thread: one block at a time, reporting each.
fn check(shared: &Shared, path: &Path, sums: &BlockSums, len: u64) {
    let report = |p: Progress| {
        *lock(shared) = p;
        shared.advanced.notify_all();
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return report(Progress::Failed(e.to_string())),
    };
    if f.metadata().map_or(true, |m| m.len() != len) {
        return report(Progress::Changed(0));
    }
    let mut at = 0;
    while at < len {
        if shared.cancelled.load(Ordering::Relaxed) {
            return;
        }
        let end = at.saturating_add(sums.block_len).min(len);
        match sums.first_change(&mut f, at, end) {
            Ok(None) => report(Progress::Matching(end)),
            Ok(Some(changed)) => return report(Progress::Changed(changed)),
            Err(e) => return report(Progress::Failed(e.to_string())),
        }
        at = end;
    }
    report(Progress::Matching(u64::MAX));
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
    fn the_verifier_thread_answers_for_the_bytes_before_an_offset() {
        let dir = TempDir::new();
        let len = 4 * BLOCK_LEN;
        let mut bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let path = dir.file("r", &bytes);
        let sums = BlockSums::of(&mut File::open(&path).expect("open"), len).expect("sums");
        let v = Verifier::start(&path, sums.clone(), len);
        assert_eq!(v.wait_for(len), Ok(()));
        bytes[(3 * BLOCK_LEN + 9) as usize] ^= 0x80;
        let path = dir.file("r", &bytes);
        let v = Verifier::start(&path, sums, len);
        assert_eq!(v.wait_for(3 * BLOCK_LEN), Ok(()), "the blocks before the change match");
        let e = v.wait_for(3 * BLOCK_LEN + 1).expect_err("changed");
        assert!(e.contains(&format!("byte {}", 3 * BLOCK_LEN)), "{e}");
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
