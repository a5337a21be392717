//! A virtio-serial (virtio-console with `VIRTIO_CONSOLE_F_MULTIPORT`) driver for one
//! named `virtserialport`, e.g. `lucid.trace`.
//!
//! Only multiport ports are flow-controlled by QEMU (data written to port 0, a
//! console, is dropped when the host is slow), so this driver speaks the control
//! protocol: DEVICE_READY → PORT_ADD → PORT_READY → PORT_NAME → PORT_OPEN, and
//! tracks whether a host is connected (PORT_OPEN from the device). While no host is
//! connected QEMU would discard writes, so [`VirtioSerial::write`] refuses them and
//! the caller counts what it drops.
//!
//! Queues: port 0 rx 0 / tx 1, control rx 2 / tx 3, port n ≥ 1 rx 2n+2 / tx 2n+3.
//! Control buffers are posted before DEVICE_READY, or QEMU drops its replies.

use bitflags::bitflags;
use virtio_drivers::{
    queue::VirtQueue,
    transport::{
        DeviceType, Transport,
        pci::{PciTransport, virtio_device_type},
    },
};

use super::{
    dma::KernelHal,
    pci,
    virtio_queue::{DmaQueue, QueueError},
};

bitflags! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const MULTIPORT = 1 << 1;
        const VERSION_1 = 1 << 32;
    }
}

const CONTROL_QUEUE: usize = 32;
const DATA_QUEUE: usize = 128;
/// Bytes of one receive buffer on the control queue (a header and a port name).
const CONTROL_SLOT: usize = 128;
/// Bytes of a control message the driver sends: `{ id: u32, event: u16, value: u16 }`.
const CONTROL_MESSAGE: usize = 8;
/// The one data port this driver serves (QEMU numbers the first virtserialport 1).
const PORT: u32 = 1;
const CTRL_RX: u16 = 2;
const CTRL_TX: u16 = 3;
const PORT_TX: u16 = (2 * PORT + 3) as u16;
const PORT_RX: u16 = (2 * PORT + 2) as u16;
/// Receive buffers posted for host → kernel bytes (commands are small).
const RX_SLOTS: usize = 8;
const RX_SLOT: usize = 512;
/// Received bytes kept until read, allocated once. When they are full the driver stops
/// taking receive buffers back from the device, so QEMU holds the host's further bytes
/// (the port is flow-controlled) and a flooding host cannot grow kernel memory.
pub const RX_KEEP: usize = 16 * 1024;

const DEVICE_READY: u16 = 0;
const PORT_ADD: u16 = 1;
const PORT_REMOVE: u16 = 2;
const PORT_READY: u16 = 3;
const PORT_OPEN: u16 = 6;
const PORT_NAME: u16 = 7;

/// Bytes in one transmit buffer (64 KiB writes are where the link is fast).
pub const TX_BUFFER: usize = 64 * 1024;
/// Transmit buffers in flight at most.
pub const TX_SLOTS: usize = 16;

/// Why the driver could not come up.
#[derive(Debug)]
pub enum ProbeError {
    /// No virtio console device on PCI bus 0.
    NoDevice,
    /// The PCI transport could not be set up.
    Transport(virtio_drivers::transport::pci::VirtioPciError),
    /// The device does not offer MULTIPORT.
    NoMultiport,
    /// A queue could not be set up or take a buffer.
    Queue(QueueError),
    /// The device never announced a port with the wanted name on port 1.
    PortNotFound,
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoDevice => write!(f, "no virtio-serial device"),
            Self::Transport(e) => write!(f, "virtio PCI transport: {e}"),
            Self::NoMultiport => write!(f, "virtio-serial device lacks MULTIPORT"),
            Self::Queue(e) => write!(f, "{e}"),
            Self::PortNotFound => write!(f, "no virtserialport with the wanted name on port {PORT}"),
        }
    }
}

impl core::error::Error for ProbeError {}

/// Why a write was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// No host has the port open: QEMU would discard the bytes.
    NotConnected,
    /// Every transmit buffer is in flight (the host is slow): retry later.
    Full,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotConnected => write!(f, "no host has the port open"),
            Self::Full => write!(f, "every transmit buffer is in flight"),
        }
    }
}

impl core::error::Error for WriteError {}

/// The receive queues [`VirtioSerial::poll`] keeps stocked with buffers.
#[derive(Clone, Copy, Debug)]
enum ReceiveQueue {
    Control,
    Port,
}

/// Counters of the data port.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Bytes handed to the device.
    pub bytes: u64,
    /// Writes handed to the device.
    pub writes: u64,
    /// Times the host connected.
    pub connects: u64,
    /// Times the host went away.
    pub disconnects: u64,
}

/// The driver for one named port.
pub struct VirtioSerial {
    /// Declared first so it drops first: that resets the device, which then leaves the
    /// queues' memory alone.
    transport: PciTransport,
    ctrl_rx: DmaQueue<CONTROL_QUEUE, CONTROL_QUEUE>,
    ctrl_tx: DmaQueue<CONTROL_QUEUE, CONTROL_QUEUE>,
    tx: DmaQueue<DATA_QUEUE, TX_SLOTS>,
    /// Port 0's queues: configured, never used.
    _unused_queues: [VirtQueue<KernelHal, 4>; 2],
    rx: DmaQueue<RX_SLOTS, RX_SLOTS>,
    rx_data: alloc::collections::VecDeque<u8>,
    /// Host bytes dropped because `rx_data` was full.
    pub rx_dropped: u64,
    name: [u8; 64],
    name_len: usize,
    want: &'static str,
    named: bool,
    host_connected: bool,
    stats: Stats,
}

impl core::fmt::Debug for VirtioSerial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtioSerial")
            .field("name", &self.name())
            .field("host_connected", &self.host_connected)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl VirtioSerial {
    /// Finds the virtio-serial device, negotiates MULTIPORT and waits (briefly) for
    /// the device to announce port 1 named `name`.
    pub fn probe(name: &'static str) -> Result<Self, ProbeError> {
        let (mut root, df) =
            pci::find(|info| virtio_device_type(info) == Some(DeviceType::Console)).ok_or(ProbeError::NoDevice)?;
        let mut transport = PciTransport::new::<KernelHal, _>(&mut root, df).map_err(ProbeError::Transport)?;
        let features = transport.begin_init(Features::MULTIPORT | Features::VERSION_1);
        if !features.contains(Features::MULTIPORT) {
            return Err(ProbeError::NoMultiport);
        }
        // Port 0's queues exist with MULTIPORT; set them up so the device sees a
        // complete configuration even though this driver does not use port 0.
        let setup = |e| ProbeError::Queue(QueueError::Setup(e));
        let port0_rx = VirtQueue::new(&mut transport, 0, false, false).map_err(setup)?;
        let port0_tx = VirtQueue::new(&mut transport, 1, false, false).map_err(setup)?;
        let ctrl_rx = DmaQueue::new(&mut transport, CTRL_RX, CONTROL_SLOT).map_err(ProbeError::Queue)?;
        let ctrl_tx = DmaQueue::new(&mut transport, CTRL_TX, CONTROL_MESSAGE).map_err(ProbeError::Queue)?;
        let rx = DmaQueue::new(&mut transport, PORT_RX, RX_SLOT).map_err(ProbeError::Queue)?;
        let tx = DmaQueue::new(&mut transport, PORT_TX, TX_BUFFER).map_err(ProbeError::Queue)?;
        transport.finish_init();

        let mut dev = Self {
            transport,
            ctrl_rx,
            ctrl_tx,
            tx,
            _unused_queues: [port0_rx, port0_tx],
            rx,
            rx_data: alloc::collections::VecDeque::with_capacity(RX_KEEP),
            rx_dropped: 0,
            name: [0; 64],
            name_len: 0,
            want: name,
            named: false,
            host_connected: false,
            stats: Stats::default(),
        };
        dev.ctrl_rx.refill(&mut dev.transport).map_err(ProbeError::Queue)?;
        dev.rx.refill(&mut dev.transport).map_err(ProbeError::Queue)?;
        dev.send_control(0, DEVICE_READY, 1).map_err(ProbeError::Queue)?;
        let start = crate::time::Instant::now();
        while !dev.named && start.elapsed().as_millis() < 200 {
            dev.poll();
            core::hint::spin_loop();
        }
        if !dev.named {
            return Err(ProbeError::PortNotFound);
        }
        Ok(dev)
    }

    /// Moves up to `max` bytes of what the host sent into `out`.
    pub fn read(&mut self, out: &mut alloc::vec::Vec<u8>, max: usize) {
        self.poll();
        let n = max.min(self.rx_data.len());
        out.extend(self.rx_data.drain(..n));
    }

    /// Sends one control message and waits (briefly) for the device to take it.
    fn send_control(&mut self, id: u32, event: u16, value: u16) -> Result<(), QueueError> {
        let mut msg = [0u8; CONTROL_MESSAGE];
        msg[..4].copy_from_slice(&id.to_le_bytes());
        msg[4..6].copy_from_slice(&event.to_le_bytes());
        msg[6..8].copy_from_slice(&value.to_le_bytes());
        let sent = self.ctrl_tx.send(&mut self.transport, &msg)?;
        let start = crate::time::Instant::now();
        while self.ctrl_tx.holds(sent) {
            // Takes back whichever message the device finished, this one or one that
            // timed out earlier.
            if self.ctrl_tx.pop_used().is_none() {
                if start.elapsed().as_millis() > 100 {
                    log::warn!("virtio-serial: control message {event} not taken by the device");
                    return Ok(());
                }
                core::hint::spin_loop();
            }
        }
        Ok(())
    }

    /// Handles control messages from the device, keeps what the host sent and reclaims
    /// finished transmits.
    pub fn poll(&mut self) {
        let mut msg = [0u8; CONTROL_SLOT];
        while let Some(received) = self.ctrl_rx.pop_used() {
            let len = received.len();
            msg[..len].copy_from_slice(received);
            // Back to the device before handling: the reply to a message sent while
            // handling it needs a buffer.
            self.refill(ReceiveQueue::Control);
            if len >= CONTROL_MESSAGE {
                self.handle_control(&msg[..len]);
            }
        }
        // Only while a whole slot fits: a buffer left with the device holds the host back.
        while self.rx_data.len() + RX_SLOT <= RX_KEEP
            && let Some(received) = self.rx.pop_used()
        {
            for &b in received {
                if self.rx_data.len() < RX_KEEP {
                    self.rx_data.push_back(b);
                } else {
                    self.rx_dropped += 1;
                }
            }
        }
        // Also retries a control refill that failed earlier.
        self.refill(ReceiveQueue::Control);
        self.refill(ReceiveQueue::Port);
        while self.tx.pop_used().is_some() {}
    }

    /// Gives a receive queue's free buffers back to the device. A failure leaves them
    /// free for the next poll to retry.
    fn refill(&mut self, queue: ReceiveQueue) {
        let refilled = match queue {
            ReceiveQueue::Control => self.ctrl_rx.refill(&mut self.transport),
            ReceiveQueue::Port => self.rx.refill(&mut self.transport),
        };
        if let Err(e) = refilled {
            log::warn!("virtio-serial: {queue:?} receive queue: {e}");
        }
    }

    fn handle_control(&mut self, msg: &[u8]) {
        let id = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let event = u16::from_le_bytes([msg[4], msg[5]]);
        let value = u16::from_le_bytes([msg[6], msg[7]]);
        match event {
            PORT_ADD => self.reply(id, PORT_READY, u16::from(id == PORT)),
            PORT_NAME if id == PORT => {
                // QEMU includes the terminating NUL.
                let name = &msg[8..];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                let n = name.len().min(self.name.len());
                self.name[..n].copy_from_slice(&name[..n]);
                self.name_len = n;
                if self.name() == self.want {
                    self.named = true;
                    self.reply(PORT, PORT_OPEN, 1);
                }
            }
            PORT_OPEN if id == PORT => {
                let connected = value != 0;
                if connected && !self.host_connected {
                    self.stats.connects += 1;
                } else if !connected && self.host_connected {
                    self.stats.disconnects += 1;
                    // QEMU may never return a buffer that was half written when the host
                    // left; those slots stay in flight until the device hands them back.
                }
                self.host_connected = connected;
            }
            PORT_REMOVE if id == PORT => {
                self.host_connected = false;
                self.named = false;
            }
            _ => {}
        }
    }

    /// Sends a control message from inside [`Self::poll`], which has no caller to
    /// report a failure to: the device will not see the reply, so say so.
    fn reply(&mut self, id: u32, event: u16, value: u16) {
        if let Err(e) = self.send_control(id, event, value) {
            log::warn!("virtio-serial: control message {event} for port {id} not sent: {e}");
        }
    }

    /// The port name the device announced.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// True while a host has the port open.
    pub fn host_connected(&self) -> bool {
        self.host_connected
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Transmit buffers the device still holds.
    pub fn in_flight(&self) -> usize {
        self.tx.held()
    }

    /// Queues up to [`TX_BUFFER`] bytes of `data`; returns how many were taken.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.poll();
        if !self.host_connected {
            return Err(WriteError::NotConnected);
        }
        // Whether every slot is in flight or the virtqueue has no free descriptor, the
        // device holds all it can take: retry once it hands buffers back.
        let sent = self.tx.send(&mut self.transport, data).map_err(|_| WriteError::Full)?;
        self.stats.bytes += sent.bytes as u64;
        self.stats.writes += 1;
        Ok(sent.bytes)
    }

    /// Writes all of `data`, spinning while the device is busy. Fails only if the host
    /// is (or goes) away.
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), WriteError> {
        while !data.is_empty() {
            match self.write(data) {
                Ok(n) => data = &data[n..],
                Err(WriteError::Full) => core::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits until the device has taken every queued buffer (or the host left).
    pub fn flush(&mut self) {
        while self.in_flight() > 0 && self.host_connected {
            self.poll();
            core::hint::spin_loop();
        }
    }
}
