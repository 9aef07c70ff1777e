//! Saved sessions: `saved_states/<YYYYMMDD_HHMMSS>[_<name>]/{config.json,
//! tensors.npz}`. Names are sanitized, ids from clients must be a plain
//! folder name inside saved_states/, and writes are atomic (a temporary
//! folder renamed into place), so a crash never leaves half a session.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

pub const SESSIONS_DIR: &str = "saved_states";
const MAX_NAME: usize = 100;
const MAX_ID: usize = 160;

/// Keep letters, digits, `-`, `_`, `.`; anything else becomes `_`; no `..`,
/// no leading dot (hidden folders hold in-progress writes).
pub fn sanitize_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    while s.contains("..") {
        s = s.replace("..", "_");
    }
    s.trim_start_matches('.').to_string()
}

/// A session id as a client sends it must name one folder directly inside
/// saved_states/.
pub fn check_id(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && !id.starts_with('.')
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid session id {:?}: a session id is a folder name of letters, digits, '-', '_' and '.' \
             (no '..', no leading '.'), as GET /sessions lists them",
            truncate(id, 80)
        )))
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).chain("…".chars()).collect()
    }
}

pub struct Sessions {
    root: PathBuf,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionEntry {
    pub id: String,
    pub name: String,
    pub timestamp: String,
}

impl Sessions {
    pub fn new(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join(SESSIONS_DIR);
        std::fs::create_dir_all(&root)?;
        Ok(Sessions { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of an existing session, refusing anything that is not a
    /// real directory directly inside saved_states/ (symlinks included).
    pub fn existing(&self, id: &str) -> ApiResult<PathBuf> {
        check_id(id)?;
        let p = self.root.join(id);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => Ok(p),
            Ok(_) => Err(ApiError::bad_request(format!(
                "{id:?} is not a session folder"
            ))),
            Err(_) => Err(ApiError::not_found("Session not found")),
        }
    }

    /// Write a session atomically; returns its id.
    pub fn save(
        &self,
        name: Option<&str>,
        config: &Value,
        npz: Option<&[u8]>,
    ) -> ApiResult<String> {
        let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S").to_string();
        let name = name.map(sanitize_name).filter(|n| !n.is_empty());
        let base = match &name {
            Some(n) => format!("{stamp}_{n}"),
            None => stamp,
        };
        let tmp = self
            .root
            .join(format!(".tmp-{}-{}", std::process::id(), unique()));
        std::fs::create_dir(&tmp).map_err(ApiError::internal)?;
        let write = || -> std::io::Result<()> {
            let mut text = serde_json::to_vec_pretty(config).map_err(std::io::Error::other)?;
            text.push(b'\n');
            std::fs::write(tmp.join("config.json"), text)?;
            if let Some(bytes) = npz {
                std::fs::write(tmp.join("tensors.npz"), bytes)?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ApiError::internal(e));
        }
        // Two saves in one second get distinct ids; rename never overwrites
        // a non-empty folder, so the loser of a race simply tries the next.
        for n in 1..1000 {
            let id = if n == 1 {
                base.clone()
            } else {
                format!("{base}_{n}")
            };
            let dest = self.root.join(&id);
            if dest.exists() {
                continue;
            }
            match std::fs::rename(&tmp, &dest) {
                Ok(()) => return Ok(id),
                Err(_) if dest.exists() => continue,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(ApiError::internal(e));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        Err(ApiError::conflict(
            "too many sessions saved under this name this second",
        ))
    }

    /// Newest first: ids begin with their save time, so this sorts by name, descending.
    pub fn list(&self) -> ApiResult<Vec<SessionEntry>> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(ApiError::internal)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| check_id(id).is_ok())
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        Ok(ids
            .into_iter()
            .map(|id| {
                let parts: Vec<&str> = id.splitn(3, '_').collect();
                let (timestamp, name) = match parts.as_slice() {
                    [d, t] => (format!("{d}_{t}"), "Untitled".to_string()),
                    [d, t, n] => (format!("{d}_{t}"), n.to_string()),
                    _ => ("Unknown".to_string(), id.clone()),
                };
                SessionEntry {
                    id,
                    name,
                    timestamp,
                }
            })
            .collect())
    }

    /// The config (legacy keys back-filled) and the tensors file's bytes.
    pub fn load(&self, id: &str) -> ApiResult<(Value, Option<Vec<u8>>)> {
        let dir = self.existing(id)?;
        let cfg_path = dir.join("config.json");
        let text = match std::fs::read(&cfg_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::not_found("Config file not found"))
            }
            Err(e) => return Err(ApiError::internal(e)),
        };
        let mut cfg: Map<String, Value> = match serde_json::from_slice(&text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(ApiError::bad_request(format!(
                    "session {id}: config.json is not a JSON object"
                )))
            }
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "session {id}: config.json is not valid JSON: {e}"
                )))
            }
        };
        // Sessions written before these fields existed lack them; clients
        // may rely on both being present.
        cfg.entry("apply_chat_template")
            .or_insert(Value::Bool(false));
        cfg.entry("backend")
            .or_insert(Value::String("custom".into()));
        let npz = match std::fs::read(dir.join("tensors.npz")) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ApiError::internal(e)),
        };
        Ok((Value::Object(cfg), npz))
    }

    pub fn delete(&self, id: &str) -> ApiResult<()> {
        let dir = self.existing(id)?;
        std::fs::remove_dir_all(dir)
            .map_err(|e| ApiError::internal(format!("failed to delete session: {e}")))
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("my run"), "my_run");
        assert_eq!(sanitize_name("../../etc"), "____etc");
        assert_eq!(sanitize_name("a/b\\c"), "a_b_c");
        assert_eq!(sanitize_name(".hidden"), "hidden");
        assert_eq!(sanitize_name("café-1.2"), "café-1.2");
        assert_eq!(sanitize_name(&"x".repeat(500)).len(), MAX_NAME);
    }

    #[test]
    fn ids_must_be_plain_folder_names() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc",
            "a/../../b",
            "a/b",
            "%2e%2e",
            ".tmp-1",
            "a\0b",
            &"x".repeat(200),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_id("20260101_120000_my_run").is_ok());
    }
}
