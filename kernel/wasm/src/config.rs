//! The one wasmtime [`Config`] both sides build: the host precompiler (Cranelift) and
//! the kernel (runtime only). A `.cwasm` deserialises only into an engine whose
//! target, ISA flags, tunables and wasm features match the compiling engine's, so
//! every such setting lives in [`SETTINGS`] and nowhere else.

use core::fmt::{self, Write as _};

use wasmtime::Config;

/// The target both sides name explicitly. The kernel is a freestanding ELF built for
/// the host triple; naming the target also stops Cranelift from enabling whatever
/// the build machine's CPU has (a `.cwasm` with, say, AVX-VNNI would be refused on
/// a QEMU CPU without it).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Bytes of native stack a guest may use. The fiber stacks the kernel hands
/// wasmtime are [`ASYNC_STACK_SIZE`] with a guard page below; wasmtime's prologue
/// check traps at this depth, long before the guard page.
pub const MAX_WASM_STACK: usize = 256 * 1024;

/// Bytes of every instance's fiber stack (above its guard page).
pub const ASYNC_STACK_SIZE: usize = 512 * 1024;

/// The wasmtime version the kernel links and the precompiler uses (pinned with `=`
/// in the workspace manifest; a test checks the two agree).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Every engine setting that decides whether a `.cwasm` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Target triple.
    pub target: &'static str,
    /// Bytes of address space reserved per linear memory.
    pub memory_reservation: u64,
    /// Bytes of guard after each linear memory.
    pub memory_guard_size: u64,
    /// Fuel metering in the engine for guests preempted by fuel ([`Metering::Fuel`];
    /// the other engine never meters).
    pub consume_fuel: bool,
    /// Native stack a guest may use.
    pub max_wasm_stack: usize,
    /// The SIMD proposal (needs SSE4.1 in Cranelift; the baseline target lacks it).
    pub simd: bool,
    /// The bulk-memory proposal.
    pub bulk_memory: bool,
    /// The multi-value proposal.
    pub multi_value: bool,
}

/// The settings both sides apply.
///
/// Each linear memory is a 4 GiB reservation of kernel address space followed by a
/// 32 MiB guard, of which only the accessible pages are mapped; the memory never
/// moves. A 32-bit index plus any static offset below the guard's size therefore
/// lands in that reservation, so generated code checks no bounds: an access beyond
/// the accessible pages page-faults, and the kernel's fault handler hands faults
/// at wasm trap sites (with `ud2` and divide errors) to wasmtime, which turns them
/// into traps (`signals_based_traps(true)`; the kernel side is `wasm::traps` and
/// `wasm::vm`). Guests are preempted by the kernel's timer ([`Metering::Timer`]:
/// no check in the generated code at all) unless they need a fuel budget
/// ([`Metering::Fuel`]: a fuel check in every loop and function).
pub const SETTINGS: Settings = Settings {
    target: TARGET,
    memory_reservation: 1 << 32,
    memory_guard_size: 32 << 20,
    consume_fuel: true,
    max_wasm_stack: MAX_WASM_STACK,
    simd: false,
    bulk_memory: true,
    multi_value: true,
};

/// How a guest's time on a CPU is limited, which decides the engine that compiles
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metering {
    /// The kernel's timer interrupt suspends the guest wherever it is when its
    /// slice is over; its code carries no checks. The default.
    Timer,
    /// Fuel checks compiled into the code yield after `fuel_per_slice` and kill the
    /// guest at its `fuel_budget`: for guests with a lifetime budget in operators.
    Fuel,
}

/// Applies [`SETTINGS`] (and the fixed choices that follow from them) for guests
/// metered by `metering`.
///
/// # Errors
/// If wasmtime rejects [`TARGET`] (it does not for this build).
pub fn configure(config: &mut Config, metering: Metering) -> wasmtime::Result<&mut Config> {
    let s = SETTINGS;
    config.target(s.target)?;
    config
        .signals_based_traps(true)
        .memory_reservation(s.memory_reservation)
        .memory_reservation_for_growth(0)
        .memory_guard_size(s.memory_guard_size)
        .guard_before_linear_memory(false)
        .memory_init_cow(false)
        .memory_may_move(false)
        .consume_fuel(s.consume_fuel && metering == Metering::Fuel)
        .epoch_interruption(false)
        .max_wasm_stack(s.max_wasm_stack)
        .wasm_simd(s.simd)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_tail_call(false)
        .wasm_bulk_memory(s.bulk_memory)
        .wasm_multi_value(s.multi_value);
    #[cfg(feature = "compiler")]
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    Ok(config)
}

/// A fingerprint of [`WASMTIME_VERSION`] and [`SETTINGS`], stored in every bundle, so
/// a bundle from another precompiler is refused by name before wasmtime's own (more
/// cryptic) compatibility check runs.
#[must_use]
pub fn fingerprint() -> u64 {
    let mut hash = Fnv1a(0xcbf2_9ce4_8422_2325);
    // Writing into a hasher cannot fail.
    let _ = write!(
        hash,
        "wasmtime {WASMTIME_VERSION}; {SETTINGS:?}; timer-metered guests without fuel"
    );
    hash.0
}

struct Fnv1a(u64);

impl fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_accepts_the_shared_settings() {
        for metering in [Metering::Timer, Metering::Fuel] {
            let mut config = Config::new();
            configure(&mut config, metering).expect("shared config");
            #[cfg(feature = "compiler")]
            wasmtime::Engine::new(&config).expect("engine from the shared config");
        }
    }

    #[test]
    fn fingerprint_changes_with_any_setting() {
        let base = fingerprint();
        let mut other = Fnv1a(0xcbf2_9ce4_8422_2325);
        let changed = Settings {
            max_wasm_stack: MAX_WASM_STACK + 1,
            ..SETTINGS
        };
        let _ = write!(other, "wasmtime {WASMTIME_VERSION}; {changed:?}");
        assert_ne!(base, other.0);
    }

    #[test]
    fn pinned_version_matches_the_workspace_manifest() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("wasmtime = {{ version = \"={WASMTIME_VERSION}\"");
        assert!(manifest.contains(&pin), "workspace manifest must pin {pin}");
    }
}
