//! Replay on two threads: a worker reads, decodes and orders the recording and hands
//! each record's items over as owned copies; the caller only folds them into the
//! state. A seek starts the worker from the keyframe's record while the caller is
//! still reading the keyframe's state ([`restore_and_play`]); long plays and forward
//! seeks start it from the cursor ([`Player::advance_decoding_ahead`]); an index
//! build runs the whole recording through it, the worker choosing where keyframes
//! go ([`Player::play_out_decoding_ahead`], `index::KeyframePlan`).
//!
//! Reading a keyframe's state and decoding an interval of the recording each take
//! a good part of a seek, and neither needs the other: with two cores the seek costs
//! about the state's read plus the fold, not the sum of all three.
//!
//! The player that comes out is the one a single thread would have made: the same
//! items applied, the receive times noted at the same points, the items after the
//! stop pending, the reader and the pipeline after the record the stop fell in. The
//! worker evaluates the same stop as the fold (so it reads no record past it) and
//! keeps the pipeline at the record boundaries its plan asks for (checkpoints,
//! keyframes), since the fold, behind it, cannot see the pipeline there.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use lucid_protocol::recording::{Header, Record, RecordingReader};
use lucid_protocol::{Decoder, Item};

use super::ReplayError;
use super::player::{Applied, KeyframeHead, KeyframeIn, Op, Player, open_at};
use crate::merge::MergeSnapshot;
use crate::pipeline::{OwnedItem, Pipeline};
use crate::state::State;
use crate::stats::Damage;
use crate::time::HostNs;

/// Records the worker may decode ahead of the fold: about 64k items of 64 KiB
/// records, more than it decodes while a seek reads a 10k-task state; at most 8 MiB
/// of recording (records are at most 1 MiB) held as owned items.
const RECORDS_AHEAD: usize = 8;

/// Where a seek stops: `stop(next item, items applied)`, as for [`Player::advance`].
pub(crate) type Stop<'a> = &'a (dyn Fn(&Item<'_>, u64) -> bool + Sync);

/// What one record released.
pub(super) struct Released {
    /// The record's receive time; `None` for the end of input.
    pub rx: Option<HostNs>,
    pub items: Vec<OwnedItem>,
    /// The next record's offset.
    pub offset: u64,
    /// Where the worker's plan asked for it: the boundary after this record.
    pub boundary: Option<Boundary>,
}

/// Whether the worker keeps the boundary after a record it released (not the last),
/// asked with the record's items and the items applied after it.
pub(super) type Plan<'a> = &'a mut (dyn FnMut(&Released, u64) -> bool + Send);

/// A record boundary a checkpoint may be made of: the next record's offset and the
/// pipeline there.
#[derive(Clone)]
pub(super) struct Boundary {
    pub record_offset: u64,
    pub decoder: Decoder,
    pub merge: MergeSnapshot,
}

impl Boundary {
    /// The boundary `reader` and `pipeline` are at (between records).
    pub(super) fn at(reader: &Reader, pipeline: &Pipeline) -> Self {
        Self {
            record_offset: reader.offset(),
            decoder: pipeline.decoder().clone(),
            merge: pipeline.merge().snapshot(),
        }
    }

    /// The recording at `path` opened here: its reader at the next record and the
    /// pipeline as it was.
    pub(super) fn open(self, path: &Path, header: Header) -> Result<(Reader, Pipeline), ReplayError> {
        if !self.decoder.is_sound() {
            return Err(ReplayError::Index("keyframe decoder state out of bounds".into()));
        }
        let pipeline = Pipeline::restore(self.decoder, self.merge).map_err(|e| ReplayError::Index(e.to_string()))?;
        Ok((open_at(path, Some((header, self.record_offset)))?, pipeline))
    }
}

/// The reading half of a player, lent to the worker.
pub(super) struct Reading<'a> {
    pub reader: &'a mut Reader,
    pub pipeline: &'a mut Pipeline,
    pub ended: &'a mut bool,
    pub damage: &'a mut Option<Damage>,
}

pub(super) type Reader = RecordingReader<BufReader<File>>;

/// A player at keyframe `head` of the recording at `path`, its state read from
/// `state` (postcard), played on until `stop` holds. With `capture_from`, also the
/// position at the last record boundary before the stop with at least that many
/// items applied (as [`Player::advance_capturing`] keeps it), if there is one.
pub(crate) fn restore_and_play(
    path: &Path,
    header: Header,
    head: KeyframeHead,
    state: &[u8],
    stop: Stop<'_>,
    capture_from: Option<u64>,
) -> Result<(Player, Option<KeyframeIn>), ReplayError> {
    let start = head.items;
    let (at, applied_with) = head.split();
    // The keyframe is itself a boundary a checkpoint may be made of.
    let at_keyframe = capture_from.is_some_and(|from| start >= from).then(|| at.clone());
    let (mut reader, mut pipeline) = at.open(path, header)?;
    let (mut ended, mut damage) = (false, None);
    let reading = Reading {
        reader: &mut reader,
        pipeline: &mut pipeline,
        ended: &mut ended,
        damage: &mut damage,
    };
    let folded = with_worker(reading, start, stop, &mut capturing(capture_from), |released| {
        // On an error the worker's next send fails and it ends.
        let state: State =
            postcard::from_bytes(state).map_err(|e| ReplayError::Index(format!("keyframe at item {start}: {e}")))?;
        let mut applied = applied_with(state);
        let (pending, checkpoint) = fold(&mut applied, VecDeque::new(), released, stop, at_keyframe);
        Ok((applied, pending, checkpoint))
    })
    .map_err(|e| ReplayError::Io(format!("cannot start the seek's decoding thread: {e}")))?;
    let (applied, pending, checkpoint) = folded?;
    let mut player = Player::assemble(reader, pipeline, applied, pending, ended, damage);
    // Settles what the worker left: the pending stop, the end of input, or (had it
    // stopped early) the rest of the way on this thread.
    player.advance(|item, n| stop(item, n));
    Ok((player, checkpoint))
}

/// Runs [`decode_ahead`] from `reading` (with `items` applied) on a second thread
/// while `fold` takes what it sends; `fold`'s result, or why the thread could not
/// be started (nothing was read then). A panic of the worker goes on here.
pub(super) fn with_worker<R>(
    reading: Reading<'_>,
    items: u64,
    stop: Stop<'_>,
    plan: Plan<'_>,
    fold: impl FnOnce(&Receiver<Released>) -> R,
) -> std::io::Result<R> {
    let (tx, rx) = sync_channel(RECORDS_AHEAD);
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("lucid-replay-decode".into())
            .spawn_scoped(s, move || decode_ahead(reading, items, stop, plan, &tx))?;
        let folded = fold(&rx);
        // A worker still sending (the fold returned early) now fails and ends.
        drop(rx);
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(folded)
    })
}

/// The checkpoints a capture from `from` may be made of: every boundary with at
/// least that many items applied.
pub(super) fn capturing(from: Option<u64>) -> impl FnMut(&Released, u64) -> bool + Send {
    move |_, items| from.is_some_and(|from| items >= from)
}

/// The worker: feeds records from where `reading` is until the stop falls inside
/// one (counting from `items` applied) or the input ends, sending each record's items
/// and the boundaries `plan` asks for.
fn decode_ahead(reading: Reading<'_>, mut items: u64, stop: Stop<'_>, plan: Plan<'_>, tx: &SyncSender<Released>) {
    loop {
        let record = read_record(reading.reader, reading.damage);
        let mut released = Released {
            rx: record.as_ref().map(|r| HostNs(r.rx_ns)),
            items: Vec::new(),
            offset: 0,
            boundary: None,
        };
        let mut stopped = false;
        let mut out = |item: &Item<'_>| {
            // Every item before the stop is applied: the fold counts as this does.
            if !stopped {
                if stop(item, items) {
                    stopped = true;
                } else {
                    items += 1;
                }
            }
            released.items.push(OwnedItem::new(item));
        };
        match &record {
            Some(r) => reading.pipeline.feed(HostNs(r.rx_ns), &r.data, &mut out),
            None => {
                reading.pipeline.finish(&mut out);
                *reading.ended = true;
            }
        }
        released.offset = reading.reader.offset();
        if !stopped && !*reading.ended && plan(&released, items) {
            released.boundary = Some(Boundary::at(reading.reader, reading.pipeline));
        }
        if tx.send(released).is_err() || stopped || *reading.ended {
            return;
        }
    }
}

/// The caller's half: applies what the worker sends until the stop, as
/// [`Player::feed_next`] would, after `pending` (receive times left by an earlier
/// play); returns what is left pending and the checkpoint (`boundary`: the one the
/// worker starts from, if it may be one).
pub(super) fn fold(
    applied: &mut Applied,
    mut pending: VecDeque<Op>,
    rx: &Receiver<Released>,
    stop: Stop<'_>,
    mut boundary: Option<Boundary>,
) -> (VecDeque<Op>, Option<KeyframeIn>) {
    let mut checkpoint = None;
    let mut halted = false;
    for released in rx {
        // A single thread keeps a copy of the state at every boundary it may, and the
        // last one before the stop stays. Here a copy is made only where no later
        // boundary can take its place: before the record the stop falls in, before
        // the end, or before a record that releases nothing (after which the receive
        // time it leaves pending makes the next boundary unfit).
        if let Some(at) = boundary.take()
            && pending.is_empty()
            && (released.rx.is_none()
                || released.items.is_empty()
                || stops_within(&released.items, applied.items, stop))
        {
            checkpoint = Some(KeyframeIn {
                head: applied.head(at),
                state: applied.state.clone(),
            });
        }
        if let Some(rx) = released.rx {
            pending.push_back(Op::Rx(rx));
        }
        for owned in released.items {
            if !halted {
                owned.with(|item| {
                    if stop(item, applied.items) {
                        halted = true;
                    } else {
                        applied.apply_after(&mut pending, item);
                    }
                });
            }
            if halted {
                pending.push_back(Op::Item(owned));
            }
        }
        boundary = released.boundary;
    }
    (pending, checkpoint)
}

/// The next record of `reader`, or `None` at the end of input or where the recording
/// is damaged (noted in `damage`).
pub(super) fn read_record(reader: &mut Reader, damage: &mut Option<Damage>) -> Option<Record> {
    reader.next_chunk().unwrap_or_else(|e| {
        *damage = Some(Damage {
            offset: e.offset(),
            message: e.to_string(),
        });
        None
    })
}

/// Whether `stop` holds for one of `items` with `applied` items applied before them.
fn stops_within(items: &[OwnedItem], applied: u64, stop: Stop<'_>) -> bool {
    let mut n = applied;
    items.iter().any(|owned| {
        let mut hit = false;
        owned.with(|item| {
            hit = stop(item, n);
            n += 1;
        });
        hit
    })
}
