//! The drain task: moves sealed frames from every CPU's rings to the trace port in
//! large writes, adds the control stream (hello, heartbeats, loss reports, event
//! counts), and counts every frame it cannot deliver.

use alloc::{boxed::Box, vec, vec::Vec};
use core::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use lucid_executor::LiveState;
use lucid_protocol::{self as proto, FrameEncoder, Message, Ring, StreamId};

use super::{Producer, cpus, seal_current_cpu};
use crate::{
    arch,
    drivers::virtio_serial::{self, VirtioSerial, WriteError},
    sched,
};

/// How long the drain sleeps when every ring is empty.
const PERIOD: Duration = Duration::from_millis(2);
/// Loss reports at most this often.
const LOSS_PERIOD_TICKS_PER_S: u64 = 10;

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

    /// Bytes the host sent since the last call.
    fn read(&mut self, out: &mut Vec<u8>) {
        if let TraceOutput::Virtio(dev) = self {
            dev.read(out);
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

/// A batch of bytes for one write, with the frames it holds (for loss accounting).
struct Batch {
    bytes: Vec<u8>,
    /// Per frame: its producer, its events and its length in `bytes`.
    frames: Vec<(&'static Producer, u32, usize)>,
}

/// The drain task's state.
pub struct Drain {
    output: TraceOutput,
    batch: Batch,
    scratch: Vec<u8>,
    control: FrameEncoder<Box<[u8]>>,
    control_scratch: Vec<u8>,
    connected: bool,
    /// The host asked to pause: frames are dropped (and counted) until it resumes.
    paused: bool,
    /// Host bytes not yet split into frames.
    host_bytes: Vec<u8>,
    last_loss_report: u64,
    last_heartbeat: u64,
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
            },
            scratch: vec![0u8; super::FRAME_BYTES * 2 + 64],
            control,
            control_scratch,
            connected: false,
            paused: false,
            host_bytes: Vec::new(),
            last_loss_report: 0,
            last_heartbeat: 0,
        }
    }

    fn control(&mut self, msg: &Message<'_>) {
        self.control_at(arch::rdtsc(), msg);
    }

    fn control_at(&mut self, ts: u64, msg: &Message<'_>) {
        if self.control.push(ts, msg).is_err() {
            self.seal_control();
            // A control frame is far larger than any one control message.
            let _ = self.control.push(ts, msg);
        }
    }

    fn seal_control(&mut self) {
        if let Ok(n) = self.control.finish(&mut self.control_scratch)
            && n > 0
        {
            self.batch.bytes.extend_from_slice(&self.control_scratch[..n]);
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

    /// Applies what the host asked for: level filter, pause and resume. Host frames
    /// are COBS frames like the kernel's; damaged ones are ignored.
    fn host_commands(&mut self) {
        self.output.read(&mut self.host_bytes);
        while let Some(end) = self.host_bytes.iter().position(|&b| b == 0) {
            let mut frame: Vec<u8> = self.host_bytes.drain(..=end).collect();
            frame.pop();
            let Ok(frame) = proto::decode_frame(&mut frame) else {
                continue;
            };
            if frame.stream.ring != Ring::Host {
                continue;
            }
            for event in frame.events().flatten() {
                match event.message {
                    Message::Pause => {
                        log::info!("trace: host paused the stream");
                        self.paused = true;
                    }
                    Message::Resume => {
                        log::info!("trace: host resumed the stream");
                        self.paused = false;
                    }
                    Message::SetLevelFilter(f) => {
                        let level = match f.filter {
                            proto::LevelFilter::Off => None,
                            proto::LevelFilter::Level(l) => Some(l),
                        };
                        super::subscriber::set_filter(f.target, level);
                        log::info!("trace: level filter {:?} (target `{}`)", f.filter, f.target);
                    }
                    Message::RequestSnapshot { request } => self.snapshot(request),
                    Message::SetSampling(s) => crate::sampling::set_rate(s.hz),
                    _ => {}
                }
            }
        }
        // A host that sends bytes without delimiters cannot grow this without bound.
        if self.host_bytes.len() > 64 * 1024 {
            self.host_bytes.clear();
        }
    }

    /// Answers a snapshot request with every live task and wasm instance and their
    /// totals, so a console that connects late knows what was spawned before it
    /// came. The task totals are stamped with the time they were read: a console
    /// that orders events by time takes them in place of what it counted before
    /// that moment and adds what comes after.
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
        }
        self.control(&Message::SnapshotEnd { request });
    }

    /// Loss reports for what was dropped since the last report (only while a host
    /// listens, so no report is itself lost unnoticed).
    fn report_losses(&mut self) {
        for (cpu, producers) in cpus().iter().enumerate() {
            for (producer, ring) in [(&producers.task, Ring::Task), (&producers.irq, Ring::Interrupt)] {
                let count = producer.unreported.swap(0, Ordering::Relaxed);
                if count > 0 {
                    self.control(&Message::Loss {
                        cpu: cpu as u32,
                        ring,
                        count,
                    });
                }
            }
        }
    }

    /// The kernel's own totals, so a reader can check decoded + lost = produced.
    pub fn event_counts(&mut self) {
        for (cpu, producers) in cpus().iter().enumerate() {
            for (producer, ring) in [(&producers.task, Ring::Task), (&producers.irq, Ring::Interrupt)] {
                self.control(&Message::EventCounts {
                    cpu: cpu as u32,
                    ring,
                    produced: producer.produced.load(Ordering::Relaxed),
                    dropped: producer.dropped.load(Ordering::Relaxed),
                });
            }
        }
    }

    /// Moves what the rings hold into batches and writes them. Returns the bytes moved.
    pub async fn pump(&mut self) -> usize {
        seal_current_cpu();
        let was_connected = self.connected;
        self.connected = self.output.connected();
        if self.connected != was_connected {
            log::info!(
                "trace: host {}",
                if self.connected { "connected" } else { "disconnected" }
            );
        }
        if self.connected && !was_connected {
            self.paused = false;
            self.host_bytes.clear();
            self.hello();
        }
        self.host_commands();
        let mut moved = 0;
        for producers in cpus() {
            for producer in [&producers.task, &producers.irq] {
                loop {
                    let connected = self.connected && !self.paused;
                    let batch = &mut self.batch;
                    let mut full = false;
                    let popped = producer.ring.pop(&mut self.scratch, |events, frame| {
                        if !connected {
                            producer.drop_events(u64::from(events));
                            return true;
                        }
                        if batch.bytes.len() + frame.len() > batch.bytes.capacity() {
                            full = true;
                            return false;
                        }
                        batch.bytes.extend_from_slice(frame);
                        batch.frames.push((producer, events, frame.len()));
                        true
                    });
                    if full {
                        moved += self.flush().await;
                        continue;
                    }
                    if !popped {
                        break;
                    }
                }
            }
        }
        let now = arch::rdtsc();
        let hz = crate::time::tsc_hz().max(1);
        if self.connected {
            if now - self.last_loss_report > hz / LOSS_PERIOD_TICKS_PER_S {
                self.report_losses();
                self.last_loss_report = now;
            }
            if now - self.last_heartbeat > hz {
                self.control(&Message::Heartbeat);
                self.event_counts();
                self.last_heartbeat = now;
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
            match self.output.write(&self.batch.bytes[off..]) {
                Ok(n) => off += n,
                Err(WriteError::Full) => sched::sleep(Duration::from_micros(200)).await,
                Err(WriteError::NotConnected) => {
                    // Count every frame that did not go out whole.
                    let mut end = 0;
                    for &(producer, events, len) in &self.batch.frames {
                        end += len;
                        if end > off {
                            producer.drop_events(u64::from(events));
                        }
                    }
                    self.batch.frames.clear();
                    self.batch.bytes.clear();
                    self.connected = false;
                    return off;
                }
            }
        }
        self.batch.frames.clear();
        self.batch.bytes.clear();
        total
    }

    /// Runs until asked to finish: then drains everything, sends the final event
    /// counts and ends QEMU.
    pub async fn run(mut self) {
        loop {
            if FINISH.load(Ordering::Acquire) {
                // Let the other CPUs finish what they were doing when the workload
                // ended, stop producing, then let every CPU pass through idle, which
                // seals its open frames, so the final counts cover exactly what was sealed.
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
            }
        }
    }
}

static FINISH: AtomicBool = AtomicBool::new(false);

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
