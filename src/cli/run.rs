//! `atmate run`: the daemon.

use std::path::PathBuf;

/// Arguments of `atmate run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  atmate run\n  atmate run -c /etc/atmate/atmate.yaml\n  RUST_LOG=atmate=debug atmate run"
)]
pub struct RunArgs {
    /// The configuration file (default: ATMATE_CONFIG, ./config/atmate.yaml,
    /// $XDG_CONFIG_HOME/atmate/atmate.yaml, /etc/atmate/atmate.yaml).
    #[arg(long, short, env = "ATMATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Run the daemon until SIGINT/SIGTERM. Invalid configuration: exit 1; could not
/// start (store, socket): exit 2.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(crate::runtime::run_daemon(args.config.as_deref())) {
        Ok(()) => Ok(0),
        Err(crate::runtime::FatalError::Invalid(d)) => {
            eprintln!("{}", d.render());
            eprintln!("atmate: the configuration is invalid; nothing was started");
            Ok(1)
        }
        Err(e) => {
            eprintln!("atmate: {e}");
            Ok(2)
        }
    }
}
