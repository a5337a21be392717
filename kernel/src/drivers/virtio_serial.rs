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

use core::ptr::NonNull;

use bitflags::bitflags;
use virtio_drivers::{
    BufferDirection, Hal,
    queue::VirtQueue,
    transport::{
        DeviceType, Transport,
        pci::{PciTransport, virtio_device_type},
    },
};

use super::{dma::KernelHal, pci};

bitflags! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const MULTIPORT = 1 << 1;
        const VERSION_1 = 1 << 32;
    }
}

const CONTROL_QUEUE: usize = 32;
const DATA_QUEUE: usize = 128;
const CONTROL_SLOT: usize = 128;
/// The one data port this driver serves (QEMU numbers the first virtserialport 1).
const PORT: u32 = 1;
const CTRL_RX: u16 = 2;
const CTRL_TX: u16 = 3;
const PORT_TX: u16 = (2 * PORT + 3) as u16;
const PORT_RX: u16 = (2 * PORT + 2) as u16;
/// Receive buffers posted for host → kernel bytes (commands are small).
const RX_SLOTS: usize = 8;
const RX_SLOT: usize = 512;
/// Received bytes kept until read; more is dropped (a misbehaving host cannot grow it).
const RX_KEEP: usize = 16 * 1024;

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
    /// A queue could not be created.
    Queue(virtio_drivers::Error),
    /// Out of DMA memory.
    NoMemory,
    /// The device never announced a port with the wanted name on port 1.
    PortNotFound,
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoDevice => write!(f, "no virtio-serial device"),
            Self::Transport(e) => write!(f, "virtio PCI transport: {e}"),
            Self::NoMultiport => write!(f, "virtio-serial device lacks MULTIPORT"),
            Self::Queue(e) => write!(f, "virtqueue: {e}"),
            Self::NoMemory => write!(f, "no DMA memory"),
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

/// Physically contiguous DMA pages, freed on drop.
struct DmaPages {
    phys: u64,
    virt: NonNull<u8>,
    pages: usize,
}

impl DmaPages {
    fn new(pages: usize) -> Result<Self, ProbeError> {
        let (phys, virt) = KernelHal::dma_alloc(pages, BufferDirection::Both);
        if phys == 0 {
            return Err(ProbeError::NoMemory);
        }
        Ok(Self { phys, virt, pages })
    }

    /// `len` bytes at `offset`.
    ///
    /// # Safety
    /// The caller must not create overlapping live slices.
    unsafe fn slice(&self, offset: usize, len: usize) -> &'static mut [u8] {
        assert!(offset + len <= self.pages * 4096);
        // SAFETY: in bounds of memory this value owns; the caller rules out aliasing.
        unsafe { core::slice::from_raw_parts_mut(self.virt.as_ptr().add(offset), len) }
    }
}

impl Drop for DmaPages {
    fn drop(&mut self) {
        // SAFETY: `phys`/`virt` came from `dma_alloc` with `pages` pages.
        unsafe { KernelHal::dma_dealloc(self.phys, self.virt, self.pages) };
    }
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
    transport: PciTransport,
    ctrl_rx: VirtQueue<KernelHal, CONTROL_QUEUE>,
    ctrl_tx: VirtQueue<KernelHal, CONTROL_QUEUE>,
    tx: VirtQueue<KernelHal, DATA_QUEUE>,
    /// Port 0's queues: configured, never used.
    _unused_queues: [VirtQueue<KernelHal, 4>; 2],
    rx: VirtQueue<KernelHal, RX_SLOTS>,
    rx_mem: DmaPages,
    rx_tokens: [Option<u16>; RX_SLOTS],
    rx_data: alloc::collections::VecDeque<u8>,
    /// Host bytes dropped because `rx_data` was full.
    pub rx_dropped: u64,
    ctrl_rx_mem: DmaPages,
    ctrl_rx_tokens: [Option<u16>; CONTROL_QUEUE],
    ctrl_tx_mem: DmaPages,
    tx_mem: DmaPages,
    /// Per transmit slot: the token and length while the device owns it.
    tx_inflight: [Option<(u16, usize)>; TX_SLOTS],
    name: [u8; 64],
    name_len: usize,
    want: &'static str,
    named: bool,
    host_connected: bool,
    stats: Stats,
}

// SAFETY: the driver owns its DMA pages and queues exclusively; nothing in it is tied
// to the CPU that created it, so it may move to (and be used from) another CPU.
unsafe impl Send for VirtioSerial {}

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
        let port0_rx = VirtQueue::new(&mut transport, 0, false, false).map_err(ProbeError::Queue)?;
        let port0_tx = VirtQueue::new(&mut transport, 1, false, false).map_err(ProbeError::Queue)?;
        let ctrl_rx = VirtQueue::new(&mut transport, CTRL_RX, false, false).map_err(ProbeError::Queue)?;
        let ctrl_tx = VirtQueue::new(&mut transport, CTRL_TX, false, false).map_err(ProbeError::Queue)?;
        let rx = VirtQueue::new(&mut transport, PORT_RX, false, false).map_err(ProbeError::Queue)?;
        let tx = VirtQueue::new(&mut transport, PORT_TX, false, false).map_err(ProbeError::Queue)?;
        transport.finish_init();

        let mut dev = Self {
            transport,
            ctrl_rx,
            ctrl_tx,
            tx,
            _unused_queues: [port0_rx, port0_tx],
            rx,
            rx_mem: DmaPages::new((RX_SLOTS * RX_SLOT).div_ceil(4096))?,
            rx_tokens: [None; RX_SLOTS],
            rx_data: alloc::collections::VecDeque::new(),
            rx_dropped: 0,
            ctrl_rx_mem: DmaPages::new((CONTROL_QUEUE * CONTROL_SLOT).div_ceil(4096))?,
            ctrl_rx_tokens: [None; CONTROL_QUEUE],
            ctrl_tx_mem: DmaPages::new(1)?,
            tx_mem: DmaPages::new(TX_SLOTS * TX_BUFFER / 4096)?,
            tx_inflight: [None; TX_SLOTS],
            name: [0; 64],
            name_len: 0,
            want: name,
            named: false,
            host_connected: false,
            stats: Stats::default(),
        };
        for slot in 0..CONTROL_QUEUE {
            dev.post_control_buffer(slot);
        }
        for slot in 0..RX_SLOTS {
            dev.post_rx_buffer(slot);
        }
        dev.send_control(0, DEVICE_READY, 1);
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

    fn post_control_buffer(&mut self, slot: usize) {
        // SAFETY: each slot is a disjoint CONTROL_SLOT-byte range; the device owns it
        // until `poll` pops it with the same slice.
        let buf = unsafe { self.ctrl_rx_mem.slice(slot * CONTROL_SLOT, CONTROL_SLOT) };
        // SAFETY: the buffer stays valid (owned by `self`) until popped in `poll`.
        let token = unsafe { self.ctrl_rx.add(&[], &mut [buf]) }.expect("control queue has room");
        self.ctrl_rx_tokens[slot] = Some(token);
        if self.ctrl_rx.should_notify() {
            self.transport.notify(CTRL_RX);
        }
    }

    fn post_rx_buffer(&mut self, slot: usize) {
        // SAFETY: each slot is a disjoint RX_SLOT-byte range; the device owns it until
        // `poll` pops it with the same slice.
        let buf = unsafe { self.rx_mem.slice(slot * RX_SLOT, RX_SLOT) };
        // SAFETY: the buffer stays valid (owned by `self`) until popped in `poll`.
        let token = unsafe { self.rx.add(&[], &mut [buf]) }.expect("receive queue has room");
        self.rx_tokens[slot] = Some(token);
        if self.rx.should_notify() {
            self.transport.notify(PORT_RX);
        }
    }

    /// Moves what the host sent into `out`.
    pub fn read(&mut self, out: &mut alloc::vec::Vec<u8>) {
        self.poll();
        out.extend(self.rx_data.drain(..));
    }

    /// Sends one control message and waits for the device to take it.
    fn send_control(&mut self, id: u32, event: u16, value: u16) {
        // SAFETY: the control transmit page is used by one message at a time.
        let buf = unsafe { self.ctrl_tx_mem.slice(0, 8) };
        buf[..4].copy_from_slice(&id.to_le_bytes());
        buf[4..6].copy_from_slice(&event.to_le_bytes());
        buf[6..8].copy_from_slice(&value.to_le_bytes());
        let bytes: &[u8] = buf;
        // SAFETY: `bytes` stays valid until popped below.
        let token = unsafe { self.ctrl_tx.add(&[bytes], &mut []) }.expect("control transmit queue has room");
        self.transport.notify(CTRL_TX);
        let start = crate::time::Instant::now();
        while self.ctrl_tx.peek_used() != Some(token) {
            if start.elapsed().as_millis() > 100 {
                log::warn!("virtio-serial: control message {event} not taken by the device");
                return;
            }
            core::hint::spin_loop();
        }
        // SAFETY: the same buffer as added with this token.
        let _ = unsafe { self.ctrl_tx.pop_used(token, &[bytes], &mut []) };
    }

    /// Handles control messages from the device and reclaims finished transmits.
    pub fn poll(&mut self) {
        while let Some(token) = self.ctrl_rx.peek_used() {
            let Some(slot) = self.ctrl_rx_tokens.iter().position(|t| *t == Some(token)) else {
                log::error!("virtio-serial: unknown control token {token}");
                return;
            };
            // SAFETY: the same slot buffer that was added with `token`.
            let buf = unsafe { self.ctrl_rx_mem.slice(slot * CONTROL_SLOT, CONTROL_SLOT) };
            // SAFETY: as above.
            let len = unsafe { self.ctrl_rx.pop_used(token, &[], &mut [buf]) }.unwrap_or(0) as usize;
            self.ctrl_rx_tokens[slot] = None;
            // SAFETY: the device is done with the slot; read it before re-posting.
            let msg = unsafe { self.ctrl_rx_mem.slice(slot * CONTROL_SLOT, CONTROL_SLOT) };
            if len >= 8 {
                let mut copy = [0u8; CONTROL_SLOT];
                copy[..len.min(CONTROL_SLOT)].copy_from_slice(&msg[..len.min(CONTROL_SLOT)]);
                self.handle_control(&copy[..len.min(CONTROL_SLOT)]);
            }
            self.post_control_buffer(slot);
        }
        while let Some(token) = self.rx.peek_used() {
            let Some(slot) = self.rx_tokens.iter().position(|t| *t == Some(token)) else {
                log::error!("virtio-serial: unknown receive token {token}");
                return;
            };
            // SAFETY: the same slot buffer that was added with `token`.
            let buf = unsafe { self.rx_mem.slice(slot * RX_SLOT, RX_SLOT) };
            // SAFETY: as above.
            let len = unsafe { self.rx.pop_used(token, &[], &mut [buf]) }.unwrap_or(0) as usize;
            self.rx_tokens[slot] = None;
            // SAFETY: the device is done with the slot; read it before re-posting.
            let data = unsafe { self.rx_mem.slice(slot * RX_SLOT, len.min(RX_SLOT)) };
            for &b in data.iter() {
                if self.rx_data.len() < RX_KEEP {
                    self.rx_data.push_back(b);
                } else {
                    self.rx_dropped += 1;
                }
            }
            self.post_rx_buffer(slot);
        }
        self.reclaim();
    }

    fn handle_control(&mut self, msg: &[u8]) {
        let id = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let event = u16::from_le_bytes([msg[4], msg[5]]);
        let value = u16::from_le_bytes([msg[6], msg[7]]);
        match event {
            PORT_ADD => self.send_control(id, PORT_READY, u16::from(id == PORT)),
            PORT_NAME if id == PORT => {
                // QEMU includes the terminating NUL.
                let name = &msg[8..];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                let n = name.len().min(self.name.len());
                self.name[..n].copy_from_slice(&name[..n]);
                self.name_len = n;
                if self.name() == self.want {
                    self.named = true;
                    self.send_control(PORT, PORT_OPEN, 1);
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

    fn reclaim(&mut self) {
        while let Some(token) = self.tx.peek_used() {
            let Some(slot) = self.tx_inflight.iter().position(|s| s.is_some_and(|(t, _)| t == token)) else {
                log::error!("virtio-serial: unknown transmit token {token}");
                return;
            };
            let (_, len) = self.tx_inflight[slot].take().expect("slot is in flight");
            // SAFETY: the same slot bytes that were added with `token`.
            let buf: &[u8] = unsafe { self.tx_mem.slice(slot * TX_BUFFER, len) };
            // SAFETY: as above.
            let _ = unsafe { self.tx.pop_used(token, &[buf], &mut []) };
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
        self.tx_inflight.iter().filter(|s| s.is_some()).count()
    }

    /// Queues up to [`TX_BUFFER`] bytes of `data`; returns how many were taken.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.poll();
        if !self.host_connected {
            return Err(WriteError::NotConnected);
        }
        let slot = self
            .tx_inflight
            .iter()
            .position(Option::is_none)
            .ok_or(WriteError::Full)?;
        let len = data.len().min(TX_BUFFER);
        // SAFETY: the slot is not in flight, so nothing else refers to its bytes.
        let buf = unsafe { self.tx_mem.slice(slot * TX_BUFFER, len) };
        buf.copy_from_slice(&data[..len]);
        let bytes: &[u8] = buf;
        // SAFETY: the slot stays owned by `self` and untouched until `reclaim` pops it.
        let token = unsafe { self.tx.add(&[bytes], &mut []) }.map_err(|_| WriteError::Full)?;
        self.tx_inflight[slot] = Some((token, len));
        if self.tx.should_notify() {
            self.transport.notify(PORT_TX);
        }
        self.stats.bytes += len as u64;
        self.stats.writes += 1;
        Ok(len)
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
