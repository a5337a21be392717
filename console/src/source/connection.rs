//! Live byte sources: a unix socket, a TCP address, a serial device or stdin.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// How long one blocking read may take, so the ingest thread notices a stop request.
pub const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a live stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix-domain socket (QEMU's `-chardev socket,path=…`).
    Unix(PathBuf),
    /// A TCP address (`host:port`).
    Tcp(String),
    /// A serial device (a QEMU pty or a USB-serial adapter).
    Serial {
        /// Device path.
        device: String,
        /// Baud rate.
        baud: u32,
    },
    /// Standard input (e.g. `socat … | lucid live --stdin`).
    Stdin,
}

impl Endpoint {
    /// Whether the console reconnects after the peer goes away. Standard input that
    /// ended does not come back.
    #[must_use]
    pub fn reconnects(&self) -> bool {
        !matches!(self, Self::Stdin)
    }

    /// Opens a connection.
    pub fn connect(&self) -> Result<Connection, ConnectError> {
        let err = |error| ConnectError {
            endpoint: self.to_string(),
            error,
        };
        match self {
            Self::Unix(path) => {
                let s = UnixStream::connect(path).map_err(err)?;
                s.set_read_timeout(Some(READ_TIMEOUT)).map_err(err)?;
                Ok(Connection::Unix(s))
            }
            Self::Tcp(addr) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
                for a in addr.to_socket_addrs().map_err(err)? {
                    match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                        Ok(s) => {
                            s.set_read_timeout(Some(READ_TIMEOUT)).map_err(err)?;
                            // Small host → kernel messages should not wait for more.
                            s.set_nodelay(true).map_err(err)?;
                            return Ok(Connection::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(err(last))
            }
            Self::Serial { device, baud } => serialport::new(device, *baud)
                .timeout(READ_TIMEOUT)
                .open()
                .map(Connection::Serial)
                .map_err(|e| err(io::Error::other(e.to_string()))),
            Self::Stdin => Ok(Connection::Stdin(io::stdin())),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
            Self::Serial { device, baud } => write!(f, "serial:{device}@{baud}"),
            Self::Stdin => f.write_str("stdin"),
        }
    }
}

/// An open live source.
pub enum Connection {
    /// A unix-domain socket.
    Unix(UnixStream),
    /// A TCP connection.
    Tcp(TcpStream),
    /// A serial port.
    Serial(Box<dyn serialport::SerialPort>),
    /// Standard input (read only).
    Stdin(io::Stdin),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unix(_) => "Connection::Unix",
            Self::Tcp(_) => "Connection::Tcp",
            Self::Serial(_) => "Connection::Serial",
            Self::Stdin(_) => "Connection::Stdin",
        })
    }
}

impl Connection {
    /// Reads what is available; `Ok(0)` means the peer closed the stream. Timeouts
    /// come back as `WouldBlock` or `TimedOut` errors.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Unix(s) => s.read(buf),
            Self::Tcp(s) => s.read(buf),
            Self::Serial(s) => s.read(buf),
            Self::Stdin(s) => s.read(buf),
        }
    }

    /// Sends host → kernel bytes, where the transport has a way back.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Unix(s) => s.write_all(bytes),
            Self::Tcp(s) => s.write_all(bytes),
            Self::Serial(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Self::Stdin(_) => Ok(()),
        }
    }
}

/// Connecting failed.
#[derive(Debug)]
pub struct ConnectError {
    /// The endpoint.
    pub endpoint: String,
    /// Why.
    pub error: io::Error,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to {}: {}", self.endpoint, self.error)
    }
}

impl std::error::Error for ConnectError {}
