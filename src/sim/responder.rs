//! AT command line → the bytes an MF667 answers (MF667.md is the reference for every byte).
//!
//! [`execute`] runs one command line (after `AT`) against the device and returns the
//! information text, the final result code, an optional `> ` prompt and an optional delay,
//! already framed for the port's `V`/`Q` settings. [`finish_prompt`] completes a
//! `+CMGS`/`+CMGW` once its body ended with Ctrl-Z. Echo is the session's job.

use std::time::Duration;

use crate::sms;

use super::cmdline::{self, Arg, Cmd, Kind};
use super::config::UssdReplySpec;
use super::device::{
    bump, from_te, now_scts, quote_te, scts_text, text_data, text_len, Charset, Cnmi, Device, Mem,
    Msg, Settings, SimBlock, SimState, Timer, UssdPending,
};
use super::inject::{SentPart, SentSms};

/// A final result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Final {
    Ok,
    Error,
    Cme(u16),
    Cms(u16),
    NoCarrier,
}

/// 27.007 §9.2 texts for `AT+CMEE=2`.
fn cme_text(code: u16) -> &'static str {
    match code {
        0 => "phone failure",
        1 => "no connection to phone",
        2 => "phone-adaptor link reserved",
        3 => "operation not allowed",
        4 => "operation not supported",
        5 => "PH-SIM PIN required",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        17 => "SIM PIN2 required",
        18 => "SIM PUK2 required",
        20 => "memory full",
        21 => "invalid index",
        22 => "not found",
        23 => "memory failure",
        24 => "text string too long",
        25 => "invalid characters in text string",
        30 => "no network service",
        31 => "network timeout",
        32 => "network not allowed - emergency calls only",
        _ => "unknown",
    }
}

impl Final {
    /// Framed for the port. V1: `\r\n<code>\r\n`; V0: `<digit>\r` (MF667.md §1). `+CME ERROR`
    /// follows `+CMEE` (0 bare ERROR, 1 number, 2 text). `+CMS ERROR` is numeric: 27.005
    /// defines no verbose form; with `+CMEE=0` it is a bare ERROR like `+CME`.
    pub(crate) fn render(self, s: &Settings) -> Vec<u8> {
        if s.quiet {
            return Vec::new();
        }
        let (verbose, digit) = match self {
            Final::Ok => ("OK".to_string(), "0"),
            Final::NoCarrier => ("NO CARRIER".to_string(), "3"),
            Final::Error => ("ERROR".to_string(), "4"),
            Final::Cme(_) | Final::Cms(_) if s.cmee == 0 => ("ERROR".to_string(), "4"),
            Final::Cme(c) if s.cmee == 2 => (format!("+CME ERROR: {}", cme_text(c)), ""),
            Final::Cme(c) => (format!("+CME ERROR: {c}"), ""),
            Final::Cms(c) => (format!("+CMS ERROR: {c}"), ""),
        };
        if s.verbose {
            format!("\r\n{verbose}\r\n").into_bytes()
        } else if digit.is_empty() {
            format!("{verbose}\r\n").into_bytes()
        } else {
            format!("{digit}\r").into_bytes()
        }
    }
}

/// How the body after `> ` is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// PDU mode: hex, `length` octets after the SMSC prefix.
    Pdu(usize),
    /// Text mode: the message text to `da` (type-of-address `toda`).
    Text { da: String, toda: u8 },
}

/// A command waiting for its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prompt {
    Cmgs(Body),
    Cmgw(Body, u8),
}

impl Prompt {
    pub(crate) fn is_text(&self) -> bool {
        matches!(
            self,
            Prompt::Cmgs(Body::Text { .. }) | Prompt::Cmgw(Body::Text { .. }, _)
        )
    }
}

/// What to write for a command line.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Information text, framed.
    pub body: Vec<u8>,
    /// The final result code, framed (empty with a prompt, or `Q1`).
    pub final_code: Vec<u8>,
    /// Bytes after the final code (URCs `+CNMI` flushes from its buffer).
    pub after: Vec<u8>,
    /// Waiting for a body after `\r\n> `.
    pub prompt: Option<Prompt>,
    /// Wait this long before answering (`AT+COPS=?` scans the bands).
    pub delay: Duration,
}

/// One command's contribution.
#[derive(Debug, Default)]
struct Step {
    lines: Vec<Vec<u8>>,
    prompt: Option<Prompt>,
    delay: Duration,
    after: Vec<u8>,
}

impl Step {
    fn lines<I: IntoIterator<Item = S>, S: Into<Vec<u8>>>(lines: I) -> Step {
        Step {
            lines: lines.into_iter().map(Into::into).collect(),
            ..Step::default()
        }
    }

    fn line(l: impl Into<Vec<u8>>) -> Step {
        Step::lines([l])
    }

    fn ok() -> Step {
        Step::default()
    }
}

type R = Result<Step, Final>;

/// Frame one command's information text: V1 `\r\n<l1>\r\n<l2>\r\n`, V0 `<l1>\r\n<l2>\r\n`.
fn frame_info(lines: &[Vec<u8>], s: &Settings) -> Vec<u8> {
    let mut out = Vec::new();
    if lines.is_empty() {
        return out;
    }
    if s.verbose {
        out.extend_from_slice(b"\r\n");
    }
    for l in lines {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Run the command line `body` (the bytes after `AT`) on port `iface`.
pub(crate) fn execute(dev: &mut Device, iface: u8, body: &[u8]) -> Outcome {
    let i = usize::from(iface);
    bump(&mut dev.counters, "command_lines");
    let cmds = match cmdline::parse(body) {
        Ok(c) => c,
        Err(_) => {
            bump(&mut dev.counters, "errors");
            return Outcome {
                final_code: Final::Error.render(&dev.ports[i].settings),
                ..Outcome::default()
            };
        }
    };
    let mut out = Outcome::default();
    let count = cmds.len();
    for (n, cmd) in cmds.into_iter().enumerate() {
        match run(dev, iface, &cmd) {
            Ok(step) => {
                out.body
                    .extend(frame_info(&step.lines, &dev.ports[i].settings));
                out.delay += step.delay;
                out.after.extend(step.after);
                if let Some(p) = step.prompt {
                    // V.250: a command that takes further input must be the last one.
                    if n + 1 == count {
                        out.prompt = Some(p);
                        return out;
                    }
                    out.final_code = Final::Error.render(&dev.ports[i].settings);
                    return out;
                }
            }
            Err(f) => {
                bump(&mut dev.counters, "errors");
                out.final_code = f.render(&dev.ports[i].settings);
                out.after.clear();
                return out;
            }
        }
    }
    out.final_code = Final::Ok.render(&dev.ports[i].settings);
    out
}

/// The body of a `+CMGS`/`+CMGW` ended with Ctrl-Z.
pub(crate) fn finish_prompt(dev: &mut Device, iface: u8, prompt: Prompt, data: &[u8]) -> Outcome {
    let i = usize::from(iface);
    let r = match prompt {
        Prompt::Cmgs(body) => send_body(dev, iface, body, data),
        Prompt::Cmgw(body, stat) => write_body(dev, iface, body, stat, data),
    };
    let s = &dev.ports[i].settings;
    match r {
        Ok(step) => Outcome {
            body: frame_info(&step.lines, s),
            final_code: Final::Ok.render(s),
            ..Outcome::default()
        },
        Err(f) => {
            bump(&mut dev.counters, "errors");
            Outcome {
                final_code: f.render(s),
                ..Outcome::default()
            }
        }
    }
}

/// ESC in the body: nothing is sent; OK is what most firmware answers (MF667.md §1).
pub(crate) fn cancel_prompt(dev: &mut Device, iface: u8) -> Outcome {
    Outcome {
        final_code: Final::Ok.render(&dev.ports[usize::from(iface)].settings),
        ..Outcome::default()
    }
}

fn sim_cme(dev: &Device) -> Result<(), Final> {
    dev.sim.check(dev.now()).map_err(|b| Final::Cme(b.cme()))
}

fn sim_cms(dev: &Device) -> Result<(), Final> {
    dev.sim.check(dev.now()).map_err(|b| Final::Cms(b.cms()))
}

fn arg(args: &[Arg], n: usize) -> Option<&Arg> {
    args.get(n).filter(|a| **a != Arg::Empty)
}

/// A required number in `range`, else `err`.
fn num_in(
    args: &[Arg],
    n: usize,
    range: std::ops::RangeInclusive<u32>,
    err: Final,
) -> Result<u32, Final> {
    let v = arg(args, n).and_then(Arg::num).ok_or(err)?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(err)
    }
}

/// An optional number: `None` when absent, `err` when present but invalid.
fn opt_num(
    args: &[Arg],
    n: usize,
    range: std::ops::RangeInclusive<u32>,
    err: Final,
) -> Result<Option<u32>, Final> {
    match arg(args, n) {
        None => Ok(None),
        Some(a) => {
            let v = a.num().ok_or(err)?;
            if range.contains(&v) {
                Ok(Some(v))
            } else {
                Err(err)
            }
        }
    }
}

fn u8_of(v: u32) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

fn run(dev: &mut Device, iface: u8, cmd: &Cmd) -> R {
    match cmd {
        Cmd::Basic { name, arg } => basic(dev, iface, name, arg),
        Cmd::Extended { name, kind } => extended(dev, iface, name, kind),
    }
}

fn settings(dev: &mut Device, iface: u8) -> &mut Settings {
    &mut dev.ports[usize::from(iface)].settings
}

fn flag(arg: &str) -> Result<bool, Final> {
    match arg {
        "" | "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(Final::Error),
    }
}

fn basic(dev: &mut Device, iface: u8, name: &str, arg: &str) -> R {
    match name {
        "E" => {
            settings(dev, iface).echo = flag(arg)?;
            Ok(Step::ok())
        }
        "V" => {
            settings(dev, iface).verbose = flag(arg)?;
            Ok(Step::ok())
        }
        "Q" => {
            settings(dev, iface).quiet = flag(arg)?;
            Ok(Step::ok())
        }
        // ATZ / AT&F: back to the power-on profile (MF667.md §5.2: E1, CMGF 0, …).
        "Z" | "&F" => {
            if !matches!(arg, "" | "0") {
                return Err(Final::Error);
            }
            *settings(dev, iface) = Settings::power_on();
            dev.ports[usize::from(iface)].buffered.clear();
            Ok(Step::ok())
        }
        "I" => {
            if !matches!(arg, "" | "0") {
                return Err(Final::Error);
            }
            // ZTE's ATI block (as MF190-family transcripts show it; exact MF667 text unverified).
            let id = &dev.cfg.identity;
            Ok(Step::lines([
                format!("Manufacturer: {}", id.manufacturer),
                format!("Model: {}", id.model),
                format!("Revision: {}", id.revision),
                format!("IMEI: {}", id.imei),
                "+GCAP: +CGSM,+DS,+ES".to_string(),
            ]))
        }
        "&V" => Ok(Step::line(profile_dump(dev, iface))),
        // Accepted and ignored: DTR/DCD behaviour, result-code set, speaker, profile save.
        "&C" | "&D" | "&K" | "&W" | "&S" | "X" | "L" | "M" => Ok(Step::ok()),
        "H" => Ok(Step::ok()),
        // No data calls on the simulator: dialing and answering fail like a line with no carrier.
        "D" | "A" | "O" => Err(Final::NoCarrier),
        s if s.starts_with('S') => sreg(dev, iface, s, arg),
        _ => Err(Final::Error),
    }
}

/// S-registers: S0 (auto-answer rings) is stored; S3/S4/S5 (CR, LF, BS) are fixed, as
/// the simulator's framer relies on them; others read as 0.
fn sreg(dev: &mut Device, iface: u8, name: &str, arg: &str) -> R {
    let n: u32 = name[1..].parse().map_err(|_| Final::Error)?;
    let value = |dev: &Device| -> u32 {
        match n {
            0 => u32::from(dev.ports[usize::from(iface)].settings.s0),
            3 => 13,
            4 => 10,
            5 => 8,
            _ => 0,
        }
    };
    if arg == "?" {
        return Ok(Step::line(format!("{:03}", value(dev))));
    }
    let Some(v) = arg.strip_prefix('=') else {
        return Err(Final::Error);
    };
    let v: u32 = if v.is_empty() {
        0
    } else {
        v.parse().map_err(|_| Final::Error)?
    };
    if v > 255 {
        return Err(Final::Error);
    }
    match n {
        0 => settings(dev, iface).s0 = u8_of(v),
        3..=5 if v != value(dev) => return Err(Final::Error),
        _ => {}
    }
    Ok(Step::ok())
}

fn profile_dump(dev: &Device, iface: u8) -> String {
    let s = &dev.ports[usize::from(iface)].settings;
    let c = s.cnmi;
    format!(
        "&C: 1; &D: 2; E: {}; Q: {}; V: {}; X: 4; S0: {:03}; S3: 013; S4: 010; S5: 008; \
         +CMEE: {}; +CREG: {}; +CGREG: {}; +CSCS: \"{}\"; +CSMS: {}; +CMGF: {}; \
         +CPMS: \"{}\",\"{}\",\"{}\"; +CNMI: {},{},{},{},{}",
        u8::from(s.echo),
        u8::from(s.quiet),
        u8::from(s.verbose),
        s.s0,
        s.cmee,
        s.creg,
        s.cgreg,
        s.cscs.name(),
        s.csms,
        u8::from(s.text_mode),
        s.mem1.name(),
        s.mem2.name(),
        dev.stores.mem3.name(),
        c.mode,
        c.mt,
        c.bm,
        c.ds,
        c.bfr
    )
}

/// The plain identity commands: bare text, no prefix (MF667.md §2).
fn identity(dev: &Device, name: &str) -> Option<String> {
    let id = &dev.cfg.identity;
    Some(match name {
        "+CGMI" | "+GMI" => id.manufacturer.clone(),
        "+CGMM" | "+GMM" => id.model.clone(),
        "+CGMR" | "+GMR" => id.revision.clone(),
        "+CGSN" | "+GSN" => id.imei.clone(),
        _ => return None,
    })
}

fn extended(dev: &mut Device, iface: u8, name: &str, kind: &Kind) -> R {
    if let Some(text) = identity(dev, name) {
        return match kind {
            Kind::Exec => Ok(Step::line(text)),
            Kind::Test => Ok(Step::ok()),
            _ => Err(Final::Error),
        };
    }
    match name {
        "+GCAP" => match kind {
            Kind::Exec => Ok(Step::line("+GCAP: +CGSM,+DS,+ES")),
            _ => Err(Final::Error),
        },
        "+CIMI" => match kind {
            Kind::Exec => {
                sim_cme(dev)?;
                Ok(Step::line(dev.cfg.identity.imsi.clone()))
            }
            Kind::Test => Ok(Step::ok()),
            _ => Err(Final::Error),
        },
        "+CMEE" => match kind {
            Kind::Set(a) => {
                let v = opt_num(a, 0, 0..=2, Final::Error)?.unwrap_or(0);
                settings(dev, iface).cmee = u8_of(v);
                Ok(Step::ok())
            }
            Kind::Query => Ok(Step::line(format!(
                "+CMEE: {}",
                dev.ports[usize::from(iface)].settings.cmee
            ))),
            Kind::Test => Ok(Step::line("+CMEE: (0-2)")),
            Kind::Exec => Err(Final::Error),
        },
        "+CSCS" => match kind {
            Kind::Set(a) => {
                let cs = arg(a, 0)
                    .and_then(Arg::text)
                    .and_then(Charset::parse)
                    .ok_or(Final::Cme(4))?;
                settings(dev, iface).cscs = cs;
                Ok(Step::ok())
            }
            Kind::Query => Ok(Step::line(format!(
                "+CSCS: \"{}\"",
                dev.ports[usize::from(iface)].settings.cscs.name()
            ))),
            Kind::Test => Ok(Step::line("+CSCS: (\"IRA\",\"GSM\",\"UCS2\")")),
            Kind::Exec => Err(Final::Error),
        },
        "+CPIN" => cpin(dev, kind),
        "+ZPINPUK" => match kind {
            Kind::Test | Kind::Query => Ok(Step::line(format!(
                "+ZPINPUK: {},{}",
                dev.sim.pin_left, dev.sim.puk_left
            ))),
            _ => Err(Final::Error),
        },
        "+CLCK" => clck(dev, kind),
        "+CSQ" => match kind {
            Kind::Exec => Ok(Step::line(format!("+CSQ: {},99", dev.csq()))),
            Kind::Test => Ok(Step::line("+CSQ: (0-31,99),(0-7,99)")),
            _ => Err(Final::Error),
        },
        "+CREG" | "+CGREG" => creg(dev, iface, name, kind),
        "+COPS" => cops(dev, iface, kind),
        "+CFUN" => cfun(dev, kind),
        "+ZOPRT" => match kind {
            Kind::Query => Ok(Step::line(format!("+ZOPRT: {}", dev.net.oprt))),
            Kind::Set(a) => {
                let v = num_in(a, 0, 0..=7, Final::Error)?;
                if v != 5 && v != 6 {
                    return Err(Final::Error);
                }
                dev.net.oprt = u8_of(v);
                // `=5` after offline: search, then register after register_delay (+CREG URC).
                dev.update_registration(false);
                Ok(Step::ok())
            }
            Kind::Test => Ok(Step::line("+ZOPRT: (5,6)")),
            Kind::Exec => Err(Final::Error),
        },
        "+ZPAS" => match kind {
            Kind::Query | Kind::Exec => Ok(Step::line(if dev.registered() {
                format!(
                    "+ZPAS: \"{}\",\"{}\"",
                    dev.cfg.network.zpas, dev.cfg.network.domain
                )
            } else {
                "+ZPAS: \"No Service\",\"CS_ONLY\"".to_string()
            })),
            _ => Err(Final::Error),
        },
        "+ZRSSI" => match kind {
            Kind::Query | Kind::Exec => Ok(Step::line(zrssi(dev))),
            _ => Err(Final::Error),
        },
        "+ZSNT" => match kind {
            Kind::Query => {
                let z = dev.net.zsnt;
                Ok(Step::line(format!("+ZSNT: {},{},{}", z[0], z[1], z[2])))
            }
            Kind::Set(a) => {
                let cm = num_in(a, 0, 0..=2, Final::Error)?;
                let sel = opt_num(a, 1, 0..=0, Final::Error)?.unwrap_or(0);
                let pref = opt_num(a, 2, 0..=2, Final::Error)?.unwrap_or(0);
                dev.net.zsnt = [u8_of(cm), u8_of(sel), u8_of(pref)];
                Ok(Step::ok())
            }
            Kind::Test => Ok(Step::line("+ZSNT: (0-2),(0),(0-2)")),
            Kind::Exec => Err(Final::Error),
        },
        "+ZSEC" => match kind {
            Kind::Query => Ok(Step::line("+ZSEC: 2,1")),
            _ => Err(Final::Error),
        },
        "+ZCDRUN" => zcdrun(dev, kind),
        "+CPAS" => match kind {
            Kind::Exec => Ok(Step::line("+CPAS: 0")),
            Kind::Test => Ok(Step::line("+CPAS: (0-5)")),
            _ => Err(Final::Error),
        },
        "+CTZR" => match kind {
            Kind::Set(a) => {
                settings(dev, iface).ctzr = u8_of(num_in(a, 0, 0..=1, Final::Error)?);
                Ok(Step::ok())
            }
            Kind::Query => Ok(Step::line(format!(
                "+CTZR: {}",
                dev.ports[usize::from(iface)].settings.ctzr
            ))),
            Kind::Test => Ok(Step::line("+CTZR: (0,1)")),
            Kind::Exec => Err(Final::Error),
        },
        "+CMGF" => match kind {
            Kind::Set(a) => {
                let v = opt_num(a, 0, 0..=1, Final::Error)?.unwrap_or(0);
                settings(dev, iface).text_mode = v == 1;
                Ok(Step::ok())
            }
            Kind::Query => Ok(Step::line(format!(
                "+CMGF: {}",
                u8::from(dev.ports[usize::from(iface)].settings.text_mode)
            ))),
            Kind::Test => Ok(Step::line("+CMGF: (0-1)")),
            Kind::Exec => Err(Final::Error),
        },
        "+CSMS" => match kind {
            Kind::Set(a) => {
                let v = num_in(a, 0, 0..=1, Final::Cms(302))?;
                settings(dev, iface).csms = u8_of(v);
                Ok(Step::line("+CSMS: 1,1,1"))
            }
            Kind::Query => Ok(Step::line(format!(
                "+CSMS: {},1,1,1",
                dev.ports[usize::from(iface)].settings.csms
            ))),
            Kind::Test => Ok(Step::line("+CSMS: (0-1)")),
            Kind::Exec => Err(Final::Error),
        },
        "+CSDH" => match kind {
            Kind::Set(a) => {
                let v = opt_num(a, 0, 0..=1, Final::Error)?.unwrap_or(0);
                settings(dev, iface).csdh = v == 1;
                Ok(Step::ok())
            }
            Kind::Query => Ok(Step::line(format!(
                "+CSDH: {}",
                u8::from(dev.ports[usize::from(iface)].settings.csdh)
            ))),
            Kind::Test => Ok(Step::line("+CSDH: (0,1)")),
            Kind::Exec => Err(Final::Error),
        },
        "+CSMP" => match kind {
            Kind::Set(a) => {
                let cur = dev.ports[usize::from(iface)].settings.csmp;
                let mut v = cur;
                for (n, slot) in v.iter_mut().enumerate() {
                    if let Some(x) = opt_num(a, n, 0..=255, Final::Cms(304))? {
                        *slot = u8_of(x);
                    }
                }
                settings(dev, iface).csmp = v;
                Ok(Step::ok())
            }
            Kind::Query => {
                let v = dev.ports[usize::from(iface)].settings.csmp;
                Ok(Step::line(format!(
                    "+CSMP: {},{},{},{}",
                    v[0], v[1], v[2], v[3]
                )))
            }
            Kind::Test => Ok(Step::ok()),
            Kind::Exec => Err(Final::Error),
        },
        "+CSCA" => match kind {
            Kind::Query => {
                sim_cms(dev)?;
                let cs = dev.ports[usize::from(iface)].settings.cscs;
                let toa = if dev.cfg.smsc.starts_with('+') {
                    145
                } else {
                    129
                };
                Ok(Step::line(format!(
                    "+CSCA: {},{toa}",
                    quote_te(&dev.cfg.smsc, cs)
                )))
            }
            Kind::Set(a) => {
                sim_cms(dev)?;
                let cs = dev.ports[usize::from(iface)].settings.cscs;
                let raw = arg(a, 0).and_then(Arg::text).ok_or(Final::Cms(304))?;
                let addr = from_te(raw.as_bytes(), cs).ok_or(Final::Cms(304))?;
                sms::Address::parse(&addr).map_err(|_| Final::Cms(304))?;
                dev.cfg.smsc = addr;
                Ok(Step::ok())
            }
            Kind::Test => Ok(Step::ok()),
            Kind::Exec => Err(Final::Error),
        },
        "+CNMI" => cnmi(dev, iface, kind),
        "+CNMA" => match kind {
            Kind::Exec | Kind::Set(_) => {
                if dev.ports[usize::from(iface)].settings.csms == 1 {
                    Ok(Step::ok())
                } else {
                    // MF667.md §2.1: with +CSMS 0 the stick acknowledges by itself.
                    Err(Final::Cms(340))
                }
            }
            Kind::Test => Ok(Step::line("+CNMA: (0-2)")),
            Kind::Query => Err(Final::Error),
        },
        "+CPMS" => cpms(dev, iface, kind),
        "+CMGL" => cmgl(dev, iface, kind),
        "+CMGR" => cmgr(dev, iface, kind),
        "+CMGD" => cmgd(dev, iface, kind),
        "+CMGS" => cmgs(dev, iface, kind),
        "+CMGW" => cmgw(dev, iface, kind),
        "+CMSS" => cmss(dev, iface, kind),
        "+CUSD" => cusd(dev, iface, kind),
        _ => Err(Final::Error),
    }
}

fn cpin(dev: &mut Device, kind: &Kind) -> R {
    match kind {
        Kind::Query => match dev.sim.state {
            SimState::Removed => Err(Final::Cme(10)),
            SimState::Blocked => Err(Final::Cme(13)),
            SimState::Pin => Ok(Step::line("+CPIN: SIM PIN")),
            SimState::Puk => Ok(Step::line("+CPIN: SIM PUK")),
            SimState::Ready => {
                if dev.sim.check(dev.now()) == Err(SimBlock::Busy) {
                    Err(Final::Cme(14))
                } else {
                    Ok(Step::line("+CPIN: READY"))
                }
            }
        },
        Kind::Test => Ok(Step::ok()),
        Kind::Exec => Err(Final::Error),
        Kind::Set(a) => {
            let first = arg(a, 0)
                .and_then(Arg::text)
                .ok_or(Final::Cme(3))?
                .to_string();
            match dev.sim.state {
                SimState::Removed => Err(Final::Cme(10)),
                SimState::Blocked => Err(Final::Cme(13)),
                // Nothing to enter: 27.007 says operation not allowed.
                SimState::Ready => Err(Final::Cme(3)),
                SimState::Pin => {
                    if dev.sim.pin.as_deref() == Some(first.as_str()) {
                        dev.sim.pin_left = 3;
                        unlocked(dev);
                        Ok(Step::ok())
                    } else {
                        dev.sim.pin_left = dev.sim.pin_left.saturating_sub(1);
                        if dev.sim.pin_left == 0 {
                            dev.sim.state = SimState::Puk;
                        }
                        bump(&mut dev.counters, "wrong_pins");
                        Err(Final::Cme(16))
                    }
                }
                SimState::Puk => {
                    let new_pin = arg(a, 1).and_then(Arg::text).ok_or(Final::Cme(12))?;
                    if first == dev.sim.puk {
                        dev.sim.pin = Some(new_pin.to_string());
                        dev.sim.pin_left = 3;
                        dev.sim.puk_left = 10;
                        unlocked(dev);
                        Ok(Step::ok())
                    } else {
                        dev.sim.puk_left = dev.sim.puk_left.saturating_sub(1);
                        if dev.sim.puk_left == 0 {
                            dev.sim.state = SimState::Blocked;
                        }
                        Err(Final::Cme(16))
                    }
                }
            }
        }
    }
}

/// A correct PIN/PUK: the SIM is busy for a while (MF667.md §5.3), then the stick registers.
fn unlocked(dev: &mut Device) {
    dev.sim.state = SimState::Ready;
    let busy = dev.cfg.sim_busy;
    dev.sim.busy_until = Some(dev.now() + busy);
    dev.net.epoch += 1;
    let epoch = dev.net.epoch;
    dev.schedule(busy, Timer::Register { epoch });
}

/// `AT+CLCK="SC",2` (is the PIN lock on?) — gammu and MM ask; other facilities unsupported.
fn clck(dev: &mut Device, kind: &Kind) -> R {
    match kind {
        Kind::Test => Ok(Step::line("+CLCK: (\"SC\")")),
        Kind::Set(a) => {
            let fac = arg(a, 0)
                .and_then(Arg::text)
                .unwrap_or("")
                .to_ascii_uppercase();
            if fac != "SC" {
                return Err(Final::Cme(4));
            }
            sim_cme(dev)?;
            match num_in(a, 1, 0..=2, Final::Cme(3))? {
                2 => Ok(Step::line(format!(
                    "+CLCK: {}",
                    u8::from(dev.sim.pin.is_some())
                ))),
                _ => Err(Final::Cme(3)),
            }
        }
        _ => Err(Final::Error),
    }
}

fn creg(dev: &mut Device, iface: u8, name: &str, kind: &Kind) -> R {
    let cg = name == "+CGREG";
    match kind {
        Kind::Set(a) => {
            let n = u8_of(opt_num(a, 0, 0..=2, Final::Error)?.unwrap_or(0));
            let s = settings(dev, iface);
            if cg {
                s.cgreg = n;
            } else {
                s.creg = n;
            }
            Ok(Step::ok())
        }
        Kind::Query => {
            let s = &dev.ports[usize::from(iface)].settings;
            let n = if cg { s.cgreg } else { s.creg };
            Ok(Step::line(format!("{name}: {n},{}", dev.reg_fields(n))))
        }
        Kind::Test => Ok(Step::line(format!("{name}: (0-2)"))),
        Kind::Exec => Err(Final::Error),
    }
}

fn cops(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let net = dev.cfg.network.clone();
    match kind {
        Kind::Query => {
            if !dev.registered() {
                return Ok(Step::line("+COPS: 0"));
            }
            let f = dev.ports[usize::from(iface)].settings.cops_format;
            let oper = match f {
                1 => &net.operator_short,
                2 => &net.operator_numeric,
                _ => &net.operator_long,
            };
            Ok(Step::line(format!("+COPS: 0,{f},\"{oper}\",{}", net.act)))
        }
        Kind::Test => {
            if !(dev.net.oprt == 5 && dev.net.cfun == 1) {
                return Err(Final::Cme(30));
            }
            // MF667.md §2: the list, after a slow band scan.
            Ok(Step {
                lines: vec![format!(
                    "+COPS: (2,\"{}\",\"{}\",\"{}\",{}),(3,\"Telekom.de\",\"TDG\",\"26201\",0),,(0,1,2,3,4),(0,1,2)",
                    net.operator_long, net.operator_short, net.operator_numeric, net.act
                )
                .into_bytes()],
                delay: dev.cfg.cops_scan_delay,
                ..Step::default()
            })
        }
        Kind::Set(a) => {
            let mode = num_in(a, 0, 0..=4, Final::Cme(3))?;
            let format = opt_num(a, 1, 0..=2, Final::Cme(3))?;
            match mode {
                0 => Ok(Step::ok()),
                3 => {
                    settings(dev, iface).cops_format = u8_of(format.unwrap_or(0));
                    Ok(Step::ok())
                }
                1 | 4 => {
                    let oper = arg(a, 2).and_then(Arg::text).ok_or(Final::Cme(3))?;
                    if [
                        &net.operator_long,
                        &net.operator_short,
                        &net.operator_numeric,
                    ]
                    .iter()
                    .any(|o| o.as_str() == oper)
                    {
                        Ok(Step::ok())
                    } else if mode == 4 {
                        // Manual with automatic fallback.
                        Ok(Step::ok())
                    } else {
                        Err(Final::Cme(32))
                    }
                }
                _ => Err(Final::Cme(4)),
            }
        }
        Kind::Exec => Err(Final::Error),
    }
}

fn cfun(dev: &mut Device, kind: &Kind) -> R {
    match kind {
        Kind::Query => Ok(Step::line(format!("+CFUN: {}", dev.net.cfun))),
        Kind::Test => Ok(Step::line("+CFUN: (0,1,4),(0-1)")),
        Kind::Set(a) => {
            let f = num_in(a, 0, 0..=4, Final::Cme(3))?;
            if !matches!(f, 0 | 1 | 4) {
                return Err(Final::Cme(4));
            }
            let reset = opt_num(a, 1, 0..=1, Final::Cme(3))?.unwrap_or(0) == 1;
            dev.net.cfun = u8_of(f);
            dev.update_registration(false);
            if reset {
                // A reset re-enumerates the stick on USB, like an unplug. The session writes
                // this command's OK before it handles the Close the unplug sends.
                let d = dev.cfg.replug_delay;
                dev.unplug(Some(d));
            }
            Ok(Step::ok())
        }
        Kind::Exec => Err(Final::Error),
    }
}

/// `+ZRSSI: <rssi>,<ecio>,<rscp>` as unsigned magnitudes (MF667.md §2.2): rssi in −dBm from
/// +CSQ, ecio in half-dB (18 = −9 dB), rscp in half-dBm. Without service the stick reports
/// 125,1000,1000 ("n/a"; unverified).
fn zrssi(dev: &Device) -> String {
    if !dev.registered() || dev.net.csq == 99 {
        return "+ZRSSI: 125,1000,1000".into();
    }
    let rssi = 113 - 2 * u32::from(dev.net.csq);
    let ecio = 18;
    let rscp = 2 * rssi + ecio;
    format!("+ZRSSI: {rssi},{ecio},{rscp}")
}

/// `AT+ZCDRUN=<op>` with the reply texts public tools match (MF667.md §0).
fn zcdrun(dev: &mut Device, kind: &Kind) -> R {
    let Kind::Set(a) = kind else {
        return Err(Final::Error);
    };
    let op = arg(a, 0)
        .and_then(Arg::text)
        .unwrap_or("")
        .to_ascii_uppercase();
    let text = match op.as_str() {
        "8" => {
            dev.net.autorun = false;
            "Close autorun state result(0:FAIL 1:SUCCESS):1".to_string()
        }
        "9" => {
            dev.net.autorun = true;
            "Open autorun state result(0:FAIL 1:SUCCESS):1".to_string()
        }
        "F" => "exit download mode result(0:FAIL 1:SUCCESS):1".to_string(),
        // Unverified wording, by analogy with `=F`.
        "E" => "enter download mode result(0:FAIL 1:SUCCESS):1".to_string(),
        "4" | "G" => format!(
            "Inquiry autorun open state result(0:NO 1:YES):{}",
            u8::from(dev.net.autorun)
        ),
        _ => return Err(Final::Error),
    };
    Ok(Step::line(text))
}

fn cnmi(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let i = usize::from(iface);
    match kind {
        Kind::Query => {
            let c = dev.ports[i].settings.cnmi;
            Ok(Step::line(format!(
                "+CNMI: {},{},{},{},{}",
                c.mode, c.mt, c.bm, c.ds, c.bfr
            )))
        }
        // oFono on ZTE: "advertise 2 but error if used" (MF667.md §2.1, §5.8).
        Kind::Test => Ok(Step::line("+CNMI: (0-3),(0-3),(0-3),(0-2),(0,1)")),
        Kind::Set(a) => {
            let cur = dev.ports[i].settings.cnmi;
            let get = |n: usize, max: u32, cur: u8| -> Result<u8, Final> {
                Ok(opt_num(a, n, 0..=max, Final::Cms(303))?.map_or(cur, u8_of))
            };
            let c = Cnmi {
                mode: get(0, 3, cur.mode)?,
                mt: get(1, 3, cur.mt)?,
                bm: get(2, 3, cur.bm)?,
                ds: get(3, 2, cur.ds)?,
                bfr: get(4, 1, cur.bfr)?,
            };
            if c.mode == 2 {
                return Err(Final::Error);
            }
            dev.ports[i].settings.cnmi = c;
            let mut step = Step::ok();
            // 27.005: entering mode 1–3 flushes the buffer after OK (bfr 0) or clears it.
            if c.mode != 0 {
                let buf = std::mem::take(&mut dev.ports[i].buffered);
                if c.bfr == 0 {
                    step.after = buf;
                }
            }
            Ok(step)
        }
        Kind::Exec => Err(Final::Error),
    }
}

fn mem_arg(a: &[Arg], n: usize) -> Result<Option<Mem>, Final> {
    match arg(a, n) {
        None => Ok(None),
        Some(x) => x
            .text()
            .and_then(Mem::parse)
            .map(Some)
            .ok_or(Final::Cms(302)),
    }
}

fn cpms(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let i = usize::from(iface);
    let list = "(\"ME\",\"MT\",\"SM\",\"SR\")";
    match kind {
        Kind::Test => Ok(Step::line(format!("+CPMS: {list},{list},{list}"))),
        Kind::Query => {
            sim_cms(dev)?;
            let s = &dev.ports[i].settings;
            let st = &dev.stores;
            let f = |m: Mem| format!("\"{}\",{},{}", m.name(), st.used(m), st.total(m));
            Ok(Step::line(format!(
                "+CPMS: {},{},{}",
                f(s.mem1),
                f(s.mem2),
                f(st.mem3)
            )))
        }
        Kind::Set(a) => {
            sim_cms(dev)?;
            let m1 = mem_arg(a, 0)?.ok_or(Final::Cms(302))?;
            let m2 = mem_arg(a, 1)?;
            let m3 = mem_arg(a, 2)?;
            let s = &mut dev.ports[i].settings;
            s.mem1 = m1;
            if let Some(m) = m2 {
                s.mem2 = m;
            }
            if let Some(m) = m3 {
                dev.stores.mem3 = m;
                dev.slot_freed();
            }
            let s = &dev.ports[i].settings;
            let st = &dev.stores;
            Ok(Step::line(format!(
                "+CPMS: {},{},{},{},{},{}",
                st.used(s.mem1),
                st.total(s.mem1),
                st.used(s.mem2),
                st.total(s.mem2),
                st.used(st.mem3),
                st.total(st.mem3)
            )))
        }
        Kind::Exec => Err(Final::Error),
    }
}

const STAT_TEXT: [&str; 5] = ["REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"];

fn stat_from_text(s: &str) -> Option<u8> {
    STAT_TEXT
        .iter()
        .position(|t| t.eq_ignore_ascii_case(s))
        .and_then(|p| u8::try_from(p).ok())
}

/// The header and data lines of one message for `+CMGL`/`+CMGR` in text mode.
/// `list`: `+CMGL` puts the index first and has no `<alpha>` order differences.
fn text_entry(msg: &Msg, s: &Settings, prefix: &str) -> Vec<Vec<u8>> {
    let stat = STAT_TEXT[usize::from(msg.stat.min(3))];
    let cs = s.cscs;
    match sms::decode_bytes(&msg.pdu) {
        Ok(sms::Pdu::Deliver(d)) => {
            let mut head = format!(
                "{prefix}\"{stat}\",{},,\"{}\"",
                quote_te(&d.originator.number, cs),
                scts_text(&d.timestamp)
            );
            if s.csdh {
                head.push_str(&format!(",{},{}", d.originator.toa, text_len(&d.user_data)));
            }
            vec![
                head.into_bytes(),
                text_data(&msg.pdu, &d.user_data, d.first_octet(), cs),
            ]
        }
        Ok(sms::Pdu::Submit(sub)) => {
            let mut head = format!(
                "{prefix}\"{stat}\",{},",
                quote_te(&sub.destination.number, cs)
            );
            if s.csdh {
                head.push_str(&format!(
                    ",,{},{}",
                    sub.destination.toa,
                    text_len(&sub.user_data)
                ));
            }
            vec![
                head.into_bytes(),
                text_data(&msg.pdu, &sub.user_data, sub.first_octet(), cs),
            ]
        }
        // 27.005 §3.4.2: +CMGL: <index>,<stat>,<fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>
        Ok(sms::Pdu::StatusReport(r)) => vec![format!(
            "{prefix}\"{stat}\",{},{},{},{},\"{}\",\"{}\",{}",
            r.first_octet(),
            r.message_reference,
            quote_te(&r.recipient.number, cs),
            r.recipient.toa,
            scts_text(&r.timestamp),
            scts_text(&r.discharge),
            r.status
        )
        .into_bytes()],
        // Text mode cannot show what it cannot decode; the PDU is the honest fallback.
        Err(_) => vec![
            format!("{prefix}\"{stat}\",\"\",,").into_bytes(),
            sms::pdu::to_hex(&msg.pdu).into_bytes(),
        ],
    }
}

fn pdu_entry(msg: &Msg, prefix: &str) -> Vec<Vec<u8>> {
    vec![
        format!("{prefix}{},,{}", msg.stat, msg.tpdu_len()).into_bytes(),
        sms::pdu::to_hex(&msg.pdu).into_bytes(),
    ]
}

fn cmgl(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let i = usize::from(iface);
    let text_mode = dev.ports[i].settings.text_mode;
    let wanted = match kind {
        Kind::Test => {
            return Ok(Step::line(if text_mode {
                "+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")"
            } else {
                "+CMGL: (0-4)"
            }));
        }
        Kind::Query => return Err(Final::Error),
        Kind::Exec => 0,
        Kind::Set(a) => match (text_mode, arg(a, 0)) {
            (_, None) => 0,
            (false, Some(Arg::Raw(n))) => n
                .parse::<u8>()
                .ok()
                .filter(|v| *v <= 4)
                .ok_or(Final::Cms(302))?,
            (true, Some(Arg::Str(t))) => stat_from_text(t).ok_or(Final::Cms(302))?,
            // MF667.md §2.1: text-mode strings in PDU mode give ERROR (and numbers in text mode).
            _ => return Err(Final::Error),
        },
    };
    sim_cms(dev)?;
    let mem = dev.ports[i].settings.mem1;
    let s = dev.ports[i].settings.clone();
    let mut lines = Vec::new();
    for idx in dev.stores.indices(mem) {
        let Some(msg) = dev.stores.get_mut(mem, idx) else {
            continue;
        };
        if wanted != 4 && msg.stat != wanted {
            continue;
        }
        let prefix = format!("+CMGL: {idx},");
        let entry = if text_mode {
            text_entry(msg, &s, &prefix)
        } else {
            pdu_entry(msg, &prefix)
        };
        lines.extend(entry);
        // Listing marks received messages read (27.005 §3.4.2).
        if msg.stat == 0 {
            msg.stat = 1;
        }
    }
    Ok(Step {
        lines,
        ..Step::default()
    })
}

fn index_arg(a: &[Arg], n: usize) -> Result<usize, Final> {
    arg(a, n)
        .and_then(Arg::num)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or(Final::Cms(321))
}

fn cmgr(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let i = usize::from(iface);
    let Kind::Set(a) = kind else {
        return match kind {
            Kind::Test => Ok(Step::ok()),
            _ => Err(Final::Error),
        };
    };
    sim_cms(dev)?;
    let idx = index_arg(a, 0)?;
    let s = dev.ports[i].settings.clone();
    let mem = s.mem1;
    let Some(msg) = dev.stores.get_mut(mem, idx) else {
        // MF667.md §2.1: an empty index gives +CMS ERROR: 321.
        return Err(Final::Cms(321));
    };
    let lines = if s.text_mode {
        // +CMGR has no index: "+CMGR: <stat>,…".
        text_entry(msg, &s, "+CMGR: ")
    } else {
        pdu_entry(msg, "+CMGR: ")
    };
    if msg.stat == 0 {
        msg.stat = 1;
    }
    Ok(Step {
        lines,
        ..Step::default()
    })
}

fn cmgd(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let mem = dev.ports[usize::from(iface)].settings.mem1;
    match kind {
        Kind::Test => {
            let used: Vec<String> = dev
                .stores
                .indices(mem)
                .into_iter()
                .map(|i| i.to_string())
                .collect();
            Ok(Step::line(format!("+CMGD: ({}),(0-4)", used.join(","))))
        }
        Kind::Set(a) => {
            sim_cms(dev)?;
            let flag = opt_num(a, 1, 0..=4, Final::Cms(302))?.unwrap_or(0);
            let before = dev.stores.used(mem);
            if flag == 0 {
                let idx = index_arg(a, 0)?;
                if !dev.stores.valid_index(mem, idx) {
                    return Err(Final::Cms(321));
                }
                dev.stores.delete(mem, idx);
            } else {
                // 1: READ; 2: + SENT; 3: + UNSENT; 4: all (27.005 §3.5.4).
                let doomed: &[u8] = match flag {
                    1 => &[1],
                    2 => &[1, 3],
                    3 => &[1, 2, 3],
                    _ => &[0, 1, 2, 3],
                };
                for idx in dev.stores.indices(mem) {
                    if dev
                        .stores
                        .get(mem, idx)
                        .is_some_and(|m| doomed.contains(&m.stat))
                    {
                        dev.stores.delete(mem, idx);
                    }
                }
            }
            if dev.stores.used(mem) < before {
                dev.slot_freed();
            }
            Ok(Step::ok())
        }
        _ => Err(Final::Error),
    }
}

/// The destination of a text-mode `+CMGS`/`+CMGW`: `"<da>"[,<toda>]`.
fn text_dest(dev: &Device, iface: u8, a: &[Arg]) -> Result<(String, u8), Final> {
    let cs = dev.ports[usize::from(iface)].settings.cscs;
    let raw = arg(a, 0).and_then(Arg::text).ok_or(Final::Cms(304))?;
    let da = from_te(raw.as_bytes(), cs).ok_or(Final::Cms(304))?;
    let toda = u8_of(
        opt_num(a, 1, 0..=255, Final::Cms(304))?.unwrap_or(if da.starts_with('+') {
            145
        } else {
            129
        }),
    );
    Ok((da, toda))
}

fn cmgs(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let Kind::Set(a) = kind else {
        return match kind {
            Kind::Test => Ok(Step::ok()),
            _ => Err(Final::Error),
        };
    };
    sim_cms(dev)?;
    let body = if dev.ports[usize::from(iface)].settings.text_mode {
        let (da, toda) = text_dest(dev, iface, a)?;
        Body::Text { da, toda }
    } else {
        // A TPDU is at most 164 octets (23.040: 140 of user data plus the header fields).
        let len = num_in(a, 0, 7..=164, Final::Cms(304))?;
        Body::Pdu(usize::try_from(len).map_err(|_| Final::Cms(304))?)
    };
    Ok(Step {
        prompt: Some(Prompt::Cmgs(body)),
        ..Step::default()
    })
}

fn cmgw(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let text_mode = dev.ports[usize::from(iface)].settings.text_mode;
    let (body, stat) = match kind {
        Kind::Test => return Ok(Step::ok()),
        Kind::Query => return Err(Final::Error),
        Kind::Exec if text_mode => (
            Body::Text {
                da: String::new(),
                toda: 129,
            },
            2,
        ),
        Kind::Exec => return Err(Final::Cms(304)),
        Kind::Set(a) => {
            if text_mode {
                let (da, toda) = text_dest(dev, iface, a)?;
                let stat = match arg(a, 2) {
                    None => 2,
                    Some(x) => x.text().and_then(stat_from_text).ok_or(Final::Cms(304))?,
                };
                (Body::Text { da, toda }, stat)
            } else {
                let len = num_in(a, 0, 7..=164, Final::Cms(304))?;
                let stat = u8_of(opt_num(a, 1, 0..=3, Final::Cms(304))?.unwrap_or(2));
                (
                    Body::Pdu(usize::try_from(len).map_err(|_| Final::Cms(304))?),
                    stat,
                )
            }
        }
    };
    sim_cms(dev)?;
    Ok(Step {
        prompt: Some(Prompt::Cmgw(body, stat)),
        ..Step::default()
    })
}

/// Hex body of a PDU-mode `+CMGS`/`+CMGW` → the PDU, checked against `<length>`.
fn pdu_body(len: usize, data: &[u8]) -> Result<Vec<u8>, Final> {
    let hex: String = String::from_utf8_lossy(data)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = sms::pdu::from_hex(&hex).map_err(|_| Final::Cms(304))?;
    let prefix = sms::pdu::smsc_prefix_len(&bytes).ok_or(Final::Cms(304))?;
    // MF667.md §1: the length counts octets without the SMSC part; a mismatch is 304.
    if bytes.len() < prefix || bytes.len() - prefix != len {
        return Err(Final::Cms(304));
    }
    Ok(bytes)
}

/// A text-mode body → one SUBMIT PDU, using `+CSMP` (fo: SRR bit, vp; dcs: UCS2/8-bit → hex).
fn text_submit(dev: &Device, iface: u8, da: &str, data: &[u8]) -> Result<Vec<u8>, Final> {
    let s = &dev.ports[usize::from(iface)].settings;
    let [fo, vp, _pid, dcs] = s.csmp;
    let coding = sms::Dcs::from_byte(dcs);
    let text = match coding.encoding {
        sms::Encoding::Gsm7 => from_te(data, s.cscs).ok_or(Final::Cms(305))?,
        // 27.005 §3.1: with an 8-bit or UCS2 <dcs> the body is hex.
        sms::Encoding::Ucs2 => {
            let hex = std::str::from_utf8(data).map_err(|_| Final::Cms(305))?;
            let octets = sms::pdu::from_hex(hex).map_err(|_| Final::Cms(305))?;
            sms::ucs2::decode(&octets)
        }
        sms::Encoding::EightBit => {
            let hex = std::str::from_utf8(data).map_err(|_| Final::Cms(305))?;
            let octets = sms::pdu::from_hex(hex).map_err(|_| Final::Cms(305))?;
            octets.iter().map(|&b| char::from(b)).collect()
        }
    };
    let opts = sms::SubmitOptions {
        force_ucs2: coding.encoding == sms::Encoding::Ucs2,
        class: coding.class,
        status_report: fo & 0x20 != 0,
        validity: if fo & 0x18 == 0x10 {
            Some(sms::ValidityPeriod::Relative(vp))
        } else {
            None
        },
        ..sms::SubmitOptions::default()
    };
    let dest = if da.is_empty() { "0" } else { da };
    let parts = sms::submit_parts(dest, &text, &opts).map_err(|_| Final::Cms(305))?;
    // Text mode sends exactly one SMS: a text that needs parts is too long.
    if parts.len() != 1 {
        return Err(Final::Cms(305));
    }
    let enc = sms::Pdu::Submit(parts.into_iter().next().ok_or(Final::Cms(305))?)
        .encode()
        .map_err(|_| Final::Cms(305))?;
    sms::pdu::from_hex(&enc.hex).map_err(|_| Final::Cms(305))
}

/// The network takes a SUBMIT: record it, hand out a TP-MR, maybe schedule a status report.
fn network_send(dev: &mut Device, iface: u8, pdu: &[u8], via: &str) -> Result<u8, Final> {
    if !dev.registered() {
        return Err(Final::Cms(331));
    }
    let Ok(sms::Pdu::Submit(sub)) = sms::decode_bytes(pdu) else {
        return Err(Final::Cms(304));
    };
    let mr = dev.take_mr();
    let part = sub.user_data.concat.map(|c| SentPart {
        reference: c.reference,
        total: c.total,
        seq: c.seq,
    });
    dev.sent.push(SentSms {
        to: sub.destination.number.clone(),
        text: sub.user_data.text.clone(),
        mr,
        encoding: sub.user_data.encoding.as_str().to_string(),
        part,
        status_report: sub.status_report_request,
        class: sub.dcs.class,
        pdu: sms::pdu::to_hex(pdu),
        iface,
        via: via.to_string(),
    });
    bump(&mut dev.counters, "sms_sent");
    if sub.status_report_request && dev.cfg.status_reports {
        let d = dev.cfg.status_report_delay;
        dev.schedule(
            d,
            Timer::StatusReport {
                to: sub.destination.number.clone(),
                mr,
                submitted: now_scts(dev.cfg.tz_quarters),
            },
        );
    }
    Ok(mr)
}

fn send_body(dev: &mut Device, iface: u8, body: Body, data: &[u8]) -> R {
    let pdu = match &body {
        Body::Pdu(len) => pdu_body(*len, data)?,
        Body::Text { da, .. } => text_submit(dev, iface, da, data)?,
    };
    let mr = network_send(dev, iface, &pdu, "cmgs")?;
    Ok(Step::line(format!("+CMGS: {mr}")))
}

fn write_body(dev: &mut Device, iface: u8, body: Body, stat: u8, data: &[u8]) -> R {
    let pdu = match &body {
        Body::Pdu(len) => pdu_body(*len, data)?,
        Body::Text { da, .. } => text_submit(dev, iface, da, data)?,
    };
    let mem = dev.ports[usize::from(iface)].settings.mem2;
    match dev.stores.insert(mem, Msg { stat, pdu }) {
        Some(i) => Ok(Step::line(format!("+CMGW: {i}"))),
        // MF667.md §5.4: writes to a full store fail with 322.
        None => Err(Final::Cms(322)),
    }
}

fn cmss(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let Kind::Set(a) = kind else {
        return match kind {
            Kind::Test => Ok(Step::ok()),
            _ => Err(Final::Error),
        };
    };
    sim_cms(dev)?;
    let idx = index_arg(a, 0)?;
    let mem = dev.ports[usize::from(iface)].settings.mem2;
    let msg = dev.stores.get(mem, idx).cloned().ok_or(Final::Cms(321))?;
    let mut pdu = msg.pdu.clone();
    if let Some(new_da) = arg(a, 1).and_then(Arg::text) {
        // Re-address the stored SUBMIT: decode, swap TP-DA, encode.
        let Ok(sms::Pdu::Submit(mut sub)) = sms::decode_bytes(&pdu) else {
            return Err(Final::Cms(302));
        };
        sub.destination = sms::Address::parse(new_da).map_err(|_| Final::Cms(304))?;
        let enc = sms::Pdu::Submit(sub)
            .encode()
            .map_err(|_| Final::Cms(304))?;
        pdu = sms::pdu::from_hex(&enc.hex).map_err(|_| Final::Cms(304))?;
    }
    let mr = network_send(dev, iface, &pdu, "cmss")?;
    if let Some(m) = dev.stores.get_mut(mem, idx) {
        if m.stat == 2 {
            m.stat = 3;
        }
    }
    Ok(Step::line(format!("+CMSS: {mr}")))
}

/// `AT+CUSD=[<n>[,<str>[,<dcs>]]]` (MF667.md §2.3): OK at once, the answer later as a URC.
fn cusd(dev: &mut Device, iface: u8, kind: &Kind) -> R {
    let i = usize::from(iface);
    match kind {
        Kind::Test => Ok(Step::line("+CUSD: (0-2)")),
        Kind::Query => Ok(Step::line(format!("+CUSD: {}", dev.ports[i].settings.cusd))),
        Kind::Exec => {
            dev.ports[i].settings.cusd = 0;
            Ok(Step::ok())
        }
        Kind::Set(a) => {
            let n = opt_num(a, 0, 0..=2, Final::Cme(3))?.unwrap_or(0);
            if n == 2 {
                // Cancel: the session and any pending answer are gone.
                dev.ussd.pending = None;
                dev.ussd.menu = None;
                return Ok(Step::ok());
            }
            dev.ports[i].settings.cusd = u8_of(n);
            let Some(req) = arg(a, 1).and_then(Arg::text).map(str::to_string) else {
                return Ok(Step::ok());
            };
            sim_cme(dev)?;
            if !dev.registered() {
                return Err(Final::Cme(30));
            }
            let dcs = opt_num(a, 2, 0..=255, Final::Cme(3))?.map(u8_of);
            let req = ussd_request_text(&req, dcs);
            // With a menu open the string answers it; a new `*…#` code instead starts a new
            // session (the old one is dropped, as a network does).
            let menu = dev.ussd.menu.take();
            let choice = menu.as_ref().and_then(|m| {
                m.iter()
                    .find(|(answer, _)| *answer == req)
                    .map(|(_, r)| r.clone())
            });
            let is_code = req.starts_with('*') || req.starts_with('#');
            let reply = match (menu, choice) {
                (Some(_), Some(r)) => Some(r),
                (Some(_), None) if !is_code => None,
                _ => lookup(&dev.ussd_table, &req),
            };
            dev.ussd.next_id += 1;
            let id = dev.ussd.next_id;
            let never = reply.as_ref().is_some_and(|r| r.no_reply);
            let delay = reply
                .as_ref()
                .and_then(|r| r.delay)
                .unwrap_or(dev.cfg.ussd_delay);
            dev.ussd.pending = Some(UssdPending { id, iface, reply });
            bump(&mut dev.counters, "ussd_requests");
            if !never {
                dev.schedule(delay, Timer::UssdReply { id });
            }
            if iface == 2 && dev.cfg.if02_quirk && dev.is_attended(2) {
                // MF667.md §5.1: USSD through ttyUSB2 drops the stick off USB (after the OK).
                // The OK is written first: the session handles the Close afterwards.
                bump(&mut dev.counters, "if02_quirk_drops");
                let d = dev.cfg.replug_delay;
                dev.unplug(Some(d));
            }
            Ok(Step::ok())
        }
    }
}

fn lookup(table: &[(String, UssdReplySpec)], code: &str) -> Option<UssdReplySpec> {
    table
        .iter()
        .find(|(c, _)| c == code)
        .map(|(_, r)| r.clone())
}

/// The request as text. ZTE takes plain ASCII (MF667.md §2.3); a packed-hex request (the
/// Huawei convention) is unpacked by the `ussd` codec, so both work.
fn ussd_request_text(req: &str, dcs: Option<u8>) -> String {
    match crate::ussd::decode(req, dcs) {
        Ok(d) => d.text,
        Err(_) => req.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::SimConfig;
    use crate::sim::device::UsbState;
    use tokio::sync::watch;

    fn dev_with(cfg: SimConfig) -> Device {
        let (tx, _) = watch::channel(UsbState {
            plugged: true,
            generation: 0,
        });
        Device::new(cfg, tx)
    }

    fn dev() -> Device {
        dev_with(SimConfig::default())
    }

    /// Run a line and return body+final as text.
    fn at(d: &mut Device, line: &str) -> String {
        let body = cmdline::strip_prefix(line.as_bytes()).expect("AT");
        let o = execute(d, 1, body);
        let mut v = o.body;
        v.extend(o.final_code);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn identity_answers_are_bare_text() {
        let mut d = dev();
        assert_eq!(at(&mut d, "AT+CGMI"), "\r\nZTE CORPORATION\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CGMM"), "\r\nMF667\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CGSN"), "\r\n351234567890123\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CIMI"), "\r\n262071234567890\r\n\r\nOK\r\n");
        assert!(at(&mut d, "ATI").contains("Model: MF667\r\n"));
    }

    #[test]
    fn unknown_commands_are_error() {
        let mut d = dev();
        assert_eq!(at(&mut d, "AT+FOO"), "\r\nERROR\r\n");
        assert_eq!(at(&mut d, "AT#X"), "\r\nERROR\r\n");
        assert_eq!(at(&mut d, "AT"), "\r\nOK\r\n");
    }

    #[test]
    fn multiple_commands_on_one_line() {
        let mut d = dev();
        assert_eq!(
            at(&mut d, "ATE0+CPMS?"),
            "\r\n+CPMS: \"ME\",0,100,\"ME\",0,100,\"ME\",0,100\r\n\r\nOK\r\n"
        );
        assert!(!d.ports[1].settings.echo);
        assert_eq!(
            at(&mut d, "AT+CMGF=1;+CMGF?;+CSQ"),
            "\r\n+CMGF: 1\r\n\r\n+CSQ: 18,99\r\n\r\nOK\r\n"
        );
        // The first error stops the line.
        assert_eq!(at(&mut d, "AT+CMGF=7;+CMGF=0"), "\r\nERROR\r\n");
        assert!(d.ports[1].settings.text_mode);
    }

    #[test]
    fn numeric_mode_and_quiet() {
        let mut d = dev();
        assert_eq!(at(&mut d, "ATV0"), "0\r");
        assert_eq!(at(&mut d, "AT+CSQ"), "+CSQ: 18,99\r\n0\r");
        assert_eq!(at(&mut d, "AT+NOPE"), "4\r");
        assert_eq!(at(&mut d, "ATV1Q1"), "");
        assert_eq!(at(&mut d, "ATQ0"), "\r\nOK\r\n");
    }

    #[test]
    fn cmee_levels() {
        let mut d = dev_with(SimConfig {
            pin: Some("1234".into()),
            ..SimConfig::default()
        });
        assert_eq!(
            at(&mut d, "AT+CIMI"),
            "\r\n+CME ERROR: SIM PIN required\r\n"
        );
        at(&mut d, "AT+CMEE=1");
        assert_eq!(at(&mut d, "AT+CIMI"), "\r\n+CME ERROR: 11\r\n");
        assert_eq!(at(&mut d, "AT+CPMS?"), "\r\n+CMS ERROR: 311\r\n");
        at(&mut d, "AT+CMEE=0");
        assert_eq!(at(&mut d, "AT+CIMI"), "\r\nERROR\r\n");
    }

    #[test]
    fn pin_flow_counts_wrong_tries_then_puk() {
        let mut d = dev_with(SimConfig {
            pin: Some("1234".into()),
            ..SimConfig::default()
        });
        at(&mut d, "AT+CMEE=1");
        assert_eq!(at(&mut d, "AT+CPIN?"), "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CREG?"), "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
        assert_eq!(
            at(&mut d, "AT+ZPINPUK=?"),
            "\r\n+ZPINPUK: 3,10\r\n\r\nOK\r\n"
        );
        assert_eq!(at(&mut d, "AT+CPIN=\"0000\""), "\r\n+CME ERROR: 16\r\n");
        assert_eq!(
            at(&mut d, "AT+ZPINPUK=?"),
            "\r\n+ZPINPUK: 2,10\r\n\r\nOK\r\n"
        );
        at(&mut d, "AT+CPIN=\"0000\"");
        at(&mut d, "AT+CPIN=\"0000\"");
        assert_eq!(at(&mut d, "AT+CPIN?"), "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CIMI"), "\r\n+CME ERROR: 12\r\n");
        assert_eq!(at(&mut d, "AT+CPIN=\"12345678\",\"4321\""), "\r\nOK\r\n");
        // Correct PUK: SIM busy for a while.
        assert_eq!(at(&mut d, "AT+CIMI"), "\r\n+CME ERROR: 14\r\n");
        assert_eq!(at(&mut d, "AT+CPMS?"), "\r\n+CMS ERROR: 314\r\n");
    }

    #[test]
    fn sim_removed() {
        let mut d = dev_with(SimConfig {
            sim_present: false,
            ..SimConfig::default()
        });
        at(&mut d, "AT+CMEE=1");
        assert_eq!(at(&mut d, "AT+CPIN?"), "\r\n+CME ERROR: 10\r\n");
        assert_eq!(at(&mut d, "AT+CMGL=4"), "\r\n+CMS ERROR: 310\r\n");
    }

    #[test]
    fn network_queries() {
        let mut d = dev();
        assert_eq!(at(&mut d, "AT+CREG?"), "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
        at(&mut d, "AT+CREG=2");
        assert_eq!(
            at(&mut d, "AT+CREG?"),
            "\r\n+CREG: 2,1,1A2B,00C3F1E2\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+COPS?"),
            "\r\n+COPS: 0,0,\"o2 - de\",2\r\n\r\nOK\r\n"
        );
        at(&mut d, "AT+COPS=3,2");
        assert_eq!(
            at(&mut d, "AT+COPS?"),
            "\r\n+COPS: 0,2,\"26207\",2\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+ZPAS?"),
            "\r\n+ZPAS: \"UMTS\",\"CS_PS\"\r\n\r\nOK\r\n"
        );
        assert_eq!(at(&mut d, "AT+ZSNT?"), "\r\n+ZSNT: 0,0,0\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+ZSNT=2,0,0"), "\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+ZSNT?"), "\r\n+ZSNT: 2,0,0\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+ZSEC?"), "\r\n+ZSEC: 2,1\r\n\r\nOK\r\n");
        assert_eq!(
            at(&mut d, "AT+ZRSSI"),
            "\r\n+ZRSSI: 77,18,172\r\n\r\nOK\r\n"
        );
        assert_eq!(at(&mut d, "AT+ZOPRT?"), "\r\n+ZOPRT: 5\r\n\r\nOK\r\n");
    }

    #[test]
    fn zoprt_offline_deregisters_and_fails_services() {
        let mut d = dev();
        at(&mut d, "AT+CMEE=1");
        assert_eq!(at(&mut d, "AT+ZOPRT=6"), "\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CREG?"), "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CSQ"), "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
        assert_eq!(
            at(&mut d, "AT+CUSD=1,\"*100#\",15"),
            "\r\n+CME ERROR: 30\r\n"
        );
        assert_eq!(at(&mut d, "AT+ZOPRT=5"), "\r\nOK\r\n");
        // Searching until register_delay has passed (a timer).
        assert_eq!(at(&mut d, "AT+CREG?"), "\r\n+CREG: 0,2\r\n\r\nOK\r\n");
        assert!(d
            .take_timers()
            .iter()
            .any(|(t, x)| matches!(x, Timer::Register { .. }) && *t == Duration::from_secs(2)));
    }

    #[test]
    fn zcdrun_texts() {
        let mut d = dev();
        assert_eq!(
            at(&mut d, "AT+ZCDRUN=8"),
            "\r\nClose autorun state result(0:FAIL 1:SUCCESS):1\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+ZCDRUN=G"),
            "\r\nInquiry autorun open state result(0:NO 1:YES):0\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+ZCDRUN=F"),
            "\r\nexit download mode result(0:FAIL 1:SUCCESS):1\r\n\r\nOK\r\n"
        );
        assert_eq!(at(&mut d, "AT+ZCDRUN=Q"), "\r\nERROR\r\n");
    }

    #[test]
    fn cpms_set_query_test() {
        let mut d = dev();
        assert_eq!(
            at(&mut d, "AT+CPMS=\"SM\",\"SM\",\"SM\""),
            "\r\n+CPMS: 0,20,0,20,0,20\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+CPMS?"),
            "\r\n+CPMS: \"SM\",0,20,\"SM\",0,20,\"SM\",0,20\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+CPMS=\"SR\""),
            "\r\n+CPMS: 0,100,0,20,0,20\r\n\r\nOK\r\n"
        );
        assert_eq!(
            at(&mut d, "AT+CPMS=?"),
            "\r\n+CPMS: (\"ME\",\"MT\",\"SM\",\"SR\"),(\"ME\",\"MT\",\"SM\",\"SR\"),(\"ME\",\"MT\",\"SM\",\"SR\")\r\n\r\nOK\r\n"
        );
        at(&mut d, "AT+CMEE=1");
        assert_eq!(at(&mut d, "AT+CPMS=\"XX\""), "\r\n+CMS ERROR: 302\r\n");
    }

    #[test]
    fn cnmi_mode_2_is_rejected_like_zte() {
        let mut d = dev();
        assert_eq!(at(&mut d, "AT+CNMI=2,1,0,2,0"), "\r\nERROR\r\n");
        assert_eq!(at(&mut d, "AT+CNMI=3,1,2,2,0"), "\r\nOK\r\n");
        assert_eq!(at(&mut d, "AT+CNMI?"), "\r\n+CNMI: 3,1,2,2,0\r\n\r\nOK\r\n");
    }

    #[test]
    fn cmgr_empty_index_is_321_and_cmgd_flags() {
        let mut d = dev();
        at(&mut d, "AT+CMEE=1");
        assert_eq!(at(&mut d, "AT+CMGR=0"), "\r\n+CMS ERROR: 321\r\n");
        for stat in [0u8, 1, 2, 3] {
            d.stores.insert(
                Mem::Me,
                Msg {
                    stat,
                    pdu: vec![0, 4],
                },
            );
        }
        assert_eq!(
            at(&mut d, "AT+CMGD=?"),
            "\r\n+CMGD: (0,1,2,3),(0-4)\r\n\r\nOK\r\n"
        );
        at(&mut d, "AT+CMGD=0,1");
        assert_eq!(d.stores.indices(Mem::Me), vec![0, 2, 3]);
        at(&mut d, "AT+CMGD=0,2");
        assert_eq!(d.stores.indices(Mem::Me), vec![0, 2]);
        at(&mut d, "AT+CMGD=2");
        assert_eq!(d.stores.indices(Mem::Me), vec![0]);
        at(&mut d, "AT+CMGD=0,4");
        assert!(d.stores.indices(Mem::Me).is_empty());
        assert_eq!(at(&mut d, "AT+CMGD=500"), "\r\n+CMS ERROR: 321\r\n");
    }

    #[test]
    fn cmgs_prompts_and_checks_the_length() {
        let mut d = dev();
        at(&mut d, "AT+CMEE=1");
        let o = execute(&mut d, 1, b"+CMGS=19");
        assert_eq!(o.prompt, Some(Prompt::Cmgs(Body::Pdu(19))));
        // MF667.md E5.
        let ok = finish_prompt(
            &mut d,
            1,
            Prompt::Cmgs(Body::Pdu(19)),
            b"0031000C919471103254760000AA05C8329BFD06",
        );
        assert_eq!(ok.body, b"\r\n+CMGS: 1\r\n");
        assert_eq!(ok.final_code, b"\r\nOK\r\n");
        assert_eq!(d.sent[0].to, "+491701234567");
        assert_eq!(d.sent[0].text, "Hello");
        assert!(d.sent[0].status_report);
        let bad = finish_prompt(
            &mut d,
            1,
            Prompt::Cmgs(Body::Pdu(18)),
            b"0031000C919471103254760000AA05C8329BFD06",
        );
        assert_eq!(bad.final_code, b"\r\n+CMS ERROR: 304\r\n");
        assert_eq!(d.sent.len(), 1);
    }

    #[test]
    fn text_mode_cmgs_uses_csmp_and_cscs() {
        let mut d = dev();
        at(&mut d, "AT+CMGF=1");
        let o = execute(&mut d, 1, b"+CMGS=\"+491701234567\"");
        let p = o.prompt.expect("prompt");
        assert!(p.is_text());
        let ok = finish_prompt(&mut d, 1, p, b"Hi there");
        assert_eq!(ok.body, b"\r\n+CMGS: 1\r\n");
        assert_eq!(d.sent[0].text, "Hi there");
        assert!(!d.sent[0].status_report);
    }

    #[test]
    fn ussd_request_answers_ok_and_schedules_the_reply() {
        let mut d = dev();
        assert_eq!(at(&mut d, "AT+CUSD=1,\"*100#\",15"), "\r\nOK\r\n");
        let timers = d.take_timers();
        assert!(
            matches!(timers[..], [(t, Timer::UssdReply { id: 1 })] if t == Duration::from_secs(1))
        );
        assert_eq!(d.ports[1].settings.cusd, 1);
        // Cancel drops the pending answer.
        assert_eq!(at(&mut d, "AT+CUSD=2"), "\r\nOK\r\n");
        assert!(d.ussd.pending.is_none());
    }

    #[test]
    fn packed_ussd_requests_are_understood() {
        assert_eq!(ussd_request_text("AA180C3602", Some(15)), "*100#");
        assert_eq!(ussd_request_text("*100#", Some(15)), "*100#");
        assert_eq!(ussd_request_text("1", Some(15)), "1");
        assert_eq!(ussd_request_text("12", None), "12");
    }

    #[test]
    fn s_registers() {
        let mut d = dev();
        assert_eq!(at(&mut d, "ATS3?"), "\r\n013\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "ATS0=2"), "\r\nOK\r\n");
        assert_eq!(at(&mut d, "ATS0?"), "\r\n002\r\n\r\nOK\r\n");
        assert_eq!(at(&mut d, "ATS3=10"), "\r\nERROR\r\n");
    }

    #[test]
    fn atz_restores_power_on_settings() {
        let mut d = dev();
        at(&mut d, "ATE0V1+CMGF=1;+CSCS=\"GSM\"");
        at(&mut d, "ATZ");
        assert_eq!(d.ports[1].settings, Settings::power_on());
    }
}
