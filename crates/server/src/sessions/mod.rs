//! Saved sessions: `saved_states/<YYYYMMDD_HHMMSS>[_<name>]/{config.json,
//! tensors.npz}`. Names are sanitized, ids from clients must be a plain
//! folder name inside saved_states/, and writes are atomic (a temporary
//! folder renamed into place), so a crash never leaves half a session; the
//! temporary folders a crash leaves behind are removed at the next start.
//!
//! A session folder may come from someone else (shared, unpacked into
//! saved_states/), so its files are untrusted: each must be a regular file
//! (not a symlink, folder, pipe or device), no larger than its limit, and
//! is opened without following links ([`Sessions::open_file`]). What is in
//! a tensors.npz is checked by `npz::read` before it is used.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

mod config;

pub use config::{AppInfo, SavedResults, SavedSource, SessionConfig, CONFIG_VERSION};

use serde::Serialize;

use crate::error::{ApiError, ApiResult};

pub const SESSIONS_DIR: &str = "saved_states";
const MAX_NAME: usize = 100;
const MAX_ID: usize = 160;

/// The largest config.json read. A session's config is its request and its
/// lens results, pretty-printed: about 650 bytes per lens cell (5
/// predictions), so 256 MiB holds the results of ~400 000 cells, e.g. the
/// combined lens (2L + 2 rows) of a 96-layer model at the server's default
/// 2048-token limit; the file is parsed into memory, hence a bound.
pub const MAX_CONFIG_BYTES: u64 = 256 << 20;
/// The largest tensors.npz read. /load_session keeps the whole file in
/// memory (to re-save it), so this bounds what one request can make the
/// server hold. The server's own configured limits (body size, prompt
/// tokens, kept-run memory) are not known here, so this is a generous
/// constant: at the default 2048-token limit, a session without attention
/// is ~4.3 GB for an 8B model (D = 4096, V = 128256, 66 rows) and one with
/// attention ~10.5 GB for a 1B model (16 layers x 32 heads of 2048^2
/// floats); larger than that is not a session this server writes in
/// practice (its attention would not fit /inference's JSON either).
pub const MAX_TENSORS_BYTES: u64 = 16 << 30;
/// A `.tmp-<pid>-<n>` folder untouched for this long is left from a crash
/// (a save writes two files and renames the folder within seconds); a
/// newer one may be another server's save in progress on the same folder.
pub const STALE_TMP_AFTER: Duration = Duration::from_secs(60 * 60);
/// The files a session folder (and a save in progress) holds.
const SESSION_FILES: [&str; 2] = ["config.json", "tensors.npz"];

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

/// A session's file, opened as the regular file it was when checked.
pub struct SessionFile {
    pub file: File,
    pub len: u64,
}

impl SessionFile {
    /// All of it: `len` bytes (at most its limit), however the file changes
    /// while it is read.
    fn read_all(mut self, id: &str, name: &str) -> ApiResult<Vec<u8>> {
        let mut bytes = Vec::with_capacity(self.len as usize);
        (&mut self.file)
            .take(self.len + 1)
            .read_to_end(&mut bytes)
            .map_err(ApiError::internal)?;
        if bytes.len() as u64 != self.len {
            return Err(ApiError::bad_request(format!(
                "session {id:?}: {name} changed size while it was read"
            )));
        }
        Ok(bytes)
    }
}

impl Sessions {
    /// saved_states/ under `data_dir`, created if need be, with the
    /// temporary folders of saves a crash interrupted removed.
    pub fn new(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join(SESSIONS_DIR);
        std::fs::create_dir_all(&root)?;
        remove_stale_tmp(&root, SystemTime::now());
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
        config: &SessionConfig,
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
        // Written in this version's layout, whichever version it was read in.
        let config = SessionConfig {
            version: CONFIG_VERSION,
            ..config.clone()
        };
        let write = || -> std::io::Result<()> {
            let mut text = serde_json::to_vec_pretty(&config).map_err(std::io::Error::other)?;
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

    /// A new file's path directly in saved_states/ (files there are not
    /// sessions: only folders are), named for its save time, `what` and
    /// `name` (sanitized), e.g. `20261206_120000_jlens_SmolLM2.safetensors`.
    pub fn new_file(&self, what: &str, name: &str, ext: &str) -> PathBuf {
        let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S");
        let name = sanitize_name(name);
        for n in 1.. {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("_{n}")
            };
            let p = self
                .root
                .join(format!("{stamp}_{what}_{name}{suffix}.{ext}"));
            if !p.exists() {
                return p;
            }
        }
        unreachable!("some suffix is free")
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

    /// `name` in session `id`'s folder, if it is there: refused unless it
    /// is a regular file (a symlink is not followed, a pipe or device is not
    /// opened) of at most `limit` bytes. The file opened is checked to be
    /// the one inspected, so a link swapped in meanwhile is not followed
    /// either.
    pub fn open_file(&self, id: &str, name: &str, limit: u64) -> ApiResult<Option<SessionFile>> {
        let path = self.existing(id)?.join(name);
        let bad = |what: String| ApiError::bad_request(format!("session {id:?}: {name} {what}"));
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ApiError::internal(e)),
        };
        if meta.file_type().is_symlink() {
            return Err(bad(
                "is a symbolic link; a session's files must be regular files in its folder, \
                 links are not followed"
                    .into(),
            ));
        }
        if !meta.is_file() {
            return Err(bad(
                "is not a regular file (a folder, pipe, socket or device)".into(),
            ));
        }
        let too_big = |len: u64| {
            bad(format!(
                "is {len} bytes, over the limit of {limit} bytes for this file"
            ))
        };
        if meta.len() > limit {
            return Err(too_big(meta.len()));
        }
        let file = File::open(&path).map_err(ApiError::internal)?;
        let now = file.metadata().map_err(ApiError::internal)?;
        #[cfg(unix)]
        let same = {
            use std::os::unix::fs::MetadataExt;
            (now.dev(), now.ino()) == (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let same = true;
        if !same || !now.is_file() {
            return Err(bad(
                "was replaced while it was opened; a session's files must be regular files".into(),
            ));
        }
        if now.len() > limit {
            return Err(too_big(now.len()));
        }
        Ok(Some(SessionFile {
            file,
            len: now.len(),
        }))
    }

    /// A session's tensors.npz, opened (see [`Sessions::open_file`]).
    pub fn tensors(&self, id: &str) -> ApiResult<Option<SessionFile>> {
        self.open_file(id, "tensors.npz", MAX_TENSORS_BYTES)
    }

    /// A session's config.json, read as its layout (any version; fields
    /// older layouts lack take their defaults).
    pub fn config(&self, id: &str) -> ApiResult<SessionConfig> {
        let text = self
            .open_file(id, "config.json", MAX_CONFIG_BYTES)?
            .ok_or_else(|| ApiError::not_found("Config file not found"))?
            .read_all(id, "config.json")?;
        serde_json::from_slice(&text).map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() {
                "is not valid JSON"
            } else {
                "is not a session's config"
            };
            ApiError::bad_request(format!("session {id}: config.json {what}: {e}"))
        })
    }

    /// The config and the tensors file's bytes.
    pub fn load(&self, id: &str) -> ApiResult<(SessionConfig, Option<Vec<u8>>)> {
        let cfg = self.config(id)?;
        let npz = match self.tensors(id)? {
            Some(f) => Some(f.read_all(id, "tensors.npz")?),
            None => None,
        };
        Ok((cfg, npz))
    }

    pub fn delete(&self, id: &str) -> ApiResult<()> {
        let dir = self.existing(id)?;
        std::fs::remove_dir_all(dir)
            .map_err(|e| ApiError::internal(format!("failed to delete session: {e}")))
    }
}

/// Remove the `.tmp-<pid>-<n>` folders that [`Sessions::save`] writes into
/// and a crash left behind: only folders of exactly that layout (a real
/// folder, not a link, holding nothing but regular config.json and
/// tensors.npz files) untouched for [`STALE_TMP_AFTER`]. Anything else is
/// left alone; failures are logged, never fatal.
fn remove_stale_tmp(root: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str().filter(|n| is_tmp_name(n)) else {
            continue;
        };
        let path = e.path();
        match stale_tmp_age(&path, now) {
            Some(age) if age >= STALE_TMP_AFTER => match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!(
                    "removed {SESSIONS_DIR}/{name}, left by a save interrupted {} min ago",
                    age.as_secs() / 60
                ),
                Err(e) => tracing::warn!("could not remove {SESSIONS_DIR}/{name}: {e}"),
            },
            _ => {}
        }
    }
}

/// `.tmp-<pid>-<n>`, as [`Sessions::save`] names its folders.
fn is_tmp_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(".tmp-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// How long ago a save's temporary folder was last touched (the newest
/// modification time of it and its files), or None when it is not of that
/// layout or its times are in the future.
fn stale_tmp_age(dir: &Path, now: SystemTime) -> Option<Duration> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    if !meta.is_dir() {
        return None;
    }
    let mut newest = meta.modified().ok()?;
    for e in std::fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        let m = std::fs::symlink_metadata(e.path()).ok()?;
        let known = e
            .file_name()
            .to_str()
            .is_some_and(|n| SESSION_FILES.contains(&n));
        if !known || !m.is_file() {
            return None;
        }
        newest = newest.max(m.modified().ok()?);
    }
    now.duration_since(newest).ok()
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

    #[test]
    fn only_save_folders_are_temporary() {
        for ok in [".tmp-4242-0", ".tmp-1-18446744073709551615"] {
            assert!(is_tmp_name(ok), "{ok}");
        }
        for not in [
            ".tmp-",
            ".tmp-1",
            ".tmp-1-",
            ".tmp--1",
            ".tmp-a-1",
            ".tmp-1-2-3",
            ".tmp-1-2 ",
            "tmp-1-2",
            ".tmp-backup",
            "20260101_120000",
        ] {
            assert!(!is_tmp_name(not), "{not}");
        }
    }

    #[test]
    fn a_save_in_progress_is_not_stale() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".tmp-1-0");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("config.json"), "{}").unwrap();
        let now = SystemTime::now();
        assert!(stale_tmp_age(&tmp, now).unwrap() < STALE_TMP_AFTER);
        // A clock set back: times in the future are never stale.
        assert_eq!(stale_tmp_age(&tmp, now - 2 * STALE_TMP_AFTER), None);
        remove_stale_tmp(dir.path(), now);
        assert!(tmp.is_dir());
        remove_stale_tmp(dir.path(), now + 2 * STALE_TMP_AFTER);
        assert!(!tmp.exists());
    }
}
