//! `logitlens merge-jlens`: Jacobian lenses fitted on disjoint prompts (the
//! shards of one fit) combined as one, weighted by their prompts: from the
//! shards' checkpoints (their sums add: exact) or from lens files.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use logitlens_engine::lens::jacobian::JacobianLens;
use logitlens_engine::ops::fit_jlens::JacobianSums;

#[derive(clap::Args)]
pub struct Args {
    /// The parts: fit-jlens checkpoints (`*.checkpoint.safetensors`), or lens files
    /// (.safetensors, .pt), all of one kind.
    #[arg(required = true, num_args = 2..)]
    parts: Vec<PathBuf>,
    /// The merged lens: FILE.safetensors or FILE.pt.
    #[arg(long)]
    out: PathBuf,
    /// The model the lens is for, recorded in its metadata when merging checkpoints
    /// (their sums do not name it).
    #[arg(long)]
    model_name: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let sums: Vec<Option<JacobianSums>> = args
        .parts
        .iter()
        .map(|p| JacobianSums::load(p).ok())
        .collect();
    let lens = if sums.iter().all(Option::is_some) {
        let sums: Vec<JacobianSums> = sums.into_iter().flatten().collect();
        let merged = JacobianSums::merge(&sums)?;
        merged.lens(args.model_name.as_deref().unwrap_or(""))?
    } else if sums.iter().any(Option::is_some) {
        bail!("give checkpoints only, or lens files only: their sums and means do not mix");
    } else {
        let lenses = args
            .parts
            .iter()
            .map(|p| JacobianLens::load(p).with_context(|| format!("reading {}", p.display())))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&JacobianLens> = lenses.iter().collect();
        JacobianLens::merge(&refs)?
    };
    lens.save(&args.out)
        .with_context(|| format!("writing the lens to {}", args.out.display()))?;
    eprintln!(
        "merged {} parts: {} prompts",
        args.parts.len(),
        lens.n_prompts
    );
    println!("{}", args.out.display());
    Ok(())
}
