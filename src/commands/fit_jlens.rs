//! `logitlens fit-jlens`: a Jacobian lens fitted on a corpus (the engine's
//! fit operation, as POST /fit_jlens runs it), written as `.safetensors`
//! (float32) or `.pt` (TransformerLens's layout, float16). After each
//! prompt the fit's sums are written to a checkpoint beside the output;
//! Ctrl-C stops the fit there, and `--resume CHECKPOINT` continues it.
//! `--shard i/n` fits every n-th prompt from the i-th, so a corpus-scale
//! fit runs as a job array; `merge-jlens` combines the shards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use logitlens_engine::ops::fit_jlens::{
    JacobianSums, JlensFitRequest, DEFAULT_DIM_BATCH, DEFAULT_MAX_SEQ_LEN, DEFAULT_SKIP_FIRST,
};
use logitlens_engine::EngineError;

use crate::model_args::{CorpusSource, LensArgs, ModelArgs};
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: ModelArgs,
    #[command(flatten)]
    source: CorpusSource,
    /// Fit on the corpus's first N documents (default: all).
    #[arg(long)]
    max_prompts: Option<usize>,
    /// Cut each prompt to its first N token ids.
    #[arg(long, default_value_t = DEFAULT_MAX_SEQ_LEN)]
    max_seq_len: usize,
    /// Leading positions left out of each prompt's average (attention sinks).
    #[arg(long, default_value_t = DEFAULT_SKIP_FIRST)]
    skip_first: usize,
    /// Output dimensions per backward pass (the prompt's replicas in one forward pass): more
    /// is faster per dimension and takes more memory.
    #[arg(long, default_value_t = DEFAULT_DIM_BATCH)]
    dim_batch: usize,
    /// The lens to write: FILE.safetensors (float32) or FILE.pt (TransformerLens's layout).
    #[arg(long)]
    out: PathBuf,
    /// Continue the fit a checkpoint holds (the same model, corpus and settings).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Fit one shard of the prompts, `i/n` (the prompts j with j mod n = i); merge the
    /// shards' checkpoints (or lenses) with merge-jlens.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Print what was fitted as JSON.
    #[arg(long)]
    json: bool,
}

/// `i/n`.
fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    s.split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)))
        .ok_or_else(|| format!("{s:?} is not a shard: give i/n, e.g. 0/4"))
}

/// The checkpoint written beside `out`: `lens.safetensors` →
/// `lens.checkpoint.safetensors`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "jlens".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.checkpoint.safetensors"))
}

pub fn run(args: Args) -> Result<()> {
    let ext = args.out.extension().and_then(|e| e.to_str());
    if !matches!(ext, Some("safetensors" | "pt")) {
        bail!(
            "--out must end in .safetensors or .pt: {}",
            args.out.display()
        );
    }
    let resume = args.resume.as_deref().map(JacobianSums::load).transpose()?;
    let req = JlensFitRequest {
        corpus: args.source.corpus()?,
        max_prompts: args.max_prompts,
        max_seq_len: args.max_seq_len,
        skip_first: args.skip_first,
        dim_batch: args.dim_batch,
        resume,
        shard: args.shard,
    };
    let model = args.on.load(&LensArgs::none())?;
    let checkpoint = checkpoint_path(&args.out);
    let progress = Progress::corpus(&req.corpus, req.max_seq_len).stoppable();
    let (mut fitted, mut skipped) = (0usize, 0usize);
    let result = super::execute(&model, &req, &progress, &mut |step| {
        if step.fitted {
            fitted += 1;
        } else {
            skipped += 1;
        }
        step.sums.save(&checkpoint)
    });
    progress.finish();
    let sums = match result {
        Ok(sums) => sums,
        Err(e) if matches!(e.downcast_ref(), Some(EngineError::Cancelled)) => {
            bail!(
                "stopped: {} holds the fit so far; continue it with --resume {}",
                checkpoint.display(),
                checkpoint.display()
            )
        }
        Err(e) => return Err(e),
    };
    let lens = sums.lens(&model.name)?;
    lens.save(&args.out)
        .with_context(|| format!("writing the lens to {}", args.out.display()))?;
    // A shard's exact sums are what merge-jlens combines; a whole fit's
    // checkpoint has served its purpose.
    if sums.shard.is_none() {
        let _ = std::fs::remove_file(&checkpoint);
    }
    if args.json {
        let body = serde_json::json!({
            "out": args.out,
            "checkpoint": sums.shard.map(|_| checkpoint),
            "n_prompts": sums.n_done,
            "fitted_now": fitted,
            "skipped": skipped,
            "source_layers": sums.source_layers,
            "d_model": sums.d_model,
            "metadata": lens.metadata,
        });
        return super::print_json(|w| serde_json::to_writer(w, &body));
    }
    println!("{}", args.out.display());
    Ok(())
}
