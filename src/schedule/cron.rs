//! `CronSpec`: a 5-field crontab in a time zone, and the next time it is due.
//!
//! # The crontab
//! `minute hour day-of-month month day-of-week`, as in Vixie cron (and croner 4):
//! - `*`, lists `1,15`, ranges `1-5`, steps `*/15`, `8-18/2`; month and weekday names
//!   (`JAN`, `MON`-`FRI`);
//! - weekday 0 and 7 are both Sunday;
//! - when both day-of-month and day-of-week are restricted, a day matches if
//!   *either* matches (`0 8 1 * MON` is "the 1st, and every Monday");
//! - nicknames `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`, `@hourly`;
//! - croner's extensions are accepted too: `L` (last), `#` (nth weekday), `W`
//!   (nearest weekday), and a `+` in front of the weekday field to AND the two day
//!   fields.
//!
//! Six- and seven-field patterns (seconds, years) are refused: the `cron` crate and
//! Quartz use them, and a 6-field `0 8 * * * *` silently means something else there.
//!
//! # Daylight saving time
//! Times are wall-clock times in the spec's zone.
//! - Spring forward: a time that does not exist that day (02:30 in Europe/Berlin on
//!   the last Sunday of March) runs at the first instant after the gap (03:00 CEST),
//!   once. Jobs that run every minute or hour simply have no runs in the missing hour.
//! - Fall back: a time that happens twice (02:30 on the last Sunday of October) runs
//!   once, at the first of the two (02:30 CEST). Interval-like patterns (`*/15 * * * *`,
//!   `30 * * * *`) run in both copies of the hour, as the clock shows them twice.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use super::ScheduleError;

/// The time zone a crontab is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's local zone (`/etc/localtime`, `TZ`).
    Local,
    /// A named IANA zone, e.g. `Europe/Berlin`.
    Named(chrono_tz::Tz),
}

impl From<chrono_tz::Tz> for Zone {
    fn from(tz: chrono_tz::Tz) -> Zone {
        Zone::Named(tz)
    }
}

/// `None` is the local zone (for a config's optional `timezone`).
impl From<Option<chrono_tz::Tz>> for Zone {
    fn from(tz: Option<chrono_tz::Tz>) -> Zone {
        tz.map_or(Zone::Local, Zone::Named)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Local => f.write_str("local time"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// A parsed 5-field crontab in a zone. Small and cheap to clone (the parsed pattern,
/// some 340 bytes, is shared).
#[derive(Debug, Clone)]
pub struct CronSpec {
    expr: String,
    zone: Zone,
    cron: std::sync::Arc<Cron>,
}

/// Two specs are equal when they were written the same (after trimming and
/// collapsing blanks) in the same zone.
impl PartialEq for CronSpec {
    fn eq(&self, other: &CronSpec) -> bool {
        self.expr == other.expr && self.zone == other.zone
    }
}

impl Eq for CronSpec {}

const NICKNAMES: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

impl CronSpec {
    /// Parse `expr` (5 fields or a nickname) to be read in `zone`.
    pub fn parse(expr: &str, zone: impl Into<Zone>) -> Result<CronSpec, ScheduleError> {
        let zone = zone.into();
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let normalized = fields.join(" ");
        match fields.as_slice() {
            [] => return Err(ScheduleError::Cron("the crontab is empty".into())),
            [one] if one.starts_with('@') => {
                let lower = one.to_ascii_lowercase();
                if lower == "@reboot" {
                    return Err(ScheduleError::Nickname(
                        "@reboot is not a schedule; use a `startup` trigger".into(),
                    ));
                }
                if !NICKNAMES.contains(&lower.as_str()) {
                    return Err(ScheduleError::Nickname(format!(
                        "unknown nickname `{one}`; use one of {}",
                        NICKNAMES.join(", ")
                    )));
                }
            }
            f if f.iter().any(|p| p.contains('@')) => {
                return Err(ScheduleError::Nickname(
                    "a nickname such as @daily must be the whole schedule".into(),
                ))
            }
            f if f.len() == 6 || f.len() == 7 => return Err(ScheduleError::SecondsField),
            f if f.len() != 5 => return Err(ScheduleError::FieldCount(f.len())),
            _ => {}
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(&normalized)
            .map_err(|e| ScheduleError::Cron(friendly(&e)))?;
        let spec = CronSpec {
            expr: normalized,
            zone,
            cron: std::sync::Arc::new(cron),
        };
        // A pattern such as `0 0 30 2 *` parses but never matches; say so now rather
        // than have a job that silently never runs.
        let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if probe.and_then(|p| spec.next_after(p)).is_none() {
            return Err(ScheduleError::Cron(format!(
                "`{}` never matches a real date",
                spec.expr
            )));
        }
        Ok(spec)
    }

    /// The expression (blanks collapsed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The zone it is read in.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The first due time strictly after `t`; `None` if there is none (before the
    /// year 5000).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Local => self.next_in(&t.with_timezone(&chrono::Local)),
            Zone::Named(tz) => self.next_in(&t.with_timezone(&tz)),
        }
    }

    fn next_in<Z: TimeZone>(&self, t: &DateTime<Z>) -> Option<DateTime<Utc>> {
        // Croner works in whole seconds; a start inside a second (08:00:00.5) must not
        // find 08:00:00 again, so search from the whole second, exclusively.
        let whole =
            t.clone() - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos()));
        self.cron
            .find_next_occurrence(&whole, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

impl fmt::Display for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr, self.zone)
    }
}

/// Croner's messages, without its type-name prefixes.
fn friendly(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match e {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str) -> DateTime<Utc> {
        CronSpec::parse(expr, chrono_tz::UTC)
            .expect("parses")
            .next_after(utc(after))
            .expect("has a next")
    }

    #[test]
    fn daily_at_eight() {
        assert_eq!(
            next("0 8 * * *", "2025-01-06T07:00:00Z"),
            utc("2025-01-06T08:00:00Z")
        );
        // Strictly after: at 08:00:00 (or within that second) the next is tomorrow.
        assert_eq!(
            next("0 8 * * *", "2025-01-06T08:00:00Z"),
            utc("2025-01-07T08:00:00Z")
        );
        assert_eq!(
            next("0 8 * * *", "2025-01-06T08:00:00.5Z"),
            utc("2025-01-07T08:00:00Z")
        );
        assert_eq!(
            next("0 8 * * *", "2025-01-06T07:59:59.9Z"),
            utc("2025-01-06T08:00:00Z")
        );
    }

    #[test]
    fn every_quarter_hour() {
        assert_eq!(
            next("*/15 * * * *", "2025-01-06T10:07:00Z"),
            utc("2025-01-06T10:15:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", "2025-01-06T10:15:00Z"),
            utc("2025-01-06T10:30:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", "2025-01-06T23:50:00Z"),
            utc("2025-01-07T00:00:00Z")
        );
    }

    #[test]
    fn weekdays_only() {
        // 2025-01-10 is a Friday.
        assert_eq!(
            next("0 8 * * 1-5", "2025-01-10T09:00:00Z"),
            utc("2025-01-13T08:00:00Z")
        );
        assert_eq!(
            next("0 8 * * MON-FRI", "2025-01-10T07:00:00Z"),
            utc("2025-01-10T08:00:00Z")
        );
    }

    #[test]
    fn first_of_the_month() {
        assert_eq!(
            next("0 0 1 * *", "2025-01-15T12:00:00Z"),
            utc("2025-02-01T00:00:00Z")
        );
        assert_eq!(
            next("@monthly", "2025-01-15T12:00:00Z"),
            utc("2025-02-01T00:00:00Z")
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // "the 13th, or any Friday" (Vixie cron ORs the two day fields).
        let spec = CronSpec::parse("0 8 13 * 5", chrono_tz::UTC).expect("parses");
        let t1 = spec.next_after(utc("2025-01-10T09:00:00Z")).expect("next");
        assert_eq!(t1, utc("2025-01-13T08:00:00Z")); // Monday the 13th
        let t2 = spec.next_after(t1).expect("next");
        assert_eq!(t2, utc("2025-01-17T08:00:00Z")); // Friday the 17th
    }

    #[test]
    fn sunday_is_zero_or_seven() {
        assert_eq!(
            next("0 9 * * 0", "2025-01-10T00:00:00Z"),
            utc("2025-01-12T09:00:00Z")
        );
        assert_eq!(
            next("0 9 * * 7", "2025-01-10T00:00:00Z"),
            utc("2025-01-12T09:00:00Z")
        );
        assert_eq!(
            next("0 9 * * SUN", "2025-01-10T00:00:00Z"),
            utc("2025-01-12T09:00:00Z")
        );
    }

    #[test]
    fn nicknames() {
        assert_eq!(
            next("@daily", "2025-01-06T07:00:00Z"),
            utc("2025-01-07T00:00:00Z")
        );
        assert_eq!(
            next("@HOURLY", "2025-01-06T07:10:00Z"),
            utc("2025-01-06T08:00:00Z")
        );
        assert_eq!(
            next("@weekly", "2025-01-06T07:00:00Z"),
            utc("2025-01-12T00:00:00Z")
        );
        let e = CronSpec::parse("@reboot", chrono_tz::UTC).expect_err("no reboot");
        assert!(e.to_string().contains("startup"), "{e}");
        let e = CronSpec::parse("@often", chrono_tz::UTC).expect_err("unknown");
        assert!(e.to_string().contains("unknown nickname `@often`"), "{e}");
        assert!(CronSpec::parse("@daily *", chrono_tz::UTC).is_err());
    }

    #[test]
    fn seconds_and_wrong_field_counts_are_refused() {
        for expr in ["0 0 8 * * *", "0 0 8 * * * 2025"] {
            let e = CronSpec::parse(expr, chrono_tz::UTC).expect_err("6/7 fields");
            assert_eq!(e, ScheduleError::SecondsField);
            assert_eq!(
                e.to_string(),
                "seconds fields are not supported; use 5 fields: minute hour day month weekday"
            );
        }
        assert_eq!(
            CronSpec::parse("0 8 * *", chrono_tz::UTC),
            Err(ScheduleError::FieldCount(4))
        );
        assert!(matches!(
            CronSpec::parse("  ", chrono_tz::UTC),
            Err(ScheduleError::Cron(_))
        ));
    }

    #[test]
    fn bad_values_are_refused() {
        for expr in [
            "61 * * * *",
            "0 25 * * *",
            "0 8 * 13 *",
            "0 8 * * 8",
            "x 8 * * *",
        ] {
            let e = CronSpec::parse(expr, chrono_tz::UTC).expect_err(expr);
            assert!(matches!(e, ScheduleError::Cron(_)), "{expr}: {e:?}");
        }
        let e = CronSpec::parse("0 0 30 2 *", chrono_tz::UTC).expect_err("never");
        assert!(e.to_string().contains("never matches"), "{e}");
    }

    #[test]
    fn equality_ignores_spacing_but_not_zone() {
        let a = CronSpec::parse("0  8 * * *", chrono_tz::UTC).expect("parses");
        let b = CronSpec::parse(" 0 8 * * * ", chrono_tz::UTC).expect("parses");
        let c = CronSpec::parse("0 8 * * *", Berlin).expect("parses");
        assert_eq!(
            c,
            CronSpec::parse("0 8 * * *", Some(Berlin)).expect("parses")
        );
        assert_eq!(
            CronSpec::parse("0 8 * * *", None::<chrono_tz::Tz>)
                .expect("parses")
                .zone(),
            Zone::Local
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.expr(), "0 8 * * *");
        assert_eq!(c.to_string(), "0 8 * * * (Europe/Berlin)");
    }

    #[test]
    fn berlin_spring_forward_runs_a_missing_time_once_after_the_gap() {
        // 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let spec = CronSpec::parse("30 2 * * *", Berlin).expect("parses");
        let t1 = spec.next_after(utc("2025-03-29T12:00:00Z")).expect("next");
        assert_eq!(t1, utc("2025-03-30T01:00:00Z")); // 03:00 CEST, first instant after the gap
        let t2 = spec.next_after(t1).expect("next");
        assert_eq!(t2, utc("2025-03-31T00:30:00Z")); // 02:30 CEST the next day
                                                     // A local 08:00 job shifts by an hour in UTC across the change.
        let spec = CronSpec::parse("0 8 * * *", Berlin).expect("parses");
        assert_eq!(
            spec.next_after(utc("2025-03-29T12:00:00Z")),
            Some(utc("2025-03-30T06:00:00Z"))
        );
    }

    #[test]
    fn berlin_fall_back_runs_a_repeated_time_once() {
        // 2025-10-26: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let spec = CronSpec::parse("30 2 * * *", Berlin).expect("parses");
        let t1 = spec.next_after(utc("2025-10-25T12:00:00Z")).expect("next");
        assert_eq!(t1, utc("2025-10-26T00:30:00Z")); // the first 02:30 (CEST)
        let t2 = spec.next_after(t1).expect("next");
        assert_eq!(t2, utc("2025-10-27T01:30:00Z")); // not the second 02:30 (CET) that day
    }

    #[test]
    fn berlin_fall_back_interval_patterns_run_in_both_hours() {
        let spec = CronSpec::parse("*/30 * * * *", Berlin).expect("parses");
        let mut t = utc("2025-10-26T00:00:00Z"); // 02:00 CEST
        let mut seen = Vec::new();
        for _ in 0..4 {
            t = spec.next_after(t).expect("next");
            seen.push(t);
        }
        assert_eq!(
            seen,
            vec![
                utc("2025-10-26T00:30:00Z"), // 02:30 CEST
                utc("2025-10-26T01:00:00Z"), // 02:00 CET
                utc("2025-10-26T01:30:00Z"), // 02:30 CET
                utc("2025-10-26T02:00:00Z"), // 03:00 CET
            ]
        );
    }

    #[test]
    fn local_zone_works() {
        let spec = CronSpec::parse("*/5 * * * *", Zone::Local).expect("parses");
        let now = Utc::now();
        let n = spec.next_after(now).expect("next");
        assert!(n > now && n - now <= chrono::Duration::minutes(5));
    }
}
