//! Unsolicited result codes → typed [`Urc`] values, and telling URCs from responses.
//!
//! Parsing never fails: a line that is not a known URC, or a known one with fields we
//! cannot read, becomes [`Urc::Unknown`] with the line, so the engine can log it and go on
//! (gammu ignores stray `+ZPAS:`/`+CSQ:` lines from an MF626 the same way, MF667.md §3).
//!
//! The forms (MF667.md §3):
//!
//! | line(s) | value |
//! |---|---|
//! | `+CMTI: "SM",3` | [`Urc::Cmti`] |
//! | `+CMT: [<alpha>],<len>` + PDU line | [`Urc::Cmt`] (text mode: [`Urc::CmtText`]) |
//! | `+CDSI: "SR",50` | [`Urc::Cdsi`] |
//! | `+CDS: 25` / ZTE `+CDS: ,25` + PDU line | [`Urc::Cds`] (text mode, one line: [`Urc::CdsText`]) |
//! | `+CBM: <len>` + PDU line | [`Urc::Cbm`] |
//! | `+CUSD: <m>[,"<str>"[,<dcs>]]` (string may span lines) | [`Urc::Cusd`] |
//! | `+CREG: <stat>[,<lac>,<ci>[,<AcT>]]`, `+CGREG`, `+CEREG` | [`Urc::Creg`], [`Urc::Cgreg`], [`Urc::Cereg`] |
//! | `RING`, `+CRING: VOICE`, `+CLIP: "+4917…",145,,,,0` | [`Urc::Ring`], [`Urc::Cring`], [`Urc::Clip`] |
//! | `+ZPASR: "UMTS"[,"CS_PS"]` | [`Urc::Zpasr`] |
//! | `+ZUSIMR:2` (no space) | [`Urc::Zusimr`] |
//! | `+ZDONR: "METEOR",272,3,"CS_ONLY","ROAM_OFF"` | [`Urc::Zdonr`] |
//! | `+ZEND`, `+ZPSTM: …` (SIM toolkit menu) | [`Urc::Zend`], [`Urc::Zpstm`] |
//! | `+CTZV: …` (network time zone, after `AT+CTZR=1`) | [`Urc::Ctzv`] |
//! | `HANGUP: 1` (ZTE call end) | [`Urc::Hangup`] |

use super::fields::{name, payload, split, Field};
use super::framer::Item;
use super::response::{Cusd, Registration, ZteNetwork};

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Urc {
    /// A new SMS was stored: `+CMTI: "<mem>",<index>`.
    Cmti {
        /// The store (`SM`, `ME`); read it with this mem1 selected.
        mem: String,
        /// Index in that store.
        index: u32,
    },
    /// An SMS routed directly (PDU mode): `+CMT: [<alpha>],<length>` + PDU.
    Cmt {
        /// Phonebook name, if any.
        alpha: Option<String>,
        /// TPDU length in octets.
        length: usize,
        /// The hex PDU (SMSC part included).
        pdu: String,
    },
    /// An SMS routed directly (text mode): `+CMT: <oa>,[<alpha>],<scts>[,…]` + text.
    CmtText {
        /// Originating address.
        oa: String,
        /// Phonebook name, if any.
        alpha: Option<String>,
        /// Service-centre time stamp as printed.
        scts: Option<String>,
        /// The text line.
        text: String,
    },
    /// A status report was stored: `+CDSI: "<mem>",<index>`.
    Cdsi {
        /// The store (usually `SR`).
        mem: String,
        /// Index in that store.
        index: u32,
    },
    /// A status report routed directly (PDU mode): `+CDS: <length>` + PDU.
    Cds {
        /// TPDU length in octets.
        length: usize,
        /// The hex PDU.
        pdu: String,
    },
    /// A status report routed directly (text mode): `+CDS: <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>`.
    CdsText {
        /// First octet.
        fo: u8,
        /// Message reference.
        mr: u8,
        /// Recipient address.
        ra: Option<String>,
        /// Service-centre time stamp as printed.
        scts: Option<String>,
        /// Discharge time as printed.
        dt: Option<String>,
        /// TP-ST status.
        st: u8,
    },
    /// A cell broadcast routed directly (PDU mode): `+CBM: <length>` + PDU.
    Cbm {
        /// PDU length in octets.
        length: usize,
        /// The hex PDU.
        pdu: String,
    },
    /// A USSD answer or network request.
    Cusd(Cusd),
    /// Circuit-switched registration (`+CREG`).
    Creg(Registration),
    /// Packet-switched registration (`+CGREG`).
    Cgreg(Registration),
    /// EPS registration (`+CEREG`).
    Cereg(Registration),
    /// `RING` (or V0 `2`).
    Ring,
    /// `+CRING: <type>`.
    Cring {
        /// `VOICE`, `DATA`, `FAX`…
        call_type: String,
    },
    /// `+CLIP: <number>,<type>[,<subaddr>,<satype>[,[<alpha>][,<CLI validity>]]]`.
    Clip {
        /// Caller number (empty when withheld).
        number: String,
        /// Type of address (145 international, 129 national).
        toa: Option<u8>,
        /// Phonebook name, if any.
        alpha: Option<String>,
        /// 0 valid, 1 withheld, 2 not available.
        validity: Option<u8>,
    },
    /// `+ZPASR: "<net>"[,"<domain>"]`: ZTE access-technology change.
    Zpasr(ZteNetwork),
    /// `+ZUSIMR:<n>`: ZTE SIM/message-waiting indication; ModemManager ignores it (and notes
    /// that floods of it can crash the stick).
    Zusimr(u32),
    /// `+ZDONR: "<name>",<mcc>,<mnc>,"<domain>","<roam>"`: ZTE operator display.
    Zdonr {
        /// Operator name.
        operator: String,
        /// Mobile country code.
        mcc: Option<u16>,
        /// Mobile network code.
        mnc: Option<u16>,
        /// `CS_ONLY`, `PS_ONLY`, `CS_PS`…
        domain: Option<String>,
        /// `ROAM_ON` → `Some(true)`, `ROAM_OFF` → `Some(false)`.
        roaming: Option<bool>,
    },
    /// `+ZEND`: ZTE SIM toolkit "rebuild menu".
    Zend,
    /// `+ZPSTM: …`: ZTE SIM toolkit "build main menu"; the text after the colon.
    Zpstm(String),
    /// `+CTZV: …`: network time zone.
    Ctzv(TimeZoneReport),
    /// `HANGUP[: <n>]`: ZTE call end.
    Hangup(Option<u32>),
    /// Anything else: the whole line (a two-line item as `header\r\nbody`).
    Unknown(String),
}

/// A `+CTZV` report. 27.007 §8.41 gives `+CTZV: <tz>` in quarter hours; vendors add the date
/// and time (`+CTZV: 13/05/16,09:38:52+08`), so the raw text is kept too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneReport {
    /// The text after the colon.
    pub raw: String,
    /// The offset from UTC in quarter hours, when it could be read.
    pub quarters: Option<i32>,
}

impl TimeZoneReport {
    fn parse(raw: &str) -> TimeZoneReport {
        let text = raw.trim().trim_matches('"');
        let quarters = text.parse::<i32>().ok().or_else(|| {
            // `yy/mm/dd,hh:mm:ss±zz[,dst]`: the zone follows the time.
            let f = split(text);
            let time = f.get(1)?.text();
            let at = time.rfind(['+', '-'])?;
            time[at..].trim_start_matches('+').parse().ok()
        });
        TimeZoneReport {
            raw: raw.trim().to_string(),
            quarters,
        }
    }
}

impl Urc {
    /// Parse one line (a URC of one line). Never fails: see [`Urc::Unknown`].
    pub fn parse(line: &str) -> Urc {
        parse_line(line).unwrap_or_else(|| Urc::Unknown(line.to_string()))
    }

    /// Parse a two-line URC from the framer's [`Item::Message`].
    pub fn parse_message(header: &str, body: &str) -> Urc {
        parse_message(header, body).unwrap_or_else(|| Urc::Unknown(format!("{header}\r\n{body}")))
    }

    /// The URC in a framed item: lines and two-line messages; `None` for echo, prompt
    /// and final result codes.
    pub fn from_item(item: &Item) -> Option<Urc> {
        match item {
            Item::Line(l) => Some(Urc::parse(l)),
            Item::Message { header, body } => Some(Urc::parse_message(header, body)),
            Item::Echo(_) | Item::Prompt | Item::Final(_) => None,
        }
    }
}

fn mem_index(p: &str) -> Option<(String, u32)> {
    let f = split(p);
    let mem = f.first()?.opt_text()?.trim().to_string();
    let index = f.get(1)?.int()?;
    (f.len() == 2).then_some((mem, index))
}

fn parse_line(line: &str) -> Option<Urc> {
    let l = line.trim_end();
    if l == "RING" {
        return Some(Urc::Ring);
    }
    if l == "HANGUP" {
        return Some(Urc::Hangup(None));
    }
    if let Some(p) = payload(l, "HANGUP") {
        return Some(Urc::Hangup(Some(p.trim().parse().ok()?)));
    }
    if l.eq_ignore_ascii_case("+ZEND") {
        return Some(Urc::Zend);
    }
    let n = name(l)?.to_ascii_uppercase();
    let p = payload(l, &n)?;
    Some(match n.as_str() {
        "+CMTI" => {
            let (mem, index) = mem_index(p)?;
            Urc::Cmti { mem, index }
        }
        "+CDSI" => {
            let (mem, index) = mem_index(p)?;
            Urc::Cdsi { mem, index }
        }
        "+CDS" => {
            // Text mode: the whole report on one line.
            let f = split(p);
            if f.len() < 7 {
                return None;
            }
            Urc::CdsText {
                fo: f[0].int()?,
                mr: f[1].int()?,
                ra: f[2].opt_text().map(str::to_string),
                scts: f[4].opt_text().map(str::to_string),
                dt: f[5].opt_text().map(str::to_string),
                st: f[6].int()?,
            }
        }
        "+CUSD" => Urc::Cusd(Cusd::parse(l).ok()?),
        "+CREG" => Urc::Creg(Registration::parse(l).ok()?),
        "+CGREG" => Urc::Cgreg(Registration::parse(l).ok()?),
        "+CEREG" => Urc::Cereg(Registration::parse(l).ok()?),
        "+CRING" => {
            let t = p.trim();
            if t.is_empty() {
                return None;
            }
            Urc::Cring {
                call_type: t.to_string(),
            }
        }
        "+CLIP" => {
            let f = split(p);
            // The URC quotes the number; `+CLIP: <n>,<m>` is the answer to `AT+CLIP?`.
            let number = match f.first()? {
                Field::Quoted(s) => s.to_string(),
                _ => return None,
            };
            Urc::Clip {
                number,
                toa: f.get(1).and_then(Field::int),
                alpha: f.get(4).and_then(Field::opt_text).map(str::to_string),
                validity: f.get(5).and_then(Field::int),
            }
        }
        "+ZPASR" => Urc::Zpasr(ZteNetwork::parse(l).ok()?),
        "+ZUSIMR" => Urc::Zusimr(p.trim().parse().ok()?),
        "+ZDONR" => {
            let f = split(p);
            let operator = f.first()?.text().to_string();
            Urc::Zdonr {
                operator,
                mcc: f.get(1).and_then(Field::int),
                mnc: f.get(2).and_then(Field::int),
                domain: f.get(3).and_then(Field::opt_text).map(str::to_string),
                roaming: f
                    .get(4)
                    .and_then(|x| match x.text().to_ascii_uppercase().as_str() {
                        "ROAM_ON" => Some(true),
                        "ROAM_OFF" => Some(false),
                        _ => None,
                    }),
            }
        }
        "+ZPSTM" => Urc::Zpstm(p.to_string()),
        "+CTZV" => Urc::Ctzv(TimeZoneReport::parse(p)),
        _ => return None,
    })
}

fn parse_message(header: &str, body: &str) -> Option<Urc> {
    let body = body.trim();
    if let Some(p) = payload(header, "+CMT") {
        let f = split(p);
        return Some(match f.len() {
            1 => Urc::Cmt {
                alpha: None,
                length: f[0].int()?,
                pdu: body.to_string(),
            },
            2 => Urc::Cmt {
                alpha: f[0].opt_text().map(str::to_string),
                length: f[1].int()?,
                pdu: body.to_string(),
            },
            _ => Urc::CmtText {
                oa: f[0].text().to_string(),
                alpha: f[1].opt_text().map(str::to_string),
                scts: f[2].opt_text().map(str::to_string),
                text: body.to_string(),
            },
        });
    }
    if let Some(p) = payload(header, "+CDS") {
        // `+CDS: 25` (27.005) or ZTE's `+CDS: ,25`: the length is the last field.
        let f = split(p);
        if f.len() > 2 {
            return None;
        }
        return Some(Urc::Cds {
            length: f.last()?.int()?,
            pdu: body.to_string(),
        });
    }
    if let Some(p) = payload(header, "+CBM") {
        let f = split(p);
        if f.len() > 2 {
            return None;
        }
        return Some(Urc::Cbm {
            length: f.last()?.int()?,
            pdu: body.to_string(),
        });
    }
    None
}

/// Names that are only ever unsolicited (never the answer to a command we send).
/// Includes a few common non-ZTE ones (Huawei `^` codes, `+CIEV`, `+CGEV`) so a generic
/// modem's chatter is not mistaken for a response.
const ALWAYS_UNSOLICITED: &[&str] = &[
    "+CMTI",
    "+CMT",
    "+CDSI",
    "+CDS",
    "+CBM",
    "+CBMI",
    "+CRING",
    "+ZPASR",
    "+ZUSIMR",
    "+ZDONR",
    "+ZEND",
    "+ZPSTM",
    "+CTZV",
    "+CTZE",
    "+CIEV",
    "+CGEV",
    "^BOOT",
    "^RSSI",
    "^MODE",
    "^SRVST",
    "^SIMST",
    "^DSFLOWRPT",
];

/// `true` if `line` is an unsolicited result code: one of the forms in the module table
/// (`+CREG: <stat>` without `<n>` is; `+CREG: 0,1` is not), or a name that is only ever
/// unsolicited. `+CUSD` counts as unsolicited (the network's answer is a URC; some firmware
/// sends it before the `OK`). Use [`classify`] while a command is waiting for its answer.
pub fn is_unsolicited(line: &str) -> bool {
    match Urc::parse(line) {
        Urc::Creg(r) | Urc::Cgreg(r) | Urc::Cereg(r) => !r.is_solicited(),
        Urc::Unknown(_) => {
            let l = line.trim_end();
            l == "RING"
                || l.starts_with("HANGUP")
                || name(l)
                    .is_some_and(|n| ALWAYS_UNSOLICITED.iter().any(|u| u.eq_ignore_ascii_case(n)))
        }
        _ => true,
    }
}

/// Where a line belongs while a command is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Part of the pending command's answer.
    Response,
    /// A URC: hand it to the URC path.
    Unsolicited,
}

/// Decide whether `line`, received while a command with information prefix `expected`
/// (e.g. `Some("+CREG")` for `AT+CREG?`, see `Command::response_prefix`) is pending,
/// belongs to that command or is a URC.
///
/// - A line with the expected prefix is the answer, except the unsolicited registration
///   form, which ZTE mixes into the `AT+CREG?` reply (oFono).
/// - Otherwise a line that [`is_unsolicited`] is a URC, and anything else (bare text such
///   as an IMEI, stray lines) is part of the answer.
pub fn classify(line: &str, expected: Option<&str>) -> LineKind {
    if let Some(prefix) = expected {
        if name(line).is_some_and(|n| n.eq_ignore_ascii_case(prefix)) {
            return match Urc::parse(line) {
                Urc::Creg(r) | Urc::Cgreg(r) | Urc::Cereg(r) if !r.is_solicited() => {
                    LineKind::Unsolicited
                }
                _ => LineKind::Response,
            };
        }
    }
    if is_unsolicited(line) {
        LineKind::Unsolicited
    } else {
        LineKind::Response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::framer::{Framer, Item};
    use crate::at::response::{AccessTech, RegStatus};

    const E1: &str =
        "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";
    const E6: &str = "079144775810065006FD0C91449771624701117013908522401170139085624000";

    #[test]
    fn sms_indications() {
        assert_eq!(
            Urc::parse("+CMTI: \"SM\",3"),
            Urc::Cmti {
                mem: "SM".into(),
                index: 3
            }
        );
        assert_eq!(
            Urc::parse("+CMTI: \"ME\", 12"),
            Urc::Cmti {
                mem: "ME".into(),
                index: 12
            }
        );
        assert_eq!(
            Urc::parse("+CDSI: \"SR\",50"),
            Urc::Cdsi {
                mem: "SR".into(),
                index: 50
            }
        );
        assert_eq!(
            Urc::parse("+CMTI: \"SM\""),
            Urc::Unknown("+CMTI: \"SM\"".into())
        );
    }

    #[test]
    fn two_line_urcs() {
        assert_eq!(
            Urc::parse_message("+CMT: ,34", E1),
            Urc::Cmt {
                alpha: None,
                length: 34,
                pdu: E1.into()
            }
        );
        assert_eq!(
            Urc::parse_message("+CMT: \"Mum\",34", E1),
            Urc::Cmt {
                alpha: Some("Mum".into()),
                length: 34,
                pdu: E1.into()
            }
        );
        // ZTE's leading comma and the standard form.
        for h in ["+CDS: ,25", "+CDS: 25"] {
            assert_eq!(
                Urc::parse_message(h, E6),
                Urc::Cds {
                    length: 25,
                    pdu: E6.into()
                }
            );
        }
        assert_eq!(
            Urc::parse_message("+CMT: \"+27748577604\",,\"13/01/28,14:51:42+08\"", "Hi"),
            Urc::CmtText {
                oa: "+27748577604".into(),
                alpha: None,
                scts: Some("13/01/28,14:51:42+08".into()),
                text: "Hi".into()
            }
        );
        assert_eq!(
            Urc::parse_message("+CBM: 88", "0011"),
            Urc::Cbm {
                length: 88,
                pdu: "0011".into()
            }
        );
        assert_eq!(
            Urc::parse_message("+XYZ: 1", "00"),
            Urc::Unknown("+XYZ: 1\r\n00".into())
        );
        assert_eq!(
            Urc::parse(
                "+CDS: 6,20,\"0870000000\",129,\"13/04/29,19:58:00+04\",\"13/04/29,19:59:00+04\",0"
            ),
            Urc::CdsText {
                fo: 6,
                mr: 20,
                ra: Some("0870000000".into()),
                scts: Some("13/04/29,19:58:00+04".into()),
                dt: Some("13/04/29,19:59:00+04".into()),
                st: 0
            }
        );
    }

    #[test]
    fn ussd_urcs() {
        assert_eq!(
            Urc::parse("+CUSD: 0,\"Balance: 10.00 EUR\",15"),
            Urc::Cusd(Cusd {
                m: 0,
                text: Some("Balance: 10.00 EUR".into()),
                dcs: Some(15)
            })
        );
        assert_eq!(
            Urc::parse("+CUSD: 4"),
            Urc::Cusd(Cusd {
                m: 4,
                text: None,
                dcs: None
            })
        );
        match Urc::parse("+CUSD: 1,\"1. Balance\r\n2. Bundles\",15") {
            Urc::Cusd(c) => assert_eq!(c.text.as_deref(), Some("1. Balance\r\n2. Bundles")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registration_urcs() {
        match Urc::parse("+CREG: 1") {
            Urc::Creg(r) => assert_eq!((r.n, r.stat), (None, RegStatus::Home)),
            other => panic!("{other:?}"),
        }
        match Urc::parse("+CREG: 1,1A2B,00C3F1E2") {
            Urc::Creg(r) => {
                assert_eq!(r.lac.as_deref(), Some("1A2B"));
                assert_eq!(r.ci.as_deref(), Some("00C3F1E2"));
            }
            other => panic!("{other:?}"),
        }
        match Urc::parse("+CGREG: 5,\"1A2B\",\"00C3F1E2\",2") {
            Urc::Cgreg(r) => assert_eq!((r.stat, r.act), (RegStatus::Roaming, Some(2))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(Urc::parse("+CEREG: 1"), Urc::Cereg(_)));
    }

    #[test]
    fn call_urcs() {
        assert_eq!(Urc::parse("RING"), Urc::Ring);
        assert_eq!(
            Urc::parse("+CRING: VOICE"),
            Urc::Cring {
                call_type: "VOICE".into()
            }
        );
        assert_eq!(
            Urc::parse("+CLIP: \"+4917612345678\",145,,,,0"),
            Urc::Clip {
                number: "+4917612345678".into(),
                toa: Some(145),
                alpha: None,
                validity: Some(0)
            }
        );
        assert_eq!(
            Urc::parse("+CLIP: \"\",128,,,,1"),
            Urc::Clip {
                number: String::new(),
                toa: Some(128),
                alpha: None,
                validity: Some(1)
            }
        );
        // The answer to AT+CLIP? is not a URC.
        assert_eq!(Urc::parse("+CLIP: 0,1"), Urc::Unknown("+CLIP: 0,1".into()));
        assert_eq!(Urc::parse("HANGUP: 1"), Urc::Hangup(Some(1)));
        assert_eq!(Urc::parse("HANGUP"), Urc::Hangup(None));
    }

    #[test]
    fn zte_urcs() {
        match Urc::parse("+ZPASR: \"UMTS\"") {
            Urc::Zpasr(z) => assert_eq!((z.tech(), z.domain), (AccessTech::Umts, None)),
            other => panic!("{other:?}"),
        }
        match Urc::parse("+ZPASR: \"HSDPA\",\"CS_PS\"") {
            Urc::Zpasr(z) => assert_eq!(z.domain.as_deref(), Some("CS_PS")),
            other => panic!("{other:?}"),
        }
        assert_eq!(Urc::parse("+ZUSIMR:2"), Urc::Zusimr(2));
        assert_eq!(Urc::parse("+ZUSIMR: 2"), Urc::Zusimr(2));
        assert_eq!(
            Urc::parse("+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\""),
            Urc::Zdonr {
                operator: "METEOR".into(),
                mcc: Some(272),
                mnc: Some(3),
                domain: Some("CS_ONLY".into()),
                roaming: Some(false)
            }
        );
        assert_eq!(Urc::parse("+ZEND"), Urc::Zend);
        assert_eq!(
            Urc::parse("+ZPSTM: 1,\"Menu\""),
            Urc::Zpstm("1,\"Menu\"".into())
        );
        assert_eq!(
            Urc::parse("+CTZV: +8"),
            Urc::Ctzv(TimeZoneReport {
                raw: "+8".into(),
                quarters: Some(8)
            })
        );
        assert_eq!(
            Urc::parse("+CTZV: 13/05/16,09:38:52-12"),
            Urc::Ctzv(TimeZoneReport {
                raw: "13/05/16,09:38:52-12".into(),
                quarters: Some(-12)
            })
        );
        match Urc::parse("+CTZV: garbage") {
            Urc::Ctzv(t) => assert_eq!(t.quarters, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_lines_are_values() {
        for l in [
            "+ZPAS: \"UMTS\",\"CS_PS\"",
            "+CSQ: 18,99",
            "^BOOT:1,2",
            "hello",
            "",
            "+",
        ] {
            assert_eq!(Urc::parse(l), Urc::Unknown(l.to_string()), "{l:?}");
        }
        assert_eq!(Urc::parse("+ZUSIMR:x"), Urc::Unknown("+ZUSIMR:x".into()));
    }

    #[test]
    fn unsolicited_predicate() {
        for l in [
            "+CMTI: \"SM\",3",
            "+CUSD: 0,\"x\",15",
            "+CREG: 1",
            "+CREG: 1,1A2B,00C3F1E2",
            "RING",
            "+CRING: VOICE",
            "+CLIP: \"+4917612345678\",145,,,,0",
            "+ZPASR: \"UMTS\"",
            "+ZUSIMR:2",
            "+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"",
            "+ZEND",
            "+ZPSTM: 1",
            "+CTZV: 8",
            "HANGUP: 1",
            "+CMT: ,34",
            "^RSSI:12",
        ] {
            assert!(is_unsolicited(l), "{l:?}");
        }
        for l in [
            "+CREG: 0,1",
            "+CREG: 2,1,1A2B,00C3F1E2",
            "+CSQ: 18,99",
            "+CLIP: 0,1",
            "351234567890123",
            "+CMGL: 0,1,,34",
            "+ZPAS: \"UMTS\",\"CS_PS\"",
        ] {
            assert!(!is_unsolicited(l), "{l:?}");
        }
    }

    #[test]
    fn classify_while_a_command_is_pending() {
        use LineKind::*;
        // oFono's ZTE case: an unsolicited +CREG inside the AT+CREG? reply.
        assert_eq!(classify("+CREG: 1", Some("+CREG")), Unsolicited);
        assert_eq!(classify("+CREG: 0,1", Some("+CREG")), Response);
        // A URC during another command.
        assert_eq!(classify("+CMTI: \"SM\",3", Some("+CSQ")), Unsolicited);
        assert_eq!(classify("+CSQ: 18,99", Some("+CSQ")), Response);
        // Bare text answers (AT+CGSN), with a URC in the middle.
        assert_eq!(classify("351234567890123", None), Response);
        assert_eq!(classify("+ZPASR: \"UMTS\"", None), Unsolicited);
        // A query for the USSD mode answers with its own +CUSD line.
        assert_eq!(classify("+CUSD: 1", Some("+CUSD")), Response);
        assert_eq!(classify("+CUSD: 0,\"x\",15", None), Unsolicited);
    }

    #[test]
    fn urcs_from_framed_bytes() {
        let mut f = Framer::default();
        f.push(
            format!(
                "\r\n+CMTI: \"SM\",3\r\n\r\n+CDS: ,25\r\n{E6}\r\n\r\n+CUSD: 1,\"a\r\nb\",15\r\n\r\nOK\r\n"
            )
            .as_bytes(),
        );
        let got: Vec<Option<Urc>> = f
            .items()
            .map(|r| Urc::from_item(&r.expect("item")))
            .collect();
        assert_eq!(
            got,
            vec![
                Some(Urc::Cmti {
                    mem: "SM".into(),
                    index: 3
                }),
                Some(Urc::Cds {
                    length: 25,
                    pdu: E6.into()
                }),
                Some(Urc::Cusd(Cusd {
                    m: 1,
                    text: Some("a\r\nb".into()),
                    dcs: Some(15)
                })),
                None,
            ]
        );
        assert_eq!(Urc::from_item(&Item::Prompt), None);
    }
}
