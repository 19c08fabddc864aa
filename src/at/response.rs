//! Typed information responses: the lines between a command and its final `OK`.
//!
//! Each type has `parse(line)` for one line (prefix included, e.g. `+CSQ: 18,99`) and most
//! have `from_lines(lines)` that picks the right line out of everything the modem said
//! before the final code (stray URC-like lines such as an MF626's `+ZPAS:` in the middle
//! are skipped, as gammu does, MF667.md §3). Parsing is whitespace tolerant throughout:
//! MF710M answers `+CPMS: "ME", 0, 50, …`.
//!
//! Some shapes are shared with URCs ([`Registration`] for `+CREG`, [`Cusd`], [`ZteNetwork`]
//! for `+ZPAS`/`+ZPASR`) and live here; [`super::urc`] uses them.

use super::fields::{payload, split, Field};

/// A response that is missing or cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// No line with the expected prefix was in the response.
    #[error("the response has no {prefix} line")]
    Missing {
        /// The prefix looked for (`+CSQ`).
        prefix: String,
    },
    /// A line had the prefix but not the expected fields.
    #[error("cannot read {what} from {line:?}")]
    Malformed {
        /// What was being read (`+CSQ`, `+CMGL entry`…).
        what: &'static str,
        /// The offending line.
        line: String,
    },
}

fn malformed(what: &'static str, line: &str) -> ResponseError {
    ResponseError::Malformed {
        what,
        line: line.to_string(),
    }
}

/// The first line that starts with `prefix:` (ASCII case-insensitive).
pub fn find<'a, S: AsRef<str>>(lines: &'a [S], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .map(AsRef::as_ref)
        .find(|l| payload(l, prefix).is_some())
}

fn find_or_missing<'a, S: AsRef<str>>(
    lines: &'a [S],
    prefix: &str,
) -> Result<&'a str, ResponseError> {
    find(lines, prefix).ok_or_else(|| ResponseError::Missing {
        prefix: prefix.to_string(),
    })
}

/// The text of a command that answers with bare text (`AT+CGMI` → `ZTE CORPORATION`,
/// `AT+CGSN` → the IMEI). Some firmware adds the command's prefix (MF710: `+CGMI: ZTE…`),
/// so a `prefix:` line wins if present; otherwise the first line without a `+XXX:` name.
pub fn bare_text<'a, S: AsRef<str>>(lines: &'a [S], prefix: &str) -> Option<&'a str> {
    if let Some(l) = find(lines, prefix) {
        return payload(l, prefix).map(|p| p.trim_matches('"'));
    }
    lines
        .iter()
        .map(|l| l.as_ref().trim())
        .find(|l| !l.is_empty() && super::fields::name(l).is_none())
}

fn fields_of<'a>(
    line: &'a str,
    prefix: &str,
    what: &'static str,
) -> Result<Vec<Field<'a>>, ResponseError> {
    payload(line, prefix)
        .map(split)
        .ok_or_else(|| malformed(what, line))
}

fn opt_string(f: Option<&Field<'_>>) -> Option<String> {
    f.and_then(|f| f.opt_text()).map(str::to_string)
}

fn int_at<T: std::str::FromStr>(f: &[Field<'_>], i: usize) -> Option<T> {
    f.get(i).and_then(|f| f.int())
}

/// `+CSQ: <rssi>,<ber>` (27.007 §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csq {
    /// 0–31, 99 = unknown.
    pub rssi: u8,
    /// Bit error rate 0–7, 99 = unknown.
    pub ber: u8,
}

impl Csq {
    /// Parse a `+CSQ:` line.
    pub fn parse(line: &str) -> Result<Csq, ResponseError> {
        let f = fields_of(line, "+CSQ", "+CSQ")?;
        match (int_at(&f, 0), int_at(&f, 1)) {
            (Some(rssi), Some(ber)) => Ok(Csq { rssi, ber }),
            _ => Err(malformed("+CSQ", line)),
        }
    }

    /// Find and parse the `+CSQ:` line of a response.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Csq, ResponseError> {
        Csq::parse(find_or_missing(lines, "+CSQ")?)
    }

    /// Signal in dBm (−113 + 2·rssi), `None` for 99 or out of range.
    pub fn dbm(&self) -> Option<i32> {
        (self.rssi <= 31).then(|| -113 + 2 * i32::from(self.rssi))
    }
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]` (27.007 §7.3), the `AT+COPS?` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cops {
    /// 0 automatic, 1 manual, 2 deregister, 3 set format only, 4 manual/automatic.
    pub mode: u8,
    /// 0 long alphanumeric, 1 short, 2 numeric.
    pub format: Option<u8>,
    /// The operator in that format (`o2 - de`, `26207`).
    pub operator: Option<String>,
    /// Access technology: 0 GSM, 2 UTRAN, 7 E-UTRAN…
    pub act: Option<u8>,
}

impl Cops {
    /// Parse a `+COPS:` query line (not the `=?` list; see [`CopsList`]).
    pub fn parse(line: &str) -> Result<Cops, ResponseError> {
        let f = fields_of(line, "+COPS", "+COPS")?;
        if matches!(f.first(), Some(Field::Group(_))) {
            return Err(malformed("+COPS (this is the =? list form)", line));
        }
        let mode = int_at(&f, 0).ok_or_else(|| malformed("+COPS", line))?;
        Ok(Cops {
            mode,
            format: int_at(&f, 1),
            operator: opt_string(f.get(2)),
            act: int_at(&f, 3),
        })
    }

    /// Find and parse the `+COPS:` line of a response.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Cops, ResponseError> {
        Cops::parse(find_or_missing(lines, "+COPS")?)
    }
}

/// One network of the `AT+COPS=?` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInfo {
    /// 0 unknown, 1 available, 2 current, 3 forbidden.
    pub stat: u8,
    /// Long name.
    pub long: String,
    /// Short name.
    pub short: String,
    /// MCC+MNC (`26207`).
    pub numeric: String,
    /// Access technology, if given.
    pub act: Option<u8>,
}

/// The `AT+COPS=?` answer: `+COPS: (2,"o2 - de","o2 - de","26207",2),…,,(0,1,2,3,4),(0,1,2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopsList {
    /// The networks found.
    pub operators: Vec<OperatorInfo>,
    /// Supported `<mode>` values (after the empty field), if listed.
    pub modes: Vec<u8>,
    /// Supported `<format>` values, if listed.
    pub formats: Vec<u8>,
}

impl CopsList {
    /// Parse a `+COPS:` test-command line.
    pub fn parse(line: &str) -> Result<CopsList, ResponseError> {
        let f = fields_of(line, "+COPS", "+COPS list")?;
        let mut list = CopsList {
            operators: Vec::new(),
            modes: Vec::new(),
            formats: Vec::new(),
        };
        let mut after_gap = false;
        let mut tail = Vec::new();
        for field in &f {
            match field {
                Field::Bare("") => after_gap = true,
                Field::Group(inner) if !after_gap => {
                    let g = split(inner);
                    let stat = int_at(&g, 0).ok_or_else(|| malformed("+COPS list entry", line))?;
                    let text =
                        |i: usize| g.get(i).map(|x| x.text().to_string()).unwrap_or_default();
                    list.operators.push(OperatorInfo {
                        stat,
                        long: text(1),
                        short: text(2),
                        numeric: text(3),
                        act: int_at(&g, 4),
                    });
                }
                Field::Group(inner) => tail.push(range_list(inner)),
                _ => return Err(malformed("+COPS list", line)),
            }
        }
        let mut tail = tail.into_iter();
        list.modes = tail.next().unwrap_or_default();
        list.formats = tail.next().unwrap_or_default();
        Ok(list)
    }

    /// Find and parse the `+COPS:` line of a test-command response.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<CopsList, ResponseError> {
        CopsList::parse(find_or_missing(lines, "+COPS")?)
    }
}

/// `0,1,2` or `0-4` (V.250 value lists) → the numbers.
fn range_list(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.trim().parse::<u8>(), b.trim().parse::<u8>()) {
                out.extend(a..=b);
            }
        } else if let Ok(n) = part.parse() {
            out.push(n);
        }
    }
    out
}

/// One message store in a `+CPMS` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemUsage {
    /// `"SM"`, `"ME"`, `"SR"`…; `None` in the set-command reply, which carries no names.
    pub name: Option<String>,
    /// Messages stored.
    pub used: u32,
    /// Slots in all.
    pub total: u32,
}

impl MemUsage {
    /// `used >= total` (and `total > 0`): no room for another message.
    pub fn is_full(&self) -> bool {
        self.total > 0 && self.used >= self.total
    }
}

/// `+CPMS` (27.005 §3.2.2): the query form `+CPMS: "SM",3,50,"SM",3,50,"SM",3,50` or the
/// set-reply form `+CPMS: 0,50,0,50,1,100` (no names). Stores in order mem1 (read/delete),
/// mem2 (write/send), mem3 (receive); a reply may list fewer than three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpms {
    /// The stores, in order.
    pub stores: Vec<MemUsage>,
}

impl Cpms {
    /// Parse a `+CPMS:` line of either form.
    pub fn parse(line: &str) -> Result<Cpms, ResponseError> {
        let f = fields_of(line, "+CPMS", "+CPMS")?;
        let named = f.first().is_some_and(Field::is_quoted);
        let step = if named { 3 } else { 2 };
        if f.is_empty() || f.len() % step != 0 {
            return Err(malformed("+CPMS", line));
        }
        let mut stores = Vec::new();
        for chunk in f.chunks(step) {
            let (name, nums) = if named {
                (Some(chunk[0].text().trim().to_string()), &chunk[1..])
            } else {
                (None, chunk)
            };
            match (nums[0].int(), nums[1].int()) {
                (Some(used), Some(total)) => stores.push(MemUsage { name, used, total }),
                _ => return Err(malformed("+CPMS", line)),
            }
        }
        Ok(Cpms { stores })
    }

    /// Find and parse the `+CPMS:` line of a response.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Cpms, ResponseError> {
        Cpms::parse(find_or_missing(lines, "+CPMS")?)
    }

    /// mem1, the store read and deleted from.
    pub fn read_store(&self) -> Option<&MemUsage> {
        self.stores.first()
    }

    /// mem3, the store new messages go to (the last one listed).
    pub fn receive_store(&self) -> Option<&MemUsage> {
        self.stores.get(2).or(self.stores.last())
    }
}

/// `+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")`, the
/// `AT+CPMS=?` answer: the stores allowed for mem1, mem2 and mem3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpmsSupported {
    /// One list of store names per memory.
    pub mems: Vec<Vec<String>>,
}

impl CpmsSupported {
    /// Parse a `+CPMS:` test-command line.
    pub fn parse(line: &str) -> Result<CpmsSupported, ResponseError> {
        let f = fields_of(line, "+CPMS", "+CPMS list")?;
        let mut mems = Vec::new();
        for field in f {
            match field {
                Field::Group(inner) => mems.push(
                    split(inner)
                        .iter()
                        .filter_map(|x| x.opt_text().map(str::to_string))
                        .collect(),
                ),
                _ => return Err(malformed("+CPMS list", line)),
            }
        }
        Ok(CpmsSupported { mems })
    }
}

/// A message as listed by `+CMGL` or read by `+CMGR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredMessage {
    /// PDU mode (`AT+CMGF=0`).
    Pdu(StoredPdu),
    /// Text mode, an SMS.
    Text(StoredText),
    /// Text mode, a status report (no text line).
    StatusReport(StoredStatusReport),
}

/// PDU mode: `+CMGL: <index>,<stat>,[<alpha>],<length>` / `+CMGR: <stat>,[<alpha>],<length>`
/// followed by the hex PDU line (27.005 §3.4.2/§3.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPdu {
    /// Storage index (`+CMGL` only).
    pub index: Option<u32>,
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: u8,
    /// The phonebook name, if the modem added one.
    pub alpha: Option<String>,
    /// TPDU length in octets (without the SMSC part).
    pub length: usize,
    /// The PDU in hex, SMSC part included.
    pub pdu: String,
}

/// Text mode SMS: `+CMGL: <index>,<stat>,<oa/da>,[<alpha>],[<scts>]…` / `+CMGR: <stat>,<oa/da>,[<alpha>],[<scts>]…`
/// then the text (several lines joined with `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredText {
    /// Storage index (`+CMGL` only).
    pub index: Option<u32>,
    /// `REC UNREAD`, `REC READ`, `STO UNSENT`, `STO SENT`.
    pub stat: String,
    /// Originating or destination address.
    pub address: String,
    /// Phonebook name, if any.
    pub alpha: Option<String>,
    /// Service-centre time stamp as printed (`13/01/28,14:51:42+08`), for received messages.
    pub scts: Option<String>,
    /// The text.
    pub text: String,
}

/// Text mode status report: `<stat>,<fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatusReport {
    /// Storage index (`+CMGL` only).
    pub index: Option<u32>,
    /// Stat, possibly empty (python-gsmmodem sends `+CMGR: ,6,20,…`).
    pub stat: Option<String>,
    /// First octet.
    pub fo: u8,
    /// Message reference of the message reported on.
    pub mr: u8,
    /// Recipient address.
    pub ra: Option<String>,
    /// Service-centre time stamp as printed.
    pub scts: Option<String>,
    /// Discharge time as printed.
    pub dt: Option<String>,
    /// TP-ST status.
    pub st: u8,
}

/// Parse a `+CMGL` listing: every entry, in order. PDU-mode entries take the next line as
/// their PDU; text-mode SMS take the lines up to the next `+CMGL:` as their text.
pub fn parse_cmgl<S: AsRef<str>>(lines: &[S]) -> Result<Vec<StoredMessage>, ResponseError> {
    let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(p) = payload(lines[i], "+CMGL") else {
            i += 1;
            continue;
        };
        let header = lines[i];
        let f = split(p);
        let index = int_at(&f, 0).ok_or_else(|| malformed("+CMGL index", header))?;
        let rest: Vec<&str> = lines[i + 1..]
            .iter()
            .copied()
            .take_while(|l| payload(l, "+CMGL").is_none())
            .collect();
        let (msg, used) = stored(header, &f[1..], Some(index), &rest, "+CMGL entry")?;
        out.push(msg);
        i += 1 + used;
    }
    Ok(out)
}

/// Parse a `+CMGR` answer. `Ok(None)` if it has no `+CMGR:` line (some firmware answers an
/// empty index with a bare `OK` instead of `+CMS ERROR: 321`, MF667.md §2.1).
pub fn parse_cmgr<S: AsRef<str>>(lines: &[S]) -> Result<Option<StoredMessage>, ResponseError> {
    let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
    let Some(pos) = lines.iter().position(|l| payload(l, "+CMGR").is_some()) else {
        return Ok(None);
    };
    let header = lines[pos];
    let f = payload(header, "+CMGR").map(split).unwrap_or_default();
    let (msg, _) = stored(header, &f, None, &lines[pos + 1..], "+CMGR")?;
    Ok(Some(msg))
}

/// One stored message from its header fields (starting at `<stat>`) and the lines after
/// it; returns the message and how many of those lines it used.
fn stored(
    header: &str,
    f: &[Field<'_>],
    index: Option<u32>,
    rest: &[&str],
    what: &'static str,
) -> Result<(StoredMessage, usize), ResponseError> {
    let stat = f.first().ok_or_else(|| malformed(what, header))?;
    // PDU mode: stat is a bare number; text mode: a quoted string (or empty for [pgm]'s
    // status report).
    if let (Field::Bare(s), false) = (stat, stat.is_empty()) {
        let stat: u8 = s.parse().map_err(|_| malformed(what, header))?;
        let (alpha, length) = match f.len() {
            2 => (None, int_at(f, 1)),
            n if n >= 3 => (opt_string(f.get(1)), int_at(f, 2)),
            _ => (None, None),
        };
        let length = length.ok_or_else(|| malformed(what, header))?;
        let pdu = rest
            .first()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| malformed("PDU line", rest.first().copied().unwrap_or(header)))?;
        return Ok((
            StoredMessage::Pdu(StoredPdu {
                index,
                stat,
                alpha,
                length,
                pdu: pdu.to_string(),
            }),
            1,
        ));
    }
    let stat_text = stat.opt_text().map(str::to_string);
    // A status report has the first octet (a bare number) where an SMS has its address.
    if let Some(Field::Bare(fo)) = f.get(1) {
        if let Ok(fo) = fo.parse::<u8>() {
            let mr = int_at(f, 2).ok_or_else(|| malformed(what, header))?;
            let st = int_at(f, 7).ok_or_else(|| malformed(what, header))?;
            return Ok((
                StoredMessage::StatusReport(StoredStatusReport {
                    index,
                    stat: stat_text,
                    fo,
                    mr,
                    ra: opt_string(f.get(3)),
                    scts: opt_string(f.get(5)),
                    dt: opt_string(f.get(6)),
                    st,
                }),
                0,
            ));
        }
    }
    let address = f
        .get(1)
        .map(|x| x.text().to_string())
        .ok_or_else(|| malformed(what, header))?;
    let scts = f
        .get(3)
        .filter(|x| x.is_quoted() && x.text().contains('/'))
        .map(|x| x.text().to_string());
    Ok((
        StoredMessage::Text(StoredText {
            index,
            stat: stat_text.unwrap_or_default(),
            address,
            alpha: opt_string(f.get(2)),
            scts,
            text: rest.join("\n"),
        }),
        rest.len(),
    ))
}

/// `+CMGS: <mr>[,<ackpdu>]` (also `+CMSS:`), the answer to a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// TP-MR, the reference a status report will carry.
    pub mr: u8,
    /// The SMS-SUBMIT-REPORT PDU (PDU mode) or SC time stamp (text mode), if given.
    pub ack: Option<String>,
}

impl SendResult {
    /// Parse a `+CMGS:` or `+CMSS:` line.
    pub fn parse(line: &str) -> Result<SendResult, ResponseError> {
        let p = payload(line, "+CMGS")
            .or_else(|| payload(line, "+CMSS"))
            .ok_or_else(|| malformed("+CMGS", line))?;
        let f = split(p);
        let mr = int_at(&f, 0).ok_or_else(|| malformed("+CMGS", line))?;
        Ok(SendResult {
            mr,
            ack: opt_string(f.get(1)),
        })
    }

    /// Find and parse the `+CMGS:`/`+CMSS:` line of a response.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<SendResult, ResponseError> {
        let line = find(lines, "+CMGS")
            .or_else(|| find(lines, "+CMSS"))
            .ok_or_else(|| ResponseError::Missing {
                prefix: "+CMGS".into(),
            })?;
        SendResult::parse(line)
    }
}

/// `+CPIN: <code>` (27.007 §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinStatus {
    /// `READY`: no password wanted.
    Ready,
    /// `SIM PIN`.
    SimPin,
    /// `SIM PUK`.
    SimPuk,
    /// `SIM PIN2`.
    SimPin2,
    /// `SIM PUK2`.
    SimPuk2,
    /// `PH-SIM PIN` (phone-to-SIM lock).
    PhSimPin,
    /// `PH-NET PIN` (network personalisation, a locked stick).
    PhNetPin,
    /// `PH-NET PUK`.
    PhNetPuk,
    /// Anything else, as printed.
    Other(String),
}

impl PinStatus {
    /// Parse a `+CPIN:` line (quoted or not).
    pub fn parse(line: &str) -> Result<PinStatus, ResponseError> {
        let p = payload(line, "+CPIN").ok_or_else(|| malformed("+CPIN", line))?;
        let code = p.trim().trim_matches('"').trim();
        if code.is_empty() {
            return Err(malformed("+CPIN", line));
        }
        Ok(match code.to_ascii_uppercase().as_str() {
            "READY" => PinStatus::Ready,
            "SIM PIN" => PinStatus::SimPin,
            "SIM PUK" => PinStatus::SimPuk,
            "SIM PIN2" => PinStatus::SimPin2,
            "SIM PUK2" => PinStatus::SimPuk2,
            "PH-SIM PIN" => PinStatus::PhSimPin,
            "PH-NET PIN" => PinStatus::PhNetPin,
            "PH-NET PUK" => PinStatus::PhNetPuk,
            _ => PinStatus::Other(code.to_string()),
        })
    }

    /// Find and parse the `+CPIN:` line of a response.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<PinStatus, ResponseError> {
        PinStatus::parse(find_or_missing(lines, "+CPIN")?)
    }
}

/// `+ZPINPUK: <pin_left>,<puk_left>` (ZTE; used by ModemManager and oFono).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinRetries {
    /// PIN attempts left.
    pub pin: u8,
    /// PUK attempts left.
    pub puk: u8,
}

impl PinRetries {
    /// Parse a `+ZPINPUK:` line.
    pub fn parse(line: &str) -> Result<PinRetries, ResponseError> {
        let f = fields_of(line, "+ZPINPUK", "+ZPINPUK")?;
        match (int_at(&f, 0), int_at(&f, 1)) {
            (Some(pin), Some(puk)) => Ok(PinRetries { pin, puk }),
            _ => Err(malformed("+ZPINPUK", line)),
        }
    }
}

/// Registration status `<stat>` of `+CREG`/`+CGREG`/`+CEREG` (27.007 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// 6–11 (SMS-only, emergency-only, CSFB-not-preferred…; 27.007 rel. 9+).
    Other(u8),
}

impl RegStatus {
    /// From the number.
    pub fn from_code(n: u8) -> RegStatus {
        match n {
            0 => RegStatus::NotRegistered,
            1 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            4 => RegStatus::Unknown,
            5 => RegStatus::Roaming,
            n => RegStatus::Other(n),
        }
    }

    /// The number.
    pub fn code(&self) -> u8 {
        match self {
            RegStatus::NotRegistered => 0,
            RegStatus::Home => 1,
            RegStatus::Searching => 2,
            RegStatus::Denied => 3,
            RegStatus::Unknown => 4,
            RegStatus::Roaming => 5,
            RegStatus::Other(n) => *n,
        }
    }

    /// Registered (home or roaming, including the SMS-only and CSFB variants 6, 7, 9, 10).
    pub fn is_registered(&self) -> bool {
        matches!(self.code(), 1 | 5 | 6 | 7 | 9 | 10)
    }

    /// Registered on a visited network (5, 7, 10).
    pub fn is_roaming(&self) -> bool {
        matches!(self.code(), 5 | 7 | 10)
    }
}

/// A `+CREG`/`+CGREG`/`+CEREG` line, solicited or unsolicited.
///
/// The solicited reply (to `AT+CREG?`) always starts with `<n>`: `+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]`.
/// The URC has no `<n>`: `+CREG: <stat>[,<lac>,<ci>[,<AcT>]]`. ZTE prints lac/ci unquoted
/// and may put an unsolicited `+CREG: <stat>` line inside the `AT+CREG?` reply (oFono's ZTE
/// branch, MF667.md §2): [`Registration::n`] tells them apart. The rule, as oFono's: the
/// solicited form has a small bare number second (`<stat>`), where the URC has the lac (a
/// quoted or 4-hex-digit value) or nothing; `stat,lac,ci` (3 fields) is always the URC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `<n>` (URC mode) — present only in the solicited reply.
    pub n: Option<u8>,
    /// Registration status.
    pub stat: RegStatus,
    /// Location (or tracking) area code, hex, upper case, quotes removed.
    pub lac: Option<String>,
    /// Cell id, hex, upper case (4 digits on GSM, up to 7–8 on UMTS).
    pub ci: Option<String>,
    /// Access technology: 0 GSM, 2 UTRAN, 3 GSM/EGPRS, 4 HSDPA, 5 HSUPA, 6 HSPA, 7 E-UTRAN.
    pub act: Option<u8>,
}

impl Registration {
    /// Parse a `+CREG:`, `+CGREG:` or `+CEREG:` line.
    pub fn parse(line: &str) -> Result<Registration, ResponseError> {
        let p = ["+CREG", "+CGREG", "+CEREG"]
            .iter()
            .find_map(|pre| payload(line, pre))
            .ok_or_else(|| malformed("+CREG", line))?;
        Registration::parse_fields(&split(p)).ok_or_else(|| malformed("+CREG", line))
    }

    /// Parse the fields after `+CREG: `.
    fn parse_fields(f: &[Field<'_>]) -> Option<Registration> {
        let small = |i: usize, max: u8| -> Option<u8> {
            match f.get(i) {
                Some(Field::Bare(s)) if (1..=2).contains(&s.len()) => {
                    s.parse::<u8>().ok().filter(|v| *v <= max)
                }
                _ => None,
            }
        };
        let solicited =
            f.len() != 1 && f.len() != 3 && small(0, 5).is_some() && small(1, 11).is_some();
        let hex = |i: usize| {
            f.get(i)
                .and_then(|x| x.opt_text())
                .map(|t| t.trim().to_ascii_uppercase())
                .filter(|t| !t.is_empty())
        };
        if solicited {
            Some(Registration {
                n: small(0, 5),
                stat: RegStatus::from_code(int_at(f, 1)?),
                lac: hex(2),
                ci: hex(3),
                act: int_at(f, 4),
            })
        } else {
            Some(Registration {
                n: None,
                stat: RegStatus::from_code(int_at(f, 0)?),
                lac: hex(1),
                ci: hex(2),
                act: int_at(f, 3),
            })
        }
    }

    /// `true` for the solicited form (the answer to `AT+CREG?`), `false` for the URC.
    pub fn is_solicited(&self) -> bool {
        self.n.is_some()
    }

    /// The solicited `+CREG:` line of an `AT+CREG?` answer, skipping unsolicited ones
    /// that ZTE mixes in. Use `"+CGREG"`/`"+CEREG"` as the prefix for the others.
    pub fn from_lines<S: AsRef<str>>(
        lines: &[S],
        prefix: &str,
    ) -> Result<Registration, ResponseError> {
        let mut saw = None;
        for l in lines.iter().map(AsRef::as_ref) {
            if payload(l, prefix).is_none() {
                continue;
            }
            let r = Registration::parse(l)?;
            if r.is_solicited() {
                return Ok(r);
            }
            saw = Some(r);
        }
        saw.ok_or_else(|| ResponseError::Missing {
            prefix: prefix.to_string(),
        })
    }

    /// The lac as a number.
    pub fn lac_value(&self) -> Option<u32> {
        self.lac
            .as_deref()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
    }

    /// The cell id as a number.
    pub fn ci_value(&self) -> Option<u32> {
        self.ci
            .as_deref()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
    }
}

/// `+CUSD: <m>[,<str>[,<dcs>]]` (27.007 §7.15), a USSD answer or network request.
/// The string is kept exactly as sent (plain text, or hex for some DCS values); decode it
/// with `crate::ussd`. It may contain `\r\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cusd {
    /// Session state: 0 done, 1 further action required, 2 terminated by network,
    /// 3 other local client, 4 not supported, 5 network timeout.
    pub m: u8,
    /// The string, if any (`+CUSD: 2` has none).
    pub text: Option<String>,
    /// The data coding scheme, if given.
    pub dcs: Option<u8>,
}

impl Cusd {
    /// Parse a `+CUSD:` line. The string runs from the first to the last `"` of the
    /// line, so a text with a stray `"` in it (`"Don"t"`) survives.
    pub fn parse(line: &str) -> Result<Cusd, ResponseError> {
        let p = payload(line, "+CUSD").ok_or_else(|| malformed("+CUSD", line))?;
        let (m, rest) = p.split_once(',').unwrap_or((p, ""));
        let m = m.trim().parse().map_err(|_| malformed("+CUSD", line))?;
        let rest = rest.trim();
        let (text, dcs) = if let Some(inner) = rest.strip_prefix('"') {
            match inner.rfind('"') {
                Some(end) => {
                    let after = inner[end + 1..].trim_start();
                    let dcs = after
                        .strip_prefix(',')
                        .and_then(|d| d.trim().trim_matches('"').parse().ok());
                    (Some(inner[..end].to_string()), dcs)
                }
                // Unterminated: the rest is the text.
                None => (Some(inner.to_string()), None),
            }
        } else {
            // Some firmware leaves the string unquoted.
            let f = split(rest);
            (
                f.first().and_then(Field::opt_text).map(str::to_string),
                int_at(&f, 1),
            )
        };
        Ok(Cusd { m, text, dcs })
    }
}

/// Access technology as ZTE names it in `+ZPAS`/`+ZPASR` (matched by substring, as
/// ModemManager's ZTE plugin does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTech {
    /// `No Service`.
    NoService,
    /// `Limited Service`.
    Limited,
    /// `GSM`.
    Gsm,
    /// `GPRS`.
    Gprs,
    /// `EDGE` (also `GPRS/EDGE`).
    Edge,
    /// `UMTS`, `3G`, `WCDMA`.
    Umts,
    /// `HSDPA`.
    Hsdpa,
    /// `HSUPA`.
    Hsupa,
    /// `HSPA`.
    Hspa,
    /// `HSPA+`.
    HspaPlus,
    /// `LTE`, `4G`.
    Lte,
    /// Anything else.
    Unknown,
}

impl AccessTech {
    /// Map a ZTE network string. Order matters: `HSPA+` before `HSPA`, `EDGE` before `GPRS`.
    pub fn from_zte(s: &str) -> AccessTech {
        let u = s.to_ascii_uppercase();
        let has = |k: &str| u.contains(k);
        if has("NO SERVICE") {
            AccessTech::NoService
        } else if has("LIMITED") {
            AccessTech::Limited
        } else if has("HSPA+") {
            AccessTech::HspaPlus
        } else if has("HSPA") {
            AccessTech::Hspa
        } else if has("HSUPA") {
            AccessTech::Hsupa
        } else if has("HSDPA") {
            AccessTech::Hsdpa
        } else if has("UMTS") || has("3G") || has("WCDMA") {
            AccessTech::Umts
        } else if has("EDGE") {
            AccessTech::Edge
        } else if has("GPRS") {
            AccessTech::Gprs
        } else if has("GSM") {
            AccessTech::Gsm
        } else if has("LTE") || has("4G") {
            AccessTech::Lte
        } else {
            AccessTech::Unknown
        }
    }
}

/// `+ZPAS: "<net>","<domain>"` (query) or `+ZPASR: "<net>"[,"<domain>"]` (URC). python-gsmmodem's ZTE
/// fakes answer with `+BEARTYPE:` instead, so the parser keys on the quoted fields and
/// accepts any prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZteNetwork {
    /// `UMTS`, `HSDPA`, `GPRS/EDGE`, `No Service`…
    pub net: String,
    /// `CS_ONLY`, `PS_ONLY`, `CS_PS`, `CAMPED`, when given.
    pub domain: Option<String>,
}

impl ZteNetwork {
    /// Parse a `+ZPAS:`/`+ZPASR:`/`+BEARTYPE:` line (anything `<name>: "<net>"[,"<domain>"]`).
    pub fn parse(line: &str) -> Result<ZteNetwork, ResponseError> {
        let (_, p) = line
            .split_once(':')
            .ok_or_else(|| malformed("+ZPAS", line))?;
        let f = split(p);
        let quoted: Vec<&str> = f
            .iter()
            .filter(|x| x.is_quoted())
            .map(|x| x.text())
            .collect();
        let texts: Vec<&str> = if quoted.is_empty() {
            f.iter().filter_map(|x| x.opt_text()).collect()
        } else {
            quoted
        };
        let net = texts
            .first()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("+ZPAS", line))?;
        Ok(ZteNetwork {
            net: net.to_string(),
            domain: texts
                .get(1)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }

    /// The `+ZPAS:` (or `+BEARTYPE:`) line of an `AT+ZPAS?` answer.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<ZteNetwork, ResponseError> {
        let line = find(lines, "+ZPAS")
            .or_else(|| find(lines, "+BEARTYPE"))
            .ok_or_else(|| ResponseError::Missing {
                prefix: "+ZPAS".into(),
            })?;
        ZteNetwork::parse(line)
    }

    /// The access technology.
    pub fn tech(&self) -> AccessTech {
        AccessTech::from_zte(&self.net)
    }
}

/// `+ZRSSI` (ZTE): three unsigned magnitudes on 3G parts (`+ZRSSI: 65,18,170`: rssi in
/// −dBm, ecio and rscp in half-dB steps) or four signed values on LTE parts
/// (`+ZRSSI: -76,-7,0,14`, meaning per firmware, kept as printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zrssi {
    /// 3G form: unsigned magnitudes.
    Magnitudes {
        /// RSSI, −dBm.
        rssi: u16,
        /// Ec/Io, −0.5 dB steps.
        ecio: u16,
        /// RSCP, −0.5 dBm steps.
        rscp: u16,
    },
    /// LTE form: four signed values as printed.
    Signed([i32; 4]),
}

impl Zrssi {
    /// Parse a `+ZRSSI:` line.
    pub fn parse(line: &str) -> Result<Zrssi, ResponseError> {
        let f = fields_of(line, "+ZRSSI", "+ZRSSI")?;
        let signed = f.iter().any(|x| x.text().trim_start().starts_with('-'));
        match f.len() {
            3 if !signed => match (int_at(&f, 0), int_at(&f, 1), int_at(&f, 2)) {
                (Some(rssi), Some(ecio), Some(rscp)) => Ok(Zrssi::Magnitudes { rssi, ecio, rscp }),
                _ => Err(malformed("+ZRSSI", line)),
            },
            3 | 4 => {
                let mut v = [0i32; 4];
                for (i, slot) in v.iter_mut().enumerate().take(f.len()) {
                    *slot = int_at(&f, i).ok_or_else(|| malformed("+ZRSSI", line))?;
                }
                Ok(Zrssi::Signed(v))
            }
            _ => Err(malformed("+ZRSSI", line)),
        }
    }

    /// RSSI in dBm (the first value; magnitudes negated).
    pub fn rssi_dbm(&self) -> i32 {
        match self {
            Zrssi::Magnitudes { rssi, .. } => -i32::from(*rssi),
            Zrssi::Signed(v) => v[0],
        }
    }

    /// Ec/Io in dB (3G form only).
    pub fn ecio_db(&self) -> Option<f32> {
        match self {
            Zrssi::Magnitudes { ecio, .. } => Some(-f32::from(*ecio) / 2.0),
            Zrssi::Signed(_) => None,
        }
    }

    /// RSCP in dBm (3G form only).
    pub fn rscp_dbm(&self) -> Option<f32> {
        match self {
            Zrssi::Magnitudes { rscp, .. } => Some(-f32::from(*rscp) / 2.0),
            Zrssi::Signed(_) => None,
        }
    }
}

/// `+ZOPRT: <mode>` (ZTE operating mode; the numbers match Qualcomm's `sys_oprt_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zoprt {
    /// 0 power off, 1 FTM, 2 offline, 5 online, 6 low power, 7 reset.
    pub mode: u8,
}

impl Zoprt {
    /// Parse a `+ZOPRT:` line.
    pub fn parse(line: &str) -> Result<Zoprt, ResponseError> {
        let f = fields_of(line, "+ZOPRT", "+ZOPRT")?;
        let mode = int_at(&f, 0).ok_or_else(|| malformed("+ZOPRT", line))?;
        Ok(Zoprt { mode })
    }

    /// Mode 5, online.
    pub fn is_online(&self) -> bool {
        self.mode == 5
    }

    /// Mode 6, low power (the user's "red light" state, probably).
    pub fn is_low_power(&self) -> bool {
        self.mode == 6
    }
}

/// `+ZSNT: <cm_mode>,<net_sel>,<pref_acq>` (ZTE network selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zsnt {
    /// 0 auto, 1 GSM only, 2 WCDMA only, 6 LTE only.
    pub cm_mode: u8,
    /// Always 0 (automatic).
    pub net_sel: u8,
    /// 0 auto, 1 GSM preferred, 2 WCDMA preferred.
    pub pref_acq: u8,
}

impl Zsnt {
    /// Parse a `+ZSNT:` line.
    pub fn parse(line: &str) -> Result<Zsnt, ResponseError> {
        let f = fields_of(line, "+ZSNT", "+ZSNT")?;
        match (int_at(&f, 0), int_at(&f, 1), int_at(&f, 2)) {
            (Some(cm_mode), Some(net_sel), Some(pref_acq)) => Ok(Zsnt {
                cm_mode,
                net_sel,
                pref_acq,
            }),
            _ => Err(malformed("+ZSNT", line)),
        }
    }
}

/// `+ZSEC: <a>,<b>` (ZTE lock state). Only `2,1` (network-locked) is known (Telefónica
/// mobile-manager); the values are kept as printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zsec {
    /// First value.
    pub a: u32,
    /// Second value.
    pub b: u32,
}

impl Zsec {
    /// Parse a `+ZSEC:` line.
    pub fn parse(line: &str) -> Result<Zsec, ResponseError> {
        let f = fields_of(line, "+ZSEC", "+ZSEC")?;
        match (int_at(&f, 0), int_at(&f, 1)) {
            (Some(a), Some(b)) => Ok(Zsec { a, b }),
            _ => Err(malformed("+ZSEC", line)),
        }
    }

    /// `2,1`: the stick is locked to a network (unlock with `AT+ZNCK="<code>"`).
    pub fn is_network_locked(&self) -> bool {
        (self.a, self.b) == (2, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csq_and_dbm() {
        let c = Csq::parse("+CSQ: 18,99").expect("csq");
        assert_eq!(c, Csq { rssi: 18, ber: 99 });
        assert_eq!(c.dbm(), Some(-77));
        assert_eq!(Csq::parse("+CSQ: 99,99").expect("csq").dbm(), None);
        assert!(Csq::parse("+CSQ: x").is_err());
        assert_eq!(
            Csq::from_lines(&["+ZPAS: \"UMTS\",\"CS_PS\"", "+CSQ: 18,99"])
                .expect("csq")
                .rssi,
            18
        );
        assert_eq!(
            Csq::from_lines(&["ZTE"]),
            Err(ResponseError::Missing {
                prefix: "+CSQ".into()
            })
        );
    }

    #[test]
    fn cops_query_and_list() {
        assert_eq!(
            Cops::parse("+COPS: 0,0,\"o2 - de\",2").expect("cops"),
            Cops {
                mode: 0,
                format: Some(0),
                operator: Some("o2 - de".into()),
                act: Some(2)
            }
        );
        assert_eq!(
            Cops::parse("+COPS: 0").expect("cops"),
            Cops {
                mode: 0,
                format: None,
                operator: None,
                act: None
            }
        );
        let l = CopsList::parse(
            "+COPS: (2,\"o2 - de\",\"o2 - de\",\"26207\",2),(3,\"Telekom.de\",\"TDG\",\"26201\",0),,(0,1,2,3,4),(0,1,2)",
        )
        .expect("list");
        assert_eq!(l.operators.len(), 2);
        assert_eq!(
            l.operators[1],
            OperatorInfo {
                stat: 3,
                long: "Telekom.de".into(),
                short: "TDG".into(),
                numeric: "26201".into(),
                act: Some(0)
            }
        );
        assert_eq!(l.modes, vec![0, 1, 2, 3, 4]);
        assert_eq!(l.formats, vec![0, 1, 2]);
        assert!(Cops::parse("+COPS: (2,\"x\",\"x\",\"1\",2)").is_err());
        assert_eq!(range_list("0-4"), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn cpms_all_forms() {
        let q = Cpms::parse("+CPMS: \"SM\",3,50,\"SM\",3,50,\"SM\",3,50").expect("cpms");
        assert_eq!(q.stores.len(), 3);
        assert_eq!(
            q.stores[0],
            MemUsage {
                name: Some("SM".into()),
                used: 3,
                total: 50
            }
        );
        // MF710M's spaces.
        let sp = Cpms::parse("+CPMS: \"ME\", 0, 50, \"ME\", 0, 50, \"ME\", 0, 50").expect("cpms");
        assert_eq!(
            sp.receive_store().expect("mem3").name.as_deref(),
            Some("ME")
        );
        // Set reply without names (MF626), and the SR store at 42/100.
        let set = Cpms::parse("+CPMS: 0,50,0,50,1,100").expect("cpms");
        assert_eq!(
            set.stores[2],
            MemUsage {
                name: None,
                used: 1,
                total: 100
            }
        );
        let sr = Cpms::parse("+CPMS: 0,30,0,30,42,100").expect("cpms");
        assert!(!sr.receive_store().expect("mem3").is_full());
        assert!(Cpms::parse("+CPMS: 50,50")
            .expect("cpms")
            .read_store()
            .expect("m")
            .is_full());
        assert!(Cpms::parse("+CPMS: \"SM\",3").is_err());
        assert!(Cpms::parse("+CPMS: ").is_err());
        let sup = CpmsSupported::parse(
            "+CPMS: (\"ME\",\"MT\",\"SM\",\"SR\"),(\"ME\",\"MT\",\"SM\",\"SR\"),(\"ME\",\"MT\",\"SM\",\"SR\")",
        )
        .expect("cpms=?");
        assert_eq!(sup.mems.len(), 3);
        assert_eq!(sup.mems[2], vec!["ME", "MT", "SM", "SR"]);
    }

    const E1: &str =
        "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";
    const E6: &str = "079144775810065006FD0C91449771624701117013908522401170139085624000";

    #[test]
    fn cmgl_pdu_mode() {
        let lines = ["+CMGL: 0,1,,34", E1, "+CMGL: 3,0,\"Mum\",25", E6];
        let got = parse_cmgl(&lines).expect("cmgl");
        assert_eq!(
            got,
            vec![
                StoredMessage::Pdu(StoredPdu {
                    index: Some(0),
                    stat: 1,
                    alpha: None,
                    length: 34,
                    pdu: E1.into()
                }),
                StoredMessage::Pdu(StoredPdu {
                    index: Some(3),
                    stat: 0,
                    alpha: Some("Mum".into()),
                    length: 25,
                    pdu: E6.into()
                }),
            ]
        );
        assert_eq!(parse_cmgl(&Vec::<String>::new()).expect("empty"), vec![]);
        // A header whose PDU line is missing is an error, not a silent skip.
        assert!(parse_cmgl(&["+CMGL: 0,1,,34"]).is_err());
        assert!(parse_cmgl(&["+CMGL: 0,1,,34", "+CMGL: 1,1,,34", E1]).is_err());
    }

    #[test]
    fn cmgl_text_mode() {
        // Real [pgm] data (MF667.md §2.1), plus a multi-line body and a status report.
        let lines = [
            "+CMGL: 0,\"REC UNREAD\",\"+27748577604\",,\"13/01/28,14:51:42+08\"",
            "Hello raspberry pi",
            "+CMGL: 1,\"REC READ\",\"+27748577604\",,\"13/01/28,14:52:00+08\"",
            "line one",
            "line two",
            "+CMGL: 2,\"REC READ\",6,20,\"0870000000\",129,\"13/04/29,19:58:00+04\",\"13/04/29,19:59:00+04\",0",
        ];
        let got = parse_cmgl(&lines).expect("cmgl");
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            StoredMessage::Text(StoredText {
                index: Some(0),
                stat: "REC UNREAD".into(),
                address: "+27748577604".into(),
                alpha: None,
                scts: Some("13/01/28,14:51:42+08".into()),
                text: "Hello raspberry pi".into()
            })
        );
        match &got[1] {
            StoredMessage::Text(t) => assert_eq!(t.text, "line one\nline two"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            got[2],
            StoredMessage::StatusReport(StoredStatusReport {
                index: Some(2),
                stat: Some("REC READ".into()),
                fo: 6,
                mr: 20,
                ra: Some("0870000000".into()),
                scts: Some("13/04/29,19:58:00+04".into()),
                dt: Some("13/04/29,19:59:00+04".into()),
                st: 0
            })
        );
    }

    #[test]
    fn cmgr_all_modes() {
        let pdu = parse_cmgr(&["+CMGR: 0,,34", E1])
            .expect("cmgr")
            .expect("some");
        assert_eq!(
            pdu,
            StoredMessage::Pdu(StoredPdu {
                index: None,
                stat: 0,
                alpha: None,
                length: 34,
                pdu: E1.into()
            })
        );
        let text = parse_cmgr(&[
            "+CMGR: \"REC READ\",\"+27748577604\",,\"13/01/28,14:51:42+08\"",
            "Hello raspberry pi",
        ])
        .expect("cmgr")
        .expect("some");
        match text {
            StoredMessage::Text(t) => {
                assert_eq!(t.stat, "REC READ");
                assert_eq!(t.address, "+27748577604");
                assert_eq!(t.scts.as_deref(), Some("13/01/28,14:51:42+08"));
                assert_eq!(t.text, "Hello raspberry pi");
            }
            other => panic!("{other:?}"),
        }
        // [pgm]'s status report with an empty stat.
        let sr = parse_cmgr(&[
            "+CMGR: ,6,20,\"0870000000\",129,\"13/04/29,19:58:00+04\",\"13/04/29,19:59:00+04\",0",
        ])
        .expect("cmgr")
        .expect("some");
        match sr {
            StoredMessage::StatusReport(r) => {
                assert_eq!((r.stat, r.fo, r.mr, r.st), (None, 6, 20, 0));
                assert_eq!(r.ra.as_deref(), Some("0870000000"));
            }
            other => panic!("{other:?}"),
        }
        // Empty index answered with a bare OK.
        assert_eq!(parse_cmgr(&Vec::<String>::new()).expect("cmgr"), None);
        assert!(parse_cmgr(&["+CMGR: 0,,34", "not hex"]).is_err());
    }

    #[test]
    fn cmgs_and_cmss() {
        assert_eq!(
            SendResult::parse("+CMGS: 42").expect("cmgs"),
            SendResult { mr: 42, ack: None }
        );
        assert_eq!(
            SendResult::parse("+CMGS: 7,\"0001\"").expect("cmgs"),
            SendResult {
                mr: 7,
                ack: Some("0001".into())
            }
        );
        assert_eq!(
            SendResult::from_lines(&["+CMSS: 255"]).expect("cmss").mr,
            255
        );
        assert!(SendResult::parse("+CMGS: 256").is_err());
        assert!(SendResult::from_lines(&["OK"]).is_err());
    }

    #[test]
    fn cpin_states() {
        for (line, want) in [
            ("+CPIN: READY", PinStatus::Ready),
            ("+CPIN: SIM PIN", PinStatus::SimPin),
            ("+CPIN: SIM PUK", PinStatus::SimPuk),
            ("+CPIN: \"READY\"", PinStatus::Ready),
            ("+CPIN: PH-NET PIN", PinStatus::PhNetPin),
            ("+CPIN: SIM PIN2", PinStatus::SimPin2),
            ("+CPIN: WEIRD", PinStatus::Other("WEIRD".into())),
        ] {
            assert_eq!(PinStatus::parse(line).expect(line), want);
        }
        assert!(PinStatus::parse("+CPIN: ").is_err());
        assert_eq!(
            PinRetries::parse("+ZPINPUK: 3,10").expect("zpinpuk"),
            PinRetries { pin: 3, puk: 10 }
        );
    }

    #[test]
    fn creg_solicited_and_unsolicited() {
        let r = Registration::parse("+CREG: 0,1").expect("creg");
        assert_eq!((r.n, r.stat), (Some(0), RegStatus::Home));
        let r = Registration::parse("+CREG: 2,1,1A2B,00C3F1E2").expect("creg");
        assert_eq!(r.n, Some(2));
        assert_eq!(r.lac.as_deref(), Some("1A2B"));
        assert_eq!(r.ci.as_deref(), Some("00C3F1E2"));
        assert_eq!(r.lac_value(), Some(0x1A2B));
        assert_eq!(r.ci_value(), Some(0x00C3_F1E2));
        let r = Registration::parse("+CREG: 2,5,\"1a2b\",\"00C3F1E2\",2").expect("creg");
        assert_eq!((r.n, r.stat, r.act), (Some(2), RegStatus::Roaming, Some(2)));
        assert_eq!(r.lac.as_deref(), Some("1A2B"));
        // Unsolicited forms.
        let r = Registration::parse("+CREG: 1").expect("creg");
        assert_eq!((r.n, r.stat), (None, RegStatus::Home));
        let r = Registration::parse("+CREG: 1,1A2B,00C3F1E2").expect("creg");
        assert_eq!((r.n, r.lac.as_deref()), (None, Some("1A2B")));
        let r = Registration::parse("+CREG: 5,\"1A2B\",\"00C3F1E2\",2").expect("creg");
        assert_eq!((r.n, r.stat, r.act), (None, RegStatus::Roaming, Some(2)));
        let r = Registration::parse("+CGREG: 1,1A2B,00C3F1E2,2").expect("cgreg");
        assert_eq!(
            (r.n, r.ci.as_deref(), r.act),
            (None, Some("00C3F1E2"), Some(2))
        );
        // The oFono trick: the solicited line is picked from a reply with both.
        let reply = ["+CREG: 1", "+CREG: 0,1"];
        let r = Registration::from_lines(&reply, "+CREG").expect("creg");
        assert_eq!(r.n, Some(0));
        assert!(r.is_solicited());
        assert!(Registration::parse("+CREG: x").is_err());
        assert!(RegStatus::Roaming.is_registered() && RegStatus::Roaming.is_roaming());
        assert!(!RegStatus::Searching.is_registered());
    }

    #[test]
    fn cusd_fields() {
        assert_eq!(
            Cusd::parse("+CUSD: 0,\"Balance: 10.00 EUR\",15").expect("cusd"),
            Cusd {
                m: 0,
                text: Some("Balance: 10.00 EUR".into()),
                dcs: Some(15)
            }
        );
        assert_eq!(
            Cusd::parse("+CUSD: 2").expect("cusd"),
            Cusd {
                m: 2,
                text: None,
                dcs: None
            }
        );
        let multi = Cusd::parse("+CUSD: 1,\"1. Balance\r\n2. Bundles\",15").expect("cusd");
        assert_eq!(multi.text.as_deref(), Some("1. Balance\r\n2. Bundles"));
        assert!(Cusd::parse("+CUSD: ,\"x\"").is_err());
        assert_eq!(
            Cusd::parse("+CUSD: 0,\"Don\"t \"worry\"\" , 15").expect("cusd"),
            Cusd {
                m: 0,
                text: Some("Don\"t \"worry\"".into()),
                dcs: Some(15)
            }
        );
        assert_eq!(
            Cusd::parse("+CUSD: 0,\"\",15")
                .expect("cusd")
                .text
                .as_deref(),
            Some("")
        );
        assert_eq!(
            Cusd::parse("+CUSD: 0,\"open").expect("cusd"),
            Cusd {
                m: 0,
                text: Some("open".into()),
                dcs: None
            }
        );
        assert_eq!(
            Cusd::parse("+CUSD: 0,Balance 5,15").expect("cusd"),
            Cusd {
                m: 0,
                text: Some("Balance 5".into()),
                dcs: Some(15)
            }
        );
    }

    #[test]
    fn zte_network_and_tech() {
        let z = ZteNetwork::parse("+ZPAS: \"UMTS\",\"CS_PS\"").expect("zpas");
        assert_eq!(z.net, "UMTS");
        assert_eq!(z.domain.as_deref(), Some("CS_PS"));
        assert_eq!(z.tech(), AccessTech::Umts);
        let b = ZteNetwork::parse("+BEARTYPE: \"GPRS/EDGE\",\"CS_ONLY\"").expect("beartype");
        assert_eq!(b.tech(), AccessTech::Edge);
        let r = ZteNetwork::parse("+ZPASR: \"No Service\"").expect("zpasr");
        assert_eq!((r.tech(), r.domain), (AccessTech::NoService, None));
        assert_eq!(
            ZteNetwork::from_lines(&["+BEARTYPE: \"HSDPA\",\"CS_PS\""])
                .expect("x")
                .tech(),
            AccessTech::Hsdpa
        );
        for (s, t) in [
            ("HSPA+", AccessTech::HspaPlus),
            ("HSPA", AccessTech::Hspa),
            ("HSUPA", AccessTech::Hsupa),
            ("3G", AccessTech::Umts),
            ("GSM", AccessTech::Gsm),
            ("GPRS", AccessTech::Gprs),
            ("LTE", AccessTech::Lte),
            ("Limited Service", AccessTech::Limited),
            ("??", AccessTech::Unknown),
        ] {
            assert_eq!(AccessTech::from_zte(s), t, "{s}");
        }
        assert!(ZteNetwork::parse("+ZPAS:").is_err());
    }

    #[test]
    fn zte_signal_and_modes() {
        let z = Zrssi::parse("+ZRSSI: 65,18,170").expect("zrssi");
        assert_eq!(
            z,
            Zrssi::Magnitudes {
                rssi: 65,
                ecio: 18,
                rscp: 170
            }
        );
        assert_eq!(z.rssi_dbm(), -65);
        assert_eq!(z.ecio_db(), Some(-9.0));
        assert_eq!(z.rscp_dbm(), Some(-85.0));
        assert_eq!(
            Zrssi::parse("+ZRSSI: 43,16,102").expect("zrssi").rssi_dbm(),
            -43
        );
        let lte = Zrssi::parse("+ZRSSI: -76,-7,0,14").expect("zrssi");
        assert_eq!(lte, Zrssi::Signed([-76, -7, 0, 14]));
        assert_eq!(lte.rssi_dbm(), -76);
        assert_eq!(lte.ecio_db(), None);
        assert!(Zrssi::parse("+ZRSSI: 1,2").is_err());
        assert!(Zrssi::parse("+ZRSSI: a,b,c").is_err());

        let o = Zoprt::parse("+ZOPRT: 5").expect("zoprt");
        assert!(o.is_online() && !o.is_low_power());
        assert!(Zoprt::parse("+ZOPRT: 6").expect("zoprt").is_low_power());
        assert_eq!(
            Zsnt::parse("+ZSNT: 0,0,2").expect("zsnt"),
            Zsnt {
                cm_mode: 0,
                net_sel: 0,
                pref_acq: 2
            }
        );
        assert!(Zsec::parse("+ZSEC: 2,1").expect("zsec").is_network_locked());
        assert!(!Zsec::parse("+ZSEC: 0,0").expect("zsec").is_network_locked());
        assert!(Zsnt::parse("+ZSNT: 0").is_err());
    }

    #[test]
    fn bare_text_answers() {
        assert_eq!(
            bare_text(&["ZTE CORPORATION"], "+CGMI"),
            Some("ZTE CORPORATION")
        );
        // MF710 prefixes the answer.
        assert_eq!(
            bare_text(&["+CGMI: ZTE CORPORATION"], "+CGMI"),
            Some("ZTE CORPORATION")
        );
        assert_eq!(
            bare_text(&["+ZPASR: \"UMTS\"", "351234567890123"], "+CGSN"),
            Some("351234567890123")
        );
        assert_eq!(bare_text(&Vec::<String>::new(), "+CGSN"), None);
    }
}
