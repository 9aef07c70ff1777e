//! SAEs named by a Hub repo and a folder in it (`org/name[@revision]:folder`),
//! read offline from a cache laid out as the Hub lays it out: the same
//! features as the folder read by path, `@revision` as a model takes it,
//! a path that exists here winning over the Hub form, Gemma Scope's hook
//! from the release's layout, SAELens's centring for the repos it centres,
//! `POST /load_sae` through the same code, and what is not cached refused
//! in words naming what was looked for. One test function: it sets
//! process-wide environment variables (and the working folder).

mod common;

use std::path::Path;

use common::saes::*;
use common::*;
use logitlens_engine::sae::{Sae, SaeOptions};
use logitlens_engine::EngineError;
use serde_json::json;

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";
const REPO: &str = "test-org/saes";

fn fixture(name: &str) -> std::path::PathBuf {
    fixtures().join("research/sae/llama").join(name)
}

fn read(spec: &str) -> logitlens_engine::Result<Sae> {
    Sae::read(Path::new(spec), &SaeOptions::default())
}

fn refusal(spec: &str) -> String {
    let e = read(spec).unwrap_err();
    assert!(matches!(e, EngineError::NotFound(_)), "{spec}: {e}");
    e.to_string()
}

/// A Gemma Scope params.npz of `d_in` 64, 128 features.
fn gemma_scope(dir: &Path) {
    let (d, f) = (64, 128);
    write_gemma_scope(
        dir,
        &[
            ("W_enc", tensor(seeded(1, d * f, 0.2), &[d, f])),
            ("W_dec", tensor(seeded(2, f * d, 0.2), &[f, d])),
            ("b_enc", tensor(seeded(3, f, 0.1), &[f])),
            ("b_dec", tensor(seeded(4, d, 0.1), &[d])),
            ("threshold", tensor(seeded(5, f, 0.05), &[f])),
        ],
    );
}

#[test]
fn saes_load_from_the_local_hub_cache_by_repo_and_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let names = [
        "relu_resid_post_1",
        "jumprelu_mlp_out_0",
        "topk_resid_pre_2",
    ];
    for n in names {
        put_in_hub_cache(&cache, REPO, COMMIT, &format!("llama/{n}"), &fixture(n));
    }
    std::env::set_var("HF_HUB_CACHE", &cache);
    std::env::set_var("HF_HUB_OFFLINE", "1");

    // The same files: the same settings and, bit for bit, the same features.
    let x = tensor(seeded(9, 5 * 64, 3.0), &[5, 64]);
    for n in names {
        let by_path = Sae::read(&fixture(n), &SaeOptions::default()).unwrap();
        for spec in [
            format!("{REPO}:llama/{n}"),
            format!("{REPO}@{COMMIT}:llama/{n}"),
            format!("{REPO}@main:llama/{n}/"),
        ] {
            let hub = read(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(hub.name, n, "{spec}");
            assert_eq!(hub.source, format!("{REPO}@{COMMIT}:llama/{n}"), "{spec}");
            assert_eq!(hub.settings, by_path.settings, "{spec}");
            assert_eq!(
                hub.encode(&x).unwrap(),
                by_path.encode(&x).unwrap(),
                "{spec}"
            );
        }
    }

    // Not cached: each refusal names the repo, the revision, the folder's
    // two files and where it looked.
    let e = refusal(&format!("{REPO}:llama/nope"));
    let snapshot = cache
        .join("models--test-org--saes/snapshots")
        .join(COMMIT)
        .display()
        .to_string();
    assert!(
        e.contains("llama/nope/cfg.json") && e.contains("llama/nope/params.npz"),
        "{e}"
    );
    assert!(e.contains(&snapshot) && e.contains("revision main"), "{e}");
    let e = refusal("test-org/absent:layer_0");
    assert!(
        e.contains("test-org/absent") && e.contains("not in the cache"),
        "{e}"
    );
    assert!(e.contains(&cache.display().to_string()), "{e}");
    let e = refusal(&format!("{REPO}@v2:llama/relu_resid_post_1"));
    assert!(e.contains("revision v2"), "{e}");
    // cfg.json cached without its weights.
    let half = tmp.path().join("half");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::copy(
        fixture("relu_resid_post_1").join("cfg.json"),
        half.join("cfg.json"),
    )
    .unwrap();
    put_in_hub_cache(&cache, "test-org/half", COMMIT, "sae", &half);
    let e = refusal("test-org/half:sae");
    assert!(e.contains("sae/sae_weights.safetensors"), "{e}");
    // Neither a path here nor of the Hub form.
    let e = refusal("no/such/folder");
    assert!(e.contains("no such folder"), "{e}");

    // A path that exists here wins: this folder, named as the Hub form,
    // holds the JumpReLU SAE, the cached one the standard one.
    let local = tmp.path().join("work");
    let shadow = local.join(format!("{REPO}:llama/relu_resid_post_1"));
    std::fs::create_dir_all(&shadow).unwrap();
    for f in ["cfg.json", "sae_weights.safetensors"] {
        std::fs::copy(fixture("jumprelu_mlp_out_0").join(f), shadow.join(f)).unwrap();
    }
    let cwd = std::env::current_dir().unwrap();
    std::env::set_current_dir(&local).unwrap();
    let sae = read(&format!("{REPO}:llama/relu_resid_post_1")).unwrap();
    std::env::set_current_dir(cwd).unwrap();
    assert_eq!(sae.hook.to_string(), "blocks.0.hook_mlp_out");
    assert_eq!(sae.source, format!("{REPO}:llama/relu_resid_post_1"));

    // Gemma Scope: the hook from the release's layout, -att refused.
    let gs = tmp.path().join("gs");
    gemma_scope(&gs);
    let folder = "layer_1/width_16k/average_l0_5";
    for (release, hook) in [
        ("res", Some("blocks.1.hook_resid_post")),
        ("mlp", Some("blocks.1.hook_mlp_out")),
        ("att", None),
    ] {
        let repo = format!("google/gemma-scope-2b-pt-{release}");
        put_in_hub_cache(&cache, &repo, COMMIT, folder, &gs);
        let spec = format!("{repo}:{folder}");
        match hook {
            Some(hook) => {
                let sae = read(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
                assert_eq!(sae.hook.to_string(), hook);
                assert_eq!(sae.name, "average_l0_5");
                assert_eq!(sae.settings.format, "gemma_scope");
                assert!(!sae.settings.apply_b_dec_to_input);
            }
            None => {
                let e = read(&spec).unwrap_err().to_string();
                assert!(
                    e.contains("blocks.1.attn.hook_z") && e.contains("not supported"),
                    "{e}"
                );
            }
        }
    }

    // The GPT-2 repos SAELens centres, although their cfg.json does not
    // say so; by path the same folder is not, and an option says otherwise.
    let jb = tmp.path().join("jb");
    let (d, f) = (64, 128);
    write_saelens(
        &jb,
        &json!({"d_in": d, "d_sae": f, "hook_point": "blocks.1.hook_resid_pre",
                "activation_fn_str": "relu", "model_name": "gpt2-small"}),
        &[
            ("W_enc", tensor(seeded(1, d * f, 0.2), &[d, f])),
            ("W_dec", tensor(seeded(2, f * d, 0.2), &[f, d])),
            ("b_enc", tensor(seeded(3, f, 0.1), &[f])),
            ("b_dec", tensor(seeded(4, d, 0.1), &[d])),
        ],
    );
    let repo = "jbloom/GPT2-Small-SAEs-Reformatted";
    put_in_hub_cache(&cache, repo, COMMIT, "blocks.1.hook_resid_pre", &jb);
    let spec = format!("{repo}:blocks.1.hook_resid_pre");
    assert!(read(&spec).unwrap().settings.center_input);
    let off = SaeOptions {
        center_writing_weights: Some(false),
        ..Default::default()
    };
    assert!(
        !Sae::read(Path::new(&spec), &off)
            .unwrap()
            .settings
            .center_input
    );
    assert!(
        !Sae::read(&jb, &SaeOptions::default())
            .unwrap()
            .settings
            .center_input
    );

    // POST /load_sae reads the Hub form through the same code.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = common::server::server_with(|_| {});
        s.load(tiny("llama")).await;
        let (st, v) = s
            .post(
                "/load_sae",
                json!({"saes": [{"path": format!("{REPO}:llama/relu_resid_post_1"), "name": "r"}]}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["saes"][0]["source"],
            format!("{REPO}@{COMMIT}:llama/relu_resid_post_1")
        );
        assert_eq!(v["saes"][0]["hook"], "blocks.1.hook_resid_post");
    });
}
