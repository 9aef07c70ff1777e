//! A server in the test process: its state in a temporary data folder,
//! requests through the router (tower's `oneshot`), or a real port.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use logitlens_server::lifecycle::{self, Then};
use logitlens_server::status::Backend;
use logitlens_server::{app, AppState, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

pub struct TestServer {
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

/// A server whose config `cfg` adjusts, with no model loaded.
pub fn server_with(cfg: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    cfg(&mut c);
    TestServer {
        state: AppState::new(c).unwrap(),
        dir,
    }
}

impl TestServer {
    /// Load `spec` (a tiny fixture's folder, a GGUF...) into service.
    pub async fn load(&self, spec: PathBuf) {
        lifecycle::load(
            &self.state,
            spec.display().to_string(),
            Backend::Custom,
            Then::Serve,
        )
        .await
        .unwrap();
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Vec<u8>, HeaderMap) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, bytes, headers)
    }

    /// A JSON request; the answer as JSON (`Null` when empty).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, bytes, _) = self
            .raw(method, path, body.map(|b| b.to_string()), &[])
            .await;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, v)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.json(Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.json(Method::GET, path, None).await
    }
}

/// The `detail` of an error body.
pub fn detail(v: &Value) -> &str {
    v["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {v}"))
}
