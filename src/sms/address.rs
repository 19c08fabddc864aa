//! Addresses (23.040 §9.1.2.5): the SMSC prefix, TP-OA, TP-DA and TP-RA.
//!
//! On the wire: `<length><TOA><semi-octets>`. For TP-OA/DA/RA the length counts semi-octets
//! (digits); for the SMSC prefix it counts octets including the TOA (24.008 §10.5.4.9).

use super::error::PduError;
use super::gsm7;
use super::reader::Reader;

/// Type of address: international number (`+…`, text-mode 145).
pub const TOA_INTERNATIONAL: u8 = 0x91;
/// Type of address: unknown numbering, ISDN plan (text-mode 129).
pub const TOA_UNKNOWN: u8 = 0x81;
/// Type of address: alphanumeric (GSM-7 packed), e.g. a sender name like `O2`.
pub const TOA_ALPHANUMERIC: u8 = 0xD0;

/// The most digits an address can hold (10 octets of semi-octets, 23.040 §9.1.2.5).
const MAX_DIGITS: usize = 20;
/// The most characters of an alphanumeric address (11 septets fit the 10 octets with room).
const MAX_ALPHA_SEPTETS: usize = 11;

/// A phone number or alphanumeric sender with its type-of-address octet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// As users write it: `+49…` for international numbers, the digits for national or unknown
    /// ones (`*`, `#`, `a`–`c` for the extra semi-octet values), the text for alphanumeric ones.
    pub number: String,
    /// The type-of-address octet (`0x91`, `0x81`, `0xD0`, …).
    pub toa: u8,
}

impl Address {
    /// Parse a number as a user writes it: `+4917…` → international (TOA 91), `017…` or `*100#`
    /// → unknown (TOA 81). Spaces, `-`, `/`, `(`, `)` and `.` are ignored. Anything else → error
    /// (use [`Address::parse_sender`] for alphanumeric senders).
    pub fn parse(s: &str) -> Result<Address, PduError> {
        let bad = |reason: &str| PduError::InvalidAddress {
            address: s.to_string(),
            reason: reason.to_string(),
        };
        let cleaned: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '/' | '(' | ')' | '.'))
            .collect();
        let (digits, toa) = match cleaned.strip_prefix('+') {
            Some(rest) => (rest, TOA_INTERNATIONAL),
            None => (cleaned.as_str(), TOA_UNKNOWN),
        };
        if digits.is_empty() {
            return Err(bad("no digits"));
        }
        // Only what a user dials; the C–E semi-octets (`a`–`c`) are decoded but never
        // parsed, so a sender name like "cab" stays alphanumeric.
        if let Some(c) = digits
            .chars()
            .find(|c| !(c.is_ascii_digit() || *c == '*' || *c == '#'))
        {
            return Err(bad(&format!(
                "{c:?} is not a digit, '*' or '#' (an alphanumeric address is only allowed as a sender)"
            )));
        }
        if digits.len() > MAX_DIGITS {
            return Err(bad(&format!(
                "{} digits, at most {MAX_DIGITS} fit",
                digits.len()
            )));
        }
        let number = if toa == TOA_INTERNATIONAL {
            format!("+{digits}")
        } else {
            digits.to_string()
        };
        Ok(Address { number, toa })
    }

    /// Like [`Address::parse`], but text that is not a number becomes an alphanumeric sender
    /// (TOA D0, at most 11 GSM-7 septets), as networks use for `O2`, `PayPal`, ….
    pub fn parse_sender(s: &str) -> Result<Address, PduError> {
        if let Ok(a) = Address::parse(s) {
            return Ok(a);
        }
        let text = s.trim();
        match gsm7::septet_len(text) {
            Some(0) => Err(PduError::InvalidAddress {
                address: s.to_string(),
                reason: "empty".to_string(),
            }),
            Some(n) if n <= MAX_ALPHA_SEPTETS => Ok(Address {
                number: text.to_string(),
                toa: TOA_ALPHANUMERIC,
            }),
            Some(n) => Err(PduError::InvalidAddress {
                address: s.to_string(),
                reason: format!(
                    "an alphanumeric sender has at most {MAX_ALPHA_SEPTETS} GSM-7 septets, this has {n}"
                ),
            }),
            None => Err(PduError::InvalidAddress {
                address: s.to_string(),
                reason: "neither a number nor GSM-7 text".to_string(),
            }),
        }
    }

    /// True for TOA type-of-number "international" (bits 6–4 = 001).
    pub fn is_international(&self) -> bool {
        (self.toa >> 4) & 0x07 == 1
    }

    /// True for TOA type-of-number "alphanumeric" (bits 6–4 = 101).
    pub fn is_alphanumeric(&self) -> bool {
        (self.toa >> 4) & 0x07 == 5
    }

    /// The digits without a leading `+` (what goes into the semi-octets).
    fn digits(&self) -> &str {
        self.number.strip_prefix('+').unwrap_or(&self.number)
    }

    /// Encode as TP-OA/DA/RA: length in semi-octets, TOA, value.
    pub(crate) fn encode_tp(&self) -> Result<Vec<u8>, PduError> {
        if self.is_alphanumeric() {
            let septets = gsm7::encode(&self.number).ok_or_else(|| PduError::InvalidAddress {
                address: self.number.clone(),
                reason: "not GSM-7 text".to_string(),
            })?;
            if septets.len() > MAX_ALPHA_SEPTETS {
                return Err(PduError::InvalidAddress {
                    address: self.number.clone(),
                    reason: format!("more than {MAX_ALPHA_SEPTETS} septets"),
                });
            }
            let packed = gsm7::pack(&septets, 0);
            // Length = useful semi-octets, ceil(bits / 4): "O2" = 14 bits → 4 (MF667.md §4 E2).
            let len = (septets.len() * 7).div_ceil(4);
            let mut out = vec![len as u8, self.toa];
            out.extend(packed);
            return Ok(out);
        }
        let digits = self.digits();
        let semi = encode_semi_octets(digits).map_err(|reason| PduError::InvalidAddress {
            address: self.number.clone(),
            reason,
        })?;
        let mut out = vec![digits.chars().count() as u8, self.toa];
        out.extend(semi);
        Ok(out)
    }

    /// Encode as the SMSC prefix: length in octets (TOA included), TOA, value.
    pub(crate) fn encode_smsc(&self) -> Result<Vec<u8>, PduError> {
        let semi =
            encode_semi_octets(self.digits()).map_err(|reason| PduError::InvalidAddress {
                address: self.number.clone(),
                reason,
            })?;
        let mut out = vec![(semi.len() + 1) as u8, self.toa];
        out.extend(semi);
        Ok(out)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.number)
    }
}

/// Semi-octet value of a dial character (23.040 §9.1.2.3: A = `*`, B = `#`, C–E = `a`–`c`).
fn semi_octet_of(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(0xA),
        '#' => Some(0xB),
        'a' | 'A' => Some(0xC),
        'b' | 'B' => Some(0xD),
        'c' | 'C' => Some(0xE),
        _ => None,
    }
}

fn char_of_semi_octet(n: u8) -> Option<char> {
    match n {
        0..=9 => Some(char::from(b'0' + n)),
        0xA => Some('*'),
        0xB => Some('#'),
        0xC => Some('a'),
        0xD => Some('b'),
        0xE => Some('c'),
        _ => None, // 0xF: filler
    }
}

/// Digits → swapped semi-octets, the last one padded with F.
fn encode_semi_octets(digits: &str) -> Result<Vec<u8>, String> {
    let nibbles = digits
        .chars()
        .map(|c| semi_octet_of(c).ok_or_else(|| format!("{c:?} is not a digit, '*' or '#'")))
        .collect::<Result<Vec<u8>, String>>()?;
    if nibbles.len() > MAX_DIGITS {
        return Err(format!(
            "{} digits, at most {MAX_DIGITS} fit",
            nibbles.len()
        ));
    }
    Ok(nibbles
        .chunks(2)
        .map(|p| p[0] | (p.get(1).copied().unwrap_or(0xF) << 4))
        .collect())
}

/// Swapped semi-octets → at most `count` digits. A filler F inside the count is skipped
/// rather than rejected (some SMSCs pad their own address that way).
fn decode_semi_octets(octets: &[u8], count: usize) -> String {
    octets
        .iter()
        .flat_map(|o| [o & 0x0F, o >> 4])
        .take(count)
        .filter_map(char_of_semi_octet)
        .collect()
}

fn format_number(digits: String, toa: u8) -> String {
    if (toa >> 4) & 0x07 == 1 && !digits.is_empty() {
        format!("+{digits}")
    } else {
        digits
    }
}

/// Read TP-OA/DA/RA.
pub(crate) fn read_tp(r: &mut Reader<'_>, what: &'static str) -> Result<Address, PduError> {
    let len = usize::from(r.byte(what)?);
    let toa_offset = r.offset();
    let toa = r.byte("type-of-address")?;
    if len > MAX_DIGITS {
        return Err(PduError::Invalid {
            offset: toa_offset - 1,
            what,
            reason: format!("length {len} semi-octets, at most {MAX_DIGITS} are allowed"),
        });
    }
    // ceil(len/2) octets for both digits and alphanumeric values: networks send the
    // alphanumeric length as ceil(bits/4) or as 2·octets, and both give the same octet count.
    let octets = r.take(len.div_ceil(2), "address value")?;
    if (toa >> 4) & 0x07 == 5 {
        return Ok(Address {
            number: decode_alphanumeric(octets, len),
            toa,
        });
    }
    Ok(Address {
        number: format_number(decode_semi_octets(octets, len), toa),
        toa,
    })
}

/// Alphanumeric value: `len` semi-octets = `len·4` bits = ⌊len·4/7⌋ septets.
fn decode_alphanumeric(octets: &[u8], len: usize) -> String {
    let count = len * 4 / 7;
    let mut septets = gsm7::unpack(octets, 0, count);
    // With the "2·octets" convention a 7-character name fills 7 octets = 8 septets, the last of
    // which is the zero padding ('@') or a CR pad (23.038 §6.1.2.3.1). A real trailing '@' in
    // a sender name is far rarer than this padding, so drop it when the septets fill every bit.
    if septets.len() * 7 == octets.len() * 8 && matches!(septets.last(), Some(0x00 | 0x0D)) {
        septets.pop();
    }
    gsm7::decode(&septets)
}

/// Read the SMSC prefix; `None` for `00` (the modem's default SMSC) or a prefix without digits.
pub(crate) fn read_smsc(r: &mut Reader<'_>) -> Result<Option<Address>, PduError> {
    let len_offset = r.offset();
    let len = usize::from(r.byte("SMSC length")?);
    if len == 0 {
        return Ok(None);
    }
    if len > 12 {
        return Err(PduError::Invalid {
            offset: len_offset,
            what: "SMSC length",
            reason: format!("{len} octets, at most 12 are allowed (is the SMSC prefix missing?)"),
        });
    }
    let body = r.take(len, "SMSC address")?;
    let toa = body[0];
    let digits = decode_semi_octets(&body[1..], (len - 1) * 2);
    if digits.is_empty() {
        return Ok(None);
    }
    Ok(Some(Address {
        number: format_number(digits, toa),
        toa,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Address, PduError> {
        read_tp(&mut Reader::new(bytes, 0), "TP-OA")
    }

    #[test]
    fn it_parses_numbers_as_users_write_them() {
        let a = Address::parse("+49 170 1234-567").expect("valid");
        assert_eq!(a.number, "+491701234567");
        assert_eq!(a.toa, TOA_INTERNATIONAL);
        let a = Address::parse("01701234567").expect("valid");
        assert_eq!((a.number.as_str(), a.toa), ("01701234567", TOA_UNKNOWN));
        assert!(Address::parse("").is_err());
        assert!(Address::parse("+").is_err());
        assert!(Address::parse("O2").is_err());
        assert!(Address::parse("123456789012345678901").is_err());
        let e = Address::parse("+49x").expect_err("x");
        assert!(e.to_string().contains("'x'"), "{e}");
    }

    #[test]
    fn it_accepts_alphanumeric_senders() {
        let a = Address::parse_sender("O2").expect("alnum");
        assert_eq!(a.toa, TOA_ALPHANUMERIC);
        assert_eq!(a.encode_tp().expect("enc"), vec![0x04, 0xD0, 0x4F, 0x19]);
        assert_eq!(
            Address::parse_sender("+4917").expect("num").toa,
            TOA_INTERNATIONAL
        );
        assert_eq!(
            Address::parse_sender("cab").expect("alnum").toa,
            TOA_ALPHANUMERIC
        );
        assert!(Address::parse("abc").is_err());
        assert!(Address::parse_sender("TwelveChars!").is_err());
        assert!(Address::parse_sender("Привет").is_err());
    }

    #[test]
    fn it_encodes_and_decodes_international_numbers() {
        let a = Address::parse("+491701234567").expect("valid");
        let enc = a.encode_tp().expect("enc");
        assert_eq!(enc, vec![0x0C, 0x91, 0x94, 0x71, 0x10, 0x32, 0x54, 0x76]);
        assert_eq!(read(&enc).expect("dec"), a);
    }

    #[test]
    fn it_pads_odd_digit_counts_with_f() {
        let a = Address::parse("01701234567").expect("valid");
        let enc = a.encode_tp().expect("enc");
        assert_eq!(enc, vec![0x0B, 0x81, 0x10, 0x07, 0x21, 0x43, 0x65, 0xF7]);
        assert_eq!(read(&enc).expect("dec"), a);
    }

    #[test]
    fn it_decodes_alphanumeric_with_either_length_convention() {
        // "O2": 14 bits. ceil(bits/4) = 4 and 2·octets = 4 agree.
        assert_eq!(read(&[0x04, 0xD0, 0x4F, 0x19]).expect("dec").number, "O2");
        // "Telekom" = 7 septets = 49 bits → 7 octets. Lengths 13 (ceil) and 14 (2·octets).
        let packed = gsm7::pack(&gsm7::encode("Telekom").expect("gsm7"), 0);
        assert_eq!(packed.len(), 7);
        for len in [13u8, 14] {
            let mut b = vec![len, 0xD0];
            b.extend(&packed);
            assert_eq!(read(&b).expect("dec").number, "Telekom", "length {len}");
        }
        // 8 characters fill 7 octets exactly and must not lose the last one.
        let packed = gsm7::pack(&gsm7::encode("Vodafone").expect("gsm7"), 0);
        let mut b = vec![14, 0xD0];
        b.extend(&packed);
        assert_eq!(read(&b).expect("dec").number, "Vodafone");
    }

    #[test]
    fn it_decodes_extra_semi_octet_values() {
        // TOA 81, "*100#": semi-octets A,1,0,0,B and the F filler, swapped in pairs.
        let a = read(&[0x05, 0x81, 0x1A, 0x00, 0xFB]).expect("dec");
        assert_eq!(a.number, "*100#");
        assert_eq!(
            a.encode_tp().expect("enc"),
            vec![0x05, 0x81, 0x1A, 0x00, 0xFB]
        );
    }

    #[test]
    fn it_reports_truncated_addresses_with_offsets() {
        let e = read_tp(&mut Reader::new(&[0x0C, 0x91, 0x94], 5), "TP-OA").expect_err("short");
        assert_eq!(
            e.to_string(),
            "truncated at octet 7: expected 6 address value octets, 1 left"
        );
    }

    #[test]
    fn it_reads_the_smsc_prefix() {
        let mut r = Reader::new(&[0x07, 0x91, 0x94, 0x71, 0x01, 0x67, 0x00, 0x00, 0x04], 0);
        let s = read_smsc(&mut r).expect("smsc").expect("some");
        assert_eq!(s.number, "+491710760000");
        assert_eq!(r.offset(), 8);
        assert_eq!(
            s.encode_smsc().expect("enc"),
            vec![0x07, 0x91, 0x94, 0x71, 0x01, 0x67, 0x00, 0x00]
        );
        assert_eq!(read_smsc(&mut Reader::new(&[0x00], 0)).expect("none"), None);
        assert!(read_smsc(&mut Reader::new(&[0x40, 0x91], 0)).is_err());
    }
}
