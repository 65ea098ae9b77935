"""The notebooks run from top to bottom without error (executed in a scratch copy, so the committed outputs and
figures stay as they are)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(notebook, tmp_path):
    copy = tmp_path / notebook.name
    shutil.copy(notebook, copy)
    for folder in ("figures", "specs"):
        if (notebook.parent / folder).is_dir():
            shutil.copytree(notebook.parent / folder, tmp_path / folder)
    nb = nbformat.read(copy, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", ())
              if output.get("output_type") == "error"]
    assert not errors
