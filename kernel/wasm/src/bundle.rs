//! The boot bundle: precompiled guest modules with their manifest, handed to the
//! kernel by the loader as the boot archive's `wasm` entry.
//!
//! Layout (little endian): a 40-byte header `MAGIC, version: u32, count: u32,
//! fingerprint: u64, wasmtime: [u8; 16]`, then `count` 152-byte entries (see
//! [`GuestEntry`]; names NUL padded, then the kernel memory budget as a `u64`
//! (0 = [`DEFAULT_KERNEL_MEMORY_BUDGET`]),
//! then the offset and length of its argument blob as two `u64`s (0 and 0: no
//! arguments, see [`crate::wasi::Args`]), then the offset and length of its line
//! table (0 and 0: none, see [`crate::lines`]), then its timer slice in
//! microseconds as a `u64` (0 = [`DEFAULT_SLICE_US`]), then the
//! `.cwasm` images, the argument blobs and the line tables, each at a
//! 16-byte-aligned offset from the bundle start.

use core::{fmt, str};

use crate::config::{Metering, WASMTIME_VERSION, fingerprint};

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"LUCIDWB\0";
/// Format version this crate reads and writes.
pub const VERSION: u32 = 3;
/// The boot archive entry that holds the bundle.
pub const ARCHIVE_ENTRY: &str = "wasm";
/// Bytes reserved for a module or export name.
pub const NAME_LEN: usize = 32;
/// CPU time a timer-metered guest runs before the timer preempts it, when its
/// manifest names none: 1 ms.
pub const DEFAULT_SLICE_US: u64 = 1000;
/// Kernel memory an instance tree may hold when its manifest names none: 1 MiB.
pub const DEFAULT_KERNEL_MEMORY_BUDGET: u64 = 1024 * 1024;

const HEADER_LEN: usize = 40;
const ENTRY_LEN: usize = 152;
#[cfg(any(test, feature = "alloc"))]
const DATA_ALIGN: usize = 16;
const FLAG_AUTOSTART: u32 = 1;
/// Compiled by the fuel engine ([`Metering::Fuel`]); without it, the timer engine.
const FLAG_FUEL: u32 = 2;

/// Why a bundle is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleError {
    /// The bytes do not start with [`MAGIC`].
    BadMagic,
    /// Written by a format version this crate does not read.
    UnsupportedVersion(u32),
    /// A header, entry or image reaches past the end.
    Truncated,
    /// A name is not UTF-8.
    BadName {
        /// Index of the entry.
        index: usize,
    },
    /// An argument blob is malformed.
    BadArgs {
        /// Index of the entry.
        index: usize,
    },
    /// A line table is malformed.
    BadLines {
        /// Index of the entry.
        index: usize,
    },
    /// Built by another wasmtime version or with another engine Config.
    OtherEngine {
        /// The precompiler's wasmtime version.
        wasmtime: [u8; 16],
        /// The precompiler's config fingerprint.
        fingerprint: u64,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not a Lucid wasm bundle (bad magic)"),
            Self::UnsupportedVersion(v) => write!(f, "wasm bundle format {v} is not supported (expected {VERSION})"),
            Self::Truncated => write!(f, "wasm bundle is truncated"),
            Self::BadName { index } => write!(f, "wasm bundle entry {index} has a name that is not UTF-8"),
            Self::BadArgs { index } => write!(f, "wasm bundle entry {index} has malformed arguments"),
            Self::BadLines { index } => write!(f, "wasm bundle entry {index} has a malformed line table"),
            Self::OtherEngine {
                wasmtime,
                fingerprint: theirs,
            } => write!(
                f,
                "wasm bundle was built by wasmtime {} with engine config {theirs:016x}; this kernel runs wasmtime \
                 {WASMTIME_VERSION} with config {:016x}: rebuild it with `cargo xtask build`",
                padded_str(wasmtime).unwrap_or("(unreadable)"),
                fingerprint()
            ),
        }
    }
}

impl core::error::Error for BundleError {}

/// One guest module and how to run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestEntry<'a> {
    /// Module name (the instance and task name).
    pub name: &'a str,
    /// The exported function to call, `() -> ()` or `() -> i32`.
    pub entry: &'a str,
    /// How its time on a CPU is limited (and so which engine compiled it).
    pub metering: Metering,
    /// Microseconds of CPU per time slice: the timer preempts the instance after
    /// this long (with [`Metering::Timer`]); 0 = [`DEFAULT_SLICE_US`].
    pub slice_us: u64,
    /// Fuel per time slice: the instance yields its CPU after using this much
    /// (with [`Metering::Fuel`]).
    pub fuel_per_slice: u64,
    /// Fuel for the instance's whole life; 0 = unlimited. Exceeding it kills it.
    pub fuel_budget: u64,
    /// Largest linear memory in 64 KiB pages.
    pub max_memory_pages: u32,
    /// Bytes of kernel memory the instance and every instance it spawns may
    /// hold together through hostcalls (channels, queued messages, handle tables,
    /// children); 0 = [`DEFAULT_KERNEL_MEMORY_BUDGET`].
    pub kernel_memory_budget: u64,
    /// Started at boot.
    pub autostart: bool,
    /// Its WASI arguments and environment (a [`crate::wasi::Args`] blob; empty:
    /// none).
    pub args: &'a [u8],
    /// The `.cwasm` image.
    pub cwasm: &'a [u8],
    /// Its source lines by module offset (a [`crate::lines::LineTable`]; empty:
    /// the module had no DWARF).
    pub lines: &'a [u8],
}

/// A parsed bundle borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Bundle<'a> {
    /// Checks the header, the engine fingerprint and every entry.
    ///
    /// # Errors
    /// See [`BundleError`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(if bytes.len() >= 8 && bytes[..8] != MAGIC {
                BundleError::BadMagic
            } else {
                BundleError::Truncated
            })?;
        if header[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u32_at(header, 8);
        if version != VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let theirs = u64_at(header, 16);
        let mut wasmtime = [0; 16];
        wasmtime.copy_from_slice(&header[24..40]);
        if theirs != fingerprint() || padded_str(&wasmtime) != Some(WASMTIME_VERSION) {
            return Err(BundleError::OtherEngine {
                wasmtime,
                fingerprint: theirs,
            });
        }
        let count = u32_at(header, 12) as usize;
        let table = count
            .checked_mul(ENTRY_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .ok_or(BundleError::Truncated)?;
        if table > bytes.len() {
            return Err(BundleError::Truncated);
        }
        let bundle = Self { bytes, count };
        for i in 0..count {
            bundle.entry(i)?;
        }
        Ok(bundle)
    }

    /// Number of modules.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// No modules.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every module, in bundle order.
    pub fn entries(&self) -> impl Iterator<Item = GuestEntry<'a>> + '_ {
        (0..self.count).filter_map(|i| self.entry(i).ok())
    }

    /// The module called `name`.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<GuestEntry<'a>> {
        self.entries().find(|e| e.name == name)
    }

    /// The bytes an entry's (offset, length) pair at `at` in `raw` names.
    fn blob(&self, raw: &[u8], at: usize) -> Result<&'a [u8], BundleError> {
        let offset = usize::try_from(u64_at(raw, at)).map_err(|_| BundleError::Truncated)?;
        let len = usize::try_from(u64_at(raw, at + 8)).map_err(|_| BundleError::Truncated)?;
        offset
            .checked_add(len)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or(BundleError::Truncated)
    }

    fn entry(&self, index: usize) -> Result<GuestEntry<'a>, BundleError> {
        let at = HEADER_LEN + index * ENTRY_LEN;
        let raw = self.bytes.get(at..at + ENTRY_LEN).ok_or(BundleError::Truncated)?;
        let name = padded_str(&raw[..NAME_LEN]).ok_or(BundleError::BadName { index })?;
        let entry = padded_str(&raw[NAME_LEN..2 * NAME_LEN]).ok_or(BundleError::BadName { index })?;
        let at = 2 * NAME_LEN;
        let cwasm = self.blob(raw, at + 24)?;
        let args = self.blob(raw, at + 48)?;
        crate::wasi::Args::parse(args).map_err(|_| BundleError::BadArgs { index })?;
        let lines = self.blob(raw, at + 64)?;
        crate::lines::LineTable::parse(lines).map_err(|_| BundleError::BadLines { index })?;
        Ok(GuestEntry {
            name,
            entry,
            fuel_per_slice: u64_at(raw, at),
            fuel_budget: u64_at(raw, at + 8),
            max_memory_pages: u32_at(raw, at + 16),
            autostart: u32_at(raw, at + 20) & FLAG_AUTOSTART != 0,
            metering: if u32_at(raw, at + 20) & FLAG_FUEL != 0 {
                Metering::Fuel
            } else {
                Metering::Timer
            },
            args,
            kernel_memory_budget: match u64_at(raw, at + 40) {
                0 => DEFAULT_KERNEL_MEMORY_BUDGET,
                n => n,
            },
            slice_us: match u64_at(raw, at + 80) {
                0 => DEFAULT_SLICE_US,
                n => n,
            },
            cwasm,
            lines,
        })
    }
}

/// Writes a bundle for this crate's engine fingerprint.
///
/// # Errors
/// If a name or export is longer than [`NAME_LEN`] bytes (the text says which).
#[cfg(any(test, feature = "alloc"))]
pub fn write(entries: &[GuestEntry<'_>]) -> Result<alloc::vec::Vec<u8>, alloc::string::String> {
    use alloc::format;
    let mut out = alloc::vec::Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .map_err(|_| "too many modules")?
            .to_le_bytes(),
    );
    out.extend_from_slice(&fingerprint().to_le_bytes());
    out.extend_from_slice(&padded::<16>(WASMTIME_VERSION).ok_or("wasmtime version too long")?);
    let mut offset = (HEADER_LEN + entries.len() * ENTRY_LEN).next_multiple_of(DATA_ALIGN);
    for e in entries {
        out.extend_from_slice(&padded::<NAME_LEN>(e.name).ok_or(format!("module name {:?} is too long", e.name))?);
        out.extend_from_slice(&padded::<NAME_LEN>(e.entry).ok_or(format!("export name {:?} is too long", e.entry))?);
        out.extend_from_slice(&e.fuel_per_slice.to_le_bytes());
        out.extend_from_slice(&e.fuel_budget.to_le_bytes());
        out.extend_from_slice(&e.max_memory_pages.to_le_bytes());
        let fuel = if e.metering == Metering::Fuel { FLAG_FUEL } else { 0 };
        let autostart = if e.autostart { FLAG_AUTOSTART } else { 0 };
        out.extend_from_slice(&(autostart | fuel).to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(e.cwasm.len() as u64).to_le_bytes());
        out.extend_from_slice(&e.kernel_memory_budget.to_le_bytes());
        let args_at = (offset + e.cwasm.len()).next_multiple_of(DATA_ALIGN);
        let args_at = if e.args.is_empty() { 0 } else { args_at };
        out.extend_from_slice(&(args_at as u64).to_le_bytes());
        out.extend_from_slice(&(e.args.len() as u64).to_le_bytes());
        offset = (offset + e.cwasm.len()).next_multiple_of(DATA_ALIGN);
        offset = (offset + e.args.len()).next_multiple_of(DATA_ALIGN);
        let lines_at = if e.lines.is_empty() { 0 } else { offset };
        out.extend_from_slice(&(lines_at as u64).to_le_bytes());
        out.extend_from_slice(&(e.lines.len() as u64).to_le_bytes());
        out.extend_from_slice(&e.slice_us.to_le_bytes());
        offset = (offset + e.lines.len()).next_multiple_of(DATA_ALIGN);
    }
    for e in entries {
        out.resize(out.len().next_multiple_of(DATA_ALIGN), 0);
        out.extend_from_slice(e.cwasm);
        out.resize(out.len().next_multiple_of(DATA_ALIGN), 0);
        out.extend_from_slice(e.args);
        out.resize(out.len().next_multiple_of(DATA_ALIGN), 0);
        out.extend_from_slice(e.lines);
    }
    Ok(out)
}

#[cfg(any(test, feature = "alloc"))]
fn padded<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0; N];
    out.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
    Some(out)
}

fn padded_str(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    str::from_utf8(&bytes[..end]).ok()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let a = GuestEntry {
            name: "ping",
            entry: "main",
            metering: Metering::Timer,
            slice_us: 0,
            fuel_per_slice: 10_000,
            fuel_budget: 0,
            max_memory_pages: 4,
            kernel_memory_budget: 0,
            autostart: true,
            args: b"",
            cwasm: b"abc",
            lines: b"",
        };
        let b = GuestEntry {
            name: "pong",
            autostart: false,
            metering: Metering::Fuel,
            slice_us: 250,
            fuel_budget: 7,
            kernel_memory_budget: 4096,
            args: b"\x02\0\0\0\0\0\0\0pong\0-v\0",
            cwasm: b"0123456789abcdefXYZ",
            ..a
        };
        write(&[a, b]).expect("bundle")
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let bundle = Bundle::parse(&bytes).expect("parse");
        let all: Vec<_> = bundle.entries().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "ping");
        assert!(all[0].autostart);
        assert_eq!(all[0].metering, Metering::Timer);
        assert_eq!(all[0].cwasm, b"abc");
        assert_eq!(
            bundle.find("pong").map(|e| (e.fuel_budget, e.metering, e.cwasm)),
            Some((7, Metering::Fuel, &b"0123456789abcdefXYZ"[..]))
        );
        assert_eq!(bundle.find("nope"), None);
        assert_eq!(
            all[0].kernel_memory_budget, DEFAULT_KERNEL_MEMORY_BUDGET,
            "0 means the default"
        );
        assert_eq!(all[1].kernel_memory_budget, 4096);
        assert_eq!(
            (all[0].slice_us, all[1].slice_us),
            (DEFAULT_SLICE_US, 250),
            "0 means the default"
        );
        assert_eq!(all[0].args, b"");
        let args = crate::wasi::Args::parse(all[1].args).expect("args");
        assert_eq!(args.arg_strs().collect::<Vec<_>>(), ["pong", "-v"]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(Bundle::parse(&bytes[..len]).is_err(), "truncated at {len} accepted");
        }
    }

    #[test]
    fn another_engine_is_refused_by_name() {
        let mut bytes = sample();
        bytes[16] ^= 1;
        let err = Bundle::parse(&bytes).expect_err("other fingerprint");
        assert!(matches!(err, BundleError::OtherEngine { .. }));
        assert!(err.to_string().contains("wasmtime 48.0.8"), "{err}");
        let mut bytes = sample();
        bytes[24..40].copy_from_slice(b"47.0.0\0\0\0\0\0\0\0\0\0\0");
        assert!(err_text(&bytes).contains("built by wasmtime 47.0.0"));
    }

    #[test]
    fn bad_magic_and_version() {
        let mut bytes = sample();
        bytes[0] = b'X';
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::BadMagic);
        let mut bytes = sample();
        bytes[8] = 9;
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::UnsupportedVersion(9));
    }

    #[test]
    fn long_names_are_refused() {
        let e = GuestEntry {
            name: "a-very-long-module-name-that-does-not-fit",
            entry: "main",
            metering: Metering::Timer,
            slice_us: 0,
            fuel_per_slice: 1,
            fuel_budget: 0,
            max_memory_pages: 1,
            kernel_memory_budget: 0,
            autostart: false,
            args: b"",
            cwasm: b"",
            lines: b"",
        };
        assert!(write(&[e]).unwrap_err().contains("too long"));
    }

    #[test]
    fn malformed_args_are_refused() {
        let mut bytes = sample();
        let end = bytes.len();
        bytes[end - 1] = b'x';
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::BadArgs { index: 1 });
    }

    #[test]
    fn a_line_table_travels_with_its_module_and_a_bad_one_is_refused() {
        let lines = crate::lines::write(&["main.rs"], &[(8, 0, 3)]).expect("table");
        let e = GuestEntry {
            name: "t",
            entry: "_start",
            metering: Metering::Timer,
            slice_us: 0,
            fuel_per_slice: 1,
            fuel_budget: 0,
            max_memory_pages: 1,
            kernel_memory_budget: 0,
            autostart: false,
            args: b"",
            cwasm: b"xyz",
            lines: &lines,
        };
        let bytes = write(&[e]).expect("bundle");
        let entry = Bundle::parse(&bytes).expect("parse").find("t").expect("entry");
        let table = crate::lines::LineTable::parse(entry.lines).expect("table");
        assert_eq!(table.lookup(9).map(|l| l.line), Some(3));
        // The row's file index, past the one file.
        let mut bad = bytes.clone();
        let file = bad.len() - 8;
        bad[file] = 5;
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadLines { index: 0 });
    }

    fn err_text(bytes: &[u8]) -> String {
        Bundle::parse(bytes).unwrap_err().to_string()
    }
}
