//! Device drivers.

pub mod dma;
pub mod pci;
pub mod uart;
pub mod virtio_serial;
