//! Loading by Hub repo id, offline, from a cache laid out as the Hub lays
//! it out: models--org--name/{refs/main, blobs/<hash>, snapshots/<rev>/<file> -> blob}.
//! One test function: it sets process-wide environment variables.

mod common;

use std::path::Path;

use common::*;
use logitlens_engine::{EngineError, LoadedModel, RunRequest};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn lay_out_cache(cache: &Path, repo_folder: &str, src: &Path) {
    let repo = cache.join(repo_folder);
    let snap = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), COMMIT).unwrap();
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        let bytes = std::fs::read(src.join(file)).unwrap();
        // Blobs are named by content hash on the Hub; any unique name works.
        let blob = repo.join("blobs").join(format!("{:016x}", fxhash(&bytes)));
        std::fs::write(&blob, &bytes).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(blob.file_name().unwrap()),
            snap.join(file),
        )
        .unwrap();
    }
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn loads_a_repo_id_from_the_local_hub_cache_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    lay_out_cache(&cache, "models--test-org--tiny-llama", &tiny("llama"));
    std::env::set_var("HF_HUB_CACHE", &cache);
    std::env::set_var("HF_HUB_OFFLINE", "1");

    let req = RunRequest::new("The capital of France is");
    let direct = load_tiny("llama").run(&req).unwrap().answer;
    for spec in [
        "test-org/tiny-llama",
        &format!("test-org/tiny-llama@{COMMIT}"),
        "test-org/tiny-llama@main",
    ] {
        let m = LoadedModel::load(spec, &mut |_| {}).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(m.source.kind, "hub");
        assert_eq!(m.source.location, "test-org/tiny-llama");
        assert_eq!(m.source.commit.as_deref(), Some(COMMIT), "{spec}");
        assert_eq!(m.source.stored_dtype, "F32");
        assert_eq!(m.run(&req).unwrap().answer, direct, "{spec}");
    }

    // Not cached and offline: a clear error naming the repo and the folder.
    let e = LoadedModel::load("test-org/absent", &mut |_| {})
        .err()
        .unwrap();
    assert!(matches!(e, EngineError::NotFound(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("test-org/absent") && msg.contains(&cache.display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
    let e = LoadedModel::load("test-org/tiny-llama@v2", &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("revision v2"), "{e}");

    // HF_HOME/hub is used when HF_HUB_CACHE is not set.
    std::env::remove_var("HF_HUB_CACHE");
    std::env::set_var("HF_HOME", tmp.path());
    assert!(LoadedModel::load("test-org/tiny-llama", &mut |_| {}).is_ok());
}
