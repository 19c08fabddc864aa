//! The AT protocol, pure: framing bytes into lines, prompts and final result codes;
//! typed parsing of information responses and URCs; building command lines.
//! No I/O and no tokio.
//!
//! | file | owns |
//! |---|---|
//! | [`framer`] | bytes → [`Item`] (echo, line, final, `> ` prompt, two-line URC); "incomplete" is a normal result |
//! | [`result`] | [`Final`] result codes, `+CME`/`+CMS` numbers and texts, classification |
//! | [`urc`] | [`Urc`] values, [`is_unsolicited`], [`classify`] (response vs URC while a command waits) |
//! | [`response`] | typed information responses (`+CSQ`, `+CPMS`, `+CMGL`, `+CREG`, `+ZPAS`…) |
//! | [`command`] | [`Command`] lines with correct quoting and escaping, raw user commands |
//! | [`fields`] | splitting `a,"b",(c,d)` parameter lists |
//!
//! How the modem actor uses it: push every read into a [`Framer`], take items until
//! `None`; while a command is pending, route each [`Item::Line`] with
//! [`classify`]`(line, cmd.response_prefix())` — answers are collected until the
//! [`Item::Final`], URCs go to [`Urc::parse`] (two-line URCs arrive as [`Item::Message`]
//! and go to [`Urc::from_item`]); an [`Item::Prompt`] is the cue to send
//! [`command::sms_body`]; [`Item::Echo`] is ignored.

pub mod command;
pub mod fields;
pub mod framer;
pub mod response;
pub mod result;
pub mod urc;

pub use command::{Command, CommandError};
pub use framer::{FrameError, Framer, FramerOptions, Item};
pub use response::ResponseError;
pub use result::{CmeCode, CmsCode, Final};
pub use urc::{classify, is_unsolicited, LineKind, Urc};
