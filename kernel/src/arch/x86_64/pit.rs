//! The 8254 PIT, used only as a reference clock: channel 2 with its gate driven
//! through port 0x61 counts down a known interval without interrupts.

use super::Port;

/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Busy-waits for `ticks` PIT ticks (at most 65535, about 54.9 ms) and calls
/// `sample` right after the countdown starts and right after it ends.
pub fn measure<T>(ticks: u16, mut sample: impl FnMut() -> T) -> (T, T) {
    let mut gate: Port<u8> = Port::new(0x61);
    let mut cmd: Port<u8> = Port::new(0x43);
    let mut ch2: Port<u8> = Port::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 belong to the PIT and the speaker gate, which
    // nothing else in the kernel uses.
    unsafe {
        let g = gate.read();
        gate.write((g & !0x02) & !0x01); // speaker off, gate low
        cmd.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        ch2.write(ticks as u8);
        ch2.write((ticks >> 8) as u8);
        let g = gate.read();
        gate.write(g | 0x01); // gate high: counting starts
        let start = sample();
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let end = sample();
        (start, end)
    }
}

/// Masks the legacy 8259 PICs so only the APIC delivers interrupts.
pub fn disable_8259() {
    // SAFETY: writing the interrupt mask registers of both PICs only masks their lines.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
}
