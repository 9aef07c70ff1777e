//! `logitlens eval-sae`: the SAE evaluation POST /eval_sae makes, printed
//! as a row per SAE, or as its JSON body.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use logitlens_engine::ops::eval_sae::{EvalSaeRequest, SaeEvalReport};
use logitlens_engine::WeightsMode;

use crate::model_args::{CorpusArgs, LensArgs, SaeArgs};
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: CorpusArgs,
    /// The SAEs to measure.
    #[command(flatten)]
    saes: SaeArgs,
    /// Splice the SAE in at special-token positions too (BOS, eos); they
    /// are never counted.
    #[arg(long)]
    include_special: bool,
    /// Print the measures as JSON (the body POST /eval_sae returns).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.saes.saes.is_empty() {
        bail!("give the SAEs to measure with --sae DIR (repeatable)");
    }
    let req = EvalSaeRequest {
        corpus: args.on.corpus()?,
        max_tokens: args.on.max_tokens,
        saes: None,
        exclude_special: !args.include_special,
    };
    let model = args.on.load(WeightsMode::default(), &LensArgs::none())?;
    args.saes.attach(&model)?;
    let progress = Progress::corpus(&req.corpus, req.max_tokens);
    let report = super::execute(&model, &req, &progress, &mut |never| match never {});
    progress.finish();
    let report = report?;
    if args.json {
        return super::print_json(|w| serde_json::to_writer(w, &report));
    }
    print!("{}", table(&report));
    Ok(())
}

/// A row per SAE: the loss it costs, how far the output moves, how well it
/// reconstructs, how sparse it is.
fn table(report: &SaeEvalReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} positions over {} documents (nats); clean CE {:.4}",
        report.tokens,
        report.documents,
        report.saes.first().map_or(f64::NAN, |s| s.ce_clean)
    );
    let _ = writeln!(
        out,
        "{:<24} {:<28} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "SAE", "hook", "ΔCE", "KL", "recovered", "EV", "MSE", "L0", "dead"
    );
    for s in &report.saes {
        let _ = writeln!(
            out,
            "{:<24} {:<28} {:>8.4} {:>8.4} {:>9} {:>8.4} {:>8.4} {:>8.1} {:>8}",
            s.name,
            s.hook,
            s.delta_ce,
            s.kl,
            s.ce_loss_score
                .map_or_else(|| "-".into(), |x| format!("{x:.4}")),
            s.explained_variance,
            s.mse,
            s.mean_l0,
            format!("{}/{}", s.dead_features, s.d_sae)
        );
    }
    out
}
