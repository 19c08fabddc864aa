//! SMS PDUs, pure: SMS-DELIVER / SMS-SUBMIT / SMS-STATUS-REPORT decode and encode,
//! GSM 03.38, UCS-2, UDH and concatenation, SCTS, multipart splitting. No I/O.
//!
//! - Receiving: [`decode_hex`] takes what `+CMGR`/`+CMGL`/`+CMT` print (SMSC prefix
//!   included) and gives a [`Pdu`]; errors say what is wrong and at which octet.
//! - Sending: [`build_submit`] splits a text into parts and gives one [`EncodedPdu`]
//!   (`AT+CMGS=<tpdu_len>`, then `hex`) per part.
//! - The simulator's side: [`build_deliver`] makes the DELIVER PDUs a network would send,
//!   and [`decode_hex`] reads the SUBMIT a client wrote after `AT+CMGS`.
//!
//! References: 3GPP TS 23.040 (PDU layout), 23.038 (alphabets, DCS), and
//! `MF667.md` §4 (the byte-exact examples the tests use).

pub mod address;
pub mod dcs;
pub mod error;
pub mod gsm7;
pub mod pdu;
mod reader;
pub mod scts;
pub mod split;
pub mod ucs2;
pub mod udh;

pub use address::Address;
pub use dcs::{Dcs, Encoding};
pub use error::PduError;
pub use pdu::{
    decode_bytes, decode_hex, decode_tpdu, join_parts, status_description, Deliver, DeliveryStatus,
    EncodedPdu, Pdu, StatusReport, Submit, UserData,
};
pub use scts::ValidityPeriod;
pub use split::{
    build_deliver, build_submit, build_submit_data, deliver_parts, split_text, submit_parts,
    DeliverOptions, SplitText, SubmitOptions,
};
pub use udh::Concat;
