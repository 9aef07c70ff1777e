//! How a long computation reports progress and learns that nobody waits
//! for it any more.

/// What a long computation is doing, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The forward pass: `done` of `total` layers.
    Forward,
    /// The lens: `done` of `total` states projected.
    Lens,
    /// An activation-patching sweep: `done` of `total` patched runs.
    Patch,
    /// Generation: `done` of at most `total` tokens written.
    Generate,
    /// A corpus sampled from the model: `done` of `total` tokens written.
    Sample,
    /// A corpus measured: `done` of `total` documents.
    Documents,
    /// A lens fitted: `done` of `total` pieces of work (a tuned lens: the
    /// (document, row) pieces of its steps; a Jacobian lens: each prompt's
    /// forward pass and its backward passes).
    Fit,
}

/// How a run reports progress and learns that nobody waits for it any more.
/// Checked between layers and between lens chunks, so a cancelled run stops
/// within one of those.
pub trait Watch: Sync {
    fn cancelled(&self) -> bool {
        false
    }
    fn progress(&self, _stage: Stage, _done: usize, _total: usize) {}
}

/// A run nobody watches: never cancelled, progress unreported.
pub struct Unwatched;

impl Watch for Unwatched {}

/// Fails with [`crate::EngineError::Cancelled`] once `watch` says so.
pub(crate) fn check(watch: &dyn Watch) -> crate::Result<()> {
    if watch.cancelled() {
        Err(crate::EngineError::Cancelled)
    } else {
        Ok(())
    }
}

/// Another watch's cancellation without its progress: for the forward
/// passes inside an operation that reports its own steps (a sweep's
/// patched runs, a generation's tokens, a corpus's documents).
pub(crate) struct Quiet<'a>(pub &'a dyn Watch);

impl Watch for Quiet<'_> {
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}
