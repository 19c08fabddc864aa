//! Real clients against the simulator: Debian's `gammu` on a simulator PTY, and the user's
//! field notes replayed over a plain PTY session (bytes written to the slave as socat or
//! minicom would).
//!
//! gammu must be installed (`apt-get install gammu`; the CI script does it). Without it
//! these tests fail: a skipped compatibility test would prove nothing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use atmate::sim::{self, InjectSms, PtySim, SimConfig, UssdDcs, UssdReplySpec};

use crate::sim::Tty;

fn require_gammu() {
    let ok = std::process::Command::new("gammu")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "gammu is not installed: `apt-get install -y gammu` (scripts/ci installs it)"
    );
}

/// A simulator on PTYs in a fresh temp dir, with a gammurc pointing at its ttyUSB1.
async fn sim_for_gammu(cfg: SimConfig) -> (tempfile::TempDir, PtySim) {
    require_gammu();
    let dir = tempfile::tempdir().expect("temp dir");
    let pty = sim::serve_pty(&dir.path().join("sim"), cfg)
        .await
        .expect("serve on PTYs");
    let device = pty.tty(1).expect("ttyUSB1");
    std::fs::write(
        dir.path().join("gammurc"),
        format!("[gammu]\ndevice = {}\nconnection = at\n", device.display()),
    )
    .expect("write gammurc");
    (dir, pty)
}

/// Run gammu with the test's config; returns (success, stdout + stderr).
async fn gammu(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("gammu")
            .arg("-c")
            .arg(dir.join("gammurc"))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("gammu finished within 90 s")
    .expect("run gammu");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gammu_identifies_the_stick() {
    let (dir, pty) = sim_for_gammu(SimConfig::default()).await;
    let (ok, out) = gammu(dir.path(), &["identify"]).await;
    assert!(ok, "gammu identify failed:\n{out}");
    assert!(out.contains("MF667"), "{out}");
    assert!(out.contains("351234567890123"), "{out}");
    assert!(out.contains("262071234567890"), "{out}");
    // gammu knows the MF667 and sends its init (MF667.md §5.2): autorun off, radio on.
    let to_stick = sim::wire::joined(&pty.handle().wire_log().await, 1, sim::Direction::ToStick);
    let text = String::from_utf8_lossy(&to_stick);
    assert!(text.contains("AT+ZCDRUN=8\r"), "{text}");
    assert!(text.contains("AT+ZOPRT=5\r"), "{text}");
    pty.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gammu_reads_plain_concatenated_and_ucs2_messages() {
    let (dir, pty) = sim_for_gammu(SimConfig::default()).await;
    let sim = pty.handle();
    sim.inject_sms(InjectSms::new("+491701234567", "Hello from the simulator"))
        .await
        .expect("inject");
    let long = format!(
        "{}THE END",
        "Long message, part of a concatenated SMS. ".repeat(5)
    );
    let parts = sim
        .inject_sms(InjectSms::new("+491709876543", long.clone()))
        .await
        .expect("inject");
    assert_eq!(parts.len(), 2);
    sim.inject_sms(InjectSms::new("O2", "Привет, мир"))
        .await
        .expect("inject");
    let (ok, out) = gammu(dir.path(), &["getallsms"]).await;
    assert!(ok, "gammu getallsms failed:\n{out}");
    assert!(out.contains("Hello from the simulator"), "{out}");
    assert!(out.contains("Привет, мир"), "{out}");
    assert!(out.contains("Concatenated (linked) message"), "{out}");
    assert!(
        out.contains("part 1 of 2") && out.contains("part 2 of 2"),
        "{out}"
    );
    assert!(out.contains("THE END"), "{out}");
    assert!(out.contains("\"+491709876543\""), "{out}");
    pty.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gammu_sends_an_sms_the_simulator_decodes() {
    let (dir, pty) = sim_for_gammu(SimConfig::default()).await;
    let (ok, out) = gammu(
        dir.path(),
        &["sendsms", "TEXT", "+491701112233", "-text", "Hi from gammu"],
    )
    .await;
    assert!(ok, "gammu sendsms failed:\n{out}");
    assert!(out.contains("message reference=1"), "{out}");
    let status = pty.handle().status().await;
    let sent = &status["sent_messages"][0];
    assert_eq!(sent["to"], "+491701112233");
    assert_eq!(sent["text"], "Hi from gammu");
    assert_eq!(sent["mrs"][0], 1);
    pty.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gammu_gets_the_balance_by_ussd() {
    let (dir, pty) = sim_for_gammu(SimConfig::default()).await;
    let (ok, out) = gammu(dir.path(), &["getussd", "*100#"]).await;
    assert!(ok, "gammu getussd failed:\n{out}");
    assert!(
        out.contains("Balance: 10.00 EUR, valid until 31.12.2026"),
        "{out}"
    );
    pty.shutdown().await;
}

/// The user's field notes on ttyUSB1: select SM, text mode, CNMI 3,1,2,2,0; an SMS shows
/// `+CMTI: "SM",0`; `AT+CMGL="ALL"` lists it; `*100#` answers with UCS-2 hex, DCS 72.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_field_notes_over_a_plain_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pty = sim::serve_pty(dir.path(), SimConfig::default())
        .await
        .expect("serve");
    let sim = pty.handle();
    sim.set_ussd(
        "*100#",
        UssdReplySpec::text("Balance: 10.00 EUR").with_dcs(UssdDcs::Ucs2),
    )
    .await;
    let t = Duration::from_secs(10);
    let mut tty = Tty::open(&dir.path().join("ttyUSB1"));
    tty.send(b"AT+CPMS=\"SM\",\"SM\",\"SM\"\r");
    assert_eq!(
        tty.until("OK\r\n", t),
        "AT+CPMS=\"SM\",\"SM\",\"SM\"\r\r\n+CPMS: 0,20,0,20,0,20\r\n\r\nOK\r\n"
    );
    tty.send(b"AT+CMGF=1\r");
    assert_eq!(tty.until("OK\r\n", t), "AT+CMGF=1\r\r\nOK\r\n");
    tty.send(b"AT+CNMI=3,1,2,2,0\r");
    assert_eq!(tty.until("OK\r\n", t), "AT+CNMI=3,1,2,2,0\r\r\nOK\r\n");
    sim.inject_sms(InjectSms {
        timestamp: Some(
            chrono::DateTime::parse_from_rfc3339("2025-05-01T10:00:00+02:00").expect("time"),
        ),
        ..InjectSms::new("+491701234567", "Test from the field")
    })
    .await
    .expect("inject");
    assert_eq!(
        tty.until("+CMTI: \"SM\",0\r\n", t),
        "\r\n+CMTI: \"SM\",0\r\n"
    );
    tty.send(b"AT+CMGL=\"ALL\"\r");
    assert_eq!(
        tty.until("OK\r\n", t),
        "AT+CMGL=\"ALL\"\r\r\n+CMGL: 0,\"REC UNREAD\",\"+491701234567\",,\"25/05/01,10:00:00+08\"\r\nTest from the field\r\n\r\nOK\r\n"
    );
    tty.send(b"AT+CUSD=1,\"*100#\",15\r");
    assert_eq!(tty.until("OK\r\n", t), "AT+CUSD=1,\"*100#\",15\r\r\nOK\r\n");
    assert_eq!(
        tty.until(",72\r\n", t),
        "\r\n+CUSD: 0,\"00420061006C0061006E00630065003A002000310030002E003000300020004500550052\",72\r\n"
    );
    pty.shutdown().await;
}
