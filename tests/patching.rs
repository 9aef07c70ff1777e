//! Activation patching: sweeps match PyTorch hooks on HF transformers for
//! every hook and both metrics on the tiny llama and qwen3
//! (tests/fixtures/research/<family>/patch_reference.json, copied from the
//! shared reference), on both backends; and the identities that hold
//! whatever the weights: a prompt patched into itself changes nothing, and
//! patching the one differing token's embedding restores the clean run.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use logitlens_engine::ops::patch::{MetricRequest, PatchRequest, PatchSpec, PATCH_HOOKS};
use logitlens_engine::ops::Operation;
use logitlens_engine::watch::{Stage, Unwatched, Watch};
use logitlens_engine::{EngineError, LoadedModel};
use serde_json::{json, Value};

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-4 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

fn metric(v: &Value) -> MetricRequest {
    match v["type"].as_str().unwrap() {
        "logit_diff" => MetricRequest::LogitDiff {
            correct: v["correct"].clone(),
            wrong: v["wrong"].clone(),
        },
        "prob" => MetricRequest::Prob {
            token: v["token"].clone(),
        },
        other => panic!("{other}"),
    }
}

fn request(clean: &str, corrupted: &str, hook: &str, metric: MetricRequest) -> PatchRequest {
    PatchRequest {
        clean_text: clean.into(),
        corrupted_text: corrupted.into(),
        hook: hook.into(),
        metric,
        positions: None,
        apply_chat_template: false,
    }
}

#[test]
fn sweeps_match_pytorch_on_both_backends() {
    for family in ["llama", "qwen3"] {
        let reference =
            reference_json(&fixtures().join(format!("research/{family}/patch_reference.json")));
        for m in [load_tiny(family), load_hooked(family)] {
            for pair in reference["pairs"].as_array().unwrap() {
                let (clean, corrupted) = (
                    pair["clean"].as_str().unwrap(),
                    pair["corrupted"].as_str().unwrap(),
                );
                for case in pair["metrics"].as_array().unwrap() {
                    for (i, hook) in reference["hooks"].as_array().unwrap().iter().enumerate() {
                        let hook = hook.as_str().unwrap();
                        // Both spellings of the hook name the same sweep.
                        let name = if i % 2 == 0 {
                            hook.to_owned()
                        } else {
                            format!("blocks.{{l}}.hook_{hook}")
                        };
                        let req = request(clean, corrupted, &name, metric(&case["metric"]));
                        let spec = PatchSpec::check(&m, &req).unwrap();
                        assert_eq!(spec.clean, u32s(&pair["ids_clean"]));
                        assert_eq!(spec.corrupted, u32s(&pair["ids_corrupted"]));
                        assert_eq!(
                            spec.positions,
                            u32s(&pair["positions"])
                                .iter()
                                .map(|&p| p as usize)
                                .collect::<Vec<_>>()
                        );
                        let got = m.patch(&spec, &Unwatched).unwrap();
                        let want = &case["results"][hook];
                        let what = format!("{family} {clean:?} {} {hook}", case["metric"]);
                        close(
                            got.clean,
                            want["clean"].as_f64().unwrap(),
                            &format!("{what} clean"),
                        );
                        close(
                            got.corrupted,
                            want["corrupted"].as_f64().unwrap(),
                            &format!("{what} corrupted"),
                        );
                        let normalized = got.normalized();
                        for (l, row) in want["values"].as_array().unwrap().iter().enumerate() {
                            for (j, w) in row.as_array().unwrap().iter().enumerate() {
                                close(
                                    got.values[l][j],
                                    w.as_f64().unwrap(),
                                    &format!("{what} values[{l}][{j}]"),
                                );
                                let wn = &want["normalized"][l][j];
                                match (normalized[l][j], wn.as_f64()) {
                                    (Some(g), Some(w)) => {
                                        close(g, w, &format!("{what} normalized[{l}][{j}]"))
                                    }
                                    (g, w) => assert_eq!(
                                        g.is_none(),
                                        w.is_none(),
                                        "{what} normalized[{l}][{j}]"
                                    ),
                                }
                            }
                        }
                    }
                }
            }
            let unequal = &reference["unequal"];
            let req = request(
                unequal["clean"].as_str().unwrap(),
                unequal["corrupted"].as_str().unwrap(),
                "resid_pre",
                MetricRequest::Prob { token: json!(1) },
            );
            let e = PatchSpec::check(&m, &req).unwrap_err().to_string();
            let (a, b) = (
                unequal["n_clean"].to_string(),
                unequal["n_corrupted"].to_string(),
            );
            assert!(
                e.contains(&a) && e.contains(&b) && e.contains("same number"),
                "{e}"
            );
        }
    }
}

fn spec_of(m: &LoadedModel, hook: &str) -> PatchSpec {
    let metric = MetricRequest::LogitDiff {
        correct: json!(5),
        wrong: json!(9),
    };
    PatchSpec::check(
        m,
        &request(
            "The capital of France is",
            "The capital of Spain is",
            hook,
            metric,
        ),
    )
    .unwrap()
}

/// Identities on every family: a prompt patched into itself gives the clean
/// metric at every layer and position, bit for bit; and when the prompts
/// differ in one token, patching that position's stream entering layer 0
/// gives the clean metric exactly, while other positions do not.
#[test]
fn identities_hold_on_every_family() {
    for family in FAMILIES {
        let m = load_hooked(family);
        for (hook, _) in PATCH_HOOKS {
            let mut spec = spec_of(&m, hook);
            spec.corrupted = spec.clean.clone();
            let got = m.patch(&spec, &Unwatched).unwrap();
            assert_eq!(got.clean, got.corrupted, "{family} {hook}");
            for row in &got.values {
                assert!(
                    row.iter().all(|&v| v == got.clean),
                    "{family} {hook}: {row:?}"
                );
            }
            assert!(got.normalized().iter().flatten().all(Option::is_none));
        }
        let mut spec = spec_of(&m, "resid_pre");
        let t = spec.clean.len();
        let p = t - 2;
        spec.corrupted = spec.clean.clone();
        spec.corrupted[p] = (spec.clean[p] + 1) % m.config().vocab_size as u32;
        let got = m.patch(&spec, &Unwatched).unwrap();
        assert_ne!(
            got.clean, got.corrupted,
            "{family}: the changed token changes the metric"
        );
        assert_eq!(
            got.values[0][p], got.clean,
            "{family}: layer 0, position {p}"
        );
        assert_eq!(
            got.values[0][0], got.corrupted,
            "{family}: an unchanged position"
        );
    }
}

/// The patched runs that resume at one layer go through the model as a
/// batch: on every family and hook, what a sweep gives is what it gives
/// with each run made alone, within 1e-6 (bit for bit as measured).
#[test]
fn batched_sweeps_are_the_runs_made_one_by_one() {
    for family in FAMILIES {
        let m = load_hooked(family);
        for (hook, _) in PATCH_HOOKS {
            let batched = m.patch(&spec_of(&m, hook), &Unwatched).unwrap();
            let alone = PatchSpec {
                max_batch: Some(1),
                ..spec_of(&m, hook)
            };
            let alone = m.patch(&alone, &Unwatched).unwrap();
            let three = PatchSpec {
                max_batch: Some(3),
                ..spec_of(&m, hook)
            };
            let three = m.patch(&three, &Unwatched).unwrap();
            for (runs, what) in [(&alone, "one by one"), (&three, "three at a time")] {
                for (a, b) in batched
                    .values
                    .iter()
                    .flatten()
                    .zip(runs.values.iter().flatten())
                {
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{family} {hook}: {a} batched, {b} {what}"
                    );
                }
            }
        }
    }
}

/// A patched run carries only the positions from its patch on (the earlier
/// ones are the corrupted run's, read from its keys and values): on every
/// family, each value of a sweep is, within 1e-6, the run made whole by
/// `forward_patched` from the corrupted capture with that one activation
/// replaced.
#[test]
fn sweeps_are_the_whole_runs_made_alone() {
    use candle_core::Tensor;
    use logitlens_engine::hooks::{HookKind, InterventionPlan, Patch};
    use logitlens_engine::model::ForwardOptions;
    let opts = ForwardOptions {
        keep_patterns: false,
        watch: &Unwatched,
    };
    for family in FAMILIES {
        let m = load_hooked(family);
        let model = &m.model;
        let n = model.n_layers();
        for (hook, kind) in [
            ("resid_pre", HookKind::ResidPre),
            ("attn_out", HookKind::AttnOut),
            ("mlp_out", HookKind::MlpOut),
        ] {
            let spec = spec_of(&m, hook);
            let swept = m.patch(&spec, &Unwatched).unwrap();
            let plain = InterventionPlan::default();
            let clean = model
                .forward_with(&spec.clean, &plain, None, &opts)
                .unwrap();
            let corrupted = model
                .forward_with(&spec.corrupted, &plain, None, &opts)
                .unwrap();
            let t = spec.clean.len();
            for l in 0..n {
                for (j, &p) in spec.positions.iter().enumerate() {
                    let whole = if kind == HookKind::ResidPre {
                        // The stream entering layer l with row p the clean one.
                        let mut start = corrupted.clone();
                        let rows = |x: &Tensor, a, len| x.narrow(0, a, len).unwrap();
                        let c = &corrupted.resid[l];
                        start.resid[l] = Tensor::cat(
                            &[
                                &rows(c, 0, p),
                                &rows(&clean.resid[l], p, 1),
                                &rows(c, p + 1, t - p - 1),
                            ],
                            0,
                        )
                        .unwrap();
                        model.forward_patched(&spec.corrupted, (l, &start), None, &opts)
                    } else {
                        let source = match kind {
                            HookKind::AttnOut => &clean.attn_out[l],
                            _ => &clean.mlp_out[l],
                        };
                        let patch = Patch {
                            at: kind.at(l),
                            position: p,
                            row: source.narrow(0, p, 1).unwrap(),
                        };
                        model.forward_patched(&spec.corrupted, (l, &corrupted), Some(&patch), &opts)
                    }
                    .unwrap();
                    let last = whole.resid[n].narrow(0, t - 1, 1).unwrap();
                    let logits = model.unembed(&last).unwrap().to_vec2::<f32>().unwrap();
                    let want = spec.metric.of(&logits[0]);
                    let got = swept.values[l][j];
                    assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{family} {hook} layer {l} position {p}: {got} swept, {want} whole"
                    );
                }
            }
        }
    }
}

struct Counting {
    runs: AtomicUsize,
    total: AtomicUsize,
    stop_after: usize,
}

impl Watch for Counting {
    fn cancelled(&self) -> bool {
        self.runs.load(Ordering::Relaxed) >= self.stop_after
    }
    fn progress(&self, stage: Stage, done: usize, total: usize) {
        assert_eq!(
            stage,
            Stage::Patch,
            "only the sweep's own progress is reported"
        );
        self.runs.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }
}

#[test]
fn a_sweep_reports_progress_and_stops_when_asked() {
    let m = load_tiny("llama");
    let mut spec = spec_of(&m, "mlp_out");
    // Positions after the texts differ: a patch before it changes nothing
    // and is not run.
    let t = spec.clean.len();
    spec.positions = vec![t - 2, t - 1];
    let n = m.config().n_layers;
    let all = Counting {
        runs: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
        stop_after: usize::MAX,
    };
    let got = m.patch(&spec, &all).unwrap();
    assert_eq!(got.values.len(), n);
    assert!(got.values.iter().all(|r| r.len() == 2));
    assert_eq!(all.runs.load(Ordering::Relaxed), 2 * n);
    assert_eq!(all.total.load(Ordering::Relaxed), 2 * n);
    // The sweep's runs go as one batch here: it stops between its layers,
    // once a share of its runs is done.
    let stopping = Counting {
        runs: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
        stop_after: 1,
    };
    assert!(matches!(
        m.patch(&spec, &stopping),
        Err(EngineError::Cancelled)
    ));
}

#[test]
fn bad_requests_are_refused_in_words() {
    let m = load_tiny("llama");
    let metric = || MetricRequest::Prob { token: json!(1) };
    let text = "The capital of France is";
    for (req, needle) in [
        (
            request(text, text, "attn_scores", metric()),
            "cannot be patched",
        ),
        (
            request(text, text, "blocks.2.hook_resid_pre", metric()),
            "layer left open",
        ),
        (
            request(
                text,
                text,
                "resid_pre",
                MetricRequest::Prob {
                    token: json!("capital"),
                },
            ),
            "metric.token",
        ),
        (
            request(
                text,
                text,
                "resid_pre",
                MetricRequest::LogitDiff {
                    correct: json!(1),
                    wrong: json!(99999),
                },
            ),
            "metric.wrong",
        ),
        (
            PatchRequest {
                positions: Some(vec![]),
                ..request(text, text, "resid_pre", metric())
            },
            "empty list",
        ),
        (
            PatchRequest {
                positions: Some(vec![40]),
                ..request(text, text, "resid_pre", metric())
            },
            "out of range",
        ),
        (
            PatchRequest {
                positions: Some(vec![1, -12]),
                ..request(text, text, "resid_pre", metric())
            },
            "listed twice",
        ),
    ] {
        let e = PatchSpec::check(&m, &req).unwrap_err().to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    }
    let req = PatchRequest {
        positions: Some(vec![-1, 0]),
        ..request(text, text, "resid_pre", metric())
    };
    let spec = PatchSpec::check(&m, &req).unwrap();
    assert_eq!(spec.positions, vec![spec.clean.len() - 1, 0]);
}

/// A memory budget below what a sweep's one batch needs splits the batch
/// instead of refusing the request: the largest batch that fits, the same
/// values; a budget no batch fits is refused with the numbers.
#[test]
fn a_budget_splits_the_batch_it_cannot_hold() {
    use logitlens_engine::ops::{execute_with, fit_batches, Context, Limits};
    let m = load_hooked("llama");
    let req = request(
        "The capital of France is",
        "The capital of Spain is",
        "attn_out",
        MetricRequest::LogitDiff {
            correct: json!(5),
            wrong: json!(9),
        },
    );
    let whole = PatchSpec::check(&m, &req).unwrap();
    let of = |k: usize| {
        PatchSpec {
            max_batch: Some(k),
            ..whole.clone()
        }
        .cost(&m)
        .bytes()
    };
    assert!(
        of(4) < whole.cost(&m).bytes(),
        "the batch is part of the cost"
    );
    let limits = Limits {
        max_bytes: Some(of(4)),
        ..Limits::none()
    };
    let mut fitted = whole.clone();
    fit_batches(&mut fitted, &m, limits.max_bytes);
    assert_eq!(fitted.max_batch, Some(4));
    let split = execute_with(&m, &req, &limits, &Context::default(), &mut |e| match e {}).unwrap();
    let all = m.patch(&whole, &Unwatched).unwrap();
    assert_eq!(split.values, all.values);
    let tight = Limits {
        max_bytes: Some(of(1) - 1),
        ..Limits::none()
    };
    let e = execute_with(&m, &req, &tight, &Context::default(), &mut |e| match e {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a batch of patched runs"), "{e}");
}
