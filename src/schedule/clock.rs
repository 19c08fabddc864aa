//! Where the scheduler gets the time from.
//!
//! The scheduler sleeps with tokio timers (monotonic) but decides what is due by the
//! wall clock ([`Clock::now`]), and never sleeps longer than a minute at a time, so a
//! jump of the wall clock (suspend and resume, an NTP step) is noticed within a
//! minute. Tests use [`TokioClock`], whose wall time follows tokio's (pausable) clock,
//! so `tokio::time::pause()` + `advance()` move cron time without real waiting.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock (`Utc::now()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time = `base` + (tokio now − tokio instant at creation) + jumps.
///
/// With `tokio::time::pause()` this clock stands still until the test advances it
/// (or tokio auto-advances to the next timer); [`TokioClock::jump`] simulates a
/// suspend: the wall clock moves, the monotonic clock does not.
#[derive(Debug)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
    jumped: Mutex<chrono::Duration>,
}

impl TokioClock {
    /// A clock that reads `base` now. Call it inside the runtime whose (paused) time
    /// it should follow.
    pub fn new(base: DateTime<Utc>) -> TokioClock {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
            jumped: Mutex::new(chrono::Duration::zero()),
        }
    }

    /// Move the wall clock forward by `by` without moving tokio's clock.
    pub fn jump(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut j = self.jumped.lock().unwrap_or_else(|e| e.into_inner());
        *j = j.checked_add(&by).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start);
        let elapsed = chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero());
        let jumped = *self.jumped.lock().unwrap_or_else(|e| e.into_inner());
        elapsed
            .checked_add(&jumped)
            .and_then(|d| self.base.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
