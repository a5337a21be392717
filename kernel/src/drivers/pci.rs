//! PCI configuration space through the legacy port mechanism (0xcf8/0xcfc), and
//! finding devices on bus 0 (QEMU's `pc` machine puts everything there; SeaBIOS
//! has already assigned the BARs).

use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, PciRoot};

use crate::arch::Port;

/// Configuration access through ports 0xcf8/0xcfc.
#[derive(Debug)]
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (u32::from(df.bus) << 16)
        | (u32::from(df.device) << 11)
        | (u32::from(df.function) << 8)
        | u32::from(offset & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        let _irq = crate::arch::InterruptGuard::new();
        // SAFETY: the PCI configuration ports are owned by this module; the address
        // then data sequence runs with interrupts off so it is not interleaved locally.
        unsafe {
            Port::<u32>::new(0xcf8).write(address(df, offset));
            Port::<u32>::new(0xcfc).read()
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        let _irq = crate::arch::InterruptGuard::new();
        // SAFETY: as in `read_word`.
        unsafe {
            Port::<u32>::new(0xcf8).write(address(df, offset));
            Port::<u32>::new(0xcfc).write(data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// The first device on bus 0 for which `matches` holds, with memory decoding and bus
/// mastering enabled.
pub fn find(matches: impl Fn(&DeviceFunctionInfo) -> bool) -> Option<(PciRoot<PortCam>, DeviceFunction)> {
    let mut root = PciRoot::new(PortCam);
    let (df, _) = root.enumerate_bus(0).find(|(_, info)| matches(info))?;
    root.set_command(df, Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER);
    Some((root, df))
}
