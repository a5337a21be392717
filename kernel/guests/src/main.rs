//! `lucid-guests OUT`: compiles every guest in `manifest.toml` (WAT → wasm →
//! `.cwasm` with Cranelift, using the kernel's shared engine Config) and writes the
//! boot bundle to OUT.
#![forbid(unsafe_code)]

mod manifest;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use lucid_wasm::GuestEntry;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lucid-guests: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!("usage: lucid-guests OUT.bundle");
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = build(dir)?;
    let out = PathBuf::from(out);
    std::fs::write(&out, &bundle).with_context(|| format!("writing {}", out.display()))?;
    println!("lucid-guests: wrote {} ({} bytes)", out.display(), bundle.len());
    Ok(())
}

/// Compiles the guests under `dir` into a bundle.
fn build(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let manifest_path = dir.join("manifest.toml");
    let text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = manifest::parse(&text).with_context(|| format!("in {}", manifest_path.display()))?;
    let mut config = wasmtime::Config::new();
    lucid_wasm::configure(&mut config)?;
    let engine = wasmtime::Engine::new(&config)?;
    let mut images = Vec::new();
    let blobs = manifest
        .guests
        .iter()
        .map(manifest::Guest::args_blob)
        .collect::<anyhow::Result<Vec<_>>>()?;
    for guest in &manifest.guests {
        let path = dir.join("wat").join(format!("{}.wat", guest.name));
        let wasm = wat::parse_file(&path).with_context(|| format!("compiling {}", path.display()))?;
        let cwasm = engine
            .precompile_module(&wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("precompiling {}", path.display()))?;
        images.push(cwasm);
    }
    let entries: Vec<GuestEntry<'_>> = manifest
        .guests
        .iter()
        .zip(&images)
        .zip(&blobs)
        .map(|((g, cwasm), args)| GuestEntry {
            name: &g.name,
            entry: &g.entry,
            fuel_per_slice: g.fuel_per_slice,
            fuel_budget: g.fuel_budget,
            max_memory_pages: g.max_memory_pages,
            kernel_memory_budget: g.kernel_memory_budget,
            autostart: g.autostart,
            args,
            cwasm,
        })
        .collect();
    lucid_wasm::bundle::write(&entries).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_compiles_into_a_bundle_the_kernel_format_accepts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bytes = build(dir).expect("bundle");
        let bundle = lucid_wasm::Bundle::parse(&bytes).expect("parse");
        let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest");
        let manifest = manifest::parse(&text).expect("manifest parses");
        assert_eq!(bundle.len(), manifest.guests.len());
        for g in &manifest.guests {
            let e = bundle.find(&g.name).unwrap_or_else(|| panic!("{} missing", g.name));
            assert!(
                wasmtime::Engine::detect_precompiled(e.cwasm).is_some(),
                "{} is not a .cwasm",
                g.name
            );
        }
    }

    #[test]
    fn every_wat_file_is_in_the_manifest() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest");
        let manifest = manifest::parse(&text).expect("manifest parses");
        for f in std::fs::read_dir(dir.join("wat")).expect("wat dir") {
            let name = f.expect("entry").file_name().into_string().expect("utf-8 name");
            let stem = name.strip_suffix(".wat").expect("only .wat files");
            assert!(
                manifest.guests.iter().any(|g| g.name == stem),
                "{name} is not in manifest.toml"
            );
        }
    }
}
