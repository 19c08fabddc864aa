//! The command line. `main.rs` parses nothing itself: it calls [`run`].
//!
//! Exit codes (a documented contract): 0 success; 1 the thing asked about is invalid
//! or failed (bad PDU, invalid config, the daemon or modem answered with an error);
//! 2 atmate could not run (I/O, missing file, bad arguments, no daemon and no modem).
//!
//! The client commands (`send`, `ussd`, `at`, `status`, `inbox`, `outbox`, `reload`,
//! `logs`, `console`) talk to the running daemon over its control socket
//! ([`client`]); `send`, `ussd`, `at`, `status` and `console` open the modem directly
//! when no daemon runs, `inbox` and `outbox` read the store.

use clap::{Parser, Subcommand, ValueEnum};

pub mod at;
pub mod check;
pub mod client;
pub mod completions;
pub mod console;
pub mod inbox;
pub mod logs;
pub mod modeswitch;
pub mod outbox;
pub mod output;
pub mod pdu;
pub mod reload;
pub mod run;
pub mod send;
pub mod sim;
pub mod status;
pub mod ussd;

/// atmate: SMS, USSD and AT automation for USB cellular modems.
#[derive(Debug, Parser)]
#[command(
    name = "atmate",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 ok; 1 the daemon or modem answered with an error (or the input is invalid); 2 could not run."
)]
pub struct Cli {
    /// Log filter, RUST_LOG style (`info`, `atmate=debug`, …).
    #[arg(long, global = true, env = "RUST_LOG", default_value = DEFAULT_LOG)]
    pub log: String,
    /// Log line format on stderr: `text` for people, `json` for journald/Loki.
    #[arg(
        long,
        global = true,
        env = "ATMATE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The `--log` default.
const DEFAULT_LOG: &str = "info";

impl Cli {
    /// The log filter `main.rs` should install. `--log`/`RUST_LOG` as given, except
    /// that the client commands turn the default `info` into `warn`: their output is
    /// for the person at the terminal, and when they open the modem directly the
    /// engine's info lines (port open, link up) would bury it. (`--log info` on a
    /// client command therefore reads as the default; `--log atmate=info` gets them.)
    pub fn log_filter(&self) -> &str {
        if self.log == DEFAULT_LOG && self.command.is_client() {
            "warn"
        } else {
            &self.log
        }
    }
}

impl Command {
    /// True for the commands that talk to a daemon (or the modem) for a person:
    /// everything but `run`, `check`, `pdu` and `sim`.
    pub fn is_client(&self) -> bool {
        !matches!(
            self,
            Command::Run(_) | Command::Check(_) | Command::Pdu(_) | Command::Sim(_)
        )
    }
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: modems, rules, scripts, schedules, control socket.
    Run(run::RunArgs),
    /// Validate config, rules and scripts (exit 0 ok, 1 invalid, 2 could not run).
    Check(check::CheckArgs),
    /// Send an SMS (through the daemon, or the modem directly when none runs).
    Send(send::SendArgs),
    /// Send a USSD code (`*100#`); answer menus with --interactive.
    Ussd(ussd::UssdArgs),
    /// Send one raw AT command and print the answer.
    At(at::AtArgs),
    /// Show the daemon, modems (link, network, signal, storage), rules and schedules.
    Status(status::StatusArgs),
    /// List received messages.
    Inbox(inbox::InboxArgs),
    /// List sent and queued messages.
    Outbox(outbox::OutboxArgs),
    /// Make the daemon re-read its config, rules and scripts now.
    Reload(reload::ReloadArgs),
    /// Follow the daemon's events (SMS, USSD, link, network, signal…) as they happen.
    Logs(logs::LogsArgs),
    /// An interactive AT terminal on the shared modem, with live events.
    Console(console::ConsoleArgs),
    /// Switch a ZTE MF667 from web mode to modem mode (or show how to undo it).
    Modeswitch(modeswitch::ModeswitchArgs),
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions(completions::CompletionsArgs),
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
        Command::Send(args) => send::run(args),
        Command::Ussd(args) => ussd::run(args),
        Command::At(args) => at::run(args),
        Command::Status(args) => status::run(args),
        Command::Inbox(args) => inbox::run(args),
        Command::Outbox(args) => outbox::run(args),
        Command::Reload(args) => reload::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Console(args) => console::run(args),
        Command::Modeswitch(args) => modeswitch::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn log_format_is_global() {
        let cli = Cli::try_parse_from(["atmate", "status", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        let cli = Cli::try_parse_from(["atmate", "--log-format", "text", "inbox"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Text);
        assert!(Cli::try_parse_from(["atmate", "--log-format", "xml", "inbox"]).is_err());
    }

    #[test]
    fn client_commands_log_warnings_only_by_default() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        // RUST_LOG from the environment counts as given.
        let env = std::env::var("RUST_LOG").ok();
        let daemon = env.as_deref().unwrap_or("info");
        let client = if daemon == "info" { "warn" } else { daemon };
        assert_eq!(parse(&["atmate", "at", "AT+CSQ"]).log_filter(), client);
        assert_eq!(
            parse(&["atmate", "--log", "atmate=debug", "at", "AT+CSQ"]).log_filter(),
            "atmate=debug"
        );
        assert_eq!(parse(&["atmate", "run"]).log_filter(), daemon);
        assert_eq!(parse(&["atmate", "check"]).log_filter(), daemon);
    }

    #[test]
    fn every_client_command_has_examples() {
        let cmd = Cli::command();
        for name in [
            "send",
            "ussd",
            "at",
            "status",
            "inbox",
            "outbox",
            "reload",
            "logs",
            "console",
            "modeswitch",
            "completions",
        ] {
            let sub = cmd.find_subcommand(name).unwrap();
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.starts_with("Examples:\n"), "{name}: {help}");
        }
    }
}
