//! Running a rule's steps: each action against the `Host`, `save_as`, step conditions,
//! `continue_on_error`, `stop`, and the `run` action's child process.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::model::{Action, Arg, LogLevel, Rule, Step};
use super::template::{context_name, user_message, Template, MATCH_VAR};
use crate::event::Event;
use crate::host::Host;
use crate::script::{value_to_template_string, ScriptSet};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Still running.
    Running,
    /// Every step ran (failures with `continue_on_error` included).
    Ok,
    /// A `stop` action ended it.
    Stopped {
        /// The `stop` action's reason, if it gave one.
        reason: Option<String>,
    },
    /// An action failed and ended it.
    Failed {
        /// `file:line` of the action.
        at: String,
        /// The action (`sms`, `run`, …).
        action: String,
        /// What went wrong.
        error: String,
    },
    /// Cancelled (`mode: restart`, or shutdown).
    Cancelled,
}

/// Everything one run needs.
pub(crate) struct Run {
    pub rule: Arc<Rule>,
    pub event: Event,
    /// The expression context (`event`, the kind, `match`, `rule`, saved values, `modem`).
    pub vars: Value,
    pub host: Arc<dyn Host>,
    pub scripts: Option<ScriptSet>,
}

enum Flow {
    Next,
    Stop(Option<String>),
}

/// The most of a program's stdout kept for `save_as` (the log gets every line).
const MAX_SAVED_OUTPUT: usize = 64 * 1024;

/// Longer output lines are cut (in characters) before they go to the log.
const MAX_LOGGED_LINE: usize = 2000;

/// The context variables for an event: `event`, the event under its kind's name,
/// `rule`, and the regex captures as `match`.
pub(crate) fn base_vars(rule: &Rule, event: &Event, captures: Option<Value>) -> Value {
    let ev = event.to_json();
    let mut m = Map::new();
    m.insert(context_name(event.kind()).to_owned(), ev.clone());
    m.insert("event".to_owned(), ev);
    m.insert("rule".to_owned(), json!({ "name": rule.name }));
    m.insert(
        MATCH_VAR.to_owned(),
        captures.unwrap_or_else(|| Value::Object(Map::new())),
    );
    Value::Object(m)
}

/// `modem` for expressions: the modem's facts, its name and its signal.
pub(crate) async fn modem_vars(host: &dyn Host, name: &str) -> Value {
    let mut m = match host.modem_info().await {
        Ok(Value::Object(m)) => m,
        Ok(_) => Map::new(),
        Err(e) => {
            tracing::warn!(target: "atmate::rules", modem = %name, "modem_info failed: {e}");
            Map::new()
        }
    };
    m.insert("name".into(), Value::String(name.to_owned()));
    let signal = match host.signal().await {
        Ok(s) => json!({ "csq": s.csq, "dbm": s.dbm, "bars": s.bars }),
        Err(e) => {
            tracing::warn!(target: "atmate::rules", modem = %name, "signal failed: {e}");
            Value::Null
        }
    };
    m.insert("signal".into(), signal);
    Value::Object(m)
}

fn set_var(vars: &mut Value, name: &str, value: Value) {
    if let Some(m) = vars.as_object_mut() {
        m.insert(name.to_owned(), value);
    }
}

impl Run {
    /// Run every step; returns how the run ended.
    pub(crate) async fn execute(mut self) -> RunOutcome {
        let rule = self.rule.clone();
        for step in &rule.steps {
            let mentions_modem = step.condition.as_ref().is_some_and(|c| c.mentions("modem"))
                || step.action.templates().iter().any(|t| t.mentions("modem"));
            if mentions_modem {
                let m = modem_vars(self.host.as_ref(), &rule.modem).await;
                set_var(&mut self.vars, "modem", m);
            }
            if let Some(c) = &step.condition {
                match c.eval(&self.vars) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(target: "atmate::rules", rule = %rule.name, at = %step.place, "`{}` skipped: its `if` is false", step.action.kind());
                        continue;
                    }
                    Err(e) => {
                        let e = user_message(&e);
                        if let Some(out) = self.failed(step, format!("its `if` failed: {e}")) {
                            return out;
                        }
                        continue;
                    }
                }
            }
            match self.action(step).await {
                Ok(Flow::Next) => {}
                Ok(Flow::Stop(reason)) => {
                    tracing::info!(target: "atmate::rules", rule = %rule.name, at = %step.place, "stopped{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default());
                    return RunOutcome::Stopped { reason };
                }
                Err(e) => {
                    if let Some(out) = self.failed(step, e) {
                        return out;
                    }
                }
            }
        }
        RunOutcome::Ok
    }

    /// Log a failed step; the outcome when it ends the run. A failed step that goes on
    /// (`continue_on_error`) saves `{ error: "…" }`, so later templates can read
    /// `x.error` and `x.text` is simply empty.
    fn failed(&mut self, step: &Step, error: String) -> Option<RunOutcome> {
        let kind = step.action.kind();
        if step.continue_on_error {
            tracing::warn!(target: "atmate::rules", rule = %self.rule.name, at = %step.place, "`{kind}` failed: {error} (continuing: continue_on_error)");
            self.save(step, json!({ "error": error }));
            None
        } else {
            tracing::warn!(target: "atmate::rules", rule = %self.rule.name, at = %step.place, "`{kind}` failed: {error}");
            Some(RunOutcome::Failed {
                at: step.place.to_string(),
                action: kind.to_owned(),
                error,
            })
        }
    }

    fn render(&self, t: &Template) -> Result<String, String> {
        t.render(&self.vars)
            .map_err(|e| format!("template `{}`: {e}", t.source()))
    }

    fn save(&mut self, step: &Step, value: Value) {
        if let Some(name) = &step.save_as {
            set_var(&mut self.vars, name, value);
        }
    }

    async fn action(&mut self, step: &Step) -> Result<Flow, String> {
        let host = self.host.clone();
        match &step.action {
            Action::Sms { to, text } => {
                let to = self.render(to)?;
                let text = self.render(text)?;
                if to.trim().is_empty() {
                    return Err("the recipient is empty".into());
                }
                host.send_sms(to.trim(), &text)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Action::Ussd { code } => {
                let code = self.render(code)?;
                let r = host.ussd(code.trim()).await.map_err(|e| e.to_string())?;
                self.save(
                    step,
                    json!({ "text": r.text, "status": r.status, "dcs": r.dcs }),
                );
            }
            Action::UssdReply { text } => {
                let text = self.render(text)?;
                let r = host.ussd_reply(&text).await.map_err(|e| e.to_string())?;
                self.save(
                    step,
                    json!({ "text": r.text, "status": r.status, "dcs": r.dcs }),
                );
            }
            Action::At { command } => {
                let command = self.render(command)?;
                let text = host.at(command.trim()).await.map_err(|e| e.to_string())?;
                self.save(step, json!({ "text": text }));
            }
            Action::Script {
                file,
                function,
                args,
            } => {
                let Some(scripts) = self.scripts.clone() else {
                    return Err("no scripts are loaded".into());
                };
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(match a {
                        Arg::Template(t) => t.render_value(&self.vars).map_err(|e| {
                            format!("argument `{}`: {}", t.source(), user_message(&e))
                        })?,
                        Arg::Value(v) => v.clone(),
                    });
                }
                let result = scripts
                    .call(file.as_deref(), function, values, host)
                    .await
                    .map_err(|e| e.to_string())?;
                self.save(step, result);
            }
            Action::Run {
                program,
                args,
                timeout,
            } => {
                let mut argv = Vec::with_capacity(args.len());
                for a in args {
                    argv.push(self.render(a)?);
                }
                let env = run_env(&self.rule, &self.event, &self.vars);
                let (code, stdout) =
                    run_program(&self.rule.name, program, &argv, &env, *timeout).await?;
                self.save(step, json!({ "text": stdout, "code": code }));
            }
            Action::Log { level, message } => {
                let msg = self.render(message)?;
                let rule = &self.rule.name;
                match level {
                    LogLevel::Debug => {
                        tracing::debug!(target: "atmate::rules", rule = %rule, "{msg}")
                    }
                    LogLevel::Info => {
                        tracing::info!(target: "atmate::rules", rule = %rule, "{msg}")
                    }
                    LogLevel::Warn => {
                        tracing::warn!(target: "atmate::rules", rule = %rule, "{msg}")
                    }
                    LogLevel::Error => {
                        tracing::error!(target: "atmate::rules", rule = %rule, "{msg}")
                    }
                }
            }
            Action::Wait(d) => tokio::time::sleep(*d).await,
            Action::Recovery(on) => host.set_recovery(*on).await.map_err(|e| e.to_string())?,
            Action::Stop { reason } => {
                let reason = match reason {
                    Some(t) => Some(self.render(t)?),
                    None => None,
                };
                return Ok(Flow::Stop(reason));
            }
        }
        Ok(Flow::Next)
    }
}

/// The environment of a `run` child: `ATMATE_EVENT` (kind), `ATMATE_RULE`,
/// `ATMATE_MODEM`, `ATMATE_EVENT_JSON`, one `ATMATE_<KIND>_<FIELD>` per event field
/// (`ATMATE_SMS_FROM`, `ATMATE_SMS_TEXT`; maps and lists as JSON; nulls left out),
/// `ATMATE_MATCH_<NAME>` / `ATMATE_MATCH_<N>` for the regex captures and
/// `ATMATE_SAVED_<NAME>` for saved values (their `text`, or JSON).
pub(crate) fn run_env(rule: &Rule, event: &Event, vars: &Value) -> Vec<(String, String)> {
    let kind = event.kind();
    let ev = event.to_json();
    let mut env = vec![
        ("ATMATE_EVENT".to_owned(), kind.to_owned()),
        ("ATMATE_RULE".to_owned(), rule.name.clone()),
        (
            "ATMATE_MODEM".to_owned(),
            event.modem().unwrap_or(&rule.modem).to_owned(),
        ),
        ("ATMATE_EVENT_JSON".to_owned(), ev.to_string()),
    ];
    let prefix = format!("ATMATE_{}_", kind.to_ascii_uppercase());
    if let Value::Object(fields) = &ev {
        for (k, v) in fields {
            if k == "kind" || v.is_null() {
                continue;
            }
            env.push((
                format!("{prefix}{}", env_name(k)),
                value_to_template_string(v),
            ));
        }
    }
    if let Some(Value::Object(caps)) = vars.get(MATCH_VAR) {
        for (k, v) in caps {
            // Numbered groups appear as `gN` and `N`; export them once, as N.
            if v.is_null() || (k.starts_with('g') && k[1..].chars().all(|c| c.is_ascii_digit())) {
                continue;
            }
            env.push((
                format!("ATMATE_MATCH_{}", env_name(k)),
                value_to_template_string(v),
            ));
        }
    }
    for step in &rule.steps {
        if let Some(name) = &step.save_as {
            if let Some(v) = vars.get(name) {
                let text = match v.get("text") {
                    Some(Value::String(s)) => s.clone(),
                    _ => value_to_template_string(v),
                };
                env.push((format!("ATMATE_SAVED_{}", env_name(name)), text));
            }
        }
    }
    env.dedup_by(|a, b| a.0 == b.0);
    // A NUL cannot be passed in the environment; a message could contain one.
    for (_, v) in &mut env {
        if v.contains('\0') {
            *v = v.replace('\0', "");
        }
    }
    env
}

fn env_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Kills the child's whole process group when dropped while armed: on timeout, and
/// when the run is cancelled (`mode: restart`) while the program runs.
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Run `program` with `args` (never through a shell), log its output lines tagged with
/// the rule, and return its exit code and stdout (trailing newline removed). A
/// non-zero exit, a signal, or the timeout is an error; on timeout the program and
/// everything it started are killed.
pub(crate) async fn run_program(
    rule: &str,
    program: &str,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(i32, String), String> {
    let mut cmd = tokio::process::Command::new(program);
    // The PIN (and anything named like a credential) stays out of child programs.
    for k in crate::secret::secret_env_names() {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout can kill what it started as well.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let mut guard = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let (out, (), status) = tokio::join!(
            read_lines(rule, program, "stdout", stdout, true),
            async {
                read_lines(rule, program, "stderr", stderr, false).await;
            },
            child.wait()
        );
        (out, status)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((out, status)) => {
            guard.0 = None;
            let status = status.map_err(|e| format!("waiting for `{program}`: {e}"))?;
            let mut out = out;
            if out.ends_with('\n') {
                out.pop();
            }
            match status.code() {
                Some(0) => Ok((0, out)),
                Some(code) => Err(format!("`{program}` exited with status {code}")),
                None => Err(format!("`{program}` was killed by a signal")),
            }
        }
        Err(_) => {
            drop(guard);
            let _ = child.kill().await;
            Err(format!(
                "`{program}` timed out after {} and was killed",
                humantime::format_duration(timeout)
            ))
        }
    }
}

async fn read_lines(
    rule: &str,
    program: &str,
    stream: &str,
    pipe: Option<impl AsyncRead + Unpin>,
    keep: bool,
) -> String {
    let mut kept = String::new();
    let Some(pipe) = pipe else {
        return kept;
    };
    // Bytes, not `lines()`: a program printing invalid UTF-8 must still be drained, or
    // it blocks on a full pipe until the timeout kills it.
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        let shown = match line.char_indices().nth(MAX_LOGGED_LINE) {
            Some((cut, _)) => format!("{}… ({} bytes)", &line[..cut], line.len()),
            None => line.to_owned(),
        };
        if stream == "stderr" {
            tracing::warn!(target: "atmate::rules", rule = %rule, program = %program, stream, "{shown}");
        } else {
            tracing::info!(target: "atmate::rules", rule = %rule, program = %program, stream, "{shown}");
        }
        if keep && kept.len() + line.len() < MAX_SAVED_OUTPUT {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::event::{SmsReceived, TextEncoding};
    use crate::rules::load::{load_sources, ValidationContext};

    fn process_state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) S …`: the state follows the last `)`.
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    #[tokio::test]
    async fn a_timeout_kills_everything_the_program_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let err = run_program(
            "r",
            "sh",
            &["-c".into(), script],
            &[],
            Duration::from_millis(300),
        )
        .await
        .expect_err("times out");
        assert_eq!(err, "`sh` timed out after 300ms and was killed");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        // The grandchild is gone (or a zombie waiting for init to reap it).
        let mut state = process_state(pid);
        for _ in 0..50 {
            if state.is_none_or(|s| s == 'Z') {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            state = process_state(pid);
        }
        assert!(
            state.is_none_or(|s| s == 'Z'),
            "sleep {pid} still running: {state:?}"
        );
    }

    #[tokio::test]
    async fn output_that_is_not_utf8_is_drained_and_kept_lossily() {
        let (code, out) = run_program(
            "r",
            "sh",
            &[
                "-c".into(),
                "printf 'a\\377b\\nsecond\\n'; head -c 200000 /dev/zero".into(),
            ],
            &[],
            Duration::from_secs(20),
        )
        .await
        .expect("runs");
        assert_eq!(code, 0);
        // The 200 000-byte line was drained (else `sh` would block) but is too long to keep.
        assert_eq!(out, "a\u{fffd}b\nsecond");
        assert!(out.len() <= MAX_SAVED_OUTPUT + 2);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let err = run_program("r", "/nonexistent/prog", &[], &[], Duration::from_secs(1))
            .await
            .expect_err("missing");
        assert!(
            err.starts_with("cannot start `/nonexistent/prog`: "),
            "{err}"
        );
    }

    #[test]
    fn environment_names_follow_the_event() {
        let ctx = ValidationContext::default();
        let (set, _) = load_sources(
            &[(
                Path::new("t.yaml"),
                "- name: r\n  when: { sms: { text: \"(?P<cmd>\\\\w+) (\\\\d+)\" } }\n  do:\n    - at: AT\n      save_as: res\n",
            )],
            &ctx,
        )
        .expect("valid");
        let rule = set.rules()[0].clone();
        let event = Event::Sms(SmsReceived {
            modem: "main".into(),
            id: 9,
            from: "+4917612345678".into(),
            text: "go 5\0".into(),
            timestamp: None,
            smsc: None,
            encoding: TextEncoding::Gsm7,
            class: None,
            parts: 1,
            incomplete: false,
        });
        let mut vars = base_vars(
            &rule,
            &event,
            Some(
                json!({"g0": "go 5", "0": "go 5", "g1": "go", "1": "go", "g2": "5", "2": "5", "cmd": "go"}),
            ),
        );
        set_var(&mut vars, "res", json!({"text": "OK"}));
        let env = run_env(&rule, &event, &vars);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ATMATE_EVENT"), Some("sms"));
        assert_eq!(get("ATMATE_RULE"), Some("r"));
        assert_eq!(get("ATMATE_MODEM"), Some("main"));
        assert_eq!(get("ATMATE_SMS_FROM"), Some("+4917612345678"));
        assert_eq!(get("ATMATE_SMS_TEXT"), Some("go 5"), "NUL removed");
        assert_eq!(get("ATMATE_SMS_ID"), Some("9"));
        assert_eq!(get("ATMATE_SMS_PARTS"), Some("1"));
        assert_eq!(get("ATMATE_SMS_TIMESTAMP"), None, "nulls are left out");
        assert_eq!(get("ATMATE_MATCH_CMD"), Some("go"));
        assert_eq!(get("ATMATE_MATCH_2"), Some("5"));
        assert_eq!(get("ATMATE_MATCH_G2"), None);
        assert_eq!(get("ATMATE_SAVED_RES"), Some("OK"));
        assert!(get("ATMATE_EVENT_JSON").is_some_and(|j| j.contains("\"kind\":\"sms\"")));
    }
}
