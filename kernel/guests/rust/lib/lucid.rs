//! A small safe wrapper over the kernel's `lucid` imports for Rust guests
//! (compiled by `cargo xtask build` for wasm32-wasi, outside the host workspace).
//! The raw signatures are `lucid_wasm::abi::Hostcall`'s.

mod raw {
    #[link(wasm_import_module = "lucid")]
    extern "C" {
        pub fn log(ptr: *const u8, len: i32, level: i32);
        pub fn now() -> i64;
        pub fn sleep(ns: i64);
        #[link_name = "yield"]
        pub fn yield_now();
        pub fn chan_create() -> i32;
        pub fn chan_send(handle: i32, ptr: *const u8, len: i32) -> i32;
        pub fn chan_recv(handle: i32, ptr: *mut u8, cap: i32) -> i32;
        pub fn spawn(ptr: *const u8, len: i32) -> i64;
    }
}

/// Log levels of [`log`].
#[derive(Debug, Clone, Copy)]
pub enum Level {
    /// Informational.
    Info = 2,
    /// A warning.
    Warn = 3,
}

/// Logs `text` to the kernel log and trace.
pub fn log(level: Level, text: &str) {
    // SAFETY: the pointer and length describe `text`, which outlives the call.
    unsafe { raw::log(text.as_ptr(), text.len() as i32, level as i32) }
}

/// Nanoseconds since boot.
pub fn now() -> u64 {
    // SAFETY: no arguments.
    unsafe { raw::now() as u64 }
}

/// Suspends this instance for at least `ns` nanoseconds.
pub fn sleep(ns: u64) {
    // SAFETY: plain value argument.
    unsafe { raw::sleep(ns.min(i64::MAX as u64) as i64) }
}

/// Ends this time slice.
pub fn yield_now() {
    // SAFETY: no arguments.
    unsafe { raw::yield_now() }
}

/// Why a channel operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Every peer is gone, or the instance holds its maximum of handles.
    Closed,
    /// The kernel memory budget refused it.
    NoMemory,
    /// Another refusal (its code).
    Other(i64),
}

fn error(code: i64) -> Error {
    match code {
        -1 => Error::Closed,
        -2 => Error::NoMemory,
        n => Error::Other(n),
    }
}

/// A channel handle this instance holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel(i32);

impl Channel {
    /// A new channel (its handle is the next free one, from 0 up).
    pub fn create() -> Result<Self, Error> {
        // SAFETY: no arguments.
        match unsafe { raw::chan_create() } {
            h if h >= 0 => Ok(Self(h)),
            e => Err(error(e.into())),
        }
    }

    /// The channel with handle `n`, as inherited from the instance that spawned
    /// this one (the kernel checks every use).
    pub fn inherited(n: i32) -> Self {
        Self(n)
    }

    /// Sends a copy of `bytes`; blocks while the channel is full.
    pub fn send(self, bytes: &[u8]) -> Result<(), Error> {
        // SAFETY: the pointer and length describe `bytes`.
        match unsafe { raw::chan_send(self.0, bytes.as_ptr(), bytes.len() as i32) } {
            0 => Ok(()),
            e => Err(error(e.into())),
        }
    }

    /// Receives the next message into `buf`; its full length (it was cut if
    /// longer than `buf`). Blocks while the channel is empty.
    pub fn recv(self, buf: &mut [u8]) -> Result<usize, Error> {
        // SAFETY: the pointer and capacity describe `buf`, writable.
        match unsafe { raw::chan_recv(self.0, buf.as_mut_ptr(), buf.len() as i32) } {
            n if n >= 0 => Ok(n as usize),
            e => Err(error(e.into())),
        }
    }
}

/// Starts module `name` of the boot bundle with copies of this instance's
/// handles; its instance id.
pub fn spawn(name: &str) -> Result<u64, Error> {
    // SAFETY: the pointer and length describe `name`.
    match unsafe { raw::spawn(name.as_ptr(), name.len() as i32) } {
        id if id >= 0 => Ok(id as u64),
        e => Err(error(e)),
    }
}
