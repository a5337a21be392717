//! The `lucid` import module guests call, and the trap codes the kernel reports.
//! The numbers are on the wire (`WasmHostcalls::hostcall`, `WasmTrap::code`), so
//! they never change meaning; new ones are added at the end.

/// The import module name.
pub const MODULE: &str = "lucid";

macro_rules! hostcalls {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $import:literal;)*) => {
        /// One `lucid` import.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Hostcall { $($(#[$doc])* $name = $num,)* }

        impl Hostcall {
            /// Every hostcall, in number order.
            pub const ALL: &'static [Hostcall] = &[$(Hostcall::$name,)*];

            /// The import's field name.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self { $(Hostcall::$name => $import,)* }
            }

            /// The hostcall with this wire number.
            #[must_use]
            pub const fn from_u32(n: u32) -> Option<Self> {
                match n { $($num => Some(Hostcall::$name),)* _ => None }
            }
        }
    };
}

hostcalls! {
    /// `log(ptr: i32, len: i32, level: i32)`: a UTF-8 message at a level
    /// (0 trace … 4 error) into the kernel's log and trace. At most
    /// [`MAX_LOG_LEN`] bytes are logged (a longer message is cut and marked);
    /// control characters, newlines and backslashes are escaped, so a message is
    /// always one line that cannot pass for a kernel line. Costs
    /// [`LOG_FUEL`] + [`FUEL_PER_BYTE`] per logged byte.
    Log = 0, "log";
    /// `now() -> i64`: nanoseconds since boot.
    Now = 1, "now";
    /// `sleep(ns: i64)`: block this instance's task for at least `ns`.
    Sleep = 2, "sleep";
    /// `yield()`: end this slice; other tasks run first.
    Yield = 3, "yield";
    /// `chan_create() -> i32`: a new channel; returns its handle, -1 when the
    /// instance holds its maximum of handles, [`ERR_NO_MEMORY`] when the instance
    /// tree's kernel memory budget refuses the channel.
    ChanCreate = 4, "chan_create";
    /// `chan_send(handle: i32, ptr: i32, len: i32) -> i32`: queue a copy of the
    /// bytes; blocks while the channel is full. 0 on success, -1 if every receiver
    /// is gone, [`ERR_NO_MEMORY`] when the sender's instance tree's kernel memory
    /// budget refuses the copy (nothing was queued; receiving frees budget).
    ChanSend = 5, "chan_send";
    /// `chan_recv(handle: i32, ptr: i32, cap: i32) -> i32`: the next message's
    /// length, its first `cap` bytes copied to `ptr`; blocks while empty; -1 if
    /// every sender is gone.
    ChanRecv = 6, "chan_recv";
    /// `spawn(name_ptr: i32, name_len: i32) -> i64`: start another module of the
    /// boot bundle in the caller's instance tree; it receives copies of the
    /// caller's handles. Returns the new instance id; -1 if there is no such
    /// module (names are at most 32 bytes), [`ERR_NO_MEMORY`] when the tree's
    /// kernel memory budget refuses the child, [`ERR_LIMIT`] when the tree has
    /// [`MAX_TREE_INSTANCES`] live instances or the kernel its maximum. Costs
    /// [`SPAWN_FUEL`] + [`FUEL_PER_BYTE`] per name byte.
    Spawn = 7, "spawn";
    /// `exit(code: i32)`: end this instance with an exit code.
    Exit = 8, "exit";
    /// WASI `args_get` (the functions from here on are imported from
    /// [`crate::wasi::MODULE`]; see [`Hostcall::module`]).
    ArgsGet = 9, "args_get";
    /// WASI `args_sizes_get`.
    ArgsSizesGet = 10, "args_sizes_get";
    /// WASI `environ_get`.
    EnvironGet = 11, "environ_get";
    /// WASI `environ_sizes_get`.
    EnvironSizesGet = 12, "environ_sizes_get";
    /// WASI `clock_res_get`.
    ClockResGet = 13, "clock_res_get";
    /// WASI `clock_time_get`.
    ClockTimeGet = 14, "clock_time_get";
    /// WASI `fd_write` (stdout and stderr: lines to the kernel log and trace).
    FdWrite = 15, "fd_write";
    /// WASI `fd_read` (stdin is at its end).
    FdRead = 16, "fd_read";
    /// WASI `fd_fdstat_get`.
    FdFdstatGet = 17, "fd_fdstat_get";
    /// WASI `fd_close`.
    FdClose = 18, "fd_close";
    /// WASI `fd_seek` (stdio is not seekable).
    FdSeek = 19, "fd_seek";
    /// WASI `fd_prestat_get` (there are no preopened directories).
    FdPrestatGet = 20, "fd_prestat_get";
    /// WASI `fd_prestat_dir_name`.
    FdPrestatDirName = 21, "fd_prestat_dir_name";
    /// WASI `poll_oneoff` (clock subscriptions suspend the task).
    PollOneoff = 22, "poll_oneoff";
    /// WASI `sched_yield`.
    SchedYield = 23, "sched_yield";
    /// WASI `random_get`.
    RandomGet = 24, "random_get";
    /// WASI `proc_exit`.
    ProcExit = 25, "proc_exit";
    /// Any other WASI function (each returns `ENOSYS`).
    WasiUnsupported = 26, "wasi_unsupported";
}

impl Hostcall {
    /// The first WASI function's number.
    const FIRST_WASI: u32 = Hostcall::ArgsGet as u32;

    /// The import module that offers it: [`MODULE`] or [`crate::wasi::MODULE`].
    #[must_use]
    pub const fn module(self) -> &'static str {
        if (self as u32) < Self::FIRST_WASI {
            MODULE
        } else {
            crate::wasi::MODULE
        }
    }

    /// A `lucid` import's parameter and result types (`i` = i32, `I` = i64), as
    /// documented on each variant; `None` for the WASI functions (see
    /// [`crate::wasi::signature`]).
    #[must_use]
    pub const fn lucid_signature(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::Log => ("iii", ""),
            Self::Now => ("", "I"),
            Self::Sleep => ("I", ""),
            Self::Yield => ("", ""),
            Self::ChanCreate => ("", "i"),
            Self::ChanSend | Self::ChanRecv => ("iii", "i"),
            Self::Spawn => ("ii", "I"),
            Self::Exit => ("i", ""),
            _ => return None,
        })
    }

    /// The `lucid` import called `name`.
    #[must_use]
    pub fn lucid(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|h| h.module() == MODULE && h.name() == name)
    }
}

/// Result of `chan_create`, `chan_send` or `spawn` when the instance tree's
/// kernel memory budget (or the kernel heap itself) refuses the allocation.
pub const ERR_NO_MEMORY: i32 = -2;
/// Result of `spawn` when the instance tree or the kernel has its maximum of
/// live instances.
pub const ERR_LIMIT: i32 = -3;
/// Bytes of one `log` message that reach the log; the rest is cut.
pub const MAX_LOG_LEN: usize = 1024;
/// Live instances one instance tree (an instance the kernel started and every
/// instance spawned under it) may have, itself included.
pub const MAX_TREE_INSTANCES: usize = 16;
/// Fuel a `log` call costs besides its bytes.
pub const LOG_FUEL: u64 = 1_000;
/// Fuel a `spawn` call costs besides its name's bytes.
pub const SPAWN_FUEL: u64 = 50_000;
/// Fuel per byte of a logged message or a spawned name.
pub const FUEL_PER_BYTE: u64 = 100;
/// Refusals of one kind an instance may be given before the kernel kills it: a
/// guest that keeps calling after [`ERR_NO_MEMORY`] ends `killed(memory)`, after
/// [`ERR_LIMIT`] `killed(instances)`, and one whose `log` lines keep being dropped
/// for its log rate `killed(log)`.
pub const MAX_REFUSALS: u32 = 64;
/// Bytes of `log` text per second one instance may log on average; up to
/// [`LOG_BURST`] more at once. A line beyond the rate is dropped (and counts toward
/// [`MAX_REFUSALS`]).
pub const LOG_BYTES_PER_S: u64 = 64 * 1024;
/// Bytes of `log` text one instance may log at once above [`LOG_BYTES_PER_S`].
pub const LOG_BURST: u64 = 256 * 1024;
/// What one `log` line counts against the rate besides its bytes (so empty lines
/// are not free).
pub const LOG_LINE_BYTES: u64 = 64;

/// Why the kernel killed an instance (the detail of its `Killed` state; names as in
/// `lucid_protocol::WASM_KILL_REASON_NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KillReason {
    /// Its task was cancelled from outside.
    Cancelled = 0,
    /// It used its whole fuel budget.
    Fuel = 1,
    /// It kept calling after its tree's kernel memory budget refused it.
    Memory = 2,
    /// It kept spawning after its tree or the kernel was at the instance limit.
    Instances = 3,
    /// It kept logging after its log rate dropped its lines.
    Log = 4,
}

impl KillReason {
    /// Every reason, in number order.
    pub const ALL: &'static [KillReason] = &[
        KillReason::Cancelled,
        KillReason::Fuel,
        KillReason::Memory,
        KillReason::Instances,
        KillReason::Log,
    ];

    /// Stable snake_case name (`killed(memory)`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            KillReason::Cancelled => "cancelled",
            KillReason::Fuel => "fuel",
            KillReason::Memory => "memory",
            KillReason::Instances => "instances",
            KillReason::Log => "log",
        }
    }
}

macro_rules! trap_codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $text:literal;)*) => {
        /// Why an instance stopped abnormally.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum TrapCode { $($(#[$doc])* $name = $num,)* }

        impl TrapCode {
            /// Every code, in number order.
            pub const ALL: &'static [TrapCode] = &[$(TrapCode::$name,)*];

            /// Stable snake_case name (metrics labels, JSON).
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self { $(TrapCode::$name => $text,)* }
            }

            /// The code with this wire number.
            #[must_use]
            pub const fn from_u32(n: u32) -> Option<Self> {
                match n { $($num => Some(TrapCode::$name),)* _ => None }
            }
        }
    };
}

trap_codes! {
    /// The guest used more than its native stack allowance.
    StackOverflow = 0, "stack_overflow";
    /// A load or store outside linear memory.
    MemoryOutOfBounds = 1, "memory_out_of_bounds";
    /// A misaligned atomic access.
    HeapMisaligned = 2, "heap_misaligned";
    /// A table access out of bounds (including `call_indirect` past the end).
    TableOutOfBounds = 3, "table_out_of_bounds";
    /// `call_indirect` on an undefined (null) table element.
    IndirectCallToNull = 4, "indirect_call_to_null";
    /// `call_indirect` with a signature mismatch.
    BadSignature = 5, "bad_signature";
    /// Integer overflow (`INT_MIN / -1`).
    IntegerOverflow = 6, "integer_overflow";
    /// Integer division or remainder by zero.
    IntegerDivisionByZero = 7, "integer_division_by_zero";
    /// A float-to-int conversion out of range.
    BadConversionToInteger = 8, "bad_conversion_to_integer";
    /// `unreachable` was executed.
    UnreachableCodeReached = 9, "unreachable";
    /// The instance used its whole fuel budget (killed).
    OutOfFuel = 10, "out_of_fuel";
    /// A hostcall was given a pointer/length outside linear memory.
    HostcallBadPointer = 11, "hostcall_bad_pointer";
    /// A hostcall named a handle the instance does not hold.
    HostcallBadHandle = 12, "hostcall_bad_handle";
    /// A hostcall argument was invalid (e.g. not UTF-8, negative length).
    HostcallBadArgument = 13, "hostcall_bad_argument";
    /// A resource limit refused a growth or instantiation.
    ResourceLimit = 14, "resource_limit";
    /// Anything else (the reason string says what).
    Other = 15, "other";
}

#[cfg(feature = "runtime")]
impl TrapCode {
    /// The code for a wasmtime trap.
    #[must_use]
    pub fn from_trap(trap: wasmtime::Trap) -> Self {
        use wasmtime::Trap as T;
        match trap {
            T::StackOverflow => Self::StackOverflow,
            T::MemoryOutOfBounds => Self::MemoryOutOfBounds,
            T::HeapMisaligned => Self::HeapMisaligned,
            T::TableOutOfBounds => Self::TableOutOfBounds,
            T::IndirectCallToNull => Self::IndirectCallToNull,
            T::BadSignature => Self::BadSignature,
            T::IntegerOverflow => Self::IntegerOverflow,
            T::IntegerDivisionByZero => Self::IntegerDivisionByZero,
            T::BadConversionToInteger => Self::BadConversionToInteger,
            T::UnreachableCodeReached => Self::UnreachableCodeReached,
            T::OutOfFuel => Self::OutOfFuel,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for &h in Hostcall::ALL {
            assert_eq!(Hostcall::from_u32(h as u32), Some(h));
        }
        for &t in TrapCode::ALL {
            assert_eq!(TrapCode::from_u32(t as u32), Some(t));
        }
        assert_eq!(Hostcall::from_u32(Hostcall::ALL.len() as u32), None);
        assert_eq!(Hostcall::lucid("exit"), Some(Hostcall::Exit));
        assert_eq!(
            Hostcall::lucid("fd_write"),
            None,
            "a WASI function is not a lucid import"
        );
        for h in Hostcall::ALL.iter().filter(|h| h.module() == crate::wasi::MODULE) {
            assert!(
                *h == Hostcall::WasiUnsupported || crate::wasi::signature(h.name()).is_some(),
                "{h:?} is not a WASI function"
            );
        }
        assert_eq!(TrapCode::from_u32(TrapCode::ALL.len() as u32), None);
    }

    #[test]
    fn names_match_the_protocol() {
        let ours: Vec<_> = Hostcall::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(ours, lucid_protocol::WASM_HOSTCALL_NAMES);
        let ours: Vec<_> = TrapCode::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(ours, lucid_protocol::WASM_TRAP_NAMES);
        let ours: Vec<_> = KillReason::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(ours, lucid_protocol::WASM_KILL_REASON_NAMES);
        for (n, &k) in KillReason::ALL.iter().enumerate() {
            assert_eq!(k as usize, n);
        }
    }

    #[cfg(feature = "runtime")]
    #[test]
    fn wasmtime_traps_map_to_their_codes() {
        assert_eq!(
            TrapCode::from_trap(wasmtime::Trap::IntegerOverflow),
            TrapCode::IntegerOverflow
        );
        assert_eq!(TrapCode::from_trap(wasmtime::Trap::OutOfFuel), TrapCode::OutOfFuel);
        assert_eq!(TrapCode::from_trap(wasmtime::Trap::Interrupt), TrapCode::Other);
    }
}
