//! `logitlens sae-features`: what an SAE's features say, each one's top and
//! bottom tokens by its decoder row read through the unembedding
//! (`W_dec[f] · W_U`, as SAELens's logit lens of a feature).

use anyhow::{bail, Result};
use logitlens_engine::api::{SaeFeaturesResponse, MAX_FEATURE_TOKENS};

use crate::model_args::{LensArgs, ModelArgs, SaeArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: ModelArgs,
    /// The SAE (one).
    #[command(flatten)]
    sae: SaeArgs,
    /// The features, comma-separated ids.
    #[arg(long, value_delimiter = ',', required = true)]
    features: Vec<u32>,
    /// Tokens listed at each end.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.sae.saes.len() != 1 {
        bail!("give one SAE with --sae (got {})", args.sae.saes.len());
    }
    if !(1..=MAX_FEATURE_TOKENS).contains(&args.k) {
        bail!("--k is 1 to {MAX_FEATURE_TOKENS}, not {}", args.k);
    }
    let model = args.on.load(&LensArgs::none())?;
    args.sae.attach(&model)?;
    let sae = model.saes().remove(0);
    let body = SaeFeaturesResponse::of(&model, &sae, &args.features, args.k, None)?;
    if args.json {
        return super::print_json(|w| serde_json::to_writer(w, &body));
    }
    println!(
        "SAE {} ({}, {}, {} features)",
        sae.name, body.sae.hook, body.sae.architecture, body.sae.d_sae
    );
    for f in &body.features {
        println!("\nfeature {} (‖W_dec‖ {:.4})", f.id, f.decoder_norm);
        let list = |ts: &[logitlens_engine::ops::sae::TokenValue]| -> String {
            ts.iter()
                .map(|t| format!("{:?} {:+.3}", t.token, t.value))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("  promotes: {}", list(&f.top_tokens));
        println!("  demotes:  {}", list(&f.bottom_tokens));
    }
    Ok(())
}
