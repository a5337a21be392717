//! The HTTP endpoint: `GET /metrics` on its own thread, serving the exposition the
//! owner of the [`State`] last published. Rendering happens at publish time on the
//! owner's thread and the lock only swaps a pointer, so a slow scraper never holds up
//! ingest or the UI, and a scrape never sees a half-updated state.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::MetricsError;
use super::encode::{instance_name, render};
use super::text::CONTENT_TYPE;
use crate::state::State;

/// [`Server::publish_if_due`] renders at most this often.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// A running `/metrics` endpoint. Dropping it stops the thread.
pub struct Server {
    addr: SocketAddr,
    instance: Option<String>,
    body: Arc<Mutex<Arc<str>>>,
    last_publish: Mutex<Option<Instant>>,
    http: Arc<tiny_http::Server>,
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
        let http = tiny_http::Server::from_listener(listener, None).map_err(|e| MetricsError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let http = Arc::new(http);
        // Before the first publish: zeros under a given name, else nothing, so no series
        // appears under a fallback name that the kernel's build id replaces a moment later.
        let initial = instance
            .as_deref()
            .map_or_else(String::new, |name| render(&State::new(), name));
        let body: Arc<Mutex<Arc<str>>> = Arc::new(Mutex::new(initial.into()));
        let thread = {
            let (http, body) = (Arc::clone(&http), Arc::clone(&body));
            std::thread::Builder::new()
                .name("lucid-metrics".into())
                .spawn(move || serve(&http, &body))
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
            http,
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
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(http: &tiny_http::Server, body: &Mutex<Arc<str>>) {
    for request in http.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("");
        let response = match (request.method(), path) {
            (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => {
                let text = Arc::clone(&body.lock().unwrap_or_else(PoisonError::into_inner));
                tiny_http::Response::from_data(text.as_bytes().to_vec()).with_header(header(CONTENT_TYPE))
            }
            (_, "/metrics") => tiny_http::Response::from_string("only GET\n").with_status_code(405),
            _ => tiny_http::Response::from_string("not found: the metrics are at /metrics\n").with_status_code(404),
        };
        // A scraper that went away is its own problem.
        let _ = request.respond(response);
    }
}

fn header(content_type: &str) -> tiny_http::Header {
    tiny_http::Header {
        field: "Content-Type".parse().expect("a valid header name"),
        value: content_type.parse().expect("an ASCII header value"),
    }
}
