//! The simulator on its own: exact bytes on the wire for the device behaviours, each fault,
//! the PTY face (unplug/replug, by-id, sysfs), the control socket and `atmate sim`.
//!
//! In-process tests run with paused tokio time (USSD delays, registration, replugs take no
//! wall time); tests about real I/O use a PTY.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use atmate::sim::{
    self, Delivery, InjectSms, PartOrder, SimConfig, SimError, SimHandle, UrcMoment, UssdDcs,
    UssdReplySpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

// ----- helpers --------------------------------------------------------------------------

/// One in-process port, read with a buffer so tests can wait for exact byte sequences.
struct Port {
    s: DuplexStream,
    buf: Vec<u8>,
}

impl Port {
    fn new(s: DuplexStream) -> Port {
        Port { s, buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("write to the port");
    }

    /// Read until `needle` has arrived; return everything up to and including it.
    async fn until(&mut self, needle: &str) -> String {
        let needle = needle.as_bytes();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(p) = find(&self.buf, needle) {
                let rest = self.buf.split_off(p + needle.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return String::from_utf8_lossy(&got).into_owned();
            }
            let mut tmp = [0u8; 1024];
            match tokio::time::timeout_at(deadline, self.s.read(&mut tmp)).await {
                Ok(Ok(0)) => panic!(
                    "EOF while waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
                Ok(Err(e)) => panic!("read error {e}"),
                Err(_) => panic!(
                    "timed out waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Send a command line (with E0 set) and read up to its final result code.
    async fn at(&mut self, line: &str) -> String {
        self.send(format!("{line}\r").as_bytes()).await;
        self.final_code().await
    }

    async fn final_code(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            for end in ["\r\nOK\r\n", "\r\nERROR\r\n"] {
                if let Some(p) = text.find(end) {
                    let cut = p + end.len();
                    let rest = self.buf.split_off(cut);
                    self.buf = rest;
                    return text[..cut].to_string();
                }
            }
            for start in ["\r\n+CME ERROR: ", "\r\n+CMS ERROR: "] {
                if let Some(p) = text.find(start) {
                    if let Some(e) = text[p + 2..].find("\r\n") {
                        let cut = p + 2 + e + 2;
                        let rest = self.buf.split_off(cut);
                        self.buf = rest;
                        return text[..cut].to_string();
                    }
                }
            }
            let mut tmp = [0u8; 1024];
            match tokio::time::timeout_at(deadline, self.s.read(&mut tmp)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&tmp[..n]),
                other => panic!("no final code ({other:?}); got {text:?}"),
            }
        }
    }

    /// What arrives within `d` (the clock moves only by `d` in paused tests).
    async fn within(&mut self, d: Duration) -> String {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let mut tmp = [0u8; 1024];
            match tokio::time::timeout_at(deadline, self.s.read(&mut tmp)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&tmp[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }

    /// The raw bytes that arrive within `d`.
    async fn within_bytes(&mut self, d: Duration) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let mut tmp = [0u8; 1024];
            match tokio::time::timeout_at(deadline, self.s.read(&mut tmp)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&tmp[..n]),
                _ => break,
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// The next read returns EOF (the port was closed by an unplug).
    async fn expect_eof(&mut self) {
        let mut tmp = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.s.read(&mut tmp)).await {
                Ok(Ok(0)) => return,
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return,
                Err(_) => panic!("the port did not close"),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A stick with if01 open and echo off.
async fn stick(cfg: SimConfig) -> (Port, SimHandle) {
    let sim = SimHandle::spawn(cfg);
    let mut p = Port::new(sim.open_port(1).expect("open if01"));
    assert_eq!(p.at("ATE0").await, "ATE0\r\r\nOK\r\n");
    (p, sim)
}

fn ts(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339")
}

/// A PTY slave opened like a terminal program would (O_NOCTTY), read with poll().
pub(crate) struct Tty {
    file: std::fs::File,
    buf: Vec<u8>,
}

impl Tty {
    pub(crate) fn open(path: &Path) -> Tty {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Tty {
            file,
            buf: Vec::new(),
        }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.file.write_all(bytes).expect("write to the tty");
    }

    /// Read what is there within `d`; `None` on EOF/EIO (the master went away).
    fn read_some(&mut self, d: Duration) -> Option<usize> {
        let mut fds = [nix::poll::PollFd::new(
            self.file.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = u16::try_from(d.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) => Some(0),
            Ok(_) => {
                let mut tmp = [0u8; 4096];
                match self.file.read(&mut tmp) {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        self.buf.extend_from_slice(&tmp[..n]);
                        Some(n)
                    }
                }
            }
            Err(_) => Some(0),
        }
    }

    pub(crate) fn until(&mut self, needle: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some(p) = find(&self.buf, needle.as_bytes()) {
                let rest = self.buf.split_off(p + needle.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return String::from_utf8_lossy(&got).into_owned();
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {needle:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            if self
                .read_some(left.min(Duration::from_millis(200)))
                .is_none()
            {
                panic!(
                    "EOF waiting for {needle:?}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    pub(crate) fn expect_hangup(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.read_some(Duration::from_millis(100)).is_none() {
                return;
            }
        }
        panic!("the tty did not hang up");
    }
}

/// Poll `f` until it is true (real time, for the PTY face).
fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not happen within {timeout:?}");
}

// ----- framing, echo, V.250 --------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn it_echoes_every_byte_before_answering() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p = Port::new(sim.open_port(1).expect("open"));
    // MF667.md §1: `AT\r` → `AT\r` `\r\nOK\r\n` (41 54 0D 0D 0A 4F 4B 0D 0A).
    p.send(b"AT\r").await;
    assert_eq!(p.until("OK\r\n").await.as_bytes(), b"AT\r\r\nOK\r\n");
    // The whole line is echoed even when it turns echo off.
    p.send(b"ATE0+CPMS?\r").await;
    assert_eq!(
        p.until("OK\r\n").await,
        "ATE0+CPMS?\r\r\n+CPMS: \"ME\",0,100,\"ME\",0,100,\"ME\",0,100\r\n\r\nOK\r\n"
    );
    p.send(b"AT+CSQ\r").await;
    assert_eq!(p.until("OK\r\n").await, "\r\n+CSQ: 18,99\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn it_echoes_byte_by_byte_and_honours_backspace() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    assert_eq!(p.at("ATE1").await, "\r\nOK\r\n");
    for b in b"AT+CSX\x08Q" {
        p.send(&[*b]).await;
    }
    assert_eq!(p.within(Duration::from_millis(10)).await, "AT+CSX\x08Q");
    p.send(b"\r").await;
    assert_eq!(p.until("OK\r\n").await, "\r\r\n+CSQ: 18,99\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn numeric_mode_gives_digits() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.send(b"ATV0\r").await;
    assert_eq!(p.until("0\r").await, "0\r");
    p.send(b"AT+CSQ\r").await;
    assert_eq!(p.until("0\r").await, "+CSQ: 18,99\r\n0\r");
    p.send(b"AT+BOGUS\r").await;
    assert_eq!(p.until("4\r").await, "4\r");
}

#[tokio::test(start_paused = true)]
async fn semicolons_and_unknown_commands() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    assert_eq!(
        p.at("AT+CMGF=1;+CMGF?;+CSCS?").await,
        "\r\n+CMGF: 1\r\n\r\n+CSCS: \"IRA\"\r\n\r\nOK\r\n"
    );
    assert_eq!(p.at("AT+CLAC").await, "\r\nERROR\r\n");
    // A line without AT is ignored, silently (gammu's blind ESC CR).
    p.send(b"\x1b\r").await;
    assert_eq!(p.within(Duration::from_millis(50)).await, "");
}

#[tokio::test(start_paused = true)]
async fn atz_restores_power_on_defaults() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.at("AT+CMGF=1;+CSCS=\"GSM\";+CNMI=1,2,0,0,0").await;
    p.send(b"ATZ\r").await;
    assert_eq!(p.until("OK\r\n").await, "\r\nOK\r\n");
    // Echo is back on, and the MF667 defaults (MF667.md §5.2) are in place.
    p.send(b"AT+CNMI?;+CMGF?;+CSCS?\r").await;
    assert_eq!(
        p.until("OK\r\n").await,
        "AT+CNMI?;+CMGF?;+CSCS?\r\r\n+CNMI: 3,1,0,2,0\r\n\r\n+CMGF: 0\r\n\r\n+CSCS: \"IRA\"\r\n\r\nOK\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn identity_and_zte_commands() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    assert_eq!(p.at("AT+CGMI").await, "\r\nZTE CORPORATION\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CGMM").await, "\r\nMF667\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CGSN").await, "\r\n351234567890123\r\n\r\nOK\r\n");
    assert_eq!(
        p.at("AT+ZPINPUK=?").await,
        "\r\n+ZPINPUK: 3,10\r\n\r\nOK\r\n"
    );
    assert_eq!(
        p.at("AT+ZCDRUN=8").await,
        "\r\nClose autorun state result(0:FAIL 1:SUCCESS):1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        p.at("AT+ZCDRUN=9").await,
        "\r\nOpen autorun state result(0:FAIL 1:SUCCESS):1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        p.at("AT+ZCDRUN=4").await,
        "\r\nInquiry autorun open state result(0:NO 1:YES):1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        p.at("AT+ZPAS?").await,
        "\r\n+ZPAS: \"UMTS\",\"CS_PS\"\r\n\r\nOK\r\n"
    );
    assert_eq!(p.at("AT+ZSEC?").await, "\r\n+ZSEC: 2,1\r\n\r\nOK\r\n");
    assert_eq!(
        p.at("AT+COPS?").await,
        "\r\n+COPS: 0,0,\"o2 - de\",2\r\n\r\nOK\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn identity_is_configurable() {
    let mut cfg = SimConfig::default();
    cfg.identity.manufacturer = "ZTE INCORPORATED".into();
    cfg.identity.imei = "490154203237518".into();
    let (mut p, _sim) = stick(cfg).await;
    assert_eq!(p.at("AT+CGMI").await, "\r\nZTE INCORPORATED\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CGSN").await, "\r\n490154203237518\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn cops_scan_is_slow() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.send(b"AT+COPS=?\r").await;
    assert_eq!(p.within(Duration::from_secs(9)).await, "");
    assert_eq!(
        p.until("OK\r\n").await,
        "\r\n+COPS: (2,\"o2 - de\",\"o2 - de\",\"26207\",2),(3,\"Telekom.de\",\"TDG\",\"26201\",0),,(0,1,2,3,4),(0,1,2)\r\n\r\nOK\r\n"
    );
}

// ----- ports -------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ports_are_exclusive_and_if00_answers_nothing() {
    let sim = SimHandle::spawn(SimConfig::default());
    let _p1 = sim.open_port(1).expect("open if01");
    assert!(matches!(sim.open_port(1), Err(SimError::Busy(1))));
    assert!(matches!(sim.open_port(3), Err(SimError::NoSuchPort(3))));
    let mut diag = Port::new(sim.open_port(0).expect("open if00"));
    diag.send(b"AT\r").await;
    assert_eq!(diag.within(Duration::from_secs(2)).await, "");
    // The bytes did reach the stick.
    let log = sim.wire_log().await;
    assert_eq!(
        sim::wire::joined(&log, 0, sim::Direction::ToStick),
        b"AT\r".to_vec()
    );
    // Closing a port frees it.
    drop(_p1);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(sim.open_port(1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn ports_have_their_own_settings_and_share_stores() {
    let sim = SimHandle::spawn(SimConfig {
        if02_quirk: false,
        ..SimConfig::default()
    });
    let mut p1 = Port::new(sim.open_port(1).expect("if01"));
    let mut p2 = Port::new(sim.open_port(2).expect("if02"));
    p1.at("ATE0").await;
    p2.at("ATE0").await;
    p1.at("AT+CMGF=1").await;
    assert_eq!(p2.at("AT+CMGF?").await, "\r\n+CMGF: 0\r\n\r\nOK\r\n");
    sim.inject_sms(InjectSms::new("+491701234567", "shared"))
        .await
        .expect("inject");
    // Both ports got the +CMTI (CNMI 3,1,0,2,0 everywhere; the if02 quirk is off here).
    assert_eq!(
        p1.until("\r\n+CMTI: \"ME\",0\r\n").await,
        "\r\n+CMTI: \"ME\",0\r\n"
    );
    assert_eq!(
        p2.until("\r\n+CMTI: \"ME\",0\r\n").await,
        "\r\n+CMTI: \"ME\",0\r\n"
    );
    assert_eq!(
        p2.at("AT+CPMS?").await,
        "\r\n+CPMS: \"ME\",1,100,\"ME\",1,100,\"ME\",1,100\r\n\r\nOK\r\n"
    );
}

// ----- receiving SMS --------------------------------------------------------------------------

/// MF667.md §4 E1, delivered by the simulator byte for byte.
const E1: &str =
    "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";

#[tokio::test(start_paused = true)]
async fn injected_sms_gives_cmti_and_reads_back_as_the_mf667_example() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    assert_eq!(
        p.at("AT+CPMS=\"SM\",\"SM\",\"SM\"").await,
        "\r\n+CPMS: 0,20,0,20,0,20\r\n\r\nOK\r\n"
    );
    let idx = sim
        .inject_sms(InjectSms {
            timestamp: Some(ts("2024-03-15T14:30:05+02:00")),
            ..InjectSms::new("+491701234567", "Hallo! 5€ [ok]")
        })
        .await
        .expect("inject");
    assert_eq!(idx, vec![0]);
    assert_eq!(p.until("\r\n").await, "\r\n");
    assert_eq!(p.until("\r\n").await, "+CMTI: \"SM\",0\r\n");
    assert_eq!(
        p.at("AT+CMGR=0").await,
        format!("\r\n+CMGR: 0,,34\r\n{E1}\r\n\r\nOK\r\n")
    );
    // Reading marked it READ.
    assert_eq!(
        p.at("AT+CMGL=4").await,
        format!("\r\n+CMGL: 0,1,,34\r\n{E1}\r\n\r\nOK\r\n")
    );
    assert_eq!(p.at("AT+CMGL=0").await, "\r\nOK\r\n");
    assert_eq!(p.at("AT+CMEE=1").await, "\r\nOK\r\n");
    assert_eq!(p.at("AT+CMGR=5").await, "\r\n+CMS ERROR: 321\r\n");
    // Text-mode strings in PDU mode are an error (MF667.md §2.1).
    assert_eq!(p.at("AT+CMGL=\"ALL\"").await, "\r\nERROR\r\n");
}

#[tokio::test(start_paused = true)]
async fn text_mode_lists_and_reads() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CMGF=1").await;
    sim.inject_sms(InjectSms {
        timestamp: Some(ts("2013-01-28T14:51:42+02:00")),
        ..InjectSms::new("+27748577604", "Hello raspberry pi")
    })
    .await
    .expect("inject");
    p.until("+CMTI: \"ME\",0\r\n").await;
    // MF667.md §2.1 ([pgm] real data).
    assert_eq!(
        p.at("AT+CMGL=\"ALL\"").await,
        "\r\n+CMGL: 0,\"REC UNREAD\",\"+27748577604\",,\"13/01/28,14:51:42+08\"\r\nHello raspberry pi\r\n\r\nOK\r\n"
    );
    assert_eq!(
        p.at("AT+CMGR=0").await,
        "\r\n+CMGR: \"REC READ\",\"+27748577604\",,\"13/01/28,14:51:42+08\"\r\nHello raspberry pi\r\n\r\nOK\r\n"
    );
    // UCS-2 messages show as hex in text mode (27.005 §3.1).
    sim.inject_sms(InjectSms {
        timestamp: Some(ts("2024-12-01T09:05:00-03:00")),
        ..InjectSms::new("O2", "Привет")
    })
    .await
    .expect("inject");
    p.until("+CMTI: \"ME\",1\r\n").await;
    assert_eq!(
        p.at("AT+CMGR=1").await,
        "\r\n+CMGR: \"REC UNREAD\",\"O2\",,\"24/12/01,09:05:00-12\"\r\n041F04400438043204350442\r\n\r\nOK\r\n"
    );
}

fn stored_seqs(status: &serde_json::Value) -> Vec<u64> {
    status["stores"]["ME"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["part"]["seq"].as_u64().expect("a part"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn long_text_arrives_as_shuffled_parts() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    let text = "0123456789".repeat(40); // 400 characters: 3 parts of ≤153
    let idx = sim
        .inject_sms(InjectSms {
            order: PartOrder::Shuffled(7),
            ..InjectSms::new("+491701234567", text.clone())
        })
        .await
        .expect("inject");
    assert_eq!(idx, vec![0, 1, 2]);
    let st = sim.status().await;
    let seqs = stored_seqs(&st);
    assert_ne!(seqs, vec![1, 2, 3], "parts arrived in order");
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![1, 2, 3]);
    // In sequence order the parts give the text back.
    let msgs = st["stores"]["ME"]["messages"].as_array().expect("messages");
    let mut parts: Vec<(u64, String)> = msgs
        .iter()
        .map(|m| {
            (
                m["part"]["seq"].as_u64().unwrap_or(0),
                m["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    parts.sort();
    assert_eq!(parts.into_iter().map(|(_, t)| t).collect::<String>(), text);
    p.until("+CMTI: \"ME\",2\r\n").await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_part_never_arrives() {
    let sim = SimHandle::spawn(SimConfig::default());
    let d = sim
        .inject_sms_detailed(InjectSms {
            drop_part: Some(2),
            ..InjectSms::new("+491701234567", "0123456789".repeat(40))
        })
        .await
        .expect("inject");
    assert_eq!(
        d,
        vec![
            Delivery::Stored {
                mem: "ME".into(),
                index: 0
            },
            Delivery::Dropped,
            Delivery::Stored {
                mem: "ME".into(),
                index: 1
            }
        ]
    );
    assert_eq!(stored_seqs(&sim.status().await), vec![1, 3]);
    let bad = sim
        .inject_sms(InjectSms {
            drop_part: Some(4),
            ..InjectSms::new("+491701234567", "0123456789".repeat(40))
        })
        .await;
    assert!(matches!(bad, Err(SimError::Invalid(_))));
}

#[tokio::test(start_paused = true)]
async fn reversed_ucs2_parts_and_class0() {
    let sim = SimHandle::spawn(SimConfig::default());
    let text = "Привет ".repeat(15); // 105 UCS-2 characters: 2 parts of ≤67
    let idx = sim
        .inject_sms(InjectSms {
            ucs2: true,
            order: PartOrder::Reversed,
            ..InjectSms::new("+491701234567", text)
        })
        .await
        .expect("inject");
    assert_eq!(idx, vec![0, 1]);
    let st = sim.status().await;
    assert_eq!(st["stores"]["ME"]["messages"][0]["part"]["seq"], 2);
    let flash = sim
        .inject_sms(InjectSms {
            class0: true,
            ..InjectSms::new("+491701234567", "flash")
        })
        .await
        .expect("inject");
    assert_eq!(flash, vec![2]);
    let pdu = sim.status().await["stores"]["ME"]["messages"][2]["pdu"]
        .as_str()
        .expect("pdu")
        .to_string();
    match atmate::sms::decode_hex(&pdu).expect("decodes") {
        atmate::sms::Pdu::Deliver(d) => assert_eq!(d.dcs.class, Some(0)),
        other => panic!("not a DELIVER: {other:?}"),
    }
}

/// MF667.md §4 E2: UCS-2, alphanumeric sender "O2", TZ −3 h.
const E2: &str = "07919471016700000404D04F190008422110905000290C041F04400438043204350442";

#[tokio::test(start_paused = true)]
async fn injected_pdus_are_stored_as_given() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    sim.inject_pdu(E2).await.expect("inject E2");
    p.until("+CMTI: \"ME\",0\r\n").await;
    assert_eq!(
        p.at("AT+CMGR=0").await,
        format!("\r\n+CMGR: 0,,27\r\n{E2}\r\n\r\nOK\r\n")
    );
    // Undecodable is fine (the engine's "undecodable" path); not hex is not.
    let d = sim
        .inject_pdu_detailed("0004FF")
        .await
        .expect("undecodable but deliverable");
    assert_eq!(
        d,
        Delivery::Stored {
            mem: "ME".into(),
            index: 1
        }
    );
    assert_eq!(
        sim.status().await["stores"]["ME"]["messages"][1]["kind"],
        "undecodable"
    );
    assert!(matches!(
        sim.inject_pdu("07ZZ").await,
        Err(SimError::InvalidPdu(_))
    ));
    assert!(matches!(
        sim.inject_pdu("0791").await,
        Err(SimError::InvalidPdu(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn cnmi_mt2_routes_directly_and_mode2_is_rejected() {
    let (mut p, sim) = stick(SimConfig {
        if02_quirk: false,
        ..SimConfig::default()
    })
    .await;
    // MF667.md §5.8: mode 2 is rejected on ZTE.
    assert_eq!(p.at("AT+CNMI=2,2,0,0,0").await, "\r\nERROR\r\n");
    assert_eq!(p.at("AT+CNMI=3,2,0,0,0").await, "\r\nOK\r\n");
    // The other AT port still has mt=1 (its own settings) — switch it too, so nothing is stored.
    let mut p2 = Port::new(sim.open_port(2).expect("if02"));
    p2.at("ATE0").await;
    p2.at("AT+CNMI=3,2,0,0,0").await;
    let idx = sim
        .inject_sms(InjectSms {
            timestamp: Some(ts("2024-03-15T14:30:05+02:00")),
            ..InjectSms::new("+491701234567", "Hallo! 5€ [ok]")
        })
        .await
        .expect("inject");
    assert_eq!(idx, vec![0], "0 = routed directly");
    assert_eq!(
        p.until(&format!("{E1}\r\n")).await,
        format!("\r\n+CMT: ,34\r\n{E1}\r\n")
    );
    assert_eq!(sim.status().await["stores"]["ME"]["used"], 0);
    // Text mode +CMT.
    p.at("AT+CMGF=1").await;
    sim.inject_sms(InjectSms {
        timestamp: Some(ts("2013-01-28T14:51:42+02:00")),
        ..InjectSms::new("+27748577604", "Hi")
    })
    .await
    .expect("inject");
    assert_eq!(
        p.until("Hi\r\n").await,
        "\r\n+CMT: \"+27748577604\",,\"13/01/28,14:51:42+08\"\r\nHi\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn cnmi_mode0_buffers_until_mode3() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    let mut p2 = Port::new(sim.open_port(2).expect("if02"));
    p2.at("ATE0").await;
    p2.at("AT+CNMI=0,0,0,0,0").await;
    p.at("AT+CNMI=0,1,0,2,0").await;
    sim.inject_sms(InjectSms::new("+491701234567", "buffered"))
        .await
        .expect("inject");
    assert_eq!(p.within(Duration::from_millis(100)).await, "");
    // 27.005: OK first, then the buffer is flushed.
    assert_eq!(p.at("AT+CNMI=3,1,0,2,0").await, "\r\nOK\r\n");
    assert_eq!(
        p.until("+CMTI: \"ME\",0\r\n").await,
        "\r\n+CMTI: \"ME\",0\r\n"
    );
}

// ----- sending SMS ----------------------------------------------------------------------------

/// MF667.md E5: SUBMIT with SRR and VP 4 days, TPDU length 19.
const E5: &str = "0031000C919471103254760000AA05C8329BFD06";

#[tokio::test(start_paused = true)]
async fn cmgs_pdu_prompt_send_and_incrementing_mr() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.send(b"AT+CMGS=19\r").await;
    // The four bytes of 27.005 §3.5.1.
    assert_eq!(p.until("> ").await.as_bytes(), b"\r\n> ");
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(p.until("OK\r\n").await, "\r\n+CMGS: 1\r\n\r\nOK\r\n");
    p.send(b"AT+CMGS=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(p.until("OK\r\n").await, "\r\n+CMGS: 2\r\n\r\nOK\r\n");
    let sent = sim.sent().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].to, "+491701234567");
    assert_eq!(sent[0].text, "Hello");
    assert_eq!((sent[0].mr, sent[1].mr), (1, 2));
    assert!(sent[0].status_report);
}

#[tokio::test(start_paused = true)]
async fn cmgs_length_mismatch_is_304_and_esc_cancels() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CMEE=1").await;
    p.send(b"AT+CMGS=18\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(p.final_code().await, "\r\n+CMS ERROR: 304\r\n");
    p.send(b"AT+CMGS=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1b").as_bytes()).await;
    assert_eq!(p.final_code().await, "\r\nOK\r\n");
    assert!(sim.sent().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn cmgs_echoes_the_body_with_echo_on() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p = Port::new(sim.open_port(1).expect("open"));
    p.send(b"AT+CMGS=19\r").await;
    assert_eq!(p.until("> ").await, "AT+CMGS=19\r\r\n> ");
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(
        p.until("OK\r\n").await,
        format!("{E5}\r\n+CMGS: 1\r\n\r\nOK\r\n")
    );
}

#[tokio::test(start_paused = true)]
async fn text_mode_send_reprompts_after_each_cr() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CMGF=1").await;
    p.send(b"AT+CMGS=\"+491701234567\"\r").await;
    assert_eq!(p.until("> ").await, "\r\n> ");
    p.send(b"line one\r").await;
    assert_eq!(p.until("> ").await, "\r\n> ");
    p.send(b"line two\x1a").await;
    assert_eq!(p.until("OK\r\n").await, "\r\n+CMGS: 1\r\n\r\nOK\r\n");
    let sent = sim.sent_messages().await;
    assert_eq!(sent[0].text, "line one\nline two");
    assert_eq!(sent[0].to, "+491701234567");
}

#[tokio::test(start_paused = true)]
async fn status_report_lands_in_sr_with_cdsi_after_the_delay() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.send(b"AT+CMGS=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    p.until("OK\r\n").await;
    assert_eq!(p.within(Duration::from_millis(1900)).await, "");
    assert_eq!(
        p.until("+CDSI: \"SR\",0\r\n").await,
        "\r\n+CDSI: \"SR\",0\r\n"
    );
    assert_eq!(
        p.at("AT+CPMS=\"SR\"").await,
        "\r\n+CPMS: 1,100,0,100,0,100\r\n\r\nOK\r\n"
    );
    let r = p.at("AT+CMGR=0").await;
    let pdu = r.lines().nth(2).expect("pdu line");
    match atmate::sms::decode_hex(pdu).expect("decodes") {
        atmate::sms::Pdu::StatusReport(sr) => {
            assert_eq!(sr.message_reference, 1);
            assert_eq!(sr.recipient.number, "+491701234567");
            assert_eq!(sr.status, 0);
        }
        other => panic!("not a status report: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn status_report_as_cds_with_zte_comma_when_ds_is_1() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.at("AT+CNMI=3,1,0,1,0").await;
    p.send(b"AT+CMGS=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    p.until("OK\r\n").await;
    let got = p.until("\r\n+CDS: ,").await;
    assert_eq!(got, "\r\n+CDS: ,");
    let len_line = p.until("\r\n").await;
    let pdu_line = p.until("\r\n").await;
    let pdu = pdu_line.trim_end();
    let bytes = atmate::sms::pdu::from_hex(pdu).expect("hex");
    let prefix = usize::from(bytes[0]) + 1;
    assert_eq!(len_line.trim_end(), (bytes.len() - prefix).to_string());
}

#[tokio::test(start_paused = true)]
async fn cmgw_and_cmss() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.send(b"AT+CMGW=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(p.until("OK\r\n").await, "\r\n+CMGW: 0\r\n\r\nOK\r\n");
    assert_eq!(
        p.at("AT+CMGL=4").await,
        format!("\r\n+CMGL: 0,2,,19\r\n{E5}\r\n\r\nOK\r\n")
    );
    assert_eq!(p.at("AT+CMSS=0").await, "\r\n+CMSS: 1\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CMGL=3").await.matches("+CMGL: 0,3,,19").count(), 1);
    assert_eq!(sim.sent().await[0].via, "cmss");
}

// ----- storage full ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn full_store_holds_messages_until_a_slot_frees() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CMEE=1").await;
    p.at("AT+CPMS=\"SM\",\"SM\",\"SM\"").await;
    sim.fill_storage().await;
    assert_eq!(
        p.at("AT+CPMS?").await,
        "\r\n+CPMS: \"SM\",20,20,\"SM\",20,20,\"SM\",20,20\r\n\r\nOK\r\n"
    );
    let d = sim
        .inject_sms_detailed(InjectSms::new("+491701234567", "waiting"))
        .await
        .expect("inject");
    assert_eq!(d, vec![Delivery::Held]);
    assert_eq!(
        p.within(Duration::from_secs(5)).await,
        "",
        "no +CMTI when full"
    );
    // Writes fail with 322 (MF667.md §5.4).
    p.send(b"AT+CMGW=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(p.final_code().await, "\r\n+CMS ERROR: 322\r\n");
    // Deleting one frees a slot; the network delivers what it held.
    assert_eq!(p.at("AT+CMGD=4").await, "\r\nOK\r\n");
    assert_eq!(
        p.until("+CMTI: \"SM\",4\r\n").await,
        "\r\n+CMTI: \"SM\",4\r\n"
    );
    assert_eq!(sim.status().await["held_by_network"], 0);
}

#[tokio::test(start_paused = true)]
async fn clear_storage_empties_every_store() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    sim.fill_storage().await;
    sim.clear_storage().await;
    assert_eq!(
        p.at("AT+CPMS?").await,
        "\r\n+CPMS: \"ME\",0,100,\"ME\",0,100,\"ME\",0,100\r\n\r\nOK\r\n"
    );
}

// ----- USSD -----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ussd_answers_ok_at_once_and_the_reply_later() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    assert_eq!(p.at("AT+CUSD=1,\"*100#\",15").await, "\r\nOK\r\n");
    assert_eq!(p.within(Duration::from_millis(990)).await, "");
    assert_eq!(
        p.until("15\r\n").await,
        "\r\n+CUSD: 0,\"Balance: 10.00 EUR, valid until 31.12.2026\",15\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn ussd_two_step_menu() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.at("AT+CUSD=1,\"*101#\",15").await;
    // The line break is raw inside the quotes (MF667.md §5.6).
    assert_eq!(
        p.until(",15\r\n").await,
        "\r\n+CUSD: 1,\"1 Balance\n2 Bundles\",15\r\n"
    );
    p.at("AT+CUSD=1,\"2\",15").await;
    assert_eq!(
        p.until(",15\r\n").await,
        "\r\n+CUSD: 0,\"Bundles: 1 GB data, 512 MB left\",15\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn ussd_unknown_code_cancel_and_never() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CUSD=1,\"*999#\",15").await;
    assert_eq!(p.until("+CUSD: 4\r\n").await, "\r\n+CUSD: 4\r\n");
    // Cancel before the answer: nothing comes.
    p.at("AT+CUSD=1,\"*100#\",15").await;
    assert_eq!(p.at("AT+CUSD=2").await, "\r\nOK\r\n");
    assert_eq!(p.within(Duration::from_secs(5)).await, "");
    // A code whose answer never comes (the engine's timeout).
    sim.set_ussd("*135#", UssdReplySpec::never()).await;
    p.at("AT+CUSD=1,\"*135#\",15").await;
    assert_eq!(p.within(Duration::from_secs(120)).await, "");
}

#[tokio::test(start_paused = true)]
async fn ussd_reply_encodings() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    for (dcs, want) in [
        (
            UssdDcs::Ucs2,
            "+CUSD: 0,\"00420061006C0061006E00630065003A002000310030002E003000300020004500550052\",72",
        ),
        (UssdDcs::EightBit, "+CUSD: 0,\"42616C616E63653A2031302E303020455552\",68"),
        (UssdDcs::Packed, "+CUSD: 0,\"C2303BEC1E9775A018CC0583818A5529\",15"),
        (UssdDcs::Plain, "+CUSD: 0,\"Balance: 10.00 EUR\",15"),
    ] {
        sim.set_ussd(
            "*100#",
            UssdReplySpec::text("Balance: 10.00 EUR")
                .with_dcs(dcs)
                .with_delay(Duration::from_millis(300)),
        )
        .await;
        p.at("AT+CUSD=1,\"*100#\",15").await;
        let got = p.until("\r\n+CUSD").await;
        assert_eq!(got, "\r\n+CUSD");
        let rest = p.until("\r\n").await;
        assert_eq!(format!("+CUSD{rest}"), format!("{want}\r\n"), "{dcs:?}");
        // Every form decodes back with the engine's own decoder.
        let s = want.split('"').nth(1).expect("string");
        let dcsn = want.rsplit(',').next().and_then(|d| d.parse().ok());
        assert_eq!(
            atmate::ussd::decode(s, dcsn).expect("decodes").text,
            "Balance: 10.00 EUR"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn ussd_under_ucs2_charset_arrives_empty() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.at("AT+CSCS=\"UCS2\"").await;
    p.at("AT+CUSD=1,\"*100#\",15").await;
    // MF667.md §2.3 (gammu #326).
    assert_eq!(p.until(",15\r\n").await, "\r\n+CUSD: 0,\"\",15\r\n");
}

// ----- SIM ------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn pin_then_sim_busy_then_ready() {
    let cfg = SimConfig {
        pin: Some("1234".into()),
        sim_busy: Duration::from_secs(3),
        ..SimConfig::default()
    };
    let (mut p, _sim) = stick(cfg).await;
    p.at("AT+CMEE=1").await;
    assert_eq!(p.at("AT+CPIN?").await, "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CIMI").await, "\r\n+CME ERROR: 11\r\n");
    assert_eq!(p.at("AT+CMGL=4").await, "\r\n+CMS ERROR: 311\r\n");
    assert_eq!(p.at("AT+CPIN=\"9999\"").await, "\r\n+CME ERROR: 16\r\n");
    assert_eq!(
        p.at("AT+ZPINPUK=?").await,
        "\r\n+ZPINPUK: 2,10\r\n\r\nOK\r\n"
    );
    assert_eq!(p.at("AT+CPIN=\"1234\"").await, "\r\nOK\r\n");
    assert_eq!(p.at("AT+CPMS?").await, "\r\n+CMS ERROR: 314\r\n");
    assert_eq!(p.at("AT+CIMI").await, "\r\n+CME ERROR: 14\r\n");
    // Registered once the SIM is no longer busy.
    assert_eq!(
        p.until("\r\n+ZPASR: \"UMTS\"\r\n").await,
        "\r\n+ZPASR: \"UMTS\"\r\n"
    );
    assert_eq!(p.at("AT+CPIN?").await, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CIMI").await, "\r\n262071234567890\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+CREG?").await, "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn sim_removed_and_inserted() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CMEE=1").await;
    sim.remove_sim().await;
    p.until("\r\n+ZPASR: \"No Service\"\r\n").await;
    assert_eq!(p.at("AT+CPIN?").await, "\r\n+CME ERROR: 10\r\n");
    assert_eq!(p.at("AT+CPMS?").await, "\r\n+CMS ERROR: 310\r\n");
    assert_eq!(p.at("AT+CREG?").await, "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    sim.insert_sim().await;
    assert_eq!(p.at("AT+CPIN?").await, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    p.until("\r\n+ZPASR: \"UMTS\"\r\n").await;
    assert_eq!(p.at("AT+CREG?").await, "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn pin_fault_locks_a_running_stick() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CMEE=1").await;
    sim.require_pin("4321").await;
    // Deregistered: the ZTE access-technology URC says so.
    assert_eq!(
        p.until("\r\n+ZPASR: \"No Service\"\r\n").await,
        "\r\n+ZPASR: \"No Service\"\r\n"
    );
    assert_eq!(p.at("AT+CPIN?").await, "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(
        p.at("AT+CUSD=1,\"*100#\",15").await,
        "\r\n+CME ERROR: 11\r\n"
    );
}

// ----- network --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn network_loss_and_return_with_creg_urcs() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    p.at("AT+CREG=2").await;
    p.at("AT+CMEE=1").await;
    sim.network_lost().await;
    assert_eq!(
        p.within(Duration::from_millis(10)).await,
        "\r\n+CREG: 2\r\n\r\n+ZPASR: \"No Service\"\r\n"
    );
    assert_eq!(p.at("AT+CSQ").await, "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+COPS?").await, "\r\n+COPS: 0\r\n\r\nOK\r\n");
    assert_eq!(
        p.at("AT+CUSD=1,\"*100#\",15").await,
        "\r\n+CME ERROR: 30\r\n"
    );
    p.send(b"AT+CMGS=19\r").await;
    p.until("> ").await;
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(p.final_code().await, "\r\n+CMS ERROR: 331\r\n");
    // A message sent to us meanwhile waits at the SMSC.
    let d = sim
        .inject_sms_detailed(InjectSms::new("+491701234567", "later"))
        .await
        .expect("inject");
    assert_eq!(d, vec![Delivery::Held]);
    sim.network_back().await;
    assert_eq!(
        p.within(Duration::from_millis(10)).await,
        "\r\n+CREG: 1,1A2B,00C3F1E2\r\n\r\n+ZPASR: \"UMTS\"\r\n"
    );
    assert_eq!(
        p.until("+CMTI: \"ME\",0\r\n").await,
        "\r\n+CMTI: \"ME\",0\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn cgreg_reports_like_creg_with_unquoted_lac_and_ci() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    assert_eq!(
        p.at("AT+CGREG=2;+CGREG?").await,
        "\r\n+CGREG: 2,1,1A2B,00C3F1E2\r\n\r\nOK\r\n"
    );
    sim.network_lost().await;
    assert_eq!(
        p.until("+ZPASR: \"No Service\"\r\n").await,
        "\r\n+CGREG: 2\r\n\r\n+ZPASR: \"No Service\"\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn cfun_reset_re_enumerates_the_stick() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    assert_eq!(p.at("AT+CFUN=1,1").await, "\r\nOK\r\n");
    p.expect_eof().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(sim.usb().borrow().generation, 1);
}

#[tokio::test(start_paused = true)]
async fn a_slash_repeats_the_last_line() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.at("AT+CGMM").await;
    p.send(b"A/").await;
    assert_eq!(p.until("OK\r\n").await, "\r\nMF667\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn a_new_code_replaces_an_open_menu() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    p.at("AT+CUSD=1,\"*101#\",15").await;
    p.until(",15\r\n").await;
    p.at("AT+CUSD=1,\"*100#\",15").await;
    assert!(p
        .until(",15\r\n")
        .await
        .contains("+CUSD: 0,\"Balance: 10.00 EUR"));
    // An answer nobody offered, with a menu open: not supported.
    p.at("AT+CUSD=1,\"*101#\",15").await;
    p.until(",15\r\n").await;
    p.at("AT+CUSD=1,\"7\",15").await;
    assert_eq!(p.until("+CUSD: 4\r\n").await, "\r\n+CUSD: 4\r\n");
}

#[tokio::test(start_paused = true)]
async fn zoprt_offline_then_online_registers_after_the_delay() {
    let cfg = SimConfig {
        register_delay: Duration::from_secs(5),
        ..SimConfig::default()
    };
    let (mut p, sim) = stick(cfg).await;
    p.at("AT+CREG=1").await;
    assert_eq!(p.at("AT+ZOPRT=6").await, "\r\nOK\r\n");
    assert_eq!(
        p.until("+ZPASR: \"No Service\"\r\n").await,
        "\r\n+CREG: 0\r\n\r\n+ZPASR: \"No Service\"\r\n"
    );
    assert_eq!(p.at("AT+ZOPRT?").await, "\r\n+ZOPRT: 6\r\n\r\nOK\r\n");
    assert_eq!(p.at("AT+ZOPRT=5").await, "\r\nOK\r\n");
    assert_eq!(p.until("+CREG: 2\r\n").await, "\r\n+CREG: 2\r\n");
    assert_eq!(p.within(Duration::from_millis(4900)).await, "");
    assert_eq!(
        p.until("+ZPASR: \"UMTS\"\r\n").await,
        "\r\n+CREG: 1\r\n\r\n+ZPASR: \"UMTS\"\r\n"
    );
    // The wire log shows what the client sent, byte for byte.
    let to_stick = sim::wire::joined(&sim.wire_log().await, 1, sim::Direction::ToStick);
    assert!(find(&to_stick, b"AT+ZOPRT=5\r").is_some());
}

#[tokio::test(start_paused = true)]
async fn signal_changes_show_in_csq_and_zrssi() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    sim.set_signal(7).await;
    assert_eq!(p.at("AT+CSQ").await, "\r\n+CSQ: 7,99\r\n\r\nOK\r\n");
    assert_eq!(
        p.at("AT+ZRSSI").await,
        "\r\n+ZRSSI: 99,18,216\r\n\r\nOK\r\n"
    );
    sim.set_signal(99).await;
    assert_eq!(p.at("AT+CSQ").await, "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
}

// ----- faults on the wire -----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn unplug_closes_ports_and_replug_brings_a_fresh_stick() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p1 = Port::new(sim.open_port(1).expect("if01"));
    let mut usb = sim.usb();
    p1.at("ATE0").await;
    sim.unplug(Some(Duration::from_secs(3))).await;
    p1.expect_eof().await;
    assert!(!usb.borrow_and_update().plugged);
    assert!(matches!(sim.open_port(1), Err(SimError::Unplugged)));
    usb.changed().await.expect("replug");
    let state = *usb.borrow();
    assert!(state.plugged);
    assert_eq!(state.generation, 1);
    // Settings were lost: echo is on again.
    let mut p1 = Port::new(sim.open_port(1).expect("if01 again"));
    p1.send(b"AT\r").await;
    assert_eq!(p1.until("OK\r\n").await, "AT\r\r\nOK\r\n");
    assert_eq!(sim.status().await["counters"]["unplugs"], 1);
}

#[tokio::test(start_paused = true)]
async fn unplug_without_time_waits_for_replug() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p = Port::new(sim.open_port(1).expect("if01"));
    sim.unplug(None).await;
    p.expect_eof().await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(matches!(sim.open_port(1), Err(SimError::Unplugged)));
    sim.replug().await;
    assert!(sim.open_port(1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn if02_quirk_drops_the_stick_on_ussd() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p1 = Port::new(sim.open_port(1).expect("if01"));
    let mut p2 = Port::new(sim.open_port(2).expect("if02"));
    p2.at("ATE0").await;
    // The OK still comes, then the whole stick is gone.
    assert_eq!(p2.at("AT+CUSD=1,\"*100#\",15").await, "\r\nOK\r\n");
    p2.expect_eof().await;
    p1.expect_eof().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(sim.usb().borrow().generation, 1);
    assert!(sim.open_port(1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn if02_quirk_drops_the_stick_on_an_sms_urc_and_can_be_turned_off() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p2 = Port::new(sim.open_port(2).expect("if02"));
    sim.inject_sms(InjectSms::new("+491701234567", "boom"))
        .await
        .expect("inject");
    assert_eq!(
        p2.until("+CMTI: \"ME\",0\r\n").await,
        "\r\n+CMTI: \"ME\",0\r\n"
    );
    p2.expect_eof().await;

    let sim = SimHandle::spawn(SimConfig {
        if02_quirk: false,
        ..SimConfig::default()
    });
    let mut p2 = Port::new(sim.open_port(2).expect("if02"));
    p2.at("ATE0").await;
    assert_eq!(p2.at("AT+CUSD=1,\"*100#\",15").await, "\r\nOK\r\n");
    assert!(p2.until("+CUSD: 0,").await.ends_with("+CUSD: 0,"));
}

#[tokio::test(start_paused = true)]
async fn garbage_and_a_half_line() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    sim.inject_garbage(b"\x00\xff\r\n+CS").await;
    assert_eq!(
        p.within_bytes(Duration::from_millis(10)).await,
        b"\x00\xff\r\n+CS".to_vec()
    );
    // The stick keeps answering normally afterwards.
    assert_eq!(p.at("AT").await, "\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn line_noise_before_at_is_ignored() {
    let (mut p, _sim) = stick(SimConfig::default()).await;
    // V.250: the DCE hunts for "AT"; bytes before it are noise.
    assert_eq!(p.at("\x00zzAT+CSQ").await, "\r\n+CSQ: 18,99\r\n\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn urc_between_echo_and_answer() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p = Port::new(sim.open_port(1).expect("open"));
    sim.urc_at(UrcMoment::AfterEcho, "+CREG: 2", Some(1)).await;
    p.send(b"AT+CSQ\r").await;
    assert_eq!(
        p.until("OK\r\n").await,
        "AT+CSQ\r\r\n+CREG: 2\r\n\r\n+CSQ: 18,99\r\n\r\nOK\r\n"
    );
    // Armed once only.
    p.send(b"AT\r").await;
    assert_eq!(p.until("OK\r\n").await, "AT\r\r\nOK\r\n");
}

#[tokio::test(start_paused = true)]
async fn urc_before_the_prompt_and_before_ok() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    // MF667.md §1: [pgm]'s ZTE sends +ZPASR between AT+CMGS and "> ".
    sim.urc_at(UrcMoment::BeforePrompt, "+ZPASR: \"UMTS\"", None)
        .await;
    sim.urc_at(
        UrcMoment::BeforeFinal,
        "+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"",
        None,
    )
    .await;
    p.send(b"AT+CMGS=19\r").await;
    assert_eq!(p.until("> ").await, "\r\n+ZPASR: \"UMTS\"\r\n\r\n> ");
    p.send(format!("{E5}\x1a").as_bytes()).await;
    assert_eq!(
        p.until("OK\r\n").await,
        "\r\n+CMGS: 1\r\n\r\n+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"\r\n\r\nOK\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_answers_delay_the_final_code() {
    let (mut p, sim) = stick(SimConfig::default()).await;
    sim.slow_answers(Some("AT+CSQ"), Duration::from_secs(4), Some(1))
        .await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(p.at("AT+CSQ").await, "\r\n+CSQ: 18,99\r\n\r\nOK\r\n");
    assert!(t0.elapsed() >= Duration::from_secs(4));
    // Only once; other commands were never slow.
    let t1 = tokio::time::Instant::now();
    p.at("AT+CSQ").await;
    p.at("AT").await;
    assert!(t1.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn zusimr_flood_hits_both_at_ports() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p = Port::new(sim.open_port(1).expect("open"));
    sim.zusimr_flood(50, Duration::from_millis(10)).await;
    let got = p.within(Duration::from_secs(1)).await;
    // MF667.md §3: no space after the colon.
    assert_eq!(got.matches("\r\n+ZUSIMR:2\r\n").count(), 50);
    assert_eq!(got.len(), 50 * "\r\n+ZUSIMR:2\r\n".len());
}

#[tokio::test(start_paused = true)]
async fn the_engines_framer_reads_the_simulators_urcs() {
    use atmate::at::{Framer, FramerOptions, Urc};
    let sim = SimHandle::spawn(SimConfig::default());
    let mut p = Port::new(sim.open_port(1).expect("open"));
    p.at("ATE0").await;
    p.at("AT+CREG=2").await;
    p.at("AT+CNMI=3,2,0,0,0").await;
    sim.inject_sms(InjectSms::new("+491701234567", "direct"))
        .await
        .expect("inject");
    // Read nothing yet: everything from here on goes through the framer.
    p.send(b"AT+CUSD=1,\"*101#\",15\r").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.network_lost().await;
    let bytes = p.within_bytes(Duration::from_millis(10)).await;
    let mut f = Framer::new(FramerOptions::default());
    f.push(&bytes);
    let urcs: Vec<Urc> = f
        .items()
        .map(|i| i.expect("frames"))
        .filter_map(|i| Urc::from_item(&i))
        .collect();
    assert!(
        matches!(&urcs[0], Urc::Cmt { length, .. } if *length > 0),
        "{urcs:?}"
    );
    assert!(
        urcs.iter().any(
            |u| matches!(u, Urc::Cusd(c) if c.text.as_deref() == Some("1 Balance\n2 Bundles"))
        ),
        "{urcs:?}"
    );
    assert!(urcs.iter().any(|u| matches!(u, Urc::Cusd(_))), "{urcs:?}");
    assert!(urcs.iter().any(|u| matches!(u, Urc::Creg(_))), "{urcs:?}");
}

// ----- the PTY face ---------------------------------------------------------------------------

fn read_attr(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn link_target(p: &Path) -> PathBuf {
    std::fs::read_link(p).unwrap_or_else(|e| panic!("readlink {}: {e}", p.display()))
}

fn exists_no_follow(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_ports_by_id_and_sysfs_follow_an_unplug() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let pty = sim::serve_pty(d, SimConfig::default())
        .await
        .expect("serve");
    let by_id = pty.by_id(1);
    assert_eq!(
        by_id.file_name().and_then(|n| n.to_str()),
        Some("usb-ZTE_Incorporated_ZTE_WCDMA_Technologies_MSM_MF6670ZTED010000-if01-port0")
    );
    assert_eq!(link_target(&by_id), Path::new("../ttyUSB1"));
    assert!(link_target(&d.join("ttyUSB1")).starts_with("/dev/pts"));
    // The kernel's layout: device/.. is the interface, device/../.. the USB device.
    let dev = d.join("sys/class/tty/ttyUSB1/device");
    assert_eq!(read_attr(&dev.join("../bInterfaceNumber")), "01\n");
    assert_eq!(read_attr(&dev.join("../../idVendor")), "19d2\n");
    assert_eq!(read_attr(&dev.join("../../idProduct")), "0016\n");
    assert_eq!(read_attr(&dev.join("../../serial")), "MF6670ZTED010000\n");
    assert_eq!(
        read_attr(&d.join("sys/class/tty/ttyUSB2/device/../bInterfaceNumber")),
        "02\n"
    );
    assert_eq!(read_attr(&dev.join("../../devnum")), "2\n");

    let mut tty = Tty::open(&by_id);
    tty.send(b"AT\r");
    assert_eq!(
        tty.until("OK\r\n", Duration::from_secs(5)),
        "AT\r\r\nOK\r\n"
    );

    pty.handle().unplug(Some(Duration::from_millis(500))).await;
    tty.expect_hangup(Duration::from_secs(5));
    // Back under the next numbers; the stable link follows, the old names are gone.
    eventually("ttyUSB4 appears", Duration::from_secs(5), || {
        exists_no_follow(&d.join("ttyUSB4"))
    });
    eventually("by-id is re-pointed", Duration::from_secs(5), || {
        std::fs::read_link(&by_id).ok().as_deref() == Some(Path::new("../ttyUSB4"))
    });
    assert!(!exists_no_follow(&d.join("ttyUSB1")));
    assert!(!exists_no_follow(&d.join("sys/class/tty/ttyUSB1")));
    let dev = d.join("sys/class/tty/ttyUSB4/device");
    assert_eq!(read_attr(&dev.join("../bInterfaceNumber")), "01\n");
    assert_eq!(read_attr(&dev.join("../../devnum")), "3\n");
    assert_eq!(pty.tty(1).as_deref(), Some(d.join("ttyUSB4").as_path()));

    // A fresh stick: echo on again.
    let mut tty = Tty::open(&by_id);
    tty.send(b"AT+CGMM\r");
    assert_eq!(
        tty.until("OK\r\n", Duration::from_secs(5)),
        "AT+CGMM\r\r\nMF667\r\n\r\nOK\r\n"
    );
    pty.shutdown().await;
    assert!(!exists_no_follow(&d.join("ttyUSB4")));
    assert!(!exists_no_follow(&by_id));
    assert!(!exists_no_follow(&d.join("control")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_client_can_close_and_reopen_and_sees_nothing_stale() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pty = sim::serve_pty(dir.path(), SimConfig::default())
        .await
        .expect("serve");
    let path = pty.tty(1).expect("ttyUSB1");
    {
        let mut tty = Tty::open(&path);
        tty.send(b"ATE0\r");
        tty.until("OK\r\n", Duration::from_secs(5));
    }
    // Nobody has the port open: this +CMTI goes nowhere, as on a closed ttyUSB.
    pty.handle()
        .inject_sms(InjectSms::new("+491701234567", "while closed"))
        .await
        .expect("inject");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tty = Tty::open(&path);
    tty.send(b"AT+CPMS?\r");
    // Settings survive a close (the stick does not see it): no echo.
    assert_eq!(
        tty.until("OK\r\n", Duration::from_secs(5)),
        "\r\n+CPMS: \"ME\",1,100,\"ME\",1,100,\"ME\",1,100\r\n\r\nOK\r\n"
    );
    pty.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_simulator_refuses_a_served_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pty = sim::serve_pty(dir.path(), SimConfig::default())
        .await
        .expect("serve");
    let again = sim::serve_pty(dir.path(), SimConfig::default()).await;
    assert!(matches!(again, Err(SimError::Invalid(_))));
    pty.shutdown().await;
    // A stale socket (a killed simulator) does not block a new one.
    let _ = std::os::unix::net::UnixListener::bind(dir.path().join("control"));
    let pty = sim::serve_pty(dir.path(), SimConfig::default())
        .await
        .expect("serve over a stale socket");
    pty.shutdown().await;
}

async fn control(path: &Path, line: &str) -> serde_json::Value {
    sim::control::request(path, &serde_json::from_str(line).expect("json"))
        .await
        .expect("control request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_is_private_and_speaks_json_lines() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let pty = sim::serve_pty(dir.path(), SimConfig::default())
        .await
        .expect("serve");
    let sock = pty.control_socket();
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Several requests on one connection, a bad one in the middle.
    let stream = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    let (rd, mut wr) = stream.into_split();
    wr.write_all(b"{\"cmd\":\"signal\",\"csq\":5}\nnot json\n{\"cmd\":\"status\"}\n")
        .await
        .expect("send");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(rd));
    let mut read = Vec::new();
    for _ in 0..2 {
        let l = lines.next_line().await.expect("read").expect("a line");
        read.push(serde_json::from_str::<serde_json::Value>(&l).expect("json response"));
    }
    assert_eq!(read[0], serde_json::json!({"ok": true}));
    let bad = &read[1];
    assert_eq!(bad["ok"], false);
    assert!(bad["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("bad request")));
    let l = lines.next_line().await.expect("read").expect("a line");
    let st: serde_json::Value = serde_json::from_str(&l).expect("json response");
    assert_eq!(st["status"]["network"]["csq"], 5);

    let r = control(
        &sock,
        r#"{"cmd":"inject_sms","from":"+491701234567","text":"via socket"}"#,
    )
    .await;
    assert_eq!(
        r["deliveries"],
        serde_json::json!([{"delivery": "stored", "mem": "ME", "index": 0}])
    );
    let ports = control(&sock, r#"{"cmd":"ports"}"#).await;
    assert_eq!(ports["ports"].as_array().map(Vec::len), Some(3));
    assert_eq!(ports["ports"][1]["name"], "ttyUSB1");
    let r = control(
        &sock,
        r#"{"cmd":"ussd_set","code":"*1#","text":"x","dcs":"99"}"#,
    )
    .await;
    assert_eq!(r["ok"], false);
    pty.shutdown().await;
}

/// Kills the child on drop (also when an assertion fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn atmate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_atmate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run atmate")
}

#[test]
fn atmate_sim_serves_and_is_driven_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().join("sim");
    let ds = d.to_str().expect("utf-8 path");
    let transcript = dir.path().join("wire.log");
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_atmate"))
            .args(["sim", "--dir", ds, "serve", "--transcript"])
            .arg(&transcript)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start atmate sim"),
    );
    eventually(
        "the control socket appears",
        Duration::from_secs(20),
        || d.join("control").exists(),
    );

    let out = atmate(&[
        "sim",
        "--dir",
        ds,
        "inject",
        "sms",
        "--from",
        "+491701234567",
        "--text",
        "hi there",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stored in ME at index 0\n"
    );

    let mut tty = Tty::open(&d.join("ttyUSB1"));
    tty.send(b"AT+CMGF=1;+CMGL=\"ALL\"\r");
    assert!(tty
        .until("OK\r\n", Duration::from_secs(5))
        .contains("\r\nhi there\r\n"));

    let out = atmate(&["sim", "--dir", ds, "status"]);
    assert!(out.status.success(), "{out:?}");
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status is JSON");
    assert_eq!(st["stores"]["ME"]["messages"][0]["text"], "hi there");
    assert_eq!(st["stores"]["ME"]["messages"][0]["stat"], "REC READ");
    assert_eq!(st["ports"][1]["cmgf"], 1);

    // Refused requests exit 1, local mistakes too.
    let out = atmate(&["sim", "--dir", ds, "signal", "40"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = atmate(&["sim", "--dir", ds, "garbage", r"\q"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // No simulator there: exit 2.
    let nowhere = dir.path().join("nowhere");
    let out = atmate(&["sim", "--dir", nowhere.to_str().expect("utf-8"), "status"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = atmate(&["sim", "--dir", ds, "unplug", "--for", "300ms"]);
    assert!(out.status.success(), "{out:?}");
    tty.expect_hangup(Duration::from_secs(5));
    eventually("ttyUSB4 appears", Duration::from_secs(5), || {
        exists_no_follow(&d.join("ttyUSB4"))
    });

    // The transcript has both directions, escaped.
    let log = std::fs::read_to_string(&transcript).expect("transcript");
    assert!(
        log.contains(" if01 >> AT+CMGF=1;+CMGL=\"ALL\"\\r\n"),
        "{log}"
    );
    assert!(
        log.contains(" if01 << \\r\\nhi there\\r\\n") || log.contains("hi there\\r\\n"),
        "{log}"
    );

    let out = atmate(&["sim", "--dir", ds, "stop"]);
    assert!(out.status.success(), "{out:?}");
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "atmate sim did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    if let Some(mut o) = child.0.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    assert!(stdout.contains("ttyUSB1"), "{stdout}");
    assert!(!d.join("control").exists());
}
