//! `logitlens patch`: the activation-patching sweep POST /patch makes,
//! printed as a layer-by-position table or as its JSON body.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use logitlens_engine::api::{MetricQuery, PatchQuery, PatchResponse};
use logitlens_engine::ops::patch::PatchRequest;

use crate::model_args::{LensArgs, ModelArgs};
use crate::progress::Progress;
use crate::table::show;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: ModelArgs,
    /// The text whose activations are patched in.
    #[arg(long)]
    clean: String,
    /// The text run with them; it must tokenize to as many tokens as --clean.
    #[arg(long)]
    corrupted: String,
    /// resid_pre, resid_mid, attn_out, mlp_out or resid_post (or blocks.{l}.hook_resid_pre).
    #[arg(long, default_value = "resid_pre")]
    hook: String,
    /// The metric as JSON: {"type": "logit_diff", "correct": TOKEN, "wrong": TOKEN} or
    /// {"type": "prob", "token": TOKEN}; a TOKEN is an id or a string that is one token.
    #[arg(long)]
    metric: String,
    /// "all", or positions separated by commas (negative counts from the end).
    #[arg(long, default_value = "all", allow_hyphen_values = true)]
    positions: String,
    /// Wrap both texts in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Print exactly the JSON body POST /patch returns.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The sweep the flags ask for, as POST /patch would take it.
    fn request(&self) -> Result<PatchRequest> {
        let metric: MetricQuery = serde_json::from_str(&self.metric).context(
            "--metric must be JSON: {\"type\": \"logit_diff\", \"correct\": TOKEN, \"wrong\": \
             TOKEN} or {\"type\": \"prob\", \"token\": TOKEN}",
        )?;
        let positions = match self.positions.trim() {
            "all" => None,
            list => Some(serde_json::Value::from(
                list.split(',')
                    .map(|p| {
                        p.trim().parse::<i64>().with_context(|| {
                            format!(
                                "--positions: {p:?} is not a position; give \"all\" or e.g. 0,3,-1"
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            )),
        };
        let query = PatchQuery {
            clean_text: self.clean.clone(),
            corrupted_text: self.corrupted.clone(),
            hook: self.hook.clone(),
            metric,
            positions,
            apply_chat_template: self.chat,
        };
        Ok(PatchRequest::try_from(query)?)
    }
}

pub fn run(args: Args) -> Result<()> {
    let req = args.request()?;
    let model = args.on.load(&LensArgs::none())?;
    let progress = Progress::new();
    let patched = super::execute(&model, &req, &progress, &mut |never| match never {});
    progress.finish();
    let body = PatchResponse::new(&model, patched?)?;
    if args.json {
        return super::print_json(|w| serde_json::to_writer(w, &body));
    }
    print!("{}", table(&body));
    Ok(())
}

/// Layers down, patched positions across: the normalized metric (the share
/// of the clean-corrupted gap the patch restores), or the metric itself
/// when the two runs agree.
fn table(r: &PatchResponse) -> String {
    const CELL: usize = 9;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} patched at each layer and position: metric clean {:.4}, corrupted {:.4} ({:.2} s)",
        r.hook, r.clean, r.corrupted, r.seconds
    );
    let normalized = r.clean != r.corrupted;
    let _ = writeln!(
        out,
        "{}",
        if normalized {
            "values: (patched - corrupted) / (clean - corrupted); 1 = the clean run's metric restored"
        } else {
            "values: the patched metric (clean and corrupted agree, so nothing to normalize by)"
        }
    );
    let _ = writeln!(
        out,
        "columns: position:token (corrupted/clean where the texts differ)"
    );
    let _ = write!(out, "{:<8}", "layer");
    for &p in &r.positions {
        let (c, x) = (&r.tokens_clean[p], &r.tokens_corrupted[p]);
        let label = if c == x {
            format!("{p}:{}", show(c))
        } else {
            format!("{p}:{}/{}", show(x), show(c))
        };
        let label: String = label.chars().take(CELL).collect();
        let _ = write!(out, " {label:>CELL$}");
    }
    out.push('\n');
    for (l, row) in r.values.iter().enumerate() {
        let _ = write!(out, "{l:<8}");
        for (j, v) in row.iter().enumerate() {
            let shown = if normalized {
                r.normalized[l][j].unwrap_or(f64::NAN)
            } else {
                *v
            };
            let _ = write!(out, " {shown:>CELL$.3}");
        }
        out.push('\n');
    }
    out
}
