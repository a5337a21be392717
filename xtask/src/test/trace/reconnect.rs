//! A host that comes and goes: three connections to one boot, each ended by
//! pausing the stream, reading what is in flight and leaving. While no host
//! listens the kernel drops and counts; on each reconnect it reports those losses.
//! Over the whole boot, the events decoded on every connection plus the losses
//! reported must equal what the kernel produced, lane by lane. The bytes of every
//! connection are also recorded, and `lucid stats` on the recording must place
//! that loss while no console was attached, not while one was.

use std::{
    fs::File,
    io::{BufWriter, Read, Write},
    os::unix::net::UnixStream,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lucid_protocol::{Decoder, FrameEncoder, Message, Ring, StreamId, recording::RecordingWriter};

use super::{ended_cleanly, reader};
use crate::{
    artifacts::{self, BootImage},
    process, qemu_cmd,
    test::{Tally, record_checks},
    trace_link::{self, Link},
};

/// Connections made to the one boot.
const CONNECTIONS: usize = 3;
/// How long each connection but the last reads before it pauses and leaves.
const READ_FOR: Duration = Duration::from_millis(2000);
/// How long a leaving host keeps reading after its `Pause` (what is in flight).
const DRAIN_FOR: Duration = Duration::from_millis(600);
/// How long no host listens between connections.
const AWAY_FOR: Duration = Duration::from_millis(1000);

pub fn host_reconnects(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("trace end to end: {CONNECTIONS} connections to one boot, the host away between them");
    let name = "check-reconnect";
    let (mut child, mut stream) = trace_link::boot(image, name, "workload=soak:10", Link::Virtio)?;
    let start = Instant::now();
    let path = artifacts::target_dir().join("freestanding").join("reconnect.lucid");
    let file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let mut recording = RecordingWriter::new(BufWriter::new(file))?;
    let mut seen = reader::Observed::default();
    let mut polls_per_connection = Vec::new();
    for connection in 0..CONNECTIONS {
        let last = connection + 1 == CONNECTIONS;
        let polls = seen.polls;
        read_connection(&mut stream, &mut seen, &mut recording, &mut child, start, last)?;
        polls_per_connection.push(seen.polls - polls);
        if last {
            break;
        }
        drop(stream);
        std::thread::sleep(AWAY_FOR);
        stream = trace_link::connect(&trace_link::socket_path(name), Duration::from_secs(10))?;
    }
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(10))?;
    recording.flush()?;
    drop(recording);
    let lucid = crate::test::console_binary()?;
    let mut cmd = Command::new(&lucid);
    cmd.arg("stats").arg(&path).arg("--json");
    process::show(&cmd);
    let out = cmd.output().context("run lucid stats")?;
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).context("lucid stats --json output")?;
    let number = |key: &str| stats[key].as_u64();
    let attached_warnings = stats["warnings"].as_array().map_or(0, |w| {
        w.iter()
            .filter(|w| w.to_string().contains("while this console was attached"))
            .count()
    });
    let checks = [
        ended_cleanly(outcome),
        (
            "every connection decodes task events",
            polls_per_connection.len() == CONNECTIONS && polls_per_connection.iter().all(|&p| p > 0),
            format!("task polls per connection: {polls_per_connection:?}"),
        ),
        (
            "the kernel counts what it dropped while no host listened",
            seen.total_lost() > 0,
            "0 lost".to_string(),
        ),
        (
            "losses are exact over every connection: decoded + lost = produced",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
        (
            "lucid stats places the loss while no console was attached, not while one was",
            number("dropped_events") == Some(seen.total_lost())
                && number("dropped_unattached") == Some(seen.total_lost())
                && number("dropped_attached") == Some(0)
                && attached_warnings == 0,
            format!(
                "dropped {:?} (unattached {:?}, attached {:?}), {attached_warnings} warnings of loss while attached; the reader saw {} lost",
                number("dropped_events"),
                number("dropped_unattached"),
                number("dropped_attached"),
                seen.total_lost()
            ),
        ),
    ];
    println!(
        "trace reconnect: {} events decoded over {CONNECTIONS} connections ({polls_per_connection:?} task polls), {} lost",
        seen.events,
        seen.total_lost()
    );
    record_checks(tally, "trace reconnect", checks);
    Ok(())
}

/// Reads one connection into `seen` with a decoder of its own: the last one to the
/// end of the boot, the others for [`READ_FOR`], then `Pause` and [`DRAIN_FOR`].
fn read_connection(
    stream: &mut UnixStream,
    seen: &mut reader::Observed,
    recording: &mut RecordingWriter<BufWriter<File>>,
    child: &mut std::process::Child,
    start: Instant,
    last: bool,
) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 256 * 1024];
    let connected = Instant::now();
    let mut paused_at = None;
    loop {
        if start.elapsed() > reader::TIMEOUT {
            let _ = child.kill();
            anyhow::bail!(
                "the reconnect run did not finish within {} s",
                reader::TIMEOUT.as_secs()
            );
        }
        if !last {
            match paused_at {
                None if connected.elapsed() >= READ_FOR => {
                    let mut host = FrameEncoder::new([0u8; 64], StreamId::new(0, Ring::Host));
                    let mut wire = [0u8; 128];
                    host.push(0, &Message::Pause).context("encode Pause")?;
                    let n = host.finish(&mut wire).context("seal Pause")?;
                    stream.write_all(&wire[..n]).context("send Pause")?;
                    paused_at = Some(Instant::now());
                }
                Some(at) if at.elapsed() >= DRAIN_FOR => break,
                _ => {}
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                recording.write_chunk(start.elapsed().as_nanos() as u64, &buf[..n])?;
                decoder.feed(&buf[..n], |item| seen.item(item));
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if child.try_wait()?.is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read the trace socket"),
        }
    }
    decoder.finish(|item| seen.item(item));
    Ok(())
}
