//! Device drivers.

pub mod dma;
pub mod pci;
pub mod uart;
pub mod virtio_queue;
pub mod virtio_serial;
