"""The notebooks run, top to bottom, against the local endpoint (a broken notebook fails here),
and are committed executed: with their pictures, what the client did, and no progress-bar noise."""

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
ids = [p.name for p in NOTEBOOKS]
TOURS = [p for p in NOTEBOOKS if p.name in ("langchain_rag.ipynb", "llamaindex_ingestion.ipynb")]


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_committed_executed_with_its_pictures(path):
    """Every notebook, as committed: each code cell run in order and showing what it gave, at
    least one picture, no error, nothing on stderr and no progress bar."""
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    printing = [c for c in code if "print(" in c.source or c.source.rstrip().endswith("figure")]
    assert printing and all(c.get("outputs") for c in printing)
    pictures = [o for o in outputs(notebook) if "image/png" in o.get("data", {})]
    assert pictures and all(
        base64.b64decode(o["data"]["image/png"]).startswith(b"\x89PNG") for o in pictures
    )
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]
    streams = [o for o in outputs(notebook) if o.get("output_type") == "stream"]
    assert not [o for o in streams if o["name"] == "stderr"]
    assert "Loading weights" not in "".join(o["text"] for o in streams)


def test_the_pca_plot_names_its_documents_in_a_legend_not_on_overlapping_labels():
    (notebook,) = [
        nbformat.read(p, as_version=4) for p in NOTEBOOKS if p.name == "langchain_rag.ipynb"
    ]
    (cell,) = [c for c in notebook.cells if "PCA" in c.source and c.cell_type == "code"]
    assert "ax.legend(" in cell.source and "annotate(" not in cell.source


def test_the_cold_start_wait_is_reported_by_the_clock():
    """A 2-second cold start, four batches waiting it out together: about 2 s, not their sum."""
    for path in TOURS:
        notebook = nbformat.read(path, as_version=4)
        (cell,) = [c for c in notebook.cells if "cold_start=2.0" in c.source]
        text = "".join(o["text"] for o in cell.outputs if o.get("output_type") == "stream")
        wait = float(text.split(" s cold-start wait")[0].rsplit(", ", 1)[1])
        assert 1.5 <= wait <= 3.5, text


def test_the_install_cells_name_their_own_adapter():
    for path in TOURS:
        first = nbformat.read(path, as_version=4).cells[1].source
        framework = "LangChain" if path.name.startswith("langchain") else "LlamaIndex"
        assert f"with its {framework} adapter" in first


# The guided tours: committed with their outputs, an install cell, a cell for a real endpoint,
# pictures and what the client did.


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
