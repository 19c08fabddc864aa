//! `atmate.yaml`: read raw (serde, unknown keys are errors), then validated into types
//! that cannot hold bad states.

pub mod yaml;
