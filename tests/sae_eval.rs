//! The SAE evaluation (eval-sae, /eval_sae) against runs made by hand:
//! its cross-entropies, KLs and explained variance are recomputed here
//! from ordinary runs with the splice or the zeroing as interventions
//! (full logits, log-softmax in f64), and an SAE that reconstructs exactly
//! costs nothing. The feature's corpus scan is checked against the
//! feature's activations read run by run.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use logitlens_engine::hooks::{InterventionConfig, Interventions};
use logitlens_engine::ops::corpus::Corpus;
use logitlens_engine::ops::eval_sae::{EvalSaeRequest, SaeQuality};
use logitlens_engine::ops::sae::SaeSelection;
use logitlens_engine::ops::sae_corpus::SaeCorpusRequest;
use logitlens_engine::ops::{execute, RunOutput};
use logitlens_engine::sae::{Architecture, Normalize, Sae, SaeOptions, SaeSettings, SaeTensors};
use logitlens_engine::{LoadedModel, RunRequest};

const DOCS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France and a city of art.",
    "One two three four five six seven eight nine ten.",
];
const HOOK: &str = "blocks.1.hook_resid_post";
const SAE: &str = "relu_resid_post_1";

/// An SAE with `W_enc = [I | −I]`, `W_dec = [I; −I]`, no biases: its
/// features are `relu(±x)` and it reconstructs `x` exactly.
fn exact(d: usize) -> Sae {
    let eye = Tensor::eye(d, DType::F32, &Device::Cpu).unwrap();
    let settings = SaeSettings {
        architecture: Architecture::Standard,
        d_in: d,
        d_sae: 2 * d,
        hook: HOOK.into(),
        apply_b_dec_to_input: true,
        normalize: Normalize::None,
        center_input: false,
        enc_scale: 1.0,
        dec_scale: 1.0,
        model_name: None,
        format: "saelens",
        notes: vec![],
    };
    let t = SaeTensors {
        w_enc: Tensor::cat(&[&eye, &eye.neg().unwrap()], 1).unwrap(),
        w_dec: Tensor::cat(&[&eye, &eye.neg().unwrap()], 0).unwrap(),
        b_enc: vec![0.0; 2 * d],
        b_dec: vec![0.0; d],
        threshold: None,
    };
    Sae::from_parts("exact".into(), "test".into(), settings, t).unwrap()
}

fn model() -> LoadedModel {
    let m = load_tiny("llama");
    let dir = fixtures().join("research/sae/llama").join(SAE);
    let d = m.config().d_model;
    m.attach_saes(vec![
        Sae::read(&dir, &SaeOptions::default()).unwrap(),
        exact(d),
    ])
    .unwrap();
    m
}

fn evaluate(m: &LoadedModel, exclude_special: bool) -> Vec<SaeQuality> {
    let report = execute(
        m,
        &EvalSaeRequest {
            corpus: Corpus::Text(DOCS.join("\n")),
            max_tokens: 64,
            saes: None,
            exclude_special,
        },
    )
    .unwrap();
    assert_eq!(report.documents, 3);
    report.saes
}

fn op(kind: &str, token_index: Option<i64>) -> InterventionConfig {
    let mut cfg: InterventionConfig =
        serde_json::from_value(serde_json::json!({ "type": kind })).unwrap();
    if kind == "sae_splice" {
        cfg.sae = Some(SAE.into());
    }
    cfg.token_index = token_index;
    cfg
}

fn run(m: &LoadedModel, text: &str, ops: Vec<InterventionConfig>) -> RunOutput {
    let mut iv = Interventions::new();
    if !ops.is_empty() {
        iv.insert(HOOK.into(), ops);
    }
    m.run(&RunRequest {
        interventions: iv,
        ..RunRequest::new(text)
    })
    .unwrap()
}

fn log_softmax(logits: &Tensor) -> Vec<Vec<f64>> {
    logits
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
        .iter()
        .map(|r| {
            let max = r.iter().fold(f64::MIN, |a, &x| a.max(x as f64));
            let z = max + r.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
            r.iter().map(|&x| x as f64 - z).collect()
        })
        .collect()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

/// By hand, over `DOCS`: (CE clean, CE changed, KL, Σ‖x − x̂‖², Σx, Σ‖x‖²,
/// positions) with `change(text, ids)` giving the changed run's
/// interventions, position 0 (BOS) left out of every measure.
#[allow(clippy::type_complexity)]
fn by_hand(
    m: &LoadedModel,
    change: impl Fn(usize) -> Vec<InterventionConfig>,
) -> (f64, f64, f64, f64, Vec<f64>, f64, usize) {
    let (mut ce0, mut ce1, mut kl, mut resid, mut sq, mut n, mut n_ce) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0usize, 0usize);
    let mut sum_x = vec![0.0; m.config().d_model];
    for text in DOCS {
        let clean = run(m, text, vec![]);
        let ids = clean.state.ids.clone();
        let bos = m.tokenizer.leading_special_ids().unwrap();
        assert!(bos.contains(&ids[0]), "the tiny llama's tokenizer adds BOS");
        assert!(ids[1..]
            .iter()
            .all(|i| !bos.contains(i) && !m.eos_ids().contains(i)));
        let changed = run(m, text, change(ids.len()));
        let (p, q) = (
            log_softmax(&clean.state.logits),
            log_softmax(&changed.state.logits),
        );
        let (x, x_hat) = (
            rows(&clean.state.capture.resid[2]),
            rows(&changed.state.capture.resid[2]),
        );
        for t in 1..ids.len() {
            if t + 1 < ids.len() {
                ce0 -= p[t][ids[t + 1] as usize];
                ce1 -= q[t][ids[t + 1] as usize];
                n_ce += 1;
            }
            kl += p[t]
                .iter()
                .zip(&q[t])
                .map(|(a, b)| a.exp() * (a - b))
                .sum::<f64>();
            for (k, (a, b)) in x[t].iter().zip(&x_hat[t]).enumerate() {
                resid += (a - b).powi(2);
                sum_x[k] += a;
                sq += a * a;
            }
            n += 1;
        }
    }
    let n_f = n as f64;
    (
        ce0 / n_ce as f64,
        ce1 / n_ce as f64,
        kl / n_f,
        resid,
        sum_x,
        sq,
        n,
    )
}

fn near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: {got} against {want} by hand"
    );
}

#[test]
fn eval_sae_measures_what_runs_made_by_hand_measure() {
    let m = model();
    for exclude_special in [true, false] {
        let q = evaluate(&m, exclude_special);
        let (sae, exact) = (&q[0], &q[1]);
        assert_eq!((sae.name.as_str(), exact.name.as_str()), (SAE, "exact"));

        // The splice as interventions: every position, or all but BOS.
        let splice = |t: usize| -> Vec<InterventionConfig> {
            if exclude_special {
                (1..t as i64).map(|p| op("sae_splice", Some(p))).collect()
            } else {
                vec![op("sae_splice", None)]
            }
        };
        let (ce0, ce1, kl, _, _, _, n) = by_hand(&m, splice);
        near("clean CE", sae.ce_clean, ce0, 1e-5);
        near("spliced CE", sae.ce_spliced, ce1, 1e-5);
        near("ΔCE", sae.delta_ce, ce1 - ce0, 1e-5);
        near("KL", sae.kl, kl, 1e-5);

        // Zeroing the hook, every position: SAELens's zero ablation.
        let (_, ce_zero, kl_zero, _, _, _, _) = by_hand(&m, |_| vec![op("zero", None)]);
        near("zero-ablated CE", sae.ce_zero_ablated, ce_zero, 1e-5);
        near("zero-ablated KL", sae.kl_zero_ablated, kl_zero, 1e-5);
        near(
            "loss recovered",
            sae.ce_loss_score.unwrap(),
            (ce_zero - ce1) / (ce_zero - ce0),
            1e-4,
        );

        // Explained variance from the reconstruction the splice writes
        // (every position spliced, so x̂ is the SAE's at each of them).
        let (_, _, _, resid, sum_x, sq, n2) = by_hand(&m, |_| vec![op("sae_splice", None)]);
        assert_eq!(n, n2);
        let mean_sq: f64 = sum_x.iter().map(|s| (s / n as f64).powi(2)).sum();
        near(
            "explained variance",
            sae.explained_variance,
            1.0 - resid / (sq - n as f64 * mean_sq),
            1e-4,
        );
        near(
            "MSE",
            sae.mse,
            resid / n as f64 / m.config().d_model as f64,
            1e-4,
        );

        // An SAE that reconstructs exactly costs nothing.
        assert!(exact.delta_ce.abs() < 1e-5, "{exact:?}");
        assert!(exact.kl.abs() < 1e-6, "{exact:?}");
        near("exact EV", exact.explained_variance, 1.0, 1e-6);
        assert!(exact.mse < 1e-10, "{exact:?}");
        near("exact recovered", exact.ce_loss_score.unwrap(), 1.0, 1e-5);
        // relu(x) and relu(−x) cover each nonzero coordinate once.
        near("exact L0", exact.mean_l0, m.config().d_model as f64, 1e-9);
        assert_eq!(exact.dead_features, 0);
    }
}

#[test]
fn eval_sae_and_the_corpus_scan_refuse_in_words() {
    let m = model();
    let err = |r: logitlens_engine::Result<_>| -> String {
        match r {
            Ok(()) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    let eval = |saes: Option<Vec<String>>| {
        execute(
            &m,
            &EvalSaeRequest {
                corpus: Corpus::Text("a b c".into()),
                max_tokens: 16,
                saes,
                exclude_special: true,
            },
        )
        .map(|_| ())
    };
    let e = err(eval(Some(vec!["nope".into()])));
    assert!(
        e.contains("no SAE named \"nope\"") && e.contains(SAE),
        "{e}"
    );
    let bare = load_tiny("llama");
    let e = err(execute(
        &bare,
        &EvalSaeRequest {
            corpus: Corpus::Text("a b c".into()),
            max_tokens: 16,
            saes: None,
            exclude_special: true,
        },
    )
    .map(|_| ()));
    assert!(e.contains("none is attached"), "{e}");
    let scan = |feature: u32, contexts: usize, window: usize| {
        execute(
            &m,
            &SaeCorpusRequest {
                sae: SAE.into(),
                feature,
                corpus: Corpus::Text("a b c".into()),
                max_tokens: 16,
                contexts,
                window,
            },
        )
        .map(|_| ())
    };
    let e = err(scan(256, 10, 8));
    assert!(
        e.contains("feature 256 is out of range") && e.contains("0..255"),
        "{e}"
    );
    let e = err(scan(1, 0, 8));
    assert!(e.contains("contexts is 1 to 100"), "{e}");
    let e = err(scan(1, 10, 65));
    assert!(e.contains("window is 0 to 64"), "{e}");
}

#[test]
fn the_corpus_scan_finds_where_a_feature_fires_most() {
    let m = model();
    // The feature firing most at the last position of the first document.
    let first = m
        .run(&RunRequest {
            sae: Some(SaeSelection::Names(vec![SAE.into()])),
            ..RunRequest::new(DOCS[0])
        })
        .unwrap();
    let feature = first.answer.sae.unwrap()[0]
        .positions
        .last()
        .unwrap()
        .features[0]
        .id;
    // Its activation at every position of every document, run by run.
    let mut all = Vec::new();
    let mut docs_ids = Vec::new();
    for (d, text) in DOCS.iter().enumerate() {
        let out = m
            .run(&RunRequest {
                sae: Some(SaeSelection::Names(vec![SAE.into()])),
                sae_top_k: Some(0),
                ..RunRequest::new(*text)
            })
            .unwrap();
        for (p, pos) in out.answer.sae.unwrap()[0].positions.iter().enumerate() {
            let act = pos
                .features
                .iter()
                .find(|f| f.id == feature)
                .map_or(0.0, |f| f.act);
            all.push((act, d, p));
        }
        docs_ids.push(out.state.ids.clone());
    }
    let report = execute(
        &m,
        &SaeCorpusRequest {
            sae: SAE.into(),
            feature,
            corpus: Corpus::Text(DOCS.join("\n")),
            max_tokens: 64,
            contexts: 4,
            window: 2,
        },
    )
    .unwrap();
    let fires = all.iter().filter(|a| a.0 > 0.0).count();
    assert_eq!(report.tokens, all.len());
    assert_eq!(report.fires, fires);
    assert!((report.frequency - fires as f64 / all.len() as f64).abs() < 1e-12);
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    assert!((report.max_act - all[0].0).abs() <= 1e-5 * all[0].0.max(1.0));
    assert_eq!(report.contexts.len(), 4.min(fires));
    for (c, want) in report.contexts.iter().zip(&all) {
        assert_eq!((c.document, c.position), (want.1, want.2));
        assert!((c.act - want.0).abs() <= 1e-5 * want.0.max(1.0));
        let ids = &docs_ids[c.document];
        let lo = c.position.saturating_sub(2);
        assert_eq!(c.highlight, c.position - lo);
        assert_eq!(
            c.tokens[c.highlight],
            m.tokenizer.decode_one(ids[c.position]).unwrap()
        );
        assert_eq!(c.tokens.len(), (c.position + 3).min(ids.len()) - lo);
    }
}
