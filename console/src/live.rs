//! A live session: ingest events folded into the state model, and the connection
//! status the status bar shows. The TUI and the headless mode share it.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use lucid_protocol::DecoderStats;

use crate::metrics::{PUBLISH_EVERY, Server};
use crate::pipeline::{Pipeline, Worker};
use crate::source::{Endpoint, Ingest, IngestEvent, Recorder, now_ns};
use crate::state::{Config, State, WarningKind};
use crate::stats::Collected;
use crate::time::HostNs;

/// The link to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Not connected yet.
    Connecting,
    /// Receiving.
    Connected,
    /// Gone; `retry_in` is set when a reconnection is scheduled.
    Disconnected {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Option<Duration>,
    },
}

/// Where a session decodes and orders the stream.
#[derive(Debug)]
enum Decode {
    /// On the session's thread.
    Here(Pipeline),
    /// On a thread of its own ([`Worker`]).
    Worker(Worker),
}

/// Decoder and state of one console session.
#[derive(Debug)]
pub struct Session {
    /// What the stream built.
    pub state: State,
    /// Decodes the stream and puts the CPUs' interleaved frames back in timestamp
    /// order.
    pipeline: Decode,
    /// Connection status.
    pub link: Link,
    /// Where the bytes come from, for the status bar.
    pub source: String,
    /// Why recording stopped, if it did.
    pub record_error: Option<String>,
    /// Connections made so far.
    pub connections: u64,
}

impl Session {
    /// A session that has seen nothing.
    #[must_use]
    pub fn new(source: String, config: Config) -> Self {
        Self {
            state: State::with_config(config),
            pipeline: Decode::Here(Pipeline::new()),
            link: Link::Connecting,
            source,
            record_error: None,
            connections: 0,
        }
    }

    /// A session that decodes and orders the stream on a thread of its own (see
    /// [`Worker`]), applying to the state on the caller's: the same state, on two
    /// cores.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn with_worker(source: String, config: Config) -> std::io::Result<Self> {
        let mut session = Self::new(source, config);
        session.pipeline = Decode::Worker(Worker::spawn(Pipeline::new())?);
        Ok(session)
    }

    /// Decodes received bytes into the state (with a worker, what it has finished
    /// so far: [`Self::flush`] or [`Self::tick`] waits for the rest).
    pub fn feed(&mut self, rx: HostNs, data: &[u8]) {
        match &mut self.pipeline {
            Decode::Here(p) => p.feed_into(&mut self.state, rx, data),
            Decode::Worker(w) => w.feed_into(&mut self.state, rx, data.to_vec()),
        }
    }

    /// [`Self::feed`] of bytes the session may keep.
    fn feed_owned(&mut self, rx: HostNs, data: Vec<u8>) {
        match &mut self.pipeline {
            Decode::Here(p) => p.feed_into(&mut self.state, rx, &data),
            Decode::Worker(w) => w.feed_into(&mut self.state, rx, data),
        }
    }

    /// Hands everything the merge holds to the state, in order: nothing more is
    /// coming for now (the link went away), so waiting for other streams only hides
    /// what is known.
    pub fn flush(&mut self) {
        match &mut self.pipeline {
            Decode::Here(p) => p.flush_into(&mut self.state),
            Decode::Worker(w) => w.flush_into(&mut self.state),
        }
    }

    /// Releases what the merge holds once the link has been idle (see
    /// [`crate::merge::Merge::tick`]); `now` is the host clock the ingest thread stamps chunks
    /// with. True if something was released.
    pub fn tick(&mut self, now: HostNs) -> bool {
        match &mut self.pipeline {
            Decode::Here(p) => p.tick_into(&mut self.state, now),
            Decode::Worker(w) => w.tick_into(&mut self.state, now),
        }
    }

    /// Applies one event of the ingest thread.
    pub fn handle(&mut self, ev: IngestEvent) {
        match ev {
            IngestEvent::Connected => {
                self.connections += 1;
                self.link = Link::Connected;
            }
            IngestEvent::Chunk(c) => self.feed_owned(c.rx, c.data),
            // The decoder keeps its partial frame: a recording of this session holds
            // the same bytes back to back, so live and replay decode alike.
            IngestEvent::Disconnected { reason, retry_in } => {
                self.flush();
                self.link = Link::Disconnected { reason, retry_in };
            }
            IngestEvent::RecordFailed(e) => self.record_error = Some(e),
        }
    }

    /// Decoder counters.
    #[must_use]
    pub fn decoder_stats(&self) -> &DecoderStats {
        match &self.pipeline {
            Decode::Here(p) => p.decoder().stats(),
            Decode::Worker(w) => w.decoder_stats(),
        }
    }

    /// The connection part of the status bar.
    #[must_use]
    pub fn link_status(&self) -> String {
        let src = &self.source;
        match &self.link {
            Link::Connecting => format!("connecting to {src}"),
            Link::Connected => format!("connected to {src}"),
            Link::Disconnected {
                reason,
                retry_in: Some(d),
            } => format!(
                "disconnected from {src}: {reason}; data kept, reconnecting in {:.1}s",
                d.as_secs_f64()
            ),
            Link::Disconnected { reason, retry_in: None } => format!("{src} ended: {reason}; data kept"),
        }
    }

    /// The most important problem with the stream itself, if any.
    #[must_use]
    pub fn stream_problem(&self) -> Option<String> {
        let s = &self.state;
        if let Some((offset, e)) = &s.first_version_error {
            return Some(format!("byte {offset}: {e}"));
        }
        if let Some(e) = &self.record_error {
            return Some(format!("recording stopped: {e}"));
        }
        let damaged = s.health.crc_errors + s.health.malformed_frames + s.health.incomplete_frames;
        if damaged > 0 {
            let latest = s
                .recent_warnings
                .iter()
                .rev()
                .find(|w| matches!(w.kind, WarningKind::CrcError | WarningKind::Malformed))
                .map(|w| w.message.as_str())
                .unwrap_or("");
            return Some(format!("{damaged} damaged frames skipped (latest: {latest})"));
        }
        if s.health.sequence_gaps > 0 {
            return Some(format!(
                "{} sequence gaps ({} frames lost in transit)",
                s.health.sequence_gaps, s.health.missing_frames
            ));
        }
        None
    }

    /// Ends the session the way `lucid stats` ends a file: a frame cut off at the end
    /// is reported, and the result is what `Summary::new` takes.
    #[must_use]
    pub fn finish(mut self) -> Collected {
        match &mut self.pipeline {
            Decode::Here(p) => p.finish_into(&mut self.state),
            Decode::Worker(w) => w.finish_into(&mut self.state),
        }
        let decoder = *self.decoder_stats();
        Collected {
            state: self.state,
            decoder,
            damage: None,
        }
    }
}

/// What a headless session collected, and what the status bar would have said.
#[derive(Debug)]
pub struct HeadlessRun {
    /// The state and decoder counters, as `lucid stats` collects them from a file.
    pub collected: Collected,
    /// The link status at the end.
    pub link: String,
    /// A problem with the stream, if there was one.
    pub problem: Option<String>,
    /// Connections made.
    pub connections: u64,
}

/// Ingests from `endpoint` for `duration` without a terminal and returns what was
/// collected. Stops early when a source that cannot reconnect (stdin) has ended. With
/// `metrics`, the state is published to it as it changes, and once more at the end.
/// With `worker`, the stream is decoded and ordered on a thread of its own
/// ([`Session::with_worker`]).
pub fn headless(
    endpoint: Endpoint,
    recorder: Option<Recorder>,
    config: Config,
    duration: Duration,
    metrics: Option<&Server>,
    worker: bool,
) -> std::io::Result<HeadlessRun> {
    let mut session = if worker {
        Session::with_worker(endpoint.to_string(), config)?
    } else {
        Session::new(endpoint.to_string(), config)
    };
    let ingest = Ingest::spawn(endpoint, recorder)?;
    let deadline = Instant::now() + duration;
    let mut changed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match ingest.recv_timeout(left.min(PUBLISH_EVERY)) {
            Ok(ev) => {
                session.handle(ev);
                changed = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // A quiet link releases what the merge held back, as the TUI shows it.
        changed |= session.tick(now_ns());
        if changed && let Some(m) = metrics {
            changed = !m.publish_if_due(&session.state);
        }
    }
    // Whatever the thread read (and recorded) before it stopped is part of the result,
    // so a recording of this session summarises to the same numbers.
    for ev in ingest.stop(Duration::from_secs(2)) {
        session.handle(ev);
    }
    let link = session.link_status();
    let problem = session.stream_problem();
    let connections = session.connections;
    let collected = session.finish();
    if let Some(m) = metrics {
        m.publish(&collected.state);
    }
    Ok(HeadlessRun {
        collected,
        link,
        problem,
        connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Chunk;
    use crate::time::HostNs;

    #[test]
    fn the_status_says_what_happened_to_the_link_and_the_stream() {
        let mut s = Session::new("unix:/tmp/x".into(), Config::default());
        assert_eq!(s.link_status(), "connecting to unix:/tmp/x");
        s.handle(IngestEvent::Connected);
        assert_eq!(s.link_status(), "connected to unix:/tmp/x");
        s.handle(IngestEvent::Chunk(Chunk {
            rx: HostNs(1),
            data: b"\x05garbage\x00".to_vec(),
        }));
        assert!(s.stream_problem().unwrap().starts_with("1 damaged frames"));
        s.handle(IngestEvent::Disconnected {
            reason: "the peer closed the connection".into(),
            retry_in: Some(Duration::from_millis(400)),
        });
        assert_eq!(
            s.link_status(),
            "disconnected from unix:/tmp/x: the peer closed the connection; data kept, reconnecting in 0.4s"
        );
        assert_eq!(s.connections, 1);
    }

    #[test]
    fn a_wrong_major_version_is_named_in_the_status() {
        let g = lucid_protocol::testdata::generate(&lucid_protocol::testdata::Workload {
            tasks: 3,
            ..Default::default()
        });
        let mut s = Session::new("stdin".into(), Config::default());
        // Re-frame the first frame with major version 2: decode its COBS, patch the
        // version byte and the CRC, encode again.
        let frame = &g.frames[0];
        let mut raw = cobs_decode(&frame[..frame.len() - 1]);
        raw[0] = 2;
        let n = raw.len() - 4;
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&raw[..n]);
        raw[n..].copy_from_slice(&crc.to_le_bytes());
        let mut wire = cobs_encode(&raw);
        wire.push(0);
        s.feed(HostNs(1), &wire);
        let p = s.stream_problem().unwrap();
        assert!(p.contains("incompatible protocol version"), "{p}");
        assert_eq!(s.state.events, 0);
    }

    fn cobs_decode(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < src.len() {
            let code = src[i] as usize;
            out.extend_from_slice(&src[i + 1..i + code]);
            i += code;
            if code < 0xff && i < src.len() {
                out.push(0);
            }
        }
        out
    }

    fn cobs_encode(src: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        let mut code_at = 0;
        let mut code = 1u8;
        for &b in src {
            if b == 0 {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            } else {
                out.push(b);
                code += 1;
                if code == 0xff {
                    out[code_at] = code;
                    code_at = out.len();
                    out.push(0);
                    code = 1;
                }
            }
        }
        out[code_at] = code;
        out
    }
}
