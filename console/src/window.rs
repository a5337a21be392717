//! A time window of a recording (`--from`/`--to`) and the one pass over it that
//! `profile`, `export` and windowed `stats` make: the items the replay cursor applies
//! between the two times, each shown to an observer just before the state applies it.

use std::path::Path;

use lucid_protocol::{DecoderStats, Item};

use crate::replay::player::timestamp;
use crate::replay::{IndexParams, Player, Replay, ReplayError};
use crate::state::{Config, State};
use crate::stats::Damage;

/// Times in nanoseconds after the recording's first task or interrupt event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Start (the recording's start without one).
    pub from_ns: Option<u64>,
    /// End, inclusive (the recording's end without one).
    pub to_ns: Option<u64>,
}

impl Window {
    /// The whole recording.
    #[must_use]
    pub fn is_all(&self) -> bool {
        self.from_ns.is_none() && self.to_ns.is_none()
    }
}

/// What a scan saw besides the items.
#[derive(Debug)]
pub struct Scan {
    /// The state at the window's start.
    pub start: State,
    /// The state at the window's end.
    pub end: State,
    /// Where reading stopped early, if it did within the window.
    pub damage: Option<Damage>,
    /// The decoder's counters at the window's start.
    pub start_decoder: DecoderStats,
    /// The decoder's counters at the window's end.
    pub end_decoder: DecoderStats,
    /// Timestamp the window's times count from: the recording's first task or
    /// interrupt event (TSC ticks; 0 for a recording without one).
    pub origin_ts: u64,
    /// The window's start and end as timestamps (ticks), where given.
    pub from_ts: Option<u64>,
    /// See `from_ts`.
    pub to_ts: Option<u64>,
}

/// Something that takes the items of a window.
pub trait Observer {
    /// Takes one item, just before the state applies it.
    fn observe(&mut self, item: &Item<'_>);
}

impl Observer for () {
    fn observe(&mut self, _: &Item<'_>) {}
}

impl<O: Observer> Observer for Option<O> {
    fn observe(&mut self, item: &Item<'_>) {
        if let Some(o) = self {
            o.observe(item);
        }
    }
}

impl<A: Observer, B: Observer> Observer for (A, B) {
    fn observe(&mut self, item: &Item<'_>) {
        self.0.observe(item);
        self.1.observe(item);
    }
}

/// Where a window starts, for an observer to begin from.
#[derive(Debug)]
pub struct Start<'a> {
    /// The state at the window's start.
    pub state: &'a State,
    /// The window's start (ticks), if it has one.
    pub from_ts: Option<u64>,
    /// The window's end (ticks), if it has one.
    pub to_ts: Option<u64>,
    /// Timestamp times count from: the recording's first task or interrupt event
    /// (ticks). Without a window, the first seen (an index knows the smallest).
    pub origin_ts: u64,
}

/// Plays the window of the recording at `path`, giving each item to the observer
/// `begin` makes from the window's start, before the state applies it. The whole
/// recording needs no index; a window uses (and builds, the first time) the replay
/// index to start at `from` without playing everything before it.
pub fn scan<O: Observer>(
    path: &Path,
    config: Config,
    window: Window,
    begin: impl FnOnce(&Start<'_>) -> O,
) -> Result<(O, Scan), ReplayError> {
    if window.is_all() {
        // The origin is the first task event's time: a second cursor finds it.
        let mut origin = None;
        Player::open(path, config)?.advance(|item, _| {
            origin = timestamp(item);
            origin.is_some()
        });
        let mut p = Player::open(path, config)?;
        let start = p.state().clone();
        let mut o = begin(&Start {
            state: &start,
            from_ts: None,
            to_ts: None,
            origin_ts: origin.unwrap_or(0),
        });
        p.advance(|item, _| {
            o.observe(item);
            false
        });
        let scan = Scan {
            start,
            end: p.state().clone(),
            damage: p.damage().cloned(),
            start_decoder: DecoderStats::default(),
            end_decoder: p.decoder_stats(),
            origin_ts: origin.unwrap_or(0),
            from_ts: None,
            to_ts: None,
        };
        return Ok((o, scan));
    }
    let mut r = Replay::open(path, config, IndexParams::default())?;
    let clock = r.index().summary().clock();
    let origin_ts = r.start_ts();
    let to_ticks = |ns: u64| origin_ts.saturating_add(clock.ticks(ns).get());
    if let Some(from) = window.from_ns {
        r.seek_time(from)?;
    }
    let start = r.state().clone();
    let start_decoder = r.decoder_stats();
    let from_ts = window.from_ns.map(to_ticks);
    let to_ts = window.to_ns.map(to_ticks);
    let mut o = begin(&Start {
        state: &start,
        from_ts,
        to_ts,
        origin_ts,
    });
    let limit = to_ts.unwrap_or(u64::MAX);
    r.advance(|item, _| {
        if timestamp(item).is_some_and(|ts| ts > limit) {
            return true;
        }
        o.observe(item);
        false
    });
    let scan = Scan {
        start,
        end: r.state().clone(),
        damage: r.at_end().then(|| r.damage().cloned()).flatten(),
        start_decoder,
        end_decoder: r.decoder_stats(),
        origin_ts,
        from_ts,
        to_ts,
    };
    Ok((o, scan))
}
