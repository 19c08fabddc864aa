//! Settings of one modem, as the engine needs them (the runtime builds these from
//! `atmate.yaml`).

use std::path::PathBuf;
use std::time::Duration;

/// Which vendor quirks to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vendor {
    /// ZTE (MF667 and relatives): `AT+ZOPRT=5` at init, `+ZPAS?` probes, ZTE URCs.
    #[default]
    Zte,
    /// A plain 3GPP 27.007/27.005 modem.
    Generic,
}

pub use crate::secret::Secret;

/// Automatic network recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// On by default for ZTE.
    pub enabled: bool,
    /// Commands tried in order, one per attempt (the last one repeats).
    pub steps: Vec<String>,
    /// Wait after a loss before the first step, and between steps (doubles, capped at 8×).
    pub backoff: Duration,
    /// Give up after this many steps (until the network comes back by itself).
    pub max_attempts: u32,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            enabled: true,
            steps: vec!["AT+ZOPRT=5".into(), "AT+CFUN=1".into()],
            backoff: Duration::from_secs(20),
            max_attempts: 6,
        }
    }
}

/// Settings of one modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemConfig {
    /// Name used in events, logs and rules.
    pub name: String,
    /// Vendor quirks.
    pub vendor: Vendor,
    /// SIM PIN, if the SIM asks for one.
    pub pin: Option<Secret>,
    /// Extra commands appended to the init sequence.
    pub init_extra: Vec<String>,
    /// Message storage to use for reading, writing and receiving (`SM`).
    pub storage: String,
    /// Timeout for ordinary commands.
    pub command_timeout: Duration,
    /// How long to wait for a USSD reply.
    pub ussd_timeout: Duration,
    /// Timeout for one `AT+CMGS`.
    pub send_timeout: Duration,
    /// Signal/registration probe interval.
    pub probe_interval: Duration,
    /// `AT+CPMS?` safety-net interval (a sweep only when counts say so).
    pub storage_check_interval: Duration,
    /// Multipart messages with missing parts are delivered (incomplete) after this.
    pub multipart_timeout: Duration,
    /// Attempts per outgoing message for transient errors.
    pub send_attempts: u32,
    /// Reconnect backoff: first wait.
    pub reconnect_min: Duration,
    /// Reconnect backoff: cap.
    pub reconnect_max: Duration,
    /// Automatic network recovery.
    pub recovery: RecoveryConfig,
    /// The last escalation of automatic recovery: a program (argv, never a shell) run
    /// once every AT step was tried, e.g. a USB power cycle with `uhubctl`; it then
    /// repeats (with backoff) up to `recovery.max_attempts`. `None`: the last AT step
    /// repeats instead.
    pub recovery_command: Option<Vec<String>>,
    /// A data interface to watch (`ppp0`, `wwan0`): up/down become `link` events with
    /// `via: data`.
    pub data_interface: Option<String>,
    /// Where network interfaces are listed (`/sys/class/net`; tests point it elsewhere).
    pub net_root: PathBuf,
    /// How often the data interface's state is read (sysfs has no change notification
    /// for `operstate`).
    pub data_poll_interval: Duration,
    /// How often messages left in the outbox (a transient failure, a send cut off by a
    /// drop) are tried again while the link is up.
    pub outbox_retry_interval: Duration,
}

impl ModemConfig {
    /// Defaults for a modem called `name`.
    pub fn new(name: impl Into<String>) -> ModemConfig {
        ModemConfig {
            name: name.into(),
            vendor: Vendor::Zte,
            pin: None,
            init_extra: Vec::new(),
            storage: "SM".into(),
            command_timeout: Duration::from_secs(10),
            ussd_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            probe_interval: Duration::from_secs(30),
            storage_check_interval: Duration::from_secs(60),
            multipart_timeout: Duration::from_secs(600),
            send_attempts: 3,
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(30),
            recovery: RecoveryConfig::default(),
            recovery_command: None,
            data_interface: None,
            net_root: PathBuf::from("/sys/class/net"),
            data_poll_interval: Duration::from_secs(2),
            outbox_retry_interval: Duration::from_secs(60),
        }
    }
}
