//! Interventions and attention blocking on the tiny checkpoints: property
//! tests of what each operation must do, and the errors the original turned
//! into silent no-ops or crashes.

mod common;

use std::sync::OnceLock;

use common::*;
use logitlens_engine::{InterventionConfig, Interventions, LoadedModel, RunRequest};
use proptest::prelude::*;

fn llama() -> &'static LoadedModel {
    static M: OnceLock<LoadedModel> = OnceLock::new();
    M.get_or_init(|| load_tiny("llama"))
}

fn qwen3() -> &'static LoadedModel {
    static M: OnceLock<LoadedModel> = OnceLock::new();
    M.get_or_init(|| load_tiny("qwen3"))
}

const TEXT: &str = "The capital of France is";

fn op(kind: &str) -> InterventionConfig {
    InterventionConfig {
        kind: kind.into(),
        ..Default::default()
    }
}

fn req(interventions: Vec<(&str, Vec<InterventionConfig>)>) -> RunRequest {
    let mut r = RunRequest::new(TEXT);
    r.interventions = interventions
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect::<Interventions>();
    r.return_attention = true;
    r
}

fn err(m: &LoadedModel, r: &RunRequest) -> String {
    match m.run(r) {
        Ok(_) => panic!("request should have been refused"),
        Err(e) => {
            assert!(e.is_client_error(), "{e} should be a client error");
            e.to_string()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Zeroing `hook_resid_post` at layer l makes that layer's lens row
    /// uniform (1/V) at every touched position, and only there.
    #[test]
    fn zeroing_a_block_output_gives_a_uniform_lens_row(layer in 0usize..3, pos in proptest::option::of(-13i64..13), qwen in any::<bool>()) {
        let m = if qwen { qwen3() } else { llama() };
        let t = m.tokenize(TEXT, false).unwrap().len() as i64;
        let pos = pos.filter(|p| *p >= -t && *p < t);
        let key = format!("blocks.{layer}.hook_resid_post");
        let out = m.run(&req(vec![(&key, vec![InterventionConfig { token_index: pos, ..op("zero") }])])).unwrap();
        let v = m.info().vocab_size as f64;
        // Row layer+1 shows block `layer`'s output ("Final Output" for the last).
        let row = &out.answer.logit_lens[layer + 1];
        let touched = pos.map(|p| ((p + t) % t) as usize);
        for (i, preds) in row.predictions.iter().enumerate() {
            let uniform = preds.iter().all(|p| (p.prob - 1.0 / v).abs() < 1e-7);
            if touched.is_none_or(|p| p == i) {
                prop_assert!(uniform, "position {} of row {} is not uniform", i, row.layer_name);
            } else {
                prop_assert!(!uniform, "position {} of row {} was not touched but is uniform", i, row.layer_name);
            }
        }
    }

    /// Scaling by 1 changes nothing, bit for bit, at any hook.
    #[test]
    fn scale_by_one_is_the_identity(key in prop::sample::select(vec!["embeddings", "layer_0_attn_output", "layer_1_mlp_output", "layer_2_output", "all_layers_output"]), pos in proptest::option::of(0i64..13)) {
        let base = llama().run(&req(vec![])).unwrap();
        let mut out = llama().run(&req(vec![(key, vec![InterventionConfig { value: Some(1.0), token_index: pos, ..op("scale") }])])).unwrap();
        // Scaling by 1 still applies (and says so), changing nothing.
        prop_assert!(!out.answer.receipts.is_empty());
        prop_assert!(out.answer.receipts.iter().all(|r| r.delta_norm == Some(0.0)));
        out.answer.receipts.clear();
        prop_assert_eq!(&out.answer, &base.answer);
    }

    /// Blocking (query, key) zeroes exactly that pattern entry at that layer;
    /// the rest of the query row renormalises, other rows and earlier layers
    /// are untouched, and every row still sums to 1.
    #[test]
    fn blocking_removes_exactly_one_entry(layer in 0usize..3, q in 1usize..13, k_frac in 0.0f64..1.0, qwen in any::<bool>()) {
        let m = if qwen { qwen3() } else { llama() };
        let t = m.tokenize(TEXT, false).unwrap().len();
        let q = 1 + q % (t - 1);
        let k = ((q as f64) * k_frac) as usize; // 0 <= k < q: the row keeps other keys
        let base = m.run(&req(vec![])).unwrap();
        let blk = InterventionConfig { source_tokens: Some(vec![k as i64]), target_tokens: Some(vec![q as i64]), ..op("block_attention") };
        let key = format!("layer_{layer}_attention");
        let out = m.run(&req(vec![(&key, vec![blk])])).unwrap();
        let (a, b) = (out.attention().unwrap().unwrap(), base.attention().unwrap().unwrap());
        let (a, b) = (a.as_nested().unwrap(), b.as_nested().unwrap());
        for l in 0..3 {
            for h in 0..a[l].len() {
                for qi in 0..t {
                    let sum: f32 = a[l][h][qi].iter().sum();
                    prop_assert!((sum - 1.0).abs() < 1e-5, "row sum {}", sum);
                    if l < layer || (l == layer && qi != q) {
                        prop_assert_eq!(&a[l][h][qi], &b[l][h][qi]);
                    }
                }
                if l == layer {
                    let (row, base_row) = (&a[l][h][q], &b[l][h][q]);
                    prop_assert_eq!(row[k], 0.0);
                    let kept = 1.0 - base_row[k];
                    for j in 0..t {
                        if j != k {
                            prop_assert!((row[j] - base_row[j] / kept).abs() < 1e-5);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_fully_blocked_row_attends_to_nothing_and_stays_finite() {
    // Query 0 can only read key 0: blocking it leaves no key at all.
    let blk = InterventionConfig {
        source_tokens: Some(vec![0]),
        target_tokens: Some(vec![0]),
        ..op("block_attention")
    };
    let out = llama()
        .run(&req(vec![("all_layers_attention", vec![blk])]))
        .unwrap();
    let att = out.attention().unwrap().unwrap();
    let att = att.as_nested().unwrap();
    for layer in att {
        for head in layer {
            assert!(
                head[0].iter().all(|&v| v == 0.0),
                "fully blocked row must be all zeros"
            );
            assert!((head[1].iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
    // Its attention output is zero, so the post-attention state equals the input.
    let c = &out.state.capture;
    assert_eq!(flat(&c.attn_out[0].narrow(0, 0, 1).unwrap()), vec![0.0; 64]);
    for row in &out.answer.logit_lens {
        assert!(row.predictions.iter().flatten().all(|p| p.prob.is_finite()));
    }
    // The JSON body serialises (the original answered a plain-text 500).
    let patterns = &out.state.capture.patterns;
    let body = logitlens_engine::InferenceResponse::new(out.answer.clone(), patterns).unwrap();
    serde_json::to_string(&body).unwrap();
}

#[test]
fn two_keys_on_one_hook_both_apply_in_request_order() {
    let v: Vec<f64> = (0..64).map(|i| (i as f64) / 64.0).collect();
    let scale = InterventionConfig {
        value: Some(2.0),
        ..op("scale")
    };
    let add = InterventionConfig {
        vector: Some(v.clone()),
        ..op("add")
    };
    // Same effect; the receipts name the keys each came from, so they differ.
    let run = |r: Vec<(&str, Vec<InterventionConfig>)>| {
        let mut out = llama().run(&req(r)).unwrap().answer;
        out.receipts.clear();
        out
    };
    // The original kept only one of two keys reaching the same hook.
    let two_keys = run(vec![
        ("all_layers_output", vec![scale.clone()]),
        ("blocks.1.hook_resid_post", vec![add.clone()]),
    ]);
    let spelled_out = run(vec![
        ("layer_0_output", vec![scale.clone()]),
        ("layer_1_output", vec![scale.clone(), add.clone()]),
        ("layer_2_output", vec![scale.clone()]),
    ]);
    assert_eq!(two_keys, spelled_out);
    let reversed_keys = run(vec![
        ("blocks.1.hook_resid_post", vec![add.clone()]),
        ("all_layers_output", vec![scale.clone()]),
    ]);
    let reversed_spelled = run(vec![
        ("layer_0_output", vec![scale.clone()]),
        ("layer_1_output", vec![add.clone(), scale.clone()]),
        ("layer_2_output", vec![scale.clone()]),
    ]);
    assert_eq!(reversed_keys, reversed_spelled);
    assert_ne!(two_keys, reversed_keys, "(x*2)+v and (x+v)*2 differ");
    // Numerically, [scale, add] at one hook is x*2 + v at every position.
    let single = llama()
        .run(&req(vec![("layer_1_output", vec![scale, add])]))
        .unwrap();
    let plain = llama().run(&req(vec![])).unwrap();
    let (x, y) = (
        flat(&plain.state.capture.resid[2]),
        flat(&single.state.capture.resid[2]),
    );
    for (i, (a, b)) in x.iter().zip(&y).enumerate() {
        let want = a * 2.0 + v[i % 64] as f32;
        assert!((b - want).abs() < 1e-5, "element {i}: {b} vs {want}");
    }
}

#[test]
fn add_with_a_vector_adds_it_at_the_hook() {
    let v: Vec<f64> = (0..64).map(|i| ((i % 7) as f64) - 3.0).collect();
    let out = llama()
        .run(&req(vec![(
            "embeddings",
            vec![InterventionConfig {
                vector: Some(v.clone()),
                token_index: Some(-1),
                ..op("add")
            }],
        )]))
        .unwrap();
    let plain = llama().run(&req(vec![])).unwrap();
    let t = out.state.ids.len();
    let (a, b) = (
        flat(&out.state.capture.resid[0]),
        flat(&plain.state.capture.resid[0]),
    );
    for p in 0..t {
        for j in 0..64 {
            let want = b[p * 64 + j] + if p == t - 1 { v[j] as f32 } else { 0.0 };
            assert!((a[p * 64 + j] - want).abs() < 1e-6);
        }
    }
}

/// Every rule the original broke silently is a 4xx-class error that says
/// what to fix.
#[test]
fn invalid_interventions_are_refused_with_a_reason() {
    let m = llama();
    type Case = (Vec<(&'static str, Vec<InterventionConfig>)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![("layer_1_output", vec![op("scale")])],
            "needs a numeric `value`",
        ),
        (
            vec![("layer_3_output", vec![op("zero")])],
            "layer 3 is out of range; this model has 3 layers (0..2)",
        ),
        (
            vec![("layer_99_attention", vec![op("block_attention")])],
            "layer 99 is out of range",
        ),
        (
            vec![(
                "layer_0_output",
                vec![InterventionConfig {
                    token_index: Some(13),
                    ..op("zero")
                }],
            )],
            "token_index 13 is out of range for a 13-token input",
        ),
        (
            vec![(
                "layer_0_output",
                vec![InterventionConfig {
                    token_index: Some(-14),
                    ..op("zero")
                }],
            )],
            "token_index -14",
        ),
        (
            vec![("layer_0_output", vec![op("flip")])],
            "unknown type \"flip\"",
        ),
        (
            vec![("layer_0_outputs", vec![op("zero")])],
            "unknown intervention key",
        ),
        (vec![("mystery", vec![op("zero")])], "accepted keys"),
        (
            vec![("layer_0_output", vec![op("block_attention")])],
            "applies to attention keys",
        ),
        (
            vec![(
                "layer_0_attention",
                vec![InterventionConfig {
                    value: Some(0.5),
                    ..op("scale")
                }],
            )],
            "stream operation",
        ),
        (
            vec![(
                "layer_0_attention",
                vec![InterventionConfig {
                    source_tokens: Some(vec![0]),
                    ..op("block_attention")
                }],
            )],
            "non-empty `target_tokens`",
        ),
        (
            vec![(
                "all_layers_attention",
                vec![InterventionConfig {
                    source_tokens: Some(vec![1, 2]),
                    target_tokens: Some(vec![4, 13]),
                    ..op("block_attention")
                }],
            )],
            "target_tokens 13 is out of range",
        ),
        (
            vec![(
                "layer_0_attention",
                vec![InterventionConfig {
                    source_tokens: Some(vec![5]),
                    target_tokens: Some(vec![2]),
                    ..op("block_attention")
                }],
            )],
            "source token 5 comes after target token 2",
        ),
        (
            vec![(
                "layer_0_output",
                vec![InterventionConfig {
                    vector: Some(vec![1.0; 3]),
                    ..op("add")
                }],
            )],
            "hidden size is 64",
        ),
        (
            vec![("layer_0_output", vec![op("add")])],
            "`add` needs a `vector`",
        ),
        (vec![("layer_0_output", vec![])], "empty list"),
    ];
    for (interventions, want) in cases {
        let e = err(m, &req(interventions));
        assert!(e.contains(want), "expected {want:?} in {e:?}");
    }
}

#[test]
fn other_request_errors() {
    let m = llama();
    let e = "sideways"
        .parse::<logitlens_engine::LensType>()
        .unwrap_err();
    assert_eq!(
        e,
        "unknown lens_type \"sideways\" (known: block_output, post_attention, combined)"
    );
    // qwen3's tokenizer adds no BOS, so "" has no tokens.
    let e = err(qwen3(), &RunRequest::new(""));
    assert!(e.contains("no tokens"), "{e}");
    // With BOS an empty text is one token and runs.
    assert_eq!(m.run(&RunRequest::new("")).unwrap().state.ids, vec![3]);
}

#[test]
fn chat_template_is_rendered_and_encoded_without_extra_specials() {
    let mut r = RunRequest::new("Hello there");
    r.apply_chat_template = true;
    let out = llama().run(&r).unwrap();
    // ChatML with no BOS from the template, and none added by encode.
    assert_eq!(out.answer.input_tokens[0], "<|im_start|>");
    assert_eq!(out.answer.input_tokens.last().unwrap(), "\n");
    assert!(
        !out.state.ids.contains(&3),
        "no <s> added to a templated prompt"
    );
}

/// A watched run reports every layer and stops between layers once told
/// to: the server cancels a run whose client went away this way.
#[test]
fn a_watched_run_reports_progress_and_stops_when_cancelled() {
    use logitlens_engine::watch::{Stage, Watch};
    use std::sync::Mutex;
    struct Stop {
        after: usize,
        seen: Mutex<Vec<(Stage, usize, usize)>>,
    }
    impl Watch for Stop {
        fn cancelled(&self) -> bool {
            let seen = self.seen.lock().unwrap();
            seen.iter().filter(|(s, _, _)| *s == Stage::Forward).count() > self.after
        }
        fn progress(&self, stage: Stage, done: usize, total: usize) {
            self.seen.lock().unwrap().push((stage, done, total));
        }
    }
    let m = llama();
    let spec = |text: &str| {
        let req = RunRequest::new(text);
        let ids = m.tokenize(&req.text, false).unwrap();
        logitlens_engine::RunSpec::new(m, &req, ids).unwrap()
    };
    let all = Stop {
        after: usize::MAX,
        seen: Mutex::new(Vec::new()),
    };
    m.run_watched(spec(TEXT), &[], &all).unwrap();
    let seen = all.seen.into_inner().unwrap();
    let forward: Vec<usize> = seen
        .iter()
        .filter(|(s, _, _)| *s == Stage::Forward)
        .map(|(_, d, t)| {
            assert_eq!(*t, 3);
            *d
        })
        .collect();
    assert_eq!(forward, vec![0, 1, 2, 3]);
    assert!(seen.iter().any(|(s, _, _)| *s == Stage::Lens));
    let stop = Stop {
        after: 1,
        seen: Mutex::new(Vec::new()),
    };
    let e = m.run_watched(spec(TEXT), &[], &stop).err().unwrap();
    assert!(matches!(e, logitlens_engine::EngineError::Cancelled), "{e}");
    assert_eq!(stop.seen.lock().unwrap().len(), 2, "stopped before layer 2");
}

/// Scales `blocks.1.hook_resid_post` by a half (or keeps everything, or
/// returns the wrong shape), and records where it was asked.
struct Halve {
    keep: bool,
    wrong_shape: bool,
    seen: std::sync::Mutex<Vec<String>>,
}

impl logitlens_engine::nn::Rewrite for Halve {
    fn wants(&self, at: logitlens_engine::hooks::HookPoint) -> bool {
        self.seen.lock().unwrap().push(at.to_string());
        at.to_string() == "blocks.1.hook_resid_post"
    }

    fn rewrite(
        &self,
        _: logitlens_engine::hooks::HookPoint,
        x: &candle_core::Tensor,
        positions: std::ops::Range<usize>,
    ) -> logitlens_engine::Result<Option<candle_core::Tensor>> {
        assert_eq!(positions, 0..x.dim(0).unwrap());
        Ok(match (self.keep, self.wrong_shape) {
            (true, _) => None,
            (_, true) => Some(x.narrow(0, 0, 1)?),
            _ => Some((x * 0.5)?),
        })
    }
}

/// A caller's code at a hook (`run_with_hooks` in Python) changes that
/// activation and what follows it, exactly: what came before is the plain
/// run's to the bit, the rewritten state is the plain one halved, and
/// keeping it changes nothing.
#[test]
fn code_at_a_hook_rewrites_exactly_that_activation() {
    use logitlens_engine::hooks::InterventionPlan;
    use logitlens_engine::model::ForwardOptions;
    use logitlens_engine::watch::Unwatched;
    let m = llama();
    let ids = m.tokenize(TEXT, false).unwrap();
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    let plan = InterventionPlan::default();
    let plain = m.model.forward_with(&ids, &plan, None, &opts).unwrap();
    let halve = |keep, wrong_shape| Halve {
        keep,
        wrong_shape,
        seen: Default::default(),
    };
    let h = halve(false, false);
    let got = m.model.forward_rewritten(&ids, &plan, &h, &opts).unwrap();
    for l in 0..=1 {
        assert_eq!(flat(&got.resid[l]), flat(&plain.resid[l]), "resid_pre {l}");
        assert_eq!(
            flat(&got.mlp_out[l]),
            flat(&plain.mlp_out[l]),
            "mlp_out {l}"
        );
    }
    assert_eq!(flat(&got.resid[2]), flat(&(&plain.resid[2] * 0.5).unwrap()));
    assert_ne!(flat(&got.resid[3]), flat(&plain.resid[3]));
    let seen = h.seen.lock().unwrap().clone();
    for name in [
        "hook_embed",
        "blocks.0.hook_attn_out",
        "blocks.2.hook_resid_pre",
    ] {
        assert!(
            seen.iter().any(|s| s == name),
            "{name} was not offered: {seen:?}"
        );
    }
    let kept = m
        .model
        .forward_rewritten(&ids, &plan, &halve(true, false), &opts)
        .unwrap();
    assert_eq!(flat_all(&kept.resid), flat_all(&plain.resid));
    let Err(err) = m
        .model
        .forward_rewritten(&ids, &plan, &halve(false, true), &opts)
    else {
        panic!("a rewrite of the wrong shape was taken");
    };
    let err = err.to_string();
    assert!(
        err.contains("blocks.1.hook_resid_post") && err.contains("shape"),
        "{err}"
    );
}
