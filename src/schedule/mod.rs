//! Schedules: 5-field crontab expressions (croner) and intervals.
//!
//! - [`cron`]: [`CronSpec`] (parse, next due time, time zones and DST rules).
//! - [`jobs`]: [`Spec`] (crontab or interval) and [`Job`].
//! - [`scheduler`]: [`Scheduler`], the task that emits `schedule` events.
//! - [`clock`]: [`Clock`]; [`TokioClock`] lets tests drive cron time with paused tokio time.
//!
//! Depends on [`crate::event`] only.

pub mod clock;
pub mod cron;
pub mod jobs;
pub mod scheduler;

pub use clock::{Clock, SystemClock, TokioClock};
pub use cron::{CronSpec, Zone};
pub use jobs::{Job, Spec, MIN_INTERVAL};
pub use scheduler::{EventSink, Scheduler};

/// Why a schedule was refused. The message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A 6- or 7-field pattern (seconds, years).
    #[error("seconds fields are not supported; use 5 fields: minute hour day month weekday")]
    SecondsField,
    /// Neither 5 fields nor a nickname.
    #[error("a crontab has 5 fields (minute hour day month weekday); this one has {0}")]
    FieldCount(usize),
    /// A bad `@nickname`.
    #[error("{0}")]
    Nickname(String),
    /// Croner refused the pattern, or it never matches.
    #[error("invalid crontab: {0}")]
    Cron(String),
    /// A bad interval.
    #[error("invalid interval `{text}`: {reason}")]
    Interval {
        /// What was written.
        text: String,
        /// Why it is refused.
        reason: String,
    },
}
