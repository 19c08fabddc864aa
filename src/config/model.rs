//! The validated configuration: types that cannot hold a bad state.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::diag::Diagnostics;

pub use crate::secret::Secret;

/// The whole `atmate.yaml`, validated. Every path is absolute (relative ones were
/// resolved against the config file's folder).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from, as given.
    pub path: PathBuf,
    /// Its folder (absolute).
    pub dir: PathBuf,
    /// The modems, in file order; names are unique, at most one is `default`.
    pub modems: Vec<ModemSection>,
    /// SQLite database (default `atmate.db` beside the config).
    pub store: PathBuf,
    /// Rule files and folders (default: the `rules` folder beside the config, when it
    /// exists; none otherwise).
    pub rules: Vec<PathBuf>,
    /// Scripts folder (default: `scripts` beside the config).
    pub scripts: PathBuf,
    /// Time zone for cron schedules and `now()`.
    pub timezone: Zone,
    /// Send budgets and script limits.
    pub limits: Limits,
    /// Senders allowed to trigger rules, normalised (`+49…`; alphanumeric ids as written).
    pub allow_senders: Vec<String>,
    /// Log filter (`info`, `debug`, `atmate=debug,info`, …).
    pub log: String,
    /// The control socket's path.
    pub control_socket: PathBuf,
    /// Warnings found while loading (the config is valid nonetheless).
    pub warnings: Diagnostics,
}

impl Config {
    /// The modem called `name`.
    pub fn modem(&self, name: &str) -> Option<&ModemSection> {
        self.modems.iter().find(|m| m.name == name)
    }

    /// The modem rules use when they name none: the one marked `default: true`, else
    /// the only one.
    pub fn default_modem(&self) -> Option<&ModemSection> {
        self.modems
            .iter()
            .find(|m| m.default)
            .or(match self.modems.as_slice() {
                [only] => Some(only),
                _ => None,
            })
    }

    /// All modem names, in file order.
    pub fn modem_names(&self) -> Vec<String> {
        self.modems.iter().map(|m| m.name.clone()).collect()
    }

    /// What changed from `self` (the running config) to `new`, so a reload touches only
    /// what it must (a rules-only change never reopens a modem).
    pub fn diff(&self, new: &Config) -> ConfigDiff {
        let mut d = ConfigDiff::default();
        for m in &new.modems {
            match self.modem(&m.name) {
                None => d.modems_added.push(m.name.clone()),
                Some(old) if old != m => d.modems_changed.push(m.name.clone()),
                Some(_) => {}
            }
        }
        for m in &self.modems {
            if new.modem(&m.name).is_none() {
                d.modems_removed.push(m.name.clone());
            }
        }
        d.rules = self.rules != new.rules
            || self.timezone != new.timezone
            || self.allow_senders != new.allow_senders
            || self.default_modem().map(|m| &m.name) != new.default_modem().map(|m| &m.name);
        d.scripts = self.scripts != new.scripts || self.limits.script != new.limits.script;
        d.limits = self.limits != new.limits;
        d.store = self.store != new.store;
        d.log = self.log != new.log;
        d.control_socket = self.control_socket != new.control_socket;
        d
    }
}

/// The difference between two configs (see [`Config::diff`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Modems only in the new config.
    pub modems_added: Vec<String>,
    /// Modems only in the old config.
    pub modems_removed: Vec<String>,
    /// Modems whose section changed (they must be reopened).
    pub modems_changed: Vec<String>,
    /// Rules must be reloaded (paths, time zone, allowlist or default modem changed).
    pub rules: bool,
    /// Scripts must be reloaded (folder or script limits changed).
    pub scripts: bool,
    /// Any limit changed.
    pub limits: bool,
    /// The store moved (needs a restart).
    pub store: bool,
    /// The log filter changed.
    pub log: bool,
    /// The control socket moved (needs a restart).
    pub control_socket: bool,
}

impl ConfigDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }
}

/// The time zone for schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's local time zone.
    Local,
    /// A named IANA zone (`Europe/Berlin`).
    Named(chrono_tz::Tz),
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Local => f.write_str("local"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// Send budgets (the runtime enforces them) and script limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// SMS per rolling hour, all recipients (default 30).
    pub sms_per_hour: u32,
    /// SMS per rolling day (default 200).
    pub sms_per_day: u32,
    /// SMS per recipient per rolling hour (default 10): stops auto-reply ping-pong.
    pub sms_per_recipient_per_hour: u32,
    /// Script limits.
    pub script: ScriptLimits,
    /// Queued runs per rule in `mode: queued` (default 10).
    pub rule_queue: usize,
}

/// Sandbox limits for one script call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Wall-clock limit (default 30 s).
    pub wall_clock: Duration,
    /// Rhai operations limit (default 10 000 000).
    pub max_operations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sms_per_hour: 30,
            sms_per_day: 200,
            sms_per_recipient_per_hour: 10,
            script: ScriptLimits {
                wall_clock: Duration::from_secs(30),
                max_operations: 10_000_000,
            },
            rule_queue: 10,
        }
    }
}

/// Which vendor quirks to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vendor {
    /// ZTE (MF667 and relatives).
    #[default]
    Zte,
    /// A plain 3GPP 27.007/27.005 modem.
    Generic,
}

/// Where the modem is.
#[derive(Debug, Clone, PartialEq)]
pub enum Device {
    /// The built-in MF667 simulator, in process.
    Sim(SimOptions),
    /// Found by USB ids in sysfs, again after every re-enumeration.
    Auto(Discovery),
    /// A serial device path (`/dev/serial/by-id/…` is stable; `/dev/ttyUSB1` is not).
    Path(PathBuf),
    /// A serial port behind TCP (ser2net and similar).
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Sim(_) => f.write_str("sim"),
            Device::Auto(_) => f.write_str("auto"),
            Device::Path(p) => write!(f, "{}", p.display()),
            Device::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// SMS storage (`AT+CPMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// The SIM (default).
    #[default]
    Sm,
    /// The modem's own memory.
    Me,
    /// SIM and modem memory together.
    Mt,
}

impl Storage {
    /// `SM`, `ME` or `MT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Sm => "SM",
            Storage::Me => "ME",
            Storage::Mt => "MT",
        }
    }
}

/// One modem's section. `PartialEq` lets the runtime reopen only modems whose section
/// changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ModemSection {
    /// Name used in events, logs and rules (`[A-Za-z0-9_-]+`, unique).
    pub name: String,
    /// Rules without `modem:` use this one.
    pub default: bool,
    /// Where it is.
    pub device: Device,
    /// Vendor quirks (default ZTE).
    pub vendor: Vendor,
    /// Serial speed (default 115200; ignored by `sim` and `tcp://`).
    pub baud: u32,
    /// SIM PIN, from `pin:` (usually `${ATMATE_PIN}`) or `pin_file:`.
    pub pin: Option<Secret>,
    /// Extra AT commands appended to the init sequence.
    pub init: Vec<String>,
    /// SMS storage (default SM).
    pub storage: Storage,
    /// How long to wait for a USSD reply (default 30 s).
    pub ussd_timeout: Duration,
    /// Probes.
    pub health: Health,
    /// Automatic network recovery.
    pub recovery: Recovery,
    /// Reconnect backoff after the link drops.
    pub reconnect: Reconnect,
    /// A data interface to watch (`ppp0`, `wwan0`).
    pub data_interface: Option<String>,
    /// Multipart messages with missing parts are delivered, marked incomplete, after
    /// this (default 10 min).
    pub multipart_timeout: Duration,
}

/// Health probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Registration and signal probe (`AT+CREG?`, `AT+CSQ`) interval (default 30 s).
    pub probe_interval: Duration,
    /// Storage check (`AT+CPMS?`) interval (default 60 s).
    pub storage_check: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            probe_interval: Duration::from_secs(30),
            storage_check: Duration::from_secs(60),
        }
    }
}

/// Automatic recovery when the network is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// On by default for ZTE, off for generic modems.
    pub enabled: bool,
    /// AT commands tried in order, one per attempt (the last one repeats).
    pub steps: Vec<String>,
    /// A program (argv, never a shell) run once the AT steps are used up, e.g. a USB
    /// power cycle with `uhubctl`.
    pub command: Option<Vec<String>>,
    /// Wait before the first step and between steps (doubles, capped by the runtime).
    pub backoff: Duration,
    /// Give up after this many attempts (until the network comes back by itself).
    pub max_attempts: u32,
}

impl Recovery {
    /// The defaults for a vendor.
    pub fn default_for(vendor: Vendor) -> Recovery {
        Recovery {
            enabled: vendor == Vendor::Zte,
            steps: default_recovery_steps(vendor),
            command: None,
            backoff: Duration::from_secs(20),
            max_attempts: 6,
        }
    }
}

/// ZTE: `AT+ZOPRT=5` puts the stick back "online" (Qualcomm operating mode 5, MF667.md
/// §2.2), then `AT+CFUN=1`. Generic modems only get `AT+CFUN=1`.
pub fn default_recovery_steps(vendor: Vendor) -> Vec<String> {
    match vendor {
        Vendor::Zte => vec!["AT+ZOPRT=5".into(), "AT+CFUN=1".into()],
        Vendor::Generic => vec!["AT+CFUN=1".into()],
    }
}

/// Reconnect backoff after a link drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// First wait (default 250 ms).
    pub min: Duration,
    /// Cap (default 30 s).
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            min: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

/// How `device: auto` finds the AT port (sysfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// USB vendor id (default 0x19d2, ZTE).
    pub vendor_id: u16,
    /// Accepted product ids (empty = any product of the vendor).
    pub product_ids: Vec<u16>,
    /// USB interface numbers, best first (default `[1, 2]`: on the MF667 if01 is the AT
    /// port that carries no data; traffic on if02, the PPP port, makes the stick drop
    /// off USB — MF667.md §5.1).
    pub interfaces: Vec<u8>,
    /// USB serial number, to pick one of several identical sticks.
    pub serial: Option<String>,
    /// Usually `/sys`.
    pub sysfs_root: PathBuf,
    /// Usually `/dev`.
    pub dev_root: PathBuf,
}

impl Discovery {
    /// A USB id as the kernel writes it in sysfs (`19d2`).
    pub fn hex(id: u16) -> String {
        format!("{id:04x}")
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            vendor_id: 0x19d2,
            product_ids: Vec::new(),
            interfaces: vec![1, 2],
            serial: None,
            sysfs_root: PathBuf::from("/sys"),
            dev_root: PathBuf::from("/dev"),
        }
    }
}

/// Simulator options (`device: sim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Feed demo traffic (an SMS now and then, signal changes).
    pub demo: bool,
    /// The PIN the simulated SIM asks for (none by default).
    pub pin: Option<Secret>,
    /// Slots in the simulated stores.
    pub capacity: SimCapacity,
    /// Signal at power-on (`+CSQ` rssi 0–31, default 18).
    pub csq: u8,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            demo: false,
            pin: None,
            capacity: SimCapacity::default(),
            csq: 18,
        }
    }
}

/// Slots in the simulator's message stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCapacity {
    /// SIM storage (default 20: a small SIM fills up quickly, as in the field).
    pub sm: u16,
    /// The stick's own memory (default 100).
    pub me: u16,
    /// Status reports (default 100).
    pub sr: u16,
}

impl Default for SimCapacity {
    fn default() -> Self {
        SimCapacity {
            sm: 20,
            me: 100,
            sr: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let s = Secret::new("1234");
        assert_eq!(format!("{s:?}"), "Secret(****)");
        assert_eq!(s.to_string(), "****");
        assert_eq!(s.expose(), "1234");
        let sim = SimOptions {
            pin: Some(s),
            ..SimOptions::default()
        };
        assert!(!format!("{sim:?}").contains("1234"));
    }

    #[test]
    fn default_recovery_depends_on_the_vendor() {
        assert!(Recovery::default_for(Vendor::Zte).enabled);
        assert_eq!(
            Recovery::default_for(Vendor::Zte).steps,
            ["AT+ZOPRT=5", "AT+CFUN=1"]
        );
        assert!(!Recovery::default_for(Vendor::Generic).enabled);
        assert_eq!(Discovery::hex(0x19d2), "19d2");
        assert_eq!(Discovery::hex(0x16), "0016");
    }
}
