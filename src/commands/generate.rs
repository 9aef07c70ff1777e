//! `logitlens generate`: the generation POST /generate makes, its tokens
//! printed as they are written, then the lens over prompt and continuation;
//! or its JSON body.

use std::io::Write as _;

use anyhow::Result;
use logitlens_engine::api::GenerateResponse;
use logitlens_engine::ops::generate::{GenerationOutput, GenerationRequest, GenerationStep};
use logitlens_engine::watch::Unwatched;
use logitlens_engine::RunRequest;

use logitlens_engine::ops::sae::{SaeSelection, DEFAULT_SAE_TOP_K};

use crate::model_args::{LensArgs, PromptArgs, SaeArgs};
use crate::table::lens_grid;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    on: PromptArgs,
    /// New tokens at most (1 to 256); fewer when the model writes its eos token.
    #[arg(long, default_value_t = 20)]
    max_new_tokens: usize,
    /// Interventions as JSON (the /inference `interventions` object), or @file; token_index
    /// counts over the whole sequence (negative: back from the prompt's end).
    #[arg(long)]
    interventions: Option<String>,
    /// Also write the continuation without the interventions, and say where they part.
    #[arg(long)]
    compare: bool,
    /// Wrap the text in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Keep writing after the eos token.
    #[arg(long)]
    no_stop: bool,
    /// Print exactly the JSON body POST /generate returns.
    #[arg(long)]
    json: bool,
    /// Draw the rows with a tuned or a Jacobian lens; a Jacobian lens also enables the
    /// jlens_* interventions.
    #[command(flatten)]
    lenses: LensArgs,
    /// Sparse autoencoders to attach: the sae_* interventions act through them at every
    /// step, and their features over prompt and written tokens are in the JSON body's `sae`.
    #[command(flatten)]
    saes: SaeArgs,
    /// Features listed per position and SAE (0: every active feature).
    #[arg(long, default_value_t = DEFAULT_SAE_TOP_K)]
    sae_top_k: usize,
}

impl Args {
    /// The generation the flags ask for, as POST /generate would take it.
    fn request(&self) -> Result<GenerationRequest> {
        Ok(GenerationRequest {
            run: RunRequest {
                interventions: crate::interventions::parse(self.interventions.as_deref())?,
                apply_chat_template: self.chat,
                compare: self.compare,
                lens: self.lenses.reading()?,
                sae: (!self.saes.saes.is_empty()).then_some(SaeSelection::All(true)),
                sae_top_k: (!self.saes.saes.is_empty()).then_some(self.sae_top_k),
                ..RunRequest::new(self.on.text.clone())
            },
            max_new_tokens: self.max_new_tokens,
            stop_at_eos: !self.no_stop,
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let req = args.request()?;
    let model = args.on.model.load(&args.lenses)?;
    args.saes.attach(&model)?;
    let mut stdout = std::io::stdout();
    let out = super::execute(&model, &req, &Unwatched, &mut |step: GenerationStep| {
        // The continuation as it is written; the JSON body comes whole.
        if let (false, Some((_, token))) = (args.json, &step.token) {
            let _ = write!(stdout, "{token}");
            let _ = stdout.flush();
        }
        Ok(())
    })?;
    if args.json {
        let (body, _) = GenerateResponse::new(out)?;
        return super::print_json(|w| serde_json::to_writer(w, &body));
    }
    write!(stdout.lock(), "{}", summary(&out))?;
    Ok(())
}

/// What follows the written text: how it stopped, what the model writes
/// without the interventions, and the lens over the whole sequence.
fn summary(out: &GenerationOutput) -> String {
    let mut s = String::from("\n");
    if out.stopped_at_eos {
        s.push_str("(stopped at the eos token)\n");
    }
    if let Some(b) = &out.baseline {
        s.push_str(&format!("without the interventions: {}\n", b.text));
        s.push_str(&match b.first_difference {
            Some(i) => format!("the interventions change what is written from token {i} on\n"),
            None => "the interventions do not change what is written\n".to_owned(),
        });
    }
    s.push_str(&format!(
        "\nthe lens over the {} prompt and {} written tokens:\n",
        out.prompt_tokens,
        out.generated_ids.len()
    ));
    s.push_str(&lens_grid(
        &out.run.answer.input_tokens,
        &out.run.answer.logit_lens,
    ));
    s
}
