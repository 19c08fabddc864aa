//! `atmate completions SHELL`: print a completion script for bash, zsh, fish (and
//! elvish, PowerShell), generated from the same clap definition the binary parses
//! with, so it can never drift from the real options.

use clap::CommandFactory as _;

/// Arguments of `atmate completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate completions bash > /etc/bash_completion.d/atmate
  atmate completions zsh > \"${fpath[1]}/_atmate\"
  atmate completions fish > ~/.config/fish/completions/atmate.fish
  source <(atmate completions bash)          # this shell only")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "atmate", &mut out);
    out
}

/// Run `atmate completions`.
pub fn run(args: CompletionsArgs) -> anyhow::Result<i32> {
    use std::io::Write as _;
    std::io::stdout().write_all(&script(args.shell))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Shell;

    #[test]
    fn scripts_know_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = String::from_utf8(script(shell)).unwrap();
            for word in ["atmate", "send", "ussd", "inbox", "modeswitch", "json"] {
                assert!(s.contains(word), "{shell}: {word} missing");
            }
        }
    }
}
