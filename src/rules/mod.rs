//! YAML rules: the raw model, validation with `path:line:col`, matching events,
//! templates, actions, run modes and cooldowns. Sees events and `Host`, never the port.
//!
//! - [`load()`]: files and folders → [`RuleSet`] (every regex, template, `if:` and
//!   crontab compiled; modem names, script functions and durations checked; all
//!   problems of all files reported with `path:line:col`; see [`ValidationContext`]).
//! - [`model`]: [`Rule`], [`Trigger`], [`Step`], [`Action`], [`Mode`].
//! - [`matcher`]: which events start which rule; regex captures; sender numbers.
//! - [`template`]: `{{ … }}` templates and `if:` conditions (Rhai expressions).
//! - [`RuleRunner`]: modes, queues, cooldowns, the allowlist, running actions against
//!   the [`Host`](crate::host::Host), status.

mod action;
pub mod load;
pub mod matcher;
pub mod model;
mod runner;
pub mod template;

pub use action::RunOutcome;
pub use load::{load, load_sources, ValidationContext, DEFAULT_RUN_TIMEOUT};
pub use model::*;
pub use runner::{
    CurrentScripts, DispatchResult, Dispatched, HostFor, RuleRunner, RuleStatus, RunnerDeps,
    SkipReason,
};
