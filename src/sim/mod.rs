//! A faithful ZTE MF667 simulator: in-process (`tokio::io::duplex`) and on
//! pseudo-terminals, with a control interface for injecting SMS, USSD replies and
//! faults. Depends only on the pure codecs (`at`, `sms`, `ussd`), never on `modem`.
//! `atmate sim`.
//!
//! # Layout
//! - [`config`]: what the stick is ([`SimConfig`]), with MF667 defaults.
//! - `device`: the state (settings per port, stores, SIM, network, USSD) and URC routing.
//! - `cmdline`: the DCE side of V.250 (a received line → commands).
//! - `responder`: commands → reply bytes (MF667.md is the reference for every byte).
//! - `session`: one open port (echo, prompt bodies, URC interleaving).
//! - [`faults`]: awkward-moment URCs and slow answers.
//! - [`inject`]: [`SimHandle`], the control side.
//! - [`wire`]: the byte log and transcript format.
//! - [`pty`]: [`serve_pty`], the stick on pseudo-terminals with by-id links and a fake sysfs.
//! - [`control`]: the JSON-lines control socket (`DIR/control`) and its client.
//!
//! # Two faces
//! - In-process: [`spawn_in_process`] / [`SimHandle::open_port`] hand out
//!   `tokio::io::DuplexStream`s. Everything time-based runs on `tokio::time`, so tests with
//!   `tokio::time::pause()` drive USSD delays, registration and replugs instantly.
//! - Pseudo-terminals: [`serve_pty`] publishes `DIR/ttyUSB0..2`, udev-style by-id links, a
//!   sysfs tree and the control socket, for gammu, minicom, socat or atmate itself on a
//!   "serial device". `atmate sim` is this plus a command line.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atmate::sim::SimError> {
//! use atmate::sim::{InjectSms, SimConfig, SimHandle};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let sim = SimHandle::spawn(SimConfig::default());
//! let mut port = sim.open_port(1)?;
//! port.write_all(b"AT+CSQ\r").await.ok();
//! let mut buf = [0u8; 64];
//! let n = port.read(&mut buf).await.unwrap_or(0);
//! assert!(buf[..n].starts_with(b"AT+CSQ\r")); // echo is on at power-up
//! sim.inject_sms(InjectSms::new("+491701234567", "Hello")).await?; // → +CMTI: "ME",0
//! # Ok(()) }
//! ```

mod cmdline;
pub mod config;
pub mod control;
mod device;
pub mod faults;
pub mod inject;
pub mod pty;
mod responder;
mod session;
pub mod wire;

pub use config::{Capacities, Identity, NetworkConfig, SimConfig, UssdDcs, UssdReplySpec};
pub use device::UsbState;
pub use faults::UrcMoment;
pub use inject::{Delivery, InjectSms, PartOrder, SentMessage, SentPart, SentSms, SimHandle};
pub use pty::{serve_pty, PortPaths, PtySim};
pub use wire::{Direction, WireEntry};

/// Why a simulator call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The stick is unplugged (or the simulator was shut down).
    #[error("the simulated stick is unplugged")]
    Unplugged,
    /// The port is already open (ttys of the real stick are opened exclusively).
    #[error("port if{0:02} is already open")]
    Busy(u8),
    /// There is no such interface.
    #[error("no port if{0:02}: the MF667 has if00, if01 and if02")]
    NoSuchPort(u8),
    /// Called outside a tokio runtime.
    #[error("the simulator needs a tokio runtime: {0}")]
    NoRuntime(String),
    /// A PDU that cannot be delivered.
    #[error("invalid PDU: {0}")]
    InvalidPdu(String),
    /// A bad argument (config, SMS to inject, …).
    #[error("invalid: {0}")]
    Invalid(String),
    /// An I/O failure (pty, control socket, transcript file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A default MF667 with port if01 open: the quickest way to a modem in a test.
pub fn spawn_in_process() -> (tokio::io::DuplexStream, SimHandle) {
    let sim = SimHandle::spawn(SimConfig::default());
    match sim.open_port(1) {
        Ok(port) => (port, sim),
        // A fresh stick is plugged and has nothing open; the only failure left is a
        // missing runtime, which is a caller bug worth a clear message.
        Err(e) => panic!("spawn_in_process: {e}"),
    }
}
