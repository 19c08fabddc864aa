//! Watching an optional data interface (`ppp0`, `wwan0`): up/down become `link`
//! events with `via: data`, so a rule can redial or report when the data connection
//! drops while the AT port stays fine.
//!
//! The state comes from sysfs, `<net_root>/<iface>/operstate` (`net_root` is
//! `/sys/class/net`; tests point it at a temp dir). sysfs attributes give no inotify
//! events, so the file is polled; reading a few bytes every couple of seconds is cheap.
//!
//! `operstate` values (kernel `Documentation/networking/operstates.rst`):
//! - `up` → up.
//! - `unknown`: what point-to-point drivers such as ppp report while they work, so it
//!   counts as up when `flags` has IFF_UP and IFF_RUNNING (or `flags` is unreadable).
//! - `down`, `lowerlayerdown`, `dormant`, `notpresent`, `testing` → down.
//! - The interface folder missing (pppd exited, the stick's `wwan0` went with it) → down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::handle::ModemStatus;
use crate::event::{Event, LinkEvent, LinkKind, LinkState};

/// `IFF_UP` in `<iface>/flags` (linux/if.h).
const IFF_UP: u32 = 0x1;
/// `IFF_RUNNING` in `<iface>/flags` (linux/if.h).
const IFF_RUNNING: u32 = 0x40;

/// The state of a data interface, as read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataState {
    /// Carrying traffic.
    Up,
    /// Not carrying traffic, and why (`operstate down`, `interface ppp0 is gone`).
    Down(String),
}

/// Read the state of `iface` under `net_root` now.
pub fn read_state(net_root: &Path, iface: &str) -> DataState {
    let dir = net_root.join(iface);
    let oper = match std::fs::read_to_string(dir.join("operstate")) {
        Ok(s) => s.trim().to_ascii_lowercase(),
        Err(_) if !dir.exists() => return DataState::Down(format!("interface {iface} is gone")),
        Err(e) => return DataState::Down(format!("cannot read {iface}/operstate: {e}")),
    };
    match oper.as_str() {
        "up" => DataState::Up,
        "unknown" => match read_flags(&dir) {
            Some(f) if f & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING => DataState::Up,
            Some(f) if f & IFF_UP == 0 => {
                DataState::Down(format!("{iface} is administratively down"))
            }
            Some(_) => DataState::Down(format!("{iface} is up but not running")),
            None => DataState::Up,
        },
        other => DataState::Down(format!("{iface} operstate {other}")),
    }
}

/// `flags` is written as hex (`0x10d1`).
fn read_flags(dir: &Path) -> Option<u32> {
    let s = std::fs::read_to_string(dir.join("flags")).ok()?;
    let s = s.trim();
    u32::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataWatch {
    /// Modem name, for events.
    pub modem: String,
    /// Interface name (`ppp0`).
    pub interface: String,
    /// `/sys/class/net`.
    pub net_root: PathBuf,
    /// Poll interval.
    pub every: Duration,
}

/// Follow the interface until the task is dropped. The first reading only sets the
/// status (and announces `up` if it is up): a data connection that is simply not
/// dialled yet at start-up is not an outage. After that every change is an event;
/// `up` after `down` carries the downtime.
pub(crate) async fn watch(
    w: DataWatch,
    events: broadcast::Sender<Event>,
    status: Arc<Mutex<ModemStatus>>,
) {
    let mut last: Option<bool> = None;
    let mut down_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(w.every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let state = read_state(&w.net_root, &w.interface);
        let up = state == DataState::Up;
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.data_link = Some(if up { "up".into() } else { "down".into() });
        }
        if last == Some(up) {
            continue;
        }
        let first = last.is_none();
        last = Some(up);
        let (state, reason, downtime_ms) = match state {
            DataState::Up => (
                LinkState::Up,
                None,
                down_since.take().map(|t| t.elapsed().as_millis() as u64),
            ),
            DataState::Down(why) => {
                down_since = Some(Instant::now());
                if first {
                    tracing::info!(modem = %w.modem, interface = %w.interface, reason = %why, "data interface is down");
                    continue;
                }
                (LinkState::Down, Some(why), None)
            }
        };
        tracing::info!(modem = %w.modem, interface = %w.interface, ?state, reason = ?reason, "data link");
        let _ = events.send(Event::Link(LinkEvent {
            modem: w.modem.clone(),
            state,
            via: LinkKind::Data,
            device: Some(w.interface.clone()),
            reason,
            downtime_ms,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(root: &Path, iface: &str, oper: Option<&str>, flags: Option<&str>) {
        let dir = root.join(iface);
        match oper {
            None => {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Some(o) => {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("operstate"), format!("{o}\n")).unwrap();
                match flags {
                    Some(f) => std::fs::write(dir.join("flags"), format!("{f}\n")).unwrap(),
                    None => {
                        let _ = std::fs::remove_file(dir.join("flags"));
                    }
                }
            }
        }
    }

    #[test]
    fn operstates_map_to_up_and_down() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        set(r, "wwan0", Some("up"), None);
        assert_eq!(read_state(r, "wwan0"), DataState::Up);
        // ppp reports `unknown` while it works; flags decide (0x10d1 = UP|RUNNING|…).
        set(r, "ppp0", Some("unknown"), Some("0x10d1"));
        assert_eq!(read_state(r, "ppp0"), DataState::Up);
        set(r, "ppp0", Some("unknown"), Some("0x1090"));
        assert_eq!(
            read_state(r, "ppp0"),
            DataState::Down("ppp0 is administratively down".into())
        );
        set(r, "ppp0", Some("unknown"), Some("0x1003"));
        assert_eq!(
            read_state(r, "ppp0"),
            DataState::Down("ppp0 is up but not running".into())
        );
        set(r, "wwan0", Some("lowerlayerdown"), None);
        assert_eq!(
            read_state(r, "wwan0"),
            DataState::Down("wwan0 operstate lowerlayerdown".into())
        );
        set(r, "ppp0", None, None);
        assert_eq!(
            read_state(r, "ppp0"),
            DataState::Down("interface ppp0 is gone".into())
        );
    }

    fn status() -> Arc<Mutex<ModemStatus>> {
        Arc::new(Mutex::new(ModemStatus::new("main", "test")))
    }

    #[tokio::test(start_paused = true)]
    async fn changes_become_link_events_with_downtime() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        // Not dialled at start: no event, only the status.
        set(&root, "ppp0", None, None);
        let (tx, mut rx) = broadcast::channel(16);
        let st = status();
        let task = tokio::spawn(watch(
            DataWatch {
                modem: "main".into(),
                interface: "ppp0".into(),
                net_root: root.clone(),
                every: Duration::from_secs(1),
            },
            tx,
            st.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(rx.try_recv().is_err(), "a link never up is not an outage");
        assert_eq!(st.lock().unwrap().data_link.as_deref(), Some("down"));

        set(&root, "ppp0", Some("unknown"), Some("0x10d1"));
        let Event::Link(up) = rx.recv().await.unwrap() else {
            panic!("link event expected")
        };
        assert_eq!((up.state, up.via), (LinkState::Up, LinkKind::Data));
        assert_eq!(up.device.as_deref(), Some("ppp0"));

        set(&root, "ppp0", None, None);
        let Event::Link(down) = rx.recv().await.unwrap() else {
            panic!("link event expected")
        };
        assert_eq!(down.state, LinkState::Down);
        assert_eq!(down.reason.as_deref(), Some("interface ppp0 is gone"));
        tokio::time::sleep(Duration::from_secs(10)).await;
        // No repeats while nothing changes.
        assert!(rx.try_recv().is_err());

        set(&root, "ppp0", Some("up"), None);
        let Event::Link(back) = rx.recv().await.unwrap() else {
            panic!("link event expected")
        };
        assert_eq!(back.state, LinkState::Up);
        let downtime = back.downtime_ms.expect("downtime on up after down");
        assert!((10_000..=13_000).contains(&downtime), "{downtime}");
        assert_eq!(st.lock().unwrap().data_link.as_deref(), Some("up"));
        task.abort();
    }
}
