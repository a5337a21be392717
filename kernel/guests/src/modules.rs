//! The user's own modules (`--wasm 'SETTINGS… PATH ARGS…'`), and the check every
//! module passes before it joins the bundle: it validates, and it imports only
//! functions Lucid offers, with their exact types.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use lucid_wasm::abi::Hostcall;
use wasmparser::{Parser, Payload, TypeRef, ValType};

use crate::manifest::Guest;

/// Settings a `--wasm` spec may give before the path, as `key=value`.
const SETTINGS: &[&str] = &[
    "preempt",
    "slice_us",
    "fuel_per_slice",
    "fuel_budget",
    "max_memory_pages",
    "kernel_memory_budget",
    "entry",
];

/// A module named on the command line.
#[derive(Debug)]
pub struct UserModule {
    /// Its manifest settings (name = file stem, autostart).
    pub guest: Guest,
    /// Its `.wasm` or `.wat` file.
    pub path: PathBuf,
}

/// Parses `[key=value…] PATH [ARGS…]` (split at whitespace).
pub fn parse_spec(spec: &str) -> anyhow::Result<UserModule> {
    let mut words = spec.split_whitespace().peekable();
    let mut settings = Vec::new();
    while let Some(w) = words.peek() {
        match w.split_once('=') {
            Some((k, v)) if SETTINGS.contains(&k) => {
                settings.push((k, v));
                words.next();
            }
            _ => break,
        }
    }
    let Some(path) = words.next() else {
        bail!("--wasm {spec:?}: no module path");
    };
    let path = PathBuf::from(path);
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: no file name", path.display()))?
        .to_string();
    let mut guest = Guest::new(name);
    guest.autostart = true;
    // Programs from ordinary toolchains need room: 16 MiB unless told otherwise.
    guest.max_memory_pages = 256;
    guest.args = words.map(str::to_string).collect();
    for (k, v) in settings {
        let n = || {
            v.parse::<u64>()
                .with_context(|| format!("--wasm {spec:?}: {k}={v} is not a number"))
        };
        match k {
            "preempt" => {
                guest.preempt = Some(
                    crate::manifest::Preempt::parse(v)
                        .with_context(|| format!("--wasm {spec:?}: preempt={v} is not timer or fuel"))?,
                );
            }
            "slice_us" => {
                guest.slice_us = n()?;
                if guest.slice_us == 0 {
                    bail!("--wasm {spec:?}: slice_us must be positive");
                }
            }
            "fuel_per_slice" => guest.fuel_per_slice = n()?,
            "fuel_budget" => guest.fuel_budget = n()?,
            "max_memory_pages" => guest.max_memory_pages = u32::try_from(n()?)?,
            "kernel_memory_budget" => guest.kernel_memory_budget = n()?,
            _ => guest.entry = v.to_string(),
        }
    }
    guest.metering().with_context(|| format!("--wasm {spec:?}"))?;
    Ok(UserModule { guest, path })
}

/// The module's bytes (a `.wat` file is compiled).
pub fn load(path: &Path) -> anyhow::Result<Vec<u8>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("wat") => wat::parse_file(path).with_context(|| format!("compiling {}", path.display())),
        Some("wasm") => std::fs::read(path).with_context(|| format!("reading {}", path.display())),
        _ => bail!("{}: a module must be a .wasm or .wat file", path.display()),
    }
}

/// The module's entry export: `_start` (a WASI command) if it has one, else `main`.
pub fn default_entry(wasm: &[u8]) -> anyhow::Result<&'static str> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ExportSection(exports) = payload? {
            for e in exports {
                if e?.name == "_start" {
                    return Ok("_start");
                }
            }
        }
    }
    Ok("main")
}

fn letters(types: &[ValType]) -> Option<String> {
    types
        .iter()
        .map(|t| match t {
            ValType::I32 => Some('i'),
            ValType::I64 => Some('I'),
            _ => None,
        })
        .collect()
}

/// Refuses a module that imports anything Lucid does not offer, in one line
/// naming the import.
pub fn check_imports(name: &str, wasm: &[u8]) -> anyhow::Result<()> {
    let mut funcs = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.with_context(|| format!("{name}: not a valid wasm module"))? {
            Payload::TypeSection(types) => {
                for ty in types.into_iter_err_on_gc_types() {
                    let ty = ty?;
                    funcs.push(letters(ty.params()).zip(letters(ty.results())));
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import?;
                    let (module, field) = (import.module, import.name);
                    let offered = match module {
                        lucid_wasm::abi::MODULE => Hostcall::lucid(field).and_then(Hostcall::lucid_signature),
                        lucid_wasm::wasi::MODULE => lucid_wasm::wasi::signature(field),
                        _ => None,
                    };
                    let Some((params, results)) = offered else {
                        bail!("{name}: imports {module}.{field}, which Lucid does not offer");
                    };
                    let TypeRef::Func(index) = import.ty else {
                        bail!("{name}: imports {module}.{field} as a non-function; Lucid offers only functions");
                    };
                    let theirs = funcs.get(index as usize).cloned().flatten();
                    if theirs.as_ref().map(|(p, r)| (p.as_str(), r.as_str())) != Some((params, results)) {
                        bail!(
                            "{name}: imports {module}.{field} with the wrong type (Lucid's takes ({params}) and returns ({results}); i = i32, I = i64)"
                        );
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_give_settings_path_and_args() {
        let m = parse_spec("fuel_budget=5 entry=go dir/prog.wasm a  b").expect("spec");
        assert_eq!(m.guest.name, "prog");
        assert_eq!(m.path, PathBuf::from("dir/prog.wasm"));
        assert_eq!(m.guest.args, ["a", "b"]);
        assert_eq!((m.guest.fuel_budget, m.guest.entry.as_str()), (5, "go"));
        assert!(m.guest.autostart);
        assert!(parse_spec("fuel_budget=x p.wasm").is_err());
        assert!(parse_spec("fuel_budget=1").is_err());
        use lucid_wasm::Metering;
        assert_eq!(
            m.guest.metering().ok(),
            Some(Metering::Fuel),
            "a fuel budget is counted in fuel"
        );
        let timer = parse_spec("p.wasm").expect("spec");
        assert_eq!(timer.guest.metering().ok(), Some(Metering::Timer));
        let fuel = parse_spec("preempt=fuel p.wasm").expect("spec");
        assert_eq!(fuel.guest.metering().ok(), Some(Metering::Fuel));
        assert!(parse_spec("preempt=timer fuel_budget=9 p.wasm").is_err());
        assert!(parse_spec("preempt=often p.wasm").is_err());
        assert_eq!(
            parse_spec("slice_us=250 p.wasm").map(|m| m.guest.slice_us).ok(),
            Some(250)
        );
        assert!(parse_spec("slice_us=0 p.wasm").is_err());
    }

    #[test]
    fn an_unknown_import_is_refused_by_name() {
        let wasm = wat::parse_str(r#"(module (import "wasi_snapshot_preview1" "sock_open" (func)))"#).expect("wat");
        let e = check_imports("m", &wasm).expect_err("refused").to_string();
        assert_eq!(
            e,
            "m: imports wasi_snapshot_preview1.sock_open, which Lucid does not offer"
        );
        let wasm = wat::parse_str(r#"(module (import "env" "f" (func)))"#).expect("wat");
        assert!(
            check_imports("m", &wasm)
                .expect_err("refused")
                .to_string()
                .contains("env.f")
        );
        let wasm = wat::parse_str(r#"(module (import "lucid" "fd_write" (func)))"#).expect("wat");
        assert!(check_imports("m", &wasm).is_err(), "a WASI name under lucid");
    }

    #[test]
    fn a_wrong_type_is_refused_and_right_ones_pass() {
        let wasm = wat::parse_str(r#"(module (import "lucid" "sleep" (func (param i32))))"#).expect("wat");
        assert!(
            check_imports("m", &wasm)
                .expect_err("refused")
                .to_string()
                .contains("wrong type")
        );
        let ok = wat::parse_str(
            r#"(module
                 (import "lucid" "sleep" (func (param i64)))
                 (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (func (export "_start")))"#,
        )
        .expect("wat");
        check_imports("m", &ok).expect("offered");
        assert_eq!(default_entry(&ok).expect("parse"), "_start");
        assert!(check_imports("m", b"\0asm\x02").is_err(), "not a module");
    }
}
