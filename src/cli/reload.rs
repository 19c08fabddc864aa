//! `atmate reload`: make the daemon re-read its config, rules and scripts now (the
//! same as saving a file it watches, or `kill -HUP`).

use serde_json::Value;

use super::client::{block_on, print_json, Context, Reached, Target, RELOAD_TIMEOUT};
use crate::control::Request;

/// Arguments of `atmate reload`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate reload
  atmate check && atmate reload
  atmate reload --json

Output: what the daemon reloaded, e.g. `rules reloaded (4 rules)`. A broken file is
reported with path:line:col and the previous version keeps running.
Exit codes: 0 reloaded; 1 the new config, rules or scripts are invalid (the daemon
keeps the previous ones); 2 could not run (no daemon).")]
pub struct ReloadArgs {
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// Run `atmate reload`.
pub fn run(args: ReloadArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let ctx = Context::new(&args.target)?;
        let mut client = match ctx.daemon().await? {
            Reached::Daemon(c) => c,
            Reached::Nobody(_) => return Err(ctx.needs_daemon("reload")),
        };
        let answer = client.call(&Request::Reload, RELOAD_TIMEOUT).await?;
        if args.json {
            print_json(&answer);
        } else {
            match &answer {
                Value::String(s) => println!("{s}"),
                Value::Null => println!("reloaded"),
                other => println!("{other}"),
            }
        }
        Ok(())
    })
}
