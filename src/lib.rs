//! atmate: an automation engine for USB cellular modems.
//!
//! # Layout
//!
//! Dependencies point downwards only; `tests/layering.rs` enforces the rule for the
//! pure leaves and the simulator.
//!
//! ```text
//! cli ─> runtime ─> rules ─> script ─> host, event, diag
//!                    └──> yaml, schedule
//!           ├─> schedule ─> event
//!           ├─> modem ─> at, sms, ussd, event   (never rules/script/runtime/store)
//!           ├─> store ─> sms, event
//!           ├─> config ─> yaml, diag
//!           └─> control (types)
//! cli ─> control (client), sim, sms (pdu decode)
//! sim ─> at, sms, ussd                           (never modem)
//! at, sms, ussd, event, diag, yaml: leaves, no tokio, no I/O
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`at`] | AT protocol: byte framer (lines, prompt, finals, two-line URCs), typed responses and URCs, command builder. Pure. |
//! | [`sms`] | SMS PDUs: DELIVER/SUBMIT/STATUS-REPORT, GSM 03.38, UCS-2, UDH/concatenation, SCTS, splitting. Pure. |
//! | [`ussd`] | USSD strings by DCS, request encoding, session states. Pure. |
//! | [`event`] | The `Event` enum and payloads; the words of rules' `when:`. Pure. |
//! | [`diag`] | `path:line:col` diagnostics with source and caret. Pure. |
//! | [`yaml`] | A located YAML tree and a checking reader (all errors, with places), shared by config and rules. Pure. |
//! | [`secret`] | `Secret`: the PIN, never printed. Pure. |
//! | [`host`] | The `Host` trait: what rules and scripts may do; a recording test double. |
//! | [`modem`] | The actor that owns one port, `ModemHandle`, init, receive pipeline, USSD, sending, health, discovery. |
//! | [`store`] | SQLite: archive, fragments, outbox, status reports, key-value, journal. |
//! | [`config`] | `atmate.yaml`: raw serde types, then validated ones. |
//! | [`rules`] | YAML rules: model, validation, matching, templates, actions, modes, cooldowns. |
//! | [`script`] | The Rhai engine, sandbox, host API, script loading and hooks. |
//! | [`schedule`] | Cron (5-field) and interval jobs. |
//! | [`runtime`] | The only wiring point: modems + store + rules + scripts + schedules, reload, control socket. |
//! | [`control`] | The control-socket protocol types and client. |
//! | [`sim`] | The ZTE MF667 simulator (in-process and on pseudo-terminals). Depends on the codecs only. |
//! | [`cli`] | Command-line subcommands; `main.rs` only calls [`cli::run`]. |
#![warn(missing_docs, clippy::unwrap_used)]

pub mod at;
pub mod cli;
pub mod config;
pub mod control;
pub mod diag;
pub mod event;
pub mod host;
pub mod modem;
pub mod rules;
pub mod runtime;
pub mod schedule;
pub mod script;
pub mod secret;
pub mod sim;
pub mod sms;
pub mod store;
pub mod ussd;
pub mod yaml;

/// Unit tests that capture logs take this lock: tracing's call-site interest and
/// max-level caches are global, and two capturing tests running at once disturb
/// each other.
#[cfg(test)]
pub(crate) static LOG_CAPTURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
