//! The wire log: every byte the stick received or sent, per port, time-stamped.
//!
//! Tests assert on it (`AT+ZOPRT=5` was received); `atmate sim --transcript FILE` writes it
//! as one line per chunk: `<seconds since start> if0N <direction> <escaped bytes>`, e.g.
//! `0.512 if01 >> AT+CSQ\r` and `0.512 if01 << \r\n+CSQ: 18,99\r\n\r\nOK\r\n`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the host (DTE) to the stick: `>>` in transcripts.
    ToStick,
    /// From the stick to the host: `<<` in transcripts.
    FromStick,
}

/// One chunk of bytes on one port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WireEntry {
    /// Time since the simulator started (tokio time, so paused tests see virtual time).
    pub at: Duration,
    /// Interface number (0, 1, 2).
    pub iface: u8,
    /// Direction.
    pub dir: Direction,
    /// The bytes, exactly.
    pub bytes: Vec<u8>,
}

impl WireEntry {
    /// The transcript line (without the newline).
    pub fn transcript_line(&self) -> String {
        format!(
            "{}.{:03} if{:02} {} {}",
            self.at.as_secs(),
            self.at.subsec_millis(),
            self.iface,
            match self.dir {
                Direction::ToStick => ">>",
                Direction::FromStick => "<<",
            },
            escape(&self.bytes)
        )
    }
}

/// Bytes as printable text: `\r`, `\n`, `\\`, `^Z` as `\x1a`, others non-printable as `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// The inverse of [`escape`], also used for `atmate sim garbage 'AT\r\n\x1a'`: `\r`, `\n`,
/// `\t`, `\e` (ESC), `\z` (Ctrl-Z), `\\`, `\xHH`. An unknown or cut escape is an error.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let Some(&e) = b.get(i + 1) else {
            return Err("a lone \\ at the end".into());
        };
        i += 2;
        match e {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'e' => out.push(0x1b),
            b'z' => out.push(0x1a),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = b
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("\\x needs two hex digits at byte {}", i - 2))?;
                out.push(hex);
                i += 2;
            }
            other => return Err(format!("unknown escape \\{}", char::from(other))),
        }
    }
    Ok(out)
}

/// The log: a bounded buffer plus a broadcast for live followers.
#[derive(Debug)]
pub(crate) struct WireLog {
    start: Instant,
    entries: Mutex<VecDeque<WireEntry>>,
    tx: broadcast::Sender<WireEntry>,
}

/// Oldest entries are dropped beyond this many (a flood test must not eat memory).
const MAX_ENTRIES: usize = 50_000;

impl WireLog {
    pub(crate) fn new(start: Instant) -> Self {
        let (tx, _) = broadcast::channel(4096);
        WireLog {
            start,
            entries: Mutex::new(VecDeque::new()),
            tx,
        }
    }

    pub(crate) fn record(&self, iface: u8, dir: Direction, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let e = WireEntry {
            at: Instant::now().saturating_duration_since(self.start),
            iface,
            dir,
            bytes: bytes.to_vec(),
        };
        let _ = self.tx.send(e.clone());
        let mut q = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= MAX_ENTRIES {
            q.pop_front();
        }
        q.push_back(e);
    }

    pub(crate) fn snapshot(&self) -> Vec<WireEntry> {
        let q = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<WireEntry> {
        self.tx.subscribe()
    }
}

/// All bytes in one direction on one port, concatenated (handy for assertions).
pub fn joined(entries: &[WireEntry], iface: u8, dir: Direction) -> Vec<u8> {
    entries
        .iter()
        .filter(|e| e.iface == iface && e.dir == dir)
        .flat_map(|e| e.bytes.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_shows_control_bytes() {
        assert_eq!(escape(b"AT\r\n"), "AT\\r\\n");
        assert_eq!(escape(b"\x1a\x1b\\"), "\\x1a\\x1b\\\\");
        assert_eq!(escape("€".as_bytes()), "\\xe2\\x82\\xac");
    }

    #[test]
    fn unescape_inverts_escape_and_knows_shortcuts() {
        for raw in [&b"AT\r\n"[..], b"\x00\xff\x1a", b"a\\b"] {
            assert_eq!(unescape(&escape(raw)).expect("valid"), raw);
        }
        assert_eq!(unescape(r"\e\z\t").expect("valid"), vec![0x1b, 0x1a, b'\t']);
        assert!(unescape(r"\q").is_err());
        assert!(unescape(r"\x4").is_err());
        assert!(unescape("\\").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_carry_virtual_time_and_order() {
        let log = WireLog::new(Instant::now());
        let mut rx = log.subscribe();
        log.record(1, Direction::ToStick, b"AT\r");
        tokio::time::advance(Duration::from_millis(1500)).await;
        log.record(1, Direction::FromStick, b"\r\nOK\r\n");
        log.record(1, Direction::FromStick, b"");
        let all = log.snapshot();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].at, Duration::from_millis(1500));
        assert_eq!(all[1].transcript_line(), "1.500 if01 << \\r\\nOK\\r\\n");
        assert_eq!(rx.recv().await.expect("live").bytes, b"AT\r");
        assert_eq!(joined(&all, 1, Direction::FromStick), b"\r\nOK\r\n");
    }
}
