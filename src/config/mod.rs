//! `atmate.yaml`: read raw, then validated into types that cannot hold bad states.
//!
//! - [`locate`] / [`find`]: which file (`--config`, `$ATMATE_CONFIG`,
//!   `./config/atmate.yaml`, `$XDG_CONFIG_HOME/atmate/atmate.yaml`,
//!   `/etc/atmate/atmate.yaml`) and how it was found.
//! - [`load`]: parse with serde-saphyr into a located tree ([`yaml`]), expand `${VAR}`
//!   ([`env`]), then read every section into [`Config`], collecting *all* problems as
//!   [`crate::diag::Diagnostic`]s with `path:line:col` (unknown keys get a "did you
//!   mean"). Relative paths in the file are relative to its folder.
//! - [`Config`] and its parts ([`ModemSection`] …) derive `PartialEq`, and
//!   [`Config::diff`] tells the runtime what a reload changed, so a rules-only change
//!   never reopens a modem.
//!
//! Uses `crate::diag` only.

pub mod env;
mod locate;
mod model;
mod read;
pub use crate::yaml;

pub use locate::{find, find_with, locate, ConfigError, Located, Origin};
pub use model::{
    default_recovery_steps, Config, ConfigDiff, Device, Discovery, Health, Limits, ModemSection,
    Reconnect, Recovery, ScriptLimits, Secret, SimCapacity, SimOptions, Storage, Vendor, Zone,
};
pub use read::{default_control_socket, from_str, load, load_with_env, normalize_number};

#[cfg(test)]
mod tests;
