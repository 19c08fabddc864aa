//! The command line. `main.rs` parses nothing itself: it calls [`run`].
//!
//! Exit codes (a documented contract): 0 success; 1 the thing asked about is invalid
//! or failed (bad PDU, invalid config, modem error); 2 atmate could not run (I/O,
//! missing file, no daemon and no modem).

use clap::{Parser, Subcommand};

pub mod check;
pub mod pdu;
pub mod run;
pub mod sim;

/// atmate: SMS, USSD and AT automation for USB cellular modems.
#[derive(Debug, Parser)]
#[command(name = "atmate", version, about, long_about = None)]
pub struct Cli {
    /// Log filter, RUST_LOG style (`info`, `atmate=debug`, …).
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: modems, rules, scripts, schedules, control socket.
    Run(run::RunArgs),
    /// Validate config, rules and scripts (exit 0 ok, 1 invalid, 2 could not run).
    Check(check::CheckArgs),
    /// Decode or encode SMS PDUs (a debugging aid; JSON output).
    Pdu(pdu::PduArgs),
    /// Run the ZTE MF667 simulator, or drive a running one.
    Sim(sim::SimArgs),
}

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Pdu(args) => pdu::run(args),
        Command::Sim(args) => sim::run(args),
    }
}
