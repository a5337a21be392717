//! The WebAssembly host: wasmtime without std, running guest modules from the boot
//! bundle as executor tasks.
//!
//! - [`platform`]: the C symbols no_std wasmtime needs (TLS slots, locks).
//! - `code_memory`: native code pages (RW while loading, RX once published).
//! - `stacks`: fiber stacks with guard pages, pooled.
//! - `cpu`: ISA features from CPUID, so a `.cwasm` that needs more is refused.
//! - `instance`: one instance per task, sliced by the timer or by fuel, limited,
//!   traced.
//! - [`preempt`]: suspending a guest from the timer interrupt when its slice is
//!   over.
//! - `host`: the `lucid` import module; `channel`: capabilities between instances.
//! - `wasi`: WASI preview 1 (`wasi_snapshot_preview1`) for ordinary programs.

#[cfg(not(feature = "ktest"))]
pub mod bench;
pub mod budget;
mod channel;
mod code_memory;
mod cpu;
pub(crate) mod host;
mod instance;
pub mod platform;
pub mod preempt;
mod stacks;
pub mod traps;
pub mod vm;
pub mod wasi;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use lucid_boot_api::BootInfo;
use lucid_wasm::Metering;
use lucid_wasm::bundle::{ARCHIVE_ENTRY, Bundle, BundleError, GuestEntry};
use spin::Once;
use wasmtime::{Config, Engine, Linker, Module};

pub use channel::Handles;
pub use instance::{InstanceId, InstanceStats, LiveInstance, MAX_INSTANCES, Outcome, args_message, snapshots, stats};

/// Longest function name a [`lucid_protocol::WasmFunction`] carries (bytes; one
/// record must stay well inside a control frame).
const MAX_FUNCTION_NAME: usize = 200;

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A module from the bundle, loaded.
pub struct Guest {
    /// Its manifest entry.
    pub entry: GuestEntry<'static>,
    /// The deserialised module.
    pub module: Module,
    /// Its source lines by module offset (empty without DWARF).
    pub lines: lucid_wasm::lines::LineTable<'static>,
    /// Where its functions' bodies lie in memory (start, end), by address: the
    /// only places the timer suspends it (never in a trampoline between host and
    /// guest).
    bodies: Vec<(u64, u64)>,
}

impl Guest {
    /// Whether it is metered by fuel (else preempted by the timer).
    pub fn fuel_metered(&self) -> bool {
        self.entry.metering == Metering::Fuel
    }

    /// Whether `rip` lies in the body of one of its functions.
    pub fn in_body(&self, rip: u64) -> bool {
        let i = self.bodies.partition_point(|&(start, _)| start <= rip);
        i > 0 && rip < self.bodies[i - 1].1
    }
}

impl fmt::Debug for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("name", &self.entry.name)
            .finish_non_exhaustive()
    }
}

/// The engines (one per [`Metering`]), the imports and the bundle's modules.
pub struct Runtime {
    timer_linker: Linker<instance::InstanceData>,
    fuel_linker: Linker<instance::InstanceData>,
    guests: Vec<Guest>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("guests", &self.guests)
            .finish_non_exhaustive()
    }
}

/// Why the wasm host could not start.
#[derive(Debug)]
pub enum InitError {
    /// The loader handed over no `wasm` boot module.
    NoBundle,
    /// The bundle is malformed or from another engine.
    Bundle(BundleError),
    /// wasmtime refused the engine configuration.
    Engine(String),
    /// A module would not load.
    Module {
        /// Its name.
        name: &'static str,
        /// wasmtime's reason.
        reason: String,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBundle => write!(f, "no `{ARCHIVE_ENTRY}` boot module (no guests to run)"),
            Self::Bundle(e) => write!(f, "{e}"),
            Self::Engine(e) => write!(f, "wasmtime refused the engine config: {e}"),
            Self::Module { name, reason } => write!(f, "guest module {name} does not load: {reason}"),
        }
    }
}

impl core::error::Error for InitError {}

/// Why an instance could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// The bundle has no such module.
    NoSuchModule,
    /// [`MAX_INSTANCES`] are alive.
    TooManyInstances,
    /// The instance tree has `lucid_wasm::abi::MAX_TREE_INSTANCES` live instances.
    TreeFull,
    /// The instance tree's kernel memory budget has no room for the child.
    NoMemory,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchModule => write!(f, "the boot bundle has no such module"),
            Self::TooManyInstances => write!(f, "{MAX_INSTANCES} instances are already running"),
            Self::TreeFull => write!(
                f,
                "the instance tree has {} live instances",
                lucid_wasm::abi::MAX_TREE_INSTANCES
            ),
            Self::NoMemory => write!(f, "the instance tree's kernel memory budget is used up"),
        }
    }
}

impl core::error::Error for SpawnError {}

static RUNTIME: Once<Runtime> = Once::new();

/// The wasm host, once [`init`] succeeded.
pub fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The kernel's engine for guests metered by `metering`: the shared settings plus
/// what only the kernel knows.
fn engine(metering: Metering) -> Result<Engine, InitError> {
    let mut config = Config::new();
    lucid_wasm::configure(&mut config, metering).map_err(|e| InitError::Engine(e.to_string()))?;
    // SAFETY: `cpu::detect` answers from CPUID and says "no" to anything that needs
    // state the kernel does not enable (AVX), so wasmtime only accepts code this CPU
    // can execute.
    unsafe { config.detect_host_feature(cpu::detect) };
    config
        .async_stack_size(lucid_wasm::ASYNC_STACK_SIZE)
        .with_host_stack(Arc::new(stacks::KernelStacks))
        .with_custom_code_memory(Some(Arc::new(code_memory::KernelCodeMemory)));
    Engine::new(&config).map_err(|e| InitError::Engine(e.to_string()))
}

/// Loads the bundle the loader passed as the `wasm` boot module.
pub fn init_from_boot(boot: &BootInfo) -> Result<&'static Runtime, InitError> {
    let module = boot
        .modules()
        .iter()
        .find(|m| m.name() == ARCHIVE_ENTRY)
        .ok_or(InitError::NoBundle)?;
    let virt = crate::mem::phys_to_virt(module.phys.start);
    let len = (module.phys.end - module.phys.start) as usize;
    // SAFETY: the loader reserved the module's physical range for the kernel's whole
    // life and the direct map covers it; nothing writes to it.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(virt as *const u8, len) };
    init(bytes)
}

/// Checks the bundle and loads every module in it.
pub fn init(bytes: &'static [u8]) -> Result<&'static Runtime, InitError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let bundle = Bundle::parse(bytes).map_err(InitError::Bundle)?;
    let linker = |metering| -> Result<Linker<instance::InstanceData>, InitError> {
        let mut linker = Linker::new(&engine(metering)?);
        host::define(&mut linker).map_err(|e| InitError::Engine(e.to_string()))?;
        wasi::define(&mut linker).map_err(|e| InitError::Engine(e.to_string()))?;
        Ok(linker)
    };
    let (timer_linker, fuel_linker) = (linker(Metering::Timer)?, linker(Metering::Fuel)?);
    let mut guests = Vec::with_capacity(bundle.len());
    for entry in bundle.entries() {
        let engine = match entry.metering {
            Metering::Timer => timer_linker.engine(),
            Metering::Fuel => fuel_linker.engine(),
        };
        // SAFETY: the image comes from the boot bundle, built by our precompiler
        // with this engine's settings (the fingerprint was checked above) and
        // trusted like the kernel image itself; wasmtime checks its header again.
        let module = unsafe { Module::deserialize(engine, entry.cwasm) }.map_err(|e| InitError::Module {
            name: entry.name,
            reason: e.to_string(),
        })?;
        // Checked when the bundle was parsed: an unreadable table is none.
        let lines = lucid_wasm::lines::LineTable::parse(entry.lines).unwrap_or_default();
        let base = module.text().as_ptr() as u64;
        let mut bodies: Vec<(u64, u64)> = module
            .functions()
            .map(|f| (base + f.offset as u64, base + (f.offset + f.len) as u64))
            .collect();
        bodies.sort_unstable();
        guests.push(Guest {
            entry,
            module,
            lines,
            bodies,
        });
    }
    Ok(RUNTIME.call_once(|| Runtime {
        timer_linker,
        fuel_linker,
        guests,
    }))
}

impl Runtime {
    /// The loaded modules.
    pub fn guests(&self) -> &[Guest] {
        &self.guests
    }

    /// The module called `name`.
    pub fn guest(&self, name: &str) -> Option<&Guest> {
        self.guests.iter().find(|g| g.entry.name == name)
    }

    /// The imports, for instances of `guest` (its engine's linker).
    fn linker(&self, guest: &Guest) -> &Linker<instance::InstanceData> {
        if guest.fuel_metered() {
            &self.fuel_linker
        } else {
            &self.timer_linker
        }
    }

    /// Starts an instance of `name` with no handles.
    pub fn spawn(&'static self, name: &str) -> Result<(InstanceId, lucid_executor::JoinHandle<Outcome>), SpawnError> {
        let guest = self.guest(name).ok_or(SpawnError::NoSuchModule)?;
        instance::spawn(self, guest, None)
    }

    /// Starts an instance of `name` in `parent`'s tree holding copies of its
    /// handles (a guest's `spawn`).
    pub(crate) fn spawn_child(&'static self, name: &str, parent: &Handles) -> Result<InstanceId, SpawnError> {
        let guest = self.guest(name).ok_or(SpawnError::NoSuchModule)?;
        instance::spawn(self, guest, Some(parent)).map(|(id, _)| id)
    }

    /// Starts every module marked autostart; returns how many started.
    pub fn autostart(&'static self) -> usize {
        let names: Vec<&'static str> = self
            .guests
            .iter()
            .filter(|g| g.entry.autostart)
            .map(|g| g.entry.name)
            .collect();
        names.iter().filter(|n| self.spawn(n).is_ok()).count()
    }

    /// Sends a [`lucid_protocol::WasmFunction`] for every function of every loaded
    /// module's compiled code (the code-map part of a snapshot answer), so a
    /// profiling sample in guest code names `module!function`.
    pub fn code_map(&self, mut send: impl FnMut(&lucid_protocol::Message<'_>)) {
        use core::fmt::Write;
        let mut name = String::new();
        for guest in &self.guests {
            let base = guest.module.text().as_ptr() as u64;
            for f in guest.module.functions() {
                name.clear();
                if let Some(raw) = &f.name {
                    let _ = write!(name, "{}", lucid_wasm::demangle::Demangled(raw));
                    truncate_at_char(&mut name, MAX_FUNCTION_NAME);
                }
                send(&lucid_protocol::Message::WasmFunction(lucid_protocol::WasmFunction {
                    start: base + f.offset as u64,
                    len: u32::try_from(f.len).unwrap_or(u32::MAX),
                    module: guest.entry.name,
                    index: f.index.as_u32(),
                    name: &name,
                }));
            }
        }
    }

    /// Instances alive now.
    pub fn live_instances(&self) -> usize {
        instance::LIVE.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// Instances started and ended since boot.
    pub fn started_and_ended(&self) -> (u64, u64) {
        use core::sync::atomic::Ordering::Relaxed;
        (instance::STARTED.load(Relaxed), instance::ENDED.load(Relaxed))
    }
}
