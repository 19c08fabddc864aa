//! `Host`: everything rules and scripts may ask of the outside world.
//!
//! Rules and scripts never see the modem port or `ModemHandle`; the runtime hands them
//! a `Host` made of the handle, the send policy (allowlist, budgets) and the store.
//! A `Host` value is scoped to one modem (the rule's `modem:`, or the only one).
//! Tests hand them a [`testing::RecordingHost`] instead.

use async_trait::async_trait;

use crate::event::{Signal, UssdReply};

/// Why a host call failed. The message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The modem answered with an error, or is not connected.
    #[error("modem: {0}")]
    Modem(String),
    /// A safety policy (send budget, allowlist) refused the call.
    #[error("refused: {0}")]
    Policy(String),
    /// The call took too long.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Anything else (store failure, bad argument).
    #[error("{0}")]
    Other(String),
}

/// A message from the archive, as `inbox(n)` returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InboxEntry {
    /// Archive id.
    pub id: i64,
    /// Sender.
    pub from: String,
    /// Text.
    pub text: String,
    /// RFC 3339 time stamp (SCTS, else the time it was archived).
    pub timestamp: String,
    /// True if parts were missing.
    pub incomplete: bool,
}

/// What rules and scripts may do. Implemented by the runtime; every method reaches
/// the modem through the shared handle, so nothing fights over the port.
#[async_trait]
pub trait Host: Send + Sync {
    /// Send an SMS (split into parts as needed). Returns the outbox id.
    async fn send_sms(&self, to: &str, text: &str) -> Result<i64, HostError>;
    /// Start a USSD session (`*100#`) and wait for the reply.
    async fn ussd(&self, code: &str) -> Result<UssdReply, HostError>;
    /// Answer a USSD menu (session state 1).
    async fn ussd_reply(&self, text: &str) -> Result<UssdReply, HostError>;
    /// Cancel the USSD session, if any.
    async fn ussd_cancel(&self) -> Result<(), HostError>;
    /// Send a raw AT command; returns the information text (lines joined by `\n`).
    /// A final `ERROR` is an error.
    async fn at(&self, command: &str) -> Result<String, HostError>;
    /// Current signal quality.
    async fn signal(&self) -> Result<Signal, HostError>;
    /// Modem facts (manufacturer, model, IMEI, operator, network state, …) as JSON.
    async fn modem_info(&self) -> Result<serde_json::Value, HostError>;
    /// The newest `n` received messages, newest first.
    async fn inbox(&self, n: usize) -> Result<Vec<InboxEntry>, HostError>;
    /// Read a persistent value.
    async fn store_get(&self, key: &str) -> Result<Option<serde_json::Value>, HostError>;
    /// Write a persistent value.
    async fn store_set(&self, key: &str, value: serde_json::Value) -> Result<(), HostError>;
    /// Turn the modem's automatic network recovery on or off (a rule that handles
    /// network loss itself turns it off, so the two don't pile up).
    async fn set_recovery(&self, enabled: bool) -> Result<(), HostError>;
}

/// Test doubles that ship with the code (STYLE habit 11).
pub mod testing {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// One recorded call.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Call {
        /// `send_sms(to, text)`
        SendSms(String, String),
        /// `ussd(code)`
        Ussd(String),
        /// `ussd_reply(text)`
        UssdReply(String),
        /// `ussd_cancel()`
        UssdCancel,
        /// `at(command)`
        At(String),
        /// `set_recovery(enabled)`
        SetRecovery(bool),
    }

    /// A `Host` that records calls and answers from canned values.
    #[derive(Default)]
    pub struct RecordingHost {
        /// Calls in order.
        pub calls: Mutex<Vec<Call>>,
        /// Replies for `ussd(code)` by code; unknown codes answer status 4.
        pub ussd_replies: Mutex<HashMap<String, UssdReply>>,
        /// Replies for `at(command)` by command; unknown commands answer "".
        pub at_replies: Mutex<HashMap<String, Result<String, HostError>>>,
        /// The key-value store.
        pub kv: Mutex<HashMap<String, serde_json::Value>>,
        /// The signal `signal()` returns.
        pub csq: Mutex<u8>,
    }

    impl RecordingHost {
        /// A fresh host with signal csq 18.
        pub fn new() -> RecordingHost {
            let h = RecordingHost::default();
            *h.csq.lock().expect("lock") = 18;
            h
        }

        /// The calls so far.
        pub fn calls(&self) -> Vec<Call> {
            self.calls.lock().expect("lock").clone()
        }

        /// The SMS sent so far, as (to, text).
        pub fn sent_sms(&self) -> Vec<(String, String)> {
            self.calls()
                .into_iter()
                .filter_map(|c| match c {
                    Call::SendSms(to, text) => Some((to, text)),
                    _ => None,
                })
                .collect()
        }

        fn record(&self, c: Call) {
            self.calls.lock().expect("lock").push(c);
        }
    }

    #[async_trait]
    impl Host for RecordingHost {
        async fn send_sms(&self, to: &str, text: &str) -> Result<i64, HostError> {
            self.record(Call::SendSms(to.into(), text.into()));
            Ok(self.calls.lock().expect("lock").len() as i64)
        }
        async fn ussd(&self, code: &str) -> Result<UssdReply, HostError> {
            self.record(Call::Ussd(code.into()));
            Ok(self
                .ussd_replies
                .lock()
                .expect("lock")
                .get(code)
                .cloned()
                .unwrap_or(UssdReply {
                    text: String::new(),
                    status: 4,
                    dcs: 15,
                }))
        }
        async fn ussd_reply(&self, text: &str) -> Result<UssdReply, HostError> {
            self.record(Call::UssdReply(text.into()));
            Ok(UssdReply {
                text: String::new(),
                status: 0,
                dcs: 15,
            })
        }
        async fn ussd_cancel(&self) -> Result<(), HostError> {
            self.record(Call::UssdCancel);
            Ok(())
        }
        async fn at(&self, command: &str) -> Result<String, HostError> {
            self.record(Call::At(command.into()));
            self.at_replies
                .lock()
                .expect("lock")
                .get(command)
                .cloned()
                .unwrap_or(Ok(String::new()))
        }
        async fn signal(&self) -> Result<Signal, HostError> {
            Ok(Signal::from_csq(*self.csq.lock().expect("lock")))
        }
        async fn modem_info(&self) -> Result<serde_json::Value, HostError> {
            Ok(serde_json::json!({"manufacturer": "ZTE CORPORATION", "model": "MF667"}))
        }
        async fn inbox(&self, _n: usize) -> Result<Vec<InboxEntry>, HostError> {
            Ok(Vec::new())
        }
        async fn store_get(&self, key: &str) -> Result<Option<serde_json::Value>, HostError> {
            Ok(self.kv.lock().expect("lock").get(key).cloned())
        }
        async fn store_set(&self, key: &str, value: serde_json::Value) -> Result<(), HostError> {
            self.kv.lock().expect("lock").insert(key.into(), value);
            Ok(())
        }
        async fn set_recovery(&self, enabled: bool) -> Result<(), HostError> {
            self.record(Call::SetRecovery(enabled));
            Ok(())
        }
    }
}
