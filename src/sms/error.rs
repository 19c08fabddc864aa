//! [`PduError`]: what is wrong with a PDU, and where.

/// Why a PDU could not be decoded or encoded.
///
/// Decode errors name the place: `position` is a 0-based index into the hex string,
/// `offset` a 0-based octet offset into the whole PDU (SMSC prefix included), so
/// `offset` 0 is the SMSC length octet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PduError {
    /// The input was empty (or only whitespace).
    #[error("empty PDU: no hex digits")]
    Empty,
    /// A character that is not a hex digit.
    #[error("invalid hex at position {position}: {found:?} is not a hex digit")]
    InvalidHex {
        /// 0-based character index in the input.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// An odd number of hex digits: the last octet is incomplete.
    #[error("odd number of hex digits ({digits}): the last octet is incomplete")]
    OddLength {
        /// How many hex digits there were.
        digits: usize,
    },
    /// The PDU ended before a field was complete.
    #[error(
        "truncated at octet {offset}: expected {expected} {what} {}, {left} left",
        if *expected == 1 { "octet" } else { "octets" }
    )]
    Truncated {
        /// Octet offset where the field starts.
        offset: usize,
        /// The field, e.g. `SCTS`, `TP-PID`, `user data`.
        what: &'static str,
        /// Octets the field needs.
        expected: usize,
        /// Octets that were left.
        left: usize,
    },
    /// A field is present but its value is not allowed.
    #[error("invalid {what} at octet {offset}: {reason}")]
    Invalid {
        /// Octet offset of the field.
        offset: usize,
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An address (number) that cannot be encoded.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The text needs more parts than a concatenated message can have (255).
    #[error("text too long: it needs {parts} parts, a concatenated SMS has at most 255")]
    TooLong {
        /// Parts the text would need.
        parts: usize,
    },
    /// The fields of a PDU to encode contradict each other or are out of range.
    #[error("cannot encode: {0}")]
    Encode(String),
}
