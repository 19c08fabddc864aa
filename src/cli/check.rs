//! `atmate check`: validate config, rules and scripts.

use std::path::PathBuf;

/// Arguments of `atmate check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file (same search as `atmate run`).
    #[arg(long, short, env = "ATMATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Exit 0 valid, 1 invalid, 2 could not run.
pub fn run(_args: CheckArgs) -> anyhow::Result<i32> {
    anyhow::bail!("check is being wired")
}
