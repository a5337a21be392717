//! The replay cursor: a recording fed through the same decoder → merge → state path
//! as `lucid stats` and `lucid live`, stoppable after any item.
//!
//! The cursor counts *items* (decoder items the merge released: events, gaps,
//! restarts, frame errors) applied to the state. Feeding a record releases many items
//! at once; when a stop falls inside them, the rest wait in `pending` as owned copies
//! and go first on the next advance. A record's receive time is noted in the state
//! just before its first item is applied (not when it is read), so the state after
//! `n` items does not depend on how far ahead the reader happens to be: that is what
//! makes a state restored from a keyframe equal to one played from the start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use lucid_protocol::recording::{Header, RecordingReader};
use lucid_protocol::{Decoder, Item, Ring};
use serde::{Deserialize, Serialize};

use super::ReplayError;
use super::catch_up::{self, Boundary, Reader};
use crate::merge::MergeSnapshot;
use crate::pipeline::{OwnedItem, Pipeline};
use crate::state::{Config, State};
use crate::stats::Damage;
use crate::time::HostNs;

/// Warning positions remembered at most while indexing.
pub const MAX_WARNING_MARKS: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(super) enum Op {
    /// A record's receive time, noted before the next item.
    Rx(HostNs),
    Item(OwnedItem),
}

/// Why an advance returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The stop condition held for the next item (not applied).
    Stopped,
    /// The recording ended (or its damage was reached); everything was applied.
    End,
}

/// The state and the cursor over it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Applied {
    pub state: State,
    /// Items applied.
    pub items: u64,
    /// Timestamp of the latest task or interrupt event applied (see [`timestamp`]).
    pub last_ts: Option<u64>,
    /// Largest such timestamp so far (the merge may release a late one).
    pub max_ts: Option<u64>,
    /// Smallest such timestamp so far.
    pub min_ts: Option<u64>,
    /// Item positions (items applied, the warning's item included) of warnings, when
    /// indexing.
    pub marks: Option<Vec<u64>>,
}

impl Applied {
    pub(super) fn apply(&mut self, item: &Item<'_>) {
        let before = self.warnings_total();
        self.state.apply(item);
        self.items += 1;
        if let Some(ts) = timestamp(item) {
            self.last_ts = Some(ts);
            self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
            self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        }
        let after = self.warnings_total();
        if let Some(marks) = &mut self.marks
            && after > before
            && marks.len() < MAX_WARNING_MARKS
        {
            marks.push(self.items);
        }
    }

    /// Notes the receive times pending before the next item, then applies `item`.
    pub(super) fn apply_after(&mut self, pending: &mut VecDeque<Op>, item: &Item<'_>) {
        while let Some(&Op::Rx(rx)) = pending.front() {
            pending.pop_front();
            self.state.received_at(rx);
        }
        self.apply(item);
    }

    /// A keyframe's head at this point, at record boundary `at`.
    pub(super) fn head(&self, at: Boundary) -> KeyframeHead {
        KeyframeHead {
            items: self.items,
            last_ts: self.last_ts,
            max_ts: self.max_ts,
            min_ts: self.min_ts,
            record_offset: at.record_offset,
            decoder: at.decoder,
            merge: at.merge,
        }
    }

    fn warnings_total(&self) -> u64 {
        self.state.warnings.len() as u64 + self.state.warnings_dropped
    }
}

/// A keyframe's fields before its state. A keyframe is written as `(head, state)`
/// (postcard puts a struct's fields in order, so that is the head's fields and then
/// the state), so a reader can set the recording's decoding going from the head
/// while the state is still being read (see [`super::catch_up`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyframeHead {
    pub items: u64,
    pub last_ts: Option<u64>,
    pub max_ts: Option<u64>,
    pub min_ts: Option<u64>,
    pub record_offset: u64,
    pub decoder: Decoder,
    pub merge: MergeSnapshot,
}

impl KeyframeHead {
    /// Where the recording resumes, and the cursor there given the keyframe's state.
    pub(super) fn split(self) -> (Boundary, impl FnOnce(State) -> Applied) {
        let Self {
            items,
            last_ts,
            max_ts,
            min_ts,
            record_offset,
            decoder,
            merge,
        } = self;
        let at = Boundary {
            record_offset,
            decoder,
            merge,
        };
        let applied_with = move |state| Applied {
            state,
            items,
            last_ts,
            max_ts,
            min_ts,
            marks: None,
        };
        (at, applied_with)
    }
}

/// A keyframe as read back, or an in-memory checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct KeyframeIn {
    pub head: KeyframeHead,
    pub state: State,
}

/// A recording being played.
#[derive(Debug)]
pub struct Player {
    reader: Reader,
    pipeline: Pipeline,
    pub(crate) applied: Applied,
    pending: VecDeque<Op>,
    ended: bool,
    damage: Option<Damage>,
}

pub(super) fn open_at(path: &Path, offset: Option<(Header, u64)>) -> Result<Reader, ReplayError> {
    let open_err = |e: std::io::Error| ReplayError::Io(format!("cannot open {}: {e}", path.display()));
    let mut file = File::open(path).map_err(open_err)?;
    match offset {
        None => RecordingReader::new(BufReader::with_capacity(1 << 16, file)).map_err(ReplayError::Recording),
        Some((header, off)) => {
            file.seek(SeekFrom::Start(off)).map_err(open_err)?;
            Ok(RecordingReader::resume(
                BufReader::with_capacity(1 << 16, file),
                header,
                off,
            ))
        }
    }
}

impl Player {
    /// A player at the start of the recording at `path`.
    pub fn open(path: &Path, config: Config) -> Result<Self, ReplayError> {
        let reader = open_at(path, None)?;
        Ok(Self::new(
            reader,
            Pipeline::new(),
            Applied {
                state: State::with_config(config),
                items: 0,
                last_ts: None,
                max_ts: None,
                min_ts: None,
                marks: None,
            },
        ))
    }

    fn new(reader: Reader, pipeline: Pipeline, applied: Applied) -> Self {
        Self::assemble(reader, pipeline, applied, VecDeque::new(), false, None)
    }

    /// A player from its parts: `pending` as [`Self::feed_next`] leaves it, `ended`
    /// once the end of input (or `damage`) was fed.
    pub(super) fn assemble(
        reader: Reader,
        pipeline: Pipeline,
        applied: Applied,
        pending: VecDeque<Op>,
        ended: bool,
        damage: Option<Damage>,
    ) -> Self {
        Self {
            reader,
            pipeline,
            applied,
            pending,
            ended,
            damage,
        }
    }

    /// A player positioned at keyframe `kf` of the recording at `path`.
    pub(crate) fn from_keyframe(path: &Path, header: Header, kf: KeyframeIn) -> Result<Self, ReplayError> {
        let (at, applied_with) = kf.head.split();
        let (reader, pipeline) = at.open(path, header)?;
        Ok(Self::new(reader, pipeline, applied_with(kf.state)))
    }

    /// The recording's header.
    pub fn header(&self) -> Header {
        self.reader.header()
    }

    /// The state at the cursor.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.applied.state
    }

    /// The decoder's counters at the cursor (bytes fed so far, frames, errors).
    #[must_use]
    pub fn decoder_stats(&self) -> lucid_protocol::DecoderStats {
        *self.pipeline.decoder().stats()
    }

    /// Items applied.
    #[must_use]
    pub fn items(&self) -> u64 {
        self.applied.items
    }

    /// Timestamp of the latest event applied.
    #[must_use]
    pub fn last_ts(&self) -> Option<u64> {
        self.applied.last_ts
    }

    /// Largest event timestamp applied.
    #[must_use]
    pub fn max_ts(&self) -> Option<u64> {
        self.applied.max_ts
    }

    /// Smallest and largest event timestamp applied.
    #[must_use]
    pub fn ts_range(&self) -> Option<(u64, u64)> {
        self.applied.min_ts.zip(self.applied.max_ts)
    }

    /// Where the recording is damaged, once reading reached it.
    #[must_use]
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// Whether everything, end of input included, was applied.
    #[must_use]
    pub fn at_end(&self) -> bool {
        self.ended && self.pending.is_empty()
    }

    /// Starts remembering warning positions (for the index).
    pub(crate) fn mark_warnings(&mut self) {
        self.applied.marks = Some(Vec::new());
    }

    /// Applies items until `stop(next item, items applied)` holds or the recording
    /// ends.
    pub fn advance(&mut self, stop: impl FnMut(&Item<'_>, u64) -> bool) -> Advance {
        // No item count reaches `u64::MAX`: nothing is captured.
        self.advance_capturing(stop, u64::MAX, &mut None)
    }

    /// Like [`Self::advance`], keeping in `checkpoint` the position at the last record
    /// boundary passed with at least `from` items applied.
    pub(crate) fn advance_capturing(
        &mut self,
        mut stop: impl FnMut(&Item<'_>, u64) -> bool,
        from: u64,
        checkpoint: &mut Option<KeyframeIn>,
    ) -> Advance {
        loop {
            if self.drain(&mut stop) {
                return Advance::Stopped;
            }
            if self.ended {
                self.apply_rx();
                return Advance::End;
            }
            if self.pending.is_empty() && self.applied.items >= from {
                *checkpoint = Some(self.checkpoint());
            }
            if self.feed_next(&mut stop) {
                return Advance::Stopped;
            }
        }
    }

    /// Like [`Self::advance_capturing`] (with `capture_from`, else like
    /// [`Self::advance`]), reading and decoding the recording on a second thread while
    /// this one folds (see [`catch_up`]): for plays long enough to pay for a thread.
    pub(crate) fn advance_decoding_ahead(
        &mut self,
        stop: catch_up::Stop<'_>,
        capture_from: Option<u64>,
        checkpoint: &mut Option<KeyframeIn>,
    ) -> Advance {
        if self.drain(&mut |item, n| stop(item, n)) {
            return Advance::Stopped;
        }
        if self.ended {
            self.apply_rx();
            return Advance::End;
        }
        let here = (self.pending.is_empty() && capture_from.is_some_and(|from| self.applied.items >= from))
            .then(|| Boundary::at(&self.reader, &self.pipeline));
        let (reading, applied, pending) = self.lend();
        let items = applied.items;
        let mut plan = catch_up::capturing(capture_from);
        let folded = catch_up::with_worker(reading, items, stop, &mut plan, |released| {
            catch_up::fold(applied, std::mem::take(pending), released, stop, here)
        });
        // Without a thread nothing was read, and this one does it all.
        if let Ok((left, captured)) = folded {
            *pending = left;
            if captured.is_some() {
                *checkpoint = captured;
            }
        }
        // Settles what the worker left (see `catch_up::restore_and_play`).
        self.advance_capturing(|item, n| stop(item, n), capture_from.unwrap_or(u64::MAX), checkpoint)
    }

    /// The player's reading half (for a worker) apart from what the fold changes.
    fn lend(&mut self) -> (catch_up::Reading<'_>, &mut Applied, &mut VecDeque<Op>) {
        let Self {
            reader,
            pipeline,
            applied,
            pending,
            ended,
            damage,
        } = self;
        let reading = catch_up::Reading {
            reader,
            pipeline,
            ended,
            damage,
        };
        (reading, applied, pending)
    }

    /// Plays a player that has not read yet to the end of input, the recording
    /// decoded on a second thread: after each record's items are applied,
    /// `after(applied, next record's offset, boundary)` with the boundaries `plan` had
    /// the worker keep. End with [`Self::advance`] (receive times may be pending).
    pub(super) fn play_out_decoding_ahead(
        &mut self,
        plan: catch_up::Plan<'_>,
        mut after: impl FnMut(&Applied, u64, Option<Boundary>) -> Result<(), ReplayError>,
    ) -> Result<(), ReplayError> {
        let (reading, applied, pending) = self.lend();
        let items = applied.items;
        catch_up::with_worker(reading, items, &|_, _| false, plan, move |records| {
            for record in records {
                if let Some(rx) = record.rx {
                    pending.push_back(Op::Rx(rx));
                }
                for owned in &record.items {
                    owned.with(|item| applied.apply_after(pending, item));
                }
                after(applied, record.offset, record.boundary)?;
            }
            Ok(())
        })
        .map_err(|e| ReplayError::Io(format!("cannot start a decoding thread: {e}")))?
    }

    /// An owned keyframe of this position (only meaningful between records with
    /// nothing pending).
    fn checkpoint(&self) -> KeyframeIn {
        KeyframeIn {
            head: self.applied.head(Boundary::at(&self.reader, &self.pipeline)),
            state: self.applied.state.clone(),
        }
    }

    /// Reads and feeds one record (or the end of input); true if a stop fell inside.
    /// Call only with no items pending.
    fn feed_next(&mut self, stop: &mut impl FnMut(&Item<'_>, u64) -> bool) -> bool {
        let record = catch_up::read_record(&mut self.reader, &mut self.damage);
        let mut stopped = false;
        if let Some(r) = &record {
            self.pending.push_back(Op::Rx(HostNs(r.rx_ns)));
        }
        let Self {
            pipeline,
            applied,
            pending,
            ..
        } = self;
        let mut out = |item: &Item<'_>| {
            if !stopped && !stop(item, applied.items) {
                applied.apply_after(pending, item);
            } else {
                stopped = true;
                pending.push_back(Op::Item(OwnedItem::new(item)));
            }
        };
        match record {
            Some(r) => {
                pipeline.feed(HostNs(r.rx_ns), &r.data, &mut out);
            }
            None => {
                pipeline.finish(&mut out);
                self.ended = true;
            }
        }
        stopped
    }

    /// Applies pending items until a stop; true if one held. Leaves only receive
    /// times pending otherwise.
    fn drain(&mut self, stop: &mut impl FnMut(&Item<'_>, u64) -> bool) -> bool {
        while let Some(i) = self.pending.iter().position(|op| matches!(op, Op::Item(_))) {
            let Some(Op::Item(owned)) = self.pending.get(i) else {
                break;
            };
            let owned = owned.clone();
            let (mut halted, mut seen) = (false, false);
            let applied = &mut self.applied;
            let pending = &mut self.pending;
            owned.with(|item| {
                seen = true;
                if stop(item, applied.items) {
                    halted = true;
                    return;
                }
                // Everything before it is a receive time.
                applied.apply_after(pending, item);
            });
            if halted {
                return true;
            }
            // Applied: the receive times before it went, so it is first now.
            self.pending.remove(if seen { 0 } else { i });
        }
        false
    }

    fn apply_rx(&mut self) {
        for op in self.pending.drain(..) {
            if let Op::Rx(rx) = op {
                self.applied.state.received_at(rx);
            }
        }
    }
}

/// The trace time of `item` for the cursor: the timestamp of a task or interrupt
/// event. Control messages pass the merge at once and may be newer than task events
/// still on their way (as for [`State::now`]), so they do not move the cursor's time.
#[must_use]
pub fn timestamp(item: &Item<'_>) -> Option<u64> {
    match item {
        Item::Event { stream, event, .. } if matches!(stream.ring, Ring::Task | Ring::Interrupt) => Some(event.ts),
        _ => None,
    }
}
