//! Errors of the modem engine.

use std::time::Duration;

/// Why a modem request failed. Messages are shown to users as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModemError {
    /// The port is not open (USB link down, device missing) or went away during the request.
    #[error("modem {modem} disconnected: {reason}")]
    Disconnected {
        /// Modem name.
        modem: String,
        /// What happened.
        reason: String,
    },
    /// The device could not be opened.
    #[error("cannot open {device}: {reason}")]
    Open {
        /// Device path or address.
        device: String,
        /// Why, with a hint.
        reason: String,
    },
    /// The modem answered the command with an error final result code.
    #[error("{command} failed: {result}")]
    Command {
        /// The command line sent (without CR; a PIN is masked).
        command: String,
        /// The final result code as the modem sent it (`+CMS ERROR: 322`), with its meaning.
        result: String,
        /// The numeric CME/CMS code, when there was one.
        code: Option<ErrorCode>,
    },
    /// No final result code arrived in time.
    #[error("{command}: no answer within {timeout:?}")]
    Timeout {
        /// The command line sent.
        command: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The answer could not be understood.
    #[error("{command}: unexpected answer: {detail}")]
    Protocol {
        /// The command line sent.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The request is not valid (bad argument, busy USSD session).
    #[error("{0}")]
    Invalid(String),
    /// The durable store failed; nothing was deleted from the SIM.
    #[error("store: {0}")]
    Persist(String),
    /// The modem actor is gone (daemon shutting down).
    #[error("modem {0} is shut down")]
    Shutdown(String),
}

/// A numeric `+CME ERROR` / `+CMS ERROR` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 27.007 equipment error.
    Cme(u16),
    /// 27.005 message service error.
    Cms(u16),
}

impl ModemError {
    /// True when retrying later may help: link down, timeouts, SIM busy, no network,
    /// network timeout (27.007 CME 14/30/31, 27.005 CMS 314/331/332/500).
    pub fn is_transient(&self) -> bool {
        match self {
            ModemError::Disconnected { .. } | ModemError::Timeout { .. } => true,
            ModemError::Command { code, .. } => matches!(
                code,
                Some(ErrorCode::Cme(14 | 30 | 31 | 100))
                    | Some(ErrorCode::Cms(314 | 331 | 332 | 500))
            ),
            _ => false,
        }
    }
}
