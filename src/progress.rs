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
    /// A fit's steps: `Stage::Fit` counts the pieces of all of them (0: a
    /// fit without steps, a Jacobian lens's, shown as a bar).
    steps: usize,
    /// Ctrl-C stops the work (between its pieces) instead of the process.
    stoppable: bool,
}

/// Set by Ctrl-C once a stoppable command has asked for it.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Default)]
struct Line {
    /// Characters on the line now (0: no line open).
    width: usize,
    /// The last report, so a repeated one is not written again.
    last: Option<(Stage, usize)>,
    /// The stage reported last and when it began.
    stage: Option<(Stage, Instant)>,
    /// What was written last and when: a line is rewritten at most ten
    /// times a second, and not when it would read the same (a log file
    /// or a pipe gets every write).
    shown: Option<(String, Instant)>,
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

    /// Ctrl-C stops the work at its next check (the command then says what
    /// is left of it) rather than killing the process; a second Ctrl-C
    /// kills it.
    pub fn stoppable(self) -> Self {
        let installed = ctrlc::set_handler(|| {
            if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping at the next check (Ctrl-C again to quit now)");
        });
        Progress {
            stoppable: installed.is_ok(),
            ..self
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
            Stage::Fit if self.steps == 0 => Some(bar("fitting", done, total, began)),
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

/// "fitting [#####.....] 47%  3 min left", the time left from the pace so far.
fn bar(what: &str, done: usize, total: usize, began: Instant) -> String {
    const WIDTH: usize = 30;
    let filled = done * WIDTH / total.max(1);
    let elapsed = began.elapsed().as_secs_f64();
    let left = if done > 0 && done < total {
        let secs = elapsed * (total - done) as f64 / done as f64;
        if secs >= 90.0 {
            format!("  {:.0} min left", secs / 60.0)
        } else {
            format!("  {secs:.0} s left")
        }
    } else {
        String::new()
    };
    format!(
        "{what} [{}{}] {:>3}%{left}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        done * 100 / total.max(1)
    )
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
    fn cancelled(&self) -> bool {
        self.stoppable && STOP.load(std::sync::atomic::Ordering::SeqCst)
    }

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
        let now = Instant::now();
        let soon = std::time::Duration::from_millis(100);
        if let Some((shown, at)) = &line.shown {
            if *shown == text || (done < total && now.duration_since(*at) < soon) {
                return;
            }
        }
        write_over(&mut line, &text);
        line.shown = Some((text, now));
        // A sampled corpus is said on a line of its own: what follows
        // (the documents measured, a fit's steps) has its own.
        if stage == Stage::Sample && done == total && self.sampled.is_some() {
            eprintln!();
            line.width = 0;
        }
    }
}
