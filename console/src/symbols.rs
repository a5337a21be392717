//! Code addresses to function names, from the kernel ELF's symbol table (demangled),
//! and to `file:line` from its DWARF line tables when it has them. An address no
//! symbol covers is shown as hex, never dropped.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind, SymbolSection};

/// DWARF sections as addr2line reads them.
type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// Function symbols of one ELF, sorted by address, and its line tables.
#[derive(Clone, Default)]
pub struct Symbolizer {
    /// `(start, size, demangled name)`.
    functions: Vec<(u64, u64, String)>,
    /// The DWARF, parsed lazily by addr2line (behind a lock: its caches fill on
    /// lookup).
    lines: Option<Arc<Mutex<addr2line::Context<Reader>>>>,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer")
            .field("functions", &self.functions.len())
            .field("lines", &self.lines.is_some())
            .finish()
    }
}

impl Symbolizer {
    /// Reads the function symbols of the ELF at `path`.
    ///
    /// # Errors
    /// The file cannot be read or is not an object file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let data = std::fs::read(path)?;
        Self::parse(&data)
    }

    /// Reads the function symbols of an ELF image.
    ///
    /// # Errors
    /// `data` is not an object file.
    pub fn parse(data: &[u8]) -> anyhow::Result<Self> {
        let file = object::File::parse(data)?;
        // Assembly labels (`global_asm!` entry points) are untyped symbols in a code
        // section: they name code as well as typed functions do.
        let in_code = |s: &object::Symbol<'_, '_>| match s.section() {
            SymbolSection::Section(i) => file
                .section_by_index(i)
                .is_ok_and(|sec| sec.kind() == SectionKind::Text),
            _ => false,
        };
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| s.address() != 0)
            .filter(|s| s.kind() == SymbolKind::Text || (s.kind() == SymbolKind::Unknown && in_code(s)))
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some((s.address(), s.size(), format!("{:#}", rustc_demangle::demangle(name))))
            })
            .collect();
        functions.sort_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
        functions.dedup_by_key(|f| f.0);
        Ok(Self {
            functions,
            lines: dwarf_lines(&file).map(|c| Arc::new(Mutex::new(c))),
        })
    }

    /// `file:line` of the code at `addr` (the innermost inlined function's), when
    /// the ELF's line tables cover it, its path shortened by [`short_path`].
    #[must_use]
    pub fn location(&self, addr: u64) -> Option<String> {
        let lines = self.lines.as_ref()?.lock().ok()?;
        let loc = lines.find_location(addr).ok()??;
        let shown = short_path(loc.file?);
        Some(match loc.line {
            Some(line) => format!("{shown}:{line}"),
            None => shown.into_owned(),
        })
    }

    /// Whether it has line tables.
    #[must_use]
    pub fn has_lines(&self) -> bool {
        self.lines.is_some()
    }

    /// A symbolizer from a list of `(start, size, name)` (for tests).
    #[must_use]
    pub fn from_functions(mut functions: Vec<(u64, u64, String)>) -> Self {
        functions.sort_by_key(|f| f.0);
        Self { functions, lines: None }
    }

    /// Whether it knows no function.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The function containing `addr`, if a symbol covers it.
    #[must_use]
    pub fn function(&self, addr: u64) -> Option<&str> {
        let i = self.functions.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.functions[i];
        (size == &0 || addr - start < *size).then_some(name.as_str())
    }

    /// The function containing `addr`, or the address in hex.
    #[must_use]
    pub fn name(&self, addr: u64) -> String {
        self.function(addr).map_or_else(|| format!("{addr:#x}"), str::to_string)
    }
}

/// A source path as a reader wants it: under the current directory, relative to
/// it; in a crate from the registry, from the crate's directory
/// (`x86_64-0.15.5/src/…`); in the standard library, from `library/`
/// (`core/src/…`).
fn short_path(file: &str) -> Cow<'_, str> {
    if let Some(rest) = file.split_once("/.cargo/registry/src/").map(|(_, r)| r) {
        return Cow::Borrowed(rest.split_once('/').map_or(rest, |(_, r)| r));
    }
    if file.starts_with("/rustc/")
        && let Some((_, rest)) = file.split_once("/library/")
    {
        return Cow::Borrowed(rest);
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| Path::new(file).strip_prefix(d).ok().map(|p| p.display().to_string()))
        .map_or(Cow::Borrowed(file), Cow::Owned)
}

/// The line tables of `file`'s DWARF, if it has any. Only what addr2line needs for
/// lines is copied out (not location lists).
fn dwarf_lines(file: &object::File<'_>) -> Option<addr2line::Context<Reader>> {
    file.section_by_name(".debug_line")?;
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
        let wanted = !matches!(id, gimli::SectionId::DebugLoc | gimli::SectionId::DebugLocLists);
        let data = file
            .section_by_name(id.name())
            .filter(|_| wanted)
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[]));
        Ok(gimli::EndianArcSlice::new(Arc::from(&*data), endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// Names code addresses: guest code from the stream's wasm code map
/// (`module!function`), the rest from the kernel ELF.
#[derive(Debug, Clone, Copy)]
pub struct Resolver<'a> {
    /// The kernel's symbols.
    pub kernel: &'a Symbolizer,
    /// The wasm modules' functions.
    pub wasm: &'a crate::state::WasmCode,
}

impl Resolver<'_> {
    /// The function containing `addr`, if one is known.
    #[must_use]
    pub fn function(&self, addr: u64) -> Option<String> {
        match self.wasm.function(addr) {
            Some(f) => Some(f.display_name()),
            None => self.kernel.function(addr).map(str::to_string),
        }
    }

    /// The function containing `addr`, or the address in hex.
    #[must_use]
    pub fn name(&self, addr: u64) -> String {
        self.function(addr).unwrap_or_else(|| format!("{addr:#x}"))
    }
}

/// Where the build leaves the kernel ELF: `freestanding/lucid-kernel.elf` under
/// `$CARGO_TARGET_DIR` (or `target/` under the current directory), as `cargo xtask
/// build` lays it out, else cargo's own output there.
#[must_use]
pub fn default_kernel_elf() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let freestanding = target.join("freestanding");
    let copied = freestanding.join("lucid-kernel.elf");
    if copied.exists() {
        return copied;
    }
    freestanding
        .join("lucid-kernel")
        .join("x86_64-unknown-linux-gnu")
        .join("release")
        .join("lucid-kernel")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_inside_a_function_names_it_and_others_stay_hex() {
        let s = Symbolizer::from_functions(vec![(0x1000, 0x100, "a::f".into()), (0x2000, 0x10, "b::g".into())]);
        assert_eq!(s.name(0x1000), "a::f");
        assert_eq!(s.name(0x10ff), "a::f");
        assert_eq!(s.name(0x1100), "0x1100");
        assert_eq!(s.name(0x2005), "b::g");
        assert_eq!(s.name(0x10), "0x10");
    }

    #[test]
    fn the_test_binary_names_the_file_and_line_of_its_own_code() {
        let exe = std::env::current_exe().expect("test binary path");
        let s = Symbolizer::load(&exe).expect("the test binary is an ELF");
        assert!(s.has_lines(), "a debug test build has line tables");
        // The binary is position-independent and addr2line reads link-time
        // addresses: take this function's own symbol address.
        let (start, _, _) = s
            .functions
            .iter()
            .find(|f| f.2.ends_with("the_test_binary_names_the_file_and_line_of_its_own_code"))
            .expect("this test's symbol");
        let loc = s
            .location(*start)
            .expect("a location for this test's first instruction");
        assert!(
            loc.starts_with("src/symbols.rs:") || loc.contains("console/src/symbols.rs:"),
            "{loc}"
        );
        assert_eq!(s.location(u64::MAX - 16), None);
    }

    #[test]
    fn paths_of_dependencies_and_the_standard_library_are_shortened() {
        assert_eq!(
            short_path("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/x86_64-0.15.5/src/lib.rs"),
            "x86_64-0.15.5/src/lib.rs"
        );
        assert_eq!(
            short_path("/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/sync/atomic.rs"),
            "core/src/sync/atomic.rs"
        );
        assert_eq!(
            short_path("/elsewhere/kernel/src/lib.rs"),
            "/elsewhere/kernel/src/lib.rs"
        );
    }

    #[test]
    fn the_test_binary_itself_symbolizes_a_function_of_it() {
        let exe = std::env::current_exe().expect("test binary path");
        let s = Symbolizer::load(&exe).expect("the test binary is an ELF");
        let addr = Symbolizer::name as *const () as u64;
        // A PIE's symbols are relative to its load address: find the name by offset.
        let named = s
            .functions
            .iter()
            .any(|f| f.2.contains("Symbolizer::name") && rustc_demangle::demangle(&f.2).to_string() == f.2);
        assert!(
            named,
            "no demangled Symbolizer::name among {} functions ({addr:#x})",
            s.functions.len()
        );
    }
}
