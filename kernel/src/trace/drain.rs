//! The drain task: frames the records of every CPU's rings (each producer's stream
//! keeps its own encoder and sequence numbers here), moves the sealed frames to the
//! trace port in large writes, adds the control stream (hello, heartbeats, loss
//! reports, event counts), and counts every frame it cannot deliver.

use alloc::{boxed::Box, vec, vec::Vec};
use core::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use lucid_executor::LiveState;
use lucid_protocol::{self as proto, FrameEncoder, Message, Ring, StreamId};

use super::{Producer, cpus};
use crate::{
    arch,
    drivers::virtio_serial::{self, VirtioSerial, WriteError},
    sched,
};

/// How long the drain sleeps when every ring is empty.
const PERIOD: Duration = Duration::from_millis(2);
/// Loss reports at most this often.
const LOSS_PERIOD_TICKS_PER_S: u64 = 10;
/// Reports of the operations counted on resources per second.
const OPS_REPORTS_PER_S: u64 = 4;

/// Longest host frame (delimiter included) the drain accepts. Host commands are a
/// few bytes plus a level filter's target; a longer run of bytes without a delimiter
/// is discarded.
const MAX_HOST_FRAME: usize = 1024;
/// Host bytes the drain holds while splitting them into frames, allocated once.
const HOST_BUFFER: usize = 4 * 1024;

/// Most kernel heap that host input can hold, in bytes: the virtio-serial driver's
/// receive buffer ([`virtio_serial::RX_KEEP`], allocated at probe), the drain's
/// [`HOST_BUFFER`] and one frame being decoded (allocated once), and the level-filter
/// table ([`super::subscriber::FILTER_TABLE_HEAP_BOUND`]). Nothing else a host sends
/// is kept: snapshot requests are merged into one pending flag, pause and resume are
/// flags. A snapshot answer is sized by the live tasks and instances, not by the
/// requests, and at most one is built per drain pass.
pub const HOST_INPUT_HEAP_BOUND: usize =
    virtio_serial::RX_KEEP + HOST_BUFFER + MAX_HOST_FRAME + super::subscriber::FILTER_TABLE_HEAP_BOUND;

/// Where the stream goes.
pub enum TraceOutput {
    /// The `lucid.trace` virtio-serial port.
    Virtio(Box<VirtioSerial>),
    /// COM2, when there is no virtio-serial device: polled, so writes are capped per
    /// pump (the rings absorb bursts; what does not fit is dropped and counted).
    Uart(crate::drivers::uart::Uart),
    /// No output: every frame is dropped and counted (no trace device).
    None,
}

/// Bytes the drain writes to COM2 per call (each byte is a polled port write).
const UART_CHUNK: usize = 4096;

impl core::fmt::Debug for TraceOutput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TraceOutput").finish_non_exhaustive()
    }
}

impl TraceOutput {
    fn connected(&mut self) -> bool {
        match self {
            TraceOutput::Virtio(dev) => {
                dev.poll();
                dev.host_connected()
            }
            // A UART cannot tell whether anyone listens.
            TraceOutput::Uart(_) => true,
            TraceOutput::None => false,
        }
    }

    /// Up to `max` bytes the host sent since the last call.
    fn read(&mut self, out: &mut Vec<u8>, max: usize) {
        if let TraceOutput::Virtio(dev) = self {
            dev.read(out, max);
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        match self {
            TraceOutput::Virtio(dev) => dev.write(data),
            TraceOutput::Uart(uart) => {
                let n = data.len().min(UART_CHUNK);
                for &b in &data[..n] {
                    uart.write_byte(b);
                }
                Ok(n)
            }
            TraceOutput::None => Err(WriteError::NotConnected),
        }
    }
}

/// A batch of bytes for one write, with what it carries that must be counted if it
/// is not written: ring frames (their events are lost) and loss reports (their
/// counts go back to be reported again). Control frames sit between ring frames, so
/// each entry records where it ends in `bytes`.
struct Batch {
    bytes: Vec<u8>,
    /// Per ring frame: its producer, its events and its end in `bytes`.
    frames: Vec<(&'static Producer, u32, usize)>,
    /// Per loss report: the producer, its count and the end in `bytes` of the control
    /// frame that holds it.
    losses: Vec<(&'static Producer, u64, usize)>,
}

impl Batch {
    /// Empties the batch after a write. A large snapshot answer (every live task and
    /// resource, every loaded wasm function) can grow the buffer past its usual size
    /// for one write: it goes back to that size, so the heap the drain holds does not
    /// grow with what a host asked for.
    fn clear(&mut self) {
        self.bytes.clear();
        self.bytes.shrink_to(virtio_serial::TX_BUFFER);
    }
}

/// Level filters one pass over host input applied and refused (logged once per pass).
#[derive(Default)]
struct FilterTally {
    applied: u32,
    refused: u32,
    reason: Option<super::subscriber::FilterRefused>,
}

/// The drain task's state.
pub struct Drain {
    output: TraceOutput,
    batch: Batch,
    control: FrameEncoder<Box<[u8]>>,
    control_scratch: Vec<u8>,
    connected: bool,
    /// Loss reports pushed into the open control frame, not yet in the batch.
    unsealed_losses: Vec<(&'static Producer, u64)>,
    /// Control messages that did not fit a control frame, not yet reported (as a
    /// `Loss` on the control ring).
    control_unreported: u64,
    /// The host asked to pause: frames are dropped (and counted) until it resumes.
    paused: bool,
    /// Host bytes not yet split into frames (at most [`HOST_BUFFER`]).
    host_bytes: Vec<u8>,
    /// The host frame being decoded (at most [`MAX_HOST_FRAME`]).
    host_frame: Vec<u8>,
    /// The newest snapshot request not yet answered: requests that arrive before the
    /// answer is built are merged into it, so a flood of requests costs one answer.
    snapshot_request: Option<u64>,
    last_loss_report: u64,
    last_heartbeat: u64,
    /// When the resources' operation counts were last reported (TSC).
    last_ops_report: u64,
}

impl core::fmt::Debug for Drain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Drain").finish_non_exhaustive()
    }
}

impl Drain {
    /// A drain writing to `output`.
    pub fn new(output: TraceOutput) -> Self {
        let control = FrameEncoder::new(
            vec![0u8; super::FRAME_BYTES].into_boxed_slice(),
            StreamId::new(0, Ring::Control),
        );
        let control_scratch = vec![0u8; super::SEALED_MAX];
        Self {
            output,
            batch: Batch {
                bytes: Vec::with_capacity(virtio_serial::TX_BUFFER),
                frames: Vec::new(),
                losses: Vec::new(),
            },
            control,
            control_scratch,
            unsealed_losses: Vec::new(),
            control_unreported: 0,
            connected: false,
            paused: false,
            host_bytes: Vec::with_capacity(HOST_BUFFER),
            host_frame: Vec::with_capacity(MAX_HOST_FRAME),
            snapshot_request: None,
            last_loss_report: 0,
            last_heartbeat: 0,
            last_ops_report: 0,
        }
    }

    fn control(&mut self, msg: &Message<'_>) {
        self.control_at(arch::rdtsc(), msg);
    }

    fn control_at(&mut self, ts: u64, msg: &Message<'_>) {
        if self.control.push(ts, msg).is_err() {
            self.seal_control();
            // A control frame is far larger than any control message the kernel
            // makes; one that still does not fit is counted and reported as lost.
            if self.control.push(ts, msg).is_err() {
                self.control_unreported += 1;
            }
        }
    }

    fn seal_control(&mut self) {
        if let Ok(n) = self.control.finish(&mut self.control_scratch)
            && n > 0
        {
            self.batch.bytes.extend_from_slice(&self.control_scratch[..n]);
        }
        let end = self.batch.bytes.len();
        for (producer, count) in self.unsealed_losses.drain(..) {
            self.batch.losses.push((producer, count, end));
        }
    }

    fn hello(&mut self) {
        let tsc_hz = crate::time::tsc_hz();
        self.control(&Message::Hello(proto::Hello {
            major: u16::from(proto::MAJOR),
            minor: proto::MINOR,
            build_id: concat!("lucid-kernel ", env!("CARGO_PKG_VERSION")),
            tsc_hz,
            cpus: cpus().len() as u32,
            boot_tsc: crate::time::boot_tsc(),
        }));
        // A late console missed the first registrations: send them all again.
        super::subscriber::for_each_callsite(|m| self.control(m));
    }

    /// Applies what the host asked for: level filter, pause and resume; notes a
    /// snapshot request for [`Self::pump`] to answer. Host frames are COBS frames like
    /// the kernel's; damaged ones are ignored. Reads at most what [`HOST_BUFFER`]
    /// holds per call: the rest waits in the driver, and behind it in QEMU.
    fn host_commands(&mut self) {
        let room = HOST_BUFFER - self.host_bytes.len();
        self.output.read(&mut self.host_bytes, room);
        let mut filters = FilterTally::default();
        let mut consumed = 0;
        while let Some(len) = self.host_bytes[consumed..].iter().position(|&b| b == 0) {
            let frame = &self.host_bytes[consumed..consumed + len];
            consumed += len + 1;
            if frame.len() >= MAX_HOST_FRAME {
                continue;
            }
            self.host_frame.clear();
            self.host_frame.extend_from_slice(frame);
            let Ok(frame) = proto::decode_frame(&mut self.host_frame) else {
                continue;
            };
            if frame.stream.ring != Ring::Host {
                continue;
            }
            // Applied once the frame is read (it borrows the host buffer); the last
            // of a frame's Pause and Resume wins.
            let mut pause_or_resume = None;
            for event in frame.events().flatten() {
                match event.message {
                    Message::Pause => pause_or_resume = Some(true),
                    Message::Resume => pause_or_resume = Some(false),
                    Message::SetLevelFilter(f) => {
                        let level = match f.filter {
                            proto::LevelFilter::Off => None,
                            proto::LevelFilter::Level(l) => Some(l),
                        };
                        match super::subscriber::set_filter(f.target, level) {
                            Ok(()) => {
                                filters.applied += 1;
                                if filters.applied == 1 {
                                    log::info!("trace: level filter {:?} (target `{}`)", f.filter, f.target);
                                }
                            }
                            Err(e) => {
                                filters.refused += 1;
                                filters.reason = Some(e);
                            }
                        }
                    }
                    Message::RequestSnapshot { request } => self.snapshot_request = Some(request),
                    Message::SetSampling(s) => crate::sampling::set_rate(s.hz),
                    _ => {}
                }
            }
            if let Some(pause) = pause_or_resume {
                self.pause(pause);
            }
        }
        self.host_bytes.drain(..consumed);
        // A frame longer than any command can hold the buffer no longer.
        if self.host_bytes.len() >= MAX_HOST_FRAME && !self.host_bytes.contains(&0) {
            self.host_bytes.clear();
        }
        // One line per pass, however many filters arrived: a flood of filters must
        // not become a flood of log lines.
        if filters.applied > 1 {
            log::info!("trace: {} level filters applied", filters.applied);
        }
        if let Some(reason) = filters.reason {
            log::warn!("trace: {} level filters refused: {reason}", filters.refused);
        }
    }

    /// Answers a snapshot request with every live task and wasm instance and their
    /// totals, every live resource and every wait in progress, so a console that
    /// connects late knows what was spawned (and what waits) before it came. The
    /// task totals are stamped with the time they were read: a console that orders
    /// events by time takes them in place of what it counted before that moment and
    /// adds what comes after.
    fn snapshot(&mut self, request: u64) {
        self.control(&Message::SnapshotBegin { request });
        let at = arch::rdtsc();
        let tasks = sched::try_runtime().map(|rt| rt.live_tasks()).unwrap_or_default();
        for t in tasks.iter().filter(|t| super::traced(t.id)) {
            self.control_at(
                at,
                &Message::TaskSnapshot(proto::TaskSnapshot {
                    task: super::wire_task(t.id),
                    name: t.name.unwrap_or(""),
                    kind: super::task_kind(t.kind),
                    location: proto::Location {
                        file: t.location.file(),
                        line: t.location.line(),
                        column: t.location.column(),
                    },
                    parent: t.parent.map(super::wire_task),
                    state: match t.state {
                        LiveState::Running => proto::TaskState::Running,
                        LiveState::Scheduled => proto::TaskState::Scheduled,
                        LiveState::Idle => proto::TaskState::Idle,
                        LiveState::Completed => proto::TaskState::Completed,
                    },
                    cpu: t.cpu as u32,
                    spawned_tsc: t.counters.spawned_at,
                    polls: t.counters.polls,
                    wakes: t.counters.wakes,
                    self_wakes: t.counters.self_wakes,
                    wakers: t.wakers as u64,
                    busy_ticks: t.counters.busy,
                    scheduled_ticks: t.counters.scheduled,
                }),
            );
        }
        for i in crate::wasm::snapshots() {
            self.control(&Message::WasmInstanceSnapshot(proto::WasmInstanceSnapshot {
                instance: i.id,
                task: i.task,
                module: i.module,
                state: i.state,
                memory_pages: i.pages,
                fuel_used: i.stats.fuel,
                slices: i.stats.slices,
                hostcalls: i.stats.hostcalls,
            }));
            if let Some(args) = crate::wasm::args_message(i.id, &i.args) {
                self.control(&args);
            }
        }
        super::resources::snapshot(|m| self.control(m));
        if let Some(rt) = crate::wasm::runtime() {
            rt.code_map(|m| self.control(m));
        }
        self.control(&Message::SnapshotEnd { request });
    }

    /// Pauses (`true`) or resumes the stream at the host's request. What was lost
    /// before a pause is loss while attached: it is reported before pausing, so the
    /// resume burst holds only the pause's. The resume burst is like the attach
    /// burst: `Resume`, what the pause dropped, then a heartbeat; a console counts
    /// the losses in it as loss it asked for, not as a warning.
    fn pause(&mut self, pause: bool) {
        if pause == self.paused {
            return;
        }
        if pause {
            log::info!("trace: host paused the stream");
            self.report_losses();
        } else {
            log::info!("trace: host resumed the stream");
        }
        self.paused = pause;
        super::set_paused(pause);
        if !pause {
            self.control(&Message::Resume);
            self.report_losses();
            self.control(&Message::Heartbeat);
        }
    }

    /// Loss reports for what was dropped since the last report (only while a host
    /// listens; a report that is then not written goes back to be reported again).
    fn report_losses(&mut self) {
        for (cpu, producers) in cpus().iter().enumerate() {
            for (producer, ring) in [(&producers.task, Ring::Task), (&producers.irq, Ring::Interrupt)] {
                let count = producer.take_unreported();
                if count > 0 {
                    self.control(&Message::Loss {
                        cpu: cpu as u32,
                        ring,
                        count,
                    });
                    self.unsealed_losses.push((producer, count));
                }
            }
        }
        let control = core::mem::take(&mut self.control_unreported);
        if control > 0 {
            self.control(&Message::Loss {
                cpu: 0,
                ring: Ring::Control,
                count: control,
            });
        }
    }

    /// The kernel's own totals, so a reader can check decoded + lost = produced.
    pub fn event_counts(&mut self) {
        for (cpu, producers) in cpus().iter().enumerate() {
            for (producer, ring) in [(&producers.task, Ring::Task), (&producers.irq, Ring::Interrupt)] {
                self.control(&Message::EventCounts {
                    cpu: cpu as u32,
                    ring,
                    produced: producer.produced_total(),
                    dropped: producer.dropped_total(),
                });
            }
        }
    }

    /// Frames what the rings hold into batches and writes them. Returns the bytes moved.
    pub async fn pump(&mut self) -> usize {
        let was_connected = self.connected;
        self.connected = self.output.connected();
        HOST_CONNECTED.store(self.connected, Ordering::Relaxed);
        if self.connected != was_connected {
            if self.connected {
                log::info!(
                    "trace: host connected (host input holds at most {HOST_INPUT_HEAP_BOUND} bytes of kernel heap)"
                );
            } else {
                log::info!("trace: host disconnected");
            }
        }
        if self.connected && !was_connected {
            self.paused = false;
            super::set_paused(false);
            self.host_bytes.clear();
            self.snapshot_request = None;
            // The attach burst: Hello, what was dropped while no host listened (or
            // the stream was paused), then a heartbeat; a console counts the
            // losses in it as predating the attachment.
            self.hello();
            self.report_losses();
            self.control(&Message::Heartbeat);
            self.event_counts();
        }
        self.host_commands();
        if let Some(request) = self.snapshot_request.take() {
            self.snapshot(request);
        }
        let mut moved = 0;
        for producers in cpus() {
            for producer in [&producers.task, &producers.irq] {
                loop {
                    let connected = self.connected && !self.paused;
                    let batch = &mut self.batch;
                    let started = arch::rdtsc();
                    // SAFETY: the drain is every producer's one consumer.
                    let done = unsafe {
                        producer.frame(true, &mut |events, frame| {
                            if !connected {
                                producer.drop_events(u64::from(events));
                                return true;
                            }
                            if batch.bytes.len() + frame.len() > batch.bytes.capacity() {
                                return false;
                            }
                            batch.bytes.extend_from_slice(frame);
                            batch.frames.push((producer, events, batch.bytes.len()));
                            true
                        })
                    };
                    BUSY_TICKS.fetch_add(arch::rdtsc() - started, Ordering::Relaxed);
                    if done {
                        break;
                    }
                    // The batch is full: write it, then go on where the framing stopped.
                    moved += self.flush().await;
                }
            }
        }
        let now = arch::rdtsc();
        let hz = crate::time::tsc_hz().max(1);
        if self.connected {
            // While paused, losses wait for the resume: a host that pauses, reads what
            // is in flight and leaves takes every report with it.
            if !self.paused && now - self.last_loss_report > hz / LOSS_PERIOD_TICKS_PER_S {
                self.report_losses();
                self.last_loss_report = now;
            }
            if !self.paused && now - self.last_ops_report > hz / OPS_REPORTS_PER_S {
                super::resources::report_ops(|m| self.control(m));
                self.last_ops_report = now;
            }
            if now - self.last_heartbeat > hz {
                self.control(&Message::Heartbeat);
                self.event_counts();
                self.last_heartbeat = now;
                log::info!(
                    target: "lucid_kernel::heap",
                    "heap: {} bytes in use, {} bytes mapped",
                    crate::mem::heap::in_use_bytes(),
                    crate::mem::heap::mapped_bytes()
                );
            }
            self.seal_control();
        }
        moved + self.flush().await
    }

    /// Writes the batch, waiting while the host is slow (flow control). If the host
    /// leaves, the frames not yet written are dropped and counted.
    async fn flush(&mut self) -> usize {
        let total = self.batch.bytes.len();
        let mut off = 0;
        while off < total {
            let started = arch::rdtsc();
            let written = self.output.write(&self.batch.bytes[off..]);
            let spent = arch::rdtsc() - started;
            BUSY_TICKS.fetch_add(spent, Ordering::Relaxed);
            WRITE_TICKS.fetch_add(spent, Ordering::Relaxed);
            match written {
                Ok(n) => off += n,
                Err(WriteError::Full) => sched::sleep(Duration::from_micros(200)).await,
                Err(WriteError::NotConnected) => {
                    // Count every frame that did not go out whole, and report again
                    // every loss whose report did not.
                    for &(producer, events, end) in &self.batch.frames {
                        if end > off {
                            producer.drop_events(u64::from(events));
                        }
                    }
                    for &(producer, count, end) in &self.batch.losses {
                        if end > off {
                            producer.unreported.fetch_add(count, Ordering::Relaxed);
                        }
                    }
                    self.batch.frames.clear();
                    self.batch.losses.clear();
                    self.batch.clear();
                    self.connected = false;
                    return off;
                }
            }
        }
        self.batch.frames.clear();
        self.batch.losses.clear();
        self.batch.clear();
        total
    }

    /// Runs until asked to finish: then drains everything, sends the final event
    /// counts and ends QEMU.
    pub async fn run(mut self) {
        loop {
            if FINISH.load(Ordering::Acquire) {
                // Let the other CPUs finish what they were doing when the workload
                // ended, stop producing, and let every CPU leave any hook it was in,
                // so the final counts cover exactly what the rings hold.
                sched::sleep(Duration::from_millis(100)).await;
                super::set_enabled(false);
                sched::runtime().wake_all();
                sched::sleep(Duration::from_millis(50)).await;
                self.pump().await;
                if self.connected {
                    self.event_counts();
                    self.report_losses();
                    self.control(&Message::Heartbeat);
                    self.seal_control();
                    self.flush().await;
                    if let TraceOutput::Virtio(dev) = &mut self.output {
                        dev.flush();
                    }
                }
                log::info!("trace: final counts sent; stopping");
                crate::qemu::exit(crate::qemu::ExitCode::Success);
            }
            if self.pump().await == 0 {
                sched::sleep(PERIOD).await;
            } else {
                // Framing is this task's work now: let CPU 0's other tasks run between
                // passes while the other CPUs keep the rings busy.
                lucid_executor::yield_now().await;
            }
        }
    }
}

static FINISH: AtomicBool = AtomicBool::new(false);
/// TSC ticks the drain spent framing records and writing frames (not waiting).
static BUSY_TICKS: AtomicU64 = AtomicU64::new(0);

/// TSC ticks the drain has spent framing records and writing frames, waits for the
/// host excluded: on a CPU shared with the traced work, the drain's part of what
/// tracing costs.
pub fn busy_ticks() -> u64 {
    BUSY_TICKS.load(Ordering::Relaxed)
}

/// Of [`BUSY_TICKS`], the ticks spent in the output's writes.
static WRITE_TICKS: AtomicU64 = AtomicU64::new(0);

/// Of [`busy_ticks`], the TSC ticks spent writing frames to the output (the rest is
/// framing: ring reads, varints, CRC, COBS).
pub fn write_ticks() -> u64 {
    WRITE_TICKS.load(Ordering::Relaxed)
}

/// Whether a host read the stream at the drain's last pass.
static HOST_CONNECTED: AtomicBool = AtomicBool::new(false);

/// True when a host read the stream at the drain's last pass.
pub fn host_connected() -> bool {
    HOST_CONNECTED.load(Ordering::Relaxed)
}

/// Asks the drain to deliver everything, send the final counts and end QEMU.
pub fn finish_and_exit() {
    FINISH.store(true, Ordering::Release);
}

/// Spawns the drain task on CPU 0 and turns tracing on.
pub fn spawn(output: TraceOutput) {
    let handle = sched::runtime()
        .builder()
        .name("trace-drain")
        .on_cpu(0)
        .spawn(Drain::new(output).run());
    if let Some(task) = handle.task_ref() {
        super::DRAIN_TASK.store(task.id().as_u64(), Ordering::Relaxed);
    }
    super::set_enabled(true);
}
