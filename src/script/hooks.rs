//! Calling scripts: the `on_*` hooks for events, and named functions for rules'
//! `script:` actions and scheduled jobs.
//!
//! | event | hook | argument |
//! |---|---|---|
//! | `sms` | `on_sms(sms)` | the SMS map: `sms.from`, `sms.text`, `sms.id`, `sms.timestamp`, … |
//! | `ussd` | `on_ussd(reply)` | `reply.text`, `reply.status`, `reply.dcs`, `reply.network_initiated` |
//! | `link` | `on_link(state)` | `state.state` (`"up"`/`"down"`), `state.via` (`"serial"`/`"data"`), `state.reason`, … |
//! | `network` | `on_network(state)` | `state.state` (`"registered"`, `"lost"`, …), `state.operator`, … |
//! | `signal` | `on_signal(s)` | `s.csq`, `s.dbm`, `s.bars` |
//! | `startup` | `on_startup()` | — |
//! | `sms_status` | `on_sms_status(report)` | `report.status` (`"delivered"`, …), `report.message_id`, … |
//!
//! Each argument is the event's JSON as a Rhai map, including `kind` and `modem`;
//! `null` fields are `()`. A hook is called only in the files that define it (with
//! the right number of parameters). Files are called one after the other, in name
//! order, each with its own wall-clock budget, on one blocking-pool thread.

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{CallFnOptions, Dynamic, Scope};

use crate::event::Event;
use crate::host::Host;

use super::bridge::{self, run_blocking};
use super::engine::enter_call;
use super::error::ScriptError;
use super::expr::{dynamic_to_json, json_to_dynamic};
use super::loader::{Inner, ScriptSet};

/// A hook: its function name, parameter count, and what the parameter is.
pub(crate) struct HookDef {
    pub(crate) name: &'static str,
    pub(crate) arity: usize,
    pub(crate) params: &'static str,
}

/// Every hook a script may define.
pub(crate) const HOOKS: &[HookDef] = &[
    HookDef {
        name: "on_sms",
        arity: 1,
        params: "sms",
    },
    HookDef {
        name: "on_ussd",
        arity: 1,
        params: "reply",
    },
    HookDef {
        name: "on_link",
        arity: 1,
        params: "state",
    },
    HookDef {
        name: "on_network",
        arity: 1,
        params: "state",
    },
    HookDef {
        name: "on_signal",
        arity: 1,
        params: "s",
    },
    HookDef {
        name: "on_startup",
        arity: 0,
        params: "none",
    },
    HookDef {
        name: "on_sms_status",
        arity: 1,
        params: "report",
    },
];

/// The hook an event calls, if any.
pub fn hook_for(event: &Event) -> Option<&'static str> {
    Some(match event {
        Event::Sms(_) => "on_sms",
        Event::Ussd(_) => "on_ussd",
        Event::Link(_) => "on_link",
        Event::Network(_) => "on_network",
        Event::Signal(_) => "on_signal",
        Event::Startup(_) => "on_startup",
        Event::SmsStatus(_) => "on_sms_status",
        _ => return None,
    })
}

/// The result of one file's hook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookOutcome {
    /// The script file.
    pub file: PathBuf,
    /// The hook that ran (`on_sms`, …).
    pub hook: &'static str,
    /// What it returned, or where and why it failed (`file:line:col: message`).
    pub result: Result<serde_json::Value, ScriptError>,
}

/// Call `name(args)` in script `index` on this (blocking) thread.
fn call_here(
    inner: &Inner,
    index: usize,
    name: &str,
    args: Vec<Dynamic>,
    cancel: Arc<std::sync::atomic::AtomicBool>,
) -> Result<serde_json::Value, ScriptError> {
    let script = &inner.scripts[index];
    let _call = enter_call(inner.limits.wall_clock, Some(&script.path), Some(cancel));
    // A fresh scope per call, and the top level is not run again (see the loader's
    // docs): nothing survives a call except what went through store_set.
    let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
    let value = inner
        .engine
        .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &script.ast, name, args)
        .map_err(|e| {
            let mut err = ScriptError::from_eval(&e).with_path(&script.path);
            if err.line == 0 {
                // A sandbox stop carries no place of its own (see loader::fn_places).
                (err.line, err.col) = script.fn_place(name);
                err.message.push_str(&format!(" (while running `{name}`)"));
            }
            err
        })?;
    dynamic_to_json(&value).map_err(|e| e.with_path(&script.path))
}

impl ScriptSet {
    /// Run the hook for `event` in every file that defines it. One outcome per such
    /// file, in name order; empty when no file defines the hook (nothing is spawned
    /// then). A failing file does not stop the others.
    pub async fn run_hooks(&self, event: &Event, host: Arc<dyn Host>) -> Vec<HookOutcome> {
        let Some(def) = hook_for(event).and_then(|h| HOOKS.iter().find(|d| d.name == h)) else {
            return Vec::new();
        };
        let targets: Vec<usize> = self
            .inner
            .scripts
            .iter()
            .enumerate()
            .filter(|(_, s)| s.has_fn(def.name, def.arity))
            .map(|(i, _)| i)
            .collect();
        if targets.is_empty() {
            return Vec::new();
        }
        let files: Vec<PathBuf> = targets
            .iter()
            .map(|i| self.inner.scripts[*i].path.clone())
            .collect();
        let arg = if def.arity == 0 {
            Ok(None)
        } else {
            json_to_dynamic(&event.to_json()).map(Some)
        };
        let inner = self.inner.clone();
        let name = def.name;
        let ran = run_blocking(host, move |tx, cancel| {
            let _bridge = bridge::install(Some(tx));
            targets
                .into_iter()
                .map(|i| {
                    let args = match &arg {
                        Ok(a) => a.iter().cloned().collect(),
                        Err(e) => return Err(e.clone().with_path(&inner.scripts[i].path)),
                    };
                    call_here(&inner, i, name, args, cancel.clone())
                })
                .collect::<Vec<_>>()
        })
        .await;
        match ran {
            Ok(results) => files
                .into_iter()
                .zip(results)
                .map(|(file, result)| HookOutcome {
                    file,
                    hook: name,
                    result,
                })
                .collect(),
            Err(e) => files
                .into_iter()
                .map(|file| HookOutcome {
                    result: Err(e.clone().with_path(&file)),
                    file,
                    hook: name,
                })
                .collect(),
        }
    }

    /// Call `fn_name(args…)` in `file` (file name or stem), or in the only script that
    /// defines it when `file` is `None`. Arguments and the result are JSON (objects are
    /// Rhai maps inside the script, `()` comes back as `null`).
    pub async fn call(
        &self,
        file: Option<&str>,
        fn_name: &str,
        args: Vec<serde_json::Value>,
        host: Arc<dyn Host>,
    ) -> Result<serde_json::Value, ScriptError> {
        let index = self.find(file, fn_name, args.len())?;
        let args = args
            .iter()
            .map(json_to_dynamic)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.with_path(&self.inner.scripts[index].path))?;
        let inner = self.inner.clone();
        let name = fn_name.to_owned();
        run_blocking(host, move |tx, cancel| {
            let _bridge = bridge::install(Some(tx));
            call_here(&inner, index, &name, args, cancel)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SmsReceived, StartupEvent, TextEncoding};
    use crate::host::testing::{Call, RecordingHost};
    use crate::script::engine::Limits;
    use crate::script::error::ScriptErrorKind;
    use crate::script::loader::test_support::{load, load_with};
    use serde_json::json;

    pub(crate) fn sms(from: &str, text: &str) -> Event {
        Event::Sms(SmsReceived {
            modem: "main".into(),
            id: 7,
            from: from.into(),
            text: text.into(),
            timestamp: None,
            smsc: None,
            encoding: TextEncoding::Gsm7,
            class: None,
            parts: 1,
            incomplete: false,
        })
    }

    #[tokio::test]
    async fn hook_runs_only_where_defined() {
        let (dir, set) = load(&[
            (
                "a_reply.rhai",
                "fn on_sms(sms) { send_sms(sms.from, `pong to ${sms.text}`); sms.id }",
            ),
            ("b_other.rhai", "fn on_startup() { log(\"up\") }"),
        ]);
        let host = Arc::new(RecordingHost::new());
        let out = set
            .run_hooks(&sms("+4917612345678", "ping"), host.clone())
            .await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].file, dir.path().join("a_reply.rhai"));
        assert_eq!(out[0].hook, "on_sms");
        assert_eq!(out[0].result, Ok(json!(7)));
        assert_eq!(
            host.sent_sms(),
            vec![("+4917612345678".to_owned(), "pong to ping".to_owned())]
        );

        let startup = Event::Startup(StartupEvent {
            modem: "main".into(),
        });
        let out = set.run_hooks(&startup, host.clone()).await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].file, dir.path().join("b_other.rhai"));
        assert_eq!(out[0].result, Ok(serde_json::Value::Null));

        // No file defines on_link: nothing runs.
        let link = Event::Link(crate::event::LinkEvent {
            modem: "main".into(),
            state: crate::event::LinkState::Down,
            via: crate::event::LinkKind::Serial,
            device: None,
            reason: None,
            downtime_ms: None,
        });
        assert!(set.run_hooks(&link, host.clone()).await.is_empty());
        assert_eq!(host.calls().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_hook_is_reported_with_file_and_line_and_others_run() {
        let (dir, set) = load(&[
            (
                "a.rhai",
                "fn on_sms(sms) {\n  let n = sms.text.len();\n  throw `bad ${n}`;\n}",
            ),
            (
                "b.rhai",
                "fn on_sms(sms) { helper(sms) }\nfn helper(s) {\n  s.nope.deeper\n}",
            ),
            (
                "c.rhai",
                "fn on_sms(sms) { send_sms(\"+1\", \"still here\") }",
            ),
        ]);
        let host = Arc::new(RecordingHost::new());
        let out = set.run_hooks(&sms("+49", "hello"), host.clone()).await;
        assert_eq!(out.len(), 3);
        let a = out[0].result.clone().expect_err("throws");
        assert_eq!(
            a.to_string(),
            format!("{}:3:3: bad 5", dir.path().join("a.rhai").display())
        );
        let b = out[1].result.clone().expect_err("fails");
        assert_eq!(b.path.as_deref(), Some(dir.path().join("b.rhai").as_path()));
        assert_eq!(b.line, 3, "{b}");
        assert!(b.message.contains("(in `helper`)"), "{b}");
        assert_eq!(out[2].result, Ok(json!(1)));
        assert_eq!(host.sent_sms().len(), 1);
    }

    #[tokio::test]
    async fn endless_loop_is_stopped_and_the_next_call_works() {
        let limits = Limits {
            max_operations: 100_000,
            ..Limits::default()
        };
        let (dir, set) = load_with(
            &[(
                "spin.rhai",
                "fn spin() {\n  let n = 0;\n  loop { n += 1; }\n}\nfn ok(x) { x + 1 }",
            )],
            &limits,
        );
        let set = set.expect("loads");
        let host: Arc<dyn Host> = Arc::new(RecordingHost::new());
        let err = set
            .call(Some("spin"), "spin", vec![], host.clone())
            .await
            .expect_err("stopped");
        assert_eq!(err.kind, ScriptErrorKind::Limit, "{err}");
        assert_eq!(
            err.path.as_deref(),
            Some(dir.path().join("spin.rhai").as_path())
        );
        // Rhai gives sandbox stops no place; we point at the function that ran.
        assert_eq!((err.line, err.col), (1, 1), "{err}");
        assert!(err.message.ends_with("(while running `spin`)"), "{err}");
        let ok = set
            .call(None, "ok", vec![json!(41)], host)
            .await
            .expect("works");
        assert_eq!(ok, json!(42));
    }

    #[tokio::test]
    async fn wall_clock_stops_a_sleep_loop() {
        let limits = Limits {
            wall_clock: std::time::Duration::from_millis(300),
            ..Limits::default()
        };
        let (_dir, set) = load_with(&[("s.rhai", "fn nap() { loop { sleep(100); } }")], &limits);
        let set = set.expect("loads");
        let started = std::time::Instant::now();
        let err = set
            .call(None, "nap", vec![], Arc::new(RecordingHost::new()))
            .await
            .expect_err("stopped");
        let took = started.elapsed();
        assert_eq!(err.kind, ScriptErrorKind::Timeout, "{err}");
        assert!(err.message.contains("wall-clock limit of 300ms"), "{err}");
        assert!(took >= std::time::Duration::from_millis(290), "{took:?}");
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn one_sleep_longer_than_the_budget_is_cut_short() {
        let limits = Limits {
            wall_clock: std::time::Duration::from_millis(200),
            ..Limits::default()
        };
        let (_dir, set) = load_with(
            &[("s.rhai", "fn nap() { sleep(60000); \"woke\" }")],
            &limits,
        );
        let started = std::time::Instant::now();
        let err = set
            .expect("loads")
            .call(None, "nap", vec![], Arc::new(RecordingHost::new()))
            .await
            .expect_err("stopped");
        assert_eq!(err.kind, ScriptErrorKind::Timeout);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[tokio::test]
    async fn state_survives_calls_only_through_the_store() {
        let (_dir, set) = load(&[(
            "count.rhai",
            "let global_counter = 100;\n\
             fn bump() {\n\
               let n = store_get(\"count\") ?? 0;\n\
               store_set(\"count\", n + 1);\n\
               n + 1\n\
             }\n\
             fn sees_top_level() { is_def_var(\"global_counter\") }",
        )]);
        let host = Arc::new(RecordingHost::new());
        for expected in 1..=3 {
            let v = set
                .call(None, "bump", vec![], host.clone())
                .await
                .expect("bump");
            assert_eq!(v, json!(expected));
        }
        assert_eq!(host.kv.lock().expect("lock").get("count"), Some(&json!(3)));
        let v = set
            .call(None, "sees_top_level", vec![], host)
            .await
            .expect("call");
        assert_eq!(v, json!(false));
    }

    #[tokio::test]
    async fn call_errors_for_unknown_functions() {
        let (_dir, set) = load(&[("a.rhai", "fn f(x) { x }"), ("b.rhai", "fn f(x) { x }")]);
        let host: Arc<dyn Host> = Arc::new(RecordingHost::new());
        let e = set
            .call(None, "f", vec![json!(1)], host.clone())
            .await
            .expect_err("ambiguous");
        assert_eq!(e.kind, ScriptErrorKind::NotFound);
        let e = set
            .call(Some("a"), "f", vec![], host.clone())
            .await
            .expect_err("arity");
        assert_eq!(e.kind, ScriptErrorKind::NotFound);
        assert!(e.message.contains("taking 0 parameter"), "{e}");
        let v = set
            .call(Some("b.rhai"), "f", vec![json!({"x": [1, null]})], host)
            .await
            .expect("call");
        assert_eq!(v, json!({"x": [1, null]}));
    }

    #[tokio::test]
    async fn schedule_from_a_hook_is_an_error() {
        let (_dir, set) = load(&[(
            "s.rhai",
            "fn on_startup() { schedule(\"* * * * *\", \"on_startup\") }",
        )]);
        let out = set
            .run_hooks(
                &Event::Startup(StartupEvent { modem: "m".into() }),
                Arc::new(RecordingHost::new()),
            )
            .await;
        let e = out[0].result.clone().expect_err("refused");
        assert!(
            e.message.contains("only be registered at the top level"),
            "{e}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hooks_and_calls_work_on_the_multi_thread_runtime() {
        let (_dir, set) = load(&[(
            "m.rhai",
            "fn on_sms(sms) { at(\"AT+CSQ\"); send_sms(sms.from, \"ok\") }\nfn sig() { signal().dbm }",
        )]);
        let host = Arc::new(RecordingHost::new());
        let out = set.run_hooks(&sms("+49", "x"), host.clone()).await;
        assert!(out[0].result.is_ok(), "{:?}", out[0].result);
        assert_eq!(
            host.calls(),
            vec![
                Call::At("AT+CSQ".into()),
                Call::SendSms("+49".into(), "ok".into())
            ]
        );
        assert_eq!(set.call(None, "sig", vec![], host).await, Ok(json!(-77)));
    }

    /// A script as a user would write it: a reply hook, a daily job, state in the store.
    const EXAMPLE: &str = r#"
// Reply to "status" with the signal and the balance; report the balance every morning.
schedule("0 8 * * *", "morning_report");

// Functions do not see top-level variables, so constants are functions.
fn owner() { "+4917612345678" }

fn on_sms(sms) {
    let text = sms.text.to_lower();
    text.trim();
    if text == "status" {
        let s = signal();
        let b = ussd("*100#");
        send_sms(sms.from, `signal ${s.dbm} dBm, ${b.text}`);
    }
}

fn morning_report() {
    let b = ussd("*100#");
    let last = store_get("last_balance");
    store_set("last_balance", b.text);
    if last != b.text {
        send_sms(owner(), `Balance: ${b.text}`);
    }
    b.text
}
"#;

    #[tokio::test]
    async fn an_example_script_works_end_to_end() {
        let (_dir, set) = load(&[("status.rhai", EXAMPLE)]);
        assert_eq!(set.schedules().len(), 1);
        assert_eq!(
            set.schedules()[0].job_name(),
            "script:status:morning_report"
        );
        let host = Arc::new(RecordingHost::new());
        host.ussd_replies.lock().expect("lock").insert(
            "*100#".into(),
            crate::event::UssdReply {
                text: "Guthaben: 5,00 EUR".into(),
                status: 0,
                dcs: 15,
            },
        );
        let out = set
            .run_hooks(&sms("+4915112345678", " Status "), host.clone())
            .await;
        assert!(out[0].result.is_ok(), "{:?}", out[0].result);
        let out = set
            .run_hooks(&sms("+4915112345678", "hello"), host.clone())
            .await;
        assert!(out[0].result.is_ok());
        for _ in 0..2 {
            let v = set
                .call(Some("status"), "morning_report", vec![], host.clone())
                .await;
            assert_eq!(v, Ok(json!("Guthaben: 5,00 EUR")));
        }
        assert_eq!(
            host.sent_sms(),
            vec![
                (
                    "+4915112345678".to_owned(),
                    "signal -77 dBm, Guthaben: 5,00 EUR".to_owned()
                ),
                // Sent once: the second report saw the same balance in the store.
                (
                    "+4917612345678".to_owned(),
                    "Balance: Guthaben: 5,00 EUR".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn every_hook_has_an_event() {
        for h in HOOKS {
            assert!(h.name.starts_with("on_"));
        }
        assert_eq!(hook_for(&sms("a", "b")), Some("on_sms"));
        assert_eq!(
            hook_for(&Event::Schedule(crate::event::ScheduleEvent {
                job: "x".into()
            })),
            None
        );
    }
}
