//! WASI preview 1 (`wasi_snapshot_preview1`) for guests compiled by ordinary
//! toolchains (Rust `std`, wasi-libc), written against wasmtime's no_std `Linker`
//! like the `lucid` module (wasmtime-wasi needs std).
//!
//! What exists: arguments and environment from the bundle entry, the realtime
//! and monotonic clocks, stdout and stderr (each line to the kernel log and the
//! trace, tagged with the instance), stdin at its end, `poll_oneoff` on clocks
//! (suspends the task, never the CPU), `sched_yield`, `random_get` and
//! `proc_exit`. There are no files: every other function returns `ENOSYS`.
//!
//! Every pointer and length is checked against the guest's memory before use; a
//! bad one is `EFAULT`, never a kernel fault. Calls are counted per function like
//! `lucid` hostcalls and cost fuel like them (output in proportion to its bytes).

use alloc::boxed::Box;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use lucid_wasm::abi::{FUEL_PER_BYTE, Hostcall, LOG_FUEL};
use lucid_wasm::text::Escaped;
use lucid_wasm::wasi::{Args, EVENT_LEN, FDSTAT_LEN, FUNCTIONS, IOVEC_LEN, MODULE, SUBSCRIPTION_LEN, clock, errno};
use wasmtime::{FuncType, Linker, Val, ValType};

use super::host::{Cx, Fut, blocking, contained, contained_async, count, memory, pay};
use super::instance::{Exit, InstanceData, ticks};

/// Bytes of an output line kept before it is logged without its end.
const LINE_LEN: usize = 256;
/// Bytes of the latest stderr lines an instance keeps for its end report.
const TAIL_LEN: usize = 512;
/// Lines of stderr in the end report.
const TAIL_LINES: usize = 4;
/// Fuel of one WASI call besides the bytes it moves.
const CALL_FUEL: u64 = 100;

/// Nanoseconds from the Unix epoch to boot (from `epoch=SECONDS` on the kernel
/// command line; 0 when the host passed none).
static BOOT_EPOCH_NS: AtomicU64 = AtomicU64::new(0);

/// Sets the realtime clock's origin from the `epoch=` command line option.
pub fn set_boot_epoch(option: Option<&str>) {
    if let Some(secs) = option.and_then(|s| s.parse::<u64>().ok()) {
        let since_boot = crate::sched::now_ns();
        let ns = secs.saturating_mul(1_000_000_000).saturating_sub(since_boot);
        BOOT_EPOCH_NS.store(ns, Ordering::Relaxed);
    }
}

fn realtime_ns() -> u64 {
    BOOT_EPOCH_NS
        .load(Ordering::Relaxed)
        .saturating_add(crate::sched::now_ns())
}

/// One output stream's unfinished line.
struct Line {
    buf: [u8; LINE_LEN],
    len: usize,
}

/// An instance's WASI state.
pub(super) struct WasiState {
    args: Args<'static>,
    out: Line,
    err: Line,
    /// stdin, stdout, stderr closed by `fd_close` (bits 0..=2).
    closed: u8,
    /// The latest stderr lines, `\n`-separated.
    tail: [u8; TAIL_LEN],
    tail_len: usize,
}

impl WasiState {
    /// The state of a new instance of a module whose bundle entry carries `args`.
    pub(super) fn new(args: &'static [u8]) -> Self {
        Self {
            // The bundle was checked when it was parsed.
            args: Args::parse(args).unwrap_or_default(),
            out: Line {
                buf: [0; LINE_LEN],
                len: 0,
            },
            err: Line {
                buf: [0; LINE_LEN],
                len: 0,
            },
            closed: 0,
            tail: [0; TAIL_LEN],
            tail_len: 0,
        }
    }

    /// The latest lines the instance wrote to stderr.
    pub(super) fn stderr_tail(&self) -> &str {
        let text = core::str::from_utf8(&self.tail[..self.tail_len]).unwrap_or("");
        text.strip_suffix('\n').unwrap_or(text)
    }

    fn open(&self, fd: i32) -> bool {
        (0..=2).contains(&fd) && self.closed & (1 << fd) == 0
    }

    fn keep_stderr(&mut self, line: &str) {
        let line = lucid_wasm::text::utf8_prefix(line.as_bytes(), TAIL_LEN / TAIL_LINES - 1).unwrap_or("");
        let need = line.len() + 1;
        // Each kept line ends in '\n'; the oldest go until this one fits among
        // at most TAIL_LINES.
        while self.tail_len > 0
            && (self.tail_len + need > TAIL_LEN
                || self.tail[..self.tail_len].iter().filter(|&&b| b == b'\n').count() >= TAIL_LINES)
        {
            let first = self.tail[..self.tail_len]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.tail_len, |i| i + 1);
            self.tail.copy_within(first..self.tail_len, 0);
            self.tail_len -= first;
        }
        self.tail[self.tail_len..self.tail_len + line.len()].copy_from_slice(line.as_bytes());
        self.tail_len += line.len();
        self.tail[self.tail_len] = b'\n';
        self.tail_len += 1;
    }
}

/// Logs every complete line of `bytes` written to `fd` (1 or 2), keeping an
/// unfinished one for the next write.
fn output(d: &mut InstanceData, fd: i32, bytes: &[u8]) {
    for &b in bytes {
        let line = if fd == 1 { &mut d.wasi.out } else { &mut d.wasi.err };
        if b == b'\n' {
            emit(d, fd);
            continue;
        }
        line.buf[line.len] = b;
        line.len += 1;
        if line.len == LINE_LEN {
            emit(d, fd);
        }
    }
}

/// Logs `fd`'s unfinished line as one line.
fn emit(d: &mut InstanceData, fd: i32) {
    let line = if fd == 1 { &mut d.wasi.out } else { &mut d.wasi.err };
    let len = core::mem::take(&mut line.len);
    let mut copy = [0; LINE_LEN];
    copy[..len].copy_from_slice(&line.buf[..len]);
    let text = String8::lossy(&copy[..len]);
    let (name, id) = (d.guest.entry.name, d.id);
    if fd == 1 {
        log::info!(target: "wasm", "{name}#{id} stdout: {}", Escaped(text));
    } else {
        log::warn!(target: "wasm", "{name}#{id} stderr: {}", Escaped(text));
        d.wasi.keep_stderr(text);
    }
}

/// Logs what is left of both streams' lines (the instance ended).
pub(super) fn flush(d: &mut InstanceData) {
    for fd in [1, 2] {
        let line = if fd == 1 { &d.wasi.out } else { &d.wasi.err };
        if line.len > 0 {
            emit(d, fd);
        }
    }
}

/// The longest UTF-8 prefix of a line (a multibyte character cut by the line
/// limit is dropped).
struct String8;

impl String8 {
    fn lossy(bytes: &[u8]) -> &str {
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

/// `[ptr, ptr + len)` within a `size`-byte memory.
fn span(size: usize, ptr: i32, len: u64) -> Option<Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= size).then_some(start..end)
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(w)
}

/// `len` elements of `size` bytes at `ptr`, checked.
fn array(size: usize, ptr: i32, n: i32, elem: usize) -> Option<Range<usize>> {
    span(size, ptr, u64::from(n as u32).checked_mul(elem as u64)?)
}

/// Writes `bytes` at `ptr`, or answers `EFAULT`.
fn put(c: &mut Cx<'_>, h: Hostcall, ptr: i32, bytes: &[u8]) -> wasmtime::Result<i32> {
    let mem = memory(c, h)?;
    let data = mem.data_mut(&mut *c);
    Ok(match span(data.len(), ptr, bytes.len() as u64) {
        Some(r) => {
            data[r].copy_from_slice(bytes);
            errno::SUCCESS
        }
        None => errno::FAULT,
    })
}

/// `args_sizes_get`/`environ_sizes_get`: the count and the strings' bytes.
fn sizes(c: &mut Cx<'_>, h: Hostcall, count_ptr: i32, size_ptr: i32) -> wasmtime::Result<i32> {
    let t0 = ticks();
    let args = c.data().wasi.args;
    let (n, bytes) = match h {
        Hostcall::ArgsSizesGet => (args.argc, args.args.len()),
        _ => (args.envc, args.env.len()),
    };
    let mem = memory(c, h)?;
    let size = mem.data_size(&*c);
    let r = if span(size, count_ptr, 4).is_none() || span(size, size_ptr, 4).is_none() {
        errno::FAULT
    } else {
        put(c, h, count_ptr, &n.to_le_bytes())?;
        put(c, h, size_ptr, &(bytes as u32).to_le_bytes())?
    };
    count(c, h, t0);
    Ok(r)
}

/// `args_get`/`environ_get`: the strings at `buf_ptr`, a pointer to each at
/// `vec_ptr`.
fn strings(c: &mut Cx<'_>, h: Hostcall, vec_ptr: i32, buf_ptr: i32) -> wasmtime::Result<i32> {
    let t0 = ticks();
    let args = c.data().wasi.args;
    let (n, bytes) = match h {
        Hostcall::ArgsGet => (args.argc, args.args),
        _ => (args.envc, args.env),
    };
    let mem = memory(c, h)?;
    let data = mem.data_mut(&mut *c);
    let r = match (
        array(data.len(), vec_ptr, n as i32, 4),
        span(data.len(), buf_ptr, bytes.len() as u64),
    ) {
        (Some(vec), Some(buf)) => {
            data[buf].copy_from_slice(bytes);
            let mut at = vec.start;
            let mut start = 0;
            for s in bytes.split_inclusive(|&b| b == 0) {
                let p = (buf_ptr as u32).wrapping_add(start as u32);
                data[at..at + 4].copy_from_slice(&p.to_le_bytes());
                at += 4;
                start += s.len();
            }
            errno::SUCCESS
        }
        _ => errno::FAULT,
    };
    count(c, h, t0);
    Ok(r)
}

/// Reads `fd_write`'s/`fd_read`'s iovecs: each buffer's range, or `None` if the
/// array or any buffer lies outside memory. Calls `each` per buffer.
fn iovecs(data: &[u8], iovs: i32, n: i32, mut each: impl FnMut(Range<usize>)) -> bool {
    let Some(vec) = array(data.len(), iovs, n, IOVEC_LEN) else {
        return false;
    };
    // Check every buffer before using any.
    let buf = |i: usize| {
        let at = vec.start + i * IOVEC_LEN;
        span(data.len(), u32_at(data, at) as i32, u64::from(u32_at(data, at + 4)))
    };
    let n = n as u32 as usize;
    if (0..n).any(|i| buf(i).is_none()) {
        return false;
    }
    (0..n).filter_map(buf).for_each(&mut each);
    true
}

/// Realtime or monotonic now, for clock `id`.
fn now(id: u32) -> Result<u64, i32> {
    match id {
        clock::REALTIME => Ok(realtime_ns()),
        clock::MONOTONIC => Ok(crate::sched::now_ns()),
        clock::PROCESS_CPUTIME | clock::THREAD_CPUTIME => Err(errno::NOTSUP),
        _ => Err(errno::INVAL),
    }
}

/// One `poll_oneoff` subscription, read from guest memory.
enum Subscription {
    /// A clock: its deadline in monotonic nanoseconds.
    Clock(u64),
    /// An fd ready at once (`errno` is its error, `SUCCESS` when it is stdio).
    Fd { kind: u8, error: i32 },
    /// A clock subscription the kernel refuses (unknown clock).
    BadClock(i32),
}

fn subscription(data: &[u8], at: usize, now_mono: u64) -> Result<Subscription, i32> {
    let tag = data[at + 8];
    match tag {
        0 => {
            let id = u32_at(data, at + 16);
            let timeout = u64_at(data, at + 24);
            let absolute = u16::from_le_bytes([data[at + 40], data[at + 41]]) & 1 != 0;
            let deadline = match (id, absolute) {
                (clock::MONOTONIC, true) => timeout,
                (clock::REALTIME, true) => timeout.saturating_sub(BOOT_EPOCH_NS.load(Ordering::Relaxed)),
                (clock::MONOTONIC | clock::REALTIME, false) => now_mono.saturating_add(timeout),
                _ => return Ok(Subscription::BadClock(errno::INVAL)),
            };
            Ok(Subscription::Clock(deadline))
        }
        1 | 2 => {
            let fd = u32_at(data, at + 16);
            let ok = matches!((tag, fd), (1, 0) | (2, 1 | 2));
            Ok(Subscription::Fd {
                kind: tag,
                error: if ok { errno::SUCCESS } else { errno::BADF },
            })
        }
        _ => Err(errno::INVAL),
    }
}

/// Writes one `event`.
fn event(data: &mut [u8], at: usize, userdata: u64, error: i32, kind: u8, hangup: bool) {
    let e = &mut data[at..at + EVENT_LEN];
    e.fill(0);
    e[..8].copy_from_slice(&userdata.to_le_bytes());
    e[8..10].copy_from_slice(&(error as u16).to_le_bytes());
    e[10] = kind;
    if hangup {
        // fd_readwrite.flags: FD_READWRITE_HANGUP (stdin is at its end).
        e[24..26].copy_from_slice(&1u16.to_le_bytes());
    }
}

/// `poll_oneoff(in, out, nsubscriptions, nevents_ptr)`.
async fn poll_oneoff(c: &mut Cx<'_>, sub_ptr: i32, out_ptr: i32, n: i32, nevents_ptr: i32) -> wasmtime::Result<i32> {
    let h = Hostcall::PollOneoff;
    let mem = memory(c, h)?;
    let size = mem.data_size(&*c);
    if n <= 0 {
        return Ok(errno::INVAL);
    }
    let (Some(subs), Some(out), Some(_)) = (
        array(size, sub_ptr, n, SUBSCRIPTION_LEN),
        array(size, out_ptr, n, EVENT_LEN),
        span(size, nevents_ptr, 4),
    ) else {
        return Ok(errno::FAULT);
    };
    let start = crate::sched::now_ns();
    let mut earliest = u64::MAX;
    let mut ready_at_once = false;
    {
        let data = mem.data(&*c);
        for i in 0..n as usize {
            match subscription(data, subs.start + i * SUBSCRIPTION_LEN, start) {
                Ok(Subscription::Clock(d)) => earliest = earliest.min(d),
                Ok(Subscription::Fd { .. } | Subscription::BadClock(_)) => ready_at_once = true,
                Err(e) => return Ok(e),
            }
        }
    }
    if !ready_at_once && earliest > start {
        let ns = earliest - start;
        c.data().meter.sleep_ns.store(ns, Ordering::Relaxed);
        blocking(c, h, crate::sched::sleep(Duration::from_nanos(ns))).await?;
    }
    let now = crate::sched::now_ns();
    let data = mem.data_mut(&mut *c);
    let mut events = 0;
    for i in 0..n as usize {
        let at = subs.start + i * SUBSCRIPTION_LEN;
        let userdata = u64_at(data, at);
        let (error, kind, hangup) = match subscription(data, at, start) {
            Ok(Subscription::Clock(d)) if d <= now && !ready_at_once => (errno::SUCCESS, 0, false),
            Ok(Subscription::BadClock(e)) => (e, 0, false),
            Ok(Subscription::Fd { kind, error }) => (error, kind, kind == 1 && error == errno::SUCCESS),
            _ => continue,
        };
        event(data, out.start + events * EVENT_LEN, userdata, error, kind, hangup);
        events += 1;
    }
    let at = nevents_ptr as u32 as usize;
    data[at..at + 4].copy_from_slice(&(events as u32).to_le_bytes());
    Ok(errno::SUCCESS)
}

/// Fills `buf` with random bytes: RDRAND when the CPU has it, else a ChaCha20
/// generator seeded at first use.
fn random(buf: &mut [u8]) {
    if rdrand::available() && rdrand::fill(buf) {
        return;
    }
    let mut rng = RNG.lock();
    let rng = rng.get_or_insert_with(|| {
        use chacha20::rand_core::SeedableRng;
        chacha20::ChaCha20Rng::from_seed(seed())
    });
    chacha20::rand_core::Rng::fill_bytes(rng, buf);
}

static RNG: crate::sync::SpinLock<Option<chacha20::ChaCha20Rng>> = crate::sync::SpinLock::new(None);

/// A seed from whatever entropy the machine has: RDSEED/RDRAND if present, the
/// TSC's low bits across timer reads, the boot epoch.
fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if rdrand::available() && rdrand::fill(&mut seed) {
        return seed;
    }
    let mut acc: u64 = 0xcbf2_9ce4_8422_2325 ^ BOOT_EPOCH_NS.load(Ordering::Relaxed);
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        for _ in 0..64 {
            let t = ticks();
            acc = (acc ^ t).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(17) ^ i as u64;
            // Let the TSC move by a varying amount between reads.
            core::hint::spin_loop();
        }
        chunk.copy_from_slice(&acc.to_le_bytes());
    }
    seed
}

mod rdrand {
    /// The CPU has RDRAND (CPUID.1:ECX bit 30).
    pub(super) fn available() -> bool {
        crate::arch::cpuid(1).ecx & (1 << 30) != 0
    }

    /// Fills `buf` from RDRAND; false if the CPU gave up (it retries a few times).
    pub(super) fn fill(buf: &mut [u8]) -> bool {
        for chunk in buf.chunks_mut(8) {
            let Some(word) = (0..10).find_map(|_| {
                // SAFETY: only called after `available` saw RDRAND in CPUID.
                unsafe { step() }
            }) else {
                return false;
            };
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
        true
    }

    /// One RDRAND.
    ///
    /// # Safety
    /// The CPU must support RDRAND.
    #[target_feature(enable = "rdrand")]
    unsafe fn step() -> Option<u64> {
        let mut word = 0;
        (core::arch::x86_64::_rdrand64_step(&mut word) == 1).then_some(word)
    }
}

/// Defines every `wasi_snapshot_preview1` import in `linker`.
pub(super) fn define(linker: &mut Linker<InstanceData>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "args_sizes_get", |mut c: Cx<'_>, a: i32, b: i32| {
        contained(|| sizes(&mut c, Hostcall::ArgsSizesGet, a, b))
    })?;
    linker.func_wrap(MODULE, "environ_sizes_get", |mut c: Cx<'_>, a: i32, b: i32| {
        contained(|| sizes(&mut c, Hostcall::EnvironSizesGet, a, b))
    })?;
    linker.func_wrap(MODULE, "args_get", |mut c: Cx<'_>, a: i32, b: i32| {
        contained(|| strings(&mut c, Hostcall::ArgsGet, a, b))
    })?;
    linker.func_wrap(MODULE, "environ_get", |mut c: Cx<'_>, a: i32, b: i32| {
        contained(|| strings(&mut c, Hostcall::EnvironGet, a, b))
    })?;
    linker.func_wrap(MODULE, "clock_res_get", |mut c: Cx<'_>, id: i32, ptr: i32| {
        contained(|| {
            let t0 = ticks();
            let r = match now(id as u32) {
                // The clocks count nanoseconds from the TSC.
                Ok(_) => put(&mut c, Hostcall::ClockResGet, ptr, &1u64.to_le_bytes())?,
                Err(e) => e,
            };
            count(&c, Hostcall::ClockResGet, t0);
            Ok(r)
        })
    })?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Cx<'_>, id: i32, _precision: i64, ptr: i32| {
            contained(|| {
                let t0 = ticks();
                let r = match now(id as u32) {
                    Ok(ns) => put(&mut c, Hostcall::ClockTimeGet, ptr, &ns.to_le_bytes())?,
                    Err(e) => e,
                };
                count(&c, Hostcall::ClockTimeGet, t0);
                Ok(r)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_write",
        |mut c: Cx<'_>, (fd, iovs, n, written): (i32, i32, i32, i32)| -> Fut<'_, i32> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let h = Hostcall::FdWrite;
                if fd == 0 || !c.data().wasi.open(fd) {
                    count(&c, h, t0);
                    return Ok(errno::BADF);
                }
                let mem = memory(&mut c, h)?;
                let (data, d) = mem.data_and_store_mut(&mut c);
                let mut total = 0usize;
                let ok = span(data.len(), written, 4).is_some()
                    && iovecs(data, iovs, n, |r| {
                        total += r.len();
                        output(d, fd, &data[r]);
                    });
                let r = if ok {
                    let at = written as u32 as usize;
                    data[at..at + 4].copy_from_slice(&(total as u32).to_le_bytes());
                    errno::SUCCESS
                } else {
                    errno::FAULT
                };
                pay(&mut c, LOG_FUEL + FUEL_PER_BYTE * total as u64).await?;
                count(&c, h, t0);
                Ok(r)
            }))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Cx<'_>, fd: i32, iovs: i32, n: i32, read: i32| {
            contained(|| {
                let t0 = ticks();
                let h = Hostcall::FdRead;
                let open = fd == 0 && c.data().wasi.open(fd);
                let mem = memory(&mut c, h)?;
                let data = mem.data_mut(&mut c);
                let r = if !open {
                    errno::BADF
                } else if span(data.len(), read, 4).is_some() && iovecs(data, iovs, n, drop) {
                    // stdin is at its end: nothing read.
                    let at = read as u32 as usize;
                    data[at..at + 4].fill(0);
                    errno::SUCCESS
                } else {
                    errno::FAULT
                };
                count(&c, h, t0);
                Ok(r)
            })
        },
    )?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |mut c: Cx<'_>, fd: i32, ptr: i32| {
        contained(|| {
            let t0 = ticks();
            let h = Hostcall::FdFdstatGet;
            let r = if c.data().wasi.open(fd) {
                // Character device; rights: FD_READ (bit 1) on stdin, FD_WRITE
                // (bit 6) on stdout and stderr, and POLL_FD_READWRITE (bit 27).
                let rights: u64 = (if fd == 0 { 1 << 1 } else { 1 << 6 }) | (1 << 27);
                let mut stat = [0u8; FDSTAT_LEN];
                stat[0] = 2;
                stat[8..16].copy_from_slice(&rights.to_le_bytes());
                put(&mut c, h, ptr, &stat)?
            } else {
                errno::BADF
            };
            count(&c, h, t0);
            Ok(r)
        })
    })?;
    linker.func_wrap(MODULE, "fd_close", |mut c: Cx<'_>, fd: i32| {
        contained(|| {
            let t0 = ticks();
            let r = if c.data().wasi.open(fd) {
                c.data_mut().wasi.closed |= 1 << fd;
                errno::SUCCESS
            } else {
                errno::BADF
            };
            count(&c, Hostcall::FdClose, t0);
            Ok(r)
        })
    })?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |mut c: Cx<'_>, fd: i32, _offset: i64, whence: i32, ptr: i32| {
            contained(|| {
                let t0 = ticks();
                let h = Hostcall::FdSeek;
                let size = memory(&mut c, h)?.data_size(&c);
                let r = if !c.data().wasi.open(fd) {
                    errno::BADF
                } else if !(0..=2).contains(&whence) {
                    errno::INVAL
                } else if span(size, ptr, 8).is_none() {
                    errno::FAULT
                } else {
                    errno::SPIPE
                };
                count(&c, h, t0);
                Ok(r)
            })
        },
    )?;
    linker.func_wrap(MODULE, "fd_prestat_get", |mut c: Cx<'_>, _fd: i32, ptr: i32| {
        contained(|| {
            let t0 = ticks();
            let h = Hostcall::FdPrestatGet;
            let size = memory(&mut c, h)?.data_size(&c);
            // No preopened directories: every fd is a bad one.
            let r = if span(size, ptr, 8).is_some() {
                errno::BADF
            } else {
                errno::FAULT
            };
            count(&c, h, t0);
            Ok(r)
        })
    })?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |mut c: Cx<'_>, _fd: i32, ptr: i32, len: i32| {
            contained(|| {
                let t0 = ticks();
                let h = Hostcall::FdPrestatDirName;
                let size = memory(&mut c, h)?.data_size(&c);
                let r = if span(size, ptr, u64::from(len as u32)).is_some() {
                    errno::BADF
                } else {
                    errno::FAULT
                };
                count(&c, h, t0);
                Ok(r)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "poll_oneoff",
        |mut c: Cx<'_>, (subs, out, n, nevents): (i32, i32, i32, i32)| -> Fut<'_, i32> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let r = poll_oneoff(&mut c, subs, out, n, nevents).await?;
                pay(&mut c, CALL_FUEL).await?;
                count(&c, Hostcall::PollOneoff, t0);
                Ok(r)
            }))
        },
    )?;
    linker.func_wrap_async(MODULE, "sched_yield", |mut c: Cx<'_>, (): ()| -> Fut<'_, i32> {
        contained_async(Box::new(async move {
            let t0 = ticks();
            blocking(&mut c, Hostcall::SchedYield, lucid_executor::yield_now()).await?;
            count(&c, Hostcall::SchedYield, t0);
            Ok(errno::SUCCESS)
        }))
    })?;
    linker.func_wrap_async(
        MODULE,
        "random_get",
        |mut c: Cx<'_>, (ptr, len): (i32, i32)| -> Fut<'_, i32> {
            contained_async(Box::new(async move {
                let t0 = ticks();
                let h = Hostcall::RandomGet;
                let mem = memory(&mut c, h)?;
                let data = mem.data_mut(&mut c);
                let r = match span(data.len(), ptr, u64::from(len as u32)) {
                    Some(r) => {
                        random(&mut data[r]);
                        errno::SUCCESS
                    }
                    None => errno::FAULT,
                };
                pay(&mut c, CALL_FUEL + FUEL_PER_BYTE * u64::from(len as u32).min(1 << 20)).await?;
                count(&c, h, t0);
                Ok(r)
            }))
        },
    )?;
    linker.func_wrap(MODULE, "proc_exit", |c: Cx<'_>, code: i32| -> wasmtime::Result<()> {
        contained(|| {
            count(&c, Hostcall::ProcExit, ticks());
            Err(wasmtime::Error::new(Exit(code)))
        })
    })?;
    unsupported(linker)
}

/// Defines every preview 1 function not implemented above as one that returns
/// `ENOSYS`, so a module that imports it still instantiates.
fn unsupported(linker: &mut Linker<InstanceData>) -> wasmtime::Result<()> {
    let implemented = |name: &str| Hostcall::ALL.iter().any(|h| h.module() == MODULE && h.name() == name);
    for &(name, params, results) in FUNCTIONS.iter().filter(|f| !implemented(f.0)) {
        let ty = |c: char| if c == 'I' { ValType::I64 } else { ValType::I32 };
        let ty = FuncType::new(linker.engine(), params.chars().map(ty), results.chars().map(ty));
        linker.func_new(MODULE, name, ty, |c: Cx<'_>, _: &[Val], out: &mut [Val]| {
            contained(|| {
                count(&c, Hostcall::WasiUnsupported, ticks());
                if let Some(r) = out.first_mut() {
                    *r = Val::I32(errno::NOSYS);
                }
                Ok(())
            })
        })?;
    }
    Ok(())
}
