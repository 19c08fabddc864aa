//! `Expr`: a compiled Rhai *expression*, for rules' `if:` and `{{ … }}` templates.
//!
//! # What an expression sees
//! The context is a JSON object; each top-level key becomes a constant variable
//! (`sms`, `event`, `balance`, `modem`, …) holding the value as a Rhai map, array,
//! string, integer, float, bool or `()` (JSON `null`). Nested maps are reached with
//! dots: `sms.from`, `balance.text`, `modem.signal.dbm`.
//!
//! # Missing values
//! - A missing **map key** (`sms.nope`) is `()`: it prints as the empty string in a
//!   template, `sms.nope == "x"` is `false` and `sms.nope != "x"` is `true` (Rhai
//!   compares values of different types as unequal).
//! - A property of a missing value (`sms.nope.deeper`) is an error, because `()` has
//!   no properties; write `sms.nope?.deeper` (Rhai's Elvis operator) to get `()`.
//! - A missing **variable** (`balance` before any action saved it) is an error
//!   ("unknown variable `balance`"); use `is_def_var("balance")` to test for it.
//!
//! Expressions have no host functions (they cannot send or read anything), the same
//! sandbox as scripts, and a wall-clock limit of [`EXPR_WALL_CLOCK`].

use std::sync::OnceLock;
use std::time::Duration;

use rhai::{Dynamic, Engine, Scope, AST};

use super::engine::{enter_call, new_engine, Limits};
use super::error::{ScriptError, ScriptErrorKind};

/// Wall-clock limit for one expression evaluation. Expressions are one-liners over a
/// small context; a second is generous, and keeps a pathological `if:` from holding
/// up a rule's dispatch for the 10 s a script may take.
pub const EXPR_WALL_CLOCK: Duration = Duration::from_secs(1);

/// The shared expression engine (sandboxed, no host API).
fn expr_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        new_engine(&Limits {
            wall_clock: EXPR_WALL_CLOCK,
            ..Limits::default()
        })
    })
}

/// A compiled expression. Cheap to clone (the AST is shared).
#[derive(Debug, Clone)]
pub struct Expr {
    src: String,
    ast: std::sync::Arc<AST>,
}

impl Expr {
    /// Compile an expression. Errors carry 1-based line/col relative to `src`.
    /// Statements (`let`, `;`-separated sequences, loops) are not expressions and are
    /// refused.
    pub fn compile(src: &str) -> Result<Expr, ScriptError> {
        if src.trim().is_empty() {
            return Err(ScriptError::new(
                ScriptErrorKind::Compile,
                "empty expression",
            ));
        }
        let ast = expr_engine()
            .compile_expression(src)
            .map_err(|e| ScriptError::from_parse(&e))?;
        Ok(Expr {
            src: src.to_owned(),
            ast: std::sync::Arc::new(ast),
        })
    }

    /// The source text, as given to [`Expr::compile`].
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Evaluate against `ctx` (an object whose top-level keys become variables; `null`
    /// is an empty context). The result comes back as JSON: `()` is `null`, maps are
    /// objects, integers and floats are numbers.
    pub fn eval(&self, ctx: &serde_json::Value) -> Result<serde_json::Value, ScriptError> {
        let value = self.eval_dynamic(ctx)?;
        dynamic_to_json(&value)
    }

    /// Evaluate as a condition. A result that is not a bool is an error saying what it
    /// was, e.g. "condition must be true or false, got string \"abc\"".
    pub fn eval_bool(&self, ctx: &serde_json::Value) -> Result<bool, ScriptError> {
        let value = self.eval_dynamic(ctx)?;
        value.as_bool().map_err(|_| {
            let shown = dynamic_to_json(&value)
                .map(|j| j.to_string())
                .unwrap_or_else(|_| value.to_string());
            let hint = if value.is_unit() {
                " (a missing property?)"
            } else {
                ""
            };
            ScriptError::new(
                ScriptErrorKind::Runtime,
                format!(
                    "condition must be true or false, got {} {shown}{hint}",
                    value.type_name()
                ),
            )
        })
    }

    fn eval_dynamic(&self, ctx: &serde_json::Value) -> Result<Dynamic, ScriptError> {
        let mut scope = scope_from_json(ctx)?;
        let _call = enter_call(EXPR_WALL_CLOCK, None, None);
        expr_engine()
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
            .map_err(|e| ScriptError::from_eval(&e))
    }
}

/// A scope with one constant per top-level key of `ctx`.
fn scope_from_json(ctx: &serde_json::Value) -> Result<Scope<'static>, ScriptError> {
    let mut scope = Scope::new();
    match ctx {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                scope.push_constant_dynamic(k.clone(), json_to_dynamic(v)?);
            }
        }
        other => {
            return Err(ScriptError::new(
                ScriptErrorKind::Runtime,
                format!("expression context must be an object, got {other}"),
            ))
        }
    }
    Ok(scope)
}

/// JSON → Rhai value (objects become maps, `null` becomes `()`).
pub(crate) fn json_to_dynamic(v: &serde_json::Value) -> Result<Dynamic, ScriptError> {
    rhai::serde::to_dynamic(v).map_err(|e| {
        ScriptError::new(
            ScriptErrorKind::Runtime,
            format!("cannot pass value to the script: {e}"),
        )
    })
}

/// Rhai value → JSON (`()` becomes `null`, a function pointer its name, a time stamp
/// or other custom type its type name; Rhai's serializer never fails on its own
/// types, the error is for completeness).
pub(crate) fn dynamic_to_json(v: &Dynamic) -> Result<serde_json::Value, ScriptError> {
    serde_json::to_value(v).map_err(|e| {
        ScriptError::new(
            ScriptErrorKind::Runtime,
            format!("cannot turn a {} into a value: {e}", v.type_name()),
        )
    })
}

/// How a value prints inside a template: strings without quotes, numbers and bools as
/// is, `null` (a missing property) as the empty string, arrays and objects as compact
/// JSON.
pub fn value_to_template_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> serde_json::Value {
        json!({
            "sms": {"from": "+4917612345678", "text": "Ping", "parts": 1},
            "balance": {"text": "Guthaben: 5,00 EUR", "status": 0},
            "modem": {"signal": {"dbm": -77, "csq": 18, "bars": 3}, "name": "main"},
        })
    }

    #[test]
    fn nested_maps_are_reachable() {
        let e = Expr::compile("modem.signal.dbm").expect("compile");
        assert_eq!(e.eval(&ctx()).expect("eval"), json!(-77));
        let e = Expr::compile(r#"sms.from == "+4917612345678" && sms.text.to_lower() == "ping""#)
            .expect("compile");
        assert!(e.eval_bool(&ctx()).expect("eval"));
        let e = Expr::compile("balance.text").expect("compile");
        assert_eq!(e.eval(&ctx()).expect("eval"), json!("Guthaben: 5,00 EUR"));
    }

    #[test]
    fn missing_key_is_null_and_compares_unequal() {
        let e = Expr::compile("sms.nope").expect("compile");
        assert_eq!(e.eval(&ctx()).expect("eval"), serde_json::Value::Null);
        let e = Expr::compile(r#"sms.nope == "x""#).expect("compile");
        assert!(!e.eval_bool(&ctx()).expect("eval"));
        let e = Expr::compile(r#"sms.nope != "x""#).expect("compile");
        assert!(e.eval_bool(&ctx()).expect("eval"));
        let e = Expr::compile("sms.nope?.deeper").expect("compile");
        assert_eq!(e.eval(&ctx()).expect("eval"), serde_json::Value::Null);
        let e = Expr::compile("sms.nope.deeper").expect("compile");
        assert!(e.eval(&ctx()).is_err());
    }

    #[test]
    fn missing_variable_is_a_clear_error() {
        let e = Expr::compile("saved.text").expect("compile");
        let err = e.eval(&ctx()).expect_err("unknown");
        assert_eq!(err.to_string(), "1:1: unknown variable `saved`");
        let e = Expr::compile(r#"is_def_var("saved")"#).expect("compile");
        assert!(!e.eval_bool(&ctx()).expect("eval"));
    }

    #[test]
    fn compile_error_has_line_and_col() {
        let err = Expr::compile("sms.from == ").expect_err("bad");
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert_eq!(err.line, 1);
        assert!(err.col >= 12, "{err}");
        let err = Expr::compile("sms.text ==\n  )").expect_err("bad");
        assert_eq!((err.line, err.col), (2, 3), "{err}");
        assert!(Expr::compile("  ").is_err());
        assert!(Expr::compile("let x = 1").is_err());
    }

    #[test]
    fn eval_bool_rejects_non_bool() {
        let e = Expr::compile("sms.text").expect("compile");
        let err = e.eval_bool(&ctx()).expect_err("not bool");
        assert_eq!(
            err.message,
            "condition must be true or false, got string \"Ping\""
        );
        let e = Expr::compile("sms.nope").expect("compile");
        let err = e.eval_bool(&ctx()).expect_err("not bool");
        assert!(err.message.contains("missing property"), "{err}");
    }

    #[test]
    fn results_come_back_as_json() {
        let e = Expr::compile(r#"#{a: 1, b: [true, 2.5, "x", ()]}"#).expect("compile");
        assert_eq!(
            e.eval(&serde_json::Value::Null).expect("eval"),
            json!({"a": 1, "b": [true, 2.5, "x", null]})
        );
        assert!(e.eval(&json!([1])).is_err());
    }

    #[test]
    fn expressions_are_sandboxed() {
        // No host functions and no eval in expressions.
        let e = Expr::compile(r#"send_sms("+49", "x")"#).expect("compiles");
        assert!(e.eval(&ctx()).is_err());
        assert!(Expr::compile(r#"eval("1")"#).is_err());
    }

    #[test]
    fn template_strings() {
        assert_eq!(value_to_template_string(&json!("a b")), "a b");
        assert_eq!(value_to_template_string(&json!(-77)), "-77");
        assert_eq!(value_to_template_string(&json!(2.5)), "2.5");
        assert_eq!(value_to_template_string(&json!(true)), "true");
        assert_eq!(value_to_template_string(&serde_json::Value::Null), "");
        assert_eq!(value_to_template_string(&json!({"a": [1]})), r#"{"a":[1]}"#);
    }
}
