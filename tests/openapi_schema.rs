//! The web app's API types are generated from `frontend/src/api/openapi.json`
//! (openapi-typescript; the web app's own test checks that step). This test
//! keeps that file equal to the schema the server serves at /openapi.json,
//! so a change to a request or response type cannot leave the web app's
//! types behind. To accept a change: `LOGITLENS_BLESS=1 cargo test --test
//! openapi_schema`, then `cd frontend && npm run gen:api`.

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
