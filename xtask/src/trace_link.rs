//! The host end of the kernel's `lucid.trace` port: a unix socket QEMU serves, read
//! into a `.lucid` recording or handed to a checker.

use std::{
    io::Read,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lucid_protocol::recording::RecordingWriter;

use crate::{
    artifacts::{self, BootImage},
    process,
    qemu_cmd::{self, Config},
};

/// How the trace leaves the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The `lucid.trace` virtio-serial port.
    Virtio,
    /// COM2 (no virtio-serial device: the kernel's fallback).
    Com2,
}

/// Boots `image` on 4 CPUs with `cmdline`, its trace on a fresh socket named after
/// `name`, and connects to it. COM1 is discarded.
pub fn boot(image: &BootImage, name: &str, cmdline: &str, link: Link) -> Result<(Child, UnixStream)> {
    let tag: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let socket = socket_path(&tag);
    let _ = std::fs::remove_file(&socket);
    let extra = match link {
        Link::Virtio => qemu_cmd::trace_port_args(&chardev(&socket)),
        Link::Com2 => vec![
            "-chardev".into(),
            chardev(&socket),
            "-serial".into(),
            "chardev:trace".into(),
        ],
    };
    let cfg = Config {
        smp: 4,
        memory: "512M".into(),
        cmdline: cmdline.into(),
        gdb: false,
        com1_file: None,
        extra,
    };
    let mut cmd = qemu_cmd::command(image, &cfg);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    process::show(&cmd);
    let child = cmd.spawn().context("start QEMU")?;
    let stream = connect(&socket, Duration::from_secs(10))?;
    Ok((child, stream))
}

/// Where QEMU serves the trace port for `name` (one socket per concurrent use).
pub fn socket_path(name: &str) -> PathBuf {
    artifacts::target_dir()
        .join("freestanding")
        .join(format!("{name}.sock"))
}

/// The `-chardev` spec for a socket server at `path`.
pub fn chardev(path: &Path) -> String {
    format!("socket,id=trace,path={},server=on,wait=off", path.display())
}

/// Connects to the socket QEMU creates, retrying until `timeout`.
pub fn connect(path: &Path, timeout: Duration) -> Result<UnixStream> {
    let start = Instant::now();
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() < timeout => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).with_context(|| format!("connect to {}", path.display())),
        }
    }
}

/// Reads the stream until EOF into a recording at `out`. Returns the bytes recorded.
pub fn record(mut stream: UnixStream, out: &Path) -> Result<u64> {
    let file = std::fs::File::create(out).with_context(|| format!("create {}", out.display()))?;
    let mut writer = RecordingWriter::new(std::io::BufWriter::new(file))?;
    let start = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e).context("read the trace socket"),
        };
        writer.write_chunk(start.elapsed().as_nanos() as u64, &buf[..n])?;
        total += n as u64;
    }
    writer.flush()?;
    Ok(total)
}
