#!/usr/bin/env python3
"""Record `logitlens lens --json` answers as golden files.

For every tiny fixture and the default SmolLM2 GGUF, under each backend that
runs it, every lens type, without interventions, with attention, and with
interventions and attention: tests/fixtures/golden/<model>.<backend>.json.
tests/golden.rs replays the same requests in-process and compares. Record
again (and say why in the commit) only when an answer is meant to change.

    cargo build --release && python3 scripts/record_golden.py [--bin target/release/logitlens]
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny")
OUT = os.path.join(ROOT, "tests", "fixtures", "golden")
TEXT = "The capital of France is"
CUSTOM_FAMILIES = {"llama", "llama3-rope-scaled", "qwen3"}
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def interventions(d_model):
    # Every stream operation, a per-position and an all-position form, two
    # keys on one hook, and blocking at every layer.
    return {
        "embeddings": [{"type": "scale", "value": 1.5, "token_index": 0}],
        "layer_0_attn_output": [{"type": "zero", "token_index": 2}],
        "layer_1_mlp_output": [{"type": "scale", "value": 0.5, "token_index": -1}],
        "blocks.1.hook_resid_post": [
            {"type": "add", "vector": [((i % 7) - 3) / 10 for i in range(d_model)]}
        ],
        "layer_1_output": [{"type": "scale", "value": 0.9}],
        "all_layers_attention": [
            {"type": "block_attention", "source_tokens": [1], "target_tokens": [-1]}
        ],
    }


def cases(d_model):
    for lens in ["block_output", "post_attention", "combined"]:
        yield f"{lens}", lens, None, False
        yield f"{lens}+attention", lens, None, True
        yield f"{lens}+interventions+attention", lens, interventions(d_model), True


def run(bin_path, model, backend, lens, iv, attention):
    cmd = [bin_path, "lens", "--model", model, "--backend", backend, "--text", TEXT,
           "--lens-type", lens, "--json"]
    if iv is not None:
        cmd += ["--interventions", json.dumps(iv)]
    if attention:
        cmd.append("--attention")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "logitlens"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    models = []
    for fam in sorted(os.listdir(TINY)):
        cfg = json.load(open(os.path.join(TINY, fam, "config.json")))
        d = cfg.get("hidden_size", cfg.get("n_embd"))
        path = os.path.join("tests", "fixtures", "tiny", fam)
        backends = ["custom", "hooked"] if fam in CUSTOM_FAMILIES else ["hooked"]
        models.append((fam, path, d, backends))
    gguf = subprocess.run([args.bin, "fetch-model"], check=True, capture_output=True,
                          text=True).stdout.strip()
    models.append(("smollm2-gguf", gguf, 576, ["custom", "hooked"]))
    for name, path, d, backends in models:
        for backend in backends:
            doc = {"model": name, "backend": backend, "text": TEXT, "cases": []}
            model_arg = path if os.path.isabs(path) else os.path.join(ROOT, path)
            for case, lens, iv, attention in cases(d):
                resp = run(args.bin, model_arg, backend, lens, iv, attention)
                doc["cases"].append({
                    "name": case, "lens_type": lens, "interventions": iv,
                    "attention": attention, "response": resp,
                })
            out = os.path.join(OUT, f"{name}.{backend}.json")
            with open(out, "w") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.write("\n")
            print(f"{out}: {len(doc['cases'])} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
