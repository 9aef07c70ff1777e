//! `logitlens`: look inside an LLM from the command line, or serve the web
//! app. This file parses the command line and hands each command to its
//! module under `commands/`.

mod commands;
mod interventions;
mod model_args;
mod progress;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{
    eval_lens, eval_sae, fetch_model, fit_jlens, generate, lens, merge_jlens, openapi, patch,
    sae_features, serve, train_lens,
};

#[derive(Parser)]
#[command(
    name = "logitlens",
    version,
    about = "Logit lens, stream interventions and attention blocking for Llama/Qwen3 models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app and the REST API (the original tool's endpoints).
    Serve(serve::Args),
    /// Fetch the default model (SmolLM2-135M-Instruct Q4_1 GGUF) if missing and print its path.
    FetchModel(fetch_model::Args),
    /// Train a tuned lens for a model on a corpus (CPU; SGD with Nesterov momentum) and write
    /// it as config.json + params.safetensors.
    TrainLens(train_lens::Args),
    /// Fit a Jacobian lens on a corpus (the average Jacobian of the last block's output with
    /// respect to each block's; CPU) and write it as .safetensors or .pt.
    FitJlens(fit_jlens::Args),
    /// Combine Jacobian lenses fitted on disjoint prompts (the shards of one fit).
    MergeJlens(merge_jlens::Args),
    /// Measure the logit lens (and a tuned lens) over a corpus: per row, KL to the model's
    /// output, next-token cross-entropy, entropy and top-1 agreement, in nats.
    EvalLens(eval_lens::Args),
    /// Activation patching: run the corrupted text with one activation (the hook, at each layer
    /// and position) taken from the clean text's run, and print the metric at the last position.
    Patch(patch::Args),
    /// Write a continuation greedily, the interventions acting at every step, and print it
    /// as it is written, then the lens over prompt and written tokens.
    Generate(generate::Args),
    /// Print the REST API's OpenAPI schema (what GET /openapi.json serves).
    Openapi(openapi::Args),
    /// Run the logit lens on a text and print the prediction grid.
    Lens(lens::Args),
    /// What a sparse autoencoder's features say: each one's top and bottom tokens by its
    /// decoder row read through the unembedding.
    SaeFeatures(sae_features::Args),
    /// Measure sparse autoencoders over a corpus: next-token cross-entropy with each spliced in
    /// against the clean model's (ΔCE) and the hook zeroed, KL to the clean output, explained
    /// variance, MSE, mean L0 and dead features.
    EvalSae(eval_sae::Args),
}

fn main() -> ExitCode {
    logitlens_engine::nn::pin_thread_count();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::FetchModel(args) => fetch_model::run(args),
        Command::TrainLens(args) => train_lens::run(args),
        Command::EvalLens(args) => eval_lens::run(args),
        Command::FitJlens(args) => fit_jlens::run(args),
        Command::MergeJlens(args) => merge_jlens::run(args),
        Command::Patch(args) => patch::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Openapi(args) => openapi::run(args),
        Command::Lens(args) => lens::run(args),
        Command::SaeFeatures(args) => sae_features::run(args),
        Command::EvalSae(args) => eval_sae::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
