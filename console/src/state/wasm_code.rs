//! Where the compiled functions of the kernel's wasm modules lie (`WasmFunction`
//! messages, in every snapshot answer), so a code address in guest code names
//! `module!function`.

use std::collections::BTreeMap;

use lucid_protocol::WasmFunction;
use serde::{Deserialize, Serialize};

use super::Text;

/// Functions held; a stream that names more is counted in [`WasmCode::dropped`]
/// (the demo's modules have about 2,000 together).
pub const MAX_WASM_FUNCTIONS: usize = 1 << 16;
/// Longest function name held (bytes; the kernel cuts names at 200).
const MAX_NAME: usize = 256;

/// One compiled wasm function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeFunction {
    /// Length of its code in bytes.
    pub len: u32,
    /// Its module.
    pub module: Text,
    /// Its index in the module's function index space.
    pub index: u32,
    /// Its name-section name, empty without one.
    pub name: String,
}

impl CodeFunction {
    /// `module!name`, or `module!#index` for a function without a name.
    #[must_use]
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}!#{}", self.module, self.index)
        } else {
            format!("{}!{}", self.module, self.name)
        }
    }
}

/// The code map of the current boot: functions by start address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmCode {
    functions: BTreeMap<u64, CodeFunction>,
    /// Functions not held because [`MAX_WASM_FUNCTIONS`] were.
    pub dropped: u64,
}

impl WasmCode {
    /// Takes one `WasmFunction` (a repeat, from a later snapshot answer, replaces
    /// the function at that address).
    pub fn insert(&mut self, f: &WasmFunction<'_>) {
        if f.len == 0 {
            return;
        }
        if self.functions.len() >= MAX_WASM_FUNCTIONS && !self.functions.contains_key(&f.start) {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let module = match self.functions.values().next_back() {
            Some(last) if last.module == f.module => last.module.clone(),
            _ => Text::from(f.module),
        };
        let mut name = f.name.to_string();
        if name.len() > MAX_NAME {
            let mut end = MAX_NAME;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
        }
        self.functions.insert(
            f.start,
            CodeFunction {
                len: f.len,
                module,
                index: f.index,
                name,
            },
        );
    }

    /// The function whose code holds `addr`.
    #[must_use]
    pub fn function(&self, addr: u64) -> Option<&CodeFunction> {
        let (start, f) = self.functions.range(..=addr).next_back()?;
        (addr - start < u64::from(f.len)).then_some(f)
    }

    /// Functions held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// Whether it holds no function.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// Forgets every function (a new boot loads its modules elsewhere).
    pub fn clear(&mut self) {
        self.functions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f<'a>(start: u64, len: u32, module: &'a str, index: u32, name: &'a str) -> WasmFunction<'a> {
        WasmFunction {
            start,
            len,
            module,
            index,
            name,
        }
    }

    #[test]
    fn an_address_names_the_function_whose_code_holds_it() {
        let mut code = WasmCode::default();
        code.insert(&f(0x1000, 0x40, "hasher", 3, "fnv1a"));
        code.insert(&f(0x1040, 0x10, "hasher", 4, ""));
        code.insert(&f(0x2000, 0x10, "pong", 1, "main"));
        let name = |a| code.function(a).map(CodeFunction::display_name);
        assert_eq!(name(0x1000).as_deref(), Some("hasher!fnv1a"));
        assert_eq!(name(0x103f).as_deref(), Some("hasher!fnv1a"));
        assert_eq!(name(0x1045).as_deref(), Some("hasher!#4"));
        assert_eq!(name(0x1050), None, "past the last function's end");
        assert_eq!(name(0xfff), None);
        assert_eq!(name(0x2008).as_deref(), Some("pong!main"));
    }

    #[test]
    fn a_flood_of_functions_is_capped_and_counted() {
        let mut code = WasmCode::default();
        for i in 0..MAX_WASM_FUNCTIONS as u64 + 10 {
            code.insert(&f(i * 16, 16, "m", 0, ""));
        }
        assert_eq!(code.len(), MAX_WASM_FUNCTIONS);
        assert_eq!(code.dropped, 10);
        // A repeat of a held function still replaces it.
        code.insert(&f(0, 16, "m", 0, "again"));
        assert_eq!(code.function(0).map(|f| f.name.as_str()), Some("again"));
        assert_eq!(code.dropped, 10);
    }
}
