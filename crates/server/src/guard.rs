//! Who may talk to the server. A web page on any domain that resolves to
//! 127.0.0.1 (DNS rebinding) reaches a local server with its own domain in
//! the Host header; only requests naming this machine, or a host the
//! operator allowed, are served. Browser pages may call the API only from
//! this machine's origins (CORS).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The hosts every local server answers to.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// The host part of a Host header (`name`, `name:port`, `[v6]:port`), lower case.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

/// Whether a request for `host` is served: this machine's names, or one
/// the operator added (`--allow-host`).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    LOCAL_HOSTS.contains(&name.as_str()) || allowed.iter().any(|a| host_name(a) == name)
}

/// Middleware: a request whose Host names another host gets 421 with the
/// reason. A request without a Host header (HTTP/1.0 scripts) comes from no
/// browser page and is served.
pub async fn check_host(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(host) = req.headers().get(header::HOST) {
        let host = host.to_str().unwrap_or("");
        if !host_allowed(host, &st.cfg.allowed_hosts) {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "host {host:?} is not served: this server answers for localhost, 127.0.0.1 and [::1]{} \
                     (so a web page on another domain that resolves here is refused); \
                     start it with --allow-host {} to serve that name",
                    if st.cfg.allowed_hosts.is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", st.cfg.allowed_hosts.join(", "))
                    },
                    host_name(host)
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Only pages served from this machine may call the API from a browser.
pub fn local_origin(origin: &HeaderValue) -> bool {
    let Ok(o) = origin.to_str() else { return false };
    ["http://localhost", "http://127.0.0.1", "http://[::1]"]
        .iter()
        .any(|host| match o.strip_prefix(host) {
            Some("") => true,
            Some(rest) => rest.strip_prefix(':').is_some_and(|p| {
                !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
            }),
            None => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_origins_pass_cors() {
        for ok in [
            "http://localhost:5173",
            "http://127.0.0.1:8000",
            "http://localhost",
            "http://[::1]:3000",
        ] {
            assert!(local_origin(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "http://evil.com",
            "http://localhost.evil.com",
            "http://localhost:80x",
            "https://localhost:1",
            "null",
            "http://127.0.0.1:123456",
        ] {
            assert!(!local_origin(&HeaderValue::from_static(bad)), "{bad}");
        }
    }

    #[test]
    fn only_this_machine_and_allowed_hosts_are_served() {
        let none: Vec<String> = vec![];
        for ok in [
            "localhost",
            "localhost:8000",
            "127.0.0.1:1",
            "[::1]:8000",
            "[::1]",
            "LOCALHOST:80",
        ] {
            assert!(host_allowed(ok, &none), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8000",
            "[::2]:8000",
            "",
        ] {
            assert!(!host_allowed(bad, &none), "{bad}");
        }
        let lan = vec!["192.168.1.5".to_string(), "MyBox:9000".to_string()];
        assert!(host_allowed("192.168.1.5:8000", &lan));
        assert!(host_allowed("mybox:8000", &lan));
        assert!(!host_allowed("192.168.1.6:8000", &lan));
    }
}
