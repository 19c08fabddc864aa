//! The init sequence, re-run after every (re)open: the stick forgets CNMI, CMGF, CPMS,
//! CSCS, CMEE and echo on reset or re-enumeration (MF667.md §5.2).
//!
//! The sequence is data ([`steps`]) so a user's `init:` extras are appended and a
//! vendor profile can add its own.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::actor::Actor;
use super::config::Vendor;
use super::error::{ErrorCode, ModemError};
use super::wire;

/// One step: a command, or alternatives tried in order until one is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Command lines to try, best first.
    pub alternatives: Vec<String>,
    /// If false, a failure is logged and init goes on.
    pub required: bool,
}

fn step(cmds: &[&str], required: bool) -> Step {
    Step {
        alternatives: cmds.iter().map(|s| s.to_string()).collect(),
        required,
    }
}

/// The sequence after echo, errors and the PIN are settled.
pub fn steps(vendor: Vendor, storage: &str, extra: &[String]) -> Vec<Step> {
    let mut v = Vec::new();
    if vendor == Vendor::Zte {
        // ZTE sticks can boot in low-power mode (the "red light"); gammu's MF667 init
        // does the same.
        v.push(step(&["AT+ZOPRT=5"], false));
    }
    v.push(step(
        &[&format!(
            "AT+CPMS=\"{storage}\",\"{storage}\",\"{storage}\""
        )],
        true,
    ));
    v.push(step(&["AT+CMGF=0"], true));
    // USSD answers are empty under UCS2 on the MF667 (gammu #326).
    v.push(step(&["AT+CSCS=\"GSM\"", "AT+CSCS=\"IRA\""], false));
    // Notification mode: mode 3 is the ZTE default; mode 2 is rejected by
    // Qualcomm/ZTE firmware (oFono), so fall back to 1.
    v.push(step(
        &[
            "AT+CNMI=3,1,0,2,0",
            "AT+CNMI=2,1,0,2,0",
            "AT+CNMI=1,1,0,2,0",
            "AT+CNMI=2,1,0,0,0",
        ],
        true,
    ));
    v.push(step(&["AT+CREG=2", "AT+CREG=1"], false));
    for e in extra {
        v.push(Step {
            alternatives: vec![e.clone()],
            required: false,
        });
    }
    v
}

/// Run the whole init on a freshly opened port.
pub(crate) async fn run(a: &mut Actor) -> Result<(), ModemError> {
    flush_stale_input(a).await;
    // Escape a `> ` prompt left over from an earlier session (gammu does the same).
    let _ = a.exec_raw_blind(b"\x1b\r").await;
    flush_stale_input(a).await;
    // Echo off; retried because the first command after a reset can meet garbage.
    let mut ok = false;
    for _ in 0..3 {
        if a.exec("ATE0", Some(Duration::from_secs(3))).await.is_ok() {
            ok = true;
            break;
        }
        if a.conn.is_none() {
            return Err(ModemError::Disconnected {
                modem: a.name().into(),
                reason: "port closed during init".into(),
            });
        }
    }
    if !ok {
        return Err(ModemError::Protocol {
            command: "ATE0".into(),
            detail: "the modem does not answer AT commands on this port (wrong port? \
                     on the MF667 ttyUSB0 is the DIAG port and answers nothing)"
                .into(),
        });
    }
    let _ = a.exec("AT+CMEE=1", None).await;
    sim_ready(a).await?;
    let steps = steps(
        a.cfg.vendor,
        &a.cfg.storage.clone(),
        &a.cfg.init_extra.clone(),
    );
    for s in steps {
        run_step(a, &s).await?;
    }
    a.mem1 = Some(a.cfg.storage.clone());
    Ok(())
}

async fn run_step(a: &mut Actor, s: &Step) -> Result<(), ModemError> {
    let mut last = None;
    for cmd in &s.alternatives {
        match with_sim_busy_retry(a, cmd).await {
            Ok(_) => return Ok(()),
            Err(e @ ModemError::Command { .. }) => {
                tracing::debug!(modem = %a.name(), command = %wire::mask_secrets(cmd), error = %e, "init alternative refused");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    match last {
        Some(e) if s.required => Err(e),
        Some(e) => {
            tracing::warn!(modem = %a.name(), error = %e, "optional init step failed");
            Ok(())
        }
        None => Ok(()),
    }
}

fn is_sim_busy(e: &ModemError) -> bool {
    matches!(
        e,
        ModemError::Command {
            code: Some(ErrorCode::Cme(14)) | Some(ErrorCode::Cms(314)),
            ..
        }
    )
}

/// After `AT+CPIN` the SIM is busy for some seconds (`+CME ERROR: 14`); ModemManager
/// waits 1 s then retries every 2 s. We retry for up to ~20 s.
async fn with_sim_busy_retry(
    a: &mut Actor,
    cmd: &str,
) -> Result<super::handle::AtResponse, ModemError> {
    let mut wait = Duration::from_millis(500);
    let mut tries = 0;
    loop {
        match a.exec(cmd, None).await {
            Err(e) if is_sim_busy(&e) && tries < 10 => {
                tries += 1;
                tracing::info!(modem = %a.name(), command = %wire::mask_secrets(cmd), "SIM busy; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(3));
            }
            r => return r,
        }
    }
}

/// Make sure the SIM is ready, entering the PIN once if it asks. A wrong PIN is never
/// retried (three wrong PINs lock the SIM).
async fn sim_ready(a: &mut Actor) -> Result<(), ModemError> {
    for round in 0..2 {
        let state = match with_sim_busy_retry(a, "AT+CPIN?").await {
            Ok(r) => r
                .lines
                .iter()
                .find_map(|l| wire::parse_cpin(l))
                .unwrap_or_else(|| "READY".into()),
            Err(ModemError::Command {
                code: Some(ErrorCode::Cme(10)),
                ..
            }) => {
                a.set_status(|s| s.sim = Some("missing".into()));
                return Err(ModemError::Invalid(
                    "no SIM card inserted (+CME ERROR: 10)".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        match state.as_str() {
            "READY" => {
                // Unlocked (by us, by hand, or another SIM): a refusal no longer applies.
                a.pin_refused = None;
                a.set_status(|s| s.sim = Some("ready".into()));
                return Ok(());
            }
            "SIM PIN" if round == 0 => {
                let Some(pin) = a.cfg.pin.clone() else {
                    a.set_status(|s| s.sim = Some("pin required".into()));
                    return Err(ModemError::Invalid(
                        "the SIM asks for a PIN and none is configured (pin: ${ATMATE_PIN} or pin_file:)".into(),
                    ));
                };
                if let Some(why) = a.pin_refused.clone() {
                    // Refused before: never again from this actor (a config change
                    // starts a new one). Only the status is polled.
                    a.set_status(|s| s.sim = Some("pin rejected".into()));
                    return Err(ModemError::Invalid(why));
                }
                let tries = pin_tries(a).await;
                if let Some((left, puk)) = tries.filter(|(left, _)| *left <= 1) {
                    // The last try: if the configured PIN is wrong (or was mistyped
                    // elsewhere twice), using it locks the SIM until the PUK. A person
                    // should take that risk, not a daemon in a retry loop.
                    let why = format!(
                        "the SIM has {left} PIN {} left ({puk} PUK tries); atmate does not use the last one,                          so a wrong PIN cannot lock the SIM. Check the PIN, then enter it once by hand                          (atmate at 'AT+CPIN=\"<pin>\"') and restart",
                        if left == 1 { "try" } else { "tries" }
                    );
                    a.pin_refused = Some(why.clone());
                    a.set_status(|s| s.sim = Some("pin: last try left".into()));
                    return Err(ModemError::Invalid(why));
                }
                let cmd = format!("AT+CPIN=\"{}\"", pin.expose());
                let mut busy_waits = 0;
                let answer = loop {
                    match a.exec(&cmd, None).await {
                        // Right after power-on the SIM can be busy even for AT+CPIN.
                        Err(e) if is_sim_busy(&e) && busy_waits < 5 => {
                            busy_waits += 1;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        r => break r,
                    }
                };
                match answer {
                    Ok(_) => {
                        tracing::info!(modem = %a.name(), "PIN accepted");
                        // The SIM is busy for a while now; the loop re-checks.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e @ ModemError::Command { .. }) => {
                        let tries = pin_tries(a).await;
                        let why = format!(
                            "the SIM rejected the configured PIN ({e}){}; not retrying, so the SIM does not lock",
                            tries
                                .map(|(p, k)| format!("; {p} PIN tries left, {k} PUK tries"))
                                .unwrap_or_default()
                        );
                        a.pin_refused = Some(why.clone());
                        a.set_status(|s| s.sim = Some("pin rejected".into()));
                        return Err(ModemError::Invalid(why));
                    }
                    // The link dropped or the stick went quiet: whether the SIM saw the
                    // PIN is unknown. The next attempt checks the tries left first.
                    Err(e) => return Err(e),
                }
            }
            other => {
                a.set_status(|s| s.sim = Some(other.to_ascii_lowercase()));
                let tries = pin_tries(a).await;
                return Err(ModemError::Invalid(format!(
                    "the SIM is not ready: {other}{}",
                    tries
                        .map(|(p, k)| format!(" ({p} PIN tries left, {k} PUK tries)"))
                        .unwrap_or_default()
                )));
            }
        }
    }
    Err(ModemError::Invalid(
        "the SIM did not become ready after the PIN".into(),
    ))
}

/// ZTE: `AT+ZPINPUK=?` → `+ZPINPUK: 3,10`.
async fn pin_tries(a: &mut Actor) -> Option<(u32, u32)> {
    if a.cfg.vendor != Vendor::Zte {
        return None;
    }
    let r = a.exec("AT+ZPINPUK=?", None).await.ok()?;
    r.lines.iter().find_map(|l| wire::parse_zpinpuk(l))
}

/// Drop whatever the port has buffered from an earlier session (gammu does this too:
/// stale data from an MF710M otherwise breaks parsing).
async fn flush_stale_input(a: &mut Actor) {
    let Some(conn) = a.conn.as_mut() else {
        return;
    };
    conn_flush(conn).await;
}

async fn conn_flush(conn: &mut super::actor::Conn) {
    // Until the line is quiet for 50 ms, but never longer than 300 ms in all: a stick
    // that chatters without pause (+CMTI for a stream of SMS, a +ZUSIMR flood) must
    // not hold init back. What is dropped here is found again by the sweep.
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        let quiet = tokio::time::Instant::now() + Duration::from_millis(50);
        match tokio::time::timeout_at(quiet.min(deadline), conn.port_mut().read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 && tokio::time::Instant::now() < deadline => continue,
            _ => break,
        }
    }
    conn.wire_mut().clear_all();
}
