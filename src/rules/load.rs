//! Loading and validating rules files: the located YAML tree → [`RuleSet`], with every
//! problem of every file reported as a `path:line:col` diagnostic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::matcher::normalize_sender;
use super::model::*;
use super::template::{Condition, ExprProblem, Template};
use crate::diag::{Diagnostic, Diagnostics};
use crate::event::{LinkKind, LinkState, NetworkState};
use crate::schedule::{CronSpec, Spec, Zone};
use crate::script::ScriptSet;
use crate::yaml::{
    self, boolean, duration, integer, non_empty_string, string, unknown_message, Map, Node, Sink,
    Value,
};

/// What validation needs to know from outside the rules files.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext<'a> {
    /// Configured modem names. When empty, `modem:` is not checked (rules validated on
    /// their own).
    pub modems: Vec<String>,
    /// The modem a rule without `modem:` uses (the config's default, or the only one).
    pub default_modem: Option<String>,
    /// Time zone of `schedule:` crontabs.
    pub timezone: Option<Zone>,
    /// The loaded scripts, to check `script:` actions; not checked when `None`.
    pub scripts: Option<&'a ScriptSet>,
    /// The configured sender allowlist (normalised), for warnings about rules that
    /// could never run.
    pub allow_senders: Vec<String>,
}

const RULE_KEYS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "when",
    "if",
    "do",
    "mode",
    "max",
    "cooldown",
    "modem",
    "allow_any_sender",
];

const TRIGGERS: &[&str] = &[
    "sms",
    "ussd",
    "link",
    "network",
    "signal",
    "schedule",
    "every",
    "startup",
    "storage",
    "call",
    "sms_status",
];

const ACTIONS: &[&str] = &[
    "sms",
    "ussd",
    "ussd_reply",
    "at",
    "script",
    "run",
    "log",
    "wait",
    "stop",
    "recovery",
];

const STEP_KEYS: &[&str] = &["save_as", "continue_on_error", "if"];

/// Names a `save_as:` may not take: they are the context's own variables, or Rhai's.
const RESERVED_NAMES: &[&str] = &[
    "event",
    "match",
    "modem",
    "rule",
    "sms",
    "ussd",
    "link",
    "network",
    "signal",
    "schedule",
    "startup",
    "storage",
    "call",
    "sms_status",
    "true",
    "false",
    "let",
    "const",
    "if",
    "else",
    "switch",
    "do",
    "while",
    "loop",
    "until",
    "for",
    "in",
    "continue",
    "break",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "global",
    "this",
    "is",
    "null",
    "nil",
    "void",
];

/// The default timeout of a `run` action.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Load and validate rules from files and folders (every `*.yaml` / `*.yml` directly
/// inside a folder, in name order, hidden files skipped). On success, the rules and the
/// warnings; on failure, every error and warning of every file.
pub fn load(
    paths: &[PathBuf],
    ctx: &ValidationContext<'_>,
) -> Result<(RuleSet, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut found: Vec<PathBuf> = rd
                        .flatten()
                        .map(|e| e.path())
                        .filter(|f| {
                            let hidden = f
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                            let yaml = f.extension().is_some_and(|e| e == "yaml" || e == "yml");
                            !hidden && yaml && f.is_file()
                        })
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => diags.push(Diagnostic::error(
                    p,
                    0,
                    0,
                    format!("cannot read the rules folder: {e}"),
                )),
            }
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            diags.push(Diagnostic::error(p, 0, 0, "no such rules file or folder"));
        }
    }
    files.dedup();
    let mut texts = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.clone(), t)),
            Err(e) => diags.push(Diagnostic::error(
                f,
                0,
                0,
                format!("cannot read the rules file: {e}"),
            )),
        }
    }
    let sources: Vec<(&Path, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    match load_sources(&sources, ctx) {
        Ok((set, warnings)) if !diags.has_errors() => {
            diags.extend(warnings);
            Ok((set, diags))
        }
        Ok((_, warnings)) => {
            diags.extend(warnings);
            Err(diags)
        }
        Err(errors) => {
            diags.extend(errors);
            Err(diags)
        }
    }
}

/// Validate rules given as (path, text) pairs (the path is used for messages and to
/// resolve relative program paths of `run`).
pub fn load_sources(
    sources: &[(&Path, &str)],
    ctx: &ValidationContext<'_>,
) -> Result<(RuleSet, Diagnostics), Diagnostics> {
    let mut all = Diagnostics::default();
    let mut rules: Vec<Rule> = Vec::new();
    let mut names: Vec<(String, Place)> = Vec::new();
    for (path, text) in sources {
        let mut sink = Sink::new(path, text);
        match yaml::parse(path, text) {
            Ok(root) => {
                let mut r = Reader {
                    sink: &mut sink,
                    ctx,
                    path: Arc::from(*path),
                    names: &mut names,
                };
                rules.extend(r.file(&root));
            }
            Err(d) => sink.push(d),
        }
        all.extend(sink.into_sorted());
    }
    if all.has_errors() {
        Err(all)
    } else {
        Ok((RuleSet::new(rules), all))
    }
}

struct Reader<'s, 't, 'c> {
    sink: &'s mut Sink<'t>,
    ctx: &'s ValidationContext<'c>,
    path: Arc<Path>,
    names: &'s mut Vec<(String, Place)>,
}

impl Reader<'_, '_, '_> {
    fn place(&self, node: &Node) -> Place {
        Place {
            path: self.path.clone(),
            line: node.loc.line,
            col: node.loc.col,
        }
    }

    fn file(&mut self, root: &Node) -> Vec<Rule> {
        if root.is_null() {
            self.sink
                .warning(yaml::Loc::default(), "the file has no rules");
            return Vec::new();
        }
        let Some(items) = root.as_seq() else {
            self.sink.error(
                root.loc,
                format!(
                    "a rules file is a list of rules (`- name: …`), found {}",
                    root.kind_name()
                ),
            );
            return Vec::new();
        };
        items.iter().filter_map(|item| self.rule(item)).collect()
    }

    fn rule(&mut self, node: &Node) -> Option<Rule> {
        let mut m = Map::new(node, "a rule", self.sink)?;
        let name_node = m.require("name", "a rule", self.sink);
        let name = name_node.and_then(|n| non_empty_string(n, "a rule's `name`", self.sink));
        let name = name.map(|n| n.trim().to_owned());
        if let (Some(n), Some(nn)) = (&name, name_node) {
            let place = self.place(nn);
            match self.names.iter().find(|(x, _)| x == n) {
                Some((_, first)) => {
                    let first = if *first.path == *self.path {
                        format!("line {}", first.line)
                    } else {
                        first.to_string()
                    };
                    self.sink.error(
                        nn.loc,
                        format!("rule name `{n}` is already used ({first}); names must be unique"),
                    );
                }
                None => self.names.push((n.clone(), place)),
            }
        }
        let what = name
            .as_ref()
            .map_or_else(|| "a rule".to_owned(), |n| format!("rule `{n}`"));
        if let Some(d) = m.take("description") {
            string(d, "`description`", self.sink);
        }
        let enabled = m
            .take("enabled")
            .map_or(Some(true), |n| boolean(n, "`enabled`", self.sink));
        let when = m.require("when", &what, self.sink);
        let trigger = when.and_then(|n| self.trigger(n));
        let if_node = m.take("if");
        let condition = if_node.and_then(|n| self.condition(n));
        let steps_node = m.take_entry("do");
        let mode_node = m.take("mode");
        let mode = match mode_node {
            Some(n) => self.mode(n),
            None => Some(Mode::Single),
        };
        let max_node = m.take("max");
        let max =
            max_node.and_then(|n| integer(n, "`max`", 1, 10_000, self.sink).map(|v| v as usize));
        if let (Some(n), Some(Mode::Single | Mode::Restart)) = (max_node, mode) {
            self.sink.warning(
                n.loc,
                "`max` only applies to `mode: queued` and `mode: parallel`",
            );
        }
        let cooldown = match m.take("cooldown") {
            Some(n) => match duration(n, "`cooldown`", self.sink) {
                Some(d) if d.is_zero() => {
                    self.sink.error(
                        n.loc,
                        "`cooldown` must be longer than 0s (leave it out for none)",
                    );
                    None
                }
                Some(d) => Some(Some(d)),
                None => None,
            },
            None => Some(None),
        };
        let modem = self.modem(m.take("modem"), node, &what);
        let any_node = m.take("allow_any_sender");
        let allow_any_sender =
            any_node.map_or(Some(false), |n| boolean(n, "`allow_any_sender`", self.sink));
        m.finish(&what, RULE_KEYS, self.sink);

        let steps = match steps_node {
            None => {
                self.sink.error(
                    node.loc,
                    format!("{what} is missing `do` (the actions to run)"),
                );
                None
            }
            Some((key, value)) => self.steps(key, value),
        };

        if let (Some(t), Some(any)) = (&trigger, allow_any_sender) {
            self.sender_checks(t, any, any_node, when.unwrap_or(node), &what);
        }
        if let (Some(t), Some(steps)) = (&trigger, &steps) {
            self.check_names(t, condition.as_ref().zip(if_node), steps);
        }

        let trigger = trigger?;
        let steps = steps?;
        let uses_modem = condition.as_ref().is_some_and(|c| c.mentions("modem"))
            || steps.iter().any(|s| {
                s.condition.as_ref().is_some_and(|c| c.mentions("modem"))
                    || s.action.templates().iter().any(|t| t.mentions("modem"))
            });
        let rule = Rule {
            name: name?,
            place: self.place(node),
            trigger,
            condition,
            steps,
            mode: mode?,
            max,
            cooldown: cooldown?,
            modem: modem?,
            allow_any_sender: allow_any_sender?,
            uses_modem,
        };
        enabled?.then_some(rule)
    }

    fn modem(&mut self, node: Option<&Node>, rule: &Node, what: &str) -> Option<String> {
        let known = &self.ctx.modems;
        match node {
            Some(n) => {
                let name = non_empty_string(n, "`modem`", self.sink)?;
                if known.is_empty() || known.contains(&name) {
                    return Some(name);
                }
                let list: Vec<&str> = known.iter().map(String::as_str).collect();
                self.sink.error(
                    n.loc,
                    unknown_message(&format!("modem `{name}`"), &name, &list),
                );
                None
            }
            None => match (&self.ctx.default_modem, known.len()) {
                (Some(d), _) => Some(d.clone()),
                (None, 0) => Some(String::new()),
                (None, 1) => Some(known[0].clone()),
                (None, _) => {
                    self.sink.error(
                        rule.loc,
                        format!(
                            "{what} must say which modem it is for (`modem: {}`), as several are configured and none is `default: true`",
                            known.join("` or `modem: ")
                        ),
                    );
                    None
                }
            },
        }
    }

    fn mode(&mut self, node: &Node) -> Option<Mode> {
        let s = string(node, "`mode`", self.sink)?;
        match s.as_str() {
            "single" => Some(Mode::Single),
            "queued" => Some(Mode::Queued),
            "restart" => Some(Mode::Restart),
            "parallel" => Some(Mode::Parallel),
            other => {
                self.sink.error(
                    node.loc,
                    unknown_message(
                        &format!("mode `{other}`"),
                        other,
                        &["single", "queued", "restart", "parallel"],
                    ),
                );
                None
            }
        }
    }

    // ---- triggers ----

    fn trigger(&mut self, node: &Node) -> Option<Trigger> {
        let (kind, kind_node, arg) = match &node.value {
            Value::Str(s) => (s.clone(), node, None),
            Value::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                (
                    k.scalar_text().unwrap_or_default(),
                    k,
                    Some(v).filter(|v| !v.is_null()),
                )
            }
            Value::Map(entries) if entries.len() > 1 => {
                let keys: Vec<String> = entries
                    .iter()
                    .filter_map(|(k, _)| k.scalar_text())
                    .collect();
                self.sink.error(
                    entries[1].0.loc,
                    format!(
                        "`when` takes exactly one trigger, found {}; write one rule per trigger",
                        keys.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                );
                return None;
            }
            _ => {
                self.sink.error(
                    node.loc,
                    format!(
                        "`when` needs a trigger such as `{{ sms: {{}} }}` or `startup`, found {}",
                        node.kind_name()
                    ),
                );
                return None;
            }
        };
        match kind.as_str() {
            "sms" => self.sms_trigger(arg),
            "ussd" => self.ussd_trigger(arg),
            "link" => self.link_trigger(arg),
            "network" => self.network_trigger(arg, kind_node),
            "signal" => self.signal_trigger(arg, kind_node),
            "schedule" => self.schedule_trigger(arg, kind_node),
            "every" => self.every_trigger(arg, kind_node),
            "startup" => {
                if let Some(a) = arg {
                    self.sink.error(a.loc, "`startup` takes no settings");
                    return None;
                }
                Some(Trigger::Startup)
            }
            "storage" => self.storage_trigger(arg),
            "call" => self.call_trigger(arg),
            "sms_status" => self.sms_status_trigger(arg),
            other => {
                self.sink.error(
                    kind_node.loc,
                    unknown_message(&format!("trigger `{other}`"), other, TRIGGERS),
                );
                None
            }
        }
    }

    fn sms_trigger(&mut self, arg: Option<&Node>) -> Option<Trigger> {
        let Some(arg) = arg else {
            return Some(Trigger::Sms {
                from: None,
                text: None,
            });
        };
        let mut m = Map::new(arg, "the `sms` trigger", self.sink)?;
        let from = match m.take("from") {
            Some(n) => self.sender_match(n).map(Some),
            None => Some(None),
        };
        let text = match m.take("text") {
            Some(n) => self.regex(n, "`text`").map(Some),
            None => Some(None),
        };
        m.finish("the `sms` trigger", &["from", "text"], self.sink);
        Some(Trigger::Sms {
            from: from?,
            text: text?,
        })
    }

    fn ussd_trigger(&mut self, arg: Option<&Node>) -> Option<Trigger> {
        let Some(arg) = arg else {
            return Some(Trigger::Ussd {
                network_initiated: None,
                text: None,
            });
        };
        let mut m = Map::new(arg, "the `ussd` trigger", self.sink)?;
        let ni = match m.take("network_initiated") {
            Some(n) => boolean(n, "`network_initiated`", self.sink).map(Some),
            None => Some(None),
        };
        let text = match m.take("text") {
            Some(n) => self.regex(n, "`text`").map(Some),
            None => Some(None),
        };
        m.finish(
            "the `ussd` trigger",
            &["network_initiated", "text"],
            self.sink,
        );
        Some(Trigger::Ussd {
            network_initiated: ni?,
            text: text?,
        })
    }

    fn link_trigger(&mut self, arg: Option<&Node>) -> Option<Trigger> {
        let word = |s: &str| match s {
            "up" => Some(LinkState::Up),
            "down" => Some(LinkState::Down),
            _ => None,
        };
        let Some(arg) = arg else {
            return Some(Trigger::Link {
                state: None,
                via: None,
            });
        };
        if arg.as_map().is_none() {
            let s = string(arg, "`link`", self.sink)?;
            return match word(&s) {
                Some(state) => Some(Trigger::Link {
                    state: Some(state),
                    via: None,
                }),
                None => {
                    self.sink.error(
                        arg.loc,
                        unknown_message(&format!("link state `{s}`"), &s, &["down", "up"]),
                    );
                    None
                }
            };
        }
        let mut m = Map::new(arg, "the `link` trigger", self.sink)?;
        let state = match m.take("state") {
            Some(n) => match string(n, "`state`", self.sink) {
                Some(s) => match word(&s) {
                    Some(st) => Some(Some(st)),
                    None => {
                        self.sink.error(
                            n.loc,
                            unknown_message(&format!("link state `{s}`"), &s, &["down", "up"]),
                        );
                        None
                    }
                },
                None => None,
            },
            None => Some(None),
        };
        let via = match m.take("via") {
            Some(n) => match string(n, "`via`", self.sink).as_deref() {
                Some("serial") => Some(Some(LinkKind::Serial)),
                Some("data") => Some(Some(LinkKind::Data)),
                Some(s) => {
                    self.sink.error(
                        n.loc,
                        unknown_message(&format!("link `via: {s}`"), s, &["serial", "data"]),
                    );
                    None
                }
                None => None,
            },
            None => Some(None),
        };
        m.finish("the `link` trigger", &["state", "via"], self.sink);
        Some(Trigger::Link {
            state: state?,
            via: via?,
        })
    }

    fn network_trigger(&mut self, arg: Option<&Node>, at: &Node) -> Option<Trigger> {
        const STATES: &[&str] = &["lost", "registered", "roaming", "searching", "denied"];
        let Some(arg) = arg else {
            self.sink.error(
                at.loc,
                "`network` needs a state: lost, registered, roaming, searching or denied",
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (s, n) in yaml::located_strings(arg, "a network state", self.sink) {
            let st = match s.as_str() {
                "lost" => NetworkState::Lost,
                "registered" => NetworkState::Registered,
                "roaming" => NetworkState::Roaming,
                "searching" => NetworkState::Searching,
                "denied" => NetworkState::Denied,
                other => {
                    self.sink.error(
                        n.loc,
                        unknown_message(&format!("network state `{other}`"), other, STATES),
                    );
                    ok = false;
                    continue;
                }
            };
            out.push(st);
        }
        if out.is_empty() && ok {
            self.sink
                .error(arg.loc, "`network` needs at least one state");
            return None;
        }
        ok.then_some(Trigger::Network(out))
    }

    fn signal_trigger(&mut self, arg: Option<&Node>, at: &Node) -> Option<Trigger> {
        const KEYS: &[&str] = &["below", "above", "below_csq", "above_csq"];
        let Some(arg) = arg else {
            self.sink.error(
                at.loc,
                "`signal` needs a threshold: `{ below: -100 }` (dBm), `above`, `below_csq` or `above_csq`",
            );
            return None;
        };
        let mut m = Map::new(arg, "the `signal` trigger", self.sink)?;
        let given: Vec<(&str, &Node)> = KEYS
            .iter()
            .filter_map(|k| m.take(k).map(|n| (*k, n)))
            .collect();
        m.finish("the `signal` trigger", KEYS, self.sink);
        let [(key, n)] = given.as_slice() else {
            if given.len() > 1 {
                self.sink.error(
                    given[1].1.loc,
                    "`signal` takes one threshold; use two rules for a band",
                );
            } else {
                self.sink.error(
                    arg.loc,
                    "`signal` needs one of `below`, `above` (dBm), `below_csq`, `above_csq`",
                );
            }
            return None;
        };
        let csq = key.ends_with("_csq");
        let value = if csq {
            integer(n, &format!("`{key}`"), 0, 31, self.sink)?
        } else {
            if let Value::Int(i @ 0..=31) = n.value {
                self.sink.error(
                    n.loc,
                    format!("`{key}` is in dBm (-120 to -40); `{i}` looks like a CSQ value: write `{key}_csq: {i}`"),
                );
                return None;
            }
            integer(n, &format!("`{key}` (dBm)"), -120, -40, self.sink)?
        };
        Some(Trigger::Signal(Threshold {
            below: key.starts_with("below"),
            value: value as i32,
            unit: if csq {
                SignalUnit::Csq
            } else {
                SignalUnit::Dbm
            },
        }))
    }

    fn schedule_trigger(&mut self, arg: Option<&Node>, at: &Node) -> Option<Trigger> {
        let Some(arg) = arg else {
            self.sink.error(
                at.loc,
                "`schedule` needs a crontab such as \"0 8 * * *\" (minute hour day month weekday)",
            );
            return None;
        };
        let expr = non_empty_string(arg, "`schedule`", self.sink)?;
        match CronSpec::parse(&expr, self.ctx.timezone.unwrap_or(Zone::Local)) {
            Ok(spec) => Some(Trigger::Schedule(spec)),
            Err(e) => {
                self.sink
                    .error(arg.loc, format!("`schedule: {}`: {e}", expr.trim()));
                None
            }
        }
    }

    fn every_trigger(&mut self, arg: Option<&Node>, at: &Node) -> Option<Trigger> {
        let Some(arg) = arg else {
            self.sink
                .error(at.loc, "`every` needs an interval such as `15m`");
            return None;
        };
        let d = duration(arg, "`every`", self.sink)?;
        match Spec::every_duration(d) {
            Ok(_) => Some(Trigger::Every(d)),
            Err(e) => {
                self.sink.error(arg.loc, format!("`every`: {e}"));
                None
            }
        }
    }

    fn storage_trigger(&mut self, arg: Option<&Node>) -> Option<Trigger> {
        let Some(arg) = arg else {
            return Some(Trigger::Storage(StorageState::Full));
        };
        let node = match arg.as_map() {
            Some(_) => {
                let mut m = Map::new(arg, "the `storage` trigger", self.sink)?;
                let n = m.require("state", "the `storage` trigger", self.sink);
                m.finish("the `storage` trigger", &["state"], self.sink);
                n?
            }
            None => arg,
        };
        match string(node, "`storage`", self.sink)?.as_str() {
            "full" => Some(Trigger::Storage(StorageState::Full)),
            "ok" => Some(Trigger::Storage(StorageState::Ok)),
            other => {
                self.sink.error(
                    node.loc,
                    unknown_message(&format!("storage state `{other}`"), other, &["full", "ok"]),
                );
                None
            }
        }
    }

    fn call_trigger(&mut self, arg: Option<&Node>) -> Option<Trigger> {
        let Some(arg) = arg else {
            return Some(Trigger::Call { from: None });
        };
        if arg.as_map().is_none() {
            return match string(arg, "`call`", self.sink)?.as_str() {
                "incoming" => Some(Trigger::Call { from: None }),
                other => {
                    self.sink.error(
                        arg.loc,
                        format!("`call: {other}`: write `call: incoming` or `call: {{ from: \"+49…\" }}`"),
                    );
                    None
                }
            };
        }
        let mut m = Map::new(arg, "the `call` trigger", self.sink)?;
        let from = match m.take("from") {
            Some(n) => self.sender_match(n).map(Some),
            None => Some(None),
        };
        m.finish("the `call` trigger", &["from"], self.sink);
        Some(Trigger::Call { from: from? })
    }

    fn sms_status_trigger(&mut self, arg: Option<&Node>) -> Option<Trigger> {
        const STATES: &[&str] = &["delivered", "failed", "pending"];
        let Some(arg) = arg else {
            return Some(Trigger::SmsStatus(
                STATES.iter().map(|s| (*s).to_owned()).collect(),
            ));
        };
        let node = match arg.as_map() {
            Some(_) => {
                let mut m = Map::new(arg, "the `sms_status` trigger", self.sink)?;
                let n = m.require("status", "the `sms_status` trigger", self.sink);
                m.finish("the `sms_status` trigger", &["status"], self.sink);
                n?
            }
            None => arg,
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (s, n) in yaml::located_strings(node, "a status", self.sink) {
            if STATES.contains(&s.as_str()) {
                out.push(s);
            } else {
                self.sink
                    .error(n.loc, unknown_message(&format!("status `{s}`"), &s, STATES));
                ok = false;
            }
        }
        ok.then_some(Trigger::SmsStatus(out))
    }

    /// `from:` an exact number, a list of numbers, or `{ regex: … }`.
    fn sender_match(&mut self, node: &Node) -> Option<SenderMatch> {
        if node.as_map().is_some() {
            let mut m = Map::new(node, "`from`", self.sink)?;
            let re = m.require("regex", "`from`", self.sink);
            m.finish("`from`", &["regex"], self.sink);
            return self.regex(re?, "`regex`").map(SenderMatch::Regex);
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (s, n) in yaml::located_strings(node, "a sender", self.sink) {
            let norm = normalize_sender(&s);
            if norm.is_empty() {
                self.sink.error(n.loc, "a sender must not be empty");
                ok = false;
            } else {
                out.push(norm);
            }
        }
        if out.is_empty() && ok {
            self.sink
                .error(node.loc, "`from` needs at least one number");
            return None;
        }
        ok.then_some(SenderMatch::Exact(out))
    }

    fn regex(&mut self, node: &Node, what: &str) -> Option<Regex> {
        let pattern = string(node, what, self.sink)?;
        match Regex::new(&pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                let (at, msg) = regex_problem(&pattern, &e);
                let loc = match at {
                    Some(at) => node.position_of(self.sink.text, &pattern, 0, at),
                    None => node.loc,
                };
                self.sink
                    .error(loc, format!("{what} is not a valid regex: {msg}"));
                None
            }
        }
    }

    // ---- conditions, templates ----

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let src = non_empty_string(node, "`if`", self.sink)?;
        match Condition::compile(&src) {
            Ok(c) => Some(c),
            Err(p) => {
                self.expr_problem(node, &p);
                None
            }
        }
    }

    fn template(&mut self, node: &Node, what: &str) -> Option<Template> {
        let src = string(node, what, self.sink)?;
        match Template::compile(&src) {
            Ok(t) => Some(t),
            Err(problems) => {
                for p in &problems {
                    self.expr_problem(node, p);
                }
                None
            }
        }
    }

    fn expr_problem(&mut self, node: &Node, p: &ExprProblem) {
        let loc = node.position_of(self.sink.text, &p.piece, p.occurrence, p.at);
        self.sink
            .error(loc, format!("invalid expression: {}", p.message));
    }

    // ---- actions ----

    fn steps(&mut self, key: &Node, node: &Node) -> Option<Vec<Step>> {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            _ => {
                self.sink.error(
                    node.loc,
                    format!(
                        "`do` must be a list of actions (`- sms: …`), found {}",
                        node.kind_name()
                    ),
                );
                return None;
            }
        };
        if items.is_empty() {
            self.sink
                .error(key.loc, "`do` is empty; a rule needs at least one action");
            return None;
        }
        let mut steps = Vec::new();
        let mut ok = true;
        for item in items {
            match self.step(item) {
                Some(s) => steps.push(s),
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        if let Some(word) = node
            .as_map()
            .is_none()
            .then(|| node.scalar_text())
            .flatten()
        {
            // A bare word: `- stop`.
            return match word.as_str() {
                "stop" => Some(Step {
                    action: Action::Stop { reason: None },
                    condition: None,
                    save_as: None,
                    continue_on_error: false,
                    place: self.place(node),
                }),
                other => {
                    let hint = if ACTIONS.contains(&other) {
                        format!("`{other}` needs a value, e.g. `- {other}: …`")
                    } else {
                        unknown_message(&format!("action `{other}`"), other, ACTIONS)
                    };
                    self.sink.error(node.loc, hint);
                    None
                }
            };
        }
        let mut m = Map::new(node, "an action", self.sink)?;
        let present: Vec<(&str, &Node, &Node)> = ACTIONS
            .iter()
            .filter_map(|a| m.take_entry(a).map(|(k, v)| (*a, k, v)))
            .collect();
        let save_as_node = m.take("save_as");
        let coe = m.take("continue_on_error");
        let if_node = m.take("if");
        let unknown: Vec<(String, Node)> = m
            .keys()
            .filter(|(k, _)| !ACTIONS.contains(k) && !STEP_KEYS.contains(k))
            .map(|(k, n)| (k.to_owned(), n.clone()))
            .collect();
        drop(m);
        for (k, n) in &unknown {
            let msg = match present.first() {
                None => unknown_message(&format!("action `{k}`"), k, ACTIONS),
                Some((kind, _, _)) => {
                    let all: Vec<&str> = STEP_KEYS.iter().chain(ACTIONS).copied().collect();
                    unknown_message(&format!("key `{k}` next to `{kind}`"), k, &all)
                }
            };
            self.sink.error(n.loc, msg);
        }
        let (kind, key, value) = match present.as_slice() {
            [one] => *one,
            [] => {
                if unknown.is_empty() {
                    self.sink.error(
                        node.loc,
                        format!("an action needs one of: {}", ACTIONS.join(", ")),
                    );
                }
                return None;
            }
            [_, second, ..] => {
                self.sink.error(
                    second.1.loc,
                    format!(
                        "one action per list item: found `{}` and `{}`; start a new item with `- {}:`",
                        present[0].0, second.0, second.0
                    ),
                );
                return None;
            }
        };
        let action = self.action(kind, key, value);
        let condition = if_node.and_then(|n| self.condition(n));
        let continue_on_error = coe.map_or(Some(false), |n| {
            boolean(n, "`continue_on_error`", self.sink)
        });
        let save_as = match save_as_node {
            Some(n) => self.save_as(n, kind).map(Some),
            None => Some(None),
        };
        if if_node.is_some() && condition.is_none() {
            return None;
        }
        Some(Step {
            action: action?,
            condition,
            save_as: save_as?,
            continue_on_error: continue_on_error?,
            place: self.place(key),
        })
    }

    fn save_as(&mut self, node: &Node, kind: &str) -> Option<String> {
        let name = non_empty_string(node, "`save_as`", self.sink)?;
        if !matches!(kind, "ussd" | "ussd_reply" | "at" | "script" | "run") {
            self.sink.error(
                node.loc,
                format!("`{kind}` has no result to save; `save_as` works with ussd, ussd_reply, at, script and run"),
            );
            return None;
        }
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.sink.error(
                node.loc,
                format!("`save_as: {name}`: a name starts with a letter and has only letters, digits and `_`"),
            );
            return None;
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            self.sink.error(
                node.loc,
                format!("`save_as: {name}`: `{name}` is a reserved name; pick another"),
            );
            return None;
        }
        Some(name)
    }

    fn action(&mut self, kind: &str, key: &Node, value: &Node) -> Option<Action> {
        match kind {
            "sms" => {
                let mut m = Map::new(value, "the `sms` action", self.sink)?;
                let to = m.require("to", "the `sms` action", self.sink);
                let text = m.require("text", "the `sms` action", self.sink);
                m.finish("the `sms` action", &["to", "text"], self.sink);
                let to = to.and_then(|n| self.template(n, "`to`"));
                let text = text.and_then(|n| self.template(n, "`text`"));
                Some(Action::Sms {
                    to: to?,
                    text: text?,
                })
            }
            "ussd" => self
                .one_field(key, value, "ussd", "code")
                .map(|code| Action::Ussd { code }),
            "ussd_reply" => self
                .one_field(key, value, "ussd_reply", "text")
                .map(|text| Action::UssdReply { text }),
            "at" => {
                let command = self.one_field(key, value, "at", "command")?;
                let src = command.source().trim_start();
                if command.is_literal()
                    && !src.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT"))
                {
                    self.sink.error(
                        value.loc,
                        format!("an AT command starts with `AT`, found `{src}`"),
                    );
                    return None;
                }
                Some(Action::At { command })
            }
            "script" => self.script_action(key, value),
            "run" => self.run_action(key, value),
            "log" => {
                if value.as_map().is_none() {
                    return self.template(value, "`log`").map(|message| Action::Log {
                        level: LogLevel::Info,
                        message,
                    });
                }
                let mut m = Map::new(value, "the `log` action", self.sink)?;
                let msg = m.require("message", "the `log` action", self.sink);
                let level = match m.take("level") {
                    Some(n) => match string(n, "`level`", self.sink).as_deref() {
                        Some("debug") => Some(LogLevel::Debug),
                        Some("info") => Some(LogLevel::Info),
                        Some("warn") => Some(LogLevel::Warn),
                        Some("error") => Some(LogLevel::Error),
                        Some(other) => {
                            self.sink.error(
                                n.loc,
                                unknown_message(
                                    &format!("log level `{other}`"),
                                    other,
                                    &["debug", "info", "warn", "error"],
                                ),
                            );
                            None
                        }
                        None => None,
                    },
                    None => Some(LogLevel::Info),
                };
                m.finish("the `log` action", &["message", "level"], self.sink);
                let message = msg.and_then(|n| self.template(n, "`message`"));
                Some(Action::Log {
                    level: level?,
                    message: message?,
                })
            }
            "wait" => {
                if value.is_null() {
                    self.sink
                        .error(key.loc, "`wait` needs a duration such as `10s`");
                    return None;
                }
                duration(value, "`wait`", self.sink).map(Action::Wait)
            }
            "stop" => {
                let reason = match &value.value {
                    Value::Null => None,
                    _ => Some(self.template(value, "`stop`")?),
                };
                Some(Action::Stop { reason })
            }
            "recovery" => match value.scalar_text().as_deref() {
                Some("on") | Some("true") => Some(Action::Recovery(true)),
                Some("off") | Some("false") => Some(Action::Recovery(false)),
                _ => {
                    self.sink.error(
                        value.loc,
                        "`recovery` takes `on` or `off` (the modem's automatic network recovery)",
                    );
                    None
                }
            },
            _ => None,
        }
    }

    /// `kind: value` or `kind: { field: value }`, templated.
    fn one_field(&mut self, key: &Node, value: &Node, kind: &str, field: &str) -> Option<Template> {
        if value.is_null() {
            self.sink
                .error(key.loc, format!("`{kind}` needs a {field}"));
            return None;
        }
        if value.as_map().is_some() {
            let what = format!("the `{kind}` action");
            let mut m = Map::new(value, &what, self.sink)?;
            let n = m.require(field, &what, self.sink);
            m.finish(&what, &[field], self.sink);
            return self.template(n?, &format!("`{field}`"));
        }
        let t = self.template(value, &format!("`{kind}`"))?;
        if t.source().trim().is_empty() {
            self.sink
                .error(value.loc, format!("`{kind}` needs a {field}"));
            return None;
        }
        Some(t)
    }

    fn script_action(&mut self, key: &Node, value: &Node) -> Option<Action> {
        if value.is_null() {
            self.sink.error(
                key.loc,
                "`script` needs `{ fn: name }` (and optionally `file` and `args`)",
            );
            return None;
        }
        let (file, function, fn_node, args) = if value.as_map().is_some() {
            let mut m = Map::new(value, "the `script` action", self.sink)?;
            let file = m
                .take("file")
                .map(|n| non_empty_string(n, "`file`", self.sink));
            let fn_node = m.require("fn", "the `script` action", self.sink);
            let function = fn_node.and_then(|n| non_empty_string(n, "`fn`", self.sink));
            let args = match m.take("args") {
                Some(n) => self.script_args(n),
                None => Some(Vec::new()),
            };
            m.finish("the `script` action", &["file", "fn", "args"], self.sink);
            let file = match file {
                Some(Some(f)) => Some(f),
                Some(None) => return None,
                None => None,
            };
            (file, function?, fn_node.unwrap_or(value), args?)
        } else {
            (
                None,
                non_empty_string(value, "`script`", self.sink)?,
                value,
                Vec::new(),
            )
        };
        if let Some(set) = self.ctx.scripts {
            if !set.has_fn(file.as_deref(), &function, args.len()) {
                let whose = file
                    .as_deref()
                    .map_or_else(|| "any script".to_owned(), |f| format!("`{f}`"));
                self.sink.error(
                    fn_node.loc,
                    format!(
                        "unknown script function `{function}` taking {} argument(s) in {whose}",
                        args.len()
                    ),
                );
                return None;
            }
        }
        Some(Action::Script {
            file,
            function,
            args,
        })
    }

    fn script_args(&mut self, node: &Node) -> Option<Vec<Arg>> {
        let Some(items) = node.as_seq() else {
            self.sink.error(
                node.loc,
                format!("`args` must be a list, found {}", node.kind_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match &item.value {
                Value::Str(_) => match self.template(item, "an argument") {
                    Some(t) => out.push(Arg::Template(t)),
                    None => ok = false,
                },
                _ => out.push(Arg::Value(item.to_json())),
            }
        }
        ok.then_some(out)
    }

    fn run_action(&mut self, key: &Node, value: &Node) -> Option<Action> {
        let (argv_node, timeout) = match &value.value {
            Value::Seq(_) | Value::Str(_) => (value, Some(DEFAULT_RUN_TIMEOUT)),
            Value::Map(_) => {
                let mut m = Map::new(value, "the `run` action", self.sink)?;
                let program = m.require("program", "the `run` action", self.sink);
                let args = m.take("args");
                let timeout = match m.take("timeout") {
                    Some(n) => match duration(n, "`timeout`", self.sink) {
                        Some(d) if d.is_zero() => {
                            self.sink.error(n.loc, "`timeout` must be longer than 0s");
                            None
                        }
                        d => d,
                    },
                    None => Some(DEFAULT_RUN_TIMEOUT),
                };
                m.finish(
                    "the `run` action",
                    &["program", "args", "timeout"],
                    self.sink,
                );
                let program = program?;
                let args_list: Vec<&Node> = match args {
                    Some(a) => match a.as_seq() {
                        Some(items) => items.iter().collect(),
                        None => {
                            self.sink.error(
                                a.loc,
                                format!("`args` must be a list, found {}", a.kind_name()),
                            );
                            return None;
                        }
                    },
                    None => Vec::new(),
                };
                let prog = self.program(program)?;
                let args = self.run_args(&prog, &args_list)?;
                return Some(Action::Run {
                    program: prog,
                    args,
                    timeout: timeout?,
                });
            }
            _ => {
                self.sink.error(
                    key.loc,
                    "`run` needs a program: `run: [\"/path/to/program\", \"arg\", …]`",
                );
                return None;
            }
        };
        let items: Vec<&Node> = match argv_node.as_seq() {
            Some(items) => items.iter().collect(),
            None => vec![argv_node],
        };
        let Some((first, rest)) = items.split_first() else {
            self.sink.error(argv_node.loc, "`run` needs a program");
            return None;
        };
        if argv_node.as_seq().is_none() {
            let s = argv_node.scalar_text().unwrap_or_default();
            if s.trim().contains(char::is_whitespace) {
                self.sink.error(
                    argv_node.loc,
                    "`run` takes the program and its arguments as a list, e.g. [\"/usr/bin/logger\", \"{{ sms.text }}\"]; it never runs a shell",
                );
                return None;
            }
        }
        let prog = self.program(first)?;
        let args = self.run_args(&prog, rest)?;
        Some(Action::Run {
            program: prog,
            args,
            timeout: timeout?,
        })
    }

    /// The program of `run`: a literal (never a template: an SMS must not choose what
    /// runs); a relative path with a `/` is relative to the rules file's folder.
    fn program(&mut self, node: &Node) -> Option<String> {
        let p = non_empty_string(node, "the program", self.sink)?;
        let p = p.trim().to_owned();
        if p.contains("{{") {
            self.sink.error(
                node.loc,
                "the program cannot be a template (a message must never choose what runs); pass values as arguments",
            );
            return None;
        }
        let resolved = if p.contains('/') && !Path::new(&p).is_absolute() {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            dir.join(&p).to_string_lossy().into_owned()
        } else {
            p.clone()
        };
        if !program_exists(&resolved) {
            self.sink.warning(
                node.loc,
                format!("program `{p}` was not found (the action will fail unless it appears)"),
            );
        }
        Some(resolved)
    }

    fn run_args(&mut self, program: &str, items: &[&Node]) -> Option<Vec<Template>> {
        let mut out = Vec::new();
        let mut ok = true;
        let shell = matches!(
            Path::new(program).file_name().and_then(|f| f.to_str()),
            Some("sh" | "bash" | "dash" | "zsh" | "ash" | "ksh")
        );
        let mut after_c = false;
        for item in items {
            match self.template(item, "an argument") {
                Some(t) => {
                    if shell && after_c && !t.is_literal() {
                        self.sink.warning(
                            item.loc,
                            "a template inside a shell command line lets a message inject shell code; read the value from an ATMATE_* environment variable or pass it as its own argument",
                        );
                    }
                    after_c = t.source() == "-c";
                    out.push(t);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    // ---- cross checks (warnings) ----

    fn sender_checks(
        &mut self,
        t: &Trigger,
        any: bool,
        any_node: Option<&Node>,
        when: &Node,
        what: &str,
    ) {
        match (t.has_sender(), any) {
            (true, true) => {
                if let Some(n) = any_node {
                    self.sink.warning(
                        n.loc,
                        format!("{what} runs for {} from any sender (allow_any_sender: true): anyone who knows the number can trigger it", if t.kind() == "call" { "calls" } else { "SMS" }),
                    );
                }
            }
            (false, true) => {
                if let Some(n) = any_node {
                    self.sink.warning(
                        n.loc,
                        format!(
                            "`allow_any_sender` has no effect on a `{}` trigger",
                            t.kind()
                        ),
                    );
                }
            }
            (true, false) => {
                if self.ctx.modems.is_empty() {
                    // Validated on their own: the allowlist is not known.
                    return;
                }
                if self.ctx.allow_senders.is_empty() {
                    self.sink.warning(
                        when.loc,
                        format!("{what} can never run: `allow_senders` in atmate.yaml is empty (add the senders, or set `allow_any_sender: true`)"),
                    );
                    return;
                }
                let from = match t {
                    Trigger::Sms {
                        from: Some(SenderMatch::Exact(n)),
                        ..
                    }
                    | Trigger::Call {
                        from: Some(SenderMatch::Exact(n)),
                    } => n.clone(),
                    _ => Vec::new(),
                };
                let allowed: Vec<String> = self
                    .ctx
                    .allow_senders
                    .iter()
                    .map(|s| normalize_sender(s))
                    .collect();
                for n in from {
                    if !allowed.contains(&n) {
                        self.sink.warning(
                            when.loc,
                            format!("{what} listens for `{n}`, which is not in `allow_senders`, so it never runs for it"),
                        );
                    }
                }
            }
            (false, false) => {}
        }
    }

    /// Warn about objects a template reads that nothing provides (`balnce.text`, or a
    /// saved value used before the step that saves it).
    fn check_names(&mut self, t: &Trigger, rule_if: Option<(&Condition, &Node)>, steps: &[Step]) {
        let mut known: Vec<String> = ["event", "match", "modem", "rule", t.event_kind()]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let later: Vec<String> = steps.iter().filter_map(|s| s.save_as.clone()).collect();
        let report = |sink: &mut Sink<'_>, objs: Vec<String>, loc: yaml::Loc, known: &[String]| {
            for o in objs {
                if known.contains(&o) {
                    continue;
                }
                let msg = if later.contains(&o) {
                    format!(
                        "`{o}` is used before the action that saves it (`save_as: {o}`) has run"
                    )
                } else {
                    let cands: Vec<&str> = known.iter().chain(&later).map(String::as_str).collect();
                    match yaml::suggest(&o, &cands) {
                        Some(s) => format!("`{o}` is not known here; did you mean `{s}`?"),
                        None => format!(
                            "`{o}` is not known here (known: {}); expressions fail when they read it",
                            known.join(", ")
                        ),
                    }
                };
                sink.warning(loc, msg);
            }
        };
        if let Some((c, n)) = rule_if {
            report(self.sink, c.objects(), n.loc, &known);
        }
        for s in steps {
            let loc = yaml::Loc {
                line: s.place.line,
                col: s.place.col,
                ..yaml::Loc::default()
            };
            let mut objs: Vec<String> = s
                .action
                .templates()
                .iter()
                .flat_map(|t| t.objects())
                .collect();
            if let Some(c) = &s.condition {
                objs.extend(c.objects());
            }
            objs.sort();
            objs.dedup();
            report(self.sink, objs, loc, &known);
            if let Some(name) = &s.save_as {
                known.push(name.clone());
            }
        }
    }
}

/// True when `program` exists: a path as given, or a name found in `PATH`.
fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The position (byte offset in the pattern) and the message of a regex syntax error.
///
/// The `regex` crate renders syntax errors as text: the pattern indented by four
/// spaces, a line of `^` under the offending part, and `error: <message>`. That caret
/// line is the only place the position is exposed, so it is read back from there.
fn regex_problem(pattern: &str, err: &regex::Error) -> (Option<usize>, String) {
    let text = err.to_string();
    let message = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(
            || text.lines().last().unwrap_or("").to_owned(),
            str::to_owned,
        );
    let lines: Vec<&str> = text.lines().collect();
    let caret = lines
        .iter()
        .position(|l| l.trim_start().starts_with('^') && l.trim().chars().all(|c| c == '^'));
    let at = caret.and_then(|i| {
        // Single-line patterns only: the line above the carets is the pattern itself.
        let pat_line = lines.get(i.checked_sub(1)?)?;
        if pat_line.strip_prefix("    ")? != pattern {
            return None;
        }
        let chars_before = lines[i]
            .chars()
            .take_while(|c| *c == ' ')
            .count()
            .checked_sub(4)?;
        Some(pattern.chars().take(chars_before).map(char::len_utf8).sum())
    });
    (at, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Limits;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
    }

    fn scripts() -> ScriptSet {
        ScriptSet::load_dir(&fixtures().join("scripts"), &Limits::default())
            .unwrap_or_else(|d| panic!("{}", d.render()))
    }

    fn ctx(scripts: &ScriptSet) -> ValidationContext<'_> {
        ValidationContext {
            modems: vec!["main".into(), "backup".into()],
            default_modem: Some("main".into()),
            timezone: Some(Zone::Named(chrono_tz::Europe::Berlin)),
            scripts: Some(scripts),
            allow_senders: vec!["+4917612345678".into(), "+49301234567".into()],
        }
    }

    fn yaml_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("fixture folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    }

    /// Compare (or, with `ATMATE_BLESS=1`, write) a fixture's `.expected` file.
    fn check_expected(file: &Path, got: &str, failures: &mut Vec<String>) {
        let expected_path = file.with_extension("expected");
        if std::env::var_os("ATMATE_BLESS").is_some() {
            std::fs::write(&expected_path, format!("{got}\n")).expect("bless");
            return;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != got.trim_end() {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- got\n{got}",
                file.display(),
                expected.trim_end()
            ));
        }
    }

    #[test]
    fn invalid_fixtures_give_exactly_the_expected_diagnostics() {
        let dir = fixtures().join("invalid");
        let files = yaml_files(&dir);
        assert!(!files.is_empty(), "no invalid rules fixtures found");
        let s = scripts();
        let prefix = format!("{}/", dir.display());
        let mut failures = Vec::new();
        for f in files {
            let got = match load(std::slice::from_ref(&f), &ctx(&s)) {
                Ok(_) => "(no errors)".to_owned(),
                Err(d) => d.render().replace(&prefix, ""),
            };
            check_expected(&f, &got, &mut failures);
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn valid_fixtures_load_with_exactly_the_expected_warnings() {
        let dir = fixtures().join("valid");
        let files = yaml_files(&dir);
        assert!(!files.is_empty(), "no valid rules fixtures found");
        let s = scripts();
        let prefix = format!("{}/", dir.display());
        let mut failures = Vec::new();
        for f in files {
            match load(std::slice::from_ref(&f), &ctx(&s)) {
                Ok((_, warnings)) => {
                    check_expected(&f, &warnings.render().replace(&prefix, ""), &mut failures)
                }
                Err(d) => {
                    failures.push(format!("{} should be valid:\n{}", f.display(), d.render()))
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn a_folder_loads_every_yaml_file_and_every_trigger_compiles() {
        let s = scripts();
        let (set, _) = load(&[fixtures().join("valid")], &ctx(&s))
            .unwrap_or_else(|d| panic!("{}", d.render()));
        let kinds: Vec<&str> = set.rules().iter().map(|r| r.trigger.kind()).collect();
        for k in TRIGGERS {
            assert!(kinds.contains(k), "no valid fixture uses the `{k}` trigger");
        }
        let actions: Vec<&str> = set
            .rules()
            .iter()
            .flat_map(|r| r.steps.iter().map(|s| s.action.kind()))
            .collect();
        for a in ACTIONS.iter().filter(|a| **a != "ussd_reply") {
            assert!(
                actions.contains(a),
                "no valid fixture uses the `{a}` action"
            );
        }
        assert!(set.get("disabled").is_none(), "disabled rules are left out");
        let morning = set.get("morning").expect("morning");
        assert_eq!(morning.modem, "backup");
        assert_eq!(set.get("poll").expect("poll").modem, "main");
        let Trigger::Schedule(spec) = &morning.trigger else {
            panic!("schedule expected")
        };
        assert_eq!(spec.zone(), Zone::Named(chrono_tz::Europe::Berlin));
        let caller = set.get("caller").expect("caller");
        assert!(caller.steps[0].continue_on_error);
        assert_eq!(caller.steps[0].save_as.as_deref(), Some("out"));
        assert_eq!(caller.steps[0].place.line, 51);
    }

    #[test]
    fn duplicate_names_across_files_are_errors() {
        let a = "- name: same\n  when: startup\n  do: [stop]\n";
        let b = "# b\n- name: same\n  when: startup\n  do: [stop]\n";
        let err = load_sources(
            &[(Path::new("a.yaml"), a), (Path::new("b.yaml"), b)],
            &ValidationContext::default(),
        )
        .expect_err("duplicate");
        assert_eq!(
            err.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["b.yaml:2:9: error: rule name `same` is already used (a.yaml:1); names must be unique"]
        );
    }

    #[test]
    fn missing_paths_and_errors_in_several_files_are_all_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("a.yaml"),
            "- name: a\n  when: nope\n  do: [stop]\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("b.yml"),
            "- name: b\n  when: startup\n  do: []\n",
        )
        .expect("write");
        std::fs::write(dir.path().join(".hidden.yaml"), "garbage: [").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "garbage: [").expect("write");
        let err = load(
            &[dir.path().to_path_buf(), dir.path().join("gone.yaml")],
            &ValidationContext::default(),
        )
        .expect_err("errors");
        let msgs: Vec<String> = err.0.iter().map(|d| d.message.clone()).collect();
        assert_eq!(
            msgs,
            [
                "no such rules file or folder",
                "unknown trigger `nope` (expected one of: sms, ussd, link, network, signal, schedule, every, startup, storage, call, sms_status)",
                "`do` is empty; a rule needs at least one action",
            ]
        );
    }

    #[test]
    fn several_modems_without_a_default_need_modem() {
        let ctx = ValidationContext {
            modems: vec!["a".into(), "b".into()],
            ..ValidationContext::default()
        };
        let err = load_sources(
            &[(
                Path::new("r.yaml"),
                "- name: x\n  when: startup\n  do: [stop]\n",
            )],
            &ctx,
        )
        .expect_err("ambiguous");
        assert_eq!(
            err.0[0].to_string(),
            "r.yaml:1:3: error: rule `x` must say which modem it is for (`modem: a` or `modem: b`), as several are configured and none is `default: true`"
        );
    }

    #[test]
    fn an_empty_allowlist_is_a_warning_for_sms_rules() {
        let ctx = ValidationContext {
            modems: vec!["main".into()],
            ..ValidationContext::default()
        };
        let (_, w) = load_sources(
            &[(
                Path::new("r.yaml"),
                "- name: x\n  when: sms\n  do: [stop]\n",
            )],
            &ctx,
        )
        .expect("valid");
        assert_eq!(
            w.0[0].to_string(),
            "r.yaml:2:9: warning: rule `x` can never run: `allow_senders` in atmate.yaml is empty (add the senders, or set `allow_any_sender: true`)"
        );
    }

    #[test]
    fn shipped_rules_and_scripts_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = crate::config::load_with_env(&root.join("config/atmate.yaml"), &|_| None)
            .unwrap_or_else(|d| panic!("{}", d.render()));
        let scripts = ScriptSet::load_dir(&cfg.scripts, &Limits::default())
            .unwrap_or_else(|d| panic!("{}", d.render()));
        assert!(!scripts.files().is_empty(), "no shipped scripts found");
        let ctx = ValidationContext {
            modems: cfg.modem_names(),
            default_modem: cfg.default_modem().map(|m| m.name.clone()),
            timezone: Some(Zone::Local),
            scripts: Some(&scripts),
            allow_senders: cfg.allow_senders.clone(),
        };
        let (set, warnings) = load(&cfg.rules, &ctx).unwrap_or_else(|d| panic!("{}", d.render()));
        assert!(set.len() >= 3, "the shipped examples are missing");
        for name in ["balance-every-morning", "ping", "back-online"] {
            assert!(set.get(name).is_some(), "shipped rule `{name}` missing");
        }
        assert!(
            warnings
                .0
                .iter()
                .all(|w| w.message.contains("allow_any_sender")),
            "{}",
            warnings.render()
        );
    }

    #[test]
    fn regex_errors_have_a_position() {
        let pat = "(?i)^ping(";
        let err = Regex::new(pat).expect_err("bad");
        let (at, msg) = regex_problem(pat, &err);
        assert_eq!(at, Some(9));
        assert_eq!(msg, "unclosed group");
        let pat = "a{2,1}";
        let err = Regex::new(pat).expect_err("bad");
        let (at, msg) = regex_problem(pat, &err);
        assert_eq!(at, Some(1));
        assert!(msg.contains("invalid"), "{msg}");
    }
}
