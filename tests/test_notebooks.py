"""The notebooks run, top to bottom, against the local endpoint (a broken notebook fails here),
and are committed executed: with their pictures, what the client did, and no progress-bar noise."""

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
ids = [p.name for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert ids == ["langchain_rag.ipynb", "llamaindex_ingestion.ipynb", "rerank_rag.ipynb"]


def outputs(notebook):
    return [o for cell in notebook.cells for o in cell.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT_URL", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]


# The guided tours: committed with their outputs, an install cell, a cell for a real endpoint,
# pictures and what the client did.
TOURS = [p for p in NOTEBOOKS if p.name in ("langchain_rag.ipynb", "llamaindex_ingestion.ipynb")]


@pytest.mark.parametrize("path", TOURS, ids=[p.name for p in TOURS])
def test_notebook_is_committed_executed_with_pictures_and_without_noise(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert code[0].source.count("%pip install") == 1  # the install cell
    assert "HF_ENDPOINT_URL" in code[1].source and "HF_TOKEN" in code[1].source
    pictures = [
        o["data"]["image/png"] for o in outputs(notebook) if "image/png" in o.get("data", {})
    ]
    assert len(pictures) >= 2
    assert all(base64.b64decode(p).startswith(b"\x89PNG") for p in pictures)
    streams = [o for o in outputs(notebook) if o.get("output_type") == "stream"]
    assert not [o for o in streams if o["name"] == "stderr"]
    text = "".join(o["text"] for o in streams)
    assert "Loading weights" not in text and "it/s]" not in text
    assert "requests," in text and "retries (HTTP 429" in text and "cold-start wait" in text
