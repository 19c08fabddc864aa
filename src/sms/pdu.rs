//! SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT (23.040 §9.2.2), decode and encode.
//!
//! The hex a modem prints in `+CMGR`, `+CMGL`, `+CMT` and `+CDS` starts with the SMSC prefix
//! (`00` = none); [`decode_hex`] takes exactly that. The TP-MTI bits (0–1 of the first octet)
//! pick the type: 00 DELIVER, 01 SUBMIT, 10 STATUS-REPORT (the MS-side reading; a modem only
//! ever shows us those three). Lengths inside the PDU are authoritative: octets after the
//! user data are ignored.
//!
//! Every struct encodes back to bytes ([`Pdu::encode`]); for the flags the first octet is
//! rebuilt from the fields, and the user data from [`UserData::udh`] and [`UserData::data`].

use chrono::{DateTime, FixedOffset};

use super::address::{self, Address};
use super::dcs::{Dcs, Encoding};
use super::error::PduError;
use super::reader::Reader;
use super::scts::{self, ValidityPeriod};
use super::udh::{self, Concat, InformationElement};
use super::{gsm7, ucs2};

/// The most octets of user data one PDU carries (23.040 §9.2.3.16).
pub const MAX_USER_DATA_OCTETS: usize = 140;

/// First-octet bits (23.040 §9.2.3).
mod fo {
    pub const MTI_MASK: u8 = 0x03;
    /// TP-MMS (DELIVER, STATUS-REPORT): set = no more messages waiting. TP-RD in SUBMIT.
    pub const MMS_OR_RD: u8 = 0x04;
    /// TP-LP (DELIVER, STATUS-REPORT).
    pub const LP: u8 = 0x08;
    /// TP-VPF (SUBMIT), bits 4–3.
    pub const VPF_MASK: u8 = 0x18;
    /// TP-SRI (DELIVER), TP-SRR (SUBMIT), TP-SRQ (STATUS-REPORT).
    pub const SR: u8 = 0x20;
    pub const UDHI: u8 = 0x40;
    /// TP-RP (DELIVER, SUBMIT).
    pub const RP: u8 = 0x80;
}

/// The user data of a PDU: header, payload and the text decoded from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// The alphabet (from the DCS).
    pub encoding: Encoding,
    /// The raw user-data header, UDHL octet included (`05 00 03 2A 02 01`), if TP-UDHI is set.
    pub udh: Option<Vec<u8>>,
    /// Concatenation info found in the header.
    pub concat: Option<Concat>,
    /// The payload after the header: septet values (0–127, extension characters as `1B xx`)
    /// for GSM-7, the octets for UCS-2 and 8-bit data.
    pub data: Vec<u8>,
    /// The text. For 8-bit data a lossy Latin-1 reading of [`UserData::data`].
    pub text: String,
}

impl UserData {
    /// User data for `text` in `encoding`, with a concatenation header when `concat` is given.
    /// 8-bit data takes the text as Latin-1 and fails on characters above U+00FF.
    pub fn from_text(
        text: &str,
        encoding: Encoding,
        concat: Option<Concat>,
    ) -> Result<UserData, PduError> {
        let data = match encoding {
            Encoding::Gsm7 => gsm7::encode(text).ok_or_else(|| {
                PduError::Encode(format!(
                    "{:?} is not in the GSM 03.38 alphabet",
                    text.chars().find(|c| !gsm7::is_gsm7(*c)).unwrap_or(' ')
                ))
            })?,
            Encoding::Ucs2 => ucs2::encode(text),
            Encoding::EightBit => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| {
                    PduError::Encode("8-bit text must be Latin-1 (U+0000–U+00FF)".to_string())
                })?,
        };
        Ok(UserData {
            encoding,
            udh: concat.map(|c| c.header()),
            concat,
            data,
            text: text.to_string(),
        })
    }

    /// 8-bit user data carrying `data`, with a concatenation header when `concat` is given.
    pub fn from_bytes(data: Vec<u8>, concat: Option<Concat>) -> UserData {
        UserData {
            encoding: Encoding::EightBit,
            udh: concat.map(|c| c.header()),
            concat,
            text: latin1(&data),
            data,
        }
    }

    /// TP-UDL as it is (or would be) sent: septets for GSM-7 (header septets and fill
    /// included), octets otherwise.
    pub fn udl(&self) -> usize {
        let h = self.udh.as_ref().map_or(0, Vec::len);
        match self.encoding {
            Encoding::Gsm7 => udh::header_septets(h) + self.data.len(),
            _ => h + self.data.len(),
        }
    }

    /// The header's information elements (empty without a header).
    pub fn information_elements(&self) -> Vec<InformationElement> {
        self.udh
            .as_ref()
            .and_then(|h| udh::parse(h, 0).ok())
            .unwrap_or_default()
    }

    /// UDL octet + user data octets.
    fn encode(&self, dcs: &Dcs) -> Result<(u8, Vec<u8>), PduError> {
        if dcs.encoding != self.encoding {
            return Err(PduError::Encode(format!(
                "DCS {:02X} means {} but the user data is {}",
                dcs.raw,
                dcs.encoding.as_str(),
                self.encoding.as_str()
            )));
        }
        let header = self.udh.clone().unwrap_or_default();
        if let Some(&udhl) = header.first() {
            if usize::from(udhl) + 1 != header.len() {
                return Err(PduError::Encode(format!(
                    "UDHL {udhl} does not match a header of {} octets",
                    header.len()
                )));
            }
        }
        let mut out = header;
        match self.encoding {
            Encoding::Gsm7 => {
                if let Some(s) = self.data.iter().find(|&&s| s > 0x7F) {
                    return Err(PduError::Encode(format!("septet {s:02X} is above 7F")));
                }
                out.extend(gsm7::pack(&self.data, udh::fill_bits(out.len())));
            }
            _ => out.extend_from_slice(&self.data),
        }
        if out.len() > MAX_USER_DATA_OCTETS {
            return Err(PduError::Encode(format!(
                "user data is {} octets, at most {MAX_USER_DATA_OCTETS} fit one PDU",
                out.len()
            )));
        }
        Ok((self.udl() as u8, out))
    }
}

/// Best-effort text of 8-bit data: every octet as the Latin-1 character of that value.
fn latin1(data: &[u8]) -> String {
    data.iter().map(|&b| char::from(b)).collect()
}

/// Read TP-UDL and TP-UD.
fn read_user_data(r: &mut Reader<'_>, dcs: &Dcs, udhi: bool) -> Result<UserData, PduError> {
    let udl_offset = r.offset();
    let udl = usize::from(r.byte("TP-UDL")?);
    let ud_len = match dcs.encoding {
        Encoding::Gsm7 => (udl * 7).div_ceil(8),
        _ => udl,
    };
    let ud_offset = r.offset();
    let ud = r.take(ud_len, "user data")?;
    let (header, concat) = if udhi {
        let Some(&udhl) = ud.first() else {
            return Err(PduError::Invalid {
                offset: udl_offset,
                what: "TP-UDL",
                reason: "TP-UDHI is set but the user data is empty".to_string(),
            });
        };
        let h = usize::from(udhl) + 1;
        if h > ud.len() {
            return Err(PduError::Invalid {
                offset: ud_offset,
                what: "UDHL",
                reason: format!(
                    "a header of {h} octets does not fit in {} octets of user data",
                    ud.len()
                ),
            });
        }
        let header = &ud[..h];
        let ies = udh::parse(header, ud_offset)?;
        (Some(header.to_vec()), udh::concat(&ies))
    } else {
        (None, None)
    };
    let h = header.as_ref().map_or(0, Vec::len);
    let (data, text) = match dcs.encoding {
        Encoding::Gsm7 => {
            let hs = if udhi { udh::header_septets(h) } else { 0 };
            let Some(count) = udl.checked_sub(hs) else {
                return Err(PduError::Invalid {
                    offset: udl_offset,
                    what: "TP-UDL",
                    reason: format!("{udl} septets, but the header alone takes {hs}"),
                });
            };
            let septets = gsm7::unpack(&ud[h..], udh::fill_bits(if udhi { h } else { 0 }), count);
            let text = gsm7::decode(&septets);
            (septets, text)
        }
        Encoding::Ucs2 => (ud[h..].to_vec(), ucs2::decode(&ud[h..])),
        Encoding::EightBit => (ud[h..].to_vec(), latin1(&ud[h..])),
    };
    Ok(UserData {
        encoding: dcs.encoding,
        udh: header,
        concat,
        data,
        text,
    })
}

fn read_scts(r: &mut Reader<'_>, what: &'static str) -> Result<DateTime<FixedOffset>, PduError> {
    let offset = r.offset();
    let o = r.take(7, what)?;
    let mut a = [0u8; 7];
    a.copy_from_slice(o);
    scts::decode(&a).map_err(|reason| PduError::Invalid {
        offset,
        what,
        reason,
    })
}

fn encode_scts(t: &DateTime<FixedOffset>, what: &str) -> Result<[u8; 7], PduError> {
    scts::encode(t).map_err(|e| PduError::Encode(format!("{what} {t}: {e}")))
}

/// An SMS-DELIVER: a message to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// The SMSC from the prefix, `None` for `00`.
    pub smsc: Option<Address>,
    /// More messages are waiting in the SMSC (TP-MMS bit *clear*).
    pub more_messages: bool,
    /// TP-LP: loop prevention (the message was forwarded).
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP: a reply path exists.
    pub reply_path: bool,
    /// TP-OA: the sender.
    pub originator: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: Dcs,
    /// TP-SCTS: when the SMSC received it, with the sender's offset.
    pub timestamp: DateTime<FixedOffset>,
    /// TP-UDL/TP-UD.
    pub user_data: UserData,
}

impl Deliver {
    /// The first octet these fields give.
    pub fn first_octet(&self) -> u8 {
        let mut fo = 0x00;
        if !self.more_messages {
            fo |= fo::MMS_OR_RD;
        }
        if self.loop_prevention {
            fo |= fo::LP;
        }
        if self.status_report_indication {
            fo |= fo::SR;
        }
        if self.user_data.udh.is_some() {
            fo |= fo::UDHI;
        }
        if self.reply_path {
            fo |= fo::RP;
        }
        fo
    }

    fn read(r: &mut Reader<'_>, smsc: Option<Address>, first: u8) -> Result<Deliver, PduError> {
        let originator = address::read_tp(r, "TP-OA")?;
        let pid = r.byte("TP-PID")?;
        let dcs = Dcs::from_byte(r.byte("TP-DCS")?);
        let timestamp = read_scts(r, "SCTS")?;
        let user_data = read_user_data(r, &dcs, first & fo::UDHI != 0)?;
        Ok(Deliver {
            smsc,
            more_messages: first & fo::MMS_OR_RD == 0,
            loop_prevention: first & fo::LP != 0,
            status_report_indication: first & fo::SR != 0,
            reply_path: first & fo::RP != 0,
            originator,
            pid,
            dcs,
            timestamp,
            user_data,
        })
    }

    fn write_tpdu(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        out.push(self.first_octet());
        out.extend(self.originator.encode_tp()?);
        out.push(self.pid);
        out.push(self.dcs.raw);
        out.extend(encode_scts(&self.timestamp, "SCTS")?);
        let (udl, ud) = self.user_data.encode(&self.dcs)?;
        out.push(udl);
        out.extend(ud);
        Ok(())
    }
}

/// An SMS-SUBMIT: a message we send (or one a modem shows from its "sent" store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// The SMSC from the prefix, `None` for `00` (use the modem's `+CSCA`).
    pub smsc: Option<Address>,
    /// TP-RD: the SMSC should reject a duplicate (same MR and destination).
    pub reject_duplicates: bool,
    /// TP-SRR: ask for a status report.
    pub status_report_request: bool,
    /// TP-RP: a reply path is requested.
    pub reply_path: bool,
    /// TP-MR. Modems replace it with their own counter and report that in `+CMGS: <mr>`.
    pub message_reference: u8,
    /// TP-DA: the recipient.
    pub destination: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: Dcs,
    /// TP-VP, present when TP-VPF is not 00.
    pub validity: Option<ValidityPeriod>,
    /// TP-UDL/TP-UD.
    pub user_data: UserData,
}

impl Submit {
    /// The first octet these fields give.
    pub fn first_octet(&self) -> u8 {
        let mut fo = 0x01;
        if self.reject_duplicates {
            fo |= fo::MMS_OR_RD;
        }
        if let Some(vp) = &self.validity {
            fo |= vp.vpf_bits();
        }
        if self.status_report_request {
            fo |= fo::SR;
        }
        if self.user_data.udh.is_some() {
            fo |= fo::UDHI;
        }
        if self.reply_path {
            fo |= fo::RP;
        }
        fo
    }

    fn read(r: &mut Reader<'_>, smsc: Option<Address>, first: u8) -> Result<Submit, PduError> {
        let message_reference = r.byte("TP-MR")?;
        let destination = address::read_tp(r, "TP-DA")?;
        let pid = r.byte("TP-PID")?;
        let dcs = Dcs::from_byte(r.byte("TP-DCS")?);
        let validity = match first & fo::VPF_MASK {
            0x00 => None,
            0x10 => Some(ValidityPeriod::Relative(r.byte("TP-VP")?)),
            0x08 => {
                let mut a = [0u8; 7];
                a.copy_from_slice(r.take(7, "TP-VP (enhanced)")?);
                Some(ValidityPeriod::Enhanced(a))
            }
            _ => Some(ValidityPeriod::Absolute(read_scts(r, "TP-VP (absolute)")?)),
        };
        let user_data = read_user_data(r, &dcs, first & fo::UDHI != 0)?;
        Ok(Submit {
            smsc,
            reject_duplicates: first & fo::MMS_OR_RD != 0,
            status_report_request: first & fo::SR != 0,
            reply_path: first & fo::RP != 0,
            message_reference,
            destination,
            pid,
            dcs,
            validity,
            user_data,
        })
    }

    fn write_tpdu(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        out.push(self.first_octet());
        out.push(self.message_reference);
        if self.destination.is_alphanumeric() {
            return Err(PduError::InvalidAddress {
                address: self.destination.number.clone(),
                reason: "a recipient must be a number".to_string(),
            });
        }
        out.extend(self.destination.encode_tp()?);
        out.push(self.pid);
        out.push(self.dcs.raw);
        match &self.validity {
            None => {}
            Some(ValidityPeriod::Relative(v)) => out.push(*v),
            Some(ValidityPeriod::Enhanced(a)) => out.extend_from_slice(a),
            Some(ValidityPeriod::Absolute(t)) => out.extend(encode_scts(t, "TP-VP")?),
        }
        let (udl, ud) = self.user_data.encode(&self.dcs)?;
        out.push(udl);
        out.extend(ud);
        Ok(())
    }
}

/// What a status report says happened, by TP-ST range (23.040 §9.2.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// 0x00–0x1F: the transaction completed (delivered, forwarded, replaced).
    Delivered,
    /// 0x20–0x3F: a temporary error; the SMSC is still trying.
    Pending,
    /// 0x40–0x7F: a permanent error, or a temporary one after which the SMSC stopped trying.
    /// Reserved values 0x80–0xFF count here too ("service rejected", as 23.040 asks).
    Failed,
}

impl DeliveryStatus {
    /// Classify a TP-ST octet.
    pub fn from_st(st: u8) -> DeliveryStatus {
        match st {
            0x00..=0x1F => DeliveryStatus::Delivered,
            0x20..=0x3F => DeliveryStatus::Pending,
            _ => DeliveryStatus::Failed,
        }
    }

    /// `delivered`, `pending` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// The 23.040 §9.2.3.15 wording of a TP-ST value.
pub fn status_description(st: u8) -> &'static str {
    match st {
        0x00 => "short message received by the SME",
        0x01 => "forwarded by the SC to the SME but the SC is unable to confirm delivery",
        0x02 => "short message replaced by the SC",
        0x03..=0x1F => "transaction completed (reserved or SC-specific value)",
        0x20 | 0x60 => "congestion",
        0x21 | 0x61 => "SME busy",
        0x22 | 0x62 => "no response from SME",
        0x23 | 0x63 => "service rejected",
        0x24 | 0x44 | 0x64 => "quality of service not available",
        0x25 | 0x65 => "error in SME",
        0x26..=0x3F => "temporary error, SC still trying (reserved or SC-specific value)",
        0x40 => "remote procedure error",
        0x41 => "incompatible destination",
        0x42 => "connection rejected by SME",
        0x43 => "not obtainable",
        0x45 => "no interworking available",
        0x46 => "SM validity period expired",
        0x47 => "SM deleted by originating SME",
        0x48 => "SM deleted by SC administration",
        0x49 => "SM does not exist",
        0x4A..=0x5F => "permanent error (reserved or SC-specific value)",
        0x66..=0x7F => "temporary error, SC stopped trying (reserved or SC-specific value)",
        _ => "reserved value (treated as service rejected)",
    }
}

/// An SMS-STATUS-REPORT: what happened to a message we sent with TP-SRR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The SMSC from the prefix, `None` for `00`.
    pub smsc: Option<Address>,
    /// More messages are waiting in the SMSC (TP-MMS bit *clear*).
    pub more_messages: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRQ: the report is about an SMS-COMMAND (true) rather than an SMS-SUBMIT.
    pub qualifier_command: bool,
    /// TP-MR of the message (part) this report is about (as `+CMGS: <mr>` gave it).
    pub message_reference: u8,
    /// TP-RA: the recipient of that message.
    pub recipient: Address,
    /// TP-SCTS: when the SMSC received that message.
    pub timestamp: DateTime<FixedOffset>,
    /// TP-DT: when the SMSC delivered it, or gave up, or this status was reached.
    pub discharge: DateTime<FixedOffset>,
    /// TP-ST, raw.
    pub status: u8,
    /// TP-PID, if the optional parameters carry one.
    pub pid: Option<u8>,
    /// TP-DCS, if the optional parameters carry one.
    pub dcs: Option<Dcs>,
    /// TP-UDL/TP-UD, if the optional parameters carry them.
    pub user_data: Option<UserData>,
}

impl StatusReport {
    /// The TP-ST classification.
    pub fn delivery(&self) -> DeliveryStatus {
        DeliveryStatus::from_st(self.status)
    }

    /// The first octet these fields give.
    pub fn first_octet(&self) -> u8 {
        let mut fo = 0x02;
        if !self.more_messages {
            fo |= fo::MMS_OR_RD;
        }
        if self.loop_prevention {
            fo |= fo::LP;
        }
        if self.qualifier_command {
            fo |= fo::SR;
        }
        if self.user_data.as_ref().is_some_and(|u| u.udh.is_some()) {
            fo |= fo::UDHI;
        }
        fo
    }

    fn read(
        r: &mut Reader<'_>,
        smsc: Option<Address>,
        first: u8,
    ) -> Result<StatusReport, PduError> {
        let message_reference = r.byte("TP-MR")?;
        let recipient = address::read_tp(r, "TP-RA")?;
        let timestamp = read_scts(r, "SCTS")?;
        let discharge = read_scts(r, "discharge time")?;
        let status = r.byte("TP-ST")?;
        // TP-PI and what follows are optional, and the report is complete without them. Some
        // SMSCs pad reports with junk here, so a tail we cannot read is dropped, not an error.
        let (pid, dcs, user_data) =
            read_report_tail(r, first & fo::UDHI != 0).unwrap_or((None, None, None));
        Ok(StatusReport {
            smsc,
            more_messages: first & fo::MMS_OR_RD == 0,
            loop_prevention: first & fo::LP != 0,
            qualifier_command: first & fo::SR != 0,
            message_reference,
            recipient,
            timestamp,
            discharge,
            status,
            pid,
            dcs,
            user_data,
        })
    }

    fn write_tpdu(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        out.push(self.first_octet());
        out.push(self.message_reference);
        out.extend(self.recipient.encode_tp()?);
        out.extend(encode_scts(&self.timestamp, "SCTS")?);
        out.extend(encode_scts(&self.discharge, "discharge time")?);
        out.push(self.status);
        let mut pi = 0u8;
        if self.pid.is_some() {
            pi |= 0x01;
        }
        if self.dcs.is_some() {
            pi |= 0x02;
        }
        if self.user_data.is_some() {
            pi |= 0x04;
        }
        if pi == 0 {
            return Ok(());
        }
        out.push(pi);
        if let Some(pid) = self.pid {
            out.push(pid);
        }
        if let Some(dcs) = &self.dcs {
            out.push(dcs.raw);
        }
        if let Some(ud) = &self.user_data {
            // Without TP-DCS the user data is GSM-7 (23.040 §9.2.3.27).
            let dcs = self.dcs.unwrap_or(Dcs::from_byte(0x00));
            let (udl, bytes) = ud.encode(&dcs)?;
            out.push(udl);
            out.extend(bytes);
        }
        Ok(())
    }
}

type ReportTail = (Option<u8>, Option<Dcs>, Option<UserData>);

/// TP-PI (with its extension octets), then TP-PID, TP-DCS, TP-UDL/UD as TP-PI says.
fn read_report_tail(r: &mut Reader<'_>, udhi: bool) -> Result<ReportTail, PduError> {
    if r.left() == 0 {
        return Ok((None, None, None));
    }
    let pi = r.byte("TP-PI")?;
    let mut ext = pi;
    while ext & 0x80 != 0 {
        ext = r.byte("TP-PI extension")?;
    }
    let pid = if pi & 0x01 != 0 {
        Some(r.byte("TP-PID")?)
    } else {
        None
    };
    let dcs = if pi & 0x02 != 0 {
        Some(Dcs::from_byte(r.byte("TP-DCS")?))
    } else {
        None
    };
    let user_data = if pi & 0x04 != 0 {
        let d = dcs.unwrap_or(Dcs::from_byte(0x00));
        Some(read_user_data(r, &d, udhi)?)
    } else {
        None
    };
    Ok((pid, dcs, user_data))
}

/// A decoded PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// TP-MTI 00.
    Deliver(Deliver),
    /// TP-MTI 01.
    Submit(Submit),
    /// TP-MTI 10.
    StatusReport(StatusReport),
}

impl Pdu {
    /// `deliver`, `submit` or `status-report`.
    pub fn kind(&self) -> &'static str {
        match self {
            Pdu::Deliver(_) => "deliver",
            Pdu::Submit(_) => "submit",
            Pdu::StatusReport(_) => "status-report",
        }
    }

    /// The SMSC from the prefix.
    pub fn smsc(&self) -> Option<&Address> {
        match self {
            Pdu::Deliver(d) => d.smsc.as_ref(),
            Pdu::Submit(s) => s.smsc.as_ref(),
            Pdu::StatusReport(s) => s.smsc.as_ref(),
        }
    }

    /// The other party: sender (DELIVER), recipient (SUBMIT, STATUS-REPORT).
    pub fn address(&self) -> &Address {
        match self {
            Pdu::Deliver(d) => &d.originator,
            Pdu::Submit(s) => &s.destination,
            Pdu::StatusReport(s) => &s.recipient,
        }
    }

    /// The user data, if the PDU has any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Pdu::Deliver(d) => Some(&d.user_data),
            Pdu::Submit(s) => Some(&s.user_data),
            Pdu::StatusReport(s) => s.user_data.as_ref(),
        }
    }

    /// The first octet these fields give.
    pub fn first_octet(&self) -> u8 {
        match self {
            Pdu::Deliver(d) => d.first_octet(),
            Pdu::Submit(s) => s.first_octet(),
            Pdu::StatusReport(s) => s.first_octet(),
        }
    }

    /// Encode with the SMSC prefix (`00` when [`Pdu::smsc`] is `None`).
    pub fn encode(&self) -> Result<EncodedPdu, PduError> {
        let mut out = match self.smsc() {
            Some(a) => a.encode_smsc()?,
            None => vec![0x00],
        };
        let prefix = out.len();
        match self {
            Pdu::Deliver(d) => d.write_tpdu(&mut out)?,
            Pdu::Submit(s) => s.write_tpdu(&mut out)?,
            Pdu::StatusReport(s) => s.write_tpdu(&mut out)?,
        }
        Ok(EncodedPdu {
            tpdu_len: out.len() - prefix,
            hex: to_hex(&out),
        })
    }
}

/// An encoded PDU, ready for `AT+CMGS=<tpdu_len>` (or `+CMGW`) followed by `hex` and Ctrl-Z.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPdu {
    /// Octets after the SMSC prefix: the length `AT+CMGS=` wants.
    pub tpdu_len: usize,
    /// Upper-case hex, SMSC prefix included.
    pub hex: String,
}

/// Octets → upper-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Hex (either case; whitespace around it ignored) → octets.
pub fn from_hex(hex: &str) -> Result<Vec<u8>, PduError> {
    let lead = hex.chars().take_while(|c| c.is_whitespace()).count();
    let trimmed = hex.trim();
    if trimmed.is_empty() {
        return Err(PduError::Empty);
    }
    let mut nibbles = Vec::with_capacity(trimmed.len());
    for (i, c) in trimmed.chars().enumerate() {
        let v = c.to_digit(16).ok_or(PduError::InvalidHex {
            position: lead + i,
            found: c,
        })?;
        nibbles.push(v as u8);
    }
    if nibbles.len() % 2 == 1 {
        return Err(PduError::OddLength {
            digits: nibbles.len(),
        });
    }
    Ok(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Decode what a modem prints in `+CMGR`/`+CMGL`/`+CMT`/`+CDS`: hex, SMSC prefix included.
///
/// ```
/// let pdu = atmate::sms::decode_hex("0031000C919471103254760000AA05C8329BFD06").unwrap();
/// assert_eq!(pdu.kind(), "submit");
/// assert_eq!(pdu.address().number, "+491701234567");
/// assert_eq!(pdu.user_data().unwrap().text, "Hello");
/// ```
pub fn decode_hex(hex: &str) -> Result<Pdu, PduError> {
    decode_bytes(&from_hex(hex)?)
}

/// Like [`decode_hex`], from octets.
pub fn decode_bytes(bytes: &[u8]) -> Result<Pdu, PduError> {
    let mut r = Reader::new(bytes, 0);
    let smsc = address::read_smsc(&mut r)?;
    let base = r.offset();
    decode_in(&mut Reader::new(r.rest(), base), smsc)
}

/// Decode a TPDU without the SMSC prefix (`smsc` is then `None`); error offsets count from
/// the TPDU's first octet.
pub fn decode_tpdu(tpdu: &[u8]) -> Result<Pdu, PduError> {
    decode_in(&mut Reader::new(tpdu, 0), None)
}

/// Octets the SMSC prefix takes at the start of `bytes` (1 for `00`), so the TPDU length is
/// `bytes.len() - smsc_prefix_len(bytes)`. `None` for empty input.
pub fn smsc_prefix_len(bytes: &[u8]) -> Option<usize> {
    bytes.first().map(|&l| usize::from(l) + 1)
}

fn decode_in(r: &mut Reader<'_>, smsc: Option<Address>) -> Result<Pdu, PduError> {
    let fo_offset = r.offset();
    let first = r.byte("TP-MTI/flags")?;
    match first & fo::MTI_MASK {
        0b00 => Ok(Pdu::Deliver(Deliver::read(r, smsc, first)?)),
        0b01 => Ok(Pdu::Submit(Submit::read(r, smsc, first)?)),
        0b10 => Ok(Pdu::StatusReport(StatusReport::read(r, smsc, first)?)),
        _ => Err(PduError::Invalid {
            offset: fo_offset,
            what: "first octet",
            reason: format!("TP-MTI 11 (first octet {first:02X}) is reserved"),
        }),
    }
}

/// Join the texts of a concatenated message's parts, given in sequence order.
///
/// When every part is UCS-2 the octets are joined before decoding, so a surrogate pair that a
/// careless sender split across two parts still becomes one character.
pub fn join_parts<'a>(parts: impl IntoIterator<Item = &'a UserData>) -> String {
    let parts: Vec<&UserData> = parts.into_iter().collect();
    if !parts.is_empty() && parts.iter().all(|p| p.encoding == Encoding::Ucs2) {
        let octets: Vec<u8> = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        return ucs2::decode(&octets);
    }
    parts.iter().map(|p| p.text.as_str()).collect()
}

#[cfg(test)]
mod tests;
