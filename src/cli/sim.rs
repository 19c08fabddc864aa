//! `atmate sim`: serve a simulated ZTE MF667 on pseudo-terminals, or drive one that is
//! running (through its control socket, `DIR/control`).
//!
//! Exit codes: 0 done; 1 the simulator refused the request (bad argument); 2 no simulator
//! answers at `DIR` (or it could not start).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::sim::{self, SimConfig, UssdDcs};

/// Arguments of `atmate sim`.
///
/// Examples:
///
/// ```text
/// atmate sim                                  # serve in the foreground until Ctrl-C
/// atmate sim --dir /tmp/mf667 serve --pin 1234 --transcript /tmp/mf667.log
/// atmate sim inject sms --from +491701234567 --text "Hello"
/// atmate sim inject sms --from +4917 --text "$(printf 'x%.0s' {1..400})" --shuffle --drop-part 2
/// atmate sim ussd set '*100#' 'Balance: 3.50 EUR' --dcs 72 --delay 2s
/// atmate sim unplug --for 3s
/// atmate sim network lost
/// atmate sim garbage '\r\n+CS'
/// atmate sim status
/// ```
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The simulator's folder (ports, by-id links, sysfs, control socket). Default:
    /// `$XDG_RUNTIME_DIR/atmate-sim`, else `/tmp/atmate-sim-$UID`.
    #[arg(long, global = true, env = "ATMATE_SIM_DIR")]
    pub dir: Option<PathBuf>,
    /// What to do; serve in the foreground when left out.
    #[command(subcommand)]
    pub command: Option<SimCommand>,
}

/// `atmate sim` subcommands.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulator in the foreground until Ctrl-C (the default).
    Serve(ServeArgs),
    /// Deliver an SMS or a raw PDU.
    #[command(subcommand)]
    Inject(InjectCommand),
    /// Change the network's USSD answers.
    #[command(subcommand)]
    Ussd(UssdCommand),
    /// Pull the stick (its ports close); it comes back after `--for`, or on `replug`.
    Unplug {
        /// Come back after this long (`3s`, `500ms`).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        for_: Option<Duration>,
    },
    /// Plug the stick back in.
    Replug,
    /// Lose or regain the network.
    Network {
        /// `lost` or `back`.
        state: NetworkState,
    },
    /// Set the signal (+CSQ rssi 0–31, 99 = unknown).
    Signal {
        /// rssi.
        csq: u8,
    },
    /// Fill or empty the message stores.
    Storage {
        /// `fill` or `clear`.
        action: StorageAction,
    },
    /// Write raw bytes to the AT ports (escapes: \r \n \t \e \z \\ \xHH).
    Garbage {
        /// The bytes.
        bytes: String,
        /// Only this interface.
        #[arg(long)]
        iface: Option<u8>,
    },
    /// Send a URC now, or arm it for an awkward moment of the next command.
    Urc {
        /// The line, e.g. `+CREG: 2`.
        line: String,
        /// `after-echo`, `before-prompt`, `before-final`.
        #[arg(long)]
        at: Option<String>,
        /// Only this interface.
        #[arg(long)]
        iface: Option<u8>,
    },
    /// Delay final result codes.
    Slow {
        /// The delay.
        #[arg(long, value_parser = humantime::parse_duration)]
        delay: Option<Duration>,
        /// Only commands starting with this (`AT+CMGS`).
        #[arg(long)]
        prefix: Option<String>,
        /// Only the next N answers.
        #[arg(long)]
        count: Option<u32>,
        /// Answer at full speed again.
        #[arg(long, conflicts_with_all = ["delay", "prefix", "count"])]
        clear: bool,
    },
    /// Flood both AT ports with `+ZUSIMR:2`.
    Zusimr {
        /// How many.
        #[arg(long, default_value_t = 100)]
        count: u32,
        /// Interval.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        every: Duration,
    },
    /// SIM faults: `remove`, `insert`, or `pin 1234` (locked until the PIN is entered).
    Card {
        /// `remove`, `insert` or `pin`.
        action: String,
        /// The PIN for `pin`.
        pin: Option<String>,
    },
    /// Everything as JSON: settings, stores with their messages, sent messages, counters.
    Status,
    /// What the stick sent, as JSON.
    Sent,
    /// Where the ports are now, as JSON.
    Ports,
    /// The wire transcript so far.
    Wire {
        /// Only the last N chunks.
        #[arg(long)]
        last: Option<usize>,
    },
    /// Stop the simulator.
    Stop,
}

/// How to serve.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Lock the SIM with this PIN.
    #[arg(long)]
    pub pin: Option<String>,
    /// Slots in the SIM store (SM).
    #[arg(long, default_value_t = 20)]
    pub sm_slots: u16,
    /// Turn off the if02 drop-off quirk.
    #[arg(long)]
    pub no_if02_quirk: bool,
    /// Delay of USSD answers.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ussd_delay: Option<Duration>,
    /// USB product id (hex), `0016` by default.
    #[arg(long)]
    pub product: Option<String>,
    /// USB serial (part of the by-id names).
    #[arg(long)]
    pub serial: Option<String>,
    /// Write every byte on the wire here, time-stamped (direction + escaped bytes per line).
    #[arg(long, alias = "wire-log")]
    pub transcript: Option<PathBuf>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            pin: None,
            sm_slots: SimConfig::default().capacities.sm,
            no_if02_quirk: false,
            ussd_delay: None,
            product: None,
            serial: None,
            transcript: None,
        }
    }
}

/// Deliveries.
#[derive(Debug, Subcommand)]
pub enum InjectCommand {
    /// An SMS; long texts arrive as concatenated parts.
    Sms {
        /// Sender (`+49…`, digits, or a name).
        #[arg(long)]
        from: String,
        /// Text.
        #[arg(long)]
        text: String,
        /// Force UCS-2.
        #[arg(long)]
        ucs2: bool,
        /// Flash SMS (class 0).
        #[arg(long)]
        class0: bool,
        /// Parts arrive in a random order.
        #[arg(long, conflicts_with = "reverse")]
        shuffle: bool,
        /// Parts arrive last first.
        #[arg(long)]
        reverse: bool,
        /// Leave out part K (1-based).
        #[arg(long)]
        drop_part: Option<u8>,
    },
    /// A raw SMS-DELIVER PDU (hex with SMSC prefix).
    Pdu {
        /// The hex.
        hex: String,
    },
}

/// USSD table changes.
#[derive(Debug, Subcommand)]
pub enum UssdCommand {
    /// Set the answer to CODE.
    Set {
        /// `*100#`.
        code: String,
        /// The answer text.
        reply: String,
        /// `15` (plain), `72` (UCS-2 hex), `68` (8-bit hex) or `packed` (GSM-7 hex).
        #[arg(long, default_value = "15")]
        dcs: String,
        /// Answer after this long.
        #[arg(long, value_parser = humantime::parse_duration)]
        delay: Option<Duration>,
        /// `+CUSD` state: 0 done, 1 waits for an answer, 2 ended by the network.
        #[arg(long, default_value_t = 0)]
        state: u8,
        /// Never answer.
        #[arg(long)]
        never: bool,
    },
    /// Forget CODE (answers `+CUSD: 4`).
    Remove {
        /// The code.
        code: String,
    },
}

/// `network` states.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NetworkState {
    /// The network goes away.
    Lost,
    /// It comes back.
    Back,
}

/// `storage` actions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StorageAction {
    /// Fill the receive store.
    Fill,
    /// Empty every store.
    Clear,
}

/// The default folder: per user, in the runtime dir when there is one.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("atmate-sim"),
        _ => PathBuf::from(format!("/tmp/atmate-sim-{}", nix::unistd::getuid())),
    }
}

/// Run `atmate sim`.
pub fn run(args: SimArgs) -> anyhow::Result<i32> {
    let dir = args.dir.unwrap_or_else(default_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    match args.command {
        None => rt.block_on(serve(&dir, ServeArgs::default())),
        Some(SimCommand::Serve(s)) => rt.block_on(serve(&dir, s)),
        Some(cmd) => {
            let req = match request_for(cmd) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("atmate sim: {e}");
                    return Ok(1);
                }
            };
            rt.block_on(drive(&dir, req))
        }
    }
}

/// The control request for a driving subcommand (local checks first).
fn request_for(cmd: SimCommand) -> Result<Value, String> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Ok(match cmd {
        SimCommand::Serve(_) => return Err("serve is not a request".into()),
        SimCommand::Inject(InjectCommand::Sms {
            from,
            text,
            ucs2,
            class0,
            shuffle,
            reverse,
            drop_part,
        }) => {
            let order = if shuffle {
                "shuffled"
            } else if reverse {
                "reversed"
            } else {
                "in_order"
            };
            json!({"cmd": "inject_sms", "from": from, "text": text, "ucs2": ucs2,
                   "class0": class0, "order": order, "drop_part": drop_part})
        }
        SimCommand::Inject(InjectCommand::Pdu { hex }) => json!({"cmd": "inject_pdu", "hex": hex}),
        SimCommand::Ussd(UssdCommand::Set {
            code,
            reply,
            dcs,
            delay,
            state,
            never,
        }) => {
            let d = UssdDcs::parse(&dcs)
                .ok_or_else(|| format!("--dcs must be 15, 72, 68 or packed, not {dcs:?}"))?;
            json!({"cmd": "ussd_set", "code": code, "text": reply, "dcs": d.name(),
                   "state": state, "delay_ms": delay.map(ms), "never": never})
        }
        SimCommand::Ussd(UssdCommand::Remove { code }) => {
            json!({"cmd": "ussd_remove", "code": code})
        }
        SimCommand::Unplug { for_ } => json!({"cmd": "unplug", "for_ms": for_.map(ms)}),
        SimCommand::Replug => json!({"cmd": "replug"}),
        SimCommand::Network { state } => json!({"cmd": "network", "state": match state {
            NetworkState::Lost => "lost",
            NetworkState::Back => "back",
        }}),
        SimCommand::Signal { csq } => json!({"cmd": "signal", "csq": csq}),
        SimCommand::Storage { action } => json!({"cmd": "storage", "action": match action {
            StorageAction::Fill => "fill",
            StorageAction::Clear => "clear",
        }}),
        SimCommand::Garbage { bytes, iface } => {
            let raw = sim::wire::unescape(&bytes)?;
            json!({"cmd": "garbage", "hex": crate::sms::pdu::to_hex(&raw), "iface": iface})
        }
        SimCommand::Urc { line, at, iface } => {
            json!({"cmd": "urc", "line": line, "moment": at.map(|m| m.replace('-', "_")), "iface": iface})
        }
        SimCommand::Slow {
            delay,
            prefix,
            count,
            clear,
        } => {
            if clear {
                json!({"cmd": "slow", "clear": true})
            } else {
                let d = delay.ok_or("slow needs --delay (or --clear)")?;
                json!({"cmd": "slow", "delay_ms": ms(d), "prefix": prefix, "count": count})
            }
        }
        SimCommand::Zusimr { count, every } => {
            json!({"cmd": "zusimr", "count": count, "every_ms": ms(every)})
        }
        SimCommand::Card { action, pin } => json!({"cmd": "sim", "action": action, "pin": pin}),
        SimCommand::Status => json!({"cmd": "status"}),
        SimCommand::Sent => json!({"cmd": "sent"}),
        SimCommand::Ports => json!({"cmd": "ports"}),
        SimCommand::Wire { last } => json!({"cmd": "wire", "last": last}),
        SimCommand::Stop => json!({"cmd": "stop"}),
    })
}

async fn drive(dir: &Path, req: Value) -> anyhow::Result<i32> {
    let socket = dir.join("control");
    let cmd = req["cmd"].as_str().unwrap_or("").to_string();
    // Drop nulls: the socket treats an absent field as "not given".
    let req = match req {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        v => v,
    };
    let resp = match sim::control::request(&socket, &req).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("atmate sim: {e}");
            return Ok(2);
        }
    };
    if resp["ok"] != Value::Bool(true) {
        eprintln!(
            "atmate sim: {}",
            resp["error"]
                .as_str()
                .unwrap_or("the simulator refused the request")
        );
        return Ok(1);
    }
    match cmd.as_str() {
        "status" => println!("{}", serde_json::to_string_pretty(&resp["status"])?),
        "sent" | "ports" => {
            let mut v = resp.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("ok");
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        "wire" => {
            for l in resp["lines"].as_array().into_iter().flatten() {
                println!("{}", l.as_str().unwrap_or(""));
            }
        }
        "inject_sms" => {
            for d in resp["deliveries"].as_array().into_iter().flatten() {
                println!("{}", describe_delivery(d));
            }
        }
        "inject_pdu" => println!("{}", describe_delivery(&resp["delivery"])),
        _ => {}
    }
    Ok(0)
}

fn describe_delivery(d: &Value) -> String {
    match d["delivery"].as_str() {
        Some("stored") => format!(
            "stored in {} at index {}",
            d["mem"].as_str().unwrap_or("?"),
            d["index"]
        ),
        Some("direct") => "routed directly (+CMT)".into(),
        Some("held") => "held by the network (store full or no service)".into(),
        Some("dropped") => "dropped (--drop-part)".into(),
        _ => d.to_string(),
    }
}

fn config_for(s: &ServeArgs) -> anyhow::Result<SimConfig> {
    let mut cfg = SimConfig {
        pin: s.pin.clone(),
        if02_quirk: !s.no_if02_quirk,
        ..SimConfig::default()
    };
    cfg.capacities.sm = s.sm_slots;
    if let Some(d) = s.ussd_delay {
        cfg.ussd_delay = d;
    }
    if let Some(p) = &s.product {
        cfg.identity.usb_product = u16::from_str_radix(p.trim_start_matches("0x"), 16)
            .with_context(|| format!("--product {p:?} is not a hex USB product id"))?;
    }
    if let Some(serial) = &s.serial {
        cfg.identity.usb_serial = serial.clone();
    }
    cfg.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(cfg)
}

async fn serve(dir: &Path, s: ServeArgs) -> anyhow::Result<i32> {
    let cfg = match config_for(&s) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("atmate sim: {e:#}");
            return Ok(1);
        }
    };
    let pty = sim::serve_pty(dir, cfg)
        .await
        .with_context(|| format!("serve the simulator in {}", dir.display()))?;
    if let Some(path) = &s.transcript {
        let file = std::fs::File::create(path)
            .with_context(|| format!("create the transcript {}", path.display()))?;
        tokio::spawn(write_transcript(pty.handle().wire_subscribe(), file));
    }
    println!("atmate sim: ZTE MF667 simulator in {}", pty.dir().display());
    for p in pty.ports() {
        let role = match p.iface {
            0 => "DIAG, no AT",
            1 => "AT",
            _ => "AT/PPP, drops off USB on USSD/SMS traffic",
        };
        println!(
            "  if{:02} {} -> {}  ({role})",
            p.iface,
            p.path.display(),
            p.pts.display()
        );
        println!("       {}", p.by_id.display());
    }
    println!("  sysfs   {}", pty.sysfs().display());
    println!("  control {}", pty.control_socket().display());
    println!("Ctrl-C stops it.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("wait for Ctrl-C")?,
        _ = term.recv() => {},
        _ = pty.stopped() => {},
    }
    pty.shutdown().await;
    Ok(0)
}

async fn write_transcript(
    mut rx: tokio::sync::broadcast::Receiver<sim::WireEntry>,
    mut file: std::fs::File,
) {
    use std::io::Write;
    loop {
        match rx.recv().await {
            Ok(e) => {
                if writeln!(file, "{}", e.transcript_line()).is_err() {
                    return;
                }
                let _ = file.flush();
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                let _ = writeln!(file, "# {n} chunks lost (transcript writer too slow)");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> SimArgs {
        let mut v = vec!["sim"];
        v.extend_from_slice(args);
        T::try_parse_from(v).expect("parses").sim
    }

    #[test]
    fn no_subcommand_serves() {
        let a = parse(&["--dir", "/tmp/x"]);
        assert!(a.command.is_none());
        assert_eq!(a.dir.as_deref(), Some(Path::new("/tmp/x")));
    }

    #[test]
    fn dir_works_after_the_subcommand_too() {
        let a = parse(&["status", "--dir", "/tmp/y"]);
        assert_eq!(a.dir.as_deref(), Some(Path::new("/tmp/y")));
    }

    #[test]
    fn inject_sms_request() {
        let a = parse(&[
            "inject",
            "sms",
            "--from",
            "+4917",
            "--text",
            "hi",
            "--shuffle",
            "--drop-part",
            "2",
        ]);
        let r = request_for(a.command.expect("cmd")).expect("request");
        assert_eq!(r["cmd"], "inject_sms");
        assert_eq!(r["order"], "shuffled");
        assert_eq!(r["drop_part"], 2);
    }

    #[test]
    fn ussd_set_validates_dcs_and_converts_delay() {
        let a = parse(&[
            "ussd", "set", "*100#", "Balance", "--dcs", "72", "--delay", "2s",
        ]);
        let r = request_for(a.command.expect("cmd")).expect("request");
        assert_eq!(
            (r["dcs"].as_str(), r["delay_ms"].as_u64()),
            (Some("72"), Some(2000))
        );
        let a = parse(&["ussd", "set", "*100#", "x", "--dcs", "99"]);
        assert!(request_for(a.command.expect("cmd")).is_err());
    }

    #[test]
    fn garbage_escapes_become_hex() {
        let a = parse(&["garbage", r"\r\n+CS\x1a"]);
        let r = request_for(a.command.expect("cmd")).expect("request");
        assert_eq!(r["hex"], "0D0A2B43531A");
        let a = parse(&["garbage", r"\q"]);
        assert!(request_for(a.command.expect("cmd")).is_err());
    }

    #[test]
    fn unplug_for_is_a_duration() {
        let a = parse(&["unplug", "--for", "3s"]);
        let r = request_for(a.command.expect("cmd")).expect("request");
        assert_eq!(r["for_ms"], 3000);
        let a = parse(&["unplug"]);
        assert!(request_for(a.command.expect("cmd")).expect("req")["for_ms"].is_null());
    }

    #[test]
    fn serve_config_from_flags() {
        let s = ServeArgs {
            pin: Some("1234".into()),
            sm_slots: 5,
            no_if02_quirk: true,
            product: Some("1405".into()),
            ..ServeArgs::default()
        };
        let c = config_for(&s).expect("valid");
        assert_eq!(c.pin.as_deref(), Some("1234"));
        assert_eq!(c.capacities.sm, 5);
        assert!(!c.if02_quirk);
        assert_eq!(c.identity.usb_product, 0x1405);
        let bad = ServeArgs {
            product: Some("zz".into()),
            ..ServeArgs::default()
        };
        assert!(config_for(&bad).is_err());
    }

    #[test]
    fn default_dir_is_per_user() {
        let d = default_dir();
        assert!(d.to_string_lossy().contains("atmate-sim"));
    }
}
