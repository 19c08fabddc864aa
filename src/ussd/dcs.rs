//! The Cell Broadcast data coding scheme, which USSD uses (3GPP TS 23.038 §5).
//!
//! | DCS | meaning |
//! |---|---|
//! | `0x00`–`0x0F` | GSM 7-bit, language in the low nibble (`0x0F` = unspecified, what networks send as 15) |
//! | `0x10` | GSM 7-bit, text preceded by a language (`xx` + CR) |
//! | `0x11` | UCS-2, text preceded by a language (two GSM 7-bit characters packed into two octets) |
//! | `0x20`–`0x2F` | GSM 7-bit, more languages |
//! | `0x40`–`0x7F` | general data coding: bit 5 compressed, bits 3–2 alphabet (00 GSM 7-bit, 01 8-bit, 10 UCS-2); `0x44` = 68, `0x48` = 72 |
//! | `0x90`–`0x9F` | message with user data header, alphabet in bits 3–2 |
//! | `0xE0`–`0xEF` | defined by the WAP Forum: treated as 8-bit data |
//! | `0xF0`–`0xFF` | bit 2: 0 GSM 7-bit, 1 8-bit data |
//! | anything else | reserved: "assumed to be the GSM 7 bit default alphabet" |

/// The alphabet a DCS selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// GSM 7-bit default alphabet (plain text from ZTE, or packed septets in hex).
    Gsm7,
    /// 8-bit data (hex octets).
    EightBit,
    /// UCS-2 (hex of UTF-16BE).
    Ucs2,
}

/// What one DCS octet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dcs {
    /// The octet.
    pub value: u8,
    /// The alphabet.
    pub alphabet: Alphabet,
    /// The language the DCS names (ISO 639-1), when it names one.
    pub language: Option<&'static str>,
    /// The text starts with a language indication (DCS `0x10`/`0x11`).
    pub language_prefix: bool,
    /// The text is compressed (23.042), which nobody implements for USSD.
    pub compressed: bool,
}

/// Languages of the group `0000xxxx` (23.038 §5), by low nibble.
const GROUP0_LANGUAGES: [Option<&str>; 16] = [
    Some("de"),
    Some("en"),
    Some("it"),
    Some("fr"),
    Some("es"),
    Some("nl"),
    Some("sv"),
    Some("da"),
    Some("pt"),
    Some("fi"),
    Some("no"),
    Some("el"),
    Some("tr"),
    Some("hu"),
    Some("pl"),
    None,
];

/// Languages of the group `0010xxxx`.
const GROUP2_LANGUAGES: [&str; 5] = ["cs", "he", "ar", "ru", "is"];

fn alphabet_bits(v: u8) -> Alphabet {
    match (v >> 2) & 0b11 {
        0b01 => Alphabet::EightBit,
        0b10 => Alphabet::Ucs2,
        // 00, and the reserved 11, are GSM 7-bit.
        _ => Alphabet::Gsm7,
    }
}

impl Dcs {
    /// Interpret a DCS octet. Never fails: reserved values mean GSM 7-bit.
    pub fn new(value: u8) -> Dcs {
        let mut d = Dcs {
            value,
            alphabet: Alphabet::Gsm7,
            language: None,
            language_prefix: false,
            compressed: false,
        };
        match value {
            0x00..=0x0F => d.language = GROUP0_LANGUAGES[usize::from(value & 0x0F)],
            0x10 => d.language_prefix = true,
            0x11 => {
                d.alphabet = Alphabet::Ucs2;
                d.language_prefix = true;
            }
            0x20..=0x2F => d.language = GROUP2_LANGUAGES.get(usize::from(value & 0x0F)).copied(),
            0x40..=0x7F => {
                d.alphabet = alphabet_bits(value);
                d.compressed = value & 0x20 != 0;
            }
            0x90..=0x9F => d.alphabet = alphabet_bits(value),
            0xE0..=0xEF => d.alphabet = Alphabet::EightBit,
            0xF0..=0xFF => {
                d.alphabet = if value & 0x04 != 0 {
                    Alphabet::EightBit
                } else {
                    Alphabet::Gsm7
                }
            }
            _ => {}
        }
        d
    }
}

/// DCS 15 (0x0F): GSM 7-bit, language unspecified. What ZTE sends and wants.
pub const GSM7: u8 = 0x0F;
/// DCS 68 (0x44): general data coding, 8-bit data.
pub const EIGHT_BIT: u8 = 0x44;
/// DCS 72 (0x48): general data coding, UCS-2.
pub const UCS2: u8 = 0x48;
/// DCS 17 (0x11): UCS-2 preceded by a language.
pub const UCS2_WITH_LANGUAGE: u8 = 0x11;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_modems_send() {
        let d = Dcs::new(15);
        assert_eq!(
            (d.alphabet, d.language, d.compressed),
            (Alphabet::Gsm7, None, false)
        );
        assert_eq!(Dcs::new(72).alphabet, Alphabet::Ucs2);
        assert_eq!(Dcs::new(68).alphabet, Alphabet::EightBit);
        let l = Dcs::new(17);
        assert_eq!((l.alphabet, l.language_prefix), (Alphabet::Ucs2, true));
        let g = Dcs::new(0x10);
        assert_eq!((g.alphabet, g.language_prefix), (Alphabet::Gsm7, true));
    }

    #[test]
    fn groups_follow_23038_section_5() {
        assert_eq!(Dcs::new(0x00).language, Some("de"));
        assert_eq!(Dcs::new(0x01).language, Some("en"));
        assert_eq!(Dcs::new(0x23).language, Some("ru"));
        assert_eq!(Dcs::new(0x2F).language, None);
        assert_eq!(Dcs::new(0x40).alphabet, Alphabet::Gsm7);
        assert_eq!(Dcs::new(0x4C).alphabet, Alphabet::Gsm7); // reserved alphabet 11
        assert!(Dcs::new(0x60).compressed);
        assert!(!Dcs::new(0x48).compressed);
        assert_eq!(Dcs::new(0x98).alphabet, Alphabet::Ucs2);
        assert_eq!(Dcs::new(0xE3).alphabet, Alphabet::EightBit);
        assert_eq!(Dcs::new(0xF0).alphabet, Alphabet::Gsm7);
        assert_eq!(Dcs::new(0xF4).alphabet, Alphabet::EightBit);
        for reserved in [0x12u8, 0x1F, 0x30, 0x3F, 0x80, 0x8F, 0xA0, 0xDF] {
            assert_eq!(
                Dcs::new(reserved).alphabet,
                Alphabet::Gsm7,
                "{reserved:#04x}"
            );
        }
        assert_eq!(Dcs::new(GSM7).value, 15);
        assert_eq!((EIGHT_BIT, UCS2, UCS2_WITH_LANGUAGE), (68, 72, 17));
    }
}
