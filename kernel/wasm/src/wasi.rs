//! What the kernel offers of WASI preview 1 (`wasi_snapshot_preview1`): every
//! function's signature (so the host can refuse a module before boot and the
//! kernel can define the ones it does not implement as `ENOSYS`), the errno and
//! layout constants, and the argument blob a bundle entry carries.

/// The import module name.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Every preview 1 function: name, parameter types, result types (`i` = i32,
/// `I` = i64), in the order of the WASI witx.
pub const FUNCTIONS: &[(&str, &str, &str)] = &[
    ("args_get", "ii", "i"),
    ("args_sizes_get", "ii", "i"),
    ("environ_get", "ii", "i"),
    ("environ_sizes_get", "ii", "i"),
    ("clock_res_get", "ii", "i"),
    ("clock_time_get", "iIi", "i"),
    ("fd_advise", "iIIi", "i"),
    ("fd_allocate", "iII", "i"),
    ("fd_close", "i", "i"),
    ("fd_datasync", "i", "i"),
    ("fd_fdstat_get", "ii", "i"),
    ("fd_fdstat_set_flags", "ii", "i"),
    ("fd_fdstat_set_rights", "iII", "i"),
    ("fd_filestat_get", "ii", "i"),
    ("fd_filestat_set_size", "iI", "i"),
    ("fd_filestat_set_times", "iIIi", "i"),
    ("fd_pread", "iiiIi", "i"),
    ("fd_prestat_get", "ii", "i"),
    ("fd_prestat_dir_name", "iii", "i"),
    ("fd_pwrite", "iiiIi", "i"),
    ("fd_read", "iiii", "i"),
    ("fd_readdir", "iiiIi", "i"),
    ("fd_renumber", "ii", "i"),
    ("fd_seek", "iIii", "i"),
    ("fd_sync", "i", "i"),
    ("fd_tell", "ii", "i"),
    ("fd_write", "iiii", "i"),
    ("path_create_directory", "iii", "i"),
    ("path_filestat_get", "iiiii", "i"),
    ("path_filestat_set_times", "iiiiIIi", "i"),
    ("path_link", "iiiiiii", "i"),
    ("path_open", "iiiiiIIii", "i"),
    ("path_readlink", "iiiiii", "i"),
    ("path_remove_directory", "iii", "i"),
    ("path_rename", "iiiiii", "i"),
    ("path_symlink", "iiiii", "i"),
    ("path_unlink_file", "iii", "i"),
    ("poll_oneoff", "iiii", "i"),
    ("proc_exit", "i", ""),
    ("proc_raise", "i", "i"),
    ("sched_yield", "", "i"),
    ("random_get", "ii", "i"),
    ("sock_accept", "iii", "i"),
    ("sock_recv", "iiiiii", "i"),
    ("sock_send", "iiiii", "i"),
    ("sock_shutdown", "ii", "i"),
];

/// The signature of preview 1 function `name`: parameter and result types.
#[must_use]
pub fn signature(name: &str) -> Option<(&'static str, &'static str)> {
    FUNCTIONS.iter().find(|f| f.0 == name).map(|&(_, p, r)| (p, r))
}

/// WASI errno values the kernel returns.
pub mod errno {
    /// No error.
    pub const SUCCESS: i32 = 0;
    /// Bad file descriptor.
    pub const BADF: i32 = 8;
    /// Bad address (a pointer or length outside the guest's memory).
    pub const FAULT: i32 = 21;
    /// Invalid argument.
    pub const INVAL: i32 = 28;
    /// Function not implemented.
    pub const NOSYS: i32 = 52;
    /// Not supported.
    pub const NOTSUP: i32 = 58;
    /// Invalid seek (stdio is not seekable).
    pub const SPIPE: i32 = 70;
}

/// Clock ids.
pub mod clock {
    /// Wall-clock time (the boot epoch plus time since boot).
    pub const REALTIME: u32 = 0;
    /// Time since boot.
    pub const MONOTONIC: u32 = 1;
    /// CPU time of the process.
    pub const PROCESS_CPUTIME: u32 = 2;
    /// CPU time of the thread.
    pub const THREAD_CPUTIME: u32 = 3;
}

/// Bytes of one `subscription` in `poll_oneoff`.
pub const SUBSCRIPTION_LEN: usize = 48;
/// Bytes of one `event` in `poll_oneoff`.
pub const EVENT_LEN: usize = 32;
/// Bytes of an `fdstat`.
pub const FDSTAT_LEN: usize = 24;
/// Bytes of one `iovec`/`ciovec`.
pub const IOVEC_LEN: usize = 8;

/// Why an argument blob is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadArgs;

impl core::fmt::Display for BadArgs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("argument blob is malformed")
    }
}

impl core::error::Error for BadArgs {}

/// A guest's arguments and environment as its bundle entry carries them:
/// `argc: u32, envc: u32` (little endian), then `argc` argument strings and
/// `envc` `KEY=VALUE` strings, each NUL-terminated. The strings are UTF-8 with
/// no NUL inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Args<'a> {
    /// The argument strings, each NUL-terminated, back to back (what `args_get`
    /// copies to the guest).
    pub args: &'a [u8],
    /// Their number.
    pub argc: u32,
    /// The environment strings, each NUL-terminated, back to back.
    pub env: &'a [u8],
    /// Their number.
    pub envc: u32,
}

impl<'a> Args<'a> {
    /// Parses a blob; an empty one has no arguments and no environment.
    ///
    /// # Errors
    /// If the counts do not match the strings or a string is not UTF-8.
    pub fn parse(blob: &'a [u8]) -> Result<Self, BadArgs> {
        if blob.is_empty() {
            return Ok(Self::default());
        }
        let (head, strings) = blob.split_at_checked(8).ok_or(BadArgs)?;
        let argc = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let envc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if strings.last().is_some_and(|&b| b != 0) || core::str::from_utf8(strings).is_err() {
            return Err(BadArgs);
        }
        let total = strings.iter().filter(|&&b| b == 0).count();
        if u64::from(argc) + u64::from(envc) != total as u64 {
            return Err(BadArgs);
        }
        // The arguments end just after the `argc`-th NUL.
        let split = strings
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == 0)
            .map(|(i, _)| i + 1)
            .nth((argc as usize).wrapping_sub(1))
            .filter(|_| argc > 0)
            .unwrap_or(0);
        let (args, env) = strings.split_at(split);
        Ok(Self { args, argc, env, envc })
    }

    /// The argument strings (without their NULs).
    pub fn arg_strs(&self) -> impl Iterator<Item = &'a str> + '_ {
        strs(self.args)
    }

    /// The environment strings (without their NULs).
    pub fn env_strs(&self) -> impl Iterator<Item = &'a str> + '_ {
        strs(self.env)
    }
}

fn strs(bytes: &[u8]) -> impl Iterator<Item = &str> + '_ {
    bytes
        .split(|&b| b == 0)
        .take(bytes.iter().filter(|&&b| b == 0).count())
        .map(|s| core::str::from_utf8(s).unwrap_or(""))
}

/// Encodes arguments and environment as a blob [`Args::parse`] reads.
///
/// # Errors
/// If a string contains a NUL byte (the text says which).
#[cfg(any(test, feature = "alloc"))]
pub fn encode(args: &[&str], env: &[&str]) -> Result<alloc::vec::Vec<u8>, alloc::string::String> {
    let mut out = alloc::vec::Vec::new();
    out.extend_from_slice(
        &u32::try_from(args.len())
            .map_err(|_| "too many arguments")?
            .to_le_bytes(),
    );
    out.extend_from_slice(
        &u32::try_from(env.len())
            .map_err(|_| "too many variables")?
            .to_le_bytes(),
    );
    for s in args.iter().chain(env) {
        if s.contains('\0') {
            return Err(alloc::format!("{s:?} contains a NUL byte"));
        }
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let blob = encode(&["prog", "a", ""], &["K=V"]).expect("encode");
        let a = Args::parse(&blob).expect("parse");
        assert_eq!((a.argc, a.envc), (3, 1));
        assert_eq!(a.args, b"prog\0a\0\0");
        assert_eq!(a.env, b"K=V\0");
        assert_eq!(a.arg_strs().collect::<Vec<_>>(), ["prog", "a", ""]);
        assert_eq!(a.env_strs().collect::<Vec<_>>(), ["K=V"]);
        let empty = encode(&[], &[]).expect("empty");
        let none = Args::parse(&empty).expect("parse");
        assert_eq!((none.argc, none.args, none.env), (0, &b""[..], &b""[..]));
        let env = encode(&[], &["A=1", "B=2"]).expect("env");
        let env_only = Args::parse(&env).expect("parse");
        assert_eq!((env_only.args, env_only.env), (&b""[..], &b"A=1\0B=2\0"[..]));
        assert_eq!(Args::parse(b""), Ok(Args::default()));
    }

    #[test]
    fn malformed_blobs_are_refused() {
        let blob = encode(&["prog", "a"], &[]).expect("encode");
        for len in 1..blob.len() {
            assert_eq!(Args::parse(&blob[..len]), Err(BadArgs), "cut at {len}");
        }
        let mut wrong = blob.clone();
        wrong[0] = 3;
        assert_eq!(Args::parse(&wrong), Err(BadArgs));
        assert!(encode(&["a\0b"], &[]).is_err());
    }

    #[test]
    fn every_signature_uses_known_types() {
        for (name, params, results) in FUNCTIONS {
            assert!(params.chars().all(|c| c == 'i' || c == 'I'), "{name}");
            assert!(results.len() <= 1, "{name}");
            assert_eq!(FUNCTIONS.iter().filter(|f| f.0 == *name).count(), 1, "{name} twice");
        }
        assert_eq!(signature("fd_write"), Some(("iiii", "i")));
        assert_eq!(signature("proc_exit"), Some(("i", "")));
        assert_eq!(FUNCTIONS.len(), 46);
    }
}
