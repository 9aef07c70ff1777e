//! Generation through a KV cache: running a sequence in pieces through the
//! cache gives what one forward pass over all of it gives, in every family;
//! greedy generation gives transformers' `generate` ids
//! (tests/fixtures/research/<family>/generate_reference.json, copied from the
//! shared reference) and the lens over them its rows; sampling is seeded;
//! sampled corpora start where the model's documents start.

mod common;

use std::sync::Mutex;

use candle_core::Tensor;
use common::*;
use logitlens_engine::hooks::{self, InterventionPlan};
use logitlens_engine::model::ForwardOptions;
use logitlens_engine::ops::decode::{
    document_start, generate, generate_with, sample_corpus, GenerateOptions, Sampling, Step,
};
use logitlens_engine::watch::{Stage, Unwatched, Watch};
use logitlens_engine::{
    BackendKind, Capture, EngineError, InterventionConfig, Interventions, KvCache, LoadedModel,
    RunRequest, RunSpec,
};
use serde_json::Value;

const TOL: f64 = 1e-5;

const TEXT: &str = "The capital of France is Paris, and the capital of Italy is";

fn opts(keep_patterns: bool) -> ForwardOptions<'static> {
    ForwardOptions {
        keep_patterns,
        watch: &Unwatched,
    }
}

/// The largest difference between a run of positions `offset..offset+t`
/// through a cache and the same rows of a full run: every captured state,
/// the pattern rows (new queries over all keys) and the last row's logits.
fn chunk_diff(m: &LoadedModel, full: &Capture, chunk: &Capture, offset: usize) -> f64 {
    let t = chunk.resid[0].dim(0).unwrap();
    let rows = |x: &Tensor| x.narrow(0, offset, t).unwrap();
    let mut worst = 0f64;
    for (a, b) in [
        (&full.resid, &chunk.resid),
        (&full.post_attn, &chunk.post_attn),
        (&full.attn_out, &chunk.attn_out),
        (&full.mlp_out, &chunk.mlp_out),
    ] {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            worst = worst.max(max_abs_diff(&rows(x), y));
        }
    }
    assert_eq!(full.patterns.len(), chunk.patterns.len());
    for (p, q) in full.patterns.iter().zip(&chunk.patterns) {
        let want = p
            .narrow(1, offset, t)
            .unwrap()
            .narrow(2, 0, offset + t)
            .unwrap();
        worst = worst.max(max_abs_diff(&want, q));
    }
    let n = m.model.n_layers();
    let last = |c: &Capture, row: usize| {
        m.model
            .unembed(&c.resid[n].narrow(0, row, 1).unwrap())
            .unwrap()
    };
    worst.max(max_abs_diff(
        &last(full, offset + t - 1),
        &last(chunk, t - 1),
    ))
}

/// `ids` run as pieces of the given sizes through one cache, each against
/// the full run: the largest difference.
fn pieces_diff(m: &LoadedModel, ids: &[u32], sizes: &[usize], plan: &InterventionPlan) -> f64 {
    let full = m.model.forward_with(ids, plan, None, &opts(true)).unwrap();
    let mut cache = KvCache::new(&m.model);
    let mut worst = 0f64;
    let mut at = 0;
    for &s in sizes {
        let chunk = m
            .model
            .forward_cached(&ids[at..at + s], plan, &mut cache, &opts(true))
            .unwrap();
        worst = worst.max(chunk_diff(m, &full, &chunk, at));
        at += s;
        assert_eq!(cache.len(), at);
    }
    assert_eq!(at, ids.len());
    worst
}

#[test]
fn the_cache_changes_nothing_in_any_family() {
    let plan = InterventionPlan::default();
    for family in FAMILIES {
        let m = load_hooked(family);
        let ids = m.tokenize(TEXT, false).unwrap();
        let t = ids.len();
        assert!(t > 10, "{family}: {t} tokens");
        // A prompt, then one token at a time.
        let mut singles = vec![5];
        singles.resize(t - 4, 1);
        // A prompt, then pieces of 3 (and what is left).
        let mut threes = vec![4];
        while threes.iter().sum::<usize>() < t {
            threes.push(3.min(t - threes.iter().sum::<usize>()));
        }
        let a = pieces_diff(&m, &ids, &singles, &plan);
        let b = pieces_diff(&m, &ids, &threes, &plan);
        eprintln!("{family}: one at a time {a:.1e}, in threes {b:.1e}");
        assert!(a < TOL && b < TOL, "{family}: {a} {b}");
    }
}

fn op(kind: &str) -> InterventionConfig {
    InterventionConfig {
        kind: kind.into(),
        ..Default::default()
    }
}

/// One plan over a prefill and single steps acts as it does over the
/// whole sequence: operations at one position apply in the run computing
/// it, those on all positions in every run, blocked pairs in the run of
/// their query; receipts name absolute positions.
#[test]
fn interventions_apply_at_absolute_positions_through_a_cache() {
    for family in ["llama", "gpt2"] {
        let m = load_hooked(family);
        let ids = m.tokenize(TEXT, false).unwrap();
        let t = ids.len();
        let d = m.config().d_model;
        let mut iv = Interventions::new();
        iv.insert(
            "layer_1_output".into(),
            vec![InterventionConfig {
                value: Some(0.5),
                token_index: Some(7),
                ..op("scale")
            }],
        );
        iv.insert(
            "blocks.0.hook_resid_mid".into(),
            vec![InterventionConfig {
                vector: Some((0..d).map(|i| (i as f64 * 0.37).sin()).collect()),
                ..op("add")
            }],
        );
        iv.insert(
            "layer_0_attention".into(),
            vec![InterventionConfig {
                source_tokens: Some(vec![1, 2]),
                target_tokens: Some(vec![6, 9]),
                ..op("block_attention")
            }],
        );
        if family == "gpt2" {
            iv.insert(
                "hook_pos_embed".into(),
                vec![InterventionConfig {
                    token_index: Some(8),
                    ..op("zero")
                }],
            );
        }
        let plan = hooks::plan(&iv, m.model.n_layers(), d, t).unwrap();
        let mut sizes = vec![5];
        sizes.resize(t - 4, 1);
        let worst = pieces_diff(&m, &ids, &sizes, &plan);
        assert!(worst < TOL, "{family}: {worst}");
        // The plan did something: the run without it differs.
        let plain = m
            .model
            .forward(&ids, &InterventionPlan::default(), None)
            .unwrap();
        let with = m.model.forward(&ids, &plan, None).unwrap();
        assert!(max_abs_diff(&plain.resid[3], &with.resid[3]) > 1e-3);

        // Receipts: per run, the positions it computed.
        let mut cache = KvCache::new(&m.model);
        let mut seen: Vec<(String, String, Vec<usize>)> = Vec::new();
        for (at, s) in [(0, 5), (5, 2), (7, t - 7)] {
            let c = m
                .model
                .forward_cached(&ids[at..at + s], &plan, &mut cache, &opts(false))
                .unwrap();
            seen.extend(c.receipts.into_iter().map(|r| (r.key, r.hook, r.positions)));
        }
        let positions = |key: &str| -> Vec<Vec<usize>> {
            seen.iter()
                .filter(|(k, _, _)| k == key)
                .map(|(_, _, p)| p.clone())
                .collect()
        };
        assert_eq!(positions("layer_1_output"), vec![vec![7]]);
        assert_eq!(
            positions("blocks.0.hook_resid_mid"),
            vec![(0..5).collect::<Vec<_>>(), vec![5, 6], (7..t).collect()]
        );
        assert_eq!(positions("layer_0_attention"), vec![vec![6], vec![9]]);
        if family == "gpt2" {
            assert_eq!(positions("hook_pos_embed"), vec![vec![8]]);
        }
    }
}

#[test]
fn a_cache_belongs_to_one_model_and_survives_a_failed_run() {
    let llama = load_tiny("llama");
    let qwen3 = load_tiny("qwen3");
    let ids = llama.tokenize(TEXT, false).unwrap();
    let plan = InterventionPlan::default();
    let mut cache = KvCache::new(&qwen3.model);
    let e = llama
        .model
        .forward_cached(&ids, &plan, &mut cache, &opts(false))
        .err()
        .unwrap();
    assert!(
        e.is_client_error() && e.to_string().contains("another model"),
        "{e}"
    );

    // A run cancelled after its first layer has written that layer's keys;
    // the cache still holds what it held, and continues as if it had not run.
    struct CancelAfter(Mutex<usize>);
    impl Watch for CancelAfter {
        fn cancelled(&self) -> bool {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            *n > 2
        }
    }
    let m = &llama;
    let mut cache = KvCache::new(&m.model);
    m.model
        .forward_cached(&ids[..6], &plan, &mut cache, &opts(false))
        .unwrap();
    let cancel = CancelAfter(Mutex::new(0));
    let stop = ForwardOptions {
        keep_patterns: false,
        watch: &cancel,
    };
    let e = m
        .model
        .forward_cached(&ids[6..9], &plan, &mut cache, &stop)
        .err()
        .unwrap();
    assert!(matches!(e, EngineError::Cancelled), "{e}");
    assert_eq!(cache.len(), 6);
    let full = m.model.forward(&ids, &plan, None).unwrap();
    let rest = m
        .model
        .forward_cached(&ids[6..], &plan, &mut cache, &opts(true))
        .unwrap();
    let worst = chunk_diff(m, &full, &rest, 6);
    assert!(worst < TOL, "{worst}");
    // Truncating goes back to a prefix: the same continuation again.
    cache.truncate(6);
    let again = m
        .model
        .forward_cached(&ids[6..], &plan, &mut cache, &opts(true))
        .unwrap();
    assert_eq!(flat(&again.resid[3]), flat(&rest.resid[3]));
    assert!(cache.bytes() > 0);
}

#[test]
fn learned_positions_and_the_token_limit_count_the_cache() {
    let m = load_hooked("gpt2");
    let plan = InterventionPlan::default();
    let mut cache = KvCache::new(&m.model);
    let ids = vec![5u32; 250];
    m.model
        .forward_cached(&ids, &plan, &mut cache, &opts(false))
        .unwrap();
    let e = m
        .model
        .forward_cached(&ids[..7], &plan, &mut cache, &opts(false))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("257 positions") && e.contains("256"), "{e}");
    assert_eq!(m.model.max_positions(), Some(256));
    let e = generate(&m, &ids, &GenerateOptions::greedy(7), &Unwatched)
        .unwrap_err()
        .to_string();
    assert!(e.contains("257") && e.contains("256"), "{e}");
}

#[test]
fn a_sliding_window_counts_the_cache() {
    let dir = tiny("mistral");
    let mut cfg: Value = reference_json(&dir.join("config.json"));
    cfg["sliding_window"] = 8.into();
    let cfg = BackendKind::Hooked
        .config_from_hf_json(&cfg.to_string())
        .unwrap();
    let form = logitlens_engine::nn::Form::Widened(candle_core::DType::F64);
    let model = logitlens_engine::load::transformer_from_safetensors(
        cfg,
        &[dir.join("model.safetensors")],
        form,
    )
    .unwrap();
    assert_eq!(model.max_positions(), Some(8));
    let plan = InterventionPlan::default();
    let mut cache = KvCache::new(&model);
    model
        .forward_cached(&[5; 6], &plan, &mut cache, &opts(false))
        .unwrap();
    let e = model
        .forward_cached(&[5; 3], &plan, &mut cache, &opts(false))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("9 positions") && e.contains("window is 8"),
        "{e}"
    );
    model
        .forward_cached(&[5; 2], &plan, &mut cache, &opts(false))
        .unwrap();
    assert_eq!(cache.len(), 8);
}

fn research(family: &str) -> Value {
    reference_json(
        &fixtures()
            .join("research")
            .join(family)
            .join("generate_reference.json"),
    )
}

/// Greedy ids as transformers generates them (the eos stop included), and
/// the logit lens over prompt and generated ids as it draws it.
#[test]
fn greedy_generation_matches_transformers() {
    for family in ["llama", "qwen3"] {
        let m = load_tiny(family);
        let json = research(family);
        assert_eq!(m.eos_ids(), [json["eos_token_id"].as_u64().unwrap() as u32]);
        let steps = json["max_new_tokens"].as_u64().unwrap() as usize;
        let (mut worst, mut stops) = (0f64, 0);
        for (p, prompt) in json["prompts"].as_array().unwrap().iter().enumerate() {
            let text = prompt["text"].as_str().unwrap();
            let prompt_ids = m.tokenize(text, false).unwrap();
            assert_eq!(prompt_ids, u32s(&prompt["prompt_ids"]), "{family} p{p}");
            let out =
                generate(&m, &prompt_ids, &GenerateOptions::greedy(steps), &Unwatched).unwrap();
            assert_eq!(
                out.new_ids(),
                u32s(&prompt["generated_ids"]),
                "{family} p{p}"
            );
            assert_eq!(out.ids, u32s(&prompt["ids"]), "{family} p{p}");
            let stopped = prompt["stopped_at_eos"].as_bool().unwrap();
            assert_eq!(out.stopped_at_eos, stopped, "{family} p{p}");
            stops += usize::from(stopped);

            let spec = RunSpec::new(&m, &RunRequest::new(text), out.ids.clone()).unwrap();
            let rows = m.run_spec(spec, &[]).unwrap().answer.logit_lens;
            let layers = json["layers"].as_array().unwrap();
            assert_eq!(rows.len(), layers.len(), "{family}: rows");
            for (s, row) in rows.iter().enumerate() {
                assert_eq!(row.layer_name, layers[s].as_str().unwrap());
                assert_eq!(row.predictions.len(), out.ids.len());
                for (t, cell) in row.predictions.iter().enumerate() {
                    for (k, pred) in cell.iter().enumerate() {
                        let id = prompt["lens_top5_ids"][s][t][k].as_u64().unwrap() as u32;
                        let prob = prompt["lens_top5_probs"][s][t][k].as_f64().unwrap();
                        worst = worst.max((pred.prob - prob).abs());
                        if pred.id != id {
                            // Near-equal probabilities may swap.
                            let other = cell.iter().find(|c| c.id == id).map(|c| c.prob);
                            assert!(
                                other.is_some_and(|o| (o - prob).abs() < TOL),
                                "{family} p{p} row {s} pos {t} rank {k}: {} vs {id}",
                                pred.id
                            );
                        }
                    }
                }
            }
        }
        eprintln!("{family}: lens over generated ids, max |Δprob| {worst:.1e}");
        assert!(worst < TOL, "{family}: {worst}");
        assert_eq!(stops, 1, "{family}: one prompt stops at eos");
    }
}

/// Each step hands over the forward pass that chose its token: the prompt
/// first, then one position at a time; its logits pick the token.
#[test]
fn each_step_shows_the_pass_that_chose_its_token() {
    let m = load_tiny("llama");
    let prompt = m.tokenize("Once upon a time there was", false).unwrap();
    let mut seen: Vec<(usize, u32, usize)> = Vec::new();
    let out = generate_with(
        &m,
        &prompt,
        &InterventionPlan::default(),
        &GenerateOptions::greedy(5),
        &Unwatched,
        &mut |s: &Step| {
            let best = s
                .logits
                .iter()
                .enumerate()
                .fold(0, |b, (i, &x)| if x > s.logits[b] { i } else { b });
            assert_eq!(Some(best as u32), s.token);
            seen.push((
                s.index,
                s.token.unwrap(),
                s.capture.resid[0].dim(0).unwrap(),
            ));
            Ok(())
        },
    )
    .unwrap();
    let rows: Vec<usize> = seen.iter().map(|&(_, _, r)| r).collect();
    assert_eq!(rows, [prompt.len(), 1, 1, 1, 1]);
    let tokens: Vec<u32> = seen.iter().map(|&(_, t, _)| t).collect();
    assert_eq!(tokens, out.new_ids());
    // An error from the callback stops generation.
    let e = generate_with(
        &m,
        &prompt,
        &InterventionPlan::default(),
        &GenerateOptions::greedy(5),
        &Unwatched,
        &mut |_| Err(EngineError::Cancelled),
    );
    assert!(matches!(e, Err(EngineError::Cancelled)));
}

fn sampled(m: &LoadedModel, prompt: &[u32], temperature: f64, seed: u64) -> Vec<u32> {
    let opts = GenerateOptions {
        max_new_tokens: 12,
        sampling: Sampling::Sample { temperature, seed },
        stop_at_eos: true,
        ..GenerateOptions::greedy(0)
    };
    generate(m, prompt, &opts, &Unwatched).unwrap().ids
}

#[test]
fn sampling_is_seeded_and_cools_to_greedy() {
    for family in ["llama", "qwen3"] {
        let m = load_tiny(family);
        let json = research(family);
        for prompt in json["prompts"].as_array().unwrap() {
            let ids = u32s(&prompt["prompt_ids"]);
            let a = sampled(&m, &ids, 1.0, 7);
            assert_eq!(a, sampled(&m, &ids, 1.0, 7), "{family}: same seed");
            assert_ne!(a, sampled(&m, &ids, 1.0, 8), "{family}: another seed");
            assert_eq!(
                sampled(&m, &ids, 1e-6, 7),
                u32s(&prompt["ids"]),
                "{family}: a very low temperature is greedy"
            );
        }
        for t in [0.0, -0.5, f64::NAN, f64::INFINITY] {
            let opts = GenerateOptions {
                max_new_tokens: 3,
                sampling: Sampling::Sample {
                    temperature: t,
                    seed: 0,
                },
                ..GenerateOptions::greedy(3)
            };
            let e = generate(&m, &[5, 6], &opts, &Unwatched).unwrap_err();
            assert!(
                e.is_client_error() && e.to_string().contains("temperature"),
                "{e}"
            );
        }
    }
}

/// Records progress reports; cancels once `cancel_at` tokens are reported.
struct Recorder {
    seen: Mutex<Vec<(Stage, usize, usize)>>,
    cancel_at: Option<usize>,
}

impl Watch for Recorder {
    fn cancelled(&self) -> bool {
        let seen = self.seen.lock().unwrap();
        self.cancel_at
            .is_some_and(|c| seen.last().is_some_and(|&(_, done, _)| done >= c))
    }
    fn progress(&self, stage: Stage, done: usize, total: usize) {
        self.seen.lock().unwrap().push((stage, done, total));
    }
}

#[test]
fn sampled_corpora_start_where_documents_start() {
    for (family, start) in [("llama", 3u32), ("qwen3", 0)] {
        let m = load_tiny(family);
        assert_eq!(document_start(&m).unwrap(), [start], "{family}");
        let rec = Recorder {
            seen: Mutex::new(Vec::new()),
            cancel_at: None,
        };
        let docs = sample_corpus(&m, 3, 10, 42, &rec).unwrap();
        assert_eq!(docs.len(), 3);
        for d in &docs {
            assert_eq!(d.len(), 10, "{family}");
            assert_eq!(d[0], start, "{family}");
            assert!(d.iter().all(|&i| (i as usize) < m.config().vocab_size));
        }
        assert!(
            docs[0] != docs[1] && docs[1] != docs[2],
            "{family}: {docs:?}"
        );
        assert_eq!(docs, sample_corpus(&m, 3, 10, 42, &Unwatched).unwrap());
        assert_ne!(docs, sample_corpus(&m, 3, 10, 43, &Unwatched).unwrap());
        // Document i does not depend on how many are drawn.
        assert_eq!(docs[..2], sample_corpus(&m, 2, 10, 42, &Unwatched).unwrap());

        // Progress: tokens done of all, never backwards, ending complete.
        let seen = rec.seen.lock().unwrap();
        assert!(seen
            .iter()
            .all(|&(s, _, total)| s == Stage::Sample && total == 27));
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(seen.last().unwrap().1, 27);
    }
    let m = load_tiny("llama");
    let rec = Recorder {
        seen: Mutex::new(Vec::new()),
        cancel_at: Some(12),
    };
    let e = sample_corpus(&m, 3, 10, 42, &rec).unwrap_err();
    assert!(matches!(e, EngineError::Cancelled), "{e}");
    assert!(sample_corpus(&m, 2, 0, 42, &Unwatched).is_err());
    assert_eq!(sample_corpus(&m, 2, 1, 42, &Unwatched).unwrap(), [[3], [3]]);
}

/// Where eos ids come from: generation_config.json over config.json in a
/// folder, the tokenizer metadata in a GGUF file.
#[test]
fn eos_ids_follow_the_generation_config() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(tiny("llama").join(f), dir.path().join(f)).unwrap();
    }
    let load = || LoadedModel::load(dir.path().to_str().unwrap(), &mut |_| {}).unwrap();
    assert_eq!(load().eos_ids(), [0]);
    let gen = dir.path().join("generation_config.json");
    std::fs::write(&gen, r#"{"bos_token_id": 3, "eos_token_id": [2, 0]}"#).unwrap();
    assert_eq!(load().eos_ids(), [2, 0]);
    std::fs::write(&gen, r#"{"eos_token_id": 2}"#).unwrap();
    assert_eq!(load().eos_ids(), [2]);
    // A generation config naming no eos leaves config.json's.
    std::fs::write(&gen, r#"{"do_sample": false}"#).unwrap();
    assert_eq!(load().eos_ids(), [0]);
    // Ids that cannot be read do not stop the model from loading (only
    // generation needs them): config.json's are taken.
    std::fs::write(&gen, r#"{"eos_token_id": "</s>"}"#).unwrap();
    assert_eq!(load().eos_ids(), [0]);
    std::fs::write(&gen, "not json").unwrap();
    assert_eq!(load().eos_ids(), [0]);

    // The GGUF writer of the tests names id 2 (as the tokenizer's eos).
    let path = dir.path().join("tiny.gguf");
    common::gguf::write_gguf(
        &tiny("llama"),
        &path,
        candle_core::quantized::GgmlDType::F32,
    );
    let g = LoadedModel::load(path.to_str().unwrap(), &mut |_| {}).unwrap();
    assert_eq!(g.eos_ids(), [2]);
    assert_eq!(document_start(&g).unwrap(), [3]);
}
