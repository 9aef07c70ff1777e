//! How a heavy request (a run, a lens evaluation) is admitted and watched:
//! it waits its turn at the gate (503 with Retry-After when the queue is
//! full), its progress goes to /events under the request's name, and it is
//! cancelled when its client goes away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::{broadcast, OwnedSemaphorePermit};

use logitlens_engine::types::{Stage, Watch};

use crate::state::{AppState, Busy, ServerEvent};
use crate::status::{RunProgress, RunStage};

/// Request header naming a request, so its progress on /events can be told
/// apart from other clients' runs.
pub const REQUEST_HEADER: &str = "x-logitlens-request";

/// A request's work seen from the server: cancelled when its request is
/// dropped, its progress sent to /events as `stages` names it.
pub struct RunWatch {
    cancelled: AtomicBool,
    events: broadcast::Sender<ServerEvent>,
    request: Option<String>,
    /// Which engine progress is reported, and as what (None: not reported).
    stages: fn(Stage) -> Option<RunStage>,
}

impl RunWatch {
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
        if let Some(stage) = (self.stages)(stage) {
            self.send(stage, done, total);
        }
    }
}

/// A request's watch reporting another part of its work as other stages
/// (a lens evaluation samples its corpus, then measures it).
pub struct Staged<'a>(pub &'a RunWatch, pub fn(Stage) -> Option<RunStage>);

impl Watch for Staged<'_> {
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }

    fn progress(&self, stage: Stage, done: usize, total: usize) {
        if let Some(stage) = (self.1)(stage) {
            self.0.send(stage, done, total);
        }
    }
}

/// A run's own stages: layers of the forward pass, then states projected.
pub fn run_stages(stage: Stage) -> Option<RunStage> {
    Some(match stage {
        Stage::Forward => RunStage::Forward,
        Stage::Lens => RunStage::Lens,
        Stage::Patch => RunStage::Patching,
        Stage::Generate => RunStage::Generating,
    })
}

/// Cancels the work when dropped: hyper drops a request's future when its
/// client goes away, and with it this guard.
pub struct CancelOnDrop(Arc<RunWatch>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }
}

/// An admitted request: its watch, the guard cancelling it with the
/// request, and its turn at the gate (hold the permit until the work ends).
pub struct Admitted {
    pub watch: Arc<RunWatch>,
    pub cancel: CancelOnDrop,
    pub permit: OwnedSemaphorePermit,
}

/// Wait for a turn at the gate, telling /events while queued; a full queue
/// is answered at once with 503 and Retry-After.
pub async fn admit(
    st: &AppState,
    headers: &HeaderMap,
    stages: fn(Stage) -> Option<RunStage>,
) -> Result<Admitted, Response> {
    let watch = Arc::new(RunWatch {
        cancelled: AtomicBool::new(false),
        events: st.events.clone(),
        request: headers
            .get(REQUEST_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(64).collect()),
        stages,
    });
    let cancel = CancelOnDrop(watch.clone());
    if st.gate.queued() > 0 || st.gate.running() {
        watch.send(RunStage::Queued, st.gate.queued(), st.gate.queued() + 1);
    }
    match st.gate.enter().await {
        Ok(permit) => Ok(Admitted {
            watch,
            cancel,
            permit,
        }),
        Err(busy) => Err(busy_response(&busy)),
    }
}

/// 503 with Retry-After: the queue of runs is full.
fn busy_response(busy: &Busy) -> Response {
    let detail = format!(
        "the server is busy: {} runs are waiting for their turn; try again in {} s",
        busy.queued, busy.retry_after_secs
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, busy.retry_after_secs.to_string())],
        Json(json!({ "detail": detail })),
    )
        .into_response()
}
