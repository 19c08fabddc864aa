//! `atmate console`: an interactive AT terminal on the shared modem handle. Each typed
//! line goes to the modem as one AT command (through the daemon, so it never fights
//! it for the port); events the daemon derives from URCs (an SMS, a signal change, a
//! link drop) are printed as they arrive, marked `[event]`.
//!
//! Line editing is the terminal's own (cooked mode); the console keeps an in-memory
//! history: `!!` repeats the last command, `!N` command N of `history`.

use std::io::Write as _;

use chrono::Local;
use serde_json::Value;

use super::at::{parse_command, render};
use super::client::{block_on, stdin_lines, Context, Failure, Link, Target, MODEM_TIMEOUT};
use super::output::describe_event;
use crate::control::Request;

/// Arguments of `atmate console`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate console
  atmate console --modem backup
  printf 'AT+CSQ\\nAT+COPS?\\n' | atmate console     # scripted, no prompt

In the console:
  at> AT+CSQ
  +CSQ: 18,99
  OK
  at> !!                 repeat the last command
  at> history            list the commands typed; !3 repeats the third
  [event 12:03:04] main sms from +4917612345678: \"ping\"
  at> quit               (or Ctrl-D)
Exit codes: 0 at the end of input; 2 could not run (no daemon and no modem).")]
pub struct ConsoleArgs {
    /// The modem to talk to (default: the config's default modem).
    #[arg(long)]
    pub modem: Option<String>,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An empty line.
    Nothing,
    /// Send this AT command.
    Run(String),
    /// Leave.
    Quit,
    /// Show the help text.
    Help,
    /// List the history.
    ShowHistory,
    /// The line cannot be run; say why.
    Error(String),
}

/// The commands typed so far.
#[derive(Debug, Default)]
pub struct History {
    entries: Vec<String>,
}

impl History {
    /// Interpret one typed line; commands that will run are remembered.
    pub fn interpret(&mut self, line: &str) -> Action {
        let t = line.trim();
        let action = match t.to_ascii_lowercase().as_str() {
            "" => return Action::Nothing,
            "quit" | "exit" => return Action::Quit,
            "help" | "?" => return Action::Help,
            "history" => return Action::ShowHistory,
            "!!" => match self.entries.last() {
                Some(c) => Action::Run(c.clone()),
                None => return Action::Error("no command yet to repeat".into()),
            },
            s if s.starts_with('!') => match s[1..].parse::<usize>() {
                Ok(n) if n >= 1 && n <= self.entries.len() => {
                    Action::Run(self.entries[n - 1].clone())
                }
                _ => {
                    return Action::Error(format!(
                        "{t}: no such entry (`history` lists {})",
                        self.entries.len()
                    ))
                }
            },
            _ => match parse_command(t) {
                Ok(c) => Action::Run(c),
                Err(e) => return Action::Error(e),
            },
        };
        if let Action::Run(c) = &action {
            self.entries.push(c.clone());
        }
        action
    }

    /// `  1  AT+CSQ` lines.
    pub fn listing(&self) -> String {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:>3}  {c}\n", i + 1))
            .collect()
    }
}

const HELP: &str =
    "Type an AT command (AT+CSQ) and Enter. `!!` repeats the last command, `!N` the N-th, \
`history` lists them, `quit` or Ctrl-D leaves. Events are shown as they arrive, marked [event].";

/// Run `atmate console`.
pub fn run(args: ConsoleArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let ctx = Context::new(&args.target)?;
        let mut link = Link::open(&ctx, args.modem.as_deref(), true).await?;
        // Events come through a task and a channel: reading a line from the daemon is
        // not cancel-safe, and the select below drops the branch that loses.
        let mut source = link.events(&ctx).await?;
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let next = source.next().await;
                let end = !matches!(next, Ok(Some(_)));
                if tx.send(next).is_err() || end {
                    return;
                }
            }
        });
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
        if tty {
            let via = if link.is_direct() {
                "opened directly (no daemon)"
            } else {
                "through the daemon"
            };
            let which = match &args.modem {
                Some(m) => format!("modem {m}"),
                None => "the default modem".to_owned(),
            };
            eprintln!("atmate console on {which}, {via}. {HELP}");
        }
        let mut input = stdin_lines();
        let mut history = History::default();
        prompt(tty);
        loop {
            tokio::select! {
                line = input.recv() => {
                    let Some(line) = line else { break };
                    match history.interpret(&line) {
                        Action::Nothing => {}
                        Action::Quit => break,
                        Action::Help => println!("{HELP}"),
                        Action::ShowHistory => print!("{}", history.listing()),
                        Action::Error(e) => println!("{e}"),
                        Action::Run(cmd) => {
                            if line.trim().starts_with('!') {
                                println!("{cmd}");
                            }
                            let req = Request::At { command: cmd, modem: args.modem.clone() };
                            match link.call(req, MODEM_TIMEOUT).await {
                                Ok(answer) => print!("{}", render(&answer)),
                                // The modem said ERROR: show it and carry on, as a terminal does.
                                Err(Failure::Refused(e)) => println!("{e}"),
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    prompt(tty);
                }
                ev = events.recv() => match ev {
                    Some(Ok(Some(e))) => {
                        if wanted(&e, args.modem.as_deref()) {
                            if tty {
                                // Clear the prompt line, print the event, prompt again.
                                print!("\r\x1b[K");
                            }
                            println!("[event {}] {}", Local::now().format("%H:%M:%S"), describe_event(&e));
                            prompt(tty);
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    Some(Ok(None)) | None => {
                        return Err(Failure::CouldNotRun(
                            "the daemon closed the connection (it stopped or restarted)".into(),
                        ))
                    }
                }
            }
        }
        if tty {
            println!();
        }
        Ok(())
    })
}

fn wanted(e: &Value, modem: Option<&str>) -> bool {
    match (modem, e.get("modem").and_then(Value::as_str)) {
        (Some(want), Some(from)) => want == from,
        _ => true,
    }
}

fn prompt(tty: bool) {
    if tty {
        print!("at> ");
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_repeats_and_lists() {
        let mut h = History::default();
        assert_eq!(h.interpret("   "), Action::Nothing);
        assert_eq!(
            h.interpret("!!"),
            Action::Error("no command yet to repeat".into())
        );
        assert_eq!(h.interpret("AT+CSQ"), Action::Run("AT+CSQ".into()));
        assert_eq!(h.interpret("at+cops?"), Action::Run("at+cops?".into()));
        assert_eq!(h.interpret("!!"), Action::Run("at+cops?".into()));
        assert_eq!(h.interpret("!1"), Action::Run("AT+CSQ".into()));
        assert_eq!(
            h.listing(),
            "  1  AT+CSQ\n  2  at+cops?\n  3  at+cops?\n  4  AT+CSQ\n"
        );
        assert!(matches!(h.interpret("!9"), Action::Error(e) if e.contains("no such entry")));
        assert!(matches!(h.interpret("!x"), Action::Error(_)));
        assert_eq!(h.interpret("QUIT"), Action::Quit);
        assert_eq!(h.interpret("exit"), Action::Quit);
        assert_eq!(h.interpret("help"), Action::Help);
        assert_eq!(h.interpret("history"), Action::ShowHistory);
        // Not an AT command: explained, not sent, not remembered.
        assert!(matches!(h.interpret("+CSQ"), Action::Error(e) if e.contains("AT+CSQ")));
        assert_eq!(h.listing().lines().count(), 4);
    }

    #[test]
    fn events_of_other_modems_are_hidden_when_one_is_named() {
        let e = serde_json::json!({"kind": "signal", "modem": "main"});
        assert!(wanted(&e, None));
        assert!(wanted(&e, Some("main")));
        assert!(!wanted(&e, Some("backup")));
        assert!(wanted(
            &serde_json::json!({"kind": "schedule"}),
            Some("backup")
        ));
    }
}
