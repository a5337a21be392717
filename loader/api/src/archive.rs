//! The boot archive: the single `-initrd` module QEMU hands a PVH kernel, holding
//! the kernel ELF (entry [`KERNEL_ENTRY`]) and any further named modules.
//!
//! Layout (little endian): a 16-byte header `MAGIC, version: u32, count: u32`, then
//! `count` 64-byte entries `name: [u8; NAME_LEN], offset: u64, size: u64`, then the
//! data, each entry's bytes starting at a 4 KiB-aligned offset.

/// First bytes of every archive.
pub const MAGIC: [u8; 8] = *b"LUCIDBA\0";
/// Format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Bytes reserved for an entry name (NUL padded).
pub const NAME_LEN: usize = 48;
/// The entry that holds the kernel ELF.
pub const KERNEL_ENTRY: &str = "kernel";
/// Alignment of entry data inside the archive.
pub const DATA_ALIGN: usize = 4096;

const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = NAME_LEN + 16;

/// Why an archive could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// The buffer does not start with [`MAGIC`].
    BadMagic,
    /// Written by a format version this crate does not read.
    UnsupportedVersion(u32),
    /// The header or an entry points past the end of the buffer.
    Truncated,
}

impl core::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not a Lucid boot archive (bad magic)"),
            Self::UnsupportedVersion(v) => {
                write!(f, "boot archive version {v} is not supported (expected {VERSION})")
            }
            Self::Truncated => write!(f, "boot archive is truncated"),
        }
    }
}

impl core::error::Error for ArchiveError {}

/// A parsed archive borrowing its buffer.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One named blob in an archive.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// NUL-padded name.
    pub name: [u8; NAME_LEN],
    /// Byte offset of the data from the archive start.
    pub offset: usize,
    /// The data.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// The name up to its first NUL.
    pub fn name(&self) -> &str {
        name_str(&self.name)
    }
}

/// A NUL-padded name as a `&str` (invalid UTF-8 reads as `"?"`).
pub fn name_str(name: &[u8; NAME_LEN]) -> &str {
    let n = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    core::str::from_utf8(&name[..n]).unwrap_or("?")
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl<'a> Archive<'a> {
    /// Checks the header and every entry's bounds.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        if bytes.len() < HEADER_LEN {
            return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(8)]) {
                ArchiveError::Truncated
            } else {
                ArchiveError::BadMagic
            });
        }
        if bytes[..8] != MAGIC {
            return Err(ArchiveError::BadMagic);
        }
        let version = u32_at(bytes, 8).ok_or(ArchiveError::Truncated)?;
        if version != VERSION {
            return Err(ArchiveError::UnsupportedVersion(version));
        }
        let count = u32_at(bytes, 12).ok_or(ArchiveError::Truncated)? as usize;
        let table_end = count
            .checked_mul(ENTRY_LEN)
            .and_then(|t| t.checked_add(HEADER_LEN))
            .ok_or(ArchiveError::Truncated)?;
        if table_end > bytes.len() {
            return Err(ArchiveError::Truncated);
        }
        let archive = Self { bytes, count };
        for i in 0..count {
            archive.entry_at(i)?;
        }
        Ok(archive)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the archive holds no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry_at(&self, i: usize) -> Result<Entry<'a>, ArchiveError> {
        let at = HEADER_LEN + i * ENTRY_LEN;
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(self.bytes.get(at..at + NAME_LEN).ok_or(ArchiveError::Truncated)?);
        let offset = u64_at(self.bytes, at + NAME_LEN).ok_or(ArchiveError::Truncated)?;
        let size = u64_at(self.bytes, at + NAME_LEN + 8).ok_or(ArchiveError::Truncated)?;
        let offset = usize::try_from(offset).map_err(|_| ArchiveError::Truncated)?;
        let size = usize::try_from(size).map_err(|_| ArchiveError::Truncated)?;
        let end = offset.checked_add(size).ok_or(ArchiveError::Truncated)?;
        let data = self.bytes.get(offset..end).ok_or(ArchiveError::Truncated)?;
        Ok(Entry { name, offset, data })
    }

    /// The entries in order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        (0..self.count).filter_map(|i| self.entry_at(i).ok())
    }

    /// The entry called `name`.
    pub fn find(&self, name: &str) -> Option<Entry<'a>> {
        self.entries().find(|e| e.name() == name)
    }
}

/// Builds an archive from `(name, bytes)` pairs.
///
/// # Panics
/// When a name is longer than [`NAME_LEN`] bytes.
#[cfg(any(test, feature = "alloc"))]
pub fn build(entries: &[(&str, &[u8])]) -> alloc::vec::Vec<u8> {
    let align = |n: usize| n.div_ceil(DATA_ALIGN) * DATA_ALIGN;
    let mut out = alloc::vec::Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    let mut offset = align(HEADER_LEN + entries.len() * ENTRY_LEN);
    for (name, data) in entries {
        assert!(name.len() <= NAME_LEN, "boot archive entry name too long: {name}");
        let mut field = [0u8; NAME_LEN];
        field[..name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&field);
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        offset = align(offset + data.len());
    }
    for (_, data) in entries {
        out.resize(align(out.len()), 0);
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_aligned_data() {
        let bytes = build(&[("kernel", b"\x7fELF..."), ("bundle", &[7u8; 5000])]);
        let a = Archive::parse(&bytes).unwrap();
        assert_eq!(a.len(), 2);
        let k = a.find(KERNEL_ENTRY).unwrap();
        assert_eq!(k.data, b"\x7fELF...");
        assert_eq!(k.offset % DATA_ALIGN, 0);
        let b = a.find("bundle").unwrap();
        assert_eq!(b.data.len(), 5000);
        assert_eq!(b.offset % DATA_ALIGN, 0);
        assert!(a.find("missing").is_none());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = build(&[("kernel", &[1u8; 100])]);
        for n in 0..bytes.len() {
            let err = Archive::parse(&bytes[..n]).unwrap_err();
            assert!(
                matches!(err, ArchiveError::Truncated | ArchiveError::BadMagic),
                "{n}: {err}"
            );
        }
    }

    #[test]
    fn bad_magic_and_version_are_named() {
        let mut bytes = build(&[("kernel", &[1u8; 10])]);
        bytes[8] = 9;
        assert_eq!(Archive::parse(&bytes).unwrap_err(), ArchiveError::UnsupportedVersion(9));
        bytes[0] = b'X';
        assert_eq!(Archive::parse(&bytes).unwrap_err(), ArchiveError::BadMagic);
    }

    #[test]
    fn hostile_offsets_are_rejected() {
        let mut bytes = build(&[("kernel", &[1u8; 10])]);
        let at = HEADER_LEN + NAME_LEN;
        bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Archive::parse(&bytes).unwrap_err(), ArchiveError::Truncated);
    }
}
