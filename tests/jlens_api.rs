//! The Jacobian lens where a lens is chosen: attached by POST /load_lens
//! (a file; a folder is a tuned lens) and by `serve`/`lens`/`eval-lens
//! --jacobian-lens`, described on /model_status, read by /inference with
//! `"lens": "jacobian"` (its answer saying which rows it transported),
//! measured by /eval_lens, its lens vectors read back by /lens_vector; the
//! command line prints the server's bodies.

mod common;

use std::process::Command;

use common::server::{detail, server_with};
use common::*;
use serde_json::{json, Value};

const TEXT: &str = "The capital of France is";

fn jlens_file() -> std::path::PathBuf {
    fixtures().join("research/jlens/llama/jlens.pt")
}

#[tokio::test]
async fn the_server_attaches_reads_measures_and_explains_a_jacobian_lens() {
    let s = server_with(|c| c.max_prompt_tokens = 256);
    s.load(tiny("llama")).await;
    // Without a lens: refused in words.
    let (st, v) = s
        .post("/inference", json!({"text": TEXT, "lens": "jacobian"}))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(detail(&v).contains("Jacobian lens"), "{v}");
    let (st, v) = s.post("/lens_vector", json!({"token": 5})).await;
    assert_eq!(st, 400, "{v}");
    // A file is a Jacobian lens.
    let (st, v) = s.post("/load_lens", json!({"path": jlens_file()})).await;
    assert_eq!(st, 200, "{v}");
    let attached = &v["jacobian_lens"];
    assert_eq!(attached["n_prompts"], 12, "{v}");
    assert_eq!(attached["source_layers"], json!([0, 1]));
    let (_, status) = s.get("/model_status").await;
    assert_eq!(status["jacobian_lens"], *attached, "{status}");

    let (st, v) = s
        .post(
            "/inference",
            json!({"text": TEXT, "lens": "jacobian", "compare": true, "entropy": true,
                   "track_tokens": [5]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["transported_rows"], json!(["Layer 0", "Layer 1"]));
    let rows = v["logit_lens"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for extra in ["diff", "entropy", "tracked", "baseline_logit_lens"] {
        assert_eq!(v[extra].as_array().unwrap().len(), 4, "{extra}");
    }
    // A plain logit-lens run differs on the transported rows only.
    let (_, plain) = s.post("/inference", json!({"text": TEXT})).await;
    assert!(plain.get("transported_rows").is_none());
    assert_eq!(plain["logit_lens"][0], v["logit_lens"][0], "Embeddings");
    assert_eq!(plain["logit_lens"][3], v["logit_lens"][3], "Final Output");
    assert_ne!(plain["logit_lens"][1], v["logit_lens"][1], "Layer 0");

    // Steering along a lens vector changes the output and leaves a receipt.
    let steer = json!({"layer_1_output": [{"type": "jlens_steer", "token": 7, "alpha": 2.0}]});
    let (st, steered) = s
        .post("/inference", json!({"text": TEXT, "interventions": steer}))
        .await;
    assert_eq!(st, 200, "{steered}");
    assert_eq!(steered["receipts"][0]["key"], "layer_1_output");
    assert_ne!(steered["logit_lens"][3], plain["logit_lens"][3]);

    // What a token's lens vector says at each layer.
    let (st, v) = s.post("/lens_vector", json!({"token": 7, "k": 3})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["token_id"], 7);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (l, layer) in layers.iter().enumerate() {
        assert_eq!(layer["layer"], l);
        assert_eq!(layer["top"].as_array().unwrap().len(), 3);
        assert!(layer["norm"].as_f64().unwrap() > 0.0);
    }
    let (st, v) = s.post("/lens_vector", json!({"token": 7, "k": 0})).await;
    assert_eq!(st, 400, "{v}");

    // Lens quality: the Jacobian lens beside the logit lens.
    let corpus = std::fs::read_to_string(fixtures().join("research/corpus_eval.txt")).unwrap();
    let (st, v) = s
        .post("/eval_lens", json!({"corpus": corpus, "max_tokens": 32}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["jacobian_lens"], jlens_file().display().to_string());
    let kl = v["jacobian"]["kl"].as_array().unwrap();
    assert_eq!(kl.len(), 4);
    // The Embeddings and Final Output rows are read as the logit lens reads them.
    assert_eq!(kl[0], v["logit"]["kl"][0]);
    assert_eq!(kl[3], v["logit"]["kl"][3]);
}

fn logitlens(args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test]
async fn the_command_line_reads_with_a_jacobian_lens_as_the_server_does() {
    let model = tiny("llama");
    let file = jlens_file();
    let (model, file) = (model.to_str().unwrap(), file.to_str().unwrap());
    let cli = logitlens(&[
        "lens",
        "--model",
        model,
        "--text",
        TEXT,
        "--jacobian-lens",
        file,
        "--json",
    ]);
    let s = server_with(|_| {});
    s.load(tiny("llama")).await;
    s.post("/load_lens", json!({"path": file})).await;
    let (_, served) = s
        .post("/inference", json!({"text": TEXT, "lens": "jacobian"}))
        .await;
    assert_eq!(cli, served);
    let eval = logitlens(&[
        "eval-lens",
        "--model",
        model,
        "--corpus",
        fixtures()
            .join("research/corpus_eval.txt")
            .to_str()
            .unwrap(),
        "--max-tokens",
        "16",
        "--jacobian-lens",
        file,
        "--json",
    ]);
    assert_eq!(eval["jacobian"]["kl"].as_array().unwrap().len(), 4);
    // Its table and its plot have the Jacobian lens beside the logit lens.
    let dir = tempfile::tempdir().unwrap();
    let corpus = fixtures().join("research/corpus_eval.txt");
    let plot = |lens: Option<&str>| -> (String, Vec<u8>) {
        let png = dir.path().join("quality.png");
        let mut args = vec![
            "eval-lens",
            "--model",
            model,
            "--corpus",
            corpus.to_str().unwrap(),
        ];
        args.extend(["--max-tokens", "16", "--plot", png.to_str().unwrap()]);
        if let Some(f) = lens {
            args.extend(["--jacobian-lens", f]);
        }
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_logitlens"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            std::fs::read(png).unwrap(),
        )
    };
    let ((with, with_png), (without, without_png)) = (plot(Some(file)), plot(None));
    assert!(
        with.contains("\nJacobian lens\n") && !without.contains("Jacobian"),
        "{with}"
    );
    assert_ne!(
        with_png, without_png,
        "the plot draws the Jacobian lens's line"
    );
}
