"""docs/tutorial.ipynb runs headless in a real kernel (nbclient + ipykernel, the test
extras) without an error, shows what it promises, and is committed without outputs."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def test_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_runs_headless_without_error(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    # CellExecutionError on the first cell that raises; the GIF lands in tmp_path.
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert time.perf_counter() - start < 60
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert sum('class="arenagrad-graph"' in h for h in html) >= 4  # Values drew themselves
    assert any('class="arenagrad-explain"' in h and "\u2713" in h for h in html)
    assert any('class="arenagrad-backprop"' in h for h in html)
    assert sum('class="arenagrad-summary"' in h for h in html) == 2
    assert any("more nodes not drawn" in h for h in html)  # the trained loss's graph is capped
    assert (tmp_path / "backprop.gif").exists()
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "step 39" in printed
