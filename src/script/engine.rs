//! The one place the Rhai sandbox is built ([`new_engine`]), and the per-call context
//! (wall-clock deadline, script path, cancel flag) that the sandbox consults.
//!
//! # Sandbox
//! - operation, call-depth, string, array and map limits from [`Limits`];
//! - a wall-clock limit per call: [`on_progress`](rhai::Engine::on_progress) checks the
//!   deadline of the current call (see [`CallGuard`]) and stops the script when it has
//!   passed. `on_progress` cannot interrupt a blocking host call, so those take their
//!   own timeout from [`remaining`];
//! - `import` resolves nothing ([`DummyModuleResolver`]): the default resolver would
//!   load any file on disk;
//! - `eval` is a disabled keyword (it would run code that was never compiled, checked
//!   or reported with a place);
//! - `print`/`debug` go to `tracing` (target `atmate::script`), tagged with the
//!   script's path when known.
//!
//! Host functions are *not* registered here; see [`super::api`].
//!
//! # Why a thread-local call context
//! One engine is shared by every call (it is `Send + Sync`), but the deadline, the
//! script path and the cancel flag belong to one call. A call runs start to end on one
//! thread (a blocking-pool thread, or the caller's for expressions), and Rhai's
//! callbacks run on that same thread, so a thread-local set by [`enter_call`] for the
//! duration of the call is exact and needs no locking.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine};

/// Sandbox limits for scripts and expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations per call (each statement, expression node, loop turn…).
    /// A value of 0 is taken as 1 (Rhai reads 0 as "unlimited", which we never want).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_depth: usize,
    /// Bytes in one string. 0 is taken as 1 (see `max_operations`).
    pub max_string_size: usize,
    /// Elements in one array. 0 is taken as 1.
    pub max_array_size: usize,
    /// Entries in one object map. 0 is taken as 1.
    pub max_map_size: usize,
    /// Wall-clock time for one call, including host calls and `sleep`.
    pub wall_clock: Duration,
}

impl Default for Limits {
    /// 1 000 000 operations, depth 64, 64 KiB strings, 10 000 array/map entries, 10 s.
    fn default() -> Limits {
        Limits {
            max_operations: 1_000_000,
            max_call_depth: 64,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            wall_clock: Duration::from_secs(10),
        }
    }
}

/// How often (in operations) `on_progress` reads the clock. Reading it on every
/// operation would be correct but wasteful; 256 operations take microseconds.
const CLOCK_CHECK_EVERY: u64 = 256;

/// Build the sandboxed engine (see the module docs). No host functions.
pub fn new_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations.max(1))
        .set_max_call_levels(limits.max_call_depth)
        .set_max_string_size(limits.max_string_size.max(1))
        .set_max_array_size(limits.max_array_size.max(1))
        .set_max_map_size(limits.max_map_size.max(1));
    engine.set_module_resolver(DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.on_progress(|ops| {
        if ops % CLOCK_CHECK_EVERY == 0 {
            progress_check()
        } else {
            None
        }
    });
    engine.on_print(|text| {
        let path = current_path();
        tracing::info!(target: "atmate::script", script = %path.as_deref().unwrap_or("-"), "{text}");
    });
    engine.on_debug(|text, source, pos| {
        let path = current_path().or_else(|| source.map(str::to_owned));
        tracing::debug!(
            target: "atmate::script",
            script = %path.as_deref().unwrap_or("-"),
            line = pos.line().unwrap_or(0),
            "{text}"
        );
    });
    engine
}

/// What the engine knows about the call running on this thread.
struct CallState {
    deadline: Option<Instant>,
    wall_clock: Duration,
    path: Option<Arc<str>>,
    cancel: Option<Arc<AtomicBool>>,
}

thread_local! {
    static CURRENT: RefCell<Option<CallState>> = const { RefCell::new(None) };
}

/// Marks the call running on this thread; restores the previous state when dropped
/// (calls can nest: an expression evaluated while a script runs).
#[must_use = "the call context ends when the guard is dropped"]
pub struct CallGuard {
    previous: Option<CallState>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let prev = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Start a call on this thread: its wall-clock budget starts now. `path` tags log lines
/// and errors; `cancel`, when set to true by the caller, stops the script at its next
/// progress check or host call.
pub fn enter_call(
    wall_clock: Duration,
    path: Option<&Path>,
    cancel: Option<Arc<AtomicBool>>,
) -> CallGuard {
    let state = CallState {
        deadline: Instant::now().checked_add(wall_clock),
        wall_clock,
        path: path.map(|p| Arc::from(p.display().to_string())),
        cancel,
    };
    let previous = CURRENT.with(|c| c.borrow_mut().replace(state));
    CallGuard { previous }
}

/// Time left for the call on this thread (`None` when no call context is set, or the
/// budget is too large to represent). `Some(ZERO)` once the deadline has passed.
pub fn remaining() -> Option<Duration> {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|s| s.deadline)
            .map(|d| d.saturating_duration_since(Instant::now()))
    })
}

/// The script path of the call on this thread, if any.
pub fn current_path() -> Option<String> {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|s| s.path.as_deref().map(str::to_owned))
    })
}

/// True when the caller of the current call gave up on it.
pub fn cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|s| s.cancel.as_ref())
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// The sentence a wall-clock stop carries.
pub(crate) fn timeout_message() -> String {
    let budget = CURRENT.with(|c| c.borrow().as_ref().map(|s| s.wall_clock));
    match budget {
        Some(b) => format!(
            "wall-clock limit of {} exceeded",
            humantime::format_duration(b)
        ),
        None => "wall-clock limit exceeded".to_owned(),
    }
}

/// The sentence a cancelled call carries (must start with `cancelled`, see
/// `ScriptError::from_eval`).
pub(crate) const CANCELLED_MESSAGE: &str = "cancelled by the caller";

/// `Some(reason)` when the current call must stop now.
fn progress_check() -> Option<Dynamic> {
    if cancelled() {
        return Some(Dynamic::from(CANCELLED_MESSAGE.to_owned()));
    }
    match remaining() {
        Some(left) if left.is_zero() => Some(Dynamic::from(timeout_message())),
        _ => None,
    }
}

/// The error a host function returns to stop the script when its budget ran out or
/// it was cancelled (the same error `on_progress` would raise), or `None` to go on.
pub(crate) fn stop_error() -> Option<Box<rhai::EvalAltResult>> {
    progress_check().map(|token| {
        Box::new(rhai::EvalAltResult::ErrorTerminated(
            token,
            rhai::Position::NONE,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::error::{ScriptError, ScriptErrorKind};

    fn run(engine: &Engine, src: &str, wall: Duration) -> Result<Dynamic, ScriptError> {
        let _g = enter_call(wall, None, None);
        engine
            .eval::<Dynamic>(src)
            .map_err(|e| ScriptError::from_eval(&e))
    }

    #[test]
    fn endless_loop_is_stopped_by_the_operation_limit() {
        let limits = Limits {
            max_operations: 10_000,
            ..Limits::default()
        };
        let engine = new_engine(&limits);
        let err = run(&engine, "loop {}", Duration::from_secs(10)).expect_err("must stop");
        assert_eq!(err.kind, ScriptErrorKind::Limit, "{err}");
        assert!(err.message.contains("operation limit"), "{err}");
        // The engine is fine afterwards.
        let ok = run(&engine, "40 + 2", Duration::from_secs(10)).expect("ok");
        assert_eq!(ok.as_int().expect("int"), 42);
    }

    #[test]
    fn endless_loop_is_stopped_by_the_wall_clock() {
        let limits = Limits {
            max_operations: u64::MAX,
            ..Limits::default()
        };
        let engine = new_engine(&limits);
        let started = Instant::now();
        let err = run(
            &engine,
            "let i = 0; loop { i += 1; }",
            Duration::from_millis(150),
        )
        .expect_err("must stop");
        assert_eq!(err.kind, ScriptErrorKind::Timeout, "{err}");
        assert_eq!(err.message, "wall-clock limit of 150ms exceeded");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn cancel_flag_stops_the_script() {
        let engine = new_engine(&Limits {
            max_operations: u64::MAX,
            ..Limits::default()
        });
        let flag = Arc::new(AtomicBool::new(true));
        let _g = enter_call(Duration::from_secs(10), None, Some(flag));
        let err = engine.eval::<Dynamic>("loop {}").expect_err("cancelled");
        let err = ScriptError::from_eval(&err);
        assert_eq!(err.kind, ScriptErrorKind::Cancelled, "{err}");
    }

    #[test]
    fn import_and_eval_are_refused() {
        let engine = new_engine(&Limits::default());
        // `import` compiles, but resolves nothing.
        let err =
            run(&engine, r#"import "x" as x; 1"#, Duration::from_secs(1)).expect_err("no import");
        assert!(err.message.contains("module `x` not found"), "{err}");
        // `eval` is a disabled keyword: a compile error.
        let err = engine
            .compile(r#"eval("1 + 1")"#)
            .expect_err("eval disabled");
        let err = ScriptError::from_parse(&err);
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert_eq!((err.line, err.col), (1, 1), "{err}");
    }

    #[test]
    fn string_size_limit() {
        let engine = new_engine(&Limits {
            max_string_size: 100,
            ..Limits::default()
        });
        let err = run(
            &engine,
            r#"let s = "0123456789"; loop { s += s; }"#,
            Duration::from_secs(5),
        )
        .expect_err("too large");
        assert_eq!(err.kind, ScriptErrorKind::Limit, "{err}");
        assert!(err.message.contains("too large"), "{err}");
    }

    #[test]
    fn call_depth_limit() {
        let engine = new_engine(&Limits {
            max_call_depth: 8,
            ..Limits::default()
        });
        let err = run(&engine, "fn f(n) { f(n + 1) } f(0)", Duration::from_secs(5))
            .expect_err("too deep");
        assert_eq!(err.kind, ScriptErrorKind::Limit, "{err}");
    }

    #[test]
    fn guard_restores_previous_context() {
        assert!(remaining().is_none());
        {
            let _outer = enter_call(Duration::from_secs(60), Some(Path::new("a.rhai")), None);
            {
                let _inner = enter_call(Duration::from_secs(1), None, None);
                assert!(remaining().expect("set") <= Duration::from_secs(1));
                assert_eq!(current_path(), None);
            }
            assert!(remaining().expect("set") > Duration::from_secs(1));
            assert_eq!(current_path().as_deref(), Some("a.rhai"));
        }
        assert!(remaining().is_none());
    }
}
