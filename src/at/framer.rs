//! Bytes from the modem → [`Item`]s, with "not enough bytes yet" as a normal result.
//!
//! The framer never does I/O. [`parse`] looks at a byte buffer and returns one item and
//! the number of bytes it used, or [`Parsed::Incomplete`]; [`Framer`] wraps it with a
//! buffer and the little state needed to resynchronise after an overlong line. Modelled
//! on mini-redis `frame.rs` (`Incomplete` is not an error) and atat's digester (result
//! plus bytes consumed).
//!
//! # Byte shapes accepted
//!
//! | bytes | item |
//! |---|---|
//! | `\r\n<text>\r\n` (V1) or `<text>\r\n` (V0), also ended by a lone `\r` or `\n` | [`Item::Line`] |
//! | `\r\nOK\r\n`, `ERROR`, `+CME ERROR: <n or text>`, `+CMS ERROR: …`, `NO CARRIER`, `CONNECT [<x>]`, `BUSY`, `NO ANSWER`, `NO DIALTONE` | [`Item::Final`] |
//! | `<digit>\r` (V0: 0 1 3 4 6 7 8) | [`Item::Final`]; V0 `2\r` is `RING` → [`Item::Line`]`("RING")` |
//! | `\r\n> ` (27.005 §3.5.1), also `>` alone, anywhere a line may start | [`Item::Prompt`] |
//! | `AT…\r` not followed by `\n` (echo, on after every reset even if we sent `ATE0`) | [`Item::Echo`] |
//! | `+CMT: [<alpha>],<len>\r\n<pdu>\r\n`, `+CDS: [,]<len>\r\n<pdu>\r\n` (ZTE puts a comma first), `+CBM: <len>\r\n<pdu>\r\n`, text-mode `+CMT:`/`+CBM:` with their text line | [`Item::Message`] |
//! | `\r`, `\n`, NUL, 0xFF, other control bytes and spaces where a line would start | skipped |
//!
//! Lines starting with `+` or `^` are read quote-aware: a `"…"` string may contain `\r\n`
//! (multi-line `+CUSD: 1,"1. Balance\r\n2. Bundles",15`, MF667.md §5.6), so the line does
//! not end inside quotes. A quote that never closes cannot swallow the stream: once the
//! line has grown past [`FramerOptions::max_line`] bytes it is cut at its first line end.
//!
//! A line longer than `max_line` gives [`FrameError::LineTooLong`] with the number of
//! bytes to drop; [`Framer`] keeps dropping until the next line end and goes on from there.
//!
//! # Ambiguities, and how they are settled
//!
//! - Echo vs text: an echoed command ends with `\r` and the modem's answer starts with
//!   `\r\n` (V1) or text (V0), so the byte after the `\r` is never `\n`. A line starting
//!   with `AT` and ending `\r\n` is therefore information text. When the `\r` is the last
//!   byte so far, the framer waits for one more byte (the answer always follows an echo).
//! - V0 digit vs a one-digit text line: `0\r\n` is text in both modes (V0 text ends with
//!   `\r\n`); `0\r` followed by anything else is a V0 result. When `0\r` is the last byte
//!   so far the framer waits, unless [`FramerOptions::numeric_results`] says we run `ATV0`,
//!   in which case the final result is returned at once (nothing else may follow it).
//! - Two-line URCs: a PDU-mode `+CMT`/`+CDS`/`+CBM` header whose next line is not hex
//!   is returned alone as a [`Item::Line`] and the next line is framed on its own; a
//!   text-mode `+CDS` (seven fields, 27.005 §3.4.1) has no second line.
//! - Text-mode `+CMGR`/`+CMGL` bodies are ordinary lines; a body that reads exactly `OK`
//!   would look like the final code, and one starting with `>` like a prompt. atmate uses
//!   PDU mode, where bodies are hex.
//! - A quoted string with an odd number of `"` cannot span lines; its line still ends
//!   where it ends like a closed `+CUSD` string (`…",15`).

use super::result::{Final, V0Code};

/// The default [`FramerOptions::max_line`]: a full `+CMGL` line with a 160-octet PDU is
/// about 350 bytes, a `+CUSD` about 400, so 4096 leaves room for odd firmware.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// The smallest accepted [`FramerOptions::max_line`]; smaller values are raised to it.
pub const MIN_MAX_LINE: usize = 16;

/// How the framer reads bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerOptions {
    /// Longest line accepted, in bytes, not counting the line end (see [`DEFAULT_MAX_LINE`]).
    pub max_line: usize,
    /// Set while the modem runs `ATV0`: a lone `<digit>\r` at the end of the bytes received
    /// so far is then a final result at once, instead of waiting to see whether `\n` follows.
    pub numeric_results: bool,
}

impl Default for FramerOptions {
    fn default() -> Self {
        FramerOptions {
            max_line: DEFAULT_MAX_LINE,
            numeric_results: false,
        }
    }
}

/// One framed unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An echoed command line, without its `\r` (`"AT+CSQ"`).
    Echo(String),
    /// An information text line or a one-line URC, without the line end. A quoted string
    /// in it may contain `\r\n`.
    Line(String),
    /// A final result code.
    Final(Final),
    /// The `> ` prompt for an SMS body (`AT+CMGS`, `AT+CMGW`).
    Prompt,
    /// A two-line URC: the header (`+CMT: ,34`, `+CDS: ,25`) and the line after it
    /// (the hex PDU, or the text in text mode).
    Message {
        /// The first line, e.g. `+CMT: ,34`.
        header: String,
        /// The second line, e.g. the hex PDU.
        body: String,
    },
}

/// The outcome of [`parse`] when the bytes are not in error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One item, and how many bytes it used (including blank line ends and noise before it).
    Item {
        /// The item.
        item: Item,
        /// Bytes used; always more than zero.
        consumed: usize,
    },
    /// Not enough bytes for an item yet. The first `skip` bytes are noise (line ends, NULs…)
    /// that the caller may drop now; keep the rest and call again when more bytes arrive.
    Incomplete {
        /// Leading noise bytes that can be dropped.
        skip: usize,
    },
}

/// Bytes the framer cannot make an item of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A line ran past [`FramerOptions::max_line`] bytes without ending.
    #[error(
        "line longer than {max} bytes: dropping {discard} bytes{}",
        if *resynced { "" } else { " and everything up to the next line end" }
    )]
    LineTooLong {
        /// The limit in force.
        max: usize,
        /// How many bytes to drop from the front of the buffer (always more than zero).
        discard: usize,
        /// `true` if those bytes end with the line end (the next byte starts a new line);
        /// `false` if the line end has not arrived yet and bytes must be dropped until it
        /// does ([`Framer`] does this for you).
        resynced: bool,
    },
}

/// Look at `buf` and frame the first item in it. See the [module docs](self) for the
/// byte shapes. Never panics; any input either yields an item that consumed bytes, an
/// error that discards bytes, or [`Parsed::Incomplete`].
pub fn parse(buf: &[u8], opts: &FramerOptions) -> Result<Parsed, FrameError> {
    let max = opts.max_line.max(MIN_MAX_LINE);
    let start = buf.iter().position(|&b| !is_noise(b)).unwrap_or(buf.len());
    if start == buf.len() {
        return Ok(Parsed::Incomplete { skip: start });
    }
    let incomplete = Ok(Parsed::Incomplete { skip: start });
    let item = |item: Item, consumed: usize| Ok(Parsed::Item { item, consumed });

    // The prompt is matched wherever a line may start, before any line-end search: nothing
    // follows it until we send the body. 27.005 says `> ` (with a space); a `>` is enough.
    if buf[start] == b'>' {
        let end = if buf.get(start + 1) == Some(&b' ') {
            start + 2
        } else {
            start + 1
        };
        return item(Item::Prompt, end);
    }

    let quote_aware = matches!(buf[start], b'+' | b'^');
    let window_end = buf.len().min(start + max + 1);
    let term = match find_line_end(buf, start, window_end, quote_aware) {
        Some(t) => t,
        None if buf.len() - start <= max => return incomplete,
        None => {
            // Past the limit. If an open quote kept the line going, cut it at the first
            // line end instead (a broken quote costs one line, not the stream).
            match find_line_end(buf, start, window_end, false).filter(|_| quote_aware) {
                Some(t) => t,
                None => return Err(overlong(buf, start, max)),
            }
        }
    };
    let line = &buf[start..term];
    let after = line_end_after(buf, term);
    let next = buf.get(term + 1).copied();
    let ends_with_cr = buf[term] == b'\r';

    // Echo: `AT…\r` and the next byte is not `\n`.
    if ends_with_cr && line.len() >= 2 && line[..2].eq_ignore_ascii_case(b"AT") {
        match next {
            None => return incomplete,
            Some(b'\n') => {}
            Some(_) => return item(Item::Echo(text(line)), term + 1),
        }
    }

    // V0 numeric result: `<digit>\r` and the next byte is not `\n`.
    if ends_with_cr && line.len() == 1 {
        if let Some(code) = Final::from_v0_digit(line[0]) {
            let v0 = match code {
                V0Code::Final(f) => Item::Final(f),
                V0Code::Ring => Item::Line("RING".to_string()),
            };
            match next {
                None if opts.numeric_results => return item(v0, term + 1),
                None => return incomplete,
                Some(b'\n') => {}
                Some(_) => return item(v0, term + 1),
            }
        }
    }

    let line_text = text(line);
    if let Some(pdu_form) = two_line_kind(&line_text) {
        // The header's own line end must be complete before the body can be located.
        if ends_with_cr && next.is_none() {
            return incomplete;
        }
        let body_start = after;
        if body_start >= buf.len() {
            return incomplete;
        }
        let body_window = buf.len().min(body_start + max + 1);
        let body_end = match find_line_end(buf, body_start, body_window, false) {
            Some(t) => t,
            None if buf.len() - body_start <= max => return incomplete,
            None => return Err(overlong(buf, body_start, max)),
        };
        let body = text(&buf[body_start..body_end]);
        let body = body.trim_end().to_string();
        let body_ok =
            !pdu_form || (!body.is_empty() && body.bytes().all(|b| b.is_ascii_hexdigit()));
        if body_ok {
            return item(
                Item::Message {
                    header: line_text,
                    body,
                },
                line_end_after(buf, body_end),
            );
        }
        // Not a PDU after a PDU-mode header: give the header alone, frame the rest normally.
        return item(Item::Line(line_text), after);
    }

    match Final::parse(&line_text) {
        Some(f) => item(Item::Final(f), after),
        None => item(Item::Line(line_text), after),
    }
}

/// Bytes that cannot start a line: line ends, other control bytes, spaces, DEL and 0xFF
/// (seen as garbage after a reset or re-enumeration, MF667.md §5.7).
fn is_noise(b: u8) -> bool {
    b <= b' ' || b == 0x7F || b == 0xFF
}

/// The index of the first `\r` or `\n` in `buf[from..to]`, outside `"…"` if `quote_aware`.
///
/// A line end inside quotes still ends the line when the line so far ends like a closed
/// `+CUSD` string, `",<number>`: an answer with an odd number of `"` in its text
/// (`+CUSD: 0,"Don"t",15`) must not stall until `max_line` bytes have arrived.
fn find_line_end(buf: &[u8], from: usize, to: usize, quote_aware: bool) -> Option<usize> {
    let mut in_quote = false;
    for (i, &b) in buf.iter().enumerate().take(to).skip(from) {
        match b {
            b'"' if quote_aware => in_quote = !in_quote,
            b'\r' | b'\n' if !in_quote || ends_with_quote_and_number(&buf[from..i]) => {
                return Some(i)
            }
            _ => {}
        }
    }
    None
}

/// `…"<spaces>,<spaces><1–3 digits><spaces>` at the end of `s`.
fn ends_with_quote_and_number(s: &[u8]) -> bool {
    fn trim_end(s: &[u8]) -> &[u8] {
        let n = s
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        &s[..s.len() - n]
    }
    let s = trim_end(s);
    let digits = s.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 3 {
        return false;
    }
    match trim_end(&s[..s.len() - digits]).split_last() {
        Some((b',', rest)) => trim_end(rest).last() == Some(&b'"'),
        _ => false,
    }
}

/// The index just past the line end at `term` (`\r\n` counts as one line end).
fn line_end_after(buf: &[u8], term: usize) -> usize {
    if buf[term] == b'\r' && buf.get(term + 1) == Some(&b'\n') {
        term + 2
    } else {
        term + 1
    }
}

fn overlong(buf: &[u8], start: usize, max: usize) -> FrameError {
    let from = (start + max).min(buf.len());
    match find_line_end(buf, from, buf.len(), false) {
        Some(t) => FrameError::LineTooLong {
            max,
            discard: line_end_after(buf, t),
            resynced: true,
        },
        None => FrameError::LineTooLong {
            max,
            discard: buf.len(),
            resynced: false,
        },
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `Some(pdu_form)` if `line` is the header of a two-line URC. PDU-mode headers have at
/// most two fields (`+CMT: [<alpha>],<len>`, `+CDS: <len>`, ZTE `+CDS: ,<len>`,
/// `+CBM: <len>`); text-mode `+CMT`/`+CBM` have more and still carry a text line, while a
/// text-mode `+CDS` has more and no second line.
fn two_line_kind(line: &str) -> Option<bool> {
    use super::fields::{payload, split};
    for (prefix, text_mode_has_body) in [("+CMT", true), ("+CBM", true), ("+CDS", false)] {
        if let Some(rest) = payload(line, prefix) {
            let n = split(rest).len();
            return if n <= 2 {
                Some(true)
            } else if text_mode_has_body {
                Some(false)
            } else {
                None
            };
        }
    }
    None
}

/// A byte buffer plus [`parse`]: push what the port gave, then take items until `None`.
///
/// ```
/// use atmate::at::framer::{Framer, Item};
/// use atmate::at::result::Final;
///
/// let mut f = Framer::default();
/// f.push(b"AT+CSQ\r\r\n+CSQ: 18,");
/// assert_eq!(f.next_item(), Some(Ok(Item::Echo("AT+CSQ".into()))));
/// assert_eq!(f.next_item(), None); // incomplete: wait for more bytes
/// f.push(b"99\r\n\r\nOK\r\n");
/// assert_eq!(f.next_item(), Some(Ok(Item::Line("+CSQ: 18,99".into()))));
/// assert_eq!(f.next_item(), Some(Ok(Item::Final(Final::Ok))));
/// assert_eq!(f.next_item(), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Framer {
    buf: Vec<u8>,
    opts: FramerOptions,
    /// Dropping the tail of an overlong line until its line end arrives.
    discarding: bool,
}

impl Framer {
    /// An empty framer.
    pub fn new(opts: FramerOptions) -> Framer {
        Framer {
            buf: Vec::new(),
            opts,
            discarding: false,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &FramerOptions {
        &self.opts
    }

    /// Say whether the modem runs `ATV0` (see [`FramerOptions::numeric_results`]).
    pub fn set_numeric_results(&mut self, on: bool) {
        self.opts.numeric_results = on;
    }

    /// Append bytes read from the port. Call [`Framer::next_item`] until it returns `None`
    /// after every push; the buffer then never holds more than about two lines.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next item, `Some(Err(..))` for an overlong line (already dropped; framing goes on
    /// at the next line end), or `None` when more bytes are needed.
    pub fn next_item(&mut self) -> Option<Result<Item, FrameError>> {
        if self.discarding {
            let t = self.buf.iter().position(|&b| b == b'\r' || b == b'\n');
            match t {
                Some(t) => {
                    self.buf.drain(..=t);
                    self.discarding = false;
                }
                None => {
                    self.buf.clear();
                    return None;
                }
            }
        }
        match parse(&self.buf, &self.opts) {
            Ok(Parsed::Item { item, consumed }) => {
                self.buf.drain(..consumed);
                Some(Ok(item))
            }
            Ok(Parsed::Incomplete { skip }) => {
                self.buf.drain(..skip);
                None
            }
            Err(e) => {
                let FrameError::LineTooLong {
                    discard, resynced, ..
                } = &e;
                self.buf.drain(..*discard);
                self.discarding = !*resynced;
                Some(Err(e))
            }
        }
    }

    /// Iterate over the items available now (see [`Framer::next_item`]).
    pub fn items(&mut self) -> impl Iterator<Item = Result<Item, FrameError>> + '_ {
        std::iter::from_fn(move || self.next_item())
    }

    /// The bytes held that do not form an item yet (for logs and diagnostics).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Drop everything buffered, e.g. after a reconnect: bytes left from an earlier session
    /// break parsing (gammu discards them at start for the ZTE MF710M, MF667.md §5.7).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::result::{CmeCode, CmsCode};
    use proptest::prelude::*;

    /// An item, or an error reduced to "an overlong line was dropped" (the discard count
    /// depends on how the bytes were split).
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Out {
        I(Item),
        TooLong,
    }

    fn drain(f: &mut Framer, out: &mut Vec<Out>) {
        for r in f.items() {
            out.push(match r {
                Ok(i) => Out::I(i),
                Err(FrameError::LineTooLong { .. }) => Out::TooLong,
            });
        }
    }

    fn frame_with(bytes: &[u8], opts: FramerOptions) -> (Vec<Out>, Vec<u8>) {
        let mut f = Framer::new(opts);
        let mut out = Vec::new();
        f.push(bytes);
        drain(&mut f, &mut out);
        (out, f.pending().to_vec())
    }

    /// Frame `bytes` whole, then split at every boundary and byte by byte, and check that
    /// every way gives the same items.
    fn check_splits(bytes: &[u8], opts: FramerOptions) -> Vec<Out> {
        let (whole, _) = frame_with(bytes, opts);
        for k in 0..=bytes.len() {
            let mut f = Framer::new(opts);
            let mut out = Vec::new();
            f.push(&bytes[..k]);
            drain(&mut f, &mut out);
            assert!(
                whole.starts_with(&out),
                "prefix of {k} bytes of {bytes:?} gave {out:?}, not a prefix of {whole:?}"
            );
            f.push(&bytes[k..]);
            drain(&mut f, &mut out);
            assert_eq!(out, whole, "split at {k} of {bytes:?}");
        }
        let mut f = Framer::new(opts);
        let mut out = Vec::new();
        for b in bytes {
            f.push(std::slice::from_ref(b));
            drain(&mut f, &mut out);
        }
        assert_eq!(out, whole, "byte by byte: {bytes:?}");
        whole
    }

    fn items(bytes: &[u8]) -> Vec<Item> {
        check_splits(bytes, FramerOptions::default())
            .into_iter()
            .map(|o| match o {
                Out::I(i) => i,
                Out::TooLong => panic!("unexpected overlong line in {bytes:?}"),
            })
            .collect()
    }

    fn line(s: &str) -> Item {
        Item::Line(s.to_string())
    }
    fn echo(s: &str) -> Item {
        Item::Echo(s.to_string())
    }
    fn msg(h: &str, b: &str) -> Item {
        Item::Message {
            header: h.to_string(),
            body: b.to_string(),
        }
    }
    const OK: Item = Item::Final(Final::Ok);

    const E1: &str =
        "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";
    const E6: &str = "079144775810065006FD0C91449771624701117013908522401170139085624000";

    #[test]
    fn mf667_echo_examples() {
        // gammu hex `41 54 0D 0D 0A 4F 4B 0D 0A` (MF667.md §1).
        assert_eq!(items(b"AT\r\r\nOK\r\n"), vec![echo("AT"), OK]);
        // The whole line is echoed even when it turns echo off.
        assert_eq!(
            items(b"ATE0+CPMS?\r\r\n+CPMS: \"SM\",3,50,\"SM\",3,50,\"SM\",3,50\r\n\r\nOK\r\n"),
            vec![
                echo("ATE0+CPMS?"),
                line("+CPMS: \"SM\",3,50,\"SM\",3,50,\"SM\",3,50"),
                OK
            ]
        );
        // Lower case echo, and the answer to it.
        assert_eq!(
            items(b"at+csq\r\r\n+CSQ: 18,99\r\n\r\nOK\r\n"),
            vec![echo("at+csq"), line("+CSQ: 18,99"), OK]
        );
    }

    #[test]
    fn mf667_verbose_answers() {
        assert_eq!(
            items(b"\r\n+CSQ: 18,99\r\n\r\nOK\r\n"),
            vec![line("+CSQ: 18,99"), OK]
        );
        assert_eq!(
            items(b"\r\nZTE CORPORATION\r\n\r\nOK\r\n"),
            vec![line("ZTE CORPORATION"), OK]
        );
        assert_eq!(
            items(b"\r\n+COPS: (2,\"o2 - de\",\"o2 - de\",\"26207\",2),(3,\"Telekom.de\",\"TDG\",\"26201\",0),,(0,1,2,3,4),(0,1,2)\r\n\r\nOK\r\n"),
            vec![
                line("+COPS: (2,\"o2 - de\",\"o2 - de\",\"26207\",2),(3,\"Telekom.de\",\"TDG\",\"26201\",0),,(0,1,2,3,4),(0,1,2)"),
                OK
            ]
        );
        // A bare number is text, not a V0 result: it ends with `\r\n`.
        assert_eq!(items(b"\r\n0\r\n\r\nOK\r\n"), vec![line("0"), OK]);
        assert_eq!(
            items(b"\r\nClose autorun state result(0:FAIL 1:SUCCESS):1\r\n\r\nOK\r\n"),
            vec![line("Close autorun state result(0:FAIL 1:SUCCESS):1"), OK]
        );
    }

    #[test]
    fn mf667_final_codes() {
        let table: &[(&[u8], Final)] = &[
            (b"\r\nERROR\r\n", Final::Error),
            (
                b"\r\n+CME ERROR: 11\r\n",
                Final::CmeError(CmeCode::Number(11)),
            ),
            (
                b"\r\n+CME ERROR: SIM busy\r\n",
                Final::CmeError(CmeCode::Text("SIM busy".into())),
            ),
            (
                b"\r\n+CMS ERROR: 322\r\n",
                Final::CmsError(CmsCode::Number(322)),
            ),
            (
                b"\r\n+CMS ERROR: 304\r\n",
                Final::CmsError(CmsCode::Number(304)),
            ),
            (b"\r\nNO CARRIER\r\n", Final::NoCarrier),
            (
                b"\r\nCONNECT 7200000\r\n",
                Final::Connect(Some("7200000".into())),
            ),
            (b"\r\nCONNECT\r\n", Final::Connect(None)),
            (b"\r\nBUSY\r\n", Final::Busy),
            (b"\r\nNO ANSWER\r\n", Final::NoAnswer),
            (b"\r\nNO DIALTONE\r\n", Final::NoDialtone),
        ];
        for (bytes, f) in table {
            assert_eq!(items(bytes), vec![Item::Final(f.clone())], "{bytes:?}");
        }
    }

    #[test]
    fn mf667_numeric_v0_forms() {
        let v0 = FramerOptions {
            numeric_results: true,
            ..FramerOptions::default()
        };
        // V0: text ends `\r\n`, the final code is `<digit>\r`.
        let got = check_splits(b"+CSQ: 18,99\r\n0\r", v0);
        assert_eq!(got, vec![Out::I(line("+CSQ: 18,99")), Out::I(OK)]);
        let got = check_splits(b"AT\r4\r", v0);
        assert_eq!(
            got,
            vec![Out::I(echo("AT")), Out::I(Item::Final(Final::Error))]
        );
        for (d, f) in [
            (b'1', Final::Connect(None)),
            (b'3', Final::NoCarrier),
            (b'6', Final::NoDialtone),
            (b'7', Final::Busy),
            (b'8', Final::NoAnswer),
        ] {
            assert_eq!(check_splits(&[d, b'\r'], v0), vec![Out::I(Item::Final(f))]);
        }
        // V0 `2` is RING, a URC.
        assert_eq!(check_splits(b"2\r", v0), vec![Out::I(line("RING"))]);
        // `5` is not a V.250 result: plain text.
        assert_eq!(check_splits(b"5\r\n", v0), vec![Out::I(line("5"))]);

        // Without the hint a trailing `0\r` waits for the next byte…
        let (got, pending) = frame_with(b"+CSQ: 18,99\r\n0\r", FramerOptions::default());
        assert_eq!(got, vec![Out::I(line("+CSQ: 18,99"))]);
        assert_eq!(pending, b"0\r");
        // …and is a V0 result as soon as anything but `\n` follows.
        assert_eq!(
            items(b"0\r+CMTI: \"SM\",3\r\n"),
            vec![OK, line("+CMTI: \"SM\",3")]
        );
        assert_eq!(items(b"AT\r0\r\r\n"), vec![echo("AT"), OK]);
    }

    #[test]
    fn mf667_send_prompt() {
        // E5 on the wire: command, prompt, PDU + ^Z, reply.
        assert_eq!(
            items(b"AT+CMGS=19\r\r\n> "),
            vec![echo("AT+CMGS=19"), Item::Prompt]
        );
        assert_eq!(items(b"\r\n> "), vec![Item::Prompt]);
        assert_eq!(
            items(b"\r\n+CMGS: 42\r\n\r\nOK\r\n"),
            vec![line("+CMGS: 42"), OK]
        );
        // With echo on the modem echoes the PDU and ^Z after the prompt.
        assert_eq!(
            items(b"\r\n> 0031000C919471103254760000AA05C8329BFD06\x1a\r\n+CMGS: 42\r\n\r\nOK\r\n"),
            vec![
                Item::Prompt,
                line("0031000C919471103254760000AA05C8329BFD06\x1a"),
                line("+CMGS: 42"),
                OK
            ]
        );
        // Text mode: a prompt after every CR typed in the body.
        assert_eq!(items(b"\r\n> \r\n> "), vec![Item::Prompt, Item::Prompt]);
        // A prompt with no space.
        assert_eq!(items(b"\r\n>"), vec![Item::Prompt]);
    }

    #[test]
    fn mf667_zte_urcs_before_the_prompt() {
        // [pgm] ZTE test: URCs between the command and `> ` (MF667.md §1).
        assert_eq!(
            items(b"AT+CMGS=19\r\r\n+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"\r\n\r\n+ZPASR: \"UMTS\"\r\n\r\n> "),
            vec![
                echo("AT+CMGS=19"),
                line("+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\""),
                line("+ZPASR: \"UMTS\""),
                Item::Prompt
            ]
        );
        // And a URC right after the prompt.
        assert_eq!(
            items(b"\r\n> \r\n+CMTI: \"SM\",3\r\n"),
            vec![Item::Prompt, line("+CMTI: \"SM\",3")]
        );
    }

    #[test]
    fn mf667_cmgl_listings() {
        let pdu = format!("\r\n+CMGL: 0,1,,34\r\n{E1}\r\n+CMGL: 1,0,,25\r\n{E6}\r\n\r\nOK\r\n");
        assert_eq!(
            items(pdu.as_bytes()),
            vec![
                line("+CMGL: 0,1,,34"),
                line(E1),
                line("+CMGL: 1,0,,25"),
                line(E6),
                OK
            ]
        );
        // Text mode, real [pgm] data.
        assert_eq!(
            items(b"\r\n+CMGL: 0,\"REC UNREAD\",\"+27748577604\",,\"13/01/28,14:51:42+08\"\r\nHello raspberry pi\r\n\r\nOK\r\n"),
            vec![
                line("+CMGL: 0,\"REC UNREAD\",\"+27748577604\",,\"13/01/28,14:51:42+08\""),
                line("Hello raspberry pi"),
                OK
            ]
        );
        let cmgr = format!("\r\n+CMGR: 0,,34\r\n{E1}\r\n\r\nOK\r\n");
        assert_eq!(
            items(cmgr.as_bytes()),
            vec![line("+CMGR: 0,,34"), line(E1), OK]
        );
    }

    #[test]
    fn mf667_cusd_forms() {
        assert_eq!(
            items(b"\r\nOK\r\n\r\n+CUSD: 0,\"Balance: 10.00 EUR\",15\r\n"),
            vec![OK, line("+CUSD: 0,\"Balance: 10.00 EUR\",15")]
        );
        let ucs2 = "+CUSD: 0,\"00420061006C0061006E00630065003A002000310030002E003000300020004500550052\",72";
        assert_eq!(
            items(format!("\r\n{ucs2}\r\n").as_bytes()),
            vec![line(ucs2)]
        );
        let eight = "+CUSD: 0,\"42616C616E63653A2031302E303020455552\",68";
        assert_eq!(
            items(format!("\r\n{eight}\r\n").as_bytes()),
            vec![line(eight)]
        );
        // Multi-line string: never split inside the quotes.
        assert_eq!(
            items(b"\r\n+CUSD: 1,\"1. Balance\r\n2. Bundles\r\n\r\n3. Exit\",15\r\n\r\nOK\r\n"),
            vec![
                line("+CUSD: 1,\"1. Balance\r\n2. Bundles\r\n\r\n3. Exit\",15"),
                OK
            ]
        );
        assert_eq!(items(b"\r\n+CUSD: 2\r\n"), vec![line("+CUSD: 2")]);
        // Vodacom's spurious release before the real answer (MF667.md §2.3).
        assert_eq!(
            items(b"\r\n+CUSD: 2,\"Initiating Release\",15\r\n\r\n+CUSD: 0,\"Done\",15\r\n"),
            vec![
                line("+CUSD: 2,\"Initiating Release\",15"),
                line("+CUSD: 0,\"Done\",15")
            ]
        );
    }

    #[test]
    fn an_odd_quote_inside_a_cusd_text_does_not_stall() {
        assert_eq!(
            items(b"\r\n+CUSD: 0,\"Don\"t worry\",15\r\n\r\nOK\r\n"),
            vec![line("+CUSD: 0,\"Don\"t worry\",15"), OK]
        );
        // A stray quote on the last line of a multi-line text, spaces around the DCS.
        assert_eq!(
            items(b"\r\n+CUSD: 1,\"a\r\nb\"c\" , 72 \r\n"),
            vec![line("+CUSD: 1,\"a\r\nb\"c\" , 72 ")]
        );
        assert!(ends_with_quote_and_number(b"x\",15"));
        assert!(!ends_with_quote_and_number(b"x\",1500"));
        assert!(!ends_with_quote_and_number(b"x,15"));
        assert!(!ends_with_quote_and_number(b""));
    }

    #[test]
    fn mf667_creg_forms() {
        assert_eq!(
            items(b"\r\n+CREG: 2,1,1A2B,00C3F1E2\r\n\r\nOK\r\n"),
            vec![line("+CREG: 2,1,1A2B,00C3F1E2"), OK]
        );
        assert_eq!(
            items(b"\r\n+CREG: 2,1,\"1A2B\",\"00C3F1E2\",2\r\n\r\nOK\r\n"),
            vec![line("+CREG: 2,1,\"1A2B\",\"00C3F1E2\",2"), OK]
        );
        // An unsolicited line inside the solicited reply (oFono's ZTE trick).
        assert_eq!(
            items(b"\r\n+CREG: 1\r\n\r\n+CREG: 0,1\r\n\r\nOK\r\n"),
            vec![line("+CREG: 1"), line("+CREG: 0,1"), OK]
        );
    }

    #[test]
    fn mf667_two_line_urcs() {
        let cmt = format!("\r\n+CMT: ,34\r\n{E1}\r\n");
        assert_eq!(items(cmt.as_bytes()), vec![msg("+CMT: ,34", E1)]);
        let cmt_alpha = format!("\r\n+CMT: \"Mum\",34\r\n{E1}\r\n");
        assert_eq!(
            items(cmt_alpha.as_bytes()),
            vec![msg("+CMT: \"Mum\",34", E1)]
        );
        // ZTE's leading comma.
        let cds = format!("\r\n+CDS: ,25\r\n{E6}\r\n");
        assert_eq!(items(cds.as_bytes()), vec![msg("+CDS: ,25", E6)]);
        let cds_std = format!("\r\n+CDS: 25\r\n{E6}\r\n\r\n+CDSI: \"SR\",50\r\n");
        assert_eq!(
            items(cds_std.as_bytes()),
            vec![msg("+CDS: 25", E6), line("+CDSI: \"SR\",50")]
        );
        // Text-mode +CMT carries the text; text-mode +CDS is one line.
        assert_eq!(
            items(b"\r\n+CMT: \"+27748577604\",,\"13/01/28,14:51:42+08\"\r\nOK then\r\n"),
            vec![msg(
                "+CMT: \"+27748577604\",,\"13/01/28,14:51:42+08\"",
                "OK then"
            )]
        );
        assert_eq!(
            items(b"\r\n+CDS: 6,20,\"0870000000\",129,\"13/04/29,19:58:00+04\",\"13/04/29,19:59:00+04\",0\r\n\r\nOK\r\n"),
            vec![
                line("+CDS: 6,20,\"0870000000\",129,\"13/04/29,19:58:00+04\",\"13/04/29,19:59:00+04\",0"),
                OK
            ]
        );
        // A PDU-mode header followed by something that is not a PDU: header alone.
        assert_eq!(
            items(b"\r\n+CMT: ,34\r\nOK\r\n"),
            vec![line("+CMT: ,34"), OK]
        );
        assert_eq!(
            items(b"\r\n+CBM: 88\r\n0011223344\r\n"),
            vec![msg("+CBM: 88", "0011223344")]
        );
    }

    #[test]
    fn mf667_call_and_zte_urcs() {
        assert_eq!(
            items(b"\r\nRING\r\n\r\n+CRING: VOICE\r\n\r\n+CLIP: \"+4917612345678\",145,,,,0\r\n\r\nHANGUP: 1\r\n"),
            vec![
                line("RING"),
                line("+CRING: VOICE"),
                line("+CLIP: \"+4917612345678\",145,,,,0"),
                line("HANGUP: 1")
            ]
        );
        assert_eq!(
            items(b"\r\n+ZUSIMR:2\r\n\r\n+ZEND\r\n\r\n+ZPASR: \"UMTS\",\"CS_PS\"\r\n"),
            vec![
                line("+ZUSIMR:2"),
                line("+ZEND"),
                line("+ZPASR: \"UMTS\",\"CS_PS\"")
            ]
        );
    }

    #[test]
    fn garbage_is_skipped_without_panic() {
        assert_eq!(items(b"\x00\xff\xff\n\n\r\r\nOK\r\n"), vec![OK]);
        assert_eq!(items(b"\n\n\n"), Vec::<Item>::new());
        // gammu's blind `ESC \r` echoed back.
        assert_eq!(items(b"\x1b\r\r\nOK\r\n"), vec![OK]);
        // Invalid UTF-8 inside a line is replaced, not fatal.
        assert_eq!(items(b"\r\nAB\xffCD\r\n"), vec![line("AB\u{FFFD}CD")]);
        // Stray bare `\n` line ends.
        assert_eq!(items(b"+CSQ: 1,2\nOK\n"), vec![line("+CSQ: 1,2"), OK]);
    }

    #[test]
    fn overlong_lines_error_and_resync_at_the_next_line_end() {
        let opts = FramerOptions {
            max_line: 16,
            ..FramerOptions::default()
        };
        let mut bytes = b"\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'A', 40));
        bytes.extend_from_slice(b"\r\n+CSQ: 18,99\r\n\r\nOK\r\n");
        let got = check_splits(&bytes, opts);
        assert_eq!(
            got,
            vec![Out::TooLong, Out::I(line("+CSQ: 18,99")), Out::I(OK)]
        );

        // The pure function says exactly what to drop.
        match parse(&bytes, &opts) {
            Err(FrameError::LineTooLong {
                max,
                discard,
                resynced,
            }) => {
                assert_eq!(max, 16);
                assert!(resynced);
                assert_eq!(&bytes[discard..], b"+CSQ: 18,99\r\n\r\nOK\r\n");
            }
            other => panic!("{other:?}"),
        }
        // Without the line end yet: drop all, keep dropping.
        match parse(&bytes[..30], &opts) {
            Err(FrameError::LineTooLong {
                discard, resynced, ..
            }) => {
                assert_eq!(discard, 30);
                assert!(!resynced);
            }
            other => panic!("{other:?}"),
        }
        // Exactly max_line bytes is fine.
        let mut ok = b"\r\n".to_vec();
        ok.extend(std::iter::repeat_n(b'B', 16));
        ok.extend_from_slice(b"\r\n");
        assert_eq!(check_splits(&ok, opts), vec![Out::I(line(&"B".repeat(16)))]);
    }

    #[test]
    fn an_unbalanced_quote_costs_one_line_not_the_stream() {
        let opts = FramerOptions {
            max_line: 64,
            ..FramerOptions::default()
        };
        let mut bytes = b"\r\n+CUSD: 0,\"abc\r\n\r\nOK\r\n".to_vec();
        for _ in 0..6 {
            bytes.extend_from_slice(b"\r\n+CSQ: 18,99\r\n");
        }
        let got = check_splits(&bytes, opts);
        let mut want = vec![Out::I(line("+CUSD: 0,\"abc")), Out::I(OK)];
        want.extend(std::iter::repeat_n(Out::I(line("+CSQ: 18,99")), 6));
        assert_eq!(got, want);
        // Until the limit is reached the framer waits for the closing quote.
        let (got, _) = frame_with(b"\r\n+CUSD: 0,\"abc\r\n\r\nOK\r\n", opts);
        assert_eq!(got, vec![]);
    }

    #[test]
    fn error_message_is_clear() {
        let e = FrameError::LineTooLong {
            max: 4096,
            discard: 5000,
            resynced: false,
        };
        assert_eq!(
            e.to_string(),
            "line longer than 4096 bytes: dropping 5000 bytes and everything up to the next line end"
        );
    }

    #[test]
    fn clear_forgets_stale_bytes() {
        let mut f = Framer::default();
        f.push(b"\r\n+CSQ: 1");
        assert_eq!(f.next_item(), None);
        f.clear();
        f.push(b"\r\nOK\r\n");
        assert_eq!(f.next_item(), Some(Ok(OK)));
        assert!(f.pending().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(384))]

        /// Arbitrary bytes never panic and always make progress.
        #[test]
        fn arbitrary_bytes_always_make_progress(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            max in 16usize..128,
            numeric in any::<bool>(),
        ) {
            let opts = FramerOptions { max_line: max, numeric_results: numeric };
            let mut pos = 0;
            loop {
                match parse(&bytes[pos..], &opts) {
                    Ok(Parsed::Item { consumed, .. }) => {
                        prop_assert!(consumed > 0);
                        pos += consumed;
                    }
                    Ok(Parsed::Incomplete { skip }) => {
                        prop_assert!(pos + skip <= bytes.len());
                        // What is left is at most one pending item (two lines for +CMT).
                        prop_assert!(bytes.len() - pos - skip <= 2 * max + 4);
                        break;
                    }
                    Err(FrameError::LineTooLong { discard, .. }) => {
                        prop_assert!(discard > 0);
                        pos += discard;
                    }
                }
                prop_assert!(pos <= bytes.len());
            }
        }

        /// Bytes in arbitrary chunks: the buffer stays bounded and nothing panics.
        #[test]
        fn the_framer_buffer_stays_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..30),
        ) {
            let opts = FramerOptions { max_line: 32, numeric_results: false };
            let mut f = Framer::new(opts);
            for c in &chunks {
                f.push(c);
                while f.next_item().is_some() {}
                prop_assert!(f.pending().len() <= 2 * 32 + 4);
            }
        }

        /// Realistic modem output (lines, finals, echo, prompts, two-line URCs, multi-line
        /// +CUSD), split at two arbitrary points, frames back to what went in.
        #[test]
        fn modem_output_survives_any_split(
            parts in proptest::collection::vec(arb_output(), 1..8),
            cut1 in any::<proptest::sample::Index>(),
            cut2 in any::<proptest::sample::Index>(),
        ) {
            let mut bytes = Vec::new();
            let mut want = Vec::new();
            for (b, item) in &parts {
                bytes.extend_from_slice(b);
                want.push(Out::I(item.clone()));
            }
            // Something always follows in real life (an echo waits for the next byte).
            bytes.extend_from_slice(b"\r\nOK\r\n");
            want.push(Out::I(OK));
            let mut cuts = [cut1.index(bytes.len() + 1), cut2.index(bytes.len() + 1)];
            cuts.sort_unstable();
            let mut f = Framer::default();
            let mut out = Vec::new();
            for chunk in [&bytes[..cuts[0]], &bytes[cuts[0]..cuts[1]], &bytes[cuts[1]..]] {
                f.push(chunk);
                drain(&mut f, &mut out);
            }
            prop_assert_eq!(out, want);
            prop_assert!(f.pending().is_empty());
        }
    }

    /// One piece of modem output and the item it must frame to.
    fn arb_output() -> impl Strategy<Value = (Vec<u8>, Item)> {
        let text_line = "[A-Za-z0-9][A-Za-z0-9+:,. ]{0,30}[A-Za-z0-9]"
            .prop_filter("not a two-line URC header", |l| two_line_kind(l).is_none())
            .prop_map(|l| {
                let item = Final::parse(&l).map_or_else(|| line(&l), Item::Final);
                (format!("\r\n{l}\r\n").into_bytes(), item)
            });
        let finals = prop_oneof![
            Just(Final::Ok),
            Just(Final::Error),
            (0u16..600).prop_map(|n| Final::CmeError(CmeCode::Number(n))),
            (0u16..600).prop_map(|n| Final::CmsError(CmsCode::Number(n))),
            Just(Final::CmeError(CmeCode::Text("SIM busy".into()))),
            Just(Final::NoCarrier),
            Just(Final::Connect(Some("7200000".into()))),
        ]
        .prop_map(|f| (format!("\r\n{f}\r\n").into_bytes(), Item::Final(f)));
        let echo = "AT[+A-Z0-9=?,]{0,12}".prop_map(|e| (format!("{e}\r").into_bytes(), echo(&e)));
        let prompt = Just((b"\r\n> ".to_vec(), Item::Prompt));
        let message = (
            proptest::collection::vec(any::<u8>(), 1..40),
            proptest::option::of("[A-Za-z]{1,8}"),
        )
            .prop_map(|(pdu, alpha)| {
                let hex: String = pdu.iter().map(|b| format!("{b:02X}")).collect();
                let header = match alpha {
                    Some(a) => format!("+CMT: \"{a}\",{}", pdu.len()),
                    None => format!("+CDS: ,{}", pdu.len()),
                };
                (
                    format!("\r\n{header}\r\n{hex}\r\n").into_bytes(),
                    msg(&header, &hex),
                )
            });
        let cusd =
            ("[A-Za-z0-9 .:]{0,20}", "[A-Za-z0-9 .:]{0,20}", 0u8..6).prop_map(|(a, b, m)| {
                let l = format!("+CUSD: {m},\"{a}\r\n{b}\",15");
                (format!("\r\n{l}\r\n").into_bytes(), line(&l))
            });
        prop_oneof![4 => text_line, 2 => finals, 1 => echo, 1 => prompt, 1 => message, 1 => cusd]
    }
}
