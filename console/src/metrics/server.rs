//! The HTTP endpoint: `GET /metrics` on its own thread, serving the exposition the
//! owner of the [`State`] last published. Rendering happens at publish time on the
//! owner's thread and the lock only swaps a pointer, so a slow scraper never holds up
//! ingest or the UI, and a scrape never sees a half-updated state.
//!
//! A client cannot stall it: each connection is served on a thread of its own, one
//! request per connection, and the whole exchange (reading a head of at most
//! [`MAX_REQUEST_BYTES`], writing the answer) must end within [`REQUEST_DEADLINE`],
//! so a client that sends slowly, never finishes its headers or never reads is cut
//! off then. At most [`MAX_CLIENTS`] connections are served at once (more are closed
//! at once). Stopping the server waits for the accept loop only, never for a client.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::MetricsError;
use super::encode::{instance_name, render};
use super::text::CONTENT_TYPE;
use crate::state::State;

/// [`Server::publish_if_due`] renders at most this often.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// Time one connection may take from accept to the end of its answer.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Longest request head (request line and headers) read.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CLIENTS: usize = 16;
/// How often the accept loop checks whether the server is stopping.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// Bytes handed to one socket write.
const WRITE_CHUNK: usize = 64 * 1024;
/// Content type of the error answers.
const PLAIN: &str = "text/plain; charset=utf-8";

/// A running `/metrics` endpoint. Dropping it stops the thread.
pub struct Server {
    addr: SocketAddr,
    instance: Option<String>,
    body: Arc<Mutex<Arc<str>>>,
    last_publish: Mutex<Option<Instant>>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `addr` (`host:port`; port 0 picks a free one). Samples are labelled
    /// `instance="<instance>"`, or with the kernel's build id when `instance` is
    /// `None`. Until the first [`Server::publish`] it serves an empty state (no samples
    /// at all without `instance`).
    pub fn start(addr: &str, instance: Option<String>) -> Result<Self, MetricsError> {
        let bad = |e: std::io::Error| MetricsError::Address {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let resolved: Vec<SocketAddr> = addr.to_socket_addrs().map_err(bad)?.collect();
        let listener = TcpListener::bind(&resolved[..]).map_err(|e| MetricsError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let local = listener.local_addr().map_err(bad)?;
        // Polled, so stopping never depends on another connection arriving.
        listener.set_nonblocking(true).map_err(bad)?;
        let closing = Arc::new(AtomicBool::new(false));
        // Before the first publish: zeros under a given name, else nothing, so no series
        // appears under a fallback name that the kernel's build id replaces a moment later.
        let initial = instance
            .as_deref()
            .map_or_else(String::new, |name| render(&State::new(), name));
        let body: Arc<Mutex<Arc<str>>> = Arc::new(Mutex::new(initial.into()));
        let thread = {
            let (body, closing) = (Arc::clone(&body), Arc::clone(&closing));
            std::thread::Builder::new()
                .name("lucid-metrics".into())
                .spawn(move || accept_loop(&listener, &body, &closing))
                .map_err(|e| MetricsError::Bind {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?
        };
        Ok(Self {
            addr: local,
            instance,
            body,
            last_publish: Mutex::new(None),
            closing,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Renders `state` and serves it from now on.
    pub fn publish(&self, state: &State) {
        let text: Arc<str> = render(state, &instance_name(self.instance.as_deref(), state)).into();
        *self.body.lock().unwrap_or_else(PoisonError::into_inner) = text;
        *self.last_publish.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// [`Server::publish`] unless it ran less than [`PUBLISH_EVERY`] ago. True if it
    /// published.
    pub fn publish_if_due(&self, state: &State) -> bool {
        let due = self
            .last_publish
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|t| t.elapsed() >= PUBLISH_EVERY);
        if due {
            self.publish(state);
        }
        due
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        // The accept loop notices within one poll interval; it never waits on a
        // client, and the clients' own threads are not waited for.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts connections until `closing`, each served on a thread of its own (at most
/// [`MAX_CLIENTS`] at a time; more are closed at once).
fn accept_loop(listener: &TcpListener, body: &Arc<Mutex<Arc<str>>>, closing: &AtomicBool) {
    let clients = Arc::new(AtomicUsize::new(0));
    while !closing.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            // A connection that failed before it was accepted, or out of descriptors
            // for a moment: try again shortly.
            Err(_) => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        let (body, count) = (Arc::clone(body), Arc::clone(&clients));
        let spawned = std::thread::Builder::new()
            .name("lucid-metrics-client".into())
            .spawn(move || {
                // A client that went away or stalled is its own problem.
                let _ = serve_client(stream, &body, Instant::now() + REQUEST_DEADLINE);
                count.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            clients.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reads one request (its head at most [`MAX_REQUEST_BYTES`]) and answers it, all
/// before `deadline`; the connection closes after the answer.
fn serve_client(mut stream: TcpStream, body: &Mutex<Arc<str>>, deadline: Instant) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let head = read_head(&mut stream, deadline)?;
    let (status, content_type, text): (&str, &str, Arc<str>) = match parse_request_line(&head) {
        Some((method, target)) => {
            let path = target.split('?').next().unwrap_or("");
            match (method, path) {
                ("GET" | "HEAD", "/metrics") => (
                    "200 OK",
                    CONTENT_TYPE,
                    Arc::clone(&body.lock().unwrap_or_else(PoisonError::into_inner)),
                ),
                (_, "/metrics") => ("405 Method Not Allowed", PLAIN, "only GET\n".into()),
                _ => (
                    "404 Not Found",
                    PLAIN,
                    "not found: the metrics are at /metrics\n".into(),
                ),
            }
        }
        None => (
            "400 Bad Request",
            PLAIN,
            "a request line `METHOD /path HTTP/1.1` expected\n".into(),
        ),
    };
    let head_only = head.starts_with(b"HEAD ");
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(text.as_bytes());
    }
    write_all_by(&mut stream, &response, deadline)?;
    // Tell the client the answer is complete; what it still sends is ignored.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// The request's head (up to the blank line), read before `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_BYTES {
            return Err(std::io::Error::new(ErrorKind::InvalidData, "request head too large"));
        }
    }
}

/// Writes all of `bytes` before `deadline`, whatever pace the client reads at.
fn write_all_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        let n = stream.write(&bytes[..bytes.len().min(WRITE_CHUNK)])?;
        if n == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Time left until `deadline` (an error once it passed: socket timeouts of zero
/// mean "none").
fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ErrorKind::TimedOut.into())
    } else {
        Ok(left)
    }
}

/// `(method, target)` of the request line `METHOD TARGET HTTP/x.y`.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && version.starts_with("HTTP/") && target.starts_with('/')).then_some((method, target))
}
