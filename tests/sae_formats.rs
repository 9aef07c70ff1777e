//! SAE formats and settings, each against a hand computation in f64 from
//! the same weights (SAELens's formulas written out, never the engine's
//! code): centred input on a LayerNorm model (GPT-2) with the mean added
//! back after decoding, and ignored on an RMSNorm model as TransformerLens
//! ignores it; the three input normalisations; configs from before 6.0
//! read to the 6.x settings; bf16 and f16 weights against their widened
//! f32 SAE; Gemma Scope's params.npz. The folders are written here.

mod common;

use std::path::Path;

use candle_core::{DType, Tensor};
use common::saes::*;
use common::*;
use logitlens_engine::hooks::SaeEdit;
use logitlens_engine::ops::sae::SaeSelection;
use logitlens_engine::sae::{Architecture, Normalize, Sae, SaeOptions, SaeSettings, SparseRow};
use logitlens_engine::RunRequest;
use serde_json::{json, Value};

const D: usize = 64;
const F: usize = 128;

/// Seeded weights of a `D → F` SAE, in f32.
struct Weights {
    w_enc: Vec<f32>,
    w_dec: Vec<f32>,
    b_enc: Vec<f32>,
    b_dec: Vec<f32>,
    threshold: Vec<f32>,
}

impl Weights {
    fn seeded(seed: u64) -> Self {
        Weights {
            w_enc: seeded(seed, D * F, 0.25),
            w_dec: seeded(seed + 1, F * D, 0.25),
            b_enc: seeded(seed + 2, F, 0.2),
            b_dec: seeded(seed + 3, D, 0.3),
            threshold: seeded(seed + 4, F, 0.3).iter().map(|v| v.abs()).collect(),
        }
    }

    /// SAELens's tensors, in `dtype`.
    fn tensors(&self, dtype: DType, jumprelu: bool) -> Vec<(&'static str, Tensor)> {
        let t = |v: &[f32], dims: &[usize]| tensor(v.to_vec(), dims).to_dtype(dtype).unwrap();
        let mut out = vec![
            ("W_enc", t(&self.w_enc, &[D, F])),
            ("W_dec", t(&self.w_dec, &[F, D])),
            ("b_enc", t(&self.b_enc, &[F])),
            ("b_dec", t(&self.b_dec, &[D])),
        ];
        if jumprelu {
            out.push(("threshold", t(&self.threshold, &[F])));
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Act {
    Relu,
    Jump,
    TopK(usize),
}

#[derive(Clone, Copy)]
enum Norm {
    None,
    /// expected_average_only_in with factor s, computed as SAELens folds it
    /// into the weights: `W_enc·s`, `W_dec/s`, `b_dec/s`, no normalisation.
    Folded(f64),
    /// `(x − μ)/(σ + 1e-5)` in (σ unbiased), `·σ + μ` out.
    Layer,
    /// `x·√d/‖x‖` in, `/(√d/‖x‖)` out.
    Constant,
}

/// SAELens's encode and decode of one row, in f64.
struct Hand<'a> {
    w: &'a Weights,
    act: Act,
    apply_b_dec: bool,
    center: bool,
    norm: Norm,
    /// Gemma Scope's embedding SAEs: `W_enc/√d`, `W_dec·√d`.
    embed_scale: bool,
}

struct HandRow {
    pre: Vec<f64>,
    acts: Vec<f64>,
    x_hat: Vec<f64>,
    /// Features whose side of a cut is within rounding (their activation
    /// may go either way): not compared.
    unsure: Vec<bool>,
}

impl Hand<'_> {
    fn row(&self, x: &[f32]) -> HandRow {
        let d = D as f64;
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mean = if self.center {
            x.iter().sum::<f64>() / d
        } else {
            0.0
        };
        let xc: Vec<f64> = x.iter().map(|v| v - mean).collect();
        let (s, b_dec): (f64, Vec<f64>) = match self.norm {
            Norm::Folded(s) => (s, self.w.b_dec.iter().map(|&b| b as f64 / s).collect()),
            _ => (1.0, self.w.b_dec.iter().map(|&b| b as f64).collect()),
        };
        let (normed, out): (Vec<f64>, Box<dyn Fn(f64) -> f64>) = match self.norm {
            Norm::None | Norm::Folded(_) => (xc.clone(), Box::new(|v| v)),
            Norm::Layer => {
                let mu = xc.iter().sum::<f64>() / d;
                let sd = (xc.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (d - 1.0)).sqrt();
                (
                    xc.iter().map(|v| (v - mu) / (sd + 1e-5)).collect(),
                    Box::new(move |v| v * sd + mu),
                )
            }
            Norm::Constant => {
                let c = d.sqrt() / xc.iter().map(|v| v * v).sum::<f64>().sqrt();
                (xc.iter().map(|v| v * c).collect(), Box::new(move |v| v / c))
            }
        };
        let root = if self.embed_scale { d.sqrt() } else { 1.0 };
        let x_in: Vec<f64> = normed
            .iter()
            .zip(&b_dec)
            .map(|(v, b)| if self.apply_b_dec { v - b } else { *v })
            .collect();
        let pre: Vec<f64> = (0..F)
            .map(|f| {
                let dot: f64 = (0..D)
                    .map(|i| x_in[i] * self.w.w_enc[i * F + f] as f64)
                    .sum();
                dot * s / root + self.w.b_enc[f] as f64
            })
            .collect();
        let mut unsure = vec![false; F];
        let acts: Vec<f64> = match self.act {
            Act::Relu => pre.iter().map(|&p| p.max(0.0)).collect(),
            Act::Jump => pre
                .iter()
                .zip(&self.w.threshold)
                .enumerate()
                .map(|(f, (&p, &th))| {
                    unsure[f] = (p - th as f64).abs() < 1e-4;
                    if p > th as f64 && p > 0.0 {
                        p
                    } else {
                        0.0
                    }
                })
                .collect(),
            Act::TopK(k) => {
                let mut order: Vec<usize> = (0..F).collect();
                order.sort_by(|&a, &b| pre[b].total_cmp(&pre[a]));
                let cut = (pre[order[k - 1]] + pre[order[k]]) / 2.0;
                let mut a = vec![0.0; F];
                for &f in &order[..k] {
                    a[f] = pre[f].max(0.0);
                }
                for f in 0..F {
                    unsure[f] = (pre[f] - cut).abs() < 1e-4;
                }
                a
            }
        };
        let x_hat: Vec<f64> = (0..D)
            .map(|i| {
                let sum: f64 = (0..F)
                    .map(|f| acts[f] * self.w.w_dec[f * D + i] as f64)
                    .sum();
                out(sum * root / s + b_dec[i]) + mean
            })
            .collect();
        HandRow {
            pre,
            acts,
            x_hat,
            unsure,
        }
    }
}

fn act_of(r: &SparseRow, f: usize) -> f32 {
    r.ids
        .iter()
        .position(|&id| id as usize == f)
        .map_or(0.0, |i| r.acts[i])
}

fn near(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want.abs().max(1.0)
}

/// `sae`'s features, reconstruction error and splice of `x`'s rows are the
/// hand computation's.
fn check(what: &str, sae: &Sae, hand: &Hand, x: &Tensor) {
    let rows: Vec<Vec<f32>> = x.to_dtype(DType::F32).unwrap().to_vec2().unwrap();
    let got = sae.encode(x).unwrap();
    let spliced: Vec<Vec<f32>> = sae
        .edit(&SaeEdit::Splice, x)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2()
        .unwrap();
    let mut active = 0;
    for (t, ((g, xr), sp)) in got.iter().zip(&rows).zip(&spliced).enumerate() {
        let h = hand.row(xr);
        assert!(
            h.unsure.iter().filter(|u| **u).count() <= 2,
            "{what} pos {t}: too many features at a cut for this seed"
        );
        for f in (0..F).filter(|&f| !h.unsure[f]) {
            let a = act_of(g, f) as f64;
            assert!(
                near(a, h.acts[f], 2e-5),
                "{what} pos {t} feature {f}: {a} vs {} (pre {})",
                h.acts[f],
                h.pre[f]
            );
        }
        active += h.acts.iter().filter(|a| **a > 0.0).count();
        if h.unsure.iter().any(|u| *u) {
            continue;
        }
        let err = xr
            .iter()
            .zip(&h.x_hat)
            .map(|(&a, b)| (a as f64 - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            near(g.recon_error as f64, err, 1e-4),
            "{what} pos {t}: error {} vs {err}",
            g.recon_error
        );
        for (i, (&s, &w)) in sp.iter().zip(&h.x_hat).enumerate() {
            assert!(
                near(s as f64, w, 2e-5),
                "{what} pos {t} dim {i}: splice {s} vs {w}"
            );
        }
    }
    // Not vacuous: some features are active and some are not.
    assert!(
        active > 0 && active < rows.len() * F,
        "{what}: {active} active"
    );
}

fn cfg_6x(hook: &str, extra: Value) -> Value {
    let mut c = json!({"d_in": D, "d_sae": F, "architecture": "standard",
        "apply_b_dec_to_input": true, "normalize_activations": "none",
        "metadata": {"sae_lens_version": "6.54.0", "hook_name": hook}});
    for (k, v) in extra.as_object().unwrap() {
        if k == "metadata" {
            for (mk, mv) in v.as_object().unwrap() {
                c["metadata"][mk] = mv.clone();
            }
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Seeded activations `[t, D]` with a mean per row far from 0.
fn activations(seed: u64, t: usize) -> Tensor {
    let v: Vec<f32> = seeded(seed, t * D, 2.0)
        .into_iter()
        .enumerate()
        .map(|(i, v)| v + 0.7 * ((i / D) as f32 + 1.0))
        .collect();
    tensor(v, &[t, D])
}

fn read(dir: &Path, opts: &SaeOptions) -> Sae {
    Sae::read(dir, opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[test]
fn centred_input_on_layernorm_and_rmsnorm_models() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = "blocks.1.hook_resid_post";
    let w = Weights::seeded(11);
    let dir = tmp.path().join("centred");
    write_saelens(
        &dir,
        &cfg_6x(
            hook,
            json!({"metadata": {"model_from_pretrained_kwargs": {"center_writing_weights": true}}}),
        ),
        &w.tensors(DType::F32, false),
    );
    let hand = Hand {
        w: &w,
        act: Act::Relu,
        apply_b_dec: true,
        center: true,
        norm: Norm::None,
        embed_scale: false,
    };
    let text = "The capital of France is Paris, and the capital of Spain is";

    // GPT-2 (LayerNorm): the SAE reads x − mean(x) of the hook's state.
    let m = load_hooked("gpt2");
    assert_eq!(m.config().d_model, D);
    let plain = m.run(&RunRequest::new(text)).unwrap();
    let x = plain.state.capture.resid[2].to_dtype(DType::F32).unwrap();
    let rows: Vec<Vec<f32>> = x.to_vec2().unwrap();
    let biggest_mean = rows
        .iter()
        .map(|r| (r.iter().sum::<f32>() / D as f32).abs())
        .fold(0.0, f32::max);
    assert!(
        biggest_mean > 0.05,
        "the state's mean is {biggest_mean}: nothing to centre"
    );
    let sae = read(&dir, &SaeOptions::default());
    assert!(sae.settings.center_input);
    check("gpt2 centred", &sae, &hand, &x);
    // Through the model: the attached SAE's readout is the same.
    let attached = m.attach_saes(vec![sae]).unwrap();
    assert!(attached[0].settings.center_input && attached[0].settings.notes.is_empty());
    let out = m
        .run(&RunRequest {
            sae: Some(SaeSelection::All(true)),
            sae_top_k: Some(0),
            ..RunRequest::new(text)
        })
        .unwrap();
    let readout = &out.answer.sae.unwrap()[0];
    for (t, (pos, r)) in readout.positions.iter().zip(&rows).enumerate() {
        let h = hand.row(r);
        for f in 0..F {
            let a = pos
                .features
                .iter()
                .find(|p| p.id as usize == f)
                .map_or(0.0, |p| p.act as f64);
            assert!(near(a, h.acts[f], 2e-5), "gpt2 run pos {t} #{f}");
        }
    }
    // Uncentred, the same weights read other features: centring mattered.
    let uncentred = Hand {
        center: false,
        ..hand
    };
    let differs = rows.iter().any(|r| {
        let (a, b) = (hand.row(r), uncentred.row(r));
        a.acts
            .iter()
            .zip(&b.acts)
            .any(|(p, q)| (p - q).abs() > 1e-3)
    });
    assert!(differs);

    // A lossless centred SAE (W_enc = [I, −I], W_dec its transpose, no
    // biases) splices back exactly x: the mean it took out is added back.
    let mut eye = vec![0.0f32; D * 2 * D];
    for i in 0..D {
        eye[i * 2 * D + i] = 1.0;
        eye[i * 2 * D + D + i] = -1.0;
    }
    let w_dec = tensor(eye.clone(), &[D, 2 * D])
        .t()
        .unwrap()
        .contiguous()
        .unwrap();
    let exact_dir = tmp.path().join("exact");
    let mut cfg = cfg_6x(
        hook,
        json!({"metadata": {"model_from_pretrained_kwargs": {"center_writing_weights": true}}}),
    );
    cfg["d_sae"] = json!(2 * D);
    write_saelens(
        &exact_dir,
        &cfg,
        &[
            ("W_enc", tensor(eye, &[D, 2 * D])),
            ("W_dec", w_dec),
            ("b_enc", tensor(vec![0.0; 2 * D], &[2 * D])),
            ("b_dec", tensor(vec![0.0; D], &[D])),
        ],
    );
    let exact = read(&exact_dir, &SaeOptions::default());
    let spliced: Vec<Vec<f32>> = exact.edit(&SaeEdit::Splice, &x).unwrap().to_vec2().unwrap();
    for (t, (s, r)) in spliced.iter().zip(&rows).enumerate() {
        let mean = r.iter().sum::<f32>() / D as f32;
        for (i, (a, b)) in s.iter().zip(r).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "pos {t} dim {i}: {a} vs {b}"
            );
        }
        // Its features are the centred state's, split by sign.
        let feats = exact.encode(&x.narrow(0, t, 1).unwrap()).unwrap().remove(0);
        for (id, act) in feats.ids.iter().zip(&feats.acts) {
            let i = *id as usize % D;
            let v = if (*id as usize) < D {
                r[i] - mean
            } else {
                mean - r[i]
            };
            assert!((act - v).abs() <= 1e-5 * v.abs().max(1.0), "pos {t} #{id}");
        }
    }

    // Llama (RMSNorm): TransformerLens does not centre there, so the flag
    // is dropped at attach, with a note, and the SAE reads x as it is.
    let m = load_tiny("llama");
    let attached = m
        .attach_saes(vec![read(&dir, &SaeOptions::default())])
        .unwrap();
    assert!(!attached[0].settings.center_input);
    assert!(
        attached[0]
            .settings
            .notes
            .iter()
            .any(|n| n.contains("RMSNorm")),
        "{:?}",
        attached[0].settings.notes
    );
    let plain = m.run(&RunRequest::new(text)).unwrap();
    let x = plain.state.capture.resid[2].to_dtype(DType::F32).unwrap();
    check(
        "llama, centring dropped",
        &attached[0],
        &Hand {
            center: false,
            ..hand
        },
        &x,
    );
}

#[test]
fn the_three_input_normalisations() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = "blocks.0.hook_resid_pre";
    let w = Weights::seeded(21);
    let x = activations(5, 7);
    let hand = |norm| Hand {
        w: &w,
        act: Act::Relu,
        apply_b_dec: true,
        center: false,
        norm,
        embed_scale: false,
    };
    let folder = |name: &str, normalize: &str| {
        let dir = tmp.path().join(name);
        write_saelens(
            &dir,
            &cfg_6x(hook, json!({"normalize_activations": normalize})),
            &w.tensors(DType::F32, false),
        );
        dir
    };

    // expected_average_only_in: the factor from activation_scaler.json,
    // from norm_scaling_factor, the option over the file; none at all is
    // the input unscaled (SAELens applies nothing then), said in a note.
    let scaled = folder("scaled", "expected_average_only_in");
    let none = read(&scaled, &SaeOptions::default());
    assert_eq!(none.settings.normalize, Normalize::None);
    assert_eq!(none.settings.notes.len(), 1);
    check("no factor", &none, &hand(Norm::None), &x);
    let by_option = SaeOptions {
        norm_scaling_factor: Some(0.37),
        ..Default::default()
    };
    let sae = read(&scaled, &by_option);
    assert_eq!(sae.settings.normalize, Normalize::Scale(0.37));
    check("scale 0.37 by option", &sae, &hand(Norm::Folded(0.37)), &x);
    std::fs::write(
        scaled.join("activation_scaler.json"),
        r#"{"scaling_factor": 2.5}"#,
    )
    .unwrap();
    let sae = read(&scaled, &SaeOptions::default());
    assert_eq!(sae.settings.normalize, Normalize::Scale(2.5));
    check(
        "scale 2.5 from the file",
        &sae,
        &hand(Norm::Folded(2.5)),
        &x,
    );
    let sae = read(&scaled, &by_option);
    check(
        "the option over the file",
        &sae,
        &hand(Norm::Folded(0.37)),
        &x,
    );
    // The decoder row SAELens holds after folding: W_dec[f]/s.
    let row = sae.decoder_row(5).unwrap();
    for (i, v) in row.iter().enumerate() {
        assert!((v - w.w_dec[5 * D + i] / 0.37).abs() <= 1e-6, "dim {i}");
    }

    let sae = read(&folder("ln", "layer_norm"), &SaeOptions::default());
    assert_eq!(sae.settings.normalize, Normalize::LayerNorm);
    check("layer_norm", &sae, &hand(Norm::Layer), &x);
    let sae = read(
        &folder("const", "constant_norm_rescale"),
        &SaeOptions::default(),
    );
    assert_eq!(sae.settings.normalize, Normalize::ConstantNorm);
    check("constant_norm_rescale", &sae, &hand(Norm::Constant), &x);
}

/// Settings without what only says where they came from.
fn comparable(s: &SaeSettings) -> SaeSettings {
    SaeSettings {
        model_name: None,
        notes: Vec::new(),
        ..s.clone()
    }
}

#[test]
fn configs_from_before_6_0_read_as_the_6x_form() {
    let tmp = tempfile::tempdir().unwrap();
    let w = Weights::seeded(31);
    let x = activations(6, 6);
    let cases: [(&str, Value, Value, Act, bool); 4] = [
        (
            "standard, hook_point",
            json!({"d_in": D, "d_sae": F, "hook_point": "blocks.1.hook_mlp_out",
                   "activation_fn_str": "relu", "normalize_activations": false,
                   "model_name": "tiny"}),
            cfg_6x("blocks.1.hook_mlp_out", json!({})),
            Act::Relu,
            false,
        ),
        (
            "jumprelu, hook_name at the top, log_threshold",
            json!({"d_in": D, "d_sae": F, "hook_name": "blocks.2.hook_resid_mid",
                   "architecture": "jumprelu", "apply_b_dec_to_input": false,
                   "sae_lens_version": "5.9.1"}),
            cfg_6x(
                "blocks.2.hook_resid_mid",
                json!({"architecture": "jumprelu", "apply_b_dec_to_input": false}),
            ),
            Act::Jump,
            true,
        ),
        (
            "topk, activation_fn_kwargs",
            json!({"d_in": D, "d_sae": F, "hook_point": "blocks.0.hook_attn_out",
                   "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 9}}),
            cfg_6x(
                "blocks.0.hook_attn_out",
                json!({"architecture": "topk", "k": 9}),
            ),
            Act::TopK(9),
            false,
        ),
        (
            "normalize_activations true, centred kwargs at the top",
            json!({"d_in": D, "d_sae": F, "hook_point": "blocks.1.hook_resid_pre",
                   "normalize_activations": true,
                   "model_from_pretrained_kwargs": {"center_writing_weights": true}}),
            cfg_6x(
                "blocks.1.hook_resid_pre",
                json!({"normalize_activations": "expected_average_only_in",
                       "metadata": {"model_from_pretrained_kwargs": {"center_writing_weights": true}}}),
            ),
            Act::Relu,
            false,
        ),
    ];
    for (i, (what, old, new, act, jump)) in cases.into_iter().enumerate() {
        let old_dir = tmp.path().join(format!("old{i}"));
        let new_dir = tmp.path().join(format!("new{i}"));
        let mut tensors = w.tensors(DType::F32, jump);
        write_saelens(&new_dir, &new, &tensors);
        if jump {
            // Older JumpReLU files keep the threshold's logarithm.
            let th = tensors.pop().unwrap().1;
            tensors.push(("log_threshold", th.log().unwrap()));
        }
        write_saelens(&old_dir, &old, &tensors);
        let opts = SaeOptions {
            norm_scaling_factor: Some(1.5),
            ..Default::default()
        };
        let (o, n) = (read(&old_dir, &opts), read(&new_dir, &opts));
        assert_eq!(comparable(&o.settings), comparable(&n.settings), "{what}");
        let centred = i == 3;
        let hand = Hand {
            w: &w,
            act,
            apply_b_dec: !jump,
            center: centred,
            norm: if centred {
                Norm::Folded(1.5)
            } else {
                Norm::None
            },
            embed_scale: false,
        };
        check(&format!("{what}, before 6.0"), &o, &hand, &x);
        check(&format!("{what}, 6.x"), &n, &hand, &x);
    }
}

#[test]
fn half_precision_weights_read_as_their_widened_f32_sae() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = "blocks.1.hook_resid_post";
    let x = activations(7, 8);
    for (dtype, name) in [(DType::BF16, "bf16"), (DType::F16, "f16")] {
        let w = Weights::seeded(41);
        for jump in [false, true] {
            let cfg = cfg_6x(
                hook,
                json!({"architecture": if jump { "jumprelu" } else { "standard" }}),
            );
            let stored = w.tensors(dtype, jump);
            let widened: Vec<(&str, Tensor)> = stored
                .iter()
                .map(|(k, t)| (*k, t.to_dtype(DType::F32).unwrap()))
                .collect();
            let (half_dir, wide_dir) = (
                tmp.path().join(format!("{name}{jump}")),
                tmp.path().join(format!("{name}{jump}-f32")),
            );
            write_saelens(&half_dir, &cfg, &stored);
            write_saelens(&wide_dir, &cfg, &widened);
            let (h, f) = (
                read(&half_dir, &SaeOptions::default()),
                read(&wide_dir, &SaeOptions::default()),
            );
            assert_eq!(h.dtype(), dtype, "{name}");
            assert_eq!(f.dtype(), DType::F32);
            assert_eq!(h.bytes(), (2 * D * F * 2 + 4 * (3 * F + D)) as u64);
            // The widened SAE against the hand computation from the very
            // values stored, then the stored one against it.
            let values = |k: &str| -> Vec<f32> {
                let t = &widened.iter().find(|(n, _)| *n == k).unwrap().1;
                t.flatten_all().unwrap().to_vec1().unwrap()
            };
            let exact = Weights {
                w_enc: values("W_enc"),
                w_dec: values("W_dec"),
                b_enc: values("b_enc"),
                b_dec: values("b_dec"),
                threshold: if jump {
                    values("threshold")
                } else {
                    w.threshold.clone()
                },
            };
            let hand = Hand {
                w: &exact,
                act: if jump { Act::Jump } else { Act::Relu },
                apply_b_dec: true,
                center: false,
                norm: Norm::None,
                embed_scale: false,
            };
            check(&format!("{name} widened"), &f, &hand, &x);
            check(&format!("{name} as stored"), &h, &hand, &x);
            let (a, b) = (h.encode(&x).unwrap(), f.encode(&x).unwrap());
            for (t, (p, q)) in a.iter().zip(&b).enumerate() {
                assert_eq!(p.ids, q.ids, "{name} pos {t}");
                for (u, v) in p.acts.iter().zip(&q.acts) {
                    assert!((u - v).abs() <= 1e-5 * v.abs().max(1.0), "{name} pos {t}");
                }
                assert!(
                    (p.recon_error - q.recon_error).abs() <= 1e-5 * q.recon_error.max(1.0),
                    "{name} pos {t}"
                );
            }
        }
    }
}

#[test]
fn gemma_scope_params_npz() {
    let tmp = tempfile::tempdir().unwrap();
    let w = Weights::seeded(51);
    let x = activations(8, 6);
    let npz = |dir: &Path| {
        let tensors = w.tensors(DType::F32, true);
        write_gemma_scope(dir, &tensors);
    };
    let hand = Hand {
        w: &w,
        act: Act::Jump,
        apply_b_dec: false,
        center: false,
        norm: Norm::None,
        embed_scale: false,
    };
    // Outside the release's layout the hook must be given.
    let plain = tmp.path().join("my_sae");
    npz(&plain);
    let e = Sae::read(&plain, &SaeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("hook="), "{e}");
    let opts = SaeOptions {
        hook: Some("blocks.2.hook_mlp_out".into()),
        ..Default::default()
    };
    let sae = read(&plain, &opts);
    assert_eq!(sae.hook.to_string(), "blocks.2.hook_mlp_out");
    assert_eq!(sae.settings.architecture, Architecture::JumpRelu);
    assert!(!sae.settings.apply_b_dec_to_input);
    assert_eq!(sae.settings.format, "gemma_scope");
    check("gemma scope", &sae, &hand, &x);

    // In the layout: the hook from it; the embedding SAE's weights scaled
    // by √d as SAELens scales them.
    let res = tmp
        .path()
        .join("gemma-scope-2b-pt-res/layer_2/width_16k/average_l0_9");
    npz(&res);
    let sae = read(&res, &SaeOptions::default());
    assert_eq!(sae.hook.to_string(), "blocks.2.hook_resid_post");
    check("gemma scope res", &sae, &hand, &x);
    let emb = tmp
        .path()
        .join("gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6");
    npz(&emb);
    let sae = read(&emb, &SaeOptions::default());
    assert_eq!(sae.hook.to_string(), "hook_embed");
    check(
        "gemma scope embedding",
        &sae,
        &Hand {
            embed_scale: true,
            ..hand
        },
        &x,
    );
}
