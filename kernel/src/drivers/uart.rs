//! The 16550 UART on COM1: the early log sink a person reads while the kernel boots.

use core::fmt;

use crate::sync::SpinLock;

use crate::arch::{InterruptGuard, Port};

const COM1: u16 = 0x3f8;
/// The second UART: the trace stream's fallback when there is no virtio-serial device.
pub const COM2: u16 = 0x2f8;

/// A polled 16550.
#[derive(Debug)]
pub struct Uart {
    base: u16,
}

impl Uart {
    /// Programs 115200 8N1 with FIFOs.
    pub fn init(base: u16) -> Self {
        let reg = |off: u16, v: u8| {
            // SAFETY: the COM1 register block belongs to this driver alone.
            unsafe { Port::<u8>::new(base + off).write(v) }
        };
        reg(1, 0x00); // no interrupts
        reg(3, 0x80); // DLAB
        reg(0, 0x01); // divisor 1 = 115200 baud
        reg(1, 0x00);
        reg(3, 0x03); // 8N1
        reg(2, 0xc7); // FIFO on, cleared, 14-byte threshold
        reg(4, 0x03); // DTR, RTS
        Self { base }
    }

    /// Writes one byte, waiting for room in the transmitter.
    pub fn write_byte(&mut self, b: u8) {
        // SAFETY: reading the line status and writing the data register of our UART.
        unsafe {
            let mut lsr = Port::<u8>::new(self.base + 5);
            while lsr.read() & 0x20 == 0 {
                core::hint::spin_loop();
            }
            Port::<u8>::new(self.base).write(b);
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}

static COM1_PORT: SpinLock<Option<Uart>> = SpinLock::new(None);

/// Sets up COM1.
pub fn init() {
    *COM1_PORT.lock() = Some(Uart::init(COM1));
}

/// Writes to COM1 with interrupts off, so an interrupt handler that logs cannot
/// deadlock on the port lock.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let _irq = InterruptGuard::new();
    let mut port = COM1_PORT.lock();
    if let Some(uart) = port.as_mut() {
        let _ = fmt::Write::write_fmt(uart, args);
    }
}

/// Writes to COM1 even if the lock is held (panic and fault paths on a wedged CPU).
///
/// # Safety
/// Output may interleave with a writer that holds the lock; callers accept that
/// because the kernel is about to stop.
pub unsafe fn force_write_fmt(args: fmt::Arguments<'_>) {
    if let Some(mut guard) = COM1_PORT.try_lock() {
        if let Some(uart) = guard.as_mut() {
            let _ = fmt::Write::write_fmt(uart, args);
        }
        return;
    }
    let _ = fmt::Write::write_fmt(&mut Uart { base: COM1 }, args);
}

/// Prints to COM1 (no newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::drivers::uart::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to COM1.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::drivers::uart::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
