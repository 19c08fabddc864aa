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
use super::template::user_message;
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
                    let e = user_message(&e);
                    tracing::warn!(target: "atmate::rules", rule = %rule.name, at = %rule.place, "`if` failed: {e}");
                    return Dispatched::Skipped(SkipReason::ConditionError(e));
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::event::*;
    use crate::host::testing::{Call, RecordingHost};
    use crate::host::HostError;
    use crate::rules::load::{load_sources, ValidationContext};

    const ME: &str = "+4917612345678";

    fn rules(yaml: &str) -> Arc<RuleSet> {
        let ctx = ValidationContext {
            modems: vec!["main".into()],
            default_modem: Some("main".into()),
            allow_senders: vec![ME.into()],
            ..ValidationContext::default()
        };
        let (set, _) = load_sources(&[(Path::new("t.yaml"), yaml)], &ctx)
            .unwrap_or_else(|d| panic!("{}", d.render()));
        Arc::new(set)
    }

    fn runner_with(
        host: &Arc<RecordingHost>,
        scripts: Option<ScriptSet>,
        yaml: &str,
    ) -> RuleRunner {
        let h = host.clone();
        let r = RuleRunner::new(RunnerDeps {
            host_for: Arc::new(move |m: &str| (m == "main").then(|| h.clone() as Arc<dyn Host>)),
            scripts: Arc::new(move || scripts.clone()),
            allow_senders: vec![ME.into()],
            default_max: 10,
        });
        r.set_rules(rules(yaml));
        r
    }

    fn runner(host: &Arc<RecordingHost>, yaml: &str) -> RuleRunner {
        runner_with(host, None, yaml)
    }

    fn sms(from: &str, text: &str) -> Event {
        crate::event::test_sms(from, text)
    }

    fn startup() -> Event {
        Event::Startup(StartupEvent {
            modem: "main".into(),
        })
    }

    fn whats(r: &[DispatchResult]) -> Vec<Dispatched> {
        r.iter().map(|d| d.what.clone()).collect()
    }

    fn outcome(r: &RuleRunner, name: &str) -> Option<RunOutcome> {
        r.status()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.last_outcome)
    }

    fn ats(host: &RecordingHost) -> Vec<String> {
        host.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::At(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn sms_reply_with_captures_and_modem_signal() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            r#"
- name: ping
  when: { sms: { from: "+4917612345678", text: "(?i)^(?P<cmd>ping)( \\d+)?$" } }
  do:
    - sms: { to: "{{ sms.from }}", text: "{{ match.cmd }}{{ match[2] }}: pong, signal {{ modem.signal.dbm }} dBm ({{ modem.model }})" }
"#,
        );
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "PING 7")).await),
            [Dispatched::Started]
        );
        r.wait_idle().await;
        assert_eq!(
            host.sent_sms(),
            [(
                ME.to_owned(),
                "PING 7: pong, signal -77 dBm (MF667)".to_owned()
            )]
        );
        assert_eq!(outcome(&r, "ping"), Some(RunOutcome::Ok));
        assert!(
            r.dispatch(&sms(ME, "pong")).await.is_empty(),
            "text does not match"
        );
    }

    #[tokio::test]
    async fn if_true_runs_and_if_false_skips() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            r#"
- name: long-only
  when: sms
  if: "sms.text.len() > 3"
  do: [{ at: "AT+LONG" }]
"#,
        );
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "hi")).await),
            [Dispatched::Skipped(SkipReason::ConditionFalse)]
        );
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "hello")).await),
            [Dispatched::Started]
        );
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+LONG"]);
        let st = &r.status()[0];
        assert_eq!((st.runs, st.skipped), (1, 1));
    }

    #[tokio::test]
    async fn a_failing_condition_is_reported_not_run() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            "- name: x\n  when: sms\n  if: \"match.nope.deeper == 1\"\n  do: [stop]\n",
        );
        let got = whats(&r.dispatch(&sms(ME, "x")).await);
        let [Dispatched::Skipped(SkipReason::ConditionError(msg))] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert!(!msg.contains("_mtch"), "{msg}");
    }

    #[tokio::test]
    async fn ussd_save_as_feeds_later_templates() {
        let host = Arc::new(RecordingHost::new());
        host.ussd_replies.lock().expect("lock").insert(
            "*100#".into(),
            UssdReply {
                text: "Guthaben: 5,00 EUR".into(),
                status: 0,
                dcs: 15,
            },
        );
        let r = runner(
            &host,
            r#"
- name: balance
  when: startup
  do:
    - ussd: "*100#"
      save_as: balance
    - ussd_reply: "{{ balance.status }}"
      save_as: second
    - sms: { to: "+4917612345678", text: "Balance: {{ balance.text }} / {{ second.status }}" }
"#,
        );
        r.dispatch(&startup()).await;
        r.wait_idle().await;
        assert_eq!(
            host.calls(),
            [
                Call::Ussd("*100#".into()),
                Call::UssdReply("0".into()),
                Call::SendSms(ME.into(), "Balance: Guthaben: 5,00 EUR / 0".into()),
            ]
        );
    }

    #[tokio::test]
    async fn at_failure_ends_the_run_unless_continue_on_error() {
        let host = Arc::new(RecordingHost::new());
        host.at_replies
            .lock()
            .expect("lock")
            .insert("AT+BAD".into(), Err(HostError::Modem("ERROR".into())));
        host.at_replies
            .lock()
            .expect("lock")
            .insert("AT+CSQ".into(), Ok("+CSQ: 18,99".into()));
        let r = runner(
            &host,
            r#"
- name: tolerant
  when: startup
  do:
    - at: "AT+BAD"
      save_as: bad
      continue_on_error: true
    - at: "AT+CSQ"
      save_as: csq
    - log: "{{ csq.text }} / {{ bad.error }}"
    - at: "AT+AFTER {{ bad.error }}"
- name: strict
  when: startup
  do:
    - at: "AT+BAD"
    - at: "AT+NEVER"
"#,
        );
        r.dispatch(&startup()).await;
        r.wait_idle().await;
        let at = ats(&host);
        assert!(at.contains(&"AT+AFTER modem: ERROR".to_owned()), "{at:?}");
        assert!(!at.contains(&"AT+NEVER".to_owned()));
        assert_eq!(outcome(&r, "tolerant"), Some(RunOutcome::Ok));
        assert_eq!(
            outcome(&r, "strict"),
            Some(RunOutcome::Failed {
                at: "t.yaml:15".into(),
                action: "at".into(),
                error: "modem: ERROR".into()
            })
        );
    }

    #[tokio::test]
    async fn stop_ends_the_run_and_step_conditions_skip() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            r#"
- name: stopper
  when: startup
  do:
    - at: "AT+SKIPPED"
      if: "startup.modem == \"other\""
    - at: "AT+FIRST"
    - stop: "done on {{ startup.modem }}"
    - at: "AT+NEVER"
"#,
        );
        r.dispatch(&startup()).await;
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+FIRST"]);
        assert_eq!(
            outcome(&r, "stopper"),
            Some(RunOutcome::Stopped {
                reason: Some("done on main".into())
            })
        );
    }

    #[tokio::test]
    async fn script_action_calls_the_function_and_saves_its_result() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("util.rhai"),
            "fn shout(text, n) { send_sms(\"+4917612345678\", text.to_upper()); n * 2 }\n",
        )
        .expect("write");
        let scripts = ScriptSet::load_dir(dir.path(), &crate::script::Limits::default())
            .unwrap_or_else(|d| panic!("{}", d.render()));
        let host = Arc::new(RecordingHost::new());
        let r = runner_with(
            &host,
            Some(scripts),
            r#"
- name: s
  when: sms
  do:
    - script: { file: util, fn: shout, args: ["{{ sms.text }}", 21] }
      save_as: doubled
    - at: "AT+N={{ doubled }}"
"#,
        );
        r.dispatch(&sms(ME, "hello")).await;
        r.wait_idle().await;
        assert_eq!(
            host.calls(),
            [
                Call::SendSms(ME.into(), "HELLO".into()),
                Call::At("AT+N=42".into())
            ]
        );
    }

    #[tokio::test]
    async fn run_action_passes_the_event_in_the_environment() {
        // Each program's stdout is saved and copied into an AT command the host records.
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            r#"
- name: env
  when: { sms: { text: "^(?P<word>\\w+)" } }
  do:
    - run: ["printenv", "ATMATE_SMS_FROM", "ATMATE_SMS_TEXT", "ATMATE_EVENT", "ATMATE_RULE", "ATMATE_MATCH_WORD"]
      save_as: out
    - run: { program: printenv, args: ["ATMATE_EVENT_JSON"] }
      save_as: json
    - run: { program: printenv, args: ["ATMATE_SAVED_OUT"] }
      save_as: saved
    - run: ["echo", "{{ sms.text }}", "second arg"]
      save_as: echoed
    - at: "{{ out.text }}"
    - at: "{{ json.text }}"
    - at: "{{ saved.text }}"
    - at: "{{ echoed.text }}|{{ echoed.code }}"
"#,
        );
        // Shell syntax in a message is just text: no shell ever sees it.
        r.dispatch(&sms(ME, "hello world; $(touch /tmp/pwned)"))
            .await;
        r.wait_idle().await;
        assert_eq!(outcome(&r, "env"), Some(RunOutcome::Ok));
        let at = ats(&host);
        assert_eq!(
            at[0],
            format!("{ME}\nhello world; $(touch /tmp/pwned)\nsms\nenv\nhello")
        );
        let json: serde_json::Value = serde_json::from_str(&at[1]).expect("json");
        assert_eq!(json["from"], ME);
        assert_eq!(json["kind"], "sms");
        assert!(at[2].starts_with(ME), "{}", at[2]);
        assert_eq!(at[3], "hello world; $(touch /tmp/pwned) second arg|0");
    }

    #[tokio::test]
    async fn run_action_fails_on_exit_status_and_timeout() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            r#"
- name: falls
  when: startup
  do: [{ run: ["false"] }]
- name: slow
  when: startup
  do: [{ run: { program: sleep, args: ["30"], timeout: 200ms } }]
"#,
        );
        r.dispatch(&startup()).await;
        tokio::time::timeout(Duration::from_secs(10), r.wait_idle())
            .await
            .expect("the timeout kills it");
        let Some(RunOutcome::Failed { error, .. }) = outcome(&r, "falls") else {
            panic!("{:?}", outcome(&r, "falls"))
        };
        assert_eq!(error, "`false` exited with status 1");
        let Some(RunOutcome::Failed { error, .. }) = outcome(&r, "slow") else {
            panic!("{:?}", outcome(&r, "slow"))
        };
        assert_eq!(error, "`sleep` timed out after 200ms and was killed");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_uses_tokio_time() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            "- name: w\n  when: startup\n  do: [{ wait: 10s }, { at: \"AT+LATE\" }]\n",
        );
        r.dispatch(&startup()).await;
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(ats(&host).is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(ats(&host), ["AT+LATE"]);
        r.wait_idle().await;
    }

    const SLOW: &str = "  do:\n    - at: \"AT+START {{ sms.text }}\"\n    - wait: 10s\n    - at: \"AT+END {{ sms.text }}\"\n";

    fn moded(mode: &str, max: Option<usize>) -> String {
        let max = max.map(|m| format!("  max: {m}\n")).unwrap_or_default();
        format!("- name: m\n  when: sms\n  mode: {mode}\n{max}{SLOW}")
    }

    #[tokio::test(start_paused = true)]
    async fn single_ignores_a_trigger_while_running() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(&host, &moded("single", None));
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "1")).await),
            [Dispatched::Started]
        );
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "2")).await),
            [Dispatched::Skipped(SkipReason::Busy)]
        );
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+START 1", "AT+END 1"]);
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "3")).await),
            [Dispatched::Started]
        );
        r.wait_idle().await;
    }

    #[tokio::test(start_paused = true)]
    async fn queued_runs_one_after_another_within_its_bound() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(&host, &moded("queued", Some(2)));
        let mut got = Vec::new();
        for i in 1..=4 {
            got.extend(whats(&r.dispatch(&sms(ME, &i.to_string())).await));
        }
        assert_eq!(
            got,
            [
                Dispatched::Started,
                Dispatched::Queued,
                Dispatched::Queued,
                Dispatched::Skipped(SkipReason::QueueFull)
            ]
        );
        assert_eq!(r.status()[0].queued, 2);
        r.wait_idle().await;
        assert_eq!(
            ats(&host),
            [
                "AT+START 1",
                "AT+END 1",
                "AT+START 2",
                "AT+END 2",
                "AT+START 3",
                "AT+END 3"
            ]
        );
        assert_eq!(r.status()[0].runs, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn restart_cancels_the_running_run() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(&host, &moded("restart", None));
        r.dispatch(&sms(ME, "1")).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "2")).await),
            [Dispatched::Restarted]
        );
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+START 1", "AT+START 2", "AT+END 2"]);
        assert_eq!(
            outcome(&r, "m"),
            Some(RunOutcome::Ok),
            "the newer run's result counts"
        );
        assert_eq!(r.status()[0].running, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn parallel_runs_side_by_side_up_to_max() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(&host, &moded("parallel", Some(2)));
        let mut got = Vec::new();
        for i in 1..=3 {
            got.extend(whats(&r.dispatch(&sms(ME, &i.to_string())).await));
        }
        assert_eq!(
            got,
            [
                Dispatched::Started,
                Dispatched::Started,
                Dispatched::Skipped(SkipReason::TooManyRuns)
            ]
        );
        assert_eq!(r.status()[0].running, 2);
        r.wait_idle().await;
        let at = ats(&host);
        assert_eq!(
            &at[..2],
            ["AT+START 1", "AT+START 2"],
            "both started before either ended"
        );
        assert_eq!(at.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn cooldown_skips_triggers_until_it_has_passed() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            "- name: c\n  when: sms\n  cooldown: 1m\n  do: [{ at: \"AT\" }]\n",
        );
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "a")).await),
            [Dispatched::Started]
        );
        r.wait_idle().await;
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "b")).await),
            [Dispatched::Skipped(SkipReason::Cooldown)]
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            whats(&r.dispatch(&sms(ME, "c")).await),
            [Dispatched::Started]
        );
        r.wait_idle().await;
        assert_eq!(ats(&host).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn hot_swap_keeps_cooldowns_and_lets_runs_finish_on_the_old_version() {
        let host = Arc::new(RecordingHost::new());
        let old =
            "- name: c\n  when: sms\n  cooldown: 1m\n  do: [{ wait: 5s }, { at: \"AT+OLD\" }]\n";
        let new = "- name: c\n  when: sms\n  cooldown: 1m\n  do: [{ at: \"AT+NEW\" }]\n- name: d\n  when: sms\n  do: [{ at: \"AT+D\" }]\n";
        let r = runner(&host, old);
        r.dispatch(&sms(ME, "a")).await;
        r.set_rules(rules(new));
        r.wait_idle().await;
        assert_eq!(
            ats(&host),
            ["AT+OLD"],
            "the run in flight finished on the old rules"
        );
        let got = r.dispatch(&sms(ME, "b")).await;
        assert_eq!(
            got,
            [
                DispatchResult {
                    rule: "c".into(),
                    what: Dispatched::Skipped(SkipReason::Cooldown)
                },
                DispatchResult {
                    rule: "d".into(),
                    what: Dispatched::Started
                }
            ]
        );
        assert_eq!(r.status()[0].runs, 1, "counters carried over");
        tokio::time::advance(Duration::from_secs(61)).await;
        r.dispatch(&sms(ME, "c")).await;
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+OLD", "AT+D", "AT+NEW", "AT+D"]);
    }

    #[tokio::test]
    async fn allowlist_applies_to_sms_and_calls_unless_opted_out() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            r#"
- name: guarded
  when: sms
  do: [{ at: "AT+GUARDED" }]
- name: open
  when: sms
  allow_any_sender: true
  do: [{ at: "AT+OPEN" }]
- name: caller
  when: call
  do: [{ at: "AT+CALL" }]
"#,
        );
        let stranger = r.dispatch(&sms("+4915100000000", "x")).await;
        assert_eq!(
            whats(&stranger),
            [
                Dispatched::Skipped(SkipReason::SenderNotAllowed),
                Dispatched::Started
            ]
        );
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+OPEN"]);
        // National spelling of an allowed international number is still the same number.
        let friend = r.dispatch(&sms("004917612345678", "x")).await;
        assert_eq!(whats(&friend), [Dispatched::Started, Dispatched::Started]);
        let call = |from: Option<&str>| {
            Event::Call(CallEvent {
                modem: "main".into(),
                from: from.map(String::from),
                call_type: None,
            })
        };
        assert_eq!(
            whats(&r.dispatch(&call(None)).await),
            [Dispatched::Skipped(SkipReason::SenderNotAllowed)]
        );
        assert_eq!(
            whats(&r.dispatch(&call(Some(ME))).await),
            [Dispatched::Started]
        );
        r.set_allow_senders(Vec::new());
        assert_eq!(
            whats(&r.dispatch(&call(Some(ME))).await),
            [Dispatched::Skipped(SkipReason::SenderNotAllowed)]
        );
        r.wait_idle().await;
    }

    #[tokio::test]
    async fn signal_rules_fire_on_crossing_only() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(&host, "- name: weak\n  when: { signal: { below: -100 } }\n  do: [{ at: \"AT+WEAK {{ signal.dbm }}\" }]\n");
        let sig = |csq: u8| {
            let s = Signal::from_csq(csq);
            Event::Signal(SignalEvent {
                modem: "main".into(),
                csq,
                dbm: s.dbm,
                bars: s.bars,
            })
        };
        for csq in [10, 5, 4, 12, 3] {
            r.dispatch(&sig(csq)).await;
            r.wait_idle().await;
        }
        assert_eq!(ats(&host), ["AT+WEAK -103", "AT+WEAK -107"]);
    }

    #[tokio::test]
    async fn jobs_come_from_schedule_and_every_rules() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(
            &host,
            "- name: cron\n  when: { schedule: \"0 8 * * *\" }\n  do: [stop]\n- name: tick\n  when: { every: 15m }\n  do: [{ at: \"AT+TICK\" }]\n- name: other\n  when: startup\n  do: [stop]\n",
        );
        let jobs = r.jobs();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].name, "cron");
        assert!(matches!(&jobs[0].spec, Spec::Cron(c) if c.expr() == "0 8 * * *"));
        assert_eq!(jobs[1].spec, Spec::Every(Duration::from_secs(900)));
        let tick = Event::Schedule(ScheduleEvent { job: "tick".into() });
        assert_eq!(whats(&r.dispatch(&tick).await), [Dispatched::Started]);
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+TICK"]);
    }

    #[tokio::test]
    async fn a_missing_modem_fails_the_run() {
        let host = Arc::new(RecordingHost::new());
        let r = RuleRunner::new(RunnerDeps {
            host_for: Arc::new(|_: &str| None),
            scripts: Arc::new(|| None),
            allow_senders: vec![],
            default_max: 10,
        });
        r.set_rules(rules("- name: x\n  when: startup\n  do: [stop]\n"));
        r.dispatch(&startup()).await;
        r.wait_idle().await;
        let Some(RunOutcome::Failed { error, .. }) = outcome(&r, "x") else {
            panic!("{:?}", outcome(&r, "x"))
        };
        assert_eq!(error, "modem `main` is not available");
        assert!(host.calls().is_empty());
    }

    /// Collects what the `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn log_lines_and_failures_name_the_rule_and_the_place() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        // The test runtime has one thread, so the runs' tasks log through this too.
        let _one = crate::LOG_CAPTURE.lock().await;
        let _guard = tracing::subscriber::set_default(subscriber);
        // Call sites cached as uninteresting by tests without a subscriber.
        tracing::callsite::rebuild_interest_cache();
        let host = Arc::new(RecordingHost::new());
        host.at_replies
            .lock()
            .expect("lock")
            .insert("AT+BAD".into(), Err(HostError::Modem("ERROR".into())));
        let r = runner(
            &host,
            "- name: noisy\n  when: sms\n  do:\n    - log: \"got {{ sms.text }} from {{ sms.from }}\"\n    - log: { message: \"careful\", level: warn }\n    - run: [echo, \"out {{ sms.text }}\"]\n    - at: \"AT+BAD\"\n",
        );
        r.dispatch(&sms(ME, "hi")).await;
        r.wait_idle().await;
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{text}"))
                .to_owned()
        };
        assert!(line("got hi from +4917612345678").contains("rule=noisy"));
        assert!(line("careful").contains("WARN"));
        assert!(line("out hi").contains("stream=\"stdout\""));
        let failure = line("`at` failed: modem: ERROR");
        assert!(
            failure.contains("rule=noisy") && failure.contains("at=t.yaml:7"),
            "{failure}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_all_stops_runs_and_empties_queues() {
        let host = Arc::new(RecordingHost::new());
        let r = runner(&host, &moded("queued", None));
        r.dispatch(&sms(ME, "1")).await;
        r.dispatch(&sms(ME, "2")).await;
        tokio::task::yield_now().await;
        r.cancel_all();
        r.wait_idle().await;
        assert_eq!(ats(&host), ["AT+START 1"]);
        assert_eq!(outcome(&r, "m"), Some(RunOutcome::Cancelled));
    }
}
