//! Rhai scripts: the sandboxed engine, the host API, loading a folder of `*.rhai`,
//! and the `on_*` hooks. Sees events and `Host`, never the port.
//!
//! - [`engine`]: [`new_engine`], the one place the sandbox is built, and [`Limits`].
//! - [`expr`]: [`Expr`], compiled expressions for rules' `if:` and `{{ … }}` templates.
//! - [`api`]: the host functions scripts call (`send_sms`, `ussd`, `at`, `store_get`,
//!   `schedule`, …) and the `env()` policy [`EnvAccess`].
//! - [`loader`]: [`ScriptSet`], loading a folder, the life of a script (top level runs
//!   once at load; each call gets a fresh scope; state lives in `store_set`).
//! - [`hooks`]: which event calls which `on_*` hook, [`ScriptSet::run_hooks`] and
//!   [`ScriptSet::call`].
//! - [`error`]: [`ScriptError`] (`path:line:col: message`).
//!
//! Scripts run on tokio's blocking pool; host calls reach the async [`Host`](crate::host::Host)
//! through a channel served by the calling future (see `bridge.rs` for why).

pub mod api;
mod bridge;
pub mod engine;
pub mod error;
pub mod expr;
pub mod hooks;
pub mod loader;

pub use api::EnvAccess;
pub use engine::{new_engine, Limits};
pub use error::{ScriptError, ScriptErrorKind};
pub use expr::{value_to_template_string, Expr};
pub use hooks::{hook_for, HookOutcome};
pub use loader::{ScriptSchedule, ScriptSet};
