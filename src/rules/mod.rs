//! YAML rules: the raw model, validation with `path:line:col`, matching events,
//! templates, actions, run modes and cooldowns. Sees events and `Host`, never the port.

pub mod load;
pub mod matcher;
pub mod model;
pub mod template;

pub use load::{load, load_sources, ValidationContext, DEFAULT_RUN_TIMEOUT};
pub use model::*;
