//! The simulator's control socket: `DIR/control`, a UNIX socket (mode 0600) speaking
//! JSON lines. `atmate sim <command>` is a client of it; any program can be.
//!
//! # Protocol
//!
//! One request object per line, one response object per line, in order, on one
//! connection (a client may send many requests). Every request has a `"cmd"`; every
//! response has `"ok"`: `true` with the command's fields, or `false` with `"error"` (a
//! sentence). Unknown commands and malformed lines get `{"ok":false,"error":…}`, and
//! the connection stays open. Durations are milliseconds.
//!
//! | request | response fields |
//! |---|---|
//! | `{"cmd":"status"}` | `status`: `usb`, `identity`, `sim`, `network`, `ports` (settings per interface), `stores` (`SM`/`ME`/`SR`: `used`, `total`, `messages` with `index`, `stat`, `pdu` and the decoded `from`/`text`/…), `receive_store`, `held_by_network`, `sent`, `sent_messages`, `ussd`, `counters` |
//! | `{"cmd":"ports"}` | `ports`: `[{"iface":1,"name":"ttyUSB1","path":…,"pts":"/dev/pts/7","by_id":…}]` (empty while unplugged) |
//! | `{"cmd":"inject_sms","from":"+4917…","text":"…"}` + optional `"ucs2":true`, `"class0":true`, `"order":"in_order"\|"reversed"\|"shuffled"`, `"seed":7`, `"drop_part":2` (1-based), `"timestamp":"2024-03-15T14:30:05+02:00"` | `deliveries`: per part in arrival order, `{"delivery":"stored","mem":"SM","index":0}` / `{"delivery":"direct"}` / `{"delivery":"held"}` / `{"delivery":"dropped"}` |
//! | `{"cmd":"inject_pdu","hex":"0791…"}` | `delivery` (as above) |
//! | `{"cmd":"ussd_set","code":"*100#","text":"…"}` + optional `"dcs":"15"\|"72"\|"68"\|"packed"`, `"state":0\|1\|2`, `"delay_ms":2000`, `"never":true` | — |
//! | `{"cmd":"ussd_remove","code":"*100#"}` | — |
//! | `{"cmd":"unplug"}` (stays away) or `{"cmd":"unplug","for_ms":3000}` | — |
//! | `{"cmd":"replug"}` | — |
//! | `{"cmd":"network","state":"lost"\|"back"}` | — |
//! | `{"cmd":"signal","csq":12}` (0–31, 99) | — |
//! | `{"cmd":"storage","action":"fill"\|"clear"}` | — |
//! | `{"cmd":"garbage","hex":"0D0A2B4353"}` or `{"cmd":"garbage","text":"\r\n+CS"}`, optional `"iface":1` | — |
//! | `{"cmd":"urc","line":"+CREG: 2"}` + optional `"iface":1`, `"moment":"after_echo"\|"before_prompt"\|"before_final"` (armed for the next command instead of now) | — |
//! | `{"cmd":"slow","delay_ms":3000}` + optional `"prefix":"AT+CMGS"`, `"count":1`; `{"cmd":"slow","clear":true}` | — |
//! | `{"cmd":"zusimr","count":100,"every_ms":10}` | — |
//! | `{"cmd":"sim","action":"remove"\|"insert"}` or `{"cmd":"sim","action":"pin","pin":"1234"}` | — |
//! | `{"cmd":"sent"}` | `sent` (one entry per PDU: `to`, `text`, `mr`, `encoding`, `part`, `status_report`, `pdu`, …), `messages` (parts joined: `to`, `text`, `parts`, `parts_sent`, `mrs`) |
//! | `{"cmd":"wire"}` + optional `"last":50` | `lines`: transcript lines (`0.512 if01 >> AT+CSQ\r`) |
//! | `{"cmd":"stop"}` | — (then the simulator shuts down) |
//!
//! Example session (`socat - UNIX-CONNECT:$DIR/control`):
//!
//! ```text
//! > {"cmd":"inject_sms","from":"+491701234567","text":"Hello"}
//! < {"ok":true,"deliveries":[{"delivery":"stored","mem":"ME","index":0}]}
//! > {"cmd":"signal","csq":40}
//! < {"ok":false,"error":"csq must be 0–31 or 99, not 40"}
//! ```

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::config::{UssdDcs, UssdReplySpec};
use super::faults::UrcMoment;
use super::inject::{InjectSms, PartOrder};
use super::{SimError, SimHandle};

/// One request. See the module documentation for the wire form.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Everything about the stick.
    Status,
    /// Where the ports are.
    Ports,
    /// Deliver an SMS.
    InjectSms {
        /// Sender.
        from: String,
        /// Text.
        text: String,
        /// Force UCS-2.
        #[serde(default)]
        ucs2: bool,
        /// Flash SMS.
        #[serde(default)]
        class0: bool,
        /// `in_order`, `reversed`, `shuffled`.
        #[serde(default)]
        order: Option<String>,
        /// Shuffle seed.
        #[serde(default)]
        seed: Option<u64>,
        /// Part to leave out (1-based).
        #[serde(default)]
        drop_part: Option<u8>,
        /// SCTS as RFC 3339.
        #[serde(default)]
        timestamp: Option<String>,
    },
    /// Deliver a raw DELIVER PDU.
    InjectPdu {
        /// Hex with SMSC prefix.
        hex: String,
    },
    /// Set a USSD answer.
    UssdSet {
        /// The code (`*100#`) or, for a menu answer, the code it belongs to.
        code: String,
        /// Reply text.
        text: String,
        /// `15`, `72`, `68`, `packed`.
        #[serde(default)]
        dcs: Option<String>,
        /// `+CUSD` `<m>`.
        #[serde(default)]
        state: Option<u8>,
        /// Delay in ms.
        #[serde(default)]
        delay_ms: Option<u64>,
        /// Never answer.
        #[serde(default)]
        never: bool,
    },
    /// Forget a USSD code.
    UssdRemove {
        /// The code.
        code: String,
    },
    /// Pull the stick.
    Unplug {
        /// Come back after this many ms; absent = stay away.
        #[serde(default)]
        for_ms: Option<u64>,
    },
    /// Plug it back.
    Replug,
    /// `lost` or `back`.
    Network {
        /// `lost` / `back`.
        state: String,
    },
    /// Set the signal.
    Signal {
        /// 0–31 or 99.
        csq: u8,
    },
    /// `fill` or `clear` the stores.
    Storage {
        /// `fill` / `clear`.
        action: String,
    },
    /// Raw bytes on the AT ports.
    Garbage {
        /// Bytes as hex.
        #[serde(default)]
        hex: Option<String>,
        /// Bytes as text.
        #[serde(default)]
        text: Option<String>,
        /// Only this port.
        #[serde(default)]
        iface: Option<u8>,
    },
    /// A URC now, or armed for an awkward moment.
    Urc {
        /// The line.
        line: String,
        /// Only this port.
        #[serde(default)]
        iface: Option<u8>,
        /// `after_echo`, `before_prompt`, `before_final`.
        #[serde(default)]
        moment: Option<String>,
    },
    /// Slow answers.
    Slow {
        /// Delay in ms.
        #[serde(default)]
        delay_ms: Option<u64>,
        /// Command prefix.
        #[serde(default)]
        prefix: Option<String>,
        /// How many answers.
        #[serde(default)]
        count: Option<u32>,
        /// Remove all slow-answer faults.
        #[serde(default)]
        clear: bool,
    },
    /// A `+ZUSIMR:2` flood.
    Zusimr {
        /// How many.
        count: u32,
        /// Interval in ms.
        #[serde(default)]
        every_ms: Option<u64>,
    },
    /// SIM faults.
    Sim {
        /// `remove`, `insert`, `pin`.
        action: String,
        /// The PIN for `pin`.
        #[serde(default)]
        pin: Option<String>,
    },
    /// What the stick sent.
    Sent,
    /// The wire transcript.
    Wire {
        /// Only the last N chunks.
        #[serde(default)]
        last: Option<usize>,
    },
    /// Shut the simulator down.
    Stop,
}

/// Bind the socket with owner-only permissions.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, SimError> {
    let l = UnixListener::bind(path).map_err(|source| SimError::Io {
        context: format!("bind {}", path.display()),
        source,
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        SimError::Io {
            context: format!("chmod 600 {}", path.display()),
            source,
        }
    })?;
    Ok(l)
}

/// What `ports` answers (the pty face knows; in-process there are no paths).
pub(crate) type PortsFn = Arc<dyn Fn() -> Value + Send + Sync>;

/// Serve control connections until `shutdown` resolves. `stop`: set when a client sends
/// `{"cmd":"stop"}`.
pub(crate) async fn serve(
    listener: UnixListener,
    handle: SimHandle,
    ports: Option<PortsFn>,
    stop: Option<watch::Sender<bool>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    conns.spawn(connection(stream, handle.clone(), ports.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "simulator control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

async fn connection(
    stream: UnixStream,
    handle: SimHandle,
    ports: Option<PortsFn>,
    stop: Option<watch::Sender<bool>>,
) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let (resp, stopping) = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let stopping = req == Request::Stop;
                (handle_request(&handle, req, ports.as_ref()).await, stopping)
            }
            Err(e) => (
                json!({"ok": false, "error": format!("bad request: {e}")}),
                false,
            ),
        };
        let mut out = resp.to_string();
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        if stopping {
            if let Some(s) = &stop {
                s.send_replace(true);
            }
        }
    }
}

fn ok(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("ok".into(), Value::Bool(true));
    }
    v
}

fn err(msg: impl Into<String>) -> Value {
    json!({"ok": false, "error": msg.into()})
}

fn ms(v: Option<u64>) -> Option<Duration> {
    v.map(Duration::from_millis)
}

/// Carry out one request on `handle`.
pub async fn handle_request(handle: &SimHandle, req: Request, ports: Option<&PortsFn>) -> Value {
    match req {
        Request::Status => ok(json!({"status": handle.status().await})),
        Request::Ports => ok(json!({"ports": ports.map(|f| f()).unwrap_or(json!([]))})),
        Request::InjectSms {
            from,
            text,
            ucs2,
            class0,
            order,
            seed,
            drop_part,
            timestamp,
        } => {
            let order = match order.as_deref() {
                None | Some("in_order") => PartOrder::InOrder,
                Some("reversed") => PartOrder::Reversed,
                Some("shuffled") => PartOrder::Shuffled(seed.unwrap_or_else(time_seed)),
                Some(o) => {
                    return err(format!(
                        "order must be in_order, reversed or shuffled, not {o:?}"
                    ))
                }
            };
            let timestamp = match timestamp
                .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map_err(|e| (t, e)))
                .transpose()
            {
                Ok(t) => t,
                Err((t, e)) => return err(format!("timestamp {t:?} is not RFC 3339: {e}")),
            };
            let sms = InjectSms {
                from,
                text,
                ucs2,
                class0,
                order,
                drop_part,
                timestamp,
                ..InjectSms::default()
            };
            match handle.inject_sms_detailed(sms).await {
                Ok(d) => ok(json!({"deliveries": d})),
                Err(e) => err(e.to_string()),
            }
        }
        Request::InjectPdu { hex } => match handle.inject_pdu_detailed(&hex).await {
            Ok(d) => ok(json!({"delivery": d})),
            Err(e) => err(e.to_string()),
        },
        Request::UssdSet {
            code,
            text,
            dcs,
            state,
            delay_ms,
            never,
        } => {
            let dcs = match dcs.as_deref().map(UssdDcs::parse) {
                None => UssdDcs::Plain,
                Some(Some(d)) => d,
                Some(None) => return err("dcs must be 15, 72, 68 or packed"),
            };
            if state.is_some_and(|s| s > 5) {
                return err("state must be 0–5");
            }
            let mut spec = UssdReplySpec::text(text).with_dcs(dcs);
            spec.state = state.unwrap_or(0);
            spec.delay = ms(delay_ms);
            spec.no_reply = never;
            handle.set_ussd(&code, spec).await;
            ok(json!({}))
        }
        Request::UssdRemove { code } => {
            handle.remove_ussd(&code).await;
            ok(json!({}))
        }
        Request::Unplug { for_ms } => {
            handle.unplug(ms(for_ms)).await;
            ok(json!({}))
        }
        Request::Replug => {
            handle.replug().await;
            ok(json!({}))
        }
        Request::Network { state } => match state.as_str() {
            "lost" => {
                handle.network_lost().await;
                ok(json!({}))
            }
            "back" => {
                handle.network_back().await;
                ok(json!({}))
            }
            s => err(format!("network state must be lost or back, not {s:?}")),
        },
        Request::Signal { csq } => {
            if csq > 31 && csq != 99 {
                return err(format!("csq must be 0–31 or 99, not {csq}"));
            }
            handle.set_signal(csq).await;
            ok(json!({}))
        }
        Request::Storage { action } => match action.as_str() {
            "fill" => {
                handle.fill_storage().await;
                ok(json!({}))
            }
            "clear" => {
                handle.clear_storage().await;
                ok(json!({}))
            }
            a => err(format!("storage action must be fill or clear, not {a:?}")),
        },
        Request::Garbage { hex, text, iface } => {
            let bytes = match (hex, text) {
                (Some(h), None) => match crate::sms::pdu::from_hex(&h) {
                    Ok(b) => b,
                    Err(e) => return err(format!("hex: {e}")),
                },
                (None, Some(t)) => t.into_bytes(),
                _ => return err("give exactly one of hex or text"),
            };
            match iface {
                Some(i) => handle.inject_raw(i, &bytes).await,
                None => handle.inject_garbage(&bytes).await,
            }
            ok(json!({}))
        }
        Request::Urc {
            line,
            iface,
            moment,
        } => {
            match moment {
                None => handle.inject_urc(iface, &line).await,
                Some(m) => match UrcMoment::parse(&m) {
                    Some(m) => handle.urc_at(m, &line, iface).await,
                    None => return err("moment must be after_echo, before_prompt or before_final"),
                },
            }
            ok(json!({}))
        }
        Request::Slow {
            delay_ms,
            prefix,
            count,
            clear,
        } => {
            if clear {
                handle.clear_slow_answers().await;
                return ok(json!({}));
            }
            let Some(d) = ms(delay_ms) else {
                return err("slow needs delay_ms (or clear)");
            };
            handle.slow_answers(prefix.as_deref(), d, count).await;
            ok(json!({}))
        }
        Request::Zusimr { count, every_ms } => {
            handle
                .zusimr_flood(count, ms(every_ms).unwrap_or(Duration::from_millis(10)))
                .await;
            ok(json!({}))
        }
        Request::Sim { action, pin } => match (action.as_str(), pin) {
            ("remove", _) => {
                handle.remove_sim().await;
                ok(json!({}))
            }
            ("insert", _) => {
                handle.insert_sim().await;
                ok(json!({}))
            }
            ("pin", Some(p))
                if (4..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) =>
            {
                handle.require_pin(&p).await;
                ok(json!({}))
            }
            ("pin", _) => err("pin needs \"pin\": 4–8 digits"),
            (a, _) => err(format!(
                "sim action must be remove, insert or pin, not {a:?}"
            )),
        },
        Request::Sent => ok(json!({
            "sent": handle.sent().await,
            "messages": handle.sent_messages().await,
        })),
        Request::Wire { last } => {
            let log = handle.wire_log().await;
            let skip = last.map_or(0, |n| log.len().saturating_sub(n));
            let lines: Vec<String> = log[skip..].iter().map(|e| e.transcript_line()).collect();
            ok(json!({"lines": lines}))
        }
        Request::Stop => ok(json!({})),
    }
}

fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// Send one request to the simulator serving `socket` and return its response.
pub async fn request(socket: &Path, req: &Value) -> Result<Value, SimError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| SimError::Io {
            context: format!(
                "connect to {} (is `atmate sim` serving there?)",
                socket.display()
            ),
            source,
        })?;
    let (rd, mut wr) = stream.into_split();
    let mut line = req.to_string();
    line.push('\n');
    wr.write_all(line.as_bytes())
        .await
        .map_err(|source| SimError::Io {
            context: "send the request".into(),
            source,
        })?;
    let mut lines = BufReader::new(rd).lines();
    match lines.next_line().await {
        Ok(Some(l)) => serde_json::from_str(&l).map_err(|e| {
            SimError::Invalid(format!(
                "the simulator answered something that is not JSON ({e}): {l}"
            ))
        }),
        Ok(None) => Err(SimError::Invalid(
            "the simulator closed the connection".into(),
        )),
        Err(source) => Err(SimError::Io {
            context: "read the response".into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_their_documented_form() {
        let r: Request = serde_json::from_str(
            r#"{"cmd":"inject_sms","from":"+491701234567","text":"Hi","drop_part":2}"#,
        )
        .expect("valid");
        assert!(matches!(
            r,
            Request::InjectSms {
                drop_part: Some(2),
                ..
            }
        ));
        let r: Request = serde_json::from_str(r#"{"cmd":"unplug","for_ms":3000}"#).expect("valid");
        assert_eq!(r, Request::Unplug { for_ms: Some(3000) });
        let r: Request = serde_json::from_str(r#"{"cmd":"status"}"#).expect("valid");
        assert_eq!(r, Request::Status);
        // Typos in field names are errors, not silently ignored.
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"signal","csq":1,"csqq":2}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"fly"}"#).is_err());
    }

    #[tokio::test]
    async fn bad_arguments_get_a_sentence() {
        let h = SimHandle::spawn(crate::sim::SimConfig::default());
        let r = handle_request(&h, Request::Signal { csq: 40 }, None).await;
        assert_eq!(r["ok"], false);
        assert!(r["error"].as_str().is_some_and(|e| e.contains("0–31")));
        let r = handle_request(
            &h,
            Request::Network {
                state: "gone".into(),
            },
            None,
        )
        .await;
        assert_eq!(r["ok"], false);
        let r = handle_request(&h, Request::Signal { csq: 7 }, None).await;
        assert_eq!(r["ok"], true);
        assert_eq!(h.status().await["network"]["csq"], 7);
    }
}
