//! `lucid replay`: a recording with a cursor that moves both ways.
//!
//! [`Replay`] holds the state model at a cursor. The cursor counts the items the
//! decoder → merge → state path applied (see [`player`]); a seek restores the nearest
//! keyframe of the [`index`] before the target and plays forward from there, so the
//! state at any cursor equals the state a full play from the start to it builds.
//!
//! ```no_run
//! # fn main() -> Result<(), lucid_console::replay::ReplayError> {
//! let mut replay = lucid_console::replay::open(std::path::Path::new("trace.lucid"))?;
//! replay.seek_time(1_500_000_000)?; // 1.5 s after the first event
//! println!("{} tasks", replay.state().tasks.len());
//! # Ok(()) }
//! ```

mod blocks;
mod catch_up;
pub mod index;
mod place;
pub mod player;
pub mod transport;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use lucid_protocol::recording::{Header, RecordingError};

pub use index::{Index, IndexParams};
pub use place::index_path;
pub use player::{Advance, Player};

use crate::state::{Config, State};
use crate::stats::Damage;
use crate::time::Ticks;

/// Why a replay cannot go on.
#[derive(Debug)]
pub enum ReplayError {
    /// The recording cannot be read at all.
    Recording(RecordingError),
    /// A file operation failed.
    Io(String),
    /// The index is unusable (it is rebuilt on the next open).
    Index(String),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recording(e) => e.fmt(f),
            Self::Io(e) => f.write_str(e),
            Self::Index(e) => write!(f, "replay index: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// Opens `path` with the default state configuration.
pub fn open(path: &Path) -> Result<Replay, ReplayError> {
    Replay::open(path, Config::default(), IndexParams::default())
}

/// Items before a backward seek's target within which an in-memory checkpoint is
/// kept, so stepping back again restores it instead of a keyframe an interval away.
const CHECKPOINT_SPAN: u64 = 20_000;

/// Items a play must cover at least to decode on a second thread (starting one
/// costs tens of microseconds; decoding this many items, a millisecond or more).
const AHEAD_MIN_ITEMS: u64 = 16_384;

/// A recording, its index and the state at the cursor.
#[derive(Debug)]
pub struct Replay {
    path: PathBuf,
    config: Config,
    params: IndexParams,
    header: Header,
    index: Index,
    player: Player,
    /// The position at a record boundary shortly before the target of the latest
    /// backward seek.
    checkpoint: Option<player::KeyframeIn>,
    /// Keyframes that did not restore (the seek then played from the start), and
    /// why the latest did not.
    keyframe_failures: (u64, Option<String>),
}

impl Replay {
    /// Opens `path`, loading its index or building it (one full pass).
    pub fn open(path: &Path, config: Config, params: IndexParams) -> Result<Self, ReplayError> {
        Self::open_with_progress(path, config, params, &mut |_, _| {})
    }

    /// Like [`Self::open`]; `progress(bytes read, recording length)` is called now and
    /// then while the index is built.
    pub fn open_with_progress(
        path: &Path,
        config: Config,
        params: IndexParams,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self, ReplayError> {
        let player = Player::open(path, config)?;
        let header = player.header();
        let index = Index::open_or_build(path, config, params, progress)?;
        Ok(Self {
            path: path.to_path_buf(),
            config,
            params,
            header,
            index,
            player,
            checkpoint: None,
            keyframe_failures: (0, None),
        })
    }

    /// The state at the cursor.
    #[must_use]
    pub fn state(&self) -> &State {
        self.player.state()
    }

    /// The decoder's counters at the cursor.
    #[must_use]
    pub fn decoder_stats(&self) -> lucid_protocol::DecoderStats {
        self.player.decoder_stats()
    }

    /// Items applied: the cursor.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.player.items()
    }

    /// Items in the recording.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.index.summary().items
    }

    /// Whether the recording holds no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the recording is damaged (everything before it replays).
    #[must_use]
    pub fn damage(&self) -> Option<&Damage> {
        self.index.summary().damage.as_ref()
    }

    /// How the index was obtained (loaded, or rebuilt and why).
    #[must_use]
    pub fn index_origin(&self) -> &str {
        &self.index.origin
    }

    /// Why the index found on open or in use was replaced (it was stale, damaged or
    /// of another version): one line to show the user, once.
    pub fn take_notice(&mut self) -> Option<String> {
        self.index.take_notice()
    }

    /// The index.
    #[must_use]
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Trace time of the recording's first event (TSC ticks).
    #[must_use]
    pub fn start_ts(&self) -> u64 {
        self.index.summary().ts_range.map_or(0, |(a, _)| a)
    }

    /// Nanoseconds from the first to the last event.
    #[must_use]
    pub fn duration_ns(&self) -> u64 {
        let s = self.index.summary();
        s.ts_range.map_or(0, |(a, b)| s.clock().ns(Ticks(b.saturating_sub(a))))
    }

    /// Nanoseconds from the first event to the cursor's latest event.
    #[must_use]
    pub fn time_ns(&self) -> u64 {
        let clock = self.index.summary().clock();
        self.player
            .last_ts()
            .map_or(0, |t| clock.ns(Ticks(t.saturating_sub(self.start_ts()))))
    }

    /// The cursor's latest event timestamp, if any.
    #[must_use]
    pub fn cursor_ts(&self) -> Option<u64> {
        self.player.last_ts()
    }

    /// Moves the cursor to `items` applied (clamped to the recording).
    pub fn seek(&mut self, items: u64) -> Result<(), ReplayError> {
        let target = items.min(self.len());
        let best = self.index.entries().iter().rev().find(|e| e.items <= target).copied();
        let here = self.player.items();
        let resume_here = here <= target && best.is_none_or(|e| e.items <= here);
        let stop = |_: &lucid_protocol::Item<'_>, n: u64| n >= target;
        if resume_here {
            self.play_from_here(&stop, target - here);
            return Ok(());
        }
        let nearer = self
            .checkpoint
            .as_ref()
            .filter(|c| c.head.items <= target && best.is_none_or(|e| c.head.items > e.items))
            .cloned();
        if let Some(c) = nearer
            && let Ok(p) = Player::from_keyframe(&self.path, self.header, c)
        {
            self.replace_player(p);
            self.play_from_here(&stop, target - self.player.items());
            return Ok(());
        }
        // Stepping back tends to go on: keep a checkpoint near the target.
        let capture_from = (target < here).then(|| target.saturating_sub(CHECKPOINT_SPAN));
        let near = best.is_some_and(|e| target - e.items < AHEAD_MIN_ITEMS);
        let (p, checkpoint) = self.restore_and_play(best, &stop, capture_from, near)?;
        self.replace_player(p);
        if checkpoint.is_some() {
            self.checkpoint = checkpoint;
        }
        Ok(())
    }

    /// Moves the cursor to just after the last item at or before `ns` nanoseconds
    /// after the first event: every event with a later timestamp is still to come.
    pub fn seek_time(&mut self, ns: u64) -> Result<(), ReplayError> {
        let clock = self.index.summary().clock();
        let target = self.start_ts().saturating_add(clock.ticks(ns).get());
        self.seek_ts(target)
    }

    /// Like [`Self::seek_time`], with an absolute timestamp in TSC ticks.
    pub fn seek_ts(&mut self, target: u64) -> Result<(), ReplayError> {
        let before = |m: Option<u64>| m.is_none_or(|m| m <= target);
        let best = self.index.entries().iter().rev().find(|e| before(e.max_ts)).copied();
        let here_ok = before(self.player.max_ts()) && best.is_none_or(|e| e.items <= self.player.items());
        let stop = |item: &lucid_protocol::Item<'_>, _| player::timestamp(item).is_some_and(|ts| ts > target);
        if here_ok {
            // How far the target is in items is not known: assume far.
            self.play_from_here(&stop, u64::MAX);
        } else {
            // How far the target is from the keyframe is not known: assume far.
            let (p, _) = self.restore_and_play(best, &stop, None, false)?;
            self.replace_player(p);
        }
        Ok(())
    }

    /// Puts `player` in place of the current one, which is dropped on another thread:
    /// freeing a state of many tasks takes milliseconds a seek should not wait for.
    fn replace_player(&mut self, player: Player) {
        let old = std::mem::replace(&mut self.player, player);
        drop_elsewhere(old);
    }

    /// Keyframes that failed to restore so far (a seek then plays from the start:
    /// right, but slow), and the latest one's error.
    #[must_use]
    pub fn keyframe_failures(&self) -> (u64, Option<&str>) {
        (self.keyframe_failures.0, self.keyframe_failures.1.as_deref())
    }

    /// Moves the cursor by `delta` items.
    pub fn step(&mut self, delta: i64) -> Result<(), ReplayError> {
        let to = self.position().saturating_add_signed(delta);
        self.seek(to)
    }

    /// Plays forward until `stop(next item, items applied)` holds or the recording
    /// ends (the stop closure sees every item before it is applied, once).
    pub fn advance(&mut self, stop: impl FnMut(&lucid_protocol::Item<'_>, u64) -> bool) -> Advance {
        self.player.advance(stop)
    }

    /// Whether the cursor is at the end of the recording (or its damage).
    #[must_use]
    pub fn at_end(&self) -> bool {
        self.player.at_end()
    }

    /// Plays forward at most `items` items; returns how many were applied.
    pub fn play_items(&mut self, items: u64) -> u64 {
        let from = self.player.items();
        let to = from.saturating_add(items);
        self.play_from_here(&|_, n| n >= to, items);
        self.player.items() - from
    }

    /// Plays the cursor on until `stop` holds, about `distance` items away: far
    /// enough, with the recording decoded on a second thread.
    fn play_from_here(&mut self, stop: catch_up::Stop<'_>, distance: u64) {
        if distance >= AHEAD_MIN_ITEMS {
            self.player.advance_decoding_ahead(stop, None, &mut None);
        } else {
            self.player.advance(|item, n| stop(item, n));
        }
    }

    /// Jumps to the next warning after the cursor; false if there is none.
    pub fn next_warning(&mut self) -> Result<bool, ReplayError> {
        let here = self.position();
        match self.index.summary().warnings.iter().find(|&&w| w > here).copied() {
            Some(w) => self.seek(w).map(|()| true),
            None => Ok(false),
        }
    }

    /// Jumps to the previous warning before the cursor; false if there is none.
    pub fn prev_warning(&mut self) -> Result<bool, ReplayError> {
        let here = self.position();
        match self.index.summary().warnings.iter().rev().find(|&&w| w < here).copied() {
            Some(w) => self.seek(w).map(|()| true),
            None => Ok(false),
        }
    }

    /// A player at keyframe `entry` (or at the start without one), played on until
    /// `stop` holds; with `capture_from`, also the checkpoint
    /// [`Player::advance_capturing`] keeps. A keyframe that cannot be restored falls
    /// back to the start (slow, still correct); one that depends on recording bytes
    /// changed since the index was built is never used: the index is rebuilt (see
    /// [`Self::take_notice`]) and the player starts over. With `near` (the stop is
    /// known to be close to the keyframe) everything happens on this thread: a second
    /// one would start for a record's worth of decoding.
    fn restore_and_play(
        &mut self,
        entry: Option<index::Entry>,
        stop: catch_up::Stop<'_>,
        capture_from: Option<u64>,
        near: bool,
    ) -> Result<(Player, Option<player::KeyframeIn>), ReplayError> {
        if let Some(e) = entry {
            match self.index.verify_through(e.record_offset) {
                Ok(()) => {
                    let played = if near {
                        self.index
                            .restore(&self.path, self.header, &e)
                            .map(|p| play_on(p, stop, capture_from))
                    } else {
                        self.index
                            .restore_and_play(&self.path, self.header, &e, stop, capture_from)
                    };
                    match played {
                        Ok(played) => return Ok(played),
                        // Correct but slow: say so where a caller can see it.
                        Err(err) => self.keyframe_failures = (self.keyframe_failures.0 + 1, Some(err.to_string())),
                    }
                }
                Err(index::Changed(why)) => {
                    self.checkpoint = None;
                    self.index = Index::rebuild(&self.path, self.config, self.params, &why)?;
                }
            }
        }
        let player = Player::open(&self.path, self.config)?;
        self.header = player.header();
        Ok(play_on(player, stop, capture_from))
    }
}

/// `player` played on, on this thread, until `stop` holds; with `capture_from`, also
/// the checkpoint [`Player::advance_capturing`] keeps.
fn play_on(
    mut player: Player,
    stop: catch_up::Stop<'_>,
    capture_from: Option<u64>,
) -> (Player, Option<player::KeyframeIn>) {
    let mut checkpoint = None;
    // No item count reaches `u64::MAX`: without `capture_from` nothing is captured.
    player.advance_capturing(
        |item, n| stop(item, n),
        capture_from.unwrap_or(u64::MAX),
        &mut checkpoint,
    );
    (player, checkpoint)
}

/// Drops `value` on the replay's dropper thread (started on first use), or here if
/// that thread cannot be had.
fn drop_elsewhere<T: Send + 'static>(value: T) {
    use std::sync::OnceLock;
    use std::sync::mpsc::{Sender, channel};
    type Garbage = Box<dyn Send>;
    static DROPPER: OnceLock<Option<Sender<Garbage>>> = OnceLock::new();
    let dropper = DROPPER.get_or_init(|| {
        let (tx, rx) = channel::<Garbage>();
        std::thread::Builder::new()
            .name("lucid-replay-drop".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = dropper {
        // A send fails only if the thread is gone; the value then drops here.
        let _ = tx.send(Box::new(value));
    }
}
