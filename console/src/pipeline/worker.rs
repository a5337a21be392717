//! A [`Pipeline`] on a thread of its own: decoding and ordering run there, the state
//! model stays with the caller, and the items cross in batches of owned copies. With
//! two cores, ingest is bounded by the slower half instead of by both.
//!
//! The state sees exactly what it would see from a [`Pipeline`] on the caller's
//! thread: the same items in the same order, each chunk's receive time noted before
//! its items. Both channels are bounded, so a worker that runs ahead holds at most
//! [`BATCHES_AHEAD`] batches, and a caller that runs ahead blocks on
//! [`CHUNKS_AHEAD`] chunks while it keeps applying what comes back.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use lucid_protocol::{DecoderStats, Item};

use super::Pipeline;
use super::owned::OwnedItem;
use crate::state::State;
use crate::time::HostNs;

/// Items per batch sent back.
const BATCH: usize = 1024;
/// Batches the worker may hold unread by the caller.
const BATCHES_AHEAD: usize = 16;
/// Chunks the caller may queue unread by the worker.
const CHUNKS_AHEAD: usize = 16;

/// What the caller asks of the worker.
enum Command {
    Feed(HostNs, Vec<u8>),
    Tick(HostNs),
    Flush,
    Finish,
}

/// Items the worker sends back, with what the caller needs besides them.
struct Batch {
    /// The receive time of the chunk these items begin, noted before them.
    received: Option<HostNs>,
    items: Vec<OwnedItem>,
    /// On the last batch of its command: the decoder's counters after it.
    done: Option<DecoderStats>,
}

/// A pipeline running on its own thread.
#[derive(Debug)]
pub struct Worker {
    commands: Option<SyncSender<Command>>,
    batches: Receiver<Batch>,
    /// Commands sent whose last batch has not come back.
    pending: usize,
    decoder: DecoderStats,
    thread: Option<JoinHandle<()>>,
}

impl Batch {
    fn new() -> Self {
        Self {
            received: None,
            items: Vec::with_capacity(BATCH),
            done: None,
        }
    }
}

impl Worker {
    /// Starts `pipeline` on a new thread.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn spawn(pipeline: Pipeline) -> std::io::Result<Self> {
        let (commands, inbox) = sync_channel(CHUNKS_AHEAD);
        let (outbox, batches) = sync_channel(BATCHES_AHEAD);
        let thread = std::thread::Builder::new()
            .name("lucid-pipeline".into())
            .spawn(move || run(pipeline, &inbox, &outbox))?;
        Ok(Self {
            commands: Some(commands),
            batches,
            pending: 0,
            decoder: DecoderStats::default(),
            thread: Some(thread),
        })
    }

    /// The decoder's counters as of the items applied so far.
    #[must_use]
    pub fn decoder_stats(&self) -> &DecoderStats {
        &self.decoder
    }

    /// Hands `data`, received at `rx`, to the worker and applies to `state` what has
    /// come back so far (not necessarily this chunk's items yet).
    pub fn feed_into(&mut self, state: &mut State, rx: HostNs, data: Vec<u8>) {
        self.send(state, Command::Feed(rx, data));
        self.apply_ready(state);
    }

    /// Applies the batches that have come back, without waiting; true if they held
    /// items.
    fn apply_ready(&mut self, state: &mut State) -> bool {
        let mut applied = false;
        while let Ok(batch) = self.batches.try_recv() {
            applied |= !batch.items.is_empty();
            self.apply(state, batch);
        }
        applied
    }

    /// Applies everything fed so far, then everything the merge holds (see
    /// [`Pipeline::flush_into`]).
    pub fn flush_into(&mut self, state: &mut State) {
        self.send(state, Command::Flush);
        self.wait(state);
    }

    /// Applies what has come back, and once the worker has caught up, asks it for
    /// what an idle link at `now` releases (see [`Pipeline::tick_into`]), which
    /// arrives with a later call: waiting for it would keep the two threads from
    /// working at once. True if items were applied.
    pub fn tick_into(&mut self, state: &mut State, now: HostNs) -> bool {
        let applied = self.apply_ready(state);
        if self.pending == 0 {
            self.send(state, Command::Tick(now));
        }
        applied
    }

    /// Applies everything fed so far, then ends the input (see
    /// [`Pipeline::finish_into`]).
    pub fn finish_into(&mut self, state: &mut State) {
        self.send(state, Command::Finish);
        self.wait(state);
    }

    /// Queues `command`, applying batches meanwhile so a worker blocked on a full
    /// batch queue can go on. A worker that is gone (it panicked) takes nothing:
    /// the items it would have made are missing from the state.
    fn send(&mut self, state: &mut State, mut command: Command) {
        let Some(commands) = self.commands.clone() else {
            return;
        };
        loop {
            match commands.try_send(command) {
                Ok(()) => {
                    self.pending += 1;
                    return;
                }
                Err(TrySendError::Full(c)) => {
                    command = c;
                    match self.batches.recv() {
                        Ok(batch) => self.apply(state, batch),
                        Err(_) => return self.lost(),
                    }
                }
                Err(TrySendError::Disconnected(_)) => return self.lost(),
            }
        }
    }

    /// Applies batches until every command sent has been answered.
    fn wait(&mut self, state: &mut State) {
        while self.pending > 0 {
            let Ok(batch) = self.batches.recv() else {
                self.lost();
                break;
            };
            self.apply(state, batch);
        }
    }

    fn apply(&mut self, state: &mut State, batch: Batch) {
        if let Some(rx) = batch.received {
            state.received_at(rx);
        }
        for item in &batch.items {
            item.with(|item| state.apply(item));
        }
        if let Some(decoder) = batch.done {
            self.decoder = decoder;
            self.pending -= 1;
        }
    }

    /// The worker is gone: nothing more will come back.
    fn lost(&mut self) {
        self.commands = None;
        self.pending = 0;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the command queue ends the worker's loop; batches it still sends
        // fail once the receiver is gone below.
        self.commands = None;
        let (_, empty) = sync_channel(0);
        drop(std::mem::replace(&mut self.batches, empty));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The worker's side of the batch queue: the batch being filled.
struct Outbox<'a> {
    to: &'a SyncSender<Batch>,
    batch: Batch,
    /// The caller still listens.
    alive: bool,
}

impl Outbox<'_> {
    fn push(&mut self, item: &Item<'_>) {
        self.batch.items.push(OwnedItem::new(item));
        if self.batch.items.len() >= BATCH {
            self.send(None);
        }
    }

    /// Sends the batch (even empty); `done` ends its command with the decoder's
    /// counters.
    fn send(&mut self, done: Option<DecoderStats>) {
        let mut batch = std::mem::replace(&mut self.batch, Batch::new());
        batch.done = done;
        if self.alive {
            self.alive = self.to.send(batch).is_ok();
        }
    }
}

/// The worker's loop: one command at a time, its items in batches, the last batch
/// of each marked done with the decoder's counters.
fn run(mut pipeline: Pipeline, inbox: &Receiver<Command>, outbox: &SyncSender<Batch>) {
    let mut out = Outbox {
        to: outbox,
        batch: Batch::new(),
        alive: true,
    };
    while out.alive
        && let Ok(command) = inbox.recv()
    {
        match command {
            Command::Feed(rx, data) => {
                out.batch.received = Some(rx);
                pipeline.feed(rx, &data, &mut |item| out.push(item));
            }
            Command::Tick(now) => {
                pipeline.tick(now, &mut |item| out.push(item));
            }
            Command::Flush => pipeline.flush(&mut |item| out.push(item)),
            Command::Finish => pipeline.finish(&mut |item| out.push(item)),
        }
        out.send(Some(*pipeline.decoder().stats()));
    }
}

#[cfg(test)]
mod tests {
    use lucid_protocol::testdata::{Workload, generate};

    use super::*;
    use crate::state::Config;

    /// The state a pipeline on this thread makes of `wire` fed in `chunk`-byte
    /// pieces, and the state a worker makes of the same pieces.
    fn both(wire: &[u8], chunk: usize) -> (State, State, DecoderStats, DecoderStats) {
        let mut here = Pipeline::new();
        let mut a = State::with_config(Config::default());
        let mut worker = Worker::spawn(Pipeline::new()).expect("thread");
        let mut b = State::with_config(Config::default());
        for (i, piece) in wire.chunks(chunk).enumerate() {
            let rx = HostNs(i as u64 * 1_000);
            here.feed_into(&mut a, rx, piece);
            worker.feed_into(&mut b, rx, piece.to_vec());
            if i % 7 == 3 {
                here.tick_into(&mut a, rx);
                // What this tick releases arrives later: compare after the flush.
                worker.tick_into(&mut b, rx);
            }
        }
        here.flush_into(&mut a);
        worker.flush_into(&mut b);
        here.finish_into(&mut a);
        worker.finish_into(&mut b);
        (a, b, *here.decoder().stats(), *worker.decoder_stats())
    }

    #[test]
    fn a_worker_builds_the_state_a_pipeline_here_builds() {
        let g = generate(&Workload {
            cpus: 4,
            tasks: 3_000,
            polls_per_task: 3,
            wasm_instances: 2,
            loss: 3,
            seed: 7,
            ..Workload::default()
        });
        let wire = g.wire();
        for chunk in [97, 4096, 65536] {
            let (a, b, da, db) = both(&wire, chunk);
            assert!(a.events > 10_000, "{} events", a.events);
            assert_eq!(a.events, b.events, "events applied, {chunk}-byte chunks");
            assert_eq!(da, db, "decoder counters, {chunk}-byte chunks");
            assert!(a == b, "states differ with {chunk}-byte chunks");
        }
    }

    #[test]
    fn a_damaged_stream_reaches_the_state_alike_through_a_worker() {
        let g = generate(&Workload {
            cpus: 2,
            tasks: 200,
            polls_per_task: 2,
            seed: 3,
            ..Workload::default()
        });
        let mut wire = g.wire();
        for i in (100..wire.len()).step_by(997) {
            wire[i] ^= 0x5a;
        }
        let (a, b, da, db) = both(&wire, 1000);
        assert!(
            a.health.crc_errors + a.health.malformed_frames > 0,
            "the damage was seen"
        );
        assert_eq!(da, db);
        assert!(a == b, "states differ");
    }

    #[test]
    fn dropping_a_busy_worker_stops_its_thread() {
        let g = generate(&Workload {
            cpus: 2,
            tasks: 2_000,
            ..Workload::default()
        });
        let mut worker = Worker::spawn(Pipeline::new()).expect("thread");
        let mut state = State::with_config(Config::default());
        for piece in g.wire().chunks(512) {
            worker.feed_into(&mut state, HostNs(0), piece.to_vec());
        }
        // Items may still be on their way; dropping must not wait for them to be
        // applied, nor hang.
        drop(worker);
    }
}
