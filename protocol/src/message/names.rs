//! Names of the numbers some messages carry (hostcalls, trap codes).

#[cfg(feature = "std")]
use std::borrow::Cow;

/// Names of the wasm hostcall numbers in [`Message::WasmHostcalls`] (the kernel's
/// `lucid` import module, then the WASI preview 1 functions it implements and one
/// number for every WASI function it does not, in number order).
pub const WASM_HOSTCALL_NAMES: [&str; 27] = [
    "log",
    "now",
    "sleep",
    "yield",
    "chan_create",
    "chan_send",
    "chan_recv",
    "spawn",
    "exit",
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_write",
    "fd_read",
    "fd_fdstat_get",
    "fd_close",
    "fd_seek",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "poll_oneoff",
    "sched_yield",
    "random_get",
    "proc_exit",
    "wasi_unsupported",
];

/// Names of the trap codes in [`WasmTrap::code`], in number order.
pub const WASM_TRAP_NAMES: [&str; 16] = [
    "stack_overflow",
    "memory_out_of_bounds",
    "heap_misaligned",
    "table_out_of_bounds",
    "indirect_call_to_null",
    "bad_signature",
    "integer_overflow",
    "integer_division_by_zero",
    "bad_conversion_to_integer",
    "unreachable",
    "out_of_fuel",
    "hostcall_bad_pointer",
    "hostcall_bad_handle",
    "hostcall_bad_argument",
    "resource_limit",
    "other",
];

/// Why the kernel killed a wasm instance: the detail of [`WasmState::Killed`], in
/// number order (0: its task was cancelled from outside; 1: its fuel budget ran out;
/// 2: it kept calling over its kernel memory budget; 3: it kept spawning at its
/// instance limit; 4: it kept logging past its log rate).
///
/// [`WasmState::Killed`]: crate::WasmState::Killed
pub const WASM_KILL_REASON_NAMES: [&str; 5] = ["cancelled", "fuel", "memory", "instances", "log"];

/// The name of a hostcall number (`"hostcall#N"` for one this build does not know).
#[cfg(feature = "std")]
#[must_use]
pub fn wasm_hostcall_name(n: u32) -> Cow<'static, str> {
    name_in(&WASM_HOSTCALL_NAMES, "hostcall", n)
}

/// The name of a trap code (`"trap#N"` for one this build does not know).
#[cfg(feature = "std")]
#[must_use]
pub fn wasm_trap_name(n: u32) -> Cow<'static, str> {
    name_in(&WASM_TRAP_NAMES, "trap", n)
}

/// The name of a kill reason, or `None` for a number past [`WASM_KILL_REASON_NAMES`]
/// (a kernel that sent the fuel budget there instead of a reason).
#[must_use]
pub fn wasm_kill_reason_name(n: u64) -> Option<&'static str> {
    usize::try_from(n)
        .ok()
        .and_then(|n| WASM_KILL_REASON_NAMES.get(n))
        .copied()
}

/// Entry `n` of `names`, or `"{what}#{n}"` past its end.
#[cfg(feature = "std")]
fn name_in(names: &[&'static str], what: &str, n: u32) -> Cow<'static, str> {
    match names.get(n as usize) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(format!("{what}#{n}")),
    }
}
