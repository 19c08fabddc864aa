//! The actor's view of the codecs: framed items, the URCs it acts on, and the few
//! typed answers it needs, built on `at`, `sms` and `ussd`.

use chrono::{DateTime, FixedOffset};

use super::config::Vendor;
use super::error::{ErrorCode, ModemError};
use super::handle::SendOptions;
use super::persist::{ConcatInfo, ReceivedPart};
use crate::at;
use crate::event::{NetworkState, TextEncoding};

/// A final result code, as the actor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FinalInfo {
    /// As sent (`OK`, `+CMS ERROR: 322`).
    pub text: String,
    /// True for `OK` (and `CONNECT`).
    pub ok: bool,
    /// CME/CMS number.
    pub code: Option<ErrorCode>,
    described: String,
}

impl FinalInfo {
    fn from_final(f: &at::result::Final) -> FinalInfo {
        let code = f
            .cme_number()
            .map(ErrorCode::Cme)
            .or_else(|| f.cms_number().map(ErrorCode::Cms));
        FinalInfo {
            text: f.to_string(),
            ok: f.is_ok(),
            code,
            described: f.describe(),
        }
    }

    /// The code with its meaning (`+CMS ERROR: 322 (memory full)`).
    pub fn describe(&self) -> String {
        self.described.clone()
    }
}

/// The URCs the actor acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Urc {
    /// `+CMTI: "SM",3`
    NewMessage { mem: String, index: u32 },
    /// `+CDSI: "SR",50`
    NewReport { mem: String, index: u32 },
    /// `+CMT: ,<len>\r\n<pdu>`
    Deliver { pdu: String },
    /// `+CDS: [,]<len>\r\n<pdu>`
    Report { pdu: String },
    /// `+CUSD: <m>[,"<str>",<dcs>]`, decoded.
    Ussd { status: u8, text: String, dcs: u8 },
    /// `+CREG: <stat>[,<lac>,<ci>]` (unsolicited form).
    Registration {
        stat: u8,
        lac: Option<String>,
        ci: Option<String>,
        raw: String,
    },
    /// `+ZPASR: "UMTS"`
    Tech(String),
    /// `RING` / `+CRING: VOICE`
    Ring { call_type: Option<String> },
    /// `+CLIP: "+49…",145,…`
    Clip { number: String },
    /// Anything else (`+ZUSIMR:2`, `+ZDONR`, unknown): logged and dropped.
    Other(String),
}

/// One framed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// An information line.
    Line(String),
    /// An echoed command line.
    Echo(String),
    /// The `> ` prompt.
    Prompt,
    /// A final result code.
    Final(FinalInfo),
    /// A URC.
    Urc(Urc),
    /// This many bytes could not be framed and were dropped.
    Garbage(usize),
}

/// Bytes read from the port, framed on demand.
pub(crate) struct Wire {
    framer: at::framer::Framer,
}

impl Wire {
    pub(crate) fn new() -> Wire {
        Wire {
            framer: at::framer::Framer::new(at::framer::FramerOptions::default()),
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
    }

    /// Drop a half-read line (after a timeout).
    pub(crate) fn clear_partial(&mut self) {
        self.framer.clear();
    }

    /// Drop everything buffered.
    pub(crate) fn clear_all(&mut self) {
        self.framer.clear();
    }

    /// The next complete item, if the buffer holds one.
    pub(crate) fn next_item(&mut self) -> Option<Item> {
        use at::framer::Item as F;
        Some(match self.framer.next_item()? {
            Err(at::framer::FrameError::LineTooLong { discard, .. }) => Item::Garbage(discard),
            Ok(F::Line(l)) => classify_line(l),
            Ok(F::Echo(l)) => Item::Echo(l),
            Ok(F::Prompt) => Item::Prompt,
            Ok(F::Final(f)) => Item::Final(FinalInfo::from_final(&f)),
            Ok(F::Message { header, body }) => {
                let pdu = body.trim().to_owned();
                if header.starts_with("+CDS") {
                    Item::Urc(Urc::Report { pdu })
                } else if header.starts_with("+CMT") {
                    Item::Urc(Urc::Deliver { pdu })
                } else {
                    // +CBM (cell broadcast): not handled yet.
                    Item::Urc(Urc::Other(header))
                }
            }
        })
    }
}

fn classify_line(line: String) -> Item {
    if at::urc::is_unsolicited(&line) {
        Item::Urc(map_urc(at::urc::Urc::parse(&line), &line))
    } else {
        Item::Line(line)
    }
}

fn map_urc(u: at::urc::Urc, line: &str) -> Urc {
    use at::urc::Urc as A;
    match u {
        A::Cmti { mem, index } => Urc::NewMessage { mem, index },
        A::Cdsi { mem, index } => Urc::NewReport { mem, index },
        A::Cmt { pdu, .. } => Urc::Deliver { pdu },
        A::Cds { pdu, .. } => Urc::Report { pdu },
        A::Cusd(c) => {
            let dcs = c.dcs.unwrap_or(15);
            let text = match c.text {
                None => String::new(),
                Some(t) => decode_ussd(t, c.dcs),
            };
            Urc::Ussd {
                status: c.m,
                text,
                dcs,
            }
        }
        A::Creg(r) => Urc::Registration {
            stat: r.stat.code(),
            lac: r.lac,
            ci: r.ci,
            raw: line.to_owned(),
        },
        A::Zpasr(z) => Urc::Tech(z.net),
        A::Ring => Urc::Ring { call_type: None },
        A::Cring { call_type } => Urc::Ring {
            call_type: Some(call_type),
        },
        A::Clip { number, .. } => Urc::Clip { number },
        _ => Urc::Other(line.to_owned()),
    }
}

/// The USSD text by DCS (undecodable strings are kept as they came).
fn decode_ussd(t: String, dcs: Option<u8>) -> String {
    match crate::ussd::codec::decode(&t, dcs) {
        Ok(d) => d.text,
        Err(e) => {
            tracing::warn!(error = %e, raw = %t, "undecodable USSD text kept as it came");
            t
        }
    }
}

/// While a command waits for its answer, a line the framer saw as a URC may be that
/// answer (`+CREG: 2,1,…` to `AT+CREG?`): `at::urc::classify` decides, including
/// ZTE's habit of mixing an unsolicited `+CREG: <stat>` into the reply (oFono).
pub(crate) fn urc_as_response(u: &Urc, expect: Option<&str>) -> Option<String> {
    let raw = match u {
        Urc::Registration { raw, .. } | Urc::Other(raw) => raw,
        _ => return None,
    };
    (at::urc::classify(raw, expect) == at::urc::LineKind::Response).then(|| raw.clone())
}

/// The information-response prefix a command expects (`AT+CMGR=1` → `+CMGR`).
pub(crate) fn response_prefix(cmd: &str) -> Option<String> {
    let up = cmd.trim().to_ascii_uppercase();
    let rest = up.strip_prefix("AT")?;
    let rest = rest
        .strip_prefix('+')
        .map(|r| ("+", r))
        .or_else(|| rest.strip_prefix('^').map(|r| ("^", r)))?;
    let name: String = rest
        .1
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!name.is_empty()).then(|| format!("{}{}", rest.0, name))
}

/// Trim, require the `AT` prefix, refuse control characters (a CR inside would start a
/// second command; Ctrl-Z would send a half-typed SMS).
pub(crate) fn normalise_command(cmd: &str) -> Result<String, ModemError> {
    let c = cmd.trim_end_matches(['\r', '\n']).trim();
    if c.is_empty() {
        return Err(ModemError::Invalid("empty AT command".into()));
    }
    if !c.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT")) {
        return Err(ModemError::Invalid(format!(
            "`{}` is not an AT command (it must start with AT)",
            mask_secrets(c)
        )));
    }
    if c.chars().any(|ch| ch.is_control()) {
        return Err(ModemError::Invalid(
            "AT command contains control characters".into(),
        ));
    }
    Ok(c.to_owned())
}

/// Hide the PIN (and PUK) in anything logged or returned.
pub(crate) fn mask_secrets(cmd: &str) -> String {
    // Anywhere in the line, so `AT+CMEE=1;+CPIN="1234"` is masked too. The arguments
    // run to the next `;` outside quotes, or to the end.
    const SECRET: [&str; 4] = ["+CPIN=", "+CLCK=", "+CPWD=", "+ZNCK="];
    let up = cmd.to_ascii_uppercase();
    let mut out = String::with_capacity(cmd.len());
    let mut i = 0;
    while i < cmd.len() {
        let hit = SECRET
            .iter()
            .find(|t| up[i..].starts_with(*t) && cmd.is_char_boundary(i + t.len()));
        let Some(t) = hit else {
            let c = cmd[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8().max(1);
            continue;
        };
        out.push_str(&cmd[i..i + t.len()]);
        out.push_str("\"****\"");
        i += t.len();
        let mut quoted = false;
        while i < cmd.len() {
            let c = cmd[i..].chars().next().unwrap_or(';');
            if c == '"' {
                quoted = !quoted;
            } else if c == ';' && !quoted {
                break;
            }
            i += c.len_utf8().max(1);
        }
    }
    out
}

/// `+CGMI: ZTE` → `ZTE`; bare text unchanged.
pub(crate) fn strip_prefix_any(line: &str) -> &str {
    match at::fields::name(line) {
        Some(_) => line.split_once(':').map(|(_, r)| r.trim()).unwrap_or(line),
        None => line.trim(),
    }
}

pub(crate) fn stat_to_state(stat: u8) -> NetworkState {
    match stat {
        1 => NetworkState::Registered,
        5 => NetworkState::Roaming,
        2 => NetworkState::Searching,
        3 => NetworkState::Denied,
        0 => NetworkState::Lost,
        _ => NetworkState::Unknown,
    }
}

pub(crate) fn parse_csq(line: &str) -> Option<u8> {
    at::response::Csq::parse(line).ok().map(|c| c.rssi)
}

/// The solicited `+CREG: <n>,<stat>[,<lac>,<ci>]`.
pub(crate) fn parse_creg(line: &str) -> Option<(u8, Option<String>, Option<String>)> {
    let r = at::response::Registration::parse(line).ok()?;
    Some((r.stat.code(), r.lac, r.ci))
}

pub(crate) fn parse_cops(line: &str) -> Option<String> {
    at::response::Cops::parse(line)
        .ok()
        .and_then(|c| c.operator)
}

pub(crate) fn parse_zpas(line: &str) -> Option<String> {
    at::response::ZteNetwork::parse(line).ok().map(|z| z.net)
}

/// `+ZPAS`/`+ZPASR` network strings that mean "not registered" (MF667.md §2.2).
pub(crate) fn is_no_service(net: &str) -> bool {
    let n = net.trim().to_ascii_lowercase();
    n.is_empty() || n == "no service" || n == "limited service"
}

/// `READY`, `SIM PIN`, `SIM PUK`, … as the modem printed it.
pub(crate) fn parse_cpin(line: &str) -> Option<String> {
    use at::response::PinStatus as P;
    Some(match at::response::PinStatus::parse(line).ok()? {
        P::Ready => "READY".into(),
        P::SimPin => "SIM PIN".into(),
        P::SimPuk => "SIM PUK".into(),
        P::SimPin2 => "SIM PIN2".into(),
        P::SimPuk2 => "SIM PUK2".into(),
        P::PhSimPin => "PH-SIM PIN".into(),
        P::PhNetPin => "PH-NET PIN".into(),
        P::PhNetPuk => "PH-NET PUK".into(),
        P::Other(s) => s,
    })
}

pub(crate) fn parse_zpinpuk(line: &str) -> Option<(u32, u32)> {
    at::response::PinRetries::parse(line)
        .ok()
        .map(|r| (u32::from(r.pin), u32::from(r.puk)))
}

pub(crate) fn parse_cmgs(line: &str) -> Option<u8> {
    at::response::SendResult::parse(line).ok().map(|r| r.mr)
}

/// `(mem, used, total)` for the memories of `+CPMS?`.
pub(crate) fn parse_cpms(line: &str) -> Option<Vec<(String, u32, u32)>> {
    at::response::Cpms::parse(line).ok().map(|c| {
        c.stores
            .into_iter()
            .map(|m| (m.name.unwrap_or_default(), m.used, m.total))
            .collect()
    })
}

/// `(index, pdu)` pairs from a `+CMGL`/`+CMGR` answer in PDU mode (`+CMGR` has no
/// index in its header: 0 is returned, the caller knows the index).
pub(crate) fn pdu_of_listing(lines: &[String]) -> Vec<(u32, String)> {
    let parsed = if lines.iter().any(|l| l.starts_with("+CMGR")) {
        at::response::parse_cmgr(lines).map(|m| m.into_iter().collect::<Vec<_>>())
    } else {
        at::response::parse_cmgl(lines)
    };
    match parsed {
        Ok(msgs) => msgs
            .into_iter()
            .filter_map(|m| match m {
                at::response::StoredMessage::Pdu(p) => Some((p.index.unwrap_or(0), p.pdu)),
                _ => None,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable message listing");
            Vec::new()
        }
    }
}

/// What a stored or delivered PDU turned out to be.
pub(crate) enum Decoded {
    Part(ReceivedPart),
    Report(ReportInfo),
    Submit,
    Error(String),
}

pub(crate) struct ReportInfo {
    pub reference: u8,
    pub recipient: String,
    pub st: u8,
    pub meaning: String,
    pub scts: Option<DateTime<FixedOffset>>,
    pub discharge: Option<DateTime<FixedOffset>>,
}

pub(crate) fn decode_pdu(modem: &str, hex: &str) -> Decoded {
    use crate::sms;
    match sms::decode_hex(hex) {
        Err(e) => Decoded::Error(e.to_string()),
        Ok(sms::Pdu::Deliver(d)) => Decoded::Part(ReceivedPart {
            modem: modem.to_owned(),
            pdu: hex.to_owned(),
            from: d.originator.to_string(),
            text: d.user_data.text.clone(),
            timestamp: Some(d.timestamp),
            smsc: d.smsc.as_ref().map(|a| a.to_string()),
            encoding: match d.user_data.encoding {
                sms::Encoding::Gsm7 => TextEncoding::Gsm7,
                sms::Encoding::Ucs2 => TextEncoding::Ucs2,
                sms::Encoding::EightBit => TextEncoding::EightBit,
            },
            class: d.dcs.class,
            concat: d.user_data.concat.map(|c| ConcatInfo {
                reference: c.reference,
                total: c.total,
                seq: c.seq,
            }),
        }),
        Ok(sms::Pdu::StatusReport(r)) => Decoded::Report(ReportInfo {
            reference: r.message_reference,
            recipient: r.recipient.to_string(),
            st: r.status,
            meaning: r.delivery().as_str().to_string(),
            scts: Some(r.timestamp),
            discharge: Some(r.discharge),
        }),
        Ok(sms::Pdu::Submit(_)) => Decoded::Submit,
    }
}

/// `(tpdu_len, hex)` per part, ready for `AT+CMGS=<len>`.
pub(crate) fn build_submit(
    to: &str,
    text: &str,
    options: &SendOptions,
    reference: u16,
) -> Result<Vec<(usize, String)>, ModemError> {
    let opts = crate::sms::SubmitOptions {
        force_ucs2: options.ucs2,
        status_report: options.status_report,
        reference,
        ..Default::default()
    };
    crate::sms::build_submit(to, text, &opts)
        .map(|v| v.into_iter().map(|p| (p.tpdu_len, p.hex)).collect())
        .map_err(|e| ModemError::Invalid(format!("cannot encode the SMS: {e}")))
}

/// `AT+CUSD=1,"<code>",15`. ZTE wants plain text (MF667.md §2.3); a generic modem
/// gets the same, which 27.007 allows under `+CSCS="GSM"`.
pub(crate) fn ussd_command(text: &str, _vendor: Vendor) -> Result<String, ModemError> {
    if text.is_empty() || text.len() > 182 {
        return Err(ModemError::Invalid(
            "a USSD string must have 1 to 182 characters".into(),
        ));
    }
    if text.contains('"') || text.chars().any(|c| c.is_control()) {
        return Err(ModemError::Invalid(
            "a USSD string cannot contain quotes or control characters".into(),
        ));
    }
    Ok(format!("AT+CUSD=1,\"{text}\",15"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_normalising() {
        assert_eq!(response_prefix("AT+CMGR=3").as_deref(), Some("+CMGR"));
        assert_eq!(response_prefix("AT+CREG?").as_deref(), Some("+CREG"));
        assert_eq!(response_prefix("ATI"), None);
        assert_eq!(normalise_command("at+csq\r\n").unwrap(), "at+csq");
        assert!(normalise_command("+CSQ").is_err());
        assert!(normalise_command("AT+CMGS=1\rhello").is_err());
        assert_eq!(mask_secrets("AT+CPIN=\"1234\""), "AT+CPIN=\"****\"");
        assert_eq!(mask_secrets("at+cpin=1234"), "at+cpin=\"****\"");
        assert_eq!(
            mask_secrets("AT+CMEE=1;+CPIN=\"12;34\",\"5678\";+CSQ"),
            "AT+CMEE=1;+CPIN=\"****\";+CSQ"
        );
        assert_eq!(
            mask_secrets("AT+CLCK=\"SC\",0,\"1234\""),
            "AT+CLCK=\"****\""
        );
        assert_eq!(mask_secrets("AT+CPIN?"), "AT+CPIN?");
        assert_eq!(
            mask_secrets("AT+CUSD=1,\"*100#\",15"),
            "AT+CUSD=1,\"*100#\",15"
        );
    }

    #[test]
    fn zpas_no_service_strings() {
        assert!(is_no_service("No Service"));
        assert!(is_no_service("Limited Service"));
        assert!(!is_no_service("UMTS"));
        assert!(!is_no_service("GPRS/EDGE"));
    }

    #[test]
    fn listing_pairs_headers_with_pdus() {
        let lines: Vec<String> = ["+CMGL: 0,1,,34", "0791AB", "+CMGL: 3,0,,20", "0791CD"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            pdu_of_listing(&lines),
            vec![(0, "0791AB".to_owned()), (3, "0791CD".to_owned())]
        );
    }
}
