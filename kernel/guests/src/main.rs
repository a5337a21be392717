//! `lucid-guests OUT [--compiled DIR] [--wasm SPEC]…`: compiles every guest in
//! `manifest.toml` (WAT from `wat/<name>.wat`, the Rust and C guests from
//! `DIR/<name>.wasm`, which `cargo xtask build` compiles with the wasm32-wasi
//! toolchains) and the user's own modules (`SPEC` = `[key=value…] PATH [ARGS…]`,
//! PATH a `.wasm` or `.wat` file, started at boot with ARGS) to `.cwasm` with
//! Cranelift, using the kernel's shared engine Config, and writes the boot bundle
//! to OUT. A module that does not validate or imports something Lucid does not
//! offer is refused with one line naming the import.
#![forbid(unsafe_code)]

mod lines;
mod manifest;
mod modules;

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
    let usage = "usage: lucid-guests OUT.bundle [--compiled DIR] [--wasm '[key=value…] PATH [ARGS…]']…";
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        bail!("{usage}");
    };
    let mut compiled = None;
    let mut user = Vec::new();
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--compiled", Some(dir)) => compiled = Some(PathBuf::from(dir)),
            ("--wasm", Some(spec)) => user.push(modules::parse_spec(&spec)?),
            _ => bail!("{usage}"),
        }
    }
    // `cargo run` names this crate's directory at run time; the compile-time path can
    // name another clone when a target dir is shared between clones.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let bundle = build(&dir, compiled.as_deref(), user)?;
    let out = PathBuf::from(out);
    std::fs::write(&out, &bundle).with_context(|| format!("writing {}", out.display()))?;
    println!("lucid-guests: wrote {} ({} bytes)", out.display(), bundle.len());
    Ok(())
}

/// Where guest `name`'s module comes from: `wat/<name>.wat`, else the compiled
/// Rust or C guest in `compiled` (`None` when no compiled dir was given).
fn source(dir: &Path, compiled: Option<&Path>, name: &str) -> Option<PathBuf> {
    let wat = dir.join("wat").join(format!("{name}.wat"));
    if wat.is_file() {
        return Some(wat);
    }
    compiled.map(|c| c.join(format!("{name}.wasm")))
}

/// Compiles the guests under `dir` (and the `user`'s modules) into a bundle.
/// Without a `compiled` dir, the Rust and C guests are left out.
fn build(dir: &Path, compiled: Option<&Path>, user: Vec<modules::UserModule>) -> anyhow::Result<Vec<u8>> {
    let manifest_path = dir.join("manifest.toml");
    let text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = manifest::parse(&text).with_context(|| format!("in {}", manifest_path.display()))?;
    let mut guests: Vec<(manifest::Guest, PathBuf)> = manifest
        .guests
        .into_iter()
        .filter_map(|g| source(dir, compiled, &g.name).map(|p| (g, p)))
        .collect();
    for m in user {
        if guests.iter().any(|(g, _)| g.name == m.guest.name) {
            bail!(
                "{}: a guest called {:?} is already in the bundle; rename the file",
                m.path.display(),
                m.guest.name
            );
        }
        guests.push((m.guest, m.path));
    }
    let engine = |metering| -> anyhow::Result<wasmtime::Engine> {
        let mut config = wasmtime::Config::new();
        lucid_wasm::configure(&mut config, metering)?;
        Ok(wasmtime::Engine::new(&config)?)
    };
    let (timer, fuel) = (
        engine(lucid_wasm::Metering::Timer)?,
        engine(lucid_wasm::Metering::Fuel)?,
    );
    let mut meterings = Vec::new();
    let mut images = Vec::new();
    let mut blobs = Vec::new();
    let mut tables = Vec::new();
    for (guest, path) in &mut guests {
        let wasm = modules::load(path)?;
        modules::check_imports(&format!("{} ({})", guest.name, path.display()), &wasm)?;
        if guest.entry.is_empty() {
            guest.entry = modules::default_entry(&wasm)?.to_string();
        }
        let metering = guest.metering()?;
        let engine = match metering {
            lucid_wasm::Metering::Timer => &timer,
            lucid_wasm::Metering::Fuel => &fuel,
        };
        let cwasm = engine
            .precompile_module(&wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("precompiling {}", path.display()))?;
        meterings.push(metering);
        images.push(cwasm);
        blobs.push(guest.args_blob()?);
        tables.push(lines::table(&wasm).with_context(|| format!("reading the source lines of {}", path.display()))?);
    }
    let entries: Vec<GuestEntry<'_>> = guests
        .iter()
        .zip(&images)
        .zip(&blobs)
        .zip(&tables)
        .zip(&meterings)
        .map(|(((((g, _), cwasm), args), lines), &metering)| GuestEntry {
            name: &g.name,
            entry: &g.entry,
            metering,
            slice_us: g.slice_us,
            fuel_per_slice: g.fuel_per_slice,
            fuel_budget: g.fuel_budget,
            max_memory_pages: g.max_memory_pages,
            kernel_memory_budget: g.kernel_memory_budget,
            autostart: g.autostart,
            args,
            cwasm,
            lines,
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
        let bytes = build(dir, None, Vec::new()).expect("bundle");
        let bundle = lucid_wasm::Bundle::parse(&bytes).expect("parse");
        let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest");
        let manifest = manifest::parse(&text).expect("manifest parses");
        // Without a compiled dir, exactly the WAT guests (the Rust and C ones need
        // the wasm32-wasi toolchains, see xtask).
        let wat: Vec<_> = manifest
            .guests
            .iter()
            .filter(|g| dir.join("wat").join(format!("{}.wat", g.name)).is_file())
            .collect();
        assert_eq!(bundle.len(), wat.len());
        for g in wat {
            let e = bundle.find(&g.name).unwrap_or_else(|| panic!("{} missing", g.name));
            assert!(
                wasmtime::Engine::detect_precompiled(e.cwasm).is_some(),
                "{} is not a .cwasm",
                g.name
            );
        }
    }

    #[test]
    fn every_rust_and_c_guest_is_in_the_manifest_and_every_guest_has_a_source() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest");
        let manifest = manifest::parse(&text).expect("manifest parses");
        let mut compiled = Vec::new();
        for (sub, ext) in [("rust", ".rs"), ("c", ".c")] {
            for f in std::fs::read_dir(dir.join(sub)).expect("guest dir") {
                let f = f.expect("entry");
                if f.path().is_file() {
                    let name = f.file_name().into_string().expect("utf-8 name");
                    let stem = name.strip_suffix(ext).expect("only sources").to_string();
                    assert!(
                        manifest.guests.iter().any(|g| g.name == stem),
                        "{name} is not in manifest.toml"
                    );
                    compiled.push(stem);
                }
            }
        }
        for g in &manifest.guests {
            assert!(
                dir.join("wat").join(format!("{}.wat", g.name)).is_file() || compiled.contains(&g.name),
                "{} has no source",
                g.name
            );
        }
    }

    #[test]
    fn a_user_module_joins_the_bundle_with_its_args_and_a_bad_one_is_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tmp = std::env::temp_dir().join(format!("lucid-guests-test-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("tmp");
        let good = tmp.join("mine.wat");
        std::fs::write(&good, r#"(module (func (export "_start")))"#).expect("write");
        let spec = format!("max_memory_pages=3 {} x y", good.display());
        let bytes = build(dir, None, vec![modules::parse_spec(&spec).expect("spec")]).expect("bundle");
        let bundle = lucid_wasm::Bundle::parse(&bytes).expect("parse");
        let e = bundle.find("mine").expect("user module in the bundle");
        assert!(e.autostart);
        assert_eq!((e.entry, e.max_memory_pages), ("_start", 3));
        let args = lucid_wasm::wasi::Args::parse(e.args).expect("args");
        assert_eq!(args.arg_strs().collect::<Vec<_>>(), ["mine", "x", "y"]);
        let bad = tmp.join("bad.wat");
        std::fs::write(&bad, r#"(module (import "env" "open" (func)))"#).expect("write");
        let err = build(
            dir,
            None,
            vec![modules::parse_spec(&bad.display().to_string()).expect("spec")],
        )
        .expect_err("refused");
        assert!(
            format!("{err:#}").contains("imports env.open, which Lucid does not offer"),
            "{err:#}"
        );
        let clash = tmp.join("hasher.wat");
        std::fs::write(&clash, r#"(module (func (export "main")))"#).expect("write");
        assert!(
            build(
                dir,
                None,
                vec![modules::parse_spec(&clash.display().to_string()).expect("spec")]
            )
            .is_err()
        );
        std::fs::remove_dir_all(&tmp).expect("clean up");
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
