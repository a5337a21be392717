//! Compiling the Rust and C guests (`kernel/guests/rust/*.rs`, `kernel/guests/c/*.c`)
//! to `wasm32-wasi` modules, outside the host workspace's cargo.
//!
//! Rust: a rustup toolchain's own `wasm32-wasip1`/`wasm32-wasi` target when the user
//! installed one, else Debian's `rustc` 1.63 with `libstd-rust-dev-wasm32` (installed
//! beside rustup, called by full path). C: Debian's clang with lld, wasi-libc and the
//! wasm32 compiler-rt. Missing Debian packages are installed with apt-get, like QEMU.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{self, workspace_root};

/// Debian's Rust compiler (rustup's stays first on PATH, so it is called by path).
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// Where `libstd-rust-dev-wasm32` puts the target's standard library.
const DEBIAN_WASI_STD: &str = "/usr/lib/rustlib/wasm32-wasi/lib";
/// Debian's rustc links wasm with the system's `wasm-ld` (it has no `rust-lld`).
const RUST_PACKAGES: &[&str] = &["rustc", "libstd-rust-dev-wasm32", "lld"];
const WASM_LD: &str = "/usr/bin/wasm-ld";
/// Files the C toolchain needs: the compiler, the wasm linker, wasi-libc and the
/// compiler-rt builtins for wasm32.
const C_PACKAGES: &[&str] = &["clang", "lld", "wasi-libc", "libclang-rt-14-dev-wasm32"];
const WASI_LIBC: &str = "/usr/lib/wasm32-wasi/libc.a";

/// A Rust compiler for wasm32 WASI and its target name.
struct RustWasi {
    rustc: PathBuf,
    target: &'static str,
    /// `-C linker=…` when the toolchain has no `rust-lld` of its own.
    linker: Option<&'static str>,
}

fn rustup_wasi() -> Option<RustWasi> {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    ["wasm32-wasip1", "wasm32-wasi"]
        .into_iter()
        .find(|t| sysroot.join("lib/rustlib").join(t).join("lib").is_dir())
        .map(|target| RustWasi {
            rustc: sysroot.join("bin/rustc"),
            target,
            linker: None,
        })
}

fn rust_wasi() -> Result<RustWasi> {
    if let Some(r) = rustup_wasi() {
        return Ok(r);
    }
    let installed =
        || Path::new(DEBIAN_RUSTC).is_file() && Path::new(DEBIAN_WASI_STD).is_dir() && Path::new(WASM_LD).is_file();
    process::ensure_packages("Rust for wasm32-wasi", installed, RUST_PACKAGES)?;
    Ok(RustWasi {
        rustc: DEBIAN_RUSTC.into(),
        target: "wasm32-wasi",
        linker: Some(WASM_LD),
    })
}

fn clang() -> Result<PathBuf> {
    let installed = || {
        ["/usr/bin/clang", WASM_LD, WASI_LIBC]
            .iter()
            .all(|f| Path::new(f).is_file())
            && builtins_installed()
    };
    process::ensure_packages("C for wasm32-wasi", installed, C_PACKAGES)?;
    Ok("/usr/bin/clang".into())
}

/// compiler-rt's wasm32 builtins (their path has clang's full version in it).
fn builtins_installed() -> bool {
    glob_one(
        Path::new("/usr/lib/llvm-14/lib/clang"),
        "lib/wasi/libclang_rt.builtins-wasm32.a",
    )
}

fn glob_one(dir: &Path, rest: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| entries.flatten().any(|e| e.path().join(rest).is_file()))
}

/// The guest sources: `(name, path)` of every `rust/*.rs` and `c/*.c`.
fn sources(dir: &Path, ext: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == ext) {
            let stem = path.file_stem().and_then(|s| s.to_str()).context("guest file name")?;
            out.push((stem.to_string(), path));
        }
    }
    out.sort();
    Ok(out)
}

fn newer(out: &Path, inputs: &[&Path]) -> bool {
    let Ok(built) = out.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    inputs
        .iter()
        .all(|i| i.metadata().and_then(|m| m.modified()).is_ok_and(|t| t <= built))
}

/// Compiles every Rust and C guest into `out_dir/<name>.wasm` (skipping those
/// already newer than their sources) and returns `out_dir`.
pub fn compile_guests(out_dir: &Path) -> Result<PathBuf> {
    let guests = workspace_root().join("kernel/guests");
    std::fs::create_dir_all(out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let rust = sources(&guests.join("rust"), "rs")?;
    if !rust.is_empty() {
        let tc = rust_wasi()?;
        // The safe wrapper over the `lucid` imports, a library the guests link.
        let lib_src = guests.join("rust/lib/lucid.rs");
        let lib = out_dir.join("liblucid.rlib");
        if !newer(&lib, &[&lib_src]) {
            let mut cmd = Command::new(&tc.rustc);
            cmd.args(["--target", tc.target, "--edition", "2021", "-O", "--crate-type", "rlib"])
                .args(["--crate-name", "lucid", "-o"])
                .arg(&lib)
                .arg(&lib_src);
            process::run(&mut cmd)?;
        }
        for (name, src) in &rust {
            let out = out_dir.join(format!("{name}.wasm"));
            // The name section is kept (traps name functions). Test guests keep
            // line tables too (traps name `file:line`); the demo's are stripped.
            let debug = if name.starts_with("t_") {
                "debuginfo=1"
            } else {
                "strip=debuginfo"
            };
            // The flags a module was built with sit beside it: a change rebuilds it.
            let stamp = out.with_extension("flags");
            if newer(&out, &[src, &lib]) && std::fs::read_to_string(&stamp).is_ok_and(|s| s == debug) {
                continue;
            }
            let mut cmd = Command::new(&tc.rustc);
            if let Some(linker) = tc.linker {
                cmd.arg("-C").arg(format!("linker={linker}"));
            }
            cmd.args(["--target", tc.target, "--edition", "2021", "-O", "-C", debug])
                .arg("-L")
                .arg(out_dir)
                .arg("--extern")
                .arg(format!("lucid={}", lib.display()))
                .arg("-o")
                .arg(&out)
                .arg(src);
            process::run(&mut cmd)?;
            std::fs::write(&stamp, debug).with_context(|| format!("write {}", stamp.display()))?;
        }
    }
    let c = sources(&guests.join("c"), "c")?;
    if !c.is_empty() {
        let clang = clang()?;
        for (name, src) in &c {
            let out = out_dir.join(format!("{name}.wasm"));
            if newer(&out, &[src]) {
                continue;
            }
            let mut cmd = Command::new(&clang);
            cmd.args([
                "--target=wasm32-wasi",
                "--sysroot=/usr",
                "-O2",
                "-Wall",
                "-Werror",
                "-o",
            ])
            .arg(&out)
            .arg(src);
            process::run(&mut cmd)?;
        }
    }
    Ok(out_dir.to_path_buf())
}

/// Compiles one stand-alone Rust program (`std` only) for wasm32-wasi, as a user
/// would outside the repo.
pub fn compile_rust_program(src: &Path, out: &Path) -> Result<()> {
    let tc = rust_wasi()?;
    let mut cmd = Command::new(&tc.rustc);
    if let Some(linker) = tc.linker {
        cmd.arg("-C").arg(format!("linker={linker}"));
    }
    cmd.args(["--target", tc.target, "--edition", "2021", "-O", "-o"])
        .arg(out)
        .arg(src);
    process::run(&mut cmd)
}

/// Checks that a module named with `--wasm` is an existing `.wasm` or `.wat` file.
pub fn check_module_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("wasm" | "wat") if path.is_file() => Ok(()),
        Some("wasm" | "wat") => bail!("{} does not exist", path.display()),
        _ => bail!("{}: a module must be a .wasm or .wat file", path.display()),
    }
}
