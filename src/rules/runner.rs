//! `RuleRunner`: per-rule run state (modes, queues, cooldowns, last run) and dispatch.
//!
//! `dispatch(event)` finds the rules the event starts, applies the sender allowlist,
//! evaluates `if:`, then the cooldown and the mode, and spawns each run as a tokio task.
//! Modes are Home Assistant's:
//! - `single`: a trigger while a run is going is ignored;
//! - `queued`: it waits its turn (at most `max` waiting; more are dropped);
//! - `restart`: the running run is cancelled (its child processes killed) and a new
//!   one starts;
//! - `parallel`: runs side by side, at most `max` at once.
//!
//! A cooldown skips triggers that come within the cooldown of the last *start*.
//! [`RuleRunner::set_rules`] swaps the rules (hot reload): runs in flight, and runs
//! already queued, finish on the version they started with; cooldowns, counters and
//! the last result carry over by rule name.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::action::{base_vars, modem_vars, Run, RunOutcome};
use super::matcher::{match_event, sender_allowed};
use super::model::{Mode, Rule, RuleSet, Trigger};
use crate::event::{Event, SignalEvent};
use crate::host::Host;
use crate::schedule::{Job, Spec};
use crate::script::ScriptSet;

/// The host for a modem name (`None` when that modem is not running).
pub type HostFor = Arc<dyn Fn(&str) -> Option<Arc<dyn Host>> + Send + Sync>;

/// The scripts currently loaded (`None`: no scripts).
pub type CurrentScripts = Arc<dyn Fn() -> Option<ScriptSet> + Send + Sync>;

/// What the runner needs from the runtime.
#[derive(Clone)]
pub struct RunnerDeps {
    /// The `Host` for a modem name.
    pub host_for: HostFor,
    /// The current script set (it changes on reload).
    pub scripts: CurrentScripts,
    /// Senders allowed to trigger SMS and call rules (see [`RuleRunner::set_allow_senders`]).
    pub allow_senders: Vec<String>,
    /// `max` of queued and parallel rules that set none (`limits.rule_queue`).
    pub default_max: usize,
}

/// What dispatch did with one rule the event matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// A run started.
    Started,
    /// A run started after cancelling the running one (`restart`).
    Restarted,
    /// Queued behind the running run (`queued`).
    Queued,
    /// Not run.
    Skipped(SkipReason),
}

/// Why a matching rule did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The sender is not in `allow_senders` (and the rule does not opt out).
    SenderNotAllowed,
    /// `if:` was false.
    ConditionFalse,
    /// `if:` failed (the message says why).
    ConditionError(String),
    /// Within the cooldown of the last start.
    Cooldown,
    /// `single` and already running.
    Busy,
    /// `queued` and the queue is full.
    QueueFull,
    /// `parallel` and `max` runs are going.
    TooManyRuns,
}

/// One matching rule and what dispatch did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchResult {
    /// The rule.
    pub rule: String,
    /// What happened.
    pub what: Dispatched,
}

/// A rule's state for `atmate status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleStatus {
    /// Rule name.
    pub name: String,
    /// `file:line`.
    pub place: String,
    /// The trigger's word (`sms`, `schedule`, …).
    pub trigger: String,
    /// The mode.
    pub mode: String,
    /// Runs started since the daemon started.
    pub runs: u64,
    /// Triggers skipped (cooldown, busy, queue full, condition false, sender refused).
    pub skipped: u64,
    /// Runs going now.
    pub running: usize,
    /// Runs waiting (`queued`).
    pub queued: usize,
    /// When the last run started.
    pub last_started: Option<DateTime<Utc>>,
    /// When it ended.
    pub last_finished: Option<DateTime<Utc>>,
    /// How it ended (`running` while it goes).
    pub last_outcome: Option<RunOutcome>,
}

struct Pending {
    rule: Arc<Rule>,
    event: Event,
    vars: Value,
}

#[derive(Default)]
struct PerRule {
    running: Vec<(u64, AbortHandle)>,
    queue: VecDeque<Pending>,
    last_start: Option<Instant>,
    last_id: u64,
    runs: u64,
    skipped: u64,
    last_started: Option<DateTime<Utc>>,
    last_finished: Option<DateTime<Utc>>,
    last_outcome: Option<RunOutcome>,
}

struct State {
    rules: Arc<RuleSet>,
    per_rule: HashMap<String, PerRule>,
    signals: HashMap<String, SignalEvent>,
    allow_senders: Vec<String>,
    next_id: u64,
    /// Runs going plus runs queued; 0 means quiet.
    busy: usize,
}

struct Inner {
    host_for: HostFor,
    scripts: CurrentScripts,
    default_max: usize,
    state: Mutex<State>,
    busy_tx: watch::Sender<usize>,
}

/// Runs rules on events. Cheap to clone (shared state).
#[derive(Clone)]
pub struct RuleRunner {
    inner: Arc<Inner>,
}

impl RuleRunner {
    /// A runner with no rules.
    pub fn new(deps: RunnerDeps) -> RuleRunner {
        let (busy_tx, _) = watch::channel(0);
        RuleRunner {
            inner: Arc::new(Inner {
                host_for: deps.host_for,
                scripts: deps.scripts,
                default_max: deps.default_max.max(1),
                state: Mutex::new(State {
                    rules: Arc::new(RuleSet::default()),
                    per_rule: HashMap::new(),
                    signals: HashMap::new(),
                    allow_senders: deps.allow_senders,
                    next_id: 1,
                    busy: 0,
                }),
                busy_tx,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// Swap in new rules (hot reload). Runs in flight finish on the old version; state
    /// (cooldowns, counters, last result) carries over by rule name.
    pub fn set_rules(&self, rules: Arc<RuleSet>) {
        let mut st = self.state();
        st.per_rule.retain(|name, p| {
            rules.get(name).is_some() || !p.running.is_empty() || !p.queue.is_empty()
        });
        st.rules = rules;
    }

    /// The rules in use.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.state().rules.clone()
    }

    /// Replace the sender allowlist (config reload).
    pub fn set_allow_senders(&self, allow: Vec<String>) {
        self.state().allow_senders = allow;
    }

    /// The jobs the scheduler must run: one per `schedule` / `every` rule, named after
    /// the rule (its due event is `Event::Schedule { job: <rule name> }`).
    pub fn jobs(&self) -> Vec<Job> {
        self.state()
            .rules
            .rules()
            .iter()
            .filter_map(|r| match &r.trigger {
                Trigger::Schedule(spec) => Some(Job {
                    name: r.name.clone(),
                    spec: Spec::Cron(spec.clone()),
                }),
                Trigger::Every(d) => Some(Job {
                    name: r.name.clone(),
                    spec: Spec::Every(*d),
                }),
                _ => None,
            })
            .collect()
    }

    /// Every rule's state, in rule order.
    pub fn status(&self) -> Vec<RuleStatus> {
        let st = self.state();
        st.rules
            .rules()
            .iter()
            .map(|r| {
                let p = st.per_rule.get(&r.name);
                RuleStatus {
                    name: r.name.clone(),
                    place: r.place.to_string(),
                    trigger: r.trigger.kind().to_owned(),
                    mode: r.mode.as_str().to_owned(),
                    runs: p.map_or(0, |p| p.runs),
                    skipped: p.map_or(0, |p| p.skipped),
                    running: p.map_or(0, |p| p.running.len()),
                    queued: p.map_or(0, |p| p.queue.len()),
                    last_started: p.and_then(|p| p.last_started),
                    last_finished: p.and_then(|p| p.last_finished),
                    last_outcome: p.and_then(|p| p.last_outcome.clone()),
                }
            })
            .collect()
    }

    /// Wait until no run is going and none is queued.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.busy_tx.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Cancel every run and drop every queue (shutdown).
    pub fn cancel_all(&self) {
        let mut handles = Vec::new();
        {
            let mut st = self.state();
            let mut dropped = 0;
            for p in st.per_rule.values_mut() {
                handles.extend(p.running.iter().map(|(_, h)| h.clone()));
                dropped += p.queue.len();
                p.queue.clear();
            }
            st.busy -= dropped;
            self.inner.busy_tx.send_replace(st.busy);
        }
        // Outside the lock: an aborted run's bookkeeping takes it.
        for h in handles {
            h.abort();
        }
    }

    /// Run the rules `event` starts. Returns what happened to each rule it matched.
    pub async fn dispatch(&self, event: &Event) -> Vec<DispatchResult> {
        let (rules, prev_signal, allow) = {
            let mut st = self.state();
            let prev = match event {
                Event::Signal(s) => st.signals.insert(s.modem.clone(), s.clone()),
                _ => None,
            };
            (st.rules.clone(), prev, st.allow_senders.clone())
        };
        let mut results = Vec::new();
        for rule in rules.rules() {
            let Some(m) = match_event(rule, event, prev_signal.as_ref()) else {
                continue;
            };
            let what = self.consider(rule, event, m.captures, &allow).await;
            if let Dispatched::Skipped(reason) = &what {
                tracing::debug!(target: "atmate::rules", rule = %rule.name, "not run: {reason:?}");
                self.state()
                    .per_rule
                    .entry(rule.name.clone())
                    .or_default()
                    .skipped += 1;
            }
            results.push(DispatchResult {
                rule: rule.name.clone(),
                what,
            });
        }
        results
    }

    async fn consider(
        &self,
        rule: &Arc<Rule>,
        event: &Event,
        captures: Option<Value>,
        allow: &[String],
    ) -> Dispatched {
        if rule.trigger.has_sender() && !rule.allow_any_sender {
            let sender = match event {
                Event::Sms(s) => Some(s.from.as_str()),
                Event::Call(c) => c.from.as_deref(),
                _ => None,
            };
            if !sender.is_some_and(|s| sender_allowed(s, allow)) {
                tracing::info!(
                    target: "atmate::rules",
                    rule = %rule.name,
                    "ignored {} from {}: not in allow_senders",
                    event.kind(),
                    sender.unwrap_or("a hidden number")
                );
                return Dispatched::Skipped(SkipReason::SenderNotAllowed);
            }
        }
        let mut vars = base_vars(rule, event, captures);
        if let Some(c) = &rule.condition {
            if c.mentions("modem") {
                if let Some(host) = (self.inner.host_for)(&rule.modem) {
                    let m = modem_vars(host.as_ref(), &rule.modem).await;
                    if let Some(o) = vars.as_object_mut() {
                        o.insert("modem".into(), m);
                    }
                }
            }
            match c.eval(&vars) {
                Ok(true) => {}
                Ok(false) => return Dispatched::Skipped(SkipReason::ConditionFalse),
                Err(e) => {
                    tracing::warn!(target: "atmate::rules", rule = %rule.name, at = %rule.place, "`if` failed: {e}");
                    return Dispatched::Skipped(SkipReason::ConditionError(e.to_string()));
                }
            }
        }
        let mut st = self.state();
        let max = rule.max.unwrap_or(self.inner.default_max);
        let p = st.per_rule.entry(rule.name.clone()).or_default();
        if let (Some(cd), Some(last)) = (rule.cooldown, p.last_start) {
            if Instant::now().saturating_duration_since(last) < cd {
                return Dispatched::Skipped(SkipReason::Cooldown);
            }
        }
        let pending = Pending {
            rule: rule.clone(),
            event: event.clone(),
            vars,
        };
        match rule.mode {
            Mode::Single if !p.running.is_empty() => Dispatched::Skipped(SkipReason::Busy),
            Mode::Parallel if p.running.len() >= max => {
                Dispatched::Skipped(SkipReason::TooManyRuns)
            }
            Mode::Queued if !p.running.is_empty() => {
                if p.queue.len() >= max {
                    return Dispatched::Skipped(SkipReason::QueueFull);
                }
                p.queue.push_back(pending);
                st.busy += 1;
                self.inner.busy_tx.send_replace(st.busy);
                Dispatched::Queued
            }
            Mode::Restart if !p.running.is_empty() => {
                let old: Vec<AbortHandle> = p.running.iter().map(|(_, h)| h.clone()).collect();
                tracing::info!(target: "atmate::rules", rule = %rule.name, "restarting (mode: restart)");
                self.start(&mut st, pending);
                drop(st);
                // Abort outside the lock: an aborted run's bookkeeping takes the lock.
                for h in old {
                    h.abort();
                }
                Dispatched::Restarted
            }
            _ => {
                self.start(&mut st, pending);
                Dispatched::Started
            }
        }
    }

    /// Start a run now (the caller holds the lock and has checked the mode).
    fn start(&self, st: &mut State, pending: Pending) {
        start_run(&self.inner, st, pending);
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves bookkeeping half done, but the counters
    // are still the best information there is; keep going rather than poison every
    // later dispatch.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_run(inner: &Arc<Inner>, st: &mut State, pending: Pending) {
    let id = st.next_id;
    st.next_id += 1;
    let name = pending.rule.name.clone();
    let host = (inner.host_for)(&pending.rule.modem);
    let scripts = (inner.scripts)();
    let guard = RunGuard {
        inner: inner.clone(),
        name: name.clone(),
        id,
        outcome: RunOutcome::Cancelled,
    };
    tracing::info!(target: "atmate::rules", rule = %name, "run started ({})", pending.event.kind());
    let task = tokio::spawn(async move {
        let mut guard = guard;
        guard.outcome = match host {
            Some(host) => {
                Run {
                    rule: pending.rule,
                    event: pending.event,
                    vars: pending.vars,
                    host,
                    scripts,
                }
                .execute()
                .await
            }
            None => {
                let rule = &pending.rule;
                tracing::warn!(target: "atmate::rules", rule = %rule.name, "modem `{}` is not available", rule.modem);
                RunOutcome::Failed {
                    at: rule.place.to_string(),
                    action: String::new(),
                    error: format!("modem `{}` is not available", rule.modem),
                }
            }
        };
    });
    let p = st.per_rule.entry(name).or_default();
    p.running.push((id, task.abort_handle()));
    p.last_start = Some(Instant::now());
    p.last_id = id;
    p.runs += 1;
    p.last_started = Some(Utc::now());
    p.last_finished = None;
    p.last_outcome = Some(RunOutcome::Running);
    st.busy += 1;
    inner.busy_tx.send_replace(st.busy);
}

/// Book-keeping when a run ends: normally, by `stop`, by failure or by being aborted
/// (`restart`, shutdown). It lives inside the task, so it runs in every case.
struct RunGuard {
    inner: Arc<Inner>,
    name: String,
    id: u64,
    outcome: RunOutcome,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let inner = self.inner.clone();
        let mut st = lock(&inner.state);
        st.busy = st.busy.saturating_sub(1);
        let outcome = std::mem::replace(&mut self.outcome, RunOutcome::Cancelled);
        match &outcome {
            RunOutcome::Cancelled => {
                tracing::info!(target: "atmate::rules", rule = %self.name, "run cancelled")
            }
            o => tracing::info!(target: "atmate::rules", rule = %self.name, "run ended: {o:?}"),
        }
        let next = st.per_rule.get_mut(&self.name).and_then(|p| {
            p.running.retain(|(id, _)| *id != self.id);
            // A run superseded by a newer one (restart) does not overwrite its result.
            if p.last_id == self.id {
                p.last_finished = Some(Utc::now());
                p.last_outcome = Some(outcome);
            }
            if p.running.is_empty() {
                p.queue.pop_front()
            } else {
                None
            }
        });
        if let Some(next) = next {
            st.busy = st.busy.saturating_sub(1);
            // Drop runs on the runtime (end of a task, or an abort); without one
            // (the runtime is shutting down) the queued run is dropped.
            if tokio::runtime::Handle::try_current().is_ok() {
                start_run(&inner, &mut st, next);
            }
        }
        inner.busy_tx.send_replace(st.busy);
    }
}
