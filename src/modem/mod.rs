//! The modem: one actor task owns one port; `ModemHandle` is the cheap, cloneable way
//! in. Knows `at`, `sms`, `ussd` and `event` only; durability comes through the
//! [`Persist`] trait, which the runtime implements with `store`.
//!
//! | file | owns |
//! |---|---|
//! | `handle.rs` | `ModemHandle` and the request messages |
//! | `actor.rs` | the task that owns the port: queue, URC routing, USSD, sending, health |
//! | `init.rs` | the init sequence (re-run after every reconnect), PIN and SIM busy |
//! | `receive.rs` | +CMTI → CMGR → persist → CMGD → event; sweeps; storage safety net |
//! | `wire.rs` | the actor's view of the `at`/`sms`/`ussd` codecs |
//! | `transport.rs` | serial (tokio-serial), `tcp://`, and closure connectors (the simulator) |
//! | `discover.rs` | finding the port again by USB ids in sysfs after re-enumeration |
//! | `datalink.rs` | watching an optional data interface (`ppp0`, `wwan0`) for up/down |
//! | `persist.rs` | the `Persist` trait and an in-memory implementation |

mod actor;
pub mod config;
pub mod datalink;
pub mod discover;
pub mod error;
pub mod handle;
pub mod init;
pub mod persist;
mod receive;
pub mod transport;
mod wire;

pub use config::{ModemConfig, RecoveryConfig, Secret, Vendor};
pub use error::{ErrorCode, ModemError};
pub use handle::{AtResponse, ModemHandle, ModemInfo, ModemStatus, SendOptions, SendResult};
pub use persist::{MemoryPersist, Persist};
pub use transport::{Connector, FnConnector, Opened, SerialConnector, SerialPath, TcpConnector};
