//! The compiled rule model: what validation produces and the runner executes. Every
//! regex, template and condition is compiled; every name is resolved.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::template::{Condition, Template};
use crate::event::{LinkKind, LinkState, NetworkState};
use crate::schedule::CronSpec;

/// Where something is in a rules file (`rules/x.yaml:12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file.
    pub path: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// All loaded rules, in file order. Swapped as a whole on reload.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
}

impl RuleSet {
    /// A set of `rules` (names must be unique; validation guarantees it).
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            rules: rules.into_iter().map(Arc::new).collect(),
        }
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The rule called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name (logs, `atmate status`, schedule job name).
    pub name: String,
    /// Where the rule starts.
    pub place: Place,
    /// What starts it.
    pub trigger: Trigger,
    /// `if:`; the rule runs only when it is true.
    pub condition: Option<Condition>,
    /// `do:`, in order; never empty.
    pub steps: Vec<Step>,
    /// What happens when it triggers while running.
    pub mode: Mode,
    /// Queue bound (queued) or concurrency bound (parallel); `None` = the configured
    /// `limits.rule_queue`.
    pub max: Option<usize>,
    /// Triggers within this time of the last start are skipped.
    pub cooldown: Option<Duration>,
    /// The modem it listens to and acts on (empty: any, only when validated without
    /// knowing the modems).
    pub modem: String,
    /// Opt-out of the sender allowlist for SMS and call triggers.
    pub allow_any_sender: bool,
    /// True when a template or condition mentions `modem` (so the runner fetches it).
    pub uses_modem: bool,
}

/// Home Assistant's automation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A trigger while the rule runs is ignored (default).
    #[default]
    Single,
    /// Runs one after another, up to `max` waiting.
    Queued,
    /// A new trigger cancels the running run and starts over.
    Restart,
    /// Runs side by side, up to `max` at once.
    Parallel,
}

impl Mode {
    /// The YAML word.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Queued => "queued",
            Mode::Restart => "restart",
            Mode::Parallel => "parallel",
        }
    }
}

/// Which senders a trigger accepts.
#[derive(Debug, Clone)]
pub enum SenderMatch {
    /// One of these numbers (normalised: `+49…`).
    Exact(Vec<String>),
    /// A regex over the sender as it arrived.
    Regex(Regex),
}

/// Signal thresholds: fire when the value crosses into the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// `below` (true) or `above` (false).
    pub below: bool,
    /// The limit, in dBm or as a `+CSQ` value.
    pub value: i32,
    /// dBm or CSQ.
    pub unit: SignalUnit,
}

/// The unit of a signal threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalUnit {
    /// dBm (−113 … −51).
    Dbm,
    /// `+CSQ` rssi (0 … 31).
    Csq,
}

/// Storage states a trigger can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageState {
    /// The store is full.
    Full,
    /// It has room again.
    Ok,
}

/// What starts a rule (`when:`).
#[derive(Debug, Clone)]
pub enum Trigger {
    /// An SMS arrived.
    Sms {
        /// Sender filter.
        from: Option<SenderMatch>,
        /// Text regex (searched, not anchored; captures go to `match`).
        text: Option<Regex>,
    },
    /// A USSD reply or a network-initiated USSD.
    Ussd {
        /// `Some(true)`: only network-initiated; `Some(false)`: only replies.
        network_initiated: Option<bool>,
        /// Text regex.
        text: Option<Regex>,
    },
    /// The serial link or a data interface went down or came up.
    Link {
        /// Up or down (any when `None`).
        state: Option<LinkState>,
        /// Serial port or data interface (any when `None`).
        via: Option<LinkKind>,
    },
    /// Registration changed to one of these states.
    Network(Vec<NetworkState>),
    /// Signal crossed a threshold.
    Signal(Threshold),
    /// A 5-field crontab in the configured time zone.
    Schedule(CronSpec),
    /// Every interval.
    Every(Duration),
    /// The daemon started (once per modem).
    Startup,
    /// Message storage became full (or had room again).
    Storage(StorageState),
    /// An incoming call.
    Call {
        /// Caller filter.
        from: Option<SenderMatch>,
    },
    /// A status report for a sent message: `delivered`, `failed`, `pending`.
    SmsStatus(Vec<String>),
}

impl Trigger {
    /// The `when:` word.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Sms { .. } => "sms",
            Trigger::Ussd { .. } => "ussd",
            Trigger::Link { .. } => "link",
            Trigger::Network(_) => "network",
            Trigger::Signal(_) => "signal",
            Trigger::Schedule(_) => "schedule",
            Trigger::Every(_) => "every",
            Trigger::Startup => "startup",
            Trigger::Storage(_) => "storage",
            Trigger::Call { .. } => "call",
            Trigger::SmsStatus(_) => "sms_status",
        }
    }

    /// The event kind it reacts to (`every` runs on `schedule` events).
    pub fn event_kind(&self) -> &'static str {
        match self {
            Trigger::Every(_) => "schedule",
            t => t.kind(),
        }
    }

    /// True for triggers whose event has a sender (the allowlist applies).
    pub fn has_sender(&self) -> bool {
        matches!(self, Trigger::Sms { .. } | Trigger::Call { .. })
    }
}

/// One entry of `do:`.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// `if:` on the step: skipped when false.
    pub condition: Option<Condition>,
    /// Save the result under this name for later templates.
    pub save_as: Option<String>,
    /// A failure does not end the run.
    pub continue_on_error: bool,
    /// Where the step is (for failure logs).
    pub place: Place,
}

/// Log levels for the `log` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// debug
    Debug,
    /// info (default)
    Info,
    /// warn
    Warn,
    /// error
    Error,
}

/// A script argument: a template (strings) or a fixed YAML value.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A string, templated; `"{{ x }}"` alone passes `x`'s value as is.
    Template(Template),
    /// Any other YAML value, passed as JSON.
    Value(serde_json::Value),
}

/// An action.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send an SMS.
    Sms {
        /// Recipient.
        to: Template,
        /// Text.
        text: Template,
    },
    /// Start a USSD session; saves `{text, status, dcs}`.
    Ussd {
        /// The code (`*100#`).
        code: Template,
    },
    /// Answer a USSD menu; saves `{text, status, dcs}`.
    UssdReply {
        /// The answer.
        text: Template,
    },
    /// A raw AT command; saves `{text}`.
    At {
        /// The command.
        command: Template,
    },
    /// Call a Rhai function; saves its result.
    Script {
        /// Script file (name or stem); any script defining the function when `None`.
        file: Option<String>,
        /// Function name.
        function: String,
        /// Arguments.
        args: Vec<Arg>,
    },
    /// Run a program (never a shell); saves `{text: stdout, code}`.
    Run {
        /// The program (a path, or a name looked up in `PATH`).
        program: String,
        /// Its arguments, one argv entry each.
        args: Vec<Template>,
        /// Killed after this long.
        timeout: Duration,
    },
    /// Write a line to the log.
    Log {
        /// Level.
        level: LogLevel,
        /// Text.
        message: Template,
    },
    /// Pause the run.
    Wait(Duration),
    /// End the run here (successfully).
    Stop {
        /// Why, for the log.
        reason: Option<Template>,
    },
    /// Turn the modem's automatic network recovery on or off.
    Recovery(bool),
}

impl Action {
    /// The YAML word.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Sms { .. } => "sms",
            Action::Ussd { .. } => "ussd",
            Action::UssdReply { .. } => "ussd_reply",
            Action::At { .. } => "at",
            Action::Script { .. } => "script",
            Action::Run { .. } => "run",
            Action::Log { .. } => "log",
            Action::Wait(_) => "wait",
            Action::Stop { .. } => "stop",
            Action::Recovery(_) => "recovery",
        }
    }

    /// True for actions that produce a value for `save_as`.
    pub fn saves(&self) -> bool {
        matches!(
            self,
            Action::Ussd { .. }
                | Action::UssdReply { .. }
                | Action::At { .. }
                | Action::Script { .. }
                | Action::Run { .. }
        )
    }

    /// The templates the action renders (for "does it mention `modem`" and checks).
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            Action::Sms { to, text } => vec![to, text],
            Action::Ussd { code } => vec![code],
            Action::UssdReply { text } => vec![text],
            Action::At { command } => vec![command],
            Action::Script { args, .. } => args
                .iter()
                .filter_map(|a| match a {
                    Arg::Template(t) => Some(t),
                    Arg::Value(_) => None,
                })
                .collect(),
            Action::Run { args, .. } => args.iter().collect(),
            Action::Log { message, .. } => vec![message],
            Action::Wait(_) => vec![],
            Action::Stop { reason } => reason.iter().collect(),
            Action::Recovery(_) => vec![],
        }
    }
}
