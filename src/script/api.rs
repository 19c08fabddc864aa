//! The host API that scripts call. Registered on the engine by the script loader; the
//! sandbox itself is built by [`super::engine::new_engine`].
//!
//! | function | returns | notes |
//! |---|---|---|
//! | `send_sms(to, text)` | outbox id (int) | through the send policy (allowlist, budgets) |
//! | `ussd(code)` | map `text`, `status`, `dcs` | waits for the reply |
//! | `ussd_reply(text)` | map `text`, `status`, `dcs` | answers a menu (status 1) |
//! | `ussd_cancel()` | `()` | |
//! | `at(command)` | the response text (lines joined by `\n`) | throws on `ERROR` |
//! | `signal()` | map `csq`, `dbm` (`()` when unknown), `bars` | |
//! | `modem_info()` | map | manufacturer, model, IMEI, operator, … |
//! | `inbox(n)` | array of maps `id`, `from`, `text`, `timestamp`, `incomplete` | newest first |
//! | `store_get(key)` | the stored value, `()` when missing | persistent, shared by all scripts |
//! | `store_set(key, value)` | `()` | any value JSON can hold |
//! | `log(…)`, `log_warn(…)`, `log_error(…)` | `()` | 1–4 values joined by spaces, tagged with the script path |
//! | `now()` | RFC 3339 string in local time, e.g. `2025-03-30T08:00:00+02:00` | |
//! | `now_unix()` | seconds since 1970 (int) | for arithmetic on times |
//! | `sleep(ms)` | `()` | counts against the call's wall-clock limit; never sleeps past it |
//! | `env(name)` | string, `()` when unset | only names allowed by [`EnvAccess`] |
//! | `schedule(cron, fn_name)` | `()` | top level only; see below |
//!
//! Host calls that fail throw an error the script may `catch`, e.g.
//! `at("AT+X"): modem: ERROR`. A call that runs out of wall-clock time, or whose caller
//! gave up, ends the script (it cannot be caught).
//!
//! # `schedule(cron, fn_name)`
//! Jobs are collected when the script is loaded: the loader runs each file's top
//! level once, in the sandbox, with no host (modem and store calls are refused there
//! with a message saying to use `on_startup()`). A `schedule()` call registers
//! `fn_name` (a function of the same file taking no parameters) for the 5-field
//! crontab `cron`; the runtime checks the crontab and owns the timer. Running the top
//! level, rather than scanning the text, means a schedule computed by the script
//! (`schedule(env("ATMATE_REPORT_CRON") ?? "0 8 * * *", "report")`) works and a
//! `schedule()` inside a comment or a dead branch does not register a job.
//! Calling `schedule()` after load (inside a hook) is an error.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, ImmutableString, NativeCallContext, INT};

use super::bridge::{host_call, BridgeError, HostOp};
use super::engine::{current_path, remaining, stop_error};
use super::expr::{dynamic_to_json, json_to_dynamic};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Which environment variables `env(name)` may read.
///
/// Environment variables often hold secrets (the PIN, API tokens, `AWS_*`); a script
/// that can read them all can also send them by SMS. So by default only names starting
/// with `ATMATE_` are readable; the configuration may add prefixes or exact names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAccess {
    /// Names starting with one of these may be read.
    pub prefixes: Vec<String>,
    /// These exact names may be read.
    pub names: Vec<String>,
}

impl Default for EnvAccess {
    /// Only `ATMATE_*`.
    fn default() -> EnvAccess {
        EnvAccess {
            prefixes: vec!["ATMATE_".to_owned()],
            names: Vec::new(),
        }
    }
}

impl EnvAccess {
    /// True if `name` may be read.
    pub fn allows(&self, name: &str) -> bool {
        // The PIN and credentials are never readable, whatever the prefixes say.
        if crate::secret::is_secret_env(name) {
            return false;
        }
        self.names.iter().any(|n| n == name)
            || self
                .prefixes
                .iter()
                .any(|p| !p.is_empty() && name.starts_with(p.as_str()))
    }
}

/// One `schedule(cron, fn_name)` call seen while a script's top level ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registered {
    pub cron: String,
    pub fn_name: String,
    pub line: usize,
    pub col: usize,
}

thread_local! {
    static SCHEDULES: RefCell<Option<Vec<Registered>>> = const { RefCell::new(None) };
}

/// Run `f` (a script's top level) with `schedule()` recording into a list.
pub(crate) fn collect_schedules<R>(f: impl FnOnce() -> R) -> (R, Vec<Registered>) {
    let previous = SCHEDULES.with(|s| s.borrow_mut().replace(Vec::new()));
    let out = f();
    let got = SCHEDULES.with(|s| std::mem::replace(&mut *s.borrow_mut(), previous));
    (out, got.unwrap_or_default())
}

/// Register the whole host API on `engine`.
pub(crate) fn register(engine: &mut Engine, env: &EnvAccess) {
    register_modem(engine);
    register_store(engine);
    register_log(engine);
    register_time(engine);
    let env = Arc::new(env.clone());
    engine.register_fn("env", move |name: ImmutableString| script_env(&env, &name));
    engine.register_fn(
        "schedule",
        |ctx: NativeCallContext, cron: ImmutableString, f: ImmutableString| {
            script_schedule(&ctx, &cron, &f)
        },
    );
    engine.register_fn(
        "schedule",
        |ctx: NativeCallContext, cron: ImmutableString, f: FnPtr| {
            script_schedule(&ctx, &cron, f.fn_name())
        },
    );
}

/// Turn a bridge failure into the error the script sees.
fn fail(call: &str, e: BridgeError) -> Box<EvalAltResult> {
    match e {
        BridgeError::Unavailable => {
            let name = call.split('(').next().unwrap_or(call);
            format!(
                "{name}() is not available while the script loads (its top level runs once, \
                 without the modem); call it from a function such as on_startup()"
            )
            .into()
        }
        BridgeError::Stop(stop) => stop,
        BridgeError::Host(h) => format!("{call}: {h}").into(),
    }
}

fn call_host(call: impl FnOnce() -> String, op: HostOp) -> RhaiResult<Dynamic> {
    let v = host_call(op).map_err(|e| fail(&call(), e))?;
    json_to_dynamic(&v).map_err(|e| e.message.into())
}

fn register_modem(engine: &mut Engine) {
    engine.register_fn("send_sms", |to: ImmutableString, text: ImmutableString| {
        let v = host_call(HostOp::SendSms(to.to_string(), text.to_string()))
            .map_err(|e| fail(&format!("send_sms({to:?})"), e))?;
        v.as_i64().ok_or_else(|| -> Box<EvalAltResult> {
            format!("send_sms: unexpected answer {v}").into()
        })
    });
    engine.register_fn("ussd", |code: ImmutableString| {
        call_host(|| format!("ussd({code:?})"), HostOp::Ussd(code.to_string()))
    });
    engine.register_fn("ussd_reply", |text: ImmutableString| {
        call_host(
            || format!("ussd_reply({text:?})"),
            HostOp::UssdReply(text.to_string()),
        )
    });
    engine.register_fn("ussd_cancel", || -> RhaiResult<()> {
        host_call(HostOp::UssdCancel).map_err(|e| fail("ussd_cancel()", e))?;
        Ok(())
    });
    engine.register_fn("at", |cmd: ImmutableString| -> RhaiResult<String> {
        let v =
            host_call(HostOp::At(cmd.to_string())).map_err(|e| fail(&format!("at({cmd:?})"), e))?;
        Ok(match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
    });
    engine.register_fn("signal", || {
        call_host(|| "signal()".to_owned(), HostOp::Signal)
    });
    engine.register_fn("modem_info", || {
        call_host(|| "modem_info()".to_owned(), HostOp::ModemInfo)
    });
    engine.register_fn("inbox", |n: INT| {
        let n = usize::try_from(n).map_err(|_| -> Box<EvalAltResult> {
            format!("inbox({n}): n must not be negative").into()
        })?;
        call_host(|| format!("inbox({n})"), HostOp::Inbox(n))
    });
}

fn register_store(engine: &mut Engine) {
    engine.register_fn("store_get", |key: ImmutableString| {
        call_host(
            || format!("store_get({key:?})"),
            HostOp::StoreGet(key.to_string()),
        )
    });
    engine.register_fn(
        "store_set",
        |key: ImmutableString, value: Dynamic| -> RhaiResult<()> {
            let json = dynamic_to_json(&value).map_err(|e| -> Box<EvalAltResult> {
                format!("store_set({key:?}): {}", e.message).into()
            })?;
            host_call(HostOp::StoreSet(key.to_string(), json))
                .map_err(|e| fail(&format!("store_set({key:?})"), e))?;
            Ok(())
        },
    );
}

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

fn emit(level: Level, parts: &[&Dynamic]) {
    let text = parts
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let path = current_path();
    let script = path.as_deref().unwrap_or("-");
    match level {
        Level::Info => tracing::info!(target: "atmate::script", script = %script, "{text}"),
        Level::Warn => tracing::warn!(target: "atmate::script", script = %script, "{text}"),
        Level::Error => tracing::error!(target: "atmate::script", script = %script, "{text}"),
    }
}

fn register_log(engine: &mut Engine) {
    for (name, level) in [
        ("log", Level::Info),
        ("log_warn", Level::Warn),
        ("log_error", Level::Error),
    ] {
        engine.register_fn(name, move |a: Dynamic| emit(level, &[&a]));
        engine.register_fn(name, move |a: Dynamic, b: Dynamic| emit(level, &[&a, &b]));
        engine.register_fn(name, move |a: Dynamic, b: Dynamic, c: Dynamic| {
            emit(level, &[&a, &b, &c])
        });
        engine.register_fn(
            name,
            move |a: Dynamic, b: Dynamic, c: Dynamic, d: Dynamic| emit(level, &[&a, &b, &c, &d]),
        );
    }
}

/// How long `sleep` waits between checks of the cancel flag and the budget.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

fn script_sleep(ms: INT) -> RhaiResult<()> {
    let ms = u64::try_from(ms).map_err(|_| -> Box<EvalAltResult> {
        format!("sleep({ms}): ms must not be negative").into()
    })?;
    let want = Duration::from_millis(ms);
    let start = Instant::now();
    loop {
        if let Some(stop) = stop_error() {
            return Err(stop);
        }
        let slept = start.elapsed();
        if slept >= want {
            return Ok(());
        }
        let budget = remaining().unwrap_or(Duration::MAX);
        // Sleep in slices so that cancellation is noticed, and never past the budget:
        // when it runs out, the next turn returns the wall-clock stop.
        let slice = (want - slept).min(budget).min(SLEEP_SLICE);
        std::thread::sleep(slice);
    }
}

fn register_time(engine: &mut Engine) {
    engine.register_fn("now", || {
        chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    });
    engine.register_fn("now_unix", || -> INT { chrono::Utc::now().timestamp() });
    engine.register_fn("sleep", script_sleep);
}

fn script_env(access: &EnvAccess, name: &str) -> RhaiResult<Dynamic> {
    if !access.allows(name) {
        let allowed = access
            .prefixes
            .iter()
            .map(|p| format!("{p}*"))
            .chain(access.names.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "env({name:?}): not allowed; scripts may read only {} (environment variables often hold secrets)",
            if allowed.is_empty() { "no variables".to_owned() } else { allowed }
        )
        .into());
    }
    match std::env::var(name) {
        Ok(v) => Ok(Dynamic::from(v)),
        Err(std::env::VarError::NotPresent) => Ok(Dynamic::UNIT),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("env({name:?}): the value is not valid UTF-8").into())
        }
    }
}

fn script_schedule(ctx: &NativeCallContext, cron: &str, fn_name: &str) -> RhaiResult<()> {
    let pos = ctx.call_position();
    let reg = Registered {
        cron: cron.trim().to_owned(),
        fn_name: fn_name.to_owned(),
        line: pos.line().unwrap_or(0),
        col: pos.position().unwrap_or(0),
    };
    let recorded = SCHEDULES.with(|s| match s.borrow_mut().as_mut() {
        Some(list) => {
            list.push(reg);
            true
        }
        None => false,
    });
    if recorded {
        Ok(())
    } else {
        Err(format!(
            "schedule({cron:?}, {fn_name:?}): jobs can only be registered at the top level of a \
             script (it runs once when the script loads), not from a hook or a job"
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::UssdReply;
    use crate::host::testing::{Call, RecordingHost};
    use crate::host::{Host, HostError};
    use crate::script::loader::test_support::{load, load_with, TestHost};
    use crate::script::{Limits, ScriptErrorKind};
    use serde_json::json;

    /// Load one script and call `f()` in it.
    async fn run(
        src: &str,
        host: Arc<RecordingHost>,
    ) -> Result<serde_json::Value, crate::script::ScriptError> {
        let (_dir, set) = load(&[("t.rhai", src)]);
        let host: Arc<dyn Host> = host;
        set.call(None, "f", vec![], host).await
    }

    #[tokio::test]
    async fn send_sms_returns_the_outbox_id() {
        let host = Arc::new(RecordingHost::new());
        let v = run(
            r#"fn f() { send_sms("+4917612345678", "hi") }"#,
            host.clone(),
        )
        .await;
        assert_eq!(v, Ok(json!(1)));
        assert_eq!(
            host.sent_sms(),
            vec![("+4917612345678".into(), "hi".into())]
        );
    }

    #[tokio::test]
    async fn ussd_returns_a_map_and_menus_work() {
        let host = Arc::new(RecordingHost::new());
        host.ussd_replies.lock().expect("lock").insert(
            "*100#".into(),
            UssdReply {
                text: "Guthaben: 5,00 EUR".into(),
                status: 1,
                dcs: 15,
            },
        );
        let v = run(
            r#"fn f() {
                let r = ussd("*100#");
                let m = ussd_reply("1");
                ussd_cancel();
                [r.text, r.status, r.dcs, m.status]
            }"#,
            host.clone(),
        )
        .await;
        assert_eq!(v, Ok(json!(["Guthaben: 5,00 EUR", 1, 15, 0])));
        assert_eq!(
            host.calls(),
            vec![
                Call::Ussd("*100#".into()),
                Call::UssdReply("1".into()),
                Call::UssdCancel
            ]
        );
    }

    #[tokio::test]
    async fn at_returns_text_and_throws_on_error() {
        let host = Arc::new(RecordingHost::new());
        {
            let mut at = host.at_replies.lock().expect("lock");
            at.insert("AT+CGMI".into(), Ok("ZTE CORPORATION".into()));
            at.insert("AT+BAD".into(), Err(HostError::Modem("ERROR".into())));
        }
        let v = run(r#"fn f() { at("AT+CGMI") }"#, host.clone()).await;
        assert_eq!(v, Ok(json!("ZTE CORPORATION")));
        let e = run("fn f() {\n  at(\"AT+BAD\")\n}", host.clone())
            .await
            .expect_err("throws");
        assert_eq!(e.kind, ScriptErrorKind::Runtime);
        assert_eq!(e.line, 2);
        assert_eq!(e.message, r#"at("AT+BAD"): modem: ERROR"#);
        // The error can be caught.
        let v = run(
            r#"fn f() { let r = (); try { at("AT+BAD") } catch (err) { r = `caught: ${err}` } r }"#,
            host,
        )
        .await;
        assert_eq!(v, Ok(json!(r#"caught: at("AT+BAD"): modem: ERROR"#)));
    }

    #[tokio::test]
    async fn signal_modem_info_and_inbox() {
        let host = Arc::new(RecordingHost::new());
        *host.csq.lock().expect("lock") = 99;
        let v = run(
            r#"fn f() { let s = signal(); [s.csq, s.dbm, s.bars, modem_info().model, inbox(5).len()] }"#,
            host.clone(),
        )
        .await;
        assert_eq!(v, Ok(json!([99, null, 0, "MF667", 0])));
        let e = run("fn f() { inbox(-1) }", host)
            .await
            .expect_err("negative");
        assert!(e.message.contains("must not be negative"), "{e}");
    }

    #[tokio::test]
    async fn inbox_entries_are_maps() {
        let entry = |id: i64, text: &str| crate::host::InboxEntry {
            id,
            from: "+4917612345678".into(),
            text: text.into(),
            timestamp: "2025-01-06T08:00:00+01:00".into(),
            incomplete: false,
        };
        let host = Arc::new(TestHost {
            inbox: vec![entry(9, "newest"), entry(8, "older"), entry(7, "oldest")],
            ..TestHost::default()
        });
        let (_dir, set) = load(&[(
            "t.rhai",
            r#"fn f() { let m = inbox(2); [m.len(), m[0].id, m[0].text, m[1].from, m[1].incomplete] }"#,
        )]);
        let v = set.call(None, "f", vec![], host).await;
        assert_eq!(v, Ok(json!([2, 9, "newest", "+4917612345678", false])));
    }

    #[tokio::test]
    async fn a_refused_send_is_a_catchable_error() {
        let host = Arc::new(TestHost {
            send_error: Some(HostError::Policy("sms_per_hour limit of 30 reached".into())),
            ..TestHost::default()
        });
        let (_dir, set) = load(&[(
            "t.rhai",
            "fn f() {\n  send_sms(\"+49\", \"x\")\n}\nfn g() { let r = \"sent\"; try { send_sms(\"+49\", \"x\"); } catch (e) { log_warn(e); r = \"not sent\"; } r }",
        )]);
        let e = set
            .call(None, "f", vec![], host.clone())
            .await
            .expect_err("refused");
        assert_eq!(
            e.message,
            r#"send_sms("+49"): refused: sms_per_hour limit of 30 reached"#
        );
        assert_eq!(e.line, 2);
        assert_eq!(
            set.call(None, "g", vec![], host).await,
            Ok(json!("not sent"))
        );
    }

    #[tokio::test]
    async fn store_get_and_set() {
        let host = Arc::new(RecordingHost::new());
        let v = run(
            r#"fn f() {
                let before = store_get("k");
                store_set("k", #{n: 1, list: [1, "a"]});
                [before, store_get("k").list[1]]
            }"#,
            host.clone(),
        )
        .await;
        assert_eq!(v, Ok(json!([null, "a"])));
        assert_eq!(
            host.kv.lock().expect("lock").get("k"),
            Some(&json!({"n": 1, "list": [1, "a"]}))
        );
    }

    #[tokio::test]
    async fn log_now_and_sleep() {
        let host = Arc::new(RecordingHost::new());
        let v = run(
            r#"fn f() {
                log("one");
                log_warn("two", 2);
                log_error("three", 3, #{a: 1}, [4]);
                let t0 = now_unix();
                sleep(20);
                [now(), now_unix() - t0 < 5]
            }"#,
            host,
        )
        .await
        .expect("runs");
        let stamp = v[0].as_str().expect("string");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert_eq!(v[1], json!(true));
    }

    #[tokio::test]
    async fn env_reads_only_allowed_names() {
        // Names unique to this test: tests run in parallel in one process.
        std::env::set_var("ATMATE_TEST_ENV_API", "yes");
        std::env::set_var("NOT_ATMATE_TEST_ENV_API", "s3cr3t-value");
        let host = Arc::new(RecordingHost::new());
        let v = run(
            r#"fn f() { [env("ATMATE_TEST_ENV_API"), env("ATMATE_TEST_ENV_UNSET")] }"#,
            host.clone(),
        )
        .await;
        assert_eq!(v, Ok(json!(["yes", null])));
        let e = run(r#"fn f() { env("NOT_ATMATE_TEST_ENV_API") }"#, host)
            .await
            .expect_err("denied");
        assert!(e.message.contains("not allowed"), "{e}");
        assert!(e.message.contains("ATMATE_*"), "{e}");
        assert!(!e.message.contains("s3cr3t-value"));
    }

    #[test]
    fn env_policy_can_be_widened() {
        std::env::set_var("ATMATE_TEST_ENV_WIDE", "1");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("e.rhai"),
            r#"schedule(env("HOME_TEST_NOT_SET_ATMATE") ?? "0 9 * * *", "f"); fn f() {}"#,
        )
        .expect("write");
        let env = EnvAccess {
            prefixes: vec![],
            names: vec!["HOME_TEST_NOT_SET_ATMATE".into()],
        };
        let set = crate::script::ScriptSet::load_dir_with(dir.path(), &Limits::default(), &env)
            .expect("loads");
        assert_eq!(set.schedules()[0].cron, "0 9 * * *");
        // With the default policy the same script fails to load.
        let (_d, r) = load_with(
            &[(
                "e.rhai",
                r#"schedule(env("HOME_TEST_NOT_SET_ATMATE") ?? "0 9 * * *", "f"); fn f() {}"#,
            )],
            &Limits::default(),
        );
        assert!(r.is_err());
    }

    #[test]
    fn print_and_log_are_tagged_with_the_script_path() {
        use std::io::Write;
        use std::sync::Mutex;

        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut engine = crate::script::new_engine(&Limits::default());
        register(&mut engine, &EnvAccess::default());
        let _one = crate::LOG_CAPTURE.blocking_lock();
        // Capture one run. tracing's call-site interest cache is global: a test on
        // another thread that logs with no subscriber can make one capture miss a
        // line, so up to three captures are taken and the first complete one checked.
        let capture = || {
            let buf = Buf::default();
            let writer = buf.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::callsite::rebuild_interest_cache();
                let _call = crate::script::engine::enter_call(
                    Duration::from_secs(1),
                    Some(std::path::Path::new("scripts/hello.rhai")),
                    None,
                );
                engine
                    .run(r#"print("from print"); log("from", "log"); debug("dbg")"#)
                    .expect("runs");
            });
            let bytes = buf.0.lock().expect("lock").clone();
            String::from_utf8(bytes).expect("utf8")
        };
        let mut out = capture();
        for _ in 0..2 {
            if out.lines().count() == 3 {
                break;
            }
            out = capture();
        }
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[0].contains("INFO") && lines[0].contains("from print"),
            "{out}"
        );
        assert!(lines[1].contains("from log"), "{out}");
        assert!(
            lines[2].contains("DEBUG") && lines[2].contains("\"dbg\""),
            "{out}"
        );
        for l in lines {
            assert!(l.contains("script=scripts/hello.rhai"), "{l}");
        }
    }

    #[test]
    fn env_access_default_is_atmate_only() {
        let a = EnvAccess::default();
        assert!(a.allows("ATMATE_REPORT_CRON"));
        // The PIN lives in ATMATE_PIN (README): never readable, nor other credentials.
        assert!(!a.allows("ATMATE_PIN"));
        assert!(!a.allows("ATMATE_TOKEN"));
        assert!(!a.allows("HOME"));
        assert!(!a.allows("atmate_x"));
        let a = EnvAccess {
            prefixes: vec![String::new()],
            names: vec!["HOME".into()],
        };
        assert!(a.allows("HOME"));
        // An empty prefix does not open everything.
        assert!(!a.allows("PATH"));
    }
}
