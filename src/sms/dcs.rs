//! TP-DCS, the data coding scheme (23.038 §4): alphabet, message class, compression.

/// How the user data is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 03.38 default alphabet, packed septets (UDL counts septets).
    Gsm7,
    /// UCS-2, read as UTF-16BE (UDL counts octets).
    Ucs2,
    /// 8-bit data (UDL counts octets). Also used for compressed user data, which we do not
    /// decompress (23.042; no network in the wild sends it).
    EightBit,
}

impl Encoding {
    /// `gsm7`, `ucs2` or `8bit`, the names the CLI and events use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
            Encoding::EightBit => "8bit",
        }
    }
}

/// A decoded TP-DCS octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dcs {
    /// The octet as sent.
    pub raw: u8,
    /// The alphabet.
    pub encoding: Encoding,
    /// Message class 0–3 (0 = flash, shown and not stored), if the DCS names one.
    pub class: Option<u8>,
    /// The user data is compressed (23.042); its text is not decoded.
    pub compressed: bool,
}

impl Dcs {
    /// Interpret a DCS octet (23.038 §4).
    ///
    /// - `00xx xxxx`, `01xx xxxx` (general / auto-deletion): bit 5 compressed, bit 4 "class
    ///   present", bits 3–2 alphabet (00 GSM-7, 01 8-bit, 10 UCS-2, 11 reserved → GSM-7),
    ///   bits 1–0 class.
    /// - `1100`, `1101` (message waiting, discard/store): GSM-7. `1110`: UCS-2.
    /// - `1111` (data coding / message class): bit 2 8-bit else GSM-7, bits 1–0 class.
    /// - `1000`–`1011` are reserved; 23.038 says to treat them as GSM-7.
    pub fn from_byte(raw: u8) -> Dcs {
        let class_bits = raw & 0x03;
        let (encoding, class, compressed) = match raw >> 4 {
            0x0..=0x7 => {
                let enc = match (raw >> 2) & 0x03 {
                    0b01 => Encoding::EightBit,
                    0b10 => Encoding::Ucs2,
                    _ => Encoding::Gsm7,
                };
                let class = (raw & 0x10 != 0).then_some(class_bits);
                (enc, class, raw & 0x20 != 0)
            }
            0xE => (Encoding::Ucs2, None, false),
            0xF => {
                let enc = if raw & 0x04 != 0 {
                    Encoding::EightBit
                } else {
                    Encoding::Gsm7
                };
                (enc, Some(class_bits), false)
            }
            _ => (Encoding::Gsm7, None, false),
        };
        Dcs {
            raw,
            // We cannot decompress; the octets are all we can give.
            encoding: if compressed {
                Encoding::EightBit
            } else {
                encoding
            },
            class,
            compressed,
        }
    }

    /// The DCS octet for an uncompressed message in the general group: `00` / `04` / `08`
    /// without a class, `10`–`13` / `14`–`17` / `18`–`1B` with one (class 0 = flash).
    pub fn for_message(encoding: Encoding, class: Option<u8>) -> Dcs {
        let alphabet = match encoding {
            Encoding::Gsm7 => 0x00,
            Encoding::EightBit => 0x04,
            Encoding::Ucs2 => 0x08,
        };
        let raw = match class {
            Some(c) => 0x10 | alphabet | (c & 0x03),
            None => alphabet,
        };
        Dcs::from_byte(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_decodes_the_common_octets() {
        let t: [(u8, Encoding, Option<u8>); 12] = [
            (0x00, Encoding::Gsm7, None),
            (0x04, Encoding::EightBit, None),
            (0x08, Encoding::Ucs2, None),
            (0x10, Encoding::Gsm7, Some(0)),
            (0x11, Encoding::Gsm7, Some(1)),
            (0x12, Encoding::Gsm7, Some(2)),
            (0x13, Encoding::Gsm7, Some(3)),
            (0x18, Encoding::Ucs2, Some(0)),
            (0xF0, Encoding::Gsm7, Some(0)),
            (0xF5, Encoding::EightBit, Some(1)),
            (0xC8, Encoding::Gsm7, None),
            (0xE0, Encoding::Ucs2, None),
        ];
        for (raw, enc, class) in t {
            let d = Dcs::from_byte(raw);
            assert_eq!((d.encoding, d.class), (enc, class), "DCS {raw:02X}");
            assert!(!d.compressed);
        }
        // Class bits without bit 4 mean nothing.
        assert_eq!(Dcs::from_byte(0x01).class, None);
        // Compressed GSM-7 stays raw octets.
        let d = Dcs::from_byte(0x20);
        assert!(d.compressed);
        assert_eq!(d.encoding, Encoding::EightBit);
    }

    #[test]
    fn it_builds_the_octets_it_decodes() {
        for enc in [Encoding::Gsm7, Encoding::Ucs2, Encoding::EightBit] {
            for class in [None, Some(0), Some(1), Some(2), Some(3)] {
                let d = Dcs::for_message(enc, class);
                assert_eq!((d.encoding, d.class), (enc, class));
            }
        }
        assert_eq!(Dcs::for_message(Encoding::Gsm7, Some(0)).raw, 0x10);
        assert_eq!(Dcs::for_message(Encoding::Ucs2, None).raw, 0x08);
    }
}
