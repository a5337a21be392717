//! `workload=link-bench:SECS`: the trace link's raw rate and then the trace stream's
//! rate, in one boot, for `cargo xtask bench` (issue 8, row 3).
//!
//! 1. **Raw link.** Before the drain exists, this task owns the `lucid.trace` port.
//!    Once a host has the port open it writes [`LINK_MAGIC`] and the chunk size,
//!    then whole [`TX_BUFFER`]-byte chunks (the driver's fast case: 64 KiB writes,
//!    [`TX_SLOTS`](crate::drivers::virtio_serial::TX_SLOTS) in flight, spinning on a full queue rather than
//!    sleeping) for SECS seconds. Each chunk starts with [`CHUNK_MORE`], the last
//!    with [`CHUNK_LAST`], so the host knows where the bulk data ends without a byte
//!    count known in advance. Tracing is still off, so nothing else touches the port
//!    or competes for it. The kernel prints its own figure to COM1 as
//!    `bench e2e.link_raw_guest_mib_per_s …`; the host's timing is the one that counts.
//! 2. **Trace stream.** The port goes to the drain (tracing on), and an event-heavy
//!    [`flood`] runs on every CPU for SECS seconds; then the drain sends the final
//!    counts and QEMU exits, as after `soak`.

use alloc::{vec, vec::Vec};
use core::time::Duration;

use lucid_executor::yield_now;

use crate::{
    arch::percpu,
    drivers::virtio_serial::{TX_BUFFER, VirtioSerial, WriteError},
    println,
    qemu::{self, ExitCode},
    sched,
    time::Instant,
    trace::{self, drain::TraceOutput},
};

/// First bytes on the port in a link bench, followed by the chunk size (u64 LE).
pub const LINK_MAGIC: &[u8; 8] = b"LUCIDLNK";
/// First bytes of every bulk chunk but the last.
pub const CHUNK_MORE: &[u8; 8] = b"LNK-MORE";
/// First bytes of the last bulk chunk; the trace stream follows it.
pub const CHUNK_LAST: &[u8; 8] = b"LNK-LAST";

/// How long the bench waits for a host to open the port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// SECS of `link-bench:SECS` on the command line, if that is the workload.
pub fn requested(cmdline: &str) -> Option<u64> {
    crate::cmdline::get(cmdline, "workload")?
        .strip_prefix("link-bench:")?
        .parse()
        .ok()
}

/// Spawns the bench; it takes `output` (which must be the virtio-serial port) and hands
/// it to the drain between the two phases.
pub fn spawn(output: TraceOutput, secs: u64) {
    sched::runtime()
        .builder()
        .name("link-bench")
        .on_cpu(0)
        .spawn(run(output, Duration::from_secs(secs)));
}

async fn run(output: TraceOutput, length: Duration) {
    let TraceOutput::Virtio(mut port) = output else {
        log::error!("link-bench: needs the lucid.trace virtio-serial port");
        qemu::exit(ExitCode::Failure);
    };
    let waiting = Instant::now();
    while !port.host_connected() {
        if waiting.elapsed() > CONNECT_TIMEOUT {
            log::error!("link-bench: no host opened lucid.trace");
            qemu::exit(ExitCode::Failure);
        }
        port.poll();
        sched::sleep(Duration::from_millis(1)).await;
    }
    match bulk(&mut port, length) {
        Ok((bytes, secs)) => {
            let mib_per_s = bytes as f64 / (1024.0 * 1024.0) / secs;
            println!("bench e2e.link_raw_guest_mib_per_s {mib_per_s:.3} MiB/s");
            log::info!("link-bench: {} MiB in {secs:.3} s", bytes >> 20);
        }
        Err(e) => {
            log::error!("link-bench: the host went away during the bulk phase ({e:?})");
            qemu::exit(ExitCode::Failure);
        }
    }
    trace::drain::spawn(TraceOutput::Virtio(port));
    flood(length).await;
    trace::drain::finish_and_exit();
}

/// Writes bulk chunks for `length`; returns the bytes written and the seconds taken
/// until the device had returned every buffer.
fn bulk(port: &mut VirtioSerial, length: Duration) -> Result<(u64, f64), WriteError> {
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(LINK_MAGIC);
    header[8..].copy_from_slice(&(TX_BUFFER as u64).to_le_bytes());
    port.write_all(&header)?;
    // Content does not matter past the marker; a counter pattern makes a stuck or
    // repeated buffer visible in a capture.
    let mut chunk: Vec<u8> = vec![0u8; TX_BUFFER];
    for (i, b) in chunk.iter_mut().enumerate() {
        *b = i as u8;
    }
    let start = Instant::now();
    let mut bytes = header.len() as u64;
    loop {
        let last = start.elapsed() >= length;
        chunk[..8].copy_from_slice(if last { CHUNK_LAST } else { CHUNK_MORE });
        // Spinning on a full queue (not sleeping) keeps all TX_SLOTS buffers busy:
        // the link's best case, which the drain's 200 µs back-off does not reach.
        port.write_all(&chunk)?;
        bytes += chunk.len() as u64;
        if last {
            break;
        }
    }
    port.flush();
    if !port.host_connected() {
        return Err(WriteError::NotConnected);
    }
    Ok((bytes, start.elapsed().as_secs_f64()))
}

/// As many events as the CPUs can make for `length`: per CPU, tasks that only yield
/// (PollStart, wake, PollEnd per round) and a spawner of short-lived tasks (spawn,
/// poll, completion, drop, join), with no sleeps, so the producers, not a timer,
/// set the rate.
async fn flood(length: Duration) {
    const YIELDERS_PER_CPU: usize = 3;
    let rt = sched::runtime();
    let end = Instant::now().saturating_add(length);
    let cpus = percpu::online().max(1) as usize;
    let mut handles = Vec::new();
    for cpu in 0..cpus {
        for _ in 0..YIELDERS_PER_CPU {
            handles.push(rt.builder().name("flood-yielder").on_cpu(cpu).spawn(async move {
                while Instant::now() < end {
                    yield_now().await;
                }
            }));
        }
        handles.push(rt.builder().name("flood-spawner").on_cpu(cpu).spawn(async move {
            while Instant::now() < end {
                let leaf = sched::runtime()
                    .builder()
                    .name("flood-leaf")
                    .on_cpu(cpu)
                    .spawn(async { yield_now().await });
                let _ = leaf.await;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}
