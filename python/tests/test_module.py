"""The Python module against the reference and against the CLI and server.

Run from the repository root after `pip install ./python`:
    python -m unittest discover -s python/tests -v

The tiny checkpoints and what HF transformers computed for them are
tests/fixtures/tiny/<family>/ (reference.npz, reference.json); the CLI is
target/debug/logitlens (or $LOGITLENS_BIN); the SmolLM2 tests use the
default GGUF, fetched by `logitlens fetch-model` (they are skipped without it
unless $LOGITLENS_REQUIRE_SMOLLM2 is set, as the test script sets it).
"""

import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

import logitlens

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny"
FAMILIES = sorted(p.name for p in TINY.iterdir() if (p / "reference.npz").exists())
BIN = Path(os.environ.get("LOGITLENS_BIN", ROOT / "target" / "debug" / "logitlens"))
SMOLLM2 = Path.home() / ".cache" / "logitlens" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

TOL = 1e-5
# transformers' own float32 error on the longest prompt's residual stream of
# two fixtures (tests/hooked_reference.rs measures it against a float64
# forward): only their residual states and logits get this.
REFERENCE_NOISE = {"qwen2": 1.5e-5, "phi3": 1.5e-5}


def smollm2_or_skip(test):
    if SMOLLM2.exists():
        return test
    if os.environ.get("LOGITLENS_REQUIRE_SMOLLM2"):
        raise AssertionError(f"the default model is missing: {SMOLLM2}")
    return unittest.skip("the default SmolLM2 GGUF is not fetched")(test)


def cli(*args):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True)

class Server:
    """`logitlens serve` on a free port with `model`, its data in `data`."""

    def __init__(self, model, data):
        import re

        self.process = subprocess.Popen(
            [str(BIN), "serve", "--port", "0", "--model", str(model), "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            text=True,
        )
        # The server names its port once it listens.
        for line in self.process.stdout:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                break
        else:
            raise AssertionError("the server ended without listening")
        self.base = f"http://127.0.0.1:{found.group(1)}"
        # Its log goes on: read, so that a full pipe never stops it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        # The model is in service once /inference answers (409 while it loads).
        for _ in range(600):
            try:
                self.headers, _ = self.post("/inference", {"text": "Hi"})
                return
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                time.sleep(0.1)

    def post(self, path, body):
        req = urllib.request.Request(self.base + path, json.dumps(body).encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.headers, json.loads(r.read())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait()
        self.process.stdout.close()


class TinyReference(unittest.TestCase):
    """run_with_cache's arrays are what HF transformers computes."""

    def check_family(self, family, backend):
        model = logitlens.Model.load(str(TINY / family), backend=backend)
        ref = np.load(TINY / family / "reference.npz")
        prompts = json.loads((TINY / family / "reference.json").read_text())["prompts"]
        n = model.config["n_layers"]
        for i, prompt in enumerate(prompts):
            at = f"{family} ({backend}) p{i}"
            self.assertEqual(model.tokenize(prompt["text"]), list(ref[f"p{i}_ids"]), at)
            logits, cache = model.run_with_cache(prompt["text"], progress=False)
            noise = REFERENCE_NOISE.get(family, TOL) if i == 2 else TOL

            def close(got, want, what, tol=TOL):
                self.assertEqual(got.shape, want.shape, f"{at} {what}")
                # Relative where the reference is over 1 in size, as the
                # engine's own reference tests measure (tests/common).
                want = want.astype(np.float64)
                err = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))
                self.assertLessEqual(err, tol, f"{at} {what}: off by {err:.3g}")

            for l in range(n):
                close(cache[f"blocks.{l}.hook_resid_pre"], ref[f"p{i}_resid_pre"][l], f"resid_pre {l}", noise)
                close(cache[f"blocks.{l}.hook_resid_mid"], ref[f"p{i}_resid_mid"][l], f"resid_mid {l}", noise)
                close(cache[f"blocks.{l}.hook_attn_out"], ref[f"p{i}_attn_out"][l], f"attn_out {l}")
                close(cache[f"blocks.{l}.hook_mlp_out"], ref[f"p{i}_mlp_out"][l], f"mlp_out {l}")
                close(cache[f"blocks.{l}.attn.hook_pattern"], ref[f"p{i}_attn_pattern"][l], f"pattern {l}")
            close(cache[f"blocks.{n - 1}.hook_resid_post"], ref[f"p{i}_resid_pre"][n], "resid_post", noise)
            for l in range(n):
                # The scores are the pattern before its softmax, the future masked out.
                scores = cache[f"blocks.{l}.attn.hook_attn_scores"].astype(np.float64)
                t = scores.shape[-1]
                self.assertTrue(np.isneginf(scores[:, np.triu_indices(t, 1)[0], np.triu_indices(t, 1)[1]]).all(), at)
                e = np.exp(scores - scores.max(-1, keepdims=True))
                close(e / e.sum(-1, keepdims=True), ref[f"p{i}_attn_pattern"][l], f"softmax(scores) {l}")
            close(logits, ref[f"p{i}_logits"], "logits", noise)

    def test_every_family_on_the_hooked_backend(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                self.check_family(family, "hooked")

    def test_llama_and_qwen3_on_the_custom_backend(self):
        for family in ["llama", "qwen3"]:
            with self.subTest(family=family):
                self.check_family(family, "custom")

    def test_embeddings_add_up_to_the_first_stream(self):
        for family in ["gpt2", "llama"]:
            model = logitlens.Model.load(str(TINY / family), backend="hooked")
            _, cache = model.run_with_cache("Hello world", progress=False)
            start = cache["blocks.0.hook_resid_pre"]
            if family == "gpt2":
                np.testing.assert_array_equal(cache["hook_embed"] + cache["hook_pos_embed"], start)
            else:
                self.assertNotIn("hook_pos_embed", cache)
                np.testing.assert_array_equal(cache["hook_embed"], start)

    def test_arrays_are_views_of_the_engines_memory(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        logits, cache = model.run_with_cache("Hello world", names=lambda n: n.endswith("resid_post"))
        self.assertEqual(sorted(cache), [f"blocks.{l}.hook_resid_post" for l in range(3)])
        for a in [logits, *cache.values()]:
            self.assertFalse(a.flags.owndata)
            self.assertFalse(a.flags.writeable)
            self.assertEqual(type(a.base).__name__, "Held")
        # The views outlive everything else that referred to the run.
        del model
        self.assertTrue(np.isfinite(logits).all())
        with self.assertRaises(ValueError) as e:
            logitlens.Model.load(str(TINY / "llama")).run_with_cache("Hi", names=["blocks.9.hook_resid_pre"])
        self.assertIn("blocks.9.hook_resid_pre", str(e.exception))


class Hooks(unittest.TestCase):
    """Python functions at hooks act as the engine's own interventions."""

    @classmethod
    def setUpClass(cls):
        cls.model = logitlens.Model.load(str(TINY / "llama"))

    def test_a_returned_array_replaces_the_activation(self):
        text = "The cat sat on the mat"
        got = self.model.run_with_hooks(text, {"blocks.1.hook_resid_post": lambda a, info: a * 0.5}, progress=False)
        scale = {"blocks.1.hook_resid_post": [{"type": "scale", "value": 0.5}]}
        want = self.model.run(text, interventions=scale, progress=False).logits
        np.testing.assert_array_equal(got, want)

    def test_an_edit_in_place_goes_on(self):
        seen = []

        def zero_last(a, info):
            seen.append(info)
            a[-1] = 0

        text = "The cat sat on the mat"
        got = self.model.run_with_hooks(text, {"blocks.0.hook_mlp_out": zero_last}, progress=False)
        zero = {"blocks.0.hook_mlp_out": [{"type": "zero", "token_index": -1}]}
        want = self.model.run(text, interventions=zero, progress=False).logits
        np.testing.assert_array_equal(got, want)
        t = len(self.model.tokenize(text))
        self.assertEqual(seen, [{"name": "blocks.0.hook_mlp_out", "layer": 0, "positions": list(range(t))}])

    def test_errors(self):
        class Mine(Exception):
            pass

        def boom(a, info):
            raise Mine("from the hook")

        with self.assertRaises(Mine):
            self.model.run_with_hooks("Hi there", {"blocks.2.hook_attn_out": boom}, progress=False)
        with self.assertRaises(ValueError) as e:
            self.model.run_with_hooks("Hi there", {"blocks.2.hook_attn_out": lambda a, i: a[:1]}, progress=False)
        self.assertIn("shape", str(e.exception))
        with self.assertRaises(ValueError):
            self.model.run_with_hooks("Hi there", {"blocks.7.hook_resid_pre": lambda a, i: None}, progress=False)
        with self.assertRaises(ValueError):
            self.model.run_with_hooks("Hi there", {"blocks.0.hook_nothing": lambda a, i: None}, progress=False)
        # The model runs on as before.
        self.assertEqual(self.model.run_with_hooks("Hi there", {}, progress=False).shape[1], 512)


class SameAnswersAsTheCli(unittest.TestCase):
    """run(...).to_dict() is `logitlens lens --json`, number for number, and a
    bad request raises with the words the CLI and the server say."""

    def test_to_dict_equals_lens_json(self):
        cases = [
            ("llama", "custom", {"lens_type": "block_output"}),
            ("qwen3", "custom", {"lens_type": "combined"}),
            ("gpt2", "hooked", {"lens_type": "post_attention"}),
            (
                "llama",
                "custom",
                {
                    "lens_type": "block_output",
                    "interventions": {"layer_1_output": [{"type": "scale", "value": 0.5, "token_index": -1}]},
                },
            ),
        ]
        text = "The cat sat on the mat"
        for family, backend, request in cases:
            with self.subTest(family=family, request=request):
                model = logitlens.Model.load(str(TINY / family), backend=backend)
                got = model.run(text, progress=False, **request).to_dict()
                args = ["lens", "--json", "--model", str(TINY / family), "--backend", backend, "--text", text]
                args += ["--lens-type", request["lens_type"]]
                if "interventions" in request:
                    args += ["--interventions", json.dumps(request["interventions"])]
                out = cli(*args)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(got, json.loads(out.stdout))

    def test_a_list_of_texts_is_one_batch_as_the_cli_runs_it(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        texts = ["The cat sat on the mat", "Once upon a time", "Hi"]
        runs = model.run(texts, lens_type="combined", progress=False)
        self.assertEqual(len(runs), 3)
        args = ["lens", "--json", "--model", str(TINY / "llama"), "--lens-type", "combined"]
        for t in texts:
            args += ["--text", t]
        out = cli(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        body = json.loads(out.stdout)
        self.assertEqual([r.to_dict() for r in runs], body["results"])
        self.assertEqual([r.str_tokens[-1] for r in runs], [b["input_tokens"][-1] for b in body["results"]])
        # Fields of their own: a prompt with an intervention shares the pass
        # (its answer its single run's, probabilities within 1e-6); one that
        # blocks attention runs alone, and its answer is its single run's.
        scaled = {"layer_1_output": [{"type": "scale", "value": 0.5, "token_index": -1}]}
        blocked = {"layer_1_attention": [{"type": "block_attention", "source_tokens": [0], "target_tokens": [-1]}]}
        batch = model.run_batch(
            [
                {"text": texts[0]},
                {"text": texts[1], "interventions": scaled},
                {"text": texts[2]},
                {"text": texts[0], "interventions": blocked},
            ],
            progress=False,
        )
        self.assertEqual(sorted(map(sorted, batch.passes)), [[0, 1, 2], [3]])
        alone = model.run(texts[1], interventions=scaled, progress=False).to_dict()
        got = batch[1].to_dict()
        self.assertEqual(got["receipts"][0]["positions"], alone["receipts"][0]["positions"])
        for g, a in zip(got["logit_lens"], alone["logit_lens"]):
            for gc, ac in zip(g["predictions"], a["predictions"]):
                self.assertEqual(gc[0]["id"], ac[0]["id"])
                np.testing.assert_allclose([p["prob"] for p in gc], [p["prob"] for p in ac], atol=1e-6)
        self.assertEqual(batch[3].to_dict(), model.run(texts[0], interventions=blocked, progress=False).to_dict())
        self.assertEqual(batch.to_dict()["passes"], batch.passes)
        np.testing.assert_allclose(batch[0].logits, model.run(texts[0], progress=False).logits, atol=1e-6)
        with self.assertRaises(ValueError) as e:
            model.run_batch([], progress=False)
        self.assertIn("no prompts", str(e.exception))
        with self.assertRaises(ValueError) as e:
            model.run(texts, interventions={"layer_99_output": [{"type": "zero", "token_index": 0}]}, progress=False)
        self.assertIn("prompt 0", str(e.exception))
        self.assertIn("99", str(e.exception))

    def test_patch_generate_and_eval_lens_equal_the_clis(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        tiny = ["--model", str(TINY / "llama")]

        def timeless(d):
            # Wall-clock seconds are the one field two runs do not share.
            return {k: timeless(v) for k, v in d.items() if k != "seconds"} if isinstance(d, dict) else d

        metric = {"type": "logit_diff", "correct": 10, "wrong": 11}
        got = model.patch("The cat sat", "The bat sat", hook="mlp_out", metric=metric, progress=False)
        out = cli("patch", *tiny, "--clean", "The cat sat", "--corrupted", "The bat sat", "--hook", "mlp_out",
                  "--metric", json.dumps(metric), "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(timeless(got), timeless(json.loads(out.stdout)))
        self.assertEqual(np.array(got["values"]).shape, (3, len(got["positions"])))

        steps = []
        run = model.generate("Once upon", 4, stop_at_eos=False, on_step=steps.append, progress=False)
        out = cli("generate", *tiny, "--text", "Once upon", "--max-new-tokens", "4", "--no-stop", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(run.to_dict(), json.loads(out.stdout))
        self.assertEqual([s["index"] for s in steps], list(range(len(steps))))
        self.assertEqual(len(steps), 5)
        self.assertEqual(run.logits.shape[0], len(run.tokens))

        corpus = ROOT / "target" / "python-test-corpus.txt"
        corpus.write_text("The cat sat on the mat\nOnce upon a time there was a dog\n")
        got = model.eval_lens(corpus=corpus.read_text(), max_tokens=16, progress=False)
        out = cli("eval-lens", *tiny, "--corpus", str(corpus), "--max-tokens", "16", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(timeless(got), timeless(json.loads(out.stdout)))
        with self.assertRaises(ValueError) as e:
            model.eval_lens(progress=False)
        self.assertIn("give corpus", str(e.exception))

    def test_run_arrays_are_the_answers_grid(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        run = model.run("Hello world", entropy=True, progress=False)
        answer = run.to_dict()
        rows, t = len(answer["logit_lens"]), len(answer["input_tokens"])
        self.assertEqual(run.top_ids.shape, (rows, t, 5))
        self.assertEqual(run.top_probs.shape, (rows, t, 5))
        self.assertEqual(run.entropy.shape, (rows, t))
        self.assertEqual(run.top_ids[1, 2, 0], answer["logit_lens"][1]["predictions"][2][0]["id"])
        self.assertEqual(list(run.tokens), model.tokenize("Hello world"))
        # The last row is the model's own output.
        probs = np.exp(run.logits - run.logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        np.testing.assert_allclose(run.top_probs[-1, :, 0], probs.max(-1), atol=1e-6)

    def test_bad_requests_raise_the_servers_words(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        bad = {"layer_99_output": [{"type": "zero"}]}
        with self.assertRaises(ValueError) as e:
            model.run("Hello", interventions=bad)
        out = cli("lens", "--model", str(TINY / "llama"), "--text", "Hello", "--interventions", json.dumps(bad))
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(str(e.exception), out.stderr)
        self.assertIn("layer 99 is out of range", str(e.exception))
        with self.assertRaises(ValueError):
            model.run("Hello", lens_type="sideways")

        with self.assertRaises(FileNotFoundError):
            logitlens.Model.load(str(TINY / "no_such_model"))


class LensesAndSaes(unittest.TestCase):
    """Tuned and Jacobian lenses and SAEs, attached from Python, answer as
    the CLI does with the same files (which tests/*.rs hold to the
    tuned-lens package, TransformerLens and SAELens)."""

    RESEARCH = ROOT / "tests" / "fixtures" / "research"
    TEXT = "The cat sat on the mat"

    def same_as_cli(self, got, *args):
        out = cli(*args, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(got, json.loads(out.stdout))

    def test_a_tuned_lens(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        lens = self.RESEARCH / "tuned" / "llama"
        self.assertIsNone(model.attach_tuned_lens(lens))
        got = model.run(self.TEXT, lens="tuned", progress=False).to_dict()
        self.same_as_cli(got, "lens", "--model", str(TINY / "llama"), "--text", self.TEXT, "--tuned-lens", str(lens))

    def test_a_jacobian_lens_read_and_fitted(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        lens = self.RESEARCH / "jlens" / "llama" / "jlens.pt"
        model.attach_jacobian_lens(lens)
        steer = {"blocks.1.hook_resid_post": [{"type": "jlens_steer", "token": 10, "alpha": 2.0}]}
        got = model.run(self.TEXT, lens="jacobian", interventions=steer, progress=False).to_dict()
        self.same_as_cli(
            got, "lens", "--model", str(TINY / "llama"), "--text", self.TEXT, "--jacobian-lens", str(lens),
            "--interventions", json.dumps(steer),
        )
        # A fit from Python is the CLI's fit: the same lens reads the same.
        corpus = self.RESEARCH / "corpus.txt"
        lines = corpus.read_text().splitlines()[:4]
        fitted = ROOT / "target" / "python-test-jlens.safetensors"
        done = model.fit_jlens(fitted, corpus="\n".join(lines), max_seq_len=24, skip_first=2, progress=False)
        self.assertEqual(done["n_prompts"] + done["skipped"], 4)
        short = ROOT / "target" / "python-test-corpus-4.txt"
        short.write_text("\n".join(lines) + "\n")
        cli_fit = ROOT / "target" / "python-test-jlens-cli.safetensors"
        out = cli("fit-jlens", "--model", str(TINY / "llama"), "--corpus", str(short), "--max-seq-len", "24",
                  "--skip-first", "2", "--out", str(cli_fit))
        self.assertEqual(out.returncode, 0, out.stderr)
        got = model.run(self.TEXT, lens="jacobian", progress=False).to_dict()
        self.same_as_cli(got, "lens", "--model", str(TINY / "llama"), "--text", self.TEXT, "--jacobian-lens", str(cli_fit))

    def test_saes(self):
        model = logitlens.Model.load(str(TINY / "llama"))
        sae = self.RESEARCH / "sae" / "llama" / "relu_resid_post_1"
        self.assertEqual(list(model.attach_saes(sae)), ["relu_resid_post_1"])
        splice = {"blocks.1.hook_resid_post": [{"type": "sae_splice", "sae": "relu_resid_post_1"}]}
        run = model.run(self.TEXT, sae=True, sae_top_k=0, interventions=splice, progress=False)
        tiny = ["--model", str(TINY / "llama"), "--sae", str(sae)]
        self.same_as_cli(run.to_dict(), "lens", *tiny, "--text", self.TEXT, "--sae-top-k", "0",
                         "--interventions", json.dumps(splice))
        got = model.sae_features("relu_resid_post_1", [3, 5], k=4)
        self.same_as_cli(got, "sae-features", *tiny, "--features", "3,5", "--k", "4")
        # With a run: each feature's activation at every position of it.
        acts = model.sae_features("relu_resid_post_1", [3], run=run)["activations"]
        self.assertEqual(len(acts[0]), len(run.tokens))
        corpus = ROOT / "target" / "python-test-corpus.txt"
        corpus.write_text("The cat sat on the mat\nOnce upon a time there was a dog\n")
        got = model.eval_sae(corpus=corpus.read_text(), max_tokens=16, progress=False)
        out = cli("eval-sae", *tiny, "--corpus", str(corpus), "--max-tokens", "16", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        want = json.loads(out.stdout)
        drop = lambda d: {k: drop(v) for k, v in d.items() if k != "seconds"} if isinstance(d, dict) else d
        self.assertEqual(drop(got), drop(want))
        with self.assertRaises(ValueError):
            model.sae_features("no_such_sae", [1])
        with self.assertRaises(ValueError):
            model.detach_saes("relu_resid_post_1", "no_such_sae")
        model.detach_saes("relu_resid_post_1")
        with self.assertRaises(ValueError):
            model.sae_features("relu_resid_post_1", [1])

    def test_a_corpus_scan_and_a_lens_vector_are_the_servers(self):
        import tempfile

        model = logitlens.Model.load(str(TINY / "llama"))
        sae = self.RESEARCH / "sae" / "llama" / "relu_resid_post_1"
        lens = self.RESEARCH / "jlens" / "llama" / "jlens.pt"
        with self.assertRaises(ValueError) as e:
            model.lens_vector(" the")
        self.assertIn("no Jacobian lens is attached", str(e.exception))
        model.attach_saes(sae)
        model.attach_jacobian_lens(lens)
        scan = {"corpus": "The cat sat on the mat\nOnce upon a time there was a dog\n", "max_tokens": 16, "contexts": 3}
        got_scan = model.sae_feature_corpus("relu_resid_post_1", 3, progress=False, **scan)
        got_vector = model.lens_vector(" the", k=5)
        with tempfile.TemporaryDirectory() as data, Server(TINY / "llama", data) as server:
            server.post("/load_sae", {"saes": [{"path": str(sae)}]})
            server.post("/load_lens", {"path": str(lens)})
            _, want_scan = server.post("/sae_feature_corpus", dict(scan, sae="relu_resid_post_1", feature=3))
            _, want_vector = server.post("/lens_vector", {"token": " the", "k": 5})
        self.assertEqual(got_scan, want_scan)
        self.assertEqual(got_vector, want_vector)


class Sessions(unittest.TestCase):
    """A session the server saved opens in numpy, its arrays views of the file."""

    def test_a_saved_session_opens_as_arrays(self):
        import tempfile

        with tempfile.TemporaryDirectory() as data:
            with Server(TINY / "llama", data) as server:
                headers, _ = server.post("/inference", {"text": "The cat sat on the mat"})
                _, saved = server.post("/save_state", {"name": "py", "run_id": int(headers["x-logitlens-run-id"])})
            session = logitlens.load_session(Path(data) / "saved_states" / saved["session_id"])
            model = logitlens.Model.load(str(TINY / "llama"))
            self.assertEqual(session.input_ids, model.tokenize("The cat sat on the mat"))
            _, cache = model.run_with_cache("The cat sat on the mat", progress=False)
            states = session["hidden_states"]
            self.assertEqual(states.shape[:2], (4, 1))
            for l in range(3):
                np.testing.assert_allclose(states[l + 1, 0], cache[f"blocks.{l}.hook_resid_post"], atol=1e-6)
            self.assertEqual(len(session.layer_names), 4)
            np.testing.assert_array_equal(session.state(session.layer_names[1]), states[1, 0])
            for a in session.values():
                self.assertFalse(a.flags.owndata)
                self.assertFalse(a.flags.writeable)
            with self.assertRaises(FileNotFoundError):
                logitlens.load_session(Path(data) / "nothing")


class WhileItRuns(unittest.TestCase):
    """The GIL is free while the engine computes, and Ctrl-C stops it."""

    @classmethod
    def setUpClass(cls):
        if SMOLLM2.exists():
            cls.model = logitlens.Model.load(str(SMOLLM2))

    @smollm2_or_skip
    def test_another_thread_runs_meanwhile(self):
        # The other thread wakes every millisecond and counts while it holds
        # the GIL: if the run held it throughout, the count could not move
        # while the run computes; released, it moves hundreds of times a
        # second however busy the cores are.
        counted = [0]
        stop = threading.Event()

        def count():
            while not stop.is_set():
                counted[0] += 1
                time.sleep(0.001)

        thread = threading.Thread(target=count)
        thread.start()
        marks = []
        try:
            # Read from inside the run (its progress, at each layer), so
            # that only the run's own time is counted.
            self.model.run(
                "The Eiffel Tower is located in the city of Paris. " * 16,
                progress=lambda stage, done, total: marks.append(counted[0]),
            )
        finally:
            stop.set()
            thread.join()
        self.assertGreaterEqual(len(marks), 2)
        self.assertGreater(marks[-1] - marks[0], 5, marks)

    @smollm2_or_skip
    def test_ctrl_c_stops_a_long_run(self):
        text = "The Eiffel Tower is located in the city of Paris. " * 120
        main = threading.get_ident()
        sent = []

        def interrupt():
            sent.append(time.monotonic())
            signal.pthread_kill(main, signal.SIGINT)

        timer = threading.Timer(0.5, interrupt)
        timer.start()
        started = time.monotonic()
        finished = []
        with self.assertRaises(KeyboardInterrupt):
            self.model.run(text, progress=False)
            finished.append(time.monotonic())
            # Let the signal land here rather than in a later test.
            timer.join()
            time.sleep(0.2)
        # A run that ends before the signal proves nothing.
        self.assertFalse(finished, "the run ended before it was interrupted: make the text longer")
        stopped = time.monotonic() - sent[0]
        print(f"\n  stopped {stopped:.3f} s after Ctrl-C ({time.monotonic() - started:.2f} s in all)")
        # The model answers right after, and a stopped run left nothing behind.
        self.assertEqual(len(self.model.run("Hi", progress=False).tokens), 1)
        self.assertLess(stopped, 5.0)

    @smollm2_or_skip
    def test_a_run_bigger_than_free_memory_is_refused_with_numbers(self):
        # Every layer's attention of 8000 tokens: 30 x 9 x 8000^2 floats,
        # about 65 GiB (83 GiB in all), refused before anything is computed.
        with open("/proc/meminfo") as f:
            free_kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable"))
        if free_kib > 80 << 20:
            self.skipTest("this machine has the memory to run it")
        with self.assertRaises(MemoryError) as e:
            self.model.run(" the" * 8000, return_attention=True, progress=False)
        self.assertRegex(str(e.exception), r"would need about \d+ MiB .*; this machine has \d+ MiB free")

    @smollm2_or_skip
    def test_progress_reaches_a_callback(self):
        heard = []
        self.model.run("The Eiffel Tower is located in", progress=lambda *a: heard.append(a))
        stages = {s for s, _, _ in heard}
        self.assertIn("forward", stages)
        self.assertTrue(all(done <= total for _, done, total in heard))
        self.assertTrue(any(done == total for _, done, total in heard))


class Notebook(unittest.TestCase):
    """examples/notebook.ipynb is its script's cells, and the script runs."""

    def test_the_notebook_is_its_script(self):
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from notebook_cells import NOTEBOOK, SCRIPT, cells_in, cells_of

        self.assertEqual(cells_in(json.loads(NOTEBOOK.read_text())), cells_of(SCRIPT.read_text()))

    @smollm2_or_skip
    def test_the_script_runs_and_draws(self):
        import sys
        import tempfile

        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run(
                [sys.executable, str(ROOT / "examples" / "notebook.py"), out], capture_output=True, text=True
            )
            self.assertEqual(done.returncode, 0, done.stderr)
            figures = sorted(p.name for p in Path(out).iterdir())
            self.assertEqual(figures, ["lens_grid.png", "patching.png", "resid_norms.png", "steering.png"])
            # The steering moves the answer from Paris to Rome, as the engine's own add does.
            self.assertIn("top token: ' Paris' -> ' Rome'; the same logits as the hook at scale 1: True", done.stdout)


if __name__ == "__main__":
    unittest.main()
