//! The host's one path from received bytes to the state model: the [`Decoder`] turns
//! bytes into items, the [`Merge`] puts the CPUs' interleaved streams back in
//! timestamp order, and the items it releases go to a [`State`] (or to a consumer
//! that does more than apply them, such as replay's cursor). `lucid stats`, `lucid
//! live`, replay and the replay index all hold one [`Pipeline`], so they order and
//! apply items alike. [`Worker`] runs a pipeline on a thread of its own, for live
//! sessions that need two cores to keep up.

use lucid_protocol::{Decoder, Item};

mod owned;
mod worker;

pub(crate) use owned::OwnedItem;
pub use worker::Worker;

use crate::merge::{Merge, MergeSnapshot, SnapshotError};
use crate::state::State;
use crate::time::HostNs;

/// A decoder and the merge behind it.
#[derive(Debug, Default)]
pub struct Pipeline {
    decoder: Decoder,
    merge: Merge,
}

impl Pipeline {
    /// A pipeline that has seen nothing, with the default merge bound.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A pipeline that has seen nothing, ordering through `merge`.
    #[must_use]
    pub fn with_merge(merge: Merge) -> Self {
        Self {
            decoder: Decoder::new(),
            merge,
        }
    }

    /// The pipeline a keyframe holds: `decoder` as it was, and the merge `merge` is
    /// a snapshot of.
    pub fn restore(decoder: Decoder, merge: MergeSnapshot) -> Result<Self, SnapshotError> {
        Ok(Self {
            decoder,
            merge: Merge::restore(merge)?,
        })
    }

    /// The decoder (its counters, or a keyframe's copy of it).
    #[must_use]
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The merge (what it holds and its counters).
    #[must_use]
    pub fn merge(&self) -> &Merge {
        &self.merge
    }

    /// Decodes `data`, received at `rx`, and hands on every item it releases, in
    /// order.
    pub fn feed(&mut self, rx: HostNs, data: &[u8], out: &mut impl FnMut(&Item<'_>)) {
        let Self { decoder, merge } = self;
        merge.start_chunk(rx, out);
        decoder.feed(data, |item| merge.push(&item, out));
        merge.release(out);
    }

    /// Decodes `data`, received at `rx`, into `state`: the receive time is noted,
    /// then every item released is applied.
    pub fn feed_into(&mut self, state: &mut State, rx: HostNs, data: &[u8]) {
        state.received_at(rx);
        self.feed(rx, data, &mut |item| state.apply(item));
    }

    /// Ends the input: a frame cut off at the end is reported, and everything held
    /// goes, in order.
    pub fn finish(&mut self, out: &mut impl FnMut(&Item<'_>)) {
        let Self { decoder, merge } = self;
        decoder.finish(|item| merge.push(&item, out));
        merge.flush(out);
    }

    /// [`Self::finish`] into `state`.
    pub fn finish_into(&mut self, state: &mut State) {
        self.finish(&mut |item| state.apply(item));
    }

    /// Hands on everything the merge holds, in order (nothing more is coming for
    /// now); the decoder keeps its partial frame.
    pub fn flush(&mut self, out: &mut impl FnMut(&Item<'_>)) {
        self.merge.flush(out);
    }

    /// [`Self::flush`] into `state`.
    pub fn flush_into(&mut self, state: &mut State) {
        self.flush(&mut |item| state.apply(item));
    }

    /// Hands on what the merge holds once the link has been idle at `now` (see
    /// [`Merge::tick`]); true if something was released.
    pub fn tick(&mut self, now: HostNs, out: &mut impl FnMut(&Item<'_>)) -> bool {
        self.merge.tick(now, out)
    }

    /// [`Self::tick`] into `state`.
    pub fn tick_into(&mut self, state: &mut State, now: HostNs) -> bool {
        self.tick(now, &mut |item| state.apply(item))
    }
}
