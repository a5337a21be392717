//! The bytes the streaming in-QEMU test sends over virtio-serial, checked on the host.

use std::path::{Path, PathBuf};

use crate::artifacts;

/// The in-QEMU test whose bytes the host checks.
pub const STREAM_TEST: &str = "virtio_serial_streams_megabytes_with_flow_control";

/// Where the test kernel's `lucid.trace` port writes (appended across boots).
pub fn trace_file() -> PathBuf {
    artifacts::target_dir().join("freestanding").join("ktest-trace.bin")
}

/// Checks what the streaming test sent: `LUCIDTST`, a byte count, then that many
/// bytes of little-endian u32 counters.
pub fn verify(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = bytes
        .windows(8)
        .position(|w| w == b"LUCIDTST")
        .ok_or("no LUCIDTST header in the stream")?;
    let body = &bytes[at + 16..];
    let len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes")) as usize;
    if body.len() < len {
        return Err(format!("stream has {} of {len} bytes", body.len()));
    }
    for (i, word) in body[..len].chunks_exact(4).enumerate() {
        let got = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        if got != i as u32 {
            return Err(format!("word {i} (byte {}) is {got}, expected {i}", i * 4));
        }
    }
    println!("virtio-serial stream: {len} bytes intact");
    Ok(())
}
