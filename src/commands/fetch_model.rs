//! `logitlens fetch-model`: the default model, fetched if missing.

use anyhow::Result;
use logitlens_engine::default_model::ensure_default_model;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> Result<()> {
    let path = ensure_default_model(&mut |m| eprintln!("{m}"))?;
    println!("{}", path.display());
    Ok(())
}
