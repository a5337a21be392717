//! The 8254 PIT, used only as a reference clock: channel 2, gated through port
//! 0x61, counts down without interrupts, and its count is read back (latched) right
//! next to each sample, so a delay in emulated port I/O does not skew the interval.

use super::Port;

/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;

fn read_count() -> u16 {
    // SAFETY: latching and reading channel 2's count only reads PIT state.
    unsafe {
        Port::<u8>::new(0x43).write(0b1000_0000); // latch channel 2
        let lo = Port::<u8>::new(0x42).read();
        let hi = Port::<u8>::new(0x42).read();
        u16::from_le_bytes([lo, hi])
    }
}

/// Counts down `ticks` PIT ticks (at most 65535, about 54.9 ms), calling `sample`
/// right after reading the count at the start and at the end. Returns both samples
/// and the PIT ticks that elapsed between the two count reads.
pub fn measure<T>(ticks: u16, mut sample: impl FnMut() -> T) -> (T, T, u64) {
    let mut gate: Port<u8> = Port::new(0x61);
    // SAFETY: ports 0x42/0x43/0x61 belong to the PIT and the speaker gate, which
    // nothing else in the kernel uses.
    unsafe {
        let g = gate.read();
        gate.write(g & !0x03); // speaker off, gate low
        Port::<u8>::new(0x43).write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0
        Port::<u8>::new(0x42).write(ticks as u8);
        Port::<u8>::new(0x42).write((ticks >> 8) as u8);
        gate.write((g & !0x02) | 0x01); // gate high: counting starts
    }
    let c0 = read_count();
    let start = sample();
    // SAFETY: reading the gate port's output bit only.
    while unsafe { gate.read() } & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let c1 = read_count();
    let end = sample();
    // In mode 0 the count keeps falling through zero and wraps.
    let elapsed = u64::from(c0.wrapping_sub(c1));
    (start, end, elapsed)
}

/// Measures the rates (per second) of the counters `sample` returns over `ticks` PIT
/// ticks, `runs` times, and returns the run with the median first-counter rate (a
/// run where the vCPU was descheduled between a count read and its sample lands at
/// an extreme and is discarded).
pub fn median_rates(runs: usize, ticks: u16, mut sample: impl FnMut() -> (u64, u64)) -> (u64, u64) {
    let mut rates = [(0u64, 0u64); 9];
    let runs = runs.clamp(1, rates.len());
    for r in rates.iter_mut().take(runs) {
        let ((a0, b0), (a1, b1), elapsed) = measure(ticks, &mut sample);
        let elapsed = elapsed.max(1);
        *r = (a1.abs_diff(a0) * PIT_HZ / elapsed, b1.abs_diff(b0) * PIT_HZ / elapsed);
    }
    let rates = &mut rates[..runs];
    rates.sort_unstable_by_key(|r| r.0);
    rates[runs / 2]
}

/// Masks the legacy 8259 PICs so only the APIC delivers interrupts.
pub fn disable_8259() {
    // SAFETY: writing the interrupt mask registers of both PICs only masks their lines.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
}
