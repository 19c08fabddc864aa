//! `${VAR}` expansion in `atmate.yaml` values, so secrets (the SIM PIN) can live in the
//! environment instead of the file.
//!
//! Syntax: `${NAME}` is the variable's value and an error when it is unset;
//! `${NAME:-default}` falls back to `default` when the variable is unset or empty (as in
//! the shell); `$$` is a literal `$`. Any other `$` is left alone. Names are
//! `[A-Za-z_][A-Za-z0-9_]*`. There is no nesting and no command substitution.

/// One problem in a value: byte offset and length of the offending `${…}`, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// Byte offset of the `$` in the value.
    pub offset: usize,
    /// Byte length of the reference.
    pub len: usize,
    /// What is wrong.
    pub message: String,
}

/// Expand every reference in `value`, looking variables up with `env`. All problems are
/// returned, not just the first.
pub fn expand(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<ExpandError>> {
    let mut out = String::with_capacity(value.len());
    let mut errors = Vec::new();
    let mut rest = value;
    let mut pos = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let at = pos + i;
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
            pos = at + 2;
            continue;
        }
        if !tail.starts_with("${") {
            out.push('$');
            rest = &tail[1..];
            pos = at + 1;
            continue;
        }
        let Some(close) = tail.find('}') else {
            errors.push(ExpandError {
                offset: at,
                len: tail.len(),
                message: "`${` without a closing `}`".into(),
            });
            rest = "";
            break;
        };
        let body = &tail[2..close];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            errors.push(ExpandError {
                offset: at,
                len: close + 1,
                message: format!("`${{{body}}}` is not a valid variable reference (names are letters, digits and `_`)"),
            });
        } else {
            match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => errors.push(ExpandError {
                    offset: at,
                    len: close + 1,
                    message: format!(
                        "environment variable `{name}` is not set (use `${{{name}:-default}}` for a fallback)"
                    ),
                }),
            }
        }
        rest = &tail[close + 1..];
        pos = at + close + 1;
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ATMATE_PIN" => Some("1234".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(expand("${ATMATE_PIN}", &env).as_deref(), Ok("1234"));
        assert_eq!(expand("a ${ATMATE_PIN} b", &env).as_deref(), Ok("a 1234 b"));
        assert_eq!(expand("${NOPE:-0000}", &env).as_deref(), Ok("0000"));
        assert_eq!(expand("${EMPTY:-x}", &env).as_deref(), Ok("x"));
        assert_eq!(expand("${EMPTY}", &env).as_deref(), Ok(""));
        assert_eq!(expand("${NOPE:-}", &env).as_deref(), Ok(""));
    }

    #[test]
    fn dollars_that_are_not_references_stay() {
        assert_eq!(expand("cost $5", &env).as_deref(), Ok("cost $5"));
        assert_eq!(
            expand("$${ATMATE_PIN}", &env).as_deref(),
            Ok("${ATMATE_PIN}")
        );
        assert_eq!(expand("a$", &env).as_deref(), Ok("a$"));
    }

    #[test]
    fn reports_every_problem_with_its_offset() {
        let errs = expand("x ${NOPE} ${1BAD} ${ATMATE_PIN", &env).expect_err("errors");
        assert_eq!(errs.len(), 3);
        assert_eq!((errs[0].offset, errs[0].len), (2, 7));
        assert_eq!(
            errs[0].message,
            "environment variable `NOPE` is not set (use `${NOPE:-default}` for a fallback)"
        );
        assert_eq!(errs[1].offset, 10);
        assert!(errs[1].message.contains("not a valid variable reference"));
        assert_eq!(errs[2].offset, 18);
        assert_eq!(errs[2].message, "`${` without a closing `}`");
    }
}
