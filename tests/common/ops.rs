//! The engine's operations as the tests call them, on a loaded model: each
//! goes through the engine's one path (`ops::execute`, or the operation's
//! `run` with a watch and earlier runs), never around it.

use logitlens_engine::ops::generate::{GenerationOutput, GenerationRequest, GenerationStep};
use logitlens_engine::ops::patch::{PatchSpec, Patched};
use logitlens_engine::ops::{self, Context, Operation};
use logitlens_engine::watch::{Unwatched, Watch};
use logitlens_engine::{LoadedModel, Result, RunOutput, RunRequest, RunSpec, RunState};

pub trait Ops {
    /// Tokenize, check and run one request, cold.
    fn run(&self, req: &RunRequest) -> Result<RunOutput>;
    /// Run a checked request, taking over from `earlier` runs.
    fn run_spec(&self, spec: RunSpec, earlier: &[&RunState]) -> Result<RunOutput>;
    /// [`run_spec`](Ops::run_spec), watched.
    fn run_watched(
        &self,
        spec: RunSpec,
        earlier: &[&RunState],
        watch: &dyn Watch,
    ) -> Result<RunOutput>;
    /// A generation, each pass handed to `on_step`.
    fn generate_run(
        &self,
        req: &GenerationRequest,
        earlier: &[&RunState],
        watch: &dyn Watch,
        on_step: &mut dyn FnMut(&GenerationStep) -> Result<()>,
    ) -> Result<GenerationOutput>;
    /// A checked patching sweep, watched.
    fn patch(&self, spec: &PatchSpec, watch: &dyn Watch) -> Result<Patched>;
}

impl Ops for LoadedModel {
    fn run(&self, req: &RunRequest) -> Result<RunOutput> {
        ops::execute(self, req)
    }

    fn run_spec(&self, spec: RunSpec, earlier: &[&RunState]) -> Result<RunOutput> {
        self.run_watched(spec, earlier, &Unwatched)
    }

    fn run_watched(
        &self,
        spec: RunSpec,
        earlier: &[&RunState],
        watch: &dyn Watch,
    ) -> Result<RunOutput> {
        spec.run(self, &Context { watch, earlier }, &mut |e| match e {})
    }

    fn generate_run(
        &self,
        req: &GenerationRequest,
        earlier: &[&RunState],
        watch: &dyn Watch,
        on_step: &mut dyn FnMut(&GenerationStep) -> Result<()>,
    ) -> Result<GenerationOutput> {
        let spec = ops::generate::GenerationSpec::check(self, req)?;
        spec.run(self, &Context { watch, earlier }, &mut |s| on_step(&s))
    }

    fn patch(&self, spec: &PatchSpec, watch: &dyn Watch) -> Result<Patched> {
        spec.clone()
            .run(self, &Context::watched(watch), &mut |e| match e {})
    }
}
