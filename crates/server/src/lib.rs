//! logitlens-server: the original tool's REST API (same paths and JSON) on
//! axum, over logitlens-engine, plus the model lifecycle, /models, /events
//! and /openapi.json. Modules import downward: `routes` (a router per
//! resource), `guard` (Host and origin checks) -> `lifecycle` (the one
//! loading path, the status) -> `state` -> `status` (lifecycle wire types),
//! `sessions`, `exports`, `npz`, `catalog` -> `error`; `serve` accepts
//! connections.

pub mod admission;
pub mod catalog;
pub mod error;
pub mod exports;
pub mod guard;
pub mod lifecycle;
pub mod npz;
pub mod routes;
pub mod serve;
pub mod sessions;
pub mod state;
pub mod status;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use state::{AppState, ServerConfig};

/// The schema's description and the schemas no route names directly (the
/// routes' own are collected as they are registered: [`openapi`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "logitlens",
        description = "Logit lens, stream interventions and attention blocking over a candle forward pass. \
        Paths and JSON shapes are those of the original Logit Lens Llama Advanced server. \
        Every error is JSON {\"detail\": \"...\"}."
    ),
    components(schemas(
        logitlens_engine::api::GenerateEvent,
        logitlens_engine::api::Written,
        logitlens_engine::api::BaselineAnswer,
        logitlens_engine::api::PositionsQuery,
        logitlens_engine::InterventionConfig,
        logitlens_engine::LensType,
        logitlens_engine::capture::Receipt,
        logitlens_engine::attention::Format,
        logitlens_engine::attention::Reduce,
        status::RunProgress,
        status::RunStage,
        status::LoadStage,
        status::LoadingStatus,
    ))
)]
pub struct ApiDoc;

const NOT_BUILT: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>logitlens</title></head>\
<body style=\"font-family:system-ui;background:#0f172a;color:#f8fafc;padding:2rem\">\
<h1>logitlens</h1><p>The server is running, but the web app has not been built.</p>\
<p>Build it with <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code> and reload this page \
(the README's run command does this for you).</p>\
<p>The API is up: <a href=\"/model_status\" style=\"color:#3b82f6\">/model_status</a>, \
<a href=\"/openapi.json\" style=\"color:#3b82f6\">/openapi.json</a>.</p></body></html>";

/// The OpenAPI document of every route served (and of the schemas they
/// use): what `GET /openapi.json` answers and the web app's types are
/// generated from.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().1
}

/// The routes and, built from the same registrations, their document.
fn api_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::api())
        .split_for_parts()
}

/// The path served for the schema itself.
const OPENAPI_PATH: &str = "/openapi.json";

/// The first segment of a path (`inference` of `/inference/x`).
fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The first path segments of the API, from its routes: under them an
/// unknown path is a JSON 404, never the web app's page.
fn api_roots(doc: &utoipa::openapi::OpenApi) -> Vec<String> {
    let mut roots: Vec<String> = doc
        .paths
        .paths
        .keys()
        .map(|p| first_segment(p).to_owned())
        .chain(std::iter::once(first_segment(OPENAPI_PATH).to_owned()))
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// GET for anything else is the SPA (or the not-built page); other methods,
/// and unknown paths under the API's, 404.
async fn fallback(st: AppState, roots: Arc<Vec<String>>, req: Request) -> Response {
    let root = first_segment(req.uri().path());
    let under_api = roots.iter().any(|r| r == root);
    if (req.method() != Method::GET && req.method() != Method::HEAD) || under_api {
        return routes::not_found().await.into_response();
    }
    match &st.cfg.frontend_dir {
        Some(dir) if dir.join("index.html").is_file() => {
            let svc = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            match svc.oneshot(req).await {
                Ok(r) => r.map(Body::new),
                Err(e) => ApiError::internal(e).into_response(),
            }
        }
        _ => Html(NOT_BUILT).into_response(),
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"detail": "internal server error (see the server log)"})),
    )
        .into_response()
}

pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(|o, _| guard::local_origin(o)))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    let limit = state.cfg.max_body_bytes;
    let (router, doc) = api_router();
    let roots = Arc::new(api_roots(&doc));
    let doc = Arc::new(doc);
    router
        .route(
            OPENAPI_PATH,
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(move |State(st): State<AppState>, req: Request| fallback(st, roots.clone(), req))
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check_host,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Bind, start loading `model` in the background (the port answers at
/// once), and serve until Ctrl-C.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    model: Option<String>,
    backend: status::Backend,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("logitlens listening on http://{}", listener.local_addr()?);
    if !addr.ip().is_loopback() && state.cfg.allowed_hosts.is_empty() {
        tracing::warn!(
            "bound to {addr}, but only requests for localhost are served; name this machine's \
             host names or addresses with --allow-host to serve them"
        );
    }
    if let Some(name) = model {
        let st = state.clone();
        tokio::spawn(async move {
            match lifecycle::load(&st, name, backend, lifecycle::Then::Serve).await {
                Err(e) => tracing::error!("preloading the model failed: {}", e.detail),
                Ok(m) => {
                    // As /load_lens attaches them; a lens that cannot be
                    // attached is said on /model_status.
                    let lenses = [st.cfg.tuned_lens.clone(), st.cfg.jacobian_lens.clone()];
                    for path in lenses.into_iter().flatten() {
                        if let Err(e) = lifecycle::attach_lens(&st, m.clone(), path).await {
                            let msg = format!("the lens was not attached: {}", e.detail);
                            tracing::error!("{msg}");
                            *st.last_error.lock().expect("state lock") = Some(msg);
                            lifecycle::broadcast_status(&st);
                        }
                    }
                    if !st.cfg.saes.is_empty() {
                        let saes = st.cfg.saes.clone();
                        if let Err(e) = lifecycle::attach_saes(&st, m.clone(), saes).await {
                            let msg = format!("the SAEs were not attached: {}", e.detail);
                            tracing::error!("{msg}");
                            *st.last_error.lock().expect("state lock") = Some(msg);
                            lifecycle::broadcast_status(&st);
                        }
                    }
                }
            }
        });
    }
    let timeout = state.cfg.header_read_timeout;
    serve::serve_on(listener, app(state), timeout, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
