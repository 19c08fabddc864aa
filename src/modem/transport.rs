//! Transports: what the actor reads and writes. A serial device (tokio-serial),
//! `tcp://host:port` (ser2net and the like), or anything that yields an
//! `AsyncRead + AsyncWrite` stream (the in-process simulator, wired by the runtime).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

use super::discover::{self, Discovery};
use super::error::ModemError;

/// A byte stream to a modem's AT port.
pub trait Port: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Port for T {}

/// An open port and the device it is (for logs and `status`).
pub struct Opened {
    /// The stream.
    pub port: Box<dyn Port>,
    /// Device path or address actually opened (`/dev/ttyUSB3`, `tcp://…`, `sim:if01`).
    pub device: String,
}

/// Opens (and re-opens, after a USB drop) a modem's port.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Open the port now, or say why not.
    async fn connect(&self) -> Result<Opened, ModemError>;
    /// What this connector opens, for logs (`auto (19d2, if01)`, a path…).
    fn describe(&self) -> String;

    /// Whether the device is there now, if that can be told cheaply without opening
    /// it (a path exists, sysfs lists the stick). During an outage the actor checks
    /// this often and reopens as soon as the device reappears, instead of waiting out
    /// its backoff step. `None`: unknown, only the backoff applies.
    fn present(&self) -> Option<bool> {
        None
    }
}

/// Where a serial device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialPath {
    /// An explicit path (`/dev/ttyUSB1` or a stable `/dev/serial/by-id/…` link;
    /// a by-id link is resolved at every open, so it follows re-enumeration).
    Path(PathBuf),
    /// Find the port by USB vendor:product and interface number (sysfs).
    Auto(Discovery),
}

/// A serial device through tokio-serial (115200 8N1 unless configured).
#[derive(Debug, Clone)]
pub struct SerialConnector {
    /// Where the device is.
    pub path: SerialPath,
    /// Baud rate.
    pub baud: u32,
}

#[async_trait]
impl Connector for SerialConnector {
    async fn connect(&self) -> Result<Opened, ModemError> {
        let path = match &self.path {
            SerialPath::Path(p) => {
                // A by-id link is followed at every open, so it leads to the current
                // ttyUSB after a re-enumeration; the log names where it led.
                if let Ok(target) = std::fs::canonicalize(p) {
                    if &target != p {
                        tracing::debug!(path = %p.display(), target = %target.display(), "device link resolved");
                    }
                }
                p.clone()
            }
            SerialPath::Auto(d) => {
                let d = d.clone();
                let (node, c) = tokio::task::spawn_blocking(move || discover::find_port(&d))
                    .await
                    .map_err(|e| ModemError::Open {
                        device: "auto".into(),
                        reason: e.to_string(),
                    })??;
                tracing::info!(device = %node.display(), usb = %format!("{}:{}", c.vendor_id, c.product_id), interface = c.interface, "found the modem port");
                if c.vendor_id == "19d2" && c.interface == 2 {
                    tracing::warn!(device = %node.display(), "this is if02, the MF667's data (PPP) port: USSD and SMS traffic there make the stick drop off USB (MF667.md §5.1); prefer interface 1");
                }
                node
            }
        };
        let shown = path.display().to_string();
        let builder = tokio_serial::new(shown.clone(), self.baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(tokio_serial::Parity::None)
            .stop_bits(tokio_serial::StopBits::One)
            .flow_control(tokio_serial::FlowControl::None);
        let stream =
            tokio_serial::SerialStream::open(&builder).map_err(|e| open_error(&shown, e))?;
        Ok(Opened {
            port: Box::new(stream),
            device: shown,
        })
    }

    fn describe(&self) -> String {
        match &self.path {
            SerialPath::Path(p) => p.display().to_string(),
            SerialPath::Auto(d) => d.describe(),
        }
    }

    fn present(&self) -> Option<bool> {
        Some(match &self.path {
            // A by-id link that udev removed on unplug makes this false until replug.
            SerialPath::Path(p) => p.exists(),
            SerialPath::Auto(d) => discover::find(d).is_ok(),
        })
    }
}

fn open_error(device: &str, e: tokio_serial::Error) -> ModemError {
    use tokio_serial::ErrorKind;
    // tokio-serial opens exclusively (TIOCEXCL); a second open fails. It reports that
    // as NoDevice with "Device or resource busy"; permission problems come as Io.
    let text = e.to_string();
    let reason = if text.contains("busy")
        || matches!(e.kind, ErrorKind::NoDevice) && text.contains("resource")
    {
        format!(
            "{text}: another program holds the port (ModemManager, gammu-smsd, smstools, \
             a second atmate?); `fuser -v {device}` shows which, and \
             `systemctl stop ModemManager` or a udev rule with ID_MM_DEVICE_IGNORE=1 frees it"
        )
    } else if text.contains("ermission") {
        format!("{text}: add your user to the `dialout` group (and log in again)")
    } else if text.contains("No such file") || matches!(e.kind, ErrorKind::NoDevice) {
        format!("{text}: the device is not there (unplugged, or in CD-ROM/web mode: see `atmate modeswitch`)")
    } else {
        text
    };
    ModemError::Open {
        device: device.to_owned(),
        reason,
    }
}

/// `tcp://host:port` (ser2net and the like).
#[derive(Debug, Clone)]
pub struct TcpConnector {
    /// `host:port`.
    pub addr: String,
}

#[async_trait]
impl Connector for TcpConnector {
    async fn connect(&self) -> Result<Opened, ModemError> {
        let s = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| ModemError::Open {
                device: format!("tcp://{}", self.addr),
                reason: e.to_string(),
            })?;
        // AT traffic is tiny and latency-bound.
        let _ = s.set_nodelay(true);
        Ok(Opened {
            port: Box::new(s),
            device: format!("tcp://{}", self.addr),
        })
    }

    fn describe(&self) -> String {
        format!("tcp://{}", self.addr)
    }
}

type ConnectFn =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Opened, ModemError>> + Send>> + Send + Sync;

/// A connector made of a closure: how the runtime plugs in the in-process simulator
/// (the modem engine must not know the simulator).
#[derive(Clone)]
pub struct FnConnector {
    name: String,
    f: Arc<ConnectFn>,
}

impl FnConnector {
    /// A connector called `name` that opens with `f`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> FnConnector
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Opened, ModemError>> + Send + 'static,
    {
        FnConnector {
            name: name.into(),
            f: Arc::new(move || Box::pin(f())),
        }
    }
}

#[async_trait]
impl Connector for FnConnector {
    async fn connect(&self) -> Result<Opened, ModemError> {
        (self.f)().await
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}
