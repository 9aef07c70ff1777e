//! GET /models: what one can pick — a curated list plus every model in the
//! local Hub cache and every .gguf in the models folder.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use logitlens_engine::default_model;
use logitlens_engine::source::hub_cache_dir;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ModelEntry {
    /// What to send as `model_name`.
    pub id: String,
    pub name: String,
    pub family: String,
    /// Parameter count as published ("135M", "1B"), when known.
    pub size: Option<String>,
    /// Bytes of weights on disk, for local files.
    pub bytes: Option<u64>,
    /// Present locally (Hub cache or models folder): loads without a download.
    pub cached: bool,
    /// "curated", "hub_cache" or "models_dir".
    pub source: String,
    /// Backends that can run it.
    pub backends: Vec<String>,
    pub instruct: bool,
}

/// (id, name, family, size)
const CURATED: &[(&str, &str, &str, &str)] = &[
    (
        default_model::FILE_NAME,
        "SmolLM2 135M Instruct (Q4_1 GGUF, default)",
        "SmolLM2",
        "135M",
    ),
    (
        "HuggingFaceTB/SmolLM2-135M",
        "SmolLM2 135M",
        "SmolLM2",
        "135M",
    ),
    (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "SmolLM2 135M Instruct",
        "SmolLM2",
        "135M",
    ),
    (
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        "SmolLM2 360M Instruct",
        "SmolLM2",
        "360M",
    ),
    (
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "SmolLM2 1.7B Instruct",
        "SmolLM2",
        "1.7B",
    ),
    ("meta-llama/Llama-3.2-1B", "Llama 3.2 1B", "Llama", "1B"),
    ("meta-llama/Llama-3.2-3B", "Llama 3.2 3B", "Llama", "3B"),
    (
        "meta-llama/Llama-3.2-1B-Instruct",
        "Llama 3.2 1B Instruct",
        "Llama",
        "1B",
    ),
    (
        "meta-llama/Llama-3.2-3B-Instruct",
        "Llama 3.2 3B Instruct",
        "Llama",
        "3B",
    ),
    ("meta-llama/Llama-3.1-8B", "Llama 3.1 8B", "Llama", "8B"),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        "Llama 3.1 8B Instruct",
        "Llama",
        "8B",
    ),
    (
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "TinyLlama 1.1B Chat",
        "Llama",
        "1.1B",
    ),
    ("Qwen/Qwen3-0.6B", "Qwen3 0.6B (Instruct)", "Qwen3", "0.6B"),
    ("Qwen/Qwen3-0.6B-Base", "Qwen3 0.6B Base", "Qwen3", "0.6B"),
    ("Qwen/Qwen3-1.7B", "Qwen3 1.7B (Instruct)", "Qwen3", "1.7B"),
    ("Qwen/Qwen3-1.7B-Base", "Qwen3 1.7B Base", "Qwen3", "1.7B"),
    ("Qwen/Qwen3-4B", "Qwen3 4B (Instruct)", "Qwen3", "4B"),
    ("Qwen/Qwen3-4B-Base", "Qwen3 4B Base", "Qwen3", "4B"),
    ("Qwen/Qwen3-8B", "Qwen3 8B (Instruct)", "Qwen3", "8B"),
];

/// Instruct/chat models get the chat template by default in the UI. Unlike
/// the original's check this is case-insensitive and knows `-it`.
pub fn is_instruct(id: &str) -> bool {
    let l = id.to_lowercase();
    l.contains("instruct")
        || l.contains("chat")
        || l.ends_with("-it")
        || l.contains("-it-")
        || (l.contains("qwen3") && !l.contains("-base"))
}

fn family_of(id: &str) -> String {
    let l = id.to_lowercase();
    for (needle, fam) in [
        ("smollm", "SmolLM2"),
        ("qwen3", "Qwen3"),
        ("llama", "Llama"),
    ] {
        if l.contains(needle) {
            return fam.into();
        }
    }
    "Other".into()
}

/// Repo ids in the Hub cache (`models--org--name` with a snapshot).
fn hub_cached(cache: &Path) -> BTreeSet<String> {
    let Ok(rd) = std::fs::read_dir(cache) else {
        return BTreeSet::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let repo = name.strip_prefix("models--")?.replacen("--", "/", 1);
            let snaps = std::fs::read_dir(e.path().join("snapshots")).ok()?;
            snaps.filter_map(|s| s.ok()).next()?;
            Some(repo)
        })
        .collect()
}

fn dir_bytes(p: &Path) -> Option<u64> {
    let meta = std::fs::metadata(p).ok()?;
    Some(meta.len())
}

pub fn list() -> Vec<ModelEntry> {
    let cache = hub_cache_dir();
    let cached = hub_cached(&cache);
    let models_dir = default_model::models_dir();
    let ggufs: BTreeSet<String> = std::fs::read_dir(&models_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.to_lowercase().ends_with(".gguf"))
                .collect()
        })
        .unwrap_or_default();
    let entry = |id: &str, name: &str, family: &str, size: Option<&str>, source: &str| {
        let local_file = ggufs.contains(id);
        ModelEntry {
            id: id.into(),
            name: name.into(),
            family: family.into(),
            size: size.map(Into::into),
            bytes: if local_file {
                dir_bytes(&models_dir.join(id))
            } else {
                None
            },
            cached: local_file || cached.contains(id),
            source: source.into(),
            backends: vec!["custom".into()],
            instruct: is_instruct(id),
        }
    };
    let mut out: Vec<ModelEntry> = CURATED
        .iter()
        .map(|(id, name, fam, size)| entry(id, name, fam, Some(size), "curated"))
        .collect();
    for repo in &cached {
        if !out.iter().any(|m| &m.id == repo) {
            out.push(entry(repo, repo, &family_of(repo), None, "hub_cache"));
        }
    }
    for file in &ggufs {
        if !out.iter().any(|m| &m.id == file) {
            out.push(entry(file, file, &family_of(file), None, "models_dir"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruct_detection_is_case_insensitive() {
        assert!(is_instruct("google/gemma-2b-it"));
        assert!(is_instruct("microsoft/Phi-3-mini-4k-instruct"));
        assert!(is_instruct("meta-llama/Llama-2-7b-chat-hf"));
        assert!(is_instruct("Qwen/Qwen3-0.6B"));
        assert!(!is_instruct("Qwen/Qwen3-0.6B-Base"));
        assert!(!is_instruct("meta-llama/Llama-3.2-1B"));
    }
}
