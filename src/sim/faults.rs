//! Faults that act on the next command of a port: a URC at an awkward moment, a slow answer.
//!
//! The other faults are state changes of the device (unplug, network loss, storage full,
//! SIM removed, PIN) or raw bytes (garbage, `+ZUSIMR` floods) and live in
//! [`crate::sim::SimHandle`]'s methods.

use std::time::Duration;

/// Where in the next answer an armed URC is slipped in (MF667.md §1: on ZTE, URCs arrive
/// between a command and `> `, and before `+CMGS:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrcMoment {
    /// Right after the echo of the next command line, before its information text.
    AfterEcho,
    /// Right before the `\r\n> ` prompt of the next `+CMGS`/`+CMGW`.
    BeforePrompt,
    /// Right before the final result code (`OK`, `ERROR`) of the next command.
    BeforeFinal,
}

impl UrcMoment {
    /// Parse `after_echo`/`after-echo`, `before_prompt`, `before_final`.
    pub fn parse(s: &str) -> Option<UrcMoment> {
        match s.replace('-', "_").as_str() {
            "after_echo" => Some(UrcMoment::AfterEcho),
            "before_prompt" => Some(UrcMoment::BeforePrompt),
            "before_final" => Some(UrcMoment::BeforeFinal),
            _ => None,
        }
    }
}

/// A URC waiting for its moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArmedUrc {
    pub moment: UrcMoment,
    /// The URC line without framing (`+CREG: 2`); framed `\r\n…\r\n` when sent.
    pub line: String,
    /// Only on this port; `None` = the first AT port whose command reaches the moment.
    pub iface: Option<u8>,
}

/// Answers delayed before their final result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlowAnswer {
    /// Upper-cased command-line prefix (`AT+CMGS`); `None` = every command.
    pub prefix: Option<String>,
    pub delay: Duration,
    /// How many more answers to slow down; `None` = until cleared.
    pub remaining: Option<u32>,
}

/// Armed faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub urcs: Vec<ArmedUrc>,
    pub slow: Vec<SlowAnswer>,
}

impl Faults {
    /// Take the armed URC for `iface` at `moment`, framed.
    pub(crate) fn take_urc(&mut self, iface: u8, moment: UrcMoment) -> Option<Vec<u8>> {
        let pos = self
            .urcs
            .iter()
            .position(|u| u.moment == moment && u.iface.is_none_or(|i| i == iface))?;
        let u = self.urcs.remove(pos);
        Some(format!("\r\n{}\r\n", u.line).into_bytes())
    }

    /// The delay for a command line (upper-cased by the caller), counting one use.
    pub(crate) fn slow_delay(&mut self, line_upper: &str) -> Option<Duration> {
        let pos = self.slow.iter().position(|s| {
            s.prefix
                .as_deref()
                .is_none_or(|p| line_upper.starts_with(p))
        })?;
        let s = &mut self.slow[pos];
        let d = s.delay;
        if let Some(n) = &mut s.remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.slow.remove(pos);
            }
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_urc_fires_once_on_the_right_port_and_moment() {
        let mut f = Faults::default();
        f.urcs.push(ArmedUrc {
            moment: UrcMoment::BeforeFinal,
            line: "+CREG: 2".into(),
            iface: Some(2),
        });
        assert_eq!(f.take_urc(1, UrcMoment::BeforeFinal), None);
        assert_eq!(f.take_urc(2, UrcMoment::AfterEcho), None);
        assert_eq!(
            f.take_urc(2, UrcMoment::BeforeFinal),
            Some(b"\r\n+CREG: 2\r\n".to_vec())
        );
        assert_eq!(f.take_urc(2, UrcMoment::BeforeFinal), None);
    }

    #[test]
    fn slow_answers_match_prefix_and_count_down() {
        let mut f = Faults::default();
        f.slow.push(SlowAnswer {
            prefix: Some("AT+CMGS".into()),
            delay: Duration::from_secs(2),
            remaining: Some(2),
        });
        assert_eq!(f.slow_delay("AT+CSQ"), None);
        assert_eq!(f.slow_delay("AT+CMGS=19"), Some(Duration::from_secs(2)));
        assert_eq!(f.slow_delay("AT+CMGS=19"), Some(Duration::from_secs(2)));
        assert_eq!(f.slow_delay("AT+CMGS=19"), None);
    }

    #[test]
    fn moments_parse_in_both_spellings() {
        assert_eq!(UrcMoment::parse("after-echo"), Some(UrcMoment::AfterEcho));
        assert_eq!(
            UrcMoment::parse("before_prompt"),
            Some(UrcMoment::BeforePrompt)
        );
        assert_eq!(UrcMoment::parse("never"), None);
    }
}
