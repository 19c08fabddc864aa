//! `atmate check`: validate config, rules and scripts without touching a modem.

use std::path::PathBuf;

/// Arguments of `atmate check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  atmate check\n  atmate check -c /etc/atmate/atmate.yaml && systemctl reload atmate\n\nExit codes: 0 valid, 1 invalid (every problem is printed as path:line:col), 2 could not run."
)]
pub struct CheckArgs {
    /// The configuration file (same search as `atmate run`).
    #[arg(long, short, env = "ATMATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Exit 0 valid, 1 invalid, 2 could not run.
pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let (code, report) = crate::runtime::check(args.config.as_deref());
    if code == 0 {
        println!("{report}");
    } else {
        eprintln!("{report}");
    }
    Ok(code)
}
