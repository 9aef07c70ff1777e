//! One module per command, each with its flags (`Args`) and its output;
//! the heavy ones run the engine's operations as the server does, without
//! its limits (this is one's own machine).

pub mod eval_lens;
pub mod eval_sae;
pub mod fetch_model;
pub mod fit_jlens;
pub mod generate;
pub mod lens;
pub mod merge_jlens;
pub mod openapi;
pub mod patch;
pub mod sae_features;
pub mod serve;
pub mod train_lens;

use std::io::Write as _;

use anyhow::Result;
use logitlens_engine::ops::{self, Context, Limits, Operation, Request};
use logitlens_engine::watch::Watch;
use logitlens_engine::LoadedModel;

/// The output of the operation a request of type `R` is checked into.
type Output<R> = <<R as Request>::Op as Operation>::Output;
/// And what it hands over while it runs.
type Event<R> = <<R as Request>::Op as Operation>::Event;

/// Check, cost and run `req` on `model` as the server would, unlimited,
/// `watch` hearing its progress and `emit` its events.
fn execute<R: Request>(
    model: &LoadedModel,
    req: &R,
    watch: &dyn Watch,
    emit: &mut dyn FnMut(Event<R>) -> logitlens_engine::Result<()>,
) -> Result<Output<R>> {
    Ok(ops::execute_with(
        model,
        req,
        &Limits::none(),
        &Context::watched(watch),
        emit,
    )?)
}

/// A body on stdout as the server writes it (compact JSON, which `write`
/// writes with `serde_json::to_writer`), and a newline.
fn print_json(write: impl FnOnce(&mut dyn std::io::Write) -> serde_json::Result<()>) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&mut out)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
