//! `lucid`: the host console for Lucid's trace stream.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lucid_console::source::RecordingFile;
use lucid_console::stats::{Summary, collect};

#[derive(Debug, Parser)]
#[command(name = "lucid", version, about = "Console for the Lucid kernel's trace stream")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a `.lucid` recording and print a summary.
    Stats {
        /// The recording.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Summarise what decoded before damage (truncation, corruption) instead of
        /// failing.
        #[arg(long)]
        partial: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: scripts and people both read it.
            eprintln!("lucid: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stats { file, json, partial } => stats(&file, json, partial),
    }
}

fn stats(file: &std::path::Path, json: bool, partial: bool) -> anyhow::Result<()> {
    let name = file.display();
    let mut source = RecordingFile::open(file).with_context(|| format!("{name}"))?;
    let collected = collect(&mut source);
    if !partial {
        if let Some(damage) = &collected.damage {
            bail!("{name}: {damage} (use --partial to summarise what decoded before it)");
        }
        if let Some((offset, error)) = &collected.state.first_version_error {
            bail!("{name}: stream byte offset {offset}: {error}");
        }
    }
    let summary = Summary::new(&collected);
    let text = if json {
        serde_json::to_string(&summary)? + "\n"
    } else {
        summary.to_text()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}
