//! atmate's integration tests: one binary (ripgrep style). Each module below says what goes in it.

/// The client commands through the real binary against a fake daemon; modeswitch, completions.
mod cli;
/// The shared harness: a real daemon on a temp dir with the in-process simulator.
mod common;
/// The control socket of a real daemon, and the CLI against it.
mod control;
/// Crashes: `kill -9` of the real daemon while SMS arrive; sends cut off and completed.
mod crash;
/// The whole daemon: rules, scripts, schedules, reload, budgets, `run`, shipped examples.
mod daemon;
/// The modem engine on the in-process simulator: receive, multipart, USSD, sending, garbage.
mod engine;
/// Real clients against the simulator: Debian's `gammu` on a simulator PTY.
mod gammu;
/// The dependency rule between modules (pure leaves, simulator).
mod layering;
/// Surviving the real stick: USB drops and re-enumeration, network loss and recovery, PIN and SIM, a full SIM.
mod link;
/// `atmate pdu decode|encode` through the real binary.
mod pdu_cli;
/// The README's examples and commands.
mod readme;
/// The simulator on its own: the wire, faults, the control socket, `atmate sim`.
mod sim;
