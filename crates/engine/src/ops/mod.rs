//! The heavy operations, each one type with the same three steps:
//! **check** (a request, before it meets a model, checked once against a
//! model into a typed spec: every refusal says why), **cost** (what the
//! spec will take: peak memory by part, the longest sequence, counts of
//! work, so it can be admitted or refused with the numbers before it runs)
//! and **run** (the spec, watched for progress and cancellation, to its
//! answer). The server, the command line and scripts all go through
//! [`Operation`]; [`execute`] is the three steps in a row.
//!
//! Operations: a lens run ([`RunSpec`]), a generation with the lens
//! ([`generate::GenerationSpec`]), an activation-patching sweep
//! ([`patch::PatchSpec`]), a lens evaluation over a corpus
//! ([`eval::EvalSpec`]), a tuned-lens fit ([`fit::FitSpec`]) and a
//! Jacobian-lens fit ([`fit_jlens::JlensFitSpec`]), an SAE evaluation
//! ([`eval_sae::EvalSaeSpec`]) and a feature's corpus scan
//! ([`sae_corpus::SaeCorpusSpec`]).
//! `decode.rs` writes through the KV cache for them, `corpus.rs` reads and
//! samples corpora.

pub mod corpus;
pub mod decode;
pub mod eval;
pub mod eval_sae;
pub mod fit;
pub mod fit_jlens;
pub mod generate;
pub mod jlens_files;
pub mod patch;
pub mod run;
pub mod sae;
pub mod sae_corpus;

pub use run::{
    mib, token_id, Answer, AttributionRequest, RunOutput, RunRequest, RunSpec, RunState, Timings,
    MAX_TRACKED,
};

use crate::error::{EngineError, Result};
use crate::load::LoadedModel;
use crate::watch::{Unwatched, Watch};

/// Most bytes one batch of runs holds (their states and one layer's work
/// each), in every operation that batches: more runs go through in several
/// batches, each of at least one run.
pub const MAX_BATCH_BYTES: u64 = 256 << 20;

/// One kind of heavy work: a request checked into `Self`, costed, run.
pub trait Operation: Sized {
    /// What is asked, before it meets a model.
    type Request;
    /// What it answers.
    type Output;
    /// What it hands over while it runs (a generation's passes, a fit's
    /// steps); [`Never`] for operations that hand over nothing.
    type Event;

    /// The request's texts, named for messages: each is refused before it
    /// is tokenized when its bytes cannot fit the token limit.
    fn texts(req: &Self::Request) -> Vec<(&'static str, &str)>;

    /// Check `req` against `model`: tokenize, resolve names and positions,
    /// refuse what cannot apply, saying what to change.
    fn check(model: &LoadedModel, req: &Self::Request) -> Result<Self>;

    /// What running it will take.
    fn cost(&self, model: &LoadedModel) -> Cost;

    /// For an operation that runs several sequences through the model at
    /// once: the most it batches (`None`: as many as its own bound allows),
    /// so a memory budget can make its batches smaller
    /// ([`fit_batches`]). Its cost must grow with it.
    fn max_batch(&mut self) -> Option<&mut Option<usize>> {
        None
    }

    /// Run it: progress and cancellation through `cx.watch`, events to
    /// `emit` as they happen (an error from `emit` stops the run).
    fn run(
        self,
        model: &LoadedModel,
        cx: &Context,
        emit: &mut dyn FnMut(Self::Event) -> Result<()>,
    ) -> Result<Self::Output>;
}

/// The event type of operations that hand nothing over.
pub enum Never {}

/// What a run of an operation may use besides its spec.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Hears progress, and says when nobody waits for the answer any more.
    pub watch: &'a dyn Watch,
    /// Recent runs a lens run may take layers over from (the engine uses
    /// only those of the same model and input).
    pub earlier: &'a [&'a RunState],
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            watch: &Unwatched,
            earlier: &[],
        }
    }
}

impl<'a> Context<'a> {
    pub fn watched(watch: &'a dyn Watch) -> Self {
        Context {
            watch,
            earlier: &[],
        }
    }
}

/// The three steps in a row, unwatched and unlimited, events dropped: what
/// a test or a script calls. The operation follows from the request's type.
pub fn execute<R: Request>(model: &LoadedModel, req: &R) -> Result<<R::Op as Operation>::Output> {
    execute_with(
        model,
        req,
        &Limits::none(),
        &Context::default(),
        &mut |_| Ok(()),
    )
}

/// The three steps in a row: texts against the token limit, check, cost
/// against the limits, run.
pub fn execute_with<R: Request>(
    model: &LoadedModel,
    req: &R,
    limits: &Limits,
    cx: &Context,
    emit: &mut dyn FnMut(<R::Op as Operation>::Event) -> Result<()>,
) -> Result<<R::Op as Operation>::Output> {
    limits.check_texts(model, &R::Op::texts(req))?;
    let mut op = R::Op::check(model, req)?;
    fit_batches(&mut op, model, limits.max_bytes);
    limits.admit(&op.cost(model))?;
    op.run(model, cx, emit)
}

/// Make `op`'s batches as large as `budget` allows, when its cost with
/// them unbounded would not fit: a budget splits a batch instead of
/// refusing the request. A batch of one that does not fit is left for
/// [`Limits::admit`] to refuse with the numbers.
pub fn fit_batches<O: Operation>(op: &mut O, model: &LoadedModel, budget: Option<u64>) {
    let Some(budget) = budget else { return };
    if op.cost(model).bytes() <= budget {
        return;
    }
    let fits = |op: &mut O, k: usize| -> bool {
        match op.max_batch() {
            Some(knob) => *knob = Some(k),
            None => return false,
        }
        op.cost(model).bytes() <= budget
    };
    // The largest batch that fits, by bisection (the cost grows with it).
    let (mut lo, mut hi) = (1usize, 1usize << 20);
    if !fits(op, lo) {
        return;
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(op, mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    fits(op, lo);
}

/// A request, and the operation it is checked into.
pub trait Request {
    type Op: Operation<Request = Self>;
}

/// Work an operation makes many of; a server bounds each per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Documents of a corpus read (evaluated, or fitted on).
    Documents,
    /// Tokens a corpus sampled from the model writes.
    SampledTokens,
    /// Patched runs of a sweep.
    PatchedRuns,
    /// Prompts of a batch of runs.
    Prompts,
}

impl Count {
    fn what(self) -> &'static str {
        match self {
            Count::Documents => "documents",
            Count::SampledTokens => "sampled tokens",
            Count::PatchedRuns => "patched runs",
            Count::Prompts => "prompts",
        }
    }
}

/// What an operation will take, estimated from its spec before it runs
/// (erring high): its peak memory by part (the model's weights not
/// counted), the longest sequence it runs, the counts of its work, and what
/// would make it smaller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    /// Peak memory by part: (what, bytes).
    pub memory: Vec<(&'static str, u64)>,
    /// The longest sequence it runs through the model, in tokens...
    pub tokens: usize,
    /// ...said as a refusal would say it ("the prompt is 30 tokens long").
    pub tokens_said: String,
    pub counts: Vec<(Count, usize)>,
    /// How to make it smaller, most effective first.
    pub fixes: Vec<String>,
}

impl Cost {
    pub fn bytes(&self) -> u64 {
        self.memory.iter().map(|(_, b)| b).sum()
    }

    /// The bytes of one part (0 when it has none).
    pub fn part(&self, what: &str) -> u64 {
        self.memory
            .iter()
            .find(|(w, _)| *w == what)
            .map_or(0, |(_, b)| *b)
    }

    /// "captured states 4200 MiB, one layer's work 700 MiB, ..." for messages.
    pub fn describe(&self) -> String {
        self.memory
            .iter()
            .map(|(what, b)| format!("{what} {}", mib(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn count(&self, c: Count) -> usize {
        self.counts
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, n)| *n)
    }
}

/// What one request may take: set by a server (its flags say how to change
/// them), none for a command on one's own machine. Every refusal of a
/// request over a limit is written here.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The longest sequence, in tokens.
    pub max_tokens: Option<usize>,
    /// Peak memory of one request.
    pub max_bytes: Option<u64>,
    pub max_documents: Option<usize>,
    pub max_sampled_tokens: Option<usize>,
    pub max_patched_runs: Option<usize>,
    pub max_prompts: Option<usize>,
    /// How the one who set them changes the token and memory limits (a
    /// command-line flag), said after each refusal.
    pub tokens_flag: &'static str,
    pub bytes_flag: &'static str,
    /// The memory budget as a refusal says it, `{}` standing for the
    /// amount ("this server allows {} per request").
    pub budget_of: &'static str,
}

impl Limits {
    /// Most documents one request reads, patched runs one sweep makes, and
    /// tokens one sampled corpus holds, where a server bounds them.
    pub const DOCUMENTS: usize = 4096;
    pub const SAMPLED_TOKENS: usize = 1 << 16;
    pub const PATCHED_RUNS: usize = 16_384;
    pub const PROMPTS: usize = 256;

    /// No limits.
    pub fn none() -> Self {
        Limits {
            max_tokens: None,
            max_bytes: None,
            max_documents: None,
            max_sampled_tokens: None,
            max_patched_runs: None,
            max_prompts: None,
            tokens_flag: "",
            bytes_flag: "",
            budget_of: "the budget is {}",
        }
    }

    /// One's own process (the Python module): nothing counted, a request's
    /// memory bounded by what the machine has free (`available` bytes), so
    /// that a request too big is refused with its numbers rather than the
    /// process killed for want of memory.
    pub fn machine(available: u64) -> Self {
        Limits {
            max_bytes: Some(available),
            bytes_flag: "free memory or ask for less",
            budget_of: "this machine has {} free",
            ..Self::none()
        }
    }

    /// A server's: its token limit and memory budget, the counts bounded
    /// by the constants above.
    pub fn server(max_tokens: usize, max_bytes: u64) -> Self {
        Limits {
            max_tokens: Some(max_tokens),
            max_bytes: Some(max_bytes),
            max_documents: Some(Self::DOCUMENTS),
            max_sampled_tokens: Some(Self::SAMPLED_TOKENS),
            max_patched_runs: Some(Self::PATCHED_RUNS),
            max_prompts: Some(Self::PROMPTS),
            tokens_flag: "logitlens serve --max-tokens",
            bytes_flag: "logitlens serve --max-request-mib",
            budget_of: "this server allows {} per request",
        }
    }

    fn max_count(&self, c: Count) -> Option<usize> {
        match c {
            Count::Documents => self.max_documents,
            Count::SampledTokens => self.max_sampled_tokens,
            Count::PatchedRuns => self.max_patched_runs,
            Count::Prompts => self.max_prompts,
        }
    }

    /// Refuse a text that cannot fit the token limit before tokenizing it:
    /// in microseconds, not after encoding megabytes.
    pub fn check_texts(&self, model: &LoadedModel, texts: &[(&str, &str)]) -> Result<()> {
        let Some(max) = self.max_tokens else {
            return Ok(());
        };
        let max_bytes = model.tokenizer.max_text_bytes(max);
        match texts.iter().find(|(_, text)| text.len() > max_bytes) {
            None => Ok(()),
            Some((what, text)) => Err(EngineError::OverLimit(format!(
                "{what} is {} bytes; at most {max_bytes} bytes can fit this server's limit of \
                 {max} tokens ({})",
                text.len(),
                self.tokens_flag
            ))),
        }
    }

    /// Admit `cost`, or refuse it with the numbers and what to change.
    pub fn admit(&self, cost: &Cost) -> Result<()> {
        if let Some(max) = self.max_tokens.filter(|&m| cost.tokens > m) {
            return Err(EngineError::OverLimit(format!(
                "{}; this server's limit is {max} tokens ({})",
                cost.tokens_said, self.tokens_flag
            )));
        }
        for &(c, n) in &cost.counts {
            if let Some(max) = self.max_count(c).filter(|&m| n > m) {
                return Err(EngineError::OverLimit(format!(
                    "this request has {n} {}; this server takes at most {max} per request",
                    c.what()
                )));
            }
        }
        let need = cost.bytes();
        match self.max_bytes {
            Some(budget) if need > budget => {
                let fixes = if cost.fixes.is_empty() {
                    String::new()
                } else {
                    format!(" To fit: {}", cost.fixes.join("; or "))
                };
                Err(EngineError::OverLimit(format!(
                    "this request would need about {} ({}); {} ({}).{fixes}",
                    mib(need),
                    cost.describe(),
                    self.budget_of.replace("{}", &mib(budget)),
                    self.bytes_flag
                )))
            }
            _ => Ok(()),
        }
    }
}
