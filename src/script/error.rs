//! `ScriptError`: a compile or run-time failure of a Rhai script or expression, with
//! the place it happened (`path:line:col`, 1-based).

use std::fmt;
use std::path::{Path, PathBuf};

use rhai::{EvalAltResult, ParseError, Position};

use crate::diag::Diagnostic;

/// What went wrong, broadly; the message says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptErrorKind {
    /// The source does not compile (syntax, `import`, `eval`, …).
    Compile,
    /// The script threw, or an operation failed at run time.
    Runtime,
    /// A sandbox limit stopped the script (operations, call depth, data sizes).
    Limit,
    /// The wall-clock limit for one call ran out.
    Timeout,
    /// The caller asked for something that does not exist (a file or a function).
    NotFound,
    /// The call was abandoned by its caller (e.g. a rule in `restart` mode), or the
    /// runtime went away while the script was waiting for the host.
    Cancelled,
}

/// A script or expression failure with its place.
///
/// `line` and `col` are 1-based; 0 means unknown. For an [`Expr`](super::Expr) the
/// place is relative to the expression text and `path` is `None`.
/// Displays as `path:line:col: message` (the parts that are known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The script file, when the failure belongs to one.
    pub path: Option<PathBuf>,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// A plain sentence.
    pub message: String,
    /// The broad class of failure.
    pub kind: ScriptErrorKind,
}

impl ScriptError {
    /// A failure without a place.
    pub fn new(kind: ScriptErrorKind, message: impl Into<String>) -> ScriptError {
        ScriptError {
            path: None,
            line: 0,
            col: 0,
            message: message.into(),
            kind,
        }
    }

    /// The same error, attributed to `path`.
    pub fn with_path(mut self, path: impl AsRef<Path>) -> ScriptError {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// As a diagnostic (for `atmate check` and reload reports); `text` is the file's
    /// source, used to attach the offending line.
    pub fn to_diagnostic(&self, text: Option<&str>) -> Diagnostic {
        let path = self.path.clone().unwrap_or_default();
        let d = Diagnostic::error(path, self.line, self.col, self.message.clone());
        match text {
            Some(t) => d.with_source(t),
            None => d,
        }
    }

    /// From a Rhai parse error (positions are already 1-based in Rhai).
    pub(crate) fn from_parse(err: &ParseError) -> ScriptError {
        let (line, col) = place(err.position());
        ScriptError {
            path: None,
            line,
            col,
            message: err.err_type().to_string(),
            kind: ScriptErrorKind::Compile,
        }
    }

    /// From a Rhai evaluation error. The place is that of the innermost failure (the
    /// statement that actually threw), not the call site of the outermost function;
    /// the chain of functions is appended to the message.
    pub(crate) fn from_eval(err: &EvalAltResult) -> ScriptError {
        let mut chain = Vec::new();
        let mut cur = err;
        loop {
            match cur {
                EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
                    chain.push(if rhai_is_closure(name) {
                        "a closure".to_owned()
                    } else {
                        format!("`{name}`")
                    });
                    cur = inner;
                }
                EvalAltResult::ErrorInModule(_, inner, _) => cur = inner,
                _ => break,
            }
        }
        // Some failures have no place of their own (an operation-limit stop inside an
        // empty `loop {}` body); fall back to the nearest call site that has one.
        let mut pos = cur.position();
        if pos.is_none() {
            let mut outer = err;
            while let EvalAltResult::ErrorInFunctionCall(_, _, inner, p)
            | EvalAltResult::ErrorInModule(_, inner, p) = outer
            {
                if !p.is_none() {
                    pos = *p;
                }
                outer = inner;
            }
        }
        let (line, col) = place(pos);
        let (kind, mut message) = describe(cur);
        if !chain.is_empty() {
            message.push_str(" (in ");
            message.push_str(&chain.join(", called from "));
            message.push(')');
        }
        ScriptError {
            path: None,
            line,
            col,
            message,
            kind,
        }
    }
}

/// Rhai names closures `anon$…`; users never wrote that name.
fn rhai_is_closure(name: &str) -> bool {
    name.starts_with("anon$")
}

fn place(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(0), pos.position().unwrap_or(0))
}

/// Kind and position-free message of one (innermost) evaluation error.
fn describe(err: &EvalAltResult) -> (ScriptErrorKind, String) {
    use EvalAltResult as E;
    match err {
        E::ErrorRuntime(v, _) => {
            let text = if v.is_unit() {
                "script threw ()".to_owned()
            } else {
                v.to_string()
            };
            (ScriptErrorKind::Runtime, text)
        }
        E::ErrorTerminated(token, _) => {
            // Our own terminations carry a sentence (see engine::progress); anything
            // else is Rhai's generic stop.
            let text = token
                .clone()
                .into_immutable_string()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "script terminated".to_owned());
            let kind = if text.starts_with("cancelled") {
                ScriptErrorKind::Cancelled
            } else {
                ScriptErrorKind::Timeout
            };
            (kind, text)
        }
        E::ErrorTooManyOperations(_) => (
            ScriptErrorKind::Limit,
            "operation limit exceeded (endless loop?)".to_owned(),
        ),
        E::ErrorStackOverflow(_) => (
            ScriptErrorKind::Limit,
            "call depth limit exceeded (endless recursion?)".to_owned(),
        ),
        E::ErrorDataTooLarge(what, _) => (
            ScriptErrorKind::Limit,
            format!("{what} too large (sandbox size limit)"),
        ),
        E::ErrorTooManyVariables(_) | E::ErrorTooManyModules(_) => {
            (ScriptErrorKind::Limit, position_free(err))
        }
        E::ErrorVariableNotFound(name, _) => (
            ScriptErrorKind::Runtime,
            format!("unknown variable `{name}`"),
        ),
        E::ErrorModuleNotFound(name, _) => (
            ScriptErrorKind::Runtime,
            format!("module `{name}` not found (scripts cannot import modules)"),
        ),
        _ => (ScriptErrorKind::Runtime, position_free(err)),
    }
}

/// Rhai's own text for an error, without the ` (line 1, position 5)` suffix (we
/// print the place in front, as `path:line:col`).
fn position_free(err: &EvalAltResult) -> String {
    // `EvalAltResult` is not `Clone`, so strip the suffix Rhai's `Display` adds.
    let text = err.to_string();
    let pos = err.position();
    if pos.is_none() {
        return text;
    }
    let suffix = format!(" ({pos})");
    match text.strip_suffix(&suffix) {
        Some(t) => t.to_owned(),
        None => text,
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut placed = false;
        if let Some(p) = &self.path {
            write!(f, "{}", p.display())?;
            placed = true;
        }
        if self.line > 0 {
            if placed {
                f.write_str(":")?;
            }
            write!(f, "{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
            placed = true;
        }
        if placed {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_place() {
        let mut e = ScriptError::new(ScriptErrorKind::Runtime, "boom");
        assert_eq!(e.to_string(), "boom");
        e.line = 3;
        e.col = 7;
        assert_eq!(e.to_string(), "3:7: boom");
        let e = e.with_path("scripts/a.rhai");
        assert_eq!(e.to_string(), "scripts/a.rhai:3:7: boom");
        let d = e.to_diagnostic(Some("a\nb\nlet x = y;\n"));
        assert_eq!(d.line, 3);
        assert_eq!(d.source_line.as_deref(), Some("let x = y;"));
    }
}
