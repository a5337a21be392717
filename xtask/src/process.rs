//! Running commands: each is printed before it runs.

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

/// Prints `cmd` like a shell would show it.
pub fn show(cmd: &Command) {
    let mut line = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            line.push_str(&format!(
                "{}={} ",
                k.to_string_lossy(),
                shell_quote(&v.to_string_lossy())
            ));
        }
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(&a.to_string_lossy()));
    }
    eprintln!("$ {line}");
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs `cmd` to completion; an unsuccessful exit is an error.
pub fn run(cmd: &mut Command) -> Result<()> {
    show(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed: {status}", cmd.get_program());
    }
    Ok(())
}

/// The workspace root (xtask lives one level below it).
///
/// Read from `cargo run`'s `CARGO_MANIFEST_DIR` at run time, not compile time: with a
/// target dir shared between clones, cargo can reuse an xtask binary built in another
/// clone, whose compile-time path may name a checkout that is gone or stale.
pub fn workspace_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        manifest_dir
            .parent()
            .expect("xtask sits inside the workspace")
            .to_path_buf()
    })
}

/// Makes sure `program` is on PATH, installing the Debian `package` that has it with
/// `apt-get` (through `sudo` when not root) if it is missing.
pub fn ensure_installed(program: &str, package: &str) -> Result<()> {
    if on_path(program) {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!("{program} is not installed; install it (Debian/Ubuntu: {package})");
    }
    eprintln!("{program} is missing: installing Debian's {package} with apt-get");
    apt_install(&[package])?;
    if !on_path(program) {
        bail!("installed {package} but {program} is still not on PATH");
    }
    Ok(())
}

/// Makes sure the Debian `packages` that make up `what` are installed (`installed`
/// says whether they are), installing them with apt-get (through `sudo` when not
/// root) if not.
pub fn ensure_packages(what: &str, installed: impl Fn() -> bool, packages: &[&str]) -> Result<()> {
    if installed() {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!(
            "{what} is not installed; install it (Debian/Ubuntu: {})",
            packages.join(" ")
        );
    }
    eprintln!(
        "{what} is missing: installing Debian's {} with apt-get",
        packages.join(" ")
    );
    apt_install(packages)?;
    if !installed() {
        bail!("installed {} but {what} is still incomplete", packages.join(" "));
    }
    Ok(())
}

/// `apt-get update`, then `apt-get install` of `packages` without recommends (through
/// `sudo` when not root).
fn apt_install(packages: &[&str]) -> Result<()> {
    let sudo = !is_root() && on_path("sudo");
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install)
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
}

/// True when `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
