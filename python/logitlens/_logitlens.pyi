"""The native engine module (pyo3). Use it through the `logitlens` package."""

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

__version__: str

ProgressCallback = Callable[[str, int, int], Any]

class Held:
    """Keeps the engine's tensor alive under the numpy arrays that view it."""

class Model:
    @staticmethod
    def load(
        path: Optional[str] = None,
        backend: str = "custom",
        weights: str = "auto",
        dtype: Optional[str] = None,
    ) -> "Model": ...
    @property
    def name(self) -> str: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    def tokenize(self, text: str, chat: bool = False) -> List[int]: ...
    def to_str_tokens(self, ids: List[int]) -> List[str]: ...
    def run_json(self, request: str, progress: Optional[ProgressCallback] = None) -> "Run":
        """What POST /inference answers for `request` (its JSON body as text)."""
    def run_batch_json(
        self, request: str, progress: Optional[ProgressCallback] = None
    ) -> Tuple[List["Run"], List[List[int]]]:
        """What POST /inference_batch answers for `request`: each prompt's run, and the passes."""
    def patch_json(self, request: str, progress: Optional[ProgressCallback] = None) -> str:
        """What POST /patch answers for `request`, as JSON text."""
    def eval_lens_json(self, request: str, progress: Optional[ProgressCallback] = None) -> str:
        """What POST /eval_lens answers for `request`, as JSON text."""
    def generate_json(
        self,
        request: str,
        progress: Optional[ProgressCallback] = None,
        on_step: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> "Run":
        """What POST /generate answers for `request` (not streamed)."""
    def run_with_hooks(
        self,
        text: str,
        hooks: Dict[str, Callable[[np.ndarray, Dict[str, Any]], Optional[np.ndarray]]],
        chat: bool = False,
        progress: Optional[ProgressCallback] = None,
    ) -> np.ndarray: ...
    def attach_lens(self, path: str, kind: str) -> Optional[str]:
        """Attach a tuned ("tuned") or Jacobian ("jacobian") lens."""
    def attach_saes_json(self, sources: str) -> List[Tuple[str, List[str]]]: ...
    def detach_saes(self, names: List[str]) -> None: ...
    def sae_features_json(self, request: str, run: Optional["Run"] = None) -> str: ...
    def eval_sae_json(self, request: str, progress: Optional[ProgressCallback] = None) -> str: ...
    def sae_feature_corpus_json(self, request: str, progress: Optional[ProgressCallback] = None) -> str: ...
    def lens_vector_json(self, request: str) -> str: ...
    def fit_jlens_json(
        self, request: str, path: str, progress: Optional[ProgressCallback] = None
    ) -> Tuple[int, int]: ...
    def hook_names(self) -> List[str]: ...
    def run_with_cache(
        self,
        text: str,
        names: Optional[List[str]] = None,
        chat: bool = False,
        progress: Optional[ProgressCallback] = None,
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]: ...

class Run:
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    @property
    def tokens(self) -> List[int]: ...
    @property
    def logits(self) -> np.ndarray: ...
