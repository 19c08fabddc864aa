//! The receive pipeline: never lose, never double.
//!
//! `+CMTI: "SM",<i>` → `AT+CMGR=<i>` → decode → durable write (`Persist`) → only then
//! `AT+CMGD=<i>` → emit the event. On start and after every reconnect every store is
//! swept with `AT+CMGL=4`, so messages that arrived while atmate was down are picked
//! up; a cheap `AT+CPMS?` safety net catches a missed `+CMTI`.

use super::actor::Actor;
use super::error::{ErrorCode, ModemError};
use super::persist::{SaveOutcome, StatusReportRecord};
use super::wire::{self, Decoded};
use crate::event::{Event, SmsStatus, SmsUndecodable, StorageEvent};

/// Background work of the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Job {
    /// Read (then archive, then delete) message `index` in `mem`.
    Read {
        /// Memory (`SM`, `ME`).
        mem: String,
        /// Index.
        index: u32,
    },
    /// Read a status report stored in `mem` (usually `SR`).
    ReadReport {
        /// Memory.
        mem: String,
        /// Index.
        index: u32,
    },
    /// List and drain every store.
    Sweep,
    /// `AT+CPMS?`; sweep if the counts say something is stored.
    StorageCheck,
    /// Start the next waiting USSD request.
    NextUssd,
}

/// Stores swept at start: the configured one, ME (where the web UI and the power-on
/// default put messages, MF667.md §5.5) and SR (status reports fill it silently, §5.4).
fn sweep_stores(a: &Actor) -> Vec<String> {
    let mut v = vec![a.cfg.storage.clone()];
    for m in ["SM", "ME", "SR"] {
        if !v.iter().any(|x| x == m) {
            v.push(m.to_owned());
        }
    }
    v
}

pub(crate) async fn run_job(a: &mut Actor, job: Job) {
    let r = match &job {
        Job::Read { mem, index } => read_one(a, mem, *index, false).await.map(|_| ()),
        Job::ReadReport { mem, index } => read_one(a, mem, *index, true).await.map(|_| ()),
        Job::Sweep => sweep(a).await.map(|_| ()),
        Job::StorageCheck => storage_check(a).await,
        Job::NextUssd => Ok(()),
    };
    if let Err(e) = r {
        tracing::warn!(modem = %a.name(), job = ?job, error = %e, "receive job failed");
    }
}

/// Point mem1 (read/delete) at `mem`, keeping mem2/mem3 on the configured storage.
async fn select_mem(a: &mut Actor, mem: &str) -> Result<(), ModemError> {
    if a.mem1.as_deref() == Some(mem) {
        return Ok(());
    }
    let st = a.cfg.storage.clone();
    let cmd = format!("AT+CPMS=\"{mem}\",\"{st}\",\"{st}\"");
    let r = a.exec(&cmd, None).await?;
    // The set form always answers `+CPMS: <used>,<total>,…`. A bare OK is a stale
    // answer to an earlier command that timed out: the line is out of step, and a
    // delete now could hit a message in another store that was never read.
    if !r.lines.iter().any(|l| l.starts_with("+CPMS")) {
        a.mem1 = None;
        return Err(ModemError::Protocol {
            command: cmd,
            detail: "no +CPMS line in the answer (the line is out of step)".into(),
        });
    }
    a.mem1 = Some(mem.to_owned());
    Ok(())
}

/// Read, archive, delete one stored message. Returns true if something was there.
async fn read_one(a: &mut Actor, mem: &str, index: u32, _report: bool) -> Result<bool, ModemError> {
    select_mem(a, mem).await?;
    let r = match a.exec(&format!("AT+CMGR={index}"), None).await {
        Ok(r) => r,
        // An empty index: already handled (e.g. by a sweep). Some firmware says OK.
        Err(ModemError::Command {
            code: Some(ErrorCode::Cms(321)),
            ..
        }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let Some(pdu) = wire::pdu_of_listing(&r.lines).into_iter().next() else {
        return Ok(false);
    };
    archive_then_delete(a, mem, index, &pdu.1).await?;
    Ok(true)
}

/// The heart of the promise: archive (durably), then delete, then emit.
async fn archive_then_delete(
    a: &mut Actor,
    mem: &str,
    index: u32,
    pdu: &str,
) -> Result<(), ModemError> {
    let events = persist_pdu(a, pdu).await?;
    // The message is durable: hand it to the rules now, whatever the delete does (a
    // failed delete only means the next sweep meets it again as a duplicate).
    for e in events {
        a.emit(e);
    }
    // Only now is it safe to free the slot.
    select_mem(a, mem).await?;
    if let Err(e) = a.exec(&format!("AT+CMGD={index}"), None).await {
        tracing::warn!(modem = %a.name(), %mem, index, error = %e, "AT+CMGD failed after archiving");
        a.undeletable.insert((mem.to_owned(), index));
        return Err(e);
    }
    a.undeletable.remove(&(mem.to_owned(), index));
    Ok(())
}

/// Decode and persist one PDU; returns the events to emit once it is safe.
async fn persist_pdu(a: &mut Actor, pdu: &str) -> Result<Vec<Event>, ModemError> {
    let modem = a.name().to_owned();
    let mut out = Vec::new();
    match wire::decode_pdu(&modem, pdu) {
        Decoded::Part(part) => {
            match a
                .persist
                .save_received(part)
                .await
                .map_err(|e| ModemError::Persist(e.to_string()))?
            {
                SaveOutcome::Complete(m) => {
                    tracing::info!(modem = %modem, id = m.id, from = %m.from, parts = m.parts, "SMS received");
                    a.set_status(|s| s.received += 1);
                    out.push(Event::Sms(m));
                }
                SaveOutcome::Partial { have, total } => {
                    tracing::debug!(modem = %modem, have, total, "multipart fragment stored");
                }
                SaveOutcome::Duplicate => {
                    tracing::info!(modem = %modem, "duplicate SMS recognised and dropped");
                }
            }
        }
        Decoded::Report(r) => {
            let record = StatusReportRecord {
                modem: modem.clone(),
                reference: r.reference,
                recipient: r.recipient.clone(),
                status: r.st,
                scts: r.scts,
                discharge: r.discharge,
                pdu: pdu.to_owned(),
            };
            let matched = a
                .persist
                .save_status_report(record)
                .await
                .map_err(|e| ModemError::Persist(e.to_string()))?;
            out.push(Event::SmsStatus(SmsStatus {
                modem: modem.clone(),
                reference: r.reference,
                to: r.recipient,
                status: r.meaning,
                st: r.st,
                message_id: matched,
                discharge: r.discharge,
            }));
        }
        Decoded::Submit => {
            // A message we stored for sending (STO UNSENT/SENT); not ours to archive as
            // received. Archive it raw so deleting it loses nothing.
            a.persist
                .save_undecodable(&modem, pdu, "stored SMS-SUBMIT (not a received message)")
                .await
                .map_err(|e| ModemError::Persist(e.to_string()))?;
        }
        Decoded::Error(err) => {
            tracing::warn!(modem = %modem, error = %err, %pdu, "undecodable PDU archived raw");
            let id = a
                .persist
                .save_undecodable(&modem, pdu, &err)
                .await
                .map_err(|e| ModemError::Persist(e.to_string()))?;
            if let Some(id) = id {
                out.push(Event::SmsUndecodable(SmsUndecodable {
                    modem: modem.clone(),
                    id,
                    pdu: pdu.to_owned(),
                    error: err,
                }));
            }
        }
    }
    Ok(out)
}

/// `+CMT` (mt=2): the PDU came in the URC; nothing is stored on the SIM.
pub(crate) async fn direct_deliver(a: &mut Actor, pdu: &str) {
    match persist_pdu(a, pdu).await {
        Ok(events) => events.into_iter().for_each(|e| a.emit(e)),
        Err(e) => {
            tracing::error!(modem = %a.name(), error = %e, %pdu, "could not archive a directly delivered SMS")
        }
    }
}

/// `+CDS` (ds=1): the status report came in the URC.
pub(crate) async fn direct_report(a: &mut Actor, pdu: &str) {
    direct_deliver(a, pdu).await
}

/// List and drain every store. Returns how many messages were handled.
pub(crate) async fn sweep(a: &mut Actor) -> Result<usize, ModemError> {
    let mut handled = 0;
    for mem in sweep_stores(a) {
        if let Err(e) = select_mem(a, &mem).await {
            // Not every stick has every store (`+CMS ERROR: 302/303`).
            if matches!(e, ModemError::Command { .. }) {
                tracing::debug!(modem = %a.name(), %mem, error = %e, "store not available");
                continue;
            }
            return Err(e);
        }
        // A full store is drained in rounds: the network may deliver held messages
        // as soon as slots free up.
        for _round in 0..64 {
            let r = a
                .exec("AT+CMGL=4", Some(std::time::Duration::from_secs(30)))
                .await?;
            // Slots whose delete failed before are skipped (archived already), so a
            // stuck slot cannot turn every storage check into a busy loop.
            let listed: Vec<(u32, String)> = wire::pdu_of_listing(&r.lines)
                .into_iter()
                .filter(|(i, _)| !a.undeletable.contains(&(mem.clone(), *i)))
                .collect();
            if listed.is_empty() {
                break;
            }
            for (index, pdu) in listed {
                match archive_then_delete(a, &mem, index, &pdu).await {
                    Ok(()) => handled += 1,
                    // A refused delete: go on with the others.
                    Err(ModemError::Command { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    restore_mem(a).await?;
    if handled > 0 {
        tracing::info!(modem = %a.name(), handled, "store sweep handled messages");
    }
    Ok(handled)
}

async fn restore_mem(a: &mut Actor) -> Result<(), ModemError> {
    let st = a.cfg.storage.clone();
    select_mem(a, &st).await
}

/// The safety net: `AT+CPMS?`; a sweep only when a count says something is stored.
async fn storage_check(a: &mut Actor) -> Result<(), ModemError> {
    let r = a.exec("AT+CPMS?", None).await?;
    let Some(mems) = r.lines.iter().find_map(|l| wire::parse_cpms(l)) else {
        return Ok(());
    };
    let mut sweep_needed = false;
    for (i, (mem, used, total)) in mems.iter().enumerate() {
        if i == 0 || i == 2 {
            if *used > 0 {
                sweep_needed = true;
            }
            if i == 2 {
                a.set_status(|s| s.storage = Some((*used, *total)));
            }
            if *total > 0 && used >= total {
                a.emit(Event::Storage(StorageEvent {
                    modem: a.name().to_owned(),
                    state: "full".into(),
                    memory: mem.clone(),
                    used: *used,
                    total: *total,
                }));
            }
        }
    }
    if sweep_needed {
        tracing::info!(modem = %a.name(), "messages found by the storage check (missed +CMTI?); sweeping");
        sweep(a).await?;
    }
    Ok(())
}
