//! Just enough HTTP/1.0 for a local Prometheus and the console's `/metrics`: one GET
//! per connection, the body read to the end.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Context, Result, bail};

/// `GET path` (with its query already encoded) from `addr`: status and body.
pub fn get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut conn =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| format!("connect to {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").with_context(|| format!("send to {addr}"))?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)
        .with_context(|| format!("read from {addr}"))?;
    let raw = String::from_utf8_lossy(&raw);
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        bail!("{addr}{path}: not an HTTP response");
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{addr}{path}: no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// `s` as a URL query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::encode(r#"up{a="b c"}[1m]/2"#),
            "up%7Ba%3D%22b%20c%22%7D%5B1m%5D%2F2"
        );
    }
}
