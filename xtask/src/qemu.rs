//! `cargo xtask qemu`: like `run`, optionally halted for gdb.

use anyhow::Result;

use crate::run;

/// Options of `cargo xtask qemu`.
#[derive(clap::Args)]
pub struct Args {
    /// Start halted and wait for gdb on localhost:1234 (`-s -S`).
    #[arg(long)]
    gdb: bool,
    #[command(flatten)]
    run: run::Args,
}

pub fn main(args: Args) -> Result<()> {
    run::boot(args.run, args.gdb)
}
