//! The web app's API types are generated from `frontend/src/api/openapi.json`
//! (openapi-typescript; the web app's own test checks that step). This test
//! keeps that file equal to the schema the server serves at /openapi.json,
//! so a change to a request or response type cannot leave the web app's
//! types behind. To accept a change: `LOGITLENS_BLESS=1 cargo test --test
//! openapi_schema`, then `cd frontend && npm run gen:api`.

mod common;

use std::path::Path;

#[test]
fn the_web_apps_schema_is_the_servers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("frontend/src/api/openapi.json");
    let mut current = logitlens_server::openapi().to_pretty_json().unwrap();
    current.push('\n');
    if std::env::var("LOGITLENS_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != current {
        let line = committed
            .lines()
            .zip(current.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(current.lines().count()),
                |i| i,
            )
            + 1;
        panic!(
            "{} differs from the server's /openapi.json from line {line}; run \
             `LOGITLENS_BLESS=1 cargo test --test openapi_schema` and then \
             `cd frontend && npm run gen:api`",
            path.display()
        );
    }
}

/// Under every route of the API an unknown path is a JSON 404 (never the
/// web app's page), whatever the method: each path of /openapi.json (its
/// parameters filled in) with `/x` appended, and /openapi.json's own.
#[tokio::test]
async fn every_api_path_with_more_after_it_is_a_json_404() {
    use axum::http::{Method, StatusCode};
    let s = common::server::server_with(|_| {});
    let doc = logitlens_server::openapi();
    let paths: Vec<String> = doc
        .paths
        .paths
        .keys()
        .map(|p| p.replace("{run_id}", "1"))
        .chain(["/openapi.json".to_owned()])
        .collect();
    assert!(paths.len() >= 19, "{paths:?}");
    for path in paths {
        for method in [Method::GET, Method::POST] {
            let url = format!("{path}/x");
            let (st, v) = s.json(method.clone(), &url, None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{method} {url}: {v}");
            assert_eq!(v["detail"], "no such endpoint", "{method} {url}");
        }
    }
}

/// docs/ARCHITECTURE.md lists the routes the router serves, no more, no
/// fewer (its "Routes" section: one `METHOD /path` per line).
#[test]
fn the_architecture_lists_the_routes_served() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    let section = doc
        .split("\n## Routes\n")
        .nth(1)
        .expect("a Routes section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut listed: Vec<String> = section
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches(['|', ' ', '`', '-']);
            let (method, rest) = l.split_once(' ')?;
            let path = rest.trim_start().split(['`', ' ', '|']).next()?;
            (["GET", "POST"].contains(&method) && path.starts_with('/'))
                .then(|| format!("{method} {path}"))
        })
        .collect();
    listed.sort();
    let api = logitlens_server::openapi();
    let mut served: Vec<String> = api
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let mut m = Vec::new();
            if item.get.is_some() {
                m.push(format!("GET {path}"));
            }
            if item.post.is_some() {
                m.push(format!("POST {path}"));
            }
            m
        })
        .chain(["GET /openapi.json".to_owned()])
        .collect();
    served.sort();
    assert_eq!(listed, served, "docs/ARCHITECTURE.md's Routes section");
}
