//! Where a model comes from: a local Hugging Face folder, a `.gguf` file, or
//! a Hub repo id resolved through the local Hub cache (downloaded when online).

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Dir(PathBuf),
    Gguf(PathBuf),
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

impl ModelSource {
    /// Interpret a `--model` / `model_name` string. An existing path wins;
    /// otherwise `org/name[@revision]` (or a bare `name`) is a Hub repo id.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(EngineError::InvalidRequest("model name is empty".into()));
        }
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(ModelSource::Dir(path.to_path_buf()));
        }
        if spec.to_ascii_lowercase().ends_with(".gguf") {
            if path.is_file() {
                return Ok(ModelSource::Gguf(path.to_path_buf()));
            }
            // A bare file name means a file in the models folder.
            if !spec.contains(['/', '\\']) && !spec.starts_with('.') {
                let p = super::default_model::models_dir().join(spec);
                if p.is_file() {
                    return Ok(ModelSource::Gguf(p));
                }
            }
            return Err(EngineError::NotFound(format!(
                "GGUF file {spec:?} does not exist (nor in the models folder {})",
                super::default_model::models_dir().display()
            )));
        }
        if path.is_file() {
            return Err(EngineError::Unsupported(format!(
                "{spec:?} is a file but not a .gguf; give a .gguf file, a Hugging Face model folder or a Hub repo id"
            )));
        }
        let (repo, revision) = match spec.split_once('@') {
            Some((r, rev)) if !rev.is_empty() => (r, Some(rev.to_owned())),
            Some(_) => {
                return Err(EngineError::InvalidRequest(format!(
                    "{spec:?}: empty revision after '@'"
                )))
            }
            None => (spec, None),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
            return Err(EngineError::NotFound(format!(
                "{spec:?} is neither an existing folder or .gguf file nor a Hub repo id (org/name[@revision])"
            )));
        }
        Ok(ModelSource::Hub {
            repo: repo.to_owned(),
            revision,
        })
    }
}

/// The Hub cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`, as huggingface_hub resolves it.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    Cache::from_env().path().clone()
}

fn hub_offline() -> bool {
    matches!(
        std::env::var("HF_HUB_OFFLINE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("1") | Ok("true") | Ok("yes") | Ok("on")
    )
}

/// A Hub repo resolved to files in the local cache.
pub struct HubFiles {
    pub repo: String,
    pub revision: String,
    /// The snapshot folder's commit hash.
    pub commit: Option<String>,
    cache: Cache,
}

/// Called with (file name, bytes so far, total bytes) while downloading.
pub type DownloadProgress<'a> = &'a mut dyn FnMut(&str, u64, u64);

impl HubFiles {
    pub fn new(repo: &str, revision: Option<&str>) -> Self {
        let cache = Cache::new(hub_cache_dir());
        let revision = revision.unwrap_or("main").to_owned();
        let commit = resolve_commit(&cache, repo, &revision);
        HubFiles {
            repo: repo.to_owned(),
            revision,
            commit,
            cache,
        }
    }

    fn repo(&self) -> Repo {
        Repo::with_revision(self.repo.clone(), RepoType::Model, self.revision.clone())
    }

    /// The cached path of `file`, if present.
    pub fn cached(&self, file: &str) -> Option<PathBuf> {
        if let Some(p) = self.cache.repo(self.repo()).get(file) {
            return Some(p);
        }
        // A commit hash as revision has no refs/ entry: look at its snapshot.
        let commit = self.commit.as_ref()?;
        let p = self
            .cache
            .path()
            .join(self.repo().folder_name())
            .join("snapshots")
            .join(commit)
            .join(file);
        p.exists().then_some(p)
    }

    /// The path of `file`: from the cache, else downloaded (unless offline).
    pub fn get(&mut self, file: &str, progress: DownloadProgress) -> Result<PathBuf> {
        if let Some(p) = self.cached(file) {
            return Ok(p);
        }
        self.download(file, progress)
    }

    /// Like [`get`](Self::get) but `Ok(None)` when the repo has no such file.
    pub fn get_optional(
        &mut self,
        file: &str,
        progress: DownloadProgress,
    ) -> Result<Option<PathBuf>> {
        if let Some(p) = self.cached(file) {
            return Ok(Some(p));
        }
        // Offline, an optional file that isn't cached is treated as absent.
        if hub_offline() || !cfg!(feature = "hub") {
            return Ok(None);
        }
        match self.download(file, progress) {
            Ok(p) => Ok(Some(p)),
            Err(_) => Ok(None),
        }
    }

    fn not_cached(&self, file: &str, why: &str) -> EngineError {
        EngineError::NotFound(format!(
            "model {:?} (revision {}) is not in the local Hugging Face cache: {} was not found under {}; {why}",
            self.repo,
            self.revision,
            file,
            self.cache.path().join(self.repo().folder_name()).display()
        ))
    }

    #[cfg(feature = "hub")]
    fn download(&mut self, file: &str, progress: DownloadProgress) -> Result<PathBuf> {
        if hub_offline() {
            return Err(self.not_cached(file, "HF_HUB_OFFLINE is set, so nothing is downloaded"));
        }
        struct P<'a, 'b> {
            file: String,
            total: u64,
            done: u64,
            f: &'a mut (dyn FnMut(&str, u64, u64) + 'b),
        }
        impl hf_hub::api::Progress for P<'_, '_> {
            fn init(&mut self, size: usize, _filename: &str) {
                self.total = size as u64;
                (self.f)(&self.file, 0, self.total);
            }
            fn update(&mut self, size: usize) {
                self.done += size as u64;
                (self.f)(&self.file, self.done, self.total);
            }
            fn finish(&mut self) {
                (self.f)(&self.file, self.total, self.total);
            }
        }
        let api = hf_hub::api::sync::ApiBuilder::from_cache(self.cache.clone())
            .with_progress(false)
            .with_token(
                std::env::var("HF_TOKEN")
                    .ok()
                    .or_else(|| self.cache.token()),
            )
            .build()
            .map_err(|e| self.not_cached(file, &format!("the Hub client could not start: {e}")))?;
        let p = P {
            file: file.to_owned(),
            total: 0,
            done: 0,
            f: progress,
        };
        let path = api
            .repo(self.repo())
            .download_with_progress(file, p)
            .map_err(|e| self.not_cached(file, &format!("downloading it failed: {e}")))?;
        self.commit = resolve_commit(&self.cache, &self.repo, &self.revision);
        Ok(path)
    }

    #[cfg(not(feature = "hub"))]
    fn download(&mut self, file: &str, _progress: DownloadProgress) -> Result<PathBuf> {
        Err(self.not_cached(
            file,
            "this build has no Hub download support (feature `hub`)",
        ))
    }
}

fn resolve_commit(cache: &Cache, repo: &str, revision: &str) -> Option<String> {
    let folder = Repo::new(repo.to_owned(), RepoType::Model).folder_name();
    let base = cache.path().join(folder);
    if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
        return base
            .join("snapshots")
            .join(revision)
            .is_dir()
            .then(|| revision.to_owned());
    }
    std::fs::read_to_string(base.join("refs").join(revision))
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repo_ids_and_revisions() {
        assert_eq!(
            ModelSource::parse("Qwen/Qwen3-0.6B@abc").unwrap(),
            ModelSource::Hub {
                repo: "Qwen/Qwen3-0.6B".into(),
                revision: Some("abc".into())
            }
        );
        assert_eq!(
            ModelSource::parse("gpt2").unwrap(),
            ModelSource::Hub {
                repo: "gpt2".into(),
                revision: None
            }
        );
        assert!(ModelSource::parse("a/b/c").is_err());
        assert!(ModelSource::parse("../x").is_err());
        assert!(ModelSource::parse("missing.gguf")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(ModelSource::parse("").is_err());
    }
}
