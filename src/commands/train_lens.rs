//! `logitlens train-lens`: a tuned-lens fit (the engine's fit operation)
//! on a corpus, written as config.json + params.safetensors.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use logitlens_engine::ops::fit::{FitRequest, TrainOptions};
use logitlens_engine::WeightsMode;

use crate::model_args::{CorpusArgs, LensArgs};
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: CorpusArgs,
    /// The folder to write the lens to.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// The tuned-lens package's lr_scale: SGD's rate peaks at lr x (1 - momentum 0.9) after a
    /// linear warm-up of a tenth of the steps, then falls linearly to 0.
    #[arg(long, default_value_t = 1.0)]
    lr: f64,
    /// Token positions per step (whole documents). Each position keeps the model's
    /// output distribution for the step (8 bytes per vocabulary entry): lower it to
    /// bound memory, raise it for steadier steps.
    #[arg(long, default_value_t = 4096)]
    batch_tokens: usize,
}

pub fn run(args: Args) -> Result<()> {
    let req = FitRequest {
        corpus: args.on.corpus()?,
        max_tokens: args.on.max_tokens,
        options: TrainOptions {
            steps: args.steps,
            lr: args.lr,
            batch_tokens: args.batch_tokens,
            warmup: (args.steps / 10).max(1),
            ..Default::default()
        },
    };
    // The fit differentiates through the unembedding, held widened.
    let model = args.on.load(WeightsMode::F32, &LensArgs::none())?;
    let progress = Progress::corpus(&req.corpus, req.max_tokens).steps(args.steps);
    let lens = super::execute(&model, &req, &progress, &mut |step| {
        progress.fit_step(&step);
        Ok(())
    });
    progress.finish();
    let out = &args.out;
    lens?
        .save(out)
        .with_context(|| format!("writing the lens to {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}
