//! `Scheduler`: one tokio task that emits `schedule` events when jobs are due, and a
//! handle to replace the jobs (on reload) and list the next runs (for `atmate status`).
//!
//! # Rules
//! - **Reload without double firing.** [`Scheduler::set_jobs`] keeps the next due time
//!   of every job whose name and spec did not change. A new or changed job is first due
//!   at its first due time strictly after the call, so a job that just fired is not
//!   fired again by a reload in the same minute.
//! - **No catch-up storm.** If the wall clock jumped past several due times of a job
//!   (suspend and resume, an NTP step), the job fires once, and the number of skipped
//!   runs is logged.
//! - **Late is better than never.** A run that is due while the machine sleeps fires
//!   once on wake-up, late.
//!
//! The task sleeps until the earliest due time, but at most [`MAX_NAP`], and wakes
//! early when the jobs change. Time comes from a [`Clock`], so tests can pause and
//! advance tokio's clock.
//!
//! Why shared state plus a `Notify` rather than a request/reply actor: `next_runs` and
//! `set_jobs` are then plain synchronous calls (status output, reload) that never
//! wait for the timer task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, Notify};

use crate::event::{Event, ScheduleEvent};

use super::clock::{Clock, SystemClock};
use super::jobs::{Job, Spec};

/// The longest the task sleeps without looking at the wall clock.
pub const MAX_NAP: Duration = Duration::from_secs(60);

/// Where `schedule` events go.
#[derive(Debug, Clone)]
pub enum EventSink {
    /// A bounded channel (the task waits when it is full).
    Mpsc(mpsc::Sender<Event>),
    /// An unbounded channel.
    Unbounded(mpsc::UnboundedSender<Event>),
    /// A broadcast channel (sending with no receivers is not an error).
    Broadcast(broadcast::Sender<Event>),
}

impl From<mpsc::Sender<Event>> for EventSink {
    fn from(s: mpsc::Sender<Event>) -> EventSink {
        EventSink::Mpsc(s)
    }
}

impl From<mpsc::UnboundedSender<Event>> for EventSink {
    fn from(s: mpsc::UnboundedSender<Event>) -> EventSink {
        EventSink::Unbounded(s)
    }
}

impl From<broadcast::Sender<Event>> for EventSink {
    fn from(s: broadcast::Sender<Event>) -> EventSink {
        EventSink::Broadcast(s)
    }
}

impl EventSink {
    /// False when nobody can ever receive again (the task then stops).
    async fn send(&self, e: Event) -> bool {
        match self {
            EventSink::Mpsc(s) => s.send(e).await.is_ok(),
            EventSink::Unbounded(s) => s.send(e).is_ok(),
            EventSink::Broadcast(s) => {
                // No receiver right now (e.g. during a reload) is not the end.
                let _ = s.send(e);
                true
            }
        }
    }
}

struct Entry {
    spec: Spec,
    /// `None`: never due again (a crontab past the year 5000).
    next: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct State {
    /// In registration order, for stable output.
    order: Vec<String>,
    jobs: HashMap<String, Entry>,
}

impl State {
    /// The jobs due at `now` (their next due time is advanced), and how long until the
    /// next one is due.
    fn take_due(&mut self, now: DateTime<Utc>) -> (Vec<String>, Option<DateTime<Utc>>) {
        let mut due = Vec::new();
        let mut earliest: Option<DateTime<Utc>> = None;
        for name in &self.order {
            let Some(entry) = self.jobs.get_mut(name) else {
                continue;
            };
            if let Some(at) = entry.next {
                if at <= now {
                    let (next, skipped) = entry.spec.next_after_run(at, now);
                    if skipped > 0 {
                        tracing::warn!(
                            target: "atmate::schedule",
                            job = %name,
                            skipped,
                            "the clock jumped past {skipped} more due time(s) (suspend?); running once"
                        );
                    }
                    entry.next = next;
                    due.push(name.clone());
                }
            }
            if let Some(n) = entry.next {
                earliest = Some(earliest.map_or(n, |e| e.min(n)));
            }
        }
        (due, earliest)
    }
}

struct Shared {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (no multi-step
        // invariants), so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle of the scheduler task. Dropping it stops the task.
pub struct Scheduler {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("next_runs", &self.next_runs())
            .finish()
    }
}

impl Scheduler {
    /// Start the task with the system clock. Must be called inside a tokio runtime.
    pub fn start(sink: impl Into<EventSink>) -> Scheduler {
        Scheduler::start_with_clock(Arc::new(SystemClock), sink)
    }

    /// Start the task with `clock`. Must be called inside a tokio runtime.
    pub fn start_with_clock(clock: Arc<dyn Clock>, sink: impl Into<EventSink>) -> Scheduler {
        let shared = Arc::new(Shared {
            clock,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let task = tokio::spawn(worker(shared.clone(), sink.into()));
        Scheduler { shared, task }
    }

    /// Replace all jobs. A job whose name and spec are unchanged keeps its next due
    /// time; a new or changed one is due at its first due time after now. A repeated
    /// name keeps the first job of that name (and logs a warning).
    pub fn set_jobs(&self, jobs: Vec<Job>) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let mut old = std::mem::take(&mut state.jobs);
        let mut order = Vec::with_capacity(jobs.len());
        let mut fresh = HashMap::with_capacity(jobs.len());
        for job in jobs {
            if fresh.contains_key(&job.name) {
                tracing::warn!(target: "atmate::schedule", job = %job.name, "duplicate job name; keeping the first");
                continue;
            }
            let entry = match old.remove(&job.name) {
                Some(e) if e.spec == job.spec => e,
                _ => Entry {
                    next: job.spec.first_after(now),
                    spec: job.spec,
                },
            };
            order.push(job.name.clone());
            fresh.insert(job.name, entry);
        }
        state.order = order;
        state.jobs = fresh;
        drop(state);
        self.shared.changed.notify_one();
    }

    /// The next due time of every job that has one, earliest first.
    pub fn next_runs(&self) -> Vec<(String, DateTime<Utc>)> {
        let state = self.shared.lock();
        let mut out: Vec<(String, DateTime<Utc>)> = state
            .order
            .iter()
            .filter_map(|n| {
                state
                    .jobs
                    .get(n)
                    .and_then(|e| e.next)
                    .map(|t| (n.clone(), t))
            })
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Stop the task (also done on drop).
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn worker(shared: Arc<Shared>, sink: EventSink) {
    loop {
        let now = shared.clock.now();
        let (due, earliest) = shared.lock().take_due(now);
        for job in due {
            tracing::debug!(target: "atmate::schedule", job = %job, "due");
            if !sink.send(Event::Schedule(ScheduleEvent { job })).await {
                return;
            }
        }
        let nap = earliest
            .map(|t| {
                t.signed_duration_since(now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            })
            .unwrap_or(MAX_NAP)
            .min(MAX_NAP);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = shared.changed.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::clock::TokioClock;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn job(name: &str, spec: Spec) -> Job {
        Job {
            name: name.into(),
            spec,
        }
    }

    fn cron(expr: &str) -> Spec {
        Spec::cron(expr, chrono_tz::UTC).expect("parses")
    }

    fn name_of(e: Event) -> String {
        match e {
            Event::Schedule(s) => s.job,
            other => panic!("unexpected event {other:?}"),
        }
    }

    /// Waits for the next event, up to `within` of (paused) tokio time.
    async fn next_event(
        rx: &mut mpsc::UnboundedReceiver<Event>,
        within: Duration,
    ) -> Option<String> {
        tokio::time::timeout(within, rx.recv())
            .await
            .ok()
            .flatten()
            .map(name_of)
    }

    #[tokio::test(start_paused = true)]
    async fn cron_jobs_fire_at_their_instants() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T07:58:00Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock.clone(), tx);
        s.set_jobs(vec![
            job("morning", cron("0 8 * * *")),
            job("quarter", cron("*/15 * * * *")),
        ]);
        assert_eq!(
            s.next_runs(),
            vec![
                ("morning".to_owned(), utc("2025-01-06T08:00:00Z")),
                ("quarter".to_owned(), utc("2025-01-06T08:00:00Z")),
            ]
        );
        let day = Duration::from_secs(86_400);
        assert_eq!(next_event(&mut rx, day).await.as_deref(), Some("morning"));
        assert_eq!(clock.now(), utc("2025-01-06T08:00:00Z"));
        assert_eq!(next_event(&mut rx, day).await.as_deref(), Some("quarter"));
        assert_eq!(clock.now(), utc("2025-01-06T08:00:00Z"));
        assert_eq!(next_event(&mut rx, day).await.as_deref(), Some("quarter"));
        assert_eq!(clock.now(), utc("2025-01-06T08:15:00Z"));
        assert_eq!(
            s.next_runs()[0],
            ("quarter".to_owned(), utc("2025-01-06T08:30:00Z"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn daily_job_fires_once_a_day() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T09:00:00Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock.clone(), tx);
        s.set_jobs(vec![job("morning", cron("0 8 * * *"))]);
        let two_days = Duration::from_secs(2 * 86_400);
        assert!(next_event(&mut rx, two_days).await.is_some());
        assert_eq!(clock.now(), utc("2025-01-07T08:00:00Z"));
        assert!(next_event(&mut rx, two_days).await.is_some());
        assert_eq!(clock.now(), utc("2025-01-08T08:00:00Z"));
    }

    #[tokio::test(start_paused = true)]
    async fn intervals_fire_without_drift() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T08:00:00Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock.clone(), tx);
        s.set_jobs(vec![job("poll", Spec::every("90s").expect("ok"))]);
        for expected in ["08:01:30", "08:03:00", "08:04:30"] {
            assert_eq!(
                next_event(&mut rx, Duration::from_secs(600))
                    .await
                    .as_deref(),
                Some("poll")
            );
            assert_eq!(clock.now(), utc(&format!("2025-01-06T{expected}Z")));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reloading_unchanged_jobs_does_not_double_fire() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T07:59:00Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock.clone(), tx);
        let jobs = vec![
            job("morning", cron("0 8 * * *")),
            job("poll", Spec::every("10m").expect("ok")),
        ];
        s.set_jobs(jobs.clone());
        assert_eq!(
            next_event(&mut rx, Duration::from_secs(3600))
                .await
                .as_deref(),
            Some("morning")
        );
        // Reload right after the run, with the same jobs: nothing fires again.
        s.set_jobs(jobs.clone());
        assert_eq!(
            s.next_runs(),
            vec![
                ("poll".to_owned(), utc("2025-01-06T08:09:00Z")),
                ("morning".to_owned(), utc("2025-01-07T08:00:00Z")),
            ]
        );
        // The interval keeps its phase across the reload (due 08:09, not 08:10).
        assert_eq!(
            next_event(&mut rx, Duration::from_secs(3600))
                .await
                .as_deref(),
            Some("poll")
        );
        assert_eq!(clock.now(), utc("2025-01-06T08:09:00Z"));
        // A changed job starts afresh; a removed job is gone.
        s.set_jobs(vec![job("morning", cron("5 8 * * *"))]);
        assert_eq!(
            s.next_runs(),
            vec![("morning".to_owned(), utc("2025-01-07T08:05:00Z"))]
        );
        assert_eq!(next_event(&mut rx, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn changed_job_in_the_minute_it_fired_does_not_fire_again() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T07:59:30Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock.clone(), tx);
        s.set_jobs(vec![job("morning", cron("0 8 * * *"))]);
        assert!(next_event(&mut rx, Duration::from_secs(60)).await.is_some());
        tokio::time::advance(Duration::from_secs(10)).await;
        // Same time, different weekday set: due again only tomorrow.
        s.set_jobs(vec![job("morning", cron("0 8 * * 1-5"))]);
        assert_eq!(
            s.next_runs(),
            vec![("morning".to_owned(), utc("2025-01-07T08:00:00Z"))]
        );
        assert_eq!(next_event(&mut rx, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn no_catch_up_storm_after_a_clock_jump() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T07:59:00Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock.clone(), tx);
        s.set_jobs(vec![job("quarter", cron("*/15 * * * *"))]);
        tokio::task::yield_now().await;
        // Suspend for two hours: the wall clock moves, tokio's does not.
        clock.jump(Duration::from_secs(2 * 3600));
        // The task notices within its nap and fires once for the 9 missed runs.
        assert_eq!(
            next_event(&mut rx, MAX_NAP + Duration::from_secs(1))
                .await
                .as_deref(),
            Some("quarter")
        );
        assert_eq!(clock.now(), utc("2025-01-06T10:00:00Z"));
        assert_eq!(
            s.next_runs(),
            vec![("quarter".to_owned(), utc("2025-01-06T10:15:00Z"))]
        );
        // Nothing more until 10:15.
        assert_eq!(
            next_event(&mut rx, Duration::from_secs(14 * 60)).await,
            None
        );
        assert_eq!(
            next_event(&mut rx, Duration::from_secs(120))
                .await
                .as_deref(),
            Some("quarter")
        );
        assert_eq!(clock.now(), utc("2025-01-06T10:15:00Z"));
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_names_keep_the_first_and_drop_stops_the_task() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T07:59:00Z")));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = Scheduler::start_with_clock(clock, tx);
        s.set_jobs(vec![
            job("a", cron("0 8 * * *")),
            job("a", cron("0 9 * * *")),
        ]);
        assert_eq!(
            s.next_runs(),
            vec![("a".to_owned(), utc("2025-01-06T08:00:00Z"))]
        );
        drop(s);
        // The task is gone: the channel closes without an event.
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn broadcast_sink_without_receivers_keeps_running() {
        let clock = Arc::new(TokioClock::new(utc("2025-01-06T07:59:00Z")));
        let (tx, rx) = broadcast::channel(8);
        drop(rx);
        let s = Scheduler::start_with_clock(clock, tx.clone());
        s.set_jobs(vec![job("m", Spec::every("1m").expect("ok"))]);
        tokio::time::sleep(Duration::from_secs(90)).await;
        let mut rx = tx.subscribe();
        let got = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("fires again")
            .expect("event");
        assert_eq!(name_of(got), "m");
    }
}
