//! The ingest thread: connects, reads, records, reconnects with backoff, and hands
//! chunks to the UI over a bounded channel so the event loop never blocks on I/O.

use std::fs::File;
use std::io::{self, BufWriter};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lucid_protocol::recording::RecordingWriter;
use lucid_protocol::{FrameEncoder, MAX_WIRE_FRAME_LEN, Message, Ring, StreamId};

use super::Chunk;
use super::connection::Endpoint;
use crate::time::HostNs;

/// Chunks in flight between the ingest thread and the UI. When the UI falls behind
/// the reader waits, which flow-controls the kernel's port instead of growing memory.
pub const CHANNEL_CAPACITY: usize = 256;
/// Bytes read at once.
const READ_BUF: usize = 64 * 1024;
/// First and largest delay between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A recording being written.
pub type Recorder = RecordingWriter<BufWriter<File>>;

/// What the ingest thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestEvent {
    /// Connected (again).
    Connected,
    /// Bytes received.
    Chunk(Chunk),
    /// The connection failed or went away; `retry_in` is set when it will be retried.
    Disconnected {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Option<Duration>,
    },
    /// The recording could not be written; recording stopped, ingest goes on.
    RecordFailed(String),
}

/// Host receive time: nanoseconds since the Unix epoch.
#[must_use]
pub fn now_ns() -> HostNs {
    HostNs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    )
}

/// The frame that asks the kernel for a full state snapshot, preceded by a 0x00 so
/// the kernel drops any partial frame before it.
#[must_use]
pub fn snapshot_request(request: u64) -> Vec<u8> {
    let mut enc = FrameEncoder::new(vec![0u8; 64], StreamId::new(0, Ring::Host));
    if enc.push(0, &Message::RequestSnapshot { request }).is_err() {
        return Vec::new();
    }
    let mut out = vec![0u8; enc.max_finished_len() + 1];
    match enc.finish(&mut out[1..]) {
        Ok(n) => {
            out.truncate(n + 1);
            out
        }
        Err(_) => Vec::new(),
    }
}

/// A running ingest thread and its channel.
#[derive(Debug)]
pub struct Ingest {
    rx: Receiver<IngestEvent>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ingest {
    /// Starts reading `endpoint`, recording into `recorder` if given.
    pub fn spawn(endpoint: Endpoint, recorder: Option<Recorder>) -> io::Result<Self> {
        let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("lucid-ingest".into())
            .spawn(move || run(&endpoint, recorder, &tx, &flag))?;
        Ok(Self {
            rx,
            stop,
            handle: Some(handle),
        })
    }

    /// The next event if one is waiting; `Err(Disconnected)` once the thread ended
    /// and everything it sent was received.
    pub fn try_recv(&self) -> Result<IngestEvent, TryRecvError> {
        self.rx.try_recv()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<IngestEvent, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Asks the thread to stop; it notices within one read timeout.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the thread and returns what it sent before it ended, waiting at most
    /// `grace` (a thread blocked on standard input cannot be interrupted; it is left
    /// to end with the process).
    pub fn stop(mut self, grace: Duration) -> Vec<IngestEvent> {
        self.request_stop();
        let deadline = Instant::now() + grace;
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) => rest.push(ev),
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(h) = self.handle.take() {
                        // The thread has dropped its sender, so it is about to return.
                        let _ = h.join();
                    }
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        rest
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.request_stop();
    }
}

/// What of the received bytes goes into the recording: whole frames only. The bytes
/// after a chunk's last frame delimiter wait for the rest of their frame. A frame that
/// a disconnect or the end of the recording cuts is left out (it could never decode,
/// and the next connection's bytes would run into it), so a recording ends on a whole
/// frame, and a partial frame at the end of a file means the file itself was cut.
#[derive(Debug, Default)]
struct WholeFrames {
    tail: Vec<u8>,
}

impl WholeFrames {
    /// The held-back bytes and those of `data` up to its last frame delimiter, if it
    /// has one; the rest is held back. Bytes without a delimiter for longer than any
    /// wire frame cannot become one: they go out as they are (a decoder reports them).
    fn take(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        match data.iter().rposition(|&b| b == 0) {
            Some(end) => {
                let mut out = std::mem::take(&mut self.tail);
                out.extend_from_slice(&data[..=end]);
                self.tail.extend_from_slice(&data[end + 1..]);
                Some(out)
            }
            None => {
                self.tail.extend_from_slice(data);
                (self.tail.len() > MAX_WIRE_FRAME_LEN).then(|| std::mem::take(&mut self.tail))
            }
        }
    }
}

/// The thread body. Returns when asked to stop, when the receiver is gone, or when a
/// source that cannot reconnect ends.
fn run(endpoint: &Endpoint, mut recorder: Option<Recorder>, tx: &SyncSender<IngestEvent>, stop: &AtomicBool) {
    let mut backoff = BACKOFF_MIN;
    let mut buf = vec![0u8; READ_BUF];
    let mut request = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let reason = match endpoint.connect() {
            Ok(mut conn) => {
                backoff = BACKOFF_MIN;
                if tx.send(IngestEvent::Connected).is_err() {
                    return;
                }
                request += 1;
                // A kernel that does not listen yet simply ignores the request; a
                // broken connection shows up on the next read.
                let _ = conn.send(&snapshot_request(request));
                // A frame this connection cuts is left out of the recording.
                let mut whole = WholeFrames::default();
                match pump(&mut conn, &mut buf, &mut recorder, &mut whole, tx, stop) {
                    Pump::Stopped => return,
                    Pump::Ended(reason) => reason,
                }
            }
            Err(e) => e.to_string(),
        };
        let retry_in = endpoint.reconnects().then_some(backoff);
        if tx.send(IngestEvent::Disconnected { reason, retry_in }).is_err() || retry_in.is_none() {
            return;
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Pump {
    /// Asked to stop, or nobody listens any more.
    Stopped,
    /// The connection ended, for this reason.
    Ended(String),
}

fn pump(
    conn: &mut super::connection::Connection,
    buf: &mut [u8],
    recorder: &mut Option<Recorder>,
    whole: &mut WholeFrames,
    tx: &SyncSender<IngestEvent>,
    stop: &AtomicBool,
) -> Pump {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Pump::Stopped;
        }
        match conn.read(buf) {
            Ok(0) => return Pump::Ended("the peer closed the connection".into()),
            Ok(n) => {
                let data = buf.get(..n).unwrap_or_default().to_vec();
                let rx = now_ns();
                if let Some(rec) = recorder
                    && let Some(frames) = whole.take(&data)
                {
                    // Flushed per chunk: a console killed mid-recording leaves a file
                    // that reads up to the last whole frame it received.
                    if let Err(e) = rec.write_chunk(rx.get(), &frames).and_then(|()| rec.flush()) {
                        *recorder = None;
                        if tx.send(IngestEvent::RecordFailed(e.to_string())).is_err() {
                            return Pump::Stopped;
                        }
                    }
                }
                if tx.send(IngestEvent::Chunk(Chunk { rx, data })).is_err() {
                    return Pump::Stopped;
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Pump::Ended(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucid_protocol::{Decoder, Item};

    #[test]
    fn the_recording_gets_whole_frames_and_leaves_out_a_cut_one() {
        let wire = [
            &lucid_protocol::testdata::frame(StreamId::new(0, Ring::Task), 0, &[(5, Message::Heartbeat)])[..],
            &lucid_protocol::testdata::frame(StreamId::new(0, Ring::Task), 1, &[(9, Message::Heartbeat)])[..],
        ]
        .concat();
        // Received in 3-byte chunks, then the connection ends 2 bytes into a third
        // frame.
        let mut whole = WholeFrames::default();
        let mut recorded = Vec::new();
        let mut received = wire.clone();
        received.extend_from_slice(&[7, 7]);
        for chunk in received.chunks(3) {
            if let Some(frames) = whole.take(chunk) {
                assert_eq!(frames.last(), Some(&0), "a recorded chunk ends on a delimiter");
                recorded.extend_from_slice(&frames);
            }
        }
        assert_eq!(recorded, wire, "both whole frames, not the cut one");
        // Bytes that never reach a delimiter go out once they pass any frame's size.
        let mut garbage = WholeFrames::default();
        let mut out = 0;
        for _ in 0..=MAX_WIRE_FRAME_LEN / 4096 {
            out += garbage.take(&[1u8; 4096]).map_or(0, |b| b.len());
        }
        assert!(out > MAX_WIRE_FRAME_LEN, "held back {} bytes", garbage.tail.len());
        assert!(garbage.tail.len() <= MAX_WIRE_FRAME_LEN);
    }

    #[test]
    fn the_snapshot_request_decodes_as_a_host_message() {
        let bytes = snapshot_request(7);
        assert_eq!(bytes[0], 0);
        let mut found = Vec::new();
        let mut d = Decoder::new();
        d.feed(&bytes, |item| {
            if let Item::Event { stream, event, .. } = item {
                found.push((stream.ring, event.message.kind()));
            }
        });
        assert_eq!(found, [(Ring::Host, lucid_protocol::MessageKind::RequestSnapshot)]);
    }
}
