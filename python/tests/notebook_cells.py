"""examples/notebook.ipynb is examples/notebook.py's cells (`# %%` marks a
code cell, `# %% [markdown]` a text one). Run this file to write the
notebook again after editing the script; the tests check the two agree."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "notebook.py"
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


def cells_of(script: str):
    """(kind, source) of each cell of a percent-format script."""
    cells = []
    for chunk in re.split(r"^# %%", script, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if header.strip() == "[markdown]":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()]
            cells.append(("markdown", "\n".join(lines)))
        else:
            cells.append(("code", body))
    return cells


def cells_in(notebook: dict):
    return [(c["cell_type"], "".join(c["source"])) for c in notebook["cells"]]


def notebook_of(script: str) -> dict:
    cells = []
    for i, (kind, source) in enumerate(cells_of(script)):
        cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


if __name__ == "__main__":
    NOTEBOOK.write_text(json.dumps(notebook_of(SCRIPT.read_text()), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {NOTEBOOK}")
