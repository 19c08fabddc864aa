//! The USSD session state `<m>` of `+CUSD: <m>[,<str>,<dcs>]` (27.007 §7.15).

use std::fmt;

/// What the network says about the session with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// 0: no further user action required (the session ended with this answer).
    Done,
    /// 1: further user action required (a menu): answer with `AT+CUSD=1,"<reply>",15`.
    ActionRequired,
    /// 2: USSD terminated by the network. Vodacom sends a spurious
    /// `+CUSD: 2,"Initiating Release",15` before the real answer (MF667.md §2.3).
    TerminatedByNetwork,
    /// 3: another local client has responded.
    OtherClient,
    /// 4: operation not supported (the code is unknown to the network, or the modem refused).
    NotSupported,
    /// 5: network time out.
    NetworkTimeout,
}

impl SessionState {
    /// From `<m>`; `None` outside 0–5.
    pub fn from_code(m: u8) -> Option<SessionState> {
        Some(match m {
            0 => SessionState::Done,
            1 => SessionState::ActionRequired,
            2 => SessionState::TerminatedByNetwork,
            3 => SessionState::OtherClient,
            4 => SessionState::NotSupported,
            5 => SessionState::NetworkTimeout,
            _ => return None,
        })
    }

    /// `<m>`.
    pub fn code(&self) -> u8 {
        match self {
            SessionState::Done => 0,
            SessionState::ActionRequired => 1,
            SessionState::TerminatedByNetwork => 2,
            SessionState::OtherClient => 3,
            SessionState::NotSupported => 4,
            SessionState::NetworkTimeout => 5,
        }
    }

    /// `true` only for 1: the session is still open and waits for our reply (cancel it
    /// with `AT+CUSD=2` before starting another request, MF667.md §5.6).
    pub fn is_open(&self) -> bool {
        matches!(self, SessionState::ActionRequired)
    }

    /// `true` for 4 and 5: the request failed (2 and 3 may still carry a useful text).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            SessionState::NotSupported | SessionState::NetworkTimeout
        )
    }

    /// A short English description.
    pub fn describe(&self) -> &'static str {
        match self {
            SessionState::Done => "done",
            SessionState::ActionRequired => "further action required",
            SessionState::TerminatedByNetwork => "terminated by network",
            SessionState::OtherClient => "other local client responded",
            SessionState::NotSupported => "operation not supported",
            SessionState::NetworkTimeout => "network timeout",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_classify() {
        for m in 0..=5u8 {
            let s = SessionState::from_code(m).expect("0..=5");
            assert_eq!(s.code(), m);
        }
        assert_eq!(SessionState::from_code(6), None);
        assert_eq!(SessionState::from_code(255), None);
        assert!(SessionState::ActionRequired.is_open());
        assert!(!SessionState::Done.is_open());
        assert!(SessionState::NotSupported.is_failure());
        assert!(SessionState::NetworkTimeout.is_failure());
        assert!(!SessionState::TerminatedByNetwork.is_failure());
        assert_eq!(
            SessionState::TerminatedByNetwork.to_string(),
            "terminated by network"
        );
    }
}
