//! The control socket protocol (JSON lines over a UNIX socket) and its client.
//!
//! Other processes (the CLI, a user's own scripts) share the daemon's one modem handle
//! through this socket instead of fighting over the port. The socket is created with
//! owner-only permissions (0600).
//!
//! # Protocol
//!
//! One JSON object per line each way. A request names its `cmd` and arguments; the
//! answer is `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`. `subscribe`
//! turns the connection into a stream of events, one JSON object per line.
//!
//! ```text
//! → {"cmd":"send","to":"+4917612345678","text":"hello"}
//! ← {"ok":true,"result":{"id":7,"parts":1,"references":[12]}}
//! → {"cmd":"ussd","code":"*100#"}
//! ← {"ok":true,"result":{"text":"Balance: 10.00 EUR","status":0,"dcs":15}}
//! → {"cmd":"at","command":"AT+CSQ"}
//! ← {"ok":true,"result":{"lines":["+CSQ: 18,99"],"result":"OK"}}
//! → {"cmd":"status"}
//! → {"cmd":"inbox","limit":10,"from":"+49176…","since":"2026-11-24T00:00:00Z"}
//! → {"cmd":"outbox","limit":10}
//! → {"cmd":"reload"}
//! → {"cmd":"subscribe"}
//! ← {"kind":"sms","modem":"main","from":"+4917612345678",…}
//! ```
//!
//! Every modem command takes an optional `"modem":"name"`; without it the default
//! modem is used.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Send an SMS.
    Send {
        /// Recipient.
        to: String,
        /// Text.
        text: String,
        /// Modem name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modem: Option<String>,
    },
    /// Start a USSD session.
    Ussd {
        /// Code (`*100#`).
        code: String,
        /// Modem name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modem: Option<String>,
    },
    /// Answer a USSD menu.
    UssdReply {
        /// Answer text.
        text: String,
        /// Modem name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modem: Option<String>,
    },
    /// Cancel the USSD session.
    UssdCancel {
        /// Modem name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modem: Option<String>,
    },
    /// A raw AT command.
    At {
        /// Command line.
        command: String,
        /// Modem name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modem: Option<String>,
    },
    /// Modems, rules, schedules.
    Status,
    /// Received messages.
    Inbox {
        /// Only from this sender.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Only since this RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// At most this many (default 20).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Sent and pending messages.
    Outbox {
        /// At most this many (default 20).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Re-read config, rules and scripts now.
    Reload,
    /// Stream events until the connection closes.
    Subscribe,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Success.
    pub ok: bool,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success.
    pub fn ok(result: serde_json::Value) -> Response {
        Response {
            ok: true,
            result: Some(result),
            error: None,
        }
    }
    /// A failure.
    pub fn err(e: impl std::fmt::Display) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(e.to_string()),
        }
    }
}

/// Client-side failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No daemon listens on the socket.
    #[error("no atmate daemon at {path}: {source}")]
    NotRunning {
        /// Socket path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed midway.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon sent something that is not a response.
    #[error("control socket: bad answer: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(String),
}

/// A connection to a running daemon.
pub struct Client {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    /// Connect to the daemon's socket.
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let s = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::NotRunning {
                path: path.display().to_string(),
                source,
            })?;
        let (r, w) = s.into_split();
        Ok(Client {
            reader: BufReader::new(r),
            writer: w,
        })
    }

    /// Send one request and wait for its answer (at most `timeout`).
    pub async fn call(
        &mut self,
        req: &Request,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let mut line =
            serde_json::to_string(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        let mut answer = String::new();
        let n = tokio::time::timeout(timeout, self.reader.read_line(&mut answer))
            .await
            .map_err(|_| ClientError::Protocol(format!("no answer within {timeout:?}")))??;
        if n == 0 {
            return Err(ClientError::Protocol(
                "the daemon closed the connection".into(),
            ));
        }
        let resp: Response = serde_json::from_str(answer.trim())
            .map_err(|e| ClientError::Protocol(format!("{e}: {answer}")))?;
        if resp.ok {
            Ok(resp.result.unwrap_or(serde_json::Value::Null))
        } else {
            Err(ClientError::Daemon(resp.error.unwrap_or_default()))
        }
    }

    /// After `subscribe`: the next event, as JSON (`None` when the daemon closes).
    pub async fn next_event(&mut self) -> Result<Option<serde_json::Value>, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim())
            .map(Some)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json_lines() {
        let r = Request::Send {
            to: "+4917612345678".into(),
            text: "hi".into(),
            modem: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"cmd":"send","to":"+4917612345678","text":"hi"}"#
        );
        let back: Request = serde_json::from_str(r#"{"cmd":"inbox","limit":5}"#).unwrap();
        assert_eq!(
            back,
            Request::Inbox {
                from: None,
                since: None,
                limit: Some(5)
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"nope"}"#).is_err());
    }
}
