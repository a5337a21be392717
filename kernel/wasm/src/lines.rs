//! A module's source lines, for naming `file:line` in trap reasons: the host
//! precompiler reads the module's DWARF (`.debug_line`) and packs what the kernel
//! needs, the kernel looks a trapping frame's module offset up in it.
//!
//! Layout (little endian): `file_count: u32`, then each file as `len: u16` and
//! that many UTF-8 bytes; `row_count: u32`, then each row as `offset: u32` (into
//! the module's bytes), `file: u32` (index), `line: u32`, rows sorted by offset. A
//! row covers the code from its offset to the next row's; line 0 marks code
//! without a line (the end of a sequence, or code the table leaves out).

use core::{fmt, str};

/// Why a line table is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinesError {
    /// A count, name or row reaches past the end.
    Truncated,
    /// A file name is not UTF-8.
    BadFileName,
    /// Rows out of order, or naming a file that does not exist.
    BadRow,
}

impl fmt::Display for LinesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "line table is truncated"),
            Self::BadFileName => write!(f, "line table names a file that is not UTF-8"),
            Self::BadRow => write!(f, "line table rows are out of order or name no file"),
        }
    }
}

impl core::error::Error for LinesError {}

const ROW_LEN: usize = 12;

/// A parsed line table borrowing its bytes (empty: the module had no DWARF).
#[derive(Debug, Clone, Copy, Default)]
pub struct LineTable<'a> {
    /// The bytes of the file list.
    files: &'a [u8],
    file_count: u32,
    rows: &'a [u8],
}

/// Where a module offset's code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLine<'a> {
    /// The source file (as the precompiler shortened it).
    pub file: &'a str,
    /// Its line (1-based).
    pub line: u32,
}

impl fmt::Display for SourceLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> LineTable<'a> {
    /// Checks a table (empty bytes: no table).
    ///
    /// # Errors
    /// See [`LinesError`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LinesError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let file_count = u32_at(bytes, 0).ok_or(LinesError::Truncated)?;
        let mut at = 4;
        for _ in 0..file_count {
            let len = usize::from(u16_at(bytes, at).ok_or(LinesError::Truncated)?);
            let name = bytes.get(at + 2..at + 2 + len).ok_or(LinesError::Truncated)?;
            str::from_utf8(name).map_err(|_| LinesError::BadFileName)?;
            at += 2 + len;
        }
        let files = &bytes[4..at];
        let row_count = u32_at(bytes, at).ok_or(LinesError::Truncated)? as usize;
        let rows = row_count
            .checked_mul(ROW_LEN)
            .and_then(|n| bytes.get(at + 4..at + 4 + n))
            .ok_or(LinesError::Truncated)?;
        let table = Self {
            files,
            file_count,
            rows,
        };
        let mut last = 0;
        for i in 0..row_count {
            let (offset, file, _) = table.row(i).ok_or(LinesError::Truncated)?;
            if offset < last || file >= file_count {
                return Err(LinesError::BadRow);
            }
            last = offset;
        }
        Ok(table)
    }

    /// Whether it has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn row(&self, i: usize) -> Option<(u32, u32, u32)> {
        let at = i * ROW_LEN;
        Some((
            u32_at(self.rows, at)?,
            u32_at(self.rows, at + 4)?,
            u32_at(self.rows, at + 8)?,
        ))
    }

    fn file(&self, index: u32) -> Option<&'a str> {
        let mut at = 0;
        for i in 0..self.file_count {
            let len = usize::from(u16_at(self.files, at)?);
            if i == index {
                return str::from_utf8(self.files.get(at + 2..at + 2 + len)?).ok();
            }
            at += 2 + len;
        }
        None
    }

    /// The source line of the code at `offset` in the module's bytes, if the table
    /// has one.
    #[must_use]
    pub fn lookup(&self, offset: u32) -> Option<SourceLine<'a>> {
        let count = self.rows.len() / ROW_LEN;
        // The last row at or before `offset`.
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.row(mid)?.0 <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (_, file, line) = self.row(lo.checked_sub(1)?)?;
        (line != 0).then_some(())?;
        Some(SourceLine {
            file: self.file(file)?,
            line,
        })
    }
}

/// Writes a table of `files` and `rows` (`(offset, file index, line)`, sorted by
/// offset; line 0 for code without a line).
///
/// # Errors
/// If a file name is longer than 65,535 bytes or a count does not fit in a `u32`.
#[cfg(any(test, feature = "alloc"))]
pub fn write(files: &[&str], rows: &[(u32, u32, u32)]) -> Result<alloc::vec::Vec<u8>, &'static str> {
    let mut out = alloc::vec::Vec::new();
    out.extend_from_slice(&u32::try_from(files.len()).map_err(|_| "too many files")?.to_le_bytes());
    for f in files {
        out.extend_from_slice(&u16::try_from(f.len()).map_err(|_| "file name too long")?.to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out.extend_from_slice(&u32::try_from(rows.len()).map_err(|_| "too many rows")?.to_le_bytes());
    for &(offset, file, line) in rows {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&file.to_le_bytes());
        out.extend_from_slice(&line.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_finds_the_row_covering_an_offset_and_none_past_a_sequence_end() {
        let bytes = write(
            &["src/main.rs", "lib.rs"],
            &[(100, 0, 3), (110, 1, 40), (120, 0, 4), (130, 0, 0)],
        )
        .unwrap();
        let t = LineTable::parse(&bytes).unwrap();
        let at = |o| t.lookup(o).map(|l| alloc::format!("{l}"));
        assert_eq!(at(99), None, "before the first row");
        assert_eq!(at(100).as_deref(), Some("src/main.rs:3"));
        assert_eq!(at(109).as_deref(), Some("src/main.rs:3"));
        assert_eq!(at(115).as_deref(), Some("lib.rs:40"));
        assert_eq!(at(125).as_deref(), Some("src/main.rs:4"));
        assert_eq!(at(130), None, "a sequence's end");
        assert_eq!(at(5000), None);
        assert!(LineTable::parse(&[]).unwrap().lookup(100).is_none());
    }

    #[test]
    fn a_damaged_table_is_refused_and_never_read_past_its_end() {
        let bytes = write(&["a.rs"], &[(10, 0, 1), (20, 0, 2)]).unwrap();
        for cut in 1..bytes.len() {
            assert!(LineTable::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let unordered = write(&["a.rs"], &[(20, 0, 1), (10, 0, 2)]).unwrap();
        assert_eq!(LineTable::parse(&unordered).unwrap_err(), LinesError::BadRow);
        let no_file = write(&["a.rs"], &[(10, 1, 1)]).unwrap();
        assert_eq!(LineTable::parse(&no_file).unwrap_err(), LinesError::BadRow);
        let mut bad_name = write(&["a.rs"], &[]).unwrap();
        bad_name[6] = 0xff;
        assert_eq!(LineTable::parse(&bad_name).unwrap_err(), LinesError::BadFileName);
    }
}
