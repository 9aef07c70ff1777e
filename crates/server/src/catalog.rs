//! GET /models: what one can pick — a curated list plus every model in the
//! local Hub cache and every .gguf in the models folder.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use logitlens_engine::default_model;
use logitlens_engine::load::memory;
use logitlens_engine::load::source::hub_cache_dir;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ModelEntry {
    /// What to send as `model_name`.
    pub id: String,
    pub name: String,
    pub family: String,
    /// Parameter count as published ("135M", "1B"), when known.
    pub size: Option<String>,
    /// The same as a number of parameters.
    pub params: Option<u64>,
    /// Bytes of weights on disk, for local files.
    pub bytes: Option<u64>,
    /// About how much memory its weights take once loaded with `weights:
    /// auto` (widened to f32 when that is under 40% of the memory
    /// available, else as stored: bf16 as published, or the file's blocks).
    pub memory_bytes: Option<u64>,
    /// Whether that fits in the memory available now.
    pub fits: Option<bool>,
    /// Present locally (Hub cache or models folder): loads without a download.
    pub cached: bool,
    /// "curated", "hub_cache" or "models_dir".
    pub source: String,
    /// Backends that can run it.
    pub backends: Vec<String>,
    pub instruct: bool,
}

/// (id, name, family, size). Llama-family and Qwen3 checkpoints run on both
/// backends; the other families on the hooked backend only.
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
        "HuggingFaceTB/SmolLM2-360M",
        "SmolLM2 360M",
        "SmolLM2",
        "360M",
    ),
    (
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        "SmolLM2 360M Instruct",
        "SmolLM2",
        "360M",
    ),
    (
        "HuggingFaceTB/SmolLM2-1.7B",
        "SmolLM2 1.7B",
        "SmolLM2",
        "1.7B",
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
    ("meta-llama/Meta-Llama-3-8B", "Llama 3 8B", "Llama", "8B"),
    (
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "Llama 3 8B Instruct",
        "Llama",
        "8B",
    ),
    ("meta-llama/Llama-2-7b-hf", "Llama 2 7B", "Llama", "7B"),
    (
        "meta-llama/Llama-2-7b-chat-hf",
        "Llama 2 7B Chat",
        "Llama",
        "7B",
    ),
    ("meta-llama/Llama-2-13b-hf", "Llama 2 13B", "Llama", "13B"),
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
    ("gpt2", "GPT-2 (124M)", "GPT-2", "124M"),
    ("gpt2-medium", "GPT-2 Medium (355M)", "GPT-2", "355M"),
    ("gpt2-large", "GPT-2 Large (774M)", "GPT-2", "774M"),
    ("gpt2-xl", "GPT-2 XL (1.5B)", "GPT-2", "1.5B"),
    ("distilgpt2", "DistilGPT-2", "GPT-2", "82M"),
    ("EleutherAI/pythia-14m", "Pythia 14M", "Pythia", "14M"),
    ("EleutherAI/pythia-31m", "Pythia 31M", "Pythia", "31M"),
    ("EleutherAI/pythia-70m", "Pythia 70M", "Pythia", "70M"),
    ("EleutherAI/pythia-160m", "Pythia 160M", "Pythia", "160M"),
    ("EleutherAI/pythia-410m", "Pythia 410M", "Pythia", "410M"),
    ("EleutherAI/pythia-1b", "Pythia 1B", "Pythia", "1B"),
    ("EleutherAI/pythia-1.4b", "Pythia 1.4B", "Pythia", "1.4B"),
    ("EleutherAI/pythia-2.8b", "Pythia 2.8B", "Pythia", "2.8B"),
    ("EleutherAI/pythia-6.9b", "Pythia 6.9B", "Pythia", "6.9B"),
    ("EleutherAI/pythia-12b", "Pythia 12B", "Pythia", "12B"),
    (
        "EleutherAI/pythia-70m-deduped",
        "Pythia 70M (Deduped)",
        "Pythia",
        "70M",
    ),
    (
        "EleutherAI/pythia-160m-deduped",
        "Pythia 160M (Deduped)",
        "Pythia",
        "160M",
    ),
    (
        "EleutherAI/pythia-410m-deduped",
        "Pythia 410M (Deduped)",
        "Pythia",
        "410M",
    ),
    (
        "EleutherAI/pythia-1b-deduped",
        "Pythia 1B (Deduped)",
        "Pythia",
        "1B",
    ),
    (
        "EleutherAI/pythia-1.4b-deduped",
        "Pythia 1.4B (Deduped)",
        "Pythia",
        "1.4B",
    ),
    (
        "EleutherAI/pythia-2.8b-deduped",
        "Pythia 2.8B (Deduped)",
        "Pythia",
        "2.8B",
    ),
    (
        "EleutherAI/pythia-6.9b-deduped",
        "Pythia 6.9B (Deduped)",
        "Pythia",
        "6.9B",
    ),
    (
        "EleutherAI/pythia-12b-deduped",
        "Pythia 12B (Deduped)",
        "Pythia",
        "12B",
    ),
    ("mistralai/Mistral-7B-v0.1", "Mistral 7B", "Mistral", "7B"),
    (
        "mistralai/Mistral-7B-v0.3",
        "Mistral 7B v0.3",
        "Mistral",
        "7B",
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.3",
        "Mistral 7B Instruct v0.3",
        "Mistral",
        "7B",
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.1",
        "Mistral 7B Instruct",
        "Mistral",
        "7B",
    ),
    ("Qwen/Qwen2-0.5B", "Qwen2 0.5B", "Qwen2", "0.5B"),
    ("Qwen/Qwen2-1.5B", "Qwen2 1.5B", "Qwen2", "1.5B"),
    ("Qwen/Qwen2-7B", "Qwen2 7B", "Qwen2", "7B"),
    ("Qwen/Qwen2.5-0.5B", "Qwen2.5 0.5B", "Qwen2", "0.5B"),
    (
        "Qwen/Qwen2.5-0.5B-Instruct",
        "Qwen2.5 0.5B Instruct",
        "Qwen2",
        "0.5B",
    ),
    ("Qwen/Qwen2.5-1.5B", "Qwen2.5 1.5B", "Qwen2", "1.5B"),
    (
        "Qwen/Qwen2.5-1.5B-Instruct",
        "Qwen2.5 1.5B Instruct",
        "Qwen2",
        "1.5B",
    ),
    ("Qwen/Qwen2.5-3B", "Qwen2.5 3B", "Qwen2", "3B"),
    (
        "Qwen/Qwen2.5-3B-Instruct",
        "Qwen2.5 3B Instruct",
        "Qwen2",
        "3B",
    ),
    ("Qwen/Qwen2.5-7B", "Qwen2.5 7B", "Qwen2", "7B"),
    (
        "Qwen/Qwen2.5-7B-Instruct",
        "Qwen2.5 7B Instruct",
        "Qwen2",
        "7B",
    ),
    ("google/gemma-2b", "Gemma 2B", "Gemma", "2B"),
    ("google/gemma-2b-it", "Gemma 2B Instruct", "Gemma", "2B"),
    ("google/gemma-7b", "Gemma 7B", "Gemma", "7B"),
    ("google/gemma-7b-it", "Gemma 7B Instruct", "Gemma", "7B"),
    ("google/gemma-2-2b", "Gemma 2 2B", "Gemma 2", "2B"),
    (
        "google/gemma-2-2b-it",
        "Gemma 2 2B Instruct",
        "Gemma 2",
        "2B",
    ),
    ("google/gemma-2-9b", "Gemma 2 9B", "Gemma 2", "9B"),
    (
        "google/gemma-2-9b-it",
        "Gemma 2 9B Instruct",
        "Gemma 2",
        "9B",
    ),
    ("google/gemma-2-27b", "Gemma 2 27B", "Gemma 2", "27B"),
    ("microsoft/phi-2", "Phi-2 (2.7B)", "Phi", "2.7B"),
    (
        "microsoft/Phi-3-mini-4k-instruct",
        "Phi-3 Mini 4K Instruct",
        "Phi-3",
        "3.8B",
    ),
    (
        "microsoft/Phi-3-mini-128k-instruct",
        "Phi-3 Mini 128K Instruct",
        "Phi-3",
        "3.8B",
    ),
    (
        "microsoft/Phi-3-medium-4k-instruct",
        "Phi-3 Medium 4K Instruct",
        "Phi-3",
        "14B",
    ),
];

/// Which backends run a family: the custom one only knows Llama and Qwen3.
fn backends_for(family: &str) -> Vec<String> {
    match family {
        "SmolLM2" | "Llama" | "Qwen3" => vec!["custom".into(), "hooked".into()],
        _ => vec!["hooked".into()],
    }
}

/// "124M" -> 124_000_000, "1.5B" -> 1_500_000_000.
fn parse_params(size: &str) -> Option<u64> {
    let (num, unit) = size.split_at(size.len().checked_sub(1)?);
    let mult = match unit {
        "M" => 1e6,
        "B" => 1e9,
        _ => return None,
    };
    Some((num.parse::<f64>().ok()? * mult).round() as u64)
}

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

/// Memory beside the weights (runtime, tokenizer, first buffers).
const OVERHEAD: u64 = 256 << 20;

/// Bytes the weights take under `weights: auto`, and whether that fits in
/// `available`: `params` widened to f32 when auto widens, else `stored`
/// bytes (a file's size, or bf16 as checkpoints on the Hub are published).
fn memory_need(params: Option<u64>, file: Option<u64>, available: u64) -> Option<(u64, bool)> {
    let stored = file.or(params.map(|p| p * 2))?;
    let need = match params {
        Some(p) if logitlens_engine::load::auto_widens(p, 4, available) => p * 4,
        _ => stored,
    };
    Some((need, need + OVERHEAD <= available))
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
    let available = memory::available().unwrap_or(u64::MAX);
    let entry = |id: &str, name: &str, family: &str, size: Option<&str>, source: &str| {
        let local_file = ggufs.contains(id);
        let params = size.and_then(parse_params);
        let bytes = if local_file {
            dir_bytes(&models_dir.join(id))
        } else {
            None
        };
        let need = memory_need(params, bytes, available);
        ModelEntry {
            id: id.into(),
            name: name.into(),
            family: family.into(),
            size: size.map(Into::into),
            params,
            bytes,
            memory_bytes: need.map(|n| n.0),
            fits: need.map(|n| n.1),
            cached: local_file || cached.contains(id),
            source: source.into(),
            backends: backends_for(family),
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
    fn sizes_parse_to_parameter_counts() {
        assert_eq!(parse_params("124M"), Some(124_000_000));
        assert_eq!(parse_params("1.5B"), Some(1_500_000_000));
        assert_eq!(parse_params("8x7B"), None);
    }

    #[test]
    fn the_list_covers_every_hooked_family() {
        let list = list();
        for fam in [
            "GPT-2", "Pythia", "Mistral", "Qwen2", "Qwen3", "Gemma", "Gemma 2", "Phi", "Phi-3",
            "Llama", "SmolLM2",
        ] {
            assert!(list.iter().any(|m| m.family == fam), "{fam} missing");
        }
        assert!(list.iter().filter(|m| m.family == "Pythia").count() >= 18);
        let gpt2 = list.iter().find(|m| m.id == "gpt2").unwrap();
        assert_eq!(
            (gpt2.backends.clone(), gpt2.params),
            (vec!["hooked".to_string()], Some(124_000_000))
        );
    }

    #[test]
    fn memory_need_follows_the_auto_rule() {
        let gib = 1u64 << 30;
        // 8B on a 24 GiB machine: the f32 copy (32 GB) is too big, bf16 fits.
        let (need, fits) = memory_need(Some(8_000_000_000), None, 24 * gib).unwrap();
        assert_eq!((need, fits), (16_000_000_000, true));
        // ...and does not on 12 GiB.
        assert!(!memory_need(Some(8_000_000_000), None, 12 * gib).unwrap().1);
        // A small model is widened.
        let (need, _) = memory_need(Some(135_000_000), Some(100 << 20), 24 * gib).unwrap();
        assert_eq!(need, 540_000_000);
        // A quantized file too big to widen takes its own size.
        let (need, _) = memory_need(Some(8_000_000_000), Some(5 * gib), 24 * gib).unwrap();
        assert_eq!(need, 5 * gib);
        assert_eq!(memory_need(None, None, gib), None);
    }

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
