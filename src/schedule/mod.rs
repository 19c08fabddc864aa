//! Schedules: 5-field crontab expressions (croner) and intervals.
