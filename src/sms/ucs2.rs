//! UCS-2 user data, read as UTF-16BE so that surrogate pairs (emoji) survive.
//!
//! 23.038 says "UCS2", but every phone since ~2010 sends UTF-16 (emoji as surrogate pairs), and
//! a UCS-2-only decoder would turn them into two replacement characters.

/// Text → UTF-16BE octets.
pub fn encode(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// UTF-16BE octets → text. Lossy, never panics: an unpaired surrogate becomes U+FFFD, and a
/// trailing odd octet (a broken sender) becomes U+FFFD too.
pub fn decode(octets: &[u8]) -> String {
    let units = octets
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]));
    let mut out: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if octets.len() % 2 == 1 {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    out
}

/// Number of UTF-16 code units (2 for a character outside the BMP, e.g. an emoji).
pub fn unit_len(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn it_encodes_bmp_and_surrogate_pairs() {
        assert_eq!(encode("Пр"), vec![0x04, 0x1F, 0x04, 0x40]);
        // U+1F600 = D83D DE00.
        assert_eq!(encode("😀"), vec![0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(unit_len("a😀"), 3);
    }

    #[test]
    fn it_decodes_lossily_without_panicking() {
        assert_eq!(decode(&[0xD8, 0x3D, 0xDE, 0x00]), "😀");
        assert_eq!(decode(&[0xD8, 0x3D, 0x00, 0x41]), "\u{FFFD}A");
        assert_eq!(decode(&[0x00, 0x41, 0x00]), "A\u{FFFD}");
        assert_eq!(decode(&[]), "");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trips_any_text(text in any::<String>()) {
            prop_assert_eq!(decode(&encode(&text)), text);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
