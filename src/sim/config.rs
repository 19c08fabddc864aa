//! What the simulated stick is: identity, SIM, stores, network, USSD table and timings.
//!
//! [`SimConfig::default`] is a realistic MF667 (MF667.md): SIM ready (no PIN), registered
//! on "o2 - de" over UMTS with `+CSQ: 18,99`, SM store with 20 slots, the if02 quirk on.

use std::time::Duration;

/// Identity strings the stick reports (`+CGMI`, `+CGMM`, `+CGMR`, `+CGSN`, `+CIMI`, `ATI`)
/// and its USB descriptors (the fake sysfs and the by-id link name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `AT+CGMI`. MF667.md §0: `ZTE CORPORATION` (older firmware `ZTE INCORPORATED`).
    pub manufacturer: String,
    /// `AT+CGMM`.
    pub model: String,
    /// `AT+CGMR` (firmware revision; the default is a plausible ZTE string, unverified).
    pub revision: String,
    /// `AT+CGSN` (IMEI).
    pub imei: String,
    /// `AT+CIMI` (IMSI; needs the SIM unlocked).
    pub imsi: String,
    /// USB `idVendor` (19d2 = ZTE).
    pub usb_vendor: u16,
    /// USB `idProduct`: 0016 is the three-port mode MF667.md §0 describes.
    pub usb_product: u16,
    /// USB `manufacturer` descriptor (udev turns `,` into `_` in the by-id name).
    pub usb_manufacturer: String,
    /// USB `product` descriptor.
    pub usb_product_name: String,
    /// USB `serial` descriptor (part of the by-id link name).
    pub usb_serial: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            manufacturer: "ZTE CORPORATION".into(),
            model: "MF667".into(),
            revision: "BD_MF667V1.0.0B03".into(),
            imei: "351234567890123".into(),
            imsi: "262071234567890".into(),
            usb_vendor: 0x19d2,
            usb_product: 0x0016,
            usb_manufacturer: "ZTE,Incorporated".into(),
            usb_product_name: "ZTE WCDMA Technologies MSM".into(),
            usb_serial: "MF6670ZTED010000".into(),
        }
    }
}

/// Number of slots in each message store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacities {
    /// "SM", the SIM (20 by default: a small SIM fills up quickly, as in the field).
    pub sm: u16,
    /// "ME", the stick's own flash (MF626: 100).
    pub me: u16,
    /// "SR", status reports (MF626: 100).
    pub sr: u16,
}

impl Default for Capacities {
    fn default() -> Self {
        Capacities {
            sm: 20,
            me: 100,
            sr: 100,
        }
    }
}

/// The network the stick registers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Long operator name (`+COPS: 0,0,"o2 - de",2`).
    pub operator_long: String,
    /// Short operator name (`+COPS` format 1).
    pub operator_short: String,
    /// MCC+MNC (`+COPS` format 2).
    pub operator_numeric: String,
    /// Location area code (printed as 4 hex digits, unquoted on ZTE).
    pub lac: u16,
    /// Cell id (UMTS: up to 28 bits, printed as 8 hex digits).
    pub ci: u32,
    /// Access technology for `+COPS`/`+CREG` n=2: 0 GSM, 2 UTRAN.
    pub act: u8,
    /// `+ZPAS` network string when registered (`UMTS`, `HSDPA`, `GSM`, …).
    pub zpas: String,
    /// `+ZPAS` domain string when registered (`CS_PS`, `CS_ONLY`, …).
    pub domain: String,
    /// Registered as roaming (`+CREG` stat 5) rather than home (1).
    pub roaming: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            operator_long: "o2 - de".into(),
            operator_short: "o2 - de".into(),
            operator_numeric: "26207".into(),
            lac: 0x1A2B,
            ci: 0x00C3_F1E2,
            act: 2,
            zpas: "UMTS".into(),
            domain: "CS_PS".into(),
            roaming: false,
        }
    }
}

/// How a USSD reply string is written in `+CUSD: <m>,"<str>",<dcs>` (MF667.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UssdDcs {
    /// DCS 15, plain text in the `+CSCS` charset — what a ZTE stick does.
    #[default]
    Plain,
    /// DCS 72, hex of UTF-16BE (the user's "long hex ,72").
    Ucs2,
    /// DCS 68, hex of 8-bit octets.
    EightBit,
    /// DCS 15 as hex of packed GSM-7 septets (the Huawei convention).
    Packed,
}

impl UssdDcs {
    /// The DCS number written after the string.
    pub fn number(self) -> u8 {
        match self {
            UssdDcs::Plain | UssdDcs::Packed => 15,
            UssdDcs::Ucs2 => 72,
            UssdDcs::EightBit => 68,
        }
    }

    /// Parse `15`, `72`, `68` or `packed` (as the CLI and control socket spell it).
    pub fn parse(s: &str) -> Option<UssdDcs> {
        match s.trim().to_ascii_lowercase().as_str() {
            "15" | "plain" | "gsm" => Some(UssdDcs::Plain),
            "72" | "ucs2" => Some(UssdDcs::Ucs2),
            "68" | "8bit" => Some(UssdDcs::EightBit),
            "packed" => Some(UssdDcs::Packed),
            _ => None,
        }
    }

    /// The spelling [`UssdDcs::parse`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            UssdDcs::Plain => "15",
            UssdDcs::Ucs2 => "72",
            UssdDcs::EightBit => "68",
            UssdDcs::Packed => "packed",
        }
    }
}

/// The network's answer to one USSD code (or to one menu choice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdReplySpec {
    /// The reply text (may contain line breaks; they are sent raw inside the quotes).
    pub text: String,
    /// How the string is encoded on the wire.
    pub dcs: UssdDcs,
    /// `+CUSD` `<m>`: 0 done, 1 the network waits for an answer (see `menu`), 2 ended by
    /// the network.
    pub state: u8,
    /// Delay before the `+CUSD` URC; `None` = [`SimConfig::ussd_delay`].
    pub delay: Option<Duration>,
    /// Never answer (the engine's USSD timeout can be tested).
    pub no_reply: bool,
    /// With `state == 1`: the answers the menu accepts and what each one returns. Any
    /// other answer gets `+CUSD: 4` (operation not supported).
    pub menu: Vec<(String, UssdReplySpec)>,
}

impl UssdReplySpec {
    /// A final (state 0) plain-text reply.
    pub fn text(text: impl Into<String>) -> Self {
        UssdReplySpec {
            text: text.into(),
            dcs: UssdDcs::Plain,
            state: 0,
            delay: None,
            no_reply: false,
            menu: Vec::new(),
        }
    }

    /// A reply that never comes.
    pub fn never() -> Self {
        UssdReplySpec {
            no_reply: true,
            ..UssdReplySpec::text("")
        }
    }

    /// The same reply encoded with `dcs`.
    pub fn with_dcs(mut self, dcs: UssdDcs) -> Self {
        self.dcs = dcs;
        self
    }

    /// The same reply with `+CUSD` state `m`.
    pub fn with_state(mut self, state: u8) -> Self {
        self.state = state;
        self
    }

    /// The same reply after `delay` instead of the default.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// A menu (state 1) whose `answer` leads to `reply`.
    pub fn with_option(mut self, answer: impl Into<String>, reply: UssdReplySpec) -> Self {
        self.state = 1;
        self.menu.push((answer.into(), reply));
        self
    }
}

/// The default USSD table: `*100#` balance, `*101#` a two-step menu.
pub fn default_ussd_table() -> Vec<(String, UssdReplySpec)> {
    vec![
        (
            "*100#".into(),
            UssdReplySpec::text("Balance: 10.00 EUR, valid until 31.12.2026"),
        ),
        (
            "*101#".into(),
            UssdReplySpec::text("1 Balance\n2 Bundles")
                .with_option("1", UssdReplySpec::text("Balance: 10.00 EUR"))
                .with_option("2", UssdReplySpec::text("Bundles: 1 GB data, 512 MB left")),
        ),
    ]
}

/// Everything the simulated stick is and does, fixed at [`crate::sim::SimHandle::spawn`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Identity strings and USB descriptors.
    pub identity: Identity,
    /// Whether a SIM is inserted (without one: `+CME ERROR: 10` / `+CMS ERROR: 310`).
    pub sim_present: bool,
    /// The SIM PIN; `None` = no PIN lock (`+CPIN: READY` at once).
    pub pin: Option<String>,
    /// The PUK that unblocks the SIM after three wrong PINs.
    pub puk: String,
    /// How long the SIM stays busy (`+CME ERROR: 14`, `+CMS ERROR: 314`) after a correct
    /// PIN (MF667.md §5.3: "some seconds").
    pub sim_busy: Duration,
    /// Message store sizes.
    pub capacities: Capacities,
    /// The SMSC address (`AT+CSCA?`) and the SMSC in injected DELIVER PDUs.
    pub smsc: String,
    /// The network.
    pub network: NetworkConfig,
    /// Signal at power-on (`+CSQ` rssi, 0–31, 99 unknown).
    pub csq: u8,
    /// USSD codes and the network's answers.
    pub ussd: Vec<(String, UssdReplySpec)>,
    /// Delay of a USSD answer (MF667.md §2.3: "a few seconds later").
    pub ussd_delay: Duration,
    /// Time from "radio on" (`AT+ZOPRT=5`, `AT+CFUN=1`, network back, replug) to
    /// registration (`+CREG: 1`).
    pub register_delay: Duration,
    /// How long `AT+COPS=?` takes (MF667.md: 10–60 s).
    pub cops_scan_delay: Duration,
    /// Send status reports for SUBMITs with TP-SRR set.
    pub status_reports: bool,
    /// Delay between `+CMGS` and the status report.
    pub status_report_delay: Duration,
    /// How soon the network retries a message it held while the store was full, once a
    /// slot is free.
    pub redelivery_delay: Duration,
    /// How long the stick stays away when the if02 quirk (or `unplug` without a time) drops it.
    pub replug_delay: Duration,
    /// MF667.md §5.1: USSD or SMS-delivery traffic on if02 makes the stick drop off USB and
    /// come back under new ttyUSB numbers.
    pub if02_quirk: bool,
    /// MF667.md §2.3 (gammu #326): under `AT+CSCS="UCS2"` a USSD answer arrives empty.
    pub ussd_ucs2_quirk: bool,
    /// The first TP-MR the stick hands out (`+CMGS: <mr>` then counts up, wrapping at 255).
    pub first_mr: u8,
    /// Time zone of injected messages' SCTS, in quarter hours east of UTC (8 = +02:00).
    pub tz_quarters: i8,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            identity: Identity::default(),
            sim_present: true,
            pin: None,
            puk: "12345678".into(),
            sim_busy: Duration::from_secs(3),
            capacities: Capacities::default(),
            smsc: "+491710760000".into(),
            network: NetworkConfig::default(),
            csq: 18,
            ussd: default_ussd_table(),
            ussd_delay: Duration::from_secs(1),
            register_delay: Duration::from_secs(2),
            cops_scan_delay: Duration::from_secs(10),
            status_reports: true,
            status_report_delay: Duration::from_secs(2),
            redelivery_delay: Duration::from_secs(1),
            replug_delay: Duration::from_secs(2),
            if02_quirk: true,
            ussd_ucs2_quirk: true,
            first_mr: 1,
            tz_quarters: 8,
        }
    }
}

impl SimConfig {
    /// Check values that would make the device misbehave in ways no real stick does.
    pub fn validate(&self) -> Result<(), String> {
        if self.csq > 31 && self.csq != 99 {
            return Err(format!("csq {} is not 0–31 or 99", self.csq));
        }
        if self.capacities.sm == 0 || self.capacities.me == 0 || self.capacities.sr == 0 {
            return Err("every store needs at least one slot".into());
        }
        if let Some(pin) = &self.pin {
            if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err("a PIN is 4–8 digits".into());
            }
        }
        if !(-48..=56).contains(&self.tz_quarters) {
            return Err(format!(
                "time zone {} quarter hours is out of range",
                self.tz_quarters
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_a_ready_registered_mf667() {
        let c = SimConfig::default();
        assert_eq!(c.identity.manufacturer, "ZTE CORPORATION");
        assert_eq!(c.identity.model, "MF667");
        assert_eq!(c.pin, None);
        assert_eq!(c.csq, 18);
        assert_eq!(c.network.operator_long, "o2 - de");
        assert_eq!(c.capacities.sm, 20);
        assert!(c.if02_quirk);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn default_table_has_balance_and_a_two_step_menu() {
        let t = default_ussd_table();
        let bal = &t.iter().find(|(c, _)| c == "*100#").expect("*100#").1;
        assert!(bal.text.starts_with("Balance: 10.00 EUR"));
        assert_eq!(bal.state, 0);
        let menu = &t.iter().find(|(c, _)| c == "*101#").expect("*101#").1;
        assert_eq!(menu.state, 1);
        assert_eq!(menu.menu.len(), 2);
        assert_eq!(menu.menu[0].1.state, 0);
    }

    #[test]
    fn dcs_names_round_trip() {
        for d in [
            UssdDcs::Plain,
            UssdDcs::Ucs2,
            UssdDcs::EightBit,
            UssdDcs::Packed,
        ] {
            assert_eq!(UssdDcs::parse(d.name()), Some(d));
        }
        assert_eq!(UssdDcs::parse("72").map(UssdDcs::number), Some(72));
        assert_eq!(UssdDcs::parse("packed").map(UssdDcs::number), Some(15));
        assert_eq!(UssdDcs::parse("17"), None);
    }

    #[test]
    fn validate_rejects_impossible_values() {
        let c = SimConfig {
            csq: 40,
            ..SimConfig::default()
        };
        assert!(c.validate().is_err());
        let c = SimConfig {
            pin: Some("12a4".into()),
            ..SimConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
