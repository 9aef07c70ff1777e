//! `logitlens lens`: the lens run POST /inference makes, printed as a
//! grid (and an attributed logit's shares), or as its JSON body.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context as _, Result};
use logitlens_engine::api::{AttributionQuery, InferenceBatchResponse, InferenceResponse};
use logitlens_engine::model::Attribution;
use logitlens_engine::ops::run::batch::BatchRequest;
use logitlens_engine::ops::sae::{SaeReadout, SaeSelection, DEFAULT_SAE_TOP_K};
use logitlens_engine::ops::{Answer, AttributionRequest};
use logitlens_engine::watch::Unwatched;
use logitlens_engine::{LensType, RunRequest};

use crate::model_args::{LensArgs, ModelArgs, SaeArgs};
use crate::table::{lens_grid, show};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to run; several --text run as one batch (POST
    /// /inference_batch), a grid each (--json: that request's body).
    #[arg(long, required = true)]
    text: Vec<String>,
    /// block_output, post_attention or combined.
    #[arg(long, default_value = "block_output")]
    lens_type: LensType,
    /// Interventions as JSON (the /inference `interventions` object), or @file.
    #[arg(long)]
    interventions: Option<String>,
    /// Wrap the text in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Include attention patterns (in --json output).
    #[arg(long)]
    attention: bool,
    /// Print exactly the JSON body POST /inference returns.
    #[arg(long)]
    json: bool,
    /// Direct logit attribution of one logit, as JSON: {"token": TOKEN, "position": -1}
    /// (a TOKEN is an id or a string that is one token; position defaults to the last).
    #[arg(long)]
    attribution: Option<String>,
    /// Draw the rows with a tuned or a Jacobian lens instead of the logit lens
    /// (block_output only); a Jacobian lens also enables the jlens_* interventions.
    #[command(flatten)]
    lenses: LensArgs,
    /// Sparse autoencoders to attach: their features at every position are read (in the
    /// JSON body's `sae`, or a table per SAE), and the sae_* interventions use them.
    #[command(flatten)]
    saes: SaeArgs,
    /// Features listed per position and SAE, by activation (0: every active feature).
    #[arg(long, default_value_t = DEFAULT_SAE_TOP_K)]
    sae_top_k: usize,
}

impl Args {
    /// The run the flags ask for on `text`, as POST /inference would take it.
    fn request(&self, text: &str) -> Result<RunRequest> {
        Ok(RunRequest {
            interventions: crate::interventions::parse(self.interventions.as_deref())?,
            lens_type: self.lens_type,
            apply_chat_template: self.chat,
            return_attention: self.attention,
            lens: self.lenses.reading()?,
            attribution: self
                .attribution
                .as_deref()
                .map(parse_attribution)
                .transpose()?,
            sae: (!self.saes.saes.is_empty()).then_some(SaeSelection::All(true)),
            sae_top_k: (!self.saes.saes.is_empty()).then_some(self.sae_top_k),
            ..RunRequest::new(text)
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.text.len() > 1 {
        return run_batch(args);
    }
    let req = args.request(&args.text[0])?;
    let model = args.model.load(&args.lenses)?;
    args.saes.attach(&model)?;
    let out = super::execute(&model, &req, &Unwatched, &mut |never| match never {})?;
    if args.json {
        // Written as it goes: a long prompt's attention is never held whole.
        let body = InferenceResponse::new(out.answer, &out.state.capture.patterns)?;
        return super::print_json(|w| serde_json::to_writer(w, &body));
    }
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", answer_tables(&out.answer))?;
    stdout.flush()?;
    Ok(())
}

/// Several texts as one request, what POST /inference_batch answers.
fn run_batch(args: Args) -> Result<()> {
    let runs = args
        .text
        .iter()
        .map(|t| args.request(t))
        .collect::<Result<Vec<_>>>()?;
    let model = args.model.load(&args.lenses)?;
    args.saes.attach(&model)?;
    let out = super::execute(
        &model,
        &BatchRequest { runs },
        &Unwatched,
        &mut |never| match never {},
    )?;
    if args.json {
        let body = InferenceBatchResponse::new(out)?;
        return super::print_json(|w| serde_json::to_writer(w, &body));
    }
    let mut stdout = std::io::stdout().lock();
    for (i, run) in out.runs.iter().enumerate() {
        if i > 0 {
            writeln!(stdout)?;
        }
        writeln!(stdout, "== prompt {i}: {}", show(&run.answer.text))?;
        write!(stdout, "{}", answer_tables(&run.answer))?;
    }
    stdout.flush()?;
    Ok(())
}

/// A run's grid, its attributed logit's shares and its SAE features.
fn answer_tables(a: &Answer) -> String {
    let mut out = lens_grid(&a.input_tokens, &a.logit_lens);
    if let Some(attribution) = &a.attribution {
        let _ = write!(out, "\n{}", attribution_table(attribution));
    }
    for readout in a.sae.iter().flatten() {
        let _ = write!(out, "\n{}", sae_table(&a.input_tokens, readout));
    }
    out
}

/// `--attribution '{"token": " Paris", "position": -1}'`.
fn parse_attribution(arg: &str) -> Result<AttributionRequest> {
    let q: AttributionQuery = serde_json::from_str(arg).context(
        "--attribution must be a JSON object {\"token\": TOKEN, \"position\": -1}, \
         a TOKEN being an id or a string that is one token",
    )?;
    Ok(AttributionRequest {
        token: q.token,
        position: q.position,
    })
}

/// The shares of an attributed logit, a layer a line, and their sum.
fn attribution_table(a: &Attribution) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "logit of {} (id {}) at position {}: {:.4}",
        show(&a.token),
        a.token_id,
        a.position,
        a.logit
    );
    let _ = writeln!(out, "{:<8} {:>10} {:>10}  heads", "layer", "attn", "mlp");
    let _ = writeln!(out, "{:<8} {:>10.4}", "embed", a.embed);
    for (l, heads) in a.heads.iter().enumerate() {
        let heads: Vec<String> = heads.iter().map(|h| format!("{h:.3}")).collect();
        let _ = writeln!(
            out,
            "{l:<8} {:>10.4} {:>10.4}  {}",
            a.attn[l],
            a.mlp[l],
            heads.join(" ")
        );
    }
    for (name, v) in &a.rest_parts {
        let _ = writeln!(out, "rest: {name} {v:.4}");
    }
    let sum = a.embed + a.attn.iter().sum::<f64>() + a.mlp.iter().sum::<f64>() + a.rest;
    let _ = writeln!(
        out,
        "embed + attn + mlp + rest = {sum:.4} (the logit: {:.4})",
        a.logit
    );
    out
}

/// One SAE's features: a line per position with its token, its strongest
/// features (`#id act`), its L0 and its reconstruction error.
fn sae_table(tokens: &[String], r: &SaeReadout) -> String {
    let mut out = format!(
        "SAE {} ({}, {}, {} features)\n",
        r.name, r.hook, r.architecture, r.d_sae
    );
    for (t, (token, p)) in tokens.iter().zip(&r.positions).enumerate() {
        let features: Vec<String> = p
            .features
            .iter()
            .take(5)
            .map(|f| format!("#{} {:.3}", f.id, f.act))
            .collect();
        let _ = writeln!(
            out,
            "{t:>4} {:<12} L0 {:>5}  error {:>9.4}  {}",
            format!("{token:?}"),
            p.l0,
            p.recon_error,
            features.join("  ")
        );
    }
    out
}
