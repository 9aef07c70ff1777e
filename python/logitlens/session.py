"""Saved sessions (``saved_states/<id>/{config.json, tensors.npz}``, what the
server's /save_state writes) as Python objects and numpy arrays.

``tensors.npz`` is an uncompressed zip of ``.npy`` files, so its arrays are
read as views of the file mapped into memory: nothing is copied or read
until it is used, and a session of an 8B model opens at once.
"""

from __future__ import annotations

import io
import json
import mmap
import struct
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

import numpy as np

# The zip format's local file header: 30 bytes, then the name and the extra
# field, whose lengths are the two 16-bit numbers at offset 26.
_LOCAL_HEADER = 30
_LOCAL_SIGNATURE = b"PK\x03\x04"


class Session(Mapping[str, np.ndarray]):
    """A saved session: ``config`` (the saved config.json: the request, its
    tokens, the lens rows as the client saw them), and its arrays by name
    (``hidden_states`` ``[rows, 1, T, d_model]``, ``logits`` ``[1, T, V]``,
    ``layer_names``, and ``attention`` when it was saved), read-only views
    of the file."""

    def __init__(self, path: Path, config: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> None:
        self.path = path
        self.config = config
        self._arrays = arrays

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in this session; it has {sorted(self._arrays)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def text(self) -> str:
        return self.config.get("text", "")

    @property
    def input_ids(self) -> Optional[List[int]]:
        return self.config.get("input_ids")

    @property
    def input_tokens(self) -> Optional[List[str]]:
        return self.config.get("input_tokens")

    @property
    def layer_names(self) -> List[str]:
        return [str(n) for n in self._arrays.get("layer_names", [])]

    def state(self, layer_name: str) -> np.ndarray:
        """The saved state of the lens row ``layer_name``, ``[T, d_model]``."""
        names = self.layer_names
        if layer_name not in names:
            raise KeyError(f"no row {layer_name!r}; the rows are {names}")
        return self["hidden_states"][names.index(layer_name), 0]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self._arrays.items())
        return f"Session({self.path.name!r}: {shapes})"


def load_session(path: Union[str, Path]) -> Session:
    """A saved session: its folder (``saved_states/<id>``), or its
    ``config.json`` or ``tensors.npz``. Raises FileNotFoundError when
    there is none there, ValueError when its files are not a session's."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    config_file, tensors = folder / "config.json", folder / "tensors.npz"
    if not config_file.is_file():
        raise FileNotFoundError(f"{p}: no saved session here (a folder with config.json and tensors.npz)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{config_file}: not a session's config.json ({e})") from None
    arrays = _map_npz(tensors) if tensors.is_file() else {}
    return Session(folder, config, arrays)


def _map_npz(path: Path) -> Dict[str, np.ndarray]:
    """The arrays of an npz, each a read-only view of the file mapped into
    memory (copied only when a member is compressed)."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    arrays: Dict[str, np.ndarray] = {}
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: not an npz file ({e})") from None
    with archive:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    arrays[name] = np.load(member, allow_pickle=False)
                continue
            arrays[name] = _view(mapped, info, path)
    return arrays


def _view(mapped: mmap.mmap, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    start = info.header_offset
    if mapped[start : start + 4] != _LOCAL_SIGNATURE:
        raise ValueError(f"{path}: {info.filename} has no zip header where the index says")
    name_len, extra_len = struct.unpack("<HH", mapped[start + 26 : start + 30])
    data = start + _LOCAL_HEADER + name_len + extra_len
    header = io.BytesIO(mapped[data : data + min(info.file_size, 1 << 16)])
    try:
        version = np.lib.format.read_magic(header)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"npy version {version}")
        shape, fortran, dtype = read_header(header)
    except ValueError as e:
        raise ValueError(f"{path}: {info.filename} is not an .npy array ({e})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: {info.filename} holds Python objects, which are not read")
    offset = data + header.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if header.tell() + count * dtype.itemsize > info.file_size:
        raise ValueError(f"{path}: {info.filename} claims {shape} {dtype}, more than its {info.file_size} bytes")
    return np.ndarray(shape, dtype=dtype, buffer=mapped, offset=offset, order="F" if fortran else "C")
