//! Splitting a text into SMS parts, and building the SUBMIT (and DELIVER) PDUs for them.
//!
//! GSM-7 when every character is in the default alphabet or the extension table (extension
//! characters take two septets, and an escape pair never straddles two parts), otherwise
//! UCS-2 (a surrogate pair never straddles two parts). Per part: 160 septets / 70 UTF-16 units
//! alone; with a concatenation header 153 / 67 (8-bit reference) or 152 / 66 (16-bit).

use chrono::{DateTime, FixedOffset};

use super::address::Address;
use super::dcs::{Dcs, Encoding};
use super::error::PduError;
use super::gsm7;
use super::pdu::{Deliver, EncodedPdu, Pdu, Submit, UserData};
use super::scts::ValidityPeriod;
use super::udh::Concat;

/// A text cut into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitText {
    /// The alphabet every part uses.
    pub encoding: Encoding,
    /// The parts' texts, in order; at least one (empty for an empty text).
    pub parts: Vec<String>,
}

/// Capacity of one part: (alone, with an 8-bit-ref header, with a 16-bit-ref header), in
/// septets for GSM-7 and UTF-16 units for UCS-2.
fn capacity(encoding: Encoding) -> (usize, usize, usize) {
    match encoding {
        Encoding::Gsm7 => (160, 153, 152),
        Encoding::Ucs2 => (70, 67, 66),
        Encoding::EightBit => (140, 134, 133),
    }
}

/// Cut `text` into parts (see the module doc). `sixteen_bit_ref` selects the smaller
/// capacity of the 16-bit reference header.
pub fn split_text(text: &str, force_ucs2: bool, sixteen_bit_ref: bool) -> SplitText {
    let gsm = !force_ucs2 && text.chars().all(gsm7::is_gsm7);
    let encoding = if gsm { Encoding::Gsm7 } else { Encoding::Ucs2 };
    let size = |c: char| {
        if gsm {
            gsm7::char_septets(c).unwrap_or(1)
        } else {
            c.len_utf16()
        }
    };
    let (alone, cap8, cap16) = capacity(encoding);
    let total: usize = text.chars().map(size).sum();
    if total <= alone {
        return SplitText {
            encoding,
            parts: vec![text.to_string()],
        };
    }
    let cap = if sixteen_bit_ref { cap16 } else { cap8 };
    let mut parts = Vec::new();
    let (mut cur, mut used) = (String::new(), 0);
    for c in text.chars() {
        let n = size(c);
        if used + n > cap {
            parts.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(c);
        used += n;
    }
    parts.push(cur);
    SplitText { encoding, parts }
}

/// Concatenation info for part `i` of `total`, or `None` for a single part.
fn concat_for(
    i: usize,
    total: usize,
    reference: u16,
    sixteen_bit: bool,
) -> Result<Option<Concat>, PduError> {
    if total == 1 {
        return Ok(None);
    }
    let total_u8 = u8::try_from(total).map_err(|_| PduError::TooLong { parts: total })?;
    Ok(Some(Concat {
        reference: if sixteen_bit {
            reference
        } else {
            reference & 0xFF
        },
        total: total_u8,
        seq: (i + 1) as u8,
        sixteen_bit,
    }))
}

fn parse_smsc(smsc: &Option<String>) -> Result<Option<Address>, PduError> {
    smsc.as_deref().map(Address::parse).transpose()
}

fn check_class(class: Option<u8>) -> Result<(), PduError> {
    match class {
        Some(c) if c > 3 => Err(PduError::Encode(format!(
            "message class {c} does not exist (0–3)"
        ))),
        _ => Ok(()),
    }
}

/// How to send a message with [`build_submit`]. `Default` gives a plain GSM-7/UCS-2 SMS
/// through the modem's SMSC, no status report, no validity period, 8-bit reference 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Use UCS-2 even when the text fits GSM-7.
    pub force_ucs2: bool,
    /// Message class 0–3 (`Some(0)` = flash SMS).
    pub class: Option<u8>,
    /// Ask for a status report (TP-SRR).
    pub status_report: bool,
    /// TP-VP; [`ValidityPeriod::relative_from_minutes`] makes the usual relative one.
    pub validity: Option<ValidityPeriod>,
    /// The concatenation reference for a multipart message. The caller keeps a counter so
    /// every message gets a fresh one; only the low byte is used with an 8-bit reference.
    pub reference: u16,
    /// Use the 16-bit reference IE (`08 04`, 152/66 per part) instead of the 8-bit one.
    pub sixteen_bit_ref: bool,
    /// The SMSC (`+49…`); `None` writes `00`, i.e. the modem's `+CSCA`.
    pub smsc: Option<String>,
    /// TP-MR. 0 is fine: modems put their own counter here.
    pub message_reference: u8,
    /// TP-RD: ask the SMSC to reject duplicates.
    pub reject_duplicates: bool,
}

/// The SMS-SUBMIT structs for `text` to `to` (see [`build_submit`]).
pub fn submit_parts(to: &str, text: &str, opts: &SubmitOptions) -> Result<Vec<Submit>, PduError> {
    let destination = Address::parse(to)?;
    let smsc = parse_smsc(&opts.smsc)?;
    check_class(opts.class)?;
    let split = split_text(text, opts.force_ucs2, opts.sixteen_bit_ref);
    let total = split.parts.len();
    let dcs = Dcs::for_message(split.encoding, opts.class);
    split
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let concat = concat_for(i, total, opts.reference, opts.sixteen_bit_ref)?;
            Ok(Submit {
                smsc: smsc.clone(),
                reject_duplicates: opts.reject_duplicates,
                status_report_request: opts.status_report,
                reply_path: false,
                message_reference: opts.message_reference,
                destination: destination.clone(),
                pid: 0x00,
                dcs,
                validity: opts.validity,
                user_data: UserData::from_text(part, split.encoding, concat)?,
            })
        })
        .collect()
}

/// Encode `text` to `to` as one SMS-SUBMIT per part, each ready for `AT+CMGS=<tpdu_len>`.
///
/// ```
/// use atmate::sms::{build_submit, SubmitOptions, ValidityPeriod};
/// let opts = SubmitOptions {
///     status_report: true,
///     validity: ValidityPeriod::relative_from_minutes(4 * 24 * 60),
///     ..SubmitOptions::default()
/// };
/// let parts = build_submit("+491701234567", "Hello", &opts).unwrap();
/// assert_eq!(parts[0].hex, "0031000C919471103254760000AA05C8329BFD06");
/// assert_eq!(parts[0].tpdu_len, 19);
/// ```
pub fn build_submit(
    to: &str,
    text: &str,
    opts: &SubmitOptions,
) -> Result<Vec<EncodedPdu>, PduError> {
    submit_parts(to, text, opts)?
        .into_iter()
        .map(|s| Pdu::Submit(s).encode())
        .collect()
}

/// Encode 8-bit `data` to `to` (140 octets alone, 134/133 per part with a header);
/// `force_ucs2` is ignored.
pub fn build_submit_data(
    to: &str,
    data: &[u8],
    opts: &SubmitOptions,
) -> Result<Vec<EncodedPdu>, PduError> {
    let destination = Address::parse(to)?;
    let smsc = parse_smsc(&opts.smsc)?;
    check_class(opts.class)?;
    let (alone, cap8, cap16) = capacity(Encoding::EightBit);
    let chunks: Vec<&[u8]> = if data.len() <= alone {
        vec![data]
    } else {
        data.chunks(if opts.sixteen_bit_ref { cap16 } else { cap8 })
            .collect()
    };
    let total = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let concat = concat_for(i, total, opts.reference, opts.sixteen_bit_ref)?;
            Pdu::Submit(Submit {
                smsc: smsc.clone(),
                reject_duplicates: opts.reject_duplicates,
                status_report_request: opts.status_report,
                reply_path: false,
                message_reference: opts.message_reference,
                destination: destination.clone(),
                pid: 0x00,
                dcs: Dcs::for_message(Encoding::EightBit, opts.class),
                validity: opts.validity,
                user_data: UserData::from_bytes(chunk.to_vec(), concat),
            })
            .encode()
        })
        .collect()
}

/// How the simulator (or a test) builds an incoming message with [`build_deliver`].
/// `Default` gives no SMSC prefix, GSM-7/UCS-2 by content, no class, 8-bit reference 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliverOptions {
    /// Use UCS-2 even when the text fits GSM-7.
    pub force_ucs2: bool,
    /// Message class 0–3 (`Some(0)` = flash SMS).
    pub class: Option<u8>,
    /// The concatenation reference (low byte only with an 8-bit reference).
    pub reference: u16,
    /// Use the 16-bit reference IE.
    pub sixteen_bit_ref: bool,
    /// The SMSC to put in the prefix (`+49…`), as a real modem shows it; `None` writes `00`.
    pub smsc: Option<String>,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
}

/// The SMS-DELIVER structs for `text` from `from` (see [`build_deliver`]).
pub fn deliver_parts(
    from: &str,
    text: &str,
    timestamp: DateTime<FixedOffset>,
    opts: &DeliverOptions,
) -> Result<Vec<Deliver>, PduError> {
    let originator = Address::parse_sender(from)?;
    let smsc = parse_smsc(&opts.smsc)?;
    check_class(opts.class)?;
    let split = split_text(text, opts.force_ucs2, opts.sixteen_bit_ref);
    let total = split.parts.len();
    let dcs = Dcs::for_message(split.encoding, opts.class);
    split
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let concat = concat_for(i, total, opts.reference, opts.sixteen_bit_ref)?;
            Ok(Deliver {
                smsc: smsc.clone(),
                more_messages: false,
                loop_prevention: false,
                status_report_indication: opts.status_report_indication,
                reply_path: false,
                originator: originator.clone(),
                pid: 0x00,
                dcs,
                timestamp,
                user_data: UserData::from_text(part, split.encoding, concat)?,
            })
        })
        .collect()
}

/// Encode an incoming message as one SMS-DELIVER per part, as a network would deliver it:
/// what the simulator stores and shows in `+CMGR`/`+CMGL`/`+CMT` (`tpdu_len` is the
/// `<length>` those print).
///
/// `from` is a number (`+49…` → TOA 91, digits → TOA 81) or an alphanumeric sender of up to
/// 11 GSM-7 characters (TOA D0). `timestamp` becomes the SCTS (years 2000–2099, offsets in
/// whole quarter hours).
pub fn build_deliver(
    from: &str,
    text: &str,
    timestamp: DateTime<FixedOffset>,
    opts: &DeliverOptions,
) -> Result<Vec<EncodedPdu>, PduError> {
    deliver_parts(from, text, timestamp, opts)?
        .into_iter()
        .map(|d| Pdu::Deliver(d).encode())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::ucs2;

    #[test]
    fn short_texts_stay_single_part() {
        let s = split_text(&"a".repeat(160), false, false);
        assert_eq!((s.encoding, s.parts.len()), (Encoding::Gsm7, 1));
        let s = split_text(&"ж".repeat(70), false, false);
        assert_eq!((s.encoding, s.parts.len()), (Encoding::Ucs2, 1));
        let s = split_text("", false, false);
        assert_eq!(s.parts, vec![String::new()]);
        let s = split_text("hi", true, false);
        assert_eq!(s.encoding, Encoding::Ucs2);
    }

    #[test]
    fn it_fills_parts_to_153_and_152_septets() {
        let s = split_text(&"a".repeat(161), false, false);
        assert_eq!(
            s.parts.iter().map(String::len).collect::<Vec<_>>(),
            vec![153, 8]
        );
        let s = split_text(&"a".repeat(306), false, true);
        assert_eq!(
            s.parts.iter().map(String::len).collect::<Vec<_>>(),
            vec![152, 152, 2]
        );
    }

    #[test]
    fn it_never_splits_an_escape_pair() {
        // 152 plain septets, then '€' (2 septets) would need septets 153–154: it moves on.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let s = split_text(&text, false, false);
        assert_eq!(s.parts[0], "a".repeat(152));
        assert!(s.parts[1].starts_with('€'));
        assert_eq!(gsm7::septet_len(&s.parts[0]), Some(152));
        // A text of 80 euro signs is 160 septets: one part.
        assert_eq!(split_text(&"€".repeat(80), false, false).parts.len(), 1);
        assert_eq!(split_text(&"€".repeat(81), false, false).parts.len(), 2);
    }

    #[test]
    fn it_never_splits_a_surrogate_pair() {
        // 66 units, then an emoji (2 units) would need units 67–68.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        let s = split_text(&text, false, false);
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(s.parts[0], "ж".repeat(66));
        assert!(s.parts[1].starts_with('😀'));
        assert!(s.parts.iter().all(|p| ucs2::unit_len(p) <= 67));
        // 35 emoji = 70 units: one part; 36: two, 33 + 3 (66 units each at most).
        assert_eq!(split_text(&"😀".repeat(35), false, false).parts.len(), 1);
        let s = split_text(&"😀".repeat(36), false, false);
        assert_eq!(
            s.parts
                .iter()
                .map(|p| p.chars().count())
                .collect::<Vec<_>>(),
            vec![33, 3]
        );
    }

    #[test]
    fn one_non_gsm_character_switches_the_whole_text_to_ucs2() {
        let s = split_text("Hello `world`", false, false);
        assert_eq!(s.encoding, Encoding::Ucs2);
    }

    #[test]
    fn it_builds_numbered_parts_with_the_callers_reference() {
        let opts = SubmitOptions {
            reference: 0x1234,
            ..SubmitOptions::default()
        };
        let parts = submit_parts("+491701234567", &"x".repeat(200), &opts).expect("ok");
        assert_eq!(parts.len(), 2);
        for (i, p) in parts.iter().enumerate() {
            let c = p.user_data.concat.expect("concat");
            assert_eq!(
                (c.reference, c.total, c.seq, c.sixteen_bit),
                (0x34, 2, i as u8 + 1, false)
            );
            assert_eq!(p.first_octet() & 0x40, 0x40, "UDHI");
        }
        let opts = SubmitOptions {
            reference: 0x1234,
            sixteen_bit_ref: true,
            ..SubmitOptions::default()
        };
        let parts = submit_parts("+491701234567", &"x".repeat(200), &opts).expect("ok");
        assert_eq!(parts[1].user_data.concat.expect("concat").reference, 0x1234);
    }

    #[test]
    fn a_full_gsm7_part_is_140_octets_with_udl_160() {
        let encoded =
            build_submit("+491701234567", &"x".repeat(306), &SubmitOptions::default()).expect("ok");
        assert_eq!(encoded.len(), 2);
        for e in &encoded {
            // 00 | FO MR DA(8) PID DCS UDL = 13 octets, then 140 octets of user data.
            assert_eq!(e.tpdu_len, 13 + 140);
            // Hex: SMSC 00, FO, MR, DA (8 octets), PID, DCS → the UDL is octet 13.
            assert_eq!(&e.hex[26..28], "A0", "UDL 160 in {}", e.hex);
        }
    }

    #[test]
    fn it_rejects_bad_options() {
        let d = SubmitOptions::default();
        assert!(matches!(
            build_submit("hello", "x", &d),
            Err(PduError::InvalidAddress { .. })
        ));
        let bad_class = SubmitOptions {
            class: Some(4),
            ..SubmitOptions::default()
        };
        assert!(build_submit("+4917", "x", &bad_class).is_err());
        let bad_smsc = SubmitOptions {
            smsc: Some("SMSC".into()),
            ..SubmitOptions::default()
        };
        assert!(build_submit("+4917", "x", &bad_smsc).is_err());
        assert_eq!(
            build_submit("+4917", &"x".repeat(153 * 256), &d),
            Err(PduError::TooLong { parts: 256 })
        );
        assert_eq!(
            build_submit("+4917", &"x".repeat(153 * 255), &d).map(|v| v.len()),
            Ok(255)
        );
    }

    #[test]
    fn it_splits_8bit_data_at_134_octets() {
        let data: Vec<u8> = (0..=255u8).collect();
        let parts = build_submit_data("+4917", &data, &SubmitOptions::default()).expect("ok");
        assert_eq!(parts.len(), 2);
        let mut back = Vec::new();
        for p in &parts {
            let Pdu::Submit(s) = super::super::decode_hex(&p.hex).expect("decodes") else {
                panic!("not a submit");
            };
            assert_eq!(s.user_data.encoding, Encoding::EightBit);
            back.extend(s.user_data.data);
        }
        assert_eq!(back, data);
    }
}
