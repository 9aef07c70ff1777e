//! A long command's progress on stderr: one line rewritten in place as
//! the engine reports its stages ("patched runs 40/300", "documents
//! 12/40", "sampling the corpus: 96/384 tokens", a fit step's share) and a
//! fit's steps, so stdout holds only the command's output.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use logitlens_engine::ops::corpus::Corpus;
use logitlens_engine::ops::fit::FitStep;
use logitlens_engine::watch::{Stage, Watch};

/// Hears the engine's progress and writes it to stderr; [`finish`]
/// ends the line once the work is done.
///
/// [`finish`]: Progress::finish
#[derive(Default)]
pub struct Progress {
    line: Mutex<Line>,
    /// A sampled corpus's documents and their length, said once sampled.
    sampled: Option<(usize, usize)>,
    /// A fit's steps: `Stage::Fit` counts the pieces of all of them.
    steps: usize,
}

#[derive(Default)]
struct Line {
    /// Characters on the line now (0: no line open).
    width: usize,
    /// The last report, so a repeated one is not written again.
    last: Option<(Stage, usize)>,
    /// The stage reported last and when it began.
    stage: Option<(Stage, Instant)>,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Progress of work on `corpus`: a sampled one is said when it is
    /// written, with its size and how long it took.
    pub fn corpus(corpus: &Corpus, max_tokens: usize) -> Self {
        let sampled = match corpus {
            Corpus::Sample { documents, .. } => Some((*documents, max_tokens)),
            Corpus::Text(_) => None,
        };
        Progress {
            sampled,
            ..Self::default()
        }
    }

    /// And of a fit of `steps` steps.
    pub fn steps(self, steps: usize) -> Self {
        Progress { steps, ..self }
    }

    /// A fit's step done: "[#####.....] step 4/10  loss 1.2345  lr 0.050".
    pub fn fit_step(&self, s: &FitStep) {
        const WIDTH: usize = 30;
        let filled = s.step * WIDTH / s.steps.max(1);
        self.show(&format!(
            "[{}{}] step {}/{}  loss {:.4}  lr {:.3}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            s.step,
            s.steps,
            s.loss,
            s.lr
        ));
    }

    /// Ends the line, if one is open.
    pub fn finish(&self) {
        let mut line = self.line.lock().expect("progress lock");
        if line.width > 0 {
            eprintln!();
            line.width = 0;
        }
    }

    /// Writes `text` over the open line.
    fn show(&self, text: &str) {
        let mut line = self.line.lock().expect("progress lock");
        write_over(&mut line, text);
    }

    /// What a report says; `None` for those that would only flicker (each
    /// forward pass's layers) or are shown elsewhere (generated tokens go
    /// to stdout).
    fn text(&self, stage: Stage, done: usize, total: usize, began: Instant) -> Option<String> {
        match stage {
            Stage::Patch => Some(format!("patched runs {done}/{total}")),
            Stage::Documents => Some(format!("documents {done}/{total}")),
            Stage::Sample => Some(match self.sampled {
                Some((documents, tokens)) if done == total => format!(
                    "sampled {documents} documents of {tokens} tokens in {:.1} s",
                    began.elapsed().as_secs_f64()
                ),
                _ => format!("sampling the corpus: {done}/{total} tokens"),
            }),
            Stage::Fit => self.within_step(done, total),
            Stage::Forward | Stage::Lens | Stage::Generate => None,
        }
    }

    /// "  step 4: 50% of its rows and documents", from the pieces done of
    /// all steps; nothing once the step is whole (its line follows).
    fn within_step(&self, done: usize, total: usize) -> Option<String> {
        let per_step = total / self.steps.max(1);
        if per_step == 0 || done == 0 {
            return None;
        }
        let (step, piece) = ((done - 1) / per_step + 1, (done - 1) % per_step + 1);
        (piece < per_step).then(|| {
            format!(
                "  step {step}: {:>3}% of its rows and documents",
                piece * 100 / per_step
            )
        })
    }
}

/// Writes `text` over what `line` holds, padded to hide a longer one.
fn write_over(line: &mut Line, text: &str) {
    let width = text.chars().count();
    let pad = line.width.saturating_sub(width);
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{text}{}", " ".repeat(pad));
    let _ = err.flush();
    line.width = width;
}

impl Watch for Progress {
    fn progress(&self, stage: Stage, done: usize, total: usize) {
        let mut line = self.line.lock().expect("progress lock");
        if line.last == Some((stage, done)) {
            return;
        }
        line.last = Some((stage, done));
        let began = match line.stage {
            Some((s, t)) if s == stage => t,
            _ => {
                let now = Instant::now();
                line.stage = Some((stage, now));
                now
            }
        };
        let Some(text) = self.text(stage, done, total, began) else {
            return;
        };
        write_over(&mut line, &text);
        // A sampled corpus is said on a line of its own: what follows
        // (the documents measured, a fit's steps) has its own.
        if stage == Stage::Sample && done == total && self.sampled.is_some() {
            eprintln!();
            line.width = 0;
        }
    }
}
