//! Final result codes (V.250 §5.7, 27.007 §9.2, 27.005 §3.2.5).
//!
//! A command's answer ends with exactly one final result code. Verbose (`ATV1`) codes are
//! whole lines (`OK`, `+CME ERROR: 14`); numeric (`ATV0`) codes are one digit followed by
//! `\r` and are mapped here by [`Final::from_v0_digit`]. `+CME ERROR`/`+CMS ERROR` carry a
//! number with `AT+CMEE=1` and a text with `AT+CMEE=2` (`+CME ERROR: SIM busy`; a ZTE MF636
//! `AT&V` showed `+CMEE: 2`): both are kept as they came, and [`CmeCode::number`] maps the
//! standard texts back to numbers so classification works for either form.

use std::fmt;

/// A final result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// `OK` (V0 `0`).
    Ok,
    /// `ERROR` (V0 `4`), also what `AT+CMEE=0` turns every error into.
    Error,
    /// `+CME ERROR: <err>` (27.007, ME/SIM/network errors).
    CmeError(CmeCode),
    /// `+CMS ERROR: <err>` (27.005, SMS commands).
    CmsError(CmsCode),
    /// `NO CARRIER` (V0 `3`).
    NoCarrier,
    /// `CONNECT [<text>]` (V0 `1`); the text is the rate or bearer, if any.
    Connect(Option<String>),
    /// `BUSY` (V0 `7`).
    Busy,
    /// `NO ANSWER` (V0 `8`).
    NoAnswer,
    /// `NO DIALTONE` (V0 `6`).
    NoDialtone,
}

/// What a V0 digit means: a final code or the `RING` URC (V0 `2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V0Code {
    /// A final result code.
    Final(Final),
    /// `2` = `RING`, which is unsolicited, not final.
    Ring,
}

impl Final {
    /// Parse a verbose final result code line (`OK`, `+CME ERROR: 10`, `CONNECT 7200000`…).
    /// Returns `None` for anything else, including `RING` (a URC).
    pub fn parse(line: &str) -> Option<Final> {
        let l = line.trim_end();
        Some(match l {
            "OK" => Final::Ok,
            "ERROR" => Final::Error,
            "NO CARRIER" => Final::NoCarrier,
            "BUSY" => Final::Busy,
            "NO ANSWER" => Final::NoAnswer,
            // V.250 spells it NO DIALTONE; some firmware prints NO DIAL TONE.
            "NO DIALTONE" | "NO DIAL TONE" => Final::NoDialtone,
            "CONNECT" => Final::Connect(None),
            _ => {
                if let Some(rest) = l.strip_prefix("CONNECT ") {
                    let rest = rest.trim();
                    return Some(Final::Connect((!rest.is_empty()).then(|| rest.to_string())));
                }
                if let Some(rest) = super::fields::payload(l, "+CME ERROR") {
                    return Some(Final::CmeError(CmeCode::parse(rest)));
                }
                if let Some(rest) = super::fields::payload(l, "+CMS ERROR") {
                    return Some(Final::CmsError(CmsCode::parse(rest)));
                }
                return None;
            }
        })
    }

    /// A numeric (`ATV0`) result digit: 0 OK, 1 CONNECT, 2 RING, 3 NO CARRIER, 4 ERROR,
    /// 6 NO DIALTONE, 7 BUSY, 8 NO ANSWER (V.250 Table 1). `None` for other bytes.
    pub fn from_v0_digit(d: u8) -> Option<V0Code> {
        Some(V0Code::Final(match d {
            b'0' => Final::Ok,
            b'1' => Final::Connect(None),
            b'2' => return Some(V0Code::Ring),
            b'3' => Final::NoCarrier,
            b'4' => Final::Error,
            b'6' => Final::NoDialtone,
            b'7' => Final::Busy,
            b'8' => Final::NoAnswer,
            _ => return None,
        }))
    }

    /// `true` for `OK` and `CONNECT` (the command succeeded).
    pub fn is_ok(&self) -> bool {
        matches!(self, Final::Ok | Final::Connect(_))
    }

    /// `+CME ERROR: 14` / `+CMS ERROR: 314` (or the `SIM busy` text): the SIM is still
    /// initialising, typically for some seconds after `AT+CPIN` (MF667.md §5.3).
    pub fn is_sim_busy(&self) -> bool {
        self.cme_number() == Some(14) || self.cms_number() == Some(314)
    }

    /// The SIM wants its PIN (`+CME ERROR: 11` / `+CMS ERROR: 311`).
    pub fn is_sim_pin_required(&self) -> bool {
        self.cme_number() == Some(11) || self.cms_number() == Some(311)
    }

    /// The SIM wants its PUK (`+CME ERROR: 12` / `+CMS ERROR: 316`).
    pub fn is_sim_puk_required(&self) -> bool {
        self.cme_number() == Some(12) || self.cms_number() == Some(316)
    }

    /// No SIM (`+CME ERROR: 10` / `+CMS ERROR: 310`).
    pub fn is_sim_not_inserted(&self) -> bool {
        self.cme_number() == Some(10) || self.cms_number() == Some(310)
    }

    /// Message storage is full (`+CMS ERROR: 322`, `+CME ERROR: 20`, TP-FCS 208/211).
    pub fn is_memory_full(&self) -> bool {
        self.cme_number() == Some(20) || matches!(self.cms_number(), Some(322 | 208 | 211))
    }

    /// No message at that index (`+CMS ERROR: 321`, `+CME ERROR: 21`/`22`).
    pub fn is_invalid_index(&self) -> bool {
        matches!(self.cme_number(), Some(21 | 22)) || self.cms_number() == Some(321)
    }

    /// An error worth retrying later unchanged: SIM busy, no network service, network
    /// timeout, network congestion or temporary failure, SC busy, SIM toolkit busy.
    pub fn is_transient(&self) -> bool {
        match self {
            Final::CmeError(c) => c.is_transient(),
            Final::CmsError(c) => c.is_transient(),
            _ => false,
        }
    }

    /// The `+CME ERROR` number (from the number or the standard text), if this is one.
    pub fn cme_number(&self) -> Option<u16> {
        match self {
            Final::CmeError(c) => c.number(),
            _ => None,
        }
    }

    /// The `+CMS ERROR` number (from the number or the standard text), if this is one.
    pub fn cms_number(&self) -> Option<u16> {
        match self {
            Final::CmsError(c) => c.number(),
            _ => None,
        }
    }

    /// A human description: the code as the modem printed it, plus the meaning of a
    /// numeric CME/CMS code (`+CME ERROR: 14 (SIM busy)`).
    pub fn describe(&self) -> String {
        // A text code (`AT+CMEE=2`) already says what it means.
        let meaning = match self {
            Final::CmeError(c @ CmeCode::Number(_)) => c.meaning(),
            Final::CmsError(c @ CmsCode::Number(_)) => c.meaning(),
            _ => None,
        };
        match meaning {
            Some(m) => format!("{self} ({m})"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for Final {
    /// The verbose form, as a modem prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Final::Ok => f.write_str("OK"),
            Final::Error => f.write_str("ERROR"),
            Final::CmeError(c) => write!(f, "+CME ERROR: {c}"),
            Final::CmsError(c) => write!(f, "+CMS ERROR: {c}"),
            Final::NoCarrier => f.write_str("NO CARRIER"),
            Final::Connect(None) => f.write_str("CONNECT"),
            Final::Connect(Some(t)) => write!(f, "CONNECT {t}"),
            Final::Busy => f.write_str("BUSY"),
            Final::NoAnswer => f.write_str("NO ANSWER"),
            Final::NoDialtone => f.write_str("NO DIALTONE"),
        }
    }
}

/// 27.007 §9.2 `+CME ERROR` codes with their standard (`AT+CMEE=2`) texts.
const CME_TABLE: &[(u16, &str)] = &[
    (0, "phone failure"),
    (1, "no connection to phone"),
    (2, "phone-adaptor link reserved"),
    (3, "operation not allowed"),
    (4, "operation not supported"),
    (5, "PH-SIM PIN required"),
    (6, "PH-FSIM PIN required"),
    (7, "PH-FSIM PUK required"),
    (10, "SIM not inserted"),
    (11, "SIM PIN required"),
    (12, "SIM PUK required"),
    (13, "SIM failure"),
    (14, "SIM busy"),
    (15, "SIM wrong"),
    (16, "incorrect password"),
    (17, "SIM PIN2 required"),
    (18, "SIM PUK2 required"),
    (20, "memory full"),
    (21, "invalid index"),
    (22, "not found"),
    (23, "memory failure"),
    (24, "text string too long"),
    (25, "invalid characters in text string"),
    (26, "dial string too long"),
    (27, "invalid characters in dial string"),
    (30, "no network service"),
    (31, "network timeout"),
    (32, "network not allowed - emergency calls only"),
    (40, "network personalization PIN required"),
    (41, "network personalization PUK required"),
    (42, "network subset personalization PIN required"),
    (43, "network subset personalization PUK required"),
    (44, "service provider personalization PIN required"),
    (45, "service provider personalization PUK required"),
    (46, "corporate personalization PIN required"),
    (47, "corporate personalization PUK required"),
    (50, "incorrect parameters"),
    (100, "unknown"),
    (103, "illegal MS"),
    (106, "illegal ME"),
    (107, "GPRS services not allowed"),
    (111, "PLMN not allowed"),
    (112, "location area not allowed"),
    (113, "roaming not allowed in this location area"),
    (132, "service option not supported"),
    (133, "requested service option not subscribed"),
    (134, "service option temporarily out of order"),
    (148, "unspecified GPRS error"),
    (149, "PDP authentication failure"),
    (150, "invalid mobile class"),
];

/// 27.005 §3.2.5 `+CMS ERROR` codes: 0–127 are 24.011 RP causes, 128–255 23.040 TP-FCS
/// values, 300–500 ME/TA errors.
const CMS_TABLE: &[(u16, &str)] = &[
    (1, "unassigned (unallocated) number"),
    (8, "operator determined barring"),
    (10, "call barred"),
    (21, "short message transfer rejected"),
    (27, "destination out of service"),
    (28, "unidentified subscriber"),
    (29, "facility rejected"),
    (30, "unknown subscriber"),
    (38, "network out of order"),
    (41, "temporary failure"),
    (42, "congestion"),
    (47, "resources unavailable, unspecified"),
    (50, "requested facility not subscribed"),
    (69, "requested facility not implemented"),
    (81, "invalid short message transfer reference value"),
    (95, "invalid message, unspecified"),
    (96, "invalid mandatory information"),
    (97, "message type non-existent or not implemented"),
    (
        98,
        "message not compatible with short message protocol state",
    ),
    (99, "information element non-existent or not implemented"),
    (111, "protocol error, unspecified"),
    (127, "interworking, unspecified"),
    (128, "telematic interworking not supported"),
    (129, "short message type 0 not supported"),
    (130, "cannot replace short message"),
    (143, "unspecified TP-PID error"),
    (144, "data coding scheme (alphabet) not supported"),
    (145, "message class not supported"),
    (159, "unspecified TP-DCS error"),
    (160, "command cannot be actioned"),
    (161, "command unsupported"),
    (175, "unspecified TP-Command error"),
    (176, "TPDU not supported"),
    (192, "SC busy"),
    (193, "no SC subscription"),
    (194, "SC system failure"),
    (195, "invalid SME address"),
    (196, "destination SME barred"),
    (197, "SM rejected-duplicate SM"),
    (198, "TP-VPF not supported"),
    (199, "TP-VP not supported"),
    (208, "SIM SMS storage full"),
    (209, "no SMS storage capability in SIM"),
    (210, "error in MS"),
    (211, "memory capacity exceeded"),
    (212, "SIM application toolkit busy"),
    (213, "SIM data download error"),
    (255, "unspecified error cause"),
    (300, "ME failure"),
    (301, "SMS service of ME reserved"),
    (302, "operation not allowed"),
    (303, "operation not supported"),
    (304, "invalid PDU mode parameter"),
    (305, "invalid text mode parameter"),
    (310, "SIM not inserted"),
    (311, "SIM PIN required"),
    (312, "PH-SIM PIN required"),
    (313, "SIM failure"),
    (314, "SIM busy"),
    (315, "SIM wrong"),
    (316, "SIM PUK required"),
    (317, "SIM PIN2 required"),
    (318, "SIM PUK2 required"),
    (320, "memory failure"),
    (321, "invalid memory index"),
    (322, "memory full"),
    (330, "SMSC address unknown"),
    (331, "no network service"),
    (332, "network timeout"),
    (340, "no +CNMA acknowledgement expected"),
    (500, "unknown error"),
];

fn lookup(table: &[(u16, &'static str)], n: u16) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

fn reverse(table: &[(u16, &str)], text: &str) -> Option<u16> {
    let t = text.trim();
    table
        .iter()
        .find(|(_, v)| v.eq_ignore_ascii_case(t))
        .map(|(k, _)| *k)
}

macro_rules! error_code {
    ($(#[$doc:meta])* $name:ident, $table:ident, transient: [$($t:literal),*]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            /// The numeric form (`AT+CMEE=1`).
            Number(u16),
            /// The text form (`AT+CMEE=2`), as printed.
            Text(String),
        }

        impl $name {
            /// Parse the part after `ERROR:`: digits give [`Self::Number`], anything else
            /// (trimmed, quotes removed) [`Self::Text`].
            pub fn parse(s: &str) -> Self {
                let t = s.trim().trim_matches('"').trim();
                match t.parse::<u16>() {
                    Ok(n) if !t.starts_with('+') => $name::Number(n),
                    _ => $name::Text(t.to_string()),
                }
            }

            /// The number: as sent, or looked up from a standard text (`SIM busy` → 14).
            pub fn number(&self) -> Option<u16> {
                match self {
                    $name::Number(n) => Some(*n),
                    $name::Text(t) => reverse($table, t),
                }
            }

            /// The standard meaning of the code, if it is known.
            pub fn meaning(&self) -> Option<&'static str> {
                self.number().and_then(|n| lookup($table, n))
            }

            /// Worth retrying later unchanged (see [`Final::is_transient`]).
            pub fn is_transient(&self) -> bool {
                matches!(self.number(), Some($($t)|*))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Number(n) => write!(f, "{n}"),
                    $name::Text(t) => f.write_str(t),
                }
            }
        }
    };
}

error_code!(
    /// A `+CME ERROR` code (27.007 §9.2).
    CmeCode, CME_TABLE, transient: [14, 30, 31]
);
error_code!(
    /// A `+CMS ERROR` code (27.005 §3.2.5).
    CmsCode, CMS_TABLE, transient: [41, 42, 47, 192, 212, 314, 331, 332]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_parses_verbose_finals() {
        let table: &[(&str, Final)] = &[
            ("OK", Final::Ok),
            ("ERROR", Final::Error),
            ("NO CARRIER", Final::NoCarrier),
            ("BUSY", Final::Busy),
            ("NO ANSWER", Final::NoAnswer),
            ("NO DIALTONE", Final::NoDialtone),
            ("NO DIAL TONE", Final::NoDialtone),
            ("CONNECT", Final::Connect(None)),
            ("CONNECT 7200000", Final::Connect(Some("7200000".into()))),
            ("+CME ERROR: 10", Final::CmeError(CmeCode::Number(10))),
            (
                "+CME ERROR: SIM busy",
                Final::CmeError(CmeCode::Text("SIM busy".into())),
            ),
            ("+CMS ERROR: 322", Final::CmsError(CmsCode::Number(322))),
            ("+CMS ERROR:304", Final::CmsError(CmsCode::Number(304))),
            ("OK  ", Final::Ok),
        ];
        for (line, want) in table {
            assert_eq!(Final::parse(line).as_ref(), Some(want), "{line:?}");
        }
        for not_final in ["RING", "+CSQ: 18,99", "OKAY", "", "CONNECTED", "+CME ERROR"] {
            assert_eq!(Final::parse(not_final), None, "{not_final:?}");
        }
    }

    #[test]
    fn v0_digits_follow_v250_table_1() {
        assert_eq!(Final::from_v0_digit(b'0'), Some(V0Code::Final(Final::Ok)));
        assert_eq!(
            Final::from_v0_digit(b'1'),
            Some(V0Code::Final(Final::Connect(None)))
        );
        assert_eq!(Final::from_v0_digit(b'2'), Some(V0Code::Ring));
        assert_eq!(
            Final::from_v0_digit(b'3'),
            Some(V0Code::Final(Final::NoCarrier))
        );
        assert_eq!(
            Final::from_v0_digit(b'4'),
            Some(V0Code::Final(Final::Error))
        );
        assert_eq!(Final::from_v0_digit(b'5'), None);
        assert_eq!(
            Final::from_v0_digit(b'6'),
            Some(V0Code::Final(Final::NoDialtone))
        );
        assert_eq!(Final::from_v0_digit(b'7'), Some(V0Code::Final(Final::Busy)));
        assert_eq!(
            Final::from_v0_digit(b'8'),
            Some(V0Code::Final(Final::NoAnswer))
        );
        assert_eq!(Final::from_v0_digit(b'9'), None);
    }

    #[test]
    fn mf667_error_numbers_have_their_meanings() {
        // MF667.md §1, CME list.
        let cme = [
            (3, "operation not allowed"),
            (4, "operation not supported"),
            (10, "SIM not inserted"),
            (11, "SIM PIN required"),
            (12, "SIM PUK required"),
            (13, "SIM failure"),
            (14, "SIM busy"),
            (16, "incorrect password"),
            (20, "memory full"),
            (21, "invalid index"),
            (22, "not found"),
            (30, "no network service"),
            (31, "network timeout"),
            (100, "unknown"),
        ];
        for (n, m) in cme {
            assert_eq!(CmeCode::Number(n).meaning(), Some(m));
        }
        // MF667.md §1, CMS list.
        let cms = [
            (300, "ME failure"),
            (302, "operation not allowed"),
            (303, "operation not supported"),
            (304, "invalid PDU mode parameter"),
            (305, "invalid text mode parameter"),
            (310, "SIM not inserted"),
            (311, "SIM PIN required"),
            (314, "SIM busy"),
            (320, "memory failure"),
            (321, "invalid memory index"),
            (322, "memory full"),
            (330, "SMSC address unknown"),
            (331, "no network service"),
            (332, "network timeout"),
            (340, "no +CNMA acknowledgement expected"),
            (500, "unknown error"),
        ];
        for (n, m) in cms {
            assert_eq!(CmsCode::Number(n).meaning(), Some(m));
        }
        assert_eq!(CmeCode::Number(9999).meaning(), None);
    }

    #[test]
    fn text_codes_classify_like_numbers() {
        let busy = Final::parse("+CME ERROR: SIM busy").expect("final");
        assert!(busy.is_sim_busy());
        assert!(busy.is_transient());
        assert_eq!(busy.cme_number(), Some(14));
        let pin = Final::parse("+CME ERROR: sim pin required").expect("final");
        assert!(pin.is_sim_pin_required());
        assert!(!pin.is_transient());
        let odd = Final::parse("+CME ERROR: something vendor specific").expect("final");
        assert_eq!(odd.cme_number(), None);
        assert!(!odd.is_transient());
    }

    #[test]
    fn classification_helpers() {
        let f = |s: &str| Final::parse(s).expect("final");
        assert!(f("+CMS ERROR: 314").is_sim_busy());
        assert!(f("+CMS ERROR: 311").is_sim_pin_required());
        assert!(f("+CME ERROR: 12").is_sim_puk_required());
        assert!(f("+CME ERROR: 10").is_sim_not_inserted());
        assert!(f("+CMS ERROR: 322").is_memory_full());
        assert!(f("+CMS ERROR: 321").is_invalid_index());
        assert!(f("+CMS ERROR: 332").is_transient());
        assert!(f("+CME ERROR: 31").is_transient());
        assert!(!f("+CMS ERROR: 304").is_transient());
        assert!(!f("ERROR").is_transient());
        assert!(f("OK").is_ok());
        assert!(f("CONNECT 9600").is_ok());
        assert!(!f("NO CARRIER").is_ok());
    }

    #[test]
    fn display_round_trips_and_describe_adds_meaning() {
        for s in [
            "OK",
            "+CME ERROR: 14",
            "+CMS ERROR: SIM busy",
            "CONNECT 9600",
            "NO DIALTONE",
        ] {
            assert_eq!(Final::parse(s).expect("final").to_string(), s);
        }
        assert_eq!(
            Final::parse("+CMS ERROR: 322").expect("final").describe(),
            "+CMS ERROR: 322 (memory full)"
        );
        assert_eq!(Final::Error.describe(), "ERROR");
    }
}
