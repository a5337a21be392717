//! The little of ELF64 the loader needs: the header and the `PT_LOAD` segments.

/// Segment is executable.
pub const PF_X: u32 = 1;
/// Segment is writable.
pub const PF_W: u32 = 2;
/// Segment is readable.
pub const PF_R: u32 = 4;
const PT_LOAD: u32 = 1;
const EM_X86_64: u16 = 62;

/// Why an image is not a loadable kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Missing `\x7fELF`, or not 64-bit little-endian.
    NotElf64,
    /// Not an x86_64 executable.
    WrongMachine(u16),
    /// A header or segment lies outside the image.
    Truncated,
    /// A segment whose file size exceeds its memory size or that is not page aligned.
    BadSegment,
}

impl core::fmt::Display for ElfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotElf64 => write!(f, "not a 64-bit little-endian ELF"),
            Self::WrongMachine(m) => write!(f, "ELF machine {m} is not x86_64"),
            Self::Truncated => write!(f, "ELF image is truncated"),
            Self::BadSegment => write!(f, "ELF segment is malformed or not page aligned"),
        }
    }
}

impl core::error::Error for ElfError {}

/// A `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address (page aligned).
    pub vaddr: u64,
    /// Bytes in memory (the part past `file_size` is zero).
    pub mem_size: u64,
    /// Offset of the file bytes in the image.
    pub offset: u64,
    /// Bytes present in the image.
    pub file_size: u64,
    /// `PF_R | PF_W | PF_X` bits.
    pub flags: u32,
}

impl Segment {
    /// True when the segment may be written.
    pub fn writable(&self) -> bool {
        self.flags & PF_W != 0
    }
    /// True when the segment may be executed.
    pub fn executable(&self) -> bool {
        self.flags & PF_X != 0
    }
}

/// A validated ELF64 image.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    entry: u64,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
}

fn rd<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], ElfError> {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ElfError::Truncated)
}

impl<'a> Elf<'a> {
    /// Validates the header and every `PT_LOAD` segment.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        if bytes.len() < 64 || bytes[..4] != *b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
            return Err(ElfError::NotElf64);
        }
        let machine = u16::from_le_bytes(rd(bytes, 18)?);
        if machine != EM_X86_64 {
            return Err(ElfError::WrongMachine(machine));
        }
        let elf = Self {
            bytes,
            entry: u64::from_le_bytes(rd(bytes, 24)?),
            phoff: usize::try_from(u64::from_le_bytes(rd(bytes, 32)?)).map_err(|_| ElfError::Truncated)?,
            phentsize: u16::from_le_bytes(rd(bytes, 54)?) as usize,
            phnum: u16::from_le_bytes(rd(bytes, 56)?) as usize,
        };
        if elf.phentsize < 56 {
            return Err(ElfError::Truncated);
        }
        for i in 0..elf.phnum {
            if let Some(seg) = elf.program_header(i)? {
                let end = seg.offset.checked_add(seg.file_size).ok_or(ElfError::Truncated)?;
                if end > bytes.len() as u64 {
                    return Err(ElfError::Truncated);
                }
                if seg.file_size > seg.mem_size
                    || seg.vaddr % 4096 != 0
                    || seg.vaddr.checked_add(seg.mem_size).is_none()
                {
                    return Err(ElfError::BadSegment);
                }
            }
        }
        Ok(elf)
    }

    fn program_header(&self, i: usize) -> Result<Option<Segment>, ElfError> {
        let at = self.phoff.checked_add(i * self.phentsize).ok_or(ElfError::Truncated)?;
        let b = self.bytes;
        if u32::from_le_bytes(rd(b, at)?) != PT_LOAD {
            return Ok(None);
        }
        Ok(Some(Segment {
            flags: u32::from_le_bytes(rd(b, at + 4)?),
            offset: u64::from_le_bytes(rd(b, at + 8)?),
            vaddr: u64::from_le_bytes(rd(b, at + 16)?),
            file_size: u64::from_le_bytes(rd(b, at + 32)?),
            mem_size: u64::from_le_bytes(rd(b, at + 40)?),
        }))
    }

    /// The entry point.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The `PT_LOAD` segments (validated by [`Elf::parse`]).
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.phnum).filter_map(|i| self.program_header(i).ok().flatten())
    }

    /// The bytes of a segment present in the file.
    pub fn file_bytes(&self, seg: &Segment) -> &'a [u8] {
        &self.bytes[seg.offset as usize..(seg.offset + seg.file_size) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF with one RX segment and one RW segment with bss.
    fn image() -> Vec<u8> {
        let mut b = vec![0u8; 0x2000];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&0xffff_ffff_8000_0000u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = |b: &mut Vec<u8>, at: usize, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
            b[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            b[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
            b[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        ph(&mut b, 64, PF_R | PF_X, 0x1000, 0xffff_ffff_8000_0000, 0x100, 0x100);
        ph(&mut b, 120, PF_R | PF_W, 0x1100, 0xffff_ffff_8000_1000, 0x10, 0x3000);
        b
    }

    #[test]
    fn parses_segments_and_permissions() {
        let img = image();
        let elf = Elf::parse(&img).unwrap();
        assert_eq!(elf.entry(), 0xffff_ffff_8000_0000);
        let segs: Vec<_> = elf.segments().collect();
        assert_eq!(segs.len(), 2);
        assert!(segs[0].executable() && !segs[0].writable());
        assert!(segs[1].writable() && !segs[1].executable());
        assert_eq!(elf.file_bytes(&segs[1]).len(), 0x10);
    }

    #[test]
    fn truncated_and_foreign_images_are_rejected() {
        let img = image();
        for n in [0, 10, 63, 100, 0x1050] {
            assert!(Elf::parse(&img[..n]).is_err(), "{n}");
        }
        let mut arm = img.clone();
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(Elf::parse(&arm).unwrap_err(), ElfError::WrongMachine(183));
        let mut bad = img;
        bad[64 + 32..64 + 40].copy_from_slice(&0x200u64.to_le_bytes());
        assert_eq!(Elf::parse(&bad).unwrap_err(), ElfError::BadSegment);
    }
}
