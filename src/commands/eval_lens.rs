//! `logitlens eval-lens`: the lens evaluation POST /eval_lens makes,
//! printed as a table per lens (and drawn, with --plot), or as its JSON
//! body.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use logitlens_engine::ops::eval::{EvalReport, EvalRequest};
use logitlens_engine::WeightsMode;

use crate::model_args::{CorpusArgs, LensArgs};
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: CorpusArgs,
    /// Also measure these lenses.
    #[command(flatten)]
    lenses: LensArgs,
    /// Print the measures as JSON (the body POST /eval_lens returns).
    #[arg(long)]
    json: bool,
    /// Also draw the measures per row, a line per lens, into this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let req = EvalRequest {
        corpus: args.on.corpus()?,
        max_tokens: args.on.max_tokens,
    };
    let model = args.on.load(WeightsMode::default(), &args.lenses)?;
    let progress = Progress::corpus(&req.corpus, req.max_tokens);
    let report = super::execute(&model, &req, &progress, &mut |never| match never {});
    progress.finish();
    let report = report?;
    if let Some(out) = &args.plot {
        let title = format!(
            "{}: lens quality over {} positions of {} documents",
            report.model_name, report.evaluation.tokens, report.documents
        );
        let png = logitlens_server::exports::lens_quality_png(&report.evaluation, &title)?;
        std::fs::write(out, png)
            .with_context(|| format!("writing the plot to {}", out.display()))?;
        eprintln!("plot written to {}", out.display());
    }
    if args.json {
        return super::print_json(|w| serde_json::to_writer(w, &report));
    }
    print!("{}", table(&report));
    Ok(())
}

/// A row per lens row, KL, cross-entropy, entropy and top-1 agreement
/// across, for the logit lens, then the tuned and the Jacobian lens.
fn table(report: &EvalReport) -> String {
    let eval = &report.evaluation;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} positions over {} documents (nats)",
        eval.tokens, report.documents
    );
    let _ = writeln!(
        out,
        "{:<14} {:>8} {:>8} {:>8} {:>8}",
        "row", "KL", "CE", "H", "top-1"
    );
    let lenses = std::iter::once(("logit", &eval.logit))
        .chain(eval.tuned.as_ref().map(|t| ("tuned", t)))
        .chain(eval.jacobian.as_ref().map(|j| ("Jacobian", j)));
    for (name, m) in lenses {
        let _ = writeln!(out, "{name} lens");
        for (i, row) in eval.layers.iter().enumerate() {
            let _ = writeln!(
                out,
                "{row:<14} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
                m.kl[i], m.ce[i], m.entropy[i], m.top1_agree[i]
            );
        }
    }
    out
}
