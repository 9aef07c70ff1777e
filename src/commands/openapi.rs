//! `logitlens openapi`: the REST API's OpenAPI document.

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {}

/// The document `GET /openapi.json` serves, every route's included.
pub fn run(_: Args) -> Result<()> {
    println!("{}", logitlens_server::openapi().to_pretty_json()?);
    Ok(())
}
