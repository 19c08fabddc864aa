//! `atmate sim`.

/// Arguments of `atmate sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {}

/// Run `atmate sim`.
pub fn run(_args: SimArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not implemented yet")
}
