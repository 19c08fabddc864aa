//! What a job is: a name and when it is due ([`Spec`]: a crontab or an interval).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::cron::{CronSpec, Zone};
use super::ScheduleError;

/// When a job is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A 5-field crontab in a zone.
    Cron(CronSpec),
    /// Every so often: first `interval` after the job is registered, then every
    /// `interval` after the previous due time (no drift).
    Every(Duration),
}

/// The shortest interval accepted; anything shorter is a mistake (`1ms` instead of `1m`),
/// and would flood the rules with events.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl Spec {
    /// A crontab (see [`CronSpec::parse`]).
    pub fn cron(expr: &str, zone: impl Into<Zone>) -> Result<Spec, ScheduleError> {
        CronSpec::parse(expr, zone).map(Spec::Cron)
    }

    /// An interval written the humantime way: `90s`, `15m`, `1h`, `1h 30m`, `2days`.
    pub fn every(text: &str) -> Result<Spec, ScheduleError> {
        let d = humantime::parse_duration(text.trim()).map_err(|e| ScheduleError::Interval {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
        Spec::every_duration(d).map_err(|e| match e {
            ScheduleError::Interval { reason, .. } => ScheduleError::Interval {
                text: text.to_owned(),
                reason,
            },
            other => other,
        })
    }

    /// An interval; at least [`MIN_INTERVAL`].
    pub fn every_duration(d: Duration) -> Result<Spec, ScheduleError> {
        if d < MIN_INTERVAL {
            return Err(ScheduleError::Interval {
                text: humantime::format_duration(d).to_string(),
                reason: "the interval must be at least 1s".into(),
            });
        }
        if chrono::Duration::from_std(d).is_err() {
            return Err(ScheduleError::Interval {
                text: humantime::format_duration(d).to_string(),
                reason: "the interval is too long".into(),
            });
        }
        Ok(Spec::Every(d))
    }

    /// The first due time after registering the job at `now`.
    pub(crate) fn first_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Spec::Cron(c) => c.next_after(now),
            Spec::Every(d) => add(now, *d),
        }
    }

    /// After a run that was due at `due`, with the clock at `now` (≥ `due`): the next
    /// due time (strictly after `now`) and how many due times in between were skipped.
    pub(crate) fn next_after_run(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, u64) {
        match self {
            Spec::Cron(c) => {
                // Count the missed due times in (due, now]; bounded, because after a
                // long suspend a `* * * * *` job could have missed a great many.
                let mut skipped = 0u64;
                let mut t = due;
                loop {
                    match c.next_after(t) {
                        Some(n) if n <= now && skipped < MAX_SKIP_COUNT => {
                            skipped += 1;
                            t = n;
                        }
                        Some(n) if n <= now => return (c.next_after(now), skipped),
                        next => return (next, skipped),
                    }
                }
            }
            Spec::Every(d) => {
                // Keep the phase: the next due time is due + k·d for the smallest k
                // that lands after now.
                let Ok(step) = chrono::Duration::from_std(*d) else {
                    return (None, 0);
                };
                let behind = now.signed_duration_since(due);
                let step_ns = step.num_nanoseconds().unwrap_or(i64::MAX).max(1);
                let behind_ns = behind.num_nanoseconds().unwrap_or(i64::MAX).max(0);
                let k = behind_ns / step_ns + 1;
                let next = i32::try_from(k)
                    .ok()
                    .and_then(|k| step.checked_mul(k))
                    .and_then(|off| due.checked_add_signed(off));
                (next, (k - 1).max(0) as u64)
            }
        }
    }
}

/// Skipped runs are counted up to this many (for the log line only).
const MAX_SKIP_COUNT: u64 = 10_000;

fn add(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Cron(c) => c.fmt(f),
            Spec::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
        }
    }
}

/// A named job. Names identify jobs across [`Scheduler::set_jobs`](super::Scheduler::set_jobs)
/// calls: a rule's name, or `script:<file stem>:<fn>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The name the `schedule` event carries.
    pub name: String,
    /// When it is due.
    pub spec: Spec,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn every_parses_humantime() {
        assert_eq!(Spec::every("90s"), Ok(Spec::Every(Duration::from_secs(90))));
        assert_eq!(
            Spec::every("15m"),
            Ok(Spec::Every(Duration::from_secs(900)))
        );
        assert_eq!(
            Spec::every(" 1h "),
            Ok(Spec::Every(Duration::from_secs(3600)))
        );
        assert_eq!(
            Spec::every("1h 30m"),
            Ok(Spec::Every(Duration::from_secs(5400)))
        );
        assert_eq!(Spec::every("15m").expect("ok").to_string(), "every 15m");
    }

    #[test]
    fn every_refuses_nonsense() {
        let e = Spec::every("15 minutes please").expect_err("bad");
        assert!(
            e.to_string()
                .starts_with("invalid interval `15 minutes please`"),
            "{e}"
        );
        let e = Spec::every("10ms").expect_err("too short");
        assert_eq!(
            e.to_string(),
            "invalid interval `10ms`: the interval must be at least 1s"
        );
        assert!(Spec::every("0s").is_err());
        assert!(Spec::every("").is_err());
    }

    #[test]
    fn every_keeps_its_phase_and_counts_skips() {
        let s = Spec::Every(Duration::from_secs(60));
        let t0 = utc("2025-01-06T08:00:00Z");
        assert_eq!(s.first_after(t0), Some(utc("2025-01-06T08:01:00Z")));
        // On time.
        assert_eq!(
            s.next_after_run(t0, utc("2025-01-06T08:00:00.003Z")),
            (Some(utc("2025-01-06T08:01:00Z")), 0)
        );
        // 2.5 intervals late: 08:01 and 08:02 were skipped, next is 08:03.
        assert_eq!(
            s.next_after_run(t0, utc("2025-01-06T08:02:30Z")),
            (Some(utc("2025-01-06T08:03:00Z")), 2)
        );
        // Exactly on a later due time: that one counts as skipped too.
        assert_eq!(
            s.next_after_run(t0, utc("2025-01-06T08:01:00Z")),
            (Some(utc("2025-01-06T08:02:00Z")), 1)
        );
    }

    #[test]
    fn cron_counts_skips() {
        let s = Spec::cron("*/15 * * * *", chrono_tz::UTC).expect("parses");
        let due = utc("2025-01-06T08:00:00Z");
        assert_eq!(
            s.next_after_run(due, utc("2025-01-06T10:00:00Z")),
            (Some(utc("2025-01-06T10:15:00Z")), 8)
        );
        assert_eq!(
            s.next_after_run(due, utc("2025-01-06T08:00:01Z")),
            (Some(utc("2025-01-06T08:15:00Z")), 0)
        );
    }
}
