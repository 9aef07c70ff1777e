//! The Jacobian lens against TransformerLens 4.3's `JacobianLens`
//! (tests/fixtures/research/jlens, copied from the shared reference; its
//! README says how they were made): the `.pt` files it saves read to their
//! float16 values exactly, its readout's rows (top-5 ids equal,
//! probabilities within 1e-5), its steering, ablation and swap (the final
//! output's top 5 within 1e-4); the identity matrix reproduces the logit
//! lens bit for bit on every family; lenses that do not fit, and
//! operations it cannot do, are refused in words.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use common::*;
use logitlens_engine::hooks::Interventions;
use logitlens_engine::lens::{JacobianLens, Lens};
use logitlens_engine::{LoadedModel, RunRequest};
use serde_json::{json, Value};

fn jlens_dir(family: &str) -> PathBuf {
    fixtures().join("research").join("jlens").join(family)
}

fn interventions(v: Value) -> Interventions {
    serde_json::from_value(v).unwrap()
}

/// `fit_f32.npz`'s matrices rounded to float16, as the `.pt` stores them.
fn fp16_fit(family: &str) -> Vec<Vec<f32>> {
    let mut npz = Npz::open(&jlens_dir(family).join("fit_f32.npz"));
    ["J0", "J1"]
        .iter()
        .map(|k| {
            npz.f32(k)
                .iter()
                .map(|&x| half::f16::from_f32(x).to_f32())
                .collect()
        })
        .collect()
}

fn matrix(lens: &JacobianLens, layer: usize) -> Vec<f32> {
    flat(lens.matrix(layer).unwrap())
}

#[test]
fn the_pt_files_transformer_lens_saves_read_to_their_fp16_values() {
    for family in ["llama", "qwen3"] {
        let want = fp16_fit(family);
        for file in ["jlens.pt", "jlens_bare.pt"] {
            let lens = JacobianLens::load(&jlens_dir(family).join(file)).unwrap();
            assert_eq!(lens.source_layers, vec![0, 1], "{family} {file}");
            assert_eq!((lens.d_model, lens.n_prompts), (64, 12), "{family} {file}");
            for (l, w) in want.iter().enumerate() {
                assert_eq!(&matrix(&lens, l), w, "{family} {file}: J{l}");
            }
            if file == "jlens_bare.pt" {
                assert!(lens.metadata.is_empty(), "{:?}", lens.metadata);
                continue;
            }
            let m = &lens.metadata;
            assert_eq!(lens.model_name(), Some(format!("tiny/{family}").as_str()));
            assert_eq!(m["model_revision"], Value::Null);
            assert_eq!(m["target_layer"], json!(2));
            assert_eq!(m["transformer_lens_fit"], json!(true));
            assert_eq!(
                m["processing"],
                json!({"compatibility_mode": false, "weight_basis": "raw_huggingface"})
            );
            assert_eq!(m["skip_first_positions"], json!(4));
        }
    }
}

/// A family's reference readout and interventions, one check per prompt.
struct Reference {
    json: Value,
    npz: ndarray_npy::NpzReader<std::fs::File>,
}

impl Reference {
    fn open(family: &str) -> Self {
        let dir = jlens_dir(family);
        let file = std::fs::File::open(dir.join("reference.npz")).unwrap();
        Reference {
            json: reference_json(&dir.join("reference.json")),
            npz: ndarray_npy::NpzReader::new(file).unwrap(),
        }
    }

    /// Top-5 ids and probabilities of `name`, flat.
    fn top5(&mut self, name: &str) -> (Vec<i64>, Vec<f64>) {
        let ids: ndarray::ArrayD<i64> = self.npz.by_name(&format!("{name}_top5_ids.npy")).unwrap();
        let probs: ndarray::ArrayD<f64> =
            self.npz.by_name(&format!("{name}_top5_probs.npy")).unwrap();
        (
            ids.iter().copied().collect(),
            probs.iter().copied().collect(),
        )
    }

    fn layers(&self, what: &str) -> Vec<usize> {
        self.json[what]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_u64().unwrap() as usize)
            .collect()
    }
}

/// Compare a row's cells with reference top-5 ids `[T, 5]` and probs;
/// near-equal probabilities may swap. The largest |Δprob|.
fn compare_row(what: &str, row: &logitlens_engine::LensRow, ids: &[i64], probs: &[f64]) -> f64 {
    let mut worst = 0f64;
    for (t, cell) in row.predictions.iter().enumerate() {
        for (k, pred) in cell.iter().enumerate() {
            let (id, prob) = (ids[t * 5 + k] as u32, probs[t * 5 + k]);
            worst = worst.max((pred.prob - prob).abs());
            if pred.id != id {
                let other = cell.iter().find(|c| c.id == id).map(|c| c.prob);
                assert!(
                    other.is_some_and(|o| (o - prob).abs() < 1e-5),
                    "{what} pos {t} rank {k}: {} vs {id}",
                    pred.id
                );
            }
        }
    }
    worst
}

fn jacobian_run(m: &LoadedModel, text: &str, iv: Interventions) -> logitlens_engine::RunOutput {
    m.run(&RunRequest {
        lens: Lens::Jacobian,
        interventions: iv,
        ..RunRequest::new(text)
    })
    .unwrap()
}

#[test]
fn the_readout_is_transformer_lens_s() {
    for family in ["llama", "qwen3"] {
        let m = load_tiny(family);
        m.attach_jacobian_lens(&jlens_dir(family).join("jlens.pt"))
            .unwrap();
        let mut r = Reference::open(family);
        let names: Vec<String> = r.json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        let mut worst = 0f64;
        for (p, prompt) in r.json["prompts"]
            .as_array()
            .unwrap()
            .clone()
            .iter()
            .enumerate()
        {
            let out = jacobian_run(&m, prompt["text"].as_str().unwrap(), Interventions::new());
            assert_eq!(out.state.ids, u32s(&prompt["ids"]), "{family} p{p}: ids");
            assert_eq!(
                out.answer.transported_rows,
                Some(vec!["Layer 0".to_string(), "Layer 1".to_string()])
            );
            let (ids, probs) = r.top5(&format!("p{p}_jlens"));
            let per_row = out.state.ids.len() * 5;
            // The answer's rows past the embeddings are the reference's.
            let rows = &out.answer.logit_lens[1..];
            assert_eq!(rows.len(), names.len());
            for (s, row) in rows.iter().enumerate() {
                assert_eq!(row.layer_name, names[s]);
                let range = s * per_row..(s + 1) * per_row;
                let what = format!("{family} p{p} {}", names[s]);
                worst = worst.max(compare_row(&what, row, &ids[range.clone()], &probs[range]));
            }
        }
        println!("{family}: readout max |Δprob| {worst:e}");
        assert!(worst < 1e-5, "{family}: readout max |Δprob| {worst}");
    }
}

/// The reference's interventions, as requests: steering toward the target
/// token, ablating the source token at every layer the lens covers
/// (`all_layers_output`), swapping the two.
fn reference_interventions(r: &Reference, prompt: &Value) -> Vec<(&'static str, Interventions)> {
    let (source, target) = (&prompt["source_token"], &prompt["target_token"]);
    let at = |layers: Vec<usize>, op: Value| {
        let map: serde_json::Map<String, Value> = layers
            .into_iter()
            .map(|l| (format!("layer_{l}_output"), json!([op.clone()])))
            .collect();
        interventions(Value::Object(map))
    };
    assert_eq!(r.layers("ablate"), vec![0, 1]);
    vec![
        (
            "steer",
            at(
                r.layers("steer"),
                json!({"type": "jlens_steer", "token": target, "alpha": r.json["steer"]["alpha"]}),
            ),
        ),
        (
            "ablate",
            interventions(
                json!({"all_layers_output": [{"type": "jlens_ablate", "tokens": [source]}]}),
            ),
        ),
        (
            "swap",
            at(
                r.layers("swap"),
                json!({"type": "jlens_swap", "source": source, "target": target,
                       "alpha": r.json["swap"]["alpha"]}),
            ),
        ),
    ]
}

#[test]
fn steering_ablation_and_swap_are_transformer_lens_s() {
    for family in ["llama", "qwen3"] {
        let m = load_tiny(family);
        m.attach_jacobian_lens(&jlens_dir(family).join("jlens.pt"))
            .unwrap();
        let mut r = Reference::open(family);
        let mut worst = BTreeMap::new();
        for (p, prompt) in r.json["prompts"]
            .as_array()
            .unwrap()
            .clone()
            .iter()
            .enumerate()
        {
            let text = prompt["text"].as_str().unwrap();
            let plain = m.run(&RunRequest::new(text)).unwrap();
            for (name, iv) in reference_interventions(&r, prompt) {
                let out = m
                    .run(&RunRequest {
                        interventions: iv,
                        ..RunRequest::new(text)
                    })
                    .unwrap();
                let (ids, probs) = r.top5(&format!("p{p}_{name}"));
                let last = out.answer.logit_lens.last().unwrap();
                let what = format!("{family} p{p} {name}");
                let e = compare_row(&what, last, &ids, &probs);
                let w = worst.entry(name).or_insert(0f64);
                *w = w.max(e);
                assert!(e < 1e-4, "{what}: max |Δprob| {e}");
                assert_ne!(
                    last,
                    plain.answer.logit_lens.last().unwrap(),
                    "{what} changed nothing"
                );
                // One receipt per layer acted at, each naming its layer.
                let layers: Vec<_> = out.answer.receipts.iter().map(|r| r.layer).collect();
                let want = if name == "ablate" {
                    vec![0, 1]
                } else {
                    r.layers(name)
                };
                assert_eq!(
                    layers,
                    want.into_iter().map(Some).collect::<Vec<_>>(),
                    "{what}"
                );
            }
        }
        println!("{family}: interventions max |Δprob| {worst:?}");
    }
}

/// A lens of the same matrix at every source layer of a 3-layer, 64-wide
/// model, written to `dir` as safetensors.
fn write_lens(dir: &Path, name: &str, m: &Tensor) -> PathBuf {
    let matrices = BTreeMap::from([(0, m.clone()), (1, m.clone())]);
    let lens = JacobianLens::new(matrices, 1, m.dim(0).unwrap(), Default::default()).unwrap();
    let path = dir.join(name);
    lens.save(&path).unwrap();
    path
}

#[test]
fn the_identity_reads_as_the_logit_lens_bit_for_bit_on_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let eye = Tensor::eye(64, candle_core::DType::F32, &Device::Cpu).unwrap();
    let identity = write_lens(dir.path(), "identity.safetensors", &eye);
    let random = Tensor::randn(0f32, 0.2, (64, 64), &Device::Cpu).unwrap();
    let random = write_lens(dir.path(), "random.safetensors", &(eye + random).unwrap());
    let text = "The capital of France is";
    for family in FAMILIES {
        let m = load_hooked(family);
        let logit = m.run(&RunRequest::new(text)).unwrap().answer.logit_lens;
        m.attach_jacobian_lens(&identity).unwrap();
        let same = jacobian_run(&m, text, Interventions::new()).answer;
        assert_eq!(same.logit_lens, logit, "{family}: J = I");
        m.attach_jacobian_lens(&random).unwrap();
        let rows = jacobian_run(&m, text, Interventions::new())
            .answer
            .logit_lens;
        assert_eq!(
            rows[0], logit[0],
            "{family}: the embeddings are not transported"
        );
        assert_eq!(
            rows[3], logit[3],
            "{family}: the final output is the model's"
        );
        assert!(
            rows[1] != logit[1] && rows[2] != logit[2],
            "{family}: rows transported"
        );
    }
}

#[test]
fn lenses_and_operations_that_cannot_apply_are_refused_in_words() {
    let m = load_tiny("llama");
    let text = "The capital of France is";
    let err = |req: RunRequest| m.run(&req).err().expect("refused").to_string();
    let e = err(RunRequest {
        lens: Lens::Jacobian,
        ..RunRequest::new(text)
    });
    assert!(e.contains("no Jacobian lens is attached"), "{e}");
    let steer = |key: &str, token: Value| {
        interventions(json!({key: [{"type": "jlens_steer", "token": token, "alpha": 2.0}]}))
    };
    let e = err(RunRequest {
        interventions: steer("layer_0_output", json!(5)),
        ..RunRequest::new(text)
    });
    assert!(e.contains("none is attached"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let narrow = write_lens(
        dir.path(),
        "narrow.safetensors",
        &Tensor::eye(32, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let e = m.attach_jacobian_lens(&narrow).unwrap_err().to_string();
    assert!(e.contains("32") && e.contains("64"), "{e}");
    let eye = Tensor::eye(64, candle_core::DType::F32, &Device::Cpu).unwrap();
    let deep = JacobianLens::new(
        BTreeMap::from([(2, eye.clone())]),
        1,
        64,
        Default::default(),
    )
    .unwrap();
    deep.save(&dir.path().join("deep.pt")).unwrap();
    let e = m
        .attach_jacobian_lens(&dir.path().join("deep.pt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2]") && e.contains("3 layers"), "{e}");
    let e = m
        .attach_jacobian_lens(&fixtures().join("research").join("corpus.txt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("neither a torch .pt archive nor"), "{e}");
    assert!(m.jacobian_lens().is_none());

    let partial = JacobianLens::new(BTreeMap::from([(0, eye)]), 1, 64, Default::default()).unwrap();
    partial
        .save(&dir.path().join("partial.safetensors"))
        .unwrap();
    m.attach_jacobian_lens(&dir.path().join("partial.safetensors"))
        .unwrap();
    let e = err(RunRequest {
        interventions: steer("layer_1_output", json!(5)),
        ..RunRequest::new(text)
    });
    assert!(
        e.contains("no matrix for block 1") && e.contains("[0]"),
        "{e}"
    );
    let e = err(RunRequest {
        interventions: steer("layer_2_output", json!(5)),
        ..RunRequest::new(text)
    });
    assert!(e.contains("no matrix for block 2"), "{e}");
    let e = err(RunRequest {
        interventions: steer("layer_0_mlp_output", json!(5)),
        ..RunRequest::new(text)
    });
    assert!(e.contains("acts on block outputs"), "{e}");
    let e = err(RunRequest {
        interventions: steer("layer_0_output", json!("The capital")),
        ..RunRequest::new(text)
    });
    assert!(e.contains("tokens for this tokenizer"), "{e}");
    let e = err(RunRequest {
        interventions: interventions(
            json!({"layer_0_output": [{"type": "jlens_steer", "token": 5}]}),
        ),
        ..RunRequest::new(text)
    });
    assert!(e.contains("`alpha`"), "{e}");
    let e = err(RunRequest {
        interventions: interventions(
            json!({"layer_0_output": [{"type": "jlens_ablate", "tokens": []}]}),
        ),
        ..RunRequest::new(text)
    });
    assert!(e.contains("non-empty `tokens`"), "{e}");
    let e = err(RunRequest {
        lens: Lens::Jacobian,
        lens_type: logitlens_engine::LensType::PostAttention,
        ..RunRequest::new(text)
    });
    assert!(
        e.contains("block outputs only") && e.contains("block_output"),
        "{e}"
    );
    // A partial lens transports the rows it covers and says which.
    let out = jacobian_run(&m, text, Interventions::new());
    assert_eq!(
        out.answer.transported_rows,
        Some(vec!["Layer 0".to_string()])
    );
}

#[test]
fn a_lens_fitted_for_another_model_is_attached_with_a_warning() {
    let pt = jlens_dir("llama").join("jlens.pt");
    let own = load_tiny("llama").attach_jacobian_lens(&pt).unwrap();
    assert_eq!(own.warning, None);
    let m = load_tiny("qwen3");
    let lens = m.attach_jacobian_lens(&pt).unwrap();
    let w = lens.warning.clone().expect("a warning");
    assert!(w.contains("tiny/llama") && w.contains("qwen3"), "{w}");
    // A bare artifact names no model: nothing to warn about.
    let bare = m
        .attach_jacobian_lens(&jlens_dir("llama").join("jlens_bare.pt"))
        .unwrap();
    assert_eq!(bare.warning, None);
    assert!(m.jacobian_lens().is_some());
}

#[test]
fn written_files_read_back_and_lenses_merge() {
    let dir = tempfile::tempdir().unwrap();
    let lens = JacobianLens::load(&jlens_dir("qwen3").join("jlens.pt")).unwrap();
    for name in ["again.pt", "again.safetensors"] {
        let path = dir.path().join(name);
        lens.save(&path).unwrap();
        let back = JacobianLens::load(&path).unwrap();
        assert_eq!(back.source_layers, lens.source_layers);
        assert_eq!(
            (back.d_model, back.n_prompts),
            (lens.d_model, lens.n_prompts)
        );
        assert_eq!(back.metadata, lens.metadata, "{name}");
        for l in [0, 1] {
            assert_eq!(matrix(&back, l), matrix(&lens, l), "{name}: J{l}");
        }
    }
    let merged = JacobianLens::merge(&[&lens, &lens]).unwrap();
    assert_eq!(merged.n_prompts, 24);
    assert_eq!(merged.metadata["n_prompts"], json!(24));
    assert_eq!(matrix(&merged, 1), matrix(&lens, 1));
    let llama = JacobianLens::load(&jlens_dir("llama").join("jlens.pt")).unwrap();
    let e = JacobianLens::merge(&[&lens, &llama])
        .unwrap_err()
        .to_string();
    assert!(e.contains("provenance"), "{e}");
    let e = lens
        .save(&dir.path().join("lens.npz"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(".pt or .safetensors"), "{e}");
}

/// compare, tracked tokens and entropy read through the lens; a kept run
/// drawn by the logit lens lends its layers but not its rows.
#[test]
fn compare_tracking_entropy_and_kept_runs_read_through_the_lens() {
    let m = load_tiny("llama");
    m.attach_jacobian_lens(&jlens_dir("llama").join("jlens.pt"))
        .unwrap();
    let text = "The capital of France is";
    let plain = jacobian_run(&m, text, Interventions::new());
    let iv = interventions(
        json!({"layer_1_output": [{"type": "jlens_steer", "token": 256, "alpha": 2.0}]}),
    );
    let req = RunRequest {
        lens: Lens::Jacobian,
        compare: true,
        entropy: true,
        track_tokens: Some(vec![json!(256)]),
        interventions: iv,
        ..RunRequest::new(text)
    };
    let out = m.run(&req).unwrap();
    let a = &out.answer;
    assert_eq!(
        a.baseline_logit_lens.as_ref(),
        Some(&plain.answer.logit_lens)
    );
    assert_eq!(
        a.logit_lens[..2],
        plain.answer.logit_lens[..2],
        "before layer 1 nothing changed"
    );
    assert_ne!(a.logit_lens[2], plain.answer.logit_lens[2]);
    let (diff, tracked, entropy) = (
        a.diff.as_ref().unwrap(),
        a.tracked.as_ref().unwrap(),
        a.entropy.as_ref().unwrap(),
    );
    assert_eq!((diff.len(), tracked.len(), entropy.len()), (4, 4, 4));
    assert!(diff[2].iter().any(|c| c.kl > 0.0) && diff[1].iter().all(|c| c.kl == 0.0));
    // Tracked probabilities are the lens's: where 256 is in a cell's top 5
    // the two agree (to the top 5's own rounding).
    for (row, cells) in a.logit_lens.iter().zip(tracked) {
        for (cell, t) in row.predictions.iter().zip(cells) {
            if let Some(p) = cell.iter().find(|p| p.id == 256) {
                assert!((p.prob - t[0].prob).abs() < 1e-6, "{}", row.layer_name);
            }
        }
    }
    // A logit-lens run kept, then a Jacobian run taking its layers over.
    let logit = m.run(&RunRequest::new(text)).unwrap();
    let jreq = RunRequest {
        lens: Lens::Jacobian,
        ..RunRequest::new(text)
    };
    let spec =
        <logitlens_engine::RunSpec as logitlens_engine::Operation>::check(&m, &jreq).unwrap();
    let again = m.run_spec(spec, &[&logit.state]).unwrap();
    assert_eq!(again.timings.reused_layers, 3);
    assert_eq!(again.answer.logit_lens, plain.answer.logit_lens);
    assert_eq!(again.state.lens, Lens::Jacobian);
}

/// A generation steers at every pass (each pass by the median norm of the
/// positions it runs, as TransformerLens's hooks do under a KV cache), and
/// its rows are the Jacobian lens's.
#[test]
fn generations_steer_at_every_step() {
    use logitlens_engine::ops::generate::GenerationRequest;
    use logitlens_engine::watch::Unwatched;
    let m = load_tiny("llama");
    m.attach_jacobian_lens(&jlens_dir("llama").join("jlens.pt"))
        .unwrap();
    let run = RunRequest {
        lens: Lens::Jacobian,
        interventions: interventions(
            json!({"layer_1_output": [{"type": "jlens_steer", "token": 256, "alpha": 2.0}]}),
        ),
        ..RunRequest::new("Once upon a time")
    };
    let req = GenerationRequest {
        run,
        max_new_tokens: 4,
        stop_at_eos: false,
    };
    let mut first = None;
    let out = m
        .generate_run(&req, &[], &Unwatched, &mut |s| {
            assert_eq!(s.columns.len(), 4);
            first.get_or_insert_with(|| s.columns.clone());
            Ok(())
        })
        .unwrap();
    // The prompt's pass steers by the median over the prompt: as a run.
    let cold = m.run(&req.run).unwrap().answer.logit_lens;
    assert_eq!(first.unwrap(), cold);
    // Every pass acted: the joined receipt covers every position written.
    let receipts = &out.run.answer.receipts;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].positions.len(), out.run.state.ids.len());
    assert_eq!(out.generated_ids.len(), 4);
    assert_eq!(
        out.run.answer.transported_rows.as_ref().map(Vec::len),
        Some(2)
    );
    let unsteered = m
        .generate_run(
            &GenerationRequest {
                run: RunRequest {
                    interventions: Interventions::new(),
                    ..req.run.clone()
                },
                ..req.clone()
            },
            &[],
            &Unwatched,
            &mut |_| Ok(()),
        )
        .unwrap();
    assert_ne!(
        unsteered.generated_ids, out.generated_ids,
        "steering changed what was written"
    );
}

/// Every record of a torch archive, by name.
fn records(path: &Path) -> BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().to_owned(), bytes)
        })
        .collect()
}

fn assert_same_lens(a: &JacobianLens, b: &JacobianLens, what: &str) {
    assert_eq!(a.source_layers, b.source_layers, "{what}");
    assert_eq!((a.d_model, a.n_prompts), (b.d_model, b.n_prompts), "{what}");
    assert_eq!(a.metadata, b.metadata, "{what}");
    for &l in &a.source_layers {
        assert_eq!(matrix(a, l), matrix(b, l), "{what}: J{l}");
    }
}

/// Our `.pt` against torch (the fixtures `make_torch_fixtures.py` made
/// with torch 2.15 and TransformerLens 4.3; CI needs neither): what our
/// writer writes is, record for record, `written.pt`, which torch loaded
/// with `weights_only=True` and TransformerLens's `JacobianLens.load` read
/// as the lens it came from; `torch_resaved.pt` is that lens saved again
/// by TransformerLens, and reads back as the same lens. Set
/// LOGITLENS_BLESS_JLENS=1 to write `written.pt` anew (then run the script).
#[test]
fn torch_reads_the_pt_we_write_and_we_read_what_it_writes_back() {
    let dir = jlens_dir("llama");
    let lens = JacobianLens::load(&dir.join("jlens.pt")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // The archive's records are named after the file, as torch names them.
    let ours = tmp.path().join("written.pt");
    lens.save(&ours).unwrap();
    if std::env::var_os("LOGITLENS_BLESS_JLENS").is_some() {
        std::fs::copy(&ours, dir.join("written.pt")).unwrap();
    }
    assert_eq!(records(&ours), records(&dir.join("written.pt")));
    let back = JacobianLens::load(&dir.join("torch_resaved.pt")).unwrap();
    assert_same_lens(&back, &lens, "torch_resaved.pt");
}

/// Files torch wrote that exercise the reader beyond what `save` writes: a
/// fit checkpoint (running sums, flat and nested provenance, a reserved
/// key, a tensor-valued field) reads as TransformerLens converts it (its
/// own conversion saved in float32 beside it); bfloat16 storages; views
/// that are transposed or share one storage at an offset.
#[test]
fn checkpoints_bfloat16_and_views_written_by_torch_read_as_transformer_lens_reads_them() {
    let dir = jlens_dir("llama");
    let fp16 = JacobianLens::load(&dir.join("jlens.pt")).unwrap();
    let ours = JacobianLens::load(&dir.join("checkpoint.pt")).unwrap();
    let theirs = JacobianLens::load(&dir.join("checkpoint_converted.pt")).unwrap();
    assert_same_lens(&ours, &theirs, "checkpoint");
    assert_eq!(
        ours.metadata["converted_from"],
        json!("jacobian_lens_checkpoint")
    );
    assert_eq!(
        ours.metadata["dropped_fields"],
        json!(["probe: shape=(3,) dtype=torch.float32"])
    );
    assert!(!ours.metadata.contains_key("fit_dtype"));
    assert_eq!(ours.model_name(), Some("tiny/llama"));
    for l in [0, 1] {
        assert_close(
            "checkpoint mean",
            &matrix(&ours, l),
            &matrix(&fp16, l),
            1e-6,
        );
    }
    let bf16 = JacobianLens::load(&dir.join("jlens_bf16.pt")).unwrap();
    for l in [0, 1] {
        let want: Vec<f32> = matrix(&fp16, l)
            .iter()
            .map(|&x| half::bf16::from_f32(x).to_f32())
            .collect();
        assert_eq!(matrix(&bf16, l), want, "bf16 J{l}");
    }
    let views = JacobianLens::load(&dir.join("jlens_views.pt")).unwrap();
    assert_same_lens(
        &views,
        &JacobianLens::load(&dir.join("jlens_bare.pt")).unwrap(),
        "views",
    );
}

/// `records` written as a torch archive (stored, as torch stores them).
fn write_records(path: &Path, records: &BTreeMap<String, Vec<u8>>) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in records {
        zip.start_file(name.as_str(), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A lens file is untrusted input: a pickle cut short anywhere, or with
/// any byte changed, is an error or a lens, never a panic; a tensor that
/// claims more than its storage holds is refused.
#[test]
fn malformed_pt_files_are_refused_without_panicking() {
    let real = records(&jlens_dir("llama").join("jlens.pt"));
    let pkl = real["jlens/data.pkl"].clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pt");
    let with_pickle = |p: Vec<u8>| {
        let mut r = real.clone();
        r.insert("jlens/data.pkl".into(), p);
        write_records(&path, &r);
        JacobianLens::load(&path)
    };
    for cut in 0..pkl.len() {
        assert!(with_pickle(pkl[..cut].to_vec()).is_err(), "cut at {cut}");
    }
    for at in 0..pkl.len() {
        for byte in [0x00, 0x7f, 0xff] {
            let mut p = pkl.clone();
            p[at] = byte;
            let _ = with_pickle(p);
        }
    }
    // J[0] claims 65 x 64 elements of a 4096-element storage.
    let mut p = pkl.clone();
    let at = p
        .windows(6)
        .position(|w| w == [b'K', 0, b'K', 64, b'K', 64])
        .unwrap();
    p[at + 3] = 65;
    let e = with_pickle(p).unwrap_err().to_string();
    assert!(e.contains("reaches past its storage"), "{e}");
    // A storage whose bytes are missing.
    let mut r = real.clone();
    r.remove("jlens/data/1");
    write_records(&path, &r);
    let e = JacobianLens::load(&path).unwrap_err().to_string();
    assert!(e.contains("storage 1 is missing"), "{e}");
}
