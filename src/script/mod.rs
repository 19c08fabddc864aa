//! Rhai scripts: the sandboxed engine, the host API, loading a folder of `*.rhai`,
//! and the `on_*` hooks. Sees events and `Host`, never the port.
//!
//! - [`engine`]: [`new_engine`], the one place the sandbox is built, and [`Limits`].
//! - [`expr`]: [`Expr`], compiled expressions for rules' `if:` and `{{ … }}` templates.
//! - [`error`]: [`ScriptError`] (`path:line:col: message`).

mod bridge;
pub mod engine;
pub mod error;
pub mod expr;

pub use engine::{new_engine, Limits};
pub use error::{ScriptError, ScriptErrorKind};
pub use expr::{value_to_template_string, Expr};
