"""logitlens: look inside an LLM from Python.

The engine is the Rust one the ``logitlens`` server and CLI run (a native
module, ``logitlens._logitlens``); this package spells its calls the
TransformerLens way and the REST API's way:

    >>> import logitlens
    >>> model = logitlens.Model.load()            # SmolLM2-135M (GGUF) by default
    >>> run = model.run("The Eiffel Tower is in", entropy=True)
    >>> run.to_dict()                             # what POST /inference answers
    >>> a, b = model.run(["Paris is in", "Rome is in"])  # one batch, a Run each
    >>> logits, cache = model.run_with_cache("The Eiffel Tower is in")
    >>> cache["blocks.3.hook_resid_post"].shape   # (T, d_model), a numpy view

Arrays of a cache are views of the engine's memory (``arr.flags.owndata``
is False, ``arr.base`` keeps it alive), read-only. Calls release the GIL
while the engine computes; Ctrl-C stops them; ``progress=`` takes a
callback ``(stage, done, total)``, ``True`` for a tqdm bar (when tqdm is
installed), ``False`` for none.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union, overload

import numpy as np

from ._logitlens import Model as _NativeModel
from ._logitlens import Run as _NativeRun
from ._logitlens import __version__
from .session import Session, load_session

__all__ = ["Batch", "Model", "Run", "Session", "load_session", "__version__"]

Progress = Union[None, bool, Callable[[str, int, int], Any]]


def _progress(progress: Progress) -> Optional[Callable[[str, int, int], Any]]:
    """The callback the engine hears progress through: the caller's, a tqdm
    bar (``True``, or by default when tqdm is installed), or none."""
    if callable(progress):
        return progress
    if progress is False:
        return None
    try:
        from tqdm.auto import tqdm  # type: ignore
    except ImportError:
        if progress is True:
            raise ImportError("progress=True draws a tqdm bar: pip install tqdm") from None
        return None
    bars: Dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            # A bar only for what takes a while: none for a short call.
            bar = bars[stage] = tqdm(total=total, desc=stage, leave=False, delay=0.5)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


class Run:
    """One run's answer: ``to_dict()`` is exactly what ``POST /inference``
    returns for the same request; the grid as arrays beside it."""

    def __init__(self, native: _NativeRun) -> None:
        self._native = native
        self._dict: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        """The answer as POST /inference returns it (a fresh copy)."""
        return self._native.to_dict()

    def to_json(self) -> str:
        """The answer's JSON text, as the server writes it."""
        return self._native.to_json()

    @property
    def _answer(self) -> Dict[str, Any]:
        if self._dict is None:
            self._dict = self._native.to_dict()
        return self._dict

    @property
    def tokens(self) -> np.ndarray:
        """The input's token ids, ``[T]``."""
        return np.asarray(self._native.tokens, dtype=np.int64)

    @property
    def str_tokens(self) -> List[str]:
        """Each input token as decoded alone."""
        return list(self._answer["input_tokens"])

    @property
    def row_names(self) -> List[str]:
        """The lens rows' names, top to bottom as the answer lists them."""
        return [row["layer_name"] for row in self._answer["logit_lens"]]

    @property
    def top_ids(self) -> np.ndarray:
        """Each lens row's top token ids at every position, ``[rows, T, k]``."""
        rows = self._answer["logit_lens"]
        return np.array([[[p["id"] for p in cell] for cell in r["predictions"]] for r in rows], dtype=np.int64)

    @property
    def top_probs(self) -> np.ndarray:
        """Their probabilities, ``[rows, T, k]``."""
        rows = self._answer["logit_lens"]
        return np.array([[[p["prob"] for p in cell] for cell in r["predictions"]] for r in rows], dtype=np.float64)

    @property
    def entropy(self) -> Optional[np.ndarray]:
        """Each cell's entropy in nats, ``[rows, T]`` (asked with ``entropy=True``)."""
        e = self._answer.get("entropy")
        return None if e is None else np.array(e, dtype=np.float64)

    @property
    def logits(self) -> np.ndarray:
        """The model's output logits, ``[T, V]`` (a view of the engine's memory)."""
        return self._native.logits

    def __repr__(self) -> str:
        return f"Run({len(self._native.tokens)} tokens, {len(self.row_names)} lens rows)"


class Batch:
    """The runs of one ``POST /inference_batch``: ``runs`` in request order,
    ``passes`` the prompts (indices) each pass through the model carried."""

    def __init__(self, runs: List[Run], passes: List[List[int]]) -> None:
        self.runs = runs
        self.passes = passes

    def to_dict(self) -> Dict[str, Any]:
        """The answer as POST /inference_batch returns it."""
        return {"results": [r.to_dict() for r in self.runs], "passes": [list(p) for p in self.passes]}

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int) -> Run:
        return self.runs[i]

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __repr__(self) -> str:
        return f"Batch({len(self.runs)} runs in {len(self.passes)} passes)"


class Model:
    """A model loaded into the logitlens engine."""

    def __init__(self, native: _NativeModel) -> None:
        self._native = native

    @classmethod
    def load(
        cls,
        path_or_hub_id: Optional[str] = None,
        backend: str = "custom",
        weights: str = "auto",
        dtype: Optional[str] = None,
    ) -> "Model":
        """Load a model: a Hugging Face folder, a ``.gguf`` file or a Hub id
        (``org/name[@revision]``); ``None`` loads the default SmolLM2-135M
        GGUF. ``backend``: ``custom`` (Llama, Qwen3) or ``hooked`` (every
        family); ``weights``: ``auto``, ``f32`` or ``stored``; ``dtype``:
        ``f32``, ``f64`` or ``auto`` (the default: f64 for test-sized models)."""
        return cls(_NativeModel.load(path_or_hub_id, backend, weights, dtype))

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def config(self) -> Dict[str, Any]:
        """``n_layers``, ``d_model``, ``n_heads``, ``d_head``, ``d_mlp``,
        ``d_vocab``, ``n_ctx``, ``family``, ``backend``, ``dtype``."""
        return self._native.config

    def tokenize(self, text: str, chat: bool = False) -> List[int]:
        """Token ids of ``text`` as the model reads it (``chat``: in its chat template)."""
        return self._native.tokenize(text, chat)

    def to_str_tokens(self, ids: Iterable[int]) -> List[str]:
        """Each id decoded alone."""
        return self._native.to_str_tokens([int(i) for i in ids])

    @overload
    def run(self, text: str, *, progress: Progress = None, **request: Any) -> Run: ...

    @overload
    def run(self, text: Sequence[str], *, progress: Progress = None, **request: Any) -> List[Run]: ...

    def run(self, text: Union[str, Sequence[str]], *, progress: Progress = None, **request: Any) -> Union[Run, List[Run]]:
        """The lens run ``POST /inference`` makes, with every field it takes
        as a keyword (``lens_type``, ``lens``, ``interventions``, ``compare``,
        ``track_tokens``, ``entropy``, ``attribution``, ``apply_chat_template``,
        ``return_attention``, ``sae``...), spelled as its JSON. A request the
        server would answer with a 400 raises ValueError with its words.

        A list of texts is one ``POST /inference_batch``: the prompts go
        through the model together, each with the same fields, and a
        ``Run`` comes back for each, in order (``run_batch`` for prompts
        with fields of their own)."""
        if isinstance(text, str):
            body = dict(request, text=text)
            return Run(self._native.run_json(json.dumps(body), _progress(progress)))
        texts = list(text)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("run takes a text or a list of texts")
        return self.run_batch([dict(request, text=t) for t in texts], progress=progress).runs

    def run_batch(self, requests: Sequence[Dict[str, Any]], *, progress: Progress = None) -> "Batch":
        """Several ``POST /inference`` bodies in one ``POST /inference_batch``:
        each prompt's ``Run`` in order, and the passes that carried them."""
        body = {"requests": list(requests)}
        runs, passes = self._native.run_batch_json(json.dumps(body), _progress(progress))
        return Batch([Run(r) for r in runs], passes)

    def run_with_cache(
        self,
        text: str,
        names: Union[None, List[str], Callable[[str], bool]] = None,
        *,
        chat: bool = False,
        progress: Progress = None,
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """One forward pass with its states kept: ``(logits [T, V], cache)``,
        the cache keyed by TransformerLens hook names (``hook_embed``,
        ``hook_pos_embed`` with learned positions,
        ``blocks.{l}.hook_resid_pre`` / ``hook_resid_mid`` /
        ``hook_resid_post`` / ``hook_attn_out`` / ``hook_mlp_out``
        ``[T, d_model]``, ``blocks.{l}.attn.hook_pattern`` and
        ``attn.hook_attn_scores`` (before the softmax, the masked ones -inf)
        ``[H, T, T]``).
        ``names``: a list, or a filter on the names (all by default)."""
        if callable(names):
            keep = names
            names = [n for n in self.hook_names() if keep(n)]
        return self._native.run_with_cache(text, names, chat, _progress(progress))

    def run_with_hooks(
        self,
        text: str,
        hooks: Dict[str, Callable[[np.ndarray, Dict[str, Any]], Optional[np.ndarray]]],
        *,
        chat: bool = False,
        progress: Progress = None,
    ) -> np.ndarray:
        """One forward pass with your functions at hook points, the
        TransformerLens way: ``hooks`` maps a hook name
        (``blocks.3.hook_resid_post``...) to ``fn(activation, info)``, which
        gets a writable copy of the activation (``[T, d_model]``) and
        ``info`` (``name``, ``layer``, ``positions``) and returns the array
        to go on with, or ``None`` to go on with the copy as it left it.
        Returns the logits ``[T, V]``. An exception in a hook stops the run
        and is raised as it was."""
        return self._native.run_with_hooks(text, hooks, chat, _progress(progress))

    def patch(
        self,
        clean_text: str,
        corrupted_text: str,
        *,
        hook: str = "resid_pre",
        metric: Dict[str, Any],
        positions: Union[None, str, List[int]] = None,
        apply_chat_template: bool = False,
        progress: Progress = None,
    ) -> Dict[str, Any]:
        """An activation-patching sweep, what ``POST /patch`` answers: the
        corrupted text run with the hook's activation at each layer and
        position taken from the clean text's run, ``metric`` (``{"type":
        "logit_diff", "correct": TOKEN, "wrong": TOKEN}`` or ``{"type":
        "prob", "token": TOKEN}``) read at the last position. ``values`` and
        ``normalized`` are ``[layer][position]``; ``np.array(...)`` them."""
        body: Dict[str, Any] = {
            "clean_text": clean_text,
            "corrupted_text": corrupted_text,
            "hook": hook,
            "metric": metric,
            "apply_chat_template": apply_chat_template,
        }
        if positions is not None:
            body["positions"] = positions
        return json.loads(self._native.patch_json(json.dumps(body), _progress(progress)))

    def eval_lens(self, *, progress: Progress = None, **request: Any) -> Dict[str, Any]:
        """The lenses measured over a corpus, what ``POST /eval_lens``
        answers: ``corpus`` (one document per line) or ``sample`` (documents
        sampled from the model, ``seed``), ``max_tokens`` per document."""
        return json.loads(self._native.eval_lens_json(json.dumps(request), _progress(progress)))

    def generate(
        self,
        text: str,
        max_new_tokens: int,
        *,
        on_step: Optional[Callable[[Dict[str, Any]], Any]] = None,
        progress: Progress = None,
        **request: Any,
    ) -> Run:
        """A greedy continuation with the lens, what ``POST /generate``
        answers (``to_dict()``): every /inference field as a keyword (the
        interventions act at every step), ``stop_at_eos`` (default true).
        ``on_step`` hears each pass as it is made (the streamed ``step``
        lines), ``written`` in the answer says what was written."""
        body = dict(request, text=text, max_new_tokens=max_new_tokens)
        return Run(self._native.generate_json(json.dumps(body), _progress(progress), on_step))

    def attach_tuned_lens(self, path: Union[str, os.PathLike]) -> Optional[str]:
        """Attach a tuned lens (a tuned-lens folder); ``run(lens="tuned")``
        then draws the block-output rows with it. Returns its warning, if
        it was made for another model."""
        return self._native.attach_lens(os.fspath(path), "tuned")

    def attach_jacobian_lens(self, path: Union[str, os.PathLike]) -> Optional[str]:
        """Attach a Jacobian lens (TransformerLens's .pt, a fit checkpoint,
        or fit-jlens's .safetensors): ``run(lens="jacobian")`` and the
        ``jlens_*`` interventions use it. Returns its warning, if any."""
        return self._native.attach_lens(os.fspath(path), "jacobian")

    def attach_saes(self, *sources: Union[str, Dict[str, Any]]) -> Dict[str, List[str]]:
        """Attach sparse autoencoders, all or none: each a folder (SAELens,
        Gemma Scope; or ``org/name[@revision]:folder`` in the Hub cache) or
        a dict as POST /load_sae takes (``path``, ``name``, ``hook``,
        ``center_writing_weights``, ``norm_scaling_factor``). ``run(sae=True)``
        then reads their features and the ``sae_*`` interventions use them.
        Returns each one's notes by name."""
        listed = [{"path": os.fspath(s)} if not isinstance(s, dict) else s for s in sources]
        return dict(self._native.attach_saes_json(json.dumps(listed)))

    def detach_saes(self, *names: str) -> None:
        """Take attached SAEs off, all those named or, when one is not
        attached, none (what POST /unload_sae does)."""
        self._native.detach_saes(list(names))

    def sae_features(
        self, sae: str, features: List[int], k: int = 10, run: Optional[Run] = None
    ) -> Dict[str, Any]:
        """What features of an attached SAE say, as POST /sae_features
        answers: each one's top and bottom ``k`` tokens through the
        unembedding; with ``run``, its activation at every position of it."""
        body = {"sae": sae, "features": [int(f) for f in features], "k": k}
        native = None if run is None else run._native
        return json.loads(self._native.sae_features_json(json.dumps(body), native))

    def sae_feature_corpus(
        self, sae: str, feature: int, *, progress: Progress = None, **request: Any
    ) -> Dict[str, Any]:
        """Where a feature fires over a corpus, what POST /sae_feature_corpus
        answers: how often, how strongly, its strongest contexts
        (``corpus`` or ``sample``, ``max_tokens``, ``contexts``, ``window``)."""
        body = dict(request, sae=sae, feature=int(feature))
        return json.loads(self._native.sae_feature_corpus_json(json.dumps(body), _progress(progress)))

    def lens_vector(self, token: Union[str, int], k: int = 10) -> Dict[str, Any]:
        """A token's Jacobian-lens vector at each layer the attached lens
        covers, read through the head (the direction ``jlens_steer`` pushes
        along), what POST /lens_vector answers."""
        return json.loads(self._native.lens_vector_json(json.dumps({"token": token, "k": k})))

    def eval_sae(self, *, progress: Progress = None, **request: Any) -> Dict[str, Any]:
        """The attached SAEs measured over a corpus, what POST /eval_sae
        answers (``corpus`` or ``sample``, ``max_tokens``, ``saes``...)."""
        return json.loads(self._native.eval_sae_json(json.dumps(request), _progress(progress)))

    def fit_jlens(
        self, path: Union[str, os.PathLike], *, progress: Progress = None, **request: Any
    ) -> Dict[str, int]:
        """Fit a Jacobian lens on a corpus as POST /fit_jlens does
        (``corpus`` or ``sample``, ``max_prompts``, ``max_seq_len``,
        ``skip_first``, ``dim_batch``), write it to ``path`` (.safetensors)
        and attach it. Returns the prompts it holds and those skipped."""
        n_prompts, skipped = self._native.fit_jlens_json(json.dumps(request), os.fspath(path), _progress(progress))
        return {"n_prompts": n_prompts, "skipped": skipped}

    def hook_names(self) -> List[str]:
        """Every name ``run_with_cache`` can return for this model."""
        return self._native.hook_names()

    def __repr__(self) -> str:
        c = self.config
        return f"Model({self.name!r}, {c['family']}, {c['n_layers']} layers, d_model {c['d_model']})"
