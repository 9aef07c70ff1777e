//! The `logitlens lens` command line: output forms and error exits.

mod common;

use std::process::{Command, Output};

use common::*;

fn lens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .arg("lens")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_output_is_the_inference_body() {
    let model = tiny("llama");
    let o = lens(&[
        "--model",
        model.to_str().unwrap(),
        "--text",
        "Hi",
        "--json",
        "--attention",
        "--lens-type",
        "combined",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "text",
            "input_tokens",
            "logit_lens",
            "attention",
            "receipts"
        ]
    );
    assert_eq!(v["logit_lens"].as_array().unwrap().len(), 8);
    let a = &v["attention"];
    assert_eq!(a.as_array().unwrap().len(), 3);
    assert_eq!(a[0].as_array().unwrap().len(), 4);
    let o = lens(&["--model", model.to_str().unwrap(), "--text", "Hi", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("attention").is_none(), "attention only when asked");
}

#[test]
fn table_output_lists_rows_and_positions() {
    let o = lens(&[
        "--model",
        tiny("qwen3").to_str().unwrap(),
        "--text",
        "Hello world",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].starts_with("input") && lines[0].contains("0:H"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 1 + 4);
    assert!(lines[4].starts_with("Final Output"));
}

#[test]
fn interventions_from_a_file_apply() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("iv.json");
    std::fs::write(&f, r#"{"layer_2_output":[{"type":"zero"}]}"#).unwrap();
    let arg = format!("@{}", f.display());
    let o = lens(&[
        "--model",
        tiny("llama").to_str().unwrap(),
        "--text",
        "Hi",
        "--json",
        "--interventions",
        &arg,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = v["logit_lens"].as_array().unwrap().last().unwrap();
    assert!((last["predictions"][0][0]["prob"].as_f64().unwrap() - 1.0 / 512.0).abs() < 1e-7);
}

#[test]
fn errors_go_to_stderr_with_a_failing_exit() {
    let llama = tiny("llama");
    let m = llama.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--model", m, "--text", "Hi", "--interventions", "{not json"],
            "--interventions must be a JSON object",
        ),
        (
            vec![
                "--model",
                m,
                "--text",
                "Hi",
                "--interventions",
                r#"{"layer_7_output":[{"type":"zero"}]}"#,
            ],
            "layer 7 is out of range",
        ),
        (
            vec!["--model", m, "--text", "Hi", "--backend", "tl"],
            "invalid value 'tl'",
        ),
        (
            vec!["--model", m, "--text", "Hi", "--lens-type", "nope"],
            "unknown lens_type",
        ),
        (
            vec!["--model", "/no/such/model.gguf", "--text", "Hi"],
            "does not exist",
        ),
    ];
    for (args, want) in cases {
        let o = lens(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(o.stdout.is_empty(), "nothing on stdout for {args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // An architecture the custom backend doesn't run is named, with the supported list.
    let o = lens(&["--model", tiny("gpt2").to_str().unwrap(), "--text", "Hi"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("gpt2") && e.contains("llama") && e.contains("qwen3"),
        "{e}"
    );
}

#[test]
fn tuned_lens_rows_and_a_lens_that_does_not_fit() {
    let model = tiny("qwen3");
    let lens_dir = fixtures().join("research").join("tuned").join("qwen3");
    let args = |dir: &std::path::Path| {
        lens(&[
            "--model",
            model.to_str().unwrap(),
            "--text",
            "The capital of France is",
            "--json",
            "--tuned-lens",
            dir.to_str().unwrap(),
        ])
    };
    let o = args(&lens_dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let tuned: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let plain = lens(&[
        "--model",
        model.to_str().unwrap(),
        "--text",
        "The capital of France is",
        "--json",
    ]);
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    let (t, p) = (&tuned["logit_lens"], &plain["logit_lens"]);
    assert_ne!(t[0], p[0], "row 0 is translated");
    assert_eq!(t[3], p[3], "the final row is the model's own");
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // A lens of the same shape made for another model: used, with a warning.
    let o = args(&fixtures().join("research").join("tuned").join("llama"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("unembed_hash"), "{}", stderr(&o));
    let o = args(
        &fixtures()
            .join("research")
            .join("tuned_mismatch")
            .join("d_model_32"),
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("32") && e.contains("64"), "{e}");
}

#[test]
fn eval_lens_prints_the_measures_of_both_lenses() {
    let research = fixtures().join("research");
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("quality.png");
    let o = Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(["eval-lens", "--model"])
        .arg(tiny("qwen3"))
        .arg("--corpus")
        .arg(research.join("corpus_eval.txt"))
        .arg("--tuned-lens")
        .arg(research.join("tuned").join("qwen3"))
        .args(["--max-tokens", "16", "--json", "--plot"])
        .arg(&plot)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("documents 20/20"), "{}", stderr(&o));
    // Four panels, two by two, of a line per lens.
    let png = std::fs::read(&plot).unwrap();
    let info = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap()
        .info()
        .clone();
    let (pw, ph) = logitlens_heatmap::CURVE_PANEL_SIZE;
    assert_eq!(info.width, 2 * pw);
    assert!(info.height > 2 * ph, "{}", info.height);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 4);
    for lens in ["logit", "tuned"] {
        for k in ["kl", "ce", "entropy", "top1_agree"] {
            assert_eq!(v[lens][k].as_array().unwrap().len(), 4, "{lens}.{k}");
        }
        // The last row is the model's own output.
        assert_eq!(v[lens]["kl"][3], 0.0);
    }
    let o = Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(["eval-lens", "--model"])
        .arg(tiny("qwen3"))
        .args(["--corpus", "/nonexistent/corpus.txt"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/corpus.txt"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn train_lens_writes_a_lens_that_loads() {
    let research = fixtures().join("research");
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(["train-lens", "--model"])
        .arg(tiny("qwen3"))
        .arg("--corpus")
        .arg(research.join("corpus_train.txt"))
        .arg("--out")
        .arg(out.path())
        .args(["--steps", "10", "--max-tokens", "16"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("step 10/10"), "{}", stderr(&o));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        (cfg["d_model"].as_u64(), cfg["num_hidden_layers"].as_u64()),
        (Some(64), Some(3))
    );
    // The model's hash, as the tuned-lens package records it for qwen3.
    let package: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(research.join("tuned").join("qwen3").join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["unembed_hash"], package["unembed_hash"]);
    let o = lens(&[
        "--model",
        tiny("qwen3").to_str().unwrap(),
        "--text",
        "Hello",
        "--json",
        "--tuned-lens",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// `--corpus sample:N`: N documents of --max-tokens ids written by the
/// model, the same for the same seed.
#[test]
fn eval_lens_samples_its_corpus_from_the_model() {
    let run = |seed: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_logitlens"))
            .args(["eval-lens", "--model"])
            .arg(tiny("llama"))
            .args(["--corpus", "sample:3", "--max-tokens", "8", "--json"])
            .args(["--seed", seed])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("sampled 3 documents"), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (a, b, c) = (run("1"), run("1"), run("2"));
    assert_eq!(a["tokens"], 24);
    assert_eq!(a, b);
    assert_ne!(a["logit"], c["logit"]);
    let o = Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(["eval-lens", "--model"])
        .arg(tiny("llama"))
        .args(["--corpus", "sample:0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("N >= 1"), "{}", stderr(&o));
}

fn logitlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(args)
        .output()
        .unwrap()
}

/// `patch --json` prints POST /patch's body, equal to the reference's
/// sweep; a table otherwise; texts of different lengths fail naming both.
#[test]
fn patch_prints_the_sweep() {
    let reference = reference_json(&fixtures().join("research/llama/patch_reference.json"));
    let pair = &reference["pairs"][1];
    let case = &pair["metrics"][1];
    let model = tiny("llama");
    let args = |json: bool| {
        let mut a = vec![
            "patch".to_owned(),
            "--model".into(),
            model.display().to_string(),
            "--clean".into(),
            pair["clean"].as_str().unwrap().into(),
            "--corrupted".into(),
            pair["corrupted"].as_str().unwrap().into(),
            "--hook".into(),
            "attn_out".into(),
            "--metric".into(),
            case["metric"].to_string(),
            "--positions".into(),
            "-1,2".into(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };
    let o = logitlens(&args(true).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = &case["results"]["attn_out"];
    let t = pair["positions"].as_array().unwrap().len();
    assert_eq!(v["positions"], serde_json::json!([t - 1, 2]));
    for (l, row) in want["values"].as_array().unwrap().iter().enumerate() {
        for (j, p) in [t - 1, 2].into_iter().enumerate() {
            let (g, w) = (
                v["values"][l][j].as_f64().unwrap(),
                row[p].as_f64().unwrap(),
            );
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "[{l}][{p}] {g} vs {w}"
            );
        }
    }
    assert!(stderr(&o).contains("patched runs 6/6"), "{}", stderr(&o));
    let o = logitlens(&args(false).iter().map(String::as_str).collect::<Vec<_>>());
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("attn_out patched") && table.lines().count() == 4 + 3,
        "{table}"
    );

    let o = logitlens(&[
        "patch",
        "--model",
        model.to_str().unwrap(),
        "--clean",
        "The doctor said that he",
        "--corrupted",
        "The nurse said that she",
        "--metric",
        r#"{"type": "prob", "token": 3}"#,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("14 tokens") && stderr(&o).contains("15"),
        "{}",
        stderr(&o)
    );
    let o = logitlens(&[
        "patch",
        "--model",
        model.to_str().unwrap(),
        "--clean",
        "a",
        "--corrupted",
        "b",
        "--metric",
        "prob",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--metric must be JSON"),
        "{}",
        stderr(&o)
    );
}

/// `lens --attribution` adds the reference's shares to the JSON body, and
/// a table with the sum check otherwise.
#[test]
fn lens_attributes_a_logit() {
    let reference = reference_json(&fixtures().join("research/qwen3/dla_reference.json"));
    let prompt = &reference["prompts"][1];
    let want = &prompt["attributions"][1];
    let model = tiny("qwen3");
    let request = want["request"].to_string();
    let text = prompt["text"].as_str().unwrap();
    let base = [
        "--model",
        model.to_str().unwrap(),
        "--text",
        text,
        "--attribution",
        request.as_str(),
    ];
    let o = lens(&[&base[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["attribution"];
    assert_eq!(a["token_id"], want["token_id"]);
    for k in ["logit", "embed"] {
        let (g, w) = (a[k].as_f64().unwrap(), want[k].as_f64().unwrap());
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{k}: {g} vs {w}");
    }
    let o = lens(&base);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("embed + attn + mlp + rest ="), "{out}");
    let o = lens(&[
        "--model",
        model.to_str().unwrap(),
        "--text",
        text,
        "--attribution",
        "7",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--attribution must be"),
        "{}",
        stderr(&o)
    );
}

/// `generate --json` prints POST /generate's body: transformers' greedy ids
/// for the reference prompt; without --json the text as written, then the
/// lens table; a bad length fails in words.
#[test]
fn generate_writes_and_draws_the_lens() {
    let reference = reference_json(&fixtures().join("research/qwen3/generate_reference.json"));
    let prompt = &reference["prompts"][0];
    let model = tiny("qwen3");
    let steps = reference["max_new_tokens"].to_string();
    let base = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--text",
        prompt["text"].as_str().unwrap(),
        "--max-new-tokens",
        steps.as_str(),
    ];
    let o = logitlens(&[&base[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["generated_ids"], prompt["generated_ids"]);
    assert_eq!(
        v["prompt_tokens"],
        serde_json::json!(u32s(&prompt["prompt_ids"]).len())
    );
    let o = logitlens(&base);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(
            v["generated_text"]
                .as_str()
                .unwrap()
                .trim_end_matches('\n')
                .lines()
                .next()
                .unwrap_or("")
        ),
        "{out}"
    );
    assert!(out.contains("the lens over the"), "{out}");
    let o = logitlens(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "Hi",
        "--max-new-tokens",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("between 1 and 256"), "{}", stderr(&o));
}

/// `lens --sae DIR --sae-top-k 0 --interventions JSON --json`: the SAE's
/// features in the body, SAELens's, with the splice applied; and
/// `sae-features` gives SAELens's top tokens of the feature.
#[test]
fn sae_flags_read_features_splice_and_say_what_a_feature_says() {
    let dir = fixtures().join("research/sae/llama/relu_resid_post_1");
    let r = reference_json(&fixtures().join("research/sae/llama/reference.json"));
    let s = &r["saes"][0];
    assert_eq!(s["name"], "relu_resid_post_1");
    let p = &s["prompts"][0];
    let model = tiny("llama");
    let iv = r#"{"blocks.1.hook_resid_post":[{"type":"sae_splice","sae":"relu_resid_post_1"}]}"#;
    let o = logitlens(&[
        "lens",
        "--model",
        model.to_str().unwrap(),
        "--text",
        p["text"].as_str().unwrap(),
        "--sae",
        dir.to_str().unwrap(),
        "--sae-top-k",
        "0",
        "--interventions",
        iv,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let body: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sae = &body["sae"][0];
    assert_eq!(sae["name"], "relu_resid_post_1");
    // Read after the splice at the same hook: the reconstruction's features.
    assert_eq!(
        sae["positions"].as_array().unwrap().len(),
        p["ids"].as_array().unwrap().len()
    );
    let last = body["logit_lens"].as_array().unwrap().last().unwrap();
    let want = &p["splice"];
    for (t, cell) in last["predictions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(cell[0]["id"], want["ids"][t][0], "pos {t}");
        let d = cell[0]["prob"].as_f64().unwrap() - want["probs"][t][0].as_f64().unwrap();
        assert!(d.abs() <= 1e-4, "pos {t}: {d}");
    }
    assert_eq!(body["receipts"][0]["hook"], "blocks.1.hook_resid_post");

    let f = p["feature"].as_u64().unwrap().to_string();
    let o = logitlens(&[
        "sae-features",
        "--model",
        model.to_str().unwrap(),
        "--sae",
        dir.to_str().unwrap(),
        "--features",
        &f,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let body: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top: Vec<u64> = body["features"][0]["top_tokens"].as_array().unwrap()[..5]
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = serde_json::from_value(p["feature_logit_lens_top5"].clone()).unwrap();
    assert_eq!(top, want);
    assert_eq!(body["sae"]["hook"], "blocks.1.hook_resid_post");
    // An SAE whose width is not the model's, in words.
    let o = logitlens(&[
        "lens",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "Hi",
        "--sae",
        &format!("{},hook=blocks.9.hook_resid_post", dir.display()),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("3 layers"), "{}", stderr(&o));
}

/// Several `--text`: `--json` prints POST /inference_batch's body, each
/// result what `lens --json` prints for its text alone; a grid per prompt
/// otherwise, headed by the prompt.
#[test]
fn lens_takes_several_texts_as_one_batch() {
    let model = tiny("llama");
    let m = model.to_str().unwrap();
    let texts = ["The capital of France is", "Hi there"];
    let o = logitlens(&[
        "lens", "--model", m, "--text", texts[0], "--text", texts[1], "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let body: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(body["passes"], serde_json::json!([[0, 1]]));
    for (i, text) in texts.iter().enumerate() {
        let alone = logitlens(&["lens", "--model", m, "--text", text, "--json"]);
        let alone: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
        let got = &body["results"][i];
        assert_eq!(got["input_tokens"], alone["input_tokens"], "{text}");
        same_lens_cells(got, &alone, text);
    }
    let o = logitlens(&["lens", "--model", m, "--text", texts[0], "--text", texts[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("== prompt 0: ") && out.contains("== prompt 1: "),
        "{out}"
    );
    assert_eq!(out.matches("Final Output").count(), 2, "{out}");
}
