//! `cargo xtask build`.

use anyhow::Result;

use crate::artifacts::{self, Variant};

/// Options of `cargo xtask build`.
#[derive(clap::Args)]
pub struct Args {
    /// Build the kernel with the in-QEMU test runner.
    #[arg(long)]
    ktest: bool,
}

pub fn main(args: Args) -> Result<()> {
    let image = artifacts::build(if args.ktest { Variant::Ktest } else { Variant::Normal })?;
    println!("loader:  {}", image.loader.display());
    println!("kernel:  {}", image.kernel.display());
    println!("archive: {}", image.archive.display());
    println!("guests:  {}", image.bundle.display());
    Ok(())
}
