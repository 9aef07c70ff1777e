//! Where an SAE's folder is: a path on this machine, or a folder inside a
//! Hub repo, `org/name[@revision]:folder/sub`, found in the local Hub cache
//! by the same code as a model's files (and downloaded as they are: only
//! in a build with `hub`, online).

use std::path::{Path, PathBuf};

use super::config::CENTERED_REPOS;
use crate::error::{EngineError, Result};
use crate::load::source::{hub_cache_dir, HubFiles};

/// An SAE's folder, found.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The folder holding cfg.json (or params.npz).
    pub dir: PathBuf,
    /// What to call where it came from: the path, or `repo@commit:folder`.
    pub source: String,
    /// The Hub repo it came from.
    pub repo: Option<String>,
}

impl Located {
    /// What SAELens sets for this repo that its `cfg.json` does not say:
    /// centred writing weights for the repos in [`CENTERED_REPOS`].
    pub fn center_writing_weights(&self) -> Option<bool> {
        self.repo
            .as_deref()
            .filter(|r| CENTERED_REPOS.contains(r))
            .map(|_| true)
    }
}

/// A Hub folder named by `org/name[@revision]:folder`.
#[derive(Debug, Clone, PartialEq)]
struct HubFolder {
    repo: String,
    revision: Option<String>,
    folder: String,
}

/// `spec` as a Hub folder, if it has that form. Only `org/name` repo ids:
/// a bare `name:folder` is as likely a local path with a colon in it.
fn parse_hub(spec: &str) -> Option<HubFolder> {
    let (repo, folder) = spec.split_once(':')?;
    let (repo, revision) = match repo.split_once('@') {
        Some((r, rev)) if !rev.is_empty() => (r, Some(rev.to_owned())),
        Some(_) => return None,
        None => (repo, None),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 || !parts.iter().all(|p| valid(p)) {
        return None;
    }
    let folder = folder.trim_matches('/');
    let parts: Vec<&str> = folder.split('/').collect();
    if folder.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    Some(HubFolder {
        repo: repo.to_owned(),
        revision,
        folder: folder.to_owned(),
    })
}

/// The folder `spec` names: an existing path as it is, else a Hub folder
/// from the cache; else an error saying what was looked for.
pub fn locate(spec: &Path) -> Result<Located> {
    if spec.exists() {
        return Ok(Located {
            dir: spec.to_path_buf(),
            source: spec.display().to_string(),
            repo: None,
        });
    }
    let text = spec.to_string_lossy();
    let Some(hub) = parse_hub(&text) else {
        return Err(EngineError::NotFound(format!(
            "{}: no such folder (an SAE is a folder with cfg.json and sae_weights.safetensors, \
             or with params.npz, or a folder in a Hub repo as org/name[@revision]:folder)",
            spec.display()
        )));
    };
    from_hub(&hub)
}

fn from_hub(h: &HubFolder) -> Result<Located> {
    let mut files = HubFiles::new(&h.repo, h.revision.as_deref());
    let mut quiet = |_: &str, _: u64, _: u64| {};
    let file = |name: &str| format!("{}/{name}", h.folder);
    let found = match files.get_optional(&file("cfg.json"), &mut quiet)? {
        Some(cfg) => {
            files
                .get(&file("sae_weights.safetensors"), &mut quiet)
                .map_err(|e| EngineError::NotFound(format!("SAE {}:{}: {e}", h.repo, h.folder)))?;
            files.get_optional(&file("activation_scaler.json"), &mut quiet)?;
            Some(cfg)
        }
        None => files.get_optional(&file("params.npz"), &mut quiet)?,
    };
    let Some(found) = found else {
        return Err(not_found(h, &files));
    };
    let dir = found
        .parent()
        .expect("a file in a snapshot has a folder")
        .to_path_buf();
    let at = files.commit.as_deref().unwrap_or(&files.revision);
    Ok(Located {
        dir,
        source: format!("{}@{at}:{}", h.repo, h.folder),
        repo: Some(h.repo.clone()),
    })
}

/// Neither SAE file of the folder is there: say what was looked for, where.
fn not_found(h: &HubFolder, files: &HubFiles) -> EngineError {
    let base = hub_cache_dir().join(format!("models--{}", h.repo.replace('/', "--")));
    let why = if !base.is_dir() {
        format!(
            "the repo is not in the cache ({} does not exist)",
            base.display()
        )
    } else if files.commit.is_none() {
        format!(
            "revision {} of it is not in the cache (no refs/{0} nor snapshots/{0} under {})",
            files.revision,
            base.display()
        )
    } else {
        format!(
            "the cached snapshot {} has neither file",
            base.join("snapshots")
                .join(files.commit.as_deref().unwrap_or_default())
                .display()
        )
    };
    EngineError::NotFound(format!(
        "SAE {}:{} (revision {}): neither {}/cfg.json (SAELens) nor {}/params.npz (Gemma Scope) \
         was found: {why}; nothing is downloaded offline (HF_HUB_OFFLINE) or in a build without \
         the `hub` feature",
        h.repo, h.folder, files.revision, h.folder, h.folder
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_folders_parse_and_paths_do_not() {
        assert_eq!(
            parse_hub("jbloom/GPT2-Small-SAEs-Reformatted@abc:blocks.8.hook_resid_pre/"),
            Some(HubFolder {
                repo: "jbloom/GPT2-Small-SAEs-Reformatted".into(),
                revision: Some("abc".into()),
                folder: "blocks.8.hook_resid_pre".into(),
            })
        );
        assert_eq!(
            parse_hub("google/gemma-scope-2b-pt-res:layer_20/width_16k/average_l0_71")
                .map(|h| h.folder),
            Some("layer_20/width_16k/average_l0_71".into())
        );
        for not in [
            "/data/sae",
            "name:folder",
            "a/b/c:folder",
            "org/name:",
            "org/name@:f",
            "org/name:../up",
            "C:/saes/x",
        ] {
            assert_eq!(parse_hub(not), None, "{not}");
        }
    }
}
