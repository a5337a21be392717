//! Code addresses to function names, from the kernel ELF's symbol table (demangled).
//! An address no symbol covers is shown as hex, never dropped.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSymbol, SymbolKind};

/// Function symbols of one ELF, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Symbolizer {
    /// `(start, size, demangled name)`.
    functions: Vec<(u64, u64, String)>,
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
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some((s.address(), s.size(), format!("{:#}", rustc_demangle::demangle(name))))
            })
            .collect();
        functions.sort_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
        functions.dedup_by_key(|f| f.0);
        Ok(Self { functions })
    }

    /// A symbolizer from a list of `(start, size, name)` (for tests).
    #[must_use]
    pub fn from_functions(mut functions: Vec<(u64, u64, String)>) -> Self {
        functions.sort_by_key(|f| f.0);
        Self { functions }
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
