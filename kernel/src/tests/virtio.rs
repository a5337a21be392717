use lucid_ktest_macros::ktest;

use crate::{
    drivers::virtio_serial::{TX_BUFFER, VirtioSerial},
    time::Instant,
};

/// The port xtask gives the test kernel; its bytes land in a file xtask checks.
const PORT_NAME: &str = "lucid.trace";
/// Bytes the streaming test sends after its header (xtask verifies them).
const STREAM_BYTES: usize = 4 * 1024 * 1024;

fn connected_port() -> VirtioSerial {
    let mut dev = VirtioSerial::probe(PORT_NAME).unwrap_or_else(|e| panic!("virtio-serial: {e}"));
    let start = Instant::now();
    while !dev.host_connected() {
        assert!(start.elapsed().as_millis() < 1000, "host never opened {PORT_NAME}");
        dev.poll();
    }
    dev
}

#[ktest]
fn virtio_serial_finds_the_named_port_and_its_host() {
    let dev = connected_port();
    assert_eq!(dev.name(), PORT_NAME);
    assert!(dev.stats().connects >= 1);
    assert_eq!(dev.in_flight(), 0);
}

/// Streams `LUCIDTST`, the byte count, then a counter pattern; xtask checks the file.
#[ktest]
fn virtio_serial_streams_megabytes_with_flow_control() {
    let mut dev = connected_port();
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(b"LUCIDTST");
    header[8..].copy_from_slice(&(STREAM_BYTES as u64).to_le_bytes());
    dev.write_all(&header).unwrap();
    let mut chunk = alloc::vec![0u8; TX_BUFFER];
    let start = Instant::now();
    let mut sent = 0usize;
    while sent < STREAM_BYTES {
        for (i, word) in chunk.chunks_exact_mut(4).enumerate() {
            word.copy_from_slice(&(((sent / 4) + i) as u32).to_le_bytes());
        }
        let n = (STREAM_BYTES - sent).min(TX_BUFFER);
        dev.write_all(&chunk[..n]).unwrap();
        sent += n;
    }
    dev.flush();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(dev.stats().bytes as usize, STREAM_BYTES + header.len());
    assert_eq!(dev.in_flight(), 0);
    crate::println!(
        "virtio-serial: {} MiB in {:.3} s = {:.1} MiB/s",
        STREAM_BYTES >> 20,
        secs,
        (STREAM_BYTES >> 20) as f64 / secs
    );
}
