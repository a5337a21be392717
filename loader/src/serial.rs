//! COM1 output for the loader's few messages (polled 16550, already set up by firmware).

use core::fmt;

const COM1: u16 = 0x3f8;

fn outb(port: u16, value: u8) {
    // SAFETY: writing the COM1 data/status ports has no effect on memory.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading the COM1 line status port has no effect on memory.
    unsafe { core::arch::asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
    value
}

/// Polled COM1 writer.
pub struct Com1;

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            while inb(COM1 + 5) & 0x20 == 0 {}
            outb(COM1, b);
        }
        Ok(())
    }
}

/// Prints a line prefixed with `lucid-loader:` to COM1.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::serial::Com1, "lucid-loader: {}", format_args!($($arg)*));
    }};
}
