//! USSD strings ↔ text, by DCS.
//!
//! What modems put between the quotes of `+CUSD: <m>,"<str>",<dcs>` (MF667.md §2.3):
//!
//! - **DCS 15 (GSM 7-bit).** ZTE gives plain text (`"Balance: 10.00 EUR"`); Huawei-style
//!   firmware gives the packed septets in hex (`"AA180C3602"` = `*100#`). There is no flag
//!   saying which, so [`decode`] decides by content: a string that is all hex, of even
//!   length, in one letter case, not all decimal digits, and that unpacks to printable GSM
//!   text without `@` (what zero bits unpack to) is packed; otherwise it is taken literally.
//!   A modem under `AT+CSCS="UCS2"` sends UCS-2 hex even for DCS 15; that is recognised too.
//!   Packed text whose septet count is 8n−1 is padded with a CR (23.038 §6.1.2.3.1), which
//!   is removed.
//! - **DCS 72 (0x48, UCS-2).** Hex of UTF-16BE, surrogate pairs allowed.
//! - **DCS 68 (0x44, 8-bit).** Hex octets; read as UTF-8 (ASCII) text, or as UCS-2 or
//!   Latin-1, whichever reads better (networks send UCS-2 under 68 too, ussd-gui issue #1).
//! - **DCS 17 (0x11).** UCS-2 preceded by a two-character language packed in two octets.
//! - Any other DCS by the 23.038 §5 rules ([`Dcs`]).
//!
//! For every DCS, a string that is not hex is taken literally (ModemManager's rule): the
//! modem has already converted it.

use super::dcs::{Alphabet, Dcs, EIGHT_BIT, GSM7, UCS2};
use super::session::SessionState;
use super::UssdError;
use crate::sms::gsm7;

/// A USSD string carries at most 160 octets (3GPP TS 24.080).
pub const MAX_OCTETS: usize = 160;

/// …which is 182 GSM 7-bit characters when packed.
pub const MAX_SEPTETS: usize = MAX_OCTETS * 8 / 7;

const CR: u8 = 0x0D;

/// How a USSD string was (or is to be) written between the quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The text itself (ZTE's plain DCS 15, or anything that is not hex).
    Literal,
    /// GSM 7-bit septets packed into octets, in hex (Huawei-style DCS 15).
    PackedGsm7,
    /// UTF-16BE in hex (DCS 72, also 17 after its language).
    Ucs2Hex,
    /// 8-bit octets in hex (DCS 68), read as text.
    EightBitHex,
}

/// A decoded USSD string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text.
    pub text: String,
    /// How it was written.
    pub form: Form,
    /// The language, when the DCS names one or the text starts with one (DCS 16/17).
    pub language: Option<String>,
}

/// Decode the string of a `+CUSD` by its DCS (`None` when the modem gave none: DCS 15).
pub fn decode(raw: &str, dcs: Option<u8>) -> Result<Decoded, UssdError> {
    let d = Dcs::new(dcs.unwrap_or(GSM7));
    if d.compressed {
        return Err(UssdError::Compressed { dcs: d.value });
    }
    let mut language = d.language.map(str::to_string);
    let (mut text, form) = match d.alphabet {
        Alphabet::Gsm7 => decode_gsm7(raw),
        _ if !is_hex(raw) => (raw.to_string(), Form::Literal),
        Alphabet::Ucs2 => {
            let octets = hex_octets(raw, d.value)?;
            if d.language_prefix {
                // Two GSM 7-bit characters packed into two octets (14 bits + 2 zero bits).
                if octets.len() < 2 {
                    return Err(UssdError::BadHex {
                        dcs: d.value,
                        raw: raw.to_string(),
                    });
                }
                let lang = gsm7::decode(&gsm7::unpack(&octets[..2], 0, 2));
                language = Some(lang);
                (ucs2(&octets[2..], raw, d.value)?, Form::Ucs2Hex)
            } else {
                (ucs2(&octets, raw, d.value)?, Form::Ucs2Hex)
            }
        }
        Alphabet::EightBit => eight_bit(&hex_octets(raw, d.value)?, raw)?,
    };
    if d.language_prefix && d.alphabet == Alphabet::Gsm7 {
        // DCS 0x10: "xx" + CR, then the text (23.038 §5).
        let chars: Vec<char> = text.chars().collect();
        if chars.len() >= 3 && chars[2] == '\r' {
            language = Some(chars[..2].iter().collect());
            text = chars[3..].iter().collect();
        }
    }
    Ok(Decoded {
        text,
        form,
        language,
    })
}

/// DCS 15 and the other GSM 7-bit values: packed hex, UCS-2 hex (CSCS=UCS2) or literal.
fn decode_gsm7(raw: &str) -> (String, Form) {
    if let Some(t) = packed_text(raw) {
        return (t, Form::PackedGsm7);
    }
    if let Some(t) = plausible_ucs2(raw) {
        return (t, Form::Ucs2Hex);
    }
    (raw.to_string(), Form::Literal)
}

/// Non-empty and every character a hex digit.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hex digits → octets (`None` unless [`is_hex`] and of even length).
fn octets_of(s: &str) -> Option<Vec<u8>> {
    if !is_hex(s) || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn hex_octets(raw: &str, dcs: u8) -> Result<Vec<u8>, UssdError> {
    octets_of(raw).ok_or_else(|| UssdError::BadHex {
        dcs,
        raw: raw.to_string(),
    })
}

fn to_hex(octets: &[u8]) -> String {
    octets.iter().map(|b| format!("{b:02X}")).collect()
}

/// Printable: no control characters except CR, LF and TAB (menus have line breaks).
fn is_printable(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
}

/// The share of characters that ordinary text is made of: letters and digits of any
/// script, spaces, ASCII punctuation and currency signs. Garbage read in the wrong
/// encoding scores low (private-use code points, symbols, stray Latin-1 signs).
fn quality(s: &str) -> f32 {
    let n = s.chars().count();
    if n == 0 {
        return 0.0;
    }
    let good = s
        .chars()
        .filter(|&c| {
            c.is_alphanumeric()
                || c.is_whitespace()
                || c.is_ascii_punctuation()
                || matches!(c, '€' | '£' | '¥' | '¤' | '§' | '°' | '¡' | '¿')
        })
        .count();
    good as f32 / n as f32
}

const MIN_QUALITY: f32 = 0.8;

/// The text of packed GSM 7-bit hex, if `raw` is that (see the module docs for the test).
fn packed_text(raw: &str) -> Option<String> {
    if raw.len() < 4 || raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Modems print hex in one case; mixed case is a word, not hex.
    let upper = raw.bytes().any(|b| b.is_ascii_uppercase());
    let lower = raw.bytes().any(|b| b.is_ascii_lowercase());
    if upper && lower {
        return None;
    }
    let octets = octets_of(raw)?;
    let septets = unpack_ussd(&octets);
    // `@` is septet 0, what zero bits unpack to: a literal string read as packed is full of them.
    if septets.is_empty() || septets.contains(&0) {
        return None;
    }
    let text = gsm7::decode(&septets);
    (is_printable(&text) && quality(&text) >= MIN_QUALITY).then_some(text)
}

/// Unpack USSD septets, dropping the padding of the last octet: when the octets hold a
/// whole number of septets (7n octets = 8n septets) and the last is CR, it is the filler
/// for an 8n−1 character text (23.038 §6.1.2.3.1); a 0 there is a sender that padded with
/// zero bits instead.
fn unpack_ussd(octets: &[u8]) -> Vec<u8> {
    let mut septets = gsm7::unpack(octets, 0, octets.len() * 8 / 7);
    if octets.len().is_multiple_of(7) && matches!(septets.last(), Some(&CR) | Some(&0)) {
        septets.pop();
    }
    septets
}

/// UTF-16BE octets → text. Errors on an odd length or an unpaired surrogate.
fn ucs2(octets: &[u8], raw: &str, dcs: u8) -> Result<String, UssdError> {
    if !octets.len().is_multiple_of(2) {
        return Err(UssdError::BadHex {
            dcs,
            raw: raw.to_string(),
        });
    }
    let units = octets
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]));
    let text: String = char::decode_utf16(units)
        .collect::<Result<_, _>>()
        .map_err(|_| UssdError::BadUtf16 {
            raw: raw.to_string(),
        })?;
    if !is_printable(&text) {
        return Err(UssdError::NotText {
            dcs,
            raw: raw.to_string(),
        });
    }
    Ok(text)
}

/// UCS-2 hex that reads as text, for DCS 15 strings from a modem under `AT+CSCS="UCS2"`.
///
/// Stricter than DCS 72 because a plain answer of digits (`"1234"`) is also valid UCS-2
/// hex: real text has at least two characters, at least one of them from the ASCII/Latin-1
/// block (a space, a digit, punctuation) and at most one other 256-character block (one
/// script: `Hi! Привет` is blocks 0x00 and 0x04).
fn plausible_ucs2(raw: &str) -> Option<String> {
    if !raw.len().is_multiple_of(4) || raw.len() < 8 {
        return None;
    }
    let octets = octets_of(raw)?;
    let mut blocks: Vec<u8> = octets.iter().step_by(2).copied().collect();
    blocks.sort_unstable();
    blocks.dedup();
    if blocks.first() != Some(&0) || blocks.len() > 2 {
        return None;
    }
    let text = ucs2(&octets, raw, UCS2).ok()?;
    (quality(&text) >= MIN_QUALITY).then_some(text)
}

/// 8-bit octets → text: UTF-8 (which covers ASCII) if it is printable, else UCS-2 or
/// Latin-1, whichever reads better (a tie goes to Latin-1: that is what 8-bit means).
fn eight_bit(octets: &[u8], raw: &str) -> Result<(String, Form), UssdError> {
    if let Ok(s) = std::str::from_utf8(octets) {
        if is_printable(s) {
            return Ok((s.to_string(), Form::EightBitHex));
        }
    }
    let latin1: String = octets.iter().map(|&b| char::from(b)).collect();
    let latin1 = is_printable(&latin1).then_some(latin1);
    let wide = octets
        .len()
        .is_multiple_of(2)
        .then(|| ucs2(octets, raw, EIGHT_BIT).ok())
        .flatten();
    match (latin1, wide) {
        (Some(l), Some(w)) if quality(&w) > quality(&l) => Ok((w, Form::Ucs2Hex)),
        (Some(l), _) => Ok((l, Form::EightBitHex)),
        (None, Some(w)) => Ok((w, Form::Ucs2Hex)),
        (None, None) => Err(UssdError::NotText {
            dcs: EIGHT_BIT,
            raw: raw.to_string(),
        }),
    }
}

/// A string ready to put between the quotes of `AT+CUSD=1,"…",<dcs>` or `+CUSD: m,"…",<dcs>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The string.
    pub text: String,
    /// The DCS to send with it.
    pub dcs: u8,
}

impl Encoded {
    /// The command that sends this as a request or menu answer: `AT+CUSD=1,"<text>",<dcs>`.
    pub fn request_command(&self) -> crate::at::Command {
        crate::at::Command::set("+CUSD")
            .int(1)
            .string(&self.text)
            .int(i64::from(self.dcs))
            .build()
    }

    /// The URC line a modem prints for this answer: `+CUSD: <m>,"<text>",<dcs>` (for the
    /// simulator; the text is printed raw, as a modem does).
    pub fn urc_line(&self, state: SessionState) -> String {
        format!("+CUSD: {},\"{}\",{}", state.code(), self.text, self.dcs)
    }
}

/// How to write a request for the modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEncoding {
    /// Plain text, DCS 15: what ZTE wants (`AT+CUSD=1,"*100#",15`).
    Plain,
    /// Packed GSM 7-bit in hex, DCS 15: what Huawei-style firmware wants (`AA180C3602`).
    PackedHex,
}

/// Encode a USSD request (`*100#`) or a menu answer (`1`).
pub fn encode_request(text: &str, enc: RequestEncoding) -> Result<Encoded, UssdError> {
    if text.trim().is_empty() {
        return Err(UssdError::Empty);
    }
    match enc {
        RequestEncoding::Plain => encode_reply(text, ReplyForm::Plain),
        RequestEncoding::PackedHex => encode_reply(text, ReplyForm::PackedHex),
    }
}

/// The command to cancel an open session: `AT+CUSD=2`.
pub fn cancel_command() -> crate::at::Command {
    crate::at::Command::set("+CUSD").int(2).build()
}

/// How a (simulated) network answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyForm {
    /// Plain text, DCS 15 (ZTE).
    Plain,
    /// Packed GSM 7-bit in hex, DCS 15 (Huawei-style).
    PackedHex,
    /// UTF-16BE in hex, DCS 72.
    Ucs2Hex,
    /// UTF-8 octets in hex, DCS 68.
    EightBitHex,
}

fn gsm7_septets(text: &str) -> Result<Vec<u8>, UssdError> {
    if let Some(ch) = text.chars().find(|&c| !gsm7::is_gsm7(c)) {
        return Err(UssdError::NotGsm7 { ch });
    }
    let septets = gsm7::encode(text).unwrap_or_default();
    if septets.len() > MAX_SEPTETS {
        return Err(UssdError::TooLong {
            len: septets.len(),
            max: MAX_SEPTETS,
            unit: "septets",
        });
    }
    Ok(septets)
}

fn check_octets(n: usize) -> Result<(), UssdError> {
    if n > MAX_OCTETS {
        return Err(UssdError::TooLong {
            len: n,
            max: MAX_OCTETS,
            unit: "octets",
        });
    }
    Ok(())
}

/// Encode an answer in one of the forms networks and modems use (for the simulator).
pub fn encode_reply(text: &str, form: ReplyForm) -> Result<Encoded, UssdError> {
    match form {
        ReplyForm::Plain => {
            gsm7_septets(text)?;
            Ok(Encoded {
                text: text.to_string(),
                dcs: GSM7,
            })
        }
        ReplyForm::PackedHex => {
            let mut septets = gsm7_septets(text)?;
            // 23.038 §6.1.2.3.1: 7 spare bits would read as `@`, so fill them with CR; and a
            // text that really ends in CR on an octet boundary gets another CR, so the
            // receiver does not take it for the filler.
            if septets.len() % 8 == 7 || (septets.len() % 8 == 0 && septets.last() == Some(&CR)) {
                septets.push(CR);
            }
            let octets = gsm7::pack(&septets, 0);
            check_octets(octets.len())?;
            Ok(Encoded {
                text: to_hex(&octets),
                dcs: GSM7,
            })
        }
        ReplyForm::Ucs2Hex => {
            let octets: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            check_octets(octets.len())?;
            Ok(Encoded {
                text: to_hex(&octets),
                dcs: UCS2,
            })
        }
        ReplyForm::EightBitHex => {
            check_octets(text.len())?;
            Ok(Encoded {
                text: to_hex(text.as_bytes()),
                dcs: EIGHT_BIT,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(raw: &str, dcs: u8) -> (String, Form) {
        let d = decode(raw, Some(dcs)).expect(raw);
        (d.text, d.form)
    }

    #[test]
    fn mf667_examples() {
        // §2.3: ZTE plain text under 15.
        assert_eq!(
            text("Balance: 10.00 EUR", 15),
            ("Balance: 10.00 EUR".into(), Form::Literal)
        );
        // The user's "long hex ,72".
        assert_eq!(
            text(
                "00420061006C0061006E00630065003A002000310030002E003000300020004500550052",
                72
            ),
            ("Balance: 10.00 EUR".into(), Form::Ucs2Hex)
        );
        // 8-bit hex under 68.
        assert_eq!(
            text("42616C616E63653A2031302E303020455552", 68),
            ("Balance: 10.00 EUR".into(), Form::EightBitHex)
        );
        // Huawei-style packed `*100#`.
        assert_eq!(text("AA180C3602", 15), ("*100#".into(), Form::PackedGsm7));
        // No DCS at all means 15.
        assert_eq!(decode("AA180C3602", None).expect("x").text, "*100#");
    }

    #[test]
    fn plain_text_that_looks_like_hex_stays_plain() {
        for literal in [
            "1234", "2500", "100", "0", "Cafe", "12345678", "12341234", "",
        ] {
            assert_eq!(
                text(literal, 15),
                (literal.to_string(), Form::Literal),
                "{literal:?}"
            );
        }
        // Multi-line plain menus.
        assert_eq!(
            text("1. Balance\r\n2. Bundles", 15),
            ("1. Balance\r\n2. Bundles".into(), Form::Literal)
        );
    }

    #[test]
    fn packed_cr_padding_is_stripped() {
        // 7 characters = 49 bits: 7 spare bits filled with CR (23.038 §6.1.2.3.1).
        let e = encode_reply("Balance", ReplyForm::PackedHex).expect("enc");
        assert_eq!(e.text.len(), 14);
        let septets = gsm7::unpack(&octets_of(&e.text).expect("hex"), 0, 8);
        assert_eq!(septets[7], CR);
        assert_eq!(text(&e.text, 15), ("Balance".into(), Form::PackedGsm7));
        // Zero-bit padding from a sloppy sender decodes the same way.
        let zero_padded = to_hex(&gsm7::pack(&gsm7::encode("Balance").expect("gsm"), 0));
        assert_eq!(zero_padded.len(), 14);
        assert_eq!(text(&zero_padded, 15).0, "Balance");
        // 8 characters fill 7 octets exactly: nothing to strip.
        let e8 = encode_reply("Balances", ReplyForm::PackedHex).expect("enc");
        assert_eq!(e8.text.len(), 14);
        assert_eq!(text(&e8.text, 15).0, "Balances");
    }

    #[test]
    fn ucs2_under_dcs_15_from_a_cscs_ucs2_modem() {
        assert_eq!(
            text("0048006900210020041F04400438043204350442", 15),
            ("Hi! Привет".into(), Form::Ucs2Hex)
        );
    }

    #[test]
    fn ucs2_with_surrogate_pairs_and_errors() {
        let e = encode_reply("Guthaben 5€ 😀", ReplyForm::Ucs2Hex).expect("enc");
        assert_eq!(e.dcs, 72);
        assert!(e.text.contains("D83DDE00"));
        assert_eq!(text(&e.text, 72).0, "Guthaben 5€ 😀");
        // An unpaired surrogate, an odd length, a control character.
        assert!(matches!(
            decode("D83D0041", Some(72)),
            Err(UssdError::BadUtf16 { .. })
        ));
        assert!(matches!(
            decode("004", Some(72)),
            Err(UssdError::BadHex { dcs: 72, .. })
        ));
        assert!(matches!(
            decode("004100", Some(72)),
            Err(UssdError::BadHex { .. })
        ));
        assert!(matches!(
            decode("0000", Some(72)),
            Err(UssdError::NotText { .. })
        ));
        // Not hex at all: the modem already converted it.
        assert_eq!(text("Привет", 72), ("Привет".into(), Form::Literal));
    }

    #[test]
    fn eight_bit_falls_back_to_ucs2_when_that_reads_better() {
        // UCS-2 octets sent under 68.
        assert_eq!(
            text("00420061006C0061006E00630065", 68),
            ("Balance".into(), Form::Ucs2Hex)
        );
        // Latin-1, not UTF-8: stays 8-bit (UCS-2 would read U+E9E9, a private-use sign).
        assert_eq!(text("E9E9", 68), ("éé".into(), Form::EightBitHex));
        assert_eq!(text("4772FCDF65", 68).0, "Grüße");
        // Binary: neither.
        assert!(matches!(
            decode("0001", Some(68)),
            Err(UssdError::NotText { dcs: 68, .. })
        ));
        assert!(matches!(
            decode("0", Some(68)),
            Err(UssdError::BadHex { .. })
        ));
    }

    #[test]
    fn language_forms() {
        // DCS 17: "en" packed into two octets (e=0x65, n=0x6E), then UCS-2 "Hi".
        let lang = to_hex(&gsm7::pack(&gsm7::encode("en").expect("gsm"), 0));
        assert_eq!(lang, "6537");
        let d = decode(&format!("{lang}00480069"), Some(17)).expect("17");
        assert_eq!((d.text.as_str(), d.language.as_deref()), ("Hi", Some("en")));
        assert!(decode("E5", Some(17)).is_err());
        // DCS 16: "de" + CR + text.
        let d = decode("de\rHallo", Some(0x10)).expect("16");
        assert_eq!(
            (d.text.as_str(), d.language.as_deref()),
            ("Hallo", Some("de"))
        );
        // Group 0 names the language.
        assert_eq!(
            decode("Hallo", Some(0)).expect("0").language.as_deref(),
            Some("de")
        );
        assert_eq!(decode("Hallo", Some(15)).expect("15").language, None);
    }

    #[test]
    fn other_dcs_values_follow_23038() {
        assert_eq!(text("Hello", 0xF0).0, "Hello");
        assert_eq!(
            text("48656C6C6F", 0xF4),
            ("Hello".into(), Form::EightBitHex)
        );
        assert!(matches!(
            decode("abc", Some(0x60)),
            Err(UssdError::Compressed { dcs: 0x60 })
        ));
        // Reserved values are GSM 7-bit.
        assert_eq!(text("AA180C3602", 0x80), ("*100#".into(), Form::PackedGsm7));
    }

    #[test]
    fn requests_for_zte_and_huawei() {
        let plain = encode_request("*100#", RequestEncoding::Plain).expect("plain");
        assert_eq!(
            plain,
            Encoded {
                text: "*100#".into(),
                dcs: 15
            }
        );
        assert_eq!(plain.request_command().line(), r#"AT+CUSD=1,"*100#",15"#);
        let packed = encode_request("*100#", RequestEncoding::PackedHex).expect("packed");
        assert_eq!(packed.text, "AA180C3602");
        assert_eq!(
            packed.request_command().to_bytes(),
            b"AT+CUSD=1,\"AA180C3602\",15\r"
        );
        assert_eq!(cancel_command().line(), "AT+CUSD=2");
        assert_eq!(
            encode_request("  ", RequestEncoding::Plain),
            Err(UssdError::Empty)
        );
        assert_eq!(
            encode_request("*100#ж", RequestEncoding::Plain),
            Err(UssdError::NotGsm7 { ch: 'ж' })
        );
        assert_eq!(
            encode_request(&"1".repeat(183), RequestEncoding::PackedHex),
            Err(UssdError::TooLong {
                len: 183,
                max: 182,
                unit: "septets"
            })
        );
        assert!(encode_request(&"1".repeat(182), RequestEncoding::PackedHex).is_ok());
    }

    #[test]
    fn simulator_reply_forms() {
        let t = "Balance: 10.00 EUR";
        let plain = encode_reply(t, ReplyForm::Plain).expect("plain");
        assert_eq!(
            plain.urc_line(SessionState::Done),
            "+CUSD: 0,\"Balance: 10.00 EUR\",15"
        );
        assert_eq!(
            encode_reply(t, ReplyForm::Ucs2Hex).expect("ucs2").text,
            "00420061006C0061006E00630065003A002000310030002E003000300020004500550052"
        );
        let eight = encode_reply(t, ReplyForm::EightBitHex).expect("8bit");
        assert_eq!(
            eight,
            Encoded {
                text: "42616C616E63653A2031302E303020455552".into(),
                dcs: 68
            }
        );
        assert!(matches!(
            encode_reply(&"é".repeat(81), ReplyForm::Ucs2Hex),
            Err(UssdError::TooLong { len: 162, .. })
        ));
        assert_eq!(encode_reply("", ReplyForm::Plain).expect("empty").text, "");
    }

    #[test]
    fn decoded_replies_parse_back_through_the_at_layer() {
        let e = encode_reply("Привет", ReplyForm::Ucs2Hex).expect("enc");
        let line = e.urc_line(SessionState::ActionRequired);
        let c = crate::at::response::Cusd::parse(&line).expect("cusd");
        assert_eq!(c.m, 1);
        let d = decode(c.text.as_deref().unwrap_or(""), c.dcs).expect("dec");
        assert_eq!(d.text, "Привет");
    }

    /// Ordinary reply text: letters, digits, spaces, punctuation, line breaks.
    const TEXT: &str = "[A-Za-z0-9 .,:;!?*#()+/%'-]{1,60}(\n[A-Za-z0-9 .,:-]{1,20}){0,3}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn packed_round_trips(t in TEXT) {
            let e = encode_reply(&t, ReplyForm::PackedHex).expect("enc");
            let d = decode(&e.text, Some(e.dcs)).expect("dec");
            // A short all-digit packing is kept literal by design; everything else unpacks.
            if d.form == Form::PackedGsm7 {
                prop_assert_eq!(d.text, t);
            } else {
                prop_assert!(e.text.bytes().all(|b| b.is_ascii_digit()) || e.text.len() < 4);
            }
        }

        #[test]
        fn plain_round_trips(t in TEXT) {
            let e = encode_reply(&t, ReplyForm::Plain).expect("enc");
            let d = decode(&e.text, Some(e.dcs)).expect("dec");
            // Plain text that is not hex is always literal.
            if !is_hex(&t) {
                prop_assert_eq!(d.form, Form::Literal);
                prop_assert_eq!(d.text, t);
            }
        }

        #[test]
        fn ucs2_round_trips(t in "\\PC{0,40}") {
            let e = encode_reply(&t, ReplyForm::Ucs2Hex).expect("enc");
            match decode(&e.text, Some(e.dcs)) {
                Ok(d) => prop_assert_eq!(d.text, t),
                // Control characters are refused on the way back, nothing else.
                Err(UssdError::NotText { .. }) => prop_assert!(!is_printable(&t)),
                Err(other) => prop_assert!(false, "{other}"),
            }
        }

        #[test]
        fn eight_bit_round_trips(t in "\\PC{1,40}") {
            let e = encode_reply(&t, ReplyForm::EightBitHex).expect("enc");
            let d = decode(&e.text, Some(e.dcs)).expect("dec");
            prop_assert_eq!(d.text, t);
        }

        #[test]
        fn garbage_never_panics(raw in "\\PC{0,80}|[0-9A-F]{0,80}", dcs in any::<u8>()) {
            let _ = decode(&raw, Some(dcs));
        }
    }
}
