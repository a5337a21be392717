//! Transport controls: play/pause and speed, turned into how far the cursor moves
//! per frame. No terminal and no replay here, so it is tested on its own.

use std::time::Duration;

/// Playback speeds, slowest first; past the last one is "as fast as possible".
pub const SPEEDS: [f64; 11] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, f64::INFINITY];
/// Items applied per frame at "as fast as possible".
pub const MAX_ITEMS_PER_FRAME: u64 = 250_000;
const ONE_X: usize = 3;

/// How far to move the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Stay.
    None,
    /// This much trace time, in nanoseconds.
    TraceNs(u64),
    /// This many items.
    Items(u64),
}

/// Play state and speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transport {
    /// Playing (else paused).
    pub playing: bool,
    speed: usize,
    /// Trace nanoseconds owed by rounding (speeds below 1× move less than 1 ns per
    /// wall nanosecond).
    carry: f64,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            playing: false,
            speed: ONE_X,
            carry: 0.0,
        }
    }
}

impl Transport {
    /// Play or pause.
    pub fn toggle(&mut self) {
        self.playing = !self.playing;
        self.carry = 0.0;
    }

    /// The next speed up (the last is "as fast as possible").
    pub fn faster(&mut self) {
        self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
    }

    /// The next speed down.
    pub fn slower(&mut self) {
        self.speed = self.speed.saturating_sub(1);
    }

    /// The speed factor (`f64::INFINITY`: as fast as possible).
    #[must_use]
    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    /// The speed as the status line shows it.
    #[must_use]
    pub fn speed_label(&self) -> String {
        let s = self.speed();
        if s.is_infinite() {
            "max".into()
        } else {
            format!("{s}×")
        }
    }

    /// How far the cursor moves after `wall` of real time.
    pub fn tick(&mut self, wall: Duration) -> Step {
        if !self.playing {
            return Step::None;
        }
        let s = self.speed();
        if s.is_infinite() {
            return Step::Items(MAX_ITEMS_PER_FRAME);
        }
        let ns = wall.as_nanos() as f64 * s + self.carry;
        let whole = ns.floor();
        self.carry = ns - whole;
        Step::TraceNs(whole as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_does_not_move() {
        let mut t = Transport::default();
        assert_eq!(t.tick(Duration::from_millis(100)), Step::None);
        t.toggle();
        assert_eq!(t.tick(Duration::from_millis(100)), Step::TraceNs(100_000_000));
        t.toggle();
        assert_eq!(t.tick(Duration::from_millis(100)), Step::None);
    }

    #[test]
    fn speeds_scale_trace_time_and_clamp() {
        let mut t = Transport::default();
        t.toggle();
        t.faster();
        assert_eq!(t.speed_label(), "2×");
        assert_eq!(t.tick(Duration::from_millis(10)), Step::TraceNs(20_000_000));
        for _ in 0..20 {
            t.slower();
        }
        assert_eq!(t.speed(), 0.1);
        assert_eq!(t.tick(Duration::from_millis(10)), Step::TraceNs(1_000_000));
        for _ in 0..20 {
            t.faster();
        }
        assert_eq!(t.speed_label(), "max");
        assert_eq!(t.tick(Duration::from_millis(10)), Step::Items(MAX_ITEMS_PER_FRAME));
    }

    #[test]
    fn slow_speeds_carry_fractions_instead_of_stalling() {
        let mut t = Transport::default();
        t.toggle();
        for _ in 0..3 {
            t.slower();
        }
        // 0.1× of 5 ns is half a nanosecond: two ticks make one.
        let moved: u64 = (0..10)
            .map(|_| match t.tick(Duration::from_nanos(5)) {
                Step::TraceNs(n) => n,
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(moved, 5);
    }
}
