//! Fitting a Jacobian lens at the terminal and over HTTP: `fit-jlens`
//! writes the lens TransformerLens fits (within 1e-4 of its matrices), as
//! `.safetensors` or as a `.pt` it reads; Ctrl-C leaves a checkpoint that
//! `--resume` continues to the whole fit's lens; shards merge to the whole
//! fit (`merge-jlens`, from their checkpoints); `POST /fit_jlens` fits,
//! saves under saved_states/ and attaches, and continues a kept fit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::server::{detail, server_with};
use common::*;
use logitlens_engine::lens::jacobian::JacobianLens;
use logitlens_engine::ops::fit_jlens::JacobianSums;
use serde_json::{json, Value};

fn logitlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first `n` lines of the training corpus, in a file.
fn corpus_file(dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("research/corpus_train.txt")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn largest_difference(a: &JacobianLens, b: &JacobianLens) -> f32 {
    assert_eq!(a.source_layers, b.source_layers);
    a.source_layers
        .iter()
        .map(|&l| max_err(&flat(a.matrix(l).unwrap()), &flat(b.matrix(l).unwrap())))
        .fold(0.0, f32::max)
}

fn reference(family: &str) -> Vec<Vec<f32>> {
    let mut npz = Npz::open(&fixtures().join(format!("research/jlens/{family}/fit_f32.npz")));
    ["J0", "J1"]
        .iter()
        .map(|k| npz.f32(k).iter().copied().collect())
        .collect()
}

const FIT: [&str; 6] = [
    "--max-seq-len",
    "64",
    "--skip-first",
    "4",
    "--dim-batch",
    "8",
];

#[test]
fn fit_jlens_writes_transformer_lens_s_lens_as_safetensors_and_pt() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus_file(dir.path(), 12);
    let model = tiny("llama");
    let want = reference("llama");
    for name in ["lens.safetensors", "lens.pt"] {
        let out = dir.path().join(name);
        let mut args = vec!["fit-jlens", "--model", model.to_str().unwrap()];
        args.extend(["--corpus", corpus.to_str().unwrap()]);
        args.extend(FIT);
        args.extend(["--out", out.to_str().unwrap(), "--json"]);
        let body: Value = serde_json::from_str(&ok(&logitlens(&args))).unwrap();
        assert_eq!(body["n_prompts"], 12, "{body}");
        assert_eq!(body["source_layers"], json!([0, 1]));
        // Done: no checkpoint is left beside the lens.
        assert!(!dir.path().join("lens.checkpoint.safetensors").exists());
        let lens = JacobianLens::load(&out).unwrap();
        assert_eq!(lens.n_prompts, 12);
        // .pt keeps float16, as TransformerLens saves it.
        let tol = if name.ends_with(".pt") { 2e-3 } else { 1e-4 };
        for (l, w) in want.iter().enumerate() {
            let got = flat(lens.matrix(l).unwrap());
            let err = max_err(&got, w);
            assert!(err <= tol, "{name} J{l}: {err}");
        }
    }
}

#[test]
fn shards_merged_from_their_checkpoints_are_the_whole_fit() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus_file(dir.path(), 6);
    let model = tiny("qwen3");
    let fit = |out: &Path, extra: &[&str]| {
        let mut args = vec!["fit-jlens", "--model", model.to_str().unwrap()];
        args.extend(["--corpus", corpus.to_str().unwrap()]);
        args.extend(FIT);
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra);
        ok(&logitlens(&args));
    };
    let whole = dir.path().join("whole.safetensors");
    fit(&whole, &[]);
    let mut parts = Vec::new();
    for i in 0..3 {
        let out = dir.path().join(format!("part{i}.safetensors"));
        fit(&out, &["--shard", &format!("{i}/3")]);
        // A shard keeps its exact sums for the merge.
        parts.push(dir.path().join(format!("part{i}.checkpoint.safetensors")));
    }
    let merged = dir.path().join("merged.safetensors");
    let mut args = vec!["merge-jlens"];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    args.extend([
        "--out",
        merged.to_str().unwrap(),
        "--model-name",
        "tiny/qwen3",
    ]);
    ok(&logitlens(&args));
    let (a, b) = (
        JacobianLens::load(&whole).unwrap(),
        JacobianLens::load(&merged).unwrap(),
    );
    assert_eq!(b.n_prompts, 6);
    let err = largest_difference(&a, &b);
    assert!(err <= 1e-6, "merged vs whole: {err}");
    // A shard given twice would count its prompts twice.
    let twice = logitlens(&[
        "merge-jlens",
        parts[0].to_str().unwrap(),
        parts[0].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("twice"));
}

/// Ctrl-C during a fit stops it with its checkpoint; `--resume` continues
/// it to the lens a fit without a stop makes.
#[cfg(unix)]
#[test]
fn ctrl_c_leaves_a_checkpoint_that_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny("llama");
    let out = dir.path().join("lens.safetensors");
    let checkpoint = dir.path().join("lens.checkpoint.safetensors");
    // A corpus long enough that the fit is far from its end when the
    // first checkpoint appears: 4000 prompts at one dimension per backward
    // pass take minutes, so the stop lands midway unless this test stalls
    // for minutes between seeing the checkpoint and sending the signal.
    let text = std::fs::read_to_string(fixtures().join("research/corpus_train.txt")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(
        &corpus,
        lines
            .iter()
            .cycle()
            .take(4000)
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let args = |out: &Path, max: usize| -> Vec<String> {
        let mut a: Vec<String> = ["fit-jlens", "--model", model.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(
            [
                "--max-seq-len",
                "16",
                "--skip-first",
                "2",
                "--dim-batch",
                "1",
            ]
            .map(String::from),
        );
        a.extend(["--corpus".into(), corpus.display().to_string()]);
        a.extend(["--max-prompts".into(), max.to_string()]);
        a.extend(["--out".into(), out.display().to_string()]);
        a
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_logitlens"))
        .args(args(&out, 4000))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its stderr read as it comes, so the progress it writes never fills the pipe.
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    while !checkpoint.exists() {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGINT, as Ctrl-C sends it.
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!out.exists(), "a stopped fit writes no lens");
    let kept = JacobianSums::load(&checkpoint).unwrap();
    assert!(
        kept.n_done >= 1 && kept.next < 4000,
        "{} {}",
        kept.n_done,
        kept.next
    );
    // Two prompts more, from the checkpoint, and the same two without a stop.
    let until = kept.next + 2;
    let mut resumed = args(&out, until);
    resumed.extend(["--resume".into(), checkpoint.display().to_string()]);
    ok(&logitlens(
        &resumed.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let whole = dir.path().join("whole.safetensors");
    ok(&logitlens(
        &args(&whole, until)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    let (a, b) = (
        JacobianLens::load(&out).unwrap(),
        JacobianLens::load(&whole).unwrap(),
    );
    assert_eq!(a.n_prompts, b.n_prompts);
    let err = largest_difference(&a, &b);
    assert!(err <= 1e-6, "resumed vs whole: {err}");
}

#[tokio::test]
async fn the_server_fits_saves_attaches_and_resumes_a_kept_fit() {
    let s = server_with(|c| c.max_prompt_tokens = 256);
    s.load(tiny("llama")).await;
    let text = std::fs::read_to_string(fixtures().join("research/corpus_train.txt")).unwrap();
    let body = json!({"corpus": text, "max_prompts": 12, "max_seq_len": 64, "skip_first": 4});
    // Nothing kept yet: null, and resuming is refused in words.
    let (st, v) = s.get("/fit_jlens").await;
    assert_eq!((st.as_u16(), v), (200, Value::Null));
    let mut resume = body.clone();
    resume["resume"] = json!(true);
    let (st, v) = s.post("/fit_jlens", resume.clone()).await;
    assert_eq!(st, 400, "{v}");
    assert!(detail(&v).contains("resume"), "{v}");

    let (st, v) = s.post("/fit_jlens", body.clone()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["n_prompts"], 12);
    let saved = s.dir.path().join(v["saved"].as_str().unwrap());
    assert!(saved.is_file(), "{saved:?}");
    let lens = JacobianLens::load(&saved).unwrap();
    for (l, w) in reference("llama").iter().enumerate() {
        let err = max_err(&flat(lens.matrix(l).unwrap()), w);
        assert!(err <= 1e-4, "J{l}: {err}");
    }
    // Attached: the model in service reads with it.
    let (_, status) = s.get("/model_status").await;
    assert_eq!(status["jacobian_lens"]["n_prompts"], 12, "{status}");
    let (st, _) = s
        .post(
            "/inference",
            json!({"text": "The capital of France is", "lens": "jacobian"}),
        )
        .await;
    assert_eq!(st, 200);
    // The saved file is not a session.
    let (_, sessions) = s.get("/sessions").await;
    assert_eq!(sessions, json!([]));

    // A fit stopped after its first prompts leaves its sums on the server
    // (what the route keeps from the fit's steps); resume continues them.
    let model = s.state.active().unwrap().0;
    let partial = {
        use logitlens_engine::ops::corpus::Corpus;
        use logitlens_engine::ops::fit_jlens::JlensFitRequest;
        let mut req = JlensFitRequest::new(Corpus::Text(text.clone()));
        (req.max_prompts, req.max_seq_len, req.skip_first) = (Some(5), 64, 4);
        logitlens_engine::ops::execute(&model, &req).unwrap()
    };
    *s.state.kept_fit.lock().unwrap() = Some(logitlens_server::state::KeptFit {
        model: std::sync::Arc::downgrade(&model),
        sums: partial,
        total: 12,
    });
    let (_, kept) = s.get("/fit_jlens").await;
    assert_eq!(
        (&kept["n_done"], &kept["next"], &kept["total"]),
        (&json!(5), &json!(5), &json!(12))
    );
    let (st, v) = s.post("/fit_jlens", resume).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["n_prompts"], 12);
    let resumed = JacobianLens::load(&s.dir.path().join(v["saved"].as_str().unwrap())).unwrap();
    assert!(largest_difference(&resumed, &lens) <= 1e-6);
    let (_, v) = s.get("/fit_jlens").await;
    assert_eq!(v, Value::Null, "a finished fit keeps nothing");
}
