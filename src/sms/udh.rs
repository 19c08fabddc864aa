//! The user-data header (23.040 §9.2.3.24) and concatenation (§9.2.3.24.1, .8).
//!
//! With TP-UDHI set, the user data starts with UDHL (header length, not counting itself),
//! then information elements `<IEI><IEL><data>`. We understand the two concatenation IEs and
//! carry every other IE (ports, special SMS indication, national language shift, …) raw.

use super::error::PduError;

/// IEI of the concatenation IE with an 8-bit reference: `00 03 <ref> <total> <seq>`.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI of the concatenation IE with a 16-bit reference: `08 04 <refHi> <refLo> <total> <seq>`.
pub const IEI_CONCAT_16: u8 = 0x08;

/// Where one part belongs in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The reference shared by all parts (0–255 with an 8-bit reference).
    pub reference: u16,
    /// How many parts the message has (1–255).
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
    /// True for the 16-bit reference IE (`08 04`), false for the 8-bit one (`00 03`).
    pub sixteen_bit: bool,
}

impl Concat {
    /// The header for this part: UDHL, then the IE (6 octets for 8-bit, 7 for 16-bit).
    pub fn header(&self) -> Vec<u8> {
        if self.sixteen_bit {
            let [hi, lo] = self.reference.to_be_bytes();
            vec![0x06, IEI_CONCAT_16, 0x04, hi, lo, self.total, self.seq]
        } else {
            vec![
                0x05,
                IEI_CONCAT_8,
                0x03,
                self.reference as u8,
                self.total,
                self.seq,
            ]
        }
    }
}

/// One information element, as carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InformationElement {
    /// The IEI.
    pub id: u8,
    /// The IE data (without IEI and length).
    pub data: Vec<u8>,
}

/// Split a header into its IEs. `udh` includes the UDHL octet; `offset` is the octet offset of
/// that UDHL octet in the whole PDU, for errors.
pub fn parse(udh: &[u8], offset: usize) -> Result<Vec<InformationElement>, PduError> {
    let body = udh.get(1..).unwrap_or_default();
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let at = offset + 1 + i;
        if i + 2 > body.len() {
            return Err(PduError::Invalid {
                offset: at,
                what: "user data header",
                reason: format!("IE {:02X} has no length octet", body[i]),
            });
        }
        let (id, len) = (body[i], usize::from(body[i + 1]));
        let data = body
            .get(i + 2..i + 2 + len)
            .ok_or_else(|| PduError::Invalid {
                offset: at,
                what: "user data header",
                reason: format!(
                    "IE {id:02X} claims {len} octets but the header has {} left",
                    body.len() - i - 2
                ),
            })?;
        out.push(InformationElement {
            id,
            data: data.to_vec(),
        });
        i += 2 + len;
    }
    Ok(out)
}

/// The concatenation info among `ies`, if any.
///
/// 23.040 §9.2.3.24.1: an IE with total 0, or a sequence number of 0 or above the total, is to
/// be ignored, so such a part is treated as a single message. An IE of the wrong length is
/// ignored too. If a header carries both kinds, the first one wins.
pub fn concat(ies: &[InformationElement]) -> Option<Concat> {
    ies.iter().find_map(|ie| {
        let c = match (ie.id, ie.data.as_slice()) {
            (IEI_CONCAT_8, &[r, total, seq]) => Concat {
                reference: u16::from(r),
                total,
                seq,
                sixteen_bit: false,
            },
            (IEI_CONCAT_16, &[hi, lo, total, seq]) => Concat {
                reference: u16::from_be_bytes([hi, lo]),
                total,
                seq,
                sixteen_bit: true,
            },
            _ => return None,
        };
        (c.total > 0 && c.seq > 0 && c.seq <= c.total).then_some(c)
    })
}

/// The GSM-7 fill bits after a header of `header_octets` octets (UDHL included), so the text
/// starts on a septet boundary: `(7 − (header_octets·8 mod 7)) mod 7` (23.040 §9.2.3.24).
pub fn fill_bits(header_octets: usize) -> usize {
    (7 - (header_octets * 8) % 7) % 7
}

/// Septets a header of `header_octets` octets takes in a GSM-7 UDL, fill bits included.
pub fn header_septets(header_octets: usize) -> usize {
    (header_octets * 8).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_computes_fill_bits_for_common_headers() {
        // UDHL+1 = 6 (8-bit concat) → 1 fill bit, 7 septets; 7 (16-bit) → 0, 8 septets.
        assert_eq!((fill_bits(6), header_septets(6)), (1, 7));
        assert_eq!((fill_bits(7), header_septets(7)), (0, 8));
        assert_eq!((fill_bits(0), header_septets(0)), (0, 0));
        for n in 1..=140 {
            assert_eq!(
                (n * 8 + fill_bits(n)) % 7,
                0,
                "header of {n} octets must end on a septet boundary"
            );
            assert_eq!((n * 8 + fill_bits(n)) / 7, header_septets(n));
        }
    }

    #[test]
    fn it_finds_both_concat_kinds_and_skips_other_ies() {
        // Port addressing (05 04 …) before an 8-bit concat IE.
        let udh = [
            0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x2A, 0x02, 0x01,
        ];
        let ies = parse(&udh, 0).expect("valid");
        assert_eq!(ies.len(), 2);
        assert_eq!(ies[0].id, 0x05);
        assert_eq!(
            concat(&ies),
            Some(Concat {
                reference: 42,
                total: 2,
                seq: 1,
                sixteen_bit: false
            })
        );
        let ies = parse(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02], 0).expect("valid");
        assert_eq!(
            concat(&ies),
            Some(Concat {
                reference: 0x1234,
                total: 2,
                seq: 2,
                sixteen_bit: true
            })
        );
    }

    #[test]
    fn it_ignores_concat_ies_the_spec_says_to_ignore() {
        for ie in [
            [0x00, 0x03, 0x01, 0x00, 0x00],
            [0x00, 0x03, 0x01, 0x02, 0x00],
            [0x00, 0x03, 0x01, 0x02, 0x03],
        ] {
            let mut udh = vec![0x05];
            udh.extend(ie);
            let ies = parse(&udh, 0).expect("well-formed");
            assert_eq!(concat(&ies), None, "{ie:02X?}");
        }
        // Wrong length for the IEI.
        let ies = parse(&[0x04, 0x00, 0x02, 0x01, 0x02], 0).expect("well-formed");
        assert_eq!(concat(&ies), None);
    }

    #[test]
    fn it_rejects_an_ie_that_overruns_the_header() {
        let e = parse(&[0x05, 0x00, 0x07, 0x2A, 0x02, 0x01], 20).expect_err("overrun");
        assert_eq!(
            e.to_string(),
            "invalid user data header at octet 21: IE 00 claims 7 octets but the header has 3 left"
        );
        assert!(parse(&[0x01, 0x00], 0).is_err());
    }

    #[test]
    fn headers_round_trip() {
        for c in [
            Concat {
                reference: 0xAB,
                total: 3,
                seq: 2,
                sixteen_bit: false,
            },
            Concat {
                reference: 0xBEEF,
                total: 255,
                seq: 255,
                sixteen_bit: true,
            },
        ] {
            let h = c.header();
            assert_eq!(usize::from(h[0]) + 1, h.len());
            assert_eq!(concat(&parse(&h, 0).expect("valid")), Some(c));
        }
    }
}
