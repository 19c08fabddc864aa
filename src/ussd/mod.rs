//! USSD strings, pure: decoding by DCS (15, 72, 68, 17), request encoding, session
//! states. No I/O.
//!
//! | file | owns |
//! |---|---|
//! | [`codec`] | [`decode`] a `+CUSD` string by DCS (plain or packed GSM 7-bit, UCS-2 hex, 8-bit hex), [`encode_request`] for the modem, [`encode_reply`] for the simulator |
//! | [`dcs`] | what a DCS octet means (3GPP TS 23.038 §5) |
//! | [`session`] | the session state `<m>` (0 done … 5 network timeout) |
//!
//! The AT side (`+CUSD` parsing, command lines) is in [`crate::at`]; this module takes
//! the string and DCS out of an [`crate::at::response::Cusd`] and gives text back:
//!
//! ```
//! use atmate::at::response::Cusd;
//! use atmate::ussd::{self, SessionState};
//!
//! let c = Cusd::parse(r#"+CUSD: 0,"AA180C3602",15"#).unwrap();
//! let r = ussd::reply_from_cusd(&c).unwrap();
//! assert_eq!(r.text, "*100#");
//! assert_eq!(r.state, Some(SessionState::Done));
//! ```

pub mod codec;
pub mod dcs;
pub mod session;

pub use codec::{
    cancel_command, decode, encode_reply, encode_request, Decoded, Encoded, Form, ReplyForm,
    RequestEncoding,
};
pub use dcs::Dcs;
pub use session::SessionState;

/// A USSD string that cannot be decoded, or text that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UssdError {
    /// Hex of the wrong length for the DCS (odd, or not whole UCS-2 characters).
    #[error("USSD string for DCS {dcs} is not whole hex characters: {raw:?}")]
    BadHex {
        /// The DCS.
        dcs: u8,
        /// The string as received.
        raw: String,
    },
    /// UCS-2 with an unpaired surrogate.
    #[error("USSD string is not valid UTF-16: {raw:?}")]
    BadUtf16 {
        /// The string as received.
        raw: String,
    },
    /// The octets do not read as text in any encoding tried (binary data or control characters).
    #[error("USSD string for DCS {dcs} is not text: {raw:?}")]
    NotText {
        /// The DCS.
        dcs: u8,
        /// The string as received.
        raw: String,
    },
    /// A compressed DCS (23.042), which is not supported.
    #[error("compressed USSD (DCS {dcs:#04x}) is not supported")]
    Compressed {
        /// The DCS.
        dcs: u8,
    },
    /// A character outside the GSM 7-bit alphabet in a request that must be GSM 7-bit.
    #[error("{ch:?} is not in the GSM 7-bit alphabet")]
    NotGsm7 {
        /// The character.
        ch: char,
    },
    /// Longer than a USSD string may be.
    #[error("USSD text is {len} {unit}, more than the {max} allowed")]
    TooLong {
        /// The length.
        len: usize,
        /// The limit.
        max: usize,
        /// `septets` or `octets`.
        unit: &'static str,
    },
    /// An empty request.
    #[error("empty USSD request")]
    Empty,
}

/// A decoded `+CUSD`: what the engine turns into a USSD event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The session state; `None` for an `<m>` outside 0–5.
    pub state: Option<SessionState>,
    /// The raw `<m>`.
    pub m: u8,
    /// The text (empty when the network sent none, e.g. `+CUSD: 2`).
    pub text: String,
    /// The DCS as reported (15 when none was).
    pub dcs: u8,
    /// How the string was written.
    pub form: Form,
}

/// Decode a parsed `+CUSD` line.
pub fn reply_from_cusd(c: &crate::at::response::Cusd) -> Result<Reply, UssdError> {
    let dcs = c.dcs.unwrap_or(dcs::GSM7);
    let decoded = match c.text.as_deref() {
        Some(raw) => decode(raw, Some(dcs))?,
        None => Decoded {
            text: String::new(),
            form: Form::Literal,
            language: None,
        },
    };
    Ok(Reply {
        state: SessionState::from_code(c.m),
        m: c.m,
        text: decoded.text,
        dcs,
        form: decoded.form,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::response::Cusd;

    #[test]
    fn replies_from_mf667_cusd_lines() {
        let cases = [
            ("+CUSD: 0,\"Balance: 10.00 EUR\",15", 0, "Balance: 10.00 EUR", 15),
            (
                "+CUSD: 0,\"00420061006C0061006E00630065003A002000310030002E003000300020004500550052\",72",
                0,
                "Balance: 10.00 EUR",
                72,
            ),
            ("+CUSD: 0,\"42616C616E63653A2031302E303020455552\",68", 0, "Balance: 10.00 EUR", 68),
            ("+CUSD: 1,\"1. Balance\r\n2. Bundles\",15", 1, "1. Balance\r\n2. Bundles", 15),
            ("+CUSD: 2", 2, "", 15),
            ("+CUSD: 4", 4, "", 15),
        ];
        for (line, m, text, dcs) in cases {
            let c = Cusd::parse(line).expect(line);
            let r = reply_from_cusd(&c).expect(line);
            assert_eq!((r.m, r.text.as_str(), r.dcs), (m, text, dcs), "{line:?}");
            assert_eq!(r.state.map(|s| s.code()), Some(m));
        }
        let odd = reply_from_cusd(&Cusd::parse("+CUSD: 9,\"x\",15").expect("cusd")).expect("x");
        assert_eq!((odd.state, odd.m), (None, 9));
        assert!(reply_from_cusd(&Cusd::parse("+CUSD: 0,\"0000\",72").expect("cusd")).is_err());
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            UssdError::TooLong {
                len: 183,
                max: 182,
                unit: "septets"
            }
            .to_string(),
            "USSD text is 183 septets, more than the 182 allowed"
        );
        assert_eq!(
            UssdError::Compressed { dcs: 0x60 }.to_string(),
            "compressed USSD (DCS 0x60) is not supported"
        );
    }
}
