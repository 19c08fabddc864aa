//! Diagnostics with a place: `path:line:col: message`, the source line and a caret.
//!
//! Used by `config`, `rules` and `script` so that every YAML or Rhai problem looks the
//! same to the user. A leaf module: no I/O beyond formatting text it is given.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing, does not make the configuration invalid.
    Warning,
    /// Makes the configuration invalid.
    Error,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File the problem is in.
    pub path: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// A plain sentence.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
    /// The offending source line, when known (filled in by [`Diagnostic::with_source`]).
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// An error at `path:line:col`.
    pub fn error(
        path: impl AsRef<Path>,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            path: path.as_ref().to_path_buf(),
            line,
            col,
            message: message.into(),
            severity: Severity::Error,
            source_line: None,
        }
    }

    /// A warning at `path:line:col`.
    pub fn warning(
        path: impl AsRef<Path>,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, line, col, message)
        }
    }

    /// Attach the source line from the file's text, so the caret can be drawn.
    pub fn with_source(mut self, text: &str) -> Self {
        if self.line > 0 {
            self.source_line = text.lines().nth(self.line - 1).map(str::to_owned);
        }
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `path:line:col: error: message`, then the source line and a caret under the column.
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        if let Some(src) = &self.source_line {
            let gutter = format!("{} | ", self.line);
            out.push('\n');
            out.push_str(&gutter);
            out.push_str(src);
            if self.col > 0 {
                out.push('\n');
                // Tabs keep their width so the caret stays under the right character.
                let pad: String = src
                    .chars()
                    .take(self.col - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&" ".repeat(gutter.len()));
                out.push_str(&pad);
                out.push('^');
            }
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
        }
        write!(f, ": {sev}: {}", self.message)
    }
}

/// A list of diagnostics that is an error when it holds at least one error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    /// Add one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Add many.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// All rendered, separated by blank lines.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(Diagnostic::render)
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_place_source_and_caret() {
        let d = Diagnostic::error("rules.yaml", 2, 9, "unknown trigger `smss`")
            .with_source("- name: x\n  when: { smss: {} }\n");
        assert_eq!(
            d.render(),
            "rules.yaml:2:9: error: unknown trigger `smss`\n2 |   when: { smss: {} }\n            ^"
        );
    }

    #[test]
    fn without_place() {
        let d = Diagnostic::warning("a.yaml", 0, 0, "empty file");
        assert_eq!(d.render(), "a.yaml: warning: empty file");
    }
}
