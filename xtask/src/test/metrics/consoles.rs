//! The consoles the metrics scenario scrapes: `lucid live --metrics` on a socket,
//! `lucid replay --headless --metrics` on a recording, the synthetic stream served
//! on a socket, and `lucid stats --json` of a recording.

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    os::unix::net::UnixListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::synthetic;
use crate::process;

/// A child process killed (and reaped) when dropped, so an early error leaves nothing
/// running.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `lucid live --socket SOCKET --metrics 127.0.0.1:0` and returns it with the address
/// it serves on (read from its stderr, which is passed on).
pub fn console(lucid: &Path, socket: &Path, instance: &str, recording: &Path) -> Result<(Reaped, SocketAddr)> {
    let mut cmd = Command::new(lucid);
    cmd.arg("live")
        .arg("--socket")
        .arg(socket)
        .args([
            "--metrics",
            "127.0.0.1:0",
            "--instance",
            instance,
            "--headless-for",
            "120",
        ])
        .arg("--record")
        .arg(recording);
    serve(cmd, instance)
}

/// Starts `lucid replay RECORDING --headless --metrics ADDR`: the state at the end of
/// the recording, held until killed.
pub fn replay_console(
    lucid: &Path,
    recording: &Path,
    addr: SocketAddr,
    instance: &str,
) -> Result<(Reaped, SocketAddr)> {
    let mut cmd = Command::new(lucid);
    cmd.arg("replay")
        .arg(recording)
        .args(["--headless", "--metrics", &addr.to_string(), "--instance", instance]);
    serve(cmd, instance)
}

/// Runs a console command and returns it with the metrics address it announces.
fn serve(mut cmd: Command, instance: &str) -> Result<(Reaped, SocketAddr)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    process::show(&cmd);
    let mut child = Reaped(cmd.spawn().context("start lucid live")?);
    let stderr = child.0.stderr.take().context("piped stderr")?;
    let (tx, rx) = mpsc::channel();
    let instance = instance.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .strip_prefix("lucid: metrics at http://")
                .and_then(|l| l.strip_suffix("/metrics"))
            {
                let _ = tx.send(addr.to_string());
            } else {
                eprintln!("lucid ({instance}): {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .context("lucid live did not say where it serves metrics")?;
    Ok((child, addr.parse().with_context(|| format!("metrics address {addr}"))?))
}

/// Serves the synthetic stream to the first client on `socket` that connects within
/// 30 s, then stops listening (the console keeps what it received and retries in vain).
pub fn serve_synthetic(socket: &Path) -> Result<JoinHandle<()>> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))?;
    // Polled, so a console that never connects cannot hang the step.
    listener.set_nonblocking(true)?;
    let wire = synthetic::stream();
    Ok(std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.write_all(&wire);
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }))
}

/// `lucid stats --json` of `recording`.
pub fn stats(lucid: &Path, recording: &Path) -> Result<Value> {
    let mut cmd = Command::new(lucid);
    cmd.arg("stats").arg(recording).arg("--json");
    process::show(&cmd);
    let out = cmd.output().context("run lucid stats")?;
    if !out.status.success() {
        bail!("lucid stats failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("lucid stats printed no JSON object")
}
