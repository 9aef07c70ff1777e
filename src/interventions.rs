//! `--interventions`: the /inference `interventions` object, given inline
//! or as `@file`, for `lens` and `generate`.

use anyhow::{Context as _, Result};
use logitlens_engine::Interventions;

/// The interventions `arg` holds (none without it); a key given twice is
/// refused, as the server refuses it.
pub fn parse(arg: Option<&str>) -> Result<Interventions> {
    let Some(arg) = arg else {
        return Ok(Interventions::new());
    };
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => arg.to_owned(),
    };
    let mut de = serde_json::Deserializer::from_str(&text);
    let interventions = logitlens_engine::hooks::unique_keys(&mut de)
        .and_then(|iv| de.end().map(|()| iv))
        .context(
            "--interventions must be a JSON object mapping keys to lists of operations, \
             e.g. '{\"layer_3_output\":[{\"type\":\"zero\"}]}'",
        )?;
    Ok(interventions)
}
