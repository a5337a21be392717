//! The kernel's `tracing` subscriber (installed as the global dispatcher) and the
//! bridge from the `log` facade: both turn into `Callsite` registrations and
//! `TraceEvent` / span messages on the current CPU's producer, so kernel logs appear in
//! the console's Logs view next to the executor's events. Human-readable lines at
//! INFO and above still go to COM1.
//!
//! Callsites are registered once (rarely, so the registry may allocate) and re-sent
//! to every host that connects, since a late console missed the first registration.

use alloc::vec::Vec;
use core::{
    fmt::Write as _,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use crate::sync::SpinLock;
use lucid_protocol::{self as proto, CallsiteKind, List, Message, Value};
use tracing_core::{
    Dispatch, Event, Interest, Level, Metadata, Subscriber,
    callsite::Identifier,
    field::{Field, Visit},
    span,
};

use super::message as emit_message;
use crate::arch;

/// A registered callsite.
#[derive(Debug)]
pub struct Registered {
    /// Interned id.
    pub id: u64,
    /// Event or span.
    pub kind: CallsiteKind,
    /// Level.
    pub level: proto::Level,
    /// Name.
    pub name: &'static str,
    /// Target.
    pub target: &'static str,
    /// File.
    pub file: &'static str,
    /// Line.
    pub line: u32,
    /// Field names in order.
    pub fields: Vec<&'static str>,
    key: Key,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Tracing(Identifier),
    Log(u8),
}

static REGISTRY: SpinLock<Vec<Registered>> = SpinLock::new(Vec::new());
static NEXT_CALLSITE: AtomicU64 = AtomicU64::new(1);
static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);
/// Most verbose level recorded, as an index into `LEVELS` plus one (0 = nothing,
/// 3 = INFO).
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(3);

const LEVELS: [proto::Level; 5] = [
    proto::Level::Error,
    proto::Level::Warn,
    proto::Level::Info,
    proto::Level::Debug,
    proto::Level::Trace,
];

fn level_index(l: proto::Level) -> usize {
    LEVELS.iter().position(|x| *x == l).unwrap_or(2)
}

fn from_tracing(l: &Level) -> proto::Level {
    match *l {
        Level::ERROR => proto::Level::Error,
        Level::WARN => proto::Level::Warn,
        Level::INFO => proto::Level::Info,
        Level::DEBUG => proto::Level::Debug,
        _ => proto::Level::Trace,
    }
}

/// Per-target filters `(target prefix, level as in MAX_LEVEL)`; the longest matching
/// prefix wins. Rarely set, so a lock is fine; `HAS_TARGET_FILTERS` keeps the common
/// case (none) lock-free. The host sets them, so the table is capped:
/// [`MAX_FILTER_TARGETS`] entries of at most [`MAX_FILTER_TARGET_LEN`] bytes each.
static TARGET_FILTERS: SpinLock<Vec<(alloc::string::String, usize)>> = SpinLock::new(Vec::new());
static HAS_TARGET_FILTERS: AtomicBool = AtomicBool::new(false);

/// Most per-target filters kept; a filter for a further target is refused.
pub const MAX_FILTER_TARGETS: usize = 64;
/// Longest target a filter may name, in bytes (kernel targets are module paths).
pub const MAX_FILTER_TARGET_LEN: usize = 128;
/// Most kernel heap the filter table can hold: per entry its string, its slot in the
/// table (allocated once for all entries) and the allocator's per-allocation
/// overhead. Part of the host-input bound in [`super::drain::HOST_INPUT_HEAP_BOUND`].
pub const FILTER_TABLE_HEAP_BOUND: usize = MAX_FILTER_TARGETS
    * (MAX_FILTER_TARGET_LEN + core::mem::size_of::<(alloc::string::String, usize)>() + ALLOCATION_OVERHEAD);
/// Bytes the heap may add to one allocation (header and rounding), counted generously.
const ALLOCATION_OVERHEAD: usize = 32;

/// Why a level filter was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterRefused {
    /// The target is longer than [`MAX_FILTER_TARGET_LEN`].
    TargetTooLong,
    /// [`MAX_FILTER_TARGETS`] other targets already have filters.
    TooManyTargets,
    /// The kernel heap could not hold the entry.
    NoMemory,
}

impl core::fmt::Display for FilterRefused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FilterRefused::TargetTooLong => write!(f, "target longer than {MAX_FILTER_TARGET_LEN} bytes"),
            FilterRefused::TooManyTargets => write!(f, "already {MAX_FILTER_TARGETS} targets with filters"),
            FilterRefused::NoMemory => f.write_str("no kernel memory for the filter"),
        }
    }
}

impl core::error::Error for FilterRefused {}

/// Sets the most verbose level recorded for targets starting with `target` (all targets
/// when it is empty); `None` records nothing. A target already filtered is updated;
/// a new one is refused once [`MAX_FILTER_TARGETS`] exist or when it is too long.
pub fn set_filter(target: &str, level: Option<proto::Level>) -> Result<(), FilterRefused> {
    let value = level.map_or(0, |l| level_index(l) + 1);
    if target.is_empty() {
        MAX_LEVEL.store(value, Ordering::Relaxed);
        return Ok(());
    }
    if target.len() > MAX_FILTER_TARGET_LEN {
        return Err(FilterRefused::TargetTooLong);
    }
    let _irq = arch::InterruptGuard::new();
    let mut filters = TARGET_FILTERS.lock();
    if let Some(f) = filters.iter_mut().find(|(t, _)| t == target) {
        f.1 = value;
        return Ok(());
    }
    if filters.len() >= MAX_FILTER_TARGETS {
        return Err(FilterRefused::TooManyTargets);
    }
    if filters.capacity() == 0 {
        // One allocation for the whole table, so it never grows past the cap.
        filters
            .try_reserve_exact(MAX_FILTER_TARGETS)
            .map_err(|_| FilterRefused::NoMemory)?;
    }
    let mut owned = alloc::string::String::new();
    owned
        .try_reserve_exact(target.len())
        .map_err(|_| FilterRefused::NoMemory)?;
    owned.push_str(target);
    filters.push((owned, value));
    HAS_TARGET_FILTERS.store(true, Ordering::Release);
    Ok(())
}

fn enabled_for(target: &str, level: proto::Level) -> bool {
    let mut max = MAX_LEVEL.load(Ordering::Relaxed);
    if HAS_TARGET_FILTERS.load(Ordering::Acquire) {
        let _irq = arch::InterruptGuard::new();
        let filters = TARGET_FILTERS.lock();
        if let Some((_, v)) = filters
            .iter()
            .filter(|(t, _)| target.starts_with(t.as_str()))
            .max_by_key(|(t, _)| t.len())
        {
            max = *v;
        }
    }
    level_index(level) < max
}

fn callsite_message(r: &Registered) -> Message<'_> {
    Message::Callsite(proto::Callsite {
        id: proto::CallsiteId(r.id),
        kind: r.kind,
        level: r.level,
        name: r.name,
        target: r.target,
        file: r.file,
        line: r.line,
        fields: List::Slice(&r.fields),
    })
}

/// Registers a callsite (once per key) and sends its registration. Returns its id.
fn register(key: Key, make: impl FnOnce(u64) -> Registered) -> u64 {
    let _irq = arch::InterruptGuard::new();
    let mut reg = REGISTRY.lock();
    if let Some(r) = reg.iter().find(|r| r.key == key) {
        return r.id;
    }
    let r = make(NEXT_CALLSITE.fetch_add(1, Ordering::Relaxed));
    let id = r.id;
    emit_message(&callsite_message(&r));
    reg.push(r);
    id
}

fn lookup(key: Key) -> Option<u64> {
    let _irq = arch::InterruptGuard::new();
    REGISTRY.lock().iter().find(|r| r.key == key).map(|r| r.id)
}

/// Calls `f` with the registration message of every callsite (for a host that just
/// connected).
pub fn for_each_callsite(mut f: impl FnMut(&Message<'_>)) {
    let _irq = arch::InterruptGuard::new();
    for r in REGISTRY.lock().iter() {
        f(&callsite_message(r));
    }
}

/// Up to this many field values per event; values formatted with `Debug` share a buffer.
const MAX_FIELDS: usize = 8;
const TEXT: usize = 384;

/// Field values of one event, in field order, without allocating.
struct Values {
    kinds: [Kind; MAX_FIELDS],
    len: usize,
    text: [u8; TEXT],
    text_len: usize,
}

#[derive(Clone, Copy)]
enum Kind {
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(usize, usize),
}

impl Values {
    fn new() -> Self {
        Self {
            kinds: [Kind::Bool(false); MAX_FIELDS],
            len: 0,
            text: [0; TEXT],
            text_len: 0,
        }
    }

    fn push(&mut self, k: Kind) {
        if self.len < MAX_FIELDS {
            self.kinds[self.len] = k;
            self.len += 1;
        }
    }

    fn push_text(&mut self, args: core::fmt::Arguments<'_>) {
        let start = self.text_len;
        let mut w = TextWriter {
            buf: &mut self.text,
            len: &mut self.text_len,
        };
        let _ = w.write_fmt(args);
        let end = self.text_len;
        self.push(Kind::Str(start, end));
    }

    fn with<R>(&self, f: impl FnOnce(&[Value<'_>]) -> R) -> R {
        let mut out = [Value::Bool(false); MAX_FIELDS];
        for (o, k) in out.iter_mut().zip(&self.kinds[..self.len]) {
            *o = match *k {
                Kind::Bool(b) => Value::Bool(b),
                Kind::U64(v) => Value::U64(v),
                Kind::I64(v) => Value::I64(v),
                Kind::F64(v) => Value::F64(v),
                Kind::Str(a, b) => Value::Str(core::str::from_utf8(&self.text[a..b]).unwrap_or("?")),
            };
        }
        f(&out[..self.len])
    }
}

/// Writes into a fixed buffer, cutting at a character boundary when it is full.
struct TextWriter<'a> {
    buf: &'a mut [u8; TEXT],
    len: &'a mut usize,
}

impl core::fmt::Write for TextWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = TEXT - *self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[*self.len..*self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        *self.len += n;
        Ok(())
    }
}

impl Visit for Values {
    fn record_bool(&mut self, _: &Field, v: bool) {
        self.push(Kind::Bool(v));
    }
    fn record_u64(&mut self, _: &Field, v: u64) {
        self.push(Kind::U64(v));
    }
    fn record_i64(&mut self, _: &Field, v: i64) {
        self.push(Kind::I64(v));
    }
    fn record_f64(&mut self, _: &Field, v: f64) {
        self.push(Kind::F64(v));
    }
    fn record_str(&mut self, _: &Field, v: &str) {
        self.push_text(format_args!("{v}"));
    }
    fn record_debug(&mut self, _: &Field, v: &dyn core::fmt::Debug) {
        self.push_text(format_args!("{v:?}"));
    }
}

/// Emits a `TraceEvent` of `callsite` with `values`.
fn emit_event(callsite: u64, values: &Values) {
    emit_with_values(values, |values| {
        Message::TraceEvent(proto::TraceEvent {
            callsite: proto::CallsiteId(callsite),
            span: None,
            values,
        })
    });
}

/// Emits the message `message` makes of the recorded `values`.
fn emit_with_values(values: &Values, message: impl for<'v> Fn(List<'v, Value<'v>>) -> Message<'v>) {
    values.with(|vals| emit_message(&message(List::Slice(vals))));
}

/// The global `tracing` subscriber.
#[derive(Debug)]
pub struct KernelSubscriber;

fn registered(meta: &'static Metadata<'static>) -> u64 {
    register(Key::Tracing(meta.callsite()), |id| Registered {
        id,
        kind: if meta.is_span() {
            CallsiteKind::Span
        } else {
            CallsiteKind::Event
        },
        level: from_tracing(meta.level()),
        name: meta.name(),
        target: meta.target(),
        file: meta.file().unwrap_or(""),
        line: meta.line().unwrap_or(0),
        fields: meta.fields().iter().map(|f| f.name()).collect(),
        key: Key::Tracing(meta.callsite()),
    })
}

impl Subscriber for KernelSubscriber {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        registered(meta);
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        enabled_for(meta.target(), from_tracing(meta.level()))
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        let id = NEXT_SPAN.fetch_add(1, Ordering::Relaxed);
        let callsite = registered(attrs.metadata());
        let mut values = Values::new();
        attrs.record(&mut values);
        let parent = attrs.parent().map(span::Id::into_u64);
        emit_with_values(&values, |values| {
            Message::SpanNew(proto::SpanNew {
                span: proto::SpanId(id),
                callsite: proto::CallsiteId(callsite),
                parent: parent.map(proto::SpanId),
                values,
            })
        });
        span::Id::from_u64(id)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let callsite = lookup(Key::Tracing(meta.callsite())).unwrap_or_else(|| registered(meta));
        let mut values = Values::new();
        event.record(&mut values);
        emit_event(callsite, &values);
        if *meta.level() <= Level::INFO {
            let t = crate::time::since_boot();
            let mut text = heapless_line();
            let _ = write!(
                text,
                "[{:>4}.{:06}] {:<5} {}:",
                t.as_secs(),
                t.subsec_micros(),
                meta.level(),
                meta.target()
            );
            values.with(|vals| {
                for (name, v) in meta.fields().iter().map(|f| f.name()).zip(vals) {
                    let _ = match v {
                        Value::Str(s) if name == "message" => write!(text, " {s}"),
                        Value::Str(s) => write!(text, " {name}={s}"),
                        Value::Bool(b) => write!(text, " {name}={b}"),
                        Value::U64(n) => write!(text, " {name}={n}"),
                        Value::I64(n) => write!(text, " {name}={n}"),
                        Value::F64(n) => write!(text, " {name}={n}"),
                    };
                }
            });
            crate::println!("{}", text.as_str());
        }
    }

    fn enter(&self, id: &span::Id) {
        emit_span(id, |span| Message::SpanEnter { span });
    }

    fn exit(&self, id: &span::Id) {
        emit_span(id, |span| Message::SpanExit { span });
    }

    fn try_close(&self, id: span::Id) -> bool {
        emit_span(&id, |span| Message::SpanClose { span });
        true
    }
}

/// Records the span message `message` makes of `id`.
fn emit_span(id: &span::Id, message: fn(proto::SpanId) -> Message<'static>) {
    let span = proto::SpanId(id.into_u64());
    emit_message(&message(span));
}

/// A line for COM1 built without allocating.
struct Line {
    buf: [u8; 512],
    len: usize,
}

fn heapless_line() -> Line {
    Line { buf: [0; 512], len: 0 }
}

impl Line {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let mut n = s.len().min(self.buf.len() - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Installs the subscriber as the global dispatcher.
pub fn install() {
    // A second install (never done) would keep the first subscriber.
    let _ = tracing_core::dispatcher::set_global_default(Dispatch::new(KernelSubscriber));
}

/// Records a `log` record as a trace event: one callsite per level, with the fields
/// `message`, `target`, `file` and `line`.
pub fn log_record(record: &log::Record<'_>) {
    let level = match record.level() {
        log::Level::Error => proto::Level::Error,
        log::Level::Warn => proto::Level::Warn,
        log::Level::Info => proto::Level::Info,
        log::Level::Debug => proto::Level::Debug,
        log::Level::Trace => proto::Level::Trace,
    };
    if !super::is_enabled() || !enabled_for(record.target(), level) {
        return;
    }
    let key = Key::Log(level_index(level) as u8);
    let callsite = lookup(key.clone()).unwrap_or_else(|| {
        register(key.clone(), |id| Registered {
            id,
            kind: CallsiteKind::Event,
            level,
            name: "log",
            target: "log",
            file: "",
            line: 0,
            fields: alloc::vec!["message", "target", "file", "line"],
            key,
        })
    });
    let mut values = Values::new();
    values.push_text(*record.args());
    values.push_text(format_args!("{}", record.target()));
    values.push_text(format_args!("{}", record.file().unwrap_or("")));
    values.push(Kind::U64(u64::from(record.line().unwrap_or(0))));
    emit_event(callsite, &values);
}
