//! GSM 03.38 (3GPP TS 23.038 §6.2.1) default alphabet, its extension table, and septet packing.
//!
//! A "septet" here is a `u8` in `0..=0x7F`. Extension characters are two septets: the escape
//! `0x1B` followed by the extension code. Packing is LSB-first (23.038 §6.1.2.1.1): septet `n`
//! starts at bit `7·n + fill_bits` of the octet stream.

/// The escape septet that introduces an extension-table character.
pub const ESCAPE: u8 = 0x1B;

/// The default alphabet, indexed by septet value (23.038 §6.2.1, Figure 6.2.1).
/// Position 0x1B is the escape; it decodes as a space if it ends a message (see [`decode`]).
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{A0}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (23.038 §6.2.1.1): code after the escape → character.
/// 0x0A is a page break (form feed) in the spec.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septet(s) for one character, or `None` if it is in neither table.
fn septets_of(c: char) -> Option<([u8; 2], usize)> {
    if let Some(&(code, _)) = EXTENSION.iter().find(|(_, e)| *e == c) {
        return Some(([ESCAPE, code], 2));
    }
    // 0x1B is the escape, never a character of its own; its table slot holds U+00A0 which we
    // deliberately do not encode (it would be read back as an escape).
    BASIC
        .iter()
        .position(|&b| b == c)
        .filter(|&i| i != usize::from(ESCAPE))
        .and_then(|i| u8::try_from(i).ok())
        .map(|s| ([s, 0], 1))
}

/// `true` if `c` is in the default alphabet or the extension table.
pub fn is_gsm7(c: char) -> bool {
    septets_of(c).is_some()
}

/// Text → septet values (extension characters as `0x1B` + code).
/// `None` if any character is in neither table.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (s, n) = septets_of(c)?;
        out.extend_from_slice(&s[..n]);
    }
    Some(out)
}

/// Septet count of one character (1, or 2 for the extension table), `None` if not GSM-7.
pub fn char_septets(c: char) -> Option<usize> {
    septets_of(c).map(|(_, n)| n)
}

/// The number of septets [`encode`] would produce, `None` if a character does not fit.
pub fn septet_len(text: &str) -> Option<usize> {
    text.chars().map(char_septets).sum()
}

/// Septet values → text. Never panics.
///
/// - Values above 0x7F are masked to 7 bits (a sloppy sender; better a wrong letter than a panic).
/// - `0x1B` + an unknown code: 23.038 §6.2.1.1 says a receiver without the character shall show
///   the default-alphabet character of that code instead, so we do that.
/// - `0x1B 0x1B` (reserved for a further extension table) and a trailing lone `0x1B` become a space.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut i = 0;
    while i < septets.len() {
        let s = septets[i] & 0x7F;
        if s == ESCAPE {
            match septets.get(i + 1).map(|n| n & 0x7F) {
                Some(ESCAPE) | None => out.push(' '),
                Some(code) => match EXTENSION.iter().find(|(c, _)| *c == code) {
                    Some(&(_, ch)) => out.push(ch),
                    None => out.push(BASIC[usize::from(code)]),
                },
            }
            i += 2;
        } else {
            out.push(BASIC[usize::from(s)]);
            i += 1;
        }
    }
    out
}

/// Pack septets LSB-first into octets, after `fill_bits` leading zero bits (0..=6 after a UDH).
///
/// The result has `ceil((fill_bits + 7·n) / 8)` octets. Bits above 7 in a septet are ignored.
pub fn pack(septets: &[u8], fill_bits: usize) -> Vec<u8> {
    let total_bits = fill_bits + 7 * septets.len();
    let mut out = vec![0u8; total_bits.div_ceil(8)];
    for (n, &s) in septets.iter().enumerate() {
        let bit = fill_bits + 7 * n;
        let (idx, shift) = (bit / 8, bit % 8);
        let v = u16::from(s & 0x7F) << shift;
        out[idx] |= (v & 0xFF) as u8;
        if let Some(next) = out.get_mut(idx + 1) {
            *next |= (v >> 8) as u8;
        }
    }
    out
}

/// Inverse of [`pack`]: read up to `count` septets starting at bit `fill_bits`.
/// Returns fewer than `count` if the octets run out. Never panics.
pub fn unpack(octets: &[u8], fill_bits: usize, count: usize) -> Vec<u8> {
    let available = (octets.len() * 8).saturating_sub(fill_bits) / 7;
    let n = count.min(available);
    (0..n)
        .map(|k| {
            let bit = fill_bits + 7 * k;
            let (idx, shift) = (bit / 8, bit % 8);
            let lo = u16::from(octets[idx]);
            let hi = u16::from(octets.get(idx + 1).copied().unwrap_or(0));
            (((lo | (hi << 8)) >> shift) & 0x7F) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    #[test]
    fn it_encodes_basic_and_extension_characters() {
        assert_eq!(encode("@£$"), Some(vec![0x00, 0x01, 0x02]));
        assert_eq!(encode("A€["), Some(vec![0x41, 0x1B, 0x65, 0x1B, 0x3C]));
        assert_eq!(encode("\n\r"), Some(vec![0x0A, 0x0D]));
        assert_eq!(encode("Привет"), None);
        assert_eq!(encode("a😀"), None);
        assert_eq!(encode(""), Some(vec![]));
    }

    #[test]
    fn it_counts_extension_characters_twice() {
        assert_eq!(septet_len("Hello"), Some(5));
        assert_eq!(septet_len("{€}"), Some(6));
        assert_eq!(septet_len("ü|"), Some(3));
        assert_eq!(septet_len("é ш"), None);
    }

    #[test]
    fn it_classifies_characters() {
        for c in ['@', 'Δ', 'ß', '¿', '€', '\\', '~', '^', '\u{0C}'] {
            assert!(is_gsm7(c), "{c:?}");
        }
        for c in ['`', 'á', 'ç', '😀', '\u{A0}', '\t'] {
            assert!(!is_gsm7(c), "{c:?}");
        }
    }

    #[test]
    fn it_decodes_escapes_and_odd_input() {
        assert_eq!(decode(&[0x1B, 0x65, 0x41]), "€A");
        // Unknown extension code → default-alphabet character of that code (23.038 §6.2.1.1).
        assert_eq!(decode(&[0x1B, 0x41]), "A");
        assert_eq!(decode(&[0x1B, 0x1B, 0x41]), " A");
        assert_eq!(decode(&[0x41, 0x1B]), "A ");
        assert_eq!(decode(&[0xC1]), "A");
    }

    #[test]
    fn it_packs_hello_like_the_spec_example() {
        // "Hello" packs to C8 32 9B FD 06 (MF667.md §4 E1/E5).
        let s = encode("Hello").expect("gsm7");
        assert_eq!(hex(&pack(&s, 0)), "C8329BFD06");
        assert_eq!(unpack(&[0xC8, 0x32, 0x9B, 0xFD, 0x06], 0, 5), s);
        // "hellohello" is the classic 23.038 example: E8329BFD4697D9EC37.
        let s = encode("hellohello").expect("gsm7");
        assert_eq!(hex(&pack(&s, 0)), "E8329BFD4697D9EC37");
    }

    #[test]
    fn it_packs_with_every_fill_bit_count() {
        // "Hi" = 0x48 0x69. Expected octets = little-endian bytes of the integer
        // (0x48 << fill) | (0x69 << (fill + 7)), i.e. the LSB-first bit stream of 23.038 §6.1.2.1.1.
        let table: [(usize, &str); 7] = [
            (0, "C834"),
            (1, "9069"),
            (2, "20D3"),
            (3, "40A601"),
            (4, "804C03"),
            (5, "009906"),
            (6, "00320D"),
        ];
        let s = encode("Hi").expect("gsm7");
        for (fill, want) in table {
            assert_eq!(hex(&pack(&s, fill)), want, "fill {fill}");
            assert_eq!(
                unpack(&pack(&s, fill), fill, 2),
                s,
                "unpack with fill {fill}"
            );
        }
    }

    #[test]
    fn it_packs_eight_septets_into_seven_octets() {
        let s = [0x7Fu8; 8];
        assert_eq!(pack(&s, 0), vec![0xFF; 7]);
        assert_eq!(unpack(&[0xFF; 7], 0, 8), s.to_vec());
        // With 1 fill bit the 8th septet no longer fits: 1 + 56 = 57 bits → 8 octets.
        assert_eq!(pack(&s, 1).len(), 8);
    }

    #[test]
    fn it_unpacks_no_more_than_the_octets_hold() {
        assert_eq!(unpack(&[0xC8, 0x32], 0, 5).len(), 2);
        assert_eq!(unpack(&[], 3, 10), Vec::<u8>::new());
        assert_eq!(unpack(&[0xFF], 6, 10), Vec::<u8>::new());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn pack_unpack_round_trips(septets in proptest::collection::vec(0u8..0x80, 0..200), fill in 0usize..7) {
            let packed = pack(&septets, fill);
            prop_assert_eq!(packed.len(), (fill + 7 * septets.len()).div_ceil(8));
            prop_assert_eq!(unpack(&packed, fill, septets.len()), septets);
        }

        #[test]
        fn encode_decode_round_trips(text in "[@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,./0-9:;<=>?¡A-Za-zÄÖÑÜ§¿äöñüà{}\\[\\]~|€\\^\\\\]{0,60}") {
            let s = encode(&text).expect("all chars are gsm7");
            prop_assert_eq!(Some(s.len()), septet_len(&text));
            prop_assert_eq!(decode(&s), text);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
