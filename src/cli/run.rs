//! `atmate run`: the daemon.

use std::path::PathBuf;

/// Arguments of `atmate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file (default: ATMATE_CONFIG, ./config/atmate.yaml,
    /// $XDG_CONFIG_HOME/atmate/atmate.yaml, /etc/atmate/atmate.yaml).
    #[arg(long, short, env = "ATMATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Run the daemon until SIGINT/SIGTERM.
pub fn run(_args: RunArgs) -> anyhow::Result<i32> {
    anyhow::bail!("the daemon is being wired")
}
