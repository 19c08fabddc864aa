//! `atmate pdu decode|encode`: the SMS codec on the command line, JSON out.
//!
//! Exit codes: 0 done; 1 the PDU (or the message to encode) is invalid, with a one-line
//! reason on stderr; 2 (from clap) bad arguments.

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::sms::{self, Address, Concat, Pdu, PduError, SubmitOptions, UserData, ValidityPeriod};

/// Arguments of `atmate pdu`.
#[derive(Debug, clap::Args)]
pub struct PduArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PduCommand,
}

/// `atmate pdu` subcommands.
#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode a PDU as the modem prints it (+CMGR, +CMGL, +CMT, +CDS) into one JSON object.
    ///
    /// The hex starts with the SMSC prefix (`00` = none), exactly as the modem shows it.
    /// SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT are recognised. An invalid or
    /// truncated PDU prints one line naming what is wrong and at which octet (counted from
    /// 0, the SMSC length octet) and exits with 1.
    ///
    /// Examples:
    ///
    ///   atmate pdu decode 0031000C919471103254760000AA05C8329BFD06
    ///
    ///   atmate pdu decode 07919471016700000404D04F190008422110905000290C041F04400438043204350442 | jq .text
    #[command(verbatim_doc_comment)]
    Decode {
        /// The PDU in hex, SMSC prefix included.
        hex: String,
    },
    /// Encode a text as SMS-SUBMIT PDUs: a JSON array with one object per part.
    ///
    /// Each object is `{"tpdu_length": N, "pdu": "HEX"}`: send `AT+CMGS=N`, wait for `> `,
    /// then the PDU and Ctrl-Z. GSM-7 is used when every character fits, else UCS-2; long
    /// texts are split (153 GSM-7 / 67 UCS-2 characters per part) with a concatenation
    /// header carrying `--reference`.
    ///
    /// Examples:
    ///
    ///   atmate pdu encode --to +491701234567 --text Hello --report --validity 4d
    ///
    ///   atmate pdu encode --to 01701234567 --text "Привет 😀"
    ///
    ///   atmate pdu encode --to +491701234567 --text "Alarm!" --flash
    #[command(verbatim_doc_comment)]
    Encode(EncodeArgs),
}

/// Options of `atmate pdu encode`.
#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    /// Recipient: `+49…` (international) or national digits.
    #[arg(long)]
    pub to: String,
    /// The message text.
    #[arg(long)]
    pub text: String,
    /// Use UCS-2 even if the text fits the GSM 7-bit alphabet.
    #[arg(long)]
    pub ucs2: bool,
    /// Request a status report (TP-SRR).
    #[arg(long)]
    pub report: bool,
    /// Relative validity period, e.g. `30m`, `24h`, `4d`, `2w` (rounded up to the next
    /// step the PDU can express; at most 63 weeks).
    #[arg(long, value_parser = parse_validity)]
    pub validity: Option<ValidityPeriod>,
    /// SMSC to put in the PDU (`+49…`); default `00`, the modem's own (+CSCA).
    #[arg(long)]
    pub smsc: Option<String>,
    /// Concatenation reference for a multipart message (low byte only unless
    /// --sixteen-bit-ref).
    #[arg(long, default_value_t = 0)]
    pub reference: u16,
    /// Use the 16-bit concatenation reference (152 GSM-7 / 66 UCS-2 characters per part).
    #[arg(long)]
    pub sixteen_bit_ref: bool,
    /// Message class 0–3.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3), conflicts_with = "flash")]
    pub class: Option<u8>,
    /// Flash SMS (class 0): shown at once and not stored by the phone.
    #[arg(long)]
    pub flash: bool,
}

fn parse_validity(s: &str) -> Result<ValidityPeriod, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    let minutes = d.as_secs().div_ceil(60);
    ValidityPeriod::relative_from_minutes(minutes)
        .ok_or_else(|| format!("{s:?}: a relative validity period is 5 minutes to 63 weeks"))
}

/// Run `atmate pdu`.
pub fn run(args: PduArgs) -> anyhow::Result<i32> {
    let out = match args.command {
        PduCommand::Decode { hex } => match sms::decode_hex(&hex) {
            Ok(pdu) => decoded_json(&pdu, tpdu_length(&hex)),
            Err(e) => return Ok(fail("cannot decode PDU", &e)),
        },
        PduCommand::Encode(a) => {
            let opts = SubmitOptions {
                force_ucs2: a.ucs2,
                class: if a.flash { Some(0) } else { a.class },
                status_report: a.report,
                validity: a.validity,
                reference: a.reference,
                sixteen_bit_ref: a.sixteen_bit_ref,
                smsc: a.smsc,
                ..SubmitOptions::default()
            };
            match sms::build_submit(&a.to, &a.text, &opts) {
                Ok(parts) => Value::Array(
                    parts
                        .into_iter()
                        .map(|p| json!({ "tpdu_length": p.tpdu_len, "pdu": p.hex }))
                        .collect(),
                ),
                Err(e) => return Ok(fail("cannot encode", &e)),
            }
        }
    };
    let line = serde_json::to_string(&out).context("serialising the JSON output")?;
    println!("{line}");
    Ok(0)
}

fn fail(what: &str, e: &PduError) -> i32 {
    eprintln!("atmate: {what}: {e}");
    1
}

fn tpdu_length(hex: &str) -> Option<usize> {
    let bytes = sms::pdu::from_hex(hex).ok()?;
    Some(bytes.len() - sms::pdu::smsc_prefix_len(&bytes)?)
}

fn address_json(a: Option<&Address>) -> Value {
    a.map_or(Value::Null, |a| Value::String(a.number.clone()))
}

fn concat_json(c: Option<Concat>) -> Value {
    c.map_or(Value::Null, |c| {
        json!({ "ref": c.reference, "total": c.total, "seq": c.seq, "sixteen_bit": c.sixteen_bit })
    })
}

/// The fields every PDU with user data shares.
fn user_data_json(ud: Option<&UserData>, obj: &mut serde_json::Map<String, Value>) {
    let hex = |b: &[u8]| Value::String(sms::pdu::to_hex(b));
    obj.insert(
        "text".into(),
        ud.map_or(Value::Null, |u| u.text.clone().into()),
    );
    obj.insert(
        "encoding".into(),
        ud.map_or(Value::Null, |u| u.encoding.as_str().into()),
    );
    obj.insert("udl".into(), ud.map_or(Value::Null, |u| u.udl().into()));
    obj.insert("concat".into(), concat_json(ud.and_then(|u| u.concat)));
    obj.insert(
        "udh".into(),
        ud.and_then(|u| u.udh.as_deref()).map_or(Value::Null, hex),
    );
    obj.insert(
        "data".into(),
        ud.filter(|u| u.encoding == sms::Encoding::EightBit)
            .map_or(Value::Null, |u| hex(&u.data)),
    );
}

fn validity_json(v: Option<&ValidityPeriod>) -> Value {
    match v {
        None => Value::Null,
        Some(v @ ValidityPeriod::Relative(code)) => {
            json!({ "format": "relative", "code": code, "minutes": v.relative_minutes() })
        }
        Some(ValidityPeriod::Absolute(t)) => {
            json!({ "format": "absolute", "time": t.to_rfc3339() })
        }
        Some(ValidityPeriod::Enhanced(raw)) => {
            json!({ "format": "enhanced", "raw": sms::pdu::to_hex(raw) })
        }
    }
}

/// The JSON object `atmate pdu decode` prints.
fn decoded_json(pdu: &Pdu, tpdu_length: Option<usize>) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("type".into(), pdu.kind().into());
    o.insert("smsc".into(), address_json(pdu.smsc()));
    o.insert("number".into(), pdu.address().number.clone().into());
    o.insert("toa".into(), pdu.address().toa.into());
    o.insert("first_octet".into(), pdu.first_octet().into());
    o.insert("tpdu_length".into(), tpdu_length.into());
    user_data_json(pdu.user_data(), &mut o);
    match pdu {
        Pdu::Deliver(d) => {
            o.insert("pid".into(), d.pid.into());
            o.insert("dcs".into(), d.dcs.raw.into());
            o.insert("class".into(), d.dcs.class.into());
            o.insert("timestamp".into(), d.timestamp.to_rfc3339().into());
            o.insert("mr".into(), Value::Null);
            o.insert("validity".into(), Value::Null);
            o.insert("status".into(), Value::Null);
            o.insert("discharge_time".into(), Value::Null);
            o.insert(
                "flags".into(),
                json!({
                    "more_messages": d.more_messages,
                    "status_report_indication": d.status_report_indication,
                    "reply_path": d.reply_path,
                    "loop_prevention": d.loop_prevention,
                }),
            );
        }
        Pdu::Submit(s) => {
            o.insert("pid".into(), s.pid.into());
            o.insert("dcs".into(), s.dcs.raw.into());
            o.insert("class".into(), s.dcs.class.into());
            o.insert("timestamp".into(), Value::Null);
            o.insert("mr".into(), s.message_reference.into());
            o.insert("validity".into(), validity_json(s.validity.as_ref()));
            o.insert("status".into(), Value::Null);
            o.insert("discharge_time".into(), Value::Null);
            o.insert(
                "flags".into(),
                json!({
                    "status_report_request": s.status_report_request,
                    "reject_duplicates": s.reject_duplicates,
                    "reply_path": s.reply_path,
                }),
            );
        }
        Pdu::StatusReport(r) => {
            o.insert("pid".into(), r.pid.into());
            o.insert("dcs".into(), r.dcs.map(|d| d.raw).into());
            o.insert("class".into(), r.dcs.and_then(|d| d.class).into());
            o.insert("timestamp".into(), r.timestamp.to_rfc3339().into());
            o.insert("mr".into(), r.message_reference.into());
            o.insert("validity".into(), Value::Null);
            o.insert(
                "status".into(),
                json!({
                    "code": r.status,
                    "meaning": r.delivery().as_str(),
                    "description": sms::status_description(r.status),
                }),
            );
            o.insert("discharge_time".into(), r.discharge.to_rfc3339().into());
            o.insert(
                "flags".into(),
                json!({
                    "more_messages": r.more_messages,
                    "loop_prevention": r.loop_prevention,
                    "qualifier_command": r.qualifier_command,
                }),
            );
        }
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_accepts_human_durations() {
        assert_eq!(parse_validity("4d"), Ok(ValidityPeriod::Relative(0xAA)));
        assert_eq!(parse_validity("24h"), Ok(ValidityPeriod::Relative(0xA7)));
        assert_eq!(parse_validity("5m"), Ok(ValidityPeriod::Relative(0x00)));
        assert!(parse_validity("64weeks").is_err());
        assert!(parse_validity("0s").is_err());
        assert!(parse_validity("soon").is_err());
    }

    #[test]
    fn decoded_submit_has_every_documented_field() {
        let pdu = sms::decode_hex("0031000C919471103254760000AA05C8329BFD06").expect("E5");
        let v = decoded_json(&pdu, Some(19));
        for key in [
            "type",
            "smsc",
            "number",
            "text",
            "encoding",
            "class",
            "timestamp",
            "concat",
            "status",
            "udh",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["validity"]["minutes"], 5760);
        assert_eq!(v["flags"]["status_report_request"], true);
    }
}
