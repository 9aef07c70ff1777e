//! The one path every heavy request takes (a run, a generation, a patching
//! sweep, a lens evaluation: any [`Operation`]): the model in service, its
//! texts against the token limit before anything is tokenized, the check
//! and the cost against the server's limits off the runtime (refused with
//! the numbers), a turn at the gate (a bounded queue; 503 with Retry-After
//! beyond it), then the run on the blocking pool with its progress on
//! /events under the request's name, cancelled when its client goes away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use tokio::sync::{broadcast, OwnedSemaphorePermit};

use logitlens_engine::ops::{Context, Operation};
use logitlens_engine::watch::{Stage, Watch};
use logitlens_engine::{EngineError, LoadedModel, RunState};

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Busy, ServerEvent};
use crate::status::{Backend, RunProgress, RunStage};
use crate::stream::blocking_body;

/// Request header naming a request, so its progress on /events can be told
/// apart from other clients' runs.
pub const REQUEST_HEADER: &str = "x-logitlens-request";

/// A request's work seen from the server: cancelled when its request is
/// dropped, its progress sent to /events.
pub struct RunWatch {
    cancelled: AtomicBool,
    events: broadcast::Sender<ServerEvent>,
    request: Option<String>,
}

impl RunWatch {
    fn new(st: &AppState, headers: &HeaderMap) -> Arc<Self> {
        Arc::new(RunWatch {
            cancelled: AtomicBool::new(false),
            events: st.events.clone(),
            request: headers
                .get(REQUEST_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(64).collect()),
        })
    }

    pub fn send(&self, stage: RunStage, done: usize, total: usize) {
        let _ = self.events.send(ServerEvent::Run(RunProgress {
            request: self.request.clone(),
            stage,
            done,
            total,
        }));
    }
}

impl Watch for RunWatch {
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn progress(&self, stage: Stage, done: usize, total: usize) {
        self.send(run_stage(stage), done, total);
    }
}

/// The engine's stages as /events names them.
fn run_stage(stage: Stage) -> RunStage {
    match stage {
        Stage::Forward => RunStage::Forward,
        Stage::Lens => RunStage::Lens,
        Stage::Patch => RunStage::Patching,
        Stage::Generate => RunStage::Generating,
        Stage::Sample => RunStage::Sampling,
        Stage::Documents => RunStage::Documents,
        Stage::Fit => RunStage::Fitting,
    }
}

/// Cancels the work when dropped: hyper drops a request's future when its
/// client goes away, and with it this guard (or, for a streamed answer, the
/// body that holds it).
pub struct CancelOnDrop(Arc<RunWatch>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
}

/// A heavy request admitted: checked, within the limits, its turn taken.
pub struct Heavy<O> {
    pub st: AppState,
    pub model: Arc<LoadedModel>,
    pub backend: Backend,
    pub op: O,
    pub watch: Arc<RunWatch>,
    cancel: CancelOnDrop,
    permit: OwnedSemaphorePermit,
}

/// Admit `req`: check it against the model in service and the server's
/// limits, then wait for a turn (telling /events while queued). A bad
/// request is a 400 before it waits; a full queue a 503 with Retry-After.
pub async fn admit<O>(st: &AppState, headers: &HeaderMap, req: O::Request) -> ApiResult<Heavy<O>>
where
    O: Operation + Send + 'static,
    O::Request: Send + 'static,
{
    let (model, backend) = st.serving()?;
    let limits = st.limits();
    limits.check_texts(&model, &O::texts(&req))?;
    let watch = RunWatch::new(st, headers);
    let cancel = CancelOnDrop(watch.clone());
    let waiting = body_bytes(headers);
    let m = model.clone();
    let op = tokio::task::spawn_blocking(move || -> Result<O, EngineError> {
        let mut op = O::check(&m, &req)?;
        logitlens_engine::ops::fit_batches(&mut op, &m, limits.max_bytes);
        limits.admit(&op.cost(&m))?;
        Ok(op)
    })
    .await
    .map_err(ApiError::internal)??;
    let ahead = st.gate.queued();
    if ahead > 0 || st.gate.running() {
        watch.send(RunStage::Queued, ahead, ahead + 1);
    }
    let permit = st.gate.enter(waiting).await.map_err(busy)?;
    Ok(Heavy {
        st: st.clone(),
        model,
        backend,
        op,
        watch,
        cancel,
        permit,
    })
}

/// What a waiting request holds: its body, as its Content-Length says.
fn body_bytes(headers: &HeaderMap) -> usize {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl<O> Heavy<O>
where
    O: Operation + Send + 'static,
    O::Output: Send + 'static,
{
    /// Run on the blocking pool and answer whole; the turn is held to the
    /// end of the run, even if the request is gone meanwhile. `emit` hears
    /// the operation's events.
    pub async fn run(
        self,
        mut emit: impl FnMut(O::Event) -> logitlens_engine::Result<()> + Send + 'static,
    ) -> ApiResult<Served<O::Output>> {
        let Heavy {
            st,
            model,
            backend,
            op,
            watch,
            cancel,
            permit,
        } = self;
        let started = Instant::now();
        let (st2, m2) = (st.clone(), model.clone());
        let output = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            in_context(&st2, &watch, |cx| op.run(&m2, cx, &mut emit))
        })
        .await
        .map_err(ApiError::internal)??;
        drop(cancel);
        st.gate.record(started.elapsed().as_secs_f64());
        Ok(Served {
            st,
            model,
            backend,
            value: output,
        })
    }

    /// Run inside a streamed body: `write` runs the operation and writes
    /// what it makes as it comes. The body holds the turn and the
    /// cancellation: when the client goes away the body is dropped, and the
    /// operation stops at its next check, whatever it is doing.
    pub fn stream(
        self,
        write: impl FnOnce(Served<O>, &Context, &mut dyn std::io::Write) -> Result<(), EngineError>
            + Send
            + 'static,
    ) -> Body {
        let Heavy {
            st,
            model,
            backend,
            op,
            watch,
            cancel,
            permit,
        } = self;
        blocking_body(cancel, move |w| {
            let _permit = permit;
            let job = Served {
                st: st.clone(),
                model,
                backend,
                value: op,
            };
            in_context(&st, &watch, |cx| write(job, cx, w))
        })
    }
}

/// `f` with the context an admitted request runs in: its watch, and the
/// kept runs it may take layers over from.
fn in_context<R>(st: &AppState, watch: &RunWatch, f: impl FnOnce(&Context) -> R) -> R {
    let earlier = st.earlier_runs();
    let earlier: Vec<&RunState> = earlier.iter().map(Arc::as_ref).collect();
    f(&Context {
        watch,
        earlier: &earlier,
    })
}

/// What an admitted request works with: the server, the model it was
/// checked against (the one it runs on, whatever is loaded meanwhile), and
/// `value`: the operation to run, or its output.
pub struct Served<T> {
    pub st: AppState,
    pub model: Arc<LoadedModel>,
    pub backend: Backend,
    pub value: T,
}

/// 503 with Retry-After: the queue of runs is full.
fn busy(b: Busy) -> ApiError {
    ApiError::busy(
        format!(
            "the server is busy: {} requests are waiting for their turn ({} MiB of their bodies); \
             try again in {} s",
            b.queued,
            b.waiting_bytes >> 20,
            b.retry_after_secs
        ),
        b.retry_after_secs,
    )
}
