//! `atmate pdu decode|encode`.

/// Arguments of `atmate pdu`.
#[derive(Debug, clap::Args)]
pub struct PduArgs {}

/// Run `atmate pdu`.
pub fn run(_args: PduArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not implemented yet")
}
