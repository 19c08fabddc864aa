//! YAML rules: the raw model, validation with `path:line:col`, matching events,
//! templates, actions, run modes and cooldowns. Sees events and `Host`, never the port.

pub mod template;
