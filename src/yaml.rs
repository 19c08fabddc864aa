//! A located YAML tree and a checking reader over it, shared by `atmate.yaml` and the
//! rules files.
//!
//! Why not deserialize straight into typed structs? serde stops at the first error,
//! and we promise users *all* errors of a file at once, each with `path:line:col`, the
//! source line and, for unknown keys, a "did you mean" suggestion. So serde-saphyr
//! parses the text (its syntax errors already carry line:column) into a small tree
//! where every node knows where it came from ([`Node`]); the typed models are then
//! read from that tree by hand with [`Map`] and the scalar helpers below, which report
//! every problem into a [`Sink`] and go on.
//!
//! Scalars keep their source spelling ([`Node::raw`]): a plain `0755`, `19d2`, `yes` or
//! `1e3` in a string position means that text, not a number that was guessed for it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Diagnostics};

/// Where a node starts in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column in characters, 0 when unknown.
    pub col: usize,
    /// Byte offset of the node in the text, when known.
    pub offset: Option<usize>,
    /// Byte length of a scalar's source spelling (quotes included), when known.
    pub len: Option<usize>,
}

/// One YAML node and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the node starts.
    pub loc: Loc,
    /// A scalar's source spelling (with quotes, if it was quoted), when known.
    pub raw: Option<String>,
}

/// A YAML value; mappings keep their order and their keys' places.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only; `yes`/`no` stay strings).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// "a string", "a list", … for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// True for `~`, `null` and empty values.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The text of a scalar as the user wrote it, without quotes: a string's value, or a
    /// plain number's or boolean's source spelling. `None` for lists, mappings and null.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(self.raw.clone().unwrap_or_else(|| b.to_string())),
            Value::Int(i) => Some(self.raw.clone().unwrap_or_else(|| i.to_string())),
            Value::Float(f) => Some(self.raw.clone().unwrap_or_else(|| f.to_string())),
            _ => None,
        }
    }

    /// True when the scalar was written in quotes.
    pub fn is_quoted(&self) -> bool {
        self.raw
            .as_deref()
            .is_some_and(|r| r.starts_with('"') || r.starts_with('\''))
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON (for arguments handed to scripts and programs).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Where, in the file, byte `at` of `inner` lies, when `inner` is a piece of this
    /// scalar's value (a template expression, a regex).
    ///
    /// The piece is looked up in the scalar's source spelling, so the answer is exact for
    /// plain, quoted and literal-block scalars as long as the piece itself has no escape
    /// sequence or folded line in it; otherwise it falls back to the scalar's start.
    /// `occurrence` picks the n-th (0-based) appearance when the piece repeats.
    pub fn position_of(&self, text: &str, inner: &str, occurrence: usize, at: usize) -> Loc {
        let (Some(off), Some(len)) = (self.loc.offset, self.loc.len) else {
            return self.loc;
        };
        let Some(raw) = text.get(off..off + len) else {
            return self.loc;
        };
        let mut found = None;
        let mut from = 0;
        for _ in 0..=occurrence {
            match raw.get(from..).and_then(|r| r.find(inner)) {
                Some(i) => {
                    found = Some(from + i);
                    from += i + inner.len().max(1);
                }
                None => {
                    found = None;
                    break;
                }
            }
        }
        let Some(start) = found else {
            return self.loc;
        };
        let target = off + start + at.min(inner.len());
        loc_of_offset(text, target)
    }
}

/// Line and column (1-based, in characters) of byte `offset` in `text`.
pub fn loc_of_offset(text: &str, offset: usize) -> Loc {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    Loc {
        line,
        col,
        offset: Some(offset),
        len: None,
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn loc_from(span: &serde_saphyr::Location) -> Loc {
    let sp = span.span();
    Loc {
        line: usize::try_from(span.line()).unwrap_or(0),
        col: usize::try_from(span.column()).unwrap_or(0),
        offset: sp.byte_offset().and_then(|o| usize::try_from(o).ok()),
        len: sp.byte_len().and_then(|l| usize::try_from(l).ok()),
    }
}

fn node_from(sp: Spanned<Value>) -> Node {
    Node {
        loc: loc_from(&sp.referenced),
        value: sp.value,
        raw: None,
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        Ok(i64::try_from(i).map_or(Value::Float(i as f64), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(node_from(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Spanned<Value>, Spanned<Value>>()? {
            entries.push((node_from(k), node_from(v)));
        }
        Ok(Value::Map(entries))
    }
}

/// Parse one YAML document. A syntax error comes back as a diagnostic with the place
/// serde-saphyr found it.
pub fn parse(path: &Path, text: &str) -> Result<Node, Diagnostic> {
    let options = serde_saphyr::options! {
        // `yes`, `no`, `on`, `off` stay strings (a PIN or a USSD code must never turn
        // into a boolean); `0755` stays a string too.
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Spanned<Value>>(text, options) {
        Ok(root) => {
            let mut node = node_from(root);
            fill_raw(&mut node, text);
            Ok(node)
        }
        Err(e) => {
            let loc = e.location().map(|l| loc_from(&l)).unwrap_or_default();
            let msg = yaml_error_message(&e, loc);
            Err(Diagnostic::error(path, loc.line, loc.col, msg).with_source(text))
        }
    }
}

/// serde-saphyr's user-facing text, without the trailing " at line L, column C" (our
/// diagnostics print the place in front).
fn yaml_error_message(e: &serde_saphyr::Error, loc: Loc) -> String {
    let msg = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
    let suffix = format!(" at line {}, column {}", loc.line, loc.col);
    let msg = msg.trim_end();
    let msg = msg.strip_suffix(suffix.as_str()).unwrap_or(msg);
    format!("invalid YAML: {msg}")
}

fn fill_raw(node: &mut Node, text: &str) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| fill_raw(n, text)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            fill_raw(k, text);
            fill_raw(v, text);
        }),
        _ => {
            if let (Some(off), Some(len)) = (node.loc.offset, node.loc.len) {
                node.raw = text.get(off..off + len).map(str::to_owned);
            }
        }
    }
}

/// Collects the diagnostics of one file; every reader reports here and goes on.
#[derive(Debug)]
pub struct Sink<'t> {
    /// The file, as shown to users.
    pub path: PathBuf,
    /// Its text (for source lines and positions inside scalars).
    pub text: &'t str,
    /// What was found so far.
    pub diags: Diagnostics,
}

impl<'t> Sink<'t> {
    /// A sink for `path` with contents `text`.
    pub fn new(path: &Path, text: &'t str) -> Sink<'t> {
        Sink {
            path: path.to_path_buf(),
            text,
            diags: Diagnostics::default(),
        }
    }

    /// Report an error at `loc`.
    pub fn error(&mut self, loc: Loc, msg: impl Into<String>) {
        let d = Diagnostic::error(&self.path, loc.line, loc.col, msg).with_source(self.text);
        self.diags.push(d);
    }

    /// Report an error at `loc` without quoting the source line (the line holds a secret).
    pub fn error_masked(&mut self, loc: Loc, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(&self.path, loc.line, loc.col, msg));
    }

    /// Report a warning at `loc`.
    pub fn warning(&mut self, loc: Loc, msg: impl Into<String>) {
        let d = Diagnostic::warning(&self.path, loc.line, loc.col, msg).with_source(self.text);
        self.diags.push(d);
    }

    /// Add a ready diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// True once any error was reported.
    pub fn has_errors(&self) -> bool {
        self.diags.has_errors()
    }

    /// The diagnostics in file order (line, then column), as users read them.
    pub fn into_sorted(self) -> Diagnostics {
        let mut v = self.diags.0;
        v.sort_by_key(|d| (d.line, d.col));
        Diagnostics(v)
    }
}

/// A mapping being read: take the keys you know, then [`Map::finish`] reports the rest
/// as unknown (with a suggestion).
pub struct Map<'n> {
    node: &'n Node,
    entries: Vec<(String, &'n Node, &'n Node)>,
    taken: Vec<bool>,
}

impl<'n> Map<'n> {
    /// Read `node` as a mapping; reports an error (naming `what`) and returns `None` when
    /// it is something else.
    pub fn new(node: &'n Node, what: &str, sink: &mut Sink<'_>) -> Option<Map<'n>> {
        let Some(entries) = node.as_map() else {
            sink.error(
                node.loc,
                format!(
                    "{what} must be a mapping (`key: value`), found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match k.scalar_text() {
                Some(name) => out.push((name, k, v)),
                None => sink.error(
                    k.loc,
                    format!("keys must be plain words, found {}", k.kind_name()),
                ),
            }
        }
        let taken = vec![false; out.len()];
        Some(Map {
            node,
            entries: out,
            taken,
        })
    }

    /// The mapping node itself.
    pub fn node(&self) -> &'n Node {
        self.node
    }

    /// The value under `key`, marking it as known. A null value counts as absent.
    pub fn take(&mut self, key: &str) -> Option<&'n Node> {
        self.take_entry(key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// The key node and value under `key` (null values included), marking it as known.
    pub fn take_entry(&mut self, key: &str) -> Option<(&'n Node, &'n Node)> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        self.taken[i] = true;
        Some((self.entries[i].1, self.entries[i].2))
    }

    /// True when `key` is present (even with a null value).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| k == key)
    }

    /// The keys in source order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &'n Node)> + '_ {
        self.entries.iter().map(|(k, kn, _)| (k.as_str(), *kn))
    }

    /// The value under `key`, reporting "missing `key`" at the mapping when absent.
    pub fn require(&mut self, key: &str, what: &str, sink: &mut Sink<'_>) -> Option<&'n Node> {
        let v = self.take(key);
        if v.is_none() {
            if let Some((kn, _)) = self
                .entries
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, kn, v)| (*kn, *v))
            {
                sink.error(kn.loc, format!("`{key}` in {what} needs a value"));
            } else {
                sink.error(self.node.loc, format!("{what} is missing `{key}`"));
            }
        }
        v
    }

    /// Report every key not taken as unknown; `known` lists the valid ones (for the
    /// suggestion and the list shown when nothing is close).
    pub fn finish(self, what: &str, known: &[&str], sink: &mut Sink<'_>) {
        for (i, (k, kn, _)) in self.entries.iter().enumerate() {
            if !self.taken[i] {
                sink.error(
                    kn.loc,
                    unknown_message(&format!("key `{k}` in {what}"), k, known),
                );
            }
        }
    }
}

/// "unknown X; did you mean `y`?" or "unknown X (expected one of: …)".
pub fn unknown_message(what: &str, word: &str, known: &[&str]) -> String {
    match suggest(word, known) {
        Some(s) => format!("unknown {what}; did you mean `{s}`?"),
        None => format!("unknown {what} (expected one of: {})", known.join(", ")),
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a
/// plausible typo (at most a third of the word's length, at least 1; case ignored).
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    let limit = (w.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions, which
/// are the commonest typo: `sms_stauts`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// A scalar as text (numbers and booleans as written). Reports lists, mappings and
/// null as errors naming `what`.
pub fn string(node: &Node, what: &str, sink: &mut Sink<'_>) -> Option<String> {
    match node.scalar_text() {
        Some(s) => Some(s),
        None => {
            sink.error(
                node.loc,
                format!("{what} must be a string, found {}", node.kind_name()),
            );
            None
        }
    }
}

/// A non-empty scalar as text.
pub fn non_empty_string(node: &Node, what: &str, sink: &mut Sink<'_>) -> Option<String> {
    let s = string(node, what, sink)?;
    if s.trim().is_empty() {
        sink.error(node.loc, format!("{what} must not be empty"));
        return None;
    }
    Some(s)
}

/// One string or a list of strings.
pub fn string_list(node: &Node, what: &str, sink: &mut Sink<'_>) -> Option<Vec<String>> {
    match &node.value {
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for item in items {
                match string(item, what, sink) {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        _ => string(node, what, sink).map(|s| vec![s]),
    }
}

/// A list of strings, each with its node (for later checks that point at the item).
pub fn located_strings<'n>(
    node: &'n Node,
    what: &str,
    sink: &mut Sink<'_>,
) -> Vec<(String, &'n Node)> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| string(item, what, sink).map(|s| (s, item)))
            .collect(),
        _ => string(node, what, sink)
            .map(|s| vec![(s, node)])
            .unwrap_or_default(),
    }
}

/// `true` or `false`.
pub fn boolean(node: &Node, what: &str, sink: &mut Sink<'_>) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            let hint = match node.scalar_text().as_deref() {
                Some("yes" | "on" | "y") => " (write `true`)",
                Some("no" | "off" | "n") => " (write `false`)",
                _ => "",
            };
            sink.error(
                node.loc,
                format!(
                    "{what} must be `true` or `false`, found {}{hint}",
                    node.kind_name()
                ),
            );
            None
        }
    }
}

/// A whole number within `min..=max`.
pub fn integer(node: &Node, what: &str, min: i64, max: i64, sink: &mut Sink<'_>) -> Option<i64> {
    let v = match node.value {
        Value::Int(i) => Some(i),
        // `"5"` in quotes is still meant as five.
        Value::Str(ref s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match v {
        Some(i) if (min..=max).contains(&i) => Some(i),
        Some(i) => {
            sink.error(
                node.loc,
                format!("{what} must be between {min} and {max}, found {i}"),
            );
            None
        }
        None => {
            sink.error(
                node.loc,
                format!("{what} must be a whole number, found {}", describe(node)),
            );
            None
        }
    }
}

/// A duration in humantime syntax (`30s`, `10m`, `1h 30m`, `500ms`). A bare number
/// is refused: `30` could be seconds or minutes, and guessing wrong is costly.
pub fn duration(node: &Node, what: &str, sink: &mut Sink<'_>) -> Option<Duration> {
    let Some(text) = node.scalar_text() else {
        sink.error(
            node.loc,
            format!(
                "{what} must be a duration like `30s` or `10m`, found {}",
                node.kind_name()
            ),
        );
        return None;
    };
    if matches!(node.value, Value::Int(_) | Value::Float(_)) && text.trim() != "0" {
        sink.error(
            node.loc,
            format!("{what}: `{text}` has no unit; write e.g. `{text}s` or `{text}m`"),
        );
        return None;
    }
    match humantime::parse_duration(text.trim()) {
        Ok(d) => Some(d),
        Err(e) => {
            sink.error(
                node.loc,
                format!(
                    "{what}: `{text}` is not a duration ({e}); write e.g. `30s`, `10m`, `1h 30m`"
                ),
            );
            None
        }
    }
}

/// A short description of a scalar for messages: its text in backquotes, or its kind.
pub fn describe(node: &Node) -> String {
    match node.scalar_text() {
        Some(s) => format!("`{s}`"),
        None => node.kind_name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        parse(Path::new("t.yaml"), text).expect("parses")
    }

    #[test]
    fn nodes_know_their_place() {
        let text = "- name: ping\n  when: { sms: { from: \"+4917612345678\" } }\n";
        let root = tree(text);
        let rule = &root.as_seq().expect("seq")[0];
        let entries = rule.as_map().expect("map");
        assert_eq!(entries[0].0.scalar_text().as_deref(), Some("name"));
        assert_eq!((entries[0].1.loc.line, entries[0].1.loc.col), (1, 9));
        let when = &entries[1].1;
        let sms = &when.as_map().expect("map")[0].1;
        let from = &sms.as_map().expect("map")[0].1;
        assert_eq!((from.loc.line, from.loc.col), (2, 24));
        assert!(from.is_quoted());
        assert_eq!(from.scalar_text().as_deref(), Some("+4917612345678"));
    }

    #[test]
    fn plain_scalars_keep_their_spelling() {
        let root = tree("a: 0755\nb: yes\nc: 19d2\nd: 1268\ne: 1e3\nf: true\n");
        let m = root.as_map().expect("map");
        let texts: Vec<_> = m
            .iter()
            .map(|(_, v)| v.scalar_text().expect("scalar"))
            .collect();
        assert_eq!(texts, ["0755", "yes", "19d2", "1268", "1e3", "true"]);
        assert_eq!(m[3].1.value, Value::Int(1268));
        assert_eq!(m[5].1.value, Value::Bool(true));
        assert_eq!(m[1].1.value, Value::Str("yes".into()));
    }

    #[test]
    fn syntax_errors_have_a_place_and_a_plain_message() {
        let d = parse(Path::new("r.yaml"), "- a: 1\n  a: 2\n").expect_err("duplicate");
        assert_eq!((d.line, d.col), (2, 3));
        assert_eq!(
            d.message,
            "invalid YAML: duplicate mapping key `a` is not allowed here"
        );
        let d = parse(Path::new("r.yaml"), "a: \"abc\n").expect_err("unclosed");
        assert_eq!(
            d.to_string(),
            "r.yaml:1:4: error: invalid YAML: unclosed quote"
        );
    }

    #[test]
    fn empty_text_is_null() {
        assert!(tree("").is_null());
        assert!(tree("# nothing\n").is_null());
    }

    #[test]
    fn positions_inside_scalars() {
        let text = "x: { t: \"pong {{ modem.signal.dbm }}\" }\ny: |\n  hello\n    {{ a + }}\n";
        let root = tree(text);
        let m = root.as_map().expect("map");
        let t = &m[0].1.as_map().expect("map")[0].1;
        let loc = t.position_of(text, " modem.signal.dbm ", 0, 1);
        assert_eq!((loc.line, loc.col), (1, 18));
        let y = &m[1].1;
        let loc = y.position_of(text, " a + ", 0, 3);
        assert_eq!((loc.line, loc.col), (4, 10));
    }

    #[test]
    fn map_reports_unknown_keys_with_a_suggestion() {
        let text = "nmae: x\nwhen: y\nfoo: 1\n";
        let root = tree(text);
        let mut sink = Sink::new(Path::new("r.yaml"), text);
        let mut m = Map::new(&root, "a rule", &mut sink).expect("map");
        assert!(m.take("when").is_some());
        assert!(m.take("name").is_none());
        m.finish("a rule", &["name", "when", "do"], &mut sink);
        let msgs: Vec<String> = sink.diags.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "r.yaml:1:1: error: unknown key `nmae` in a rule; did you mean `name`?",
                "r.yaml:3:1: error: unknown key `foo` in a rule (expected one of: name, when, do)",
            ]
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("smss", &["sms", "ussd"]), Some("sms"));
        assert_eq!(
            suggest("sms_stauts", &["sms_status", "sms"]),
            Some("sms_status")
        );
        assert_eq!(suggest("zzz", &["sms", "ussd"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }

    #[test]
    fn durations_need_a_unit() {
        let text = "a: 30s\nb: 30\nc: 10 parsecs\nd: 0\n";
        let root = tree(text);
        let m = root.as_map().expect("map");
        let mut sink = Sink::new(Path::new("c.yaml"), text);
        assert_eq!(
            duration(&m[0].1, "`a`", &mut sink),
            Some(Duration::from_secs(30))
        );
        assert_eq!(duration(&m[1].1, "`b`", &mut sink), None);
        assert_eq!(duration(&m[2].1, "`c`", &mut sink), None);
        assert_eq!(duration(&m[3].1, "`d`", &mut sink), Some(Duration::ZERO));
        assert_eq!(
            sink.diags.0[0].message,
            "`b`: `30` has no unit; write e.g. `30s` or `30m`"
        );
        assert!(sink.diags.0[1]
            .message
            .starts_with("`c`: `10 parsecs` is not a duration ("));
    }

    #[test]
    fn scalars_of_the_wrong_kind() {
        let text = "a: [1]\nb: yes\nc: 70000\n";
        let root = tree(text);
        let m = root.as_map().expect("map");
        let mut sink = Sink::new(Path::new("c.yaml"), text);
        assert_eq!(string(&m[0].1, "`a`", &mut sink), None);
        assert_eq!(boolean(&m[1].1, "`b`", &mut sink), None);
        assert_eq!(integer(&m[2].1, "`c`", 1, 65535, &mut sink), None);
        let msgs: Vec<&str> = sink.diags.0.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "`a` must be a string, found a list",
                "`b` must be `true` or `false`, found a string (write `true`)",
                "`c` must be between 1 and 65535, found 70000",
            ]
        );
    }
}
