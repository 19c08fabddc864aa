//! Templates (`"Balance: {{ balance.text }}"`) and conditions (`if:`): Rhai expressions
//! compiled once at load, evaluated against a run's context.
//!
//! # The context an expression sees
//! - `event`: the trigger's payload (`event.kind`, `event.modem`, …), and the same
//!   payload under its kind's name: `sms.from`, `sms.text`, `ussd.text`, `link.state`,
//!   `network.state`, `signal.dbm`, `call.from`, `sms_status.status`, `schedule.job`.
//! - `match`: the captures of the trigger's `text:` regex: `match.name` for named
//!   groups, `match[1]` for numbered ones (`match[0]` is the whole match).
//! - every value saved by an earlier action's `save_as:` (`balance.text`).
//! - `modem`: `name`, `signal` (`csq`, `dbm`, `bars`) and the facts of
//!   `Host::modem_info()` (operator, model, …), fetched only when the rule mentions
//!   `modem`.
//! - `rule`: `rule.name`.
//!
//! # Why `match` and `call` are rewritten
//! `match` and `call` are reserved words in Rhai, so an expression cannot name a
//! variable `match` (the captures) or `call` (the `call` trigger's payload). Before
//! compiling, these identifiers (outside strings, not after a `.`, and `call` not
//! before a `(`) are rewritten to `_mtch` and `_cll`, and `match[N]` to `_mtch.gN`.
//! Every rewrite keeps the text's length, so compile errors still point at the right
//! column. The context holds the values under the rewritten names ([`context_name`]);
//! the captures have keys `gN` (and the group names).

use std::sync::Arc;

use serde_json::Value;

use crate::script::expr::{value_to_template_string, Expr};
use crate::script::ScriptError;

/// The name the captures live under in an expression's context (see the module docs).
pub const MATCH_VAR: &str = "_mtch";

/// Names users write that Rhai reserves, and the same-length names used instead.
const ALIASES: &[(&str, &str)] = &[("match", MATCH_VAR), ("call", "_cll")];

/// The name a context variable is stored under (`call` → `_cll`, `match` → `_mtch`).
pub fn context_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(user, _)| *user == name)
        .map_or(name, |(_, ctx)| ctx)
}

/// Put the user's names back into a message about a rewritten expression.
fn unalias(message: &str) -> String {
    ALIASES
        .iter()
        .fold(message.to_owned(), |m, (user, ctx)| m.replace(ctx, user))
}

/// A problem in a template or condition: where in the source text, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprProblem {
    /// The piece of the source the problem is in (an expression, or the rest of the
    /// text after an unclosed `{{`); used to find it in the YAML file.
    pub piece: String,
    /// Which appearance of `piece` in the source (0-based), when it repeats.
    pub occurrence: usize,
    /// Byte offset of the problem inside `piece`.
    pub at: usize,
    /// A plain sentence.
    pub message: String,
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    /// The compiled expression and its source as the user wrote it.
    Expr(Expr, String),
}

/// A compiled template: literal text with `{{ expression }}` holes.
#[derive(Debug, Clone)]
pub struct Template {
    src: Arc<str>,
    parts: Vec<Part>,
}

impl Template {
    /// Compile every `{{ … }}` in `src`. All problems are returned.
    pub fn compile(src: &str) -> Result<Template, Vec<ExprProblem>> {
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        let mut rest = src;
        let mut seen: Vec<String> = Vec::new();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                problems.push(ExprProblem {
                    piece: rest[open..].to_owned(),
                    occurrence: 0,
                    at: 0,
                    message: "`{{` without a closing `}}`".into(),
                });
                rest = "";
                break;
            };
            let inner = &after[..close];
            let occurrence = seen.iter().filter(|s| *s == inner).count();
            seen.push(inner.to_owned());
            match compile_expr(inner) {
                Ok(e) => parts.push(Part::Expr(e, inner.to_owned())),
                Err(p) => problems.push(ExprProblem { occurrence, ..p }),
            }
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        if problems.is_empty() {
            Ok(Template {
                src: src.into(),
                parts,
            })
        } else {
            Err(problems)
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// True when the template has no `{{ }}` at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// True when an expression names the variable `name` (e.g. `modem`).
    pub fn mentions(&self, name: &str) -> bool {
        self.parts.iter().any(|p| match p {
            Part::Expr(_, src) => mentions(src, name),
            Part::Lit(_) => false,
        })
    }

    /// The objects the expressions read (`balance` in `balance.text`).
    pub fn objects(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Expr(_, src) => Some(objects(src)),
                Part::Lit(_) => None,
            })
            .flatten()
            .collect()
    }

    /// Fill in the holes.
    pub fn render(&self, ctx: &Value) -> Result<String, ScriptError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e, _) => out.push_str(&value_to_template_string(&e.eval(ctx)?)),
            }
        }
        Ok(out)
    }

    /// Like [`Template::render`], but a template that is exactly one `{{ expression }}`
    /// gives the expression's value as is (a map stays a map), for script arguments.
    pub fn render_value(&self, ctx: &Value) -> Result<Value, ScriptError> {
        match self.parts.as_slice() {
            [Part::Expr(e, _)] => e.eval(ctx),
            _ => self.render(ctx).map(Value::String),
        }
    }
}

/// A compiled `if:` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Expr,
    src: String,
}

impl Condition {
    /// Compile a condition. A condition written as one template (`"{{ a == b }}"`) is
    /// taken without the braces.
    pub fn compile(src: &str) -> Result<Condition, ExprProblem> {
        let t = src.trim();
        let inner = match t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
            Some(i) if !i.contains("{{") && !i.contains("}}") => i,
            _ => src,
        };
        compile_expr(inner).map(|expr| Condition {
            expr,
            src: inner.to_owned(),
        })
    }

    /// The source (braces removed).
    pub fn source(&self) -> &str {
        &self.src
    }

    /// True when it names `name`.
    pub fn mentions(&self, name: &str) -> bool {
        mentions(&self.src, name)
    }

    /// The objects it reads.
    pub fn objects(&self) -> Vec<String> {
        objects(&self.src)
    }

    /// Evaluate; anything but `true` or `false` is an error.
    pub fn eval(&self, ctx: &Value) -> Result<bool, ScriptError> {
        self.expr.eval_bool(ctx)
    }
}

/// Compile one expression (after the reserved-name rewrite), mapping a compile
/// error's line/col to a byte offset in `src`.
fn compile_expr(src: &str) -> Result<Expr, ExprProblem> {
    let rewritten = rewrite_reserved(src);
    Expr::compile(&rewritten).map_err(|e| ExprProblem {
        piece: src.to_owned(),
        occurrence: 0,
        at: byte_offset(src, e.line, e.col),
        message: match e.message.as_str() {
            // Rhai's words for "the text ended in the middle of an expression".
            "Script is incomplete" => "the expression is incomplete".to_owned(),
            m => unalias(m),
        },
    })
}

/// Evaluation errors name the rewritten variables; put the user's names back.
pub(crate) fn user_message(e: &ScriptError) -> String {
    unalias(&e.to_string())
}

/// Byte offset of 1-based `line`/`col` (characters) in `src`; the start when unknown.
fn byte_offset(src: &str, line: usize, col: usize) -> usize {
    if line == 0 {
        // An empty expression has no place: point at the braces' inside.
        return 0;
    }
    let mut offset = 0;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let in_line: usize = l
                .chars()
                .take(col.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return offset + in_line;
        }
        offset += l.len();
    }
    src.len()
}

/// One token of an expression, as far as we need to know: identifiers (with their byte
/// offset) outside strings and comments, and the character that precedes them.
fn identifiers(src: &str) -> Vec<(usize, &str, Option<char>)> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut prev_sig: Option<char> = None;
    while i < bytes.len() {
        let c = bytes[i] as char;
        match c {
            '"' | '\'' | '`' => {
                let quote = c;
                i += 1;
                while i < bytes.len() && bytes[i] as char != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                prev_sig = Some(quote);
            }
            '/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            '/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((start, &src[start..i], prev_sig));
                prev_sig = Some('a');
            }
            c if c.is_ascii_digit() => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
                {
                    i += 1;
                }
                prev_sig = Some('0');
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                // Multi-byte characters only occur in strings or as errors Rhai reports.
                let ch = src[i..].chars().next().unwrap_or(' ');
                prev_sig = Some(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// Rewrite the variables Rhai reserves (`match`, `call`) to their context names (same
/// length), and `match[N]` to `_mtch.gN` (same length), outside strings.
pub fn rewrite_reserved(src: &str) -> String {
    let mut out = src.to_owned();
    for (at, ident, prev) in identifiers(src) {
        let Some((_, alias)) = ALIASES.iter().find(|(user, _)| *user == ident) else {
            continue;
        };
        let rest = &src[at + ident.len()..];
        // `x.match` is a property; `call(f, …)` is Rhai's function-pointer call.
        if prev == Some('.') || (ident == "call" && rest.trim_start().starts_with('(')) {
            continue;
        }
        out.replace_range(at..at + ident.len(), alias);
        if ident != "match" {
            continue;
        }
        if let Some(inner) = rest.strip_prefix('[') {
            let digits: String = inner.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && inner[digits.len()..].starts_with(']') {
                let replaced = format!(".g{digits}");
                out.replace_range(at + 5..at + 5 + digits.len() + 2, &replaced);
            }
        }
    }
    out
}

/// True when `src` names the variable `name` (not as a property after `.`).
pub fn mentions(src: &str, name: &str) -> bool {
    identifiers(src)
        .iter()
        .any(|(_, id, prev)| *id == name && *prev != Some('.'))
}

/// Variables used as objects (`x.y`, `x[…]`, `x?.y`): the names an expression reads
/// from its context. Function names and properties are left out.
pub fn objects(src: &str) -> Vec<String> {
    identifiers(src)
        .into_iter()
        .filter(|(at, id, prev)| {
            let after = src[at + id.len()..].trim_start();
            *prev != Some('.')
                && *prev != Some('?')
                && (after.starts_with('.') || after.starts_with('[') || after.starts_with("?."))
        })
        .map(|(_, id, _)| id.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "event": {"kind": "sms", "from": "+4917612345678", "text": "status now"},
            "sms": {"kind": "sms", "from": "+4917612345678", "text": "status now"},
            MATCH_VAR: {"g0": "status now", "g1": "now", "when": "now"},
            "balance": {"text": "5,00 EUR", "status": 0},
            "modem": {"signal": {"dbm": -77}},
        })
    }

    #[test]
    fn renders_literals_and_expressions() {
        let t = Template::compile("pong, signal {{ modem.signal.dbm }} dBm").expect("compile");
        assert_eq!(t.render(&ctx()).expect("render"), "pong, signal -77 dBm");
        assert!(t.mentions("modem"));
        assert!(!t.mentions("sms"));
        let t = Template::compile("plain").expect("compile");
        assert!(t.is_literal());
        assert_eq!(t.render(&ctx()).expect("render"), "plain");
        let t = Template::compile("{{ sms.from }}: {{balance.text}}{{ \"!\" }}").expect("compile");
        assert_eq!(
            t.render(&ctx()).expect("render"),
            "+4917612345678: 5,00 EUR!"
        );
    }

    #[test]
    fn captures_by_name_and_number() {
        let t =
            Template::compile("{{ match.when }}/{{ match[1] }}/{{ match[0] }}").expect("compile");
        assert_eq!(t.render(&ctx()).expect("render"), "now/now/status now");
        assert_eq!(
            rewrite_reserved("match[12] + \"match\" + x.match + call.from + call(f)"),
            "_mtch.g12 + \"match\" + x.match + _cll.from + call(f)"
        );
    }

    #[test]
    fn whole_value_templates_keep_the_type() {
        let t = Template::compile("{{ balance }}").expect("compile");
        assert_eq!(
            t.render_value(&ctx()).expect("value"),
            json!({"text": "5,00 EUR", "status": 0})
        );
        let t = Template::compile("x{{ balance.status }}").expect("compile");
        assert_eq!(t.render_value(&ctx()).expect("value"), json!("x0"));
    }

    #[test]
    fn every_bad_expression_is_reported_with_its_offset() {
        let errs =
            Template::compile("a {{ sms.from == }} b {{ ok }} {{ 1 + }} {{ open").expect_err("bad");
        assert_eq!(errs.len(), 3);
        assert_eq!(errs[0].piece, " sms.from == ");
        assert!(errs[0].at >= 12, "{errs:?}");
        assert_eq!(errs[1].piece, " 1 + ");
        assert_eq!(errs[2].message, "`{{` without a closing `}}`");
        assert_eq!(errs[2].piece, "{{ open");
    }

    #[test]
    fn repeated_pieces_know_which_one_is_meant() {
        let errs = Template::compile("{{ x + }} and {{ x + }}").expect_err("bad");
        assert_eq!(
            errs.iter().map(|e| e.occurrence).collect::<Vec<_>>(),
            [0, 1]
        );
    }

    #[test]
    fn conditions() {
        let c = Condition::compile("sms.text.contains(\"status\") && match.when == \"now\"")
            .expect("compile");
        assert!(c.eval(&ctx()).expect("eval"));
        let c = Condition::compile("{{ balance.status == 1 }}").expect("compile");
        assert_eq!(c.source(), " balance.status == 1 ");
        assert!(!c.eval(&ctx()).expect("eval"));
        let e = Condition::compile("sms.text ==").expect_err("bad");
        assert_eq!(e.piece, "sms.text ==");
        let e = Condition::compile("match.x ==").expect_err("bad");
        assert!(!e.message.contains(MATCH_VAR), "{}", e.message);
    }

    #[test]
    fn finds_the_objects_an_expression_reads() {
        assert_eq!(
            objects("balance.text + sms?.from + x.y.z + f(a) + m[\"k\"] + \"s.t\""),
            ["balance", "sms", "x", "m"]
        );
        assert!(mentions("modem.signal.dbm > -90", "modem"));
        assert!(!mentions("x.modem", "modem"));
        assert!(!mentions("\"modem\"", "modem"));
    }

    #[test]
    fn offsets_of_lines_and_columns() {
        assert_eq!(byte_offset("ab\ncd", 2, 2), 4);
        assert_eq!(byte_offset("äb", 1, 2), 2);
        assert_eq!(byte_offset("x", 0, 0), 0);
    }
}
