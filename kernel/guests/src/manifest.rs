//! `manifest.toml`: one `[[guest]]` table per module.

use anyhow::bail;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "guest")]
    pub guests: Vec<Guest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guest {
    /// Module name; its source is `wat/<name>.wat`.
    pub name: String,
    /// Exported entry function.
    #[serde(default = "default_entry")]
    pub entry: String,
    /// How its time on a CPU is limited: `"timer"` (no checks in its code; the
    /// default) or `"fuel"` (the default when it has a `fuel_budget`).
    #[serde(default)]
    pub preempt: Option<Preempt>,
    /// Microseconds of CPU per time slice (with timer preemption).
    #[serde(default = "default_slice_us")]
    pub slice_us: u64,
    /// Fuel per time slice (with fuel metering).
    #[serde(default = "default_slice")]
    pub fuel_per_slice: u64,
    /// Lifetime fuel budget (0 = unlimited).
    #[serde(default)]
    pub fuel_budget: u64,
    /// Largest linear memory, in 64 KiB pages.
    #[serde(default = "default_pages")]
    pub max_memory_pages: u32,
    /// Kernel memory, in bytes, the instance and the instances it spawns may hold
    /// through hostcalls.
    #[serde(default = "default_kernel_memory_budget")]
    pub kernel_memory_budget: u64,
    /// Start at boot.
    #[serde(default)]
    pub autostart: bool,
    /// WASI arguments after the program name (`argv[0]` is the module name).
    #[serde(default)]
    pub args: Vec<String>,
    /// WASI environment, `KEY=VALUE` strings.
    #[serde(default)]
    pub env: Vec<String>,
}

/// A manifest's `preempt` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preempt {
    /// By the kernel's timer.
    Timer,
    /// By fuel.
    Fuel,
}

impl Preempt {
    /// Parses a `--wasm` setting's value.
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "timer" => Some(Self::Timer),
            "fuel" => Some(Self::Fuel),
            _ => None,
        }
    }
}

impl Guest {
    /// A guest with the manifest's defaults (entry from its exports: empty).
    pub fn new(name: String) -> Self {
        Self {
            name,
            entry: String::new(),
            preempt: None,
            slice_us: default_slice_us(),
            fuel_per_slice: default_slice(),
            fuel_budget: 0,
            max_memory_pages: default_pages(),
            kernel_memory_budget: default_kernel_memory_budget(),
            autostart: false,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// How it is metered: as `preempt` says, else by fuel when it has a fuel
    /// budget (only fuel can count one), else by the timer.
    ///
    /// # Errors
    /// `preempt = "timer"` with a fuel budget.
    pub fn metering(&self) -> anyhow::Result<lucid_wasm::Metering> {
        use lucid_wasm::Metering;
        match (self.preempt, self.fuel_budget) {
            (Some(Preempt::Timer), b) if b > 0 => {
                bail!("guest {:?}: a fuel_budget needs preempt = \"fuel\"", self.name)
            }
            (Some(Preempt::Timer), _) | (None, 0) => Ok(Metering::Timer),
            (Some(Preempt::Fuel), _) | (None, _) => Ok(Metering::Fuel),
        }
    }

    /// Its WASI argument blob: the module name, then [`Guest::args`], and
    /// [`Guest::env`].
    pub fn args_blob(&self) -> anyhow::Result<Vec<u8>> {
        let args: Vec<&str> = std::iter::once(self.name.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect();
        let env: Vec<&str> = self.env.iter().map(String::as_str).collect();
        lucid_wasm::wasi::encode(&args, &env).map_err(|e| anyhow::anyhow!("guest {:?}: {e}", self.name))
    }
}

fn default_entry() -> String {
    "main".into()
}

fn default_slice_us() -> u64 {
    lucid_wasm::DEFAULT_SLICE_US
}

fn default_slice() -> u64 {
    200_000
}

fn default_pages() -> u32 {
    16
}

fn default_kernel_memory_budget() -> u64 {
    lucid_wasm::DEFAULT_KERNEL_MEMORY_BUDGET
}

pub fn parse(text: &str) -> anyhow::Result<Manifest> {
    let m: Manifest = toml::from_str(text)?;
    for (i, g) in m.guests.iter().enumerate() {
        if m.guests[..i].iter().any(|o| o.name == g.name) {
            bail!("guest {:?} is listed twice", g.name);
        }
        if g.fuel_per_slice == 0 {
            bail!("guest {:?}: fuel_per_slice must be positive", g.name);
        }
        if g.slice_us == 0 {
            bail!("guest {:?}: slice_us must be positive", g.name);
        }
        if g.kernel_memory_budget == 0 {
            bail!("guest {:?}: kernel_memory_budget must be positive", g.name);
        }
        g.metering()?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let m = parse("[[guest]]\nname = \"a\"\n").expect("minimal");
        assert_eq!(m.guests[0].entry, "main");
        assert!(!m.guests[0].autostart);
        assert_eq!(m.guests[0].kernel_memory_budget, 1024 * 1024);
        assert!(parse("[[guest]]\nname = \"a\"\nkernel_memory_budget = 0\n").is_err());
        let m = parse("[[guest]]\nname = \"a\"\nkernel_memory_budget = 65536\n").expect("budget");
        assert_eq!(m.guests[0].kernel_memory_budget, 65536);
        assert!(parse("[[guest]]\nname = \"a\"\n[[guest]]\nname = \"a\"\n").is_err());
        assert!(parse("[[guest]]\nname = \"a\"\nfuel_per_slice = 0\n").is_err());
        assert!(parse("[[guest]]\nname = \"a\"\ncolour = 1\n").is_err());
        assert!(parse("[[guest]]\nname = \"a\"\nslice_us = 0\n").is_err());
        assert_eq!(m.guests[0].slice_us, lucid_wasm::DEFAULT_SLICE_US);
        use lucid_wasm::Metering;
        assert_eq!(m.guests[0].metering().ok(), Some(Metering::Timer));
        let fuel = parse("[[guest]]\nname = \"a\"\nfuel_budget = 9\n").expect("budget");
        assert_eq!(fuel.guests[0].metering().ok(), Some(Metering::Fuel));
        assert!(parse("[[guest]]\nname = \"a\"\nfuel_budget = 9\npreempt = \"timer\"\n").is_err());
        assert!(parse("[[guest]]\nname = \"a\"\npreempt = \"sometimes\"\n").is_err());
    }
}
