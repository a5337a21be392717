//! Refusals a guest keeps ignoring: each kind of refusal an instance is given is
//! counted, and at [`MAX_REFUSALS`] of one kind the kernel kills it with that kind
//! as the reason. `log` lines are also held to a rate ([`LOG_BYTES_PER_S`] with a
//! [`LOG_BURST`]); a line over it is dropped and counts as a refusal.

use crate::abi::{KillReason, LOG_BURST, LOG_BYTES_PER_S, LOG_LINE_BYTES, MAX_REFUSALS};

/// One instance's refusals and its log allowance.
#[derive(Debug, Default)]
pub struct Strikes {
    memory: u32,
    instances: u32,
    log: u32,
    /// Log bytes the instance may still log now; `None` before its first line.
    log_allowance: Option<u64>,
    /// When the allowance was last topped up, in nanoseconds since boot.
    log_topped_at: u64,
}

impl Strikes {
    /// Counts a refusal of kind `reason`. `Err(reason)` when the instance has now
    /// been refused [`MAX_REFUSALS`] times for it and must be killed. Kinds that are
    /// not refusals (`Cancelled`, `Fuel`) are not counted.
    pub fn refuse(&mut self, reason: KillReason) -> Result<(), KillReason> {
        let count = match reason {
            KillReason::Memory => &mut self.memory,
            KillReason::Instances => &mut self.instances,
            KillReason::Log => &mut self.log,
            KillReason::Cancelled | KillReason::Fuel => return Ok(()),
        };
        *count = count.saturating_add(1);
        if *count >= MAX_REFUSALS { Err(reason) } else { Ok(()) }
    }

    /// Refusals of kind `reason` so far.
    #[must_use]
    pub fn refusals(&self, reason: KillReason) -> u32 {
        match reason {
            KillReason::Memory => self.memory,
            KillReason::Instances => self.instances,
            KillReason::Log => self.log,
            KillReason::Cancelled | KillReason::Fuel => 0,
        }
    }

    /// Takes a log line of `len` bytes from the allowance at `now_ns` (nanoseconds
    /// since boot); false if the line is over the instance's log rate.
    pub fn log_line(&mut self, len: usize, now_ns: u64) -> bool {
        let cost = (len as u64).saturating_add(LOG_LINE_BYTES);
        let allowance = match self.log_allowance {
            None => {
                self.log_topped_at = now_ns;
                LOG_BURST
            }
            Some(left) => {
                let earned =
                    u128::from(now_ns.saturating_sub(self.log_topped_at)) * u128::from(LOG_BYTES_PER_S) / 1_000_000_000;
                let earned = u64::try_from(earned).unwrap_or(u64::MAX);
                if earned > 0 {
                    self.log_topped_at = now_ns;
                }
                left.saturating_add(earned).min(LOG_BURST)
            }
        };
        let (left, logged) = match allowance.checked_sub(cost) {
            Some(left) => (left, true),
            None => (allowance, false),
        };
        self.log_allowance = Some(left);
        logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_th_refusal_of_a_kind_kills() {
        let mut s = Strikes::default();
        for _ in 1..MAX_REFUSALS {
            assert_eq!(s.refuse(KillReason::Memory), Ok(()));
            assert_eq!(s.refuse(KillReason::Instances), Ok(()));
        }
        assert_eq!(s.refuse(KillReason::Memory), Err(KillReason::Memory));
        assert_eq!(s.refuse(KillReason::Instances), Err(KillReason::Instances));
        assert_eq!(s.refusals(KillReason::Log), 0);
        assert_eq!(s.refuse(KillReason::Fuel), Ok(()));
    }

    #[test]
    fn log_lines_beyond_the_burst_wait_for_the_rate() {
        let mut s = Strikes::default();
        let line = 1024;
        let per_line = line as u64 + LOG_LINE_BYTES;
        let burst_lines = LOG_BURST / per_line;
        for _ in 0..burst_lines {
            assert!(s.log_line(line, 0));
        }
        assert!(!s.log_line(line, 0), "the burst is used up");
        // One line's worth of time earns one more line.
        let one_line_ns = per_line * 1_000_000_000 / LOG_BYTES_PER_S + 1;
        assert!(s.log_line(line, one_line_ns));
        assert!(!s.log_line(line, one_line_ns));
        // A long quiet spell refills only up to the burst.
        let later = one_line_ns + 3600 * 1_000_000_000;
        for _ in 0..burst_lines {
            assert!(s.log_line(line, later));
        }
        assert!(!s.log_line(line, later));
    }
}
