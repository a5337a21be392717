//! A module's source lines for the bundle: its DWARF line programs (the
//! `.debug_line` custom section a `-g` or `-C debuginfo` build leaves in the
//! module), reduced to the rows of the program's own sources and packed as a
//! `lucid_wasm::lines` table, so the kernel can name `file:line` when it traps.
//!
//! DWARF addresses in wasm count from the start of the code section's contents;
//! the table counts from the start of the module, as wasmtime's frame offsets do.
//! Rows in the standard library and dependencies are kept only as "no line" marks:
//! they would make the table many times larger, and a trap's frames in the
//! program's own code are the ones its author can act on.

use std::collections::HashMap;

use anyhow::Context;
use gimli::{EndianSlice, LittleEndian, SectionId};
use wasmparser::{Parser, Payload};

/// Whether `path` is library code (the standard library, a registry crate).
fn is_library(path: &str) -> bool {
    path.starts_with("/rustc/")
        || path.contains("/library/std/")
        || path.contains("/library/core/")
        || path.contains("/library/alloc/")
        || path.contains("/.cargo/registry/")
        || path.contains("/wasi-libc/")
        || path.starts_with("/usr/")
}

/// `kernel/guests/rust/x.rs` → `rust/x.rs`; elsewhere the last two components.
fn short(path: &str) -> String {
    if let Some((_, rest)) = path.rsplit_once("/kernel/guests/") {
        return rest.to_string();
    }
    let parts: Vec<&str> = path.rsplit('/').take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// The line table of `wasm` (empty when it has no DWARF line program).
///
/// # Errors
/// If the module or its DWARF does not parse.
pub fn table(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut sections: HashMap<String, &[u8]> = HashMap::new();
    let mut code_start = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("reading the module's sections")? {
            Payload::CustomSection(c) if c.name().starts_with(".debug_") => {
                sections.insert(c.name().to_string(), c.data());
            }
            Payload::CodeSectionStart { unchecked_range, .. } => code_start = Some(unchecked_range.start),
            _ => {}
        }
    }
    let (Some(code_start), true) = (code_start, sections.contains_key(".debug_line")) else {
        return Ok(Vec::new());
    };
    let load = |id: SectionId| -> Result<EndianSlice<'_, LittleEndian>, gimli::Error> {
        Ok(EndianSlice::new(
            sections.get(id.name()).copied().unwrap_or(&[]),
            LittleEndian,
        ))
    };
    let dwarf = gimli::Dwarf::load(load).context("reading the module's DWARF")?;
    let mut files: Vec<String> = Vec::new();
    let mut file_index: HashMap<String, u32> = HashMap::new();
    let mut rows: Vec<(u32, u32, u32)> = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().context("reading a DWARF unit")? {
        let unit = dwarf.unit(header).context("reading a DWARF unit")?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let mut program_rows = program.rows();
        while let Some((header, row)) = program_rows.next_row().context("reading a line program")? {
            let Ok(offset) = u32::try_from(code_start + row.address()) else {
                continue;
            };
            let line = row.line().map_or(0, |l| u32::try_from(l.get()).unwrap_or(0));
            let path = row.file(header).and_then(|f| {
                let name = dwarf.attr_string(&unit, f.path_name()).ok()?;
                let name = name.to_string_lossy().into_owned();
                if name.starts_with('/') {
                    return Some(name);
                }
                let dir = f
                    .directory(header)
                    .and_then(|d| dwarf.attr_string(&unit, d).ok())
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Some(if dir.is_empty() { name } else { format!("{dir}/{name}") })
            });
            let keep = !row.end_sequence() && line != 0 && path.as_deref().is_some_and(|p| !is_library(p));
            if !keep {
                rows.push((offset, 0, 0));
                continue;
            }
            let file = short(&path.unwrap_or_default());
            let index = match file_index.get(&file) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(files.len())?;
                    file_index.insert(file.clone(), i);
                    files.push(file);
                    i
                }
            };
            rows.push((offset, index, line));
        }
    }
    if files.is_empty() {
        return Ok(Vec::new());
    }
    // One row per change: a run of rows with the same place is one row.
    rows.sort_by_key(|r| r.0);
    let mut packed: Vec<(u32, u32, u32)> = Vec::with_capacity(rows.len());
    for r in rows {
        match packed.last_mut() {
            // At one offset a sequence's start wins over another's end.
            Some(last) if last.0 == r.0 => {
                if r.2 != 0 {
                    *last = r;
                }
            }
            Some(last) if (last.1, last.2) == (r.1, r.2) => {}
            _ => packed.push(r),
        }
    }
    let names: Vec<&str> = files.iter().map(String::as_str).collect();
    lucid_wasm::lines::write(&names, &packed).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shortened_and_library_code_is_recognised() {
        assert_eq!(
            short("/work/main/kernel/guests/rust/t_rust_panic.rs"),
            "rust/t_rust_panic.rs"
        );
        assert_eq!(short("/home/me/prog/src/main.rs"), "src/main.rs");
        assert_eq!(short("main.c"), "main.c");
        assert!(is_library(
            "/rustc/4b91a6ea7258a947e59c6522cd5898e7c0a6a88f/library/core/src/panicking.rs"
        ));
        assert!(is_library("/usr/src/rustc-1.63.0/library/std/src/panicking.rs"));
        assert!(!is_library("/work/main/kernel/guests/rust/t_rust_panic.rs"));
    }

    #[test]
    fn a_module_without_dwarf_has_no_table() {
        let wasm = wat::parse_str("(module (func (export \"f\") unreachable))").expect("wat");
        assert!(table(&wasm).expect("table").is_empty());
    }
}
