//! Building the freestanding loader and kernel (host triple, our own flags and
//! linker scripts) and packing the boot archive QEMU passes as `-initrd`.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::process::{self, workspace_root};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// What a boot needs.
#[derive(Debug, Clone)]
pub struct BootImage {
    /// The PVH loader ELF (`-kernel`).
    pub loader: PathBuf,
    /// The kernel ELF (for gdb and `nm`).
    pub kernel: PathBuf,
    /// The boot archive (`-initrd`).
    pub archive: PathBuf,
    /// The guest bundle inside the archive (also on its own, for inspection).
    pub bundle: PathBuf,
}

/// Which kernel to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The normal kernel.
    Normal,
    /// The kernel with the in-QEMU test runner.
    Ktest,
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn freestanding_dir() -> PathBuf {
    target_dir().join("freestanding")
}

/// A cargo command (`build`, `clippy`, …) for a freestanding package with its own
/// flags. `--target` keeps RUSTFLAGS off build scripts and proc-macros; a separate
/// target dir per package keeps their flags from evicting each other's cached
/// dependencies, and clippy shares it with the build.
///
/// The kernel's crates are built to unwind (a panicking task's stack is unwound and
/// the task ends, see `kernel/src/panic`), but a `no_std` binary cannot unwind on
/// stable Rust: its build is `cargo rustc` with `-C panic=abort` for the binary alone
/// (see [`build_bin`]), and the other subcommands, which do not generate code, see
/// every crate as `panic=abort`.
pub fn freestanding_cargo(subcommand: &str, package: &str, features: &[&str]) -> Command {
    let rustflags = match (package, subcommand) {
        ("lucid-kernel", "rustc") => format!("{COMMON_FLAGS} -C code-model=kernel"),
        ("lucid-kernel", _) => format!("{COMMON_FLAGS} {ABORT} -C code-model=kernel"),
        _ => format!("{COMMON_FLAGS} {ABORT}"),
    };
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root())
        .args([
            subcommand,
            "--release",
            "--package",
            package,
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(package_dir(package, features))
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", rustflags);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd
}

fn build_bin(package: &str, features: &[&str]) -> Result<PathBuf> {
    let mut cmd = match package {
        "lucid-kernel" => {
            let mut cmd = freestanding_cargo("rustc", package, features);
            cmd.args(["--bin", package, "--", "-C", ABORT_STRATEGY]);
            cmd
        }
        _ => freestanding_cargo("build", package, features),
    };
    process::run(&mut cmd)?;
    Ok(package_dir(package, features)
        .join(TARGET)
        .join("release")
        .join(package))
}

/// The target dir of one freestanding package build (the test kernel has its own, so
/// switching between the two does not rebuild the kernel crate each time).
fn package_dir(package: &str, features: &[&str]) -> PathBuf {
    if features.contains(&"ktest") {
        freestanding_dir().join(format!("{package}-ktest"))
    } else {
        freestanding_dir().join(package)
    }
}

/// Flags shared by both freestanding binaries.
const COMMON_FLAGS: &str = "-C relocation-model=static -C no-redzone=y -C force-frame-pointers=yes";
/// The panic strategy of the loader, of the kernel's binary shim, and of every
/// crate when nothing is generated (see [`freestanding_cargo`]).
const ABORT_STRATEGY: &str = "panic=abort";
const ABORT: &str = "-C panic=abort";

/// Builds the loader, the kernel (`variant`) and the boot archive with the
/// manifest's guests.
pub fn build(variant: Variant) -> Result<BootImage> {
    build_with(variant, &[])
}

/// [`build`], with the user's own modules (`--wasm` specs, see
/// `lucid-guests --help`) added to the bundle. The bundle is built first, so a
/// module that Lucid cannot run is refused before anything else is built.
pub fn build_with(variant: Variant, modules: &[String]) -> Result<BootImage> {
    let bundle = guest_bundle(modules)?;
    let loader = build_bin("lucid-loader", &[])?;
    let features: &[&str] = match variant {
        Variant::Normal => &[],
        Variant::Ktest => &["ktest"],
    };
    let built = build_bin("lucid-kernel", features)?;
    // The ktest and normal kernels share a target dir; keep each under its own name.
    let suffix = match variant {
        Variant::Normal => "",
        Variant::Ktest => "-ktest",
    };
    let kernel = freestanding_dir().join(format!("lucid-kernel{suffix}.elf"));
    std::fs::copy(&built, &kernel).with_context(|| format!("copy {}", built.display()))?;
    let kernel_bytes = std::fs::read(&kernel).with_context(|| format!("read {}", kernel.display()))?;
    let bundle_bytes = std::fs::read(&bundle).with_context(|| format!("read {}", bundle.display()))?;
    let archive_bytes = lucid_boot_api::archive::build(&[
        (lucid_boot_api::archive::KERNEL_ENTRY, &kernel_bytes),
        (GUEST_BUNDLE_ENTRY, &bundle_bytes),
    ]);
    // An archive with the user's modules has its own name, so it never stands in
    // for the plain one another run or test boots.
    let user = if modules.is_empty() { "" } else { "-user" };
    let archive = freestanding_dir().join(format!("boot{suffix}{user}.img"));
    std::fs::write(&archive, archive_bytes).with_context(|| format!("write {}", archive.display()))?;
    Ok(BootImage {
        loader,
        kernel,
        archive,
        bundle,
    })
}

/// The boot archive entry of the guest bundle (`lucid_wasm::bundle::ARCHIVE_ENTRY`;
/// xtask does not link wasmtime, so the name is repeated here and checked by a test).
pub const GUEST_BUNDLE_ENTRY: &str = "wasm";

/// Compiles the guests into the boot bundle: the Rust and C ones to wasm with the
/// wasm32-wasi toolchains, then every module (WAT, those, and the user's
/// `modules`) with the host precompiler (`kernel/guests`, Cranelift with the
/// kernel's engine settings).
pub fn guest_bundle(modules: &[String]) -> Result<PathBuf> {
    let out = freestanding_dir().join(if modules.is_empty() {
        "guests.bundle"
    } else {
        "guests-user.bundle"
    });
    std::fs::create_dir_all(freestanding_dir()).context("create the freestanding dir")?;
    let compiled = crate::guest_toolchain::compile_guests(&freestanding_dir().join("guests-wasm"))?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root())
        .args(["run", "--quiet", "--package", "lucid-guests", "--"])
        .arg(&out)
        .arg("--compiled")
        .arg(&compiled);
    for m in modules {
        cmd.arg("--wasm").arg(m);
    }
    process::run(&mut cmd)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundle_entry_name_matches_the_kernel() {
        let bundle_rs = include_str!("../../kernel/wasm/src/bundle.rs");
        let decl = format!("pub const ARCHIVE_ENTRY: &str = \"{}\";", super::GUEST_BUNDLE_ENTRY);
        assert!(
            bundle_rs.contains(&decl),
            "kernel/wasm/src/bundle.rs must declare {decl}"
        );
    }
}
